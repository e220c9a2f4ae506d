//! The server as a process: SIGTERM drains what is in flight, and kill -9 in the middle of
//! concurrent checkouts and order actions loses nothing and doubles nothing once clients retry
//! with their Idempotency-Keys against the restarted server.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::fixtures::{self, A, B, PASSWORD};
use common::money::{assert_global, count, funded_buyers, key, stock_snapshot};
use common::process::{Served, free_port, random_secret};
use common::spawn_app;
use diesel::prelude::*;
use serde_json::{Value, json};
use uuid::Uuid;

async fn login(client: &reqwest::Client, base: &str, phone: &str, village: &str) -> String {
    let r: Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"phone": phone, "password": PASSWORD, "village_code": village}))
        .send()
        .await
        .expect("login sent")
        .json()
        .await
        .expect("login body");
    r["access_token"].as_str().expect("a token").to_string()
}

/// A keyed POST: (status, body), or None when the connection failed.
async fn keyed(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    path: &str,
    key: &str,
    body: &Value,
) -> Option<(u16, Value)> {
    let res = client
        .post(format!("{base}{path}"))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(body)
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .ok()?;
    let status = res.status().as_u16();
    let body = res.json().await.ok()?;
    Some((status, body))
}

#[actix_rt::test]
async fn sigterm_lets_in_flight_checkouts_finish_then_exits() {
    let app = spawn_app().await;
    let w = fixtures::world(&app);
    let product = app.with_conn(|c| {
        fixtures::product(c, w.b.active_shop, &w.b.operator, B, "Kopi", 10_000, 100)
    });
    let treasurer = app.login(&w.a.treasurer.phone, A).await;
    let buyers = funded_buyers(&app, &w.platform, A, &treasurer, 1, 1, 100_000).await;
    let wallet: Uuid = buyers[0].wallet.parse().unwrap();
    let secret = random_secret();
    let mut served = Served::start_with(
        &app.db.url,
        free_port(),
        &secret,
        &[("PASAR_TIMER_INTERVAL_MS", "200")],
    )
    .await;
    let client = reqwest::Client::new();
    let token = login(&client, &served.base, &buyers[0].person.phone, A).await;
    // Hold the buyer's wallet row: the checkouts get as far as the money and wait there.
    let mut blocker = app.db.conn();
    diesel::sql_query("BEGIN").execute(&mut blocker).unwrap();
    diesel::sql_query("SELECT id FROM accounts WHERE id = $1 FOR UPDATE")
        .bind::<diesel::sql_types::Uuid, _>(wallet)
        .execute(&mut blocker)
        .unwrap();
    let body = json!({"lines": [{"product_id": product, "quantity": 1}], "delivery": {"method": "pickup"}});
    let keys: Vec<String> = (0..3).map(|_| key()).collect();
    let checkouts = futures_util::future::join_all(
        keys.iter()
            .map(|k| keyed(&client, &served.base, &token, "/api/v1/checkouts", k, &body)),
    );
    let control = async {
        tokio::time::sleep(Duration::from_millis(700)).await;
        served.sigterm();
        tokio::time::sleep(Duration::from_millis(800)).await;
        // Still draining: the process waits for the three checkouts.
        diesel::sql_query("COMMIT").execute(&mut blocker).unwrap();
    };
    let (results, ()) = tokio::join!(checkouts, control);
    for r in &results {
        let (status, body) = r.as_ref().expect("an answer, not a dropped connection");
        assert_eq!(*status, 201, "{body}");
    }
    let status = served.exited(Duration::from_secs(25)).await;
    assert!(
        status.success(),
        "exit status {status}\n{}",
        served.log_tail()
    );
    assert_eq!(count(&app, "SELECT count(*) AS n FROM orders"), 3);
    assert!(
        client
            .get(format!("{}/healthz", served.base))
            .send()
            .await
            .is_err(),
        "nothing listens any more"
    );
    common::money::assert_books_balance(&app);
}

#[actix_rt::test]
async fn kill_9_mid_traffic_then_retries_with_the_same_keys_change_everything_exactly_once() {
    let app = spawn_app().await;
    let w = fixtures::world(&app);
    let products: Vec<Uuid> = app.with_conn(|c| {
        vec![
            fixtures::product(c, w.a.active_shop, &w.a.operator, A, "Beras", 12_000, 500),
            fixtures::product(
                c,
                w.b.active_shop,
                &w.b.operator,
                B,
                "Gula Aren",
                17_500,
                500,
            ),
        ]
    });
    let initial = stock_snapshot(&app);
    let treasurer_a = app.login(&w.a.treasurer.phone, A).await;
    let treasurer_b = app.login(&w.b.treasurer.phone, B).await;
    let mut buyers = funded_buyers(&app, &w.platform, A, &treasurer_a, 1, 4, 150_000).await;
    buyers.extend(funded_buyers(&app, &w.platform, B, &treasurer_b, 2, 4, 150_000).await);
    let secret = random_secret();
    let port = free_port();
    let mut served = Served::start(&app.db.url, port, &secret).await;
    let client = reqwest::Client::new();
    let base = served.base.clone();
    let mut tokens = Vec::new();
    for b in &buyers {
        let village = if tokens.len() < 4 { A } else { B };
        tokens.push(login(&client, &base, &b.person.phone, village).await);
    }
    let seller_a = login(&client, &base, &w.a.operator.phone, A).await;
    let seller_b = login(&client, &base, &w.b.operator.phone, B).await;
    // Orders to accept during the crash: one per buyer from the other village's shop.
    let mut to_accept = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        let product = products[if i < 4 { 1 } else { 0 }];
        let body = json!({"lines": [{"product_id": product, "quantity": 1}], "delivery": {"method": "pickup"}});
        let (s, b) = keyed(&client, &base, t, "/api/v1/checkouts", &key(), &body)
            .await
            .unwrap();
        assert_eq!(s, 201, "{b}");
        let seller = if i < 4 { &seller_b } else { &seller_a };
        to_accept.push((
            seller.clone(),
            b["orders"][0]["id"].as_str().unwrap().to_string(),
        ));
    }
    // The burst: 6 checkouts per buyer and every accept, all keyed, all at once.
    struct Call {
        token: String,
        path: String,
        key: String,
        body: Value,
    }
    let mut calls: Vec<Call> = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        for n in 0..6 {
            calls.push(Call {
                token: t.clone(),
                path: "/api/v1/checkouts".into(),
                key: key(),
                body: json!({"lines": [
                    {"product_id": products[(i + n) % 2], "quantity": 1 + n % 3},
                    {"product_id": products[(i + n + 1) % 2], "quantity": 1}],
                    "delivery": {"method": "pickup"}}),
            });
        }
    }
    for (seller, order) in &to_accept {
        calls.push(Call {
            token: seller.clone(),
            path: format!("/api/v1/orders/{order}/accept"),
            key: key(),
            body: json!({}),
        });
    }
    let answered = std::sync::atomic::AtomicUsize::new(0);
    let burst = futures_util::future::join_all(calls.iter().map(|c| async {
        let r = keyed(&client, &base, &c.token, &c.path, &c.key, &c.body).await;
        answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        r
    }));
    // Die once ten answers are out: the rest are queued, running, or committed but unanswered.
    let crash = async {
        while answered.load(std::sync::atomic::Ordering::SeqCst) < 10 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        served.kill9();
    };
    let (first, ()) = tokio::join!(burst, crash);
    let lost = first.iter().filter(|r| r.is_none()).count();
    let committed = count(&app, "SELECT count(DISTINCT checkout_id) AS n FROM orders") as usize
        - to_accept.len();
    let answered_ok = first
        .iter()
        .zip(&calls)
        .filter(|(r, c)| c.path == "/api/v1/checkouts" && matches!(r, Some((201, _))))
        .count();
    eprintln!(
        "{} calls: {lost} without an answer when the server died; {committed} checkouts \
         committed, {answered_ok} of them answered",
        calls.len()
    );
    assert!(
        lost > 0 && lost < calls.len(),
        "the crash must fall mid-traffic"
    );
    // Restart; every client retries what it sent, with the same key, until it has an answer.
    let _served = Served::start(&app.db.url, port, &secret).await;
    let mut answers: HashMap<String, (u16, Value)> = HashMap::new();
    for (c, before) in calls.iter().zip(&first) {
        let again = loop {
            match keyed(&client, &base, &c.token, &c.path, &c.key, &c.body).await {
                Some((409, b)) if b["retryable"] == true => continue,
                Some(a) => break a,
                None => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        if let Some((status, body)) = before
            && *status < 500
            && (*status != 409 || body["retryable"] != true)
        {
            assert_eq!(
                (status, body),
                (&again.0, &again.1),
                "a replay must be the same answer"
            );
        }
        answers.insert(c.key.clone(), again);
    }
    for (c, (status, body)) in calls.iter().zip(calls.iter().map(|c| &answers[&c.key])) {
        if c.path.ends_with("/accept") {
            assert_eq!(*status, 200, "every accept happens exactly once: {body}");
        } else {
            assert!(
                *status == 201
                    || body["type"]
                        .as_str()
                        .unwrap_or_default()
                        .ends_with("/insufficient-funds"),
                "{status} {body}"
            );
        }
    }
    // Each successful key made exactly one checkout; nothing else exists but the warm-up's.
    let ok: Vec<&Value> = answers
        .values()
        .filter(|(s, _)| *s == 201)
        .map(|(_, b)| b)
        .collect();
    let checkouts = count(&app, "SELECT count(DISTINCT checkout_id) AS n FROM orders");
    assert_eq!(checkouts as usize, ok.len() + to_accept.len());
    // Each wallet was charged once per order it has.
    for (i, b) in buyers.iter().enumerate() {
        let wallet: Uuid = b.wallet.parse().unwrap();
        let (balance, held): (i64, i64) = app.with_conn(|c| {
            use pasar::db::schema::{accounts, orders};
            let balance = accounts::table
                .find(wallet)
                .select(accounts::balance_idr)
                .first(c)
                .unwrap();
            let held: Option<i64> = orders::table
                .filter(orders::buyer_account_id.eq(wallet))
                .filter(orders::status.eq_any(["placed", "accepted"]))
                .select(diesel::dsl::sql::<
                    diesel::sql_types::Nullable<diesel::sql_types::BigInt>,
                >("sum(total_idr)::bigint"))
                .first(c)
                .unwrap();
            (balance, held.unwrap_or(0))
        });
        assert_eq!(
            balance + held,
            150_000,
            "buyer {i}: wallet + open orders = what was topped up"
        );
    }
    assert_global(&app, &initial);
}
