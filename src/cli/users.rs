//! `smsauth users show|deactivate|activate|logout|unlock ACCOUNT`: the
//! operator's commands on one user, with the same environment as `serve`.
//! Exit 0 on success; 1 with one line on stderr when the account is unknown.

use anyhow::Context as _;
use chrono::{DateTime, SecondsFormat, Utc};
use clap::Subcommand;
use secrecy::ExposeSecret;

use crate::codes::redis_store;
use crate::config::Config;
use crate::db;
use crate::service::operator::{Operator, UserSummary};

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Print the user's id, username, mobile, email, state, times and live sessions.
    Show {
        /// A username, mobile or email.
        account: String,
    },
    /// Refuse sign-in from now on and end every session and access token at once.
    Deactivate {
        /// A username, mobile or email.
        account: String,
    },
    /// Allow sign-in again (sessions ended before stay ended).
    Activate {
        /// A username, mobile or email.
        account: String,
    },
    /// End every session and access token at once.
    Logout {
        /// A username, mobile or email.
        account: String,
    },
    /// Clear the password-login throttles of the account (needs REDIS_URL).
    Unlock {
        /// A username, mobile or email.
        account: String,
    },
}

pub async fn run(config: &Config, command: &UsersCommand) -> anyhow::Result<()> {
    let db = db::connect(config.database_url.expose_secret(), 2, None)
        .await
        .context("connecting to the database (DATABASE_URL)")?;
    let operator = Operator::new(&db, config.sms.default_region);
    let now = Utc::now();
    match command {
        UsersCommand::Show { account } => {
            print!("{}", describe(&operator.show(account, now).await?));
        }
        UsersCommand::Deactivate { account } => {
            let ended = operator.deactivate(account, now).await?;
            println!(
                "{}: deactivated; {} session(s) and every access token ended",
                ended.user.username, ended.live_sessions
            );
        }
        UsersCommand::Activate { account } => {
            let user = operator.activate(account, now).await?;
            println!("{}: active; sign-in allowed", user.username);
        }
        UsersCommand::Logout { account } => {
            let ended = operator.logout(account, now).await?;
            println!(
                "{}: {} session(s) and every access token ended",
                ended.user.username, ended.live_sessions
            );
        }
        UsersCommand::Unlock { account } => {
            let user = operator.user(account).await?;
            // Without Redis the throttles live inside the serving process.
            let redis = config.redis.as_ref().context(
                "unlock needs REDIS_URL: without it the throttles live inside the running \
                 server, and restarting it clears them",
            )?;
            let codes = redis_store(redis)?;
            operator.unlock(&user, codes.as_ref()).await?;
            println!("{}: password-login throttles cleared", user.username);
        }
    }
    Ok(())
}

fn describe(summary: &UserSummary) -> String {
    let user = &summary.user;
    let time = |at: Option<DateTime<Utc>>| {
        at.map_or_else(
            || "never".to_owned(),
            |at| at.to_rfc3339_opts(SecondsFormat::Secs, true),
        )
    };
    format!(
        "id: {}\nusername: {}\nmobile: {}\nemail: {}\nactive: {}\ncreated: {}\nlast login: {}\nactive sessions: {}\n",
        user.id,
        user.username,
        user.mobile,
        user.email.as_deref().unwrap_or("-"),
        if user.is_active { "yes" } else { "no" },
        time(Some(user.created_at)),
        time(user.last_login_at),
        summary.live_sessions,
    )
}
