//! Backup and restore as README "Backup and restore" tells an operator: `pg_dump -Fc`, a fresh
//! database, `pg_restore`, then `pasar ledger verify` — and the restored books are the same.

mod common;

use std::process::Command;

use common::fixtures::{self, A, B};
use common::money::{act, checkout, pickup, topup, wallet_of};
use common::spawn_app;
use diesel::prelude::*;
use serde_json::json;

/// A PostgreSQL client program: on PATH, else the newest under /usr/lib/postgresql.
fn pg_program(name: &str) -> String {
    if Command::new(name).arg("--version").output().is_ok() {
        return name.to_string();
    }
    let mut found: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|d| d.path().join("bin").join(name))
        .filter(|p| p.exists())
        .collect();
    found.sort();
    found
        .pop()
        .unwrap_or_else(|| panic!("{name} not found: install the PostgreSQL client (apt-get install postgresql-client)"))
        .to_string_lossy()
        .into_owned()
}

#[derive(QueryableByName, Debug, PartialEq)]
struct Books {
    #[diesel(sql_type = diesel::sql_types::Text)]
    digest: String,
}

/// Every account's balance and entry count, and every posting, as one digest.
fn books(conn: &mut PgConnection) -> String {
    diesel::sql_query(
        "SELECT md5(string_agg(x, ',' ORDER BY x)) AS digest FROM (
           SELECT id::text || ':' || balance_idr || ':' || entry_count AS x FROM accounts
           UNION ALL
           SELECT id::text || ':' || account_id || ':' || amount_idr || ':' || balance_after_idr FROM postings) t",
    )
    .get_result::<Books>(conn)
    .unwrap()
    .digest
}

#[actix_rt::test]
async fn a_dump_restored_into_a_fresh_database_passes_ledger_verify() {
    let app = spawn_app().await;
    let w = fixtures::world(&app);
    let product = app
        .with_conn(|c| fixtures::product(c, w.b.active_shop, &w.b.operator, B, "Kopi", 20_000, 10));
    let treasurer = app.login(&w.a.treasurer.phone, A).await;
    let buyer = app.login(&w.a.member.phone, A).await;
    let seller = app.login(&w.b.operator.phone, B).await;
    let wallet = wallet_of(&app, &buyer).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    topup(&app, &treasurer, &wallet, 100_000).await;
    let c = checkout(&app, &buyer, &pickup(&[(product, 2)]))
        .await
        .expect(201);
    let order = c["orders"][0]["id"].as_str().unwrap().to_string();
    act(&app, &seller, &order, "accept", json!({}))
        .await
        .expect(200);
    act(
        &app,
        &seller,
        &order,
        "ship",
        json!({"courier_name": "Pak Kurir", "courier_phone": "081299990000"}),
    )
    .await
    .expect(200);
    act(&app, &buyer, &order, "confirm", json!({}))
        .await
        .expect(200);
    checkout(&app, &buyer, &pickup(&[(product, 1)]))
        .await
        .expect(201);
    let before = app.with_conn(books);

    let dump = std::env::temp_dir().join(format!("pasar-{}.dump", uuid::Uuid::now_v7()));
    let out = Command::new(pg_program("pg_dump"))
        .args(["-Fc", "--no-owner", "-f"])
        .arg(&dump)
        .arg(&app.db.url)
        .output()
        .expect("run pg_dump");
    assert!(
        out.status.success(),
        "pg_dump: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A fresh database, as after losing the server (the prefix lets scripts/test.sh sweep it).
    let name = format!("pasar_test_restore_{}", uuid::Uuid::now_v7().simple());
    let admin = app.db.url.rsplit_once('/').unwrap().0.to_string();
    let mut root = pasar::db::connect(&format!("{admin}/postgres")).unwrap();
    diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut root)
        .unwrap();
    let restored_url = format!("{admin}/{name}");
    let out = Command::new(pg_program("pg_restore"))
        .args(["--no-owner", "--exit-on-error", "-d"])
        .arg(&restored_url)
        .arg(&dump)
        .output()
        .expect("run pg_restore");
    let _ = std::fs::remove_file(&dump);
    assert!(
        out.status.success(),
        "pg_restore: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let verify = Command::new(env!("CARGO_BIN_EXE_pasar"))
        .args(["ledger", "verify", "--database-url", &restored_url])
        .output()
        .expect("run pasar ledger verify");
    let report = String::from_utf8_lossy(&verify.stdout).to_string()
        + &String::from_utf8_lossy(&verify.stderr);
    let after = {
        let mut conn = pasar::db::connect(&restored_url).unwrap();
        books(&mut conn)
    };
    diesel::sql_query(format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&mut root)
        .unwrap();
    assert!(
        verify.status.success(),
        "ledger verify on the restore: {report}"
    );
    assert_eq!(before, after, "the restored books differ");
}
