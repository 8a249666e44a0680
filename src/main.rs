//! `smsauth`: parse the command line, load the configuration, run.

use std::process::ExitCode;

use clap::Parser;
use migration::{Migrator, MigratorTrait};
use secrecy::ExposeSecret;
use smsauth::cli::{Cli, Command};
use smsauth::config::Config;
use smsauth::startup::Application;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Schema) = cli.command {
        print!("{}", smsauth::graphql::sdl());
        return ExitCode::SUCCESS;
    }
    smsauth::telemetry::init();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("smsauth: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Migrate => migrate(&config).await,
        Command::ImportDjango(args) => import_django(&config, &args).await,
        Command::Users(command) => smsauth::cli::users::run(&config, &command).await,
        Command::Serve | Command::Schema => serve(config).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("smsauth: {}", smsauth::telemetry::error_line(&e));
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    Application::builder(config)
        .build()
        .await?
        .run_until_stopped()
        .await
}

async fn migrate(config: &Config) -> anyhow::Result<()> {
    let db = smsauth::db::connect(
        config.database_url.expose_secret(),
        config.database_max_connections,
        None,
    )
    .await?;
    Migrator::up(&db, None).await?;
    tracing::info!("migrations applied");
    Ok(())
}

async fn import_django(
    config: &Config,
    args: &smsauth::cli::ImportDjangoArgs,
) -> anyhow::Result<()> {
    let summary = smsauth::import_django::run(config, &args.options()).await?;
    println!("{summary}");
    Ok(())
}
