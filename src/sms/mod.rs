//! Sending SMS: what every provider shares, and one folder per provider.
//!
//! - [`SmsProvider`]: the trait; [`SmsError`]: the contract's classification of a failed
//!   send, which alone decides the answer to the app and whether the next provider may be
//!   tried ([`SmsError::allows_failover`]).
//! - [`ProviderChain`]: the providers of `SMS_PROVIDER`, tried in order, with failover only
//!   on proven not-sent failures and a rest for a provider that keeps failing; see [`chain`].
//! - [`LogSmsProvider`] writes the code to the server log (development).
//! - [`RecordingSmsProvider`] keeps what it was asked to send, and can be told to fail (tests).
//! - [`TencentSmsProvider`] (`tencent`): Tencent Cloud SMS, TC3-HMAC-SHA256; see [`tencent`].
//! - [`AliyunSmsProvider`] (`aliyun`): Alibaba Cloud SMS, ACS3-HMAC-SHA256; see [`aliyun`].
//! - [`http`]: the HTTP plumbing the cloud providers share (client, transport failures,
//!   bounded bodies, log scrubbing); [`wire`]: serde helpers for their answers.

pub mod aliyun;
pub mod chain;
pub mod http;
mod log;
mod recording;
pub mod tencent;
pub mod wire;

use std::time::Duration;

use async_trait::async_trait;

pub use self::aliyun::AliyunSmsProvider;
pub use self::chain::{ProviderChain, SmsAttempt, SmsRequest};
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
    /// Echoed back by providers that support it (Tencent's `SessionContext`, Aliyun's
    /// `OutId`): the id of this attempt's audit row.
    pub session_context: &'a str,
}

/// What the provider said about an accepted message. With [`SmsAttempt::provider`] this is
/// everything a per-provider metric needs (`smsauth_sms_sent_total{provider}`, fees).
#[derive(Clone, Debug, Default)]
pub struct SmsReceipt {
    pub request_id: Option<String>,
    pub serial_no: Option<String>,
    /// Billed segments, when the provider says (Tencent does; Aliyun's `SendSms` does not).
    pub fee: Option<i32>,
}

/// Why a send failed, in the contract's classes. Every provider maps its answers onto these,
/// and nothing downstream looks at a provider's own codes: the class alone gives the answer
/// to the app (`service::sms_codes`) and whether another provider may be tried.
///
/// `provider_code` is the provider's own error code, safe to show; provider messages are
/// only logged.
#[derive(Debug)]
pub enum SmsError {
    /// The provider refused this number (malformed for it, blocked, out of reach of the
    /// template): `BAD_USER_INPUT`. Never fails over: it is the number, not the provider.
    NumberRefused { provider_code: String },
    /// The provider's own frequency limit for this number: `RATE_LIMITED` with
    /// `providerCode`. Never fails over: another provider must not bypass it.
    RateLimited {
        provider_code: String,
        retry_after: Duration,
    },
    /// Refused for a reason of the sender's account (credentials, balance, signature,
    /// template, an account-wide quota): nothing was sent, and an operator must act.
    /// `SMS_DELIVERY_FAILED`, or `RATE_LIMITED` when the provider tells when an account-wide
    /// quota lifts (`retry_after`). Fails over.
    AccountProblem {
        provider_code: String,
        retry_after: Option<Duration>,
    },
    /// Refused for a reason of this message that another provider would likely share
    /// (blocked content, a code smsauth does not know): nothing was sent.
    /// `SMS_DELIVERY_FAILED`. Never fails over.
    Refused { provider_code: String },
    /// Proven not sent, the provider being unreachable or failing: no connection could be
    /// opened, the provider reported an internal error, or an HTTP 5xx answer (other than a
    /// gateway's 502/504). `SERVICE_UNAVAILABLE`. Fails over.
    NotSent { cause: anyhow::Error },
    /// The request may have reached the provider but no complete answer came (timeout,
    /// reset, unreadable answer): the SMS may still be delivered. `SERVICE_UNAVAILABLE`.
    /// Never fails over and is never retried: a second SMS would be a second bill, and a
    /// second code in the user's hands.
    MaybeSent { cause: anyhow::Error },
}

impl SmsError {
    /// Whether the next provider may be tried: only when this failure proves the SMS was not
    /// sent *and* the cause is the provider or the sender's account there, not the number.
    pub fn allows_failover(&self) -> bool {
        matches!(self, Self::AccountProblem { .. } | Self::NotSent { .. })
    }

    /// The provider code for the audit trail.
    pub fn audit_code(&self) -> String {
        match self {
            Self::RateLimited { provider_code, .. }
            | Self::NumberRefused { provider_code }
            | Self::AccountProblem { provider_code, .. }
            | Self::Refused { provider_code } => provider_code.clone(),
            Self::NotSent { .. } | Self::MaybeSent { .. } => "Unavailable".to_owned(),
        }
    }
}

#[async_trait]
pub trait SmsProvider: Send + Sync {
    /// The name written to the audit trail (`log`, `tencent`, `aliyun`, …).
    fn name(&self) -> &'static str;

    async fn send(&self, sms: &OutgoingSms<'_>) -> Result<SmsReceipt, SmsError>;
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn only_proven_not_sent_failures_fail_over() {
        let code = || "X".to_owned();
        let cases = [
            (
                SmsError::NumberRefused {
                    provider_code: code(),
                },
                false,
            ),
            (
                SmsError::RateLimited {
                    provider_code: code(),
                    retry_after: Duration::from_secs(30),
                },
                false,
            ),
            (
                SmsError::AccountProblem {
                    provider_code: code(),
                    retry_after: None,
                },
                true,
            ),
            (
                SmsError::Refused {
                    provider_code: code(),
                },
                false,
            ),
            (
                SmsError::NotSent {
                    cause: anyhow::anyhow!("connection refused"),
                },
                true,
            ),
            (
                SmsError::MaybeSent {
                    cause: anyhow::anyhow!("timed out"),
                },
                false,
            ),
        ];
        for (error, failover) in cases {
            assert_eq!(error.allows_failover(), failover, "{error:?}");
        }
    }
}
