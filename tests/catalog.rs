//! Catalog: product validation, ETags, authorization, search (stemming, typos, filters, local
//! order), pagination under inserts, offline sync under concurrent changes, stock adjustments.

mod common;

use std::collections::{BTreeMap, HashSet};

use common::fixtures::{self, A, B, OUTSIDE};
use common::{TestApp, spawn_app};
use serde_json::{Value, json};
use uuid::Uuid;

fn kopi() -> Value {
    json!({
        "name": "Kopi Arabika Menoreh", "description": "Kopi arabika dari lereng Menoreh, sangrai medium.",
        "category": "kopi-teh", "unit": "pack", "price_idr": 45000, "stock": 30,
        "discount": {"kind": "percent", "value": 10}, "weight_grams": 250,
        "photo_urls": ["https://cdn.desa.id/kopi.jpg"], "certifications": ["Halal", "PIRT"], "flagship": true
    })
}

#[actix_rt::test]
async fn create_validates_every_field() {
    let app = spawn_app().await;
    let w = fixtures::world(&app);
    let op = app.login(&w.a.operator.phone, A).await;
    let url = format!("/api/v1/shops/{}/products", w.a.active_shop);
    let created = app.post(&url).token(&op).json(&kopi()).send().await;
    assert!(
        created.header("etag").unwrap().starts_with("\"v1-s"),
        "version and stock: {:?}",
        created.header("etag")
    );
    let p = created.expect(201);
    assert_eq!(p["final_price_idr"], 40500);
    assert_eq!(p["village_code"], A);
    assert_eq!(p["certifications"], json!(["halal", "pirt"]));
    assert_eq!(p["available"], true);

    let bad: Vec<(&str, Value, &str)> = vec![
        ("price_idr", json!(0), "price_idr"),
        ("price_idr", json!(-5000), "price_idr"),
        ("price_idr", json!(99), "price_idr"),
        ("price_idr", json!(2_000_000_001i64), "price_idr"),
        ("price_idr", json!(1e40), "price_idr"),
        ("price_idr", json!("45000"), "price_idr"),
        ("price_idr", json!(450.5), "price_idr"),
        ("stock", json!(-1), "stock"),
        ("stock", json!(true), "stock"),
        ("name", json!(""), "name"),
        ("name", json!("x".repeat(151)), "name"),
        ("unit", json!("satuan-yang-sangat-panjang"), "unit"),
        ("category", json!("senjata"), "category"),
        (
            "discount",
            json!({"kind": "percent", "value": 100}),
            "discount.value",
        ),
        (
            "discount",
            json!({"kind": "amount", "value": 45000}),
            "discount.value",
        ),
        (
            "discount",
            json!({"kind": "gratis", "value": 1}),
            "discount.kind",
        ),
        ("weight_grams", json!(0), "weight_grams"),
        (
            "photo_urls",
            json!(["javascript:alert(1)"]),
            "photo_urls[0]",
        ),
        (
            "photo_urls",
            json!([
                "https://a.id/1",
                "https://a.id/2",
                "https://a.id/3",
                "https://a.id/4",
                "https://a.id/5",
                "https://a.id/6"
            ]),
            "photo_urls",
        ),
        ("status", json!("archived"), "status"),
        ("colour", json!("red"), "colour"),
    ];
    for (field, value, expected) in bad {
        let mut body = kopi();
        body[field] = value.clone();
        let p = app
            .post(&url)
            .token(&op)
            .json(&body)
            .send()
            .await
            .expect_problem(400, "validation");
        let fields: Vec<&str> = p["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert!(fields.contains(&expected), "{field}={value}: {p}");
    }
    let mut missing = kopi();
    missing.as_object_mut().unwrap().remove("price_idr");
    let p = app
        .post(&url)
        .token(&op)
        .json(&missing)
        .send()
        .await
        .expect_problem(400, "validation");
    assert_eq!(p["errors"][0]["field"], "price_idr");
    // Nothing of the rejected requests was written.
    let count: i64 = app.with_conn(|c| {
        use diesel::prelude::*;
        pasar::db::schema::products::table
            .count()
            .get_result(c)
            .unwrap()
    });
    assert_eq!(count, 1);
}

#[actix_rt::test]
async fn etags_and_optimistic_updates() {
    let app = spawn_app().await;
    let w = fixtures::world(&app);
    let op = app.login(&w.a.operator.phone, A).await;
    let p = app
        .post(&format!("/api/v1/shops/{}/products", w.a.active_shop))
        .token(&op)
        .json(&kopi())
        .send()
        .await
        .expect(201);
    let path = format!("/api/v1/products/{}", p["id"].as_str().unwrap());
    let r = app.get(&path).send().await;
    let etag = r.header("etag").unwrap().to_string();
    r.expect(200);
    let r = app.get(&path).header("if-none-match", &etag).send().await;
    assert_eq!(r.status.as_u16(), 304);
    app.patch(&path)
        .token(&op)
        .json(&json!({"price_idr": 50000}))
        .send()
        .await
        .expect_problem(428, "precondition-required");
    let r = app
        .patch(&path)
        .token(&op)
        .header("if-match", &etag)
        .json(&json!({"price_idr": 50000, "discount": null}))
        .send()
        .await;
    let new_etag = r.header("etag").unwrap().to_string();
    let body = r.expect(200);
    assert_eq!(body["final_price_idr"], 50000);
    assert_eq!(body["discount"], Value::Null);
    assert!(new_etag.starts_with("\"v2-s"), "{new_etag}");
    // The old ETag is stale now.
    app.patch(&path)
        .token(&op)
        .header("if-match", &etag)
        .json(&json!({"price_idr": 1000}))
        .send()
        .await
        .expect_problem(412, "precondition-failed");
    // An invalid body is a 400 whatever the ETag: the body is checked before If-Match.
    app.patch(&path)
        .token(&op)
        .header("if-match", &etag)
        .json(&json!({"weight_grams": 0}))
        .send()
        .await
        .expect_problem(400, "validation");
    app.patch(&path)
        .token(&op)
        .header("if-match", "not-an-etag")
        .json(&json!({"weight_grams": 0}))
        .send()
        .await
        .expect_problem(400, "validation");
    app.get(&path)
        .header("if-none-match", &etag)
        .send()
        .await
        .expect(200);
    // Stock is not patched: it changes through adjustments with a reason.
    let p = app
        .patch(&path)
        .token(&op)
        .header("if-match", &new_etag)
        .json(&json!({"stock": 99}))
        .send()
        .await
        .expect_problem(400, "validation");
    assert_eq!(p["errors"][0]["field"], "stock");
    let a = app
        .post(&format!("{path}/stock-adjustments"))
        .token(&op)
        .json(&json!({"delta": -5, "reason": "rusak saat pengiriman"}))
        .send()
        .await
        .expect(201);
    assert_eq!(a["stock_after"], 25);
    app.post(&format!("{path}/stock-adjustments"))
        .token(&op)
        .json(&json!({"delta": -26, "reason": "hitung ulang"}))
        .send()
        .await
        .expect_problem(409, "conflict");
    app.post(&format!("{path}/stock-adjustments"))
        .token(&op)
        .json(&json!({"delta": 0, "reason": "x"}))
        .send()
        .await
        .expect_problem(400, "validation");
    let history = app
        .get(&format!("{path}/stock-adjustments"))
        .token(&op)
        .send()
        .await
        .expect(200);
    assert_eq!(history["items"].as_array().unwrap().len(), 1);
    // Archive (delete) keeps it readable, out of the catalogue.
    app.delete(&path).token(&op).send().await.expect(204);
    let archived = app.get(&path).send().await.expect(200);
    assert_eq!(archived["status"], "archived");
    assert_eq!(archived["available"], false);
    let list = app.get("/api/v1/products?q=kopi").send().await.expect(200);
    assert!(list["items"].as_array().unwrap().is_empty());
    let etag = format!("\"v{}\"", archived["version"]);
    app.patch(&path)
        .token(&op)
        .header("if-match", &etag)
        .json(&json!({"status": "active"}))
        .send()
        .await
        .expect_problem(400, "validation");
}

#[actix_rt::test]
async fn only_the_shops_operators_touch_its_products() {
    let app = spawn_app().await;
    let w = fixtures::world(&app);
    let id = app.with_conn(|c| {
        fixtures::product(c, w.a.active_shop, &w.a.operator, A, "Gula Aren", 20000, 10)
    });
    let path = format!("/api/v1/products/{id}");
    let before = app.get(&path).send().await.expect(200);
    // A member of the same village who runs no shop, B's operator, B's admin.
    let intruders = [
        app.login(&w.a.member.phone, A).await,
        app.login(&w.b.operator.phone, B).await,
        app.login(&w.b.admin.phone, B).await,
    ];
    for t in &intruders {
        let s = app
            .patch(&path)
            .token(t)
            .header("if-match", "\"v1\"")
            .json(&json!({"price_idr": 100}))
            .send()
            .await
            .status
            .as_u16();
        assert!(s == 403 || s == 404, "{s}");
        let s = app
            .post(&format!("{path}/stock-adjustments"))
            .token(t)
            .json(&json!({"delta": -10, "reason": "curi"}))
            .send()
            .await
            .status
            .as_u16();
        assert!(s == 403 || s == 404, "{s}");
        let s = app.delete(&path).token(t).send().await.status.as_u16();
        assert!(s == 403 || s == 404, "{s}");
        let s = app
            .post(&format!("/api/v1/shops/{}/products", w.a.active_shop))
            .token(t)
            .json(&kopi())
            .send()
            .await
            .status
            .as_u16();
        assert!(s == 403 || s == 404, "{s}");
    }
    assert_eq!(app.get(&path).send().await.expect(200), before);
    // Drafts are private to the shop.
    let op = app.login(&w.a.operator.phone, A).await;
    let mut draft = kopi();
    draft["status"] = json!("draft");
    let d = app
        .post(&format!("/api/v1/shops/{}/products", w.a.active_shop))
        .token(&op)
        .json(&draft)
        .send()
        .await
        .expect(201);
    let dpath = format!("/api/v1/products/{}", d["id"].as_str().unwrap());
    app.get(&dpath)
        .send()
        .await
        .expect_problem(404, "not-found");
    app.get(&dpath)
        .token(&intruders[1])
        .send()
        .await
        .expect_problem(404, "not-found");
    app.get(&dpath).token(&op).send().await.expect(200);
    let mine = app
        .get(&format!(
            "/api/v1/shops/{}/products?status=draft",
            w.a.active_shop
        ))
        .token(&op)
        .send()
        .await
        .expect(200);
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    app.get(&format!("/api/v1/shops/{}/products", w.a.active_shop))
        .token(&intruders[0])
        .send()
        .await
        .expect_problem(403, "forbidden");
}

fn names(body: &Value) -> Vec<String> {
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect()
}

#[actix_rt::test]
async fn search_stems_tolerates_typos_and_filters() {
    let app = spawn_app().await;
    let w = fixtures::world(&app);
    let (outside_shop, outside_op) =
        app.with_conn(|c| fixtures::selling_village(c, &w.platform, OUTSIDE, 9));
    app.with_conn(|c| {
        fixtures::product(
            c,
            w.a.active_shop,
            &w.a.operator,
            A,
            "Kopi Arabika Menoreh",
            45000,
            5,
        );
        fixtures::product(
            c,
            w.a.active_shop,
            &w.a.operator,
            A,
            "Kerajinan Bambu Anyaman",
            75000,
            0,
        );
        fixtures::product(
            c,
            w.b.active_shop,
            &w.b.operator,
            B,
            "Beras Menthik Wangi",
            14000,
            100,
        );
        fixtures::product(
            c,
            outside_shop,
            &outside_op,
            OUTSIDE,
            "Kopi Robusta Jakarta",
            30000,
            7,
        );
    });
    // Stemming: rajin ↔ kerajinan.
    assert_eq!(
        names(&app.get("/api/v1/products?q=rajin").send().await.expect(200)),
        ["Kerajinan Bambu Anyaman"]
    );
    assert_eq!(
        names(
            &app.get("/api/v1/products?q=kerajinan")
                .send()
                .await
                .expect(200)
        ),
        ["Kerajinan Bambu Anyaman"]
    );
    // Typos.
    let r = app
        .get("/api/v1/products?q=kopi%20arabica")
        .send()
        .await
        .expect(200);
    assert_eq!(names(&r)[0], "Kopi Arabika Menoreh", "{r}");
    let r = app
        .get("/api/v1/products?q=bras%20mentik")
        .send()
        .await
        .expect(200);
    assert_eq!(names(&r)[0], "Beras Menthik Wangi", "{r}");
    // Region prefixes: village, district, regency, province.
    for (region, n) in [(A, 2), ("34.02.15", 2), ("34.02", 3), ("34", 3), ("31", 1)] {
        let r = app
            .get(&format!("/api/v1/products?region={region}"))
            .send()
            .await
            .expect(200);
        assert_eq!(
            r["items"].as_array().unwrap().len(),
            n,
            "region {region}: {r}"
        );
    }
    let r = app
        .get(&format!("/api/v1/products?network={}", w.network))
        .send()
        .await
        .expect(200);
    assert_eq!(r["items"].as_array().unwrap().len(), 3);
    let r = app
        .get("/api/v1/products?min_price=20000&max_price=50000&sort=price_asc")
        .send()
        .await
        .expect(200);
    assert_eq!(names(&r), ["Kopi Robusta Jakarta", "Kopi Arabika Menoreh"]);
    let r = app
        .get("/api/v1/products?sort=price_desc&in_stock=true")
        .send()
        .await
        .expect(200);
    assert_eq!(
        names(&r),
        [
            "Kopi Arabika Menoreh",
            "Kopi Robusta Jakarta",
            "Beras Menthik Wangi"
        ]
    );
    let r = app
        .get(&format!("/api/v1/products?shop={}", w.b.active_shop))
        .send()
        .await
        .expect(200);
    assert_eq!(names(&r), ["Beras Menthik Wangi"]);
    // Bad filters name the parameter.
    for (q, field) in [
        ("region=3", "region"),
        ("min_price=-1", "min_price"),
        ("min_price=10&max_price=5", "max_price"),
        ("sort=cheapest", "sort"),
        ("sort=local", "sort"),
        ("limit=500", "limit"),
        ("in_stock=maybe", "query"),
        ("network=xyz", "query"),
        ("q=kopi&updated_since=2026-01-01T00:00:00Z", "q"),
    ] {
        let p = app
            .get(&format!("/api/v1/products?{q}"))
            .send()
            .await
            .expect_problem(400, "validation");
        assert_eq!(p["errors"][0]["field"], field, "{q}: {p}");
    }
    // A suspended shop's products leave the catalogue.
    let admin_b = app.login(&w.b.admin.phone, B).await;
    app.post(&format!("/api/v1/shops/{}/suspend", w.b.active_shop))
        .token(&admin_b)
        .json(&json!({"reason": "audit"}))
        .send()
        .await
        .expect(200);
    let r = app.get("/api/v1/products?q=beras").send().await.expect(200);
    assert!(r["items"].as_array().unwrap().is_empty());
}

#[actix_rt::test]
async fn local_sort_puts_trade_close_to_home() {
    let app = spawn_app().await;
    let w = fixtures::world(&app);
    // A = Panggungharjo; B = Guwosari (same network); then same district (Pendowoharjo), same
    // regency (Sriharjo, not in the network), same province (Jangkaran, Kulon Progo), elsewhere.
    let places = [
        ("34.02.15.2001", "distrik", 11u8),
        ("34.02.10.2002", "kabupaten", 12),
        ("34.01.01.2001", "provinsi", 13),
        (OUTSIDE, "jauh", 14),
    ];
    app.with_conn(|c| {
        for (code, label, n) in places {
            let (shop, op) = fixtures::selling_village(c, &w.platform, code, n);
            fixtures::product(c, shop, &op, code, &format!("Gula {label}"), 10000, 5);
        }
        fixtures::product(
            c,
            w.b.active_shop,
            &w.b.operator,
            B,
            "Gula jaringan",
            10000,
            5,
        );
        fixtures::product(c, w.a.active_shop, &w.a.operator, A, "Gula desa", 10000, 5);
    });
    let member = app.login(&w.a.member.phone, A).await;
    let expected = [
        "Gula desa",
        "Gula jaringan",
        "Gula distrik",
        "Gula kabupaten",
        "Gula provinsi",
        "Gula jauh",
    ];
    // Default when signed in, with and without a query, and one item per page.
    let r = app
        .get("/api/v1/products")
        .token(&member)
        .send()
        .await
        .expect(200);
    assert_eq!(names(&r), expected);
    let r = app
        .get("/api/v1/products?q=gula")
        .token(&member)
        .send()
        .await
        .expect(200);
    assert_eq!(names(&r), expected);
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/products?limit=1&cursor={c}"),
            None => "/api/v1/products?limit=1".into(),
        };
        let r = app.get(&path).token(&member).send().await.expect(200);
        paged.extend(names(&r));
        match r["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.into()),
            None => break,
        }
    }
    assert_eq!(paged, expected);
    // From Guwosari's point of view Panggungharjo is the network.
    let b_member = app.login(&w.b.member.phone, B).await;
    let r = app
        .get("/api/v1/products")
        .token(&b_member)
        .send()
        .await
        .expect(200);
    assert_eq!(&names(&r)[..2], ["Gula jaringan", "Gula desa"]);
    // A cursor of one sort is refused by another.
    let r = app
        .get("/api/v1/products?limit=1&sort=newest")
        .send()
        .await
        .expect(200);
    let c = r["next_cursor"].as_str().unwrap();
    app.get(&format!(
        "/api/v1/products?limit=1&sort=price_asc&cursor={c}"
    ))
    .send()
    .await
    .expect_problem(400, "validation");
}

async fn walk(app: &TestApp, base: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let sep = if base.contains('?') { '&' } else { '?' };
        let path = match &cursor {
            Some(c) => format!("{base}{sep}limit=7&cursor={c}"),
            None => format!("{base}{sep}limit=7"),
        };
        let r = app.get(&path).send().await.expect(200);
        seen.extend(
            r["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["id"].as_str().unwrap().to_string()),
        );
        match r["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.into()),
            None => return seen,
        }
    }
}

#[actix_rt::test]
async fn pages_neither_skip_nor_repeat_while_products_are_inserted() {
    let app = spawn_app().await;
    let w = fixtures::world(&app);
    let initial: HashSet<String> = app.with_conn(|c| {
        (0..40)
            .map(|i| {
                fixtures::product(
                    c,
                    w.a.active_shop,
                    &w.a.operator,
                    A,
                    &format!("Keripik {i}"),
                    1000 + (i % 5) * 500,
                    3,
                )
                .to_string()
            })
            .collect()
    });
    for sort in ["newest", "price_asc", "price_desc"] {
        // Insert between page requests: every product that existed at the start is seen once.
        let base = format!("/api/v1/products?sort={sort}");
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut i = 0;
        loop {
            let path = match &cursor {
                Some(c) => format!("{base}&limit=6&cursor={c}"),
                None => format!("{base}&limit=6"),
            };
            let r = app.get(&path).send().await.expect(200);
            seen.extend(
                r["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p["id"].as_str().unwrap().to_string()),
            );
            app.with_conn(|c| {
                fixtures::product(
                    c,
                    w.a.active_shop,
                    &w.a.operator,
                    A,
                    &format!("Sisipan {sort} {i}"),
                    1000 + (i % 5) * 500,
                    1,
                )
            });
            i += 1;
            match r["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.into()),
                None => break,
            }
        }
        let unique: HashSet<String> = seen.iter().cloned().collect();
        assert_eq!(unique.len(), seen.len(), "{sort}: a product repeated");
        assert!(initial.is_subset(&unique), "{sort}: a product was skipped");
    }
    let all = walk(&app, "/api/v1/products?q=keripik").await;
    assert_eq!(all.len(), 40);
}

/// Server state as a sync client should end up with it: id → (version, status, available).
/// Phones hold what was published, of shops that were ever active.
fn server_view(app: &TestApp) -> BTreeMap<String, (i64, String, bool)> {
    app.with_conn(|c| {
        use diesel::prelude::*;
        use pasar::db::schema::{products, shops};
        products::table
            .inner_join(shops::table)
            .filter(products::published_at.is_not_null())
            .filter(shops::status.eq_any(vec!["active", "suspended"]))
            .select((
                products::id,
                products::version,
                products::status,
                shops::status,
            ))
            .load::<(Uuid, i32, String, String)>(c)
            .unwrap()
            .into_iter()
            .map(|(id, v, s, shop)| {
                (
                    id.to_string(),
                    (v as i64, s.clone(), s == "active" && shop == "active"),
                )
            })
            .collect()
    })
}

async fn sync_once(
    app: &TestApp,
    since: &str,
    local: &mut BTreeMap<String, (i64, String, bool)>,
) -> String {
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!(
            "/api/v1/products?limit=25&updated_since={}",
            urlencode(since)
        );
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let r = app.get(&path).send().await.expect(200);
        for p in r["items"].as_array().unwrap() {
            local.insert(
                p["id"].as_str().unwrap().to_string(),
                (
                    p["version"].as_i64().unwrap(),
                    p["status"].as_str().unwrap().to_string(),
                    p["available"].as_bool().unwrap(),
                ),
            );
        }
        match r["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.into()),
            None => return r["sync_until"].as_str().unwrap().to_string(),
        }
    }
}

fn urlencode(s: &str) -> String {
    s.replace(':', "%3A").replace('+', "%2B")
}

#[actix_rt::test]
async fn offline_sync_ends_with_the_servers_set_under_concurrent_changes() {
    let app = spawn_app().await;
    let w = fixtures::world(&app);
    let ids: Vec<Uuid> = app.with_conn(|c| {
        (0..30)
            .map(|i| {
                fixtures::product(
                    c,
                    w.a.active_shop,
                    &w.a.operator,
                    A,
                    &format!("Tempe {i}"),
                    5000,
                    50,
                )
            })
            .collect()
    });
    let op = app.login(&w.a.operator.phone, A).await;
    let admin_b = app.login(&w.b.admin.phone, B).await;
    let mut local = BTreeMap::new();
    let mut since = "2000-01-01T00:00:00Z".to_string();
    // Writers: updates, stock adjustments, archives and inserts over HTTP, concurrently with a
    // client that keeps syncing.
    let writers = async {
        let mut futs = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            let app = &app;
            let op = op.clone();
            let id = *id;
            futs.push(async move {
                for round in 0..3 {
                    let path = format!("/api/v1/products/{id}");
                    match (i + round) % 4 {
                        0 => {
                            app.patch(&path)
                                .token(&op)
                                .header("if-match", "*")
                                .json(&json!({"price_idr": 5000 + round * 100}))
                                .send()
                                .await
                                .expect(200);
                        }
                        1 => {
                            app.post(&format!("{path}/stock-adjustments"))
                                .token(&op)
                                .json(&json!({"delta": -1, "reason": "terjual di pasar"}))
                                .send()
                                .await
                                .expect(201);
                        }
                        2 if i % 7 == 0 => {
                            app.delete(&path).token(&op).send().await.expect(204);
                        }
                        _ => {
                            app.post(&format!("/api/v1/shops/{}/products", w.a.active_shop))
                                .token(&op)
                                .json(&kopi())
                                .send()
                                .await
                                .expect(201);
                        }
                    }
                }
            });
        }
        futures_util::future::join_all(futs).await;
        app.post(&format!("/api/v1/shops/{}/suspend", w.b.active_shop))
            .token(&admin_b)
            .json(&json!({"reason": "cek"}))
            .send()
            .await
            .expect(200);
    };
    let b_product = app
        .with_conn(|c| fixtures::product(c, w.b.active_shop, &w.b.operator, B, "Bakpia", 2000, 10));
    let syncer = async {
        for _ in 0..15 {
            since = sync_once(&app, &since, &mut local).await;
            actix_rt::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    futures_util::future::join(writers, syncer).await;
    // One more sync after the writes settle; the client must now hold exactly the server's set.
    sync_once(&app, &since, &mut local).await;
    let server = server_view(&app);
    assert_eq!(local, server);
    assert!(
        !local[&b_product.to_string()].2,
        "the suspended shop's product is unavailable"
    );
    assert!(server.len() > 30);
}

#[actix_rt::test]
async fn concurrent_stock_adjustments_never_oversell() {
    let app = spawn_app().await;
    let w = fixtures::world(&app);
    let id = app.with_conn(|c| {
        fixtures::product(
            c,
            w.a.active_shop,
            &w.a.operator,
            A,
            "Telur Ayam Kampung",
            2500,
            10,
        )
    });
    let op = app.login(&w.a.operator.phone, A).await;
    let path = format!("/api/v1/products/{id}/stock-adjustments");
    let results = futures_util::future::join_all((0..30).map(|_| {
        let app = &app;
        let (op, path) = (op.clone(), path.clone());
        async move {
            app.post(&path)
                .token(&op)
                .json(&json!({"delta": -1, "reason": "pecah"}))
                .send()
                .await
                .status
                .as_u16()
        }
    }))
    .await;
    assert_eq!(results.iter().filter(|s| **s == 201).count(), 10);
    assert_eq!(results.iter().filter(|s| **s == 409).count(), 20);
    let p = app
        .get(&format!("/api/v1/products/{id}"))
        .send()
        .await
        .expect(200);
    assert_eq!(p["stock"], 0);
    assert_eq!(p["version"], 11);
    let history = app
        .get(&format!("{path}?limit=100"))
        .token(&op)
        .send()
        .await
        .expect(200);
    let total: i64 = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["delta"].as_i64().unwrap())
        .sum();
    assert_eq!(total, -10, "history explains the stock");
}

#[actix_rt::test]
async fn categories_are_listed() {
    let app = spawn_app().await;
    let list = app.get("/api/v1/categories").send().await.expect(200);
    let slugs: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["slug"].as_str().unwrap())
        .collect();
    for s in [
        "sembako",
        "sayur-buah",
        "beras-palawija",
        "kopi-teh",
        "perikanan",
        "peternakan",
        "olahan-pangan",
        "kerajinan",
        "wisata",
        "jasa",
    ] {
        assert!(slugs.contains(&s), "{s}");
    }
}

fn field_of(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_string())
        .collect()
}

/// A cursor this API returned, with one member of its JSON changed (what a curious client
/// can do by hand: cursors are only base64 of JSON).
fn tamper(cursor: &str, key: &str, value: Value) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut json: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(cursor).unwrap()).unwrap();
    assert!(json.get(key).is_some(), "{json} has no {key}");
    json[key] = value;
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&json).unwrap())
}

#[actix_rt::test]
async fn times_and_numbers_out_of_range_are_400_naming_the_field() {
    let app = spawn_app().await;
    let w = fixtures::world(&app);
    let id = app.with_conn(|c| {
        fixtures::product(c, w.a.active_shop, &w.a.operator, A, "Gula Jawa", 20000, 10);
        fixtures::product(
            c,
            w.a.active_shop,
            &w.a.operator,
            A,
            "Gula Semut",
            25000,
            10,
        )
    });
    // An anonymous phone asks for a sync from a silly time.
    for (since, field) in [
        ("-5000-01-01T00:00:00Z", "updated_since"),
        ("1969-12-31T23:59:59Z", "updated_since"),
        ("0000-01-01T00:00:00Z", "updated_since"),
    ] {
        let p = app
            .get(&format!(
                "/api/v1/products?updated_since={}",
                urlencode(since)
            ))
            .send()
            .await
            .expect_problem(400, "validation");
        assert_eq!(field_of(&p), [field], "{since}: {p}");
        assert!(
            p["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("1970-01-01")
        );
    }
    for since in ["1970-01-01T00:00:00Z", "9999-12-31T23:59:59Z"] {
        app.get(&format!(
            "/api/v1/products?updated_since={}",
            urlencode(since)
        ))
        .send()
        .await
        .expect(200);
    }
    // A hand-made sync cursor pointing before year 1 or far after 9999.
    let page = app
        .get("/api/v1/products?updated_since=2000-01-01T00%3A00%3A00Z&limit=1")
        .send()
        .await
        .expect(200);
    let cursor = page["next_cursor"].as_str().unwrap();
    for t in [-221_000_000_000_000_000i64, 9_000_000_000_000_000_000] {
        let p = app
            .get(&format!(
                "/api/v1/products?updated_since=2000-01-01T00%3A00%3A00Z&limit=1&cursor={}",
                tamper(cursor, "t", json!(t))
            ))
            .send()
            .await
            .expect_problem(400, "validation");
        assert_eq!(field_of(&p), ["cursor"], "{p}");
    }
    // Numbers in the query at and beyond the edges.
    for (q, field) in [
        ("max_price=9223372036854775807", "max_price"),
        ("min_price=-9223372036854775808", "min_price"),
        ("limit=-9223372036854775808", "limit"),
        ("limit=0", "limit"),
    ] {
        let p = app
            .get(&format!("/api/v1/products?{q}"))
            .send()
            .await
            .expect_problem(400, "validation");
        assert_eq!(field_of(&p), [field], "{q}: {p}");
    }
    // The operator adjusts stock by absurd amounts.
    let op = app.login(&w.a.operator.phone, A).await;
    let adjust = format!("/api/v1/products/{id}/stock-adjustments");
    for delta in [
        json!(i64::MIN),
        json!(i64::MAX),
        json!(1_000_000_001),
        json!(-1_000_000_001),
    ] {
        let p = app
            .post(&adjust)
            .token(&op)
            .json(&json!({"delta": delta, "reason": "x"}))
            .send()
            .await
            .expect_problem(400, "validation");
        assert_eq!(field_of(&p), ["delta"], "{delta}: {p}");
    }
    let p = app
        .get(&format!("{adjust}?limit=-9223372036854775808"))
        .token(&op)
        .send()
        .await
        .expect_problem(400, "validation");
    assert_eq!(field_of(&p), ["limit"], "{p}");
    // Body numbers of products at the edges of their types.
    let url = format!("/api/v1/shops/{}/products", w.a.active_shop);
    for (field, value, expected) in [
        ("price_idr", json!(i64::MAX), "price_idr"),
        ("price_idr", json!(i64::MIN), "price_idr"),
        ("stock", json!(1_000_000_001), "stock"),
        ("stock", json!(i64::MAX), "stock"),
        ("weight_grams", json!(1_000_001), "weight_grams"),
        ("weight_grams", json!(i64::MIN), "weight_grams"),
        (
            "discount",
            json!({"kind": "percent", "value": i64::MIN}),
            "discount.value",
        ),
        (
            "discount",
            json!({"kind": "amount", "value": i64::MAX}),
            "discount.value",
        ),
    ] {
        let mut body = kopi();
        body[field] = value.clone();
        let p = app
            .post(&url)
            .token(&op)
            .json(&body)
            .send()
            .await
            .expect_problem(400, "validation");
        assert!(
            field_of(&p).contains(&expected.to_string()),
            "{field}={value}: {p}"
        );
    }
    let path = format!("/api/v1/products/{id}");
    for (field, value) in [
        ("price_idr", json!(i64::MAX)),
        ("weight_grams", json!(i64::MIN)),
    ] {
        let p = app
            .patch(&path)
            .token(&op)
            .header("if-match", "*")
            .json(&json!({ field: value }))
            .send()
            .await
            .expect_problem(400, "validation");
        assert_eq!(field_of(&p), [field], "{p}");
    }
    // Nothing changed.
    let p = app.get(&path).send().await.expect(200);
    assert_eq!(
        (p["stock"].clone(), p["version"].clone()),
        (json!(10), json!(1))
    );
}

/// Every sync page from `since`, as a phone (anonymous or signed in) walks them.
async fn sync_all(app: &TestApp, token: Option<&str>, since: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!(
            "/api/v1/products?limit=3&updated_since={}",
            urlencode(since)
        );
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let mut req = app.get(&path);
        if let Some(t) = token {
            req = req.token(t);
        }
        let r = req.send().await.expect(200);
        items.extend(r["items"].as_array().unwrap().iter().cloned());
        match r["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.into()),
            None => return items,
        }
    }
}

#[actix_rt::test]
async fn unpublished_products_never_leave_the_server() {
    let app = spawn_app().await;
    let w = fixtures::world(&app);
    let (public, pending, rejected, suspended) = app.with_conn(|c| {
        (
            fixtures::product(c, w.a.active_shop, &w.a.operator, A, "Publik", 10000, 5),
            // The operator stocks the shop while it waits for approval, and in B one that
            // will be rejected.
            fixtures::product(
                c,
                w.a.pending_shop,
                &w.a.operator,
                A,
                "Rahasia tertunda",
                10000,
                5,
            ),
            fixtures::product(
                c,
                w.b.pending_shop,
                &w.b.operator,
                B,
                "Rahasia ditolak",
                10000,
                5,
            ),
            fixtures::product(c, w.b.active_shop, &w.b.operator, B, "Bakpia", 2000, 5),
        )
    });
    let admin_b = app.login(&w.b.admin.phone, B).await;
    app.post(&format!("/api/v1/shops/{}/reject", w.b.pending_shop))
        .token(&admin_b)
        .json(&json!({"reason": "dokumen kurang"}))
        .send()
        .await
        .expect(200);
    app.post(&format!("/api/v1/shops/{}/suspend", w.b.active_shop))
        .token(&admin_b)
        .json(&json!({"reason": "audit"}))
        .send()
        .await
        .expect(200);
    let op = app.login(&w.a.operator.phone, A).await;
    let create = |name: &str, status: &str| {
        let mut body = kopi();
        body["name"] = json!(name);
        body["status"] = json!(status);
        let (app, op, url) = (
            &app,
            op.clone(),
            format!("/api/v1/shops/{}/products", w.a.active_shop),
        );
        async move {
            let p = app
                .post(&url)
                .token(&op)
                .json(&body)
                .send()
                .await
                .expect(201);
            p["id"].as_str().unwrap().to_string()
        }
    };
    let draft = create("Rahasia draf", "draft").await;
    // Drafts deleted (archived) without ever being published, by DELETE and by PATCH.
    let deleted = create("Rahasia dihapus", "draft").await;
    app.delete(&format!("/api/v1/products/{deleted}"))
        .token(&op)
        .send()
        .await
        .expect(204);
    let patched = create("Rahasia diarsip", "draft").await;
    app.patch(&format!("/api/v1/products/{patched}"))
        .token(&op)
        .header("if-match", "*")
        .json(&json!({"status": "archived"}))
        .send()
        .await
        .expect(200);
    // Published, then deleted: phones must learn it is gone.
    let gone = create("Pernah terbit", "active").await;
    app.delete(&format!("/api/v1/products/{gone}"))
        .token(&op)
        .send()
        .await
        .expect(204);
    // A draft that is published later.
    let later = create("Terbit kemudian", "draft").await;
    let r = app
        .patch(&format!("/api/v1/products/{later}"))
        .token(&op)
        .header("if-match", "*")
        .json(&json!({"status": "inactive"}))
        .send()
        .await
        .expect(200);
    assert!(r["published_at"].is_string(), "{r}");

    let b_member = app.login(&w.b.member.phone, B).await;
    for token in [None, Some(b_member.as_str())] {
        let items = sync_all(&app, token, "2000-01-01T00:00:00Z").await;
        let seen: BTreeMap<String, (String, bool)> = items
            .iter()
            .map(|p| {
                (
                    p["name"].as_str().unwrap().to_string(),
                    (
                        p["status"].as_str().unwrap().to_string(),
                        p["available"].as_bool().unwrap(),
                    ),
                )
            })
            .collect();
        let expected: BTreeMap<String, (String, bool)> = [
            ("Publik", "active", true),
            ("Bakpia", "active", false),
            ("Pernah terbit", "archived", false),
            ("Terbit kemudian", "inactive", false),
        ]
        .into_iter()
        .map(|(n, s, a)| (n.to_string(), (s.to_string(), a)))
        .collect();
        assert_eq!(seen, expected);
        let text = serde_json::to_string(&items).unwrap();
        assert!(!text.contains("Rahasia"), "{text}");
    }
    // Catalogue and detail: only what is public.
    let all = app
        .get("/api/v1/products?limit=100")
        .send()
        .await
        .expect(200);
    assert_eq!(names(&all), ["Publik"]);
    let r = app
        .get("/api/v1/products?q=rahasia")
        .send()
        .await
        .expect(200);
    assert!(names(&r).is_empty(), "{r}");
    for id in [
        pending.to_string(),
        rejected.to_string(),
        suspended.to_string(),
        draft.clone(),
        deleted.clone(),
        patched.clone(),
    ] {
        app.get(&format!("/api/v1/products/{id}"))
            .send()
            .await
            .expect_problem(404, "not-found");
        app.get(&format!("/api/v1/products/{id}"))
            .token(&b_member)
            .send()
            .await
            .expect_problem(404, "not-found");
    }
    for id in [public.to_string(), gone, later] {
        app.get(&format!("/api/v1/products/{id}"))
            .send()
            .await
            .expect(200);
    }
    // The shop's operator still sees its deleted draft.
    let d = app
        .get(&format!("/api/v1/products/{deleted}"))
        .token(&op)
        .send()
        .await
        .expect(200);
    assert_eq!(
        (d["status"].as_str(), d["published_at"].is_null()),
        (Some("archived"), true)
    );

    // The database holds the rule whatever the code does: published stays published, and a
    // published product cannot be a draft.
    app.with_conn(|c| {
        use diesel::prelude::*;
        use pasar::db::schema::products;
        let public_id = public;
        diesel::update(products::table.find(public_id))
            .set(products::published_at.eq(None::<chrono::DateTime<chrono::Utc>>))
            .execute(c)
            .unwrap();
        let kept: Option<chrono::DateTime<chrono::Utc>> = products::table
            .find(public_id)
            .select(products::published_at)
            .first(c)
            .unwrap();
        assert!(kept.is_some());
        assert!(
            diesel::update(products::table.find(public_id))
                .set(products::status.eq("draft"))
                .execute(c)
                .is_err()
        );
    });
}

#[actix_rt::test]
async fn sync_until_is_only_on_the_last_page() {
    let app = spawn_app().await;
    let w = fixtures::world(&app);
    app.with_conn(|c| {
        for i in 0..5 {
            fixtures::product(
                c,
                w.a.active_shop,
                &w.a.operator,
                A,
                &format!("Tahu {i}"),
                3000,
                5,
            );
        }
    });
    let mut cursor: Option<String> = None;
    let mut pages = Vec::new();
    loop {
        let mut path =
            "/api/v1/products?limit=2&updated_since=2000-01-01T00%3A00%3A00Z".to_string();
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let r = app.get(&path).send().await.expect(200);
        pages.push((
            r["items"].as_array().unwrap().len(),
            r["next_cursor"].is_string(),
            r["sync_until"].clone(),
        ));
        match r["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.into()),
            None => break,
        }
    }
    assert_eq!(pages.len(), 3, "{pages:?}");
    for (n, more, until) in &pages[..2] {
        assert_eq!((*n, *more, until), (2, true, &Value::Null), "{pages:?}");
    }
    let (n, more, until) = &pages[2];
    assert_eq!((*n, *more), (1, false));
    let until = until.as_str().expect("the last page carries sync_until");
    // Syncing from it finds nothing new until something changes.
    let r = app
        .get(&format!(
            "/api/v1/products?updated_since={}",
            urlencode(until)
        ))
        .send()
        .await
        .expect(200);
    assert!(r["items"].as_array().unwrap().is_empty(), "{r}");
    assert!(r["sync_until"].is_string());
    // Searches never carry it.
    let r = app.get("/api/v1/products?limit=2").send().await.expect(200);
    assert!(
        r["sync_until"].is_null() && r["next_cursor"].is_string(),
        "{r}"
    );
}

#[actix_rt::test]
async fn score_cursors_are_exact_and_garbage_is_refused() {
    let app = spawn_app().await;
    let w = fixtures::world(&app);
    app.with_conn(|c| {
        for name in [
            "Kopi Menoreh",
            "Kopi Arabika",
            "Kopi Robusta Arabika",
            "Kopi",
        ] {
            fixtures::product(c, w.a.active_shop, &w.a.operator, A, name, 3000, 5);
        }
    });
    // Walking one item at a time gives the single page's order (relevance and local).
    let member = app.login(&w.a.member.phone, A).await;
    for (base, token) in [
        ("/api/v1/products?q=kopi%20arabika&sort=relevance", None),
        ("/api/v1/products?q=kopi%20arabika", Some(member.as_str())),
        ("/api/v1/regions?q=bantul", None),
    ] {
        let auth = |r: common::Req| match token {
            Some(t) => r.token(t),
            None => r,
        };
        let whole = auth(app.get(&format!("{base}&limit=100")))
            .send()
            .await
            .expect(200);
        let whole: Vec<Value> = whole["items"].as_array().unwrap().clone();
        assert!(whole.len() >= 2, "{base}: {whole:?}");
        let mut paged = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("{base}&limit=1&cursor={c}"),
                None => format!("{base}&limit=1"),
            };
            let r = auth(app.get(&path)).send().await.expect(200);
            paged.extend(r["items"].as_array().unwrap().iter().cloned());
            match r["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.into()),
                None => break,
            }
        }
        assert_eq!(paged, whole, "{base}");
    }
    // A score as a JSON number (the old shape), NaN's bits, or noise: 400 on the cursor.
    let r = app
        .get("/api/v1/products?q=kopi&sort=relevance&limit=1")
        .send()
        .await
        .expect(200);
    let c = r["next_cursor"].as_str().unwrap();
    for bad in [
        tamper(c, "f", json!(0.5)),
        tamper(c, "f", json!("7ff8000000000000")),
        "bm90LWEtY3Vyc29y".to_string(),
    ] {
        let p = app
            .get(&format!(
                "/api/v1/products?q=kopi&sort=relevance&cursor={bad}"
            ))
            .send()
            .await
            .expect_problem(400, "validation");
        assert_eq!(field_of(&p), ["cursor"], "{p}");
    }
    let r = app
        .get("/api/v1/regions?q=bantul&limit=1")
        .send()
        .await
        .expect(200);
    let c = r["next_cursor"].as_str().unwrap();
    use base64::Engine;
    let raw: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(c)
            .unwrap(),
    )
    .unwrap();
    let old_shape = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&json!([0.5, raw[1]])).unwrap());
    app.get(&format!("/api/v1/regions?q=bantul&cursor={old_shape}"))
        .send()
        .await
        .expect_problem(400, "validation");
}

#[actix_rt::test]
async fn one_access_check_hides_private_products_from_every_action() {
    let app = spawn_app().await;
    let w = fixtures::world(&app);
    let public = app.with_conn(|c| {
        fixtures::product(c, w.a.active_shop, &w.a.operator, A, "Gula Aren", 20000, 10)
    });
    let op = app.login(&w.a.operator.phone, A).await;
    let mut body = kopi();
    body["status"] = json!("draft");
    let draft = app
        .post(&format!("/api/v1/shops/{}/products", w.a.active_shop))
        .token(&op)
        .json(&body)
        .send()
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let intruders = [
        app.login(&w.a.member.phone, A).await,
        app.login(&w.b.operator.phone, B).await,
        app.login(&w.b.admin.phone, B).await,
    ];
    async fn statuses(app: &TestApp, token: &str, id: &str) -> [u16; 5] {
        let path = format!("/api/v1/products/{id}");
        [
            app.get(&path).token(token).send().await.status.as_u16(),
            app.patch(&path)
                .token(token)
                .header("if-match", "*")
                .json(&json!({"name": "milik saya"}))
                .send()
                .await
                .status
                .as_u16(),
            app.post(&format!("{path}/stock-adjustments"))
                .token(token)
                .json(&json!({"delta": -1, "reason": "curi"}))
                .send()
                .await
                .status
                .as_u16(),
            app.get(&format!("{path}/stock-adjustments"))
                .token(token)
                .send()
                .await
                .status
                .as_u16(),
            app.delete(&path).token(token).send().await.status.as_u16(),
        ]
    }
    for t in &intruders {
        // The draft does not exist for them, whatever they try.
        assert_eq!(statuses(&app, t, &draft).await, [404; 5]);
        // The public product is visible, so changing it is refused and says why.
        assert_eq!(
            statuses(&app, t, &public.to_string()).await,
            [200, 403, 403, 403, 403]
        );
    }
    // A's village admin manages the shop's products, the draft included.
    let admin_a = app.login(&w.a.admin.phone, A).await;
    let r = app
        .post(&format!("/api/v1/products/{draft}/stock-adjustments"))
        .token(&admin_a)
        .json(&json!({"delta": 5, "reason": "stok opname"}))
        .send()
        .await
        .expect(201);
    assert_eq!(r["stock_after"], 35);
    app.get(&format!("/api/v1/products/{draft}/stock-adjustments"))
        .token(&admin_a)
        .send()
        .await
        .expect(200);
    // Statuses are typed and move only along the table.
    let path = format!("/api/v1/products/{public}");
    for (status, code) in [
        ("draft", 400),
        ("deleted", 400),
        ("inactive", 200),
        ("active", 200),
    ] {
        let r = app
            .patch(&path)
            .token(&op)
            .header("if-match", "*")
            .json(&json!({"status": status}))
            .send()
            .await;
        if code == 400 {
            assert_eq!(
                field_of(&r.expect_problem(400, "validation")),
                ["status"],
                "{status}"
            );
        } else {
            assert_eq!(r.expect(200)["status"], status);
        }
    }
    let p = app
        .get(&format!(
            "/api/v1/shops/{}/products?status=gone",
            w.a.active_shop
        ))
        .token(&op)
        .send()
        .await
        .expect_problem(400, "validation");
    assert_eq!(field_of(&p), ["status"]);
}

#[actix_rt::test]
async fn database_trouble_is_503_not_404() {
    let app = common::spawn_app_with(|c| c.db_statement_timeout_ms = 400).await;
    let w = fixtures::world(&app);
    let id = app.with_conn(|c| {
        fixtures::product(c, w.a.active_shop, &w.a.operator, A, "Gula Aren", 20000, 10)
    });
    let op = app.login(&w.a.operator.phone, A).await;
    // Someone holds the shops table (a migration, a long report): the shop check of every
    // product action times out. That is the server's trouble, not a missing product.
    let mut locker = app.db.conn();
    {
        use diesel::prelude::*;
        diesel::sql_query("BEGIN").execute(&mut locker).unwrap();
        diesel::sql_query("LOCK TABLE shops IN ACCESS EXCLUSIVE MODE")
            .execute(&mut locker)
            .unwrap();
    }
    let path = format!("/api/v1/products/{id}");
    let results = [
        app.get(&path).token(&op).send().await,
        app.patch(&path)
            .token(&op)
            .header("if-match", "*")
            .json(&json!({"price_idr": 21000}))
            .send()
            .await,
        app.post(&format!("{path}/stock-adjustments"))
            .token(&op)
            .json(&json!({"delta": -1, "reason": "terjual"}))
            .send()
            .await,
        app.get(&format!("{path}/stock-adjustments"))
            .token(&op)
            .send()
            .await,
        app.delete(&path).token(&op).send().await,
    ];
    {
        use diesel::prelude::*;
        diesel::sql_query("ROLLBACK").execute(&mut locker).unwrap();
    }
    for r in results {
        r.expect_problem(503, "unavailable");
    }
    let p = app.get(&path).token(&op).send().await.expect(200);
    assert_eq!(
        (p["version"].clone(), p["status"].clone()),
        (json!(1), json!("active"))
    );
}
