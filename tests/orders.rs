//! Orders, escrow and the ledger over HTTP, each test ending with the global ledger check.

mod common;

use common::fixtures::{self, A, B};
use common::money::{act, assert_books_balance, key, topup, wallet_of};
use common::spawn_app;
use serde_json::json;

#[actix_rt::test]
async fn a_full_order_from_top_up_to_settlement() {
    let app = spawn_app().await;
    let w = fixtures::world(&app);
    // B's shop sells to A's member; B takes 2 % for the village, the network 1 %.
    let product = app.with_conn(|c| {
        use diesel::prelude::*;
        diesel::sql_query(format!(
            "UPDATE villages SET village_share_bps = 200 WHERE code = '{B}'"
        ))
        .execute(c)
        .unwrap();
        diesel::sql_query("UPDATE networks SET network_fee_bps = 100")
            .execute(c)
            .unwrap();
        diesel::sql_query(
            "UPDATE shops SET delivery_fee_village_idr = 3000, delivery_fee_other_idr = 8000",
        )
        .execute(c)
        .unwrap();
        fixtures::product(
            c,
            w.b.active_shop,
            &w.b.operator,
            B,
            "Kopi Robusta",
            12_345,
            10,
        )
    });
    let buyer = app.login(&w.a.member.phone, A).await;
    let treasurer = app.login(&w.a.treasurer.phone, A).await;
    let wallet = wallet_of(&app, &buyer).await;
    assert_eq!(wallet["balance_idr"], 0);
    assert_eq!(wallet["village_code"], A);
    let wallet_id = wallet["id"].as_str().unwrap().to_string();
    let t = topup(&app, &treasurer, &wallet_id, 100_000).await;
    assert_eq!(t["balance_idr"], 100_000);

    let c = app
        .post("/api/v1/checkouts")
        .token(&buyer)
        .header("idempotency-key", &key())
        .json(&json!({
            "lines": [{"product_id": product, "quantity": 2}],
            "delivery": {"method": "delivery", "address": "Jl. Parangtritis km 5, Sewon"}
        }))
        .send()
        .await
        .expect(201);
    let order = &c["orders"][0];
    assert_eq!(order["status"], "placed");
    assert_eq!(order["delivery_fee_idr"], 8000, "to another village");
    assert_eq!(order["total_idr"], 2 * 12_345 + 8000);
    assert_eq!(c["total_idr"], 2 * 12_345 + 8000);
    assert_eq!(order["lines"][0]["name"], "Kopi Robusta");
    let order_id = order["id"].as_str().unwrap().to_string();
    assert_eq!(
        wallet_of(&app, &buyer).await["balance_idr"],
        100_000 - 2 * 12_345 - 8000
    );
    assert_books_balance(&app);

    let seller = app.login(&w.b.operator.phone, B).await;
    act(&app, &buyer, &order_id, "accept", json!({}))
        .await
        .expect_problem(403, "forbidden");
    act(&app, &seller, &order_id, "accept", json!({}))
        .await
        .expect(200);
    act(&app, &seller, &order_id, "accept", json!({}))
        .await
        .expect_problem(409, "conflict");
    let shipped = act(
        &app,
        &seller,
        &order_id,
        "ship",
        json!({"courier_name": "Pak Kurir", "courier_phone": "081299990000"}),
    )
    .await
    .expect(200);
    assert_eq!(shipped["courier"]["phone"], "+6281299990000");
    let done = act(&app, &buyer, &order_id, "confirm", json!({}))
        .await
        .expect(200);
    assert_eq!(done["status"], "completed");
    let events: Vec<&str> = done["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["to_status"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["placed", "accepted", "shipped", "completed"]);
    // 24,690 of goods: 246 to the network (1 %), 493 to B (2 %), the rest and the delivery to
    // the shop.
    let shop_wallet = app
        .get(&format!("/api/v1/shops/{}/wallet", w.b.active_shop))
        .token(&seller)
        .send()
        .await
        .expect(200);
    assert_eq!(shop_wallet["balance_idr"], 24_690 - 246 - 493 + 8000);
    let revenue: i64 = app.with_conn(|c| {
        use diesel::prelude::*;
        use pasar::db::schema::accounts;
        accounts::table
            .filter(accounts::kind.eq("village_revenue"))
            .filter(accounts::village_code.eq(B))
            .select(accounts::balance_idr)
            .first(c)
            .unwrap()
    });
    assert_eq!(revenue, 493);
    // The buyer's statement, newest first, with running balances.
    let st = app
        .get(&format!("/api/v1/wallets/{wallet_id}/transactions"))
        .token(&buyer)
        .send()
        .await
        .expect(200);
    let lines = st["items"].as_array().unwrap();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["kind"], "hold");
    assert_eq!(lines[0]["order_id"], json!(order_id));
    assert_eq!(lines[0]["amount_idr"], -(24_690 + 8000));
    assert_eq!(lines[0]["balance_after_idr"], 100_000 - 24_690 - 8000);
    assert_eq!(lines[1]["kind"], "topup");
    assert_eq!(lines[1]["balance_after_idr"], 100_000);
    assert_books_balance(&app);
}

#[actix_rt::test]
async fn a_sale_changes_the_etag_but_not_the_version() {
    let app = spawn_app().await;
    let w = fixtures::world(&app);
    let product = app
        .with_conn(|c| fixtures::product(c, w.b.active_shop, &w.b.operator, B, "Madu", 50_000, 5));
    let path = format!("/api/v1/products/{product}");
    let before = app.get(&path).send().await;
    let etag = before.header("etag").unwrap().to_string();
    let buyer = app.login(&w.a.member.phone, A).await;
    let treasurer = app.login(&w.a.treasurer.phone, A).await;
    let wallet = wallet_of(&app, &buyer).await;
    topup(&app, &treasurer, wallet["id"].as_str().unwrap(), 100_000).await;
    app.post("/api/v1/checkouts")
        .token(&buyer)
        .header("idempotency-key", &key())
        .json(&json!({"lines": [{"product_id": product, "quantity": 1}], "delivery": {"method": "pickup"}}))
        .send()
        .await
        .expect(201);
    // A cached copy is stale (the stock changed)…
    let after = app.get(&path).header("if-none-match", &etag).send().await;
    assert_eq!(after.status.as_u16(), 200);
    assert_eq!(after.body["stock"], 4);
    assert_eq!(after.body["version"], before.body["version"]);
    // …but the operator's edit with the tag read before the sale still applies.
    let op = app.login(&w.b.operator.phone, B).await;
    app.patch(&path)
        .token(&op)
        .header("if-match", &etag)
        .json(&json!({"price_idr": 55_000}))
        .send()
        .await
        .expect(200);
    assert_books_balance(&app);
}

/// `pasar ledger verify` (the operators' check) passes on honest books and names what is wrong
/// when someone went around the database's guards.
#[actix_rt::test]
async fn ledger_verify_names_what_is_wrong() {
    let app = spawn_app().await;
    let w = fixtures::world(&app);
    let product = app.with_conn(|c| {
        fixtures::product(
            c,
            w.b.active_shop,
            &w.b.operator,
            B,
            "Gula Semut",
            20_000,
            5,
        )
    });
    let buyer = app.login(&w.a.member.phone, A).await;
    let treasurer = app.login(&w.a.treasurer.phone, A).await;
    let wallet = wallet_of(&app, &buyer).await;
    topup(&app, &treasurer, wallet["id"].as_str().unwrap(), 50_000).await;
    app.post("/api/v1/checkouts")
        .token(&buyer)
        .header("idempotency-key", &key())
        .json(&json!({"lines": [{"product_id": product, "quantity": 1}], "delivery": {"method": "pickup"}}))
        .send()
        .await
        .expect(201);
    let verify = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_pasar"))
            .args(["ledger", "verify"])
            .env("DATABASE_URL", &app.db.url)
            .output()
            .expect("pasar runs")
    };
    let ok = verify();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    // Tamper as a superuser would, past the guard: the escrow no longer matches its orders.
    app.with_conn(|c| {
        use diesel::connection::SimpleConnection;
        c.batch_execute(
            "ALTER TABLE accounts DISABLE TRIGGER accounts_guard;
             UPDATE accounts SET balance_idr = balance_idr + 1 WHERE kind = 'escrow' AND village_code = '34.02.07.2003';
             ALTER TABLE accounts ENABLE TRIGGER accounts_guard;
             -- A unit appears from nowhere (no adjustment, no order).
             UPDATE products SET stock = stock + 1",
        )
        .unwrap();
    });
    let bad = verify();
    assert_eq!(bad.status.code(), Some(1));
    let said = String::from_utf8_lossy(&bad.stderr);
    assert!(
        said.contains("account balances differ from their postings")
            && said.contains("escrow accounts differ from their open orders")
            && said.contains("sum to 1")
            && said.contains("1 products' stock differs from opening stock"),
        "{said}"
    );
}
