//! Memberships: the roles (admin, treasurer, member) a user has in a village, managed by the
//! village's admins.
//!
//! Every change authorizes against the caller's current membership ([`authz::current`]) and
//! locks the village row, so changes in one village serialize: two admins removing each other
//! cannot leave it without an admin. A member whose roles change or end loses their sessions
//! in that village.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::authz::{self, Current};
use super::tokens::{Caller, Role};
use super::{sessions, users};
use crate::audit;
use crate::db::schema::{memberships, shop_operators, shops, users as users_t, villages};
use crate::http::error::{Error, FieldError, Result, on_constraint};
use crate::http::pagination::{Page, page};

#[derive(Debug, Serialize, ToSchema)]
pub struct Member {
    pub user_id: Uuid,
    pub phone: String,
    pub name: String,
    pub village_code: String,
    pub roles: Vec<Role>,
    pub created_at: DateTime<Utc>,
}

/// Row shape of [`Member`]: users joined with memberships.
type MemberRow = (Uuid, String, String, String, Vec<Role>, DateTime<Utc>);

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

/// A role in a village, as requests name it (the OpenAPI schema of `roles`).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum RoleName {
    Admin,
    Treasurer,
    Member,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMember {
    /// `08…`, `628…` or `+628…`; stored as E.164.
    #[schema(pattern = r"^(\+62|62|0)8[0-9]{8,11}$")]
    pub phone: String,
    /// Required for a new account. For a phone that has an account already, leave it out (or
    /// send the account's own name): a person's name is theirs.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*$"
    )]
    pub name: Option<String>,
    /// A first password, only for a new account (the person should change it with
    /// `POST /me/password`). Refused for a phone that has an account: a password belongs to
    /// its person, and is never set or replaced by an admin.
    #[schema(min_length = 8, max_length = 128)]
    pub password: Option<String>,
    /// `admin`, `treasurer`, `member`.
    #[schema(min_items = 1, inline, value_type = Vec<RoleName>)]
    pub roles: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolesUpdate {
    #[schema(min_items = 1, inline, value_type = Vec<RoleName>)]
    pub roles: Vec<String>,
}

/// Who may read a village's members: its admins (token snapshot; reads only) and platform
/// admins.
pub fn may_read(caller: &Caller, village: &str) -> bool {
    caller.is_village_admin(village) || caller.is_platform_admin()
}

/// Authorizes a membership change in `village`: locks the village row (changes in a village
/// serialize) and checks the caller's current roles.
fn authorize_change(conn: &mut PgConnection, caller: &Caller, village: &str) -> Result<Current> {
    villages::table
        .find(village)
        .select(villages::code)
        .for_update()
        .first::<String>(conn)?;
    let now = authz::current(conn, caller)?;
    if !now.may_administer(village) {
        return Err(Error::Forbidden(
            "only this village's admins manage its members".into(),
        ));
    }
    Ok(now)
}

pub fn validate_roles(field: &str, roles: &[String]) -> Result<Vec<Role>> {
    let mut out: Vec<Role> = Vec::new();
    for r in roles {
        match Role::parse_village_role(r) {
            Some(role) => out.push(role),
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

/// A new member's fields, checked.
pub struct ValidMember {
    pub phone: String,
    pub name: Option<String>,
    pub roles: Vec<Role>,
}

/// Checks a new member's fields; the phone and roles normalized.
pub fn validate_new(m: &NewMember) -> Result<ValidMember> {
    let mut errors = Vec::new();
    let phone = super::phone::normalize(&m.phone)
        .map_err(|msg| errors.push(FieldError::new("phone", msg)))
        .ok();
    let name = match &m.name {
        Some(n) => users::validate_name("name", n)
            .map_err(|_| errors.push(FieldError::new("name", "1 to 100 characters")))
            .ok(),
        None => None,
    };
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
    Ok(ValidMember {
        phone: phone.expect("valid"),
        name,
        roles: roles.expect("valid"),
    })
}

/// Adds a member; creates the user when the phone is new (with `password_hash`, the first
/// password). For an existing account a supplied password or a different name is refused, never
/// silently dropped.
pub fn add(
    conn: &mut PgConnection,
    caller: &Caller,
    village: &str,
    m: &ValidMember,
    password_hash: Option<&str>,
) -> Result<Member> {
    conn.transaction(|conn| {
        let now = authorize_change(conn, caller, village)?;
        let user = match users::find_by_phone(conn, &m.phone)? {
            Some(u) => {
                if password_hash.is_some() {
                    return Err(Error::Conflict {
                        slug: "account-exists",
                        detail: "this phone has an account already and its password is the \
                                 person's own: add them without a password"
                            .into(),
                        extra: None,
                    });
                }
                if let Some(n) = &m.name
                    && *n != u.name
                {
                    return Err(Error::Conflict {
                        slug: "account-exists",
                        detail: "this phone has an account already under another name: add \
                                 them without a name"
                            .into(),
                        extra: None,
                    });
                }
                u
            }
            None => {
                let mut missing = Vec::new();
                if m.name.is_none() {
                    missing.push(FieldError::new(
                        "name",
                        "required: this phone has no account yet",
                    ));
                }
                if password_hash.is_none() {
                    missing.push(FieldError::new(
                        "password",
                        "required: this phone has no account yet",
                    ));
                }
                if !missing.is_empty() {
                    return Err(Error::Validation(missing));
                }
                users::create(
                    conn,
                    &m.phone,
                    m.name.as_deref().expect("checked"),
                    password_hash.expect("checked"),
                    false,
                )?
            }
        };
        diesel::insert_into(memberships::table)
            .values((
                memberships::user_id.eq(user.id),
                memberships::village_code.eq(village),
                memberships::roles.eq(&m.roles),
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
                actor: Some(now.user_id),
                village: Some(village),
                action: "member.add",
                entity_type: "membership",
                entity_id: user.id.to_string(),
                before: None,
                after: audit::snapshot(&member),
            },
        )?;
        Ok(member)
    })
}

/// A village keeps at least one admin (checked after a change, inside its transaction).
fn ensure_an_admin_remains(conn: &mut PgConnection, village: &str) -> Result<()> {
    let admins: i64 = memberships::table
        .filter(memberships::village_code.eq(village))
        .filter(memberships::roles.contains(vec![Role::Admin]))
        .count()
        .get_result(conn)?;
    if admins == 0 {
        return Err(Error::conflict(
            "a village keeps at least one admin: appoint another admin first",
        ));
    }
    Ok(())
}

pub fn update_roles(
    conn: &mut PgConnection,
    caller: &Caller,
    village: &str,
    user_id: Uuid,
    roles: &[Role],
) -> Result<Member> {
    conn.transaction(|conn| {
        let now = authorize_change(conn, caller, village)?;
        let before = load(conn, user_id, village)?;
        if user_id == now.user_id && !roles.contains(&Role::Admin) {
            return Err(Error::conflict("you cannot remove your own admin role"));
        }
        diesel::update(memberships::table.find((user_id, village)))
            .set((
                memberships::roles.eq(roles),
                memberships::updated_at.eq(diesel::dsl::now),
            ))
            .execute(conn)?;
        ensure_an_admin_remains(conn, village)?;
        if before.roles != roles {
            // Their sessions carry the old roles: they log in again to get the new ones.
            sessions::revoke_in_village(conn, user_id, village)?;
        }
        let after = load(conn, user_id, village)?;
        audit::record(
            conn,
            audit::Record {
                actor: Some(now.user_id),
                village: Some(village),
                action: "member.update_roles",
                entity_type: "membership",
                entity_id: user_id.to_string(),
                before: audit::snapshot(&before),
                after: audit::snapshot(&after),
            },
        )?;
        Ok(after)
    })
}

/// Removes a member: their membership, their operator links to this village's shops and their
/// sessions in the village. A shop may be left without operators; its village admin still
/// manages it and can link another.
pub fn remove(
    conn: &mut PgConnection,
    caller: &Caller,
    village: &str,
    user_id: Uuid,
) -> Result<()> {
    conn.transaction(|conn| {
        let now = authorize_change(conn, caller, village)?;
        if user_id == now.user_id {
            return Err(Error::conflict("you cannot remove yourself"));
        }
        let before = load(conn, user_id, village)?;
        diesel::delete(memberships::table.find((user_id, village))).execute(conn)?;
        ensure_an_admin_remains(conn, village)?;
        let village_shops = shops::table
            .filter(shops::village_code.eq(village))
            .select(shops::id);
        let unlinked: Vec<Uuid> = diesel::delete(
            shop_operators::table
                .filter(shop_operators::user_id.eq(user_id))
                .filter(shop_operators::shop_id.eq_any(village_shops)),
        )
        .returning(shop_operators::shop_id)
        .get_results(conn)?;
        sessions::revoke_in_village(conn, user_id, village)?;
        audit::record(
            conn,
            audit::Record {
                actor: Some(now.user_id),
                village: Some(village),
                action: "member.remove",
                entity_type: "membership",
                entity_id: user_id.to_string(),
                before: audit::snapshot(&before),
                after: Some(serde_json::json!({"unlinked_shops": unlinked})),
            },
        )?;
        Ok(())
    })
}

pub fn list(
    conn: &mut PgConnection,
    caller: &Caller,
    village: &str,
    limit: i64,
    after: Option<Uuid>,
) -> Result<Page<Member>> {
    crate::villages::get(conn, village)?;
    if !may_read(caller, village) {
        return Err(Error::Forbidden(
            "only this village's admins list its members".into(),
        ));
    }
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
