//! Applying the configured per-client limits through the code store.

use crate::codes::LimitOutcome;
use crate::error::{AppError, AppResult};
use crate::limits::{LimitedAction, RateLimit};
use crate::state::AppState;

/// The code store could not answer: the request cannot be checked, so it fails.
pub fn store_unavailable(cause: anyhow::Error) -> AppError {
    AppError::unavailable("code store", cause)
}

/// Counts one event; `RATE_LIMITED` when the subject is already at its limit.
pub async fn hit(
    state: &AppState,
    action: LimitedAction,
    subject: &str,
    limit: Option<RateLimit>,
) -> AppResult<()> {
    let Some(limit) = limit else { return Ok(()) };
    allowed(state.codes.hit(action, subject, limit).await)
}

/// `RATE_LIMITED` when the subject is already at its limit; counts nothing.
pub async fn check(
    state: &AppState,
    action: LimitedAction,
    subject: &str,
    limit: Option<RateLimit>,
) -> AppResult<()> {
    let Some(limit) = limit else { return Ok(()) };
    allowed(state.codes.check(action, subject, limit).await)
}

/// A store's answer as the request sees it.
fn allowed(outcome: Result<LimitOutcome, anyhow::Error>) -> AppResult<()> {
    match outcome.map_err(store_unavailable)? {
        LimitOutcome::Allowed => Ok(()),
        LimitOutcome::Limited { retry_after } => Err(AppError::rate_limited(retry_after)),
    }
}

/// Records a failure against a limit, ignoring whether it is now reached
/// (the next `check` will tell). A store outage here is logged, not fatal:
/// the request already failed for its own reason.
pub async fn record_failure(
    state: &AppState,
    action: LimitedAction,
    subject: &str,
    limit: Option<RateLimit>,
) {
    let Some(limit) = limit else { return };
    if let Err(e) = state.codes.hit(action, subject, limit).await {
        tracing::warn!(error = %e, action = action.key_part(), "could not record a failure");
    }
}
