//! Thin shared HTTP layer: errors, extractors, pagination, middleware.

pub mod error;
pub mod extract;
pub mod middleware;
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
        let field = msg
            .find("unknown field `")
            .map(|i| {
                let rest = &msg[i + 15..];
                rest[..rest.find('`').unwrap_or(rest.len())].to_string()
            })
            .unwrap_or_else(|| "query".into());
        Error::Validation(vec![FieldError::new(
            field,
            format!("invalid query: {msg}"),
        )])
        .into()
    })
}
