//! The SMS bill's protections on the send path (contract §3.4): the global
//! budget, the region caps and the pumping guard, asked in one store call per
//! send (see `codes::budget` for the rules). Test numbers send no SMS and are
//! never counted, judged or paused.

use super::throttle::store_unavailable;
use crate::codes::budget::{BudgetAlert, BudgetRequest, GuardRequest};
use crate::config::region_key;
use crate::domain::Mobile;
use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// A send counted against the budget, to be refunded if no SMS goes out
/// after all (the mobile's cooldown or cap refused it).
pub struct CountedSend {
    event: String,
    region: String,
    mobile: Mobile,
}

fn request<'a>(
    state: &'a AppState,
    event: &'a str,
    region: &'a str,
    mobile: &'a Mobile,
) -> BudgetRequest<'a> {
    let budget = &state.config.budget;
    BudgetRequest {
        event,
        global: budget.global.as_ref(),
        region,
        region_limit: budget.regions.for_region(region),
        guard: budget.guard.as_ref().map(|guard| GuardRequest {
            block: mobile.block(guard.block_digits),
            min_sends: &guard.min_sends,
            min_verified_percent: guard.min_verified_percent,
            pause: guard.pause,
        }),
    }
}

/// Counts one SMS to `mobile` against the budget, or refuses it
/// (`GLOBAL_LIMIT`, `REGION_LIMIT`, `SMS_GUARD`) with nothing counted.
pub async fn count_send(state: &AppState, mobile: &Mobile) -> AppResult<CountedSend> {
    let counted = CountedSend {
        event: uuid::Uuid::new_v4().simple().to_string(),
        region: region_key(mobile.region()),
        mobile: mobile.clone(),
    };
    let decision = state
        .codes
        .spend_send(request(state, &counted.event, &counted.region, mobile))
        .await
        .map_err(store_unavailable)?;
    for alert in &decision.alerts {
        log_alert(alert);
    }
    if let Some((reason, retry_after)) = decision.refused {
        state.instruments.sms_guard_blocked(reason.as_str());
        return Err(AppError::rate_limited(reason, retry_after));
    }
    Ok(counted)
}

impl CountedSend {
    /// Takes the send back. A store failure is logged: the count expires with its window.
    pub async fn refund(self, state: &AppState) {
        let request = request(state, &self.event, &self.region, &self.mobile);
        if let Err(e) = state.codes.refund_send(&request).await {
            tracing::warn!(error = %e, "could not take a refused send back from the SMS budget");
        }
    }
}

/// Counts a code of `mobile` used successfully: what keeps its block from
/// being paused. A store failure is logged, never fails the sign-in.
pub async fn record_code_used(state: &AppState, mobile: &Mobile) {
    let Some(guard) = &state.config.budget.guard else {
        return;
    };
    if state.config.sms.test_numbers.contains_key(mobile) {
        return;
    }
    let event = uuid::Uuid::new_v4().simple().to_string();
    let block = mobile.block(guard.block_digits);
    if let Err(e) = state
        .codes
        .record_code_used(block, guard.min_sends.longest(), &event)
        .await
    {
        tracing::warn!(error = %e, "could not count a used code for the SMS pumping guard");
    }
}

/// Logs an alert of the store: each is raised once per window, across instances.
fn log_alert(alert: &BudgetAlert) {
    match alert {
        BudgetAlert::NearlyFull { scope, window } => tracing::warn!(
            budget = %scope,
            count = window.count,
            window_secs = window.length.as_secs(),
            "SMS budget 80 % used"
        ),
        BudgetAlert::Full { scope, window } => tracing::error!(
            budget = %scope,
            count = window.count,
            window_secs = window.length.as_secs(),
            "SMS budget exhausted: further sends are refused until the window slides"
        ),
        BudgetAlert::Paused {
            block,
            sends,
            used,
            pause,
        } => tracing::warn!(
            block = %block,
            sends,
            used,
            pause_secs = pause.as_secs(),
            "SMS pumping guard paused a number block (lift with `smsauth sms-guard lift BLOCK`)"
        ),
    }
}
