//! Aid programmes (bantuan) over HTTP: funding, disbursement, spending only in the area and
//! before the wallet, refunds back to where aid came from, the end of the period, access and
//! bad input; every test ends with the global ledger check.

mod common;

use chrono::Duration;
use common::fixtures::{self, A, B, OUTSIDE};
use common::money::{act, assert_books_balance, checkout, key, pickup, slug, topup, wallet_of};
use common::{Resp, TestApp, spawn_app};
use serde_json::{Value, json};
use uuid::Uuid;

fn today() -> chrono::NaiveDate {
    pasar::aid::today()
}

async fn create(app: &TestApp, admin: &str, village: &str, body: Value) -> Resp {
    app.post(&format!("/api/v1/villages/{village}/aid-programmes"))
        .token(admin)
        .json(&body)
        .send()
        .await
}

fn programme(scope: &str, starts: i64, ends: i64) -> Value {
    json!({
        "name": "BLT Dana Desa Desember",
        "kind": "blt_dana_desa",
        "starts_on": (today() + Duration::days(starts)).to_string(),
        "ends_on": (today() + Duration::days(ends)).to_string(),
        "scope": scope,
    })
}

async fn fund(app: &TestApp, treasurer: &str, id: &str, amount: i64, key: &str) -> Resp {
    app.post(&format!("/api/v1/aid-programmes/{id}/funding"))
        .token(treasurer)
        .header("idempotency-key", key)
        .json(&json!({"amount_idr": amount, "note": "APBDes pos BLT"}))
        .send()
        .await
}

async fn disburse(app: &TestApp, treasurer: &str, id: &str, recipients: &[(Uuid, i64)]) -> Resp {
    app.post(&format!("/api/v1/aid-programmes/{id}/disbursements"))
        .token(treasurer)
        .header("idempotency-key", &key())
        .json(&json!({"recipients": recipients.iter()
            .map(|(u, a)| json!({"user_id": u, "amount_idr": a})).collect::<Vec<_>>()}))
        .send()
        .await
}

async fn get(app: &TestApp, token: &str, id: &str) -> Value {
    app.get(&format!("/api/v1/aid-programmes/{id}"))
        .token(token)
        .send()
        .await
        .expect(200)
}

async fn aid_balance(app: &TestApp, token: &str) -> i64 {
    wallet_of(app, token).await["aid_balance_idr"]
        .as_i64()
        .unwrap()
}

#[actix_rt::test]
async fn aid_is_spent_first_only_in_its_area_and_refunds_go_back_to_it() {
    let app = spawn_app().await;
    let w = fixtures::world(&app);
    let (a_shop, b_shop, c_shop) = (w.a.active_shop, w.b.active_shop, {
        app.with_conn(|c| fixtures::selling_village(c, &w.platform, OUTSIDE, 3).0)
    });
    let (pa, pb, pc) = app.with_conn(|c| {
        let c_operator = {
            use diesel::prelude::*;
            use pasar::db::schema::shop_operators;
            shop_operators::table
                .filter(shop_operators::shop_id.eq(c_shop))
                .select(shop_operators::user_id)
                .first::<Uuid>(c)
                .unwrap()
        };
        let c_person = fixtures::Person {
            id: c_operator,
            phone: String::new(),
        };
        (
            fixtures::product(c, a_shop, &w.a.operator, A, "Beras", 30_000, 100),
            fixtures::product(c, b_shop, &w.b.operator, B, "Gula Aren", 50_000, 100),
            fixtures::product(c, c_shop, &c_person, OUTSIDE, "Roti", 10_000, 100),
        )
    });
    let admin = app.login(&w.a.admin.phone, A).await;
    let treasurer = app.login(&w.a.treasurer.phone, A).await;
    let buyer = app.login(&w.a.member.phone, A).await;
    let seller = app.login(&w.a.operator.phone, A).await;

    // A village programme, starting today: a fresh install's admin does it over HTTP.
    let p = create(&app, &admin, A, programme("village", 0, 30))
        .await
        .expect(201);
    assert_eq!(p["status"], "active");
    assert_eq!(p["scope"], "village");
    assert_eq!(p["balance_idr"], 0);
    let id = p["id"].as_str().unwrap().to_string();

    // Funding is idempotent: the same key twice books it once and replays the answer.
    let k = key();
    let first = fund(&app, &treasurer, &id, 1_000_000, &k).await.expect(201);
    let again = fund(&app, &treasurer, &id, 1_000_000, &k).await.expect(201);
    assert_eq!(first, again);
    assert_eq!(first["balance_idr"], 1_000_000);
    // Recipients must be members of the programme's village.
    let stranger = disburse(
        &app,
        &treasurer,
        &id,
        &[(w.a.member.id, 100_000), (w.b.member.id, 5)],
    )
    .await
    .expect_problem(400, "validation");
    assert_eq!(stranger["errors"][0]["field"], "recipients[1].user_id");
    disburse(&app, &treasurer, &id, &[(w.a.member.id, 100_000)])
        .await
        .expect(201);
    assert_eq!(aid_balance(&app, &buyer).await, 100_000);
    let mine = app
        .get("/api/v1/me/aid")
        .token(&buyer)
        .send()
        .await
        .expect(200);
    assert_eq!(mine[0]["balance_idr"], 100_000);
    assert_eq!(mine[0]["area"], json!([A]));

    // Aid pays A's order only; B (network) and C (outside) need the wallet: 60k > 40k.
    let wallet = wallet_of(&app, &buyer).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    topup(&app, &treasurer, &wallet, 40_000).await;
    let lines = pickup(&[(pa, 1), (pb, 1), (pc, 1)]);
    let r = checkout(&app, &buyer, &lines).await;
    assert_eq!(slug(&r), "insufficient-funds", "{:?}", r.body);
    assert_eq!(
        aid_balance(&app, &buyer).await,
        100_000,
        "nothing was spent"
    );
    topup(&app, &treasurer, &wallet, 30_000).await;
    let c = checkout(&app, &buyer, &lines).await.expect(201);
    assert_eq!(c["total_idr"], 90_000);
    assert_eq!(c["paid_from_aid_idr"], 30_000);
    assert_eq!(c["paid_from_wallet_idr"], 60_000);
    let by_shop = |shop: Uuid| {
        c["orders"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["shop_id"] == json!(shop))
            .unwrap()
            .clone()
    };
    assert_eq!(by_shop(a_shop)["paid_from_aid_idr"], 30_000);
    assert_eq!(by_shop(b_shop)["paid_from_aid_idr"], 0);
    assert_eq!(by_shop(c_shop)["paid_from_aid_idr"], 0);
    let w_now = wallet_of(&app, &buyer).await;
    assert_eq!(
        (
            w_now["balance_idr"].as_i64(),
            w_now["aid_balance_idr"].as_i64()
        ),
        (Some(10_000), Some(70_000))
    );

    // Aid is never cash: the aid balance is no wallet, and a withdrawal cannot reach it.
    let aid_account = mine[0]["account_id"].as_str().unwrap();
    app.post(&format!("/api/v1/wallets/{aid_account}/withdrawals"))
        .token(&treasurer)
        .header("idempotency-key", &key())
        .json(&json!({"amount_idr": 1}))
        .send()
        .await
        .expect_problem(404, "not-found");
    let r = app
        .post(&format!("/api/v1/wallets/{wallet}/withdrawals"))
        .token(&treasurer)
        .header("idempotency-key", &key())
        .json(&json!({"amount_idr": 10_001}))
        .send()
        .await;
    assert_eq!(slug(&r), "insufficient-funds");

    // A cancelled order gives the aid back to the aid balance, not the wallet.
    let a_order = by_shop(a_shop)["id"].as_str().unwrap().to_string();
    act(&app, &buyer, &a_order, "cancel", json!({}))
        .await
        .expect(200);
    assert_eq!(aid_balance(&app, &buyer).await, 100_000);
    assert_eq!(wallet_of(&app, &buyer).await["balance_idr"], 10_000);

    // 90k more at A: all from aid. Then the admin closes the programme: 10k returns.
    let c2 = checkout(&app, &buyer, &pickup(&[(pa, 3)]))
        .await
        .expect(201);
    assert_eq!(c2["paid_from_aid_idr"], 90_000);
    let order2 = c2["orders"][0]["id"].as_str().unwrap().to_string();
    let closed = app
        .post(&format!("/api/v1/aid-programmes/{id}/close"))
        .token(&admin)
        .header("idempotency-key", &key())
        .send()
        .await
        .expect(200);
    assert_eq!(closed["status"], "closed");
    assert_eq!(closed["funded_idr"], 1_000_000);
    assert_eq!(closed["disbursed_idr"], 100_000);
    assert_eq!(closed["spent_idr"], 90_000);
    assert_eq!(closed["returned_idr"], 10_000);
    assert_eq!(closed["balance_idr"], 910_000);
    assert_eq!(closed["outstanding_idr"], 0);
    assert_eq!(aid_balance(&app, &buyer).await, 0);
    // Closed means closed: no more spending, funding or closing.
    let r = checkout(&app, &buyer, &pickup(&[(pa, 1)])).await;
    assert_eq!(
        slug(&r),
        "insufficient-funds",
        "the wallet holds 10k only, aid is over"
    );
    fund(&app, &treasurer, &id, 5, &key())
        .await
        .expect_problem(409, "conflict");
    app.post(&format!("/api/v1/aid-programmes/{id}/close"))
        .token(&admin)
        .header("idempotency-key", &key())
        .send()
        .await
        .expect_problem(409, "conflict");
    // The seller rejects the 90k order after the close: its aid goes back to the programme.
    act(&app, &seller, &order2, "reject", json!({"reason": "habis"}))
        .await
        .expect(200);
    let after = get(&app, &treasurer, &id).await;
    assert_eq!(after["balance_idr"], 1_000_000);
    assert_eq!(after["spent_idr"], 0);
    assert_eq!(after["returned_idr"], 100_000);
    assert_eq!(aid_balance(&app, &buyer).await, 0);
    let recipients = app
        .get(&format!("/api/v1/aid-programmes/{id}/recipients"))
        .token(&treasurer)
        .send()
        .await
        .expect(200);
    assert_eq!(recipients["items"][0]["received_idr"], 100_000);
    assert_eq!(recipients["items"][0]["balance_idr"], 0);
    assert_books_balance(&app);
}

#[actix_rt::test]
async fn network_aid_pays_across_the_network_and_its_period_ends_once() {
    let app = spawn_app().await;
    let w = fixtures::world(&app);
    let pa = app.with_conn(|c| {
        fixtures::product(c, w.a.active_shop, &w.a.operator, A, "Beras", 25_000, 100)
    });
    let admin_b = app.login(&w.b.admin.phone, B).await;
    let treasurer_b = app.login(&w.b.treasurer.phone, B).await;
    let buyer_b = app.login(&w.b.member.phone, B).await;
    // Scope network without naming it: B belongs to exactly one.
    let p = create(&app, &admin_b, B, programme("network", 0, 0))
        .await
        .expect(201);
    assert_eq!(p["network_id"], json!(w.network));
    let id = p["id"].as_str().unwrap().to_string();
    // Not yet started: disbursed, but not spendable.
    let later = create(&app, &admin_b, B, programme("network", 1, 5))
        .await
        .expect(201);
    let later_id = later["id"].as_str().unwrap().to_string();
    for pid in [&id, &later_id] {
        fund(&app, &treasurer_b, pid, 100_000, &key())
            .await
            .expect(201);
        disburse(&app, &treasurer_b, pid, &[(w.b.member.id, 40_000)])
            .await
            .expect(201);
    }
    // More than the programme holds: 409, nothing written.
    let r = disburse(&app, &treasurer_b, &id, &[(w.b.member.id, 60_001)]).await;
    assert_eq!(slug(&r), "insufficient-funds");
    assert_eq!(get(&app, &treasurer_b, &id).await["balance_idr"], 60_000);
    assert_eq!(aid_balance(&app, &buyer_b).await, 80_000);

    // A's shop is in the network: aid of the running programme pays 25k; the later one none.
    let c = checkout(&app, &buyer_b, &pickup(&[(pa, 1)]))
        .await
        .expect(201);
    assert_eq!(c["paid_from_aid_idr"], 25_000);
    assert_eq!(aid_balance(&app, &buyer_b).await, 55_000);
    // Another 25k is more than the 15k left: the wallet (empty) would have to pay 10k.
    let r = checkout(&app, &buyer_b, &pickup(&[(pa, 1)])).await;
    assert_eq!(slug(&r), "insufficient-funds");

    // The timers, the day after the last day: the remainder returns, once.
    let policy = pasar::orders::timers::TimerPolicy {
        expire_after: Duration::hours(48),
        complete_after: Duration::hours(72),
        interval: std::time::Duration::from_secs(30),
    };
    let tomorrow = chrono::Utc::now() + Duration::days(1);
    let ran = app.with_conn(|c| pasar::orders::timers::run_due(c, &policy, tomorrow, 100).unwrap());
    assert_eq!(
        ran.aid_closed, 1,
        "only the programme whose last day was today"
    );
    let ran = app.with_conn(|c| pasar::orders::timers::run_due(c, &policy, tomorrow, 100).unwrap());
    assert_eq!(ran.aid_closed, 0);
    let closed = get(&app, &admin_b, &id).await;
    assert_eq!(closed["status"], "closed");
    assert_eq!(closed["returned_idr"], 15_000);
    assert_eq!(closed["balance_idr"], 75_000);
    assert_eq!(get(&app, &admin_b, &later_id).await["status"], "upcoming");
    assert_eq!(
        aid_balance(&app, &buyer_b).await,
        40_000,
        "the later programme's aid stays"
    );
    assert_books_balance(&app);
}

#[actix_rt::test]
async fn concurrent_checkouts_never_spend_more_aid_than_there_is() {
    let app = spawn_app().await;
    let w = fixtures::world(&app);
    let pa = app.with_conn(|c| {
        fixtures::product(c, w.a.active_shop, &w.a.operator, A, "Beras", 30_000, 1000)
    });
    let pb = app.with_conn(|c| {
        fixtures::product(c, w.b.active_shop, &w.b.operator, B, "Gula", 30_000, 1000)
    });
    let admin = app.login(&w.a.admin.phone, A).await;
    let treasurer = app.login(&w.a.treasurer.phone, A).await;
    let buyer = app.login(&w.a.member.phone, A).await;
    let p = create(&app, &admin, A, programme("village", 0, 10))
        .await
        .expect(201);
    let id = p["id"].as_str().unwrap().to_string();
    fund(&app, &treasurer, &id, 100_000, &key())
        .await
        .expect(201);
    disburse(&app, &treasurer, &id, &[(w.a.member.id, 100_000)])
        .await
        .expect(201);
    // Twelve checkouts at once: eight at A (aid: three fit), four at B (outside the
    // village programme, and the wallet is empty: none fit).
    let bodies: Vec<Value> = (0..12)
        .map(|i| pickup(&[(if i % 3 == 2 { pb } else { pa }, 1)]))
        .collect();
    let results =
        futures_util::future::join_all(bodies.iter().map(|b| checkout(&app, &buyer, b))).await;
    let ok = results.iter().filter(|r| r.status == 201).count();
    let refused = results
        .iter()
        .filter(|r| slug(r) == "insufficient-funds")
        .count();
    assert_eq!(
        (ok, refused),
        (3, 9),
        "{:?}",
        results.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert!(
        results
            .iter()
            .filter(|r| r.status == 201)
            .all(|r| r.body["paid_from_aid_idr"] == 30_000)
    );
    assert_eq!(aid_balance(&app, &buyer).await, 10_000);
    assert_eq!(wallet_of(&app, &buyer).await["balance_idr"], 0);
    assert_books_balance(&app);
}

#[actix_rt::test]
async fn who_may_run_a_programme_and_what_it_refuses() {
    let app = spawn_app().await;
    let w = fixtures::world(&app);
    let admin = app.login(&w.a.admin.phone, A).await;
    let treasurer = app.login(&w.a.treasurer.phone, A).await;
    let member = app.login(&w.a.member.phone, A).await;
    let admin_b = app.login(&w.b.admin.phone, B).await;
    let treasurer_b = app.login(&w.b.treasurer.phone, B).await;
    let platform = app.login_platform(&w.platform.phone).await;

    // Only the village's admins start one; another village's admin does not even see it.
    create(&app, &member, A, programme("village", 0, 5))
        .await
        .expect_problem(403, "forbidden");
    create(&app, &treasurer, A, programme("village", 0, 5))
        .await
        .expect_problem(403, "forbidden");
    create(&app, &admin_b, A, programme("village", 0, 5))
        .await
        .expect_problem(404, "not-found");
    // Bad input: 400, nothing written.
    for body in [
        programme("village", 3, 1),
        programme("village", -10, -1),
        programme("village", 0, 5000),
        json!({"name": "", "kind": "blt_dana_desa", "starts_on": today().to_string(), "ends_on": today().to_string(), "scope": "village"}),
        json!({"name": "x", "kind": "bansos", "starts_on": today().to_string(), "ends_on": today().to_string(), "scope": "village"}),
        json!({"name": "x", "kind": "other", "starts_on": "2026-02-30", "ends_on": today().to_string(), "scope": "village"}),
        json!({"name": "x", "kind": "other", "starts_on": today().to_string(), "ends_on": today().to_string(), "scope": "village", "network_id": w.network}),
        json!({"name": "x", "kind": "other", "starts_on": today().to_string(), "ends_on": today().to_string(), "scope": "network", "network_id": Uuid::now_v7()}),
        json!({"name": "x", "kind": "other", "starts_on": today().to_string(), "ends_on": today().to_string(), "scope": "village", "extra": 1}),
    ] {
        let r = create(&app, &admin, A, body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {:?}", r.body);
    }
    let p = create(&app, &admin, A, programme("village", 0, 5))
        .await
        .expect(201);
    let id = p["id"].as_str().unwrap().to_string();
    // Who sees it: A's admins and treasurers and platform admins; nobody else.
    get(&app, &treasurer, &id).await;
    get(&app, &platform, &id).await;
    for token in [&member, &admin_b, &treasurer_b] {
        app.get(&format!("/api/v1/aid-programmes/{id}"))
            .token(token)
            .send()
            .await
            .expect_problem(404, "not-found");
    }
    // Money moves by A's treasurers only.
    fund(&app, &admin, &id, 1000, &key())
        .await
        .expect_problem(403, "forbidden");
    fund(&app, &treasurer_b, &id, 1000, &key())
        .await
        .expect_problem(404, "not-found");
    for amount in [0, -5, 1_000_000_001] {
        fund(&app, &treasurer, &id, amount, &key())
            .await
            .expect_problem(400, "validation");
    }
    // A key with another body is refused.
    let k = key();
    fund(&app, &treasurer, &id, 1000, &k).await.expect(201);
    assert_eq!(fund(&app, &treasurer, &id, 2000, &k).await.status, 422);
    fund(&app, &treasurer, &id, 1000, "")
        .await
        .expect_problem(400, "validation");
    let twice = disburse(
        &app,
        &treasurer,
        &id,
        &[(w.a.member.id, 10), (w.a.member.id, 10)],
    )
    .await;
    assert_eq!(twice.status, 400);
    assert_eq!(disburse(&app, &treasurer, &id, &[]).await.status, 400);
    let list = app
        .get(&format!("/api/v1/villages/{A}/aid-programmes?limit=10"))
        .token(&admin)
        .send()
        .await
        .expect(200);
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(list["items"][0]["funded_idr"], 1000);
    app.get(&format!("/api/v1/villages/{A}/aid-programmes?sort=x"))
        .token(&admin)
        .send()
        .await
        .expect_problem(400, "validation");
    assert_books_balance(&app);
}
