//! `idempotency::once` against a real PostgreSQL: each test has its own database and a scratch
//! table `effects` whose rows count how often an effect really ran (committed).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, mpsc};
use std::time::{Duration, Instant};

use actix_web::ResponseError;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Uuid as SqlUuid};
use pasar::db::{self, DbPool};
use pasar::http::error::{Error, Result};
use pasar::http::extract::sha256;
use pasar::http::idempotency::{self, Request, Stored, request_hash};
use serde_json::{Value, json};
use uuid::Uuid;

const TOPUP: &str = "POST /wallets/{id}/topups";
const PATH: &str = "/api/v1/wallets/0195e0a2-7c1e-7d3a-9f00-2b7c8e1d4a55/topups";

struct Scratch {
    pool: DbPool,
    // Last, so the pool's connections close before the database is dropped.
    _db: common::TestDb,
}

fn setup() -> Scratch {
    let db = common::TestDb::new();
    let pool = db::build_pool(&db.url, &common::test_config(&db.url).pool());
    diesel::sql_query(
        "CREATE TABLE effects (id BIGSERIAL PRIMARY KEY, caller UUID NOT NULL, note TEXT NOT NULL)",
    )
    .execute(&mut pool.get().unwrap())
    .unwrap();
    Scratch { pool, _db: db }
}

fn request(caller: Uuid, key: &str, body: &str) -> Request {
    Request {
        caller,
        key: key.into(),
        operation: TOPUP,
        request_hash: request_hash("POST", PATH, &sha256(body.as_bytes())),
    }
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// The effect: one row in `effects`, and a 201 whose body has nesting and several keys, so that
/// a replay is compared on more than one number.
fn insert_effect(conn: &mut PgConnection, caller: Uuid, note: &str) -> Result<(u16, Value)> {
    let row: Id =
        diesel::sql_query("INSERT INTO effects (caller, note) VALUES ($1, $2) RETURNING id")
            .bind::<SqlUuid, _>(caller)
            .bind::<Text, _>(note)
            .get_result(conn)?;
    Ok((
        201,
        json!({"id": row.id, "note": note, "zeta": [3, 1, 2], "alpha": {"b": 1.5, "a": null}}),
    ))
}

fn count(conn: &mut PgConnection, table: &str) -> i64 {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    diesel::sql_query(format!("SELECT count(*) AS n FROM {table}"))
        .get_result::<N>(conn)
        .unwrap()
        .n
}

#[track_caller]
fn assert_in_progress(r: &Result<Stored>) {
    match r {
        Err(e) => {
            let p = e.problem();
            assert_eq!(p.status, 409, "{p:?}");
            assert!(p.type_.ends_with("/conflict"), "{p:?}");
            assert!(p.detail.contains("still in progress"), "{p:?}");
        }
        Ok(s) => panic!("expected 409 in progress, got {s:?}"),
    }
}

#[test]
fn same_key_five_times_runs_once_and_replays_the_same_response() {
    let s = setup();
    let conn = &mut s.pool.get().unwrap();
    let caller = Uuid::now_v7();
    let runs = AtomicUsize::new(0);
    let req = request(caller, "k-1", r#"{"amount_idr":5000}"#);
    let results: Vec<Stored> = (0..5)
        .map(|_| {
            idempotency::once(conn, &req, |conn| {
                runs.fetch_add(1, Ordering::SeqCst);
                insert_effect(conn, caller, "topup")
            })
            .unwrap()
        })
        .collect();
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(count(conn, "effects"), 1);
    assert!(!results[0].replayed);
    assert_eq!(results[0].status, 201);
    let first = serde_json::to_vec(&results[0].body).unwrap();
    for r in &results[1..] {
        assert!(r.replayed);
        assert_eq!(r.status, 201);
        assert_eq!(serde_json::to_vec(&r.body).unwrap(), first, "byte for byte");
    }
    // And as HTTP: same status and body, the replay marked.
    let fresh = results[0].clone().into_response();
    let replay = results[1].clone().into_response();
    assert_eq!(fresh.status(), replay.status());
    assert!(fresh.headers().get("idempotency-replayed").is_none());
    assert_eq!(
        replay.headers().get("idempotency-replayed").unwrap(),
        "true"
    );
}

#[test]
fn ten_at_once_run_the_effect_once() {
    let s = setup();
    let caller = Uuid::now_v7();
    let runs = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(10));
    let threads: Vec<_> = (0..10)
        .map(|_| {
            let mut conn = s.pool.get().unwrap();
            let (runs, barrier) = (runs.clone(), barrier.clone());
            std::thread::spawn(move || {
                let req = request(caller, "k-race", r#"{"amount_idr":5000}"#);
                barrier.wait();
                idempotency::once(&mut conn, &req, |conn| {
                    runs.fetch_add(1, Ordering::SeqCst);
                    // Long enough that the others arrive while it runs.
                    diesel::sql_query("SELECT pg_sleep(0.5)").execute(conn)?;
                    insert_effect(conn, caller, "topup")
                })
            })
        })
        .collect();
    let results: Vec<Result<Stored>> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "the effect ran more than once"
    );
    assert_eq!(count(&mut s.pool.get().unwrap(), "effects"), 1);
    let fresh: Vec<&Stored> = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .filter(|s| !s.replayed)
        .collect();
    assert_eq!(fresh.len(), 1, "{results:?}");
    let mut in_progress = 0;
    for r in &results {
        match r {
            Ok(s) if s.replayed => assert_eq!((s.status, &s.body), (201, &fresh[0].body)),
            Ok(_) => {}
            Err(_) => {
                assert_in_progress(r);
                in_progress += 1;
            }
        }
    }
    assert!(
        in_progress > 0,
        "nobody met the first one running: {results:?}"
    );
}

#[test]
fn in_progress_answers_409_at_once_then_replays() {
    let s = setup();
    let caller = Uuid::now_v7();
    let (inside_tx, inside_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let mut conn = s.pool.get().unwrap();
    let first = std::thread::spawn(move || {
        let req = request(caller, "k-slow", "{}");
        idempotency::once(&mut conn, &req, |conn| {
            inside_tx.send(()).unwrap();
            go_rx.recv().unwrap();
            insert_effect(conn, caller, "slow")
        })
    });
    inside_rx.recv().unwrap();
    let conn = &mut s.pool.get().unwrap();
    let req = request(caller, "k-slow", "{}");
    let started = Instant::now();
    let r = idempotency::once(conn, &req, |_| panic!("must not run while the first runs"));
    assert!(started.elapsed() < Duration::from_secs(1), "it waited");
    assert_in_progress(&r);
    go_tx.send(()).unwrap();
    let first = first.join().unwrap().unwrap();
    assert!(!first.replayed);
    let again = idempotency::once(conn, &req, |_| panic!("must replay")).unwrap();
    assert!(again.replayed);
    assert_eq!(again.body, first.body);
    assert_eq!(count(conn, "effects"), 1);
}

#[test]
fn same_key_for_another_request_is_422() {
    let s = setup();
    let conn = &mut s.pool.get().unwrap();
    let caller = Uuid::now_v7();
    let req = request(caller, "k-2", r#"{"amount_idr":5000}"#);
    idempotency::once(conn, &req, |c| insert_effect(c, caller, "topup")).unwrap();
    let other_body = request(caller, "k-2", r#"{"amount_idr":9000}"#);
    let other_operation = Request {
        operation: "POST /wallets/{id}/withdrawals",
        ..req.clone()
    };
    let other_path = Request {
        request_hash: request_hash(
            "POST",
            "/api/v1/wallets/0195e0a2-0000-7000-8000-000000000000/topups",
            &sha256(br#"{"amount_idr":5000}"#),
        ),
        ..req.clone()
    };
    for other in [other_body, other_operation, other_path] {
        let e = idempotency::once(conn, &other, |_| panic!("must not run")).unwrap_err();
        let p = e.problem();
        assert_eq!(p.status, 422, "{p:?}");
        assert!(p.type_.ends_with("/idempotency-mismatch"), "{p:?}");
    }
    assert_eq!(count(conn, "effects"), 1);
    // The original request still replays.
    assert!(
        idempotency::once(conn, &req, |_| panic!("must replay"))
            .unwrap()
            .replayed
    );
}

#[test]
fn keys_are_scoped_to_the_caller() {
    let s = setup();
    let conn = &mut s.pool.get().unwrap();
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    let ra = idempotency::once(conn, &request(a, "shared", "{}"), |c| {
        insert_effect(c, a, "a")
    })
    .unwrap();
    let rb = idempotency::once(conn, &request(b, "shared", "{}"), |c| {
        insert_effect(c, b, "b")
    })
    .unwrap();
    assert!(!ra.replayed && !rb.replayed);
    assert_ne!(ra.body, rb.body);
    assert_eq!(count(conn, "effects"), 2);
}

#[test]
fn a_final_refusal_is_stored_and_replayed() {
    let s = setup();
    let conn = &mut s.pool.get().unwrap();
    let caller = Uuid::now_v7();
    let req = request(caller, "k-poor", r#"{"amount_idr":999999}"#);
    let refuse = |c: &mut PgConnection| -> Result<(u16, Value)> {
        // Written, then refused: the savepoint must undo the write, yet keep the key.
        insert_effect(c, caller, "withdrawal")?;
        Err(Error::Conflict {
            slug: "insufficient-funds",
            detail: "the wallet holds less".into(),
            extra: None,
        })
    };
    let first = idempotency::once(conn, &req, refuse).unwrap();
    assert_eq!(first.status, 409);
    assert!(!first.replayed);
    assert!(
        first.body["type"]
            .as_str()
            .unwrap()
            .ends_with("/insufficient-funds"),
        "{first:?}"
    );
    assert_eq!(
        count(conn, "effects"),
        0,
        "the refused effect's write stayed"
    );
    assert_eq!(count(conn, "idempotency_keys"), 1);
    let again = idempotency::once(conn, &req, |_| panic!("must replay")).unwrap();
    assert!(again.replayed);
    assert_eq!((again.status, &again.body), (409, &first.body));
    let res = again.into_response();
    assert_eq!(
        res.headers().get("content-type").unwrap(),
        "application/problem+json"
    );
}

/// An effect whose statement fails with this SQLSTATE, as PostgreSQL would report it.
fn raise(c: &mut PgConnection, code: &str, msg: &str) -> Result<(u16, Value)> {
    diesel::sql_query(format!(
        "DO $$ BEGIN RAISE EXCEPTION '{msg}' USING ERRCODE = '{code}'; END $$"
    ))
    .execute(c)?;
    unreachable!("the statement raised")
}

#[test]
fn errors_that_are_not_stored_leave_no_trace_and_a_retry_runs() {
    let s = setup();
    let conn = &mut s.pool.get().unwrap();
    let caller = Uuid::now_v7();
    type Failing = fn(&mut PgConnection) -> Result<(u16, Value)>;
    let cases: Vec<(&str, u16, Failing)> = vec![
        ("validation", 400, |_| {
            Err(Error::field("amount_idr", "must be positive"))
        }),
        ("forbidden", 403, |_| {
            Err(Error::Forbidden("not a treasurer".into()))
        }),
        ("not-found", 404, |_| Err(Error::NotFound)),
        ("unavailable", 503, |_| {
            Err(Error::Unavailable("statement timeout".into()))
        }),
        ("sql-error", 500, |c| {
            diesel::sql_query("SELECT 1/0").execute(c)?;
            unreachable!()
        }),
        ("not-2xx", 500, |_| Ok((302, json!({})))),
        ("serialization", 409, |c| {
            raise(
                c,
                "40001",
                "could not serialize access due to concurrent update",
            )
        }),
        ("deadlock", 0, |c| raise(c, "40P01", "deadlock detected")),
    ];
    for (i, (name, status, fail)) in cases.into_iter().enumerate() {
        let req = request(caller, &format!("k-{name}"), "{}");
        let e = idempotency::once(conn, &req, |c| {
            insert_effect(c, caller, name)?;
            fail(c)
        })
        .expect_err(name);
        // The deadlock maps to 409 or 500 depending on the database-error mapping; neither is
        // stored.
        if status != 0 {
            assert_eq!(e.status_code().as_u16(), status, "{name}: {e:?}");
        }
        assert_eq!(count(conn, "effects"), i as i64, "{name}: the write stayed");
        assert_eq!(
            count(conn, "idempotency_keys"),
            i as i64,
            "{name}: key stored"
        );
        // The key is free: the retry runs.
        let retry = idempotency::once(conn, &req, |c| insert_effect(c, caller, name)).unwrap();
        assert!(!retry.replayed, "{name}");
        assert_eq!(count(conn, "effects"), i as i64 + 1);
    }
}

#[test]
fn inside_an_outer_transaction_a_stored_refusal_commits() {
    let s = setup();
    let conn = &mut s.pool.get().unwrap();
    let caller = Uuid::now_v7();
    let req = request(caller, "k-outer", "{}");
    let stored = conn
        .transaction(|c| {
            idempotency::once(c, &req, |_| {
                Err(Error::Conflict {
                    slug: "out-of-stock",
                    detail: "gone".into(),
                    extra: None,
                })
            })
        })
        .unwrap();
    assert_eq!(stored.status, 409);
    assert!(
        idempotency::once(conn, &req, |_| panic!("must replay"))
            .unwrap()
            .replayed
    );
}

#[test]
fn sweep_forgets_keys_older_than_a_day() {
    let s = setup();
    let conn = &mut s.pool.get().unwrap();
    let caller = Uuid::now_v7();
    for k in ["old", "fresh"] {
        idempotency::once(conn, &request(caller, k, "{}"), |c| {
            insert_effect(c, caller, k)
        })
        .unwrap();
    }
    diesel::sql_query(
        "UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = 'old'",
    )
    .execute(conn)
    .unwrap();
    assert_eq!(idempotency::sweep(conn).unwrap(), 1);
    assert_eq!(idempotency::sweep(conn).unwrap(), 0);
    assert!(
        idempotency::once(conn, &request(caller, "fresh", "{}"), |_| panic!("kept"))
            .unwrap()
            .replayed
    );
    let old = idempotency::once(conn, &request(caller, "old", "{}"), |c| {
        insert_effect(c, caller, "old again")
    })
    .unwrap();
    assert!(!old.replayed, "a forgotten key runs again");
}
