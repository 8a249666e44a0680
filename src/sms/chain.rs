//! The provider chain of `SMS_PROVIDER` (contract §3.5): providers tried in order, the next
//! one only when the failed one proves the SMS was not sent ([`SmsError::allows_failover`]).
//! A timeout after sending, a refused number or a per-number limit ends the chain: another
//! provider would mean a second SMS, or a way around the limit.
//!
//! **Skipping a dead provider.** A provider whose last [`FAILURES_BEFORE_SKIP`] attempts all
//! failed in a way that fails over is skipped for `SMS_PROVIDER_SKIP_SECS`, so a dead one
//! does not add its connect timeout to every send. After that it is tried again; one more
//! such failure skips it again at once, any other outcome (a success, a refused number, a
//! per-number limit, a timeout) starts its count afresh. When every provider
//! is being skipped, all are tried in order as usual: skipping only helps when there is
//! somewhere else to go.

use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracing::Instrument;

use super::{OutgoingSms, SmsError, SmsProvider, SmsReceipt};
use crate::domain::{Mobile, SmsCode, SmsPurpose};

/// Proven failures in a row after which a provider is skipped for a while.
pub const FAILURES_BEFORE_SKIP: u32 = 5;

/// One provider call: its own audit row (`id`, also sent as the provider's correlation id),
/// its provider and its outcome. Per-provider metrics hook here.
#[derive(Debug)]
pub struct SmsAttempt {
    pub id: uuid::Uuid,
    pub provider: &'static str,
    pub result: Result<SmsReceipt, SmsError>,
}

/// What one verification SMS carries, whichever provider sends it.
pub struct SmsRequest<'a> {
    pub mobile: &'a Mobile,
    pub purpose: SmsPurpose,
    pub code: &'a SmsCode,
    pub ttl_minutes: u64,
}

#[derive(Default)]
struct Health {
    failures_in_a_row: u32,
    skipped_until: Option<Instant>,
}

struct Link {
    provider: Arc<dyn SmsProvider>,
    health: Mutex<Health>,
}

pub struct ProviderChain {
    links: Vec<Link>,
    skip_for: Duration,
}

impl ProviderChain {
    /// `providers` in the order they are tried; `skip_for` is `SMS_PROVIDER_SKIP_SECS`.
    pub fn new(providers: Vec<Arc<dyn SmsProvider>>, skip_for: Duration) -> Self {
        Self {
            links: providers
                .into_iter()
                .map(|provider| Link {
                    provider,
                    health: Mutex::new(Health::default()),
                })
                .collect(),
            skip_for,
        }
    }

    /// A chain of one provider (tests, and `SMS_PROVIDER=log`).
    pub fn single(provider: Arc<dyn SmsProvider>) -> Self {
        Self::new(vec![provider], Duration::from_secs(30))
    }

    /// The providers' names, in order, comma-separated (for the start-up log).
    pub fn names(&self) -> String {
        self.links
            .iter()
            .map(|link| link.provider.name())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Sends `sms` through the first provider that delivers it. Returns every attempt made,
    /// in order; the last one is the outcome. Never empty when the chain has a provider.
    pub async fn send(&self, sms: &SmsRequest<'_>) -> Vec<SmsAttempt> {
        let now = Instant::now();
        let awake: Vec<&Link> = self.links.iter().filter(|l| !l.skipped(now)).collect();
        let candidates = if awake.is_empty() {
            self.links.iter().collect()
        } else {
            awake
        };
        let mut attempts = Vec::new();
        for link in candidates {
            let id = uuid::Uuid::now_v7();
            let session_context = id.to_string();
            let result = link
                .provider
                .send(&OutgoingSms {
                    mobile: sms.mobile,
                    purpose: sms.purpose,
                    code: sms.code,
                    ttl_minutes: sms.ttl_minutes,
                    session_context: &session_context,
                })
                .instrument(tracing::debug_span!(
                    "sms_provider.send",
                    provider = link.provider.name(),
                    mobile = %sms.mobile.masked(),
                    purpose = sms.purpose.as_str(),
                ))
                .await;
            let fail_over = result.as_ref().is_err_and(SmsError::allows_failover);
            link.record(fail_over, self.skip_for);
            attempts.push(SmsAttempt {
                id,
                provider: link.provider.name(),
                result,
            });
            if !fail_over {
                break;
            }
        }
        attempts
    }
}

impl Link {
    fn skipped(&self, now: Instant) -> bool {
        self.health
            .lock()
            .map(|health| health.skipped_until.is_some_and(|until| now < until))
            .unwrap_or(false)
    }

    /// Counts a proven failure, or clears the record on any other outcome.
    fn record(&self, proven_failure: bool, skip_for: Duration) {
        let Ok(mut health) = self.health.lock() else {
            return;
        };
        if !proven_failure {
            *health = Health::default();
            return;
        }
        health.failures_in_a_row = health.failures_in_a_row.saturating_add(1);
        if health.failures_in_a_row >= FAILURES_BEFORE_SKIP {
            if health.failures_in_a_row == FAILURES_BEFORE_SKIP {
                tracing::warn!(
                    provider = self.provider.name(),
                    failures = health.failures_in_a_row,
                    skip_secs = skip_for.as_secs(),
                    "SMS provider failed {FAILURES_BEFORE_SKIP} times in a row without sending: \
                     skipping it while other providers are available"
                );
            }
            health.skipped_until = Some(Instant::now() + skip_for);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use async_trait::async_trait;

    use super::*;
    use crate::domain::Region;

    /// Answers with what it is told, and counts its calls.
    struct Scripted {
        name: &'static str,
        fail: Mutex<Option<fn() -> SmsError>>,
        calls: Mutex<u32>,
    }

    impl Scripted {
        fn new(name: &'static str, fail: Option<fn() -> SmsError>) -> Arc<Self> {
            Arc::new(Self {
                name,
                fail: Mutex::new(fail),
                calls: Mutex::new(0),
            })
        }
        fn calls(&self) -> u32 {
            *self.calls.lock().unwrap()
        }
    }

    #[async_trait]
    impl SmsProvider for Scripted {
        fn name(&self) -> &'static str {
            self.name
        }
        async fn send(&self, _: &OutgoingSms<'_>) -> Result<SmsReceipt, SmsError> {
            *self.calls.lock().unwrap() += 1;
            match *self.fail.lock().unwrap() {
                Some(fail) => Err(fail()),
                None => Ok(SmsReceipt::default()),
            }
        }
    }

    fn refused_connection() -> SmsError {
        SmsError::NotSent {
            cause: anyhow::anyhow!("connection refused"),
        }
    }
    fn timed_out() -> SmsError {
        SmsError::MaybeSent {
            cause: anyhow::anyhow!("timed out"),
        }
    }

    async fn send(chain: &ProviderChain) -> Vec<(&'static str, bool)> {
        let mobile = Mobile::parse("+8613711112222", Region::CN).unwrap();
        let code = SmsCode::parse("123456", 6).unwrap();
        chain
            .send(&SmsRequest {
                mobile: &mobile,
                purpose: SmsPurpose::Login,
                code: &code,
                ttl_minutes: 5,
            })
            .await
            .into_iter()
            .map(|attempt| (attempt.provider, attempt.result.is_ok()))
            .collect()
    }

    #[tokio::test]
    async fn fails_over_only_on_proven_not_sent_and_each_attempt_has_its_own_id() {
        let first = Scripted::new("first", Some(refused_connection));
        let second = Scripted::new("second", None);
        let chain =
            ProviderChain::new(vec![first.clone(), second.clone()], Duration::from_secs(60));
        assert_eq!(send(&chain).await, vec![("first", false), ("second", true)]);

        *first.fail.lock().unwrap() = Some(timed_out);
        assert_eq!(send(&chain).await, vec![("first", false)]);
        assert_eq!(second.calls(), 1, "no failover after a timeout");
    }

    #[tokio::test]
    async fn a_provider_failing_five_times_in_a_row_is_skipped_then_retried() {
        let first = Scripted::new("first", Some(refused_connection));
        let second = Scripted::new("second", None);
        let chain = ProviderChain::new(
            vec![first.clone(), second.clone()],
            Duration::from_millis(300),
        );
        for _ in 0..FAILURES_BEFORE_SKIP {
            assert_eq!(send(&chain).await, vec![("first", false), ("second", true)]);
        }
        assert_eq!(send(&chain).await, vec![("second", true)], "skipped");
        assert_eq!(first.calls(), FAILURES_BEFORE_SKIP);

        tokio::time::sleep(Duration::from_millis(350)).await;
        // Retried after the pause; still failing, it is skipped again at once.
        assert_eq!(send(&chain).await, vec![("first", false), ("second", true)]);
        assert_eq!(send(&chain).await, vec![("second", true)]);

        tokio::time::sleep(Duration::from_millis(350)).await;
        *first.fail.lock().unwrap() = None;
        assert_eq!(send(&chain).await, vec![("first", true)]);
        *first.fail.lock().unwrap() = Some(refused_connection);
        assert_eq!(
            send(&chain).await,
            vec![("first", false), ("second", true)],
            "one success cleared the record: one failure does not skip it"
        );
        assert_eq!(send(&chain).await, vec![("first", false), ("second", true)]);
    }

    #[tokio::test]
    async fn when_every_provider_is_skipped_all_are_tried() {
        let only = Scripted::new("only", Some(refused_connection));
        let chain = ProviderChain::new(vec![only.clone()], Duration::from_secs(60));
        for _ in 0..FAILURES_BEFORE_SKIP + 2 {
            assert_eq!(send(&chain).await, vec![("only", false)]);
        }
        assert_eq!(only.calls(), FAILURES_BEFORE_SKIP + 2);
    }
}
