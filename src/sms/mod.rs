//! Sending SMS: one trait, one implementation per provider.
//!
//! - [`LogSmsProvider`] writes the code to the server log (development).
//! - [`RecordingSmsProvider`] keeps what it was asked to send, and can be told
//!   to fail (tests).
//! - [`TencentSmsProvider`] sends through Tencent Cloud SMS (API 3.0, `SendSms`
//!   2021-01-11, TC3-HMAC-SHA256), `SMS_PROVIDER=tencent`; see [`tencent`].

mod log;
mod recording;
pub mod tencent;

use std::time::Duration;

use async_trait::async_trait;

pub use self::log::LogSmsProvider;
pub use self::recording::{Failure, RecordingSmsProvider, SentSms};
pub use self::tencent::TencentSmsProvider;
use crate::domain::{Mobile, SmsCode, SmsPurpose};

/// One verification SMS: the template gets the code and its validity in minutes.
pub struct OutgoingSms<'a> {
    pub mobile: &'a Mobile,
    pub purpose: SmsPurpose,
    pub code: &'a SmsCode,
    pub ttl_minutes: u64,
    /// Echoed back by providers that support it; correlates with the audit row.
    pub session_context: &'a str,
}

/// What the provider said about an accepted message.
#[derive(Clone, Debug, Default)]
pub struct SmsReceipt {
    pub request_id: Option<String>,
    pub serial_no: Option<String>,
    pub fee: Option<i32>,
}

/// Why a send failed. `provider_code` is the provider's own error code, safe
/// to show; provider messages are only logged.
#[derive(Debug)]
pub enum SmsError {
    /// The provider's own frequency limit for this number.
    RateLimited {
        provider_code: String,
        retry_after: Duration,
    },
    /// The provider says the number cannot receive SMS.
    InvalidNumber { provider_code: String },
    /// Refused for a reason the operator must fix (credentials, balance, template…).
    Rejected { provider_code: String },
    /// Unreachable, timed out or a server error: the SMS may or may not have gone out.
    Unavailable { cause: anyhow::Error },
}

impl SmsError {
    /// The provider code for the audit trail.
    pub fn audit_code(&self) -> String {
        match self {
            Self::RateLimited { provider_code, .. }
            | Self::InvalidNumber { provider_code }
            | Self::Rejected { provider_code } => provider_code.clone(),
            Self::Unavailable { .. } => "Unavailable".to_owned(),
        }
    }
}

#[async_trait]
pub trait SmsProvider: Send + Sync {
    /// The name written to the audit trail (`log`, `tencent`, …).
    fn name(&self) -> &'static str;

    async fn send(&self, sms: &OutgoingSms<'_>) -> Result<SmsReceipt, SmsError>;
}
