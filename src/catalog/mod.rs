//! Catalog: products of shops, their stock, and the search that buyers and offline phones use.

pub mod product;
pub mod routes;
pub mod search;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use self::product::{Discount, DiscountKind};
use crate::audit;
use crate::db::schema::{categories, products, shops, stock_adjustments};
use crate::http::error::{Error, FieldError, Result};
use crate::http::pagination::{Page, page};
use crate::identity::tokens::Caller;
use crate::shops as shop_domain;

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
    pub status: String,
    pub version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
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
    /// `draft`, `active`, `inactive` or `archived`.
    pub status: String,
    /// Whether it can be bought now: active, and its shop is active.
    pub available: bool,
    /// Increases with every change; the `ETag` is `"v{version}"`.
    pub version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Product {
    pub fn from_row(r: ProductRow, shop_active: bool) -> Self {
        let discount = r.discount();
        Product {
            available: shop_active && r.status == "active",
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
        }
    }

    pub fn etag(&self) -> String {
        etag(self.version)
    }
}

pub fn etag(version: i32) -> String {
    format!("\"v{version}\"")
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
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// A category slug (`GET /categories`).
    pub category: String,
    /// kg, gram, liter, ml, pcs, ikat, pack, karung, botol, lusin, porsi, paket, or a custom unit (≤ 20 characters).
    pub unit: String,
    /// Integer rupiah, 100..=2,000,000,000.
    pub price_idr: i64,
    pub discount: Option<Discount>,
    /// Opening stock (later changes go through stock adjustments).
    #[serde(default)]
    pub stock: i64,
    pub weight_grams: Option<i64>,
    #[serde(default)]
    pub photo_urls: Vec<String>,
    #[serde(default)]
    pub certifications: Vec<String>,
    #[serde(default)]
    pub flagship: bool,
    /// `draft`, `active` (default) or `inactive`.
    pub status: Option<String>,
}

/// Changes to a product; absent fields stay, `discount: null` removes the discount. Stock is not
/// here: it changes through stock adjustments (with a reason) and orders.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub category: Option<String>,
    pub unit: Option<String>,
    pub price_idr: Option<i64>,
    #[serde(default, deserialize_with = "crate::http::extract::double_option")]
    pub discount: Option<Option<Discount>>,
    #[serde(default, deserialize_with = "crate::http::extract::double_option")]
    pub weight_grams: Option<Option<i64>>,
    pub photo_urls: Option<Vec<String>>,
    pub certifications: Option<Vec<String>>,
    pub flagship: Option<bool>,
    /// `active`, `inactive` or `archived` (a published product never returns to `draft`).
    pub status: Option<String>,
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

fn shop_is_active(conn: &mut PgConnection, shop: Uuid) -> Result<bool> {
    Ok(shops::table
        .find(shop)
        .select(shops::status)
        .first::<shop_domain::ShopStatus>(conn)?
        == shop_domain::ShopStatus::Active)
}

/// Operators of the shop (and its village admin) manage its products.
fn managed_shop(conn: &mut PgConnection, caller: &Caller, shop: Uuid) -> Result<shop_domain::Shop> {
    shop_domain::load_managed(conn, caller, shop, true)
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
    let status = p.status.clone().unwrap_or_else(|| "active".into());
    if !["draft", "active", "inactive"].contains(&status.as_str()) {
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
            products::status.eq(&status),
        ))
        .returning(ProductRow::as_returning())
        .get_result(conn)?;
    Ok(Product::from_row(
        row,
        shop.status == shop_domain::ShopStatus::Active,
    ))
}

/// A product as `caller` may see it: drafts and products of shops that are not active only to
/// those who manage the shop; hidden is 404.
pub fn get(conn: &mut PgConnection, caller: Option<&Caller>, id: Uuid) -> Result<Product> {
    let row: ProductRow = products::table
        .find(id)
        .select(ProductRow::as_select())
        .first(conn)?;
    let shop_active = shop_is_active(conn, row.shop_id)?;
    let public = shop_active && row.status != "draft";
    if !public {
        let manages = match caller {
            Some(c) => shop_domain::load(conn, Some(c), row.shop_id)
                .map(|(_, a)| a.manage())
                .unwrap_or(false),
            None => false,
        };
        if !manages {
            return Err(Error::NotFound);
        }
    }
    Ok(Product::from_row(row, shop_active))
}

/// Loads for change: the caller must manage the shop, and (with `expected_version`) the product
/// must not have changed since the client read it.
fn load_for_update(
    conn: &mut PgConnection,
    caller: &Caller,
    id: Uuid,
    expected_version: Option<i32>,
) -> Result<ProductRow> {
    let row: ProductRow = products::table
        .find(id)
        .select(ProductRow::as_select())
        .for_update()
        .first(conn)?;
    let (_, access) =
        shop_domain::load(conn, Some(caller), row.shop_id).map_err(|_| Error::NotFound)?;
    if !access.manage() {
        // Public products are visible, so say why; drafts stay hidden.
        return Err(if row.status == "draft" {
            Error::NotFound
        } else {
            Error::Forbidden("only this shop's operators change its products".into())
        });
    }
    if let Some(v) = expected_version
        && v != row.version
    {
        return Err(Error::PreconditionFailed);
    }
    Ok(row)
}

pub fn update(
    conn: &mut PgConnection,
    caller: &Caller,
    id: Uuid,
    expected_version: Option<i32>,
    u: &ProductUpdate,
) -> Result<Product> {
    let before = load_for_update(conn, caller, id, expected_version)?;
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
    let status = u.status.clone().unwrap_or(before.status.clone());
    if !product::STATUSES.contains(&status.as_str()) {
        errors.push(FieldError::new("status", "active, inactive or archived"));
    } else if !product::status_change_allowed(&before.status, &status) {
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
            products::status.eq(&status),
            products::version.eq(products::version + 1),
        ))
        .returning(ProductRow::as_returning())
        .get_result(conn)?;
    let shop_active = shop_is_active(conn, row.shop_id)?;
    Ok(Product::from_row(row, shop_active))
}

/// Deleting archives: the product leaves the catalogue but stays for orders and sync.
pub fn archive(
    conn: &mut PgConnection,
    caller: &Caller,
    id: Uuid,
    expected_version: Option<i32>,
) -> Result<()> {
    let before = load_for_update(conn, caller, id, expected_version)?;
    if before.status == "archived" {
        return Ok(());
    }
    diesel::update(products::table.find(id))
        .set((
            products::status.eq("archived"),
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
            after: Some(serde_json::json!({"status": "archived"})),
        },
    )?;
    Ok(())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAdjustment {
    /// Units added (positive) or removed (negative), not zero.
    pub delta: i64,
    /// Why: restock, spoiled, stock count, …
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
    if a.delta == 0 || a.delta.abs() > product::MAX_STOCK {
        errors.push(FieldError::new(
            "delta",
            format!("non-zero, at most {} either way", product::MAX_STOCK),
        ));
    }
    let reason = product::validate_text("reason", &a.reason, 1, 500, &mut errors);
    if !errors.is_empty() {
        return Err(Error::Validation(errors));
    }
    // Authorization without holding the row lock: the update below is the concurrency guard.
    let shop: Uuid = products::table
        .find(id)
        .select(products::shop_id)
        .first(conn)?;
    let (_, access) = shop_domain::load(conn, Some(caller), shop).map_err(|_| Error::NotFound)?;
    if !access.manage() {
        return Err(Error::Forbidden(
            "only this shop's operators adjust its stock".into(),
        ));
    }
    let delta = a.delta as i32;
    let stock_after: Option<i32> = diesel::update(
        products::table
            .find(id)
            .filter(products::status.ne("archived"))
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
    let shop: Uuid = products::table
        .find(id)
        .select(products::shop_id)
        .first(conn)?;
    let (_, access) = shop_domain::load(conn, Some(caller), shop).map_err(|_| Error::NotFound)?;
    if !access.manage() {
        return Err(Error::Forbidden(
            "only this shop's operators read its stock history".into(),
        ));
    }
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
