//! Rate limits written `COUNT/WINDOW` (e.g. `5/10m`) or `off`, and the list of
//! limited actions, each with its configuration key and default (one place to
//! look, in the manner of crates.io's `LimitedAction`).

use std::fmt;
use std::time::Duration;

use crate::config::{MAX_COUNT, MAX_DURATION};

/// At most `count` events in any sliding `window`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub count: u32,
    pub window: Duration,
}

impl RateLimit {
    /// Parses `COUNT/WINDOW` with a window in `s`, `m` or `h` (`10/24h`, `5/10m`,
    /// `30/1m`); `off` gives `None`.
    pub fn parse(raw: &str) -> Result<Option<Self>, String> {
        let raw = raw.trim();
        if raw.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        let (count, window) = raw
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
        let window = parse_window(window.trim())
            .ok_or_else(|| format!("the window in {raw:?} must be a number with s, m or h"))?;
        if u64::from(count) > MAX_COUNT {
            return Err(format!("the count in {raw:?} must be at most {MAX_COUNT}"));
        }
        if window > MAX_DURATION {
            return Err(format!("the window in {raw:?} must be at most 10 years"));
        }
        Ok(Some(Self { count, window }))
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}s", self.count, self.window.as_secs())
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
            assert_eq!(limit.count, count, "{raw}");
            assert_eq!(limit.window, Duration::from_secs(secs), "{raw}");
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
            "", "10", "10/", "/1h", "0/1h", "10/1d", "-1/1h", "x/1h", "10/0m", "10/h0",
        ] {
            assert!(RateLimit::parse(raw).is_err(), "{raw} should be rejected");
        }
    }
}
