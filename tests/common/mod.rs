//! Test harness: every test gets its own database, cloned from a template that was migrated and
//! loaded with regions once, and talks to a real server over HTTP on a random port.
#![allow(dead_code)]

pub mod fixtures;
pub mod money;
pub mod process;
pub mod proxy;

use std::sync::OnceLock;

use diesel::prelude::*;
use pasar::app::Application;
use pasar::config::Config;
use pasar::db::{self, DbPool};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Regions loaded into the template: DIY (the Pasardesa villages) and DKI Jakarta (elsewhere).
const REGION_PREFIXES: [&str; 2] = ["34", "31"];
pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123456789";

fn admin_url() -> String {
    let url = std::env::var("PASAR_TEST_DATABASE_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .expect("run the tests with scripts/test.sh, or set DATABASE_URL to a PostgreSQL server");
    without_tls_on_loopback(&url)
}

/// A loopback server gains nothing from TLS, and libpq's OpenSSL cleanup at process exit can
/// race the server threads a test leaves running (seen as a rare "double free" abort after a
/// test had passed): so tests talk plain TCP to 127.0.0.1 unless the URL asks otherwise.
fn without_tls_on_loopback(url: &str) -> String {
    let Ok(mut u) = url::Url::parse(url) else {
        return url.to_string();
    };
    let loopback = matches!(
        u.host_str(),
        Some("127.0.0.1" | "localhost" | "[::1]" | "::1")
    );
    if loopback && !u.query_pairs().any(|(k, _)| k == "sslmode") {
        u.query_pairs_mut().append_pair("sslmode", "disable");
    }
    u.to_string()
}

fn with_db(url: &str, db: &str) -> String {
    let mut u = url::Url::parse(url).expect("DATABASE_URL is a URL");
    u.set_path(&format!("/{db}"));
    u.to_string()
}

/// Name of the template for the current migrations and region set.
fn template_name() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        let mut h = Sha256::new();
        let mut files: Vec<_> = walk("migrations");
        files.sort();
        for f in files {
            h.update(f.as_bytes());
            h.update(std::fs::read(&f).expect("migration readable"));
        }
        h.update(REGION_PREFIXES.join(",").as_bytes());
        let digest = h.finalize();
        format!(
            "pasar_tpl_{}",
            digest
                .iter()
                .take(6)
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        )
    })
}

fn walk(dir: &str) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("migrations dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            out.extend(walk(path.to_str().expect("utf-8 path")));
        } else {
            out.push(path.to_string_lossy().into_owned());
        }
    }
    out
}

/// Builds the template once per migration set; serialized across test processes by an
/// advisory lock, published by renaming so a half-built template is never cloned.
fn ensure_template(admin: &mut PgConnection) {
    let name = template_name();
    diesel::sql_query("SELECT pg_advisory_lock(727274)")
        .execute(admin)
        .expect("lock");
    let exists = |admin: &mut PgConnection, n: &str| -> bool {
        diesel::select(diesel::dsl::sql::<diesel::sql_types::Bool>(&format!(
            "EXISTS (SELECT 1 FROM pg_database WHERE datname = '{n}')"
        )))
        .get_result(admin)
        .expect("query pg_database")
    };
    if !exists(admin, name) {
        let building = format!("{name}_building");
        diesel::sql_query(format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"))
            .execute(admin)
            .expect("drop half-built template");
        diesel::sql_query(format!("CREATE DATABASE {building}"))
            .execute(admin)
            .expect("create");
        {
            let mut conn = db::connect(&with_db(&admin_url(), &building)).expect("connect");
            db::migrate(&mut conn).expect("migrate template");
            let prefixes: Vec<String> = REGION_PREFIXES.iter().map(|s| s.to_string()).collect();
            let rows = pasar::regions::import::read_file(
                std::path::Path::new(pasar::regions::import::DEFAULT_FILE),
                &prefixes,
            )
            .expect("read regions");
            pasar::regions::import::import(&mut conn, &rows, None).expect("import regions");
        }
        diesel::sql_query(format!("ALTER DATABASE {building} RENAME TO {name}"))
            .execute(admin)
            .expect("publish template");
    }
    diesel::sql_query("SELECT pg_advisory_unlock(727274)")
        .execute(admin)
        .expect("unlock");
}

/// A database of one test; dropped (connections and all) when the test ends.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    pub fn new() -> Self {
        let admin = admin_url();
        let mut conn = db::connect(&admin).expect("connect to the admin database");
        ensure_template(&mut conn);
        let name = format!("pasar_test_{}", uuid::Uuid::now_v7().simple());
        diesel::sql_query(format!(
            "CREATE DATABASE {name} TEMPLATE {}",
            template_name()
        ))
        .execute(&mut conn)
        .expect("clone template");
        Self {
            url: with_db(&admin, &name),
            name,
        }
    }

    pub fn conn(&self) -> PgConnection {
        db::connect(&self.url).expect("connect to test database")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Ok(mut conn) = db::connect(&admin_url()) {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut conn);
        }
    }
}

pub fn test_config(database_url: &str) -> Config {
    Config {
        database_url: database_url.to_string(),
        bind: "127.0.0.1:0".into(),
        jwt_secret: Some(JWT_SECRET.to_string().into()),
        jwt_keys: None,
        jwt_issuer: "pasar".into(),
        jwt_audience: "pasar-api".into(),
        db_pool_size: 10,
        db_connect_timeout_ms: 1500,
        db_statement_timeout_ms: 10_000,
        db_lock_timeout_ms: 3_000,
        request_timeout_ms: 30_000,
        trusted_proxies: vec![],
        workers: Some(2),
        login_limit_phone: 10,
        login_limit_ip: 1000,
        login_window_secs: 900,
        refresh_reuse_grace_secs: 0,
        session_max_days: 90,
        platform_fee_bps: 0,
        order_expire_secs: 48 * 3600,
        order_complete_secs: 72 * 3600,
        timer_interval_ms: 0,
        cors_origins: vec![],
        metrics_token: None,
    }
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub pool: DbPool,
    pub config: Config,
    // Last, so the server's connections are gone before the database is dropped.
    pub db: TestDb,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    if std::env::var("TEST_LOG").is_ok() {
        pasar::telemetry::init("debug");
    }
    let db = tokio::task::spawn_blocking(TestDb::new)
        .await
        .expect("template/clone");
    let mut config = test_config(&db.url);
    tweak(&mut config);
    let pool = db::build_pool(&config.database_url, &config.pool());
    let app = Application::build(&config, pool.clone()).expect("build app");
    let base = format!("http://127.0.0.1:{}", app.port());
    actix_web::rt::spawn(app.run_until_stopped());
    TestApp {
        base,
        client: reqwest::Client::new(),
        pool,
        config,
        db,
    }
}

/// A response read whole: status, headers and JSON body (Null when empty or not JSON).
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the status, printing the body when it differs.
    #[track_caller]
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.body
        );
        self.body
    }

    /// Asserts a problem response of this status whose `type` ends with `slug`.
    #[track_caller]
    pub fn expect_problem(self, status: u16, slug: &str) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.body
        );
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "not a problem document: {}",
            self.body
        );
        let t = self.body["type"].as_str().unwrap_or_default();
        assert!(
            t.ends_with(&format!("/{slug}")),
            "problem type {t} is not {slug}: {}",
            self.body
        );
        self.body
    }
}

pub struct Req {
    builder: reqwest::RequestBuilder,
}

impl Req {
    pub fn token(mut self, token: &str) -> Self {
        self.builder = self.builder.bearer_auth(token);
        self
    }
    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.builder = self.builder.header(k, v);
        self
    }
    pub fn json(mut self, body: &Value) -> Self {
        self.builder = self.builder.json(body);
        self
    }
    pub fn raw(mut self, content_type: &str, body: impl Into<reqwest::Body>) -> Self {
        self.builder = self.builder.header("content-type", content_type).body(body);
        self
    }
    pub async fn send(self) -> Resp {
        let res = self.builder.send().await.expect("request sent");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.expect("body read");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            body,
        }
    }
}

impl TestApp {
    pub fn req(&self, method: Method, path: &str) -> Req {
        Req {
            builder: self
                .client
                .request(method, format!("{}{}", self.base, path)),
        }
    }
    pub fn get(&self, path: &str) -> Req {
        self.req(Method::GET, path)
    }
    pub fn post(&self, path: &str) -> Req {
        self.req(Method::POST, path)
    }
    pub fn patch(&self, path: &str) -> Req {
        self.req(Method::PATCH, path)
    }
    pub fn delete(&self, path: &str) -> Req {
        self.req(Method::DELETE, path)
    }

    /// Runs a closure on a connection to this test's database.
    pub fn with_conn<T>(&self, f: impl FnOnce(&mut PgConnection) -> T) -> T {
        let mut conn = self.db.conn();
        f(&mut conn)
    }
}
