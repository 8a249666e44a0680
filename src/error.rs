//! The catalogue of everything that can go wrong, one variant per
//! `extensions.code` of the contract, in two enums:
//!
//! - [`AppError`]: an operation ran and failed (services return it);
//! - [`RequestError`]: the request could not be executed at all (Apollo's
//!   request-level codes), raised by the transport and the request policy.
//!
//! `graphql::errors` turns both into GraphQL errors, each in a single `match`.
//!
//! `AppError` deliberately does not implement `Display`: async-graphql has a
//! blanket `From<T: Display>` that would silently drop the error code, and
//! without `Display` our own `From<AppError>` is the only conversion there is.

use std::time::Duration;

use crate::domain::InvalidInput;

pub type AppResult<T, E = AppError> = std::result::Result<T, E>;

/// The code of an error with no better one (also for field errors raised by
/// async-graphql itself rather than by a service).
pub const INTERNAL_SERVER_ERROR: &str = "INTERNAL_SERVER_ERROR";

/// Why a request could not be executed at all. These are the only errors that
/// may answer with a 4xx status (GraphQL over HTTP).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestError {
    /// Not a GraphQL request: non-JSON body, no query, a batch over the limit.
    BadRequest,
    /// A mutation sent over GET (answered with 405).
    MutationOverGet,
    /// The document does not parse.
    ParseFailed,
    /// The document fails validation or a limit of the request policy.
    ValidationFailed,
    /// An automatic persisted query whose hash the server does not know yet.
    PersistedQueryNotFound,
}

impl RequestError {
    /// Every variant, for the tests of the message table.
    pub const ALL: [Self; 5] = [
        Self::BadRequest,
        Self::MutationOverGet,
        Self::ParseFailed,
        Self::ValidationFailed,
        Self::PersistedQueryNotFound,
    ];

    /// The contract's `extensions.code`.
    pub fn code(self) -> &'static str {
        match self {
            Self::BadRequest | Self::MutationOverGet => "BAD_REQUEST",
            Self::ParseFailed => "GRAPHQL_PARSE_FAILED",
            Self::ValidationFailed => "GRAPHQL_VALIDATION_FAILED",
            Self::PersistedQueryNotFound => "PERSISTED_QUERY_NOT_FOUND",
        }
    }
}

/// Which limit a `RATE_LIMITED` answer is about (`extensions.reason`), so an
/// app can tell "try again in 40 s" from "too many codes today".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RateLimitReason {
    /// The resend cooldown of one mobile (`SMS_RESEND_COOLDOWN_SECS`).
    Cooldown,
    /// Codes per mobile (`SMS_SEND_LIMIT_PER_MOBILE`).
    MobileLimit,
    /// Code requests per client IP (`SMS_SEND_LIMIT_PER_IP`).
    IpLimit,
    /// Wrong codes per client IP (`SMS_VERIFY_LIMIT_PER_IP`).
    VerifyLimit,
    /// Failed password logins (`LOGIN_FAILURE_LIMIT_PER_*`).
    LoginThrottle,
    /// `mobileExists` calls per client IP (`MOBILE_EXISTS_LIMIT_PER_IP`).
    MobileExistsLimit,
    /// SMS in total, across instances (`SMS_GLOBAL_LIMIT`).
    GlobalLimit,
    /// SMS to the mobile's region (`SMS_REGION_LIMITS`).
    RegionLimit,
    /// The mobile's number block is paused by the pumping guard.
    SmsGuard,
    /// The SMS provider's own frequency limit for the number.
    ProviderLimit,
}

impl RateLimitReason {
    /// Every reason, for the tests of the message table.
    pub const ALL: [Self; 10] = [
        Self::Cooldown,
        Self::MobileLimit,
        Self::IpLimit,
        Self::VerifyLimit,
        Self::LoginThrottle,
        Self::MobileExistsLimit,
        Self::GlobalLimit,
        Self::RegionLimit,
        Self::SmsGuard,
        Self::ProviderLimit,
    ];

    /// The contract's `extensions.reason`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cooldown => "COOLDOWN",
            Self::MobileLimit => "MOBILE_LIMIT",
            Self::IpLimit => "IP_LIMIT",
            Self::VerifyLimit => "VERIFY_LIMIT",
            Self::LoginThrottle => "LOGIN_THROTTLE",
            Self::MobileExistsLimit => "MOBILE_EXISTS_LIMIT",
            Self::GlobalLimit => "GLOBAL_LIMIT",
            Self::RegionLimit => "REGION_LIMIT",
            Self::SmsGuard => "SMS_GUARD",
            Self::ProviderLimit => "PROVIDER_LIMIT",
        }
    }
}

pub enum AppError {
    BadUserInput(InvalidInput),
    Unauthenticated,
    Forbidden,
    InvalidCredentials,
    InvalidCode {
        attempts_left: Option<u32>,
    },
    TooManyAttempts,
    RateLimited {
        reason: RateLimitReason,
        retry_after: Duration,
        provider_code: Option<String>,
    },
    MobileTaken,
    UsernameTaken,
    EmailTaken,
    UserNotFound,
    RegionNotAllowed,
    InvalidRefreshToken,
    SmsDeliveryFailed {
        provider_code: String,
    },
    /// A dependency (database, code store, SMS provider) did not answer.
    ServiceUnavailable {
        dependency: &'static str,
        cause: anyhow::Error,
    },
    /// Anything else: logged with its cause, shown to the client as a fixed text.
    Internal(anyhow::Error),
}

impl AppError {
    pub fn rate_limited(reason: RateLimitReason, retry_after: Duration) -> Self {
        Self::RateLimited {
            reason,
            retry_after,
            provider_code: None,
        }
    }

    pub fn unavailable(dependency: &'static str, cause: impl Into<anyhow::Error>) -> Self {
        Self::ServiceUnavailable {
            dependency,
            cause: cause.into(),
        }
    }

    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Self::Internal(cause.into())
    }

    /// Logs the error as its kind deserves: our own fault as an error, a
    /// dependency down as a warning, a refusal (the client's doing) at debug.
    pub fn log(&self) {
        match self {
            Self::Internal(_) => tracing::error!(error = ?self, "internal error"),
            Self::ServiceUnavailable { .. } => {
                tracing::warn!(error = ?self, "dependency unavailable")
            }
            _ => tracing::debug!(error = ?self, "request refused"),
        }
    }

    /// Renames the field of a `BAD_USER_INPUT` about `from`, where the
    /// transport calls a value differently than the domain (`newPassword`).
    pub fn renaming_field(self, from: &str, to: &'static str) -> Self {
        match self {
            Self::BadUserInput(invalid) if invalid.field == from => {
                Self::BadUserInput(InvalidInput {
                    field: to,
                    ..invalid
                })
            }
            other => other,
        }
    }

    /// Every code [`AppError::code`] can give.
    pub const CODES: [&'static str; 16] = [
        "BAD_USER_INPUT",
        "UNAUTHENTICATED",
        "FORBIDDEN",
        "INVALID_CREDENTIALS",
        "INVALID_CODE",
        "TOO_MANY_ATTEMPTS",
        "RATE_LIMITED",
        "MOBILE_TAKEN",
        "USERNAME_TAKEN",
        "EMAIL_TAKEN",
        "USER_NOT_FOUND",
        "REGION_NOT_ALLOWED",
        "INVALID_REFRESH_TOKEN",
        "SMS_DELIVERY_FAILED",
        "SERVICE_UNAVAILABLE",
        INTERNAL_SERVER_ERROR,
    ];

    /// The contract's `extensions.code`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadUserInput(_) => "BAD_USER_INPUT",
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Forbidden => "FORBIDDEN",
            Self::InvalidCredentials => "INVALID_CREDENTIALS",
            Self::InvalidCode { .. } => "INVALID_CODE",
            Self::TooManyAttempts => "TOO_MANY_ATTEMPTS",
            Self::RateLimited { .. } => "RATE_LIMITED",
            Self::MobileTaken => "MOBILE_TAKEN",
            Self::UsernameTaken => "USERNAME_TAKEN",
            Self::EmailTaken => "EMAIL_TAKEN",
            Self::UserNotFound => "USER_NOT_FOUND",
            Self::RegionNotAllowed => "REGION_NOT_ALLOWED",
            Self::InvalidRefreshToken => "INVALID_REFRESH_TOKEN",
            Self::SmsDeliveryFailed { .. } => "SMS_DELIVERY_FAILED",
            Self::ServiceUnavailable { .. } => "SERVICE_UNAVAILABLE",
            Self::Internal(_) => INTERNAL_SERVER_ERROR,
        }
    }
}

/// Whole seconds, rounded up, at least 1: a client that waits this long is let through.
pub fn retry_after_secs(retry_after: Duration) -> u64 {
    let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    secs.max(1)
}

impl std::fmt::Debug for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ServiceUnavailable { dependency, cause } => {
                write!(f, "SERVICE_UNAVAILABLE ({dependency}): {cause:#}")
            }
            Self::Internal(cause) => write!(f, "INTERNAL_SERVER_ERROR: {cause:#}"),
            other => write!(
                f,
                "{}: {}",
                other.code(),
                crate::messages::app_error(other).english()
            ),
        }
    }
}

impl From<InvalidInput> for AppError {
    fn from(invalid: InvalidInput) -> Self {
        Self::BadUserInput(invalid)
    }
}

impl From<sea_orm::DbErr> for AppError {
    fn from(err: sea_orm::DbErr) -> Self {
        use sea_orm::DbErr;
        match err {
            DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => Self::unavailable("database", err),
            DbErr::Exec(_) | DbErr::Query(_) if is_connection_failure(&err) => {
                Self::unavailable("database", err)
            }
            other => Self::internal(other),
        }
    }
}

/// An I/O or pool failure reported through a query rather than at connect.
fn is_connection_failure(err: &sea_orm::DbErr) -> bool {
    use sea_orm::{DbErr, RuntimeErr};
    match err {
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => matches!(
            e.as_ref(),
            sqlx_error::Error::Io(_)
                | sqlx_error::Error::PoolTimedOut
                | sqlx_error::Error::PoolClosed
                | sqlx_error::Error::Tls(_)
                | sqlx_error::Error::Protocol(_)
        ),
        _ => false,
    }
}

use sea_orm::sqlx as sqlx_error;

#[cfg(test)]
impl AppError {
    /// One error of each variant, in the order of [`AppError::CODES`].
    pub(crate) fn one_of_each() -> Vec<Self> {
        vec![
            Self::BadUserInput(InvalidInput::new(
                "x",
                crate::domain::InvalidReason::NotAMobile,
            )),
            Self::Unauthenticated,
            Self::Forbidden,
            Self::InvalidCredentials,
            Self::InvalidCode {
                attempts_left: None,
            },
            Self::TooManyAttempts,
            Self::rate_limited(RateLimitReason::Cooldown, Duration::from_secs(1)),
            Self::MobileTaken,
            Self::UsernameTaken,
            Self::EmailTaken,
            Self::UserNotFound,
            Self::RegionNotAllowed,
            Self::InvalidRefreshToken,
            Self::SmsDeliveryFailed {
                provider_code: String::new(),
            },
            Self::unavailable("x", anyhow::anyhow!("x")),
            Self::internal(anyhow::anyhow!("x")),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_in_the_catalogue_once() {
        let codes: Vec<&str> = AppError::one_of_each().iter().map(AppError::code).collect();
        assert_eq!(codes, AppError::CODES);
    }
}
