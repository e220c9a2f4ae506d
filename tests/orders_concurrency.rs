//! Orders and money under concurrency, against real PostgreSQL and a real server: races for the
//! last units, for one wallet and for one order's transitions; idempotent retries; the timers on
//! two workers at once; a random mix watched by a reader of the books; tenancy; cross-shop
//! checkouts; and the database's own refusals. Every test ends with the global check
//! ([`money::assert_global`]: the ledger, the stock, the escrow and every order's history).

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use common::fixtures::{self, A, B};
use common::money::{
    self, Buyer, act, assert_global, balance, checkout, count, key, pickup, slug, topup,
    village_balance,
};
use common::{Resp, TestApp, spawn_app_with};
use diesel::prelude::*;
use futures_util::FutureExt;
use futures_util::future::{LocalBoxFuture, join_all};
use pasar::identity::tokens::{Caller, Role};
use pasar::orders::machine::Action;
use pasar::orders::timers::{Ran, TimerPolicy, run_due};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::{Value, json};
use uuid::Uuid;

/// The test server, whose requests may wait longer than the default 1.5 s for one of its 10
/// connections: 50 requests at once on 2 busy cores queue that long, and a 503 for that would
/// hide what these tests look at.
async fn spawn_busy_app() -> TestApp {
    spawn_app_with(|c| c.db_connect_timeout_ms = 10_000).await
}

/// How many responses of each (status, problem slug); the slug is empty for a success.
fn tally(rs: &[Resp]) -> HashMap<(u16, String), usize> {
    let mut t = HashMap::new();
    for r in rs {
        *t.entry((r.status.as_u16(), slug(r).to_string()))
            .or_insert(0) += 1;
    }
    t
}

fn counts<const N: usize>(pairs: [((u16, &str), usize); N]) -> HashMap<(u16, String), usize> {
    pairs
        .into_iter()
        .map(|((s, slug), n)| ((s, slug.to_string()), n))
        .collect()
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("an id").to_string()
}

async fn keyed_checkout(app: &TestApp, token: &str, key: &str, body: &Value) -> Resp {
    app.post("/api/v1/checkouts")
        .token(token)
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
}

fn replayed(r: &Resp) -> bool {
    r.header("idempotency-replayed") == Some("true")
}

/// A placed order of `product` × `qty` for `buyer`, by HTTP; returns (order id, total).
async fn place(app: &TestApp, buyer: &str, product: Uuid, qty: i64) -> (String, i64) {
    let c = checkout(app, buyer, &pickup(&[(product, qty)]))
        .await
        .expect(201);
    let o = &c["orders"][0];
    (id(o), o["total_idr"].as_i64().unwrap())
}

fn status_of(app: &TestApp, order: &str) -> String {
    use pasar::db::schema::orders;
    let id: Uuid = order.parse().unwrap();
    app.with_conn(|c| {
        orders::table
            .find(id)
            .select(orders::status)
            .first(c)
            .unwrap()
    })
}

fn events_of(app: &TestApp, order: &str) -> Vec<String> {
    use pasar::db::schema::order_events;
    let id: Uuid = order.parse().unwrap();
    app.with_conn(|c| {
        order_events::table
            .filter(order_events::order_id.eq(id))
            .order(order_events::id)
            .select(order_events::to_status)
            .load(c)
            .unwrap()
    })
}

fn stock_of(app: &TestApp, product: Uuid) -> i32 {
    use pasar::db::schema::products;
    app.with_conn(|c| {
        products::table
            .find(product)
            .select(products::stock)
            .first(c)
            .unwrap()
    })
}

fn shop_balance(app: &TestApp, shop: Uuid) -> i64 {
    app.with_conn(|c| pasar::ledger::shop_wallet(c, shop).unwrap().balance_idr)
}

#[actix_rt::test]
async fn fifty_checkouts_for_the_last_ten_units_sell_exactly_ten() {
    let app = spawn_busy_app().await;
    let w = fixtures::world(&app);
    let product = app.with_conn(|c| {
        fixtures::product(c, w.b.active_shop, &w.b.operator, B, "Gula Aren", 5_000, 10)
    });
    let initial = money::stock_snapshot(&app);
    let treasurer = app.login(&w.a.treasurer.phone, A).await;
    let buyers = money::funded_buyers(&app, &w.platform, A, &treasurer, 1, 10, 100_000).await;

    let body = pickup(&[(product, 1)]);
    let results = join_all((0..50).map(|i| checkout(&app, &buyers[i % 10].token, &body))).await;

    assert_eq!(
        tally(&results),
        counts([((201, ""), 10), ((409, "out-of-stock"), 40)])
    );
    for r in results.iter().filter(|r| r.status == 409) {
        assert_eq!(r.body["product_ids"], json!([product]), "{}", r.body);
        assert_eq!(r.body["lines"][0]["index"], 0, "{}", r.body);
    }
    assert_eq!(stock_of(&app, product), 0);
    assert_eq!(count(&app, "SELECT count(*) AS n FROM orders"), 10);
    // Each buyer paid for exactly the units they got.
    for (b, buyer) in buyers.iter().enumerate() {
        let won = (b..50)
            .step_by(10)
            .filter(|i| results[*i].status == 201)
            .count() as i64;
        assert_eq!(balance(&app, &buyer.token).await, 100_000 - 5_000 * won);
    }
    assert_eq!(village_balance(&app, "escrow", B), 10 * 5_000);
    assert_global(&app, &initial);
}

#[actix_rt::test]
async fn twenty_checkouts_against_one_wallet_spend_it_once() {
    let app = spawn_busy_app().await;
    let w = fixtures::world(&app);
    // Twenty products, so the checkouts meet on the wallet, not on a product row.
    let products: Vec<Uuid> = app.with_conn(|c| {
        (0..20)
            .map(|i| {
                let name = format!("Beras {i}");
                fixtures::product(c, w.a.active_shop, &w.a.operator, A, &name, 60_000, 1)
            })
            .collect()
    });
    let initial = money::stock_snapshot(&app);
    let treasurer = app.login(&w.a.treasurer.phone, A).await;
    let buyer = app.login(&w.a.member.phone, A).await;
    let wallet = id(&money::wallet_of(&app, &buyer).await);
    topup(&app, &treasurer, &wallet, 100_000).await;

    let bodies: Vec<Value> = products.iter().map(|p| pickup(&[(*p, 1)])).collect();
    let results = join_all(bodies.iter().map(|b| checkout(&app, &buyer, b))).await;

    assert_eq!(
        tally(&results),
        counts([((201, ""), 1), ((409, "insufficient-funds"), 19)])
    );
    assert_eq!(balance(&app, &buyer).await, 40_000);
    assert_eq!(village_balance(&app, "escrow", A), 60_000);
    assert_eq!(count(&app, "SELECT count(*) AS n FROM orders"), 1);
    // The refused checkouts took no stock (their UPDATE rolled back with the overdraft).
    assert_eq!(
        count(&app, "SELECT sum(stock)::bigint AS n FROM products"),
        19
    );
    assert_global(&app, &initial);
}

#[actix_rt::test]
async fn one_idempotency_key_places_one_order_however_often_it_is_sent() {
    let app = spawn_busy_app().await;
    let w = fixtures::world(&app);
    let product = app.with_conn(|c| {
        fixtures::product(c, w.b.active_shop, &w.b.operator, B, "Kopi", 10_000, 100)
    });
    let initial = money::stock_snapshot(&app);
    let (ta, tb) = (
        app.login(&w.a.treasurer.phone, A).await,
        app.login(&w.b.treasurer.phone, B).await,
    );
    let buyer = app.login(&w.a.member.phone, A).await;
    let other = app.login(&w.b.member.phone, B).await;
    topup(
        &app,
        &ta,
        &id(&money::wallet_of(&app, &buyer).await),
        100_000,
    )
    .await;
    topup(
        &app,
        &tb,
        &id(&money::wallet_of(&app, &other).await),
        100_000,
    )
    .await;
    let body = pickup(&[(product, 1)]);
    let orders = || count(&app, "SELECT count(*) AS n FROM orders");

    // Five times in a row: one order, then the same response replayed.
    let k1 = key();
    let first = keyed_checkout(&app, &buyer, &k1, &body).await;
    assert_eq!(first.status, 201, "{}", first.body);
    assert!(!replayed(&first));
    for _ in 0..4 {
        let again = keyed_checkout(&app, &buyer, &k1, &body).await;
        assert_eq!(again.status, 201);
        assert!(replayed(&again), "a replay says so");
        assert_eq!(again.body, first.body);
    }
    assert_eq!(orders(), 1);
    assert_eq!(balance(&app, &buyer).await, 90_000);

    // Ten at once with a fresh key: one runs; the others replay it or are told it is still
    // running (409, retryable), never a second order.
    let k2 = key();
    let burst = join_all((0..10).map(|_| keyed_checkout(&app, &buyer, &k2, &body))).await;
    let fresh: Vec<&Resp> = burst
        .iter()
        .filter(|r| r.status == 201 && !replayed(r))
        .collect();
    assert_eq!(fresh.len(), 1, "exactly one request ran");
    for r in &burst {
        match r.status.as_u16() {
            201 => assert_eq!(r.body, fresh[0].body, "a replay is the same response"),
            409 => {
                assert_eq!(slug(r), "conflict", "{}", r.body);
                assert_eq!(r.body["retryable"], true, "{}", r.body);
            }
            s => panic!("unexpected {s}: {}", r.body),
        }
    }
    let late = keyed_checkout(&app, &buyer, &k2, &body).await;
    assert!(late.status == 201 && replayed(&late));
    assert_eq!(late.body, fresh[0].body);
    assert_eq!(orders(), 2);
    assert_eq!(balance(&app, &buyer).await, 80_000);

    // Another body under a used key is refused, and changes nothing.
    keyed_checkout(&app, &buyer, &k1, &pickup(&[(product, 2)]))
        .await
        .expect_problem(422, "idempotency-mismatch");
    // Keys are the caller's: another user's k1 is a new request.
    let theirs = keyed_checkout(&app, &other, &k1, &body).await;
    assert!(
        theirs.status == 201 && !replayed(&theirs),
        "{}",
        theirs.body
    );
    assert_ne!(theirs.body["id"], first.body["id"]);
    // No key, no checkout.
    let p = app
        .post("/api/v1/checkouts")
        .token(&buyer)
        .json(&body)
        .send()
        .await
        .expect_problem(400, "validation");
    assert_eq!(p["errors"][0]["field"], "Idempotency-Key");

    assert_eq!(orders(), 3);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) AS n FROM ledger_transactions WHERE kind = 'hold'"
        ),
        3
    );
    assert_eq!(balance(&app, &buyer).await, 80_000);
    assert_eq!(balance(&app, &other).await, 90_000);
    assert_eq!(stock_of(&app, product), 97);
    assert_global(&app, &initial);
}

#[actix_rt::test]
async fn confirm_and_dispute_racing_on_a_shipped_order_have_one_winner() {
    let app = spawn_busy_app().await;
    let w = fixtures::world(&app);
    let product = app
        .with_conn(|c| fixtures::product(c, w.b.active_shop, &w.b.operator, B, "Batik", 15_000, 5));
    let initial = money::stock_snapshot(&app);
    let treasurer = app.login(&w.a.treasurer.phone, A).await;
    let buyer = app.login(&w.a.member.phone, A).await;
    let seller = app.login(&w.b.operator.phone, B).await;
    topup(
        &app,
        &treasurer,
        &id(&money::wallet_of(&app, &buyer).await),
        100_000,
    )
    .await;
    let (order, total) = place(&app, &buyer, product, 2).await;
    act(&app, &seller, &order, "accept", json!({}))
        .await
        .expect(200);
    let ship = json!({"courier_name": "Pak Kurir", "courier_phone": "081299990000"});
    act(&app, &seller, &order, "ship", ship).await.expect(200);

    // 25 confirms, 13 disputes and 12 cancels (never allowed once shipped), interleaved.
    let requests: Vec<(&str, Value)> = (0..50)
        .map(|i| match i % 4 {
            0 | 2 => ("confirm", json!({})),
            1 => ("dispute", json!({"reason": "barangnya rusak"})),
            _ => ("cancel", json!({"reason": "tidak jadi"})),
        })
        .collect();
    let results = join_all(
        requests
            .iter()
            .map(|(a, body)| act(&app, &buyer, &order, a, body.clone())),
    )
    .await;

    assert_eq!(
        tally(&results),
        counts([((200, ""), 1), ((409, "conflict"), 49)])
    );
    let (i, won) = results
        .iter()
        .enumerate()
        .find(|(_, r)| r.status == 200)
        .unwrap();
    let outcome = match requests[i].0 {
        "confirm" => "completed",
        "dispute" => "disputed",
        a => panic!("{a} cannot win from shipped"),
    };
    assert_eq!(won.body["status"], outcome);
    assert_eq!(status_of(&app, &order), outcome);
    assert_eq!(
        events_of(&app, &order),
        ["placed", "accepted", "shipped", outcome]
    );
    // The money moved once: settled to the shop, or still held for the dispute.
    let settled = outcome == "completed";
    assert_eq!(
        shop_balance(&app, w.b.active_shop),
        if settled { total } else { 0 }
    );
    assert_eq!(
        village_balance(&app, "escrow", B),
        if settled { 0 } else { total }
    );
    assert_eq!(balance(&app, &buyer).await, 100_000 - total);
    assert_global(&app, &initial);
}

#[actix_rt::test]
async fn accept_and_reject_racing_on_a_placed_order_have_one_winner() {
    let app = spawn_busy_app().await;
    let w = fixtures::world(&app);
    let product = app
        .with_conn(|c| fixtures::product(c, w.b.active_shop, &w.b.operator, B, "Tempe", 4_000, 5));
    let initial = money::stock_snapshot(&app);
    let treasurer = app.login(&w.a.treasurer.phone, A).await;
    let buyer = app.login(&w.a.member.phone, A).await;
    let seller = app.login(&w.b.operator.phone, B).await;
    topup(
        &app,
        &treasurer,
        &id(&money::wallet_of(&app, &buyer).await),
        50_000,
    )
    .await;
    let (order, total) = place(&app, &buyer, product, 2).await;

    let requests: Vec<(&str, Value)> = (0..50)
        .map(|i| match i % 2 {
            0 => ("accept", json!({})),
            _ => ("reject", json!({"reason": "stok habis di gudang"})),
        })
        .collect();
    let results = join_all(
        requests
            .iter()
            .map(|(a, body)| act(&app, &seller, &order, a, body.clone())),
    )
    .await;

    assert_eq!(
        tally(&results),
        counts([((200, ""), 1), ((409, "conflict"), 49)])
    );
    let i = results.iter().position(|r| r.status == 200).unwrap();
    let outcome = if requests[i].0 == "accept" {
        "accepted"
    } else {
        "rejected"
    };
    assert_eq!(status_of(&app, &order), outcome);
    assert_eq!(events_of(&app, &order), ["placed", outcome]);
    let refunds = count(
        &app,
        "SELECT count(*) AS n FROM ledger_transactions WHERE kind = 'refund'",
    );
    if outcome == "rejected" {
        // Refunded once, the stock back once.
        assert_eq!(refunds, 1);
        assert_eq!(balance(&app, &buyer).await, 50_000);
        assert_eq!(stock_of(&app, product), 5);
    } else {
        assert_eq!(refunds, 0);
        assert_eq!(balance(&app, &buyer).await, 50_000 - total);
        assert_eq!(stock_of(&app, product), 3);
    }
    assert_global(&app, &initial);
}

#[actix_rt::test]
async fn a_buyers_cancel_racing_the_sellers_accept_loses_with_409() {
    let app = spawn_busy_app().await;
    let w = fixtures::world(&app);
    let product = app
        .with_conn(|c| fixtures::product(c, w.b.active_shop, &w.b.operator, B, "Salak", 3_000, 10));
    let initial = money::stock_snapshot(&app);
    let treasurer = app.login(&w.a.treasurer.phone, A).await;
    let buyer = app.login(&w.a.member.phone, A).await;
    let seller = app.login(&w.b.operator.phone, B).await;
    topup(
        &app,
        &treasurer,
        &id(&money::wallet_of(&app, &buyer).await),
        50_000,
    )
    .await;

    // Two parties, two moves out of `placed`: whoever comes second finds the order moved on,
    // which is a conflict (409), not a lack of rights (the buyer may cancel a placed order).
    let (order, _) = place(&app, &buyer, product, 1).await;
    let results = join_all((0..50).map(|i| {
        if i % 2 == 0 {
            act(&app, &seller, &order, "accept", json!({})).boxed_local()
        } else {
            act(&app, &buyer, &order, "cancel", json!({})).boxed_local()
        }
    }))
    .await;
    assert_eq!(
        tally(&results),
        counts([((200, ""), 1), ((409, "conflict"), 49)])
    );
    // The same, one after the other, whichever way the race went.
    let (late, _) = place(&app, &buyer, product, 1).await;
    act(&app, &seller, &late, "accept", json!({}))
        .await
        .expect(200);
    act(&app, &buyer, &late, "cancel", json!({}))
        .await
        .expect_problem(409, "conflict");
    // Still 403 for a move the buyer never has (shipping their own purchase).
    act(
        &app,
        &buyer,
        &late,
        "ship",
        json!({"courier_name": "X", "courier_phone": "081299990000"}),
    )
    .await
    .expect_problem(403, "forbidden");
    assert_global(&app, &initial);
}

#[actix_rt::test]
async fn refunds_and_checkouts_of_the_same_products_do_not_deadlock() {
    let app = spawn_busy_app().await;
    let w = fixtures::world(&app);
    let (p1, p2) = app.with_conn(|c| {
        (
            fixtures::product(c, w.b.active_shop, &w.b.operator, B, "Keripik", 2_000, 100),
            fixtures::product(
                c,
                w.b.active_shop,
                &w.b.operator,
                B,
                "Rengginang",
                3_000,
                100,
            ),
        )
    });
    let initial = money::stock_snapshot(&app);
    let treasurer = app.login(&w.a.treasurer.phone, A).await;
    let seller = app.login(&w.b.operator.phone, B).await;
    let buyers = money::funded_buyers(&app, &w.platform, A, &treasurer, 3, 4, 500_000).await;
    // A refund touches the products and the escrow; so does a checkout. Taken in opposite
    // orders they deadlock (PostgreSQL breaks it after a second, and the pool backs up).
    let body = pickup(&[(p2, 1), (p1, 1)]);
    let mut placed = Vec::new();
    for i in 0..20 {
        placed.push(id(&checkout(&app, &buyers[i % 4].token, &body)
            .await
            .expect(201)["orders"][0]));
    }
    let started = Instant::now();
    let rejects = placed
        .iter()
        .map(|o| act(&app, &seller, o, "reject", json!({"reason": "tutup"})).boxed_local());
    let checkouts = (0..20).map(|i| checkout(&app, &buyers[i % 4].token, &body).boxed_local());
    let results = join_all(rejects.chain(checkouts)).await;
    let took = started.elapsed();
    assert_eq!(
        tally(&results),
        counts([((200, ""), 20), ((201, ""), 20)]),
        "all of them succeed (no deadlock gave up, no request starved for a connection)"
    );
    assert!(
        results.iter().all(|r| r.body["retryable"] != true),
        "none was retried to exhaustion"
    );
    println!("40 refunds and checkouts in {took:?}");
    assert_eq!(money::deadlocks(&app), 0, "PostgreSQL broke deadlocks");
    assert_eq!(stock_of(&app, p1), 80);
    assert_global(&app, &initial);
}

#[actix_rt::test]
async fn two_timer_workers_move_each_due_order_exactly_once() {
    let app = spawn_busy_app().await;
    let w = fixtures::world(&app);
    let (pa, pb) = app.with_conn(|c| {
        (
            fixtures::product(c, w.a.active_shop, &w.a.operator, A, "Emping", 7_000, 100),
            fixtures::product(c, w.b.active_shop, &w.b.operator, B, "Madu", 9_000, 100),
        )
    });
    let initial = money::stock_snapshot(&app);
    // 30 placed, 30 shipped and 5 accepted orders (no timer applies to those), set up through
    // the domain functions: the race under test is the timers'.
    let (placed, shipped, accepted) = app.with_conn(|c| {
        let policy = pasar::orders::Policy {
            platform_fee_bps: 0,
        };
        let buyers = [
            (&w.a.member, &w.a.treasurer, A),
            (&w.b.member, &w.b.treasurer, B),
        ];
        for (m, t, v) in buyers {
            let wallet = pasar::ledger::user_wallet(c, m.id).unwrap().id;
            let movement = pasar::ledger::NewMovement {
                amount_idr: 10_000_000,
                note: None,
            };
            let as_treasurer = Caller::offline(t.id, v, vec![Role::Treasurer]);
            pasar::ledger::move_cash(
                c,
                &as_treasurer,
                wallet,
                pasar::ledger::TxKind::Topup,
                &movement,
            )
            .unwrap();
        }
        let sellers = [
            Caller::offline(w.a.operator.id, A, vec![Role::Member]),
            Caller::offline(w.b.operator.id, B, vec![Role::Member]),
        ];
        let ship = pasar::orders::Details {
            note: None,
            courier_name: Some("Pak Kurir".into()),
            courier_phone: Some("+6281299990000".into()),
        };
        let mut ids: Vec<(Uuid, usize)> = Vec::new();
        for i in 0..65 {
            let (m, _, v) = buyers[i % 2];
            let (product, shop) = if i % 3 == 0 { (pa, 0) } else { (pb, 1) };
            let req = serde_json::from_value(pickup(&[(product, 1 + (i % 2) as i64)])).unwrap();
            let as_buyer = Caller::offline(m.id, v, vec![Role::Member]);
            let r = pasar::orders::checkout(c, &as_buyer, policy, &req).unwrap();
            ids.push((r.orders[0].id, shop));
        }
        let d = pasar::orders::Details::default();
        for (o, shop) in &ids[30..] {
            pasar::orders::act(c, &sellers[*shop], *o, Action::Accept, &d).unwrap();
        }
        for (o, shop) in &ids[30..60] {
            pasar::orders::act(c, &sellers[*shop], *o, Action::Ship, &ship).unwrap();
        }
        let ids: Vec<Uuid> = ids.into_iter().map(|(o, _)| o).collect();
        (ids[..30].to_vec(), ids[30..60].to_vec(), ids[60..].to_vec())
    });

    let policy = TimerPolicy {
        expire_after: chrono::Duration::hours(48),
        complete_after: chrono::Duration::hours(72),
        interval: Duration::from_secs(1),
    };
    let later = chrono::Utc::now() + chrono::Duration::days(30);
    let start = Barrier::new(2);
    let db = &app.db;
    let ran: Vec<Ran> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    let mut conn = db.conn();
                    start.wait();
                    run_due(&mut conn, &policy, later, 1000).expect("a timer run")
                })
            })
            .collect();
        workers.into_iter().map(|h| h.join().unwrap()).collect()
    });
    println!("timer workers: {ran:?}");
    assert_eq!(ran.iter().map(|r| r.expired).sum::<usize>(), 30);
    assert_eq!(ran.iter().map(|r| r.completed).sum::<usize>(), 30);

    let check = |ids: &[Uuid], status: &str, events: usize| {
        for o in ids {
            let o = o.to_string();
            assert_eq!(status_of(&app, &o), status);
            assert_eq!(events_of(&app, &o).len(), events, "order {o}");
        }
    };
    check(&placed, "expired", 2);
    check(&shipped, "completed", 4);
    check(&accepted, "accepted", 2);
    // One refund per expired order, one settlement per completed one (and per order: checked
    // by assert_global), all by the system.
    let by = |kind: &str| {
        count(
            &app,
            &format!(
                "SELECT count(*) AS n FROM ledger_transactions
                  WHERE kind = '{kind}' AND actor_id IS NULL"
            ),
        )
    };
    assert_eq!((by("refund"), by("settlement")), (30, 30));
    // Nothing is due any more.
    let again = app.with_conn(|c| run_due(c, &policy, later, 1000).unwrap());
    assert_eq!(again, Ran::default());
    assert_global(&app, &initial);
}

/// What one task of the random mix saw: "what status slug" → how many.
type Seen = HashMap<String, usize>;

/// Records a response that must be one of `allowed` (status, slug); anything else fails.
fn note(seen: &mut Seen, what: &str, r: &Resp, allowed: &[(u16, &str)]) {
    let got = (r.status.as_u16(), slug(r));
    // A retryable 409 here means three attempts in a row died on a deadlock or a
    // serialization failure: a lock-order bug, not a lost race.
    assert!(
        allowed.contains(&got) && r.body["retryable"] != true,
        "{what}: unexpected {} {}",
        r.status,
        r.body
    );
    *seen
        .entry(format!("{what} {} {}", got.0, got.1))
        .or_insert(0) += 1;
}

const MIX_FOR: Duration = Duration::from_secs(8);
/// Operations per task at most, so a fast machine still ends.
const MIX_OPS: usize = 400;

const TRANSITION: &[(u16, &str)] = &[(200, ""), (409, "conflict")];

/// Orders of `role` in `status` the token can see (the first page).
async fn listed(app: &TestApp, token: &str, role: &str, status: &str) -> Vec<Value> {
    let page = app
        .get(&format!(
            "/api/v1/orders?role={role}&status={status}&limit=20"
        ))
        .token(token)
        .send()
        .await
        .expect(200);
    page["items"].as_array().unwrap().clone()
}

async fn mix_buyer(
    app: &TestApp,
    b: &Buyer,
    products: &[Uuid],
    disputes: &[Mutex<Vec<String>>; 2],
    seed: u64,
    end: Instant,
) -> Seen {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut seen = Seen::new();
    for _ in 0..MIX_OPS {
        if Instant::now() >= end {
            break;
        }
        match rng.random_range(0..10) {
            0..=4 => {
                let n = rng.random_range(1..=3);
                let chosen: Vec<Uuid> = products.choose_multiple(&mut rng, n).copied().collect();
                let lines: Vec<Value> = chosen
                    .iter()
                    .map(|p| json!({"product_id": p, "quantity": rng.random_range(1..=3)}))
                    .collect();
                let delivery = if rng.random_bool(0.5) {
                    json!({"method": "pickup"})
                } else {
                    json!({"method": "delivery", "address": "Dusun Krapyak RT 03"})
                };
                let r = checkout(
                    app,
                    &b.token,
                    &json!({"lines": lines, "delivery": delivery}),
                )
                .await;
                note(
                    &mut seen,
                    "checkout",
                    &r,
                    &[
                        (201, ""),
                        (409, "out-of-stock"),
                        (409, "insufficient-funds"),
                    ],
                );
            }
            5 => {
                if let Some(o) = listed(app, &b.token, "buyer", "placed")
                    .await
                    .choose(&mut rng)
                {
                    let r = act(app, &b.token, &id(o), "cancel", json!({})).await;
                    note(&mut seen, "cancel", &r, TRANSITION);
                }
            }
            6..=8 => {
                if let Some(o) = listed(app, &b.token, "buyer", "shipped")
                    .await
                    .choose(&mut rng)
                {
                    if rng.random_bool(0.7) {
                        let r = act(app, &b.token, &id(o), "confirm", json!({})).await;
                        note(&mut seen, "confirm", &r, TRANSITION);
                    } else {
                        let reason = json!({"reason": "kurang satu"});
                        let r = act(app, &b.token, &id(o), "dispute", reason).await;
                        note(&mut seen, "dispute", &r, TRANSITION);
                        if r.status == 200 {
                            let v = usize::from(o["village_code"] == B);
                            disputes[v].lock().unwrap().push(id(o));
                        }
                    }
                }
            }
            _ => {
                money::wallet_of(app, &b.token).await;
            }
        }
    }
    seen
}

async fn mix_seller(app: &TestApp, token: &str, seed: u64, end: Instant) -> Seen {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut seen = Seen::new();
    for _ in 0..MIX_OPS {
        if Instant::now() >= end {
            break;
        }
        let placed = rng.random_bool(0.6);
        let status = if placed { "placed" } else { "accepted" };
        let Some(o) = listed(app, token, "seller", status)
            .await
            .choose(&mut rng)
            .cloned()
        else {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        };
        let (what, body) = match (placed, rng.random_bool(0.8)) {
            (true, true) => ("accept", json!({})),
            (true, false) => ("reject", json!({"reason": "habis"})),
            (false, true) => (
                "ship",
                json!({"courier_name": "Ojek Desa", "courier_phone": "081377770000"}),
            ),
            (false, false) => ("cancel", json!({"reason": "kurir tidak ada"})),
        };
        let r = act(app, token, &id(&o), what, body).await;
        note(&mut seen, what, &r, TRANSITION);
    }
    seen
}

async fn mix_admin(
    app: &TestApp,
    token: &str,
    disputes: &Mutex<Vec<String>>,
    seed: u64,
    end: Instant,
) -> Seen {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut seen = Seen::new();
    while Instant::now() < end {
        let next = disputes.lock().unwrap().pop();
        let Some(order) = next else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let outcome = if rng.random_bool(0.5) {
            "release"
        } else {
            "refund"
        };
        let r = act(app, token, &order, "resolve", json!({"outcome": outcome})).await;
        // Only this admin moves a disputed order of the village: it always succeeds.
        note(&mut seen, outcome, &r, &[(200, "")]);
    }
    seen
}

async fn mix_treasurer(
    app: &TestApp,
    token: &str,
    wallets: &[String],
    seed: u64,
    end: Instant,
) -> Seen {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut seen = Seen::new();
    for _ in 0..MIX_OPS {
        if Instant::now() >= end {
            break;
        }
        let wallet = wallets.choose(&mut rng).unwrap();
        let (what, path, amount) = if rng.random_bool(0.5) {
            ("topup", "topups", rng.random_range(1_000..100_000))
        } else {
            ("withdraw", "withdrawals", rng.random_range(1_000..150_000))
        };
        let r = app
            .post(&format!("/api/v1/wallets/{wallet}/{path}"))
            .token(token)
            .header("idempotency-key", &key())
            .json(&json!({"amount_idr": amount}))
            .send()
            .await;
        note(
            &mut seen,
            what,
            &r,
            &[(201, ""), (409, "insufficient-funds")],
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    seen
}

#[derive(QueryableByName)]
struct Sums {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    total: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    cash: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    inside: i64,
}

#[actix_rt::test]
async fn a_random_mix_keeps_the_books_balanced_at_every_instant() {
    let app = spawn_busy_app().await;
    let w = fixtures::world(&app);
    // Fees and delivery charges, so settlements split four ways and totals differ by route.
    app.with_conn(|c| {
        for sql in [
            format!("UPDATE villages SET village_share_bps = 250 WHERE code = '{A}'"),
            format!("UPDATE villages SET village_share_bps = 150 WHERE code = '{B}'"),
            "UPDATE networks SET network_fee_bps = 100".into(),
            "UPDATE shops SET delivery_fee_village_idr = 2000, delivery_fee_other_idr = 7500"
                .into(),
        ] {
            diesel::sql_query(sql).execute(c).unwrap();
        }
    });
    let products: Vec<Uuid> = app.with_conn(|c| {
        let prices = [1_234, 5_000, 12_500, 39_999];
        let mut v = Vec::new();
        for (i, price) in prices.into_iter().enumerate() {
            let name = format!("Produk {i}");
            v.push(fixtures::product(
                c,
                w.a.active_shop,
                &w.a.operator,
                A,
                &name,
                price,
                25,
            ));
            v.push(fixtures::product(
                c,
                w.b.active_shop,
                &w.b.operator,
                B,
                &name,
                price,
                25,
            ));
        }
        v
    });
    let initial = money::stock_snapshot(&app);
    let ta = app.login(&w.a.treasurer.phone, A).await;
    let tb = app.login(&w.b.treasurer.phone, B).await;
    let mut buyers = money::funded_buyers(&app, &w.platform, A, &ta, 1, 3, 300_000).await;
    buyers.extend(money::funded_buyers(&app, &w.platform, B, &tb, 2, 3, 300_000).await);
    let sellers = [
        app.login(&w.a.operator.phone, A).await,
        app.login(&w.b.operator.phone, B).await,
    ];
    let admins = [
        app.login(&w.a.admin.phone, A).await,
        app.login(&w.b.admin.phone, B).await,
    ];
    // Each treasurer pays out and tops up its village's buyers and its shop.
    let mut wallets: [Vec<String>; 2] = [Vec::new(), Vec::new()];
    for (v, shop, t) in [(0, w.a.active_shop, &ta), (1, w.b.active_shop, &tb)] {
        let sw = app
            .get(&format!("/api/v1/shops/{shop}/wallet"))
            .token(t)
            .send()
            .await
            .expect(200);
        wallets[v].push(id(&sw));
        wallets[v].extend(buyers[v * 3..v * 3 + 3].iter().map(|b| b.wallet.clone()));
    }

    // The reader: one statement, one snapshot, while everything moves.
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let stop = stop.clone();
        let url = app.db.url.clone();
        std::thread::spawn(move || {
            let mut conn = pasar::db::connect(&url).unwrap();
            let (mut samples, mut bad, mut inside) = (0, Vec::new(), BTreeSet::new());
            while !stop.load(Ordering::Relaxed) {
                let s: Sums = diesel::sql_query(
                    "SELECT COALESCE(sum(balance_idr), 0)::bigint AS total,
                            COALESCE(sum(balance_idr) FILTER (WHERE kind = 'cash'), 0)::bigint AS cash,
                            COALESCE(sum(balance_idr) FILTER (WHERE kind <> 'cash'), 0)::bigint AS inside
                       FROM accounts",
                )
                .get_result(&mut conn)
                .unwrap();
                samples += 1;
                if s.total != 0 || s.inside != -s.cash {
                    bad.push((s.total, s.cash, s.inside));
                }
                inside.insert(s.inside);
                std::thread::sleep(Duration::from_millis(10));
            }
            (samples, bad, inside.len())
        })
    };

    let seed: u64 = rand::random();
    println!("mix seed {seed}");
    let disputes: [Mutex<Vec<String>>; 2] = Default::default();
    let started = Instant::now();
    let end = started + MIX_FOR;
    let mut tasks: Vec<LocalBoxFuture<Seen>> = Vec::new();
    for (i, b) in buyers.iter().enumerate() {
        let s = seed.wrapping_add(i as u64);
        tasks.push(mix_buyer(&app, b, &products, &disputes, s, end).boxed_local());
    }
    for v in 0..2 {
        let s = seed.wrapping_add(100 + v as u64);
        tasks.push(mix_seller(&app, &sellers[v], s, end).boxed_local());
        tasks.push(mix_admin(&app, &admins[v], &disputes[v], s, end).boxed_local());
        let t = if v == 0 { &ta } else { &tb };
        tasks.push(mix_treasurer(&app, t, &wallets[v], s, end).boxed_local());
    }
    let mut seen = Seen::new();
    for s in join_all(tasks).await {
        for (k, n) in s {
            *seen.entry(k).or_insert(0) += n;
        }
    }
    // Disputes raised at the very end are resolved by nobody: they stay live, which is fine.
    stop.store(true, Ordering::Relaxed);
    let (samples, bad, distinct) = reader.join().unwrap();
    let mut lines: Vec<_> = seen.iter().collect();
    lines.sort();
    println!(
        "mix in {:?}: {lines:?}; reader {samples} samples",
        started.elapsed()
    );

    assert!(bad.is_empty(), "the books did not sum to zero: {bad:?}");
    assert!(samples >= 50, "the reader read too little: {samples}");
    assert!(
        distinct > 10,
        "the reader saw the money move only {distinct} ways"
    );
    // The mix did what it is for (so the sums above were taken while money moved).
    for k in [
        "checkout 201 ",
        "accept 200 ",
        "ship 200 ",
        "confirm 200 ",
        "topup 201 ",
        "withdraw 201 ",
    ] {
        assert!(
            seen.get(k).copied().unwrap_or(0) > 0,
            "no {k:?} in {lines:?}"
        );
    }
    assert!(started.elapsed() < MIX_FOR + Duration::from_secs(5));
    assert_eq!(money::deadlocks(&app), 0, "PostgreSQL broke deadlocks");
    assert_global(&app, &initial);
}

#[actix_rt::test]
async fn a_token_of_one_village_moves_and_reads_nothing_of_another() {
    let app = spawn_busy_app().await;
    let w = fixtures::world(&app);
    let product = app.with_conn(|c| {
        fixtures::product(
            c,
            w.b.active_shop,
            &w.b.operator,
            B,
            "Wedang Uwuh",
            6_000,
            10,
        )
    });
    // A second shop in B, with its own operator, and B's treasurer also a member of A.
    let rival_op = app.with_conn(|c| {
        let op = money::member(c, &w.platform, B, "+6285799000001");
        let as_op = Caller::offline(op.id, B, vec![Role::Member]);
        let as_admin = Caller::offline(w.b.admin.id, B, vec![Role::Admin]);
        let app_ = pasar::shops::ShopApplication {
            name: "Lapak Saingan".into(),
            description: String::new(),
            kind: "umkm".into(),
            bumdes_unit_id: None,
        };
        let shop = pasar::shops::apply(c, &as_op, B, &app_).unwrap().id;
        pasar::shops::decide(c, &as_admin, shop, pasar::shops::Decision::Approve, None).unwrap();
        let as_platform = Caller::offline(w.platform.id, A, vec![Role::PlatformAdmin]);
        pasar::identity::memberships::add(
            c,
            &as_platform,
            A,
            &pasar::identity::memberships::ValidMember {
                phone: w.b.treasurer.phone.clone(),
                name: None,
                roles: vec![Role::Member],
            },
            None,
        )
        .unwrap();
        op
    });
    let initial = money::stock_snapshot(&app);
    let a_treasurer = app.login(&w.a.treasurer.phone, A).await;
    let a_member = app.login(&w.a.member.phone, A).await;
    let a_admin = app.login(&w.a.admin.phone, A).await;
    let a_seller = app.login(&w.a.operator.phone, A).await;
    let b_treasurer_in_a = app.login(&w.b.treasurer.phone, A).await;
    let b_treasurer = app.login(&w.b.treasurer.phone, B).await;
    let b_member = app.login(&w.b.member.phone, B).await;
    let b_seller = app.login(&w.b.operator.phone, B).await;
    let rival_seller = app.login(&rival_op.phone, B).await;
    let b_wallet = id(&money::wallet_of(&app, &b_member).await);

    // Money: A's treasurer, and B's own treasurer signed in to A, move nothing of B's.
    for t in [&a_treasurer, &b_treasurer_in_a] {
        for path in ["topups", "withdrawals"] {
            app.post(&format!("/api/v1/wallets/{b_wallet}/{path}"))
                .token(t)
                .header("idempotency-key", &key())
                .json(&json!({"amount_idr": 50_000}))
                .send()
                .await
                .expect_problem(404, "not-found");
        }
    }
    assert_eq!(
        count(&app, "SELECT count(*) AS n FROM ledger_transactions"),
        0
    );
    // The same person through B's token may (so the 404s above were about the token).
    topup(&app, &b_treasurer, &b_wallet, 50_000).await;

    // Reads: another village's wallets and statements are hidden.
    for t in [&a_member, &a_admin, &a_treasurer, &b_treasurer_in_a] {
        app.get(&format!("/api/v1/wallets/{b_wallet}/transactions"))
            .token(t)
            .send()
            .await
            .expect_problem(404, "not-found");
        app.get(&format!("/api/v1/shops/{}/wallet", w.b.active_shop))
            .token(t)
            .send()
            .await
            .expect_problem(404, "not-found");
    }

    // An order between B's member and B's shop: no one else sees it or moves it.
    let (order, total) = place(&app, &b_member, product, 1).await;
    let strangers = [
        &a_member,
        &a_admin,
        &a_seller,
        &rival_seller,
        &b_treasurer_in_a,
    ];
    for t in strangers {
        app.get(&format!("/api/v1/orders/{order}"))
            .token(t)
            .send()
            .await
            .expect_problem(404, "not-found");
        for (what, body) in [
            ("accept", json!({})),
            ("reject", json!({"reason": "bukan urusan saya"})),
            ("cancel", json!({})),
        ] {
            act(&app, t, &order, what, body)
                .await
                .expect_problem(404, "not-found");
        }
        let seller_list = listed(&app, t, "seller", "placed").await;
        let buyer_list = listed(&app, t, "buyer", "placed").await;
        assert!(seller_list.is_empty() && buyer_list.is_empty());
    }
    // Its parties do see it.
    for t in [&b_member, &b_seller] {
        app.get(&format!("/api/v1/orders/{order}"))
            .token(t)
            .send()
            .await
            .expect(200);
    }
    assert_eq!(status_of(&app, &order), "placed");
    assert_eq!(events_of(&app, &order), ["placed"]);
    assert_eq!(balance(&app, &b_member).await, 50_000 - total);
    assert_global(&app, &initial);
}

/// Everything a checkout could write: balances, stock, and the rows of orders and the ledger.
fn state(app: &TestApp) -> String {
    #[derive(QueryableByName)]
    struct S {
        #[diesel(sql_type = diesel::sql_types::Text)]
        s: String,
    }
    app.with_conn(|c| {
        diesel::sql_query(
            "SELECT concat_ws(' | ',
                (SELECT string_agg(id || '=' || balance_idr, ',' ORDER BY id) FROM accounts),
                (SELECT string_agg(id || '=' || stock || '/' || status, ',' ORDER BY id) FROM products),
                (SELECT count(*) FROM orders), (SELECT count(*) FROM order_lines),
                (SELECT count(*) FROM order_events), (SELECT count(*) FROM ledger_transactions),
                (SELECT count(*) FROM postings)) AS s",
        )
        .get_result::<S>(c)
        .unwrap()
        .s
    })
}

#[actix_rt::test]
async fn a_cross_shop_checkout_is_all_or_nothing() {
    let app = spawn_busy_app().await;
    let w = fixtures::world(&app);
    let (pa1, pa2, pb1, pb2) = app.with_conn(|c| {
        let pa1 = fixtures::product(c, w.a.active_shop, &w.a.operator, A, "Bakpia", 10_000, 5);
        let pa2 = fixtures::product(c, w.a.active_shop, &w.a.operator, A, "Geplak", 8_000, 5);
        let pb1 = fixtures::product(c, w.b.active_shop, &w.b.operator, B, "Gerabah", 20_000, 1);
        let pb2 = fixtures::product(c, w.b.active_shop, &w.b.operator, B, "Anyaman", 5_000, 9);
        diesel::sql_query(format!(
            "UPDATE products SET status = 'inactive' WHERE id = '{pb2}'"
        ))
        .execute(c)
        .unwrap();
        for (shop, inside, other) in [(w.a.active_shop, 3_000, 8_000), (w.b.active_shop, 4_000, 9_000)] {
            diesel::sql_query(format!(
                "UPDATE shops SET delivery_fee_village_idr = {inside}, delivery_fee_other_idr = {other}
                  WHERE id = '{shop}'"
            ))
            .execute(c)
            .unwrap();
        }
        (pa1, pa2, pb1, pb2)
    });
    let initial = money::stock_snapshot(&app);
    let ta = app.login(&w.a.treasurer.phone, A).await;
    let tb = app.login(&w.b.treasurer.phone, B).await;
    let buyer = app.login(&w.a.member.phone, A).await;
    let poor = app.login(&w.b.member.phone, B).await;
    topup(
        &app,
        &ta,
        &id(&money::wallet_of(&app, &buyer).await),
        200_000,
    )
    .await;
    topup(&app, &tb, &id(&money::wallet_of(&app, &poor).await), 30_000).await;
    let delivery = json!({"method": "delivery", "address": "Jl. Parangtritis km 7"});
    let body = |lines: &[(Uuid, i64)]| {
        let mut b = pickup(lines);
        b["delivery"] = delivery.clone();
        b
    };

    // One shop's line fails: 409 naming that line, and nothing at all is written.
    let before = state(&app);
    for (lines, failing) in [
        (vec![(pa1, 2), (pb1, 3)], vec![(1, pb1)]), // too little stock at B
        (vec![(pb1, 1), (pa1, 1), (pb2, 1)], vec![(2, pb2)]), // B's product inactive
        (vec![(pb2, 1), (pa2, 1), (pa1, 6)], vec![(0, pb2), (2, pa1)]),
    ] {
        let p = checkout(&app, &buyer, &body(&lines))
            .await
            .expect_problem(409, "out-of-stock");
        let named: Vec<(u64, String)> = p["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["index"].as_u64().unwrap(),
                    l["product_id"].as_str().unwrap().into(),
                )
            })
            .collect();
        let want: Vec<(u64, String)> = failing.iter().map(|(i, p)| (*i, p.to_string())).collect();
        assert_eq!(named, want, "{p}");
        let ids: Vec<Uuid> = failing.iter().map(|(_, p)| *p).collect();
        assert_eq!(p["product_ids"], json!(ids));
        assert_eq!(state(&app), before, "a refused checkout wrote something");
    }
    // Stock enough but money short (40,000 + delivery from B's buyer with 30,000): nothing either.
    let before = state(&app);
    checkout(&app, &poor, &body(&[(pa1, 2), (pb1, 1)]))
        .await
        .expect_problem(409, "insufficient-funds");
    assert_eq!(state(&app), before);

    // Lines from both shops: two orders, each with its shop's delivery fee, held in its
    // village's escrow.
    let c = checkout(&app, &buyer, &body(&[(pa1, 2), (pb1, 1), (pa2, 1)]))
        .await
        .expect(201);
    let orders = c["orders"].as_array().unwrap();
    assert_eq!(orders.len(), 2);
    let of = |shop: Uuid| {
        orders
            .iter()
            .find(|o| o["shop_id"] == json!(shop))
            .unwrap_or_else(|| panic!("no order of {shop}: {c}"))
    };
    let (oa, ob) = (of(w.a.active_shop), of(w.b.active_shop));
    assert_eq!(oa["delivery_fee_idr"], 3_000, "inside the buyer's village");
    assert_eq!(oa["total_idr"], 2 * 10_000 + 8_000 + 3_000);
    let lines: Vec<&Value> = oa["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| &l["product_id"])
        .collect();
    assert_eq!(
        lines,
        [&json!(pa1), &json!(pa2)],
        "lines in the request's order"
    );
    assert_eq!(ob["delivery_fee_idr"], 9_000, "to another village");
    assert_eq!(ob["total_idr"], 20_000 + 9_000);
    assert_eq!(c["total_idr"], 31_000 + 29_000);
    for o in [oa, ob] {
        assert_eq!(o["checkout_id"], c["id"]);
        assert_eq!(o["status"], "placed");
    }
    assert_eq!(village_balance(&app, "escrow", A), 31_000);
    assert_eq!(village_balance(&app, "escrow", B), 29_000);
    assert_eq!(balance(&app, &buyer).await, 200_000 - 60_000);
    // One hold per order, from the buyer's wallet into that order's (seller village's) escrow.
    assert_eq!(
        count(
            &app,
            "SELECT count(*) AS n FROM ledger_transactions t JOIN orders o ON o.id = t.order_id
               JOIN postings e ON e.transaction_id = t.id AND e.account_id = o.escrow_account_id
               JOIN postings b ON b.transaction_id = t.id AND b.account_id = o.buyer_account_id
              WHERE t.kind = 'hold' AND e.amount_idr = o.total_idr AND b.amount_idr = -o.total_idr"
        ),
        2
    );
    assert_eq!(
        (
            stock_of(&app, pa1),
            stock_of(&app, pa2),
            stock_of(&app, pb1)
        ),
        (3, 4, 0)
    );
    assert_global(&app, &initial);
}

#[actix_rt::test]
async fn the_database_refuses_to_rewrite_money_history() {
    let app = spawn_busy_app().await;
    let w = fixtures::world(&app);
    let product = app
        .with_conn(|c| fixtures::product(c, w.a.active_shop, &w.a.operator, A, "Jamu", 3_000, 10));
    let initial = money::stock_snapshot(&app);
    let treasurer = app.login(&w.b.treasurer.phone, B).await;
    let buyer = app.login(&w.b.member.phone, B).await;
    let seller = app.login(&w.a.operator.phone, A).await;
    topup(
        &app,
        &treasurer,
        &id(&money::wallet_of(&app, &buyer).await),
        20_000,
    )
    .await;
    let (order, _) = place(&app, &buyer, product, 2).await;
    act(&app, &seller, &order, "accept", json!({}))
        .await
        .expect(200);
    let before = state(&app);

    let refused = |sql: &str, why: &str| {
        let err = app
            .with_conn(|c| diesel::sql_query(sql).execute(c))
            .expect_err(sql);
        assert!(err.to_string().contains(why), "{sql}: {err}");
    };
    for table in [
        "postings",
        "ledger_transactions",
        "order_events",
        "audit_log",
    ] {
        // A row trigger fires only on rows: there must be some to refuse.
        assert!(
            count(&app, &format!("SELECT count(*) AS n FROM {table}")) > 0,
            "{table}"
        );
        let column = match table {
            "postings" => "amount_idr = amount_idr * 2",
            "ledger_transactions" | "order_events" => "note = 'diubah'",
            _ => "created_at = created_at",
        };
        refused(&format!("UPDATE {table} SET {column}"), "append-only");
        refused(&format!("DELETE FROM {table}"), "append-only");
    }
    refused("TRUNCATE postings", "append-only");
    refused("TRUNCATE audit_log", "append-only");
    // Balances move only through postings, and accounts stay.
    refused(
        "UPDATE accounts SET balance_idr = balance_idr + 1000000 WHERE kind = 'user_wallet'",
        "balances change only through postings",
    );
    refused(
        "UPDATE accounts SET balance_idr = 0 WHERE kind = 'cash'",
        "balances change only through postings",
    );
    refused("DELETE FROM accounts", "accounts are never deleted");
    // A posting that leaves its transaction unbalanced fails at commit; one that overdraws a
    // wallet fails at once.
    let wallet = app.with_conn(|c| pasar::ledger::user_wallet(c, w.b.member.id).unwrap().id);
    let empty = app.with_conn(|c| pasar::ledger::user_wallet(c, w.a.member.id).unwrap().id);
    let post = |lines: &[(Uuid, i64)]| {
        app.with_conn(|c| {
            c.transaction::<_, diesel::result::Error, _>(|c| {
                let tx = Uuid::now_v7();
                diesel::sql_query(format!(
                    "INSERT INTO ledger_transactions (id, kind) VALUES ('{tx}', 'topup')"
                ))
                .execute(c)?;
                for (account, amount) in lines {
                    diesel::sql_query(format!(
                        "INSERT INTO postings (id, transaction_id, account_id, amount_idr)
                         VALUES ('{}', '{tx}', '{account}', {amount})",
                        Uuid::now_v7()
                    ))
                    .execute(c)?;
                }
                Ok(())
            })
        })
    };
    let e = post(&[(wallet, 500)]).expect_err("an unbalanced transaction");
    assert!(e.to_string().contains("does not balance"), "{e}");
    let e = post(&[(empty, -1), (wallet, 1)]).expect_err("an overdraft");
    assert!(e.to_string().contains("accounts_no_overdraft"), "{e}");
    assert_eq!(state(&app), before, "a refused write changed something");
    assert_global(&app, &initial);
}
