//! Configuration, from the environment (a `.env` file is read if present) or command-line flags.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `DATABASE_URL` | PostgreSQL URL (libpq syntax; several hosts with `target_session_attrs=read-write` allowed) | required |
//! | `PASAR_BIND` | address the API listens on | `127.0.0.1:8080` |
//! | `PASAR_JWT_SECRET` | HS256 secret for access tokens (≥ 32 random bytes; known placeholders are refused), key id `k1` | required unless `PASAR_JWT_KEYS` |
//! | `PASAR_JWT_KEYS` | `kid:secret,kid:secret`; the first signs, all verify (key rotation) | |
//! | `PASAR_DB_POOL_SIZE` | connections in the pool | `16` |
//! | `PASAR_DB_CONNECT_TIMEOUT_MS` | wait for a pooled connection before answering 503 | `1500` |
//! | `PASAR_DB_STATEMENT_TIMEOUT_MS` | PostgreSQL `statement_timeout` (503 past it, rolled back); below the request limit | `10000` |
//! | `PASAR_DB_LOCK_TIMEOUT_MS` | PostgreSQL `lock_timeout`: longest wait for a row another request holds (503, rolled back); below the request limit | `3000` |
//! | `PASAR_REQUEST_TIMEOUT_MS` | time limit of reads (GET, HEAD, OPTIONS: 503 past it); writes are not cut off mid-transaction but bounded by the two database timeouts | `30000` |
//! | `PASAR_TRUSTED_PROXIES` | comma-separated networks (`10.0.0.0/8,::1/128`) of reverse proxies whose `X-Forwarded-For` is believed for the per-address login limit ([`crate::http::client_addr`]) | none |
//! | `PASAR_LOG_FORMAT` | `text` or `json` | `text` |
//! | `PASAR_LOGIN_LIMIT_PHONE` / `PASAR_LOGIN_LIMIT_IP` | login attempts per window | `10` / `50` |
//! | `PASAR_LOGIN_WINDOW_SECS` | rate-limit window | `900` |
//! | `PASAR_REFRESH_REUSE_GRACE_SECS` | a rotated refresh token presented again within this many seconds (a retry after a lost response on a slow link) gets the same successor instead of revoking the session | `30` |
//! | `PASAR_PLATFORM_FEE_BPS` | the platform's fee on each completed sale, basis points | `0` |
//! | `PASAR_ORDER_EXPIRE_SECS` | a placed order not accepted after this long expires (refunded) | `172800` (48 h) |
//! | `PASAR_ORDER_COMPLETE_SECS` | a shipped order not confirmed or disputed after this long completes | `259200` (72 h) |
//! | `PASAR_TIMER_INTERVAL_MS` | how often the timers run; 0 = not in this process | `30000` |
//! | `PASAR_SESSION_MAX_DAYS` | absolute lifetime of a login session, whatever its refreshes | `90` |
//! | `PASAR_CORS_ORIGINS` | comma-separated origins a browser may call the API from (a dashboard on another host); empty: CORS off | empty |
//! | `PASAR_METRICS_TOKEN` | when set, `/metrics` answers only to `Authorization: Bearer <token>` | unset (open) |
//! | `RUST_LOG` | log filter | `info` |

use std::time::Duration;

use anyhow::bail;
use clap::Args;
use ipnet::IpNet;
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
    #[arg(long, env = "PASAR_DB_LOCK_TIMEOUT_MS", default_value_t = 3_000)]
    pub db_lock_timeout_ms: u64,
    #[arg(long, env = "PASAR_REQUEST_TIMEOUT_MS", default_value_t = 30_000)]
    pub request_timeout_ms: u64,
    #[arg(long, env = "PASAR_TRUSTED_PROXIES", default_value = "", value_parser = parse_networks)]
    pub trusted_proxies: Networks,
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
    #[arg(long, env = "PASAR_PLATFORM_FEE_BPS", default_value_t = 0)]
    pub platform_fee_bps: i32,
    #[arg(long, env = "PASAR_ORDER_EXPIRE_SECS", default_value_t = 48 * 3600)]
    pub order_expire_secs: i64,
    #[arg(long, env = "PASAR_ORDER_COMPLETE_SECS", default_value_t = 72 * 3600)]
    pub order_complete_secs: i64,
    /// 0 turns the timers off in this process (another one runs them).
    #[arg(long, env = "PASAR_TIMER_INTERVAL_MS", default_value_t = 30_000)]
    pub timer_interval_ms: u64,
    #[arg(long, env = "PASAR_CORS_ORIGINS", default_value = "", value_parser = parse_origins)]
    pub cors_origins: Origins,
    #[arg(long, env = "PASAR_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<SecretString>,
}

impl Config {
    pub fn pool(&self) -> PoolConfig {
        PoolConfig {
            max_size: self.db_pool_size,
            connection_timeout: Duration::from_millis(self.db_connect_timeout_ms),
            statement_timeout: Duration::from_millis(self.db_statement_timeout_ms),
            lock_timeout: Duration::from_millis(self.db_lock_timeout_ms),
        }
    }

    /// Everything `pasar serve` refuses to start with.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.jwt_key_list()?;
        self.check_timeouts()
    }

    /// Writes are bounded by the database, reads by the request limit (see
    /// [`crate::http::middleware::time_limit`]); the database must give up first, so a read
    /// times out with its statement cancelled rather than left running.
    fn check_timeouts(&self) -> anyhow::Result<()> {
        // 0 means "no limit" to PostgreSQL: a write could then wait forever.
        for (name, ms) in [
            (
                "PASAR_DB_STATEMENT_TIMEOUT_MS",
                self.db_statement_timeout_ms,
            ),
            ("PASAR_DB_LOCK_TIMEOUT_MS", self.db_lock_timeout_ms),
            ("PASAR_REQUEST_TIMEOUT_MS", self.request_timeout_ms),
        ] {
            if ms == 0 {
                bail!("{name} must be positive");
            }
        }
        for (name, ms) in [
            (
                "PASAR_DB_STATEMENT_TIMEOUT_MS",
                self.db_statement_timeout_ms,
            ),
            ("PASAR_DB_LOCK_TIMEOUT_MS", self.db_lock_timeout_ms),
        ] {
            if ms >= self.request_timeout_ms {
                bail!(
                    "{name} ({ms}) must be below PASAR_REQUEST_TIMEOUT_MS ({}): the database \
                     must give up before the request does",
                    self.request_timeout_ms
                );
            }
        }
        Ok(())
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
        if let Some((kid, _)) = keys.iter().find(|(_, s)| is_placeholder(s)) {
            anyhow::bail!(
                "JWT key {kid} is a placeholder, not a secret: set a random one of 32+ bytes, \
                 e.g. `openssl rand -base64 48`"
            );
        }
        Ok(keys)
    }
}

/// Secrets shipped in this repository's examples, which anyone can read.
const KNOWN_PLACEHOLDERS: [&str; 2] = [
    "change-me-to-a-long-random-secret-of-32-bytes-or-more",
    "demo-only-secret-change-me-0123456789",
];

/// A secret that is an example or obviously not random: a known placeholder, one containing
/// "change me" in some spelling, or a single character repeated.
fn is_placeholder(secret: &[u8]) -> bool {
    let text = String::from_utf8_lossy(secret).to_ascii_lowercase();
    let letters: String = text.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    KNOWN_PLACEHOLDERS.iter().any(|p| text == *p)
        || letters.contains("changeme")
        || letters.contains("placeholder")
        || secret.iter().all(|b| *b == secret[0])
}

/// A list of networks. An alias, not `Vec<IpNet>`, so clap parses the whole value at once
/// (an empty value is then an empty list, not one invalid entry).
pub type Networks = Vec<IpNet>;

pub type Origins = Vec<String>;

/// Comma-separated origins (`https://dasbor.desa.id`): scheme, host and optional port, no path.
fn parse_origins(s: &str) -> Result<Origins, String> {
    let mut out = Vec::new();
    for o in s.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        let url = url::Url::parse(o).map_err(|e| format!("{o}: {e}"))?;
        let origin = url.origin().ascii_serialization();
        if !matches!(url.scheme(), "http" | "https") || origin != o.trim_end_matches('/') {
            return Err(format!(
                "{o}: an origin is scheme://host[:port], e.g. https://dasbor.desa.id"
            ));
        }
        out.push(origin);
    }
    Ok(out)
}

/// Comma-separated CIDRs (`10.0.0.0/8`) or single addresses; empty, `off` or `none`: no network.
fn parse_networks(s: &str) -> Result<Networks, String> {
    if matches!(s.trim(), "off" | "none") {
        return Ok(Vec::new());
    }
    s.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            entry
                .parse::<IpNet>()
                .or_else(|_| entry.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    format!(
                        "{entry:?} is not a network: use CIDRs such as 10.0.0.0/8 or 2001:db8::/32"
                    )
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        config: Config,
    }

    fn parse(args: &[&str]) -> Result<Config, clap::Error> {
        let mut all = vec!["pasar", "--database-url", "postgres://localhost/x"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).map(|c| c.config)
    }

    fn with_secret(secret: &str) -> Config {
        parse(&["--jwt-secret", secret]).expect("parses")
    }

    #[test]
    fn refuses_placeholder_jwt_secrets() {
        for secret in [
            "change-me-to-a-long-random-secret-of-32-bytes-or-more",
            "demo-only-secret-change-me-0123456789",
            "please-CHANGE_ME-before-going-to-production-ok",
            "changeme-changeme-changeme-changeme",
            "this is a placeholder secret of enough length",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "00000000000000000000000000000000",
        ] {
            let err = with_secret(secret).jwt_key_list().unwrap_err().to_string();
            assert!(err.contains("placeholder"), "{secret}: {err}");
        }
        // Also as a rotation key, whichever position it has.
        let c = parse(&[
            "--jwt-keys",
            "k2:4nZ0pQ7rT1vX9yB3dF6hJ8kL2mN5qS7u,k1:change-me-to-a-long-random-secret-of-32-bytes-or-more",
        ])
        .unwrap();
        assert!(c.jwt_key_list().is_err());
    }

    #[test]
    fn accepts_random_secrets_and_still_checks_length() {
        let keys = with_secret("q8W2x0Zr4Nv7Tk1Lm9Ys3Bd6Hf5Jc0Pa")
            .jwt_key_list()
            .unwrap();
        assert_eq!(keys[0].0, "k1");
        let err = with_secret("short").jwt_key_list().unwrap_err().to_string();
        assert!(err.contains("shorter than 32 bytes"), "{err}");
    }

    #[test]
    fn timeouts_must_leave_the_database_to_give_up_first() {
        let ok = |args: &[&str]| {
            let mut all = vec!["--jwt-secret", "q8W2x0Zr4Nv7Tk1Lm9Ys3Bd6Hf5Jc0Pa"];
            all.extend_from_slice(args);
            parse(&all).unwrap().validate()
        };
        ok(&[]).expect("the defaults are consistent");
        let err = ok(&["--request-timeout-ms", "10000"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("PASAR_DB_STATEMENT_TIMEOUT_MS"), "{err}");
        let err = ok(&["--db-lock-timeout-ms", "30000"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("PASAR_DB_LOCK_TIMEOUT_MS"), "{err}");
        let err = ok(&["--db-statement-timeout-ms", "0"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("positive"), "{err}");
        ok(&[
            "--request-timeout-ms",
            "2000",
            "--db-statement-timeout-ms",
            "1999",
            "--db-lock-timeout-ms",
            "500",
        ])
        .unwrap();
    }

    #[test]
    fn trusted_proxies_are_networks() {
        assert!(parse(&[]).unwrap().trusted_proxies.is_empty());
        for off in ["", " ", "off", "none"] {
            assert!(
                parse(&["--trusted-proxies", off])
                    .unwrap()
                    .trusted_proxies
                    .is_empty()
            );
        }
        let c = parse(&["--trusted-proxies", "10.0.0.0/8, 192.168.1.7,2001:db8::/32"]).unwrap();
        assert_eq!(
            c.trusted_proxies,
            vec![
                "10.0.0.0/8".parse::<IpNet>().unwrap(),
                "192.168.1.7/32".parse().unwrap(),
                "2001:db8::/32".parse().unwrap(),
            ]
        );
        for bad in ["10.0.0.0/33", "proxy.local", "10.0.0/8"] {
            let err = parse(&["--trusted-proxies", bad])
                .expect_err(bad)
                .to_string();
            assert!(err.contains("is not a network"), "{bad}: {err}");
        }
    }
}
