//! Reports over HTTP: the village dashboard and the network circulation on small hand-computed
//! scenarios, access, CSV, bad parameters, and the rollups against a recomputation from the raw
//! orders and postings. Every test ends with the global ledger check.

mod common;

use common::fixtures::{self, A, B, OUTSIDE, Person};
use common::money::{act, assert_books_balance, checkout, count, key, pickup, topup, wallet_of};
use common::{TestApp, spawn_app};
use diesel::prelude::*;
use serde_json::{Value, json};
use uuid::Uuid;

/// Same district as A (34.02.15), not in the network.
const DISTRICT: &str = "34.02.15.2003"; // Bangunharjo
/// Same regency as A (34.02).
const REGENCY: &str = "34.02.01.2001"; // Poncosari
/// Same province (34).
const PROVINCE: &str = "34.01.01.2001"; // Jangkaran

async fn buy(app: &TestApp, token: &str, product: Uuid, qty: i64, shop: Option<Uuid>) -> String {
    let mut body = pickup(&[(product, qty)]);
    if let Some(s) = shop {
        body["buyer_shop_id"] = json!(s);
    }
    let c = checkout(app, token, &body).await.expect(201);
    c["orders"][0]["id"].as_str().unwrap().to_string()
}

async fn complete(app: &TestApp, buyer: &str, seller: &str, order: &str) {
    act(app, seller, order, "accept", json!({}))
        .await
        .expect(200);
    act(
        app,
        seller,
        order,
        "ship",
        json!({"courier_name": "Pak Kurir", "courier_phone": "081299990000"}),
    )
    .await
    .expect(200);
    act(app, buyer, order, "confirm", json!({}))
        .await
        .expect(200);
}

struct Scenario {
    app: TestApp,
    w: fixtures::World,
    outside_admin: Person,
    a_product: Uuid,
    b_product: Uuid,
}

/// The hand-computed scenario (all pickup, platform fee 0, B keeps 10 % for PADes):
/// - A's member is topped up 1,000,000 and buys, completed: 10,000 at A's shop (same village),
///   20,000 at B's (network), 5,000 in A's district, 4,000 in its regency, 3,000 in its
///   province, 2,000 in Jakarta (elsewhere); and 1,000 at A's shop, cancelled (refunded).
/// - A buyer from Jakarta buys 7,000 at B's shop (a sale to an outside buyer).
/// - B's shop buys 5,000 at A's shop (B2B, network).
/// - A's treasurer pays A's member out 50,000 (a withdrawal).
async fn scenario() -> Scenario {
    let app = spawn_app().await;
    let w = fixtures::world(&app);
    let (outside, sellers, a_product, b_product) = app.with_conn(|c| {
        diesel::sql_query(format!(
            "UPDATE villages SET village_share_bps = 1000 WHERE code = '{B}'"
        ))
        .execute(c)
        .unwrap();
        let outside = fixtures::village(c, &w.platform, OUTSIDE, 3);
        let mut sellers = Vec::new();
        for (i, (code, price)) in [(DISTRICT, 5_000), (REGENCY, 4_000), (PROVINCE, 3_000)]
            .into_iter()
            .enumerate()
        {
            let (shop, op) = fixtures::selling_village(c, &w.platform, code, 4 + i as u8);
            sellers.push(fixtures::product(c, shop, &op, code, "Barang", price, 100));
        }
        sellers.push(fixtures::product(
            c,
            outside.active_shop,
            &outside.operator,
            OUTSIDE,
            "Barang Kota",
            2_000,
            100,
        ));
        let a_product =
            fixtures::product(c, w.a.active_shop, &w.a.operator, A, "Tempe", 1_000, 100);
        let b_product = fixtures::product(
            c,
            w.b.active_shop,
            &w.b.operator,
            B,
            "Gula Jawa",
            1_000,
            100,
        );
        (outside, sellers, a_product, b_product)
    });
    let buyer = app.login(&w.a.member.phone, A).await;
    let a_treasurer = app.login(&w.a.treasurer.phone, A).await;
    let wallet = wallet_of(&app, &buyer).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    topup(&app, &a_treasurer, &wallet, 1_000_000).await;
    let a_seller = app.login(&w.a.operator.phone, A).await;
    let b_seller = app.login(&w.b.operator.phone, B).await;

    let o = buy(&app, &buyer, a_product, 10, None).await;
    complete(&app, &buyer, &a_seller, &o).await;
    let o = buy(&app, &buyer, b_product, 20, None).await;
    complete(&app, &buyer, &b_seller, &o).await;
    let phones = [
        (DISTRICT, "+6281304000004"),
        (REGENCY, "+6281305000004"),
        (PROVINCE, "+6281306000004"),
    ];
    for (product, (code, phone)) in sellers.iter().zip(phones) {
        let seller = app.login(phone, code).await;
        let o = buy(&app, &buyer, *product, 1, None).await;
        complete(&app, &buyer, &seller, &o).await;
    }
    let outside_seller = app.login(&outside.operator.phone, OUTSIDE).await;
    let o = buy(&app, &buyer, sellers[3], 1, None).await;
    complete(&app, &buyer, &outside_seller, &o).await;
    let o = buy(&app, &buyer, a_product, 1, None).await;
    act(&app, &buyer, &o, "cancel", json!({})).await.expect(200);

    let outsider = app.login(&outside.member.phone, OUTSIDE).await;
    let outside_treasurer = app.login(&outside.treasurer.phone, OUTSIDE).await;
    let ow = wallet_of(&app, &outsider).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    topup(&app, &outside_treasurer, &ow, 100_000).await;
    let o = buy(&app, &outsider, b_product, 7, None).await;
    complete(&app, &outsider, &b_seller, &o).await;

    let o = buy(&app, &b_seller, a_product, 5, Some(w.b.active_shop)).await;
    complete(&app, &b_seller, &a_seller, &o).await;

    app.post(&format!("/api/v1/wallets/{wallet}/withdrawals"))
        .token(&a_treasurer)
        .header("idempotency-key", &key())
        .json(&json!({"amount_idr": 50_000}))
        .send()
        .await
        .expect(201);
    Scenario {
        app,
        w,
        outside_admin: outside.admin,
        a_product,
        b_product,
    }
}

async fn get(app: &TestApp, token: &str, path: &str) -> Value {
    app.get(path).token(token).send().await.expect(200)
}

fn amounts(list: &Value, key: &str) -> Vec<(String, i64)> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v[key].as_str().unwrap().to_string(),
                v["amount_idr"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[actix_rt::test]
async fn the_dashboard_adds_up_a_hand_computed_month() {
    let s = scenario().await;
    let (app, w) = (&s.app, &s.w);
    let admin = app.login(&w.a.admin.phone, A).await;
    let d = get(app, &admin, &format!("/api/v1/villages/{A}/dashboard")).await;
    // A's shop sold 10,000 to A's member and 5,000 to B's shop.
    assert_eq!(d["sales"]["gmv_idr"], 15_000);
    assert_eq!(d["sales"]["completed_orders"], 2);
    let statuses: Vec<(String, i64)> = d["sales"]["orders_by_status"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["status"].as_str().unwrap().to_string(),
                s["orders"].as_i64().unwrap(),
            )
        })
        .filter(|(_, n)| *n > 0)
        .collect();
    assert_eq!(
        statuses,
        [("cancelled".to_string(), 1), ("completed".to_string(), 2)]
    );
    assert_eq!(d["sales"]["orders_by_status"].as_array().unwrap().len(), 9);
    let top = &d["sales"]["top_products"][0];
    assert_eq!(top["product_id"], s.a_product.to_string());
    assert_eq!(top["name"], "Tempe");
    assert_eq!(
        (top["quantity"].as_i64(), top["revenue_idr"].as_i64()),
        (Some(15), Some(15_000))
    );
    assert_eq!(
        amounts(&d["sales"]["top_buying_villages"], "village_code"),
        [(A.to_string(), 10_000), (B.to_string(), 5_000)]
    );
    assert_eq!(
        d["sales"]["top_buying_villages"][0]["village_name"],
        "Panggungharjo"
    );
    assert_eq!(d["purchases"]["total_idr"], 44_000);
    assert_eq!(d["purchases"]["orders"], 6);
    assert_eq!(
        amounts(&d["purchases"]["by_seller_village"], "village_code"),
        [
            (B.to_string(), 20_000),
            (A.to_string(), 10_000),
            (DISTRICT.to_string(), 5_000),
            (REGENCY.to_string(), 4_000),
            (PROVINCE.to_string(), 3_000),
            (OUTSIDE.to_string(), 2_000),
        ]
    );
    assert_eq!(d["active_shops"], 1, "the pending shop does not count");
    assert_eq!(d["pades_revenue_idr"], 0);
    // 1,000,000 − 44,000 spent − 50,000 paid out (the cancelled 1,000 came back).
    assert_eq!(d["wallets"]["user_wallets_idr"], 906_000);
    assert_eq!(d["wallets"]["shop_wallets_idr"], 15_000);
    assert_eq!(d["wallets"]["total_idr"], 921_000);
    assert_eq!(d["aid"]["disbursed_idr"], 0);

    let b_admin = app.login(&w.b.admin.phone, B).await;
    let d = get(app, &b_admin, &format!("/api/v1/villages/{B}/dashboard")).await;
    assert_eq!(d["sales"]["gmv_idr"], 27_000);
    // 10 % of 20,000 + 7,000.
    assert_eq!(d["pades_revenue_idr"], 2_700);
    assert_eq!(
        amounts(&d["purchases"]["by_seller_village"], "village_code"),
        [(A.to_string(), 5_000)],
        "B's shop bought at A's"
    );
    // 18,000 + 6,300 − 5,000.
    assert_eq!(d["wallets"]["shop_wallets_idr"], 19_300);
    assert_books_balance(app);
}

#[actix_rt::test]
async fn circulation_of_a_hand_computed_network() {
    let s = scenario().await;
    let (app, w) = (&s.app, &s.w);
    let admin = app.login(&w.a.admin.phone, A).await;
    let c = get(
        app,
        &admin,
        &format!("/api/v1/networks/{}/circulation?granularity=day", w.network),
    )
    .await;
    let t = &c["totals"];
    // A's member: 44,000; B's shop: 5,000 at A's.
    assert_eq!(t["spend_idr"], 49_000);
    assert_eq!(t["orders"], 7);
    let d = &t["spend_by_distance"];
    assert_eq!(d["same_village_idr"], 10_000);
    assert_eq!(d["network_idr"], 25_000);
    assert_eq!(d["district_idr"], 5_000);
    assert_eq!(d["regency_idr"], 4_000);
    assert_eq!(d["province_idr"], 3_000);
    assert_eq!(d["elsewhere_idr"], 2_000);
    assert_eq!(t["local_spend_idr"], 35_000);
    assert_eq!(t["local_share"].as_f64().unwrap(), 35_000.0 / 49_000.0);
    let flows: Vec<(String, String, i64)> = t["flows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["from_village"].as_str().unwrap().into(),
                f["to_village"].as_str().unwrap().into(),
                f["amount_idr"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        flows,
        [
            (B.into(), A.into(), 5_000),
            (A.into(), B.into(), 20_000),
            (A.into(), A.into(), 10_000),
            (A.into(), "outside".into(), 14_000),
        ]
    );
    assert_eq!(t["inflow"]["topups_idr"], 1_000_000);
    assert_eq!(t["inflow"]["aid_funding_idr"], 0);
    assert_eq!(t["inflow"]["sales_to_outside_idr"], 7_000);
    assert_eq!(t["inflow"]["total_idr"], 1_007_000);
    assert_eq!(t["leakage"]["withdrawals_idr"], 50_000);
    assert_eq!(t["leakage"]["spend_outside_idr"], 14_000);
    assert_eq!(t["leakage"]["total_idr"], 64_000);
    assert_eq!(
        t["local_multiplier"].as_f64().unwrap(),
        35_000.0 / 1_007_000.0
    );
    // LM3. Round 1: the member's 1,000,000 top-up and B's net 6,300 of the outside sale.
    // Round 2: the member re-spends min(1e6, 30,000·1e6/1e6) = 30,000 locally; B's shop (T =
    // 18,000 + 6,300) re-spends 5,000·6,300/24,300 of its round-1 income. Round 3: B's shop
    // received 18,000 of round 2 and re-spends 5,000·18,000/24,300; A's shop spends nothing.
    let l = &t["lm3"];
    assert_eq!(l["round1_idr"], 1_006_300);
    assert_eq!(l["round2_idr"], 31_296);
    assert_eq!(l["round3_idr"], 3_703);
    let lm3 = l["lm3"].as_f64().unwrap();
    assert!((lm3 - 1_041_300.0 / 1_006_300.0).abs() < 1e-9, "{lm3}");
    // Everything happened today: one bucket per day, the last one holds it all.
    let buckets = c["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 30);
    assert_eq!(buckets[29]["figures"]["spend_idr"], 49_000);
    assert_eq!(buckets[29]["start"], buckets[29]["end"]);
    assert_eq!(buckets[29]["end"], c["to"]);
    assert!(buckets[..29].iter().all(|b| b["figures"]["spend_idr"] == 0
        && b["figures"]["local_share"].is_null()
        && b["figures"]["lm3"]["lm3"].is_null()));
    assert_books_balance(app);
}

#[actix_rt::test]
async fn all_trade_inside_the_network_is_a_local_share_of_one() {
    let app = spawn_app().await;
    let w = fixtures::world(&app);
    let product = app
        .with_conn(|c| fixtures::product(c, w.b.active_shop, &w.b.operator, B, "Kopi", 2_500, 10));
    let buyer = app.login(&w.a.member.phone, A).await;
    let treasurer = app.login(&w.a.treasurer.phone, A).await;
    let wallet = wallet_of(&app, &buyer).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    topup(&app, &treasurer, &wallet, 10_000).await;
    let seller = app.login(&w.b.operator.phone, B).await;
    let o = buy(&app, &buyer, product, 2, None).await;
    complete(&app, &buyer, &seller, &o).await;
    let platform = app.login_platform(&w.platform.phone).await;
    let c = get(
        &app,
        &platform,
        &format!("/api/v1/networks/{}/circulation", w.network),
    )
    .await;
    assert_eq!(c["granularity"], "month");
    assert_eq!(c["totals"]["local_share"].as_f64(), Some(1.0));
    assert_eq!(c["totals"]["spend_by_distance"]["network_idr"], 5_000);
    assert_eq!(c["totals"]["leakage"]["total_idr"], 0);
    assert_eq!(c["totals"]["local_multiplier"].as_f64(), Some(0.5));
    assert_books_balance(&app);
}

#[actix_rt::test]
async fn backdated_ledger_rows_land_on_their_wib_day() {
    let app = spawn_app().await;
    let w = fixtures::world(&app);
    // Two top-ups written with past timestamps, as the demo seed does: 17:30 UTC on 31 Jan is
    // already 1 February in WIB; 16:59 UTC on 15 January is still the 15th.
    app.with_conn(|c| {
        for (at, amount) in [("2026-01-15T16:59:00Z", 1_000), ("2026-01-31T17:30:00Z", 2_000)] {
            diesel::sql_query(format!(
                "WITH t AS (INSERT INTO ledger_transactions (id, kind, created_at)
                            VALUES (uuid_v7(), 'topup', '{at}') RETURNING id)
                 INSERT INTO postings (id, transaction_id, account_id, amount_idr, created_at)
                 SELECT uuid_v7(), t.id, a.id, CASE a.kind WHEN 'cash' THEN -{amount} ELSE {amount} END, '{at}'
                   FROM t, accounts a
                  WHERE (a.kind = 'cash' AND a.village_code = '{A}')
                     OR (a.kind = 'user_wallet' AND a.user_id = '{}')",
                w.a.member.id
            ))
            .execute(c)
            .unwrap();
        }
    });
    let admin = app.login(&w.a.admin.phone, A).await;
    let base = format!("/api/v1/networks/{}/circulation", w.network);
    let c = get(
        &app,
        &admin,
        &format!("{base}?from=2026-01-01&to=2026-02-28"),
    )
    .await;
    let b = c["buckets"].as_array().unwrap();
    assert_eq!(b.len(), 2);
    assert_eq!(
        (b[0]["start"].as_str(), b[0]["end"].as_str()),
        (Some("2026-01-01"), Some("2026-01-31"))
    );
    assert_eq!(b[0]["figures"]["inflow"]["topups_idr"], 1_000);
    assert_eq!(b[1]["figures"]["inflow"]["topups_idr"], 2_000);
    assert_eq!(c["totals"]["inflow"]["topups_idr"], 3_000);
    assert_eq!(c["totals"]["lm3"]["round1_idr"], 3_000);
    assert_eq!(
        c["totals"]["lm3"]["lm3"].as_f64(),
        Some(1.0),
        "nothing was spent"
    );
    // Weeks start on Monday: 2026-01-12 is a Monday, the 15th is in its week.
    let c = get(
        &app,
        &admin,
        &format!("{base}?from=2026-01-14&to=2026-01-20&granularity=week"),
    )
    .await;
    let b = c["buckets"].as_array().unwrap();
    assert_eq!(b.len(), 2);
    assert_eq!(
        (b[0]["start"].as_str(), b[0]["end"].as_str()),
        (Some("2026-01-14"), Some("2026-01-18"))
    );
    assert_eq!(b[0]["figures"]["inflow"]["topups_idr"], 1_000);
    assert_eq!(b[1]["start"], "2026-01-19");
    let c = get(
        &app,
        &admin,
        &format!("{base}?from=2026-02-01&to=2026-02-01"),
    )
    .await;
    assert_eq!(c["totals"]["inflow"]["topups_idr"], 2_000);
    assert_books_balance(&app);
}

#[actix_rt::test]
async fn who_sees_which_report() {
    let s = scenario().await;
    let (app, w) = (&s.app, &s.w);
    let network = format!("/api/v1/networks/{}/circulation", w.network);
    let dash = |v: &str| format!("/api/v1/villages/{v}/dashboard");
    let a_admin = app.login(&w.a.admin.phone, A).await;
    let a_treasurer = app.login(&w.a.treasurer.phone, A).await;
    let a_member = app.login(&w.a.member.phone, A).await;
    let outsider = app.login(&s.outside_admin.phone, OUTSIDE).await;
    let platform = app.login_platform(&w.platform.phone).await;
    for (token, path, status) in [
        (&a_admin, dash(A), 200),
        (&a_admin, dash(B), 404),
        (&a_treasurer, dash(A), 200),
        (&a_treasurer, dash(B), 404),
        (&a_member, dash(A), 404),
        (&outsider, dash(A), 404),
        (&platform, dash(A), 200),
        (&platform, dash(B), 200),
        (&platform, dash("34.02.15.2001"), 404), // a region that is not onboarded
        (&a_admin, network.clone(), 200),
        (&a_treasurer, network.clone(), 404),
        (&a_member, network.clone(), 404),
        (&outsider, network.clone(), 404),
        (&platform, network.clone(), 200),
        (
            &platform,
            format!("/api/v1/networks/{}/circulation", Uuid::now_v7()),
            404,
        ),
    ] {
        let r = app.get(&path).token(token).send().await;
        assert_eq!(r.status.as_u16(), status, "{path}: {}", r.body);
        if status == 404 {
            r.expect_problem(404, "not-found");
        }
    }
    app.get(&dash(A))
        .send()
        .await
        .expect_problem(401, "unauthorized");
    // B's admin sees the network too.
    let b_admin = app.login(&w.b.admin.phone, B).await;
    get(app, &b_admin, &network).await;
    let _ = s.b_product;
    assert_books_balance(app);
}

#[actix_rt::test]
async fn bad_parameters_are_400_problems() {
    let app = spawn_app().await;
    let w = fixtures::world(&app);
    let admin = app.login(&w.a.admin.phone, A).await;
    let dash = format!("/api/v1/villages/{A}/dashboard");
    let circ = format!("/api/v1/networks/{}/circulation", w.network);
    for (path, field) in [
        (format!("{dash}?from=2026-02-01&to=2026-01-31"), "to"),
        (format!("{dash}?from=2026-02-30"), "from"),
        (format!("{dash}?to=yesterday"), "to"),
        (format!("{dash}?from=2020-01-01&to=2026-01-01"), "to"),
        (format!("{dash}?format=xml"), "format"),
        (format!("{dash}?granularity=day"), "granularity"),
        (format!("{dash}?foo=1"), "foo"),
        (format!("{circ}?granularity=year"), "granularity"),
        (format!("{circ}?from=2026-02-01&to=2026-01-31"), "to"),
        (format!("{circ}?limit=5"), "limit"),
    ] {
        let body = app
            .get(&path)
            .token(&admin)
            .send()
            .await
            .expect_problem(400, "validation");
        assert_eq!(body["errors"][0]["field"], field, "{path}: {body}");
    }
}

#[actix_rt::test]
async fn reports_come_as_csv_in_a_long_format() {
    let s = scenario().await;
    let (app, w) = (&s.app, &s.w);
    let admin = app.login(&w.a.admin.phone, A).await;
    let header = "period,bucket_start,bucket_end,section,key,label,count,value_idr,ratio";
    let text = |path: String, accept: Option<&'static str>| {
        let client = app.client.clone();
        let token = admin.clone();
        let url = format!("{}{}", app.base, path);
        async move {
            let mut r = client.get(url).bearer_auth(token);
            if let Some(a) = accept {
                r = r.header("accept", a);
            }
            let res = r.send().await.unwrap();
            assert_eq!(res.status(), 200);
            assert_eq!(
                res.headers()["content-type"].to_str().unwrap(),
                "text/csv; charset=utf-8"
            );
            res.text().await.unwrap()
        }
    };
    let csv = text(format!("/api/v1/villages/{A}/dashboard?format=csv"), None).await;
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], header);
    let today = pasar::reports::today();
    let from = today - chrono::Duration::days(29);
    assert_eq!(lines[1], format!("total,{from},{today},sales,,,2,15000,"));
    assert!(
        lines.contains(&format!("total,{from},{today},orders_by_status,completed,,2,,").as_str())
    );
    assert!(
        lines.contains(
            &format!(
                "total,{from},{today},top_product,{},Tempe,15,15000,",
                s.a_product
            )
            .as_str()
        )
    );
    assert!(lines.contains(
        &format!("total,{from},{today},purchases_by_seller_village,{B},Guwosari,1,20000,").as_str()
    ));

    let csv = text(
        format!("/api/v1/networks/{}/circulation", w.network),
        Some("text/csv"),
    )
    .await;
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], header);
    let row = |period: &str, section: &str, key: &str, label: &str| {
        lines
            .iter()
            .find(|l| {
                let c: Vec<&str> = l.split(',').collect();
                c[0] == period && c[3] == section && c[4] == key && c[5] == label
            })
            .map(|l| l.split(',').skip(6).collect::<Vec<_>>().join(","))
    };
    assert_eq!(row("total", "spend", "", "").as_deref(), Some("7,49000,"));
    assert_eq!(
        row("total", "spend_by_distance", "district", "").as_deref(),
        Some(",5000,")
    );
    assert_eq!(
        row("total", "flow", A, "outside").as_deref(),
        Some("4,14000,")
    );
    assert_eq!(
        row("total", "leakage", "total", "").as_deref(),
        Some(",64000,")
    );
    assert_eq!(row("total", "lm3", "round3", "").as_deref(), Some(",3703,"));
    assert!(
        row("bucket", "spend", "", "").is_some(),
        "the buckets follow the totals"
    );
    assert_books_balance(app);
}

/// Random checkouts, transitions (refunds and completions), top-ups and withdrawals; then every
/// rollup equals its recomputation from the raw orders and postings.
#[actix_rt::test]
async fn rollups_equal_a_recomputation_after_random_activity() {
    use rand::{Rng, SeedableRng};
    let app = spawn_app().await;
    let w = fixtures::world(&app);
    app.with_conn(|c| {
        diesel::sql_query(format!(
            "UPDATE villages SET village_share_bps = 250 WHERE code = '{A}'"
        ))
        .execute(c)
        .unwrap();
        diesel::sql_query("UPDATE networks SET network_fee_bps = 125")
            .execute(c)
            .unwrap();
    });
    let products = app.with_conn(|c| {
        vec![
            fixtures::product(c, w.a.active_shop, &w.a.operator, A, "Tempe", 1_234, 10_000),
            fixtures::product(c, w.a.active_shop, &w.a.operator, A, "Tahu", 777, 10_000),
            fixtures::product(c, w.b.active_shop, &w.b.operator, B, "Gula", 3_001, 10_000),
        ]
    });
    let shop_of = |i: usize| {
        if i < 2 {
            w.a.active_shop
        } else {
            w.b.active_shop
        }
    };
    let a_buyer = app.login(&w.a.member.phone, A).await;
    let b_buyer = app.login(&w.b.member.phone, B).await;
    let a_seller = app.login(&w.a.operator.phone, A).await;
    let b_seller = app.login(&w.b.operator.phone, B).await;
    let a_treasurer = app.login(&w.a.treasurer.phone, A).await;
    let b_treasurer = app.login(&w.b.treasurer.phone, B).await;
    let a_admin = app.login(&w.a.admin.phone, A).await;
    let b_admin = app.login(&w.b.admin.phone, B).await;
    let wallet = |t: String| {
        let app = &app;
        async move { wallet_of(app, &t).await["id"].as_str().unwrap().to_string() }
    };
    let a_wallet = wallet(a_buyer.clone()).await;
    let b_wallet = wallet(b_buyer.clone()).await;
    topup(&app, &a_treasurer, &a_wallet, 500_000).await;
    topup(&app, &b_treasurer, &b_wallet, 500_000).await;
    // A's member also holds network aid: checkouts spend it first, refunds give it back.
    let today = pasar::reports::today();
    let p = app
        .post(&format!("/api/v1/villages/{A}/aid-programmes"))
        .token(&a_admin)
        .json(
            &json!({"name": "BLT", "kind": "blt_dana_desa", "scope": "network",
                      "starts_on": today.to_string(),
                      "ends_on": (today + chrono::Duration::days(5)).to_string()}),
        )
        .send()
        .await
        .expect(201);
    let programme = p["id"].as_str().unwrap().to_string();
    for (path, body) in [
        ("funding", json!({"amount_idr": 200_000})),
        (
            "disbursements",
            json!({"recipients": [{"user_id": w.a.member.id, "amount_idr": 150_000}]}),
        ),
    ] {
        app.post(&format!("/api/v1/aid-programmes/{programme}/{path}"))
            .token(&a_treasurer)
            .header("idempotency-key", &key())
            .json(&body)
            .send()
            .await
            .expect(201);
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for _ in 0..60 {
        let from_a = rng.random_bool(0.5);
        let (buyer, treasurer, wallet) = if from_a {
            (&a_buyer, &a_treasurer, &a_wallet)
        } else {
            (&b_buyer, &b_treasurer, &b_wallet)
        };
        match rng.random_range(0..10) {
            0 => {
                topup(&app, treasurer, wallet, rng.random_range(1..50_000)).await;
                continue;
            }
            1 => {
                app.post(&format!("/api/v1/wallets/{wallet}/withdrawals"))
                    .token(treasurer)
                    .header("idempotency-key", &key())
                    .json(&json!({"amount_idr": rng.random_range(1..5_000)}))
                    .send()
                    .await
                    .expect(201);
                continue;
            }
            _ => {}
        }
        let i = rng.random_range(0..products.len());
        let qty = rng.random_range(1..5);
        let o = buy(&app, buyer, products[i], qty, None).await;
        let _ = shop_of(i);
        let (seller, admin) = if i < 2 {
            (&a_seller, &a_admin)
        } else {
            (&b_seller, &b_admin)
        };
        match rng.random_range(0..7) {
            0 => {} // stays placed
            1 => {
                act(&app, seller, &o, "reject", json!({"reason": "habis"}))
                    .await
                    .expect(200);
            }
            2 => {
                act(&app, buyer, &o, "cancel", json!({})).await.expect(200);
            }
            3 | 4 => complete(&app, buyer, seller, &o).await,
            5 => {
                act(&app, seller, &o, "accept", json!({})).await.expect(200);
                act(
                    &app,
                    seller,
                    &o,
                    "ship",
                    json!({"courier_name": "Kurir", "courier_phone": "081299990000"}),
                )
                .await
                .expect(200);
                act(&app, buyer, &o, "dispute", json!({"reason": "rusak"}))
                    .await
                    .expect(200);
                let outcome = if rng.random_bool(0.5) {
                    "release"
                } else {
                    "refund"
                };
                act(&app, admin, &o, "resolve", json!({"outcome": outcome}))
                    .await
                    .expect(200);
            }
            _ => {
                act(&app, seller, &o, "accept", json!({})).await.expect(200);
            }
        }
    }
    assert!(
        count(
            &app,
            "SELECT count(*) AS n FROM orders WHERE status = 'completed'"
        ) > 3,
        "the seed gives completions"
    );
    assert!(
        count(&app, "SELECT count(*) AS n FROM report_aid_spent_daily") > 0,
        "some completed order was paid with aid"
    );
    assert_rollups_match(&app);
    assert_books_balance(&app);
}

/// Every rollup table equals its recomputation from orders, order lines, order_aid and postings.
pub fn assert_rollups_match(app: &TestApp) {
    let settled = "SELECT t.order_id,
                          (min(p.created_at) AT TIME ZONE 'Asia/Jakarta')::date AS day,
                          COALESCE(sum(p.amount_idr) FILTER (WHERE a.kind = 'shop_wallet'), 0) AS net
                     FROM ledger_transactions t
                     JOIN postings p ON p.transaction_id = t.id
                     JOIN accounts a ON a.id = p.account_id
                    WHERE t.kind = 'settlement' GROUP BY t.order_id";
    let day = "(p.created_at AT TIME ZONE 'Asia/Jakarta')::date";
    let checks = [
        (
            "report_trade_daily",
            "SELECT seller_village, day, buyer_village, orders, gmv_idr, aid_idr, seller_net_idr FROM report_trade_daily".to_string(),
            format!(
                "SELECT o.village_code, s.day, o.buyer_village_code, count(*), sum(o.total_idr),
                        sum(o.aid_paid_idr), sum(s.net)
                   FROM ({settled}) s JOIN orders o ON o.id = s.order_id
                  WHERE o.status = 'completed' GROUP BY 1, 2, 3"
            ),
        ),
        (
            "report_spend_daily",
            "SELECT seller_village, day, buyer_id, shop_id, buyer_village, spend_idr, net_idr FROM report_spend_daily".to_string(),
            format!(
                "SELECT o.village_code, s.day, COALESCE(o.buyer_shop_id, o.buyer_user_id), o.shop_id,
                        min(o.buyer_village_code), sum(o.total_idr), sum(s.net)
                   FROM ({settled}) s JOIN orders o ON o.id = s.order_id GROUP BY 1, 2, 3, 4"
            ),
        ),
        (
            "report_product_daily",
            "SELECT village_code, day, product_id, quantity, revenue_idr FROM report_product_daily".to_string(),
            format!(
                "SELECT o.village_code, s.day, l.product_id, sum(l.quantity), sum(l.line_total_idr)
                   FROM ({settled}) s JOIN orders o ON o.id = s.order_id
                   JOIN order_lines l ON l.order_id = o.id GROUP BY 1, 2, 3"
            ),
        ),
        (
            "report_aid_spent_daily",
            "SELECT programme_id, day, shop_id, programme_village, seller_village, amount_idr FROM report_aid_spent_daily".to_string(),
            format!(
                "SELECT oa.programme_id, s.day, o.shop_id, ap.village_code, o.village_code, sum(oa.amount_idr)
                   FROM ({settled}) s JOIN orders o ON o.id = s.order_id
                   JOIN order_aid oa ON oa.order_id = o.id
                   JOIN aid_programmes ap ON ap.id = oa.programme_id GROUP BY 1, 2, 3, 4, 5"
            ),
        ),
        (
            "report_ledger_daily",
            "SELECT village_code, day, account_kind, tx_kind, credit_idr, debit_idr FROM report_ledger_daily".to_string(),
            format!(
                "SELECT a.village_code, {day}, a.kind, t.kind,
                        COALESCE(sum(p.amount_idr) FILTER (WHERE p.amount_idr > 0), 0),
                        COALESCE(-sum(p.amount_idr) FILTER (WHERE p.amount_idr < 0), 0)
                   FROM postings p JOIN ledger_transactions t ON t.id = p.transaction_id
                   JOIN accounts a ON a.id = p.account_id
                  WHERE t.kind NOT IN ('hold', 'refund')
                    AND a.kind IN ('user_wallet', 'shop_wallet', 'aid_balance', 'aid_programme', 'village_revenue')
                  GROUP BY 1, 2, 3, 4"
            ),
        ),
        (
            "report_holder_daily",
            "SELECT village_code, day, holder_id, topup_idr, aid_idr, settlement_idr, other_idr FROM report_holder_daily".to_string(),
            format!(
                "SELECT a.village_code, {day}, COALESCE(a.shop_id, a.user_id),
                        COALESCE(sum(p.amount_idr) FILTER (WHERE t.kind = 'topup'), 0),
                        COALESCE(sum(p.amount_idr) FILTER (WHERE t.kind = 'aid_disbursement'), 0),
                        COALESCE(sum(p.amount_idr) FILTER (WHERE t.kind = 'settlement'), 0),
                        COALESCE(sum(p.amount_idr) FILTER (WHERE t.kind NOT IN ('topup', 'aid_disbursement', 'settlement')), 0)
                   FROM postings p JOIN ledger_transactions t ON t.id = p.transaction_id
                   JOIN accounts a ON a.id = p.account_id
                  WHERE t.kind NOT IN ('hold', 'refund') AND p.amount_idr > 0
                    AND a.kind IN ('user_wallet', 'shop_wallet', 'aid_balance')
                  GROUP BY 1, 2, 3"
            ),
        ),
    ];
    for (name, rollup, recomputed) in checks {
        let n = count(
            app,
            &format!(
                "SELECT count(*) AS n FROM (({rollup} EXCEPT ALL {recomputed})
                                            UNION ALL ({recomputed} EXCEPT ALL {rollup})) d"
            ),
        );
        assert_eq!(n, 0, "{name} differs from its recomputation in {n} rows");
        assert!(
            count(app, &format!("SELECT count(*) AS n FROM {name}")) > 0
                || name == "report_aid_spent_daily",
            "{name} is empty: the test proves nothing"
        );
    }
}

/// Aid over HTTP: a network programme of A funded and disbursed, spent at B's shop through
/// checkout (aid first, then the wallet), and re-spent by that shop: the dashboard's aid
/// figures, the network's LM3 round 1 and the programme's own LM3, all hand-computed.
#[actix_rt::test]
async fn aid_disbursed_and_spent_and_the_programme_lm3() {
    let app = spawn_app().await;
    let w = fixtures::world(&app);
    let today = pasar::reports::today();
    let (a_product, b_product) = app.with_conn(|c| {
        diesel::sql_query(format!(
            "UPDATE villages SET village_share_bps = 1000 WHERE code = '{B}'"
        ))
        .execute(c)
        .unwrap();
        (
            fixtures::product(c, w.a.active_shop, &w.a.operator, A, "Tempe", 1_000, 100),
            fixtures::product(c, w.b.active_shop, &w.b.operator, B, "Beras", 1_000, 100),
        )
    });
    // A's admin runs a network programme over HTTP; the treasurer funds 100,000 and gives
    // A's member 15,000.
    let admin = app.login(&w.a.admin.phone, A).await;
    let treasurer = app.login(&w.a.treasurer.phone, A).await;
    let p = app
        .post(&format!("/api/v1/villages/{A}/aid-programmes"))
        .token(&admin)
        .json(
            &json!({"name": "BLT", "kind": "blt_dana_desa", "scope": "network",
                      "starts_on": (today - chrono::Duration::days(10)).to_string(),
                      "ends_on": (today + chrono::Duration::days(10)).to_string()}),
        )
        .send()
        .await
        .expect(201);
    let programme: Uuid = p["id"].as_str().unwrap().parse().unwrap();
    for (path, body) in [
        ("funding", json!({"amount_idr": 100_000})),
        (
            "disbursements",
            json!({"recipients": [{"user_id": w.a.member.id, "amount_idr": 15_000}]}),
        ),
    ] {
        app.post(&format!("/api/v1/aid-programmes/{programme}/{path}"))
            .token(&treasurer)
            .header("idempotency-key", &common::money::key())
            .json(&body)
            .send()
            .await
            .expect(201);
    }
    let buyer = app.login(&w.a.member.phone, A).await;
    let wallet = wallet_of(&app, &buyer).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    topup(&app, &treasurer, &wallet, 100_000).await;
    let b_seller = app.login(&w.b.operator.phone, B).await;
    let a_seller = app.login(&w.a.operator.phone, A).await;
    // 20,000 at B's shop (in the network): the aid pays 15,000, the wallet 5,000.
    let o = buy(&app, &buyer, b_product, 20, None).await;
    complete(&app, &buyer, &b_seller, &o).await;
    // B's shop (18,000 in) re-spends 5,000 at A's shop, inside the programme's area.
    let o = buy(&app, &b_seller, a_product, 5, Some(w.b.active_shop)).await;
    complete(&app, &b_seller, &a_seller, &o).await;

    let d = get(&app, &admin, &format!("/api/v1/villages/{A}/dashboard")).await;
    assert_eq!(d["aid"]["disbursed_idr"], 15_000);
    assert_eq!(d["aid"]["spent_idr"], 15_000);
    assert_eq!(
        amounts(&d["aid"]["spent_by_seller_village"], "village_code"),
        [(B.to_string(), 15_000)]
    );
    assert_eq!(
        amounts(&d["aid"]["spent_by_shop"], "shop_id"),
        [(w.b.active_shop.to_string(), 15_000)]
    );
    let c = get(
        &app,
        &admin,
        &format!("/api/v1/networks/{}/circulation", w.network),
    )
    .await;
    // Aid spent in the network is spend like any other, counted once: 20,000 (15,000 of it
    // aid) at B's shop and B's shop's 5,000 at A's, all local.
    assert_eq!(c["totals"]["spend_idr"], 25_000);
    assert_eq!(c["totals"]["local_share"], 1.0);
    assert_eq!(c["totals"]["inflow"]["aid_funding_idr"], 100_000);
    assert_eq!(c["totals"]["inflow"]["topups_idr"], 100_000);
    // Round 1: the top-up and the disbursement into the member's aid balance.
    assert_eq!(c["totals"]["lm3"]["round1_idr"], 115_000);

    // Round 2: 15,000 of aid spent. B's shop got 15,000 × 18,000 / 20,000 = 13,500 of it and,
    // with 18,000 in and 5,000 spent at A's shops, re-spends 5,000 × 13,500 / 18,000 = 3,750.
    let m = get(
        &app,
        &treasurer,
        &format!("/api/v1/aid-programmes/{programme}"),
    )
    .await;
    assert_eq!(m["spent_idr"], 15_000);
    assert_eq!(
        (
            &m["lm3_rounds"]["round1_idr"],
            &m["lm3_rounds"]["round2_idr"],
            &m["lm3_rounds"]["round3_idr"]
        ),
        (&json!(15_000), &json!(15_000), &json!(3_750))
    );
    assert_eq!(m["lm3"], json!(33_750.0 / 15_000.0));
    assert!(
        app.with_conn(|c| pasar::reports::programme_lm3(c, Uuid::now_v7()))
            .is_err()
    );
    assert_rollups_match(&app);
    assert_books_balance(&app);
}
