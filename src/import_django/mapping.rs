//! What a Django row becomes, as far as the row alone can tell: its mobile
//! in E.164, the username and email if they are valid here, its instants.
//! Whether they are *taken* is the writer's question (it asks the database).

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

use super::source::DjangoRow;
use crate::domain::{Email, Mobile, Region, Username};

/// Why a row was not imported, as written in the rejects file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectReason {
    /// No valid mobile number (empty, or not a number in `SMS_DEFAULT_REGION`).
    InvalidMobile,
    /// The mobile belongs to another user (an earlier Django row or a user of smsauth).
    MobileTaken,
    /// `date_joined` or `last_login` is not a timestamp.
    InvalidTimestamp,
}

impl RejectReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidMobile => "invalid_mobile",
            Self::MobileTaken => "mobile_taken",
            Self::InvalidTimestamp => "invalid_timestamp",
        }
    }
}

/// A row whose every field could be read.
#[derive(Debug)]
pub struct Prepared {
    pub row: DjangoRow,
    pub mobile: Mobile,
    /// The Django username, if it is a valid smsauth username.
    pub username: Option<Username>,
    /// The Django email, if it is a valid address.
    pub email: Option<Email>,
    pub created_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
}

/// A row ready for the writer, or one that is rejected on its own.
pub enum Mapped {
    Ready(Prepared),
    Rejected(DjangoRow, RejectReason),
}

/// The part of the mapping that needs nothing but the row.
pub fn prepare(row: DjangoRow, region: Region, time_zone: Tz) -> Mapped {
    let Ok(mobile) = Mobile::parse(row.mobile.as_deref().unwrap_or_default(), region) else {
        return Mapped::Rejected(row, RejectReason::InvalidMobile);
    };
    let created_at = parse_instant(&row.date_joined, time_zone);
    let last_login_at = match row.last_login.as_deref().map(str::trim) {
        None | Some("") => Some(None),
        Some(text) => parse_instant(text, time_zone).map(Some),
    };
    let (Some(created_at), Some(last_login_at)) = (created_at, last_login_at) else {
        return Mapped::Rejected(row, RejectReason::InvalidTimestamp);
    };
    Mapped::Ready(Prepared {
        username: Username::parse(&row.username).ok(),
        email: Email::parse(&row.email).ok(),
        mobile,
        created_at,
        last_login_at,
        row,
    })
}

/// A Django timestamp as an instant: with an offset (`USE_TZ = True`:
/// `…Z`, `…+08:00`, PostgreSQL's `…+08`) it is that instant; without one
/// (`USE_TZ = False`, as the original ran) it is wall-clock time in
/// `time_zone`. A wall-clock time skipped by a DST change is read as the
/// instant an hour later; one that occurs twice, as the first.
pub fn parse_instant(text: &str, time_zone: Tz) -> Option<DateTime<Utc>> {
    let text = text.trim();
    for format in ["%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%.f%#z"] {
        if let Ok(instant) = DateTime::parse_from_str(text, format) {
            return Some(instant.with_timezone(&Utc));
        }
    }
    if let Ok(instant) = DateTime::parse_from_rfc3339(text) {
        return Some(instant.with_timezone(&Utc));
    }
    let naive = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())?;
    let local = time_zone
        .from_local_datetime(&naive)
        .earliest()
        .or_else(|| {
            time_zone
                .from_local_datetime(&(naive + chrono::Duration::hours(1)))
                .earliest()
        })?;
    Some(local.with_timezone(&Utc))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn naive_times_are_read_in_the_time_zone() {
        let shanghai: Tz = "Asia/Shanghai".parse().unwrap();
        // dumpdata keeps milliseconds, SQLite microseconds.
        assert_eq!(
            parse_instant("2019-03-14T10:27:06.597", shanghai),
            Some(utc("2019-03-14T02:27:06.597Z"))
        );
        assert_eq!(
            parse_instant("2019-03-14 10:27:06.597712", shanghai),
            Some(utc("2019-03-14T02:27:06.597712Z"))
        );
        assert_eq!(
            parse_instant("2019-03-14 10:27:06", shanghai),
            Some(utc("2019-03-14T02:27:06Z"))
        );
    }

    #[test]
    fn times_with_an_offset_keep_their_instant() {
        let shanghai: Tz = "Asia/Shanghai".parse().unwrap();
        for text in [
            "2019-03-14T02:27:06.597Z",
            "2019-03-14T10:27:06.597+08:00",
            "2019-03-14 10:27:06.597+08",
            "2019-03-13 21:27:06.597-05",
        ] {
            assert_eq!(
                parse_instant(text, shanghai),
                Some(utc("2019-03-14T02:27:06.597Z")),
                "{text}"
            );
        }
    }

    #[test]
    fn dst_gaps_and_garbage() {
        let new_york: Tz = "America/New_York".parse().unwrap();
        // 02:30 did not exist on 2024-03-10 in New York: read as 03:30 EDT.
        assert_eq!(
            parse_instant("2024-03-10 02:30:00", new_york),
            Some(utc("2024-03-10T07:30:00Z"))
        );
        // 01:30 happened twice on 2024-11-03: the first (EDT).
        assert_eq!(
            parse_instant("2024-11-03 01:30:00", new_york),
            Some(utc("2024-11-03T05:30:00Z"))
        );
        for bad in ["", "yesterday", "2019-13-01 00:00:00", "2019-03-14"] {
            assert_eq!(parse_instant(bad, new_york), None, "{bad}");
        }
    }
}
