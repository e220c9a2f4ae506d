//! The one error type of pasar, and its single mapping to RFC 9457 `application/problem+json`.
//!
//! Domain functions return [`Error`]; handlers return it unchanged; actix calls
//! [`ResponseError::error_response`] once. A 500 says nothing internal: the cause goes to the log.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
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
            _ => {}
        }
        res.json(self.problem())
    }
}

impl From<DieselError> for Error {
    fn from(e: DieselError) -> Self {
        match e {
            DieselError::NotFound => Error::NotFound,
            DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection, info) => {
                Error::Unavailable(info.message().to_string())
            }
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
                Error::conflict(format!(
                    "already exists ({})",
                    info.constraint_name().unwrap_or("unique")
                ))
            }
            DieselError::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => {
                Error::conflict("a concurrent request changed the same data; retry")
            }
            // Text with a NUL character, which PostgreSQL cannot store: the client's input.
            DieselError::DatabaseError(_, ref info)
                if info
                    .message()
                    .contains("invalid byte sequence for encoding") =>
            {
                Error::BadRequest("text may not contain NUL (\\u0000) characters".into())
            }
            DieselError::DatabaseError(_, ref info)
                if info
                    .message()
                    .contains("canceling statement due to statement timeout") =>
            {
                Error::Unavailable("statement timeout".into())
            }
            DieselError::DatabaseError(_, ref info)
                if info.message().contains("terminating connection")
                    || info.message().contains("server closed the connection")
                    || info.message().contains("connection")
                        && info.message().contains("closed") =>
            {
                Error::Unavailable(info.message().to_string())
            }
            other => Error::Internal(anyhow::Error::new(other)),
        }
    }
}

impl From<actix_web::error::BlockingError> for Error {
    fn from(_: actix_web::error::BlockingError) -> Self {
        Error::Unavailable("blocking thread pool is shut down".into())
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
