//! Shops (lapak): the sellers. A shop is a BUMDes unit, a resident's business (UMKM) or a
//! producer group, in exactly one village. A member applies; the village admin approves,
//! rejects (with a reason) or suspends. Only active shops sell and are publicly visible.

pub mod routes;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::audit;
use crate::db::schema::{
    bumdes_units, bumdes_villages, memberships, products, shop_operators, shops, users,
};
use crate::http::error::{Error, FieldError, Result, on_constraint, text_field as validate_text};
use crate::http::pagination::{Page, page};
use crate::identity::authz;
use crate::identity::tokens::Caller;

pub const KINDS: [&str; 3] = ["bumdes_unit", "umkm", "group"];

crate::text_enum! {
    /// Where a shop is in its life: applied, approved (the only state that sells and is public),
    /// rejected, or suspended by the village admin.
    pub enum ShopStatus {
        Pending = "pending",
        Active = "active",
        Rejected = "rejected",
        Suspended = "suspended",
    }
}
/// Largest delivery fee a shop may set (Rp 10 juta).
pub const MAX_DELIVERY_FEE_IDR: i64 = 10_000_000;

#[derive(Debug, Clone, Queryable, Selectable, Serialize, ToSchema)]
#[diesel(table_name = shops)]
pub struct Shop {
    pub id: Uuid,
    pub village_code: String,
    pub name: String,
    pub description: String,
    /// `bumdes_unit`, `umkm` or `group`.
    pub kind: String,
    pub bumdes_unit_id: Option<Uuid>,
    pub status: ShopStatus,
    /// Why it was rejected or suspended.
    pub status_reason: Option<String>,
    pub delivery_fee_village_idr: i64,
    pub delivery_fee_other_idr: i64,
    pub pickup: bool,
    #[serde(skip)]
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a caller may do with one shop. Decided here only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    pub operator: bool,
    pub admin: bool,
}

impl Access {
    pub fn manage(self) -> bool {
        self.operator || self.admin
    }
}

/// Is `user` an operator of `shop`?
pub fn is_operator(conn: &mut PgConnection, shop: Uuid, user: Uuid) -> Result<bool> {
    Ok(diesel::select(diesel::dsl::exists(
        shop_operators::table.find((shop, user)),
    ))
    .get_result(conn)?)
}

/// Loads a shop as `caller` may see it: active shops are public; others only to their operators
/// and their village's admins. Hidden is 404, never 403. Operators act only through a token of
/// the shop's village (a token of village A never changes village B).
pub fn load(conn: &mut PgConnection, caller: Option<&Caller>, id: Uuid) -> Result<(Shop, Access)> {
    let shop: Shop = shops::table
        .find(id)
        .select(Shop::as_select())
        .first(conn)?;
    let access = match caller {
        Some(c) if c.village == shop.village_code => Access {
            operator: is_operator(conn, id, c.user_id)?,
            admin: c.is_village_admin(&shop.village_code),
        },
        _ => Access {
            operator: false,
            admin: false,
        },
    };
    if shop.status != ShopStatus::Active && !access.manage() {
        return Err(Error::NotFound);
    }
    Ok((shop, access))
}

/// Loads a shop for a write by one who operates it (or administers its village, when
/// `admin_ok`). Both are read from the database now: operator links (removed with the
/// membership) and the admin role through [`authz::current`], never the token's snapshot.
pub fn load_managed(
    conn: &mut PgConnection,
    caller: &Caller,
    id: Uuid,
    admin_ok: bool,
) -> Result<Shop> {
    let (shop, access) = load(conn, Some(caller), id)?;
    if access.operator
        || (admin_ok && authz::current(conn, caller)?.is_village_admin(&shop.village_code))
    {
        Ok(shop)
    } else {
        Err(Error::Forbidden(
            "only this shop's operators may do this".into(),
        ))
    }
}

/// Loads and locks a shop for a decision of its village's admin (checked now).
fn load_as_admin(conn: &mut PgConnection, caller: &Caller, id: Uuid) -> Result<Shop> {
    let (shop, _) = load(conn, Some(caller), id)?;
    if !authz::current(conn, caller)?.is_village_admin(&shop.village_code) {
        return Err(Error::Forbidden(
            "only the village admin decides on shops".into(),
        ));
    }
    Ok(shop)
}

/// Locks the shop row and reads it as it is under the lock.
fn lock(conn: &mut PgConnection, id: Uuid) -> Result<Shop> {
    Ok(shops::table
        .find(id)
        .select(Shop::as_select())
        .for_update()
        .first(conn)?)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShopApplication {
    #[schema(
        min_length = 1,
        max_length = 120,
        pattern = r"^[^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*$"
    )]
    pub name: String,
    #[serde(default)]
    #[schema(
        max_length = 2000,
        pattern = r"^[^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*$"
    )]
    pub description: String,
    /// `bumdes_unit`, `umkm` or `group`.
    #[schema(schema_with = shop_kind_schema)]
    pub kind: String,
    /// Only for `bumdes_unit`, and then required: the unit, of a BUMDes this village owns or co-owns.
    pub bumdes_unit_id: Option<Uuid>,
}

/// A member of the village applies for a shop; they become its first operator.
pub fn apply(
    conn: &mut PgConnection,
    caller: &Caller,
    village: &str,
    a: &ShopApplication,
) -> Result<Shop> {
    conn.transaction(|conn| apply_in(conn, caller, village, a))
}

fn apply_in(
    conn: &mut PgConnection,
    caller: &Caller,
    village: &str,
    a: &ShopApplication,
) -> Result<Shop> {
    crate::villages::get(conn, village)?;
    if !authz::current(conn, caller)?.is_member_of(village) {
        return Err(Error::Forbidden(
            "only members of this village open shops in it".into(),
        ));
    }
    let mut errors = Vec::new();
    let name = validate_text("name", &a.name, 1, 120, &mut errors);
    let description = validate_text("description", &a.description, 0, 2000, &mut errors);
    if !KINDS.contains(&a.kind.as_str()) {
        errors.push(FieldError::new("kind", "bumdes_unit, umkm or group"));
    }
    if a.bumdes_unit_id.is_some() && a.kind != "bumdes_unit" {
        errors.push(FieldError::new(
            "bumdes_unit_id",
            "only for kind bumdes_unit",
        ));
    }
    if !errors.is_empty() {
        return Err(Error::Validation(errors));
    }
    if let Some(unit) = a.bumdes_unit_id {
        let owned: bool = diesel::select(diesel::dsl::exists(
            bumdes_units::table
                .inner_join(
                    bumdes_villages::table
                        .on(bumdes_villages::bumdes_id.eq(bumdes_units::bumdes_id)),
                )
                .filter(bumdes_units::id.eq(unit))
                .filter(bumdes_villages::village_code.eq(village))
                .filter(bumdes_villages::accepted_at.is_not_null()),
        ))
        .get_result(conn)?;
        if !owned {
            return Err(Error::field(
                "bumdes_unit_id",
                "no unit of a BUMDes of this village has this id",
            ));
        }
    }
    let shop: Shop = diesel::insert_into(shops::table)
        .values((
            shops::id.eq(Uuid::now_v7()),
            shops::village_code.eq(village),
            shops::name.eq(&name),
            shops::description.eq(&description),
            shops::kind.eq(&a.kind),
            shops::bumdes_unit_id.eq(a.bumdes_unit_id),
            shops::created_by.eq(caller.user_id),
        ))
        .returning(Shop::as_returning())
        .get_result(conn)?;
    diesel::insert_into(shop_operators::table)
        .values((
            shop_operators::shop_id.eq(shop.id),
            shop_operators::user_id.eq(caller.user_id),
        ))
        .execute(conn)?;
    audit::record(
        conn,
        audit::Record {
            actor: Some(caller.user_id),
            village: Some(village),
            action: "shop.apply",
            entity_type: "shop",
            entity_id: shop.id.to_string(),
            before: None,
            after: audit::snapshot(&shop),
        },
    )?;
    Ok(shop)
}

/// A decision of the village admin on a shop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Reject,
    Suspend,
}

impl Decision {
    /// (allowed from, to, audit action)
    fn rule(self) -> (&'static [ShopStatus], ShopStatus, &'static str) {
        use ShopStatus::*;
        match self {
            Decision::Approve => (&[Pending, Suspended], Active, "shop.approve"),
            Decision::Reject => (&[Pending], Rejected, "shop.reject"),
            Decision::Suspend => (&[Active], Suspended, "shop.suspend"),
        }
    }
}

pub fn decide(
    conn: &mut PgConnection,
    caller: &Caller,
    id: Uuid,
    decision: Decision,
    reason: Option<&str>,
) -> Result<Shop> {
    conn.transaction(|conn| decide_in(conn, caller, id, decision, reason))
}

fn decide_in(
    conn: &mut PgConnection,
    caller: &Caller,
    id: Uuid,
    decision: Decision,
    reason: Option<&str>,
) -> Result<Shop> {
    load_as_admin(conn, caller, id)?;
    let before = lock(conn, id)?;
    let (from, to, action) = decision.rule();
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    if decision != Decision::Approve {
        match reason {
            None => return Err(Error::field("reason", "required")),
            Some(r) if r.chars().count() > 500 => {
                return Err(Error::field("reason", "at most 500 characters"));
            }
            _ => {}
        }
    }
    // Conditional on the current status, so two admins deciding at once cannot both win.
    let updated: Option<Shop> =
        diesel::update(shops::table.find(id).filter(shops::status.eq_any(from)))
            .set((
                shops::status.eq(to),
                shops::status_reason.eq(reason),
                shops::updated_at.eq(diesel::dsl::now),
            ))
            .returning(Shop::as_returning())
            .get_result(conn)
            .optional()?;
    let Some(after) = updated else {
        return Err(Error::conflict(format!(
            "a {} shop cannot become {to}",
            before.status
        )));
    };
    // Products' availability changed with the shop: a new version (so a cached ETag is not
    // answered 304 with the old `available`) and a new stamp (so offline phones sync it).
    diesel::update(products::table.filter(products::shop_id.eq(id)))
        .set(products::version.eq(products::version + 1))
        .execute(conn)?;
    audit::record(
        conn,
        audit::Record {
            actor: Some(caller.user_id),
            village: Some(&after.village_code),
            action,
            entity_type: "shop",
            entity_id: id.to_string(),
            before: audit::snapshot(&before),
            after: audit::snapshot(&after),
        },
    )?;
    Ok(after)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShopUpdate {
    #[schema(
        min_length = 1,
        max_length = 120,
        pattern = r"^[^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*$"
    )]
    pub name: Option<String>,
    #[schema(
        max_length = 2000,
        pattern = r"^[^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*$"
    )]
    pub description: Option<String>,
    /// Delivery fee inside the shop's village, rupiah (0..=10,000,000).
    #[schema(minimum = 0, maximum = 10_000_000)]
    pub delivery_fee_village_idr: Option<i64>,
    /// Delivery fee to other villages, rupiah (0..=10,000,000).
    #[schema(minimum = 0, maximum = 10_000_000)]
    pub delivery_fee_other_idr: Option<i64>,
    /// Whether buyers may pick up.
    pub pickup: Option<bool>,
}

pub fn update(conn: &mut PgConnection, caller: &Caller, id: Uuid, u: &ShopUpdate) -> Result<Shop> {
    let mut errors = Vec::new();
    let name = u
        .name
        .as_deref()
        .map(|n| validate_text("name", n, 1, 120, &mut errors));
    let description = u
        .description
        .as_deref()
        .map(|d| validate_text("description", d, 0, 2000, &mut errors));
    for (field, fee) in [
        ("delivery_fee_village_idr", u.delivery_fee_village_idr),
        ("delivery_fee_other_idr", u.delivery_fee_other_idr),
    ] {
        if let Some(f) = fee
            && !(0..=MAX_DELIVERY_FEE_IDR).contains(&f)
        {
            errors.push(FieldError::new(
                field,
                format!("0 to {MAX_DELIVERY_FEE_IDR}"),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(Error::Validation(errors));
    }
    conn.transaction(|conn| {
        load_managed(conn, caller, id, false)?;
        // Read under the lock: the fields not given are written back as they are now.
        let before = lock(conn, id)?;
        let after: Shop = diesel::update(shops::table.find(id))
            .set((
                shops::name.eq(name.unwrap_or(before.name.clone())),
                shops::description.eq(description.unwrap_or(before.description.clone())),
                shops::delivery_fee_village_idr.eq(u
                    .delivery_fee_village_idr
                    .unwrap_or(before.delivery_fee_village_idr)),
                shops::delivery_fee_other_idr.eq(u
                    .delivery_fee_other_idr
                    .unwrap_or(before.delivery_fee_other_idr)),
                shops::pickup.eq(u.pickup.unwrap_or(before.pickup)),
                shops::updated_at.eq(diesel::dsl::now),
            ))
            .returning(Shop::as_returning())
            .get_result(conn)?;
        audit::record(
            conn,
            audit::Record {
                actor: Some(caller.user_id),
                village: Some(&after.village_code),
                action: "shop.update",
                entity_type: "shop",
                entity_id: id.to_string(),
                before: audit::snapshot(&before),
                after: audit::snapshot(&after),
            },
        )?;
        Ok(after)
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Operator {
    pub user_id: Uuid,
    pub phone: String,
    pub name: String,
    pub added_at: DateTime<Utc>,
}

type OperatorRow = (Uuid, String, String, DateTime<Utc>);

fn operator_from((user_id, phone, name, added_at): OperatorRow) -> Operator {
    Operator {
        user_id,
        phone,
        name,
        added_at,
    }
}

/// A shop's operators, by user id (its operators and village admin).
pub fn operators(
    conn: &mut PgConnection,
    caller: &Caller,
    id: Uuid,
    limit: i64,
    after: Option<Uuid>,
) -> Result<Page<Operator>> {
    let (_, access) = load(conn, Some(caller), id)?;
    if !access.manage() {
        return Err(Error::Forbidden(
            "only this shop's operators and village admin see its operators".into(),
        ));
    }
    let rows: Vec<OperatorRow> = shop_operators::table
        .inner_join(users::table)
        .filter(shop_operators::shop_id.eq(id))
        .filter(users::id.gt(after.unwrap_or(Uuid::nil())))
        .select((
            users::id,
            users::phone,
            users::name,
            shop_operators::added_at,
        ))
        .order(users::id)
        .limit(limit + 1)
        .load(conn)?;
    Ok(page(rows, limit, |r| r.0, operator_from))
}

/// Links a member of the shop's village as an operator.
pub fn add_operator(
    conn: &mut PgConnection,
    caller: &Caller,
    id: Uuid,
    phone: &str,
) -> Result<Operator> {
    conn.transaction(|conn| {
        let shop = load_managed(conn, caller, id, true)?;
        let user: Option<Uuid> = memberships::table
            .inner_join(users::table)
            .filter(users::phone.eq(phone))
            .filter(memberships::village_code.eq(&shop.village_code))
            .select(users::id)
            .first(conn)
            .optional()?;
        let user =
            user.ok_or_else(|| Error::field("phone", "no member of this village has this phone"))?;
        diesel::insert_into(shop_operators::table)
            .values((
                shop_operators::shop_id.eq(id),
                shop_operators::user_id.eq(user),
            ))
            .execute(conn)
            .map_err(|e| {
                on_constraint(e, |c| {
                    (c == "shop_operators_pkey").then(|| Error::conflict("already an operator"))
                })
            })?;
        audit::record(
            conn,
            audit::Record {
                actor: Some(caller.user_id),
                village: Some(&shop.village_code),
                action: "shop.add_operator",
                entity_type: "shop",
                entity_id: id.to_string(),
                before: None,
                after: Some(serde_json::json!({"user_id": user})),
            },
        )?;
        let row: OperatorRow = shop_operators::table
            .inner_join(users::table)
            .filter(shop_operators::shop_id.eq(id))
            .filter(users::id.eq(user))
            .select((
                users::id,
                users::phone,
                users::name,
                shop_operators::added_at,
            ))
            .first(conn)?;
        Ok(operator_from(row))
    })
}

pub fn remove_operator(
    conn: &mut PgConnection,
    caller: &Caller,
    id: Uuid,
    user: Uuid,
) -> Result<()> {
    conn.transaction(|conn| {
        let shop = load_managed(conn, caller, id, true)?;
        // Lock the shop row: two concurrent removals cannot leave it with no operator.
        lock(conn, id)?;
        let count: i64 = shop_operators::table
            .filter(shop_operators::shop_id.eq(id))
            .count()
            .get_result(conn)?;
        let removed = diesel::delete(shop_operators::table.find((id, user))).execute(conn)?;
        if removed == 0 {
            return Err(Error::NotFound);
        }
        if count <= 1 {
            return Err(Error::conflict("a shop keeps at least one operator"));
        }
        audit::record(
            conn,
            audit::Record {
                actor: Some(caller.user_id),
                village: Some(&shop.village_code),
                action: "shop.remove_operator",
                entity_type: "shop",
                entity_id: id.to_string(),
                before: Some(serde_json::json!({"user_id": user})),
                after: None,
            },
        )?;
        Ok(())
    })
}

/// Shops of a village: active ones for everyone; the village admin may filter by any status.
pub fn list(
    conn: &mut PgConnection,
    caller: Option<&Caller>,
    village: &str,
    status: Option<ShopStatus>,
    limit: i64,
    after: Option<Uuid>,
) -> Result<Page<Shop>> {
    crate::villages::get(conn, village)?;
    let is_admin = caller.is_some_and(|c| c.is_village_admin(village));
    let status = status.unwrap_or(ShopStatus::Active);
    if status != ShopStatus::Active && !is_admin {
        return Err(Error::Forbidden(
            "only the village admin lists shops that are not active".into(),
        ));
    }
    let mut q = shops::table
        .filter(shops::village_code.eq(village))
        .filter(shops::status.eq(status))
        .select(Shop::as_select())
        .order(shops::id)
        .limit(limit + 1)
        .into_boxed();
    if let Some(a) = after {
        q = q.filter(shops::id.gt(a));
    }
    Ok(page(q.load(conn)?, limit, |s| s.id, |s| s))
}

fn shop_kind_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .enum_values(Some(["bumdes_unit", "umkm", "group"]))
        .description(Some("`bumdes_unit`, `umkm` or `group`"))
        .build()
}
