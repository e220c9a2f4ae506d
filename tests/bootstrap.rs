//! A fresh install, the way an operator does it: a brand-new empty database, the real `pasar`
//! binary for `migrate`, `regions import`, `admin create` and `serve`, and then the whole
//! bootstrap over HTTP, from the platform admin's first login (no village exists yet) to a
//! product anyone can read. Nothing here uses the test template or calls the library directly
//! on the database, so it catches what the in-process tests cannot: a first step that only
//! works once some village has been onboarded.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use rand::Rng;
use serde_json::{Value, json};

const VILLAGE: &str = "34.02.15.2004";
const ROOT_PHONE: &str = "+6281100000009";
const ROOT_PASSWORD: &str = "root-sandi-rahasia-2026";
const ADMIN_PHONE: &str = "+6281100000010";
const ADMIN_PASSWORD: &str = "sandi-lurah-2026";
const MEMBER_PHONE: &str = "+6281100000011";
const MEMBER_PASSWORD: &str = "sandi-tani-2026";

fn admin_url() -> String {
    std::env::var("PASAR_TEST_DATABASE_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .expect("set PASAR_TEST_DATABASE_URL (or DATABASE_URL) to a PostgreSQL server")
}

/// A new, empty database (not a clone of the test template: a real install starts with
/// nothing); dropped, connections and all, when the test ends, also on panic.
struct FreshDb {
    name: String,
    url: String,
}

impl FreshDb {
    fn create() -> Self {
        let admin = admin_url();
        // The `pasar_test_` prefix lets scripts/test.sh sweep it if a killed run leaks it.
        let name = format!("pasar_test_boot_{}", uuid::Uuid::now_v7().simple());
        let mut conn = pasar::db::connect(&admin).expect("connect to the admin database");
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .expect("create the fresh database");
        let mut url = url::Url::parse(&admin).expect("admin URL is a URL");
        url.set_path(&format!("/{name}"));
        Self {
            name,
            url: url.to_string(),
        }
    }
}

impl Drop for FreshDb {
    fn drop(&mut self) {
        if let Ok(mut conn) = pasar::db::connect(&admin_url()) {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut conn);
        }
    }
}

/// The `pasar` binary, run from the crate root (the default regions file is relative to it),
/// without any `DATABASE_URL` or `PASAR_*` of the test's own environment leaking in.
fn pasar(db: &FreshDb) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pasar"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    for (k, _) in std::env::vars_os() {
        if k == "DATABASE_URL" || k.to_string_lossy().starts_with("PASAR_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("DATABASE_URL", &db.url).stdin(Stdio::null());
    cmd
}

/// Runs a CLI command to completion; panics with its output unless it succeeded.
#[track_caller]
fn run_ok(mut cmd: Command, what: &str) -> String {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("spawn pasar");
    let stdout = String::from_utf8_lossy(&stdout).into_owned();
    assert!(
        status.success(),
        "`{what}` failed ({status})\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&stderr)
    );
    stdout
}

/// The `pasar serve` child: killed when the test ends, also on panic, and its log printed when
/// the test failed.
struct Server {
    child: Child,
    log: PathBuf,
}

impl Server {
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let start = text.len().saturating_sub(8000);
        let start = (start..text.len())
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(0);
        text[start..].to_string()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- pasar serve log (tail) ---\n{}", self.log_tail());
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

fn free_port() -> u16 {
    // Bound and released at once; the server binds it a moment later.
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind port 0")
        .local_addr()
        .expect("local addr")
        .port()
}

fn random_secret() -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(48)
        .map(char::from)
        .collect()
}

struct Resp {
    status: u16,
    content_type: String,
    body: Value,
}

impl Resp {
    #[track_caller]
    fn expect(self, status: u16, step: &str) -> Value {
        assert_eq!(
            self.status, status,
            "{step}: expected {status}, got {}; body: {}",
            self.status, self.body
        );
        self.body
    }
}

struct Api {
    base: String,
    client: reqwest::Client,
}

impl Api {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request sent");
        let status = res.status().as_u16();
        let content_type = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let bytes = res.bytes().await.expect("body read");
        Resp {
            status,
            content_type,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        self.call(reqwest::Method::GET, path, token, None).await
    }

    async fn post(&self, path: &str, token: Option<&str>, body: impl Into<Option<Value>>) -> Resp {
        self.call(reqwest::Method::POST, path, token, body.into())
            .await
    }

    /// Logs in to a village: the access token.
    async fn login(&self, phone: &str, password: &str, village: &str) -> String {
        let body = self
            .post(
                "/api/v1/auth/login",
                None,
                json!({"phone": phone, "password": password, "village_code": village}),
            )
            .await
            .expect(200, &format!("login of {phone} to {village}"));
        body["access_token"].as_str().expect("access_token").into()
    }
}

/// A login without a village must be refused for a user who is not a platform admin: 401, or
/// 400 naming `village_code`, as problem+json (never a token, never a 500).
#[track_caller]
fn assert_refused_without_village(r: Resp, case: &str) {
    assert_eq!(
        r.content_type, "application/problem+json",
        "{case}: not a problem document ({}): {}",
        r.status, r.body
    );
    let t = r.body["type"].as_str().unwrap_or_default();
    let ok = match r.status {
        401 => t.ends_with("/unauthorized"),
        400 => {
            t.ends_with("/validation")
                && r.body["errors"]
                    .as_array()
                    .is_some_and(|e| e.iter().any(|e| e["field"] == "village_code"))
        }
        _ => false,
    };
    assert!(
        ok,
        "{case}: expected 401 unauthorized or 400 validation of village_code, got {}: {}",
        r.status, r.body
    );
}

#[actix_rt::test]
async fn fresh_install_bootstrap_from_an_empty_database() {
    let started = Instant::now();
    let db = FreshDb::create();

    // 1. The operator's commands, in README order.
    let migrations = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .expect("migrations dir")
        .filter(|e| e.as_ref().is_ok_and(|e| e.path().join("up.sql").exists()))
        .count();
    let mut cmd = pasar(&db);
    cmd.arg("migrate");
    let out = run_ok(cmd, "pasar migrate");
    assert!(
        out.starts_with(&format!("applied {migrations} migration(s)")),
        "an empty database gets every migration ({migrations}): {out}"
    );

    let expected_regions = pasar::regions::import::read_file(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(pasar::regions::import::DEFAULT_FILE),
        &["34".to_string()],
    )
    .expect("read the shipped regions")
    .len();
    let mut cmd = pasar(&db);
    cmd.args(["regions", "import", "--only", "34"]);
    let out = run_ok(cmd, "pasar regions import --only 34");
    assert!(
        out.starts_with(&format!("imported {expected_regions} regions")),
        "expected {expected_regions} regions of DIY: {out}"
    );

    let mut cmd = pasar(&db);
    cmd.args(["admin", "create", "--phone", ROOT_PHONE, "--name", "Root"])
        .env("PASAR_ADMIN_PASSWORD", ROOT_PASSWORD);
    let out = run_ok(cmd, "pasar admin create");
    assert!(
        out.contains(&format!("created platform admin Root ({ROOT_PHONE})")),
        "{out}"
    );

    // 2. The server, as a child process on a free port.
    let port = free_port();
    let log = std::env::temp_dir().join(format!("{}.log", db.name));
    let log_file = File::create(&log).expect("server log file");
    let mut cmd = pasar(&db);
    cmd.args(["serve", "--no-migrate"])
        .env("PASAR_BIND", format!("127.0.0.1:{port}"))
        .env("PASAR_JWT_SECRET", random_secret())
        .env("PASAR_WORKERS", "2")
        .env("PASAR_DB_POOL_SIZE", "4")
        .stdout(log_file.try_clone().expect("log file"))
        .stderr(log_file);
    let mut server = Server {
        child: cmd.spawn().expect("spawn pasar serve"),
        log,
    };
    let api = Api {
        base: format!("http://127.0.0.1:{port}"),
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("http client"),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = server.child.try_wait().expect("poll the server") {
            panic!(
                "pasar serve exited ({status}) before it was ready:\n{}",
                server.log_tail()
            );
        }
        let ready = api
            .client
            .get(format!("{}/readyz", api.base))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200);
        if ready {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "pasar serve not ready within 30 s:\n{}",
            server.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The premise: regions of DIY only, and no village onboarded yet.
    let region = api
        .get(&format!("/api/v1/regions/{VILLAGE}"), None)
        .await
        .expect(200, "the imported village region");
    assert_eq!(region["name"], "Panggungharjo");
    api.get("/api/v1/regions/31.71", None)
        .await
        .expect(404, "a region outside --only 34");
    let villages = api
        .get("/api/v1/villages", None)
        .await
        .expect(200, "list villages");
    assert_eq!(
        villages["items"],
        json!([]),
        "a fresh install has no village"
    );

    // 3. The platform admin logs in without a village: there is none to log in to yet.
    let mut pair = Value::Null;
    for (case, body) in [
        (
            "village_code omitted",
            json!({"phone": ROOT_PHONE, "password": ROOT_PASSWORD}),
        ),
        (
            "village_code null",
            json!({"phone": ROOT_PHONE, "password": ROOT_PASSWORD, "village_code": null}),
        ),
    ] {
        let r = api.post("/api/v1/auth/login", None, body).await;
        assert_eq!(
            r.status, 200,
            "FRESH-INSTALL DEFECT: the platform admin cannot log in without a village \
             ({case}), and on a fresh install no village exists to log in to, so nothing can \
             ever be onboarded; got {}: {}",
            r.status, r.body
        );
        pair = r.body;
    }
    assert_eq!(pair["token_type"], "Bearer");
    assert_eq!(pair["expires_in"], 900);
    assert!(
        pair["refresh_token"]
            .as_str()
            .is_some_and(|t| t.len() >= 40)
    );
    let root = pair["access_token"]
        .as_str()
        .expect("access_token")
        .to_string();
    let me = api
        .get("/api/v1/me", Some(&root))
        .await
        .expect(200, "/me of the platform token");
    assert_eq!(me["phone"], ROOT_PHONE);
    assert_eq!(me["name"], "Root");
    assert_eq!(me["village_code"], Value::Null, "platform-scoped: {me}");
    assert_eq!(me["roles"], json!(["platform_admin"]));
    assert_eq!(me["shops"], json!([]));
    // The refresh token of a platform session refreshes into a platform session.
    let pair = api
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": pair["refresh_token"]}),
        )
        .await
        .expect(200, "refresh of the platform session");
    let refreshed = pair["access_token"].as_str().expect("access_token");
    let me = api
        .get("/api/v1/me", Some(refreshed))
        .await
        .expect(200, "/me after refresh");
    assert_eq!(
        me["village_code"],
        Value::Null,
        "still platform-scoped: {me}"
    );
    assert_eq!(me["roles"], json!(["platform_admin"]));

    // 4. Onboard the village and appoint its first admin.
    let village = api
        .post("/api/v1/villages", Some(&root), json!({"code": VILLAGE}))
        .await
        .expect(201, "onboard the village");
    assert_eq!(village["code"], VILLAGE);
    assert_eq!(village["name"], "Panggungharjo");
    let admin = api
        .post(
            &format!("/api/v1/villages/{VILLAGE}/members"),
            Some(&root),
            json!({"phone": ADMIN_PHONE, "name": "Bu Lurah", "password": ADMIN_PASSWORD,
                   "roles": ["admin"]}),
        )
        .await
        .expect(201, "appoint the village's first admin");
    assert_eq!(admin["village_code"], VILLAGE);
    assert_eq!(admin["roles"], json!(["admin"]));

    // 5. A user who is not a platform admin still needs a village to log in.
    for (case, body) in [
        (
            "village admin, village_code omitted",
            json!({"phone": ADMIN_PHONE, "password": ADMIN_PASSWORD}),
        ),
        (
            "village admin, village_code null",
            json!({"phone": ADMIN_PHONE, "password": ADMIN_PASSWORD, "village_code": null}),
        ),
    ] {
        let r = api.post("/api/v1/auth/login", None, body).await;
        assert_refused_without_village(r, case);
    }

    // 6. The village admin adds a member; the member applies for a shop; the admin approves.
    let admin_token = api.login(ADMIN_PHONE, ADMIN_PASSWORD, VILLAGE).await;
    let me = api
        .get("/api/v1/me", Some(&admin_token))
        .await
        .expect(200, "/me of the village admin");
    assert_eq!(me["village_code"], VILLAGE);
    assert_eq!(me["roles"], json!(["admin"]));
    api.post(
        &format!("/api/v1/villages/{VILLAGE}/members"),
        Some(&admin_token),
        json!({"phone": MEMBER_PHONE, "name": "Pak Tani", "password": MEMBER_PASSWORD,
               "roles": ["member"]}),
    )
    .await
    .expect(201, "the village admin adds a member");
    let member_token = api.login(MEMBER_PHONE, MEMBER_PASSWORD, VILLAGE).await;
    let shop = api
        .post(
            &format!("/api/v1/villages/{VILLAGE}/shops"),
            Some(&member_token),
            json!({"name": "Beras Pak Tani", "description": "Beras menthik wangi",
                   "kind": "umkm"}),
        )
        .await
        .expect(201, "the member applies for a shop");
    assert_eq!(shop["status"], "pending");
    assert_eq!(shop["village_code"], VILLAGE);
    let shop_id = shop["id"].as_str().expect("shop id").to_string();
    let shop = api
        .post(
            &format!("/api/v1/shops/{shop_id}/approve"),
            Some(&admin_token),
            None,
        )
        .await
        .expect(200, "the village admin approves the shop");
    assert_eq!(shop["status"], "active");

    // 7. The member, logged in again, operates the shop and lists a product anyone can read.
    let member_token = api.login(MEMBER_PHONE, MEMBER_PASSWORD, VILLAGE).await;
    let me = api
        .get("/api/v1/me", Some(&member_token))
        .await
        .expect(200, "/me of the member");
    assert_eq!(me["roles"], json!(["member"]));
    assert_eq!(me["shops"], json!([shop_id]));
    let product = api
        .post(
            &format!("/api/v1/shops/{shop_id}/products"),
            Some(&member_token),
            json!({"name": "Beras Menthik Wangi 5 kg", "category": "beras-palawija",
                   "unit": "karung", "price_idr": 85_000, "stock": 20}),
        )
        .await
        .expect(201, "the operator creates a product");
    assert_eq!(product["status"], "active");
    assert_eq!(product["available"], true);
    let product_id = product["id"].as_str().expect("product id").to_string();
    let public = api
        .get(&format!("/api/v1/products/{product_id}"), None)
        .await
        .expect(200, "anonymous read of the product");
    assert_eq!(public["id"], product_id);
    assert_eq!(public["shop_id"], shop_id);
    assert_eq!(public["village_code"], VILLAGE);
    assert_eq!(public["final_price_idr"], 85_000);
    assert_eq!(public["available"], true);

    assert!(
        server.child.try_wait().expect("poll the server").is_none(),
        "pasar serve died during the walk:\n{}",
        server.log_tail()
    );
    // The server goes before the database (it holds connections to it).
    drop(server);
    drop(db);
    eprintln!("bootstrap walked in {:?}", started.elapsed());
}
