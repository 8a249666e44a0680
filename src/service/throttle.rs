//! Applying the configured per-client limits through the code store.

use crate::codes::LimitOutcome;
use crate::error::{AppError, AppResult};
use crate::rate_limit::{LimitedAction, RateLimit};
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
    limit: Option<&RateLimit>,
) -> AppResult<()> {
    let Some(limit) = limit else { return Ok(()) };
    let event = uuid::Uuid::new_v4().simple().to_string();
    allowed(
        action,
        state.codes.hit(action, subject, limit, &event).await,
    )
}

/// A store's answer as the request sees it.
fn allowed(action: LimitedAction, outcome: Result<LimitOutcome, anyhow::Error>) -> AppResult<()> {
    match outcome.map_err(store_unavailable)? {
        LimitOutcome::Allowed => Ok(()),
        LimitOutcome::Limited { retry_after } => {
            Err(AppError::rate_limited(action.reason(), retry_after))
        }
    }
}

/// One attempt counted up front against several failure limits, and taken
/// back with [`Reservation::release`] when it turns out not to have failed.
/// Counting first is what makes the limits exact under parallel requests: a
/// check now and a count later would let every request of a burst through.
pub struct Reservation<'a> {
    state: &'a AppState,
    event: String,
    counted: Vec<(LimitedAction, String)>,
}

/// Counts the attempt under each `(action, subject, limit)`; `RATE_LIMITED`
/// (with nothing left counted) when any of them is already full.
pub async fn reserve<'a>(
    state: &'a AppState,
    limits: &[(LimitedAction, String, Option<RateLimit>)],
) -> AppResult<Reservation<'a>> {
    let mut reservation = Reservation {
        state,
        event: uuid::Uuid::new_v4().simple().to_string(),
        counted: Vec::new(),
    };
    for (action, subject, limit) in limits {
        let Some(limit) = limit else { continue };
        let outcome = state
            .codes
            .hit(*action, subject, limit, &reservation.event)
            .await;
        match allowed(*action, outcome) {
            Ok(()) => reservation.counted.push((*action, subject.clone())),
            Err(error) => {
                reservation.release().await;
                return Err(error);
            }
        }
    }
    Ok(reservation)
}

impl Reservation<'_> {
    /// Takes the attempt back. A store outage here is logged, not fatal: the
    /// request has its answer, and the count expires with its window.
    pub async fn release(self) {
        for (action, subject) in &self.counted {
            if let Err(e) = self.state.codes.forget(*action, subject, &self.event).await {
                tracing::warn!(error = %e, action = action.key_part(), "could not take an attempt back");
            }
        }
    }
}
