//! `pasar seed demo`: the five villages of Bantul that founded Pasardesa.id, as one network.
//! Idempotent: a second run finds the demo data and leaves it alone.

use diesel::prelude::*;

use crate::identity::{password, phone, users};
use crate::regions::import;
use crate::villages;

/// The demo password of every demo account (README lists the accounts).
pub const DEMO_PASSWORD: &str = "pasar-demo-2026";
pub const DEMO_ADMIN_PHONE: &str = "+6281100000001";
pub const DEMO_NETWORK: &str = "Pasardesa Bantul";

/// (code, name) of the five founding villages.
pub const PASARDESA_VILLAGES: [(&str, &str); 5] = [
    ("34.02.15.2004", "Panggungharjo"),
    ("34.02.07.2003", "Guwosari"),
    ("34.02.10.2002", "Sriharjo"),
    ("34.02.12.2008", "Wirokerten"),
    ("34.02.16.2004", "Ngestiharjo"),
];

pub fn create_platform_admin(
    conn: &mut PgConnection,
    raw_phone: &str,
    name: &str,
    plain_password: &str,
) -> anyhow::Result<users::User> {
    let phone = phone::normalize(raw_phone).map_err(|m| anyhow::anyhow!("phone: {m}"))?;
    password::validate(plain_password).map_err(|m| anyhow::anyhow!("password: {m}"))?;
    let name = users::validate_name("name", name).map_err(|e| anyhow::anyhow!("{e}"))?;
    let hash = password::hash_blocking(plain_password)?;
    users::create(conn, &phone, &name, &hash, true).map_err(|e| anyhow::anyhow!("{e}"))
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
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .is_some()
    {
        println!("demo data already present");
        return Ok(());
    }
    conn.transaction::<_, anyhow::Error, _>(|conn| {
        let admin = create_platform_admin(conn, DEMO_ADMIN_PHONE, "Admin Platform", DEMO_PASSWORD)?;
        let codes: Vec<String> = PASARDESA_VILLAGES
            .iter()
            .map(|(c, _)| c.to_string())
            .collect();
        for code in &codes {
            villages::onboard(conn, code, Some(admin.id)).map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        villages::create_network(conn, DEMO_NETWORK, &codes, 100)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(())
    })?;
    println!("demo data created; platform admin {DEMO_ADMIN_PHONE}, password {DEMO_PASSWORD}");
    Ok(())
}
