//! Middleware: request time limit, Prometheus metrics, request id header, and a last-resort
//! handler that turns actix's plain-text errors (unknown route, wrong method) into problems.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers, Next};
use actix_web::{HttpMessage, HttpResponse};
use prometheus::{HistogramVec, IntCounterVec, register_histogram_vec, register_int_counter_vec};
use tracing_actix_web::RequestId;

use super::error::Error;

static HTTP_REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "pasar_http_requests_total",
        "HTTP requests by method, route and status",
        &["method", "route", "status"]
    )
    .expect("metric registers once")
});

static HTTP_DURATION: LazyLock<HistogramVec> = LazyLock::new(|| {
    register_histogram_vec!(
        "pasar_http_request_duration_seconds",
        "HTTP request latency by method and route",
        &["method", "route"],
        vec![
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0
        ]
    )
    .expect("metric registers once")
});

/// Counts and times every request by its route pattern (never the raw path: ids would explode
/// the label set).
pub async fn metrics(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let start = Instant::now();
    let method = req.method().to_string();
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
    let res = next.call(req).await?;
    let status = res.status().as_u16().to_string();
    HTTP_REQUESTS
        .with_label_values(&[&method, &route, &status])
        .inc();
    HTTP_DURATION
        .with_label_values(&[&method, &route])
        .observe(start.elapsed().as_secs_f64());
    Ok(res)
}

/// Renders the default registry in the Prometheus text format.
pub fn render_metrics() -> String {
    LazyLock::force(&HTTP_REQUESTS);
    LazyLock::force(&HTTP_DURATION);
    let encoder = prometheus::TextEncoder::new();
    encoder
        .encode_to_string(&prometheus::gather())
        .unwrap_or_default()
}

/// Copies the request id that tracing-actix-web gave the request into `X-Request-Id`, so a
/// client can quote it and we can find the log lines.
pub async fn request_id_header(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = req.extensions().get::<RequestId>().copied();
    let mut res = next.call(req).await?;
    if let Some(id) = id
        && let Ok(value) = HeaderValue::from_str(&id.to_string())
    {
        res.headers_mut()
            .insert(HeaderName::from_static("x-request-id"), value);
    }
    Ok(res)
}

/// How long a read may take (app data, set from the configuration).
#[derive(Debug, Clone, Copy)]
pub struct TimeLimit(pub Duration);

/// Bounds the time a read (a safe method: GET, HEAD, OPTIONS) may take; past it the client gets 503 with
/// `Retry-After` (an error returned by middleware becomes its problem response).
///
/// Writes are not timed here: dropping the handler's future does not stop the diesel
/// transaction running on the blocking pool, which would commit after the client was told 503,
/// and its retry would write twice. A write is bounded by the database instead
/// (`statement_timeout` and `lock_timeout`, both below this limit): it either commits and is
/// answered, or is rolled back and answered an error.
pub async fn time_limit(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if !req.method().is_safe() {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    }
    let limit = req
        .app_data::<actix_web::web::Data<TimeLimit>>()
        .map(|l| l.0)
        .unwrap_or(Duration::from_secs(30));
    match tokio::time::timeout(limit, next.call(req)).await {
        Ok(res) => res.map(ServiceResponse::map_into_boxed_body),
        Err(_) => Err(Error::Unavailable("request time limit reached".into()).into()),
    }
}

/// Any error response that is not already a problem document becomes one with the same status.
pub fn problem_errors<B: MessageBody + 'static>() -> ErrorHandlers<B> {
    ErrorHandlers::new().default_handler(|res: ServiceResponse<B>| {
        let is_problem = res
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
        if is_problem {
            return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
        }
        let status = res.status();
        let err = match status.as_u16() {
            404 => Error::NotFound,
            405 => Error::BadRequest("method not allowed on this resource".into()),
            413 => Error::PayloadTooLarge,
            s if s >= 500 => Error::Internal(anyhow::anyhow!("unhandled {status}")),
            _ => Error::BadRequest(status.canonical_reason().unwrap_or("bad request").into()),
        };
        let mut problem = err.problem();
        problem.status = status.as_u16();
        let (req, _) = res.into_parts();
        let new = HttpResponse::build(status)
            .content_type("application/problem+json")
            .json(problem);
        Ok(ErrorHandlerResponse::Response(
            ServiceResponse::new(req, new).map_into_right_body(),
        ))
    })
}

/// Headers every response carries: no MIME sniffing, no referrer leaving the site, no framing,
/// and a Content-Security-Policy — `default-src 'none'` for API documents (JSON is never a
/// page), and for the pages (`/docs`) only what the embedded Swagger UI needs from this origin.
pub fn security_headers() -> actix_web::middleware::DefaultHeaders {
    actix_web::middleware::DefaultHeaders::new()
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::REFERRER_POLICY, "no-referrer"))
        .add((header::X_FRAME_OPTIONS, "DENY"))
}

/// The Content-Security-Policy of a path (see [`security_headers`]).
pub fn content_security_policy(path: &str) -> &'static str {
    if path == "/docs" || path.starts_with("/docs/") {
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
         script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    } else {
        "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    }
}

/// Sets the path's Content-Security-Policy unless the handler chose one.
pub async fn csp(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let policy = content_security_policy(req.path());
    let mut res = next.call(req).await?;
    if !res.headers().contains_key(header::CONTENT_SECURITY_POLICY) {
        res.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(policy),
        );
    }
    Ok(res)
}

/// CORS for the configured origins (a dashboard on another host): the methods and headers the
/// API uses, and the response headers a client needs to read (ETag, Retry-After, replays).
pub fn cors(origins: &[String]) -> actix_cors::Cors {
    let mut cors = actix_cors::Cors::default()
        .allowed_methods(["GET", "POST", "PATCH", "DELETE"])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            header::IF_MATCH,
            header::IF_NONE_MATCH,
            HeaderName::from_static("idempotency-key"),
        ])
        .expose_headers([
            header::ETAG,
            header::RETRY_AFTER,
            HeaderName::from_static("idempotency-replayed"),
            HeaderName::from_static("x-request-id"),
        ])
        .max_age(3600);
    for o in origins {
        cors = cors.allowed_origin(o);
    }
    cors
}
