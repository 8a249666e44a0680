//! Every setting is bounded when it is read (contract §3.1): durations above
//! 10 years, counts above 10^9 and other values no sane deployment uses stop
//! the process at start with one line naming the variable. Far-off instants
//! and huge counts would otherwise panic much later, deep inside a request
//! (`Instant + Duration`, chrono's range, `iat + ttl`), with a lock held.

use std::fmt::Display;
use std::str::FromStr;
use std::time::Duration;

use super::{ConfigError, Env};

/// The longest duration any setting may have: 10 years.
pub const MAX_DURATION: Duration = Duration::from_secs(10 * 365 * 24 * 3600 + 3 * 24 * 3600);

/// The largest count any setting may have.
pub const MAX_COUNT: u64 = 1_000_000_000;

/// A duration in whole seconds, 1 up to [`MAX_DURATION`].
pub fn seconds(env: &Env, key: &'static str) -> Result<Duration, ConfigError> {
    let duration = seconds_or_zero(env, key)?;
    if duration.is_zero() {
        return Err(ConfigError::new(key, "must be at least 1"));
    }
    Ok(duration)
}

/// A duration in whole seconds, 0 up to [`MAX_DURATION`].
pub fn seconds_or_zero(env: &Env, key: &'static str) -> Result<Duration, ConfigError> {
    let secs = env.var_parsed(key)?;
    within_max_duration(key, Duration::from_secs(secs))
}

/// A whole number in `min..=max` (`max` at most [`MAX_COUNT`] by convention).
pub fn number<T>(env: &Env, key: &'static str, min: T, max: T) -> Result<T, ConfigError>
where
    T: FromStr + PartialOrd + Display + Copy,
    T::Err: Display,
{
    let value = env.var_parsed(key)?;
    if value < min || value > max {
        return Err(ConfigError::new(
            key,
            format!("must be between {min} and {max}, got {value}"),
        ));
    }
    Ok(value)
}

fn within_max_duration(key: &'static str, duration: Duration) -> Result<Duration, ConfigError> {
    if duration > MAX_DURATION {
        return Err(ConfigError::new(
            key,
            format!(
                "must be at most 10 years ({} seconds)",
                MAX_DURATION.as_secs()
            ),
        ));
    }
    Ok(duration)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_bounded() {
        let env = Env::from_pairs(&[
            ("TEN_YEARS", "315619200"),
            ("MORE", "315619201"),
            ("HUGE", "10000000000000000000"),
            ("ZERO", "0"),
        ]);
        assert_eq!(seconds(&env, "TEN_YEARS").unwrap(), MAX_DURATION);
        assert_eq!(seconds(&env, "MORE").unwrap_err().key, "MORE");
        assert_eq!(seconds_or_zero(&env, "HUGE").unwrap_err().key, "HUGE");
        assert_eq!(seconds(&env, "ZERO").unwrap_err().key, "ZERO");
        assert!(seconds_or_zero(&env, "ZERO").unwrap().is_zero());
    }

    #[test]
    fn numbers_are_bounded() {
        let env = Env::from_pairs(&[("N", "1001")]);
        assert_eq!(number(&env, "N", 1u32, 1000).unwrap_err().key, "N");
        // Unset: the default of the list of variables.
        assert_eq!(number(&env, "SMS_MAX_ATTEMPTS", 1u32, 1000).unwrap(), 5);
    }
}
