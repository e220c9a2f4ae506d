//! Foundation: regions API, the shared HTTP layer, operations endpoints, OpenAPI, outages.

mod common;

use std::time::{Duration, Instant};

use common::fixtures::{self, A};
use common::{TestApp, proxy::ChaosProxy, spawn_app, spawn_app_with};
use serde_json::{Value, json};
use uuid::Uuid;

#[actix_rt::test]
async fn region_with_parents() {
    let app = spawn_app().await;
    let body = app
        .get("/api/v1/regions/34.02.15.2004")
        .send()
        .await
        .expect(200);
    assert_eq!(body["name"], "Panggungharjo");
    assert_eq!(body["level"], 4);
    assert_eq!(body["kind"], "desa");
    let parents: Vec<&str> = body["parents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        parents,
        ["Daerah Istimewa Yogyakarta", "Kabupaten Bantul", "Sewon"]
    );
    let codes: Vec<&str> = body["parents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["34", "34.02", "34.02.15"]);
}

#[actix_rt::test]
async fn region_errors_are_problems() {
    let app = spawn_app().await;
    app.get("/api/v1/regions/99.99")
        .send()
        .await
        .expect_problem(404, "not-found");
    let p = app
        .get("/api/v1/regions/34.2")
        .send()
        .await
        .expect_problem(400, "validation");
    assert_eq!(p["errors"][0]["field"], "code");
    let p = app
        .get("/api/v1/regions?level=7")
        .send()
        .await
        .expect_problem(400, "validation");
    assert_eq!(p["errors"][0]["field"], "level");
    app.get("/api/v1/regions?level=abc")
        .send()
        .await
        .expect_problem(400, "validation");
    let p = app
        .get("/api/v1/regions?colour=red")
        .send()
        .await
        .expect_problem(400, "validation");
    assert_eq!(p["errors"][0]["field"], "colour");
    let p = app
        .get("/api/v1/regions?cursor=garbage")
        .send()
        .await
        .expect_problem(400, "validation");
    assert_eq!(p["errors"][0]["field"], "cursor");
    app.get("/api/v1/regions?limit=0")
        .send()
        .await
        .expect_problem(400, "validation");
    app.get("/api/v1/regions?limit=101")
        .send()
        .await
        .expect_problem(400, "validation");
    // PostgreSQL cannot store NUL: a 400, not a 500.
    app.get("/api/v1/regions?q=bantul%00")
        .send()
        .await
        .expect_problem(400, "bad-request");
    app.get("/api/v1/regions/99/children")
        .send()
        .await
        .expect_problem(404, "not-found");
    app.get("/api/v1/no-such-thing")
        .send()
        .await
        .expect_problem(404, "not-found");
    // A method the resource does not have is a problem too: 405 with `Allow`.
    app.post("/api/v1/regions/34")
        .send()
        .await
        .expect_problem(405, "method-not-allowed");
}

#[actix_rt::test]
async fn children_pages_neither_skip_nor_repeat() {
    let app = spawn_app().await;
    // Kabupaten Bantul has 17 districts.
    let mut seen: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/regions/34.02/children?limit=5&cursor={c}"),
            None => "/api/v1/regions/34.02/children?limit=5".to_string(),
        };
        let body = app.get(&path).send().await.expect(200);
        for item in body["items"].as_array().unwrap() {
            assert_eq!(item["parent_code"], "34.02");
            seen.push(item["code"].as_str().unwrap().to_string());
        }
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, seen, "pages are in code order without repeats");
    assert_eq!(seen.len(), 17);
}

#[actix_rt::test]
async fn search_is_ranked_and_typo_tolerant() {
    let app = spawn_app().await;
    let body = app
        .get("/api/v1/regions?q=panggungharja")
        .send()
        .await
        .expect(200);
    assert_eq!(body["items"][0]["name"], "Panggungharjo", "{body}");
    let body = app
        .get("/api/v1/regions?q=Sewon&level=3")
        .send()
        .await
        .expect(200);
    assert_eq!(body["items"][0]["code"], "34.02.15");
    assert!(
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["level"] == 3)
    );
    // An exact name outranks names that merely contain it.
    let body = app.get("/api/v1/regions?q=bantul").send().await.expect(200);
    assert_eq!(body["items"][0]["name"], "Bantul", "{body}");
    // Paging through ranked results repeats nothing.
    let mut seen = Vec::new();
    let mut next: Option<String> = None;
    for _ in 0..20 {
        let path = match &next {
            Some(c) => format!("/api/v1/regions?q=harjo&limit=7&cursor={c}"),
            None => "/api/v1/regions?q=harjo&limit=7".into(),
        };
        let body = app.get(&path).send().await.expect(200);
        seen.extend(
            body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["code"].clone()),
        );
        match body["next_cursor"].as_str() {
            Some(c) => next = Some(c.into()),
            None => break,
        }
    }
    let n = seen.len();
    seen.sort_by_key(|v| v.to_string());
    seen.dedup();
    assert_eq!(seen.len(), n);
    assert!(n > 20, "many villages are named …harjo in DIY, got {n}");
}

#[actix_rt::test]
async fn ops_endpoints() {
    let app = spawn_app().await;
    app.get("/healthz").send().await.expect(200);
    app.get("/readyz").send().await.expect(200);
    let r = app.get("/api/v1/regions/34").send().await;
    assert!(r.header("x-request-id").is_some());
    let metrics = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap();
    let text = metrics.text().await.unwrap();
    assert!(text.contains("pasar_http_requests_total{method=\"GET\",route=\"/api/v1/regions/{code}\",status=\"200\"}"), "{text}");
    let docs = app
        .client
        .get(format!("{}/docs/", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(docs.status().as_u16(), 200);
    assert!(docs.text().await.unwrap().contains("swagger"));
    let yaml = app
        .client
        .get(format!("{}/openapi.yaml", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(yaml.text().await.unwrap(), pasar::app::openapi_yaml());
}

#[test]
fn committed_openapi_matches_the_code() {
    let committed = std::fs::read_to_string("openapi.yaml").expect("openapi.yaml is committed");
    let generated = pasar::app::openapi_yaml();
    assert!(
        committed == generated,
        "openapi.yaml is stale: regenerate with `cargo run -- openapi > openapi.yaml`"
    );
}

#[actix_rt::test]
async fn region_import_is_idempotent() {
    let app = spawn_app().await;
    let count = |app: &common::TestApp| -> i64 {
        use diesel::prelude::*;
        app.with_conn(|c| {
            pasar::db::schema::regions::table
                .count()
                .get_result(c)
                .unwrap()
        })
    };
    let before = count(&app);
    let rows = pasar::regions::import::read_file(
        std::path::Path::new(pasar::regions::import::DEFAULT_FILE),
        &["34".to_string()],
    )
    .unwrap();
    assert_eq!(rows.iter().filter(|r| r.level == 4).count(), 438);
    app.with_conn(|c| pasar::regions::import::import(c, &rows, None).unwrap());
    app.with_conn(|c| pasar::regions::import::import(c, &rows, None).unwrap());
    assert_eq!(count(&app), before);
}

#[actix_rt::test]
async fn database_outage_answers_503_quickly_and_recovers() {
    let db_url = {
        // Route the app's connections through a proxy we can cut.
        let probe = spawn_app().await;
        let url = url::Url::parse(&probe.db.url).unwrap();
        let target = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
        (probe, target)
    };
    let (probe, target) = db_url;
    let proxy = ChaosProxy::start(target).await;
    let mut proxied = url::Url::parse(&probe.db.url).unwrap();
    proxied.set_host(Some("127.0.0.1")).unwrap();
    proxied.set_port(Some(proxy.port)).unwrap();
    let proxied = proxied.to_string();
    let app = spawn_app_with(|c| c.database_url = proxied.clone()).await;
    app.get("/api/v1/regions/34").send().await.expect(200);

    proxy.cut();
    let start = Instant::now();
    let r = app.get("/api/v1/regions/34").send().await;
    let took = start.elapsed();
    let retry_after = r.header("retry-after").map(str::to_string);
    r.expect_problem(503, "unavailable");
    assert!(retry_after.is_some(), "503 carries Retry-After");
    assert!(took < Duration::from_millis(2500), "answered in {took:?}");
    app.get("/readyz")
        .send()
        .await
        .expect_problem(503, "unavailable");
    app.get("/healthz").send().await.expect(200);

    proxy.restore();
    let mut last = Value::Null;
    for _ in 0..20 {
        let r = app.get("/api/v1/regions/34").send().await;
        if r.status.as_u16() == 200 {
            return;
        }
        last = r.body;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("did not recover: {last}");
}

/// Locks `what` (`shop <id>` locks one shop row, `table <name>` a whole table) from the test's own
/// connection and holds the lock for `hold`; resolves once the lock is taken, and the returned
/// handle once it is released.
async fn hold_lock(app: &TestApp, what: String, hold: Duration) -> tokio::task::JoinHandle<()> {
    use diesel::prelude::*;
    let url = app.db.url.clone();
    let (taken_tx, taken) = tokio::sync::oneshot::channel();
    let holder = tokio::task::spawn_blocking(move || {
        let mut conn = pasar::db::connect(&url).unwrap();
        conn.transaction::<_, diesel::result::Error, _>(|c| {
            let sql = match what.split_once(' ') {
                Some(("shop", id)) => format!("SELECT 1 FROM shops WHERE id = '{id}' FOR UPDATE"),
                Some(("table", t)) => format!("LOCK TABLE {t} IN ACCESS EXCLUSIVE MODE"),
                _ => panic!("what to lock: {what}"),
            };
            diesel::sql_query(sql).execute(c)?;
            taken_tx.send(()).unwrap();
            std::thread::sleep(hold);
            Ok(())
        })
        .unwrap();
    });
    taken.await.unwrap();
    holder
}

fn shop_name(app: &TestApp, id: Uuid) -> String {
    use diesel::prelude::*;
    use pasar::db::schema::shops;
    app.with_conn(|c| shops::table.find(id).select(shops::name).first(c).unwrap())
}

/// Renames the shop while its row is locked for `hold`; returns the answer's status, problem
/// type, Retry-After, how long it took, and whether the new name was stored in the end.
async fn rename_while_locked(app: &TestApp, hold: Duration) -> (u16, String, bool, Duration, bool) {
    let w = fixtures::world(app);
    let token = app.login(&w.a.operator.phone, A).await;
    let shop = w.a.active_shop;
    let holder = hold_lock(app, format!("shop {shop}"), hold).await;
    let start = Instant::now();
    let r = app
        .patch(&format!("/api/v1/shops/{shop}"))
        .token(&token)
        .json(&json!({"name": "Lapak Sabar"}))
        .send()
        .await;
    let took = start.elapsed();
    holder.await.unwrap();
    // Give a write that went on after its answer the time to commit.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stored = shop_name(app, shop) == "Lapak Sabar";
    let slug = r.body["type"].as_str().unwrap_or_default().to_string();
    let retry_after = r.header("retry-after").is_some();
    (r.status.as_u16(), slug, retry_after, took, stored)
}

/// A write that outlasts the request time limit is not answered 503 while it goes on to commit
/// (the client's retry would then write twice): it finishes and is answered.
#[actix_rt::test]
async fn a_write_past_the_request_limit_is_answered_when_it_commits() {
    // Deliberately a lock timeout above the request limit (serve refuses it) to show that the
    // request timer leaves writes alone.
    let app = spawn_app_with(|c| {
        c.request_timeout_ms = 400;
        c.db_lock_timeout_ms = 5_000;
    })
    .await;
    let (status, slug, _, took, stored) =
        rename_while_locked(&app, Duration::from_millis(1_200)).await;
    assert_eq!(
        status == 200,
        stored,
        "the answer ({status} {slug}) must tell whether the write committed ({stored})"
    );
    assert_eq!(status, 200, "{slug}");
    assert!(
        took >= Duration::from_millis(1_000),
        "waited for the lock: {took:?}"
    );
}

/// Past `lock_timeout` a write is rolled back and answered 503 with Retry-After; nothing of it
/// is written, even once the lock is released.
#[actix_rt::test]
async fn a_write_that_cannot_get_its_lock_is_rolled_back_and_answered_503() {
    let app = spawn_app_with(|c| {
        c.request_timeout_ms = 5_000;
        c.db_lock_timeout_ms = 300;
    })
    .await;
    let (status, slug, retry_after, took, stored) =
        rename_while_locked(&app, Duration::from_millis(1_200)).await;
    assert_eq!(status, 503, "{slug}");
    assert!(slug.ends_with("/unavailable"), "{slug}");
    assert!(retry_after, "503 carries Retry-After");
    assert!(!stored, "answered an error, so nothing may be written");
    assert!(
        took < Duration::from_millis(1_000),
        "gave up at the lock timeout: {took:?}"
    );
}

/// Reads keep their time limit.
#[actix_rt::test]
async fn a_slow_read_is_answered_503_at_the_request_limit() {
    let app = spawn_app_with(|c| {
        c.request_timeout_ms = 400;
        c.db_lock_timeout_ms = 5_000;
    })
    .await;
    let holder = hold_lock(&app, "table regions".into(), Duration::from_millis(1_500)).await;
    let start = Instant::now();
    let r = app.get("/api/v1/regions/34").send().await;
    let took = start.elapsed();
    let retry_after = r.header("retry-after").map(str::to_string);
    r.expect_problem(503, "unavailable");
    assert!(retry_after.is_some());
    assert!(
        took < Duration::from_millis(1_200),
        "answered at the limit: {took:?}"
    );
    holder.await.unwrap();
    app.get("/api/v1/regions/34").send().await.expect(200);
}
