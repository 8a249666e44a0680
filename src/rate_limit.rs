//! Rate limits written `COUNT/WINDOW` (e.g. `5/10m`) or `off`, and the list of
//! limited actions, each with its configuration key and default (one place to
//! look, in the manner of crates.io's `LimitedAction`).

use std::fmt;
use std::time::Duration;

use crate::config::{MAX_COUNT, MAX_DURATION};
use crate::error::RateLimitReason;

/// At most `count` events in any sliding `length` of time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub count: u32,
    pub length: Duration,
}

impl Window {
    /// Parses one `COUNT/WINDOW` with a window in `s`, `m` or `h`.
    fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        let (count, length) = raw
            .split_once('/')
            .ok_or_else(|| format!("expected COUNT/WINDOW (e.g. 5/10m) or off, got {raw:?}"))?;
        let count: u32 = count
            .trim()
            .parse()
            .map_err(|_| format!("the count in {raw:?} is not a whole number"))?;
        if count == 0 {
            return Err(format!(
                "the count in {raw:?} must be at least 1 (use off to disable)"
            ));
        }
        let length = parse_window(length.trim())
            .ok_or_else(|| format!("the window in {raw:?} must be a number with s, m or h"))?;
        if u64::from(count) > MAX_COUNT {
            return Err(format!("the count in {raw:?} must be at most {MAX_COUNT}"));
        }
        if length > MAX_DURATION {
            return Err(format!("the window in {raw:?} must be at most 10 years"));
        }
        Ok(Self { count, length })
    }
}

/// One limit: one or more windows (`200/1h,2000/24h`), all of which must hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Never empty; at most one window per length.
    windows: Vec<Window>,
}

/// More windows than this in one setting is a typo, not a policy.
const MAX_WINDOWS: usize = 8;

impl RateLimit {
    /// A limit of one window.
    pub fn new(count: u32, length: Duration) -> Self {
        Self {
            windows: vec![Window { count, length }],
        }
    }

    /// Parses `COUNT/WINDOW[,COUNT/WINDOW…]` with windows in `s`, `m` or `h`
    /// (`10/24h`, `5/10m`, `200/1h,2000/24h`); `off` gives `None`.
    pub fn parse(raw: &str) -> Result<Option<Self>, String> {
        let raw = raw.trim();
        if raw.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        let windows = raw
            .split(',')
            .map(Window::parse)
            .collect::<Result<Vec<_>, _>>()?;
        Self::from_windows(windows).map(Some)
    }

    /// Checks a list of windows: not empty, not too many, one per length.
    pub fn from_windows(windows: Vec<Window>) -> Result<Self, String> {
        if windows.is_empty() {
            return Err("expected at least one COUNT/WINDOW".to_owned());
        }
        if windows.len() > MAX_WINDOWS {
            return Err(format!("at most {MAX_WINDOWS} windows per limit"));
        }
        for (i, window) in windows.iter().enumerate() {
            if windows[..i].iter().any(|w| w.length == window.length) {
                return Err(format!(
                    "two counts for the same window ({}s)",
                    window.length.as_secs()
                ));
            }
        }
        Ok(Self { windows })
    }

    pub fn windows(&self) -> &[Window] {
        &self.windows
    }

    /// The longest window: how long an event must be remembered.
    pub fn longest(&self) -> Duration {
        self.windows
            .iter()
            .map(|w| w.length)
            .max()
            .unwrap_or_default()
    }

    /// The same windows with every count multiplied by `factor`.
    pub fn scaled(&self, factor: u32) -> Self {
        Self {
            windows: self
                .windows
                .iter()
                .map(|w| Window {
                    count: w.count.saturating_mul(factor),
                    length: w.length,
                })
                .collect(),
        }
    }

    /// How long until one more event fits in every window, given the instants
    /// of the events so far as ages (time since each), oldest first; `None`
    /// when it fits now. With several full windows, the latest of their waits.
    pub fn wait_given_ages(&self, ages_oldest_first: &[Duration]) -> Option<Duration> {
        let mut wait: Option<Duration> = None;
        for window in &self.windows {
            // The events still inside this window are a suffix of the list.
            let inside: Vec<&Duration> = ages_oldest_first
                .iter()
                .filter(|age| **age < window.length)
                .collect();
            let count = inside.len();
            if count < window.count as usize {
                continue;
            }
            // This many of the oldest in-window events must leave first.
            let must_leave = count + 1 - window.count as usize;
            let Some(last_to_leave) = inside.get(must_leave - 1) else {
                continue;
            };
            let this_wait = window
                .length
                .saturating_sub(**last_to_leave)
                .max(Duration::from_millis(1));
            wait = Some(wait.map_or(this_wait, |w| w.max(this_wait)));
        }
        wait
    }

    /// The windows as one store argument, `COUNT:MILLIS,…` (read by the Lua scripts).
    pub fn to_script_arg(&self) -> String {
        self.windows
            .iter()
            .map(|w| {
                format!(
                    "{}:{}",
                    w.count,
                    u64::try_from(w.length.as_millis()).unwrap_or(u64::MAX)
                )
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, window) in self.windows.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}/{}s", window.count, window.length.as_secs())?;
        }
        Ok(())
    }
}

fn parse_window(raw: &str) -> Option<Duration> {
    // The unit is the last character, which may be multi-byte (`1ｈ`).
    let (unit_at, _) = raw.char_indices().last()?;
    let (number, unit) = raw.split_at(unit_at);
    let number: u64 = if number.is_empty() {
        1
    } else {
        number.parse().ok()?
    };
    let seconds = match unit {
        "s" => number,
        "m" => number.checked_mul(60)?,
        "h" => number.checked_mul(3600)?,
        _ => return None,
    };
    (seconds > 0).then(|| Duration::from_secs(seconds))
}

/// Every per-client limit the service keeps, beyond the per-mobile send rules
/// that live with the codes themselves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LimitedAction {
    /// `sendSmsCode` requests per client IP.
    SendPerIp,
    /// Failed code checks per client IP, across mobiles.
    VerifyFailurePerIp,
    /// `mobileExists` calls per client IP.
    MobileExistsPerIp,
    /// Failed password logins per account.
    LoginFailurePerAccount,
    /// Failed password logins per client IP.
    LoginFailurePerIp,
}

impl LimitedAction {
    /// The short name used in store keys.
    pub fn key_part(self) -> &'static str {
        match self {
            Self::SendPerIp => "send-ip",
            Self::VerifyFailurePerIp => "verify-ip",
            Self::MobileExistsPerIp => "exists-ip",
            Self::LoginFailurePerAccount => "login-account",
            Self::LoginFailurePerIp => "login-ip",
        }
    }

    /// The `extensions.reason` of a refusal under this limit.
    pub fn reason(self) -> RateLimitReason {
        match self {
            Self::SendPerIp => RateLimitReason::IpLimit,
            Self::VerifyFailurePerIp => RateLimitReason::VerifyLimit,
            Self::MobileExistsPerIp => RateLimitReason::MobileExistsLimit,
            Self::LoginFailurePerAccount | Self::LoginFailurePerIp => {
                RateLimitReason::LoginThrottle
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_contract_defaults() {
        let cases = [
            ("10/24h", 10, 86_400),
            ("20/1h", 20, 3_600),
            ("30/1m", 30, 60),
            ("5/10m", 5, 600),
            ("3/45s", 3, 45),
        ];
        for (raw, count, secs) in cases {
            let limit = RateLimit::parse(raw).unwrap().unwrap();
            assert_eq!(
                limit,
                RateLimit::new(count, Duration::from_secs(secs)),
                "{raw}"
            );
        }
    }

    #[test]
    fn off_disables() {
        assert_eq!(RateLimit::parse("off").unwrap(), None);
        assert_eq!(RateLimit::parse("OFF").unwrap(), None);
    }

    #[test]
    fn rejects_malformed_limits() {
        for raw in [
            "",
            "10",
            "10/",
            "/1h",
            "0/1h",
            "10/1d",
            "-1/1h",
            "x/1h",
            "10/0m",
            "10/h0",
            "10/1h,",
            "10/1h,off",
            "10/1h,20/60m",
            "1/1s,2/2s,3/3s,4/4s,5/5s,6/6s,7/7s,8/8s,9/9s",
        ] {
            assert!(RateLimit::parse(raw).is_err(), "{raw} should be rejected");
        }
    }

    #[test]
    fn parses_several_windows() {
        let limit = RateLimit::parse("200/1h, 2000/24h").unwrap().unwrap();
        assert_eq!(
            limit.windows(),
            &[
                Window {
                    count: 200,
                    length: Duration::from_secs(3_600)
                },
                Window {
                    count: 2000,
                    length: Duration::from_secs(86_400)
                },
            ]
        );
        assert_eq!(limit.longest(), Duration::from_secs(86_400));
        assert_eq!(limit.to_script_arg(), "200:3600000,2000:86400000");
    }

    #[test]
    fn waits_for_the_latest_full_window() {
        let secs = Duration::from_secs;
        // 2 per 10 s and 3 per 100 s; events 50 s, 5 s and 1 s ago.
        let limit = RateLimit::parse("2/10s,3/100s").unwrap().unwrap();
        let ages = [secs(50), secs(5), secs(1)];
        // The 10 s window frees in 5 s, the 100 s window in 50 s: the latest wins.
        assert_eq!(limit.wait_given_ages(&ages), Some(secs(50)));
        assert_eq!(limit.wait_given_ages(&ages[1..]), Some(secs(5)));
        assert_eq!(limit.wait_given_ages(&ages[2..]), None);
        assert_eq!(limit.wait_given_ages(&[]), None);
    }
}
