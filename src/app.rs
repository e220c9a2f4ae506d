//! The one application constructor, used by `pasar serve` and by the tests (which bind port 0).

use std::net::TcpListener;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::{Compress, from_fn};
use actix_web::{App, HttpResponse, HttpServer, get, web};
use utoipa::OpenApi;
use utoipa_actix_web::{AppExt, scope};
use utoipa_swagger_ui::SwaggerUi;

use crate::config::Config;
use crate::db::{self, DbPool};
use crate::http::error::Result;
use crate::http::middleware::{self, TimeLimit};
use crate::identity::password::Hasher;
use crate::identity::ratelimit::LoginLimits;
use crate::identity::sessions::{SessionPolicy, successor_key as tokens_successor_key};
use crate::identity::tokens::TokenKeys;
use crate::state::AppState;
use crate::{aid, catalog, http, identity, ledger, orders, regions, reports, shops, villages};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "pasar",
        description = "Village marketplace API: BUMDes shops, escrowed double-entry ledger, local circulation. \
                       Errors are RFC 9457 problem+json; lists use cursor pagination (`limit`, `cursor`, `next_cursor`).",
        version = "0.1.0"
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "regions", description = "Official Kemendagri regions"),
        (name = "auth", description = "Login per village, token refresh, the signed-in user"),
        (name = "villages", description = "Onboarded villages, their members, settings and audit log"),
        (name = "networks", description = "Networks of villages that trade together"),
        (name = "bumdes", description = "Village-owned enterprises (BUMDes) and their units"),
        (name = "catalog", description = "Products, stock, search and offline sync"),
        (name = "shops", description = "Shops (lapak): application, approval, operators, delivery settings"),
        (name = "wallets", description = "Wallets, statements, top-ups and withdrawals (double-entry ledger)"),
        (name = "orders", description = "Checkout, the order state machine and escrow"),
        (name = "reports", description = "Village dashboards and networks' local circulation (LM3), from daily rollups"),
        (name = "ops", description = "Health, readiness and metrics"),
    )
)]
struct ApiDoc;

/// Declares the `bearer` security scheme the operations refer to.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Registers every API route; shared by the server and by `pasar openapi`.
fn api_scope() -> utoipa_actix_web::scope::Scope<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    scope("/api/v1")
        .configure(regions::routes::configure)
        .configure(identity::routes::configure)
        .configure(villages::routes::configure)
        .configure(shops::routes::configure)
        .configure(catalog::routes::configure)
        .configure(ledger::routes::configure)
        .configure(orders::routes::configure)
        .configure(aid::routes::configure)
        .configure(reports::routes::configure)
}

/// The OpenAPI document, as served at `/openapi.yaml` and printed by `pasar openapi`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, api) = App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .service(api_scope())
        .service(healthz)
        .service(readyz)
        .service(metrics)
        .split_for_parts();
    let mut api = api;
    http::openapi::complete(&mut api);
    api
}

pub fn openapi_yaml() -> String {
    openapi()
        .to_yaml()
        .expect("the OpenAPI document serializes")
}

pub struct Application {
    server: Server,
    port: u16,
    timers: Option<(DbPool, orders::timers::TimerPolicy)>,
}

impl Application {
    pub fn build(config: &Config, pool: DbPool) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(&config.bind)
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.bind))?;
        let port = listener.local_addr()?.port();
        let tokens = TokenKeys::new(
            &config.jwt_key_list()?,
            &config.jwt_issuer,
            &config.jwt_audience,
        )?;
        let state_pool = pool.clone();
        let state = AppState {
            pool,
            tokens: std::sync::Arc::new(tokens),
            hasher: Hasher::default(),
            login_limits: LoginLimits {
                per_phone: config.login_limit_phone,
                per_address: config.login_limit_ip,
                window_secs: config.login_window_secs,
            },
            sessions: SessionPolicy {
                reuse_grace_secs: config.refresh_reuse_grace_secs,
                max_age_days: config.session_max_days,
                successor_key: tokens_successor_key(&config.jwt_key_list()?),
            },
            trusted_proxies: config.trusted_proxies.clone(),
            orders: orders::Policy {
                platform_fee_bps: config.platform_fee_bps,
            },
            metrics_token: config
                .metrics_token
                .as_ref()
                .map(|t| http::extract::sha256(secrecy::ExposeSecret::expose_secret(t).as_bytes())),
        };
        let cors_origins = config.cors_origins.clone();
        let time_limit = TimeLimit(Duration::from_millis(config.request_timeout_ms));
        let api_doc = openapi();
        let yaml = api_doc.to_yaml().expect("the OpenAPI document serializes");
        let routes = web::Data::new(http::methods::Routes::from_openapi(&api_doc));
        let mut server = HttpServer::new(move || {
            let (app, mut api) = App::new()
                .into_utoipa_app()
                .openapi(ApiDoc::openapi())
                .app_data(web::Data::new(state.clone()))
                .app_data(web::Data::new(time_limit))
                .app_data(http::path_config())
                .app_data(http::query_config())
                .service(api_scope())
                .service(healthz)
                .service(readyz)
                .service(metrics)
                .split_for_parts();
            http::openapi::complete(&mut api);
            let yaml = yaml.clone();
            app.service(SwaggerUi::new("/docs/{_:.*}").url("/openapi.json", api))
                .route(
                    "/openapi.yaml",
                    web::get().to(move || {
                        let yaml = yaml.clone();
                        async move {
                            HttpResponse::Ok()
                                .content_type("application/yaml")
                                .body(yaml)
                        }
                    }),
                )
                .route(
                    "/docs",
                    web::get().to(|| async {
                        HttpResponse::PermanentRedirect()
                            .insert_header(("Location", "/docs/"))
                            .finish()
                    }),
                )
                .app_data(routes.clone())
                .default_service(web::to(http::methods::fallback))
                .wrap(http::middleware::problem_errors())
                .wrap(from_fn(middleware::csp))
                .wrap(http::middleware::security_headers())
                .wrap(actix_web::middleware::Condition::new(
                    !cors_origins.is_empty(),
                    http::middleware::cors(&cors_origins),
                ))
                .wrap(from_fn(middleware::time_limit))
                .wrap(from_fn(middleware::metrics))
                .wrap(Compress::default())
                .wrap(from_fn(middleware::request_id_header))
                .wrap(tracing_actix_web::TracingLogger::default())
        })
        .listen(listener)?
        .shutdown_timeout(20);
        if let Some(workers) = config.workers {
            server = server.workers(workers);
        }
        let timers = (config.timer_interval_ms > 0).then(|| {
            (
                state_pool,
                orders::timers::TimerPolicy {
                    expire_after: chrono::Duration::seconds(config.order_expire_secs),
                    complete_after: chrono::Duration::seconds(config.order_complete_secs),
                    interval: Duration::from_millis(config.timer_interval_ms),
                },
            )
        });
        Ok(Self {
            server: server.run(),
            port,
            timers,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Runs until SIGTERM/SIGINT, then drains in-flight requests (graceful shutdown). The order
    /// timers run beside it (when enabled).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let timers = self
            .timers
            .map(|(pool, policy)| actix_web::rt::spawn(orders::timers::run_forever(pool, policy)));
        let result = self.server.await;
        if let Some(t) = timers {
            t.abort();
        }
        result
    }
}

/// Liveness: the process answers; the database is not consulted.
#[utoipa::path(tag = "ops", responses((status = 200, description = "alive")))]
#[get("/healthz")]
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// Readiness: the database answers.
#[utoipa::path(
    tag = "ops",
    responses((status = 200, description = "ready"), (status = 503, body = crate::http::error::Problem, content_type = "application/problem+json"))
)]
#[get("/readyz")]
async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse> {
    db::run(&state.pool, |conn| {
        use diesel::RunQueryDsl;
        diesel::sql_query("SELECT 1").execute(conn)?;
        Ok(())
    })
    .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"status": "ready"})))
}

/// Prometheus metrics (text exposition format). With `PASAR_METRICS_TOKEN` set, only for
/// `Authorization: Bearer <token>`.
#[utoipa::path(tag = "ops", responses(
    (status = 200, description = "Prometheus text format", content_type = "text/plain"),
    (status = 401, body = crate::http::error::Problem, content_type = "application/problem+json", description = "a metrics token is configured and was not given"),
))]
#[get("/metrics")]
async fn metrics(state: web::Data<AppState>, req: actix_web::HttpRequest) -> Result<HttpResponse> {
    if let Some(expected) = state.metrics_token {
        let given = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| http::extract::sha256(t.as_bytes()));
        if given != Some(expected) {
            return Err(crate::http::error::Error::Unauthorized(
                "the metrics token is required".into(),
            ));
        }
    }
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(middleware::render_metrics()))
}
