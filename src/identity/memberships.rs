//! Memberships: the roles (admin, treasurer, member) a user has in a village, managed by the
//! village's admins.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::tokens::{Caller, Role};
use super::users;
use crate::audit;
use crate::db::schema::{memberships, users as users_t};
use crate::http::error::{Error, FieldError, Result, on_constraint};
use crate::http::pagination::{Page, page};

#[derive(Debug, Serialize, ToSchema)]
pub struct Member {
    pub user_id: Uuid,
    pub phone: String,
    pub name: String,
    pub village_code: String,
    pub roles: Vec<String>,
    pub created_at: DateTime<Utc>,
}

/// Row shape of [`Member`]: users joined with memberships.
type MemberRow = (Uuid, String, String, String, Vec<String>, DateTime<Utc>);

impl From<MemberRow> for Member {
    fn from((user_id, phone, name, village_code, roles, created_at): MemberRow) -> Self {
        Member {
            user_id,
            phone,
            name,
            village_code,
            roles,
            created_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMember {
    /// `08…`, `628…` or `+628…`; stored as E.164.
    pub phone: String,
    /// Used when the phone has no account yet.
    pub name: String,
    /// Required when the phone has no account yet; an existing user keeps their password.
    pub password: Option<String>,
    pub roles: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolesUpdate {
    pub roles: Vec<String>,
}

/// Who may manage a village's members: its admins, through a token of it, and platform admins
/// (who appoint a newly onboarded village's first admin).
pub fn may_manage(caller: &Caller, village: &str) -> bool {
    caller.is_village_admin(village) || caller.is_platform_admin()
}

fn authorize(conn: &mut PgConnection, caller: &Caller, village: &str) -> Result<()> {
    crate::villages::get(conn, village)?;
    if !may_manage(caller, village) {
        return Err(Error::Forbidden(
            "only this village's admins manage its members".into(),
        ));
    }
    Ok(())
}

pub fn validate_roles(field: &str, roles: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for r in roles {
        match Role::parse_village_role(r) {
            Some(role) => out.push(role.as_str().to_string()),
            None => {
                return Err(Error::field(
                    field,
                    format!("unknown role {r:?}: admin, treasurer or member"),
                ));
            }
        }
    }
    out.sort();
    out.dedup();
    if out.is_empty() {
        return Err(Error::field(field, "at least one role"));
    }
    Ok(out)
}

fn load(conn: &mut PgConnection, user_id: Uuid, village: &str) -> Result<Member> {
    let row: MemberRow = memberships::table
        .inner_join(users_t::table)
        .filter(memberships::user_id.eq(user_id))
        .filter(memberships::village_code.eq(village))
        .select((
            users_t::id,
            users_t::phone,
            users_t::name,
            memberships::village_code,
            memberships::roles,
            memberships::created_at,
        ))
        .first(conn)?;
    Ok(row.into())
}

/// Checks a new member's fields; returns the normalized phone and roles.
pub fn validate_new(m: &NewMember) -> Result<(String, String, Vec<String>)> {
    let mut errors = Vec::new();
    let phone = super::phone::normalize(&m.phone)
        .map_err(|msg| errors.push(FieldError::new("phone", msg)))
        .ok();
    let name = users::validate_name("name", &m.name)
        .map_err(|_| errors.push(FieldError::new("name", "1 to 100 characters")))
        .ok();
    if let Some(p) = &m.password
        && let Err(msg) = super::password::validate(p)
    {
        errors.push(FieldError::new("password", msg));
    }
    let roles = validate_roles("roles", &m.roles)
        .map_err(|e| {
            if let Error::Validation(v) = e {
                errors.extend(v)
            }
        })
        .ok();
    if !errors.is_empty() {
        return Err(Error::Validation(errors));
    }
    Ok((
        phone.expect("valid"),
        name.expect("valid"),
        roles.expect("valid"),
    ))
}

/// Adds a member; creates the user when the phone is new (with `password_hash`).
pub fn add(
    conn: &mut PgConnection,
    caller: &Caller,
    village: &str,
    phone: &str,
    name: &str,
    password_hash: Option<&str>,
    roles: &[String],
) -> Result<Member> {
    authorize(conn, caller, village)?;
    let user = match users::find_by_phone(conn, phone)? {
        Some(u) => u,
        None => {
            let hash = password_hash.ok_or_else(|| {
                Error::field("password", "required: this phone has no account yet")
            })?;
            users::create(conn, phone, name, hash, false)?
        }
    };
    diesel::insert_into(memberships::table)
        .values((
            memberships::user_id.eq(user.id),
            memberships::village_code.eq(village),
            memberships::roles.eq(roles),
        ))
        .execute(conn)
        .map_err(|e| {
            on_constraint(e, |c| {
                (c == "memberships_pkey")
                    .then(|| Error::conflict("already a member of this village"))
            })
        })?;
    let member = load(conn, user.id, village)?;
    audit::record(
        conn,
        audit::Record {
            actor: Some(caller.user_id),
            village: Some(village),
            action: "member.add",
            entity_type: "membership",
            entity_id: user.id.to_string(),
            before: None,
            after: audit::snapshot(&member),
        },
    )?;
    Ok(member)
}

pub fn update_roles(
    conn: &mut PgConnection,
    caller: &Caller,
    village: &str,
    user_id: Uuid,
    roles: &[String],
) -> Result<Member> {
    authorize(conn, caller, village)?;
    let before = load(conn, user_id, village)?;
    if user_id == caller.user_id && !roles.iter().any(|r| r == "admin") {
        return Err(Error::conflict("you cannot remove your own admin role"));
    }
    diesel::update(memberships::table.find((user_id, village)))
        .set((
            memberships::roles.eq(roles),
            memberships::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)?;
    let after = load(conn, user_id, village)?;
    audit::record(
        conn,
        audit::Record {
            actor: Some(caller.user_id),
            village: Some(village),
            action: "member.update_roles",
            entity_type: "membership",
            entity_id: user_id.to_string(),
            before: audit::snapshot(&before),
            after: audit::snapshot(&after),
        },
    )?;
    Ok(after)
}

pub fn remove(
    conn: &mut PgConnection,
    caller: &Caller,
    village: &str,
    user_id: Uuid,
) -> Result<()> {
    authorize(conn, caller, village)?;
    if user_id == caller.user_id {
        return Err(Error::conflict("you cannot remove yourself"));
    }
    let before = load(conn, user_id, village)?;
    diesel::delete(memberships::table.find((user_id, village))).execute(conn)?;
    audit::record(
        conn,
        audit::Record {
            actor: Some(caller.user_id),
            village: Some(village),
            action: "member.remove",
            entity_type: "membership",
            entity_id: user_id.to_string(),
            before: audit::snapshot(&before),
            after: None,
        },
    )?;
    Ok(())
}

pub fn list(
    conn: &mut PgConnection,
    caller: &Caller,
    village: &str,
    limit: i64,
    after: Option<Uuid>,
) -> Result<Page<Member>> {
    authorize(conn, caller, village)?;
    let mut q = memberships::table
        .inner_join(users_t::table)
        .filter(memberships::village_code.eq(village))
        .select((
            users_t::id,
            users_t::phone,
            users_t::name,
            memberships::village_code,
            memberships::roles,
            memberships::created_at,
        ))
        .order(users_t::id)
        .limit(limit + 1)
        .into_boxed();
    if let Some(a) = after {
        q = q.filter(users_t::id.gt(a));
    }
    let rows: Vec<MemberRow> = q.load(conn)?;
    Ok(page(rows, limit, |r| r.0, Member::from))
}
