//! A catalogue of bad input over every operation of the OpenAPI document (issue 15).
//!
//! The operations come from `pasar::app::openapi()`, so a new route is covered by itself, and the
//! test fails until [`case_for`] says which caller, target and valid body it takes. Each
//! operation gets, derived from its documented parameters and request body:
//!
//! - body: malformed JSON, other top-level shapes, deep nesting, other content types, a body over
//!   the limit (413), unknown and duplicate members;
//! - every top-level body field: other types, `null`, numbers out of every range, strings with
//!   NUL, lone surrogates, RTL overrides, emoji, combining marks, 10,000 characters, SQL- and
//!   tsquery-looking text;
//! - every path parameter: not an id, `..`, `%00`, very long;
//! - query parameters: unknown ones, bad limits and cursors, hostile values of each one;
//! - headers: no or a bad token, bad `Idempotency-Key` and `If-Match`.
//!
//! Values that must be refused whatever the target (a string where a number goes, NUL, 10,000
//! characters…) go to the real target with an otherwise valid body, so they reach the
//! validators and the database. Values that may be valid (an emoji name, `0`, `null` for an
//! optional field, a search for `' OR 1=1 --`) go to a *ghost* target — a random id, a village
//! that is not onboarded, a product that does not exist — so a write must be refused there too.
//! Writes must all be answered 4xx; reads may answer 2xx to values that are valid searches but
//! never 5xx.
//!
//! Every 4xx must be `application/problem+json` with `type`, `title`, `status` and `detail`; and
//! nothing may be written: a fingerprint of the database (row count and a hash of the rows of
//! every table; the sum of the balances; products' versions and `updated_at`) is taken before and
//! after each operation's probes. Two tables are left out, on purpose:
//! - `login_attempts`: every refused login counts towards the rate limit (that is its job);
//! - `idempotency_keys`: a final refusal with its own type (`insufficient-funds`, `out-of-stock`)
//!   is stored so that a retry replays it (README, Idempotency-Key). Instead the test checks that
//!   every key stored during the catalogue is such a refusal.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::fixtures::{self, A, B};
use common::money;
use common::{TestApp, spawn_app_with};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use serde_json::{Map, Value, json};
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// The operations, as the OpenAPI document describes them.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    String,
    Integer,
    Boolean,
    Array,
    Object,
    Any,
}

#[derive(Debug, Clone)]
struct Field {
    name: String,
    kind: Kind,
    /// Of an array's items.
    items: Option<Kind>,
    required: bool,
    /// An enum, a uuid, a date: junk text is never valid there.
    strict_text: bool,
}

#[derive(Debug, Clone)]
struct Operation {
    method: String,
    route: String,
    path_params: Vec<String>,
    query: Vec<Field>,
    headers: Vec<String>,
    body: Option<Vec<Field>>,
    secured: bool,
}

impl Operation {
    fn name(&self) -> String {
        format!("{} {}", self.method, self.route)
    }
    fn is_read(&self) -> bool {
        self.method == "GET"
    }
    fn has_header(&self, h: &str) -> bool {
        self.headers.iter().any(|x| x.eq_ignore_ascii_case(h))
    }
}

fn resolve<'a>(doc: &'a Value, s: &'a Value) -> &'a Value {
    match s.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r.rsplit('/').next().unwrap_or_default();
            &doc["components"]["schemas"][name]
        }
        None => s,
    }
}

/// The kind of a (property) schema, and whether junk text is never valid for it.
fn kind_of(doc: &Value, s: &Value) -> (Kind, Option<Kind>, bool) {
    // `oneOf: [{$ref}, {type: null}]` (an optional object or enum).
    if let Some(alts) = s
        .get("oneOf")
        .or_else(|| s.get("allOf"))
        .and_then(Value::as_array)
        && let Some(real) = alts.iter().find(|a| a.get("type") != Some(&json!("null")))
    {
        return kind_of(doc, real);
    }
    let s = resolve(doc, s);
    let ty = match &s["type"] {
        Value::String(t) => t.clone(),
        Value::Array(ts) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("")
            .to_string(),
        _ => String::new(),
    };
    let strict = s.get("enum").is_some()
        || matches!(
            s["format"].as_str(),
            Some("uuid" | "date" | "date-time" | "int32" | "int64")
        );
    let kind = match ty.as_str() {
        "string" => Kind::String,
        "integer" | "number" => Kind::Integer,
        "boolean" => Kind::Boolean,
        "array" => Kind::Array,
        "object" => Kind::Object,
        _ if s.get("properties").is_some() => Kind::Object,
        _ => Kind::Any,
    };
    let items = (kind == Kind::Array).then(|| kind_of(doc, &s["items"]).0);
    (
        kind,
        items,
        strict || matches!(kind, Kind::Integer | Kind::Boolean),
    )
}

fn operations() -> Vec<Operation> {
    let doc = serde_json::to_value(pasar::app::openapi()).expect("the document serializes");
    let mut ops = Vec::new();
    for (route, item) in doc["paths"].as_object().expect("paths") {
        for method in ["get", "post", "put", "patch", "delete"] {
            let Some(op) = item.get(method) else { continue };
            let mut path_params = Vec::new();
            let mut query = Vec::new();
            let mut headers = Vec::new();
            for p in op["parameters"].as_array().into_iter().flatten() {
                let name = p["name"].as_str().unwrap_or_default().to_string();
                match p["in"].as_str() {
                    Some("path") => path_params.push(name),
                    Some("header") => headers.push(name),
                    Some("query") => {
                        let (kind, items, strict_text) = kind_of(&doc, &p["schema"]);
                        query.push(Field {
                            name,
                            kind,
                            items,
                            required: p["required"] == json!(true),
                            strict_text,
                        });
                    }
                    _ => {}
                }
            }
            let body = op["requestBody"]["content"]["application/json"]["schema"].clone();
            let body = (!body.is_null()).then(|| {
                let s = resolve(&doc, &body);
                let required: BTreeSet<&str> = s["required"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                s["properties"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(name, ps)| {
                        let (kind, items, strict_text) = kind_of(&doc, ps);
                        Field {
                            name: name.clone(),
                            kind,
                            items,
                            required: required.contains(name.as_str()),
                            strict_text,
                        }
                    })
                    .collect()
            });
            ops.push(Operation {
                method: method.to_uppercase(),
                route: route.clone(),
                path_params,
                query,
                headers,
                body,
                secured: op
                    .get("security")
                    .and_then(Value::as_array)
                    .is_some_and(|s| !s.is_empty()),
            });
        }
    }
    ops
}

// ---------------------------------------------------------------------------------------------
// The world the probes aim at.

struct Tokens {
    platform: String,
    admin: String,
    treasurer: String,
    operator: String,
    member: String,
    /// Village B's member: buys from village A's shop, owns the orders.
    buyer: String,
    /// A member of A kept for `POST /me/password`.
    changer: String,
}

struct Fx {
    w: fixtures::World,
    t: Tokens,
    product: Uuid,
    programme: Uuid,
    member_wallet: Uuid,
    placed: Uuid,
    accepted: Uuid,
    shipped: Uuid,
    disputed: Uuid,
    /// A region of DIY that is not onboarded.
    ghost_village: &'static str,
}

const GHOST_VILLAGE: &str = "34.02.15.2003"; // Bangunharjo: a region, no village

async fn world(app: &TestApp) -> Fx {
    let w = fixtures::world(app);
    let product = app.with_conn(|c| {
        fixtures::product(
            c,
            w.a.active_shop,
            &w.a.operator,
            A,
            "Beras Menthik",
            12_000,
            50,
        )
    });
    let changer = app.with_conn(|c| money::member(c, &w.platform, A, "+6285799990001"));
    let (platform, admin, treasurer, operator, member, buyer, changer, b_treasurer) = tokio::join!(
        app.login_platform(&w.platform.phone),
        app.login(&w.a.admin.phone, A),
        app.login(&w.a.treasurer.phone, A),
        app.login(&w.a.operator.phone, A),
        app.login(&w.a.member.phone, A),
        app.login(&w.b.member.phone, B),
        app.login(&changer.phone, A),
        app.login(&w.b.treasurer.phone, B),
    );
    let t = Tokens {
        platform,
        admin,
        treasurer,
        operator,
        member,
        buyer,
        changer,
    };
    let wallet_id = |v: Value| v["id"].as_str().unwrap().parse::<Uuid>().unwrap();
    let member_wallet = wallet_id(money::wallet_of(app, &t.member).await);
    let buyer_wallet = wallet_id(money::wallet_of(app, &t.buyer).await);
    money::topup(app, &b_treasurer, &buyer_wallet.to_string(), 500_000).await;
    let mut orders = Vec::new();
    for _ in 0..4 {
        let r = money::checkout(app, &t.buyer, &money::pickup(&[(product, 1)]))
            .await
            .expect(201);
        orders.push(
            r["orders"][0]["id"]
                .as_str()
                .unwrap()
                .parse::<Uuid>()
                .unwrap(),
        );
    }
    let (placed, accepted, shipped, disputed) = (orders[0], orders[1], orders[2], orders[3]);
    for o in [accepted, shipped, disputed] {
        money::act(app, &t.operator, &o.to_string(), "accept", json!({}))
            .await
            .expect(200);
    }
    for o in [shipped, disputed] {
        money::act(
            app,
            &t.operator,
            &o.to_string(),
            "ship",
            json!({"courier_name": "Kurir Desa", "courier_phone": "081234567890"}),
        )
        .await
        .expect(200);
    }
    money::act(
        app,
        &t.buyer,
        &disputed.to_string(),
        "dispute",
        json!({"reason": "Barang belum sampai"}),
    )
    .await
    .expect(200);
    let today = pasar::reports::today();
    let programme = app
        .post(&format!("/api/v1/villages/{A}/aid-programmes"))
        .token(&t.admin)
        .json(&json!({
            "name": "BLT Dana Desa Uji", "kind": "blt_dana_desa", "scope": "village",
            "starts_on": today.to_string(), "ends_on": (today + chrono::Duration::days(30)).to_string(),
        }))
        .send()
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    Fx {
        w,
        t,
        product,
        programme,
        member_wallet,
        placed,
        accepted,
        shipped,
        disputed,
        ghost_village: GHOST_VILLAGE,
    }
}

#[derive(Debug, Clone, Copy)]
enum Who {
    Nobody,
    Platform,
    Admin,
    Treasurer,
    Operator,
    Member,
    Buyer,
    Changer,
}

impl Who {
    fn token(self, t: &Tokens) -> Option<String> {
        Some(
            match self {
                Who::Nobody => return None,
                Who::Platform => &t.platform,
                Who::Admin => &t.admin,
                Who::Treasurer => &t.treasurer,
                Who::Operator => &t.operator,
                Who::Member => &t.member,
                Who::Buyer => &t.buyer,
                Who::Changer => &t.changer,
            }
            .clone(),
        )
    }
}

/// How one operation is probed: by whom, at which real objects (path parameters), with which
/// valid body; and, for operations without path parameters, the body of a ghost request (one
/// that is refused whatever its other fields hold).
struct Case {
    who: Who,
    params: Vec<(&'static str, String)>,
    body: Option<Value>,
    ghost_body: Option<Value>,
    /// Any text is a valid value of its string fields (`POST /auth/logout` of an unknown token
    /// is a 204 by design: logout is idempotent and reveals nothing). Those probes may succeed;
    /// they still must not write.
    any_text: bool,
}

fn case(who: Who, params: &[(&'static str, String)], body: Option<Value>) -> Case {
    Case {
        who,
        params: params.to_vec(),
        body,
        ghost_body: None,
        any_text: false,
    }
}

/// The case of every operation; `None` for one nobody has written yet (the test fails).
fn case_for(op: &Operation, fx: &Fx) -> Option<Case> {
    use Who::*;
    let s = |u: Uuid| u.to_string();
    let (w, a) = (&fx.w, &fx.w.a);
    let id = |u: Uuid| vec![("id", s(u))];
    let code = vec![("code", A.to_string())];
    let today = pasar::reports::today();
    let later = today + chrono::Duration::days(30);
    let c = match (op.method.as_str(), op.route.as_str()) {
        ("GET", "/healthz" | "/readyz" | "/metrics" | "/api/v1/categories") => {
            case(Nobody, &[], None)
        }
        ("GET", "/api/v1/aid-programmes/{id}" | "/api/v1/aid-programmes/{id}/recipients") => {
            case(Treasurer, &id(fx.programme), None)
        }
        ("POST", "/api/v1/aid-programmes/{id}/close") => case(Admin, &id(fx.programme), None),
        ("POST", "/api/v1/aid-programmes/{id}/disbursements") => case(
            Treasurer,
            &id(fx.programme),
            Some(
                json!({"recipients": [{"user_id": a.member.id, "amount_idr": 1000}], "note": "Tahap I"}),
            ),
        ),
        ("POST", "/api/v1/aid-programmes/{id}/funding") => case(
            Treasurer,
            &id(fx.programme),
            Some(json!({"amount_idr": 1000, "note": "APBDes"})),
        ),
        ("POST", "/api/v1/auth/login") => Case {
            ghost_body: Some(
                json!({"phone": "081299998888", "password": fixtures::PASSWORD, "village_code": A}),
            ),
            ..case(
                Nobody,
                &[],
                Some(
                    json!({"phone": a.member.phone, "password": fixtures::PASSWORD, "village_code": A}),
                ),
            )
        },
        ("POST", "/api/v1/auth/logout") => Case {
            ghost_body: Some(json!({"refresh_token": "bukan-token"})),
            any_text: true,
            ..case(Nobody, &[], Some(json!({"refresh_token": "bukan-token"})))
        },
        ("POST", "/api/v1/auth/refresh") => Case {
            ghost_body: Some(json!({"refresh_token": "bukan-token"})),
            ..case(Nobody, &[], Some(json!({"refresh_token": "bukan-token"})))
        },
        ("POST", "/api/v1/auth/password-reset") => {
            let body = json!({"phone": a.member.phone, "code": "12345678", "new_password": "sandi-baru-123"});
            Case {
                ghost_body: Some(body.clone()),
                ..case(Nobody, &[], Some(body))
            }
        }
        ("GET", "/api/v1/bumdes/{id}") => case(Nobody, &id(a.bumdes), None),
        (
            "POST",
            "/api/v1/bumdes/{id}/partners/{code}/accept"
            | "/api/v1/bumdes/{id}/partners/{code}/decline",
        ) => case(Admin, &[("id", s(a.bumdes)), ("code", A.into())], None),
        ("POST", "/api/v1/bumdes/{id}/units") => case(
            Admin,
            &id(a.bumdes),
            Some(json!({"name": "Unit Simpan Pinjam", "sector": "jasa"})),
        ),
        ("POST", "/api/v1/checkouts") => Case {
            ghost_body: Some(json!({
                "lines": [{"product_id": Uuid::now_v7(), "quantity": 1}],
                "delivery": {"method": "pickup"}, "note": "x",
            })),
            ..case(
                Buyer,
                &[],
                Some(json!({
                    "lines": [{"product_id": fx.product, "quantity": 1}],
                    "delivery": {"method": "pickup"}, "note": "Diambil sore",
                })),
            )
        },
        ("GET", "/api/v1/me" | "/api/v1/me/aid" | "/api/v1/wallets/me") => case(Member, &[], None),
        ("POST", "/api/v1/me/password") => Case {
            ghost_body: Some(
                json!({"current_password": "bukan-sandinya", "new_password": "sandi-baru-1234"}),
            ),
            ..case(
                Changer,
                &[],
                Some(
                    json!({"current_password": fixtures::PASSWORD, "new_password": "sandi-baru-1234"}),
                ),
            )
        },
        ("GET", "/api/v1/networks") => case(Nobody, &[], None),
        ("POST", "/api/v1/networks") => Case {
            ghost_body: Some(
                json!({"name": "Jaringan Hantu", "village_codes": [fx.ghost_village], "network_fee_bps": 0}),
            ),
            ..case(
                Platform,
                &[],
                Some(
                    json!({"name": "Jaringan Baru", "village_codes": [A, B], "network_fee_bps": 100}),
                ),
            )
        },
        ("GET", "/api/v1/networks/{id}") => case(Nobody, &id(w.network), None),
        ("PATCH", "/api/v1/networks/{id}") => case(
            Platform,
            &id(w.network),
            Some(json!({"name": "Jaringan Uji Baru"})),
        ),
        ("GET", "/api/v1/networks/{id}/circulation") => case(Admin, &id(w.network), None),
        ("GET", "/api/v1/orders") => case(Buyer, &[], None),
        ("GET", "/api/v1/orders/{id}") => case(Buyer, &id(fx.placed), None),
        ("POST", "/api/v1/orders/{id}/accept") => case(Operator, &id(fx.placed), None),
        ("POST", "/api/v1/orders/{id}/cancel") => case(
            Buyer,
            &id(fx.placed),
            Some(json!({"reason": "Salah pesan"})),
        ),
        ("POST", "/api/v1/orders/{id}/reject") => case(
            Operator,
            &id(fx.placed),
            Some(json!({"reason": "Stok kosong"})),
        ),
        ("POST", "/api/v1/orders/{id}/confirm") => case(Buyer, &id(fx.shipped), None),
        ("POST", "/api/v1/orders/{id}/dispute") => case(
            Buyer,
            &id(fx.shipped),
            Some(json!({"reason": "Barang rusak"})),
        ),
        ("POST", "/api/v1/orders/{id}/resolve") => case(
            Admin,
            &id(fx.disputed),
            Some(json!({"outcome": "release", "note": "Sudah sampai"})),
        ),
        ("POST", "/api/v1/orders/{id}/ship") => case(
            Operator,
            &id(fx.accepted),
            Some(
                json!({"courier_name": "Kurir Desa", "courier_phone": "081234567890", "note": "Sore"}),
            ),
        ),
        ("GET", "/api/v1/products") => case(Member, &[], None),
        ("GET", "/api/v1/products/{id}") => case(Nobody, &id(fx.product), None),
        ("DELETE", "/api/v1/products/{id}") => case(Operator, &id(fx.product), None),
        ("PATCH", "/api/v1/products/{id}") => case(
            Operator,
            &id(fx.product),
            Some(json!({"description": "Panen minggu ini"})),
        ),
        ("GET", "/api/v1/products/{id}/stock-adjustments") => case(Operator, &id(fx.product), None),
        ("POST", "/api/v1/products/{id}/stock-adjustments") => case(
            Operator,
            &id(fx.product),
            Some(json!({"delta": 1, "reason": "restock"})),
        ),
        ("GET", "/api/v1/regions") => case(Nobody, &[], None),
        ("GET", "/api/v1/regions/{code}" | "/api/v1/regions/{code}/children") => {
            case(Nobody, &code, None)
        }
        ("GET", "/api/v1/shops/{id}") => case(Nobody, &id(a.active_shop), None),
        ("PATCH", "/api/v1/shops/{id}") => case(
            Operator,
            &id(a.active_shop),
            Some(json!({"pickup": true, "delivery_fee_village_idr": 5000})),
        ),
        ("POST", "/api/v1/shops/{id}/approve") => case(Admin, &id(a.pending_shop), None),
        (
            "GET",
            "/api/v1/shops/{id}/operators"
            | "/api/v1/shops/{id}/products"
            | "/api/v1/shops/{id}/wallet",
        ) => case(Operator, &id(a.active_shop), None),
        ("POST", "/api/v1/shops/{id}/operators") => case(
            Admin,
            &id(a.active_shop),
            Some(json!({"phone": a.member.phone})),
        ),
        ("DELETE", "/api/v1/shops/{id}/operators/{user_id}") => case(
            Admin,
            &[("id", s(a.active_shop)), ("user_id", s(a.operator.id))],
            None,
        ),
        ("POST", "/api/v1/shops/{id}/products") => case(
            Operator,
            &id(a.active_shop),
            Some(json!({
                "name": "Gula Aren", "category": "lainnya", "unit": "kg", "price_idr": 25_000,
                "description": "Asli", "stock": 5, "photo_urls": [], "certifications": [],
                "flagship": false,
            })),
        ),
        ("POST", "/api/v1/shops/{id}/reject") => case(
            Admin,
            &id(a.pending_shop),
            Some(json!({"reason": "Berkas belum lengkap"})),
        ),
        ("POST", "/api/v1/shops/{id}/suspend") => case(
            Admin,
            &id(a.active_shop),
            Some(json!({"reason": "Keluhan pembeli"})),
        ),
        ("GET", "/api/v1/villages") => case(Nobody, &[], None),
        ("POST", "/api/v1/villages") => Case {
            ghost_body: Some(json!({"code": "99.99.99.9999"})),
            ..case(Platform, &[], Some(json!({"code": fx.ghost_village})))
        },
        (
            "GET",
            "/api/v1/villages/{code}"
            | "/api/v1/villages/{code}/bumdes"
            | "/api/v1/villages/{code}/shops",
        ) => case(Nobody, &code, None),
        ("PATCH", "/api/v1/villages/{code}") => case(
            Admin,
            &code,
            Some(json!({"village_share_bps": 150, "idm_status": "maju"})),
        ),
        (
            "GET",
            "/api/v1/villages/{code}/aid-programmes"
            | "/api/v1/villages/{code}/audit"
            | "/api/v1/villages/{code}/dashboard"
            | "/api/v1/villages/{code}/members",
        ) => case(Admin, &code, None),
        ("POST", "/api/v1/villages/{code}/aid-programmes") => case(
            Admin,
            &code,
            Some(json!({
                "name": "BLT Tahap II", "kind": "blt_dana_desa", "scope": "village",
                "starts_on": today.to_string(), "ends_on": later.to_string(),
            })),
        ),
        ("POST", "/api/v1/villages/{code}/bumdes") => case(
            Admin,
            &code,
            Some(
                json!({"name": "BUMDes Kedua", "kind": "desa", "legal_number": "AHU-1", "partner_village_codes": []}),
            ),
        ),
        ("POST", "/api/v1/villages/{code}/members") => case(
            Admin,
            &code,
            Some(
                json!({"phone": "081377700001", "name": "Warga Baru", "password": "sandi-baru-123", "roles": ["member"]}),
            ),
        ),
        ("DELETE", "/api/v1/villages/{code}/members/{user_id}") => case(
            Admin,
            &[("code", A.into()), ("user_id", s(a.member.id))],
            None,
        ),
        ("PATCH", "/api/v1/villages/{code}/members/{user_id}") => case(
            Admin,
            &[("code", A.into()), ("user_id", s(a.member.id))],
            Some(json!({"roles": ["member", "treasurer"]})),
        ),
        ("POST", "/api/v1/villages/{code}/members/{user_id}/password-reset") => case(
            Admin,
            &[("code", A.into()), ("user_id", s(a.member.id))],
            None,
        ),
        ("POST", "/api/v1/villages/{code}/shops") => case(
            Member,
            &code,
            Some(json!({"name": "Lapak Warga", "kind": "umkm", "description": "Jajanan"})),
        ),
        ("POST", "/api/v1/wallets/{id}/topups") => case(
            Treasurer,
            &id(fx.member_wallet),
            Some(json!({"amount_idr": 10_000, "note": "setoran tunai"})),
        ),
        ("GET", "/api/v1/wallets/{id}/transactions") => {
            case(Treasurer, &id(fx.member_wallet), None)
        }
        ("POST", "/api/v1/wallets/{id}/withdrawals") => case(
            Treasurer,
            &id(fx.member_wallet),
            Some(json!({"amount_idr": 1_000, "note": "tarik tunai"})),
        ),
        _ => return None,
    };
    Some(c)
}

// ---------------------------------------------------------------------------------------------
// Probes.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// 4xx problem.
    Refused,
    /// 413 problem.
    TooLarge,
    /// Below 500; a 4xx is a problem (a read with a value that may be a valid search).
    NoServerError,
}

struct Probe {
    label: String,
    method: String,
    /// Path and query, as sent (already percent-encoded where wanted).
    target: String,
    token: Option<String>,
    headers: Vec<(String, Vec<u8>)>,
    content_type: Option<String>,
    body: Option<Vec<u8>>,
    expect: Expect,
}

const LONG: usize = 10_000;
/// A body this much over the limit is refused before it is parsed.
const BODY_PAD: usize = pasar::http::extract::JSON_LIMIT + 1024;

/// JSON text of string values that no text field may take (`raw`: as written in the body).
fn refused_strings() -> Vec<(&'static str, String)> {
    vec![
        ("NUL", r#""Beras\u0000Menthik""#.into()),
        ("raw NUL", "\"Beras\u{0}Menthik\"".into()),
        ("lone surrogate", r#""Beras \ud800 Menthik""#.into()),
        ("lone low surrogate", r#""\udc00""#.into()),
        ("10k ascii", format!("\"{}\"", "a".repeat(LONG))),
        ("10k emoji", format!("\"{}\"", "🦀".repeat(LONG))),
        (
            "10k combining",
            format!("\"{}\"", "e\u{301}".repeat(LONG / 2)),
        ),
        ("10k RTL", format!("\"{}\"", "\u{202e}".repeat(LONG))),
    ]
}

/// String values that may be valid somewhere: sent to ghost targets (and as query values).
fn odd_strings() -> Vec<(&'static str, &'static str)> {
    vec![
        ("empty", ""),
        ("RTL override", "\u{202e}Beras"),
        ("emoji", "Beras 🦀🍚"),
        ("combining", "Bere\u{301}s"),
        ("sql", "' OR 1=1 --"),
        ("tsquery", "a & !b | (c:*"),
        ("backslash", "\\"),
        ("like", "%_"),
    ]
}

fn wrong_types(kind: Kind) -> Vec<(&'static str, String)> {
    let v = |l: &'static str, s: &str| (l, s.to_string());
    match kind {
        Kind::String => vec![
            v("number", "123"),
            v("object", "{}"),
            v("array", "[\"x\"]"),
            v("bool", "true"),
        ],
        Kind::Integer => vec![
            v("string", "\"1\""),
            v("object", "{}"),
            v("array", "[1]"),
            v("bool", "true"),
            v("1.5", "1.5"),
            v("1e309", "1e309"),
            v("-1e309", "-1e309"),
            v("i64::MAX+1", "9223372036854775808"),
            v("i64::MIN-1", "-9223372036854775809"),
            v("u128", "340282366920938463463374607431768211456"),
        ],
        Kind::Boolean => vec![v("string", "\"true\""), v("number", "1"), v("object", "{}")],
        Kind::Array => vec![v("object", "{}"), v("string", "\"x\""), v("number", "1")],
        Kind::Object => vec![
            v("array", "[]"),
            v("string", "\"x\""),
            v("number", "1"),
            v("empty", "{}"),
        ],
        Kind::Any => vec![],
    }
}

/// `{…}` of `base` with `field` set to the raw JSON text `raw` (added when absent).
fn with_field(base: &Map<String, Value>, field: &str, raw: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut seen = false;
    for (k, v) in base {
        if k == field {
            seen = true;
            parts.push(format!("{}:{raw}", json!(k)));
        } else {
            parts.push(format!("{}:{v}", json!(k)));
        }
    }
    if !seen {
        parts.push(format!("{}:{raw}", json!(field)));
    }
    format!("{{{}}}", parts.join(","))
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn fill(route: &str, params: &[(&str, String)]) -> String {
    let mut p = route.to_string();
    for (k, v) in params {
        p = p.replace(&format!("{{{k}}}"), v);
    }
    p
}

/// Every probe of one operation.
fn probes(op: &Operation, case: &Case, fx: &Fx) -> Vec<Probe> {
    let token = case.who.token(&fx.t);
    let real_path = fill(&op.route, &case.params);
    let ghost_params: Vec<(&str, String)> = op
        .path_params
        .iter()
        .map(|p| {
            let v = if p == "code" {
                GHOST_VILLAGE.to_string()
            } else {
                Uuid::now_v7().to_string()
            };
            (p.as_str(), v)
        })
        .collect();
    let ghost_path = fill(&op.route, &ghost_params);
    // Where values that may be valid go: a ghost object, or a body refused by its other fields.
    let (ghost_path, ghost_body) = if !op.path_params.is_empty() {
        (ghost_path, case.body.clone())
    } else if case.ghost_body.is_some() || op.is_read() {
        (ghost_path, case.ghost_body.clone())
    } else {
        panic!(
            "{}: a write without path parameters needs a ghost body",
            op.name()
        )
    };
    let base_headers = || -> Vec<(String, Vec<u8>)> {
        let mut h = Vec::new();
        if op.has_header("Idempotency-Key") {
            h.push((
                "idempotency-key".into(),
                Uuid::now_v7().to_string().into_bytes(),
            ));
        }
        if op.has_header("If-Match") {
            h.push(("if-match".into(), b"*".to_vec()));
        }
        h
    };
    let json_ct = Some("application/json".to_string());
    let write = !op.is_read();
    let mut out = Vec::new();
    let mut push = |label: String,
                    target: String,
                    headers: Vec<(String, Vec<u8>)>,
                    content_type: Option<String>,
                    body: Option<Vec<u8>>,
                    expect: Expect,
                    token: Option<String>| {
        out.push(Probe {
            label,
            method: op.method.clone(),
            target,
            token,
            headers,
            content_type,
            body,
            expect,
        });
    };
    let real_body_text = case.body.as_ref().map(|b| b.to_string());
    let ghost_body_text = ghost_body.as_ref().map(|b| b.to_string());

    // The body as a whole.
    if write {
        // A body that must be refused goes to the real target when the operation reads one,
        // else (its handler may ignore the body) to the ghost.
        let (path, base) = match &real_body_text {
            Some(b) => (real_path.clone(), b.clone()),
            None => (ghost_path.clone(), "{}".to_string()),
        };
        let deep_arrays = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let deep_objects = format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
        let mut bodies: Vec<(&str, Vec<u8>)> = vec![
            ("truncated", base.as_bytes()[..base.len() - 1].to_vec()),
            ("trailing garbage", format!("{base}x").into_bytes()),
            ("trailing brace", format!("{base}}}").into_bytes()),
            ("two documents", format!("{base}{base}").into_bytes()),
            ("{\"a\":}", b"{\"a\":}".to_vec()),
            ("open brace", b"{".to_vec()),
            ("array", b"[]".to_vec()),
            ("null", b"null".to_vec()),
            ("string", b"\"x\"".to_vec()),
            ("number", b"1e309".to_vec()),
            ("deep arrays", deep_arrays.into_bytes()),
            ("deep objects", deep_objects.into_bytes()),
            ("invalid utf-8", b"{\"name\":\"\xff\xfe\"}".to_vec()),
            (
                "utf-16 BOM",
                [&b"\xef\xbb\xbf"[..], base.as_bytes()].concat(),
            ),
        ];
        if let Some(Value::Object(m)) = &case.body {
            bodies.push((
                "unknown field",
                with_field(m, "zz_unknown", "1").into_bytes(),
            ));
            if let Some((k, v)) = m.iter().next() {
                let dup = format!("{{{}:{v},{}", json!(k), &base[1..]);
                bodies.push(("duplicate field", dup.into_bytes()));
            }
        }
        for (label, body) in bodies {
            push(
                format!("body {label}"),
                path.clone(),
                base_headers(),
                json_ct.clone(),
                Some(body),
                Expect::Refused,
                token.clone(),
            );
        }
        for (label, ct) in [
            ("text/plain", Some("text/plain")),
            ("form", Some("application/x-www-form-urlencoded")),
            ("no content type", None),
        ] {
            push(
                format!("content type {label}"),
                path.clone(),
                base_headers(),
                ct.map(str::to_string),
                Some(base.clone().into_bytes()),
                Expect::Refused,
                token.clone(),
            );
        }
        let padded = format!("{}{base}", " ".repeat(BODY_PAD));
        let big_string = format!("{{\"zz\":\"{}\"}}", "a".repeat(BODY_PAD));
        for (label, body) in [("padded", padded), ("big string", big_string)] {
            push(
                format!("body over the limit ({label})"),
                path.clone(),
                base_headers(),
                json_ct.clone(),
                Some(body.into_bytes()),
                // Only a handler that reads the body answers 413; one that takes none does not
                // read it, and refuses the ghost for its own reasons.
                if op.body.is_some() {
                    Expect::TooLarge
                } else {
                    Expect::Refused
                },
                token.clone(),
            );
        }
        // No body at all: valid for actions whose body is optional, so only at the ghost.
        push(
            "no body".into(),
            ghost_path.clone(),
            base_headers(),
            None,
            None,
            Expect::Refused,
            token.clone(),
        );
    }

    // Each top-level field of the body.
    if let (Some(fields), Some(Value::Object(real)), Some(ghost)) =
        (&op.body, &case.body, &ghost_body)
    {
        let ghost = ghost.as_object().expect("a ghost body is an object");
        for f in fields {
            let mut refused: Vec<(String, String)> = wrong_types(f.kind)
                .into_iter()
                .map(|(l, v)| (l.to_string(), v))
                .collect();
            if f.required {
                refused.push(("null".into(), "null".into()));
            }
            let mut odd: Vec<(String, String)> = Vec::new();
            if !f.required {
                odd.push(("null".into(), "null".into()));
            }
            match f.kind {
                Kind::String => {
                    refused.extend(
                        refused_strings()
                            .into_iter()
                            .map(|(l, v)| (l.to_string(), v)),
                    );
                    odd.extend(
                        odd_strings()
                            .into_iter()
                            .map(|(l, v)| (l.to_string(), json!(v).to_string())),
                    );
                }
                Kind::Integer => {
                    refused.push(("i64::MAX".into(), i64::MAX.to_string()));
                    refused.push(("i64::MIN".into(), i64::MIN.to_string()));
                    odd.push(("0".into(), "0".into()));
                    odd.push(("-1".into(), "-1".into()));
                    odd.push(("i32::MAX+1".into(), "2147483648".into()));
                }
                Kind::Array => {
                    odd.push(("empty".into(), "[]".into()));
                    let items: Vec<(String, String)> = match f.items {
                        Some(Kind::String) => refused_strings()
                            .into_iter()
                            .take(5)
                            .map(|(l, v)| (format!("[{l}]"), format!("[{v}]")))
                            .chain([("[number]".to_string(), "[1]".to_string())])
                            .collect(),
                        _ => vec![
                            ("[number]".into(), "[1]".into()),
                            ("[string]".into(), "[\"x\"]".into()),
                            ("[array]".into(), "[[]]".into()),
                        ],
                    };
                    refused.extend(items);
                    refused.push(("[null]".into(), "[null]".into()));
                    refused.push((
                        "10k items".into(),
                        format!("[{}]", vec!["null"; LONG].join(",")),
                    ));
                    if f.items == Some(Kind::String) {
                        odd.extend(
                            odd_strings()
                                .into_iter()
                                .map(|(l, v)| (format!("[{l}]"), json!([v]).to_string())),
                        );
                    }
                }
                Kind::Object => {
                    refused.push(("unknown member".into(), "{\"zz_unknown\":1}".into()));
                }
                Kind::Boolean | Kind::Any => {}
            }
            let text = f.kind == Kind::String && case.any_text;
            let expect = if text {
                Expect::NoServerError
            } else {
                Expect::Refused
            };
            for (label, raw) in refused {
                let expect = if raw.starts_with('"') {
                    expect
                } else {
                    Expect::Refused
                };
                push(
                    format!("field {} {label}", f.name),
                    real_path.clone(),
                    base_headers(),
                    json_ct.clone(),
                    Some(with_field(real, &f.name, &raw).into_bytes()),
                    expect,
                    token.clone(),
                );
            }
            for (label, raw) in odd {
                push(
                    format!("field {} {label} (ghost)", f.name),
                    ghost_path.clone(),
                    base_headers(),
                    json_ct.clone(),
                    Some(with_field(ghost, &f.name, &raw).into_bytes()),
                    if raw.starts_with('"') {
                        expect
                    } else {
                        Expect::Refused
                    },
                    token.clone(),
                );
            }
        }
    }

    // Path parameters: each in turn, the others real.
    let body_for_path = real_body_text.clone().map(String::into_bytes);
    for p in &op.path_params {
        for (label, bad) in [
            ("not an id", "not-a-uuid".to_string()),
            ("dot dot", "..".to_string()),
            ("dot", ".".to_string()),
            ("encoded dot dot", "%2E%2E".to_string()),
            ("NUL", "%00".to_string()),
            ("invalid utf-8", "%FF%FE".to_string()),
            ("space", "%20".to_string()),
            ("sql", enc("' OR 1=1 --")),
            ("emoji", enc("🦀")),
            (
                "nil uuid+1",
                "00000000-0000-0000-0000-00000000000g".to_string(),
            ),
            ("long", "7".repeat(3_000)),
            ("encoded slash", "34%2F02".to_string()),
        ] {
            let mut params = case.params.clone();
            for (k, v) in params.iter_mut() {
                if k == p {
                    *v = bad.clone();
                }
            }
            push(
                format!("path {p} {label}"),
                fill(&op.route, &params),
                base_headers(),
                body_for_path
                    .as_ref()
                    .map(|_| "application/json".to_string()),
                body_for_path.clone(),
                Expect::Refused,
                token.clone(),
            );
        }
    }

    // Query parameters. Writes go to the ghost (their handlers may ignore the query).
    let (qpath, qbody) = if write {
        (
            ghost_path.clone(),
            ghost_body_text.clone().map(String::into_bytes),
        )
    } else {
        (real_path.clone(), None)
    };
    let declared: BTreeSet<&str> = op.query.iter().map(|f| f.name.as_str()).collect();
    let mut queries: Vec<(String, String, Expect)> = vec![(
        "unknown".into(),
        "zz_unknown=1".into(),
        if (declared.is_empty() && !write) || case.any_text {
            Expect::NoServerError
        } else {
            Expect::Refused
        },
    )];
    if !declared.is_empty() {
        queries.push(("garbage".into(), "%&==&%zz".into(), Expect::NoServerError));
    }
    if declared.contains("limit") {
        for v in [
            "-1",
            "0",
            "101",
            "1e9",
            "1000000000",
            "1.5",
            "abc",
            "",
            "%00",
            "9223372036854775808",
            "-9223372036854775809",
        ] {
            queries.push((format!("limit={v}"), format!("limit={v}"), Expect::Refused));
        }
        queries.push((
            "limit twice".into(),
            "limit=1&limit=2".into(),
            Expect::Refused,
        ));
    }
    if declared.contains("cursor") {
        let b = |s: &str| URL_SAFE_NO_PAD.encode(s);
        for (l, v) in [
            ("junk", "!!!".to_string()),
            ("NUL", "%00".to_string()),
            ("not json", b("nope")),
            ("empty array", b("[]")),
            ("empty object", b("{}")),
            ("null", b("null")),
            ("1e309", b("1e309")),
            ("NUL string", b(r#""\u0000""#)),
            (
                "deep",
                b(&format!("{}{}", "[".repeat(500), "]".repeat(500))),
            ),
            ("padding", "YQ==".to_string()),
            ("long", "A".repeat(3_000)),
        ] {
            queries.push((
                format!("cursor {l}"),
                format!("cursor={v}"),
                Expect::Refused,
            ));
        }
    }
    for f in &op.query {
        if f.name == "limit" || f.name == "cursor" {
            continue;
        }
        let mut values: Vec<(String, String)> = odd_strings()
            .into_iter()
            .map(|(l, v)| (l.to_string(), enc(v)))
            .collect();
        values.extend([
            ("NUL".to_string(), "%00".to_string()),
            ("invalid utf-8".into(), "%FF%FE".into()),
            ("long".into(), "a".repeat(3_000)),
            ("long emoji".into(), enc(&"🦀".repeat(500))),
        ]);
        let numbers = [
            ("-1", "-1"),
            ("0", "0"),
            ("i64::MAX", "9223372036854775807"),
            ("i64::MIN", "-9223372036854775808"),
            ("1e309", "1e309"),
            ("1.5", "1.5"),
        ];
        for (label, value) in values {
            // Junk text is never a valid enum, id, date, number or boolean.
            let expect = if write || (f.strict_text && label != "empty") {
                Expect::Refused
            } else {
                Expect::NoServerError
            };
            queries.push((
                format!("{} {label}", f.name),
                format!("{}={value}", f.name),
                expect,
            ));
        }
        for (label, value) in numbers {
            let expect =
                if write || (f.strict_text && matches!(f.kind, Kind::String | Kind::Boolean)) {
                    Expect::Refused
                } else {
                    Expect::NoServerError
                };
            queries.push((
                format!("{} {label}", f.name),
                format!("{}={value}", f.name),
                expect,
            ));
        }
    }
    for (label, q, expect) in queries {
        push(
            format!("query {label}"),
            format!("{qpath}?{q}"),
            base_headers(),
            qbody.as_ref().map(|_| "application/json".to_string()),
            qbody.clone(),
            expect,
            token.clone(),
        );
    }

    // Headers.
    let (hpath, hbody) = (
        real_path.clone(),
        real_body_text.clone().map(String::into_bytes),
    );
    let hct = hbody.as_ref().map(|_| "application/json".to_string());
    if op.secured {
        for (label, t) in [
            ("no token", None),
            ("garbage token", Some("garbage.token.x".to_string())),
            (
                "unsigned token",
                Some(format!(
                    "{}.e30.",
                    URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#)
                )),
            ),
        ] {
            push(
                format!("auth {label}"),
                hpath.clone(),
                base_headers(),
                hct.clone(),
                hbody.clone(),
                Expect::Refused,
                t,
            );
        }
    }
    if op.has_header("Idempotency-Key") {
        for (label, key) in [
            ("missing", None),
            ("empty", Some(b"".to_vec())),
            ("256 chars", Some(vec![b'k'; 256])),
            ("non-ascii", Some("kunci-🦀".as_bytes().to_vec())),
            ("quoted with a quote", Some(br#""a"b""#.to_vec())),
        ] {
            let mut h: Vec<(String, Vec<u8>)> = base_headers()
                .into_iter()
                .filter(|(k, _)| k != "idempotency-key")
                .collect();
            if let Some(k) = key {
                h.push(("idempotency-key".into(), k));
            }
            push(
                format!("Idempotency-Key {label}"),
                hpath.clone(),
                h,
                hct.clone(),
                hbody.clone(),
                Expect::Refused,
                token.clone(),
            );
        }
    }
    if op.has_header("If-Match") {
        for (label, v) in [
            ("missing", None),
            ("garbage", Some(b"garbage".to_vec())),
            (
                "overflowing version",
                Some(br#""v99999999999999999999""#.to_vec()),
            ),
            ("negative version", Some(br#""v-1""#.to_vec())),
            ("non-ascii", Some("\"v1🦀\"".as_bytes().to_vec())),
        ] {
            let mut h: Vec<(String, Vec<u8>)> = base_headers()
                .into_iter()
                .filter(|(k, _)| k != "if-match")
                .collect();
            if let Some(v) = v {
                h.push(("if-match".into(), v));
            }
            push(
                format!("If-Match {label}"),
                hpath.clone(),
                h,
                hct.clone(),
                hbody.clone(),
                Expect::Refused,
                token.clone(),
            );
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Sending: raw HTTP/1.1, so that paths reach the server exactly as written (`..` included: an
// HTTP client would normalize it away) and headers may carry any bytes.

struct Answer {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

async fn send(addr: &str, p: &Probe) -> std::io::Result<Answer> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut head = format!(
        "{} {} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\naccept: application/json\r\n",
        p.method, p.target
    )
    .into_bytes();
    if let Some(t) = &p.token {
        head.extend_from_slice(format!("authorization: Bearer {t}\r\n").as_bytes());
    }
    for (k, v) in &p.headers {
        head.extend_from_slice(k.as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(v);
        head.extend_from_slice(b"\r\n");
    }
    if let Some(ct) = &p.content_type {
        head.extend_from_slice(format!("content-type: {ct}\r\n").as_bytes());
    }
    let body = p.body.as_deref().unwrap_or_default();
    if p.body.is_some() || p.method != "GET" {
        head.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    }
    head.extend_from_slice(b"\r\n");
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream.write_all(&head).await?;
    // The server may answer (413) before it has read everything: keep reading what it says.
    let (mut rd, mut wr) = stream.into_split();
    let body = body.to_vec();
    let writer = tokio::spawn(async move {
        let _ = wr.write_all(&body).await;
        wr
    });
    let mut buf = Vec::new();
    let read = rd.read_to_end(&mut buf).await;
    let _wr = writer.await;
    if let Err(e) = read
        && buf.is_empty()
    {
        return Err(e);
    }
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| {
            std::io::Error::other(format!(
                "no response head: {:?}",
                String::from_utf8_lossy(&buf)
            ))
        })?;
    let head = String::from_utf8_lossy(&buf[..split]).to_string();
    let mut raw_body = buf[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line: {head}")))?;
    let mut content_type = String::new();
    let mut chunked = false;
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            if k == "content-type" {
                content_type = v.to_string();
            }
            if k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked") {
                chunked = true;
            }
        }
    }
    if chunked {
        let mut out = Vec::new();
        let mut rest = &raw_body[..];
        while let Some(i) = rest.windows(2).position(|w| w == b"\r\n") {
            let n =
                usize::from_str_radix(String::from_utf8_lossy(&rest[..i]).trim(), 16).unwrap_or(0);
            if n == 0 || rest.len() < i + 2 + n {
                break;
            }
            out.extend_from_slice(&rest[i + 2..i + 2 + n]);
            rest = &rest[(i + 4 + n).min(rest.len())..];
        }
        raw_body = out;
    }
    Ok(Answer {
        status,
        content_type,
        body: raw_body,
    })
}

/// Why an answer breaks the contract, if it does.
fn verdict(p: &Probe, a: &Answer) -> Option<String> {
    let body = String::from_utf8_lossy(&a.body);
    let short: String = body.chars().take(200).collect();
    if a.status >= 500 {
        return Some(format!("{}: {short}", a.status));
    }
    let must_refuse = matches!(p.expect, Expect::Refused | Expect::TooLarge);
    if must_refuse && !(400..500).contains(&a.status) {
        return Some(format!("{} where a 4xx was due: {short}", a.status));
    }
    if p.expect == Expect::TooLarge && a.status != 413 {
        return Some(format!("{} where 413 was due: {short}", a.status));
    }
    if a.status >= 400 {
        if !a.content_type.starts_with("application/problem+json") {
            return Some(format!(
                "{} with content type {:?}: {short}",
                a.status, a.content_type
            ));
        }
        let doc: Value = match serde_json::from_slice(&a.body) {
            Ok(v) => v,
            Err(_) => return Some(format!("{} problem is not JSON: {short}", a.status)),
        };
        for member in ["type", "title", "detail"] {
            if !doc[member].is_string() {
                return Some(format!("{} problem without {member}: {short}", a.status));
            }
        }
        if doc["status"].as_u64() != Some(u64::from(a.status)) {
            return Some(format!(
                "{} problem with status {}: {short}",
                a.status, doc["status"]
            ));
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// The fingerprint of the database.

#[derive(QueryableByName, Debug, PartialEq, Eq, Clone)]
struct Row {
    #[diesel(sql_type = Text)]
    what: String,
    #[diesel(sql_type = Text)]
    value: String,
}

/// Tables whose rows a refused request may legitimately write (see the module comment).
const UNFINGERPRINTED: [&str; 3] = [
    "login_attempts",
    "idempotency_keys",
    "__diesel_schema_migrations",
];

fn fingerprint(conn: &mut PgConnection) -> BTreeMap<String, String> {
    let excluded = UNFINGERPRINTED
        .iter()
        .map(|t| format!("'{t}'"))
        .collect::<Vec<_>>()
        .join(",");
    // Every table: its row count, and a hash of its rows (regions only counted: 10k static rows).
    let sql = format!(
        "SELECT c.relname::text AS what, \
           (xpath('/row/v/text()', query_to_xml(format( \
              CASE WHEN c.relname = 'regions' THEN 'SELECT count(*)::text AS v FROM %I' \
              ELSE 'SELECT count(*) || '':'' || md5(coalesce(string_agg(t::text, '','' ORDER BY t::text), '''')) AS v FROM %I t' END, \
              c.relname), false, true, '')))[1]::text AS value \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND c.relname NOT IN ({excluded}) \
         UNION ALL SELECT 'sum of balances', coalesce(sum(balance_idr), 0)::text || '/' || coalesce(sum(entry_count), 0)::text FROM accounts \
         UNION ALL SELECT 'products', coalesce(max(updated_at)::text, '') || '/' || coalesce(sum(version), 0)::text || '/' || coalesce(sum(stock), 0)::text FROM products"
    );
    diesel::sql_query(sql)
        .load::<Row>(conn)
        .expect("fingerprint query")
        .into_iter()
        .map(|r| (r.what, r.value))
        .collect()
}

fn diff(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> Vec<String> {
    let keys: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    keys.into_iter()
        .filter(|k| before.get(*k) != after.get(*k))
        .map(|k| {
            format!(
                "{k}: {} → {}",
                before
                    .get(k)
                    .map_or("-", |v| v.split(':').next().unwrap_or(v)),
                after
                    .get(k)
                    .map_or("-", |v| v.split(':').next().unwrap_or(v))
            )
        })
        .collect()
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

// ---------------------------------------------------------------------------------------------

const IN_FLIGHT: usize = 8;

/// Every operation of the document gets the whole catalogue; every answer is a 4xx problem (or,
/// for reads of values that may be valid, at least no 5xx), and nothing is written.
#[actix_rt::test]
async fn every_operation_refuses_bad_input_without_writing() {
    use futures_util::StreamExt;
    // About parsing, not capacity: a loaded CI machine may make a request wait for a pooled
    // connection longer than the default 1.5 s (an honest 503).
    let app = spawn_app_with(|c| {
        c.db_connect_timeout_ms = 15_000;
        c.login_limit_ip = 1_000_000;
    })
    .await;
    let fx = world(&app).await;
    let addr = app.base.trim_start_matches("http://").to_string();
    let ops = operations();
    let missing: Vec<String> = ops
        .iter()
        .filter(|op| case_for(op, &fx).is_none())
        .map(Operation::name)
        .collect();
    assert!(
        missing.is_empty(),
        "operations without a bad-input case (add them to case_for): {missing:?}"
    );
    let started_at: String = app.with_conn(|c| {
        diesel::sql_query("SELECT now()::text AS what, '' AS value")
            .get_result::<Row>(c)
            .unwrap()
            .what
    });
    let start = Instant::now();
    let mut conn = app.db.conn();
    let mut before = fingerprint(&mut conn);
    let mut failures: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut writes: Vec<String> = Vec::new();
    let mut sent = 0usize;
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    for op in &ops {
        let case = case_for(op, &fx).expect("checked above");
        let probes = probes(op, &case, &fx);
        sent += probes.len();
        let answers: Vec<(Probe, std::io::Result<Answer>)> = futures_util::stream::iter(probes)
            .map(|p| {
                let addr = addr.clone();
                async move {
                    let a = tokio::time::timeout(Duration::from_secs(20), send(&addr, &p))
                        .await
                        .unwrap_or_else(|_| Err(std::io::Error::other("no answer within 20 s")));
                    (p, a)
                }
            })
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        for (p, a) in &answers {
            let broken = match a {
                Ok(a) => {
                    *statuses.entry(a.status).or_default() += 1;
                    verdict(p, a)
                }
                Err(e) => Some(format!("no answer: {e}")),
            };
            if let Some(b) = broken {
                failures
                    .entry(op.name())
                    .or_default()
                    .push(format!("{}: {b}", p.label));
            }
        }
        let after = fingerprint(&mut conn);
        let changed = diff(&before, &after);
        if !changed.is_empty() {
            writes.push(format!("{}: {}", op.name(), changed.join("; ")));
        }
        before = after;
    }
    let took = start.elapsed();
    println!(
        "{sent} requests over {} operations in {took:?}; statuses: {statuses:?}",
        ops.len()
    );
    // Keys stored meanwhile: only final refusals that a retry must replay.
    let stored: i64 = diesel::sql_query(
        "SELECT count(*) AS n FROM idempotency_keys WHERE created_at >= $1::timestamptz \
         AND NOT (response_status = 409 AND response_body->>'type' ~ '/(insufficient-funds|out-of-stock)$')",
    )
    .bind::<Text, _>(&started_at)
    .get_result::<Count>(&mut conn)
    .expect("idempotency query")
    .n;
    let mut report = String::new();
    for (op, list) in &failures {
        report.push_str(&format!("\n{op} ({} answers):\n", list.len()));
        for l in list.iter().take(8) {
            report.push_str(&format!("    {l}\n"));
        }
    }
    for w in &writes {
        report.push_str(&format!("\nwrote: {w}"));
    }
    if stored > 0 {
        report.push_str(&format!(
            "\n{stored} idempotency keys stored that are not final refusals"
        ));
    }
    assert!(report.is_empty(), "bad input broke the contract:{report}");
    money::assert_books_balance(&app);
}

// ---------------------------------------------------------------------------------------------
// The pure parsers: never panic, and round-trip where that applies.

mod parsers {
    use super::*;
    use pasar::http::pagination::{ExactF64, decode_cursor, encode_cursor};
    use pasar::identity::phone;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn phone_normalisation_is_total_and_idempotent(s in "\\PC{0,20}|[0-9+ ().-]{0,20}|(\\+62|62|0)8[0-9 -]{7,14}") {
            if let Ok(e164) = phone::normalize(&s) {
                prop_assert!(e164.starts_with("+628"), "{e164}");
                prop_assert!(e164[1..].bytes().all(|b| b.is_ascii_digit()));
                prop_assert_eq!(phone::normalize(&e164), Ok(e164.clone()));
                // The three spellings are one number.
                let national = &e164[3..];
                prop_assert_eq!(phone::normalize(&format!("0{national}")), Ok(e164.clone()));
                prop_assert_eq!(phone::normalize(&format!("62{national}")), Ok(e164.clone()));
            }
        }

        #[test]
        fn cursors_round_trip_and_junk_is_refused(
            t in any::<i64>(), id in any::<u128>(), f in any::<f64>(), s in "\\PC{0,16}",
            junk in "\\PC{0,64}",
        ) {
            let key = (t, Uuid::from_u128(id), s.clone());
            let back: (i64, Uuid, String) = decode_cursor(&encode_cursor(&key)).unwrap();
            prop_assert_eq!(back, key);
            if f.is_finite() {
                let back: (ExactF64, String) = decode_cursor(&encode_cursor(&(ExactF64(f), s))).unwrap();
                prop_assert_eq!(back.0.0.to_bits(), f.to_bits());
            }
            // Never a panic, whatever comes back.
            let _ = decode_cursor::<(i64, Uuid, String)>(&junk);
            let _ = decode_cursor::<(ExactF64, String)>(&junk);
            let _ = decode_cursor::<serde_json::Value>(&URL_SAFE_NO_PAD.encode(junk.as_bytes()));
        }

        #[test]
        fn region_codes_are_total(s in "\\PC{0,16}|[0-9.]{0,16}", parts in prop::collection::vec(0u32..10_000, 1..6)) {
            if let Some(level) = pasar::regions::code_level(&s) {
                prop_assert!((1..=4).contains(&level));
                prop_assert_eq!(pasar::regions::ancestor_codes(&s).len(), level as usize - 1);
                prop_assert!(pasar::regions::validate_code("code", &s).is_ok());
            } else {
                prop_assert!(pasar::regions::validate_code("code", &s).is_err());
            }
            let widths = [2usize, 2, 2, 4];
            let code: Vec<String> = parts.iter().zip(widths).map(|(p, w)| format!("{:0w$}", p % 10u32.pow(w as u32))).collect();
            let code = code.join(".");
            prop_assert_eq!(pasar::regions::code_level(&code), Some(parts.len().min(4) as i16));
        }

        #[test]
        fn report_periods_are_total(
            from in prop::option::of("\\PC{0,12}|[0-9]{4}-[0-9]{2}-[0-9]{2}|[+-][0-9]{5,6}-01-01"),
            to in prop::option::of("\\PC{0,12}|[0-9]{4}-[0-9]{2}-[0-9]{2}"),
            days in -400_000i64..400_000,
        ) {
            let today = chrono::NaiveDate::from_ymd_opt(2026, 6, 15).unwrap();
            if let Ok(p) = pasar::reports::Period::parse(from.as_deref(), to.as_deref(), today) {
                prop_assert!(p.from <= p.to);
                prop_assert!(p.days() >= 1 && p.days() <= pasar::reports::MAX_DAYS);
                // What a period prints, it parses back to.
                let again = pasar::reports::Period::parse(Some(&p.from.to_string()), Some(&p.to.to_string()), today);
                prop_assert_eq!(again.ok(), Some(p));
                for g in [pasar::reports::Granularity::Day, pasar::reports::Granularity::Week, pasar::reports::Granularity::Month] {
                    let buckets = g.buckets(p);
                    prop_assert!(!buckets.is_empty());
                    prop_assert_eq!(buckets[0].1, p.from);
                    prop_assert_eq!(buckets[buckets.len() - 1].2, p.to);
                }
            }
            if let Some(d) = today.checked_add_signed(chrono::Duration::days(days)) {
                let s = d.to_string();
                let _ = pasar::reports::Period::parse(Some(&s), None, today);
                let _ = pasar::reports::Period::parse(None, Some(&s), today);
            }
        }

        #[test]
        fn text_enums_parse_only_their_names(s in "\\PC{0,12}") {
            use pasar::reports::Granularity;
            if let Some(g) = Granularity::parse(&s) {
                prop_assert_eq!(g.as_str(), s.as_str());
            }
            for g in [Granularity::Day, Granularity::Week, Granularity::Month] {
                prop_assert_eq!(Granularity::parse(g.as_str()), Some(g));
            }
            if let Some(r) = pasar::identity::tokens::Role::parse_village_role(&s) {
                prop_assert_eq!(pasar::identity::tokens::Role::parse_village_role(r.as_str()), Some(r));
            }
        }

        #[test]
        fn json_bodies_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256), s in "\\PC{0,64}") {
            let _ = pasar::http::extract::parse_json::<pasar::catalog::NewProduct>(&bytes);
            let _ = pasar::http::extract::parse_json::<pasar::catalog::NewProduct>(s.as_bytes());
            let _ = pasar::http::extract::parse_json::<serde_json::Value>(s.as_bytes());
        }

        #[test]
        fn idempotency_keys_are_total(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
            let mut h = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_bytes(&bytes) {
                h.insert(HeaderName::from_static("idempotency-key"), v);
                if let Ok(k) = pasar::http::idempotency::IdempotencyKey::from_headers(&h) {
                    prop_assert!(!k.0.is_empty() && k.0.len() <= pasar::http::idempotency::MAX_KEY_LEN);
                }
            }
        }

        #[test]
        fn client_buckets_are_total(entries in prop::collection::vec("\\PC{0,20}|[0-9a-f:.\\[\\]]{0,24}", 0..4)) {
            let trusted: Vec<ipnet::IpNet> = vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
            let xff: Vec<&str> = entries.iter().map(String::as_str).collect();
            let peer = Some("127.0.0.1".parse().unwrap());
            let b = pasar::http::client_addr::client_bucket(peer, &xff, &trusted);
            prop_assert!(!b.is_empty());
        }
    }
}
