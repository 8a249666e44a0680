//! Logging: `tracing` with an `EnvFilter` (`RUST_LOG`).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `RUST_LOG` overrides the default level.
pub fn init() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(crate::config::LOG_FILTER));
    // A second init (tests) is harmless: keep the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stdout().is_terminal())
        .try_init();
}

/// An error and its causes on one line, `outer: cause: root`, leaving out a
/// cause whose text the line already holds: many errors (sqlx's, through
/// sea-orm's `DbErr`) repeat their source in their own message, and `{:#}`
/// would print that message twice.
pub fn error_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.contains(text.as_str()) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_repeated_in_its_parent_is_printed_once() {
        let root = std::io::Error::other("connection refused");
        let error = anyhow::Error::new(root)
            .context("Connection Error: connection refused")
            .context("connecting to the database (DATABASE_URL)");
        assert_eq!(
            error_line(&error),
            "connecting to the database (DATABASE_URL): Connection Error: connection refused"
        );
    }
}
