//! Identity: users (by phone), passwords, login sessions and tokens, memberships and roles.

pub mod authz;
pub mod credentials;
pub mod memberships;
pub mod password;
pub mod phone;
pub mod ratelimit;
pub mod routes;
pub mod sessions;
pub mod tokens;
pub mod users;
