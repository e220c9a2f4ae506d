//! Indonesia's official regions (Kemendagri codes): province `34`, regency/city `34.02`,
//! district (kecamatan) `34.02.15`, village (desa/kelurahan) `34.02.15.2004`. A code prefix
//! selects a whole area, which is how filters and the "local" ranking work.

pub mod import;
pub mod routes;

use diesel::prelude::*;
use diesel::sql_types::{Float8, Int2, Nullable, Text};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::db::schema::regions;
use crate::http::error::{Error, Result};
use crate::http::pagination::{ExactF64, Page, page};

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Insertable)]
#[diesel(table_name = regions)]
pub struct RegionRow {
    pub code: String,
    pub parent_code: Option<String>,
    pub level: i16,
    pub kind: String,
    pub name: String,
    pub postal_code: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RegionRef {
    pub code: String,
    pub name: String,
    pub level: i16,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Region {
    /// Dotted Kemendagri code, e.g. `34.02.15.2004`.
    pub code: String,
    pub name: String,
    /// 1 province, 2 regency/city, 3 district, 4 village.
    pub level: i16,
    /// provinsi, kabupaten, kota, kecamatan, desa, kelurahan, desa_adat.
    pub kind: String,
    pub parent_code: Option<String>,
    pub postal_code: Option<String>,
    /// Ancestors from the province down.
    pub parents: Vec<RegionRef>,
}

/// Checks the shape of a region code and returns its level (number of segments).
pub fn code_level(code: &str) -> Option<i16> {
    let parts: Vec<&str> = code.split('.').collect();
    let widths = [2, 2, 2, 4];
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    for (part, width) in parts.iter().zip(widths) {
        if part.len() != width || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
    }
    Some(parts.len() as i16)
}

/// Codes of the ancestors of `code`, province first: `34.02.15.2004` → `34`, `34.02`, `34.02.15`.
pub fn ancestor_codes(code: &str) -> Vec<String> {
    let parts: Vec<&str> = code.split('.').collect();
    (1..parts.len()).map(|n| parts[..n].join(".")).collect()
}

pub fn validate_code(field: &str, code: &str) -> Result<i16> {
    code_level(code).ok_or_else(|| {
        Error::field(
            field,
            "not a Kemendagri region code like 34, 34.02, 34.02.15 or 34.02.15.2004",
        )
    })
}

fn with_parents(conn: &mut PgConnection, rows: Vec<RegionRow>) -> Result<Vec<Region>> {
    let mut wanted: Vec<String> = rows.iter().flat_map(|r| ancestor_codes(&r.code)).collect();
    wanted.sort();
    wanted.dedup();
    let parents: Vec<(String, String, i16)> = regions::table
        .filter(regions::code.eq_any(&wanted))
        .select((regions::code, regions::name, regions::level))
        .load(conn)?;
    let lookup: std::collections::HashMap<String, RegionRef> = parents
        .into_iter()
        .map(|(code, name, level)| (code.clone(), RegionRef { code, name, level }))
        .collect();
    Ok(rows
        .into_iter()
        .map(|r| Region {
            parents: ancestor_codes(&r.code)
                .iter()
                .filter_map(|c| lookup.get(c).cloned())
                .collect(),
            code: r.code,
            name: r.name,
            level: r.level,
            kind: r.kind,
            parent_code: r.parent_code,
            postal_code: r.postal_code,
        })
        .collect())
}

pub fn get(conn: &mut PgConnection, code: &str) -> Result<Region> {
    validate_code("code", code)?;
    let row = regions::table
        .find(code)
        .select(RegionRow::as_select())
        .first(conn)?;
    Ok(with_parents(conn, vec![row])?.remove(0))
}

pub fn children(
    conn: &mut PgConnection,
    code: &str,
    limit: i64,
    after: Option<String>,
) -> Result<Page<Region>> {
    validate_code("code", code)?;
    let exists: bool =
        diesel::select(diesel::dsl::exists(regions::table.find(code))).get_result(conn)?;
    if !exists {
        return Err(Error::NotFound);
    }
    let mut query = regions::table
        .filter(regions::parent_code.eq(code))
        .select(RegionRow::as_select())
        .order(regions::code)
        .limit(limit + 1)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(regions::code.gt(after));
    }
    let rows = query.load(conn)?;
    let pg = page(rows, limit, |r| r.code.clone(), |r| r);
    Ok(Page {
        items: with_parents(conn, pg.items)?,
        next_cursor: pg.next_cursor,
    })
}

#[derive(QueryableByName)]
struct ScoredRegion {
    #[diesel(embed)]
    region: RegionRow,
    #[diesel(sql_type = Float8)]
    score: f64,
}

/// Escapes `%`, `_` and `\` for a LIKE pattern.
pub fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// Position after the last region of a search page: its score (exact bits) and code.
pub type SearchCursor = (ExactF64, String);

/// Regions by name, ranked: exact name, then name prefix, then trigram similarity (typos).
/// Without `q`, all regions (of `level`) in code order.
pub fn search(
    conn: &mut PgConnection,
    q: Option<&str>,
    level: Option<i16>,
    limit: i64,
    cursor: Option<SearchCursor>,
) -> Result<Page<Region>> {
    let q = q.map(str::trim).filter(|q| !q.is_empty());
    let Some(q) = q else {
        let mut query = regions::table
            .select(RegionRow::as_select())
            .order(regions::code)
            .limit(limit + 1)
            .into_boxed();
        if let Some(level) = level {
            query = query.filter(regions::level.eq(level));
        }
        if let Some((_, after)) = cursor {
            query = query.filter(regions::code.gt(after));
        }
        let pg = page(
            query.load(conn)?,
            limit,
            |r| (ExactF64(0.0), r.code.clone()),
            |r| r,
        );
        return Ok(Page {
            items: with_parents(conn, pg.items)?,
            next_cursor: pg.next_cursor,
        });
    };
    let q = q.to_lowercase();
    let rows: Vec<ScoredRegion> = diesel::sql_query(
        "SELECT * FROM (
            SELECT code, parent_code, level, kind, name, postal_code,
                   (CASE WHEN lower(name) = $1 THEN 2
                         WHEN lower(name) LIKE $2 || '%' THEN 1 ELSE 0 END
                    + similarity(lower(name), $1))::float8 AS score
              FROM regions
             WHERE (lower(name) % $1 OR lower(name) LIKE '%' || $2 || '%')
               AND ($3::int2 IS NULL OR level = $3)
         ) s
         WHERE $4::float8 IS NULL OR s.score < $4 OR (s.score = $4 AND s.code > $5)
         ORDER BY s.score DESC, s.code
         LIMIT $6",
    )
    .bind::<Text, _>(&q)
    .bind::<Text, _>(like_escape(&q))
    .bind::<Nullable<Int2>, _>(level)
    .bind::<Nullable<Float8>, _>(cursor.as_ref().map(|c| c.0.0))
    .bind::<Nullable<Text>, _>(cursor.as_ref().map(|c| c.1.clone()))
    .bind::<diesel::sql_types::BigInt, _>(limit + 1)
    .load(conn)?;
    let pg = page(
        rows,
        limit,
        |r| (ExactF64(r.score), r.region.code.clone()),
        |r| r.region,
    );
    Ok(Page {
        items: with_parents(conn, pg.items)?,
        next_cursor: pg.next_cursor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_levels() {
        assert_eq!(code_level("34"), Some(1));
        assert_eq!(code_level("34.02"), Some(2));
        assert_eq!(code_level("34.02.15"), Some(3));
        assert_eq!(code_level("34.02.15.2004"), Some(4));
        for bad in [
            "",
            "3",
            "34.2",
            "34.02.15.204",
            "34.02.15.2004.1",
            "ab",
            "34-02",
            "34..02",
        ] {
            assert_eq!(code_level(bad), None, "{bad}");
        }
    }

    #[test]
    fn ancestors() {
        assert_eq!(
            ancestor_codes("34.02.15.2004"),
            vec!["34", "34.02", "34.02.15"]
        );
        assert!(ancestor_codes("34").is_empty());
    }

    #[test]
    fn search_cursor_keeps_the_exact_score() {
        use crate::http::pagination::{decode_cursor, encode_cursor};
        for f in [
            0.1 + 0.2,
            // One ULP off through JSON decimals; a subnormal.
            f64::from_bits(0x3fba_dd5e_ff2a_b9f8),
            f64::from_bits(0x000d_02e7_7e6a_4427),
            2.0 + 0.123_456_789_012_345_67,
        ] {
            let c: SearchCursor = (ExactF64(f), "34.02".into());
            let back: SearchCursor = decode_cursor(&encode_cursor(&c)).unwrap();
            assert_eq!(back.0.0.to_bits(), f.to_bits(), "{f:e}");
            assert_eq!(back.1, "34.02");
        }
        // A cursor of the old shape (a JSON number) is refused, not misread.
        assert!(decode_cursor::<SearchCursor>(&encode_cursor(&(0.5, "34"))).is_err());
    }

    #[test]
    fn like_escaping() {
        assert_eq!(like_escape("50%_a\\"), "50\\%\\_a\\\\");
    }
}
