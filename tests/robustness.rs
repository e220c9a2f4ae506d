//! Robustness: PostgreSQL's errors become the problems they should, and no hostile input makes
//! the server answer 5xx or a 4xx that is not a problem document.

mod common;

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::fixtures::{self, A, B};
use common::{TestApp, spawn_app, spawn_app_with};
use diesel::prelude::*;
use pasar::http::error::Error;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config as RunnerConfig, RngAlgorithm, TestRng, TestRunner};
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// Database errors, as the real server reports them.

/// Runs `sql` on `conn` and maps its error as a handler would.
fn error_of(conn: &mut PgConnection, sql: &str) -> Error {
    match diesel::sql_query(sql).execute(conn) {
        Ok(_) => panic!("{sql} succeeded"),
        Err(e) => Error::from(e),
    }
}

fn status(e: &Error) -> u16 {
    use actix_web::ResponseError;
    e.status_code().as_u16()
}

/// The unit tests of the mapping use messages written by hand; this checks them against what
/// PostgreSQL really says, for each class of error a request can run into.
#[actix_rt::test]
async fn postgres_errors_map_to_client_errors_or_503() {
    let app = spawn_app().await;
    let url = app.db.url.clone();
    tokio::task::spawn_blocking(move || {
        let mut c = pasar::db::connect(&url).unwrap();
        let c = &mut c;
        diesel::sql_query("CREATE TEMP TABLE short_text (v varchar(2))")
            .execute(c)
            .unwrap();
        for sql in [
            "SELECT 2147483647::int4 + 1",
            "SELECT 40000::int2",
            "SELECT '99999999999999999999'::int8",
            "SELECT 'nope'::uuid",
            "SELECT '5000000-01-01'::timestamptz",
            "SELECT '2024-13-45'::date",
            "SELECT now() + interval '300000 years'",
            "SELECT 12345.678::numeric(5, 2)",
            "INSERT INTO short_text VALUES ('abc')",
        ] {
            let e = error_of(c, sql);
            assert!(matches!(e, Error::BadRequest(_)), "{sql}: {e:?}");
        }
        let e = error_of(c, r#"SELECT '"a\u0000b"'::jsonb"#);
        assert!(e.problem().detail.contains("NUL"), "{e:?}");
        // Constraints of the regions table.
        let e = error_of(
            c,
            "INSERT INTO regions (code, parent_code, level, kind, name) VALUES ('99.01', '34', 7, 'x', 'x')",
        );
        assert_eq!(status(&e), 400, "{e:?}");
        assert_eq!(e.problem().errors[0].field, "level");
        let e = error_of(
            c,
            "INSERT INTO regions (code, level, kind, name) VALUES ('99', 1, 'x', NULL)",
        );
        assert_eq!(status(&e), 400, "{e:?}");
        assert_eq!(e.problem().errors[0].field, "name");
        let e = error_of(
            c,
            "INSERT INTO regions (code, parent_code, level, kind, name) VALUES ('98.01', '98', 2, 'x', 'x')",
        );
        assert_eq!(status(&e), 409, "{e:?}");
        assert!(e.problem().detail.contains("does not exist"), "{e:?}");
        let e = error_of(c, "DELETE FROM regions WHERE code = '34'");
        assert_eq!(status(&e), 409, "{e:?}");
        assert!(e.problem().detail.contains("still in use"), "{e:?}");
        diesel::sql_query("SET statement_timeout = 50")
            .execute(c)
            .unwrap();
        let e = error_of(c, "SELECT pg_sleep(1)");
        assert!(matches!(e, Error::Unavailable(_)), "{e:?}");
    })
    .await
    .unwrap();
}

/// Lock timeouts and deadlocks need two connections.
#[actix_rt::test]
async fn lock_timeouts_and_deadlocks_are_retryable() {
    let app = spawn_app().await;
    let url = app.db.url.clone();
    tokio::task::spawn_blocking(move || {
        let mut holder = pasar::db::connect(&url).unwrap();
        let mut waiter = pasar::db::connect(&url).unwrap();
        diesel::sql_query("SET lock_timeout = 100")
            .execute(&mut waiter)
            .unwrap();
        holder
            .transaction::<_, diesel::result::Error, _>(|h| {
                diesel::sql_query("SELECT 1 FROM regions WHERE code = '34' FOR UPDATE")
                    .execute(h)?;
                let e = error_of(
                    &mut waiter,
                    "UPDATE regions SET name = name WHERE code = '34'",
                );
                assert!(matches!(e, Error::Unavailable(_)), "{e:?}");
                let e = error_of(
                    &mut waiter,
                    "SELECT 1 FROM regions WHERE code = '34' FOR UPDATE NOWAIT",
                );
                assert!(matches!(e, Error::Unavailable(_)), "{e:?}");
                Ok(())
            })
            .unwrap();

        // Two transactions lock 34 and 31 in opposite orders: PostgreSQL aborts one of them.
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
        let run = |first: &'static str, second: &'static str| {
            let url = url.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut c = pasar::db::connect(&url).unwrap();
                c.transaction::<_, Error, _>(|c| {
                    let lock = |code: &str| {
                        format!("UPDATE regions SET name = name WHERE code = '{code}'")
                    };
                    diesel::sql_query(lock(first)).execute(c)?;
                    barrier.wait();
                    diesel::sql_query(lock(second)).execute(c)?;
                    Ok(())
                })
            })
        };
        let (x, y) = (run("34", "31"), run("31", "34"));
        let results = [x.join().unwrap(), y.join().unwrap()];
        let failed: Vec<&Error> = results.iter().filter_map(|r| r.as_ref().err()).collect();
        assert_eq!(failed.len(), 1, "{results:?}");
        assert_eq!(status(failed[0]), 409, "{failed:?}");
        let extra = failed[0].problem().extra.unwrap_or_default();
        assert_eq!(extra.get("retryable"), Some(&serde_json::Value::Bool(true)));
    })
    .await
    .unwrap();
}

// ---------------------------------------------------------------------------------------------
// Hostile input over HTTP.

/// A seed for the generators: `ROBUSTNESS_SEED` to replay a run, else a random one (printed
/// with any failure).
fn runner() -> (TestRunner, u64) {
    let seed = std::env::var("ROBUSTNESS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &bytes);
    (TestRunner::new_with_rng(RunnerConfig::default(), rng), seed)
}

fn sample<T: std::fmt::Debug>(runner: &mut TestRunner, s: &impl Strategy<Value = T>) -> T {
    s.new_tree(runner).expect("strategy yields").current()
}

fn text() -> BoxedStrategy<String> {
    prop_oneof![
        3 => "[a-zA-Z0-9 ._-]{0,12}",
        2 => "\\PC{0,24}",
        1 => "[\\x00-\\x1f\\x7f]{1,4}".prop_map(|c| format!("x{c}y")),
        // Long, but a query of several stays below actix's 32 KiB request head (beyond it actix
        // itself answers 431, before any of our code).
        1 => "[a-z\u{0}]{1,4}".prop_map(|s| s.repeat(250)),
        1 => Just("🦀".repeat(200)),
        1 => prop::sample::select(vec![
            "", "\0", " ", "%", "_", "%_\\", "'; DROP TABLE products; --", "\u{202e}abc",
            "\u{feff}", "\u{fffd}", "null", "undefined", "NaN", "-0", "[]", "{}",
        ])
        .prop_map(String::from),
    ]
    .boxed()
}

/// Numbers as a client may write them in a query string.
fn number_text() -> BoxedStrategy<String> {
    prop_oneof![
        3 => any::<i64>().prop_map(|n| n.to_string()),
        2 => (-200i64..3000).prop_map(|n| n.to_string()),
        3 => prop::sample::select(vec![
            "-9223372036854775808", "9223372036854775807", "9223372036854775808",
            "-9223372036854775809", "18446744073709551616", "99999999999999999999999999",
            "2147483647", "2147483648", "-2147483649", "32767", "32768", "-32769", "0", "-1",
            "1.5", "1e3", "1e400", "-0", "+5", " 5", "0x10", "NaN", "inf", "-inf", "",
        ])
        .prop_map(String::from),
        1 => any::<f64>().prop_map(|f| f.to_string()),
    ]
    .boxed()
}

fn date_text() -> BoxedStrategy<String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "-5000-01-01T00:00:00Z", "+275760-09-13T00:00:00Z", "262143-12-31T23:59:59Z",
            "-262143-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "0000-01-01T00:00:00Z",
            "-4713-11-24T00:00:00Z", "-4714-11-24T00:00:00Z", "294276-12-31T23:59:59Z",
            "1970-01-01T00:00:00Z", "2024-02-30T00:00:00Z", "2024-01-01", "2024-01-01T24:00:00Z",
            "2024-01-01T00:00:00+23:59", "2024-01-01T00:00:60Z", "2024-01-01T00:00:00.999999999Z",
            "now", "",
        ])
        .prop_map(String::from),
        2 => (-300_000i32..300_000, 1u32..=12, 1u32..=28)
            .prop_map(|(y, m, d)| format!("{y:+05}-{m:02}-{d:02}T12:00:00Z")),
    ]
    .boxed()
}

fn uuid_text(real: Vec<Uuid>) -> BoxedStrategy<String> {
    prop_oneof![
        3 => prop::sample::select(real).prop_map(|u| u.to_string()),
        2 => any::<u128>().prop_map(|n| Uuid::from_u128(n).to_string()),
        2 => prop::sample::select(vec![
            "not-a-uuid", "00000000-0000-0000-0000-000000000000",
            "ffffffff-ffff-ffff-ffff-ffffffffffff", "{01890a5d-ac96-774b-bcce-b302099a8057}",
            "urn:uuid:01890a5d-ac96-774b-bcce-b302099a8057", "01890a5dac96774bbcceb302099a8057",
            "01890a5d-ac96-774b-bcce-b302099a805", "01890a5d-ac96-774b-bcce-b302099a8057x", "",
        ])
        .prop_map(String::from),
    ]
    .boxed()
}

/// Cursors: junk, and base64 of JSON shaped like the real keys with hostile values.
fn cursor_text() -> BoxedStrategy<String> {
    let json_key = prop_oneof![
        (any::<i64>(), any::<u128>()).prop_map(|(t, id)| {
            serde_json::json!({"s": "S", "t": t, "id": Uuid::from_u128(id)}).to_string()
        }),
        prop::sample::select(vec![
            r#"{"s":"S","t":-9223372036854775808,"id":"00000000-0000-0000-0000-000000000000"}"#,
            r#"{"s":"S","t":9223372036854775807,"id":"00000000-0000-0000-0000-000000000000"}"#,
            r#"{"s":"R","f":1e308,"id":"00000000-0000-0000-0000-000000000000"}"#,
            r#"{"s":"L","b":2147483647,"f":-1e308,"id":"00000000-0000-0000-0000-000000000000"}"#,
            r#"{"s":"Pa","p":-9223372036854775808,"id":"00000000-0000-0000-0000-000000000000"}"#,
            r#"{"s":"N","id":"nope"}"#,
            r#"{"s":"X"}"#,
            r#"[1e308,"34"]"#,
            r#"[-1.0,"\u0000"]"#,
            r#"[0,"34.02.15.2004"]"#,
            r#""00000000-0000-0000-0000-000000000000""#,
            r#""\u0000""#,
            r#""34""#,
            "1e400",
            "null",
            "[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]",
        ])
        .prop_map(String::from),
    ];
    prop_oneof![
        3 => json_key.prop_map(|j| URL_SAFE_NO_PAD.encode(j)),
        1 => text(),
        1 => prop::sample::select(vec!["!!!", "====", "YQ", "YQ==", "eyJ", "%00"]).prop_map(String::from),
    ]
    .boxed()
}

fn bool_text() -> BoxedStrategy<String> {
    prop::sample::select(vec!["true", "false", "1", "0", "yes", "TRUE", "", "null"])
        .prop_map(String::from)
        .boxed()
}

/// Percent-encodes a query key or value (every byte that is not unreserved).
fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

struct Ids {
    shops: Vec<Uuid>,
    products: Vec<Uuid>,
    networks: Vec<Uuid>,
}

fn query_string(ids: &Ids) -> BoxedStrategy<String> {
    let uuids: Vec<Uuid> = ids
        .shops
        .iter()
        .chain(&ids.products)
        .chain(&ids.networks)
        .copied()
        .collect();
    let typed = move |key: &'static str| -> BoxedStrategy<String> {
        match key {
            "limit" | "min_price" | "max_price" | "level" => number_text(),
            "shop" | "network" => uuid_text(uuids.clone()),
            "in_stock" | "flagship" => bool_text(),
            "updated_since" => date_text(),
            "cursor" => cursor_text(),
            "sort" => prop_oneof![
                prop::sample::select(vec![
                    "relevance",
                    "price_asc",
                    "price_desc",
                    "newest",
                    "local"
                ])
                .prop_map(String::from),
                text(),
            ]
            .boxed(),
            "region" => prop_oneof![
                prop::sample::select(vec![
                    "34", "34.02", "34.02.15", A, "31", "9", "34.", "..", "%"
                ])
                .prop_map(String::from),
                text(),
            ]
            .boxed(),
            _ => text(),
        }
    };
    let keys = [
        "q",
        "category",
        "shop",
        "region",
        "network",
        "min_price",
        "max_price",
        "in_stock",
        "flagship",
        "sort",
        "limit",
        "cursor",
        "updated_since",
        "level",
    ];
    let pair = prop_oneof![
        8 => prop::sample::select(keys.to_vec()).prop_flat_map(move |k| {
            let any_value = prop_oneof![number_text(), date_text(), cursor_text(), text()];
            (Just(k), prop_oneof![4 => typed(k), 1 => any_value])
                .prop_map(|(k, v)| format!("{k}={}", enc(&v)))
        }),
        1 => (text(), text()).prop_map(|(k, v)| format!("{}={}", enc(&k), enc(&v))),
        1 => prop::sample::select(vec![
            "%", "%zz", "&", "=", "==", "limit", "limit=", "=5", "limit=1&limit=2", "q=%00",
            "cursor=%FF%FE", "q=%C3%28", "updated_since=2024-01-01T00:00:00+07:00",
        ])
        .prop_map(String::from),
    ];
    prop::collection::vec(pair, 0..5)
        .prop_map(|pairs| pairs.join("&"))
        .boxed()
}

/// `(route, path and query)` of a read.
fn get_path(ids: &Ids) -> BoxedStrategy<(&'static str, String)> {
    let code = prop_oneof![
        3 => prop::sample::select(vec!["34", "34.02", "34.02.15", A, "31", "99", "00"])
            .prop_map(String::from),
        1 => text().prop_map(|t| enc(&t)),
    ];
    let route = prop_oneof![
        3 => Just(("/api/v1/products", "/api/v1/products".to_string())),
        1 => Just(("/api/v1/regions", "/api/v1/regions".to_string())),
        1 => code.prop_map(|c| {
            ("/api/v1/regions/{code}/children", format!("/api/v1/regions/{c}/children"))
        }),
        1 => Just(("/api/v1/villages", "/api/v1/villages".to_string())),
        1 => Just(("/api/v1/networks", "/api/v1/networks".to_string())),
    ];
    (route, query_string(ids))
        .prop_map(|((route, path), q)| {
            (
                route,
                if q.is_empty() {
                    path
                } else {
                    format!("{path}?{q}")
                },
            )
        })
        .boxed()
}

/// JSON text of a number a client may send, including ones no Rust integer holds.
fn json_number() -> BoxedStrategy<String> {
    prop_oneof![
        2 => any::<i64>().prop_map(|n| n.to_string()),
        2 => (-200i64..3000).prop_map(|n| n.to_string()),
        3 => prop::sample::select(vec![
            "-9223372036854775808", "9223372036854775807", "9223372036854775808",
            "-9223372036854775809", "18446744073709551616", "1e400", "-1e400", "1e18", "1.0",
            "0.5", "-0", "1E2", "2147483647", "2147483648", "-2147483648", "-2147483649", "0",
            "-1", "99", "100", "2000000000", "2000000001", "10000000", "10000001",
            "100000000000000000000000000000000000000000",
        ])
        .prop_map(String::from),
    ]
    .boxed()
}

fn json_string(extra: &'static [&'static str]) -> BoxedStrategy<String> {
    let plain = if extra.is_empty() {
        text()
    } else {
        prop_oneof![
            2 => text(),
            1 => prop::sample::select(extra.to_vec()).prop_map(String::from),
        ]
        .boxed()
    }
    .prop_map(|s| serde_json::to_string(&s).unwrap());
    prop_oneof![
        6 => plain,
        // Escapes serde must reject or keep: a lone surrogate, NUL, an escaped quote.
        1 => prop::sample::select(vec![r#""\ud800""#, r#""a\u0000b""#, r#""\"""#, r#""\\""#])
            .prop_map(String::from),
    ]
    .boxed()
}

/// Any JSON value, nested.
fn json_any() -> BoxedStrategy<String> {
    let leaf = prop_oneof![
        json_number(),
        json_string(&[]),
        prop::sample::select(vec!["null", "true", "false", "{}", "[]"]).prop_map(String::from),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec(("[a-z_]{1,8}", inner), 0..4).prop_map(|kv| {
                let members: Vec<String> = kv
                    .into_iter()
                    .map(|(k, v)| format!("{}:{v}", serde_json::to_string(&k).unwrap()))
                    .collect();
                format!("{{{}}}", members.join(","))
            }),
        ]
    })
    .boxed()
}

/// A body field: how a valid value looks (so that most of a body gets through and the hostile
/// fields reach validation and the database), and whether it may be left out.
#[derive(Clone, Copy)]
enum Kind {
    Text(&'static [&'static str]),
    Int(i64, i64),
    Bool,
    TextList(&'static [&'static str]),
    Discount,
    /// A phone with no account yet.
    NewPhone,
}

struct Field {
    name: &'static str,
    kind: Kind,
    optional: bool,
}

const fn field(name: &'static str, kind: Kind) -> Field {
    Field {
        name,
        kind,
        optional: false,
    }
}

const fn optional(name: &'static str, kind: Kind) -> Field {
    Field {
        name,
        kind,
        optional: true,
    }
}

fn json(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

fn valid_value(kind: Kind, nullable: bool) -> BoxedStrategy<String> {
    let value = match kind {
        Kind::Text(valid) => prop::sample::select(valid.to_vec()).prop_map(json).boxed(),
        Kind::Int(lo, hi) => (lo..=hi).prop_map(|n| n.to_string()).boxed(),
        Kind::Bool => any::<bool>().prop_map(|b| b.to_string()).boxed(),
        Kind::TextList(valid) => prop::sample::subsequence(valid.to_vec(), 0..=valid.len())
            .prop_map(move |v| {
                let items: Vec<String> = v.into_iter().map(json).collect();
                format!("[{}]", items.join(","))
            })
            .boxed(),
        Kind::Discount => prop_oneof![
            (1i64..=50).prop_map(|v| format!(r#"{{"kind":"percent","value":{v}}}"#)),
            (1i64..=50).prop_map(|v| format!(r#"{{"kind":"amount","value":{v}}}"#)),
        ]
        .boxed(),
        Kind::NewPhone => (0u32..100_000_000)
            .prop_map(|n| format!("\"+62857{n:08}\""))
            .boxed(),
    };
    if nullable {
        prop_oneof![4 => value, 1 => Just("null".to_string())].boxed()
    } else {
        value
    }
}

/// A value of the field's type that is out of bounds, or a value of any type.
fn hostile_value(kind: Kind) -> BoxedStrategy<String> {
    let typed = match kind {
        Kind::Text(valid) => json_string(valid),
        Kind::TextList(valid) => prop::collection::vec(json_string(valid), 0..8)
            .prop_map(|v| format!("[{}]", v.join(",")))
            .boxed(),
        Kind::Int(..) => json_number(),
        Kind::Bool => json_any(),
        Kind::Discount => (
            json_string(&["percent", "amount", "Percent", ""]),
            json_number(),
        )
            .prop_map(|(k, v)| format!(r#"{{"kind":{k},"value":{v}}}"#))
            .boxed(),
        Kind::NewPhone => json_string(PHONES),
    };
    prop_oneof![3 => typed, 1 => json_any()].boxed()
}

/// Mostly an object of the endpoint's fields, valid but for up to two hostile ones; else an
/// object of the endpoint's field names (and others) with values of any type; else not an
/// object, or not JSON at all.
fn json_body(fields: Vec<Field>) -> BoxedStrategy<Vec<u8>> {
    let n = fields.len();
    let members: Vec<BoxedStrategy<(String, String, bool)>> = fields
        .iter()
        .map(|f| {
            (
                valid_value(f.kind, f.optional),
                hostile_value(f.kind),
                prop::bool::weighted(if f.optional { 0.2 } else { 0.02 }),
            )
                .boxed()
        })
        .collect();
    let names: Vec<&'static str> = fields.iter().map(|f| f.name).collect();
    let names_for_mostly = names.clone();
    let mostly_valid =
        (members, prop::collection::vec(0..n, 0..=2)).prop_map(move |(values, hostile)| {
            let m: Vec<String> = values
                .into_iter()
                .enumerate()
                .filter(|(i, (_, _, omit))| !*omit || hostile.contains(i))
                .map(|(i, (valid, bad, _))| {
                    let v = if hostile.contains(&i) { bad } else { valid };
                    format!("\"{}\":{v}", names_for_mostly[i])
                })
                .collect();
            format!("{{{}}}", m.join(",")).into_bytes()
        });
    let any_typed = prop::collection::vec(
        (
            prop_oneof![
                4 => prop::sample::select(names).prop_map(String::from),
                1 => "[a-z_]{1,10}",
            ],
            json_any(),
        ),
        0..6,
    )
    .prop_map(|kv| {
        let m: Vec<String> = kv
            .into_iter()
            .map(|(k, v)| format!("{}:{v}", serde_json::to_string(&k).unwrap()))
            .collect();
        format!("{{{}}}", m.join(",")).into_bytes()
    });
    let not_an_object = prop_oneof![
        (1usize..4000).prop_map(|n| format!("{}{}", "[".repeat(n), "]".repeat(n)).into_bytes()),
        (1usize..400)
            .prop_map(|n| format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n)).into_bytes()),
        json_any().prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..64),
        prop::sample::select(vec![
            "",
            "{",
            "{\"name\":",
            "{\"name\":\"x\"",
            "{}}",
            "{} {}",
            "\u{feff}{}",
            "nul",
            "{\"name\":\"x\",\"name\":\"y\"}",
            "{\"a\":1e400}",
            "\"\\ud800\"",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
        Just(vec![b'{', b'"', 0xff, 0xfe, b'"', b':', b'1', b'}']),
        // Beyond the 64 KiB body limit.
        Just(format!("{{\"name\":\"{}\"}}", "🦀".repeat(17_000)).into_bytes()),
    ];
    prop_oneof![6 => mostly_valid, 3 => any_typed, 1 => not_an_object].boxed()
}

const UNITS: &[&str] = &["kg", "pcs", "liter", "ikat", "botol kecil"];
const CATEGORIES: &[&str] = &["sembako", "sayur-buah", "beras-palawija", "kopi-teh"];
const ROLES: &[&str] = &["member", "treasurer"];
const PHONES: &[&str] = &[
    "+6281301000003",
    "081301000003",
    "6281301000001",
    "+6281199990000",
    "+62",
    "+628",
];
const VILLAGES: &[&str] = &[A, B, "34", "34.02.15", "99.99.99.9999"];

fn product_fields(new: bool) -> Vec<Field> {
    let text = |name, valid| {
        if new {
            field(name, Kind::Text(valid))
        } else {
            optional(name, Kind::Text(valid))
        }
    };
    let mut f = vec![
        text("name", &["Beras Menthik", "Gula Semut"]),
        optional("description", Kind::Text(&["", "Panen minggu ini"])),
        text("category", CATEGORIES),
        text("unit", UNITS),
        if new {
            field("price_idr", Kind::Int(100, 5_000_000))
        } else {
            optional("price_idr", Kind::Int(100, 5_000_000))
        },
        optional("discount", Kind::Discount),
        optional("weight_grams", Kind::Int(1, 1_000_000)),
        optional("photo_urls", Kind::TextList(&["https://example.org/a.jpg"])),
        optional("certifications", Kind::TextList(&["halal", "pirt"])),
        optional("flagship", Kind::Bool),
        optional("status", Kind::Text(&["active", "inactive"])),
    ];
    if new {
        f.push(optional("stock", Kind::Int(0, 1000)));
    }
    f
}

/// One write: method, route (for grouping), path, headers, body.
#[derive(Debug, Clone)]
struct Write {
    method: reqwest::Method,
    route: &'static str,
    path: String,
    token: Option<String>,
    if_match: bool,
    content_type: Option<&'static str>,
    body: Vec<u8>,
}

struct Tokens {
    operator: String,
    admin: String,
}

fn write_request(ids: &Ids, tokens: &Tokens) -> BoxedStrategy<Write> {
    use reqwest::Method;
    let id = |real: &[Uuid]| -> BoxedStrategy<String> {
        prop_oneof![
            8 => prop::sample::select(real.to_vec()).prop_map(|u| u.to_string()),
            1 => any::<u128>().prop_map(|n| Uuid::from_u128(n).to_string()),
            1 => text().prop_map(|t| enc(&t)),
        ]
        .boxed()
    };
    let village = prop_oneof![
        8 => Just(A.to_string()),
        1 => prop::sample::select(VILLAGES.to_vec()).prop_map(String::from),
        1 => text().prop_map(|t| enc(&t)),
    ];
    let (shops, products) = (ids.shops.clone(), ids.products.clone());
    // (method, route, path, as the operator (else the admin), If-Match, body)
    type Endpoint = (Method, &'static str, String, bool, bool, Vec<u8>);
    let endpoint: BoxedStrategy<Endpoint> = prop_oneof![
        json_body(vec![
            field("phone", Kind::Text(&["+6281301000003", "081301000001"])),
            field("password", Kind::Text(&[fixtures::PASSWORD])),
            field("village_code", Kind::Text(&[A])),
        ])
        .prop_map(|b| {
            let route = "/api/v1/auth/login";
            (Method::POST, route, route.to_string(), false, false, b)
        }),
        (id(&shops), json_body(product_fields(true))).prop_map(|(s, b)| {
            let path = format!("/api/v1/shops/{s}/products");
            (
                Method::POST,
                "/api/v1/shops/{id}/products",
                path,
                true,
                false,
                b,
            )
        }),
        (id(&products), json_body(product_fields(false))).prop_map(|(p, b)| {
            let path = format!("/api/v1/products/{p}");
            (Method::PATCH, "/api/v1/products/{id}", path, true, true, b)
        }),
        (
            id(&products),
            json_body(vec![
                field("delta", Kind::Int(-3, 50)),
                field("reason", Kind::Text(&["restock", "stok opname"])),
            ])
        )
            .prop_map(|(p, b)| {
                let path = format!("/api/v1/products/{p}/stock-adjustments");
                (
                    Method::POST,
                    "/api/v1/products/{id}/stock-adjustments",
                    path,
                    true,
                    false,
                    b,
                )
            }),
        (
            village,
            json_body(vec![
                field("phone", Kind::NewPhone),
                field("name", Kind::Text(&["Warga Baru"])),
                optional("password", Kind::Text(&[fixtures::PASSWORD])),
                field("roles", Kind::TextList(ROLES)),
            ])
        )
            .prop_map(|(v, b)| {
                let path = format!("/api/v1/villages/{v}/members");
                (
                    Method::POST,
                    "/api/v1/villages/{code}/members",
                    path,
                    false,
                    false,
                    b,
                )
            }),
        (
            id(&shops),
            json_body(vec![
                optional("name", Kind::Text(&["Lapak Baru"])),
                optional("description", Kind::Text(&["Buka pagi"])),
                optional("delivery_fee_village_idr", Kind::Int(0, 10_000_000)),
                optional("delivery_fee_other_idr", Kind::Int(0, 10_000_000)),
                optional("pickup", Kind::Bool),
            ])
        )
            .prop_map(|(s, b)| {
                let path = format!("/api/v1/shops/{s}");
                (Method::PATCH, "/api/v1/shops/{id}", path, true, false, b)
            }),
    ]
    .boxed();
    let (operator, admin) = (tokens.operator.clone(), tokens.admin.clone());
    let auth = prop_oneof![
        18 => Just(Some(true)),
        1 => Just(None),
        1 => Just(Some(false)),
    ];
    let content_type = prop_oneof![
        18 => Just(Some("application/json")),
        1 => prop::sample::select(vec![
            Some("text/plain"), Some("application/json; charset=latin1"),
            Some("application/problem+json"), Some("multipart/form-data"), None,
        ]),
    ];
    (endpoint, auth, content_type)
        .prop_map(
            move |((method, route, path, as_operator, if_match, body), auth, content_type)| {
                let right = if as_operator { &operator } else { &admin };
                Write {
                    method,
                    route,
                    token: auth.map(|ok| {
                        if ok {
                            right.clone()
                        } else {
                            "garbage.token.x".into()
                        }
                    }),
                    path,
                    if_match,
                    content_type,
                    body,
                }
            },
        )
        .boxed()
}

/// Why an answer breaks the contract, if it does.
async fn violation(res: reqwest::Response) -> (u16, Option<String>) {
    let status = res.status().as_u16();
    let content_type = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = res.text().await.unwrap_or_default();
    let detail = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|b| b["detail"].as_str().map(str::to_string))
        .unwrap_or_else(|| body.chars().take(120).collect());
    let broken = if status >= 500 {
        Some(format!("{status}: {detail}"))
    } else if status >= 400 && !content_type.starts_with("application/problem+json") {
        Some(format!(
            "{status} with content type {content_type:?}: {detail}"
        ))
    } else {
        None
    };
    (status, broken)
}

fn excerpt(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    let short: String = s.chars().take(200).collect();
    format!(
        "{short:?}{}",
        if s.chars().count() > 200 { "…" } else { "" }
    )
}

async fn world_for_fuzzing(app: &TestApp) -> (Ids, Tokens) {
    let w = fixtures::world(app);
    let products: Vec<Uuid> = app.with_conn(|c| {
        (0..3)
            .map(|i| {
                fixtures::product(
                    c,
                    w.a.active_shop,
                    &w.a.operator,
                    A,
                    &format!("Gula Aren {i}"),
                    15_000,
                    10,
                )
            })
            .collect()
    });
    let tokens = Tokens {
        operator: app.login(&w.a.operator.phone, A).await,
        admin: app.login(&w.a.admin.phone, A).await,
    };
    let ids = Ids {
        shops: vec![w.a.active_shop, w.a.pending_shop, w.b.active_shop],
        products,
        networks: vec![w.network],
    };
    (ids, tokens)
}

/// Inputs that once broke (or are likeliest to break) a parser, sent on every run.
const FIXED_GETS: &[&str] = &[
    "/api/v1/products?updated_since=-5000-01-01T00:00:00Z",
    "/api/v1/products?updated_since=%2B275760-09-13T00:00:00Z",
    "/api/v1/products?updated_since=262143-12-31T23:59:59Z",
    "/api/v1/products?min_price=-9223372036854775808&max_price=9223372036854775807",
    "/api/v1/products?limit=9223372036854775807",
    "/api/v1/products?q=%00",
    "/api/v1/regions?level=32768",
    "/api/v1/regions?q=%00",
];

const FIXED_WRITES: &[(&str, &str)] = &[
    (
        "/api/v1/products/{id}/stock-adjustments",
        r#"{"delta":-9223372036854775808,"reason":"x"}"#,
    ),
    (
        "/api/v1/products/{id}/stock-adjustments",
        r#"{"delta":9223372036854775807,"reason":"x"}"#,
    ),
    (
        "/api/v1/products/{id}/stock-adjustments",
        r#"{"delta":2147483648,"reason":"x"}"#,
    ),
];

const GETS: usize = 300;
const WRITES: usize = 300;
const IN_FLIGHT: usize = 8;

/// Shortens a path or body for the report.
fn short(s: &str) -> String {
    let cut: String = s.chars().take(160).collect();
    if cut.len() < s.len() {
        format!("{cut}…")
    } else {
        cut
    }
}

/// Hostile query strings and bodies: every answer is below 500, and every 4xx is a problem
/// document. Failures are collected, grouped by route and answer, and reported together with
/// the seed that replays them.
#[actix_rt::test]
async fn hostile_input_never_gets_a_5xx() {
    use futures_util::StreamExt;
    // This is about parsing, not capacity: on a loaded 2-core CI machine (the whole suite runs
    // at once) a request may wait longer than the default 1.5 s for a pooled connection and get
    // an honest 503; give it room so only a real 5xx fails the test.
    let app = spawn_app_with(|c| c.db_connect_timeout_ms = 15_000).await;
    let (ids, tokens) = world_for_fuzzing(&app).await;
    let (mut runner, seed) = runner();
    let start = Instant::now();
    let gets = get_path(&ids);
    let writes = write_request(&ids, &tokens);
    // (route, what was sent, the request)
    let mut requests: Vec<(String, String, reqwest::RequestBuilder)> = Vec::new();
    for i in 0..GETS {
        let (route, path) = sample(&mut runner, &gets);
        let mut req = app.client.get(format!("{}{path}", app.base));
        // Signed in, `sort` defaults to `local`.
        if i % 2 == 0 {
            req = req.bearer_auth(&tokens.operator);
        }
        requests.push((format!("GET {route}"), format!("GET {}", short(&path)), req));
    }
    // Known hard cases first (and one valid request per route, so the coverage check at the
    // end never depends on chance), then random ones.
    for path in FIXED_GETS {
        let req = app.client.get(format!("{}{path}", app.base));
        let route = path.split('?').next().unwrap_or_default();
        requests.push((format!("GET {route}"), format!("GET {path}"), req));
    }
    for (route, path) in [
        ("/api/v1/products", "/api/v1/products?limit=5"),
        ("/api/v1/regions", "/api/v1/regions?q=bantul"),
        (
            "/api/v1/regions/{code}/children",
            "/api/v1/regions/34/children",
        ),
        ("/api/v1/villages", "/api/v1/villages"),
        ("/api/v1/networks", "/api/v1/networks"),
    ] {
        let req = app.client.get(format!("{}{path}", app.base));
        requests.push((format!("GET {route}"), format!("GET {path} (valid)"), req));
    }
    let product = ids.products[0];
    for (route, body) in FIXED_WRITES {
        let path = route.replace("{id}", &product.to_string());
        let req = app
            .client
            .post(format!("{}{path}", app.base))
            .bearer_auth(&tokens.operator)
            .header("content-type", "application/json")
            .body(*body);
        requests.push((format!("POST {route}"), format!("POST {path} {body}"), req));
    }
    // One valid request per write route, so the coverage check at the end never depends on
    // chance (about one run in ten drew no valid body for some route among its random ones).
    let (shop, product) = (ids.shops[0], ids.products[0]);
    let valid: [(reqwest::Method, &str, String, &str, serde_json::Value); 5] = [
        (
            reqwest::Method::POST,
            "/api/v1/shops/{id}/products",
            format!("/api/v1/shops/{shop}/products"),
            &tokens.operator,
            serde_json::json!({"name": "Beras Menthik", "category": CATEGORIES[0], "unit": "kg", "price_idr": 12_000}),
        ),
        (
            reqwest::Method::PATCH,
            "/api/v1/products/{id}",
            format!("/api/v1/products/{product}"),
            &tokens.operator,
            serde_json::json!({"description": "Panen minggu ini"}),
        ),
        (
            reqwest::Method::POST,
            "/api/v1/products/{id}/stock-adjustments",
            format!("/api/v1/products/{product}/stock-adjustments"),
            &tokens.operator,
            serde_json::json!({"delta": 1, "reason": "restock"}),
        ),
        (
            reqwest::Method::PATCH,
            "/api/v1/shops/{id}",
            format!("/api/v1/shops/{shop}"),
            &tokens.operator,
            serde_json::json!({"pickup": true}),
        ),
        (
            reqwest::Method::POST,
            "/api/v1/villages/{code}/members",
            format!("/api/v1/villages/{A}/members"),
            &tokens.admin,
            serde_json::json!({"phone": "081377712345", "name": "Warga Baru", "password": "sandi-baru-123", "roles": ["member"]}),
        ),
    ];
    for (method, route, path, token, body) in valid {
        requests.push((
            format!("{method} {route}"),
            format!("{method} {path} (valid)"),
            app.client
                .request(method, format!("{}{path}", app.base))
                .bearer_auth(token)
                .header("if-match", "*")
                .json(&body),
        ));
    }
    for _ in 0..WRITES {
        let w = sample(&mut runner, &writes);
        let mut req = app
            .client
            .request(w.method.clone(), format!("{}{}", app.base, w.path))
            .body(w.body.clone());
        if let Some(t) = &w.token {
            req = req.bearer_auth(t);
        }
        if w.if_match {
            req = req.header("if-match", "*");
        }
        if let Some(ct) = w.content_type {
            req = req.header("content-type", ct);
        }
        let what = format!(
            "{} {} ({:?}, token: {}) {}",
            w.method,
            short(&w.path),
            w.content_type,
            w.token.is_some(),
            excerpt(&w.body)
        );
        requests.push((format!("{} {}", w.method, w.route), what, req));
    }
    let answers: Vec<(String, String, u16, Option<String>)> = futures_util::stream::iter(requests)
        .map(|(route, what, req)| async move {
            let res = req
                .timeout(Duration::from_secs(20))
                .send()
                .await
                .unwrap_or_else(|e| panic!("{what}: no answer (seed {seed}): {e:?}"));
            let (status, broken) = violation(res).await;
            (route, what, status, broken)
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    let took = start.elapsed();
    // What the inputs reached, so a generator that only produces rejected junk shows.
    let mut statuses: std::collections::BTreeMap<(&str, u16), usize> = Default::default();
    for (route, _, status, _) in &answers {
        *statuses.entry((route, *status)).or_default() += 1;
    }
    println!("seed {seed}, {took:?}; answers by route and status:");
    for ((route, status), n) in &statuses {
        println!("  {route} {status}: {n}");
    }
    let mut failures: std::collections::BTreeMap<String, Vec<&str>> = Default::default();
    for (route, what, _, broken) in &answers {
        if let Some(b) = broken {
            failures
                .entry(format!("{route} → {}", short(b)))
                .or_default()
                .push(what);
        }
    }
    if !failures.is_empty() {
        let mut report = String::new();
        for (group, examples) in &failures {
            report.push_str(&format!("\n{group} ({} times), e.g.:\n", examples.len()));
            for e in examples.iter().take(3) {
                report.push_str(&format!("    {e}\n"));
            }
        }
        let n: usize = failures.values().map(Vec::len).sum();
        panic!(
            "{n} of {} answers break the contract (replay with ROBUSTNESS_SEED={seed}):{report}",
            GETS + WRITES
        );
    }
    // Every route must get through the parsers now and then, or it tests only the rejections.
    for route in statuses.keys().map(|(r, _)| *r) {
        let ok: usize = statuses
            .iter()
            .filter(|((r, s), _)| *r == route && (200..300).contains(s))
            .map(|(_, n)| n)
            .sum();
        assert!(ok > 0, "no {route} request succeeded: {statuses:?}");
    }
    assert!(took < Duration::from_secs(60), "took {took:?}");
}
