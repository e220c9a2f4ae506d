//! Identity: users (by phone), passwords, login and tokens, memberships and roles.

pub mod password;
pub mod phone;
pub mod users;
