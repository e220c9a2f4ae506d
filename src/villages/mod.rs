//! Villages (desa) onboarded onto the platform, and networks of villages that trade together.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::schema::{network_villages, networks, regions, villages};
use crate::http::error::{Error, Result, on_constraint};

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

/// Onboards a level-4 region as a village. Onboarding twice is a 409.
pub fn onboard(conn: &mut PgConnection, code: &str, actor: Option<Uuid>) -> Result<Village> {
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
            villages::onboarded_by.eq(actor),
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

/// Creates a network of onboarded villages.
pub fn create_network(
    conn: &mut PgConnection,
    name: &str,
    village_codes: &[String],
    network_fee_bps: i32,
) -> Result<Network> {
    let name = name.trim();
    let mut errors = Vec::new();
    if name.is_empty() || name.chars().count() > 100 {
        errors.push(crate::http::error::FieldError::new(
            "name",
            "1 to 100 characters",
        ));
    }
    if !(0..=10_000).contains(&network_fee_bps) {
        errors.push(crate::http::error::FieldError::new(
            "network_fee_bps",
            "0 to 10000",
        ));
    }
    let mut codes = village_codes.to_vec();
    codes.sort();
    codes.dedup();
    if codes.is_empty() || codes.len() > 1000 {
        errors.push(crate::http::error::FieldError::new(
            "village_codes",
            "1 to 1000 villages",
        ));
    }
    if !errors.is_empty() {
        return Err(Error::Validation(errors));
    }
    let known: Vec<String> = villages::table
        .filter(villages::code.eq_any(&codes))
        .select(villages::code)
        .load(conn)?;
    let missing: Vec<&String> = codes.iter().filter(|c| !known.contains(c)).collect();
    if !missing.is_empty() {
        return Err(Error::field(
            "village_codes",
            format!(
                "not onboarded: {}",
                missing
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    let row: NetworkRow = diesel::insert_into(networks::table)
        .values((
            networks::id.eq(Uuid::now_v7()),
            networks::name.eq(name),
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
