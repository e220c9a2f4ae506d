//! `pasar seed demo`: the five villages of Bantul that founded Pasardesa.id, as one network,
//! with their people, BUMDes and shops. Idempotent: a second run finds the demo data and leaves
//! it alone. Every demo account has the password [`DEMO_PASSWORD`]; the README lists them.

use diesel::prelude::*;

use crate::identity::tokens::{Caller, PLATFORM_SCOPE, Role};
use crate::identity::{memberships, password, phone, users};
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

pub fn demo(conn: &mut PgConnection) -> anyhow::Result<()> {
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
        for (i, (code, name, bumdes_name, units)) in PASARDESA_VILLAGES.iter().enumerate() {
            seed_village(conn, &admin, i + 1, code, name, bumdes_name, units, &hash)?;
        }
        Ok(())
    })?;
    println!("demo data created; every demo account's password is {DEMO_PASSWORD} (see README)");
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn seed_village(
    conn: &mut PgConnection,
    platform_admin: &users::User,
    v: usize,
    code: &str,
    village_name: &str,
    bumdes_name: &str,
    units: &[&str; 2],
    hash: &str,
) -> anyhow::Result<()> {
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
    }
    Ok(())
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
