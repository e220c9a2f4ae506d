//! Login sessions: refresh-token rotation with reuse detection, logout, revocation.
//!
//! A login starts a *family* (one row in `refresh_families`, with an absolute lifetime); each
//! refresh marks its token used and adds the next one. Rotation, logout and revocation all lock
//! the family row first, so they serialize: a logout or a reuse revocation can never be
//! outrun by a concurrent rotation that leaves a live successor behind.
//!
//! The successor of a token is derived from it with a server key (HMAC), not drawn at random,
//! so a retry of the same token within the grace (a response lost on a 3G link, or two
//! concurrent refreshes) gets the *same* successor: the session never forks into two live
//! chains. Presenting a used token after the grace is reuse: someone kept a copy, and the
//! whole family is revoked.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use uuid::Uuid;

use super::tokens::{ACCESS_TTL_SECS, PLATFORM_SCOPE, Role, TokenKeys};
use crate::db::schema::{memberships, refresh_families, refresh_tokens, users, villages};
use crate::http::error::{Error, Result};

/// A refresh token not used for this long expires (the session may still be younger than its
/// absolute lifetime).
pub const REFRESH_IDLE_DAYS: i64 = 30;

/// How sessions behave (from the configuration).
#[derive(Clone)]
pub struct SessionPolicy {
    /// A used token presented again within this many seconds gets the same successor.
    pub reuse_grace_secs: i64,
    /// Absolute lifetime of a session.
    pub max_age_days: i64,
    /// Key of the successor derivation.
    pub successor_key: [u8; 32],
}

/// The successor-derivation key, derived from the first JWT signing secret so no new secret has
/// to be configured. Rotating that secret only means in-grace retries of tokens issued before
/// it get a fresh (and so conflicting) successor once.
pub fn successor_key(jwt_keys: &[(String, Vec<u8>)]) -> [u8; 32] {
    let secret = jwt_keys.first().map(|(_, s)| s.as_slice()).unwrap_or(&[]);
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(b"pasar refresh-token successor v1");
    mac.finalize().into_bytes().into()
}

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

/// What a user may be where they log in: in a village, their membership roles (plus
/// `platform_admin` for platform admins); platform-scoped (`village` = [`PLATFORM_SCOPE`]),
/// platform admins only. `None` when they may not log in there.
pub fn roles_in(
    conn: &mut PgConnection,
    user_id: Uuid,
    is_platform_admin: bool,
    village: &str,
) -> Result<Option<Vec<Role>>> {
    if village == PLATFORM_SCOPE {
        return Ok(is_platform_admin.then(|| vec![Role::PlatformAdmin]));
    }
    let member: Option<Vec<Role>> = memberships::table
        .find((user_id, village))
        .select(memberships::roles)
        .first(conn)
        .optional()?;
    let mut roles = member.clone().unwrap_or_default();
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

/// The successor of `presented`: the same for every retry, unguessable without the server key.
fn successor_of(policy: &SessionPolicy, presented: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(&policy.successor_key).expect("any key length");
    mac.update(presented.as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

fn insert_token(
    conn: &mut PgConnection,
    family: Uuid,
    user_id: Uuid,
    token: &str,
    expires_at: DateTime<Utc>,
) -> Result<()> {
    diesel::insert_into(refresh_tokens::table)
        .values((
            refresh_tokens::id.eq(Uuid::now_v7()),
            refresh_tokens::family_id.eq(family),
            refresh_tokens::user_id.eq(user_id),
            refresh_tokens::token_hash.eq(hash_token(token)),
            refresh_tokens::expires_at.eq(expires_at),
        ))
        .execute(conn)?;
    Ok(())
}

fn village_column(village: &str) -> Option<&str> {
    (village != PLATFORM_SCOPE).then_some(village)
}

/// Starts a session: a new family, an access token and its first refresh token.
pub fn start_session(
    conn: &mut PgConnection,
    keys: &TokenKeys,
    policy: &SessionPolicy,
    user_id: Uuid,
    village: &str,
    roles: Vec<Role>,
) -> Result<TokenPair> {
    let family = Uuid::now_v7();
    let now = Utc::now();
    let family_expires = now + Duration::days(policy.max_age_days);
    diesel::insert_into(refresh_families::table)
        .values((
            refresh_families::id.eq(family),
            refresh_families::user_id.eq(user_id),
            refresh_families::village_code.eq(village_column(village)),
            refresh_families::expires_at.eq(family_expires),
        ))
        .execute(conn)?;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    insert_token(
        conn,
        family,
        user_id,
        &token,
        (now + Duration::days(REFRESH_IDLE_DAYS)).min(family_expires),
    )?;
    Ok(TokenPair {
        access_token: keys.issue(user_id, village, roles, family)?,
        refresh_token: token,
        token_type: "Bearer",
        expires_in: ACCESS_TTL_SECS,
    })
}

/// What a refresh attempt came to. Reuse is an outcome, not an error, so that the revocation of
/// the family commits.
pub enum Refreshed {
    Ok(TokenPair),
    Rejected,
}

/// Rotates a refresh token (see the module documentation). Run it in a transaction.
pub fn refresh(
    conn: &mut PgConnection,
    keys: &TokenKeys,
    policy: &SessionPolicy,
    presented: &str,
) -> Result<Refreshed> {
    let found: Option<Uuid> = refresh_tokens::table
        .filter(refresh_tokens::token_hash.eq(hash_token(presented)))
        .select(refresh_tokens::family_id)
        .first(conn)
        .optional()?;
    let Some(family_id) = found else {
        return Ok(Refreshed::Rejected);
    };
    // The family first: logout and revocation take the same lock.
    let (user_id, village, family_expires, family_revoked): (
        Uuid,
        Option<String>,
        DateTime<Utc>,
        Option<DateTime<Utc>>,
    ) = refresh_families::table
        .find(family_id)
        .select((
            refresh_families::user_id,
            refresh_families::village_code,
            refresh_families::expires_at,
            refresh_families::revoked_at,
        ))
        .for_update()
        .first(conn)?;
    let now = Utc::now();
    if family_revoked.is_some() || family_expires <= now {
        return Ok(Refreshed::Rejected);
    }
    let (token_id, expires_at, used_at): (Uuid, DateTime<Utc>, Option<DateTime<Utc>>) =
        refresh_tokens::table
            .filter(refresh_tokens::token_hash.eq(hash_token(presented)))
            .select((
                refresh_tokens::id,
                refresh_tokens::expires_at,
                refresh_tokens::used_at,
            ))
            .first(conn)?;
    if expires_at <= now {
        return Ok(Refreshed::Rejected);
    }
    let successor = successor_of(policy, presented);
    match used_at {
        Some(used) if now - used > Duration::seconds(policy.reuse_grace_secs) => {
            // A rotated token came back: someone kept a copy. End the whole session.
            revoke_families(
                conn,
                refresh_families::table
                    .filter(refresh_families::id.eq(family_id))
                    .into_boxed(),
            )?;
            tracing::warn!(family = %family_id, user = %user_id, "refresh token reuse; session revoked");
            return Ok(Refreshed::Rejected);
        }
        // Within the grace: the successor exists already; hand out the same one again.
        Some(_) => {}
        None => {
            diesel::update(refresh_tokens::table.find(token_id))
                .set(refresh_tokens::used_at.eq(now))
                .execute(conn)?;
            insert_token(
                conn,
                family_id,
                user_id,
                &successor,
                (now + Duration::days(REFRESH_IDLE_DAYS)).min(family_expires),
            )?;
        }
    }
    let is_platform_admin: bool = users::table
        .find(user_id)
        .select(users::is_platform_admin)
        .first(conn)?;
    let village = village.unwrap_or_else(|| PLATFORM_SCOPE.to_string());
    let Some(roles) = roles_in(conn, user_id, is_platform_admin, &village)? else {
        // No longer a member (or no longer a platform admin): the session ends.
        revoke_families(
            conn,
            refresh_families::table
                .filter(refresh_families::id.eq(family_id))
                .into_boxed(),
        )?;
        return Ok(Refreshed::Rejected);
    };
    Ok(Refreshed::Ok(TokenPair {
        access_token: keys.issue(user_id, &village, roles, family_id)?,
        refresh_token: successor,
        token_type: "Bearer",
        expires_in: ACCESS_TTL_SECS,
    }))
}

type FamilyFilter<'a> = refresh_families::BoxedQuery<'a, diesel::pg::Pg>;

/// Revokes the live families the query selects (a single UPDATE: it takes each family's row
/// lock, so it waits for a rotation in progress and the rotation then sees it revoked).
fn revoke_families(conn: &mut PgConnection, which: FamilyFilter<'_>) -> Result<usize> {
    let ids: Vec<Uuid> = which
        .filter(refresh_families::revoked_at.is_null())
        .select(refresh_families::id)
        .load(conn)?;
    Ok(diesel::update(
        refresh_families::table
            .filter(refresh_families::id.eq_any(ids))
            .filter(refresh_families::revoked_at.is_null()),
    )
    .set(refresh_families::revoked_at.eq(Utc::now()))
    .execute(conn)?)
}

/// Ends every session of `user` in `village` (their roles there changed or ended).
pub fn revoke_in_village(conn: &mut PgConnection, user: Uuid, village: &str) -> Result<usize> {
    revoke_families(
        conn,
        refresh_families::table
            .filter(refresh_families::user_id.eq(user))
            .filter(refresh_families::village_code.eq(village))
            .into_boxed(),
    )
}

/// Ends every session of `user` except `keep` (after a password change or reset).
pub fn revoke_all_but(conn: &mut PgConnection, user: Uuid, keep: Option<Uuid>) -> Result<usize> {
    let mut q = refresh_families::table
        .filter(refresh_families::user_id.eq(user))
        .into_boxed();
    if let Some(k) = keep {
        q = q.filter(refresh_families::id.ne(k));
    }
    revoke_families(conn, q)
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
        revoke_families(
            conn,
            refresh_families::table
                .filter(refresh_families::id.eq(f))
                .into_boxed(),
        )?;
    }
    Ok(())
}
