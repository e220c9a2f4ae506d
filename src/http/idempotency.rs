//! `Idempotency-Key` (IETF httpapi draft) for the requests that move money: the first request
//! with a key runs, and its response is remembered, in the same database transaction as its
//! effect (a crash leaves both or neither); a retry with the same key replays that response.
//!
//! A handler puts the pieces together like this:
//!
//! ```ignore
//! async fn topup(state: web::Data<AppState>, caller: Caller, key: IdempotencyKey,
//!                http: HttpRequest, id: web::Path<Uuid>, body: HashedJson<NewTopup>)
//!                -> Result<Stored> {
//!     let req = Request::new(caller.user_id, key, "POST /wallets/{id}/topups", &http, &body.body_hash);
//!     db::run(&state.pool, move |conn| {
//!         idempotency::once(conn, &req, |conn| {
//!             let t = wallets::topup(conn, &caller, *id, &body.value)?;
//!             Ok((201, serde_json::to_value(t).map_err(anyhow::Error::from)?))
//!         })
//!     })
//!     .await
//! }
//! ```
//!
//! Call [`once`] with [`crate::db::run`]: it opens the transaction itself. (Inside
//! [`crate::db::transaction`] it still works, as a savepoint: [`once`] answers `Ok` for every
//! response it stored, so the outer transaction commits the key row.)

use std::future::{Ready, ready};

use actix_web::body::BoxBody;
use actix_web::http::StatusCode;
use actix_web::http::header::HeaderMap;
use actix_web::{FromRequest, HttpRequest, HttpResponse, Responder, ResponseError, dev::Payload};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::error::{Error, Result};
use crate::db::schema::idempotency_keys;

pub const KEY_HEADER: &str = "Idempotency-Key";
/// Set (to `true`) on a response that was replayed rather than produced by this request.
pub const REPLAYED_HEADER: &str = "Idempotency-Replayed";
pub const MAX_KEY_LEN: usize = 255;
/// Keys are remembered at least this long; [`sweep`] forgets older ones, and a forgotten key
/// runs again (as Stripe does).
pub const RETENTION_HOURS: i32 = 24;
/// Rows one [`sweep`] deletes at most, so that it stays a short statement.
const SWEEP_BATCH: i64 = 1000;

/// The `Idempotency-Key` header, required: 1 to 255 visible ASCII characters. The draft's
/// structured-field form `"…"` is accepted too and means the key between the quotes (which may
/// then not contain `"` or `\`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(pub String);

impl IdempotencyKey {
    pub fn from_headers(headers: &HeaderMap) -> Result<Self> {
        let bad = |msg: &str| Error::field(KEY_HEADER, msg);
        let mut values = headers.get_all(KEY_HEADER);
        let Some(value) = values.next() else {
            return Err(bad(
                "required: a unique key per request (1 to 255 visible ASCII characters, a UUID say)",
            ));
        };
        if values.next().is_some() {
            return Err(bad("send one Idempotency-Key header, not several"));
        }
        let raw = value.as_bytes();
        let (key, quoted) = match raw {
            [b'"', inner @ .., b'"'] => (inner, true),
            _ => (raw, false),
        };
        let fits = (1..=MAX_KEY_LEN).contains(&key.len())
            && key.iter().all(u8::is_ascii_graphic)
            && !(quoted && key.iter().any(|b| matches!(b, b'"' | b'\\')));
        if !fits {
            return Err(bad("1 to 255 visible ASCII characters (no spaces)"));
        }
        // Visible ASCII is UTF-8.
        Ok(IdempotencyKey(String::from_utf8_lossy(key).into_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromRequest for IdempotencyKey {
    type Error = Error;
    type Future = Ready<Result<Self>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Self::from_headers(req.headers()))
    }
}

/// So that a handler documents the header with `params(IdempotencyKey, …)`.
impl utoipa::IntoParams for IdempotencyKey {
    fn into_params(
        _: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        use utoipa::openapi::{ObjectBuilder, Required, Type};
        vec![
            ParameterBuilder::new()
                .name(KEY_HEADER)
                .parameter_in(ParameterIn::Header)
                .required(Required::True)
                .description(Some(
                    "Unique per request (a UUID, say). The same key with the same request \
                     replays the first response (header `Idempotency-Replayed: true`); with \
                     another request 422; while the first is still running 409. Keys are \
                     scoped to the caller and remembered for 24 hours.",
                ))
                .schema(Some(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .min_length(Some(1))
                        .max_length(Some(MAX_KEY_LEN))
                        .pattern(Some("^[!-~]+$")),
                ))
                .build(),
        ]
    }
}

/// One keyed request, as [`once`] needs it.
#[derive(Debug, Clone)]
pub struct Request {
    pub caller: Uuid,
    pub key: String,
    /// The route pattern, e.g. `"POST /wallets/{id}/topups"`: a key reused for another
    /// operation is refused even when the hashes happened to agree.
    pub operation: &'static str,
    /// [`request_hash`] of the request.
    pub request_hash: [u8; 32],
}

impl Request {
    /// The request of `http`, whose raw body hashes to `body_hash` (from
    /// [`super::extract::HashedJson`], or [`super::extract::sha256`]`(b"")` without a body).
    pub fn new(
        caller: Uuid,
        key: IdempotencyKey,
        operation: &'static str,
        http: &HttpRequest,
        body_hash: &[u8; 32],
    ) -> Self {
        let target = http
            .uri()
            .path_and_query()
            .map_or_else(|| http.path(), |pq| pq.as_str());
        Request {
            caller,
            key: key.0,
            operation,
            request_hash: request_hash(http.method().as_str(), target, body_hash),
        }
    }
}

/// SHA-256 of the method, the concrete path (with its query, if any) and the body's SHA-256,
/// NUL-separated (neither a method nor a path contains NUL, so no two requests encode alike).
pub fn request_hash(method: &str, path_and_query: &str, body_hash: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update([0]);
    h.update(path_and_query.as_bytes());
    h.update([0]);
    h.update(body_hash);
    h.finalize().into()
}

/// The response of a keyed request: produced now (`replayed: false`) or replayed.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub status: u16,
    pub body: Value,
    pub replayed: bool,
}

impl Stored {
    /// Status and JSON body as stored (a stored refusal is a problem document, and says so in
    /// its content type), plus `Idempotency-Replayed: true` on a replay.
    pub fn into_response(self) -> HttpResponse {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut res = HttpResponse::build(status);
        if status.is_client_error() || status.is_server_error() {
            res.content_type("application/problem+json");
        }
        if self.replayed {
            res.insert_header((REPLAYED_HEADER, "true"));
        }
        res.json(self.body)
    }
}

impl Responder for Stored {
    type Body = BoxBody;

    fn respond_to(self, _: &HttpRequest) -> HttpResponse {
        self.into_response()
    }
}

/// Whether a refusal of the effect is its final answer, stored and replayed like a success.
///
/// Stored: a business refusal, i.e. an [`Error::Conflict`] with its own slug
/// (`insufficient-funds`, `out-of-stock`, a transition the order's status forbids, …): the
/// operation ran and decided, and a retry must learn that decision, not a new one taken after
/// the state moved on (a top-up since, stock back).
///
/// Not stored (the whole transaction rolls back, the key stays free, a retry runs again):
/// - 400 (validation, unreadable input), 412, 413: the request was refused before it did
///   anything, and the client's fix is to resend it corrected; storing would turn that fix into
///   a 422 and buy nothing, since the same bad request fails the same way again (Stripe, too,
///   stores nothing for a request that failed validation);
/// - 401, 403, 404: about who asks and what they may see now; a role granted or a membership
///   restored later must let the same request through;
/// - a conflict with the generic slug `conflict` or marked `retryable` (serialization failure,
///   deadlock, a concurrent unique insert, a key still in progress): the moment's, not the
///   request's, so a retry deserves a fresh run;
/// - 429, 5xx and 503 (unavailable, timeouts): nothing was decided.
///
/// So an effect makes a refusal final by giving it a slug of its own.
pub fn is_final(err: &Error) -> bool {
    match err {
        Error::Conflict { slug, extra, .. } => {
            let retryable = extra
                .as_ref()
                .and_then(|x| x.get("retryable"))
                .is_some_and(|v| v == &Value::Bool(true));
            *slug != "conflict" && !retryable
        }
        _ => false,
    }
}

/// A keyed request end to end, as every money route answers it: [`once`] on a pooled
/// connection, retried on a deadlock or serialization failure ([`crate::db::run_retrying`]),
/// `effect`'s value answered with `status`.
pub async fn respond<T, F>(
    pool: &crate::db::DbPool,
    req: Request,
    status: u16,
    mut effect: F,
) -> Result<Stored>
where
    F: FnMut(&mut PgConnection) -> Result<T> + Send + 'static,
    T: serde::Serialize,
{
    crate::db::run_retrying(pool, move |conn| {
        once(conn, &req, |conn| {
            let value = effect(conn)?;
            Ok((
                status,
                serde_json::to_value(value).map_err(anyhow::Error::from)?,
            ))
        })
    })
    .await
}

/// Runs `effect` at most once per (caller, key), in one transaction with the key's row:
/// - another request with this key still running: 409 `conflict` ("still in progress",
///   `retryable: true`), at once, without waiting for it;
/// - the key already used for the same operation and [`request_hash`]: the stored status and
///   body, `replayed: true`, and `effect` does not run;
/// - the key already used for another operation or request: 422 `idempotency-mismatch`;
/// - else `effect` runs in a savepoint. Its success (2xx; other statuses must be `Err`) or a
///   final refusal ([`is_final`]: the savepoint undoes what it wrote) is stored and returned as
///   `Ok`; any other error is returned as it is and rolls everything back, key row included.
pub fn once<F>(conn: &mut PgConnection, req: &Request, effect: F) -> Result<Stored>
where
    F: FnOnce(&mut PgConnection) -> Result<(u16, Value)>,
{
    conn.transaction(|conn| {
        if !try_lock(conn, req)? {
            let mut extra = serde_json::Map::new();
            extra.insert("retryable".into(), Value::Bool(true));
            return Err(Error::Conflict {
                slug: "conflict",
                detail: "a request with this Idempotency-Key is still in progress; retry shortly"
                    .into(),
                extra: Some(extra),
            });
        }
        // Under the lock, the row of a finished first request is committed and visible (each
        // READ COMMITTED statement sees what committed before it began).
        let found: Option<(String, Vec<u8>, i16, Value)> = idempotency_keys::table
            .find((req.caller, &req.key))
            .select((
                idempotency_keys::operation,
                idempotency_keys::request_hash,
                idempotency_keys::response_status,
                idempotency_keys::response_body,
            ))
            .first(conn)
            .optional()?;
        if let Some((operation, hash, status, body)) = found {
            if operation != req.operation {
                return Err(Error::IdempotencyMismatch(format!(
                    "this Idempotency-Key was used for another operation ({operation}); \
                     use a new key for a new request"
                )));
            }
            if hash != req.request_hash {
                return Err(Error::IdempotencyMismatch(
                    "this Idempotency-Key was used for a request with another path or body; \
                     use a new key for a new request"
                        .into(),
                ));
            }
            return Ok(Stored {
                status: status as u16,
                body,
                replayed: true,
            });
        }
        let (status, body) = match conn.transaction(effect) {
            Ok((status, body)) if (200..300).contains(&status) => (status, body),
            Ok((status, _)) => {
                return Err(Error::Internal(anyhow::anyhow!(
                    "the effect of {} answered {status}: refusals must be errors",
                    req.operation
                )));
            }
            Err(e) if is_final(&e) => {
                let body = serde_json::to_value(e.problem()).map_err(anyhow::Error::from)?;
                (e.status_code().as_u16(), body)
            }
            Err(e) => return Err(e),
        };
        diesel::insert_into(idempotency_keys::table)
            .values((
                idempotency_keys::caller_id.eq(req.caller),
                idempotency_keys::key.eq(&req.key),
                idempotency_keys::operation.eq(req.operation),
                idempotency_keys::request_hash.eq(&req.request_hash[..]),
                idempotency_keys::response_status.eq(status as i16),
                idempotency_keys::response_body.eq(&body),
            ))
            .execute(conn)?;
        // Now and then, like the login counters: keys come in with money requests.
        if rand::random::<u8>() == 0 {
            sweep(conn)?;
        }
        Ok(Stored {
            status,
            body,
            replayed: false,
        })
    })
}

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = Bool)]
    locked: bool,
}

/// Takes the transaction-scoped advisory lock of (caller, key), without waiting.
fn try_lock(conn: &mut PgConnection, req: &Request) -> Result<bool> {
    let row: Locked = diesel::sql_query("SELECT pg_try_advisory_xact_lock($1) AS locked")
        .bind::<BigInt, _>(lock_id(req.caller, &req.key))
        .get_result(conn)?;
    Ok(row.locked)
}

/// 64 bits of a SHA-256 of (caller, key), prefixed so that no other advisory lock of ours
/// shares its numbers by design. Two keys meeting on one number (odds 2⁻⁶⁴) make one wait a
/// retry: a spurious 409, never a double effect (the row decides that).
fn lock_id(caller: Uuid, key: &str) -> i64 {
    let mut h = Sha256::new();
    h.update(b"pasar.idempotency\0");
    h.update(caller.as_bytes());
    h.update(key.as_bytes());
    let d = h.finalize();
    i64::from_be_bytes(d[..8].try_into().expect("8 bytes"))
}

/// Forgets up to [`SWEEP_BATCH`] keys older than [`RETENTION_HOURS`]; rows another sweep is
/// deleting are skipped, not waited for. Returns how many went.
pub fn sweep(conn: &mut PgConnection) -> Result<usize> {
    Ok(diesel::sql_query(
        "DELETE FROM idempotency_keys WHERE (caller_id, key) IN (
             SELECT caller_id, key FROM idempotency_keys
              WHERE created_at < now() - make_interval(hours => $1)
              ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
    )
    .bind::<diesel::sql_types::Integer, _>(RETENTION_HOURS)
    .bind::<BigInt, _>(SWEEP_BATCH)
    .execute(conn)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn key_of(values: &[&[u8]]) -> Result<IdempotencyKey> {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(
                HeaderName::from_static("idempotency-key"),
                HeaderValue::from_bytes(v).unwrap(),
            );
        }
        IdempotencyKey::from_headers(&headers)
    }

    #[track_caller]
    fn refused(values: &[&[u8]]) {
        match key_of(values) {
            Err(Error::Validation(errs)) => assert_eq!(errs[0].field, KEY_HEADER),
            other => panic!("{values:?}: expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn key_header_is_required_and_visible_ascii() {
        refused(&[]);
        refused(&[b""]);
        refused(&[b"\"\""]);
        refused(&[b"has space"]);
        refused(&[b"tab\there"]);
        refused(&["kunci-ü".as_bytes()]);
        refused(&[b"\x80abc"]);
        refused(&[&[b'k'; 256]]);
        refused(&[b"one", b"two"]);
        refused(&[b"\"in\\\"side\""]);
        let max = "k".repeat(255);
        assert_eq!(key_of(&[max.as_bytes()]).unwrap().0, max);
        assert_eq!(key_of(&[b"x"]).unwrap().0, "x");
        let uuid = "0195e0a2-7c1e-7d3a-9f00-2b7c8e1d4a55";
        assert_eq!(key_of(&[uuid.as_bytes()]).unwrap().0, uuid);
        // The draft's sf-string form names the same key.
        assert_eq!(key_of(&[format!("\"{uuid}\"").as_bytes()]).unwrap().0, uuid);
        assert_eq!(key_of(&[b"a\"b"]).unwrap().0, "a\"b");
    }

    #[test]
    fn missing_key_is_a_validation_problem_naming_the_header() {
        let p = key_of(&[]).unwrap_err().problem();
        assert_eq!(p.status, 400);
        assert!(p.type_.ends_with("/validation"), "{}", p.type_);
        assert_eq!(p.errors[0].field, "Idempotency-Key");
    }

    #[test]
    fn only_business_refusals_are_final() {
        let named = |slug| Error::Conflict {
            slug,
            detail: "x".into(),
            extra: None,
        };
        assert!(is_final(&named("insufficient-funds")));
        assert!(is_final(&named("out-of-stock")));
        let mut retry = serde_json::Map::new();
        retry.insert("retryable".into(), Value::Bool(true));
        for e in [
            Error::field("amount_idr", "must be positive"),
            Error::BadRequest("x".into()),
            Error::Unauthorized("x".into()),
            Error::Forbidden("x".into()),
            Error::NotFound,
            Error::conflict("a concurrent request changed the same data; retry"),
            Error::Conflict {
                slug: "out-of-stock",
                detail: "x".into(),
                extra: Some(retry),
            },
            Error::PreconditionFailed,
            Error::PayloadTooLarge,
            Error::RateLimited {
                retry_after_secs: 1,
            },
            Error::Unavailable("x".into()),
            Error::Internal(anyhow::anyhow!("x")),
        ] {
            assert!(!is_final(&e), "{e:?} must not be stored");
        }
    }

    #[test]
    fn request_hash_separates_method_path_and_body() {
        let b = crate::http::extract::sha256(b"{\"amount_idr\":5000}");
        let e = crate::http::extract::sha256(b"");
        let h = request_hash("POST", "/api/v1/wallets/a/topups", &b);
        assert_eq!(h, request_hash("POST", "/api/v1/wallets/a/topups", &b));
        assert_ne!(h, request_hash("PUT", "/api/v1/wallets/a/topups", &b));
        assert_ne!(h, request_hash("POST", "/api/v1/wallets/b/topups", &b));
        assert_ne!(h, request_hash("POST", "/api/v1/wallets/a/topups", &e));
        assert_ne!(h, request_hash("POST", "/api/v1/wallets/a/topups?x=1", &b));
    }

    #[test]
    fn request_from_http_uses_the_concrete_path() {
        let http = actix_web::test::TestRequest::post()
            .uri("/api/v1/orders/42/accept")
            .to_http_request();
        let body = crate::http::extract::sha256(b"");
        let user = Uuid::now_v7();
        let r = Request::new(
            user,
            IdempotencyKey("k".into()),
            "POST /orders/{id}/accept",
            &http,
            &body,
        );
        assert_eq!(r.caller, user);
        assert_eq!(r.key, "k");
        assert_eq!(
            r.request_hash,
            request_hash("POST", "/api/v1/orders/42/accept", &body)
        );
    }

    #[test]
    fn lock_ids_differ_by_caller_and_key() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        assert_eq!(lock_id(a, "k"), lock_id(a, "k"));
        assert_ne!(lock_id(a, "k"), lock_id(b, "k"));
        assert_ne!(lock_id(a, "k"), lock_id(a, "l"));
    }

    #[actix_web::test]
    async fn stored_responses_render_with_status_type_and_replay_header() {
        let body = serde_json::json!({"id": "t1", "balance_idr": 5000});
        let fresh = Stored {
            status: 201,
            body: body.clone(),
            replayed: false,
        }
        .into_response();
        assert_eq!(fresh.status().as_u16(), 201);
        assert!(!fresh.headers().contains_key(REPLAYED_HEADER));
        assert_eq!(
            fresh.headers().get("content-type").unwrap(),
            "application/json"
        );
        let bytes = actix_web::body::to_bytes(fresh.into_body()).await.unwrap();
        assert_eq!(serde_json::from_slice::<Value>(&bytes).unwrap(), body);

        let replay = Stored {
            status: 409,
            body: serde_json::json!({"type": "https://pasar.id/problems/insufficient-funds"}),
            replayed: true,
        }
        .into_response();
        assert_eq!(replay.status().as_u16(), 409);
        assert_eq!(replay.headers().get(REPLAYED_HEADER).unwrap(), "true");
        assert_eq!(
            replay.headers().get("content-type").unwrap(),
            "application/problem+json"
        );
    }
}
