//! Password hashing: argon2id at the crate's defaults (19 MiB, t=2, p=1; OWASP's minimum).
//! Hashing is CPU- and memory-heavy, so it runs on the blocking pool behind a semaphore the size
//! of the machine's cores: a login burst queues instead of eating the memory.

use std::sync::{Arc, LazyLock};

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Argon2, PasswordHash};
use tokio::sync::Semaphore;

use crate::http::error::{Error, Result};

/// A valid hash of a random password: verifying against it when the phone is unknown costs the
/// same as a real check, so timing does not reveal which phones have accounts.
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| hash_blocking("pasar-dummy-password-for-timing").expect("hashing works"));

pub const MIN_LEN: usize = 8;
pub const MAX_LEN: usize = 128;

pub fn validate(password: &str) -> std::result::Result<(), String> {
    let n = password.chars().count();
    if n < MIN_LEN {
        return Err(format!("at least {MIN_LEN} characters"));
    }
    if n > MAX_LEN {
        return Err(format!("at most {MAX_LEN} characters"));
    }
    // NUL and other control characters cannot be typed at a login form, and some tools cut a
    // password at NUL: a new password has none.
    if password.chars().any(char::is_control) {
        return Err("no control characters (NUL, tab, newline, …)".into());
    }
    Ok(())
}

pub fn hash_blocking(password: &str) -> anyhow::Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))
}

/// Verifies; `None` (unknown user) checks against the dummy hash and fails.
pub fn verify_blocking(password: &str, hash: Option<&str>) -> bool {
    let (hash, real) = match hash {
        Some(h) => (h, true),
        None => (DUMMY_HASH.as_str(), false),
    };
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
        && real
}

/// Bounds concurrent hashing to the number of cores.
#[derive(Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
}

impl Default for Hasher {
    fn default() -> Self {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        Self {
            permits: Arc::new(Semaphore::new(cores)),
        }
    }
}

/// How long a request waits for a hashing slot before it is told to retry (writes have no
/// request time limit, so this bounds a login burst's queue).
const SLOT_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

impl Hasher {
    async fn slot(&self) -> Result<tokio::sync::SemaphorePermit<'_>> {
        match tokio::time::timeout(SLOT_WAIT, self.permits.acquire()).await {
            Ok(permit) => permit.map_err(|e| Error::Internal(e.into())),
            Err(_) => Err(Error::Unavailable(
                "too many password checks at once".into(),
            )),
        }
    }

    pub async fn hash(&self, password: String) -> Result<String> {
        let _permit = self.slot().await?;
        Ok(actix_web::web::block(move || hash_blocking(&password)).await??)
    }

    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool> {
        let _permit = self.slot().await?;
        Ok(actix_web::web::block(move || verify_blocking(&password, hash.as_deref())).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let h = hash_blocking("rahasia-desa-1").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_blocking("rahasia-desa-1", Some(&h)));
        assert!(!verify_blocking("rahasia-desa-2", Some(&h)));
        assert!(!verify_blocking("pasar-dummy-password-for-timing", None));
        assert!(!verify_blocking("x", Some("not a hash")));
    }

    #[test]
    fn new_passwords_have_no_control_characters() {
        assert!(validate("sandi-baru-123").is_ok());
        assert!(validate("sandi baru 🦀 123").is_ok());
        for bad in [
            "sandi\0baru-123",
            "sandi\tbaru-123",
            "sandi-baru-123\n",
            "\u{7f}sandi-baru",
        ] {
            assert!(validate(bad).is_err(), "{bad:?}");
        }
    }
}
