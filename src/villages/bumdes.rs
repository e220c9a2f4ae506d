//! BUMDes (Badan Usaha Milik Desa, PP 11/2021): village-owned enterprises and their business
//! units (unit usaha). Kind `desa` serves one village; `bersama` (BUMDes Bersama) is owned by
//! several villages, the creating village leading it.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::audit;
use crate::db::schema::{bumdes, bumdes_units, bumdes_villages, villages};
use crate::http::error::{Error, FieldError, Result, text_field};
use crate::http::pagination::{Page, page};
use crate::identity::authz;
use crate::identity::tokens::Caller;

#[derive(Debug, Clone, Queryable, Selectable, Serialize, ToSchema)]
#[diesel(table_name = bumdes_units)]
pub struct Unit {
    pub id: Uuid,
    pub bumdes_id: Uuid,
    pub village_code: String,
    pub name: String,
    pub sector: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize, ToSchema)]
#[diesel(table_name = bumdes)]
pub struct BumdesRow {
    pub id: Uuid,
    /// The lead village.
    pub village_code: String,
    pub name: String,
    /// `desa` or `bersama`.
    pub kind: String,
    pub legal_number: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Bumdes {
    #[serde(flatten)]
    pub bumdes: BumdesRow,
    /// Every owning village that accepted, the lead included.
    pub village_codes: Vec<String>,
    /// Partner villages invited to co-own it that have not accepted yet.
    pub invited_village_codes: Vec<String>,
    pub units: Vec<Unit>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBumdes {
    #[schema(
        min_length = 1,
        max_length = 150,
        pattern = r"^[^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*$"
    )]
    pub name: String,
    /// `desa` or `bersama` (only a `bersama` one has `partner_village_codes`).
    #[schema(schema_with = bumdes_kind_schema)]
    pub kind: String,
    /// Registration number (badan hukum), if any.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*$"
    )]
    pub legal_number: Option<String>,
    /// For `bersama`: the other owning villages (onboarded).
    #[serde(default)]
    pub partner_village_codes: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUnit {
    #[schema(
        min_length = 1,
        max_length = 150,
        pattern = r"^[^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*$"
    )]
    pub name: String,
    /// e.g. perdagangan, pertanian, wisata, jasa.
    #[schema(
        min_length = 1,
        max_length = 50,
        pattern = r"^[^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*$"
    )]
    pub sector: Option<String>,
}

/// BUMDes with their owners and units: three queries whatever the number of BUMDes.
fn load_many(conn: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<Bumdes>> {
    let rows: Vec<BumdesRow> = bumdes::table
        .filter(bumdes::id.eq_any(ids))
        .select(BumdesRow::as_select())
        .order(bumdes::id)
        .load(conn)?;
    let owners: Vec<(Uuid, String, bool)> = bumdes_villages::table
        .filter(bumdes_villages::bumdes_id.eq_any(ids))
        .select((
            bumdes_villages::bumdes_id,
            bumdes_villages::village_code,
            bumdes_villages::accepted_at.is_not_null(),
        ))
        .order((bumdes_villages::bumdes_id, bumdes_villages::village_code))
        .load(conn)?;
    let units: Vec<Unit> = bumdes_units::table
        .filter(bumdes_units::bumdes_id.eq_any(ids))
        .select(Unit::as_select())
        .order(bumdes_units::id)
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|b| Bumdes {
            village_codes: owners
                .iter()
                .filter(|(id, _, accepted)| *id == b.id && *accepted)
                .map(|(_, code, _)| code.clone())
                .collect(),
            invited_village_codes: owners
                .iter()
                .filter(|(id, _, accepted)| *id == b.id && !*accepted)
                .map(|(_, code, _)| code.clone())
                .collect(),
            units: units
                .iter()
                .filter(|u| u.bumdes_id == b.id)
                .cloned()
                .collect(),
            bumdes: b,
        })
        .collect())
}

pub fn get(conn: &mut PgConnection, id: Uuid) -> Result<Bumdes> {
    load_many(conn, &[id])?.pop().ok_or(Error::NotFound)
}

/// BUMDes a village owns or co-owns (accepted), by id.
pub fn list_for_village(
    conn: &mut PgConnection,
    village: &str,
    limit: i64,
    after: Option<Uuid>,
) -> Result<Page<Bumdes>> {
    crate::villages::get(conn, village)?;
    let ids: Vec<Uuid> = bumdes_villages::table
        .filter(bumdes_villages::village_code.eq(village))
        .filter(bumdes_villages::accepted_at.is_not_null())
        .filter(bumdes_villages::bumdes_id.gt(after.unwrap_or(Uuid::nil())))
        .select(bumdes_villages::bumdes_id)
        .order(bumdes_villages::bumdes_id)
        .limit(limit + 1)
        .load(conn)?;
    let pg = page(ids, limit, |id| *id, |id| id);
    Ok(Page {
        items: load_many(conn, &pg.items)?,
        next_cursor: pg.next_cursor,
    })
}

/// Admin of `village` now, or a platform admin.
fn require_admin_now(
    conn: &mut PgConnection,
    caller: &Caller,
    village: &str,
    what: &str,
) -> Result<()> {
    if authz::current(conn, caller)?.may_administer(village) {
        Ok(())
    } else {
        Err(Error::Forbidden(format!(
            "only this village's admins {what}"
        )))
    }
}

pub fn create(
    conn: &mut PgConnection,
    caller: &Caller,
    village: &str,
    b: &NewBumdes,
) -> Result<Bumdes> {
    conn.transaction(|conn| create_in(conn, caller, village, b))
}

fn create_in(
    conn: &mut PgConnection,
    caller: &Caller,
    village: &str,
    b: &NewBumdes,
) -> Result<Bumdes> {
    crate::villages::get(conn, village)?;
    require_admin_now(conn, caller, village, "register its BUMDes")?;
    let mut errors = Vec::new();
    let name = text_field("name", &b.name, 1, 150, &mut errors);
    let legal = b
        .legal_number
        .as_deref()
        .map(|l| text_field("legal_number", l, 1, 100, &mut errors));
    let mut partners: Vec<String> = b
        .partner_village_codes
        .iter()
        .filter(|c| c.as_str() != village)
        .cloned()
        .collect();
    partners.sort();
    partners.dedup();
    match b.kind.as_str() {
        "desa" if !partners.is_empty() => errors.push(FieldError::new(
            "partner_village_codes",
            "a BUMDes of kind desa has no partner villages",
        )),
        "bersama" if partners.is_empty() => errors.push(FieldError::new(
            "partner_village_codes",
            "a BUMDes Bersama needs at least one partner village",
        )),
        "desa" | "bersama" => {}
        _ => errors.push(FieldError::new("kind", "desa or bersama")),
    }
    if !errors.is_empty() {
        return Err(Error::Validation(errors));
    }
    let known: i64 = villages::table
        .filter(villages::code.eq_any(&partners))
        .count()
        .get_result(conn)?;
    if known as usize != partners.len() {
        return Err(Error::field(
            "partner_village_codes",
            "every partner village must be onboarded",
        ));
    }
    let id = Uuid::now_v7();
    diesel::insert_into(bumdes::table)
        .values((
            bumdes::id.eq(id),
            bumdes::village_code.eq(village),
            bumdes::name.eq(&name),
            bumdes::kind.eq(&b.kind),
            bumdes::legal_number.eq(legal),
        ))
        .execute(conn)?;
    // The lead owns it at once; partners are invited and co-own it once they accept.
    diesel::insert_into(bumdes_villages::table)
        .values((
            bumdes_villages::bumdes_id.eq(id),
            bumdes_villages::village_code.eq(village),
            bumdes_villages::invited_by.eq(caller.user_id),
            bumdes_villages::accepted_at.eq(diesel::dsl::now),
        ))
        .execute(conn)?;
    let invited: Vec<_> = partners
        .iter()
        .map(|c| {
            (
                bumdes_villages::bumdes_id.eq(id),
                bumdes_villages::village_code.eq(c),
                bumdes_villages::invited_by.eq(caller.user_id),
            )
        })
        .collect();
    diesel::insert_into(bumdes_villages::table)
        .values(&invited)
        .execute(conn)?;
    let created = get(conn, id)?;
    for partner in &partners {
        audit::record(
            conn,
            audit::Record {
                actor: Some(caller.user_id),
                village: Some(partner),
                action: "bumdes.invite",
                entity_type: "bumdes",
                entity_id: id.to_string(),
                before: None,
                after: audit::snapshot(&created),
            },
        )?;
    }
    audit::record(
        conn,
        audit::Record {
            actor: Some(caller.user_id),
            village: Some(village),
            action: "bumdes.create",
            entity_type: "bumdes",
            entity_id: id.to_string(),
            before: None,
            after: audit::snapshot(&created),
        },
    )?;
    Ok(created)
}

pub fn add_unit(
    conn: &mut PgConnection,
    caller: &Caller,
    bumdes_id: Uuid,
    u: &NewUnit,
) -> Result<Unit> {
    let b = get(conn, bumdes_id)?;
    if !authz::current(conn, caller)?.is_village_admin(&b.bumdes.village_code) {
        return Err(Error::Forbidden(
            "only the lead village's admins add units".into(),
        ));
    }
    let mut errors = Vec::new();
    let name = text_field("name", &u.name, 1, 150, &mut errors);
    let sector = u
        .sector
        .as_deref()
        .map(|s| text_field("sector", s, 1, 50, &mut errors));
    if !errors.is_empty() {
        return Err(Error::Validation(errors));
    }
    let unit: Unit = diesel::insert_into(bumdes_units::table)
        .values((
            bumdes_units::id.eq(Uuid::now_v7()),
            bumdes_units::bumdes_id.eq(bumdes_id),
            bumdes_units::village_code.eq(&b.bumdes.village_code),
            bumdes_units::name.eq(&name),
            bumdes_units::sector.eq(sector),
        ))
        .returning(Unit::as_returning())
        .get_result(conn)?;
    audit::record(
        conn,
        audit::Record {
            actor: Some(caller.user_id),
            village: Some(&b.bumdes.village_code),
            action: "bumdes.add_unit",
            entity_type: "bumdes_unit",
            entity_id: unit.id.to_string(),
            before: None,
            after: audit::snapshot(&unit),
        },
    )?;
    Ok(unit)
}

/// What a partner village says to an invitation to co-own a BUMDes Bersama.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Accept,
    Decline,
}

/// A partner village's admin (or a platform admin) accepts or declines co-ownership. Recorded in
/// the partner's audit log.
pub fn answer_invitation(
    conn: &mut PgConnection,
    caller: &Caller,
    bumdes_id: Uuid,
    village: &str,
    answer: Answer,
) -> Result<Bumdes> {
    conn.transaction(|conn| {
        let before = get(conn, bumdes_id)?;
        if !before.invited_village_codes.iter().any(|c| c == village) {
            return Err(if before.village_codes.iter().any(|c| c == village) {
                Error::conflict("this village co-owns the BUMDes already")
            } else {
                Error::NotFound
            });
        }
        require_admin_now(conn, caller, village, "answer for it")?;
        let row = bumdes_villages::table
            .find((bumdes_id, village))
            .filter(bumdes_villages::accepted_at.is_null());
        let changed = match answer {
            Answer::Accept => diesel::update(row)
                .set(bumdes_villages::accepted_at.eq(diesel::dsl::now))
                .execute(conn)?,
            Answer::Decline => diesel::delete(row).execute(conn)?,
        };
        if changed == 0 {
            return Err(Error::conflict("the invitation was answered meanwhile"));
        }
        let after = get(conn, bumdes_id)?;
        audit::record(
            conn,
            audit::Record {
                actor: Some(caller.user_id),
                village: Some(village),
                action: match answer {
                    Answer::Accept => "bumdes.accept",
                    Answer::Decline => "bumdes.decline",
                },
                entity_type: "bumdes",
                entity_id: bumdes_id.to_string(),
                before: audit::snapshot(&before),
                after: audit::snapshot(&after),
            },
        )?;
        Ok(after)
    })
}

fn bumdes_kind_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .enum_values(Some(["desa", "bersama"]))
        .build()
}
