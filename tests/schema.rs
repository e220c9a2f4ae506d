//! The database schema as tests: `src/db/schema.rs` (written by hand) matches the migrated
//! database, column by column (name, type, nullability) and key by key (primary key columns in
//! order), and every `down.sql` really undoes its `up.sql`.

mod common;

use std::collections::BTreeMap;

use diesel::prelude::*;
use diesel::sql_types::{Array, Bool, Text};
use diesel_migrations::MigrationHarness;

// ---------------------------------------------------------------------------------------------
// schema.rs, parsed. A small tokenizer rather than line matching, because several engineers
// edit the file: comments, attributes, multi-table `table!` blocks, `schema.table` names and
// nested types must not make the parser skip or misread a column silently.

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Punct(char),
    Arrow,
}

fn tokenize(src: &str) -> Vec<Tok> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '/' && chars.get(i + 1) == Some(&'/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && chars.get(i + 1) == Some(&'*') {
            // Block comments nest in Rust.
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == '"' {
            let mut s = String::new();
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                if let Some(&c) = chars.get(i) {
                    s.push(c);
                }
                i += 1;
            }
            i += 1;
            out.push(Tok::Str(s));
        } else if c == '-' && chars.get(i + 1) == Some(&'>') {
            out.push(Tok::Arrow);
            i += 2;
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let mut ident: String = chars[start..i].iter().collect();
            // A raw identifier (`r#type`) names the column `type`.
            if ident == "r" && chars.get(i) == Some(&'#') {
                let start = i + 1;
                i = start;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                ident = chars[start..i].iter().collect();
            }
            out.push(Tok::Ident(ident));
        } else {
            out.push(Tok::Punct(c));
            i += 1;
        }
    }
    out
}

/// A diesel SQL type: last path segment and generic arguments (`Nullable<Array<Text>>`).
#[derive(Debug, Clone, PartialEq)]
struct Ty {
    name: String,
    args: Vec<Ty>,
}

impl std::fmt::Display for Ty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.name)?;
        if !self.args.is_empty() {
            let args: Vec<String> = self.args.iter().map(Ty::to_string).collect();
            write!(f, "<{}>", args.join(", "))?;
        }
        Ok(())
    }
}

/// A column as schema.rs declares it, in the terms PostgreSQL reports.
#[derive(Debug, Clone, PartialEq)]
struct Col {
    /// PostgreSQL's `udt_name` (`int4`, `_text`, …).
    udt: String,
    nullable: bool,
    /// The diesel type as written, for messages.
    diesel: String,
}

#[derive(Debug, Default, PartialEq)]
struct Table {
    /// Primary key columns (SQL names), in order.
    pk: Vec<String>,
    columns: BTreeMap<String, Col>,
}

/// diesel type name → PostgreSQL `udt_name`. Add a row when schema.rs starts using a new type.
const TYPE_MAP: &[(&str, &str)] = &[
    ("Text", "text"),
    ("VarChar", "varchar"),
    ("Varchar", "varchar"),
    ("Uuid", "uuid"),
    ("Int2", "int2"),
    ("SmallInt", "int2"),
    ("Int4", "int4"),
    ("Integer", "int4"),
    ("Int8", "int8"),
    ("BigInt", "int8"),
    ("Bool", "bool"),
    ("Timestamptz", "timestamptz"),
    ("Timestamp", "timestamp"),
    ("Date", "date"),
    ("Time", "time"),
    ("Interval", "interval"),
    ("Jsonb", "jsonb"),
    ("Json", "json"),
    ("Bytea", "bytea"),
    ("Binary", "bytea"),
    ("Float4", "float4"),
    ("Float", "float4"),
    ("Float8", "float8"),
    ("Double", "float8"),
    ("Numeric", "numeric"),
    ("Inet", "inet"),
    ("Cidr", "cidr"),
    ("Oid", "oid"),
    ("Tsvector", "tsvector"),
];

/// `(nullable, udt_name)` of a column type. Panics on a type the map does not know: a silent
/// "unknown" would let a wrong type through.
fn pg_type(column: &str, ty: &Ty) -> (bool, String) {
    fn base(column: &str, ty: &Ty) -> String {
        match (ty.name.as_str(), ty.args.as_slice()) {
            // information_schema does not report element nullability; `_text` either way.
            ("Array", [elem]) => {
                let elem = match (elem.name.as_str(), elem.args.as_slice()) {
                    ("Nullable", [inner]) => inner,
                    _ => elem,
                };
                format!("_{}", base(column, elem))
            }
            (name, []) => match TYPE_MAP.iter().find(|(d, _)| *d == name) {
                Some((_, udt)) => udt.to_string(),
                None => panic!(
                    "{column}: diesel type `{ty}` is not in TYPE_MAP of tests/schema.rs; add \
                     its PostgreSQL udt_name there"
                ),
            },
            _ => panic!("{column}: cannot map diesel type `{ty}`"),
        }
    }
    match (ty.name.as_str(), ty.args.as_slice()) {
        ("Nullable", [inner]) => (true, base(column, inner)),
        _ => (false, base(column, ty)),
    }
}

struct Parser<'a> {
    toks: &'a [Tok],
    pos: usize,
    /// Where we are, for messages.
    context: String,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Tok {
        let t =
            self.toks.get(self.pos).cloned().unwrap_or_else(|| {
                panic!("schema.rs: unexpected end of input in {}", self.context)
            });
        self.pos += 1;
        t
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(&Tok::Punct(c)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char) {
        let t = self.next();
        assert_eq!(t, Tok::Punct(c), "schema.rs: in {}", self.context);
    }

    fn ident(&mut self) -> String {
        match self.next() {
            Tok::Ident(s) => s,
            t => panic!(
                "schema.rs: expected a name in {}, found {t:?}",
                self.context
            ),
        }
    }

    /// Attributes before an item; returns the `#[sql_name = "…"]` if any.
    fn attributes(&mut self) -> Option<String> {
        let mut sql_name = None;
        while self.eat('#') {
            self.expect('[');
            let start = self.pos;
            let mut depth = 1;
            while depth > 0 {
                match self.next() {
                    Tok::Punct('[') => depth += 1,
                    Tok::Punct(']') => depth -= 1,
                    _ => {}
                }
            }
            if let [Tok::Ident(k), Tok::Punct('='), Tok::Str(v), ..] = &self.toks[start..]
                && k == "sql_name"
            {
                sql_name = Some(v.clone());
            }
        }
        sql_name
    }

    /// A type path with generics: `diesel::sql_types::Nullable<Array<Text>>`.
    fn ty(&mut self) -> Ty {
        let mut name = self.ident();
        while self.peek() == Some(&Tok::Punct(':')) {
            self.expect(':');
            self.expect(':');
            name = self.ident();
        }
        let mut args = Vec::new();
        if self.eat('<') {
            loop {
                args.push(self.ty());
                if !self.eat(',') {
                    break;
                }
                // A trailing comma before `>`.
                if self.peek() == Some(&Tok::Punct('>')) {
                    break;
                }
            }
            self.expect('>');
        }
        Ty { name, args }
    }

    /// One `name (pk, …) { col -> Type, … }` definition inside `table!`.
    fn table(&mut self) -> (String, Table) {
        let table_sql_name = self.attributes();
        let mut name = self.ident();
        // `schema.table`: only `public` is compared.
        if self.eat('.') {
            assert_eq!(name, "public", "schema.rs: table in schema {name}");
            name = self.ident();
        }
        self.context = format!("table {name}");
        let mut pk_rust = Vec::new();
        if self.eat('(') {
            while !self.eat(')') {
                pk_rust.push(self.ident());
                self.eat(',');
            }
        } else {
            // diesel's default primary key.
            pk_rust.push("id".to_string());
        }
        self.expect('{');
        let mut rust_to_sql = BTreeMap::new();
        let mut columns = BTreeMap::new();
        loop {
            let sql_name = self.attributes();
            if self.eat('}') {
                break;
            }
            let rust_name = self.ident();
            let sql = sql_name.unwrap_or_else(|| rust_name.clone());
            self.context = format!("{name}.{sql}");
            assert_eq!(self.next(), Tok::Arrow, "schema.rs: in {}", self.context);
            let ty = self.ty();
            let (nullable, udt) = pg_type(&self.context, &ty);
            let col = Col {
                udt,
                nullable,
                diesel: ty.to_string(),
            };
            assert!(
                columns.insert(sql.clone(), col).is_none(),
                "schema.rs: {} declared twice",
                self.context
            );
            rust_to_sql.insert(rust_name, sql);
            if !self.eat(',') {
                self.expect('}');
                break;
            }
        }
        let pk = pk_rust
            .iter()
            .map(|c| {
                rust_to_sql.get(c).cloned().unwrap_or_else(|| {
                    panic!("schema.rs: primary key column {c} of {name} is not a column")
                })
            })
            .collect();
        (table_sql_name.unwrap_or(name), Table { pk, columns })
    }
}

/// Every table of every `table!` invocation in the source.
fn parse_schema(src: &str) -> BTreeMap<String, Table> {
    let toks = tokenize(src);
    let mut out = BTreeMap::new();
    let mut i = 0;
    while i + 1 < toks.len() {
        if toks[i] != Tok::Ident("table".into()) || toks[i + 1] != Tok::Punct('!') {
            i += 1;
            continue;
        }
        let mut p = Parser {
            toks: &toks,
            pos: i + 2,
            context: "table!".into(),
        };
        p.expect('{');
        while !p.eat('}') {
            // `use diesel::sql_types::*;` and the like, allowed before the definitions.
            if p.peek() == Some(&Tok::Ident("use".into())) {
                while p.next() != Tok::Punct(';') {}
                continue;
            }
            let (name, table) = p.table();
            assert!(
                out.insert(name.clone(), table).is_none(),
                "schema.rs: table {name} declared twice"
            );
        }
        i = p.pos;
    }
    out
}

fn declared() -> BTreeMap<String, Table> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/db/schema.rs");
    let tables = parse_schema(&std::fs::read_to_string(path).expect("read src/db/schema.rs"));
    assert!(
        tables.contains_key("products"),
        "the parser found no products table in schema.rs"
    );
    tables
}

// ---------------------------------------------------------------------------------------------
// The migrated database.

#[derive(QueryableByName)]
struct DbColumn {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Text)]
    udt_name: String,
    #[diesel(sql_type = Bool)]
    nullable: bool,
}

#[derive(QueryableByName)]
struct DbKey {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Array<Text>)]
    columns: Vec<String>,
}

fn migrated(conn: &mut PgConnection) -> BTreeMap<String, Table> {
    // Generated columns (the search tsvector) are not in schema.rs: nothing writes them.
    let cols: Vec<DbColumn> = diesel::sql_query(
        "SELECT table_name::text, column_name::text, udt_name::text,
                is_nullable = 'YES' AS nullable
           FROM information_schema.columns
          WHERE table_schema = 'public' AND table_name <> '__diesel_schema_migrations'
            AND is_generated = 'NEVER'",
    )
    .load(conn)
    .unwrap();
    let keys: Vec<DbKey> = diesel::sql_query(
        "SELECT c.relname::text AS table_name,
                array_agg(a.attname::text ORDER BY k.ord) AS columns
           FROM pg_constraint con
           JOIN pg_class c ON c.oid = con.conrelid
           JOIN pg_namespace n ON n.oid = c.relnamespace
          CROSS JOIN LATERAL unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
           JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
          WHERE con.contype = 'p' AND n.nspname = 'public'
            AND c.relname <> '__diesel_schema_migrations'
          GROUP BY c.relname",
    )
    .load(conn)
    .unwrap();
    let mut out: BTreeMap<String, Table> = BTreeMap::new();
    for c in cols {
        out.entry(c.table_name).or_default().columns.insert(
            c.column_name,
            Col {
                diesel: String::new(),
                udt: c.udt_name,
                nullable: c.nullable,
            },
        );
    }
    for k in keys {
        out.entry(k.table_name).or_default().pk = k.columns;
    }
    out
}

/// Every difference, one line each (empty when they agree).
fn differences(
    declared: &BTreeMap<String, Table>,
    actual: &BTreeMap<String, Table>,
) -> Vec<String> {
    let null = |n: bool| if n { "NULL" } else { "NOT NULL" };
    let mut diffs = Vec::new();
    for (name, d) in declared {
        let Some(a) = actual.get(name) else {
            diffs.push(format!("table {name}: in schema.rs, not in the database"));
            continue;
        };
        if d.pk != a.pk {
            diffs.push(format!(
                "table {name}: primary key ({}) in schema.rs, ({}) in the database",
                d.pk.join(", "),
                a.pk.join(", ")
            ));
        }
        for (col, dc) in &d.columns {
            match a.columns.get(col) {
                None => diffs.push(format!("{name}.{col}: in schema.rs, not in the database")),
                Some(ac) => {
                    if dc.udt != ac.udt || dc.nullable != ac.nullable {
                        diffs.push(format!(
                            "{name}.{col}: schema.rs {} ({} {}), database {} {}",
                            dc.diesel,
                            dc.udt,
                            null(dc.nullable),
                            ac.udt,
                            null(ac.nullable)
                        ));
                    }
                }
            }
        }
        for (col, ac) in &a.columns {
            if !d.columns.contains_key(col) {
                diffs.push(format!(
                    "{name}.{col}: in the database ({} {}), not in schema.rs",
                    ac.udt,
                    null(ac.nullable)
                ));
            }
        }
    }
    for name in actual.keys().filter(|n| !declared.contains_key(*n)) {
        diffs.push(format!("table {name}: in the database, not in schema.rs"));
    }
    diffs
}

#[actix_rt::test]
async fn schema_rs_matches_the_migrated_database() {
    let db = common::TestDb::new();
    let mut conn = db.conn();
    let diffs = differences(&declared(), &migrated(&mut conn));
    assert!(
        diffs.is_empty(),
        "src/db/schema.rs differs from the migrations:\n  {}",
        diffs.join("\n  ")
    );
}

// The parser and the comparison on their own, so that a parser which reads nothing (and so
// finds nothing to differ) cannot pass.

const TRICKY: &str = r#"
// A file comment with table! { fake (id) { x -> Int4, } } in it.
diesel::table! {
    use diesel::sql_types::*;

    /// Doc comment on a table.
    public.tags (owner_id, position) {
        owner_id -> diesel::sql_types::Uuid,
        /* a block /* nested */ comment */
        position -> Int2,
        // a comment between columns
        labels -> Nullable<Array<Text>>,
        sparse -> Array<Nullable<Text>>,
        #[sql_name = "type"]
        kind -> Text,
        r#ref -> Nullable<BigInt>,
        payload -> Nullable<Jsonb>
    }

    #[sql_name = "plain_ids"]
    plain {
        id -> Integer,
        created_at -> Timestamptz,
    }
}
table! {
    users (id) {
        id -> Uuid,
        score -> Float8,
    }
}
"#;

#[test]
fn schema_parser_reads_types_keys_and_names() {
    let t = parse_schema(TRICKY);
    assert_eq!(
        t.keys().collect::<Vec<_>>(),
        ["plain_ids", "tags", "users"],
        "every table!, none from comments"
    );
    let tags = &t["tags"];
    assert_eq!(tags.pk, ["owner_id", "position"]);
    let got: Vec<(&str, &str, bool)> = tags
        .columns
        .iter()
        .map(|(n, c)| (n.as_str(), c.udt.as_str(), c.nullable))
        .collect();
    assert_eq!(
        got,
        [
            ("labels", "_text", true),
            ("owner_id", "uuid", false),
            ("payload", "jsonb", true),
            ("position", "int2", false),
            ("ref", "int8", true),
            ("sparse", "_text", false),
            ("type", "text", false),
        ]
    );
    assert_eq!(t["plain_ids"].pk, ["id"], "diesel's default key");
    assert_eq!(t["plain_ids"].columns["id"].udt, "int4");
    assert_eq!(t["users"].columns["score"].udt, "float8");
}

#[test]
#[should_panic(expected = "tags.ltree: diesel type `Ltree` is not in TYPE_MAP")]
fn schema_parser_fails_on_an_unknown_type() {
    parse_schema("diesel::table! { tags (id) { id -> Uuid, ltree -> Nullable<Ltree>, } }");
}

#[test]
fn schema_differences_name_type_nullability_and_key() {
    let declared = parse_schema(
        "table! { t (a, b) { a -> Int4, b -> Text, c -> Nullable<Int8>, d -> Bool, } }",
    );
    let mut actual = parse_schema(
        "table! { t (b, a) { a -> Int8, b -> Text, c -> Int8, e -> Bool, } u (id) { id -> Uuid, } }",
    );
    let diffs = differences(&declared, &actual);
    assert_eq!(
        diffs,
        [
            "table t: primary key (a, b) in schema.rs, (b, a) in the database",
            "t.a: schema.rs Int4 (int4 NOT NULL), database int8 NOT NULL",
            "t.c: schema.rs Nullable<Int8> (int8 NULL), database int8 NOT NULL",
            "t.d: in schema.rs, not in the database",
            "t.e: in the database (bool NOT NULL), not in schema.rs",
            "table u: in the database, not in schema.rs",
        ]
    );
    actual = parse_schema(
        "table! { t (a, b) { a -> Integer, b -> VarChar, c -> Nullable<BigInt>, d -> Bool, } }",
    );
    assert_eq!(
        differences(&declared, &actual),
        ["t.b: schema.rs Text (text NOT NULL), database varchar NOT NULL"]
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
