//! The settings that protect the SMS bill (contract §3.4): the global budget,
//! per-region caps and the pumping guard, each bounded at start.

use std::time::Duration;

use super::env::{ConfigError, Env};
use crate::domain::Region;
use crate::rate_limit::RateLimit;

#[derive(Clone, Debug)]
pub struct SmsBudgetConfig {
    /// SMS sent in total, across instances (`SMS_GLOBAL_LIMIT`).
    pub global: Option<RateLimit>,
    /// Per-region caps (`SMS_REGION_LIMITS`).
    pub regions: RegionLimits,
    /// `None` when `SMS_GUARD_MIN_SENDS=off`.
    pub guard: Option<GuardConfig>,
}

/// `US=50/1h,GB=20/1h,*=100/24h`: a cap per named region, and one for each
/// region not named (`*`), counted separately per region.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegionLimits {
    pub named: Vec<(Region, RateLimit)>,
    pub others: Option<RateLimit>,
}

/// The name a mobile's region is counted under: its ISO code, or `ZZ` (the
/// ISO code for "unknown") for non-geographic numbers.
pub fn region_key(region: Option<Region>) -> String {
    region.map_or_else(|| "ZZ".to_owned(), |r| r.as_str().to_owned())
}

impl RegionLimits {
    /// The cap of the region counted as `key` (see [`region_key`]).
    pub fn for_region(&self, key: &str) -> Option<&RateLimit> {
        self.named
            .iter()
            .find(|(region, _)| region.as_str() == key)
            .map(|(_, limit)| limit)
            .or(self.others.as_ref())
    }

    /// Parses `REGION=COUNT/WINDOW[,COUNT/WINDOW…],…`; an item without `=`
    /// is one more window of the region before it (`US=50/1h,500/24h`).
    fn parse(raw: &str) -> Result<Self, String> {
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for item in raw.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            match item.split_once('=') {
                Some((region, window)) => {
                    groups.push((region.trim().to_owned(), vec![window.trim().to_owned()]))
                }
                None => match groups.last_mut() {
                    Some((_, windows)) => windows.push(item.to_owned()),
                    None => return Err(format!("expected REGION=COUNT/WINDOW, got {item:?}")),
                },
            }
        }
        let mut limits = Self::default();
        for (region, windows) in groups {
            let limit = RateLimit::parse(&windows.join(","))
                .map_err(|problem| format!("{region}: {problem}"))?;
            let Some(limit) = limit else { continue };
            if region == "*" {
                if limits.others.replace(limit).is_some() {
                    return Err("* is given twice".to_owned());
                }
                continue;
            }
            let region = Region::parse(&region)?;
            if limits.named.iter().any(|(r, _)| *r == region) {
                return Err(format!("{region} is given twice"));
            }
            limits.named.push((region, limit));
        }
        Ok(limits)
    }
}

/// The pumping guard: numbers are judged per block (the E.164 number without
/// its last `block_digits` digits).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuardConfig {
    pub block_digits: usize,
    /// Sends per block, per window, from which the block is judged.
    pub min_sends: RateLimit,
    /// The share of those sends (percent) whose codes must have been used.
    pub min_verified_percent: u32,
    pub pause: Duration,
}

impl SmsBudgetConfig {
    pub fn from_source(env: &Env) -> Result<Self, ConfigError> {
        let global = super::limit(env, "SMS_GLOBAL_LIMIT")?;
        let regions = env
            .optional_with("SMS_REGION_LIMITS", RegionLimits::parse)?
            .unwrap_or_default();
        let guard = match super::limit(env, "SMS_GUARD_MIN_SENDS")? {
            None => None,
            Some(min_sends) => Some(GuardConfig {
                block_digits: bounded(env, "SMS_GUARD_BLOCK_DIGITS", 1, 8)?,
                min_sends,
                min_verified_percent: bounded(env, "SMS_GUARD_MIN_VERIFIED_PERCENT", 0, 100)?,
                pause: Duration::from_secs(bounded(env, "SMS_GUARD_PAUSE_SECS", 1, 30 * 86_400)?),
            }),
        };
        Ok(Self {
            global,
            regions,
            guard,
        })
    }
}

fn bounded<T>(env: &Env, key: &'static str, min: T, max: T) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
    T::Err: std::fmt::Display,
{
    let value = env.var_parsed(key)?;
    if value < min || value > max {
        return Err(ConfigError::new(
            key,
            format!("must be between {min} and {max}"),
        ));
    }
    Ok(value)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<SmsBudgetConfig, ConfigError> {
        SmsBudgetConfig::from_source(&Env::from_pairs(pairs))
    }

    #[test]
    fn defaults_are_the_contracts() {
        let config = parse(&[]).unwrap();
        assert_eq!(config.global, RateLimit::parse("1000/1h").unwrap());
        assert_eq!(config.regions, RegionLimits::default());
        let guard = config.guard.unwrap();
        assert_eq!(guard.block_digits, 4);
        assert_eq!(
            guard.min_sends,
            RateLimit::new(20, Duration::from_secs(3600))
        );
        assert_eq!(guard.min_verified_percent, 20);
        assert_eq!(guard.pause, Duration::from_secs(3600));
        assert!(
            parse(&[("SMS_GUARD_MIN_SENDS", "off")])
                .unwrap()
                .guard
                .is_none()
        );
    }

    #[test]
    fn region_limits_take_several_windows_and_a_wildcard() {
        let config =
            parse(&[("SMS_REGION_LIMITS", "US=50/1h,500/24h, gb=20/1h,*=100/24h")]).unwrap();
        let regions = config.regions;
        assert_eq!(
            regions.for_region("US"),
            RateLimit::parse("50/1h,500/24h").unwrap().as_ref()
        );
        assert_eq!(
            regions.for_region("GB"),
            RateLimit::parse("20/1h").unwrap().as_ref()
        );
        assert_eq!(
            regions.for_region("FR"),
            RateLimit::parse("100/24h").unwrap().as_ref()
        );
        assert_eq!(
            regions.for_region("ZZ"),
            RateLimit::parse("100/24h").unwrap().as_ref()
        );
        let only_named = parse(&[("SMS_REGION_LIMITS", "US=50/1h")]).unwrap().regions;
        assert_eq!(only_named.for_region("CN"), None);
    }

    #[test]
    fn each_bad_value_names_its_variable() {
        let cases: &[(&str, &str)] = &[
            ("SMS_GLOBAL_LIMIT", "1000 per hour"),
            ("SMS_REGION_LIMITS", "50/1h"),
            ("SMS_REGION_LIMITS", "XX=50/1h"),
            ("SMS_REGION_LIMITS", "US=50/1h,US=60/1h"),
            ("SMS_REGION_LIMITS", "US=0/1h"),
            ("SMS_GUARD_MIN_SENDS", "20"),
            ("SMS_GUARD_BLOCK_DIGITS", "0"),
            ("SMS_GUARD_BLOCK_DIGITS", "9"),
            ("SMS_GUARD_MIN_VERIFIED_PERCENT", "101"),
            ("SMS_GUARD_PAUSE_SECS", "0"),
            ("SMS_GUARD_PAUSE_SECS", "99999999999"),
        ];
        for (key, value) in cases {
            assert_eq!(
                parse(&[(key, value)]).err().unwrap().key,
                *key,
                "{key}={value}"
            );
        }
    }
}
