//! `pasar seed demo` on a fresh database: a year of history before today's demo, with the books
//! right. A smaller year than the real one (fewer residents, a tenth of the orders) keeps the
//! test quick in debug builds; the calendar is the full 365 days.

mod common;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text};
use pasar::seed;

#[derive(QueryableByName, Debug)]
struct Figures {
    #[diesel(sql_type = BigInt)]
    span_days: i64,
    #[diesel(sql_type = BigInt)]
    orders: i64,
    #[diesel(sql_type = BigInt)]
    statuses: i64,
    #[diesel(sql_type = BigInt)]
    b2b: i64,
    #[diesel(sql_type = BigInt)]
    to_outside: i64,
    #[diesel(sql_type = BigInt)]
    from_outside: i64,
    #[diesel(sql_type = Bool)]
    ids_in_time_order: bool,
}

#[derive(QueryableByName, Debug)]
struct VillageTrade {
    #[diesel(sql_type = Text)]
    code: String,
    #[diesel(sql_type = BigInt)]
    sales: i64,
    #[diesel(sql_type = BigInt)]
    purchases: i64,
}

#[derive(QueryableByName, Debug)]
struct Aid {
    #[diesel(sql_type = Text)]
    scope: String,
    #[diesel(sql_type = Bool)]
    closed: bool,
    #[diesel(sql_type = BigInt)]
    funded: i64,
    #[diesel(sql_type = BigInt)]
    disbursed: i64,
    #[diesel(sql_type = BigInt)]
    spent: i64,
    #[diesel(sql_type = BigInt)]
    returned: i64,
    #[diesel(sql_type = BigInt)]
    balance: i64,
}

#[test]
fn the_demo_has_a_year_of_history_and_the_books_are_right() {
    let db = common::TestDb::new();
    let mut conn = db.conn();
    let params = seed::history::Params {
        scale: 0.1,
        residents: 12,
        outside_residents: 6,
        aid_recipients: 10,
        ..seed::history::Params::full()
    };
    seed::demo_with(&mut conn, &params).expect("the demo seeds");

    let check = pasar::ledger::check(&mut conn).expect("check");
    assert!(check.problems().is_empty(), "{:?}", check.problems());

    let f: Figures = diesel::sql_query(
        "SELECT (extract(epoch FROM max(placed_at) - min(placed_at)) / 86400)::bigint AS span_days,
                count(*) AS orders,
                count(DISTINCT status) AS statuses,
                count(*) FILTER (WHERE buyer_shop_id IS NOT NULL AND status = 'completed') AS b2b,
                count(*) FILTER (WHERE status = 'completed' AND buyer_village_code IN
                    (SELECT village_code FROM network_villages) AND village_code NOT IN
                    (SELECT village_code FROM network_villages)) AS to_outside,
                count(*) FILTER (WHERE status = 'completed' AND village_code IN
                    (SELECT village_code FROM network_villages) AND buyer_village_code NOT IN
                    (SELECT village_code FROM network_villages)) AS from_outside,
                (SELECT bool_and(prev IS NULL OR prev <= placed_at) FROM
                    (SELECT placed_at, lag(placed_at) OVER (ORDER BY id) AS prev FROM orders) o)
                    AS ids_in_time_order
           FROM orders",
    )
    .get_result(&mut conn)
    .expect("figures");
    assert!(f.span_days >= 300, "{f:?}");
    assert!(f.orders >= 1_000, "{f:?}");
    assert_eq!(f.statuses, 9, "the live demo still has every state: {f:?}");
    assert!(f.b2b > 0 && f.to_outside > 0 && f.from_outside > 0, "{f:?}");
    assert!(f.ids_in_time_order, "{f:?}");

    let trade: Vec<VillageTrade> = diesel::sql_query(
        "SELECT v.code,
                (SELECT count(*) FROM orders o WHERE o.village_code = v.code AND o.status = 'completed') AS sales,
                (SELECT count(*) FROM orders o WHERE o.buyer_village_code = v.code AND o.status = 'completed') AS purchases
           FROM villages v ORDER BY v.code",
    )
    .load(&mut conn)
    .expect("trade");
    assert_eq!(trade.len(), 8, "five network villages and three outside");
    for t in &trade {
        assert!(t.sales > 0 && t.purchases > 0, "village {}: {t:?}", t.code);
    }

    // Every posting's number follows time: the ledger went in in the order the money moved.
    let disorder: i64 = diesel::sql_query(
        "SELECT count(*) AS n FROM (SELECT created_at, lag(created_at) OVER
             (PARTITION BY account_id ORDER BY entry_no) AS prev FROM postings) p
          WHERE prev > created_at",
    )
    .get_result::<Count>(&mut conn)
    .expect("disorder")
    .n;
    assert_eq!(disorder, 0);

    let aid: Vec<Aid> = diesel::sql_query(
        "SELECT p.scope, p.closed_at IS NOT NULL AS closed,
                COALESCE((SELECT sum(x.amount_idr) FROM postings x JOIN ledger_transactions t ON t.id = x.transaction_id
                   WHERE t.kind = 'aid_funding' AND x.account_id = a.id), 0)::bigint AS funded,
                COALESCE((SELECT -sum(x.amount_idr) FROM postings x JOIN ledger_transactions t ON t.id = x.transaction_id
                   WHERE t.kind = 'aid_disbursement' AND x.account_id = a.id), 0)::bigint AS disbursed,
                COALESCE((SELECT sum(oa.amount_idr) FROM order_aid oa JOIN orders o ON o.id = oa.order_id
                   WHERE oa.programme_id = p.id AND o.status = 'completed'), 0)::bigint AS spent,
                COALESCE((SELECT sum(x.amount_idr) FROM postings x JOIN ledger_transactions t ON t.id = x.transaction_id
                   WHERE t.kind = 'aid_return' AND x.account_id = a.id), 0)::bigint AS returned,
                (SELECT COALESCE(sum(b.balance_idr), 0) FROM accounts b
                   WHERE b.kind = 'aid_balance' AND b.programme_id = p.id)::bigint AS balance
           FROM aid_programmes p JOIN accounts a ON a.kind = 'aid_programme' AND a.programme_id = p.id
          ORDER BY p.starts_on",
    )
    .load(&mut conn)
    .expect("aid");
    assert_eq!(aid.len(), 2, "{aid:?}");
    let over = &aid[0];
    assert!(over.closed && over.scope == "village", "{over:?}");
    assert!(
        over.funded > 0 && over.disbursed > 0 && over.spent > 0 && over.returned > 0,
        "{over:?}"
    );
    assert_eq!(over.balance, 0, "the remainder went back: {over:?}");
    let running = &aid[1];
    assert!(!running.closed && running.scope == "network", "{running:?}");
    assert!(running.disbursed > 0 && running.balance > 0, "{running:?}");

    // A second run finds the demo and changes nothing.
    seed::demo_with(&mut conn, &params).expect("idempotent");
    let again: i64 = diesel::sql_query("SELECT count(*) AS n FROM orders")
        .get_result::<Count>(&mut conn)
        .expect("count")
        .n;
    assert_eq!(again, f.orders);
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}
