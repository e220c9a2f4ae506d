//! Database layer: the r2d2 pool, the one helper that runs every diesel call, and migrations.

pub mod schema;
pub mod text_enum;

use std::time::Duration;

use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::http::error::{Error, Result};

pub type DbPool = Pool<ConnectionManager<PgConnection>>;
pub type DbConn = PooledConnection<ConnectionManager<PgConnection>>;

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Pool settings (see [`crate::config::Config`] for the environment variables).
#[derive(Debug, Clone)]
pub struct PoolConfig {
    pub max_size: u32,
    /// How long a request waits for a connection; short, so an outage answers 503 quickly.
    pub connection_timeout: Duration,
    pub statement_timeout: Duration,
    /// How long a statement waits for a lock (a row another transaction is changing).
    pub lock_timeout: Duration,
}

/// Session settings of every pooled connection. The two timeouts are what bounds a write: the
/// request time limit spares writes (see [`crate::http::middleware::time_limit`]), and a
/// statement cancelled by either aborts its transaction, so nothing of it is committed.
#[derive(Debug)]
struct ConnectionSetup {
    statement_timeout_ms: u128,
    lock_timeout_ms: u128,
}

impl CustomizeConnection<PgConnection, diesel::r2d2::Error> for ConnectionSetup {
    fn on_acquire(&self, conn: &mut PgConnection) -> std::result::Result<(), diesel::r2d2::Error> {
        use diesel::connection::SimpleConnection;
        conn.batch_execute(&format!(
            "SET statement_timeout = {}; SET lock_timeout = {}; SET application_name = 'pasar'; \
             SET TIME ZONE 'UTC'",
            self.statement_timeout_ms, self.lock_timeout_ms
        ))
        .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// Builds the pool without connecting, so the server starts while the database is down and
/// recovers by itself when it returns.
pub fn build_pool(database_url: &str, cfg: &PoolConfig) -> DbPool {
    let manager = ConnectionManager::<PgConnection>::new(database_url);
    Pool::builder()
        .max_size(cfg.max_size)
        .min_idle(Some(0))
        .connection_timeout(cfg.connection_timeout)
        .test_on_check_out(true)
        .connection_customizer(Box::new(ConnectionSetup {
            statement_timeout_ms: cfg.statement_timeout.as_millis(),
            lock_timeout_ms: cfg.lock_timeout.as_millis(),
        }))
        .build_unchecked(manager)
}

/// Runs a blocking diesel closure on actix's blocking pool. The connection is taken inside the
/// closure (waiting for it blocks too) and the caller's tracing span is carried along.
pub async fn run<T, F>(pool: &DbPool, f: F) -> Result<T>
where
    F: FnOnce(&mut PgConnection) -> Result<T> + Send + 'static,
    T: Send + 'static,
{
    let pool = pool.clone();
    let span = tracing::Span::current();
    actix_web::web::block(move || {
        let _guard = span.enter();
        let mut conn = pool.get()?;
        f(&mut conn)
    })
    .await?
}

/// Like [`run`], trying a closure that runs its own transaction up to three times while it
/// fails on contention (a deadlock, a serialization failure): the database rolled it back, so
/// running it again is safe.
pub async fn run_retrying<T, F>(pool: &DbPool, mut f: F) -> Result<T>
where
    F: FnMut(&mut PgConnection) -> Result<T> + Send + 'static,
    T: Send + 'static,
{
    run(pool, move |conn| {
        let mut attempt = 0;
        loop {
            match f(conn) {
                Err(e) if e.is_retryable() && attempt < 2 => {
                    attempt += 1;
                    std::thread::sleep(std::time::Duration::from_millis(5 << (2 * attempt)));
                }
                other => return other,
            }
        }
    })
    .await
}

/// Like [`run`], inside one database transaction.
pub async fn transaction<T, F>(pool: &DbPool, f: F) -> Result<T>
where
    F: FnOnce(&mut PgConnection) -> Result<T> + Send + 'static,
    T: Send + 'static,
{
    run(pool, move |conn| conn.transaction(f)).await
}

/// Applies every pending embedded migration; returns the versions applied.
pub fn migrate(conn: &mut PgConnection) -> anyhow::Result<Vec<String>> {
    let applied = conn
        .run_pending_migrations(MIGRATIONS)
        .map_err(|e| anyhow::anyhow!("migration failed: {e}"))?;
    Ok(applied.iter().map(|v| v.to_string()).collect())
}

/// Opens one connection outside the pool (CLI commands).
pub fn connect(database_url: &str) -> anyhow::Result<PgConnection> {
    PgConnection::establish(database_url)
        .map_err(|e| anyhow::anyhow!("cannot connect to PostgreSQL at DATABASE_URL: {e}"))
}

impl From<diesel::r2d2::PoolError> for Error {
    fn from(e: diesel::r2d2::PoolError) -> Self {
        Error::Unavailable(e.to_string())
    }
}
