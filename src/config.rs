//! Configuration, from the environment (a `.env` file is read if present) or command-line flags.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `DATABASE_URL` | PostgreSQL URL (libpq syntax; several hosts with `target_session_attrs=read-write` allowed) | required |
//! | `PASAR_BIND` | address the API listens on | `127.0.0.1:8080` |
//! | `PASAR_JWT_SECRET` | HS256 secret for access tokens (≥ 32 bytes), key id `k1` | required unless `PASAR_JWT_KEYS` |
//! | `PASAR_JWT_KEYS` | `kid:secret,kid:secret`; the first signs, all verify (key rotation) | |
//! | `PASAR_DB_POOL_SIZE` | connections in the pool | `16` |
//! | `PASAR_DB_CONNECT_TIMEOUT_MS` | wait for a pooled connection before answering 503 | `1500` |
//! | `PASAR_DB_STATEMENT_TIMEOUT_MS` | PostgreSQL `statement_timeout` | `10000` |
//! | `PASAR_REQUEST_TIMEOUT_MS` | a request's time limit (503 past it) | `30000` |
//! | `PASAR_LOG_FORMAT` | `text` or `json` | `text` |
//! | `PASAR_LOGIN_LIMIT_PHONE` / `PASAR_LOGIN_LIMIT_IP` | login attempts per window | `10` / `50` |
//! | `PASAR_LOGIN_WINDOW_SECS` | rate-limit window | `900` |
//! | `PASAR_REFRESH_REUSE_GRACE_SECS` | a rotated refresh token presented again within this many seconds (a retry after a lost response on a slow link) gets the same successor instead of revoking the session | `30` |
//! | `PASAR_SESSION_MAX_DAYS` | absolute lifetime of a login session, whatever its refreshes | `90` |
//! | `RUST_LOG` | log filter | `info` |

use std::time::Duration;

use clap::Args;
use secrecy::{ExposeSecret, SecretString};

use crate::db::PoolConfig;

#[derive(Debug, Clone, Args)]
pub struct Config {
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    #[arg(long, env = "PASAR_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,
    #[arg(long, env = "PASAR_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<SecretString>,
    #[arg(long, env = "PASAR_JWT_KEYS", hide_env_values = true)]
    pub jwt_keys: Option<SecretString>,
    #[arg(long, env = "PASAR_JWT_ISSUER", default_value = "pasar")]
    pub jwt_issuer: String,
    #[arg(long, env = "PASAR_JWT_AUDIENCE", default_value = "pasar-api")]
    pub jwt_audience: String,
    #[arg(long, env = "PASAR_DB_POOL_SIZE", default_value_t = 16)]
    pub db_pool_size: u32,
    #[arg(long, env = "PASAR_DB_CONNECT_TIMEOUT_MS", default_value_t = 1500)]
    pub db_connect_timeout_ms: u64,
    #[arg(long, env = "PASAR_DB_STATEMENT_TIMEOUT_MS", default_value_t = 10_000)]
    pub db_statement_timeout_ms: u64,
    #[arg(long, env = "PASAR_REQUEST_TIMEOUT_MS", default_value_t = 30_000)]
    pub request_timeout_ms: u64,
    #[arg(long, env = "PASAR_WORKERS")]
    pub workers: Option<usize>,
    #[arg(long, env = "PASAR_LOGIN_LIMIT_PHONE", default_value_t = 10)]
    pub login_limit_phone: i32,
    #[arg(long, env = "PASAR_LOGIN_LIMIT_IP", default_value_t = 50)]
    pub login_limit_ip: i32,
    #[arg(long, env = "PASAR_LOGIN_WINDOW_SECS", default_value_t = 900)]
    pub login_window_secs: i64,
    #[arg(long, env = "PASAR_REFRESH_REUSE_GRACE_SECS", default_value_t = 30)]
    pub refresh_reuse_grace_secs: i64,
    #[arg(long, env = "PASAR_SESSION_MAX_DAYS", default_value_t = 90)]
    pub session_max_days: i64,
}

impl Config {
    pub fn pool(&self) -> PoolConfig {
        PoolConfig {
            max_size: self.db_pool_size,
            connection_timeout: Duration::from_millis(self.db_connect_timeout_ms),
            statement_timeout: Duration::from_millis(self.db_statement_timeout_ms),
        }
    }

    /// Signing keys as `(kid, secret)`, the first one signs.
    pub fn jwt_key_list(&self) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
        let mut keys = Vec::new();
        if let Some(list) = &self.jwt_keys {
            for pair in list
                .expose_secret()
                .split(',')
                .filter(|p| !p.trim().is_empty())
            {
                let (kid, secret) = pair
                    .split_once(':')
                    .ok_or_else(|| anyhow::anyhow!("PASAR_JWT_KEYS entries are kid:secret"))?;
                keys.push((kid.trim().to_string(), secret.trim().as_bytes().to_vec()));
            }
        }
        if let Some(secret) = &self.jwt_secret {
            keys.push(("k1".to_string(), secret.expose_secret().as_bytes().to_vec()));
        }
        if keys.is_empty() {
            anyhow::bail!("set PASAR_JWT_SECRET (or PASAR_JWT_KEYS) to sign access tokens");
        }
        if let Some((kid, _)) = keys.iter().find(|(_, s)| s.len() < 32) {
            anyhow::bail!("JWT key {kid} is shorter than 32 bytes");
        }
        Ok(keys)
    }
}
