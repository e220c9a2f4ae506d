//! Catalog: products of shops, their stock, and the search that buyers and offline phones use.

pub mod product;
pub mod routes;
pub mod search;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use self::product::{Discount, DiscountKind, ProductStatus};
use crate::audit;
use crate::db::schema::{categories, products, stock_adjustments};
use crate::http::error::{Error, FieldError, Result};
use crate::http::pagination::{Page, page};
use crate::identity::authz;
use crate::identity::tokens::Caller;
use crate::shops::{self as shop_domain, ShopStatus};

#[derive(Debug, Clone, Queryable, Selectable, QueryableByName)]
#[diesel(table_name = products)]
pub struct ProductRow {
    pub id: Uuid,
    pub shop_id: Uuid,
    pub village_code: String,
    pub name: String,
    pub description: String,
    pub category: String,
    pub unit: String,
    pub price_idr: i64,
    pub discount_kind: Option<String>,
    pub discount_value: Option<i64>,
    pub final_price_idr: i64,
    pub stock: i32,
    pub weight_grams: Option<i32>,
    pub photo_urls: Vec<String>,
    pub certifications: Vec<String>,
    pub flagship: bool,
    pub status: ProductStatus,
    pub version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub published_at: Option<DateTime<Utc>>,
}

impl ProductRow {
    pub fn discount(&self) -> Option<Discount> {
        match (
            self.discount_kind.as_deref().and_then(DiscountKind::parse),
            self.discount_value,
        ) {
            (Some(kind), Some(value)) => Some(Discount { kind, value }),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Product {
    pub id: Uuid,
    pub shop_id: Uuid,
    pub village_code: String,
    pub name: String,
    pub description: String,
    pub category: String,
    pub unit: String,
    pub price_idr: i64,
    pub discount: Option<Discount>,
    /// What a buyer pays per unit: price minus discount, never below 1.
    pub final_price_idr: i64,
    pub stock: i32,
    pub weight_grams: Option<i32>,
    pub photo_urls: Vec<String>,
    pub certifications: Vec<String>,
    /// Produk unggulan: the village's flagship product.
    pub flagship: bool,
    pub status: ProductStatus,
    /// Whether it can be bought now: active, and its shop is active.
    pub available: bool,
    /// Increases with every change; the `ETag` is `"v{version}"`.
    pub version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When it first became public (`active` or `inactive`); null while it is a draft, and for
    /// a draft that was deleted without ever being published (which stays private).
    pub published_at: Option<DateTime<Utc>>,
}

impl Product {
    pub fn from_row(r: ProductRow, shop_active: bool) -> Self {
        let discount = r.discount();
        Product {
            available: shop_active && r.status == ProductStatus::Active,
            id: r.id,
            shop_id: r.shop_id,
            village_code: r.village_code,
            name: r.name,
            description: r.description,
            category: r.category,
            unit: r.unit,
            price_idr: r.price_idr,
            discount,
            final_price_idr: r.final_price_idr,
            stock: r.stock,
            weight_grams: r.weight_grams,
            photo_urls: r.photo_urls,
            certifications: r.certifications,
            flagship: r.flagship,
            status: r.status,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
            published_at: r.published_at,
        }
    }

    pub fn etag(&self) -> String {
        etag(self.version, self.stock)
    }
}

/// A product's `ETag`: its version and its stock. Sales change the stock but not the version
/// (an operator's `If-Match` compares the version only, so a sale between reading and saving
/// never costs them a 412), while a cached copy is never "not modified" after a sale
/// (`If-None-Match` compares the whole tag).
pub fn etag(version: i32, stock: i32) -> String {
    format!("\"v{version}-s{stock}\"")
}

#[derive(Debug, Queryable, Serialize, ToSchema)]
pub struct Category {
    pub slug: String,
    pub name: String,
    pub position: i32,
}

pub fn categories(conn: &mut PgConnection) -> Result<Vec<Category>> {
    Ok(categories::table.order(categories::position).load(conn)?)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProduct {
    #[schema(
        min_length = 1,
        max_length = 150,
        pattern = r"^[^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*$"
    )]
    pub name: String,
    #[serde(default)]
    #[schema(
        max_length = 5000,
        pattern = r"^[^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*$"
    )]
    pub description: String,
    /// A category slug (`GET /categories`).
    pub category: String,
    /// kg, gram, liter, ml, pcs, ikat, pack, karung, botol, lusin, porsi, paket, or a custom unit (≤ 20 characters).
    #[schema(
        min_length = 1,
        max_length = 20,
        pattern = r"^[^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*$"
    )]
    pub unit: String,
    /// Integer rupiah, 100..=2,000,000,000.
    #[schema(minimum = 100, maximum = 2_000_000_000)]
    pub price_idr: i64,
    pub discount: Option<Discount>,
    /// Opening stock (later changes go through stock adjustments).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub stock: i64,
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub weight_grams: Option<i64>,
    #[serde(default)]
    #[schema(schema_with = photo_urls_schema)]
    pub photo_urls: Vec<String>,
    #[serde(default)]
    #[schema(schema_with = certifications_schema)]
    pub certifications: Vec<String>,
    #[serde(default)]
    pub flagship: bool,
    /// `draft`, `active` (default) or `inactive`.
    #[schema(schema_with = new_product_status_schema)]
    pub status: Option<ProductStatus>,
}

/// Changes to a product; absent fields stay, `discount: null` removes the discount. Stock is not
/// here: it changes through stock adjustments (with a reason) and orders.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductUpdate {
    #[schema(
        min_length = 1,
        max_length = 150,
        pattern = r"^[^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*$"
    )]
    pub name: Option<String>,
    #[schema(
        max_length = 5000,
        pattern = r"^[^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*$"
    )]
    pub description: Option<String>,
    pub category: Option<String>,
    /// As in `NewProduct`.
    #[schema(
        min_length = 1,
        max_length = 20,
        pattern = r"^[^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*$"
    )]
    pub unit: Option<String>,
    #[schema(minimum = 100, maximum = 2_000_000_000)]
    pub price_idr: Option<i64>,
    #[serde(default, deserialize_with = "crate::http::extract::double_option")]
    pub discount: Option<Option<Discount>>,
    #[serde(default, deserialize_with = "crate::http::extract::double_option")]
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub weight_grams: Option<Option<i64>>,
    #[schema(schema_with = photo_urls_update_schema)]
    pub photo_urls: Option<Vec<String>>,
    #[schema(schema_with = certifications_update_schema)]
    pub certifications: Option<Vec<String>>,
    pub flagship: Option<bool>,
    /// `active`, `inactive` or `archived` (a published product never returns to `draft`, and
    /// an archived one stays archived).
    pub status: Option<ProductStatus>,
}

fn check_category(conn: &mut PgConnection, slug: &str) -> Result<()> {
    let exists: bool =
        diesel::select(diesel::dsl::exists(categories::table.find(slug))).get_result(conn)?;
    if exists {
        Ok(())
    } else {
        Err(Error::field(
            "category",
            "unknown category; see GET /api/v1/categories",
        ))
    }
}

/// Operators of the shop (and its village admin) manage its products.
fn managed_shop(conn: &mut PgConnection, caller: &Caller, shop: Uuid) -> Result<shop_domain::Shop> {
    shop_domain::load_managed(conn, caller, shop, true)
}

/// Whether [`load`] locks the product row for the change that follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lock {
    None,
    ForUpdate,
}

/// A product as [`load`] found it for a caller.
#[derive(Debug)]
pub struct Loaded {
    pub row: ProductRow,
    pub shop_status: ShopStatus,
    /// The caller manages the product's shop (operator, or its village admin as the token
    /// says: good for reads).
    pub manage: bool,
    /// The caller operates the shop (read from the database).
    pub operator: bool,
}

impl Loaded {
    pub fn into_product(self) -> Product {
        Product::from_row(self.row, self.shop_status == ShopStatus::Active)
    }
}

/// The one access check of a product: published products of active shops are public; drafts,
/// deleted drafts and products of shops that are not active only to those who manage the shop
/// (through a token of its village, see [`shop_domain::load`]). Hidden is 404; database errors
/// stay what they are.
pub fn load(
    conn: &mut PgConnection,
    caller: Option<&Caller>,
    id: Uuid,
    lock: Lock,
) -> Result<Loaded> {
    let query = products::table.find(id).select(ProductRow::as_select());
    let row: ProductRow = match lock {
        Lock::None => query.first(conn)?,
        Lock::ForUpdate => query.for_update().first(conn)?,
    };
    // NotFound when the shop is hidden from this caller (not active, and not theirs).
    let (shop, access) = shop_domain::load(conn, caller, row.shop_id)?;
    let public = shop.status == ShopStatus::Active && row.published_at.is_some();
    if !public && !access.manage() {
        return Err(Error::NotFound);
    }
    Ok(Loaded {
        row,
        shop_status: shop.status,
        manage: access.manage(),
        operator: access.operator,
    })
}

/// A product the caller manages. One they may see but not manage is 403 (it is public, so say
/// why); one they may not see is 404.
pub fn load_managed(
    conn: &mut PgConnection,
    caller: &Caller,
    id: Uuid,
    lock: Lock,
) -> Result<Loaded> {
    let loaded = load(conn, Some(caller), id, lock)?;
    // A write: the admin role as it is now, not the token's snapshot.
    let manages_now = loaded.operator
        || (loaded.manage
            && authz::current(conn, caller)?.is_village_admin(&loaded.row.village_code));
    if !manages_now {
        return Err(Error::Forbidden(
            "only this shop's operators (or its village admin) manage its products".into(),
        ));
    }
    Ok(loaded)
}

/// With `If-Match`: the product must not have changed since the client read it.
fn check_version(row: &ProductRow, expected_version: Option<i32>) -> Result<()> {
    match expected_version {
        Some(v) if v != row.version => Err(Error::PreconditionFailed),
        _ => Ok(()),
    }
}

pub fn create(
    conn: &mut PgConnection,
    caller: &Caller,
    shop_id: Uuid,
    p: &NewProduct,
) -> Result<Product> {
    let mut errors = Vec::new();
    let name = product::validate_text("name", &p.name, 1, 150, &mut errors);
    let description = product::validate_text("description", &p.description, 0, 5000, &mut errors);
    let unit = product::validate_unit(&p.unit, &mut errors);
    product::validate_price(p.price_idr, &mut errors);
    if let Some(d) = &p.discount {
        product::validate_discount(p.price_idr, d, &mut errors);
    }
    product::validate_stock("stock", p.stock, &mut errors);
    if let Some(w) = p.weight_grams {
        product::validate_weight(w, &mut errors);
    }
    let photos = product::validate_photos(&p.photo_urls, &mut errors);
    let certs = product::validate_certifications(&p.certifications, &mut errors);
    let status = p.status.unwrap_or(ProductStatus::Active);
    if !status.can_start_as() {
        errors.push(FieldError::new("status", "draft, active or inactive"));
    }
    if !errors.is_empty() {
        return Err(Error::Validation(errors));
    }
    let shop = managed_shop(conn, caller, shop_id)?;
    check_category(conn, &p.category)?;
    let row: ProductRow = diesel::insert_into(products::table)
        .values((
            products::id.eq(Uuid::now_v7()),
            products::shop_id.eq(shop_id),
            products::village_code.eq(&shop.village_code),
            products::name.eq(&name),
            products::description.eq(&description),
            products::category.eq(&p.category),
            products::unit.eq(&unit),
            products::price_idr.eq(p.price_idr),
            products::discount_kind.eq(p.discount.map(|d| d.kind.as_str())),
            products::discount_value.eq(p.discount.map(|d| d.value)),
            products::final_price_idr.eq(product::final_price(p.price_idr, p.discount)),
            products::stock.eq(p.stock as i32),
            products::weight_grams.eq(p.weight_grams.map(|w| w as i32)),
            products::photo_urls.eq(&photos),
            products::certifications.eq(&certs),
            products::flagship.eq(p.flagship),
            products::status.eq(status),
        ))
        .returning(ProductRow::as_returning())
        .get_result(conn)?;
    Ok(Product::from_row(row, shop.status == ShopStatus::Active))
}

/// A product as `caller` may see it (see [`load`]).
pub fn get(conn: &mut PgConnection, caller: Option<&Caller>, id: Uuid) -> Result<Product> {
    Ok(load(conn, caller, id, Lock::None)?.into_product())
}

pub fn update(
    conn: &mut PgConnection,
    caller: &Caller,
    id: Uuid,
    precondition: crate::http::IfMatch,
    u: &ProductUpdate,
) -> Result<Product> {
    let Loaded {
        row: before,
        shop_status,
        ..
    } = load_managed(conn, caller, id, Lock::ForUpdate)?;
    // The body is checked (against the product as it is now) before `If-Match`: a bad body is a
    // 400 whatever the ETag, and a good one sent with a stale ETag a 412.
    let mut errors = Vec::new();
    let name = u
        .name
        .as_deref()
        .map(|n| product::validate_text("name", n, 1, 150, &mut errors))
        .unwrap_or(before.name.clone());
    let description = u
        .description
        .as_deref()
        .map(|d| product::validate_text("description", d, 0, 5000, &mut errors))
        .unwrap_or(before.description.clone());
    let unit = u
        .unit
        .as_deref()
        .map(|x| product::validate_unit(x, &mut errors))
        .unwrap_or(before.unit.clone());
    let price = u.price_idr.unwrap_or(before.price_idr);
    if u.price_idr.is_some() {
        product::validate_price(price, &mut errors);
    }
    let discount = u.discount.unwrap_or_else(|| before.discount());
    if let Some(d) = &discount {
        product::validate_discount(price, d, &mut errors);
    }
    let weight = match u.weight_grams {
        Some(Some(w)) => {
            product::validate_weight(w, &mut errors);
            Some(w as i32)
        }
        Some(None) => None,
        None => before.weight_grams,
    };
    let photos = u
        .photo_urls
        .as_deref()
        .map(|p| product::validate_photos(p, &mut errors))
        .unwrap_or(before.photo_urls.clone());
    let certs = u
        .certifications
        .as_deref()
        .map(|c| product::validate_certifications(c, &mut errors))
        .unwrap_or(before.certifications.clone());
    let status = u.status.unwrap_or(before.status);
    if !before.status.can_become(status) {
        errors.push(FieldError::new(
            "status",
            format!("a {} product cannot become {status}", before.status),
        ));
    }
    if !errors.is_empty() {
        return Err(Error::Validation(errors));
    }
    if let Some(c) = &u.category {
        check_category(conn, c)?;
    }
    check_version(&before, precondition.expected_version()?)?;
    let row: ProductRow = diesel::update(products::table.find(id))
        .set((
            products::name.eq(&name),
            products::description.eq(&description),
            products::category.eq(u.category.as_ref().unwrap_or(&before.category)),
            products::unit.eq(&unit),
            products::price_idr.eq(price),
            products::discount_kind.eq(discount.map(|d| d.kind.as_str())),
            products::discount_value.eq(discount.map(|d| d.value)),
            products::final_price_idr.eq(product::final_price(price, discount)),
            products::weight_grams.eq(weight),
            products::photo_urls.eq(&photos),
            products::certifications.eq(&certs),
            products::flagship.eq(u.flagship.unwrap_or(before.flagship)),
            products::status.eq(status),
            products::version.eq(products::version + 1),
        ))
        .returning(ProductRow::as_returning())
        .get_result(conn)?;
    Ok(Product::from_row(row, shop_status == ShopStatus::Active))
}

/// Deleting archives: the product leaves the catalogue but stays for orders and sync.
pub fn archive(
    conn: &mut PgConnection,
    caller: &Caller,
    id: Uuid,
    expected_version: Option<i32>,
) -> Result<()> {
    let before = load_managed(conn, caller, id, Lock::ForUpdate)?.row;
    check_version(&before, expected_version)?;
    if before.status == ProductStatus::Archived {
        return Ok(());
    }
    diesel::update(products::table.find(id))
        .set((
            products::status.eq(ProductStatus::Archived),
            products::version.eq(products::version + 1),
        ))
        .execute(conn)?;
    audit::record(
        conn,
        audit::Record {
            actor: Some(caller.user_id),
            village: Some(&before.village_code),
            action: "product.archive",
            entity_type: "product",
            entity_id: id.to_string(),
            before: Some(serde_json::json!({"status": before.status, "version": before.version})),
            after: Some(serde_json::json!({"status": ProductStatus::Archived})),
        },
    )?;
    Ok(())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAdjustment {
    /// Units added (positive) or removed (negative), not zero.
    #[schema(minimum = -1_000_000_000, maximum = 1_000_000_000)]
    pub delta: i64,
    /// Why: restock, spoiled, stock count, …
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = r"^[^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*$"
    )]
    pub reason: String,
}

#[derive(Debug, Queryable, Selectable, Serialize, ToSchema)]
#[diesel(table_name = stock_adjustments)]
pub struct Adjustment {
    pub id: Uuid,
    pub product_id: Uuid,
    pub delta: i32,
    pub stock_after: i32,
    pub reason: String,
    pub actor_id: Uuid,
    pub created_at: DateTime<Utc>,
}

/// Changes stock by `delta` with one conditional update (never below zero, whatever runs at the
/// same time) and records why.
pub fn adjust_stock(
    conn: &mut PgConnection,
    caller: &Caller,
    id: Uuid,
    a: &NewAdjustment,
) -> Result<Adjustment> {
    let mut errors = Vec::new();
    product::validate_delta(a.delta, &mut errors);
    let reason = product::validate_text("reason", &a.reason, 1, 500, &mut errors);
    if !errors.is_empty() {
        return Err(Error::Validation(errors));
    }
    // Authorization without holding the row lock: the update below is the concurrency guard.
    load_managed(conn, caller, id, Lock::None)?;
    // In range: checked above.
    let delta = a.delta as i32;
    let stock_after: Option<i32> = diesel::update(
        products::table
            .find(id)
            .filter(products::status.ne(ProductStatus::Archived))
            .filter((products::stock + delta).ge(0))
            // Both are at most 10^9, so the sum fits an INTEGER.
            .filter((products::stock + delta).le(product::MAX_STOCK as i32)),
    )
    .set((
        products::stock.eq(products::stock + delta),
        products::version.eq(products::version + 1),
    ))
    .returning(products::stock)
    .get_result(conn)
    .optional()?;
    let Some(stock_after) = stock_after else {
        return Err(Error::conflict(
            "stock would go below zero (or the product is archived)",
        ));
    };
    Ok(diesel::insert_into(stock_adjustments::table)
        .values((
            stock_adjustments::id.eq(Uuid::now_v7()),
            stock_adjustments::product_id.eq(id),
            stock_adjustments::delta.eq(delta),
            stock_adjustments::stock_after.eq(stock_after),
            stock_adjustments::reason.eq(&reason),
            stock_adjustments::actor_id.eq(caller.user_id),
        ))
        .returning(Adjustment::as_returning())
        .get_result(conn)?)
}

pub fn adjustments(
    conn: &mut PgConnection,
    caller: &Caller,
    id: Uuid,
    limit: i64,
    before: Option<Uuid>,
) -> Result<Page<Adjustment>> {
    load_managed(conn, caller, id, Lock::None)?;
    let mut q = stock_adjustments::table
        .filter(stock_adjustments::product_id.eq(id))
        .select(Adjustment::as_select())
        .order(stock_adjustments::id.desc())
        .limit(limit + 1)
        .into_boxed();
    if let Some(b) = before {
        q = q.filter(stock_adjustments::id.lt(b));
    }
    Ok(page(q.load(conn)?, limit, |a| a.id, |a| a))
}

/// Up to 10 certifications (PIRT, halal, …), each 1 to 40 characters without control characters.
fn certifications_array(nullable: bool) -> utoipa::openapi::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaType, Type};
    let item = ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(40))
        .pattern(Some(
            r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$",
        ));
    let types = if nullable {
        SchemaType::from_iter([Type::Array, Type::Null])
    } else {
        SchemaType::new(Type::Array)
    };
    ArrayBuilder::new()
        .schema_type(types)
        .items(item)
        .max_items(Some(10))
        .build()
}

fn certifications_schema() -> utoipa::openapi::Array {
    certifications_array(false)
}

fn certifications_update_schema() -> utoipa::openapi::Array {
    certifications_array(true)
}

/// A new product starts `draft`, `active` or `inactive` (not `archived`), or null for `active`.
fn new_product_status_schema() -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{SchemaType, Type};
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .enum_values(Some([
            serde_json::Value::from("draft"),
            "active".into(),
            "inactive".into(),
            serde_json::Value::Null,
        ]))
        .description(Some("`draft`, `active` (default) or `inactive`"))
        .build()
}

/// Up to 5 photo URLs: http or https with a host name, at most 2048 characters. The pattern is
/// a subset of what the server takes (any WHATWG URL of those schemes with a host).
fn photo_urls_array(nullable: bool) -> utoipa::openapi::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaType, Type};
    let item = ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(2048))
        .pattern(Some(
            r"^https?://([A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?\.)*[A-Za-z]([A-Za-z0-9-]*[A-Za-z0-9])?(:[0-9]{1,4})?([/?#][!-~]*)?$",
        ));
    let types = if nullable {
        SchemaType::from_iter([Type::Array, Type::Null])
    } else {
        SchemaType::new(Type::Array)
    };
    ArrayBuilder::new()
        .schema_type(types)
        .items(item)
        .max_items(Some(5))
        .build()
}

fn photo_urls_schema() -> utoipa::openapi::Array {
    photo_urls_array(false)
}

fn photo_urls_update_schema() -> utoipa::openapi::Array {
    photo_urls_array(true)
}
