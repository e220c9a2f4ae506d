//! Identity and tenancy: login, tokens, refresh rotation, rate limits, villages, shops, and the
//! cross-village authorization matrix.

mod common;

use common::fixtures::{self, A, B, OUTSIDE, PASSWORD};
use common::{JWT_SECRET, spawn_app, spawn_app_with};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use uuid::Uuid;

#[actix_rt::test]
async fn login_me_and_phone_spellings() {
    let app = spawn_app().await;
    let w = fixtures::world(&app);
    let national = w.a.operator.phone.replacen("+62", "0", 1);
    let no_plus = w.a.operator.phone.trim_start_matches('+').to_string();
    for phone in [w.a.operator.phone.clone(), national, no_plus] {
        let body = app
            .post("/api/v1/auth/login")
            .json(&json!({"phone": phone, "password": PASSWORD, "village_code": A}))
            .send()
            .await
            .expect(200);
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 900);
        assert!(body["refresh_token"].as_str().unwrap().len() >= 40);
    }
    let token = app.login(&w.a.operator.phone, A).await;
    let me = app.get("/api/v1/me").token(&token).send().await.expect(200);
    assert_eq!(me["id"], w.a.operator.id.to_string());
    assert_eq!(me["phone"], w.a.operator.phone);
    assert_eq!(me["village_code"], A);
    assert_eq!(me["roles"], json!(["member"]));
    let mut shops: Vec<String> = me["shops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    shops.sort();
    let mut expected = vec![w.a.active_shop.to_string(), w.a.pending_shop.to_string()];
    expected.sort();
    assert_eq!(shops, expected);

    // Wrong password, unknown phone, a village the user is not a member of: the same 401.
    for (phone, password, village) in [
        (w.a.operator.phone.as_str(), "wrong-password", A),
        ("+6289999999999", PASSWORD, A),
        (w.a.operator.phone.as_str(), PASSWORD, B),
        (w.a.operator.phone.as_str(), PASSWORD, "34.02.15.2001"),
    ] {
        let p = app
            .post("/api/v1/auth/login")
            .json(&json!({"phone": phone, "password": password, "village_code": village}))
            .send()
            .await
            .expect_problem(401, "unauthorized");
        assert_eq!(p["detail"], "invalid phone, password or village");
    }
    // Bad input is 400 and names the field.
    let p = app
        .post("/api/v1/auth/login")
        .json(&json!({"phone": "12345", "password": "x", "village_code": A}))
        .send()
        .await
        .expect_problem(400, "validation");
    assert_eq!(p["errors"][0]["field"], "phone");
    // Only platform admins have a session without a village.
    app.post("/api/v1/auth/login")
        .json(&json!({"phone": w.a.member.phone, "password": PASSWORD}))
        .send()
        .await
        .expect_problem(401, "unauthorized");
    let p = app
        .post("/api/v1/auth/login")
        .json(&json!({"phone": "0812", "password": "x", "village_code": A, "admin": true}))
        .send()
        .await
        .expect_problem(400, "validation");
    assert_eq!(p["errors"][0]["field"], "admin");
    app.post("/api/v1/auth/login")
        .raw("application/json", "{\"phone\":")
        .send()
        .await
        .expect_problem(400, "bad-request");
    app.post("/api/v1/auth/login")
        .raw("text/plain", "hello")
        .send()
        .await
        .expect_problem(400, "bad-request");
    let big = format!(
        "{{\"phone\":\"{}\",\"password\":\"x\",\"village_code\":\"x\"}}",
        "1".repeat(100_000)
    );
    app.post("/api/v1/auth/login")
        .raw("application/json", big)
        .send()
        .await
        .expect_problem(413, "payload-too-large");
    app.get("/api/v1/me")
        .send()
        .await
        .expect_problem(401, "unauthorized");
    // PostgreSQL cannot store NUL: a 400, not a 500.
    let nul = json!({"phone": w.a.member.phone, "password": PASSWORD, "village_code": "34\u{0}"});
    app.post("/api/v1/auth/login")
        .json(&nul)
        .send()
        .await
        .expect_problem(400, "bad-request");
}

fn claims(now: i64) -> Value {
    json!({
        "sub": Uuid::now_v7(), "village": A, "roles": ["admin"], "iat": now, "nbf": now,
        "exp": now + 600, "iss": "pasar", "aud": "pasar-api", "jti": Uuid::now_v7(),
        "sid": Uuid::now_v7(),
    })
}

fn sign(claims: &Value, kid: Option<&str>, secret: &str) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

#[actix_rt::test]
async fn strict_token_validation() {
    let app = spawn_app().await;
    let w = fixtures::world(&app);
    let now = chrono::Utc::now().timestamp();
    let mut good = claims(now);
    good["sub"] = json!(w.a.admin.id);
    // Control: a well-formed token is accepted, so each rejection below is about its one defect.
    app.get("/api/v1/me")
        .token(&sign(&good, Some("k1"), JWT_SECRET))
        .send()
        .await
        .expect(200);

    let mut cases: Vec<(&str, String)> = Vec::new();
    let with = |k: &str, v: Value| {
        let mut c = good.clone();
        c[k] = v;
        c
    };
    cases.push((
        "expired",
        sign(&with("exp", json!(now - 60)), Some("k1"), JWT_SECRET),
    ));
    cases.push((
        "not yet valid",
        sign(&with("nbf", json!(now + 120)), Some("k1"), JWT_SECRET),
    ));
    cases.push((
        "wrong aud",
        sign(&with("aud", json!("someone-else")), Some("k1"), JWT_SECRET),
    ));
    cases.push((
        "wrong iss",
        sign(&with("iss", json!("evil")), Some("k1"), JWT_SECRET),
    ));
    cases.push(("unknown kid", sign(&good, Some("k9"), JWT_SECRET)));
    cases.push(("no kid", sign(&good, None, JWT_SECRET)));
    cases.push((
        "other secret",
        sign(
            &good,
            Some("k1"),
            "another-secret-another-secret-0123456789",
        ),
    ));
    for claim in [
        "sub", "village", "roles", "iat", "nbf", "exp", "iss", "aud", "jti", "sid",
    ] {
        let mut c = good.clone();
        c.as_object_mut().unwrap().remove(claim);
        cases.push(("missing claim", sign(&c, Some("k1"), JWT_SECRET)));
    }
    // Tampered: the payload changed after signing (roles escalated).
    let t = sign(&good, Some("k1"), JWT_SECRET);
    let parts: Vec<&str> = t.split('.').collect();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let forged =
        b64.encode(serde_json::to_vec(&with("roles", json!(["admin", "platform_admin"]))).unwrap());
    cases.push(("tampered", format!("{}.{}.{}", parts[0], forged, parts[2])));
    // alg none, unsigned.
    let none_header = b64.encode(br#"{"alg":"none","typ":"JWT","kid":"k1"}"#);
    cases.push(("alg none", format!("{none_header}.{}.", parts[1])));
    // HS512 with the right secret: only HS256 is accepted.
    let mut h512 = Header::new(Algorithm::HS512);
    h512.kid = Some("k1".into());
    cases.push((
        "HS512",
        jsonwebtoken::encode(
            &h512,
            &good,
            &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
        )
        .unwrap(),
    ));
    cases.push(("garbage", "not.a.token".into()));
    for (what, token) in cases {
        let r = app.get("/api/v1/me").token(&token).send().await;
        assert_eq!(r.status.as_u16(), 401, "{what} was accepted: {}", r.body);
    }
}

#[actix_rt::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let app = spawn_app().await;
    let w = fixtures::world(&app);
    let login = app
        .post("/api/v1/auth/login")
        .json(&json!({"phone": w.a.member.phone, "password": PASSWORD, "village_code": A}))
        .send()
        .await
        .expect(200);
    let r0 = login["refresh_token"].as_str().unwrap().to_string();
    let p1 = app
        .post("/api/v1/auth/refresh")
        .json(&json!({"refresh_token": r0}))
        .send()
        .await
        .expect(200);
    let r1 = p1["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(r0, r1);
    app.get("/api/v1/me")
        .token(p1["access_token"].as_str().unwrap())
        .send()
        .await
        .expect(200);
    let p2 = app
        .post("/api/v1/auth/refresh")
        .json(&json!({"refresh_token": r1}))
        .send()
        .await
        .expect(200);
    let r2 = p2["refresh_token"].as_str().unwrap().to_string();
    // r0 comes back (stolen copy): rejected, and the family with it, so r2 stops working too.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    app.post("/api/v1/auth/refresh")
        .json(&json!({"refresh_token": r0}))
        .send()
        .await
        .expect_problem(401, "unauthorized");
    app.post("/api/v1/auth/refresh")
        .json(&json!({"refresh_token": r2}))
        .send()
        .await
        .expect_problem(401, "unauthorized");
    app.post("/api/v1/auth/refresh")
        .json(&json!({"refresh_token": "made-up"}))
        .send()
        .await
        .expect_problem(401, "unauthorized");

    // Logout ends a fresh session; other sessions of the same user live on.
    let s1 = app
        .post("/api/v1/auth/login")
        .json(&json!({"phone": w.a.member.phone, "password": PASSWORD, "village_code": A}))
        .send()
        .await
        .expect(200);
    let s2 = app
        .post("/api/v1/auth/login")
        .json(&json!({"phone": w.a.member.phone, "password": PASSWORD, "village_code": A}))
        .send()
        .await
        .expect(200);
    app.post("/api/v1/auth/logout")
        .json(&json!({"refresh_token": s1["refresh_token"]}))
        .send()
        .await
        .expect(204);
    app.post("/api/v1/auth/logout")
        .json(&json!({"refresh_token": s1["refresh_token"]}))
        .send()
        .await
        .expect(204);
    app.post("/api/v1/auth/refresh")
        .json(&json!({"refresh_token": s1["refresh_token"]}))
        .send()
        .await
        .expect_problem(401, "unauthorized");
    app.post("/api/v1/auth/refresh")
        .json(&json!({"refresh_token": s2["refresh_token"]}))
        .send()
        .await
        .expect(200);
}

#[actix_rt::test]
async fn reuse_within_grace_is_a_lost_response_not_theft() {
    let app = spawn_app_with(|c| c.refresh_reuse_grace_secs = 30).await;
    let w = fixtures::world(&app);
    let login = app
        .post("/api/v1/auth/login")
        .json(&json!({"phone": w.a.member.phone, "password": PASSWORD, "village_code": A}))
        .send()
        .await
        .expect(200);
    let r0 = login["refresh_token"].clone();
    let first = app
        .post("/api/v1/auth/refresh")
        .json(&json!({"refresh_token": r0}))
        .send()
        .await
        .expect(200);
    // The client never saw `first` and retries with r0: it gets a working pair, and `first`'s
    // token is not revoked either.
    let retry = app
        .post("/api/v1/auth/refresh")
        .json(&json!({"refresh_token": r0}))
        .send()
        .await
        .expect(200);
    app.post("/api/v1/auth/refresh")
        .json(&json!({"refresh_token": retry["refresh_token"]}))
        .send()
        .await
        .expect(200);
    app.post("/api/v1/auth/refresh")
        .json(&json!({"refresh_token": first["refresh_token"]}))
        .send()
        .await
        .expect(200);
}

#[actix_rt::test]
async fn removed_member_cannot_refresh() {
    let app = spawn_app().await;
    let w = fixtures::world(&app);
    let login = app
        .post("/api/v1/auth/login")
        .json(&json!({"phone": w.a.member.phone, "password": PASSWORD, "village_code": A}))
        .send()
        .await
        .expect(200);
    let admin = app.login(&w.a.admin.phone, A).await;
    app.delete(&format!("/api/v1/villages/{A}/members/{}", w.a.member.id))
        .token(&admin)
        .send()
        .await
        .expect(204);
    app.post("/api/v1/auth/refresh")
        .json(&json!({"refresh_token": login["refresh_token"]}))
        .send()
        .await
        .expect_problem(401, "unauthorized");
}

#[actix_rt::test]
async fn login_is_rate_limited_per_phone_and_per_address() {
    let app = spawn_app_with(|c| {
        c.login_limit_phone = 3;
        c.login_limit_ip = 6;
    })
    .await;
    let w = fixtures::world(&app);
    let attempt = |phone: String, password: &'static str| {
        let app = &app;
        async move {
            app.post("/api/v1/auth/login")
                .json(&json!({"phone": phone, "password": password, "village_code": A}))
                .send()
                .await
        }
    };
    for _ in 0..3 {
        attempt(w.a.member.phone.clone(), "wrong-password")
            .await
            .expect_problem(401, "unauthorized");
    }
    // Fourth try for this phone: refused before the password is even checked.
    let r = attempt(w.a.member.phone.clone(), PASSWORD).await;
    let retry: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry));
    r.expect_problem(429, "rate-limited");
    // Another phone still logs in, until the address reaches its own limit (6).
    attempt(w.a.admin.phone.clone(), PASSWORD).await.expect(200);
    attempt(w.a.treasurer.phone.clone(), PASSWORD)
        .await
        .expect(200);
    attempt("+6281234500001".into(), PASSWORD)
        .await
        .expect_problem(429, "rate-limited");
    // The counters live in PostgreSQL: a second server process sees them.
    let count: i64 = app.with_conn(|c| {
        use diesel::prelude::*;
        pasar::db::schema::login_attempts::table
            .count()
            .get_result(c)
            .unwrap()
    });
    assert!(count >= 2);
}

#[actix_rt::test]
async fn walkthrough_onboard_members_shop_approval() {
    let app = spawn_app().await;
    let platform = app.with_conn(|c| fixtures::platform_admin(c, "+6281100000009"));
    // No village exists yet: the platform admin logs in without one (platform-scoped).
    let root = app.login_platform(&platform.phone).await;
    let v = app
        .post("/api/v1/villages")
        .token(&root)
        .json(&json!({"code": A}))
        .send()
        .await
        .expect(201);
    assert_eq!(v["name"], "Panggungharjo");
    app.post("/api/v1/villages")
        .token(&root)
        .json(&json!({"code": A}))
        .send()
        .await
        .expect_problem(409, "conflict");
    let p = app
        .post("/api/v1/villages")
        .token(&root)
        .json(&json!({"code": "34.02.15"}))
        .send()
        .await
        .expect_problem(400, "validation");
    assert_eq!(p["errors"][0]["field"], "code");
    app.post("/api/v1/villages")
        .token(&root)
        .json(&json!({"code": "99.99.99.9999"}))
        .send()
        .await
        .expect_problem(400, "validation");

    // The platform admin appoints the village admin; the admin adds a member.
    app.post(&format!("/api/v1/villages/{A}/members")).token(&root)
        .json(&json!({"phone": "081355500001", "name": "Bu Lurah", "password": "kata-sandi-1", "roles": ["admin"]}))
        .send().await.expect(201);
    let admin = app
        .post("/api/v1/auth/login")
        .json(&json!({"phone": "081355500001", "password": "kata-sandi-1", "village_code": A}))
        .send()
        .await
        .expect(200);
    let admin = admin["access_token"].as_str().unwrap().to_string();
    let m = app.post(&format!("/api/v1/villages/{A}/members")).token(&admin)
        .json(&json!({"phone": "081355500002", "name": "Pak Tani", "password": "kata-sandi-2", "roles": ["member"]}))
        .send().await.expect(201);
    assert_eq!(m["phone"], "+6281355500002");
    app.post(&format!("/api/v1/villages/{A}/members"))
        .token(&admin)
        .json(&json!({"phone": "081355500002", "roles": ["member"]}))
        .send()
        .await
        .expect_problem(409, "conflict");
    // A password belongs to its person: never set for an existing account.
    app.post(&format!("/api/v1/villages/{A}/members")).token(&admin)
        .json(&json!({"phone": "081355500002", "name": "Pak Tani", "password": "kata-sandi-2", "roles": ["member"]}))
        .send().await.expect_problem(409, "account-exists");
    let p = app
        .post(&format!("/api/v1/villages/{A}/members"))
        .token(&admin)
        .json(&json!({"phone": "0213", "name": "", "password": "short", "roles": ["king"]}))
        .send()
        .await
        .expect_problem(400, "validation");
    let fields: Vec<&str> = p["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["phone", "name", "password", "roles"]);

    // The member applies for a shop; the admin approves; the operator logs in and sees it.
    let member = app
        .post("/api/v1/auth/login")
        .json(&json!({"phone": "+6281355500002", "password": "kata-sandi-2", "village_code": A}))
        .send()
        .await
        .expect(200);
    let member = member["access_token"].as_str().unwrap().to_string();
    let shop = app
        .post(&format!("/api/v1/villages/{A}/shops"))
        .token(&member)
        .json(&json!({"name": "Kopi Pak Tani", "description": "Kopi robusta", "kind": "umkm"}))
        .send()
        .await
        .expect(201);
    assert_eq!(shop["status"], "pending");
    let id = shop["id"].as_str().unwrap().to_string();
    // Not public until approved.
    app.get(&format!("/api/v1/shops/{id}"))
        .send()
        .await
        .expect_problem(404, "not-found");
    app.post(&format!("/api/v1/shops/{id}/approve"))
        .token(&member)
        .send()
        .await
        .expect_problem(403, "forbidden");
    let approved = app
        .post(&format!("/api/v1/shops/{id}/approve"))
        .token(&admin)
        .send()
        .await
        .expect(200);
    assert_eq!(approved["status"], "active");
    app.post(&format!("/api/v1/shops/{id}/approve"))
        .token(&admin)
        .send()
        .await
        .expect_problem(409, "conflict");
    app.post(&format!("/api/v1/shops/{id}/reject"))
        .token(&admin)
        .json(&json!({"reason": "x"}))
        .send()
        .await
        .expect_problem(409, "conflict");
    app.get(&format!("/api/v1/shops/{id}"))
        .send()
        .await
        .expect(200);
    let me = app
        .get("/api/v1/me")
        .token(&member)
        .send()
        .await
        .expect(200);
    assert_eq!(me["shops"], json!([id]));
    let patched = app.patch(&format!("/api/v1/shops/{id}")).token(&member)
        .json(&json!({"delivery_fee_village_idr": 5000, "delivery_fee_other_idr": 12000, "pickup": false}))
        .send().await.expect(200);
    assert_eq!(patched["delivery_fee_other_idr"], 12000);
    assert_eq!(patched["pickup"], false);
    let p = app
        .patch(&format!("/api/v1/shops/{id}"))
        .token(&member)
        .json(&json!({"delivery_fee_village_idr": -1}))
        .send()
        .await
        .expect_problem(400, "validation");
    assert_eq!(p["errors"][0]["field"], "delivery_fee_village_idr");
    let p = app
        .patch(&format!("/api/v1/shops/{id}"))
        .token(&member)
        .json(&json!({"delivery_fee_village_idr": 1e30}))
        .send()
        .await
        .expect_problem(400, "validation");
    assert_eq!(p["errors"][0]["field"], "delivery_fee_village_idr");
    app.patch(&format!("/api/v1/shops/{id}"))
        .token(&admin)
        .json(&json!({"pickup": true}))
        .send()
        .await
        .expect_problem(403, "forbidden");

    // Suspend needs a reason; the shop disappears from the public list.
    app.post(&format!("/api/v1/shops/{id}/suspend"))
        .token(&admin)
        .json(&json!({}))
        .send()
        .await
        .expect_problem(400, "validation");
    let s = app
        .post(&format!("/api/v1/shops/{id}/suspend"))
        .token(&admin)
        .json(&json!({"reason": "produk kedaluwarsa"}))
        .send()
        .await
        .expect(200);
    assert_eq!(s["status_reason"], "produk kedaluwarsa");
    let list = app
        .get(&format!("/api/v1/villages/{A}/shops"))
        .send()
        .await
        .expect(200);
    assert!(list["items"].as_array().unwrap().is_empty());
    let list = app
        .get(&format!("/api/v1/villages/{A}/shops?status=suspended"))
        .token(&admin)
        .send()
        .await
        .expect(200);
    assert_eq!(list["items"][0]["id"], json!(id));

    // Every decision is in the audit log, newest first, with before and after.
    let audit = app
        .get(&format!("/api/v1/villages/{A}/audit?limit=100"))
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
    assert_eq!(
        actions,
        [
            "shop.suspend",
            "shop.update",
            "shop.approve",
            "shop.apply",
            "member.add",
            "member.add",
            "village.onboard"
        ]
    );
    assert_eq!(audit["items"][0]["before"]["status"], "active");
    assert_eq!(audit["items"][0]["after"]["status"], "suspended");
    app.get(&format!("/api/v1/villages/{A}/audit"))
        .token(&member)
        .send()
        .await
        .expect_problem(403, "forbidden");
}

#[actix_rt::test]
async fn reject_with_reason_and_bumdes_units() {
    let app = spawn_app().await;
    let w = fixtures::world(&app);
    let admin = app.login(&w.a.admin.phone, A).await;
    let p = app
        .post(&format!("/api/v1/shops/{}/reject", w.a.pending_shop))
        .token(&admin)
        .json(&json!({"reason": "  "}))
        .send()
        .await
        .expect_problem(400, "validation");
    assert_eq!(p["errors"][0]["field"], "reason");
    let r = app
        .post(&format!("/api/v1/shops/{}/reject", w.a.pending_shop))
        .token(&admin)
        .json(&json!({"reason": "foto produk belum ada"}))
        .send()
        .await
        .expect(200);
    assert_eq!(r["status"], "rejected");

    let b = app.post(&format!("/api/v1/villages/{A}/bumdes")).token(&admin)
        .json(&json!({"name": "BUMDes Bersama Bantul", "kind": "bersama", "partner_village_codes": [B]}))
        .send().await.expect(201);
    // B co-owns it only once B's admin accepts.
    assert_eq!(b["village_codes"], json!([A]));
    assert_eq!(b["invited_village_codes"], json!([B]));
    app.post(&format!("/api/v1/villages/{A}/bumdes"))
        .token(&admin)
        .json(&json!({"name": "X", "kind": "bersama"}))
        .send()
        .await
        .expect_problem(400, "validation");
    app.post(&format!("/api/v1/villages/{A}/bumdes"))
        .token(&admin)
        .json(&json!({"name": "X", "kind": "koperasi"}))
        .send()
        .await
        .expect_problem(400, "validation");
    app.post(&format!("/api/v1/villages/{A}/bumdes"))
        .token(&admin)
        .json(&json!({"name": "X", "kind": "bersama", "partner_village_codes": [OUTSIDE]}))
        .send()
        .await
        .expect_problem(400, "validation");
    let unit = app
        .post(&format!(
            "/api/v1/bumdes/{}/units",
            b["id"].as_str().unwrap()
        ))
        .token(&admin)
        .json(&json!({"name": "Pasar Desa", "sector": "perdagangan"}))
        .send()
        .await
        .expect(201);
    let listed_under_b = |list: &Value| {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["id"] == b["id"] && x["units"][0]["id"] == unit["id"])
    };
    let list = app
        .get(&format!("/api/v1/villages/{B}/bumdes"))
        .send()
        .await
        .expect(200);
    assert!(!listed_under_b(&list), "listed under B without consent");
    let bid = b["id"].as_str().unwrap();
    // A's admin cannot accept for B; B's admin can, once; it lands in B's audit log.
    app.post(&format!("/api/v1/bumdes/{bid}/partners/{B}/accept"))
        .token(&admin)
        .send()
        .await
        .expect_problem(403, "forbidden");
    let admin_b = app.login(&w.b.admin.phone, B).await;
    let accepted = app
        .post(&format!("/api/v1/bumdes/{bid}/partners/{B}/accept"))
        .token(&admin_b)
        .send()
        .await
        .expect(200);
    assert_eq!(accepted["village_codes"], json!([B, A]), "in code order");
    app.post(&format!("/api/v1/bumdes/{bid}/partners/{B}/accept"))
        .token(&admin_b)
        .send()
        .await
        .expect_problem(409, "conflict");
    let list = app
        .get(&format!("/api/v1/villages/{B}/bumdes"))
        .send()
        .await
        .expect(200);
    assert!(listed_under_b(&list));
    let audit_b = app
        .get(&format!("/api/v1/villages/{B}/audit"))
        .token(&admin_b)
        .send()
        .await
        .expect(200);
    let actions: Vec<&str> = audit_b["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"bumdes.invite") && actions.contains(&"bumdes.accept"));
    // A member opens a shop as that BUMDes unit.
    let member = app.login(&w.a.member.phone, A).await;
    let s = app
        .post(&format!("/api/v1/villages/{A}/shops"))
        .token(&member)
        .json(&json!({"name": "Pasar Desa", "kind": "bumdes_unit", "bumdes_unit_id": unit["id"]}))
        .send()
        .await
        .expect(201);
    assert_eq!(s["bumdes_unit_id"], unit["id"]);
    app.post(&format!("/api/v1/villages/{A}/shops"))
        .token(&member)
        .json(&json!({"name": "Pasar", "kind": "bumdes_unit", "bumdes_unit_id": Uuid::now_v7()}))
        .send()
        .await
        .expect_problem(400, "validation");
}

/// Snapshot of everything of village B a token of A might try to change.
fn snapshot_b(app: &common::TestApp) -> String {
    app.with_conn(|c| {
        use diesel::prelude::*;
        use diesel::sql_types::Text;
        #[derive(QueryableByName)]
        struct S {
            #[diesel(sql_type = Text)]
            s: String,
        }
        let q = format!(
            "SELECT concat_ws('|',
               (SELECT string_agg(row_to_json(v)::text, ',') FROM villages v WHERE code = '{B}'),
               (SELECT string_agg(row_to_json(m)::text, ',' ORDER BY user_id) FROM memberships m WHERE village_code = '{B}'),
               (SELECT string_agg(row_to_json(s)::text, ',' ORDER BY id) FROM shops s WHERE village_code = '{B}'),
               (SELECT string_agg(row_to_json(o)::text, ',' ORDER BY shop_id, user_id) FROM shop_operators o JOIN shops s ON s.id = o.shop_id WHERE s.village_code = '{B}'),
               (SELECT string_agg(row_to_json(b)::text, ',' ORDER BY id) FROM bumdes b WHERE village_code = '{B}'),
               (SELECT string_agg(row_to_json(u)::text, ',' ORDER BY id) FROM bumdes_units u WHERE village_code = '{B}'),
               (SELECT string_agg(row_to_json(n)::text, ',' ORDER BY id) FROM networks n)
             ) AS s"
        );
        diesel::sql_query(q).get_result::<S>(c).unwrap().s
    })
}

#[actix_rt::test]
async fn village_a_tokens_cannot_change_village_b() {
    let app = spawn_app().await;
    let w = fixtures::world(&app);
    let before = snapshot_b(&app);
    let b = &w.b;
    let mutations: Vec<(&str, String, Value)> = vec![
        (
            "POST",
            format!("/api/v1/villages/{B}/members"),
            json!({"phone": "081377700001", "name": "X", "password": "kata-sandi-x", "roles": ["admin"]}),
        ),
        (
            "PATCH",
            format!("/api/v1/villages/{B}/members/{}", b.member.id),
            json!({"roles": ["admin"]}),
        ),
        (
            "DELETE",
            format!("/api/v1/villages/{B}/members/{}", b.member.id),
            Value::Null,
        ),
        (
            "PATCH",
            format!("/api/v1/villages/{B}"),
            json!({"village_share_bps": 9999}),
        ),
        (
            "POST",
            format!("/api/v1/villages/{B}/shops"),
            json!({"name": "Penyusup", "kind": "umkm"}),
        ),
        (
            "POST",
            format!("/api/v1/shops/{}/approve", b.pending_shop),
            Value::Null,
        ),
        (
            "POST",
            format!("/api/v1/shops/{}/reject", b.pending_shop),
            json!({"reason": "x"}),
        ),
        (
            "POST",
            format!("/api/v1/shops/{}/suspend", b.active_shop),
            json!({"reason": "x"}),
        ),
        (
            "PATCH",
            format!("/api/v1/shops/{}", b.active_shop),
            json!({"name": "Dibajak"}),
        ),
        (
            "PATCH",
            format!("/api/v1/shops/{}", b.pending_shop),
            json!({"name": "Dibajak"}),
        ),
        (
            "POST",
            format!("/api/v1/shops/{}/operators", b.active_shop),
            json!({"phone": w.a.member.phone}),
        ),
        (
            "DELETE",
            format!(
                "/api/v1/shops/{}/operators/{}",
                b.active_shop, b.operator.id
            ),
            Value::Null,
        ),
        (
            "POST",
            format!("/api/v1/villages/{B}/bumdes"),
            json!({"name": "X", "kind": "desa"}),
        ),
        (
            "POST",
            format!("/api/v1/bumdes/{}/units", b.bumdes),
            json!({"name": "X"}),
        ),
        (
            "POST",
            "/api/v1/villages".into(),
            json!({"code": "34.02.10.2002"}),
        ),
        (
            "POST",
            "/api/v1/networks".into(),
            json!({"name": "Baru", "village_codes": [A, B]}),
        ),
        (
            "PATCH",
            format!("/api/v1/networks/{}", w.network),
            json!({"network_fee_bps": 5000}),
        ),
    ];
    // Every role of village A, plus B's own operator acting through a token of A would be the
    // same person in another village: A's tokens are what we test.
    let a_tokens = [
        ("admin", app.login(&w.a.admin.phone, A).await),
        ("treasurer", app.login(&w.a.treasurer.phone, A).await),
        ("member", app.login(&w.a.member.phone, A).await),
        ("operator", app.login(&w.a.operator.phone, A).await),
    ];
    for (role, token) in &a_tokens {
        for (method, path, body) in &mutations {
            let mut req = app.req(method.parse().unwrap(), path).token(token);
            if !body.is_null() {
                req = req.json(body);
            }
            let r = req.send().await;
            let status = r.status.as_u16();
            assert!(
                status == 403 || status == 404,
                "{role} of A: {method} {path} answered {status}: {}",
                r.body
            );
        }
        // Reads that are not public: pending shops are invisible (404), admin lists forbidden.
        app.get(&format!("/api/v1/shops/{}", b.pending_shop))
            .token(token)
            .send()
            .await
            .expect_problem(404, "not-found");
        let status = app
            .get(&format!("/api/v1/villages/{B}/members"))
            .token(token)
            .send()
            .await
            .status
            .as_u16();
        assert_eq!(status, 403, "{role}");
        let status = app
            .get(&format!("/api/v1/villages/{B}/audit"))
            .token(token)
            .send()
            .await
            .status
            .as_u16();
        assert_eq!(status, 403, "{role}");
        let status = app
            .get(&format!("/api/v1/villages/{B}/shops?status=pending"))
            .token(token)
            .send()
            .await
            .status
            .as_u16();
        assert_eq!(status, 403, "{role}");
    }
    assert_eq!(snapshot_b(&app), before, "village B changed");
    // Control: B's own admin can do what A's could not, so the matrix tests authorization, not
    // broken endpoints.
    let b_admin = app.login(&b.admin.phone, B).await;
    app.post(&format!("/api/v1/shops/{}/approve", b.pending_shop))
        .token(&b_admin)
        .send()
        .await
        .expect(200);
    app.patch(&format!("/api/v1/villages/{B}"))
        .token(&b_admin)
        .json(&json!({"village_share_bps": 150, "idm_status": "maju"}))
        .send()
        .await
        .expect(200);
    assert_ne!(snapshot_b(&app), before);
}

#[actix_rt::test]
async fn operators_and_public_reads() {
    let app = spawn_app().await;
    let w = fixtures::world(&app);
    let op = app.login(&w.a.operator.phone, A).await;
    let shop = w.a.active_shop;
    let ops = app
        .post(&format!("/api/v1/shops/{shop}/operators"))
        .token(&op)
        .json(&json!({"phone": w.a.member.phone}))
        .send()
        .await
        .expect(201);
    assert_eq!(ops["user_id"], json!(w.a.member.id));
    let list = app
        .get(&format!("/api/v1/shops/{shop}/operators"))
        .token(&op)
        .send()
        .await
        .expect(200);
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    assert_eq!(list["next_cursor"], Value::Null);
    app.post(&format!("/api/v1/shops/{shop}/operators"))
        .token(&op)
        .json(&json!({"phone": w.b.member.phone}))
        .send()
        .await
        .expect_problem(400, "validation");
    app.delete(&format!("/api/v1/shops/{shop}/operators/{}", w.a.member.id))
        .token(&op)
        .send()
        .await
        .expect(204);
    app.delete(&format!(
        "/api/v1/shops/{shop}/operators/{}",
        w.a.operator.id
    ))
    .token(&op)
    .send()
    .await
    .expect_problem(409, "conflict");
    // Public: active shops, villages, networks, BUMDes.
    app.get(&format!("/api/v1/shops/{}", w.b.active_shop))
        .send()
        .await
        .expect(200);
    let list = app
        .get(&format!("/api/v1/villages/{B}/shops"))
        .send()
        .await
        .expect(200);
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    app.get(&format!("/api/v1/villages/{B}"))
        .send()
        .await
        .expect(200);
    let n = app
        .get(&format!("/api/v1/networks/{}", w.network))
        .send()
        .await
        .expect(200);
    assert_eq!(n["village_codes"].as_array().unwrap().len(), 2);
    let all = app.get("/api/v1/networks").send().await.expect(200);
    assert_eq!(all["items"], json!([n]));
    let vs = app
        .get("/api/v1/villages?region=34.02")
        .send()
        .await
        .expect(200);
    assert_eq!(vs["items"].as_array().unwrap().len(), 2);
    app.get(&format!("/api/v1/shops/{}", Uuid::now_v7()))
        .send()
        .await
        .expect_problem(404, "not-found");
    let p = app
        .get("/api/v1/shops/not-a-uuid")
        .send()
        .await
        .expect_problem(400, "validation");
    assert_eq!(p["errors"][0]["field"], "id");
}
