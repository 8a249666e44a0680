//! Small helpers that read one environment variable each. Every error names
//! the variable, so a bad setting stops start-up with one clear line.

use std::collections::BTreeSet;
use std::str::FromStr;
use std::sync::Mutex;

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

/// Where variables come from: the process environment, or a fixed list
/// (tests). A variable that is unset or empty has the default of
/// [`super::VARIABLES`]; call sites never write defaults of their own.
pub struct Env {
    lookup: Lookup,
    /// Every variable looked up so far, for the test that the configuration
    /// reads exactly the variables of [`super::VARIABLES`].
    read: Mutex<BTreeSet<&'static str>>,
}

impl Env {
    fn new(lookup: Lookup) -> Self {
        Self {
            lookup,
            read: Mutex::default(),
        }
    }

    /// The process environment (after `.env` has been loaded into it).
    pub fn process() -> Self {
        Self::new(Box::new(|key| match std::env::var(key) {
            Ok(value) => Some(Ok(value)),
            Err(std::env::VarError::NotPresent) => None,
            Err(std::env::VarError::NotUnicode(_)) => Some(Err(())),
        }))
    }

    /// Only these pairs; everything else is unset.
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Self::new(Box::new(move |key| map.get(key).cloned().map(Ok)))
    }

    /// The variables looked up so far, in name order.
    pub fn variables_read(&self) -> Vec<&'static str> {
        self.read
            .lock()
            .map(|read| read.iter().copied().collect())
            .unwrap_or_default()
    }

    /// The variable's value; its default when unset or empty; `None` when
    /// it has no default either.
    pub fn var(&self, key: &'static str) -> Result<Option<String>, ConfigError> {
        if let Ok(mut read) = self.read.lock() {
            read.insert(key);
        }
        let default = || {
            super::variable(key)
                .map(|variable| variable.default)
                .filter(|default| !default.is_empty())
                .map(str::to_owned)
        };
        match (self.lookup)(key) {
            Some(Ok(value)) if value.trim().is_empty() => Ok(default()),
            Some(Ok(value)) => Ok(Some(value.trim().to_owned())),
            None => Ok(default()),
            Some(Err(())) => Err(ConfigError::new(key, "is not valid UTF-8")),
        }
    }

    /// The variable's value or default; an error naming it when it has neither.
    pub fn required_var(&self, key: &'static str) -> Result<String, ConfigError> {
        self.var(key)?
            .ok_or_else(|| ConfigError::new(key, "must be set"))
    }

    /// The variable (or its default) parsed with `FromStr`.
    pub fn var_parsed<T>(&self, key: &'static str) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        let raw = self.required_var(key)?;
        raw.parse()
            .map_err(|e| ConfigError::new(key, format!("cannot parse {raw:?}: {e}")))
    }

    /// The variable (or its default) parsed with a custom parser.
    pub fn var_with<T>(
        &self,
        key: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        let raw = self.required_var(key)?;
        parse(&raw).map_err(|problem| ConfigError::new(key, problem))
    }

    /// A variable without a default, parsed when set.
    pub fn optional_with<T>(
        &self,
        key: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        self.var(key)?
            .map(|raw| parse(&raw).map_err(|problem| ConfigError::new(key, problem)))
            .transpose()
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

    /// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`).
    pub fn flag(&self, key: &'static str) -> Result<bool, ConfigError> {
        self.var_with(key, |raw| match raw.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            other => Err(format!("expected true or false, got {other:?}")),
        })
    }
}
