//! `pasar seed demo`: the five villages of Bantul that founded Pasardesa.id, as one network,
//! with their people, BUMDes and shops, three villages outside it, a year of backdated trade
//! ([`history`]) and then today's orders in every state. Idempotent: a second run finds the demo
//! data and leaves it alone (an interrupted run leaves a partial demo: recreate the database).
//! Every demo account has the password [`DEMO_PASSWORD`]; the README lists them.

pub mod history;

use diesel::prelude::*;

use crate::identity::tokens::{Caller, PLATFORM_SCOPE, Role};
use crate::identity::{memberships, password, phone, users};
use crate::ledger::{self, TxKind};
use crate::orders::machine::Action;
use crate::orders::{
    self, CheckoutLine, CheckoutRequest, DeliveryMethod, DeliveryRequest, Policy, timers,
};
use crate::regions::import;
use crate::villages::bumdes::{self, NewBumdes, NewUnit};
use crate::{catalog, shops, villages};

pub const DEMO_PASSWORD: &str = "pasar-demo-2026";
pub const DEMO_ADMIN_PHONE: &str = "+6281100000001";
pub const DEMO_NETWORK: &str = "Pasardesa Bantul";

/// (code, name, BUMDes name, its units) of the five founding villages.
pub const PASARDESA_VILLAGES: [(&str, &str, &str, [&str; 2]); 5] = [
    (
        "34.02.15.2004",
        "Panggungharjo",
        "BUMDes Panggung Lestari",
        ["Kampoeng Mataraman", "Pengelolaan Sampah"],
    ),
    (
        "34.02.07.2003",
        "Guwosari",
        "BUMDes Guwosari Makmur",
        ["Wisata Goa Selarong", "Toko Desa"],
    ),
    (
        "34.02.10.2002",
        "Sriharjo",
        "BUMDes Sriharjo Sejahtera",
        ["Kerajinan Bambu", "Pertanian Padi"],
    ),
    (
        "34.02.12.2008",
        "Wirokerten",
        "BUMDes Wirokerten Mandiri",
        ["Batik Tulis", "Kuliner Desa"],
    ),
    (
        "34.02.16.2004",
        "Ngestiharjo",
        "BUMDes Ngestiharjo Maju",
        ["Perikanan Lele", "Jasa Desa"],
    ),
];

/// Demo phone of person `n` (1 admin, 2 treasurer, 3 and 4 members) of village `v` (1..=5).
pub fn demo_phone(v: usize, n: usize) -> String {
    format!("+6281200{v}000{n}")
}

fn err(e: crate::http::error::Error) -> anyhow::Error {
    anyhow::anyhow!("{e}: {:?}", e.problem().errors)
}

pub fn create_platform_admin(
    conn: &mut PgConnection,
    raw_phone: &str,
    name: &str,
    plain_password: &str,
) -> anyhow::Result<users::User> {
    let phone = phone::normalize(raw_phone).map_err(|m| anyhow::anyhow!("phone: {m}"))?;
    password::validate(plain_password).map_err(|m| anyhow::anyhow!("password: {m}"))?;
    let name = users::validate_name("name", name).map_err(err)?;
    let hash = password::hash_blocking(plain_password)?;
    users::create(conn, &phone, &name, &hash, true).map_err(err)
}

/// Villages outside the network that trade with it: one in Panggungharjo's district (Sewon,
/// Bantul), one in another regency of the province (Prambanan, Sleman) and a city kelurahan in
/// another province (Tebet, Jakarta Selatan), so spend by distance has every class.
/// (code, name, IDM status, market day in the pasaran week.)
pub const OUTSIDE_VILLAGES: [(&str, &str, Option<&str>, Option<u32>); 3] = [
    ("34.02.15.2003", "Bangunharjo", Some("maju"), Some(2)),
    ("34.04.09.2001", "Sumberharjo", Some("berkembang"), Some(0)),
    ("31.74.01.1001", "Tebet Timur", None, None),
];

/// The Pasardesa villages' market days (0 Legi, 1 Pahing, 2 Pon, 3 Wage, 4 Kliwon) and the
/// relative size of their trade.
const NETWORK_RHYTHM: [(u32, f64); 5] = [(0, 1.2), (1, 0.9), (2, 1.0), (3, 0.8), (4, 1.1)];
const OUTSIDE_WEIGHT: [f64; 3] = [0.35, 0.3, 0.2];

pub fn demo(conn: &mut PgConnection) -> anyhow::Result<()> {
    demo_with(conn, &history::Params::full())
}

/// The demo with a history of `params` (tests use a smaller one).
pub fn demo_with(conn: &mut PgConnection, params: &history::Params) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    use crate::db::schema::regions;
    let region_count: i64 = regions::table.count().get_result(conn)?;
    if region_count == 0 {
        let rows = import::read_file(std::path::Path::new(import::DEFAULT_FILE), &[])?;
        let report = import::import(conn, &rows, None)?;
        println!(
            "imported {} regions in {:.2} s",
            report.rows, report.seconds
        );
    }
    if users::find_by_phone(conn, DEMO_ADMIN_PHONE)
        .map_err(err)?
        .is_some()
    {
        println!("demo data already present");
        return Ok(());
    }
    let hash = password::hash_blocking(DEMO_PASSWORD)?;
    conn.transaction::<_, anyhow::Error, _>(|conn| {
        let admin = create_platform_admin(conn, DEMO_ADMIN_PHONE, "Admin Platform", DEMO_PASSWORD)?;
        let codes: Vec<String> = PASARDESA_VILLAGES.iter().map(|v| v.0.to_string()).collect();
        let root = Caller::offline(admin.id, PLATFORM_SCOPE, vec![Role::PlatformAdmin]);
        for code in &codes {
            villages::onboard(conn, &root, code).map_err(err)?;
        }
        villages::create_network(conn, &root, DEMO_NETWORK, &codes, 100).map_err(err)?;
        let mut seeded = Vec::new();
        for (i, (code, name, bumdes_name, units)) in PASARDESA_VILLAGES.iter().enumerate() {
            seeded.push(seed_village(
                conn,
                &admin,
                i + 1,
                code,
                name,
                bumdes_name,
                units,
                &hash,
            )?);
        }
        for (i, (code, name, idm, _)) in OUTSIDE_VILLAGES.iter().enumerate() {
            villages::onboard(conn, &root, code).map_err(err)?;
            seed_outside_village(conn, &admin, 6 + i, code, name, *idm, &hash)?;
        }
        let mut all: Vec<(&str, &str, usize)> = PASARDESA_VILLAGES
            .iter()
            .map(|v| (v.0, v.1, params.residents))
            .collect();
        all.extend(
            OUTSIDE_VILLAGES
                .iter()
                .map(|v| (v.0, v.1, params.outside_residents)),
        );
        for (i, (code, name, n)) in all.into_iter().enumerate() {
            add_residents(conn, admin.id, i + 1, code, name, n, &hash)?;
        }
        Ok(seeded)
    })
    .and_then(|seeded| {
        let world = history::World::load(conn, DEMO_NETWORK, &village_specs())?;
        let report = history::run(conn, &world, params)?;
        print_history(&report);
        Ok(seeded)
    })
    .and_then(|seeded| {
        conn.transaction::<_, anyhow::Error, _>(|conn| {
            fund_wallets(conn, &seeded)?;
            seed_orders(conn, &seeded)?;
            Ok(())
        })
    })?;
    println!(
        "demo data created in {:.1} s; every demo account's password is {DEMO_PASSWORD} (see README)",
        started.elapsed().as_secs_f64()
    );
    print_summary(conn)?;
    Ok(())
}

fn village_specs() -> Vec<history::VillageSpec> {
    let mut specs: Vec<history::VillageSpec> = PASARDESA_VILLAGES
        .iter()
        .zip(NETWORK_RHYTHM)
        .map(|(v, (pasaran, weight))| history::VillageSpec {
            code: v.0,
            in_network: true,
            pasaran: Some(pasaran),
            weight,
        })
        .collect();
    specs.extend(
        OUTSIDE_VILLAGES
            .iter()
            .zip(OUTSIDE_WEIGHT)
            .map(|(v, weight)| history::VillageSpec {
                code: v.0,
                in_network: false,
                pasaran: v.3,
                weight,
            }),
    );
    specs
}

/// An outside village: admin, treasurer and two shop operators (phones as [`demo_phone`], v 6
/// to 8), a UMKM and a producer group's shop with 16 products each.
#[allow(clippy::too_many_arguments)]
fn seed_outside_village(
    conn: &mut PgConnection,
    platform_admin: &users::User,
    v: usize,
    code: &'static str,
    village_name: &str,
    idm: Option<&str>,
    hash: &str,
) -> anyhow::Result<()> {
    let as_platform = Caller::offline(platform_admin.id, code, vec![Role::PlatformAdmin]);
    let kind = if code.starts_with("31") {
        "Kelurahan"
    } else {
        "Desa"
    };
    let people = [
        ("admin", format!("Admin {kind} {village_name}")),
        ("treasurer", format!("Bendahara {village_name}")),
        ("member", format!("Warga {village_name} Satu")),
        ("member", format!("Warga {village_name} Dua")),
    ];
    let mut ids = Vec::new();
    for (n, (role, name)) in people.iter().enumerate() {
        let m = memberships::add(
            conn,
            &as_platform,
            code,
            &memberships::ValidMember {
                phone: demo_phone(v, n + 1),
                name: Some(name.clone()),
                roles: vec![Role::parse_village_role(role).expect("a village role")],
            },
            Some(hash),
        )
        .map_err(err)?;
        ids.push(m.user_id);
    }
    let as_admin = Caller::offline(ids[0], code, vec![Role::Admin]);
    villages::update(
        conn,
        &as_admin,
        code,
        &villages::VillageUpdate {
            idm_status: Some(idm.map(str::to_string)),
            village_share_bps: Some(200),
        },
    )
    .map_err(err)?;
    let specs = [
        (ids[2], format!("UMKM Warga {village_name}"), "umkm"),
        (ids[3], format!("Kelompok Tani {village_name}"), "group"),
    ];
    for (shop_index, (operator, name, kind)) in specs.into_iter().enumerate() {
        let as_member = Caller::offline(operator, code, vec![Role::Member]);
        let shop = shops::apply(
            conn,
            &as_member,
            code,
            &shops::ShopApplication {
                name,
                description: format!("Produk warga {village_name}."),
                kind: kind.to_string(),
                bumdes_unit_id: None,
            },
        )
        .map_err(err)?;
        shops::update(
            conn,
            &as_member,
            shop.id,
            &shops::ShopUpdate {
                name: None,
                description: None,
                delivery_fee_village_idr: Some(7_000),
                delivery_fee_other_idr: Some(20_000),
                pickup: Some(true),
            },
        )
        .map_err(err)?;
        shops::decide(conn, &as_admin, shop.id, shops::Decision::Approve, None).map_err(err)?;
        seed_products(conn, &as_member, shop.id, v, shop_index, village_name)?;
    }
    Ok(())
}

const FIRST_NAMES: [&str; 24] = [
    "Sri", "Siti", "Tri", "Eko", "Dwi", "Budi", "Wahyu", "Agus", "Endang", "Sutini", "Paijo",
    "Suparmi", "Slamet", "Rini", "Joko", "Yuli", "Bambang", "Wulan", "Heru", "Ning", "Darmi",
    "Gito", "Ratna", "Parno",
];
const LAST_NAMES: [&str; 12] = [
    "Lestari",
    "Wahyuni",
    "Susanto",
    "Rahayu",
    "Prasetyo",
    "Hartono",
    "Wibowo",
    "Handayani",
    "Purnomo",
    "Suryani",
    "Nugroho",
    "Setiawati",
];

/// `n` residents (members who buy) of a village, phones `+62813` + village (2 digits) + number.
fn add_residents(
    conn: &mut PgConnection,
    platform_admin: uuid::Uuid,
    village_no: usize,
    code: &str,
    village_name: &str,
    n: usize,
    hash: &str,
) -> anyhow::Result<()> {
    let as_platform = Caller::offline(platform_admin, code, vec![Role::PlatformAdmin]);
    for k in 0..n {
        let name = format!(
            "{} {} ({village_name})",
            FIRST_NAMES[(k * 7 + village_no) % FIRST_NAMES.len()],
            LAST_NAMES[(k * 5 + village_no * 3) % LAST_NAMES.len()]
        );
        memberships::add(
            conn,
            &as_platform,
            code,
            &memberships::ValidMember {
                phone: format!("+62813{village_no:02}{:05}", k + 1),
                name: Some(name),
                roles: vec![Role::Member],
            },
            Some(hash),
        )
        .map_err(err)?;
    }
    Ok(())
}

fn print_history(r: &history::Report) {
    println!(
        "history {} .. {}: {} orders ({} completed, {} B2B), Rp {} completed sales; top-ups Rp {}, \
         withdrawals Rp {}; {} ledger transactions, {} postings",
        r.first_day.map(|d| d.to_string()).unwrap_or_default(),
        r.last_day.map(|d| d.to_string()).unwrap_or_default(),
        r.orders,
        r.completed,
        r.b2b,
        rupiah(r.gmv_idr),
        rupiah(r.topups_idr),
        rupiah(r.withdrawals_idr),
        r.ledger_transactions,
        r.postings
    );
    println!(
        "aid: funded Rp {}, disbursed Rp {}, spent Rp {}, returned Rp {}",
        rupiah(r.aid_funded_idr),
        rupiah(r.aid_disbursed_idr),
        rupiah(r.aid_spent_idr),
        rupiah(r.aid_returned_idr)
    );
}

/// What [`seed_village`] made that the wallets and orders need.
struct SeededVillage {
    code: &'static str,
    admin: uuid::Uuid,
    treasurer: uuid::Uuid,
    /// Person 3 (operator of the "Lapak …" and "Kelompok Tani …" shops) and person 4 (of
    /// "UMKM Warga …").
    members: [uuid::Uuid; 2],
    /// "Lapak …" (BUMDes unit), "UMKM Warga …", "Kelompok Tani …", with their operators.
    shops: [(uuid::Uuid, uuid::Uuid); 3],
}

const LAPAK: usize = 0;
const UMKM: usize = 1;
const TANI: usize = 2;

#[allow(clippy::too_many_arguments)]
fn seed_village(
    conn: &mut PgConnection,
    platform_admin: &users::User,
    v: usize,
    code: &'static str,
    village_name: &str,
    bumdes_name: &str,
    units: &[&str; 2],
    hash: &str,
) -> anyhow::Result<SeededVillage> {
    let as_platform = Caller::offline(platform_admin.id, code, vec![Role::PlatformAdmin]);
    let people = [
        ("admin", format!("Admin {village_name}")),
        ("treasurer", format!("Bendahara {village_name}")),
        ("member", format!("Warga {village_name} Satu")),
        ("member", format!("Warga {village_name} Dua")),
    ];
    let mut ids = Vec::new();
    for (n, (role, name)) in people.iter().enumerate() {
        let m = memberships::add(
            conn,
            &as_platform,
            code,
            &memberships::ValidMember {
                phone: demo_phone(v, n + 1),
                name: Some(name.clone()),
                roles: vec![Role::parse_village_role(role).expect("a village role")],
            },
            Some(hash),
        )
        .map_err(err)?;
        ids.push(m.user_id);
    }
    let as_admin = Caller::offline(ids[0], code, vec![Role::Admin]);
    village_settings(conn, &as_admin, code)?;
    let b = bumdes::create(
        conn,
        &as_admin,
        code,
        &NewBumdes {
            name: bumdes_name.to_string(),
            kind: "desa".into(),
            legal_number: Some(format!("AHU-{:04}.AH.01.33.2021", 1000 + v)),
            partner_village_codes: vec![],
        },
    )
    .map_err(err)?;
    let mut unit_ids = Vec::new();
    for u in units {
        let unit = bumdes::add_unit(
            conn,
            &as_admin,
            b.bumdes.id,
            &NewUnit {
                name: u.to_string(),
                sector: None,
            },
        )
        .map_err(err)?;
        unit_ids.push(unit.id);
    }
    let shop_specs = [
        (
            ids[2],
            format!("Lapak {}", units[0]),
            "bumdes_unit",
            Some(unit_ids[0]),
        ),
        (ids[3], format!("UMKM Warga {village_name}"), "umkm", None),
        (
            ids[2],
            format!("Kelompok Tani {village_name}"),
            "group",
            None,
        ),
    ];
    let mut shop_ids = Vec::new();
    for (shop_index, (operator, name, kind, unit)) in shop_specs.into_iter().enumerate() {
        let as_member = Caller::offline(operator, code, vec![Role::Member]);
        let shop = shops::apply(
            conn,
            &as_member,
            code,
            &shops::ShopApplication {
                name,
                description: format!("Produk asli Desa {village_name}, Bantul."),
                kind: kind.to_string(),
                bumdes_unit_id: unit,
            },
        )
        .map_err(err)?;
        shops::update(
            conn,
            &as_member,
            shop.id,
            &shops::ShopUpdate {
                name: None,
                description: None,
                delivery_fee_village_idr: Some(5_000),
                delivery_fee_other_idr: Some(15_000),
                pickup: Some(true),
            },
        )
        .map_err(err)?;
        shops::decide(conn, &as_admin, shop.id, shops::Decision::Approve, None).map_err(err)?;
        seed_products(conn, &as_member, shop.id, v, shop_index, village_name)?;
        shop_ids.push((shop.id, operator));
    }
    Ok(SeededVillage {
        code,
        admin: ids[0],
        treasurer: ids[1],
        members: [ids[2], ids[3]],
        shops: [shop_ids[0], shop_ids[1], shop_ids[2]],
    })
}

/// (name, category, unit, price, description) of typical village products of Bantul.
const DEMO_PRODUCTS: [(&str, &str, &str, i64, &str); 24] = [
    (
        "Kopi Robusta Bubuk",
        "kopi-teh",
        "pack",
        35_000,
        "Kopi robusta petik merah, disangrai dan digiling di desa.",
    ),
    (
        "Kopi Arabika Menoreh",
        "kopi-teh",
        "pack",
        55_000,
        "Biji kopi arabika dari lereng Menoreh, sangrai medium.",
    ),
    (
        "Teh Rosela Kering",
        "kopi-teh",
        "pack",
        25_000,
        "Kelopak rosela kering untuk seduhan segar.",
    ),
    (
        "Beras Menthik Wangi",
        "beras-palawija",
        "kg",
        15_000,
        "Beras pulen dan wangi dari sawah desa.",
    ),
    (
        "Beras Merah Organik",
        "beras-palawija",
        "kg",
        22_000,
        "Beras merah tanpa pestisida kimia.",
    ),
    (
        "Jagung Pipil Kering",
        "beras-palawija",
        "kg",
        7_000,
        "Jagung pipil untuk pakan dan olahan.",
    ),
    (
        "Batik Tulis Motif Parang",
        "batik-tenun",
        "pcs",
        350_000,
        "Batik tulis pewarna alam, kain katun primisima.",
    ),
    (
        "Batik Cap Sido Mukti",
        "batik-tenun",
        "pcs",
        150_000,
        "Batik cap motif klasik Yogyakarta.",
    ),
    (
        "Kerajinan Bambu Tempat Tisu",
        "kerajinan",
        "pcs",
        45_000,
        "Anyaman bambu halus buatan perajin desa.",
    ),
    (
        "Caping Anyaman Bambu",
        "kerajinan",
        "pcs",
        30_000,
        "Caping petani dari bambu apus.",
    ),
    (
        "Besek Bambu Isi 10",
        "kerajinan",
        "pack",
        20_000,
        "Besek bambu ramah lingkungan untuk hantaran.",
    ),
    (
        "Keripik Tempe Sagu",
        "olahan-pangan",
        "pack",
        12_000,
        "Keripik tempe renyah, digoreng dengan minyak baru.",
    ),
    (
        "Peyek Kacang",
        "olahan-pangan",
        "pack",
        15_000,
        "Rempeyek kacang tanah gurih.",
    ),
    (
        "Geplak Bantul",
        "olahan-pangan",
        "pack",
        20_000,
        "Geplak kelapa manis khas Bantul.",
    ),
    (
        "Bakpia Kacang Hijau",
        "olahan-pangan",
        "pack",
        30_000,
        "Bakpia isi kacang hijau, 20 biji.",
    ),
    (
        "Lele Segar",
        "perikanan",
        "kg",
        26_000,
        "Lele hidup dari kolam desa, dipanen pagi hari.",
    ),
    (
        "Nila Merah Segar",
        "perikanan",
        "kg",
        35_000,
        "Ikan nila merah segar.",
    ),
    (
        "Abon Lele",
        "perikanan",
        "pack",
        40_000,
        "Abon ikan lele tanpa pengawet.",
    ),
    (
        "Telur Ayam Kampung",
        "peternakan",
        "pcs",
        2_500,
        "Telur ayam kampung dari peternak desa.",
    ),
    (
        "Madu Klanceng",
        "jamu-herbal",
        "botol",
        120_000,
        "Madu lebah klanceng murni.",
    ),
    (
        "Bayam Hijau",
        "sayur-buah",
        "ikat",
        3_000,
        "Bayam segar dipetik pagi.",
    ),
    (
        "Cabai Rawit Merah",
        "sayur-buah",
        "kg",
        45_000,
        "Cabai rawit merah pedas.",
    ),
    (
        "Pisang Raja",
        "sayur-buah",
        "lusin",
        25_000,
        "Pisang raja matang pohon.",
    ),
    (
        "Gula Jawa Kelapa",
        "sembako",
        "kg",
        28_000,
        "Gula kelapa cetak dari penderes desa.",
    ),
];

fn seed_products(
    conn: &mut PgConnection,
    operator: &Caller,
    shop: uuid::Uuid,
    v: usize,
    shop_index: usize,
    village_name: &str,
) -> anyhow::Result<()> {
    // Each shop carries 16 of the 24 products, starting at a different place per village and shop.
    for k in 0..16 {
        let (name, category, unit, price, description) =
            DEMO_PRODUCTS[(v * 5 + shop_index * 8 + k) % DEMO_PRODUCTS.len()];
        let variation = ((v * 7 + shop_index * 3 + k) % 5) as i64 * 500;
        catalog::create(
            conn,
            operator,
            shop,
            &catalog::NewProduct {
                name: format!("{name} {village_name}"),
                description: description.to_string(),
                category: category.to_string(),
                unit: unit.to_string(),
                price_idr: price + variation,
                discount: (k % 6 == 0).then_some(catalog::product::Discount {
                    kind: catalog::product::DiscountKind::Percent,
                    value: 10,
                }),
                stock: ((v + k * 13) % 60) as i64,
                weight_grams: Some(250 + (k as i64 % 4) * 250),
                photo_urls: vec![format!("https://images.pasar.id/demo/{}.jpg", k + 1)],
                certifications: if category == "olahan-pangan" {
                    vec!["pirt".into(), "halal".into()]
                } else {
                    vec![]
                },
                flagship: k == 0,
                status: None,
            },
        )
        .map_err(err)?;
    }
    Ok(())
}

fn village_settings(conn: &mut PgConnection, as_admin: &Caller, code: &str) -> anyhow::Result<()> {
    villages::update(
        conn,
        as_admin,
        code,
        &villages::VillageUpdate {
            idm_status: Some(Some("mandiri".into())),
            village_share_bps: Some(200),
        },
    )
    .map_err(err)?;
    Ok(())
}

/// Rp 500.000 on every demo member's and treasurer's wallet.
pub const DEMO_PERSON_TOPUP_IDR: i64 = 500_000;
/// Rp 1.000.000 on every village's "Lapak …" (BUMDes unit) shop wallet, for B2B buying.
pub const DEMO_SHOP_TOPUP_IDR: i64 = 1_000_000;

/// Top-ups by each village's treasurer, as the API books them (cash → wallet).
fn fund_wallets(conn: &mut PgConnection, villages: &[SeededVillage]) -> anyhow::Result<()> {
    for v in villages {
        let treasurer = Caller::offline(v.treasurer, v.code, vec![Role::Treasurer]);
        let mut wallets = Vec::new();
        for person in [v.treasurer, v.members[0], v.members[1]] {
            wallets.push((
                ledger::user_wallet(conn, person).map_err(err)?.id,
                DEMO_PERSON_TOPUP_IDR,
            ));
        }
        wallets.push((
            ledger::shop_wallet(conn, v.shops[LAPAK].0).map_err(err)?.id,
            DEMO_SHOP_TOPUP_IDR,
        ));
        for (wallet, amount) in wallets {
            ledger::move_cash(
                conn,
                &treasurer,
                wallet,
                TxKind::Topup,
                &ledger::NewMovement {
                    amount_idr: amount,
                    note: Some("setoran tunai (demo)".into()),
                },
            )
            .map_err(err)?;
        }
    }
    Ok(())
}

/// Up to `n` active products of `shop` with some stock and a modest price, by name.
fn products_of(
    conn: &mut PgConnection,
    shop: uuid::Uuid,
    n: i64,
) -> anyhow::Result<Vec<uuid::Uuid>> {
    use crate::db::schema::products;
    let ids: Vec<uuid::Uuid> = products::table
        .filter(products::shop_id.eq(shop))
        .filter(products::status.eq("active"))
        .filter(products::stock.ge(5))
        .filter(products::final_price_idr.le(60_000))
        .order(products::name)
        .select(products::id)
        .limit(n)
        .load(conn)?;
    anyhow::ensure!(
        ids.len() as i64 == n,
        "a demo shop has too few products to buy"
    );
    Ok(ids)
}

/// Who does something: a person, through a token of one village with one role.
fn as_(user: uuid::Uuid, village: &str, role: Role) -> Caller {
    Caller::offline(user, village, vec![role])
}

/// A checkout of `lines` (shop, how many of its products, quantity) by `buyer`; the order ids,
/// one per shop in shop-id order.
fn buy(
    conn: &mut PgConnection,
    buyer: &Caller,
    buyer_shop_id: Option<uuid::Uuid>,
    lines: &[(uuid::Uuid, i64, i64)],
    delivery: bool,
) -> anyhow::Result<Vec<uuid::Uuid>> {
    let mut request_lines = Vec::new();
    for (shop, n, quantity) in lines {
        for product_id in products_of(conn, *shop, *n)? {
            request_lines.push(CheckoutLine {
                product_id,
                quantity: *quantity,
            });
        }
    }
    let req = CheckoutRequest {
        buyer_shop_id,
        lines: request_lines,
        delivery: if delivery {
            DeliveryRequest {
                method: DeliveryMethod::Delivery,
                address: Some("Jl. Parangtritis km 7, Bantul".into()),
            }
        } else {
            DeliveryRequest {
                method: DeliveryMethod::Pickup,
                address: None,
            }
        },
        note: None,
    };
    let c = orders::checkout(
        conn,
        buyer,
        Policy {
            platform_fee_bps: 0,
        },
        &req,
    )
    .map_err(err)?;
    Ok(c.orders.iter().map(|o| o.id).collect())
}

/// One transition, checked like the HTTP request's (a reason where needed, a courier to ship).
fn step(
    conn: &mut PgConnection,
    who: &Caller,
    order: uuid::Uuid,
    action: Action,
    note: Option<&str>,
) -> anyhow::Result<()> {
    let (courier, phone) = match action {
        Action::Ship => (Some("Kurir Desa Bantul"), Some("+6281399990001")),
        _ => (None, None),
    };
    let details = orders::details(action, note, courier, phone).map_err(err)?;
    orders::act(conn, who, order, action, &details).map_err(err)?;
    Ok(())
}

/// Orders in every state of DESIGN §3, among the five villages (each buyer buys from another
/// village's shop). The one that expires is placed first and moved by the timers as they
/// would run 49 h later; the rest are placed after, so they stay where the seed leaves them.
fn seed_orders(conn: &mut PgConnection, v: &[SeededVillage]) -> anyhow::Result<()> {
    use Action::*;
    let member = |i: usize, m: usize| as_(v[i].members[m], v[i].code, Role::Member);
    let treasurer = |i: usize| as_(v[i].treasurer, v[i].code, Role::Treasurer);
    let admin = |i: usize| as_(v[i].admin, v[i].code, Role::Admin);
    // The operator of shop `s` of village `i`, as the seller.
    let seller = |i: usize, s: usize| as_(v[i].shops[s].1, v[i].code, Role::Member);
    let shop = |i: usize, s: usize| v[i].shops[s].0;

    // Expired: Panggungharjo's first member, from Guwosari's UMKM, never accepted.
    buy(conn, &member(0, 0), None, &[(shop(1, UMKM), 1, 2)], true)?;
    let policy = timers::TimerPolicy {
        expire_after: chrono::Duration::hours(48),
        complete_after: chrono::Duration::hours(72),
        interval: std::time::Duration::from_secs(30),
    };
    let ran = timers::run_due(
        conn,
        &policy,
        chrono::Utc::now() + chrono::Duration::hours(49),
        100,
    )
    .map_err(err)?;
    anyhow::ensure!(ran.expired == 1, "the demo's expiring order did not expire");

    // Placed: Panggungharjo's second member, from Sriharjo's Lapak, for pickup.
    buy(conn, &member(0, 1), None, &[(shop(2, LAPAK), 1, 1)], false)?;
    // Accepted: Guwosari's first member, from Wirokerten's UMKM.
    let o = buy(conn, &member(1, 0), None, &[(shop(3, UMKM), 2, 1)], true)?[0];
    step(conn, &seller(3, UMKM), o, Accept, None)?;
    // Rejected by the seller: Guwosari's second member, from Ngestiharjo's Lapak.
    let o = buy(conn, &member(1, 1), None, &[(shop(4, LAPAK), 1, 2)], true)?[0];
    step(
        conn,
        &seller(4, LAPAK),
        o,
        Reject,
        Some("Stok sedang kosong, mohon maaf"),
    )?;
    // Cancelled by the buyer while placed: Sriharjo's treasurer, from Panggungharjo's UMKM.
    let o = buy(conn, &treasurer(2), None, &[(shop(0, UMKM), 1, 1)], false)?[0];
    step(conn, &treasurer(2), o, Cancel, Some("Salah pesan"))?;
    // Cancelled by the seller once accepted: Ngestiharjo's treasurer, from Guwosari's Kelompok Tani.
    let o = buy(conn, &treasurer(4), None, &[(shop(1, TANI), 1, 3)], true)?[0];
    step(conn, &seller(1, TANI), o, Accept, None)?;
    step(
        conn,
        &seller(1, TANI),
        o,
        Cancel,
        Some("Kurir tidak tersedia minggu ini"),
    )?;
    // Shipped: Sriharjo's first member, from Wirokerten's Kelompok Tani.
    let o = buy(conn, &member(2, 0), None, &[(shop(3, TANI), 1, 2)], true)?[0];
    step(conn, &seller(3, TANI), o, Accept, None)?;
    step(conn, &seller(3, TANI), o, Ship, Some("Dikirim sore ini"))?;
    // Completed on the buyer's confirmation: Sriharjo's second member, from Panggungharjo's Lapak.
    let o = buy(conn, &member(2, 1), None, &[(shop(0, LAPAK), 2, 1)], true)?[0];
    step(conn, &seller(0, LAPAK), o, Accept, None)?;
    step(conn, &seller(0, LAPAK), o, Ship, None)?;
    step(conn, &member(2, 1), o, Confirm, None)?;
    // Disputed: Wirokerten's first member, from Ngestiharjo's UMKM.
    let o = buy(conn, &member(3, 0), None, &[(shop(4, UMKM), 1, 1)], true)?[0];
    step(conn, &seller(4, UMKM), o, Accept, None)?;
    step(conn, &seller(4, UMKM), o, Ship, None)?;
    step(conn, &member(3, 0), o, Dispute, Some("Barang belum sampai"))?;
    // Refunded by the seller village's admin after a dispute: Wirokerten's second member, from
    // Guwosari's Lapak.
    let o = buy(conn, &member(3, 1), None, &[(shop(1, LAPAK), 1, 2)], true)?[0];
    step(conn, &seller(1, LAPAK), o, Accept, None)?;
    step(conn, &seller(1, LAPAK), o, Ship, None)?;
    step(
        conn,
        &member(3, 1),
        o,
        Dispute,
        Some("Barang rusak saat diterima"),
    )?;
    step(conn, &admin(1), o, Refund, Some("Dikembalikan ke pembeli"))?;
    // Completed by the admin releasing a dispute: Ngestiharjo's first member, from Sriharjo's UMKM.
    let o = buy(conn, &member(4, 0), None, &[(shop(2, UMKM), 1, 1)], true)?[0];
    step(conn, &seller(2, UMKM), o, Accept, None)?;
    step(conn, &seller(2, UMKM), o, Ship, None)?;
    step(conn, &member(4, 0), o, Dispute, Some("Jumlah kurang satu"))?;
    step(conn, &admin(2), o, Release, Some("Sudah dicek: lengkap"))?;
    // B2B, completed: Panggungharjo's BUMDes unit shop buys from Sriharjo's Kelompok Tani.
    let o = buy(
        conn,
        &member(0, 0),
        Some(shop(0, LAPAK)),
        &[(shop(2, TANI), 2, 3)],
        true,
    )?[0];
    step(conn, &seller(2, TANI), o, Accept, None)?;
    step(conn, &seller(2, TANI), o, Ship, None)?;
    step(conn, &member(0, 0), o, Confirm, None)?;
    // One checkout, two shops: Ngestiharjo's second member, from Wirokerten's Lapak and
    // Guwosari's UMKM; Wirokerten accepts its order, Guwosari's stays placed.
    let two = buy(
        conn,
        &member(4, 1),
        None,
        &[(shop(3, LAPAK), 1, 1), (shop(1, UMKM), 1, 1)],
        true,
    )?;
    anyhow::ensure!(two.len() == 2, "a two-shop checkout makes two orders");
    for o in two {
        let row: uuid::Uuid = {
            use crate::db::schema::orders as t;
            t::table.find(o).select(t::shop_id).first(conn)?
        };
        if row == shop(3, LAPAK) {
            step(conn, &seller(3, LAPAK), o, Accept, None)?;
        }
    }
    Ok(())
}

#[derive(QueryableByName)]
struct StatusCount {
    #[diesel(sql_type = diesel::sql_types::Text)]
    status: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

fn print_summary(conn: &mut PgConnection) -> anyhow::Result<()> {
    let counts: Vec<StatusCount> = diesel::sql_query(
        "SELECT status, count(*) AS n FROM orders GROUP BY status
          ORDER BY array_position(ARRAY['placed','accepted','rejected','cancelled','expired',
                                        'shipped','completed','disputed','refunded'], status)",
    )
    .load(conn)?;
    let orders: Vec<String> = counts
        .iter()
        .map(|c| format!("{} {}", c.n, c.status))
        .collect();
    println!(
        "wallets: 15 people (treasurers and members) topped up Rp {} each, 5 BUMDes unit shops \
         Rp {} each",
        rupiah(DEMO_PERSON_TOPUP_IDR),
        rupiah(DEMO_SHOP_TOPUP_IDR)
    );
    println!("orders: {}", orders.join(", "));
    let check = ledger::check(conn).map_err(err)?;
    let problems = check.problems();
    if problems.is_empty() {
        println!("ledger check: every invariant holds (the same as `pasar ledger verify`)");
        Ok(())
    } else {
        Err(anyhow::anyhow!(
            "ledger check failed: {}",
            problems.join("; ")
        ))
    }
}

/// 1500000 as "1.500.000".
fn rupiah(amount: i64) -> String {
    let digits = amount.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('.');
        }
        out.push(c);
    }
    out
}
