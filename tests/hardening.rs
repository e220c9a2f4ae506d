//! Regressions of issue 12 (identity and tenancy hardening), each through HTTP from the state a
//! real user is in: a token from before a change, a retried refresh, a forgotten password.

mod common;

use common::fixtures::{self, A, B, PASSWORD};
use common::{TestApp, spawn_app, spawn_app_with};
use serde_json::{Value, json};

async fn login_pair(app: &TestApp, phone: &str, password: &str, village: &str) -> Value {
    app.post("/api/v1/auth/login")
        .json(&json!({"phone": phone, "password": password, "village_code": village}))
        .send()
        .await
        .expect(200)
}

async fn refresh(app: &TestApp, token: &str) -> common::Resp {
    app.post("/api/v1/auth/refresh")
        .json(&json!({"refresh_token": token}))
        .send()
        .await
}

fn s(v: &Value) -> &str {
    v.as_str().expect("a string")
}

#[actix_rt::test]
async fn a_password_belongs_to_its_person() {
    let app = spawn_app().await;
    let w = fixtures::world(&app);
    let admin_a = app.login(&w.a.admin.phone, A).await;
    let admin_b = app.login(&w.b.admin.phone, B).await;
    let p = "081377700001";
    app.post(&format!("/api/v1/villages/{A}/members"))
        .token(&admin_a)
        .json(&json!({"phone": p, "name": "Bu Sri", "password": "sandi-dari-a-1", "roles": ["member"]}))
        .send()
        .await
        .expect(201);
    // B's admin may not set (and so learn) the person's password, nor have it silently dropped.
    app.post(&format!("/api/v1/villages/{B}/members"))
        .token(&admin_b)
        .json(&json!({"phone": p, "name": "Bu Sri", "password": "sandi-dari-b-1", "roles": ["treasurer"]}))
        .send()
        .await
        .expect_problem(409, "account-exists");
    app.post(&format!("/api/v1/villages/{B}/members"))
        .token(&admin_b)
        .json(&json!({"phone": p, "name": "Someone Else", "roles": ["treasurer"]}))
        .send()
        .await
        .expect_problem(409, "account-exists");
    app.post(&format!("/api/v1/villages/{B}/members"))
        .token(&admin_b)
        .json(&json!({"phone": p, "roles": ["treasurer"]}))
        .send()
        .await
        .expect(201);
    // Nothing was written by the refused requests: B's password never works.
    app.post("/api/v1/auth/login")
        .json(&json!({"phone": p, "password": "sandi-dari-b-1", "village_code": B}))
        .send()
        .await
        .expect_problem(401, "unauthorized");

    // The person changes the first password; their other sessions end, this one goes on.
    let phone_1 = login_pair(&app, p, "sandi-dari-a-1", A).await;
    let phone_2 = login_pair(&app, p, "sandi-dari-a-1", B).await;
    let bad = app
        .post("/api/v1/me/password")
        .token(s(&phone_1["access_token"]))
        .json(&json!({"current_password": "wrong-password", "new_password": "milik-saya-sendiri"}))
        .send()
        .await
        .expect_problem(400, "validation");
    assert_eq!(bad["errors"][0]["field"], "current_password");
    app.post("/api/v1/me/password")
        .token(s(&phone_1["access_token"]))
        .json(&json!({"current_password": "sandi-dari-a-1", "new_password": "pendek"}))
        .send()
        .await
        .expect_problem(400, "validation");
    app.post("/api/v1/me/password")
        .token(s(&phone_1["access_token"]))
        .json(&json!({"current_password": "sandi-dari-a-1", "new_password": "milik-saya-sendiri"}))
        .send()
        .await
        .expect(204);
    refresh(&app, s(&phone_2["refresh_token"]))
        .await
        .expect_problem(401, "unauthorized");
    refresh(&app, s(&phone_1["refresh_token"]))
        .await
        .expect(200);
    app.post("/api/v1/auth/login")
        .json(&json!({"phone": p, "password": "sandi-dari-a-1", "village_code": A}))
        .send()
        .await
        .expect_problem(401, "unauthorized");
    login_pair(&app, p, "milik-saya-sendiri", B).await;
}

#[actix_rt::test]
async fn a_forgotten_password_is_reset_with_a_one_time_code() {
    let app = spawn_app().await;
    let w = fixtures::world(&app);
    let member = &w.a.member;
    let session = login_pair(&app, &member.phone, PASSWORD, A).await;
    let treasurer = app.login(&w.a.treasurer.phone, A).await;
    let admin_b = app.login(&w.b.admin.phone, B).await;
    // Another village's admin issues nothing for A's members.
    app.post(&format!(
        "/api/v1/villages/{A}/members/{}/password-reset",
        member.id
    ))
    .token(&admin_b)
    .send()
    .await
    .expect_problem(403, "forbidden");
    // A treasurer may not take over an admin's account.
    app.post(&format!(
        "/api/v1/villages/{A}/members/{}/password-reset",
        w.a.admin.id
    ))
    .token(&treasurer)
    .send()
    .await
    .expect_problem(403, "forbidden");
    let code = app
        .post(&format!(
            "/api/v1/villages/{A}/members/{}/password-reset",
            member.id
        ))
        .token(&treasurer)
        .send()
        .await
        .expect(201);
    let code = s(&code["code"]).to_string();
    let reset = |code: String, password: &'static str| {
        let phone = member.phone.clone();
        let app = &app;
        async move {
            app.post("/api/v1/auth/password-reset")
                .json(&json!({"phone": phone, "code": code, "new_password": password}))
                .send()
                .await
        }
    };
    reset("ABCDE-FGHJK".into(), "sandi-baru-sekali")
        .await
        .expect_problem(401, "unauthorized");
    // Case and dash do not matter (a code read out over the counter).
    reset(code.to_lowercase().replace('-', ""), "sandi-baru-sekali")
        .await
        .expect(204);
    reset(code.clone(), "sandi-baru-kedua")
        .await
        .expect_problem(401, "unauthorized");
    refresh(&app, s(&session["refresh_token"]))
        .await
        .expect_problem(401, "unauthorized");
    login_pair(&app, &member.phone, "sandi-baru-sekali", A).await;
    let admin = app.login(&w.a.admin.phone, A).await;
    let audit = app
        .get(&format!("/api/v1/villages/{A}/audit"))
        .token(&admin)
        .send()
        .await
        .expect(200);
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"member.password_reset_issued"));
    assert!(actions.contains(&"member.password_reset_used"));
    assert!(
        !audit.to_string().contains(&code),
        "the code is never logged"
    );
}

#[actix_rt::test]
async fn demoted_or_removed_admins_lose_their_power_at_once() {
    let app = spawn_app().await;
    let w = fixtures::world(&app);
    let admin = app.login(&w.a.admin.phone, A).await;
    // A second admin, who logs in while still admin.
    app.patch(&format!(
        "/api/v1/villages/{A}/members/{}",
        w.a.treasurer.id
    ))
    .token(&admin)
    .json(&json!({"roles": ["admin", "treasurer"]}))
    .send()
    .await
    .expect(200);
    let second = login_pair(&app, &w.a.treasurer.phone, PASSWORD, A).await;
    let stale = s(&second["access_token"]).to_string();
    app.patch(&format!(
        "/api/v1/villages/{A}/members/{}",
        w.a.treasurer.id
    ))
    .token(&admin)
    .json(&json!({"roles": ["treasurer"]}))
    .send()
    .await
    .expect(200);
    // Its token still says admin; the database says otherwise.
    app.patch(&format!(
        "/api/v1/villages/{A}/members/{}",
        w.a.treasurer.id
    ))
    .token(&stale)
    .json(&json!({"roles": ["admin", "treasurer"]}))
    .send()
    .await
    .expect_problem(403, "forbidden");
    app.patch(&format!("/api/v1/villages/{A}"))
        .token(&stale)
        .json(&json!({"village_share_bps": 9000}))
        .send()
        .await
        .expect_problem(403, "forbidden");
    app.post(&format!("/api/v1/shops/{}/approve", w.a.pending_shop))
        .token(&stale)
        .send()
        .await
        .expect_problem(403, "forbidden");
    // The role change ended its sessions.
    refresh(&app, s(&second["refresh_token"]))
        .await
        .expect_problem(401, "unauthorized");

    // A removed admin cannot add itself back with its old token, nor refresh.
    app.patch(&format!("/api/v1/villages/{A}/members/{}", w.a.member.id))
        .token(&admin)
        .json(&json!({"roles": ["admin"]}))
        .send()
        .await
        .expect(200);
    let removed = login_pair(&app, &w.a.member.phone, PASSWORD, A).await;
    app.delete(&format!("/api/v1/villages/{A}/members/{}", w.a.member.id))
        .token(&admin)
        .send()
        .await
        .expect(204);
    app.post(&format!("/api/v1/villages/{A}/members"))
        .token(s(&removed["access_token"]))
        .json(&json!({"phone": w.a.member.phone, "roles": ["admin"]}))
        .send()
        .await
        .expect_problem(403, "forbidden");
    refresh(&app, s(&removed["refresh_token"]))
        .await
        .expect_problem(401, "unauthorized");
    let members = app
        .get(&format!("/api/v1/villages/{A}/members?limit=100"))
        .token(&admin)
        .send()
        .await
        .expect(200);
    assert!(
        !members.to_string().contains(&w.a.member.id.to_string()),
        "the removed admin is not back"
    );
}

#[actix_rt::test]
async fn two_admins_removing_each_other_leave_one() {
    let app = spawn_app().await;
    let w = fixtures::world(&app);
    let first = app.login(&w.a.admin.phone, A).await;
    app.patch(&format!("/api/v1/villages/{A}/members/{}", w.a.member.id))
        .token(&first)
        .json(&json!({"roles": ["admin"]}))
        .send()
        .await
        .expect(200);
    let second = app.login(&w.a.member.phone, A).await;
    let (x, y) = tokio::join!(
        app.delete(&format!("/api/v1/villages/{A}/members/{}", w.a.member.id))
            .token(&first)
            .send(),
        app.delete(&format!("/api/v1/villages/{A}/members/{}", w.a.admin.id))
            .token(&second)
            .send(),
    );
    let ok = [x.status.as_u16(), y.status.as_u16()]
        .iter()
        .filter(|s| **s == 204)
        .count();
    assert_eq!(ok, 1, "exactly one removal wins: {x:?} {y:?}");
    let admins: i64 = app.with_conn(|c| {
        use diesel::prelude::*;
        use pasar::db::schema::memberships;
        memberships::table
            .filter(memberships::village_code.eq(A))
            .filter(memberships::roles.contains(vec!["admin".to_string()]))
            .count()
            .get_result(c)
            .unwrap()
    });
    assert_eq!(admins, 1);
    // Nor can the last admin be demoted by another path.
    let last = if x.status.as_u16() == 204 {
        &first
    } else {
        &second
    };
    let last_id = if x.status.as_u16() == 204 {
        w.a.admin.id
    } else {
        w.a.member.id
    };
    app.patch(&format!("/api/v1/villages/{A}/members/{last_id}"))
        .token(last)
        .json(&json!({"roles": ["member"]}))
        .send()
        .await
        .expect_problem(409, "conflict");
}

#[actix_rt::test]
async fn removing_a_member_unlinks_their_shops() {
    let app = spawn_app().await;
    let w = fixtures::world(&app);
    let admin = app.login(&w.a.admin.phone, A).await;
    let op = app.login(&w.a.operator.phone, A).await;
    app.delete(&format!("/api/v1/villages/{A}/members/{}", w.a.operator.id))
        .token(&admin)
        .send()
        .await
        .expect(204);
    // The old token no longer manages the shop.
    app.patch(&format!("/api/v1/shops/{}", w.a.active_shop))
        .token(&op)
        .json(&json!({"pickup": false}))
        .send()
        .await
        .expect_problem(403, "forbidden");
    let ops = app
        .get(&format!("/api/v1/shops/{}/operators", w.a.active_shop))
        .token(&admin)
        .send()
        .await
        .expect(200);
    assert_eq!(ops["items"], json!([]));
}

#[actix_rt::test]
async fn a_refresh_retry_gets_the_same_successor_and_never_forks() {
    let app = spawn_app_with(|c| c.refresh_reuse_grace_secs = 30).await;
    let w = fixtures::world(&app);
    let pair = login_pair(&app, &w.a.member.phone, PASSWORD, A).await;
    let token = s(&pair["refresh_token"]).to_string();
    // Ten at once (a flaky link retrying, or a thief racing the owner).
    let all = futures_util::future::join_all((0..10).map(|_| refresh(&app, &token))).await;
    let successors: std::collections::BTreeSet<String> = all
        .into_iter()
        .map(|r| s(&r.expect(200)["refresh_token"]).to_string())
        .collect();
    assert_eq!(successors.len(), 1, "one successor, one chain");
    let next = successors.into_iter().next().unwrap();
    // A later retry within the grace: still the same one.
    let again = refresh(&app, &token).await.expect(200);
    assert_eq!(s(&again["refresh_token"]), next);
    let third = refresh(&app, &next).await.expect(200);
    assert_ne!(s(&third["refresh_token"]), next);
}

#[actix_rt::test]
async fn reuse_after_the_grace_and_logout_end_the_session() {
    // Grace 0 (the test default): every second presentation is reuse.
    let app = spawn_app().await;
    let w = fixtures::world(&app);
    let pair = login_pair(&app, &w.a.member.phone, PASSWORD, A).await;
    let first = s(&pair["refresh_token"]).to_string();
    let second = refresh(&app, &first).await.expect(200);
    let second = s(&second["refresh_token"]).to_string();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    refresh(&app, &first)
        .await
        .expect_problem(401, "unauthorized");
    refresh(&app, &second)
        .await
        .expect_problem(401, "unauthorized");

    // Logout racing rotations: afterwards no token of the session works.
    let pair = login_pair(&app, &w.a.member.phone, PASSWORD, A).await;
    let token = s(&pair["refresh_token"]).to_string();
    let logout = app
        .post("/api/v1/auth/logout")
        .json(&json!({"refresh_token": token}))
        .send();
    let rotations = futures_util::future::join_all((0..8).map(|_| refresh(&app, &token)));
    let (out, rotated) = tokio::join!(logout, rotations);
    assert_eq!(out.status.as_u16(), 204);
    for r in rotated {
        if r.status.as_u16() == 200 {
            refresh(&app, s(&r.body["refresh_token"]))
                .await
                .expect_problem(401, "unauthorized");
        }
    }

    // A session ends at its absolute lifetime, however often it is refreshed.
    let pair = login_pair(&app, &w.a.member.phone, PASSWORD, A).await;
    app.with_conn(|c| {
        use diesel::prelude::*;
        diesel::sql_query("UPDATE refresh_families SET expires_at = now() - interval '1 second'")
            .execute(c)
            .unwrap();
    });
    refresh(&app, s(&pair["refresh_token"]))
        .await
        .expect_problem(401, "unauthorized");
}

#[actix_rt::test]
async fn lists_refuse_unknown_parameters_and_are_pages() {
    let app = spawn_app().await;
    let w = fixtures::world(&app);
    let admin = app.login(&w.a.admin.phone, A).await;
    let op = app.login(&w.a.operator.phone, A).await;
    let product = app.with_conn(|c| {
        fixtures::product(c, w.a.active_shop, &w.a.operator, A, "Gula Jawa", 12_000, 5)
    });
    for (path, token) in [
        (format!("/api/v1/villages/{A}/members?colour=red"), &admin),
        (format!("/api/v1/villages/{A}/audit?colour=red"), &admin),
        ("/api/v1/networks?colour=red".to_string(), &admin),
        ("/api/v1/regions/34/children?colour=red".to_string(), &admin),
        (format!("/api/v1/villages/{A}/bumdes?colour=red"), &admin),
        (
            format!("/api/v1/shops/{}/operators?colour=red", w.a.active_shop),
            &op,
        ),
        (
            format!("/api/v1/products/{product}/stock-adjustments?colour=red"),
            &op,
        ),
    ] {
        let p = app
            .get(&path)
            .token(token)
            .send()
            .await
            .expect_problem(400, "validation");
        assert_eq!(p["errors"][0]["field"], "colour", "{path}");
    }
    for path in [
        format!("/api/v1/villages/{A}/bumdes"),
        format!("/api/v1/shops/{}/operators", w.a.active_shop),
    ] {
        let page = app.get(&path).token(&op).send().await.expect(200);
        assert!(page["items"].is_array(), "{path}: {page}");
        assert!(page.get("next_cursor").is_some(), "{path}: {page}");
    }
}

#[actix_rt::test]
async fn a_shop_decision_changes_its_products_etag() {
    let app = spawn_app().await;
    let w = fixtures::world(&app);
    let admin = app.login(&w.a.admin.phone, A).await;
    let product = app
        .with_conn(|c| fixtures::product(c, w.a.active_shop, &w.a.operator, A, "Emping", 9_000, 5));
    let before = app.get(&format!("/api/v1/products/{product}")).send().await;
    let etag = before.header("etag").unwrap().to_string();
    app.post(&format!("/api/v1/shops/{}/suspend", w.a.active_shop))
        .token(&admin)
        .json(&json!({"reason": "audit stok"}))
        .send()
        .await
        .expect(200);
    app.post(&format!("/api/v1/shops/{}/approve", w.a.active_shop))
        .token(&admin)
        .send()
        .await
        .expect(200);
    // Available again, but it changed twice: a cached copy is not "not modified".
    let after = app
        .get(&format!("/api/v1/products/{product}"))
        .header("if-none-match", &etag)
        .send()
        .await;
    assert_eq!(after.status.as_u16(), 200);
    assert_ne!(after.header("etag").unwrap(), etag);
}

#[actix_rt::test]
async fn concurrent_shop_patches_lose_no_field() {
    let app = spawn_app().await;
    let w = fixtures::world(&app);
    let op = app.login(&w.a.operator.phone, A).await;
    let shop = w.a.active_shop;
    for i in 0..8 {
        let name = format!("Lapak Ke-{i}");
        let fee = 1_000 * (i + 1);
        let (a, b) = tokio::join!(
            app.patch(&format!("/api/v1/shops/{shop}"))
                .token(&op)
                .json(&json!({"name": name}))
                .send(),
            app.patch(&format!("/api/v1/shops/{shop}"))
                .token(&op)
                .json(&json!({"delivery_fee_village_idr": fee}))
                .send(),
        );
        a.expect(200);
        b.expect(200);
        let now = app
            .get(&format!("/api/v1/shops/{shop}"))
            .send()
            .await
            .expect(200);
        assert_eq!(now["name"], json!(name));
        assert_eq!(now["delivery_fee_village_idr"], json!(fee));
    }
}
