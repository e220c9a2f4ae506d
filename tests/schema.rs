//! The database schema as tests: `src/db/schema.rs` (written by hand) matches the migrated
//! database, and every `down.sql` really undoes its `up.sql`.

mod common;

use std::collections::BTreeMap;

use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};
use diesel_migrations::MigrationHarness;

#[derive(QueryableByName)]
struct Column {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Bool)]
    nullable: bool,
}

/// table → column → nullable, as declared in schema.rs.
fn declared() -> BTreeMap<String, BTreeMap<String, bool>> {
    let text = std::fs::read_to_string("src/db/schema.rs").unwrap();
    let mut out: BTreeMap<String, BTreeMap<String, bool>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_suffix('{')
            && rest.contains('(')
            && !rest.starts_with("diesel::")
        {
            current = Some(rest.split_whitespace().next().unwrap().to_string());
        } else if line == "}" {
            current = None;
        } else if let (Some(t), Some((col, ty))) = (&current, line.split_once("->")) {
            out.entry(t.clone())
                .or_default()
                .insert(col.trim().to_string(), ty.trim().starts_with("Nullable<"));
        }
    }
    out
}

#[actix_rt::test]
async fn schema_rs_matches_the_migrated_database() {
    let db = common::TestDb::new();
    let mut conn = db.conn();
    let cols: Vec<Column> = diesel::sql_query(
        "SELECT table_name::text, column_name::text, is_nullable = 'YES' AS nullable
           FROM information_schema.columns
          WHERE table_schema = 'public' AND table_name <> '__diesel_schema_migrations'
            AND is_generated = 'NEVER'",
    )
    .load(&mut conn)
    .unwrap();
    let mut actual: BTreeMap<String, BTreeMap<String, bool>> = BTreeMap::new();
    for c in cols {
        actual
            .entry(c.table_name)
            .or_default()
            .insert(c.column_name, c.nullable);
    }
    assert_eq!(
        declared(),
        actual,
        "src/db/schema.rs differs from the migrations"
    );
}

#[actix_rt::test]
async fn every_down_migration_undoes_its_up() {
    let db = common::TestDb::new();
    let mut conn = db.conn();
    let tables = |conn: &mut PgConnection| -> Vec<String> {
        #[derive(QueryableByName)]
        struct T {
            #[diesel(sql_type = Text)]
            t: String,
        }
        diesel::sql_query(
            "SELECT tablename::text AS t FROM pg_tables WHERE schemaname = 'public'
               AND tablename <> '__diesel_schema_migrations' ORDER BY 1",
        )
        .load::<T>(conn)
        .unwrap()
        .into_iter()
        .map(|t| t.t)
        .collect()
    };
    let before = tables(&mut conn);
    assert!(before.contains(&"products".to_string()));
    conn.revert_all_migrations(pasar::db::MIGRATIONS).unwrap();
    assert!(
        tables(&mut conn).is_empty(),
        "left behind: {:?}",
        tables(&mut conn)
    );
    pasar::db::migrate(&mut conn).unwrap();
    assert_eq!(tables(&mut conn), before);
}
