//! `smsauth`: parse the command line, load the configuration, run.

use std::process::ExitCode;

use clap::Parser;
use migration::{Migrator, MigratorTrait};
use secrecy::ExposeSecret;
use smsauth::cli::{Cli, Command, SmsGuardAction};
use smsauth::config::Config;
use smsauth::startup::Application;

/// jemalloc's per-thread caches: glibc's malloc took ~14 % of a request's CPU,
/// over a quarter of that waiting on its own lock (README, round six).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Schema) = cli.command {
        print!("{}", smsauth::graphql::sdl());
        return ExitCode::SUCCESS;
    }
    Config::load_dotenv();
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
        Command::SmsGuard { action } => sms_guard(&config, action).await,
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

/// `smsauth sms-guard`: needs the shared store; the in-process one belongs to
/// the serving process and cannot be reached from here.
async fn sms_guard(config: &Config, action: SmsGuardAction) -> anyhow::Result<()> {
    let redis = config.redis.as_ref().ok_or_else(|| {
        anyhow::anyhow!(
            "sms-guard acts on the shared store: set REDIS_URL (or REDIS_CLUSTER_NODES) as for `serve` \
             (without it, the budget and the guard live inside the serving process \
             and end with it)"
        )
    })?;
    let store = smsauth::codes::redis_store(redis)?;
    let report = match action {
        SmsGuardAction::Status => smsauth::service::sms_guard::status(&*store, config).await?,
        SmsGuardAction::Lift { block } => {
            smsauth::service::sms_guard::lift(&*store, &block).await?
        }
    };
    print!("{report}");
    Ok(())
}
