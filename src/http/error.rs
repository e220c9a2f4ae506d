//! The one error type of pasar, and its single mapping to RFC 9457 `application/problem+json`.
//!
//! Domain functions return [`Error`]; handlers return it unchanged; actix calls
//! [`ResponseError::error_response`] once. A 500 says nothing internal: the cause goes to the log.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use diesel::result::{DatabaseErrorInformation, DatabaseErrorKind, Error as DieselError};
use serde::Serialize;
use utoipa::ToSchema;

/// Base of every problem `type` URI; the slug after it is stable.
pub const PROBLEM_BASE: &str = "https://pasar.id/problems/";

/// One invalid input field.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct FieldError {
    /// Path of the field in the request, e.g. `price_idr` or `lines[2].quantity`.
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Trims a text field and checks its length in characters (and that it has no control
/// characters but newlines), adding a field error when it does not fit.
pub fn text_field(
    field: &str,
    v: &str,
    min: usize,
    max: usize,
    errors: &mut Vec<FieldError>,
) -> String {
    let v = v.trim();
    let n = v.chars().count();
    if n < min || n > max || v.chars().any(|c| c.is_control() && c != '\n') {
        errors.push(FieldError::new(
            field,
            format!("{min} to {max} characters, no control characters"),
        ));
    }
    v.to_string()
}

/// RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Extra members for some problems (e.g. the failing product ids of `out-of-stock`).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub extra: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid input")]
    Validation(Vec<FieldError>),
    /// A request the server could not read (bad JSON, bad path or query parameter).
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("authentication required: {0}")]
    Unauthorized(String),
    /// Authenticated, allowed to see the object, but not to do this to it.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// Missing, or hidden from this caller (tenancy: never 403 for objects of another village).
    #[error("not found")]
    NotFound,
    /// A known path asked with a method it does not have; `allow` lists the ones it has.
    #[error("method not allowed")]
    MethodNotAllowed { allow: String },
    /// A state conflict; `slug` names the problem type (`conflict`, `out-of-stock`, …).
    #[error("conflict ({slug}): {detail}")]
    Conflict {
        slug: &'static str,
        detail: String,
        extra: Option<serde_json::Map<String, serde_json::Value>>,
    },
    /// The `Idempotency-Key` was used for another request (other operation or body): 422.
    #[error("idempotency key reused: {0}")]
    IdempotencyMismatch(String),
    #[error("precondition failed")]
    PreconditionFailed,
    #[error("precondition required: {0}")]
    PreconditionRequired(String),
    #[error("too many requests")]
    RateLimited { retry_after_secs: u64 },
    #[error("payload too large")]
    PayloadTooLarge,
    /// The database is unreachable or saturated; the client should retry.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A conflict that trying again may resolve (deadlock, serialization failure, a request
    /// with the same key still running).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Conflict { extra: Some(x), .. } if x.get("retryable") == Some(&serde_json::Value::Bool(true)))
    }

    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Validation(vec![FieldError::new(field, message)])
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Error::Conflict {
            slug: "conflict",
            detail: detail.into(),
            extra: None,
        }
    }

    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            Error::Validation(_) => (StatusCode::BAD_REQUEST, "validation", "Invalid input"),
            Error::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad-request", "Bad request"),
            Error::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized"),
            Error::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Forbidden"),
            Error::NotFound => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            Error::MethodNotAllowed { .. } => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
            ),
            Error::Conflict { slug, .. } => (StatusCode::CONFLICT, slug, "Conflict"),
            Error::IdempotencyMismatch(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-mismatch",
                "Idempotency key reused",
            ),
            Error::PreconditionFailed => (
                StatusCode::PRECONDITION_FAILED,
                "precondition-failed",
                "Precondition failed",
            ),
            Error::PreconditionRequired(_) => (
                StatusCode::PRECONDITION_REQUIRED,
                "precondition-required",
                "Precondition required",
            ),
            Error::RateLimited { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many requests",
            ),
            Error::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Payload too large",
            ),
            Error::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
            ),
            Error::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal server error",
            ),
        }
    }

    pub fn problem(&self) -> Problem {
        let (status, slug, title) = self.parts();
        let detail = match self {
            Error::Validation(errors) => {
                let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
                format!("invalid field(s): {}", fields.join(", "))
            }
            Error::BadRequest(d)
            | Error::Unauthorized(d)
            | Error::Forbidden(d)
            | Error::PreconditionRequired(d)
            | Error::IdempotencyMismatch(d) => d.clone(),
            Error::Conflict { detail, .. } => detail.clone(),
            Error::NotFound => "the resource does not exist or is not visible to you".into(),
            Error::MethodNotAllowed { allow } => format!("this path answers only {allow}"),
            Error::PreconditionFailed => {
                "the resource changed since you read it (If-Match is stale)".into()
            }
            Error::RateLimited { retry_after_secs } => {
                format!("too many attempts; retry after {retry_after_secs} s")
            }
            Error::PayloadTooLarge => "the request body is too large".into(),
            Error::Unavailable(_) => "the service is temporarily unavailable; retry shortly".into(),
            Error::Internal(_) => "an unexpected error occurred".into(),
        };
        Problem {
            type_: format!("{PROBLEM_BASE}{slug}"),
            title: title.into(),
            status: status.as_u16(),
            detail,
            errors: match self {
                Error::Validation(errors) => errors.clone(),
                _ => Vec::new(),
            },
            extra: match self {
                Error::Conflict { extra, .. } => extra.clone(),
                _ => None,
            },
        }
    }
}

impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        self.parts().0
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Error::Internal(e) => tracing::error!(error = ?e, "internal error"),
            Error::Unavailable(cause) => tracing::warn!(%cause, "service unavailable"),
            _ => {}
        }
        let mut res = HttpResponse::build(self.status_code());
        res.content_type("application/problem+json");
        match self {
            Error::RateLimited { retry_after_secs } => {
                res.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
            }
            Error::Unavailable(_) => {
                res.insert_header((header::RETRY_AFTER, HeaderValue::from_static("2")));
            }
            Error::MethodNotAllowed { allow } => {
                res.insert_header((header::ALLOW, allow.clone()));
            }
            _ => {}
        }
        res.json(self.problem())
    }
}

impl From<DieselError> for Error {
    fn from(e: DieselError) -> Self {
        match e {
            DieselError::NotFound => Error::NotFound,
            DieselError::DatabaseError(kind, info) => database_error(kind, info.as_ref())
                .unwrap_or_else(|| {
                    Error::Internal(anyhow::Error::new(DieselError::DatabaseError(kind, info)))
                }),
            other => Error::Internal(anyhow::Error::new(other)),
        }
    }
}

/// Conflict that is nobody's fault: the same request may well succeed when sent again. The
/// `retryable` member lets a client tell it from a conflict it must resolve itself.
fn retryable_conflict(detail: &str) -> Error {
    let mut extra = serde_json::Map::new();
    extra.insert("retryable".into(), serde_json::Value::Bool(true));
    Error::Conflict {
        slug: "conflict",
        detail: detail.into(),
        extra: Some(extra),
    }
}

/// Classifies an error PostgreSQL reported. `None`: a server bug (a 500, logged).
///
/// diesel names some SQLSTATEs as [`DatabaseErrorKind`]s and reports every other one as
/// `Unknown` without the code, so the rest is recognized by PostgreSQL's (English, stable)
/// primary message. Every error here aborted the statement, and with it the transaction:
/// nothing was written.
fn database_error(kind: DatabaseErrorKind, info: &dyn DatabaseErrorInformation) -> Option<Error> {
    let msg = info.message();
    let has = |s: &str| msg.contains(s);
    Some(match kind {
        DatabaseErrorKind::ClosedConnection => Error::Unavailable(msg.to_string()),
        DatabaseErrorKind::UniqueViolation => Error::conflict(format!(
            "already exists ({})",
            info.constraint_name().unwrap_or("unique")
        )),
        // 40001, also "canceling statement due to conflict with recovery" on a standby.
        DatabaseErrorKind::SerializationFailure => {
            retryable_conflict("a concurrent request changed the same data; retry")
        }
        // Connected to a standby (a failover is under way): writes succeed once we reconnect.
        DatabaseErrorKind::ReadOnlyTransaction => Error::Unavailable(msg.to_string()),
        // Business rules are checked before writing; a violation reaching the database is
        // input the checks missed (400) or a race with a concurrent change (409).
        DatabaseErrorKind::CheckViolation => Error::Validation(vec![FieldError::new(
            check_field(info),
            format!(
                "value not allowed (rule {})",
                info.constraint_name().unwrap_or("check")
            ),
        )]),
        DatabaseErrorKind::NotNullViolation => Error::Validation(vec![FieldError::new(
            info.column_name().unwrap_or("body"),
            "required",
        )]),
        // Insert or update referring to a row that is gone (deleted meanwhile), or delete of a
        // row still referred to: both conflict with the current state.
        DatabaseErrorKind::ForeignKeyViolation | DatabaseErrorKind::RestrictViolation => {
            Error::conflict(if has("still referenced") || has("update or delete on") {
                format!(
                    "still in use ({})",
                    info.constraint_name().unwrap_or("reference")
                )
            } else {
                format!(
                    "refers to something that does not exist ({})",
                    info.constraint_name().unwrap_or("reference")
                )
            })
        }
        DatabaseErrorKind::ExclusionViolation => Error::conflict(format!(
            "overlaps an existing entry ({})",
            info.constraint_name().unwrap_or("exclusion")
        )),
        // 40P01: PostgreSQL aborted one of the transactions to break the cycle; the other went on.
        _ if has("deadlock detected") => {
            retryable_conflict("a concurrent request locked the same data; retry")
        }
        // 55P03 (lock_timeout, NOWAIT): another transaction holds the rows this write needs.
        // 503 with Retry-After rather than 409: nothing about the resource conflicts with the
        // request, the server was too busy to serve it in time (as with statement_timeout),
        // and clients and proxies already retry 503 with a back-off.
        _ if has("canceling statement due to lock timeout") || has("could not obtain lock") => {
            Error::Unavailable("lock timeout".into())
        }
        _ if has("canceling statement due to statement timeout") => {
            Error::Unavailable("statement timeout".into())
        }
        // 57014 from pg_cancel_backend, 57P01 from a shutdown or pg_terminate_backend.
        _ if has("canceling statement due to user request")
            || has("terminating connection")
            || has("server closed the connection")
            || has("connection") && has("closed") =>
        {
            Error::Unavailable(msg.to_string())
        }
        // Text with a NUL character, which PostgreSQL cannot store (in text or in jsonb): the
        // client's input.
        _ if has("invalid byte sequence for encoding")
            || has("unsupported Unicode escape sequence") =>
        {
            Error::BadRequest("text may not contain NUL (\\u0000) characters".into())
        }
        // Class 22 data exceptions and size limits: a value from the request the column or
        // the computation cannot hold.
        _ if has("out of range")
            || has("field overflow")
            || has("invalid input syntax")
            || has("invalid input value")
            || has("value too long for type")
            || has("index row size")
            || has("index row requires") =>
        {
            Error::BadRequest(format!("a value cannot be stored: {msg}"))
        }
        _ => return None,
    })
}

/// The column of a violated check constraint when its name is PostgreSQL's default for a column
/// constraint (`{table}_{column}_check`), else `body`.
fn check_field(info: &dyn DatabaseErrorInformation) -> String {
    let column = info.constraint_name().and_then(|c| {
        let c = c.strip_prefix(info.table_name()?)?.strip_prefix('_')?;
        let c = c.trim_end_matches(|ch: char| ch.is_ascii_digit());
        c.strip_suffix("_check").filter(|col| !col.is_empty())
    });
    column.unwrap_or("body").to_string()
}

/// actix reports a closure that panicked on the blocking pool the same way as a pool that is
/// shut down; the panic is the case that happens (a bug, already printed by the panic hook), so
/// 500: a 503 would invite the client to retry into the same panic.
impl From<actix_web::error::BlockingError> for Error {
    fn from(_: actix_web::error::BlockingError) -> Self {
        Error::Internal(anyhow::anyhow!(
            "a task on the blocking pool panicked (or the pool is shut down)"
        ))
    }
}

/// Maps a named unique or foreign-key violation to a domain error (insert and let the index
/// decide, never check-then-insert); anything else goes through `From<DieselError>`.
pub fn on_constraint(e: DieselError, map: impl Fn(&str) -> Option<Error>) -> Error {
    if let DieselError::DatabaseError(
        DatabaseErrorKind::UniqueViolation | DatabaseErrorKind::ForeignKeyViolation,
        ref info,
    ) = e
        && let Some(mapped) = info.constraint_name().and_then(&map)
    {
        return mapped;
    }
    Error::from(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What PostgreSQL reports, as diesel hands it over.
    #[derive(Default)]
    struct Reported {
        message: &'static str,
        table: Option<&'static str>,
        column: Option<&'static str>,
        constraint: Option<&'static str>,
    }

    impl DatabaseErrorInformation for Reported {
        fn message(&self) -> &str {
            self.message
        }
        fn details(&self) -> Option<&str> {
            None
        }
        fn hint(&self) -> Option<&str> {
            None
        }
        fn table_name(&self) -> Option<&str> {
            self.table
        }
        fn column_name(&self) -> Option<&str> {
            self.column
        }
        fn constraint_name(&self) -> Option<&str> {
            self.constraint
        }
        fn statement_position(&self) -> Option<i32> {
            None
        }
    }

    fn map(kind: DatabaseErrorKind, r: Reported) -> Error {
        Error::from(DieselError::DatabaseError(kind, Box::new(r)))
    }

    fn unknown(message: &'static str) -> Error {
        map(
            DatabaseErrorKind::Unknown,
            Reported {
                message,
                ..Default::default()
            },
        )
    }

    fn status(e: &Error) -> u16 {
        e.status_code().as_u16()
    }

    fn is_retryable(e: &Error) -> bool {
        e.is_retryable()
    }

    #[test]
    fn concurrency_failures_are_retryable_conflicts() {
        let deadlock = unknown("deadlock detected");
        assert_eq!(status(&deadlock), 409);
        assert!(is_retryable(&deadlock), "{deadlock:?}");
        let serialization = map(
            DatabaseErrorKind::SerializationFailure,
            Reported {
                message: "could not serialize access due to concurrent update",
                ..Default::default()
            },
        );
        assert_eq!(status(&serialization), 409);
        assert!(is_retryable(&serialization));
        // An ordinary conflict is not retryable: sending it again fails again.
        let unique = map(
            DatabaseErrorKind::UniqueViolation,
            Reported {
                message: "duplicate key value violates unique constraint \"users_phone_key\"",
                constraint: Some("users_phone_key"),
                ..Default::default()
            },
        );
        assert_eq!(status(&unique), 409);
        assert!(!is_retryable(&unique));
        assert!(unique.problem().detail.contains("users_phone_key"));
    }

    #[test]
    fn timeouts_and_standbys_are_503_with_retry_after() {
        for e in [
            unknown("canceling statement due to lock timeout"),
            unknown("could not obtain lock on row in relation \"products\""),
            unknown("canceling statement due to statement timeout"),
            unknown("canceling statement due to user request"),
            unknown("terminating connection due to administrator command"),
            map(
                DatabaseErrorKind::ReadOnlyTransaction,
                Reported {
                    message: "cannot execute UPDATE in a read-only transaction",
                    ..Default::default()
                },
            ),
            map(
                DatabaseErrorKind::ClosedConnection,
                Reported {
                    message: "server closed the connection unexpectedly",
                    ..Default::default()
                },
            ),
        ] {
            assert!(matches!(e, Error::Unavailable(_)), "{e:?}");
            let res = e.error_response();
            assert_eq!(res.status().as_u16(), 503);
            assert!(res.headers().contains_key(header::RETRY_AFTER), "{e:?}");
        }
    }

    #[test]
    fn constraint_violations_are_client_errors_naming_the_field() {
        let e = map(
            DatabaseErrorKind::CheckViolation,
            Reported {
                message: "new row for relation \"products\" violates check constraint \"products_price_idr_check\"",
                table: Some("products"),
                constraint: Some("products_price_idr_check"),
                ..Default::default()
            },
        );
        assert_eq!(status(&e), 400);
        assert_eq!(e.problem().errors[0].field, "price_idr");
        // A table constraint (`products_check1`) names no column.
        let e = map(
            DatabaseErrorKind::CheckViolation,
            Reported {
                message: "new row for relation \"products\" violates check constraint \"products_check1\"",
                table: Some("products"),
                constraint: Some("products_check1"),
                ..Default::default()
            },
        );
        assert_eq!(status(&e), 400);
        assert_eq!(e.problem().errors[0].field, "body");
        let e = map(
            DatabaseErrorKind::NotNullViolation,
            Reported {
                message: "null value in column \"unit\" of relation \"products\" violates not-null constraint",
                table: Some("products"),
                column: Some("unit"),
                ..Default::default()
            },
        );
        assert_eq!(status(&e), 400);
        assert_eq!(e.problem().errors[0].field, "unit");
        let gone = map(
            DatabaseErrorKind::ForeignKeyViolation,
            Reported {
                message: "insert or update on table \"products\" violates foreign key constraint \"products_shop_id_fkey\"",
                constraint: Some("products_shop_id_fkey"),
                ..Default::default()
            },
        );
        assert_eq!(status(&gone), 409);
        assert!(gone.problem().detail.contains("does not exist"), "{gone:?}");
        let in_use = map(
            DatabaseErrorKind::ForeignKeyViolation,
            Reported {
                message: "update or delete on table \"shops\" violates foreign key constraint \"products_shop_id_fkey\" on table \"products\"",
                constraint: Some("products_shop_id_fkey"),
                ..Default::default()
            },
        );
        assert_eq!(status(&in_use), 409);
        assert!(
            in_use.problem().detail.contains("still in use"),
            "{in_use:?}"
        );
    }

    #[test]
    fn data_exceptions_are_400() {
        for message in [
            "integer out of range",
            "bigint out of range",
            "value \"99999999999\" is out of range for type integer",
            "timestamp out of range",
            "date/time field value out of range: \"2024-13-01\"",
            "numeric field overflow",
            "invalid input syntax for type uuid: \"nope\"",
            "invalid input value for enum shop_status: \"x\"",
            "value too long for type character varying(20)",
            "index row size 2720 exceeds btree version 4 maximum 2704 for index \"products_name_idx\"",
        ] {
            let e = unknown(message);
            assert!(matches!(e, Error::BadRequest(_)), "{message}: {e:?}");
        }
        for message in [
            "invalid byte sequence for encoding \"UTF8\": 0x00",
            "unsupported Unicode escape sequence",
        ] {
            let e = unknown(message);
            assert!(e.problem().detail.contains("NUL"), "{message}: {e:?}");
        }
    }

    #[test]
    fn anything_else_is_an_internal_error() {
        for message in [
            "relation \"nope\" does not exist",
            "division by zero",
            "syntax error at or near \"SELEC\"",
        ] {
            let e = unknown(message);
            assert!(matches!(e, Error::Internal(_)), "{message}: {e:?}");
            assert_eq!(e.problem().detail, "an unexpected error occurred");
        }
        assert!(matches!(
            Error::from(DieselError::NotFound),
            Error::NotFound
        ));
        assert!(matches!(
            Error::from(DieselError::RollbackTransaction),
            Error::Internal(_)
        ));
    }

    #[actix_rt::test]
    async fn a_panic_on_the_blocking_pool_is_an_internal_error() {
        let e: Error = actix_web::web::block(|| -> () { panic!("overflow, say") })
            .await
            .unwrap_err()
            .into();
        assert!(matches!(e, Error::Internal(_)), "{e:?}");
    }
}
