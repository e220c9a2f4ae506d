//! Identity: users (by phone), passwords, login sessions and tokens, memberships and roles.

pub mod memberships;
pub mod password;
pub mod phone;
pub mod ratelimit;
pub mod routes;
pub mod sessions;
pub mod tokens;
pub mod users;
