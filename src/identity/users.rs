//! Users. A user is a person identified by an Indonesian phone number.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::schema::users;
use crate::http::error::{Error, Result, on_constraint};

#[derive(Debug, Clone, Queryable, Selectable, Serialize, ToSchema)]
#[diesel(table_name = users)]
pub struct User {
    pub id: Uuid,
    pub phone: String,
    pub name: String,
    #[serde(skip)]
    pub password_hash: String,
    pub is_platform_admin: bool,
    pub created_at: DateTime<Utc>,
    #[serde(skip)]
    pub updated_at: DateTime<Utc>,
}

#[derive(Insertable)]
#[diesel(table_name = users)]
struct NewUser<'a> {
    id: Uuid,
    phone: &'a str,
    name: &'a str,
    password_hash: &'a str,
    is_platform_admin: bool,
}

pub fn validate_name(field: &str, name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(Error::field(field, "1 to 100 characters"));
    }
    Ok(name.to_string())
}

/// Inserts a user; a taken phone is a 409 naming the field.
pub fn create(
    conn: &mut PgConnection,
    phone: &str,
    name: &str,
    password_hash: &str,
    is_platform_admin: bool,
) -> Result<User> {
    diesel::insert_into(users::table)
        .values(NewUser {
            id: Uuid::now_v7(),
            phone,
            name,
            password_hash,
            is_platform_admin,
        })
        .returning(User::as_returning())
        .get_result(conn)
        .map_err(|e| {
            on_constraint(e, |c| {
                (c == "users_phone_key").then(|| Error::Conflict {
                    slug: "conflict",
                    detail: "a user with this phone already exists".into(),
                    extra: None,
                })
            })
        })
}

pub fn find_by_phone(conn: &mut PgConnection, phone: &str) -> Result<Option<User>> {
    Ok(users::table
        .filter(users::phone.eq(phone))
        .select(User::as_select())
        .first(conn)
        .optional()?)
}

pub fn get(conn: &mut PgConnection, id: Uuid) -> Result<User> {
    Ok(users::table
        .find(id)
        .select(User::as_select())
        .first(conn)?)
}
