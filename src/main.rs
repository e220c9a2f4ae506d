use std::io::IsTerminal;

use anyhow::Context;
use clap::Parser;
use pasar::cli::{AdminCommand, Cli, Command, LedgerCommand, RegionsCommand, SeedCommand};
use pasar::{app, db, regions, seed, telemetry};
use secrecy::{ExposeSecret, SecretString};

fn main() -> anyhow::Result<()> {
    let _ = dotenvy::dotenv();
    let cli = Cli::parse();
    telemetry::init("info,actix_server=warn");
    match cli.command {
        Command::Serve { config, no_migrate } => {
            config.validate()?;
            if !no_migrate {
                let mut conn = db::connect(&config.database_url)?;
                let applied = db::migrate(&mut conn)?;
                tracing::info!(count = applied.len(), "migrations applied");
            }
            let pool = db::build_pool(&config.database_url, &config.pool());
            actix_web::rt::System::new().block_on(async move {
                let application = app::Application::build(&config, pool)?;
                tracing::info!(bind = %config.bind, port = application.port(), "pasar listening");
                application.run_until_stopped().await?;
                anyhow::Ok(())
            })?;
        }
        Command::Migrate(args) => {
            let mut conn = db::connect(&args.database_url)?;
            let applied = db::migrate(&mut conn)?;
            println!("applied {} migration(s)", applied.len());
            for v in applied {
                println!("  {v}");
            }
        }
        Command::Regions {
            command:
                RegionsCommand::Import {
                    db: args,
                    file,
                    only,
                },
        } => {
            let mut conn = db::connect(&args.database_url)?;
            db::migrate(&mut conn)?;
            let rows = regions::import::read_file(&file, &only)?;
            let pb = indicatif::ProgressBar::new(rows.len() as u64);
            if !std::io::stderr().is_terminal() {
                pb.set_draw_target(indicatif::ProgressDrawTarget::hidden());
            }
            pb.set_style(
                indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} regions {elapsed}")
                    .expect("valid template"),
            );
            let report = regions::import::import(&mut conn, &rows, Some(&pb))?;
            pb.finish_and_clear();
            println!(
                "imported {} regions in {:.2} s",
                report.rows, report.seconds
            );
        }
        Command::Admin {
            command:
                AdminCommand::Create {
                    db: args,
                    phone,
                    name,
                },
        } => {
            let password = match std::env::var("PASAR_ADMIN_PASSWORD") {
                Ok(p) => SecretString::from(p),
                Err(_) => SecretString::from(
                    rpassword::prompt_password("Password for the new platform admin: ")
                        .context("no PASAR_ADMIN_PASSWORD and no terminal to ask for one")?,
                ),
            };
            let mut conn = db::connect(&args.database_url)?;
            db::migrate(&mut conn)?;
            let user =
                seed::create_platform_admin(&mut conn, &phone, &name, password.expose_secret())?;
            println!("created platform admin {} ({})", user.name, user.phone);
        }
        Command::Seed {
            command: SeedCommand::Demo(args),
        } => {
            let mut conn = db::connect(&args.database_url)?;
            db::migrate(&mut conn)?;
            seed::demo(&mut conn)?;
        }
        Command::Ledger {
            command: LedgerCommand::Verify(args),
        } => {
            let mut conn = db::connect(&args.database_url)?;
            let check = pasar::ledger::check(&mut conn).map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{}", serde_json::to_string_pretty(&check)?);
            let wrong = check.problems();
            if !wrong.is_empty() {
                eprintln!("ledger verify: FAILED: {}", wrong.join("; "));
                std::process::exit(1);
            }
            eprintln!("ledger verify: ok");
        }
        Command::Openapi => {
            print!("{}", app::openapi_yaml());
        }
    }
    Ok(())
}
