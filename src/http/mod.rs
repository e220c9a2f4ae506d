//! Thin shared HTTP layer: errors, extractors, pagination, middleware.

pub mod client_addr;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod methods;
pub mod middleware;
pub mod openapi;
pub mod pagination;

use actix_web::{HttpRequest, web};

use error::{Error, FieldError};

/// Makes actix's own rejections (bad path segment, bad query string) speak problem+json.
pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err, req| {
        let field = req.match_info().iter().next().map(|(k, _)| k.to_string());
        Error::Validation(vec![FieldError::new(
            field.unwrap_or_else(|| "path".into()),
            format!("invalid path parameter: {err}"),
        )])
        .into()
    })
}

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _req: &HttpRequest| {
        let msg = err.to_string();
        let field = extract::backticked_after(&msg, "unknown field `")
            .unwrap_or("query")
            .to_string();
        Error::Validation(vec![FieldError::new(
            field,
            format!("invalid query: {msg}"),
        )])
        .into()
    })
}

/// `If-Match` of a request for a resource whose `ETag` is `"v{version}"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfMatch {
    Absent,
    Any,
    /// The version named; `None` when the tag is not one of ours (it can match nothing).
    Version(Option<i32>),
}

impl IfMatch {
    /// The version the client expects, if it named one (absent and `*` expect none); a tag that
    /// is not ours matches no version: 412.
    pub fn expected_version(self) -> Result<Option<i32>, Error> {
        match self {
            IfMatch::Absent | IfMatch::Any => Ok(None),
            IfMatch::Version(None) => Err(Error::PreconditionFailed),
            IfMatch::Version(Some(v)) => Ok(Some(v)),
        }
    }
}

pub fn if_match(req: &HttpRequest) -> IfMatch {
    let Some(v) = req.headers().get(actix_web::http::header::IF_MATCH) else {
        return IfMatch::Absent;
    };
    let v = v.to_str().unwrap_or("").trim();
    if v == "*" {
        return IfMatch::Any;
    }
    IfMatch::Version(parse_version_tag(v))
}

/// Does `If-None-Match` name this exact tag (or `*`)? Weak comparison, as RFC 9110 asks for
/// `If-None-Match`.
pub fn if_none_match(req: &HttpRequest, etag: &str) -> bool {
    let strip = |t: &str| t.trim().trim_start_matches("W/").to_string();
    req.headers()
        .get(actix_web::http::header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|tag| tag.trim() == "*" || strip(tag) == strip(etag))
        })
}

/// The version in a tag `"v{version}"`, or `"v{version}-{anything}"` (tags may carry more,
/// e.g. a product's stock, that `If-Match` does not compare).
fn parse_version_tag(tag: &str) -> Option<i32> {
    let tag = tag.strip_prefix("W/").unwrap_or(tag);
    let inner = tag.strip_prefix("\"v")?.strip_suffix('"')?;
    inner.split_once('-').map_or(inner, |(v, _)| v).parse().ok()
}
