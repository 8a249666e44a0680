//! The code lifecycle: sending a code (`sendSmsCode`) and consuming one
//! (the SMS sign-in, registration and reset operations). Contract §2,
//! "Behaviour" and "Details".

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::FutureExt as _;
use tokio::sync::oneshot;
use tracing::Instrument as _;

use super::sms_budget;
use super::throttle::{hit, reserve, store_unavailable};
use crate::codes::{IssueOutcome, IssueRequest, VerifyOutcome};
use crate::db;
use crate::db::sms_messages::SmsAuditRow;
use crate::domain::{CANNOT_RECEIVE_SMS, Mobile, SmsCode, SmsPurpose};
use crate::error::{AppError, AppResult, RateLimitReason};
use crate::rate_limit::LimitedAction;
use crate::sms::{SmsError, SmsReceipt, SmsRequest};
use crate::state::{AppState, RequestMeta};

/// What the app is told after a send.
#[derive(Clone, Debug)]
pub struct SmsTicket {
    pub mobile: Mobile,
    pub expires_in: Duration,
    pub resend_in: Duration,
}

/// The provider name in the audit trail for `SMS_TEST_NUMBERS`.
const TEST_PROVIDER: &str = "test";

/// The template's "valid for N minutes": the TTL in minutes, rounded up, at least 1.
pub fn template_minutes(ttl: Duration) -> u64 {
    ttl.as_secs().div_ceil(60).max(1)
}

/// Sends a fresh code for `purpose`. In order: region allowlist, per-IP
/// limit and purpose against the users table; then, on a task of its own,
/// the SMS budget and pumping guard (one atomic step), (atomically) the
/// cooldown, the per-mobile cap and storing the code, and only then the
/// provider call and its audit row.
///
/// That task runs to its end even if the client hangs up (or the request
/// times out): hyper drops a request's future when its connection closes,
/// and a send dropped halfway would leave a stored code that no SMS carried
/// (the user waits out the cooldown for nothing), or an SMS the provider
/// accepted, and bills, without its audit row. Only a send that passed the
/// region, per-IP and purpose checks is detached, and shutdown waits for it.
#[tracing::instrument(name = "send sms code", skip_all, fields(mobile = %mobile.masked(), purpose = purpose.as_str()))]
pub async fn send_code(
    state: &Arc<AppState>,
    meta: &RequestMeta,
    mobile: Mobile,
    purpose: SmsPurpose,
    now: DateTime<Utc>,
) -> AppResult<SmsTicket> {
    let config = &state.config.sms;
    if let Some(allowed) = &config.allowed_regions
        && !mobile
            .region()
            .is_some_and(|region| allowed.contains(&region))
    {
        return Err(AppError::RegionNotAllowed);
    }

    // Counted before the purpose check, so its answers (which tell whether a
    // mobile is registered) cannot be probed without limit.
    hit(
        state,
        LimitedAction::SendPerIp,
        &meta.limit_key(),
        state.config.limits.send_per_ip.as_ref(),
    )
    .await?;

    // An inactive user's mobile stays taken, but gets no code it could not use.
    let user = db::users::find_by_mobile(&state.db, &mobile).await?;
    match (purpose, user) {
        (SmsPurpose::Register, Some(_)) => return Err(AppError::MobileTaken),
        (SmsPurpose::Login | SmsPurpose::ResetPassword, None) => {
            return Err(AppError::UserNotFound);
        }
        (SmsPurpose::Login | SmsPurpose::ResetPassword, Some(user)) if !user.is_active => {
            return Err(AppError::UserNotFound);
        }
        _ => {}
    }

    let (answer, answered) = oneshot::channel();
    let task_state = Arc::clone(state);
    let send = async move {
        // A panic answers as an internal error, as any other failure would.
        let result = AssertUnwindSafe(issue_and_deliver(&task_state, mobile, purpose, now))
            .catch_unwind()
            .await
            .unwrap_or_else(|_| Err(AppError::internal(anyhow::anyhow!("a send panicked"))));
        if let Err(Err(error)) = answer.send(result) {
            // The client has gone: this is the failure's only trace.
            error.log();
        }
    };
    state.detached.spawn(send.in_current_span());
    answered
        .await
        .map_err(|_| AppError::internal(anyhow::anyhow!("a send's task was dropped unanswered")))?
}

/// The part of a send that must not stop halfway (see [`send_code`]).
async fn issue_and_deliver(
    state: &AppState,
    mobile: Mobile,
    purpose: SmsPurpose,
    now: DateTime<Utc>,
) -> AppResult<SmsTicket> {
    let config = &state.config.sms;
    let test_code = config.test_numbers.get(&mobile);
    let code = test_code
        .cloned()
        .unwrap_or_else(|| SmsCode::generate(config.code_length));
    let code_hash = state.code_hasher.hash(&mobile, purpose, &code);
    // The bill's protections first (test numbers send no SMS): a send they
    // refuse leaves no cooldown and no per-mobile count behind.
    let counted = match test_code {
        Some(_) => None,
        None => Some(sms_budget::count_send(state, &mobile).await?),
    };
    let outcome = state
        .codes
        .issue(IssueRequest {
            mobile: &mobile,
            purpose,
            code_hash: &code_hash,
            ttl: config.code_ttl,
            max_attempts: config.max_attempts,
            cooldown: config.resend_cooldown,
            per_mobile: state.config.limits.send_per_mobile.as_ref(),
            exempt_from_mobile_limits: test_code.is_some(),
        })
        .await
        .map_err(store_unavailable);
    let refusal = match outcome {
        Ok(IssueOutcome::Issued) => None,
        Ok(IssueOutcome::Refused {
            reason,
            retry_after,
        }) => Some(AppError::rate_limited(reason, retry_after)),
        Err(error) => Some(error),
    };
    if let Some(error) = refusal {
        // No SMS goes out: the budget gets its send back.
        if let Some(counted) = counted {
            counted.refund(state).await;
        }
        return Err(error);
    }

    let ticket = SmsTicket {
        mobile: mobile.clone(),
        expires_in: config.code_ttl,
        resend_in: if test_code.is_some() {
            Duration::ZERO
        } else {
            config.resend_cooldown
        },
    };
    if test_code.is_some() {
        // Counted as sent by `test`, so the send-to-verify funnel stays whole.
        state
            .instruments
            .sms_attempt(TEST_PROVIDER, purpose.as_str(), true, None);
        let audit = SmsAuditRow {
            id: uuid::Uuid::now_v7(),
            mobile: &mobile,
            purpose,
            provider: TEST_PROVIDER,
            sent: true,
            provider_request_id: None,
            serial_no: None,
            fee: None,
            error_code: None,
            now,
        };
        write_audit(state, audit).await;
        return Ok(ticket);
    }

    // Every provider tried gets its own audit row; the last attempt is the outcome.
    let attempts = state
        .sms
        .send(&SmsRequest {
            mobile: &mobile,
            purpose,
            code: &code,
            ttl_minutes: template_minutes(config.code_ttl),
        })
        .await;
    let mut outcome = None;
    for attempt in attempts {
        let (receipt, error_code) = match &attempt.result {
            Ok(receipt) => (receipt.clone(), None),
            Err(error) => (SmsReceipt::default(), Some(error.audit_code())),
        };
        state.instruments.sms_attempt(
            attempt.provider,
            purpose.as_str(),
            attempt.result.is_ok(),
            receipt.fee,
        );
        write_audit(
            state,
            SmsAuditRow {
                id: attempt.id,
                mobile: &mobile,
                purpose,
                provider: attempt.provider,
                sent: attempt.result.is_ok(),
                provider_request_id: receipt.request_id,
                serial_no: receipt.serial_no,
                fee: receipt.fee,
                error_code,
                now,
            },
        )
        .await;
        outcome = Some(attempt.result.map(|_| ()).map_err(delivery_error));
    }
    // Built only when needed: an error captures a backtrace when
    // RUST_BACKTRACE is set, which cost 2 % of a send's CPU on every success.
    let outcome = outcome.unwrap_or_else(|| {
        Err(AppError::unavailable(
            "sms provider",
            anyhow::anyhow!("no SMS provider is configured"),
        ))
    });
    if outcome.is_err() {
        // The code was never delivered (or we cannot know): it must not stay valid.
        // The cooldown and the counts stay, so a failing provider is not hammered.
        if let Err(e) = state.codes.withdraw(&mobile, purpose, &code_hash).await {
            tracing::error!(error = %e, "could not withdraw the code of a failed send");
        }
    }
    outcome.map(|()| ticket)
}

/// The audit row is a record, not part of the answer: a failure to write it is
/// logged, and the send's own outcome stands.
async fn write_audit(state: &AppState, row: SmsAuditRow<'_>) {
    if let Err(e) = db::sms_messages::record(&state.db_relaxed, row).await {
        tracing::error!(error = ?e, "could not write the SMS audit row");
    }
}

fn delivery_error(error: SmsError) -> AppError {
    match error {
        SmsError::RateLimited {
            provider_code,
            retry_after,
        } => AppError::RateLimited {
            reason: RateLimitReason::ProviderLimit,
            retry_after,
            provider_code: Some(provider_code),
        },
        // An account-wide quota that says when it lifts: the app can tell the user when.
        SmsError::AccountProblem {
            provider_code,
            retry_after: Some(retry_after),
        } => AppError::RateLimited {
            reason: RateLimitReason::ProviderLimit,
            retry_after,
            provider_code: Some(provider_code),
        },
        SmsError::NumberRefused { .. } => AppError::BadUserInput(CANNOT_RECEIVE_SMS),
        SmsError::AccountProblem { provider_code, .. } | SmsError::Refused { provider_code } => {
            AppError::SmsDeliveryFailed { provider_code }
        }
        SmsError::NotSent { cause } | SmsError::MaybeSent { cause } => {
            AppError::unavailable("sms provider", cause)
        }
    }
}

/// How long a right code is held for the operation it authorises. Longer
/// than any request may run (`HTTP_REQUEST_TIMEOUT_SECS` is bounded below
/// it); a lease never settled, because the request was cancelled or the
/// process died, counts as spent when it runs out.
pub const CODE_LEASE: Duration = Duration::from_secs(120);

/// Runs `work`, authorised by `code`: the code is checked and leased first
/// (atomically: of concurrent requests with one right code, one gets here),
/// then spent when `work` succeeds or handed back, as it was, when `work`
/// fails, so a code is spent only by success. The code keeps its lifetime
/// meanwhile, and a newer code, a withdrawal or wrong tries still end it.
/// Call it inside [`under_verify_limit`].
pub async fn spend_code_on<T>(
    state: &AppState,
    mobile: &Mobile,
    purpose: SmsPurpose,
    code: &SmsCode,
    work: impl Future<Output = AppResult<T>>,
) -> AppResult<T> {
    let code_hash = state.code_hasher.hash(mobile, purpose, code);
    let outcome = state
        .codes
        .verify(mobile, purpose, &code_hash, CODE_LEASE)
        .await
        .map_err(store_unavailable)?;
    let lease = match outcome {
        VerifyOutcome::Accepted(lease) => lease,
        VerifyOutcome::Rejected { attempts_left } => {
            return Err(AppError::InvalidCode { attempts_left });
        }
        VerifyOutcome::Exhausted => return Err(AppError::TooManyAttempts),
    };
    let result = work.await;
    let spent = result.is_ok();
    let settle = async {
        if let Err(e) = state.codes.settle(mobile, purpose, &lease, spent).await {
            // The lease runs out and the code counts as spent: never worse than
            // the user asking for a new one.
            tracing::error!(error = %e, spent, "could not settle the lease of a code");
        }
    };
    if spent {
        state.instruments.code_verified(purpose.as_str());
        // Independent steps (the code's own key, the pumping guard's block):
        // one round trip's wait for both, on a cluster often two nodes.
        tokio::join!(settle, sms_budget::record_code_used(state, mobile));
    } else {
        settle.await;
    }
    result
}

/// Runs an operation that checks a code (SMS sign-in, registration, reset)
/// under the client's `SMS_VERIFY_LIMIT_PER_IP`: refused once the client is
/// over it, and counted unless it succeeds. Every other answer tells
/// something (wrong code, unknown or taken mobile, taken username, a password
/// equal to the username), so none of them may be probed for free.
pub async fn under_verify_limit<T>(
    state: &AppState,
    meta: &RequestMeta,
    operation: impl Future<Output = AppResult<T>>,
) -> AppResult<T> {
    let limit = state.config.limits.verify_failures_per_ip.clone();
    let attempt = reserve(
        state,
        &[(LimitedAction::VerifyFailurePerIp, meta.limit_key(), limit)],
    )
    .await?;
    let result = operation.await;
    if result.is_ok() {
        attempt.release().await;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_minutes_round_up_and_are_at_least_one() {
        assert_eq!(template_minutes(Duration::from_secs(300)), 5);
        assert_eq!(template_minutes(Duration::from_secs(301)), 6);
        assert_eq!(template_minutes(Duration::from_secs(59)), 1);
        assert_eq!(template_minutes(Duration::from_secs(1)), 1);
    }
}
