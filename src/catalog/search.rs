//! Product search and offline sync.
//!
//! Search combines PostgreSQL full-text search with the `indonesian` configuration (it stems:
//! `kerajinan` and `rajin` meet) and pg_trgm similarity (typos: `kopi arabica` finds "Kopi
//! Arabika"). Every sort is keyset-paginated on a total order ending in the id, so pages neither
//! skip nor repeat while products are inserted.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::BoxedSqlQuery;
use diesel::sql_types::{Array, BigInt, Bool, Float8, Int4, Text, Timestamptz, Uuid as SqlUuid};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::product::ProductStatus;
use super::{Product, ProductRow};
use crate::http::error::{Error, FieldError, Result};
use crate::http::pagination::{ExactF64, decode_cursor, encode_cursor};
use crate::identity::tokens::Caller;

#[derive(Debug, Default, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProductQuery {
    /// Words to look for in names and descriptions; stemmed and typo-tolerant.
    pub q: Option<String>,
    /// Category slug.
    pub category: Option<String>,
    pub shop: Option<Uuid>,
    /// Region code prefix: a village, district, regency or province code.
    pub region: Option<String>,
    /// Products of the member villages of this network.
    pub network: Option<Uuid>,
    /// Lowest final price, rupiah.
    #[param(minimum = 0, maximum = 2_000_000_000)]
    pub min_price: Option<i64>,
    /// Highest final price, rupiah; not below `min_price`.
    #[param(minimum = 0, maximum = 2_000_000_000)]
    pub max_price: Option<i64>,
    /// Only products with stock.
    pub in_stock: Option<bool>,
    /// Only flagship products (produk unggulan).
    pub flagship: Option<bool>,
    /// `relevance`, `price_asc`, `price_desc`, `newest` or `local` (own village, then network,
    /// district, regency, province, rest; the default when signed in). Default without a token:
    /// `relevance` with `q`, else `newest`. `relevance` needs `q`; `local` needs a token.
    pub sort: Option<String>,
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    /// Offline sync: every change since this time (RFC 3339, 1970-01-01T00:00:00Z to
    /// 9999-12-31T23:59:59Z), archived and inactive products included, oldest change first:
    /// every product that was ever public, and the products of suspended shops (unavailable).
    /// Combine only with `shop`, `region`, `limit`, `cursor`.
    pub updated_since: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Relevance,
    PriceAsc,
    PriceDesc,
    Newest,
    Local,
}

impl Sort {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "relevance" => Sort::Relevance,
            "price_asc" => Sort::PriceAsc,
            "price_desc" => Sort::PriceDesc,
            "newest" => Sort::Newest,
            "local" => Sort::Local,
            _ => return None,
        })
    }
}

/// Position after the last item of a page, by sort. Scores travel as their exact bits.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "s")]
enum Key {
    R {
        f: ExactF64,
        id: Uuid,
    },
    Pa {
        p: i64,
        id: Uuid,
    },
    Pd {
        p: i64,
        id: Uuid,
    },
    N {
        id: Uuid,
    },
    L {
        b: i32,
        f: ExactF64,
        id: Uuid,
    },
    /// Sync: `updated_at` in microseconds since 1970, and the id.
    S {
        t: i64,
        id: Uuid,
    },
}

/// Times accepted for `updated_since` and in sync cursors. PostgreSQL's range is wider but
/// not unbounded (earlier or later times are an error there, not an empty page); no product
/// changed before 1970.
fn time_range() -> std::ops::RangeInclusive<DateTime<Utc>> {
    let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).expect("a valid date");
    day(1970, 1, 1)
        .and_hms_opt(0, 0, 0)
        .expect("valid")
        .and_utc()
        ..=day(9999, 12, 31)
            .and_hms_micro_opt(23, 59, 59, 999_999)
            .expect("valid")
            .and_utc()
}

const TIME_RANGE_MESSAGE: &str =
    "an RFC 3339 time from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z";

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductPage {
    pub items: Vec<Product>,
    pub next_cursor: Option<String>,
    /// Sync only, on the last page only (null on the others and in searches): pass it as
    /// `updated_since` next time. Earlier pages cannot promise that nothing before it is left.
    pub sync_until: Option<DateTime<Utc>>,
}

#[derive(QueryableByName)]
struct Hit {
    #[diesel(embed)]
    product: ProductRow,
    #[diesel(sql_type = Bool)]
    shop_active: bool,
    #[diesel(sql_type = Float8)]
    score: f64,
    #[diesel(sql_type = Int4)]
    bucket: i32,
}

/// Raw SQL with numbered binds, built clause by clause.
struct Builder {
    query: BoxedSqlQuery<'static, Pg, diesel::query_builder::SqlQuery>,
    n: usize,
}

impl Builder {
    fn new() -> Self {
        Self {
            query: diesel::sql_query("").into_boxed(),
            n: 0,
        }
    }
    fn sql(mut self, s: &str) -> Self {
        self.query = self.query.sql(s);
        self
    }
    /// Appends `template` with every `?` replaced by the next placeholder, binding `value` to it.
    fn bind<ST, V>(mut self, template: &str, value: V) -> Self
    where
        V: diesel::serialize::ToSql<ST, Pg> + Send + 'static,
        ST: Send + 'static,
        Pg: diesel::sql_types::HasSqlType<ST>,
    {
        self.n += 1;
        let placeholder = format!("${}", self.n);
        self.query = self
            .query
            .sql(template.replace('?', &placeholder))
            .bind::<ST, V>(value);
        self
    }
}

const COLUMNS: &str = "p.id, p.shop_id, p.village_code, p.name, p.description, p.category, p.unit, \
    p.price_idr, p.discount_kind, p.discount_value, p.final_price_idr, p.stock, p.weight_grams, \
    p.photo_urls, p.certifications, p.flagship, p.status, p.version, p.created_at, p.updated_at, \
    p.published_at";

fn validate(q: &ProductQuery, signed_in: bool) -> Result<(Sort, Option<String>)> {
    let mut errors = Vec::new();
    let text =
        q.q.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string);
    if text.as_ref().is_some_and(|t| t.chars().count() > 200) {
        errors.push(FieldError::new("q", "at most 200 characters"));
    }
    if let Some(r) = &q.region
        && crate::regions::code_level(r).is_none()
    {
        errors.push(FieldError::new(
            "region",
            "a region code like 34, 34.02, 34.02.15 or 34.02.15.2004",
        ));
    }
    for (field, v) in [("min_price", q.min_price), ("max_price", q.max_price)] {
        if let Some(p) = v
            && !(0..=super::product::MAX_PRICE_IDR).contains(&p)
        {
            errors.push(FieldError::new(field, "0 to 2000000000"));
        }
    }
    if let (Some(a), Some(b)) = (q.min_price, q.max_price)
        && a > b
    {
        errors.push(FieldError::new("max_price", "not below min_price"));
    }
    let sort = match q.sort.as_deref() {
        Some(s) => match Sort::parse(s) {
            Some(Sort::Local) if !signed_in => {
                errors.push(FieldError::new("sort", "local needs a signed-in caller"));
                Sort::Newest
            }
            Some(sort) => sort,
            None => {
                errors.push(FieldError::new(
                    "sort",
                    "relevance, price_asc, price_desc, newest or local",
                ));
                Sort::Newest
            }
        },
        None if signed_in => Sort::Local,
        None if text.is_some() => Sort::Relevance,
        None => Sort::Newest,
    };
    if sort == Sort::Relevance && text.is_none() {
        errors.push(FieldError::new("sort", "relevance needs q"));
    }
    if let Some(t) = q.updated_since
        && !time_range().contains(&t)
    {
        errors.push(FieldError::new("updated_since", TIME_RANGE_MESSAGE));
    }
    if q.updated_since.is_some() {
        for (field, set) in [
            ("q", q.q.is_some()),
            ("category", q.category.is_some()),
            ("network", q.network.is_some()),
            ("min_price", q.min_price.is_some()),
            ("max_price", q.max_price.is_some()),
            ("in_stock", q.in_stock.is_some()),
            ("flagship", q.flagship.is_some()),
            ("sort", q.sort.is_some()),
        ] {
            if set {
                errors.push(FieldError::new(
                    field,
                    "not combinable with updated_since (sync)",
                ));
            }
        }
    }
    if errors.is_empty() {
        Ok((sort, text))
    } else {
        Err(Error::Validation(errors))
    }
}

/// Time before which every product change is committed and visible: the start of the oldest
/// transaction of this database that holds an xid (a writer), or now. Writers of other
/// databases on the same server cannot touch our products; counting them would only hold the
/// watermark back. Run it as its own statement, before the query that reads the changes
/// (which then takes a later snapshot).
pub fn sync_watermark(conn: &mut PgConnection) -> Result<DateTime<Utc>> {
    #[derive(QueryableByName)]
    struct W {
        #[diesel(sql_type = Timestamptz)]
        t: DateTime<Utc>,
    }
    let w: W = diesel::sql_query(
        "SELECT LEAST(clock_timestamp(), COALESCE(
             (SELECT min(xact_start) FROM pg_stat_activity
               WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()
                 AND datname = current_database()),
             clock_timestamp())) AS t",
    )
    .get_result(conn)?;
    Ok(w.t)
}

fn region_clause(b: Builder, region: &str) -> Builder {
    b.bind::<Text, _>(" AND (p.village_code = ?", region.to_string())
        .bind::<Text, _>(
            " OR p.village_code LIKE ?)",
            format!("{}.%", crate::regions::like_escape(region)),
        )
}

/// Catalogue search (public, active products of active shops) or, with `updated_since`, sync.
pub fn search(
    conn: &mut PgConnection,
    caller: Option<&Caller>,
    q: &ProductQuery,
) -> Result<ProductPage> {
    let (sort, text) = validate(q, caller.is_some())?;
    let limit = crate::http::pagination::PageParams {
        limit: q.limit,
        cursor: None,
    }
    .limit()?;
    let cursor: Option<Key> = q.cursor.as_deref().map(decode_cursor).transpose()?;
    if let Some(since) = q.updated_since {
        return sync(conn, q, since, limit, cursor);
    }
    let bad_cursor = || Error::field("cursor", "this cursor belongs to another sort");
    let networks_villages: Vec<String> = match caller {
        Some(c) if sort == Sort::Local => {
            use crate::db::schema::network_villages as nv;
            let ids = crate::villages::network_ids_of(conn, &c.village)?;
            nv::table
                .filter(nv::network_id.eq_any(ids))
                .select(nv::village_code)
                .distinct()
                .load(conn)?
        }
        _ => Vec::new(),
    };
    let mut b = Builder::new().sql(&format!(
        "SELECT * FROM (SELECT {COLUMNS}, s.status = 'active' AS shop_active, "
    ));
    b = match &text {
        Some(t) => b
            .bind::<Text, _>(
                "(ts_rank(p.search, websearch_to_tsquery('indonesian', ?))",
                t.clone(),
            )
            .bind::<Text, _>(
                " + similarity(lower(p.name), ?))::float8 AS score, ",
                t.to_lowercase(),
            ),
        None => b.sql("0::float8 AS score, "),
    };
    b = match caller {
        Some(c) if sort == Sort::Local => b
            .bind::<Text, _>("CASE WHEN p.village_code = ? THEN 0", c.village.clone())
            .bind::<Array<Text>, _>(" WHEN p.village_code = ANY(?) THEN 1", networks_villages)
            .bind::<Text, _>(
                " WHEN left(p.village_code, 8) = ? THEN 2",
                c.village.chars().take(8).collect::<String>(),
            )
            .bind::<Text, _>(
                " WHEN left(p.village_code, 5) = ? THEN 3",
                c.village.chars().take(5).collect::<String>(),
            )
            .bind::<Text, _>(
                " WHEN left(p.village_code, 2) = ? THEN 4 ELSE 5 END AS bucket",
                c.village.chars().take(2).collect::<String>(),
            ),
        _ => b.sql("0 AS bucket"),
    };
    // Public: published, active, of an active shop.
    b = b.sql(
        " FROM products p JOIN shops s ON s.id = p.shop_id \
         WHERE p.published_at IS NOT NULL AND p.status = 'active' AND s.status = 'active'",
    );
    if let Some(t) = &text {
        b = b
            .bind::<Text, _>(
                " AND (p.search @@ websearch_to_tsquery('indonesian', ?)",
                t.clone(),
            )
            .bind::<Text, _>(
                " OR lower(p.name) % ? OR ? <% lower(p.name))",
                t.to_lowercase(),
            );
    }
    if let Some(c) = &q.category {
        b = b.bind::<Text, _>(" AND p.category = ?", c.clone());
    }
    if let Some(s) = q.shop {
        b = b.bind::<SqlUuid, _>(" AND p.shop_id = ?", s);
    }
    if let Some(r) = &q.region {
        b = region_clause(b, r);
    }
    if let Some(n) = q.network {
        b = b.bind::<SqlUuid, _>(" AND p.village_code IN (SELECT village_code FROM network_villages WHERE network_id = ?)", n);
    }
    if let Some(p) = q.min_price {
        b = b.bind::<BigInt, _>(" AND p.final_price_idr >= ?", p);
    }
    if let Some(p) = q.max_price {
        b = b.bind::<BigInt, _>(" AND p.final_price_idr <= ?", p);
    }
    if q.in_stock == Some(true) {
        b = b.sql(" AND p.stock > 0");
    }
    if q.flagship == Some(true) {
        b = b.sql(" AND p.flagship");
    }
    b = b.sql(") x WHERE TRUE");
    b = match (sort, cursor) {
        (_, None) => b,
        (Sort::Relevance, Some(Key::R { f: ExactF64(f), id })) => b
            .bind::<Float8, _>(" AND (x.score < ?", f)
            .bind::<Float8, _>(" OR (x.score = ?", f)
            .bind::<SqlUuid, _>(" AND x.id < ?))", id),
        (Sort::PriceAsc, Some(Key::Pa { p, id })) => b
            .bind::<BigInt, _>(" AND (x.final_price_idr, x.id) > (?", p)
            .bind::<SqlUuid, _>(", ?)", id),
        (Sort::PriceDesc, Some(Key::Pd { p, id })) => b
            .bind::<BigInt, _>(" AND (x.final_price_idr, x.id) < (?", p)
            .bind::<SqlUuid, _>(", ?)", id),
        (Sort::Newest, Some(Key::N { id })) => b.bind::<SqlUuid, _>(" AND x.id < ?", id),
        (
            Sort::Local,
            Some(Key::L {
                b: bucket,
                f: ExactF64(f),
                id,
            }),
        ) => b
            .bind::<Int4, _>(" AND (x.bucket > ?", bucket)
            .bind::<Int4, _>(" OR (x.bucket = ?", bucket)
            .bind::<Float8, _>(" AND (x.score < ?", f)
            .bind::<Float8, _>(" OR (x.score = ?", f)
            .bind::<SqlUuid, _>(" AND x.id < ?))))", id),
        _ => return Err(bad_cursor()),
    };
    b = b.sql(match sort {
        Sort::Relevance => " ORDER BY x.score DESC, x.id DESC",
        Sort::PriceAsc => " ORDER BY x.final_price_idr ASC, x.id ASC",
        Sort::PriceDesc => " ORDER BY x.final_price_idr DESC, x.id DESC",
        Sort::Newest => " ORDER BY x.id DESC",
        Sort::Local => " ORDER BY x.bucket ASC, x.score DESC, x.id DESC",
    });
    b = b.bind::<BigInt, _>(" LIMIT ?", limit + 1);
    let mut hits: Vec<Hit> = b.query.load(conn)?;
    let has_more = hits.len() as i64 > limit;
    hits.truncate(limit as usize);
    let next_cursor = if has_more {
        hits.last().map(|h| {
            let id = h.product.id;
            encode_cursor(&match sort {
                Sort::Relevance => Key::R {
                    f: ExactF64(h.score),
                    id,
                },
                Sort::PriceAsc => Key::Pa {
                    p: h.product.final_price_idr,
                    id,
                },
                Sort::PriceDesc => Key::Pd {
                    p: h.product.final_price_idr,
                    id,
                },
                Sort::Newest => Key::N { id },
                Sort::Local => Key::L {
                    b: h.bucket,
                    f: ExactF64(h.score),
                    id,
                },
            })
        })
    } else {
        None
    };
    Ok(ProductPage {
        items: hits
            .into_iter()
            .map(|h| Product::from_row(h.product, h.shop_active))
            .collect(),
        next_cursor,
        sync_until: None,
    })
}

fn sync(
    conn: &mut PgConnection,
    q: &ProductQuery,
    since: DateTime<Utc>,
    limit: i64,
    cursor: Option<Key>,
) -> Result<ProductPage> {
    let until = sync_watermark(conn)?;
    // What phones may hold: products that were published, of shops that were ever public
    // (suspended ones were active; phones learn their products are unavailable). Drafts,
    // deleted drafts and products of pending or rejected shops never leave the server.
    let mut b = Builder::new()
        .sql(&format!(
            "SELECT {COLUMNS}, s.status = 'active' AS shop_active, 0::float8 AS score, 0 AS bucket \
               FROM products p JOIN shops s ON s.id = p.shop_id \
              WHERE p.published_at IS NOT NULL AND s.status IN ('active', 'suspended')"
        ))
        .bind::<Timestamptz, _>(" AND p.updated_at < ?", until);
    b = match cursor {
        None => b.bind::<Timestamptz, _>(" AND p.updated_at >= ?", since),
        Some(Key::S { t, id }) => {
            let t = DateTime::from_timestamp_micros(t)
                .filter(|t| time_range().contains(t))
                .ok_or_else(|| Error::field("cursor", "not a cursor returned by this API"))?;
            b.bind::<Timestamptz, _>(" AND (p.updated_at, p.id) > (?", t)
                .bind::<SqlUuid, _>(", ?)", id)
        }
        Some(_) => {
            return Err(Error::field(
                "cursor",
                "this cursor belongs to a search, not a sync",
            ));
        }
    };
    if let Some(s) = q.shop {
        b = b.bind::<SqlUuid, _>(" AND p.shop_id = ?", s);
    }
    if let Some(r) = &q.region {
        b = region_clause(b, r);
    }
    b = b
        .sql(" ORDER BY p.updated_at, p.id")
        .bind::<BigInt, _>(" LIMIT ?", limit + 1);
    let mut hits: Vec<Hit> = b.query.load(conn)?;
    let has_more = hits.len() as i64 > limit;
    hits.truncate(limit as usize);
    let next_cursor = if has_more {
        hits.last().map(|h| {
            encode_cursor(&Key::S {
                t: h.product.updated_at.timestamp_micros(),
                id: h.product.id,
            })
        })
    } else {
        None
    };
    Ok(ProductPage {
        items: hits
            .into_iter()
            .map(|h| Product::from_row(h.product, h.shop_active))
            .collect(),
        // Only when nothing is left: an earlier page's watermark would make the client skip
        // the rest of this walk next time.
        sync_until: next_cursor.is_none().then_some(until),
        next_cursor,
    })
}

/// Every product of a shop, whatever its status, for the people who manage it; newest first.
pub fn for_managers(
    conn: &mut PgConnection,
    caller: &Caller,
    shop: Uuid,
    status: Option<&str>,
    limit: i64,
    before: Option<Uuid>,
) -> Result<crate::http::pagination::Page<Product>> {
    use crate::db::schema::products;
    let s = crate::shops::load_managed(conn, caller, shop, true)?;
    let status = status
        .map(|st| {
            ProductStatus::parse(st).ok_or_else(|| Error::field("status", ProductStatus::choices()))
        })
        .transpose()?;
    let mut query = products::table
        .filter(products::shop_id.eq(shop))
        .select(ProductRow::as_select())
        .order(products::id.desc())
        .limit(limit + 1)
        .into_boxed();
    if let Some(st) = status {
        query = query.filter(products::status.eq(st));
    }
    if let Some(b) = before {
        query = query.filter(products::id.lt(b));
    }
    let active = s.status == crate::shops::ShopStatus::Active;
    Ok(crate::http::pagination::page(
        query.load(conn)?,
        limit,
        |r| r.id,
        |r| Product::from_row(r, active),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_keys_round_trip() {
        let id = Uuid::now_v7();
        let awkward = [
            0.1 + 0.2,
            0.123_456_789_012_345_67,
            // 17 significant digits that come back one ULP off through JSON decimals.
            f64::from_bits(0x4004_c7f7_5c88_9425),
            f64::from_bits(0x3fef_9c25_8ac8_e024),
            f64::from_bits(0x000d_02e7_7e6a_4427), // subnormal
            5e-324,
            -0.0,
        ];
        let mut keys = vec![
            Key::Pa {
                p: 2_000_000_000,
                id,
            },
            Key::N { id },
            Key::S {
                t: 1_763_900_000_123_456,
                id,
            },
        ];
        for f in awkward {
            keys.push(Key::R { f: ExactF64(f), id });
            keys.push(Key::L {
                b: 3,
                f: ExactF64(f),
                id,
            });
        }
        for k in keys {
            let back: Key = decode_cursor(&encode_cursor(&k)).unwrap();
            // ExactF64 compares bits, so -0.0 ≠ 0.0 and one ULP off fails here.
            assert_eq!(back, k);
        }
    }

    #[test]
    fn garbage_cursors_are_refused() {
        let id = Uuid::now_v7();
        for bad in [
            "not a cursor".to_string(),
            encode_cursor(&serde_json::json!({"s": "R", "f": 0.5, "id": id})),
            encode_cursor(&serde_json::json!({"s": "R", "f": "7ff8000000000000", "id": id})),
            encode_cursor(&serde_json::json!({"s": "X", "id": id})),
        ] {
            assert!(decode_cursor::<Key>(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sync_times_are_range_checked() {
        let q = |t: &str| ProductQuery {
            updated_since: Some(t.parse().unwrap()),
            ..Default::default()
        };
        assert!(validate(&q("1970-01-01T00:00:00Z"), false).is_ok());
        assert!(validate(&q("9999-12-31T23:59:59.999999Z"), false).is_ok());
        for bad in ["1969-12-31T23:59:59Z", "-5000-01-01T00:00:00Z"] {
            let Err(Error::Validation(e)) = validate(&q(bad), false) else {
                panic!("{bad} accepted");
            };
            assert_eq!(e[0].field, "updated_since");
        }
    }

    #[test]
    fn sort_defaults_and_rules() {
        let q = |text: Option<&str>, sort: Option<&str>| ProductQuery {
            q: text.map(str::to_string),
            sort: sort.map(str::to_string),
            ..Default::default()
        };
        assert_eq!(validate(&q(None, None), true).unwrap().0, Sort::Local);
        assert_eq!(
            validate(&q(Some("kopi"), None), false).unwrap().0,
            Sort::Relevance
        );
        assert_eq!(validate(&q(None, None), false).unwrap().0, Sort::Newest);
        assert!(validate(&q(None, Some("local")), false).is_err());
        assert!(validate(&q(None, Some("relevance")), false).is_err());
        assert!(validate(&q(None, Some("cheapest")), true).is_err());
    }
}
