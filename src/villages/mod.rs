//! Villages (desa) onboarded onto the platform, and networks of villages that trade together.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

pub mod bumdes;
pub mod routes;

use crate::audit;
use crate::db::schema::{network_villages, networks, regions, villages};
use crate::http::error::{Error, FieldError, Result, on_constraint};
use crate::http::pagination::{Page, page};
use crate::identity::authz;
use crate::identity::tokens::Caller;

#[derive(Debug, Clone, Queryable, Selectable, Serialize, ToSchema)]
#[diesel(table_name = villages)]
pub struct Village {
    pub code: String,
    pub name: String,
    /// Indeks Desa Membangun status: sangat_tertinggal, tertinggal, berkembang, maju, mandiri.
    pub idm_status: Option<String>,
    /// Share of each completed sale paid to the village revenue account, in basis points.
    pub village_share_bps: i32,
    #[serde(skip)]
    pub onboarded_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize, ToSchema)]
#[diesel(table_name = networks)]
pub struct NetworkRow {
    pub id: Uuid,
    pub name: String,
    pub network_fee_bps: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Network {
    #[serde(flatten)]
    pub network: NetworkRow,
    pub village_codes: Vec<String>,
}

pub const IDM_STATUSES: [&str; 5] = [
    "sangat_tertinggal",
    "tertinggal",
    "berkembang",
    "maju",
    "mandiri",
];

/// A platform admin now (not only in the token's snapshot).
pub fn require_platform_admin(conn: &mut PgConnection, caller: &Caller) -> Result<()> {
    if authz::current(conn, caller)?.is_platform_admin() {
        Ok(())
    } else {
        Err(Error::Forbidden("platform admins only".into()))
    }
}

/// Onboards a level-4 region as a village (platform admins). Onboarding twice is a 409.
pub fn onboard(conn: &mut PgConnection, caller: &Caller, code: &str) -> Result<Village> {
    conn.transaction(|conn| {
        require_platform_admin(conn, caller)?;
        let v = insert_village(conn, code, caller.user_id)?;
        audit::record(
            conn,
            audit::Record {
                actor: Some(caller.user_id),
                village: Some(&v.code),
                action: "village.onboard",
                entity_type: "village",
                entity_id: v.code.clone(),
                before: None,
                after: audit::snapshot(&v),
            },
        )?;
        Ok(v)
    })
}

fn insert_village(conn: &mut PgConnection, code: &str, actor: Uuid) -> Result<Village> {
    crate::regions::validate_code("code", code)?;
    let region: Option<(String, i16)> = regions::table
        .find(code)
        .select((regions::name, regions::level))
        .first(conn)
        .optional()?;
    let Some((name, level)) = region else {
        return Err(Error::field("code", "no region has this code"));
    };
    if level != 4 {
        return Err(Error::field(
            "code",
            "only a village (level 4) can be onboarded",
        ));
    }
    diesel::insert_into(villages::table)
        .values((
            villages::code.eq(code),
            villages::name.eq(&name),
            villages::onboarded_by.eq(Some(actor)),
        ))
        .returning(Village::as_returning())
        .get_result(conn)
        .map_err(|e| {
            on_constraint(e, |c| {
                (c == "villages_pkey").then(|| Error::conflict("this village is already onboarded"))
            })
        })
}

pub fn get(conn: &mut PgConnection, code: &str) -> Result<Village> {
    Ok(villages::table
        .find(code)
        .select(Village::as_select())
        .first(conn)?)
}

fn validate_network(
    conn: &mut PgConnection,
    name: &str,
    network_fee_bps: i32,
    village_codes: &[String],
) -> Result<(String, i32, Vec<String>)> {
    let name = name.trim().to_string();
    let mut errors = Vec::new();
    if name.is_empty() || name.chars().count() > 100 {
        errors.push(FieldError::new("name", "1 to 100 characters"));
    }
    if !(0..=10_000).contains(&network_fee_bps) {
        errors.push(FieldError::new("network_fee_bps", "0 to 10000"));
    }
    let mut codes = village_codes.to_vec();
    codes.sort();
    codes.dedup();
    if codes.is_empty() || codes.len() > 1000 {
        errors.push(FieldError::new("village_codes", "1 to 1000 villages"));
    }
    if !errors.is_empty() {
        return Err(Error::Validation(errors));
    }
    let known: Vec<String> = villages::table
        .filter(villages::code.eq_any(&codes))
        .select(villages::code)
        .load(conn)?;
    let missing: Vec<&str> = codes
        .iter()
        .filter(|c| !known.contains(c))
        .map(|s| s.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(Error::field(
            "village_codes",
            format!("not onboarded: {}", missing.join(", ")),
        ));
    }
    // A sale pays the network fee and the seller village's share: together at most 100 %.
    let max_share: Option<i32> = villages::table
        .filter(villages::code.eq_any(&codes))
        .select(diesel::dsl::max(villages::village_share_bps))
        .first(conn)?;
    if network_fee_bps + max_share.unwrap_or(0) > 10_000 {
        return Err(Error::field(
            "network_fee_bps",
            "with a member village's share it would take more than 100 % of a sale",
        ));
    }
    Ok((name, network_fee_bps, codes))
}

/// Creates a network of onboarded villages (platform admins).
pub fn create_network(
    conn: &mut PgConnection,
    caller: &Caller,
    name: &str,
    village_codes: &[String],
    network_fee_bps: i32,
) -> Result<Network> {
    conn.transaction(|conn| {
        require_platform_admin(conn, caller)?;
        let n = insert_network(conn, name, village_codes, network_fee_bps)?;
        audit::record(
            conn,
            audit::Record {
                actor: Some(caller.user_id),
                village: None,
                action: "network.create",
                entity_type: "network",
                entity_id: n.network.id.to_string(),
                before: None,
                after: audit::snapshot(&n),
            },
        )?;
        Ok(n)
    })
}

fn insert_network(
    conn: &mut PgConnection,
    name: &str,
    village_codes: &[String],
    network_fee_bps: i32,
) -> Result<Network> {
    let (name, network_fee_bps, codes) =
        validate_network(conn, name, network_fee_bps, village_codes)?;
    let row: NetworkRow = diesel::insert_into(networks::table)
        .values((
            networks::id.eq(Uuid::now_v7()),
            networks::name.eq(&name),
            networks::network_fee_bps.eq(network_fee_bps),
        ))
        .returning(NetworkRow::as_returning())
        .get_result(conn)
        .map_err(|e| {
            on_constraint(e, |c| {
                (c == "networks_name_key")
                    .then(|| Error::conflict("a network with this name already exists"))
            })
        })?;
    let members: Vec<_> = codes
        .iter()
        .map(|c| {
            (
                network_villages::network_id.eq(row.id),
                network_villages::village_code.eq(c),
            )
        })
        .collect();
    diesel::insert_into(network_villages::table)
        .values(&members)
        .execute(conn)?;
    Ok(Network {
        network: row,
        village_codes: codes,
    })
}

#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VillageUpdate {
    /// sangat_tertinggal, tertinggal, berkembang, maju, mandiri, or null to clear.
    #[serde(default, deserialize_with = "crate::http::extract::double_option")]
    #[schema(schema_with = idm_status_schema)]
    pub idm_status: Option<Option<String>>,
    /// 0..=10000 basis points of each completed sale for the village (PADes).
    #[schema(minimum = 0, maximum = 10_000)]
    pub village_share_bps: Option<i32>,
}

/// Who may change a village's settings: its admins now, through a token of it. Locks the row,
/// so concurrent changes apply one after the other.
fn authorize_admin(conn: &mut PgConnection, caller: &Caller, code: &str) -> Result<Village> {
    let village: Village = villages::table
        .find(code)
        .select(Village::as_select())
        .for_update()
        .first(conn)?;
    if !authz::current(conn, caller)?.is_village_admin(code) {
        return Err(Error::Forbidden(
            "only this village's admins change its settings".into(),
        ));
    }
    Ok(village)
}

pub fn update(
    conn: &mut PgConnection,
    caller: &Caller,
    code: &str,
    u: &VillageUpdate,
) -> Result<Village> {
    let mut errors = Vec::new();
    if let Some(Some(s)) = &u.idm_status
        && !IDM_STATUSES.contains(&s.as_str())
    {
        errors.push(FieldError::new(
            "idm_status",
            format!("one of {}", IDM_STATUSES.join(", ")),
        ));
    }
    if let Some(bps) = u.village_share_bps
        && !(0..=10_000).contains(&bps)
    {
        errors.push(FieldError::new("village_share_bps", "0 to 10000"));
    }
    if !errors.is_empty() {
        return Err(Error::Validation(errors));
    }
    let before = authorize_admin(conn, caller, code)?;
    if let Some(bps) = u.village_share_bps {
        let max_fee: Option<i32> = network_villages::table
            .inner_join(networks::table)
            .filter(network_villages::village_code.eq(code))
            .select(diesel::dsl::max(networks::network_fee_bps))
            .first(conn)?;
        if bps + max_fee.unwrap_or(0) > 10_000 {
            return Err(Error::field(
                "village_share_bps",
                "with a network's fee it would take more than 100 % of a sale",
            ));
        }
    }
    let after: Village = diesel::update(villages::table.find(code))
        .set((
            villages::idm_status.eq(u.idm_status.clone().unwrap_or(before.idm_status.clone())),
            villages::village_share_bps.eq(u.village_share_bps.unwrap_or(before.village_share_bps)),
            villages::updated_at.eq(diesel::dsl::now),
        ))
        .returning(Village::as_returning())
        .get_result(conn)?;
    audit::record(
        conn,
        audit::Record {
            actor: Some(caller.user_id),
            village: Some(code),
            action: "village.update",
            entity_type: "village",
            entity_id: code.to_string(),
            before: audit::snapshot(&before),
            after: audit::snapshot(&after),
        },
    )?;
    Ok(after)
}

pub fn list(
    conn: &mut PgConnection,
    region_prefix: Option<&str>,
    limit: i64,
    after: Option<String>,
) -> Result<Page<Village>> {
    let mut q = villages::table
        .select(Village::as_select())
        .order(villages::code)
        .limit(limit + 1)
        .into_boxed();
    if let Some(p) = region_prefix {
        crate::regions::validate_code("region", p)?;
        q = q.filter(
            villages::code
                .eq(p.to_string())
                .or(villages::code.like(format!("{p}.%"))),
        );
    }
    if let Some(a) = after {
        q = q.filter(villages::code.gt(a));
    }
    Ok(page(q.load(conn)?, limit, |v| v.code.clone(), |v| v))
}

/// Networks with their member villages: one query for the rows, one for all their members.
fn with_members(conn: &mut PgConnection, rows: Vec<NetworkRow>) -> Result<Vec<Network>> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let members: Vec<(Uuid, String)> = network_villages::table
        .filter(network_villages::network_id.eq_any(&ids))
        .select((network_villages::network_id, network_villages::village_code))
        .order((network_villages::network_id, network_villages::village_code))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|network| Network {
            village_codes: members
                .iter()
                .filter(|(id, _)| *id == network.id)
                .map(|(_, code)| code.clone())
                .collect(),
            network,
        })
        .collect())
}

pub fn get_network(conn: &mut PgConnection, id: Uuid) -> Result<Network> {
    let row: NetworkRow = networks::table
        .find(id)
        .select(NetworkRow::as_select())
        .first(conn)?;
    Ok(with_members(conn, vec![row])?.remove(0))
}

pub fn list_networks(
    conn: &mut PgConnection,
    limit: i64,
    after: Option<Uuid>,
) -> Result<Page<Network>> {
    let mut q = networks::table
        .select(NetworkRow::as_select())
        .order(networks::id)
        .limit(limit + 1)
        .into_boxed();
    if let Some(a) = after {
        q = q.filter(networks::id.gt(a));
    }
    let pg = page(q.load(conn)?, limit, |n| n.id, |n| n);
    Ok(Page {
        items: with_members(conn, pg.items)?,
        next_cursor: pg.next_cursor,
    })
}

#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkUpdate {
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*$"
    )]
    pub name: Option<String>,
    #[schema(minimum = 0, maximum = 10_000)]
    pub network_fee_bps: Option<i32>,
    /// Replaces the member villages.
    #[schema(min_items = 1, max_items = 1000)]
    pub village_codes: Option<Vec<String>>,
}

/// Platform admins change networks (fees, members).
pub fn update_network(
    conn: &mut PgConnection,
    caller: &Caller,
    id: Uuid,
    u: &NetworkUpdate,
) -> Result<Network> {
    // Lock first: concurrent changes apply one after the other, none is lost.
    networks::table
        .find(id)
        .select(networks::id)
        .for_update()
        .first::<Uuid>(conn)?;
    require_platform_admin(conn, caller)?;
    let before = get_network(conn, id)?;
    let name = u.name.clone().unwrap_or(before.network.name.clone());
    let fee = u.network_fee_bps.unwrap_or(before.network.network_fee_bps);
    let codes = u
        .village_codes
        .clone()
        .unwrap_or(before.village_codes.clone());
    let (name, fee, codes) = validate_network(conn, &name, fee, &codes)?;
    diesel::update(networks::table.find(id))
        .set((
            networks::name.eq(&name),
            networks::network_fee_bps.eq(fee),
            networks::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .map_err(|e| {
            on_constraint(e, |c| {
                (c == "networks_name_key")
                    .then(|| Error::conflict("a network with this name already exists"))
            })
        })?;
    diesel::delete(
        network_villages::table
            .filter(network_villages::network_id.eq(id))
            .filter(network_villages::village_code.ne_all(&codes)),
    )
    .execute(conn)?;
    let rows: Vec<_> = codes
        .iter()
        .map(|c| {
            (
                network_villages::network_id.eq(id),
                network_villages::village_code.eq(c),
            )
        })
        .collect();
    diesel::insert_into(network_villages::table)
        .values(&rows)
        .on_conflict_do_nothing()
        .execute(conn)?;
    let after = get_network(conn, id)?;
    audit::record(
        conn,
        audit::Record {
            actor: Some(caller.user_id),
            village: None,
            action: "network.update",
            entity_type: "network",
            entity_id: id.to_string(),
            before: audit::snapshot(&before),
            after: audit::snapshot(&after),
        },
    )?;
    Ok(after)
}

/// Networks a village belongs to (its "local" trade partners).
pub fn network_ids_of(conn: &mut PgConnection, village: &str) -> Result<Vec<Uuid>> {
    Ok(network_villages::table
        .filter(network_villages::village_code.eq(village))
        .select(network_villages::network_id)
        .load(conn)?)
}

/// `idm_status` of [`VillageUpdate`]: one of [`IDM_STATUSES`], or null.
fn idm_status_schema() -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{SchemaType, Type};
    let values = IDM_STATUSES
        .iter()
        .map(|s| serde_json::Value::from(*s))
        .chain([serde_json::Value::Null]);
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .enum_values(Some(values))
        .description(Some("one of the IDM statuses, or null to clear"))
        .build()
}
