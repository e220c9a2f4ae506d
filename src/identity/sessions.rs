//! Login, refresh-token rotation with reuse detection, logout.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use uuid::Uuid;

use super::tokens::{ACCESS_TTL_SECS, Role, TokenKeys};
use crate::db::schema::{memberships, refresh_tokens, users, villages};
use crate::http::error::{Error, Result};

pub const REFRESH_TTL_DAYS: i64 = 30;

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
}

pub fn bad_credentials() -> Error {
    Error::Unauthorized("invalid phone, password or village".into())
}

/// What a user may be in a village: their membership roles, plus `platform_admin`.
/// `None` when they may not log in there (not a member, or not an onboarded village).
pub fn roles_in(
    conn: &mut PgConnection,
    user_id: Uuid,
    is_platform_admin: bool,
    village: &str,
) -> Result<Option<Vec<Role>>> {
    let member: Option<Vec<String>> = memberships::table
        .find((user_id, village))
        .select(memberships::roles)
        .first(conn)
        .optional()?;
    let mut roles: Vec<Role> = member
        .as_deref()
        .unwrap_or_default()
        .iter()
        .filter_map(|r| Role::parse_village_role(r))
        .collect();
    if is_platform_admin {
        let onboarded: bool =
            diesel::select(diesel::dsl::exists(villages::table.find(village))).get_result(conn)?;
        if !onboarded {
            return Ok(None);
        }
        roles.push(Role::PlatformAdmin);
    } else if member.is_none() {
        return Ok(None);
    }
    Ok(Some(roles))
}

fn hash_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn new_refresh(
    conn: &mut PgConnection,
    family: Uuid,
    user_id: Uuid,
    village: &str,
) -> Result<String> {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    diesel::insert_into(refresh_tokens::table)
        .values((
            refresh_tokens::id.eq(Uuid::now_v7()),
            refresh_tokens::family_id.eq(family),
            refresh_tokens::user_id.eq(user_id),
            refresh_tokens::village_code.eq(village),
            refresh_tokens::token_hash.eq(hash_token(&token)),
            refresh_tokens::expires_at.eq(Utc::now() + Duration::days(REFRESH_TTL_DAYS)),
        ))
        .execute(conn)?;
    Ok(token)
}

/// Issues an access token and the first refresh token of a new family.
pub fn start_session(
    conn: &mut PgConnection,
    keys: &TokenKeys,
    user_id: Uuid,
    village: &str,
    roles: Vec<Role>,
) -> Result<TokenPair> {
    let refresh_token = new_refresh(conn, Uuid::now_v7(), user_id, village)?;
    Ok(TokenPair {
        access_token: keys.issue(user_id, village, roles)?,
        refresh_token,
        token_type: "Bearer",
        expires_in: ACCESS_TTL_SECS,
    })
}

#[derive(Queryable)]
struct StoredToken {
    id: Uuid,
    family_id: Uuid,
    user_id: Uuid,
    village_code: String,
    expires_at: DateTime<Utc>,
    used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

/// What a refresh attempt came to. Reuse is an outcome, not an error, so that the revocation of
/// the family commits.
pub enum Refreshed {
    Ok(TokenPair),
    Rejected,
}

/// Rotates a refresh token. Concurrent use of one token: the row lock lets exactly one rotate;
/// the others see it used.
pub fn refresh(
    conn: &mut PgConnection,
    keys: &TokenKeys,
    presented: &str,
    reuse_grace_secs: i64,
) -> Result<Refreshed> {
    let stored: Option<StoredToken> = refresh_tokens::table
        .filter(refresh_tokens::token_hash.eq(hash_token(presented)))
        .select((
            refresh_tokens::id,
            refresh_tokens::family_id,
            refresh_tokens::user_id,
            refresh_tokens::village_code,
            refresh_tokens::expires_at,
            refresh_tokens::used_at,
            refresh_tokens::revoked_at,
        ))
        .for_update()
        .first(conn)
        .optional()?;
    let Some(t) = stored else {
        return Ok(Refreshed::Rejected);
    };
    let now = Utc::now();
    if t.revoked_at.is_some() || t.expires_at <= now {
        return Ok(Refreshed::Rejected);
    }
    if let Some(used_at) = t.used_at {
        if now - used_at > Duration::seconds(reuse_grace_secs) {
            // A rotated token came back: someone kept a copy. End the whole family.
            revoke_family(conn, t.family_id)?;
            tracing::warn!(family = %t.family_id, user = %t.user_id, "refresh token reuse; family revoked");
            return Ok(Refreshed::Rejected);
        }
        // Within the grace: the client most likely lost our last response; let it continue.
    } else {
        diesel::update(refresh_tokens::table.find(t.id))
            .set(refresh_tokens::used_at.eq(now))
            .execute(conn)?;
    }
    let is_platform_admin: bool = users::table
        .find(t.user_id)
        .select(users::is_platform_admin)
        .first(conn)?;
    let Some(roles) = roles_in(conn, t.user_id, is_platform_admin, &t.village_code)? else {
        // No longer a member: the session ends.
        revoke_family(conn, t.family_id)?;
        return Ok(Refreshed::Rejected);
    };
    let refresh_token = new_refresh(conn, t.family_id, t.user_id, &t.village_code)?;
    Ok(Refreshed::Ok(TokenPair {
        access_token: keys.issue(t.user_id, &t.village_code, roles)?,
        refresh_token,
        token_type: "Bearer",
        expires_in: ACCESS_TTL_SECS,
    }))
}

pub fn revoke_family(conn: &mut PgConnection, family: Uuid) -> Result<usize> {
    Ok(diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::family_id.eq(family))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(Utc::now()))
    .execute(conn)?)
}

/// Ends the session the refresh token belongs to. Unknown tokens are ignored (logout is
/// idempotent and reveals nothing).
pub fn logout(conn: &mut PgConnection, presented: &str) -> Result<()> {
    let family: Option<Uuid> = refresh_tokens::table
        .filter(refresh_tokens::token_hash.eq(hash_token(presented)))
        .select(refresh_tokens::family_id)
        .first(conn)
        .optional()?;
    if let Some(f) = family {
        revoke_family(conn, f)?;
    }
    Ok(())
}
