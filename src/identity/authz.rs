//! Authorization of writes against the database as it is now, not the token's snapshot.
//!
//! An access token's roles are up to 15 minutes old: a demoted or removed admin still holds a
//! token that says `admin`. Every write that changes privileges, settings or money calls
//! [`current`] inside its transaction: it reads the caller's membership row (and platform-admin
//! flag) and locks them `FOR SHARE`, so they cannot change until the write commits.

use diesel::prelude::*;
use diesel::sql_types::{Array, Bool, Nullable, Text, Uuid as SqlUuid};
use uuid::Uuid;

use super::tokens::{Caller, PLATFORM_SCOPE, Role};
use crate::http::error::{Error, Result};

/// The caller's standing right now, in the village their token is scoped to.
#[derive(Debug, Clone)]
pub struct Current {
    pub user_id: Uuid,
    /// The token's village (a token of village A never acts in village B).
    pub village: String,
    /// Roles in that village now; empty when no longer a member.
    pub roles: Vec<Role>,
    pub platform_admin: bool,
}

impl Current {
    fn has_in(&self, village: &str, role: Role) -> bool {
        self.village == village && self.roles.contains(&role)
    }

    pub fn is_platform_admin(&self) -> bool {
        self.platform_admin
    }

    pub fn is_village_admin(&self, village: &str) -> bool {
        self.has_in(village, Role::Admin)
    }

    pub fn is_treasurer_of(&self, village: &str) -> bool {
        self.has_in(village, Role::Treasurer)
    }

    /// Any role in `village`.
    pub fn is_member_of(&self, village: &str) -> bool {
        self.village == village && !self.roles.is_empty()
    }

    /// Admin of `village`, or a platform admin.
    pub fn may_administer(&self, village: &str) -> bool {
        self.is_village_admin(village) || self.platform_admin
    }
}

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = Nullable<Bool>)]
    platform_admin: Option<bool>,
    #[diesel(sql_type = Nullable<Array<Text>>)]
    roles: Option<Vec<String>>,
}

/// Reads and locks the caller's current roles (one round trip). A user who no longer exists is
/// unauthorized.
pub fn current(conn: &mut PgConnection, caller: &Caller) -> Result<Current> {
    let row: Row = diesel::sql_query(
        "SELECT (SELECT is_platform_admin FROM users WHERE id = $1 FOR SHARE) AS platform_admin,
                (SELECT roles FROM memberships WHERE user_id = $1 AND village_code = $2 FOR SHARE) AS roles",
    )
    .bind::<SqlUuid, _>(caller.user_id)
    .bind::<Text, _>(&caller.village)
    .get_result(conn)?;
    let Some(flag) = row.platform_admin else {
        return Err(Error::Unauthorized("this account no longer exists".into()));
    };
    let roles = if caller.village == PLATFORM_SCOPE {
        Vec::new()
    } else {
        row.roles
            .unwrap_or_default()
            .iter()
            .filter_map(|r| Role::parse_village_role(r))
            .collect()
    };
    Ok(Current {
        user_id: caller.user_id,
        village: caller.village.clone(),
        roles,
        // Both: the flag now, and a token that was issued to act as platform admin.
        platform_admin: flag && caller.is_platform_admin(),
    })
}
