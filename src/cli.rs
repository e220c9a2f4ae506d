//! The `pasar` command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::Config;

#[derive(Debug, Parser)]
#[command(name = "pasar", version, about = "Village marketplace backend")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once at start: the size of the `Serve` variant (the whole configuration) costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API (applies pending migrations first).
    Serve {
        #[command(flatten)]
        config: Config,
        /// Do not apply pending migrations at start.
        #[arg(long)]
        no_migrate: bool,
    },
    /// Apply the embedded database migrations.
    Migrate(DbArgs),
    /// Official region table.
    Regions {
        #[command(subcommand)]
        command: RegionsCommand,
    },
    /// Platform administration.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// The books.
    Ledger {
        #[command(subcommand)]
        command: LedgerCommand,
    },
    /// Demo data.
    Seed {
        #[command(subcommand)]
        command: SeedCommand,
    },
    /// Print the OpenAPI document (YAML); the committed openapi.yaml must equal it.
    Openapi,
}

#[derive(Debug, Args)]
pub struct DbArgs {
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
}

#[derive(Debug, Subcommand)]
pub enum RegionsCommand {
    /// Load (or refresh) every region; idempotent.
    Import {
        #[command(flatten)]
        db: DbArgs,
        /// Gzipped or plain CSV: code,parent_code,level,kind,name,postal_code.
        #[arg(default_value = crate::regions::import::DEFAULT_FILE)]
        file: PathBuf,
        /// Only regions whose code starts with this prefix (repeatable), e.g. `--only 34`.
        #[arg(long)]
        only: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a platform admin (password from PASAR_ADMIN_PASSWORD or a prompt).
    Create {
        #[command(flatten)]
        db: DbArgs,
        #[arg(long)]
        phone: String,
        #[arg(long)]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Check every invariant of the ledger in one snapshot (after a restore, nightly); exits 1
    /// and names what is wrong when one fails.
    Verify(DbArgs),
}

#[derive(Debug, Subcommand)]
pub enum SeedCommand {
    /// The five Pasardesa villages of Bantul as one network, with users (see README).
    Demo(DbArgs),
}
