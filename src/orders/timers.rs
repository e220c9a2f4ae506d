//! The order timers: a placed order expires 48 h after placing, a shipped one completes 72 h
//! after shipping (both configurable). Any number of server processes may run them at once:
//! each due order is taken with `FOR UPDATE SKIP LOCKED` in its own transaction, so no two
//! workers move the same order, and the conditional update and the unique event make a second
//! move impossible anyway. The same job closes aid programmes whose period is over.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::machine::{Action, Actor, OrderStatus};
use super::{Details, OrderRow, apply};
use crate::db::schema::orders;
use crate::db::{self, DbPool};
use crate::http::error::Result;

#[derive(Debug, Clone, Copy)]
pub struct TimerPolicy {
    pub expire_after: chrono::Duration,
    pub complete_after: chrono::Duration,
    /// How often the server looks for due orders.
    pub interval: Duration,
}

/// What one run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Ran {
    pub expired: usize,
    pub completed: usize,
    /// Aid programmes whose period ended, their remainder returned.
    pub aid_closed: usize,
}

/// Moves one due order, if any: `true` when it moved one.
fn one(conn: &mut PgConnection, status: OrderStatus, cutoff: DateTime<Utc>) -> Result<bool> {
    conn.transaction(|conn| {
        // Locking clauses cannot be boxed: one query per queue.
        let base = orders::table
            .filter(orders::status.eq(status))
            .select(OrderRow::as_select())
            .limit(1);
        let found: Option<OrderRow> = match status {
            OrderStatus::Placed => base
                .filter(orders::placed_at.le(cutoff))
                .order(orders::placed_at)
                .for_update()
                .skip_locked()
                .first(conn)
                .optional()?,
            _ => base
                .filter(orders::shipped_at.le(cutoff))
                .order(orders::shipped_at)
                .for_update()
                .skip_locked()
                .first(conn)
                .optional()?,
        };
        let Some(row) = found else {
            return Ok(false);
        };
        let action = match status {
            OrderStatus::Placed => Action::Expire,
            _ => Action::AutoComplete,
        };
        apply(
            conn,
            row,
            action,
            &[Actor::System],
            None,
            &Details::default(),
        )?;
        Ok(true)
    })
}

/// Moves every order due at `now`, at most `batch` of each kind.
pub fn run_due(
    conn: &mut PgConnection,
    policy: &TimerPolicy,
    now: DateTime<Utc>,
    batch: usize,
) -> Result<Ran> {
    let mut ran = Ran::default();
    while ran.expired < batch && one(conn, OrderStatus::Placed, now - policy.expire_after)? {
        ran.expired += 1;
    }
    while ran.completed < batch && one(conn, OrderStatus::Shipped, now - policy.complete_after)? {
        ran.completed += 1;
    }
    ran.aid_closed = crate::aid::close_due(conn, crate::aid::wib_date(now), batch)?;
    Ok(ran)
}

/// The server's periodic job. Errors (a database outage) are logged and the next tick tries
/// again.
pub async fn run_forever(pool: DbPool, policy: TimerPolicy) {
    let mut tick = tokio::time::interval(policy.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match db::run(&pool, move |conn| run_due(conn, &policy, Utc::now(), 500)).await {
            Ok(ran) if ran != Ran::default() => {
                tracing::info!(
                    expired = ran.expired,
                    completed = ran.completed,
                    aid_closed = ran.aid_closed,
                    "order timers"
                )
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "order timers failed; retrying next tick"),
        }
    }
}
