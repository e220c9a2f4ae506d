//! Money helpers for the order tests: keyed requests, wallets, extra buyers, and the global
//! checks every money test ends with (the ledger, the stock, the escrow, each order's history).

use std::collections::HashMap;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Uuid as SqlUuid};
use pasar::identity::memberships;
use pasar::identity::tokens::{Caller, Role};
use serde_json::{Value, json};
use uuid::Uuid;

use super::fixtures::{self, Person};
use super::{Resp, TestApp};

/// The statuses in which an order still holds its stock and its money in escrow.
pub const LIVE: [&str; 4] = ["placed", "accepted", "shipped", "disputed"];

pub fn key() -> String {
    Uuid::now_v7().to_string()
}

/// The slug of a problem response (`out-of-stock`, `conflict`, …); empty for anything else.
pub fn slug(r: &Resp) -> &str {
    r.body["type"]
        .as_str()
        .and_then(|t| t.rsplit('/').next())
        .unwrap_or_default()
}

/// The books are right: every transaction balances, every balance is the sum of its postings,
/// nothing but cash is below zero, and all balances sum to zero.
pub fn assert_books_balance(app: &TestApp) {
    let check = app.with_conn(|c| pasar::ledger::check(c).unwrap());
    assert_eq!(
        check,
        pasar::ledger::LedgerCheck::default(),
        "the ledger check failed"
    );
}

/// Every product's stock now, keyed by id; taken before any order exists, it is the initial
/// stock [`assert_stock_conserved`] compares with.
pub fn stock_snapshot(app: &TestApp) -> HashMap<Uuid, i64> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = SqlUuid)]
        id: Uuid,
        #[diesel(sql_type = BigInt)]
        stock: i64,
        #[diesel(sql_type = BigInt)]
        orders: i64,
    }
    let rows: Vec<Row> = app.with_conn(|c| {
        diesel::sql_query(
            "SELECT id, stock::bigint AS stock, (SELECT count(*) FROM orders) AS orders FROM products",
        )
        .load(c)
        .unwrap()
    });
    assert!(
        rows.iter().all(|r| r.orders == 0),
        "take the stock snapshot before any order"
    );
    rows.into_iter().map(|r| (r.id, r.stock)).collect()
}

/// For every product: stock + units in live orders + units sold (completed) = initial stock.
/// (Rejected, cancelled, expired and refunded orders gave theirs back.)
pub fn assert_stock_conserved(app: &TestApp, initial: &HashMap<Uuid, i64>) {
    #[derive(QueryableByName, Debug)]
    struct Row {
        #[diesel(sql_type = SqlUuid)]
        id: Uuid,
        #[diesel(sql_type = BigInt)]
        accounted: i64,
    }
    let rows: Vec<Row> = app.with_conn(|c| {
        diesel::sql_query(
            "SELECT p.id, p.stock + COALESCE((
                    SELECT sum(l.quantity) FROM order_lines l JOIN orders o ON o.id = l.order_id
                     WHERE l.product_id = p.id
                       AND o.status IN ('placed', 'accepted', 'shipped', 'disputed', 'completed')
                    ), 0)::bigint AS accounted
               FROM products p",
        )
        .load(c)
        .unwrap()
    });
    assert_eq!(rows.len(), initial.len(), "products came or went");
    for r in rows {
        assert_eq!(
            Some(&r.accounted),
            initial.get(&r.id),
            "product {}: stock + units in live and completed orders is not the initial stock",
            r.id
        );
    }
}

/// Each village's escrow holds exactly the totals of the live orders it sells.
pub fn assert_escrow_matches_live_orders(app: &TestApp) {
    #[derive(QueryableByName, Debug)]
    struct Row {
        #[diesel(sql_type = Text)]
        village_code: String,
        #[diesel(sql_type = BigInt)]
        escrow: i64,
        #[diesel(sql_type = BigInt)]
        live: i64,
    }
    let rows: Vec<Row> = app.with_conn(|c| {
        diesel::sql_query(
            "SELECT a.village_code, a.balance_idr AS escrow,
                    COALESCE((SELECT sum(o.total_idr) FROM orders o
                               WHERE o.escrow_account_id = a.id
                                 AND o.status IN ('placed', 'accepted', 'shipped', 'disputed')), 0)::bigint AS live
               FROM accounts a WHERE a.kind = 'escrow'",
        )
        .load(c)
        .unwrap()
    });
    for r in rows {
        assert_eq!(
            r.escrow, r.live,
            "escrow of {} ≠ its live orders",
            r.village_code
        );
    }
}

/// Every order's history is whole: one event per status it entered (placed first), exactly one
/// hold, a settlement exactly when it completed, a refund exactly when it ended refunded
/// (rejected, cancelled, expired, refunded), never both.
pub fn assert_orders_consistent(app: &TestApp) {
    #[derive(QueryableByName, Debug)]
    struct Row {
        #[diesel(sql_type = SqlUuid)]
        id: Uuid,
        #[diesel(sql_type = Text)]
        status: String,
        #[diesel(sql_type = BigInt)]
        events: i64,
        #[diesel(sql_type = BigInt)]
        placed_events: i64,
        #[diesel(sql_type = BigInt)]
        current_events: i64,
        #[diesel(sql_type = BigInt)]
        holds: i64,
        #[diesel(sql_type = BigInt)]
        settlements: i64,
        #[diesel(sql_type = BigInt)]
        refunds: i64,
    }
    let rows: Vec<Row> = app.with_conn(|c| {
        diesel::sql_query(
            "SELECT o.id, o.status,
                    (SELECT count(*) FROM order_events e WHERE e.order_id = o.id) AS events,
                    (SELECT count(*) FROM order_events e WHERE e.order_id = o.id
                        AND e.to_status = 'placed' AND e.from_status IS NULL) AS placed_events,
                    (SELECT count(*) FROM order_events e WHERE e.order_id = o.id
                        AND e.to_status = o.status) AS current_events,
                    (SELECT count(*) FROM ledger_transactions t WHERE t.order_id = o.id AND t.kind = 'hold') AS holds,
                    (SELECT count(*) FROM ledger_transactions t WHERE t.order_id = o.id AND t.kind = 'settlement') AS settlements,
                    (SELECT count(*) FROM ledger_transactions t WHERE t.order_id = o.id AND t.kind = 'refund') AS refunds
               FROM orders o",
        )
        .load(c)
        .unwrap()
    });
    for r in rows {
        let refunded =
            ["rejected", "cancelled", "expired", "refunded"].contains(&r.status.as_str());
        assert!(
            r.placed_events == 1
                && r.current_events == 1
                && r.holds == 1
                && r.settlements == i64::from(r.status == "completed")
                && r.refunds == i64::from(refunded),
            "order history is not whole: {r:?}"
        );
        // Each move is one event: the chain from placed to the status has no gap or repeat.
        let events: &[i64] = match r.status.as_str() {
            "placed" => &[1],
            "accepted" | "rejected" | "expired" => &[2],
            "cancelled" => &[2, 3], // from placed or from accepted
            "shipped" => &[3],
            "disputed" => &[4],
            "completed" => &[4, 5], // confirmed (or timed out), or released after a dispute
            "refunded" => &[5],
            s => panic!("unknown status {s}"),
        };
        assert!(events.contains(&r.events), "order events: {r:?}");
    }
}

/// The global check every test here ends with: the ledger, the stock, the escrow, the orders.
pub fn assert_global(app: &TestApp, initial_stock: &HashMap<Uuid, i64>) {
    assert_books_balance(app);
    assert_stock_conserved(app, initial_stock);
    assert_escrow_matches_live_orders(app);
    assert_orders_consistent(app);
}

pub async fn wallet_of(app: &TestApp, token: &str) -> Value {
    app.get("/api/v1/wallets/me")
        .token(token)
        .send()
        .await
        .expect(200)
}

pub async fn balance(app: &TestApp, token: &str) -> i64 {
    wallet_of(app, token).await["balance_idr"].as_i64().unwrap()
}

pub async fn topup(app: &TestApp, treasurer: &str, wallet: &str, amount: i64) -> Value {
    app.post(&format!("/api/v1/wallets/{wallet}/topups"))
        .token(treasurer)
        .header("idempotency-key", &key())
        .json(&json!({"amount_idr": amount, "note": "setoran tunai"}))
        .send()
        .await
        .expect(201)
}

/// A transition with a fresh key.
pub async fn act(app: &TestApp, token: &str, order: &str, action: &str, body: Value) -> Resp {
    app.post(&format!("/api/v1/orders/{order}/{action}"))
        .token(token)
        .header("idempotency-key", &key())
        .json(&body)
        .send()
        .await
}

/// A checkout with a fresh key.
pub async fn checkout(app: &TestApp, token: &str, body: &Value) -> Resp {
    app.post("/api/v1/checkouts")
        .token(token)
        .header("idempotency-key", &key())
        .json(body)
        .send()
        .await
}

/// Pickup of these (product, quantity) lines.
pub fn pickup(lines: &[(Uuid, i64)]) -> Value {
    json!({
        "lines": lines.iter().map(|(p, q)| json!({"product_id": p, "quantity": q})).collect::<Vec<_>>(),
        "delivery": {"method": "pickup"},
    })
}

/// A signed-in buyer with a wallet.
#[derive(Debug, Clone)]
pub struct Buyer {
    pub person: Person,
    pub token: String,
    pub wallet: String,
}

/// Adds `n` members to `village` (domain function: no HTTP, no hashing per person), signs them
/// in and has `treasurer` (a token of that village) top each one up by `amount` over HTTP.
/// `tag` keeps the phones apart between calls.
pub async fn funded_buyers(
    app: &TestApp,
    platform: &Person,
    village: &str,
    treasurer: &str,
    tag: u8,
    n: usize,
    amount: i64,
) -> Vec<Buyer> {
    let people: Vec<Person> = app.with_conn(|c| {
        (0..n)
            .map(|i| member(c, platform, village, &format!("+62857{tag:02}00{i:04}")))
            .collect()
    });
    futures_util::future::join_all(people.into_iter().map(|person| async move {
        let token = app.login(&person.phone, village).await;
        let wallet = wallet_of(app, &token).await["id"]
            .as_str()
            .unwrap()
            .to_string();
        if amount > 0 {
            topup(app, treasurer, &wallet, amount).await;
        }
        Buyer {
            person,
            token,
            wallet,
        }
    }))
    .await
}

/// A new member of `village` with the fixtures' password.
pub fn member(conn: &mut PgConnection, platform: &Person, village: &str, phone: &str) -> Person {
    let as_platform = Caller::offline(platform.id, village, vec![Role::PlatformAdmin]);
    let m = memberships::add(
        conn,
        &as_platform,
        village,
        &memberships::ValidMember {
            phone: phone.into(),
            name: Some("Pembeli".into()),
            roles: vec![Role::Member],
        },
        Some(fixtures::hash()),
    )
    .unwrap_or_else(|e| panic!("member {phone}: {e} {:?}", e.problem()));
    Person {
        id: m.user_id,
        phone: phone.into(),
    }
}

/// The balance of a village's account of `kind` (escrow, village_revenue, cash).
pub fn village_balance(app: &TestApp, kind: &str, village: &str) -> i64 {
    use pasar::db::schema::accounts;
    app.with_conn(|c| {
        accounts::table
            .filter(accounts::kind.eq(kind))
            .filter(accounts::village_code.eq(village))
            .select(accounts::balance_idr)
            .first(c)
            .unwrap()
    })
}

/// One number from a SQL query returning a single `n bigint` column.
pub fn count(app: &TestApp, sql: &str) -> i64 {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    app.with_conn(|c| diesel::sql_query(sql).get_result::<N>(c).unwrap().n)
}

/// Deadlocks PostgreSQL has broken in this test's database so far. Backends report their
/// statistics about a second after they go idle, so this waits that long first.
pub fn deadlocks(app: &TestApp) -> i64 {
    std::thread::sleep(std::time::Duration::from_millis(1500));
    count(
        app,
        "SELECT deadlocks AS n FROM pg_stat_database WHERE datname = current_database()",
    )
}
