//! What every handler shares: the pool, token keys and the settings that shape sessions.

use crate::db::DbPool;
use crate::identity::password::Hasher;
use crate::identity::ratelimit::LoginLimits;
use crate::identity::sessions::SessionPolicy;
use crate::identity::tokens::SharedKeys;

/// Shared, immutable state handed to every handler.
#[derive(Clone)]
pub struct AppState {
    pub pool: DbPool,
    pub tokens: SharedKeys,
    pub hasher: Hasher,
    pub login_limits: LoginLimits,
    pub sessions: SessionPolicy,
    /// Proxies whose `X-Forwarded-For` is believed (for per-address rate limits).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub orders: crate::orders::Policy,
    /// SHA-256 of the token `/metrics` requires, if any.
    pub metrics_token: Option<[u8; 32]>,
}
