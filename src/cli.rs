//! The command line: `smsauth [serve|migrate|schema]`.

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "smsauth",
    version,
    about = "Sign people in with their mobile number"
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
}
