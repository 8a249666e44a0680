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

/// Looks one variable up: `None` when unset, `Some(Err(()))` when not UTF-8.
type Lookup = Box<dyn Fn(&str) -> Option<Result<String, ()>>>;

/// Where variables come from: the process environment, or a fixed list (tests).
pub struct Env {
    lookup: Lookup,
}

impl Env {
    /// The process environment (after `.env` has been loaded into it).
    pub fn process() -> Self {
        Self {
            lookup: Box::new(|key| match std::env::var(key) {
                Ok(value) => Some(Ok(value)),
                Err(std::env::VarError::NotPresent) => None,
                Err(std::env::VarError::NotUnicode(_)) => Some(Err(())),
            }),
        }
    }

    /// Only these pairs; everything else is unset.
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Self {
            lookup: Box::new(move |key| map.get(key).cloned().map(Ok)),
        }
    }

    /// The variable's value, or `None` when it is unset or empty.
    pub fn var(&self, key: &'static str) -> Result<Option<String>, ConfigError> {
        match (self.lookup)(key) {
            Some(Ok(value)) if value.trim().is_empty() => Ok(None),
            Some(Ok(value)) => Ok(Some(value.trim().to_owned())),
            None => Ok(None),
            Some(Err(())) => Err(ConfigError::new(key, "is not valid UTF-8")),
        }
    }

    /// The variable's value; an error naming it when unset.
    pub fn required_var(&self, key: &'static str) -> Result<String, ConfigError> {
        self.var(key)?
            .ok_or_else(|| ConfigError::new(key, "must be set"))
    }

    /// The variable parsed with `FromStr`, or `default` when unset.
    pub fn var_parsed<T>(&self, key: &'static str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        match self.var(key)? {
            None => Ok(default),
            Some(raw) => raw
                .parse()
                .map_err(|e| ConfigError::new(key, format!("cannot parse {raw:?}: {e}"))),
        }
    }

    /// The variable parsed with a custom parser, or `default` when unset.
    pub fn var_with<T>(
        &self,
        key: &'static str,
        default: T,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        match self.var(key)? {
            None => Ok(default),
            Some(raw) => parse(&raw).map_err(|problem| ConfigError::new(key, problem)),
        }
    }

    /// A comma-separated list; empty items are dropped.
    pub fn list(&self, key: &'static str) -> Result<Vec<String>, ConfigError> {
        Ok(self
            .var(key)?
            .map(|raw| {
                raw.split(',')
                    .map(str::trim)
                    .filter(|item| !item.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default())
    }

    /// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`), or `default` when unset.
    pub fn flag(&self, key: &'static str, default: bool) -> Result<bool, ConfigError> {
        self.var_with(key, default, |raw| {
            match raw.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                other => Err(format!("expected true or false, got {other:?}")),
            }
        })
    }
}
