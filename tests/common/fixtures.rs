//! Villages, people and shops for tests, created through the domain functions (fast), so the
//! tests can spend their HTTP calls on the behaviour under test.

use diesel::PgConnection;
use pasar::identity::memberships;
use pasar::identity::tokens::{Caller, PLATFORM_SCOPE, Role};
use pasar::shops::{self, Decision, ShopApplication};
use pasar::villages::{self, bumdes};
use serde_json::json;
use uuid::Uuid;

use super::TestApp;

pub const PASSWORD: &str = "rahasia-desa-123";
pub const A: &str = "34.02.15.2004"; // Panggungharjo
pub const B: &str = "34.02.07.2003"; // Guwosari
pub const OUTSIDE: &str = "31.71.01.1001"; // a kelurahan in Jakarta

/// The argon2id hash of [`PASSWORD`], computed once.
pub fn hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| pasar::identity::password::hash_blocking(PASSWORD).unwrap())
}

#[derive(Debug, Clone)]
pub struct Person {
    pub id: Uuid,
    pub phone: String,
}

#[derive(Debug, Clone)]
pub struct Village {
    pub code: String,
    pub admin: Person,
    pub treasurer: Person,
    pub member: Person,
    pub operator: Person,
    pub active_shop: Uuid,
    pub pending_shop: Uuid,
    pub bumdes: Uuid,
}

pub struct World {
    pub platform: Person,
    pub a: Village,
    pub b: Village,
    pub network: Uuid,
}

fn unwrap<T>(r: pasar::http::error::Result<T>) -> T {
    r.unwrap_or_else(|e| panic!("fixture: {e} {:?}", e.problem()))
}

pub fn platform_admin(conn: &mut PgConnection, phone: &str) -> Person {
    let u = unwrap(pasar::identity::users::create(
        conn,
        phone,
        "Platform",
        hash(),
        true,
    ));
    Person {
        id: u.id,
        phone: u.phone,
    }
}

/// Onboards `code` and fills it: admin, treasurer, member, operator of an active and a pending
/// shop, a BUMDes with one unit. `n` makes the phones unique.
pub fn village(conn: &mut PgConnection, platform: &Person, code: &str, n: u8) -> Village {
    let root = Caller::offline(platform.id, PLATFORM_SCOPE, vec![Role::PlatformAdmin]);
    unwrap(villages::onboard(conn, &root, code));
    let as_platform = Caller::offline(platform.id, code, vec![Role::PlatformAdmin]);
    let mut add = |i: u8, role: &str| {
        let phone = format!("+62813{n:02}0000{i:02}");
        let m = unwrap(memberships::add(
            conn,
            &as_platform,
            code,
            &memberships::ValidMember {
                phone: phone.clone(),
                name: Some("Warga".into()),
                roles: vec![Role::parse_village_role(role).expect("a village role")],
            },
            Some(hash()),
        ));
        Person {
            id: m.user_id,
            phone,
        }
    };
    let admin = add(1, "admin");
    let treasurer = add(2, "treasurer");
    let member = add(3, "member");
    let operator = add(4, "member");
    let as_admin = Caller::offline(admin.id, code, vec![Role::Admin]);
    let as_operator = Caller::offline(operator.id, code, vec![Role::Member]);
    let b = unwrap(bumdes::create(
        conn,
        &as_admin,
        code,
        &bumdes::NewBumdes {
            name: format!("BUMDes {n}"),
            kind: "desa".into(),
            legal_number: None,
            partner_village_codes: vec![],
        },
    ));
    unwrap(bumdes::add_unit(
        conn,
        &as_admin,
        b.bumdes.id,
        &bumdes::NewUnit {
            name: "Toko".into(),
            sector: None,
        },
    ));
    let apply = |conn: &mut PgConnection, name: &str| {
        unwrap(shops::apply(
            conn,
            &as_operator,
            code,
            &ShopApplication {
                name: name.into(),
                description: String::new(),
                kind: "umkm".into(),
                bumdes_unit_id: None,
            },
        ))
        .id
    };
    let active_shop = apply(conn, "Lapak Aktif");
    unwrap(shops::decide(
        conn,
        &as_admin,
        active_shop,
        Decision::Approve,
        None,
    ));
    let pending_shop = apply(conn, "Lapak Baru");
    Village {
        code: code.into(),
        admin,
        treasurer,
        member,
        operator,
        active_shop,
        pending_shop,
        bumdes: b.bumdes.id,
    }
}

pub fn world(app: &TestApp) -> World {
    app.with_conn(|conn| {
        let platform = platform_admin(conn, "+6281199990000");
        let a = village(conn, &platform, A, 1);
        let b = village(conn, &platform, B, 2);
        let root = Caller::offline(platform.id, PLATFORM_SCOPE, vec![Role::PlatformAdmin]);
        let network = unwrap(villages::create_network(
            conn,
            &root,
            "Jaringan Uji",
            &[A.into(), B.into()],
            0,
        ))
        .network
        .id;
        World {
            platform,
            a,
            b,
            network,
        }
    })
}

impl TestApp {
    /// Logs in over HTTP and returns the access token.
    pub async fn login(&self, phone: &str, village: &str) -> String {
        let body = self
            .post("/api/v1/auth/login")
            .json(&json!({"phone": phone, "password": PASSWORD, "village_code": village}))
            .send()
            .await
            .expect(200);
        body["access_token"].as_str().unwrap().to_string()
    }
}

impl TestApp {
    /// A platform admin's platform-scoped login (no village), over HTTP.
    pub async fn login_platform(&self, phone: &str) -> String {
        let body = self
            .post("/api/v1/auth/login")
            .json(&json!({"phone": phone, "password": PASSWORD}))
            .send()
            .await
            .expect(200);
        body["access_token"].as_str().unwrap().to_string()
    }
}

/// A village with only an operator and one active shop; returns (shop id, operator).
pub fn selling_village(
    conn: &mut PgConnection,
    platform: &Person,
    code: &str,
    n: u8,
) -> (Uuid, Person) {
    let v = village(conn, platform, code, n);
    (v.active_shop, v.operator)
}

/// Creates an active product through the domain function.
pub fn product(
    conn: &mut PgConnection,
    shop: Uuid,
    operator: &Person,
    village: &str,
    name: &str,
    price: i64,
    stock: i64,
) -> Uuid {
    let as_operator = Caller::offline(operator.id, village, vec![Role::Member]);
    unwrap(pasar::catalog::create(
        conn,
        &as_operator,
        shop,
        &pasar::catalog::NewProduct {
            name: name.into(),
            description: String::new(),
            category: "lainnya".into(),
            unit: "pcs".into(),
            price_idr: price,
            discount: None,
            stock,
            weight_grams: None,
            photo_urls: vec![],
            certifications: vec![],
            flagship: false,
            status: None,
        },
    ))
    .id
}
