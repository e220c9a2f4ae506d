//! A person's password: changed by the person (`POST /me/password`), or reset with a one-time
//! code that an admin or treasurer of their village issues and hands over in person (villages
//! have no SMS gateway). An admin never sets or replaces an existing person's password.
//!
//! Who may issue a code for whom — a code lets its issuer take over the account, so it never
//! reaches past the issuer's own standing:
//! - a platform admin: for anyone but another platform admin;
//! - a village admin: for a member of their village whose admin or treasurer roles, if any,
//!   are all in that village;
//! - a treasurer: for a plain member of their village who holds no admin or treasurer role
//!   anywhere.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use uuid::Uuid;

use super::authz;
use super::sessions;
use super::tokens::{Caller, Role};
use crate::audit;
use crate::db::schema::{memberships, password_resets, users};
use crate::http::error::{Error, Result};

/// How long a reset code stays good.
pub const RESET_CODE_TTL_HOURS: i64 = 24;
/// Crockford's base32 alphabet: no I, L, O or U, so a code read aloud or handwritten survives.
const CODE_ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const CODE_LEN: usize = 10;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// Your password now: a 400 naming this field when it is not.
    pub current_password: String,
    #[schema(min_length = 8, max_length = 128)]
    pub new_password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordReset {
    #[schema(pattern = r"^(\+62|62|0)8[0-9]{8,11}$")]
    pub phone: String,
    /// The code from the village office, e.g. `7K2QX-9MPRD` (case and dash do not matter).
    pub code: String,
    #[schema(min_length = 8, max_length = 128)]
    pub new_password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ResetCode {
    /// Hand it to the person; it works once, until `expires_at`.
    pub code: String,
    pub expires_at: DateTime<Utc>,
}

/// Sets the caller's new password if the stored hash is still the one the current password was
/// checked against (a concurrent change wins once), and ends every other session of theirs.
pub fn change_password(
    conn: &mut PgConnection,
    caller: &Caller,
    checked_hash: &str,
    new_hash: &str,
) -> Result<()> {
    conn.transaction(|conn| {
        let changed = diesel::update(
            users::table
                .find(caller.user_id)
                .filter(users::password_hash.eq(checked_hash)),
        )
        .set((
            users::password_hash.eq(new_hash),
            users::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)?;
        if changed == 0 {
            return Err(Error::conflict(
                "the password changed meanwhile; sign in again",
            ));
        }
        sessions::revoke_all_but(conn, caller.user_id, Some(caller.session))?;
        Ok(())
    })
}

fn normalize_code(code: &str) -> String {
    code.chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

fn code_hash(code: &str) -> Vec<u8> {
    Sha256::digest(normalize_code(code).as_bytes()).to_vec()
}

fn new_code() -> String {
    let mut rng = rand::rng();
    let raw: String = (0..CODE_LEN)
        .map(|_| CODE_ALPHABET[rng.random_range(0..CODE_ALPHABET.len())] as char)
        .collect();
    format!("{}-{}", &raw[..5], &raw[5..])
}

/// Issues a one-time reset code for `target`, a member of `village` (see the module
/// documentation for who may). Earlier unused codes of the person stop working.
pub fn issue_reset(
    conn: &mut PgConnection,
    caller: &Caller,
    village: &str,
    target: Uuid,
) -> Result<ResetCode> {
    conn.transaction(|conn| {
        crate::villages::get(conn, village)?;
        let now = authz::current(conn, caller)?;
        let is_admin = now.may_administer(village);
        if !is_admin && !now.is_treasurer_of(village) {
            return Err(Error::Forbidden(
                "only this village's admins and treasurers issue reset codes".into(),
            ));
        }
        let roles: Vec<Role> = memberships::table
            .find((target, village))
            .select(memberships::roles)
            .first(conn)?;
        if target == now.user_id {
            return Err(Error::conflict(
                "change your own password with POST /api/v1/me/password",
            ));
        }
        let target_is_platform_admin: bool = users::table
            .find(target)
            .select(users::is_platform_admin)
            .first(conn)?;
        let privileged_elsewhere: i64 = memberships::table
            .filter(memberships::user_id.eq(target))
            .filter(memberships::village_code.ne(village))
            .filter(memberships::roles.overlaps_with(vec![Role::Admin, Role::Treasurer]))
            .count()
            .get_result(conn)?;
        let privileged_here = roles.contains(&Role::Admin) || roles.contains(&Role::Treasurer);
        let allowed = if now.is_platform_admin() {
            !target_is_platform_admin
        } else if is_admin {
            !target_is_platform_admin && privileged_elsewhere == 0
        } else {
            !target_is_platform_admin && privileged_elsewhere == 0 && !privileged_here
        };
        if !allowed {
            return Err(Error::Forbidden(
                "this person's roles reach beyond yours: a platform admin (or, for a treasurer's \
                 request, the village admin) issues their code"
                    .into(),
            ));
        }
        diesel::update(
            password_resets::table
                .filter(password_resets::user_id.eq(target))
                .filter(password_resets::used_at.is_null())
                .filter(password_resets::expires_at.gt(Utc::now())),
        )
        .set(password_resets::expires_at.eq(Utc::now()))
        .execute(conn)?;
        let code = new_code();
        let expires_at = Utc::now() + Duration::hours(RESET_CODE_TTL_HOURS);
        diesel::insert_into(password_resets::table)
            .values((
                password_resets::id.eq(Uuid::now_v7()),
                password_resets::user_id.eq(target),
                password_resets::code_hash.eq(code_hash(&code)),
                password_resets::issued_by.eq(now.user_id),
                password_resets::village_code.eq(village),
                password_resets::expires_at.eq(expires_at),
            ))
            .execute(conn)?;
        audit::record(
            conn,
            audit::Record {
                actor: Some(now.user_id),
                village: Some(village),
                action: "member.password_reset_issued",
                entity_type: "user",
                entity_id: target.to_string(),
                before: None,
                after: Some(serde_json::json!({"expires_at": expires_at})),
            },
        )?;
        Ok(ResetCode { code, expires_at })
    })
}

/// The live reset of this phone and code: (reset id, user id). `None` when there is none.
pub fn find_reset(
    conn: &mut PgConnection,
    phone: &str,
    code: &str,
) -> Result<Option<(Uuid, Uuid)>> {
    Ok(password_resets::table
        .inner_join(users::table.on(users::id.eq(password_resets::user_id)))
        .filter(users::phone.eq(phone))
        .filter(password_resets::code_hash.eq(code_hash(code)))
        .filter(password_resets::used_at.is_null())
        .filter(password_resets::expires_at.gt(Utc::now()))
        .select((password_resets::id, users::id))
        .first(conn)
        .optional()?)
}

/// Uses a reset code once: sets the new password and ends every session of the person.
/// `false` when the code was used (or expired) meanwhile.
pub fn redeem_reset(
    conn: &mut PgConnection,
    reset: Uuid,
    user: Uuid,
    new_hash: &str,
) -> Result<bool> {
    conn.transaction(|conn| {
        let village: Option<String> = diesel::update(
            password_resets::table
                .find(reset)
                .filter(password_resets::used_at.is_null())
                .filter(password_resets::expires_at.gt(Utc::now())),
        )
        .set(password_resets::used_at.eq(Utc::now()))
        .returning(password_resets::village_code)
        .get_result(conn)
        .optional()?;
        let Some(village) = village else {
            return Ok(false);
        };
        diesel::update(users::table.find(user))
            .set((
                users::password_hash.eq(new_hash),
                users::updated_at.eq(diesel::dsl::now),
            ))
            .execute(conn)?;
        sessions::revoke_all_but(conn, user, None)?;
        audit::record(
            conn,
            audit::Record {
                actor: Some(user),
                village: Some(&village),
                action: "member.password_reset_used",
                entity_type: "user",
                entity_id: user.to_string(),
                before: None,
                after: None,
            },
        )?;
        Ok(true)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_readable_and_normalize() {
        let c = new_code();
        assert_eq!(c.len(), CODE_LEN + 1);
        assert!(
            normalize_code(&c)
                .bytes()
                .all(|b| CODE_ALPHABET.contains(&b))
        );
        assert_eq!(
            code_hash(&c),
            code_hash(&c.to_lowercase().replace('-', " "))
        );
        assert_ne!(code_hash(&c), code_hash(&new_code()));
    }
}
