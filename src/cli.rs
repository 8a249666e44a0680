//! The command line: `smsauth [serve|migrate|schema|import-django|users …|sms-guard]`.

pub mod users;

use clap::{Parser, Subcommand};

/// Where the settings are explained (`--help` shows it after the commands).
const AFTER_HELP: &str = "\
Configuration: environment variables, also read from a .env file in the
current folder. The README's \"Configuration\" section explains each one, and
.env.example lists them all with their defaults.";

#[derive(Debug, Parser)]
#[command(
    name = "smsauth",
    version,
    about = "Sign people in with their mobile number",
    after_help = AFTER_HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the GraphQL API (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Print the GraphQL SDL to stdout and exit.
    Schema,
    /// Copy the users of the Django original into the database.
    ImportDjango(ImportDjangoArgs),
    /// Show one user, or deactivate, activate, log out or unlock them.
    #[command(subcommand)]
    Users(users::UsersCommand),
    /// The SMS budget and the pumping guard, on the shared store (REDIS_URL).
    SmsGuard {
        #[command(subcommand)]
        action: SmsGuardAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum SmsGuardAction {
    /// Print budget use per window and the paused number blocks.
    Status,
    /// End one block's pause and clear its counts (e.g. `lift +861371111`).
    Lift { block: String },
}

/// `smsauth import-django SOURCE [--table NAME] [--dry-run] [--rejects FILE] [--time-zone TZ]`.
#[derive(Debug, clap::Args)]
pub struct ImportDjangoArgs {
    /// A PostgreSQL URL, a SQLite file or URL of the Django database, or a
    /// JSON file written by `manage.py dumpdata user.User`.
    pub source: String,
    /// The Django user table (for a JSON file: `app_model` names the model `app.model`).
    #[arg(long, default_value = "user_user")]
    pub table: String,
    /// Write nothing to the database; still write the rejects file and the summary.
    #[arg(long)]
    pub dry_run: bool,
    /// Where rows that cannot be imported are written, one JSON object per line.
    #[arg(long, default_value = "import-rejects.jsonl")]
    pub rejects: std::path::PathBuf,
    /// The time zone of timestamps stored without an offset (Django's `USE_TZ = False`).
    #[arg(long, default_value = "Asia/Shanghai", value_parser = parse_time_zone)]
    pub time_zone: chrono_tz::Tz,
}

fn parse_time_zone(raw: &str) -> Result<chrono_tz::Tz, String> {
    raw.parse()
        .map_err(|_| format!("{raw:?} is not an IANA time zone such as Asia/Shanghai or UTC"))
}

impl ImportDjangoArgs {
    pub fn options(&self) -> crate::import_django::ImportOptions {
        crate::import_django::ImportOptions {
            source: self.source.clone(),
            table: self.table.clone(),
            dry_run: self.dry_run,
            rejects: self.rejects.clone(),
            time_zone: self.time_zone,
            show_progress: true,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn import_django_takes_the_contracts_options_and_defaults() {
        let cli = Cli::try_parse_from(["smsauth", "import-django", "users.json"]).unwrap();
        let Some(Command::ImportDjango(args)) = cli.command else {
            panic!("not import-django");
        };
        assert_eq!(args.source, "users.json");
        assert_eq!(args.table, "user_user");
        assert!(!args.dry_run);
        assert_eq!(
            args.rejects,
            std::path::PathBuf::from("import-rejects.jsonl")
        );
        assert_eq!(args.time_zone, chrono_tz::Asia::Shanghai);

        let cli = Cli::try_parse_from([
            "smsauth",
            "import-django",
            "postgres://django@db/django",
            "--table",
            "accounts_user",
            "--dry-run",
            "--rejects",
            "/tmp/r.jsonl",
            "--time-zone",
            "UTC",
        ])
        .unwrap();
        let Some(Command::ImportDjango(args)) = cli.command else {
            panic!("not import-django");
        };
        assert!(args.dry_run);
        assert_eq!(args.table, "accounts_user");
        assert_eq!(args.time_zone, chrono_tz::UTC);

        let bad =
            Cli::try_parse_from(["smsauth", "import-django", "x", "--time-zone", "Mars/Base"]);
        let message = bad.unwrap_err().to_string();
        assert!(message.contains("--time-zone"), "{message}");
        assert!(
            Cli::try_parse_from(["smsauth", "import-django"]).is_err(),
            "SOURCE is required"
        );
    }
}
