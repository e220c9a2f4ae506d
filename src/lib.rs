//! pasar: the backend of a village marketplace.
//!
//! Domain modules keep their routes, queries and types together; `http` and `db` are the thin
//! shared layers. Read `app.rs` first: it wires everything.

pub mod aid;
pub mod app;
pub mod audit;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod db;
pub mod http;
pub mod identity;
pub mod ledger;
pub mod orders;
pub mod regions;
pub mod reports;
pub mod seed;
pub mod shops;
pub mod state;
pub mod telemetry;
pub mod villages;
