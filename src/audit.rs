//! The audit log: every administrative action with who, what, when, before and after. Written
//! in the same transaction as the action, never updated.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::schema::audit_log;
use crate::http::error::Result;
use crate::http::pagination::{Page, page};

#[derive(Debug, Queryable, Selectable, Serialize, ToSchema)]
#[diesel(table_name = audit_log)]
pub struct AuditEntry {
    pub id: Uuid,
    pub actor_id: Option<Uuid>,
    pub village_code: Option<String>,
    /// e.g. `shop.approve`, `member.add`, `village.update`.
    pub action: String,
    pub entity_type: String,
    pub entity_id: String,
    #[schema(value_type = Option<Object>)]
    pub before: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub after: Option<Value>,
    pub created_at: DateTime<Utc>,
}

pub struct Record<'a> {
    pub actor: Option<Uuid>,
    pub village: Option<&'a str>,
    pub action: &'a str,
    pub entity_type: &'a str,
    pub entity_id: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

pub fn record(conn: &mut PgConnection, r: Record<'_>) -> Result<()> {
    diesel::insert_into(audit_log::table)
        .values((
            audit_log::id.eq(Uuid::now_v7()),
            audit_log::actor_id.eq(r.actor),
            audit_log::village_code.eq(r.village),
            audit_log::action.eq(r.action),
            audit_log::entity_type.eq(r.entity_type),
            audit_log::entity_id.eq(r.entity_id),
            audit_log::before.eq(r.before),
            audit_log::after.eq(r.after),
        ))
        .execute(conn)?;
    Ok(())
}

/// Serializes a value for the log.
pub fn snapshot<T: Serialize>(value: &T) -> Option<Value> {
    serde_json::to_value(value).ok()
}

/// A village's entries, newest first.
pub fn list(
    conn: &mut PgConnection,
    village: &str,
    limit: i64,
    before_id: Option<Uuid>,
) -> Result<Page<AuditEntry>> {
    let mut q = audit_log::table
        .filter(audit_log::village_code.eq(village))
        .select(AuditEntry::as_select())
        .order(audit_log::id.desc())
        .limit(limit + 1)
        .into_boxed();
    if let Some(id) = before_id {
        q = q.filter(audit_log::id.lt(id));
    }
    Ok(page(q.load(conn)?, limit, |e| e.id, |e| e))
}
