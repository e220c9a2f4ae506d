//! Login rate limits: fixed windows counted in PostgreSQL, so every API process shares them.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Int4, Text, Timestamptz};

use crate::http::error::{Error, Result};

#[derive(Debug, Clone, Copy)]
pub struct LoginLimits {
    pub per_phone: i32,
    pub per_address: i32,
    pub window_secs: i64,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = Int4)]
    attempts: i32,
}

/// Start of the window `now` falls in.
pub fn window_start(now: DateTime<Utc>, window_secs: i64) -> DateTime<Utc> {
    let secs = now.timestamp();
    DateTime::from_timestamp(secs - secs.rem_euclid(window_secs), 0).expect("valid timestamp")
}

/// Counts one attempt in `bucket`; past `limit` in this window, 429 with the seconds left.
pub fn hit(conn: &mut PgConnection, bucket: &str, limit: i32, window_secs: i64) -> Result<()> {
    let now = Utc::now();
    let start = window_start(now, window_secs);
    let row: Count = diesel::sql_query(
        "INSERT INTO login_attempts (bucket, window_start, attempts) VALUES ($1, $2, 1)
         ON CONFLICT (bucket, window_start) DO UPDATE SET attempts = login_attempts.attempts + 1
         RETURNING attempts",
    )
    .bind::<Text, _>(bucket)
    .bind::<Timestamptz, _>(start)
    .get_result(conn)?;
    if row.attempts > limit {
        let left = (start + Duration::seconds(window_secs) - now)
            .num_seconds()
            .max(1);
        return Err(Error::RateLimited {
            retry_after_secs: left as u64,
        });
    }
    Ok(())
}

/// Counts one sign-in attempt (login or password reset) against the client's address and
/// against the account it names (`who`, e.g. `phone:+62…`).
pub fn hit_attempt(
    conn: &mut PgConnection,
    limits: &LoginLimits,
    address: &str,
    who: &str,
) -> Result<()> {
    hit(
        conn,
        &format!("ip:{address}"),
        limits.per_address,
        limits.window_secs,
    )?;
    hit(conn, who, limits.per_phone, limits.window_secs)
}

/// Drops windows that ended (called now and then by login).
pub fn sweep(conn: &mut PgConnection, window_secs: i64) -> Result<usize> {
    Ok(diesel::sql_query(
        "DELETE FROM login_attempts WHERE window_start < now() - make_interval(secs => $1)",
    )
    .bind::<diesel::sql_types::Double, _>((2 * window_secs) as f64)
    .execute(conn)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_align() {
        let t = DateTime::from_timestamp(1_000_000_123, 0).unwrap();
        assert_eq!(window_start(t, 900).timestamp() % 900, 0);
        assert!(window_start(t, 900) <= t);
        assert!(t - window_start(t, 900) < Duration::seconds(900));
    }
}
