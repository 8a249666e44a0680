//! Small helpers that read one environment variable each. Every error names
//! the variable, so a bad setting stops start-up with one clear line.

use std::str::FromStr;

/// A configuration problem, always tied to the variable that caused it.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {problem}")]
pub struct ConfigError {
    pub key: &'static str,
    pub problem: String,
}

impl ConfigError {
    pub fn new(key: &'static str, problem: impl Into<String>) -> Self {
        Self {
            key,
            problem: problem.into(),
        }
    }
}

/// The variable's value, or `None` when it is unset or empty.
pub fn var(key: &'static str) -> Result<Option<String>, ConfigError> {
    match std::env::var(key) {
        Ok(value) if value.trim().is_empty() => Ok(None),
        Ok(value) => Ok(Some(value.trim().to_owned())),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(ConfigError::new(key, "is not valid UTF-8")),
    }
}

/// The variable's value; an error naming it when unset.
pub fn required_var(key: &'static str) -> Result<String, ConfigError> {
    var(key)?.ok_or_else(|| ConfigError::new(key, "must be set"))
}

/// The variable parsed with `FromStr`, or `default` when unset.
pub fn var_parsed<T>(key: &'static str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    match var(key)? {
        None => Ok(default),
        Some(raw) => raw
            .parse()
            .map_err(|e| ConfigError::new(key, format!("cannot parse {raw:?}: {e}"))),
    }
}

/// The variable parsed with a custom parser, or `default` when unset.
pub fn var_with<T>(
    key: &'static str,
    default: T,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, ConfigError> {
    match var(key)? {
        None => Ok(default),
        Some(raw) => parse(&raw).map_err(|problem| ConfigError::new(key, problem)),
    }
}

/// A comma-separated list; empty items are dropped.
pub fn list(key: &'static str) -> Result<Vec<String>, ConfigError> {
    Ok(var(key)?
        .map(|raw| {
            raw.split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default())
}

/// `true`/`false` (also `1`/`0`, `yes`/`no`), or `default` when unset.
pub fn flag(key: &'static str, default: bool) -> Result<bool, ConfigError> {
    var_with(key, default, |raw| {
        match raw.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            other => Err(format!("expected true or false, got {other:?}")),
        }
    })
}
