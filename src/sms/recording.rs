//! Test provider: records every message it is asked to send and can be told
//! to fail. Public (not `cfg(test)`) because the integration tests use it.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use super::{OutgoingSms, SmsError, SmsProvider, SmsReceipt};
use crate::domain::SmsPurpose;

#[derive(Clone, Debug)]
pub struct SentSms {
    pub mobile: String,
    pub purpose: SmsPurpose,
    pub code: String,
    pub ttl_minutes: u64,
}

/// How the provider should fail, when it should.
#[derive(Clone, Copy, Debug)]
pub enum Failure {
    Rejected,
    Unavailable,
}

#[derive(Default)]
pub struct RecordingSmsProvider {
    sent: Mutex<Vec<SentSms>>,
    failure: Mutex<Option<Failure>>,
    delay: Mutex<Option<Duration>>,
}

impl RecordingSmsProvider {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every message accepted so far.
    pub fn sent(&self) -> Vec<SentSms> {
        self.sent
            .lock()
            .map(|sent| sent.clone())
            .unwrap_or_default()
    }

    /// The code of the last message to `mobile` (E.164).
    pub fn last_code_to(&self, mobile: &str) -> Option<String> {
        self.sent()
            .into_iter()
            .rev()
            .find(|sms| sms.mobile == mobile)
            .map(|sms| sms.code)
    }

    /// From now on every send fails this way (`None`: succeed again).
    pub fn fail_with(&self, failure: Option<Failure>) {
        if let Ok(mut slot) = self.failure.lock() {
            *slot = failure;
        }
    }

    /// Makes each send take this long (widens race windows in tests).
    pub fn delay(&self, delay: Option<Duration>) {
        if let Ok(mut slot) = self.delay.lock() {
            *slot = delay;
        }
    }
}

#[async_trait]
impl SmsProvider for RecordingSmsProvider {
    fn name(&self) -> &'static str {
        "recording"
    }

    async fn send(&self, sms: &OutgoingSms<'_>) -> Result<SmsReceipt, SmsError> {
        let delay = self.delay.lock().ok().and_then(|d| *d);
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        let failure = self.failure.lock().ok().and_then(|f| *f);
        match failure {
            Some(Failure::Rejected) => Err(SmsError::AccountProblem {
                provider_code: "FailedOperation.InsufficientBalanceInSmsPackage".to_owned(),
                retry_after: None,
            }),
            Some(Failure::Unavailable) => Err(SmsError::MaybeSent {
                cause: anyhow::anyhow!("simulated timeout"),
            }),
            None => {
                if let Ok(mut sent) = self.sent.lock() {
                    sent.push(SentSms {
                        mobile: sms.mobile.as_str().to_owned(),
                        purpose: sms.purpose,
                        code: sms.code.expose().to_owned(),
                        ttl_minutes: sms.ttl_minutes,
                    });
                }
                Ok(SmsReceipt {
                    request_id: Some(uuid::Uuid::new_v4().to_string()),
                    serial_no: None,
                    fee: Some(1),
                })
            }
        }
    }
}
