//! Completes the OpenAPI document with what every operation shares, so the spec states each
//! status code the server can answer (schemathesis checks it), and adds the OpenAPI `links`
//! between operations (create → read/update/delete, checkout → order actions).
//!
//! The shared answers come from the shared layers, not from a handler:
//! - 400: a path, query or header parameter that does not parse, or a bad body (malformed JSON,
//!   wrong content type, unknown field, value out of range);
//! - 401: an operation that reads the caller's token (required or optional), sent a bad one;
//! - 404: a path whose object does not exist or is hidden from the caller;
//! - 413: a body over 64 KiB;
//! - 409 and 422 where an `Idempotency-Key` is taken: the same key still running, or reused for
//!   another request;
//! - 503: the database is unreachable, saturated or too slow (a `Retry-After` is sent), or a read
//!   ran past `PASAR_REQUEST_TIMEOUT_MS`.
//!
//! 405 is not listed: it is the answer to the methods an operation does not declare.

use utoipa::openapi::header::Header;
use utoipa::openapi::link::Link;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::{Content, OpenApi, Ref, RefOr, Response};

fn problem(description: &str) -> Response {
    let mut r = Response::new(description);
    r.content.insert(
        "application/problem+json".into(),
        RefOr::T(Content::new(Some(Ref::from_schema_name("Problem")))),
    );
    r
}

fn with_retry_after(mut r: Response) -> Response {
    let mut h = Header::new(utoipa::openapi::Object::with_type(
        utoipa::openapi::Type::Integer,
    ));
    h.description = Some("seconds to wait before trying again".into());
    r.headers.insert("Retry-After".into(), RefOr::T(h));
    r
}

fn add(op: &mut Operation, status: &str, response: impl FnOnce() -> Response) {
    op.responses
        .responses
        .entry(status.to_string())
        .or_insert_with(|| RefOr::T(response()));
}

fn has_param(op: &Operation, place: ParameterIn) -> bool {
    op.parameters.iter().flatten().any(|p| match p {
        RefOr::T(p) => p.parameter_in == place,
        RefOr::Ref(_) => false,
    })
}

/// Adds the answers of the shared layers to every API operation, then the links.
pub fn complete(api: &mut OpenApi) {
    for (path, item) in api.paths.paths.iter_mut() {
        if !path.starts_with("/api/") {
            continue;
        }
        for op in [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ]
        .into_iter()
        .flatten()
        {
            let body = op.request_body.is_some();
            let params = op.parameters.as_ref().is_some_and(|p| !p.is_empty());
            if body || params {
                add(op, "400", || {
                    problem("invalid input: a parameter or the body is malformed or out of range")
                });
            }
            if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
                add(op, "401", || {
                    problem("the access token is missing, expired, revoked or invalid")
                });
            }
            if has_param(op, ParameterIn::Path) {
                add(op, "404", || {
                    problem("the resource does not exist or is not visible to you")
                });
            }
            if body {
                add(op, "413", || problem("the request body is over 64 KiB"));
            }
            let keyed = op.parameters.iter().flatten().any(
                |p| matches!(p, RefOr::T(p) if p.name == crate::http::idempotency::KEY_HEADER),
            );
            if keyed {
                add(op, "409", || {
                    problem(
                        "a request with the same Idempotency-Key is still running, or the state conflicts",
                    )
                });
                add(op, "422", || {
                    problem(
                        "the Idempotency-Key was used for another request (other operation or body)",
                    )
                });
            }
            constrain_parameters(path, op);
            add(op, "503", || {
                with_retry_after(problem(
                    "the database is unavailable or busy, or the request took too long; retry",
                ))
            });
        }
    }
    add_links(api);
}

/// A Kemendagri region code of any level: `34`, `34.02`, `34.02.15` or `34.02.15.2004`.
pub const REGION_CODE_PATTERN: &str = r"^[0-9]{2}(\.[0-9]{2}(\.[0-9]{2}(\.[0-9]{4})?)?)?$";

/// States in the schema what the handlers check of parameters the derives leave as plain
/// strings: region codes (`/regions/{code}`, `?region=`), the reports' dates (`from`, `to`),
/// and the reports' and product search's choices (`format`, `granularity`, `sort`).
fn constrain_parameters(path: &str, op: &mut Operation) {
    use utoipa::openapi::schema::{KnownFormat, Schema, SchemaFormat};
    let reports = path.ends_with("/dashboard") || path.ends_with("/circulation");
    for p in op.parameters.iter_mut().flatten() {
        let RefOr::T(p) = p else { continue };
        let Some(RefOr::T(Schema::Object(schema))) = p.schema.as_mut() else {
            continue;
        };
        let choices: &[&str] = match (&p.parameter_in, p.name.as_str()) {
            (ParameterIn::Path, "code") if path.starts_with("/api/v1/regions/") => {
                schema.pattern = Some(REGION_CODE_PATTERN.into());
                &[]
            }
            (ParameterIn::Query, "region") => {
                schema.pattern = Some(REGION_CODE_PATTERN.into());
                &[]
            }
            (ParameterIn::Query, "from" | "to") if reports => {
                schema.format = Some(SchemaFormat::KnownFormat(KnownFormat::Date));
                &[]
            }
            (ParameterIn::Query, "format") if reports => &["json", "csv"],
            (ParameterIn::Query, "granularity") if reports => &["day", "week", "month"],
            (ParameterIn::Query, "status") if path == "/api/v1/shops/{id}/products" => {
                &["draft", "active", "inactive", "archived"]
            }
            (ParameterIn::Query, "sort") if path == "/api/v1/products" => {
                &["relevance", "price_asc", "price_desc", "newest", "local"]
            }
            _ => &[],
        };
        if !choices.is_empty() {
            schema.enum_values = Some(choices.iter().map(|c| (*c).into()).collect());
        }
    }
}

/// `(path, method, status, link name, target operationId, [(parameter, runtime expression)])`.
type LinkSpec = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

const BODY_ID: &[(&str, &str)] = &[("id", "$response.body#/id")];
const FIRST_ORDER: &[(&str, &str)] = &[("id", "$response.body#/orders/0/id")];

const LINKS: &[LinkSpec] = &[
    // A new aid programme → its reads and actions.
    (
        "/api/v1/villages/{code}/aid-programmes",
        "post",
        "201",
        "GetProgramme",
        "programme",
        BODY_ID,
    ),
    (
        "/api/v1/villages/{code}/aid-programmes",
        "post",
        "201",
        "FundProgramme",
        "fund",
        BODY_ID,
    ),
    (
        "/api/v1/villages/{code}/aid-programmes",
        "post",
        "201",
        "Disburse",
        "disburse",
        BODY_ID,
    ),
    (
        "/api/v1/villages/{code}/aid-programmes",
        "post",
        "201",
        "Recipients",
        "recipients",
        BODY_ID,
    ),
    (
        "/api/v1/villages/{code}/aid-programmes",
        "post",
        "201",
        "CloseProgramme",
        "close",
        BODY_ID,
    ),
    // A new product → read, stock, archive.
    (
        "/api/v1/shops/{id}/products",
        "post",
        "201",
        "GetProduct",
        "get_product",
        BODY_ID,
    ),
    (
        "/api/v1/shops/{id}/products",
        "post",
        "201",
        "StockHistory",
        "stock_history",
        BODY_ID,
    ),
    (
        "/api/v1/shops/{id}/products",
        "post",
        "201",
        "AdjustStock",
        "adjust_stock",
        BODY_ID,
    ),
    (
        "/api/v1/shops/{id}/products",
        "post",
        "201",
        "ArchiveProduct",
        "archive_product",
        BODY_ID,
    ),
    // A new shop application → read, update, review.
    (
        "/api/v1/villages/{code}/shops",
        "post",
        "201",
        "GetShop",
        "get_shop",
        BODY_ID,
    ),
    (
        "/api/v1/villages/{code}/shops",
        "post",
        "201",
        "UpdateShop",
        "update_shop",
        BODY_ID,
    ),
    (
        "/api/v1/villages/{code}/shops",
        "post",
        "201",
        "ApproveShop",
        "approve",
        BODY_ID,
    ),
    (
        "/api/v1/villages/{code}/shops",
        "post",
        "201",
        "RejectShop",
        "reject_shop",
        BODY_ID,
    ),
    // A new network → read, update, report.
    (
        "/api/v1/networks",
        "post",
        "201",
        "GetNetwork",
        "get_network",
        BODY_ID,
    ),
    (
        "/api/v1/networks",
        "post",
        "201",
        "UpdateNetwork",
        "update_network",
        BODY_ID,
    ),
    (
        "/api/v1/networks",
        "post",
        "201",
        "Circulation",
        "circulation",
        BODY_ID,
    ),
    // A new BUMDes → read, add a unit.
    (
        "/api/v1/villages/{code}/bumdes",
        "post",
        "201",
        "GetBumdes",
        "get_bumdes",
        BODY_ID,
    ),
    (
        "/api/v1/villages/{code}/bumdes",
        "post",
        "201",
        "AddUnit",
        "add_unit",
        BODY_ID,
    ),
    // A checkout → its (first) order's read and actions.
    (
        "/api/v1/checkouts",
        "post",
        "201",
        "GetOrder",
        "get_order",
        FIRST_ORDER,
    ),
    (
        "/api/v1/checkouts",
        "post",
        "201",
        "AcceptOrder",
        "accept",
        FIRST_ORDER,
    ),
    (
        "/api/v1/checkouts",
        "post",
        "201",
        "RejectOrder",
        "reject",
        FIRST_ORDER,
    ),
    (
        "/api/v1/checkouts",
        "post",
        "201",
        "CancelOrder",
        "cancel",
        FIRST_ORDER,
    ),
    (
        "/api/v1/checkouts",
        "post",
        "201",
        "ShipOrder",
        "ship",
        FIRST_ORDER,
    ),
    // An order → its next actions.
    (
        "/api/v1/orders/{id}/accept",
        "post",
        "200",
        "ShipOrder",
        "ship",
        BODY_ID,
    ),
    (
        "/api/v1/orders/{id}/ship",
        "post",
        "200",
        "ConfirmOrder",
        "confirm",
        BODY_ID,
    ),
    (
        "/api/v1/orders/{id}/ship",
        "post",
        "200",
        "DisputeOrder",
        "dispute",
        BODY_ID,
    ),
    (
        "/api/v1/orders/{id}/dispute",
        "post",
        "200",
        "ResolveOrder",
        "resolve",
        BODY_ID,
    ),
];

fn add_links(api: &mut OpenApi) {
    let ids: std::collections::HashSet<String> = api
        .paths
        .paths
        .values()
        .flat_map(|i| [&i.get, &i.post, &i.put, &i.patch, &i.delete])
        .flatten()
        .filter_map(|op| op.operation_id.clone())
        .collect();
    for (path, method, status, name, target, params) in LINKS {
        assert!(
            ids.contains(*target),
            "link {name} to unknown operation {target}"
        );
        let item = api
            .paths
            .paths
            .get_mut(*path)
            .unwrap_or_else(|| panic!("link from unknown path {path}"));
        let op = match *method {
            "get" => item.get.as_mut(),
            "post" => item.post.as_mut(),
            "patch" => item.patch.as_mut(),
            "delete" => item.delete.as_mut(),
            _ => None,
        }
        .unwrap_or_else(|| panic!("link from unknown operation {method} {path}"));
        let Some(RefOr::T(response)) = op.responses.responses.get_mut(*status) else {
            panic!("link from undeclared response {status} of {method} {path}");
        };
        let mut link = Link::builder().operation_id(*target);
        for (param, expr) in *params {
            link = link.parameter(*param, *expr);
        }
        response
            .links
            .insert(name.to_string(), RefOr::T(link.build()));
    }
}

#[cfg(test)]
mod tests {
    /// Every `$ref` of the document names a schema it defines (utoipa registers the schemas of
    /// bodies, not those of parameters: a parameter's enum must be `#[param(inline)]`).
    #[test]
    fn every_schema_reference_resolves() {
        let doc = serde_json::to_value(crate::app::openapi()).unwrap();
        let defined = doc["components"]["schemas"].as_object().unwrap();
        let mut missing = Vec::new();
        let mut stack = vec![&doc];
        while let Some(v) = stack.pop() {
            match v {
                serde_json::Value::Object(m) => {
                    if let Some(serde_json::Value::String(r)) = m.get("$ref")
                        && let Some(name) = r.strip_prefix("#/components/schemas/")
                        && !defined.contains_key(name)
                    {
                        missing.push(name.to_string());
                    }
                    stack.extend(m.values());
                }
                serde_json::Value::Array(a) => stack.extend(a),
                _ => {}
            }
        }
        assert!(missing.is_empty(), "unresolvable references: {missing:?}");
    }
}
