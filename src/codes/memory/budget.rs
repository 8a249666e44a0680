//! The SMS budget and the pumping guard in process memory: the rules of
//! `codes::budget`, behind one mutex.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::MemoryCodeStore;
use crate::codes::StoreError;
use crate::codes::budget::{
    BudgetAlert, BudgetDecision, BudgetRequest, BudgetScope, GuardStatus, PausedBlock,
    SmsBudgetStore, WindowUse, guard_pauses, nearly_full,
};
use crate::config::RegionLimits;
use crate::error::RateLimitReason;
use crate::rate_limit::RateLimit;

type Log = VecDeque<(Instant, String)>;

#[derive(Default)]
pub(super) struct BudgetState {
    global: Log,
    regions: HashMap<String, Log>,
    block_sends: HashMap<String, Log>,
    block_uses: HashMap<String, Log>,
    /// Paused blocks and when their pause ends.
    paused: HashMap<String, Instant>,
    /// Alerts already raised, and until when they stay quiet.
    alerted: HashMap<String, Instant>,
    operations: u64,
}

/// Drops the events older than `keep`.
fn prune(log: &mut Log, keep: Duration, now: Instant) {
    while log
        .front()
        .is_some_and(|(at, _)| now.duration_since(*at) >= keep)
    {
        log.pop_front();
    }
}

fn in_window(log: &Log, window: Duration, now: Instant) -> u64 {
    log.iter()
        .filter(|(at, _)| now.duration_since(*at) < window)
        .count() as u64
}

fn ages(log: &Log, now: Instant) -> Vec<Duration> {
    log.iter().map(|(at, _)| now.duration_since(*at)).collect()
}

impl BudgetState {
    fn sweep(&mut self, now: Instant) {
        // A memory bound, not a rule: every window prunes its own log exactly,
        // and no window is longer than this in practice.
        let month = Duration::from_secs(86_400 * 31);
        for logs in [
            &mut self.regions,
            &mut self.block_sends,
            &mut self.block_uses,
        ] {
            logs.retain(|_, log| {
                prune(log, month, now);
                !log.is_empty()
            });
        }
        self.paused.retain(|_, until| *until > now);
        self.alerted.retain(|_, until| *until > now);
    }

    fn alert_once(&mut self, name: String, window: Duration, now: Instant) -> bool {
        if self.alerted.get(&name).is_some_and(|until| *until > now) {
            return false;
        }
        self.alerted.insert(name, now + window);
        true
    }

    fn spend(&mut self, request: &BudgetRequest<'_>, now: Instant) -> BudgetDecision {
        if let Some(guard) = &request.guard {
            if let Some(until) = self.paused.get(guard.block)
                && *until > now
            {
                return refused(RateLimitReason::SmsGuard, until.duration_since(now));
            }
            let longest = guard.min_sends.longest();
            let sends = self.block_sends.entry(guard.block.to_owned()).or_default();
            prune(sends, longest, now);
            let uses = self.block_uses.entry(guard.block.to_owned()).or_default();
            prune(uses, longest, now);
            for window in guard.min_sends.windows() {
                let sent = in_window(&self.block_sends[guard.block], window.length, now);
                let used = in_window(&self.block_uses[guard.block], window.length, now);
                if guard_pauses(sent, used, window.count, guard.min_verified_percent) {
                    // Paused with its counts cleared: judged afresh when the pause ends.
                    self.paused
                        .insert(guard.block.to_owned(), now + guard.pause);
                    self.block_sends.remove(guard.block);
                    self.block_uses.remove(guard.block);
                    return BudgetDecision {
                        refused: Some((RateLimitReason::SmsGuard, guard.pause)),
                        alerts: vec![BudgetAlert::Paused {
                            block: guard.block.to_owned(),
                            sends: sent,
                            used,
                            pause: guard.pause,
                        }],
                    };
                }
            }
        }

        let mut scopes: Vec<(BudgetScope, &RateLimit, RateLimitReason)> = Vec::new();
        if let Some(limit) = request.global {
            scopes.push((BudgetScope::Global, limit, RateLimitReason::GlobalLimit));
        }
        if let Some(limit) = request.region_limit {
            scopes.push((
                BudgetScope::Region(request.region.to_owned()),
                limit,
                RateLimitReason::RegionLimit,
            ));
        }
        for (scope, limit, reason) in &scopes {
            let log = self.log_of(scope);
            prune(log, limit.longest(), now);
            if let Some(wait) = limit.wait_given_ages(&ages(log, now)) {
                return refused(*reason, wait);
            }
        }

        let mut alerts = Vec::new();
        for (scope, limit, _) in scopes {
            let log = self.log_of(&scope);
            log.push_back((now, request.event.to_owned()));
            let counts: Vec<u64> = limit
                .windows()
                .iter()
                .map(|w| in_window(log, w.length, now))
                .collect();
            for (window, used) in limit.windows().iter().zip(counts) {
                let name = format!("{scope}|{}", window.length.as_millis());
                if used >= u64::from(window.count) {
                    if self.alert_once(format!("full|{name}"), window.length, now) {
                        alerts.push(BudgetAlert::Full {
                            scope: scope.clone(),
                            window: *window,
                        });
                    }
                } else if nearly_full(used, window.count)
                    && self.alert_once(format!("nearly|{name}"), window.length, now)
                {
                    alerts.push(BudgetAlert::NearlyFull {
                        scope: scope.clone(),
                        window: *window,
                    });
                }
            }
        }
        if let Some(guard) = &request.guard {
            self.block_sends
                .entry(guard.block.to_owned())
                .or_default()
                .push_back((now, request.event.to_owned()));
        }
        BudgetDecision {
            refused: None,
            alerts,
        }
    }

    fn log_of(&mut self, scope: &BudgetScope) -> &mut Log {
        match scope {
            BudgetScope::Global => &mut self.global,
            BudgetScope::Region(region) => self.regions.entry(region.clone()).or_default(),
        }
    }
}

fn refused(reason: RateLimitReason, wait: Duration) -> BudgetDecision {
    BudgetDecision {
        refused: Some((reason, wait.max(Duration::from_millis(1)))),
        alerts: Vec::new(),
    }
}

impl MemoryCodeStore {
    fn with_budget<T>(
        &self,
        f: impl FnOnce(&mut BudgetState, Instant) -> T,
    ) -> Result<T, StoreError> {
        let mut state = self
            .budget
            .lock()
            .map_err(|_| anyhow::anyhow!("the in-memory budget lock is poisoned"))?;
        let now = Instant::now();
        state.operations += 1;
        if state.operations % 1024 == 0 {
            state.sweep(now);
        }
        Ok(f(&mut state, now))
    }
}

#[async_trait]
impl SmsBudgetStore for MemoryCodeStore {
    async fn spend_send(&self, request: BudgetRequest<'_>) -> Result<BudgetDecision, StoreError> {
        self.with_budget(|state, now| state.spend(&request, now))
    }

    async fn refund_send(&self, request: &BudgetRequest<'_>) -> Result<(), StoreError> {
        self.with_budget(|state, _| {
            let forget = |log: &mut Log| log.retain(|(_, event)| event != request.event);
            forget(&mut state.global);
            if let Some(log) = state.regions.get_mut(request.region) {
                forget(log);
            }
            if let Some(guard) = &request.guard
                && let Some(log) = state.block_sends.get_mut(guard.block)
            {
                forget(log);
            }
        })
    }

    async fn record_code_used(
        &self,
        block: &str,
        window: Duration,
        event: &str,
    ) -> Result<(), StoreError> {
        self.with_budget(|state, now| {
            let log = state.block_uses.entry(block.to_owned()).or_default();
            prune(log, window, now);
            log.push_back((now, event.to_owned()));
        })
    }

    async fn budget_status(
        &self,
        global: Option<&RateLimit>,
        regions: &RegionLimits,
    ) -> Result<GuardStatus, StoreError> {
        self.with_budget(|state, now| {
            let mut status = GuardStatus::default();
            let mut scopes: Vec<(BudgetScope, &Log, &RateLimit)> = Vec::new();
            if let Some(limit) = global {
                scopes.push((BudgetScope::Global, &state.global, limit));
            }
            let mut seen: Vec<&String> = state.regions.keys().collect();
            seen.sort();
            for region in seen {
                if let Some(limit) = regions.for_region(region) {
                    scopes.push((
                        BudgetScope::Region(region.clone()),
                        &state.regions[region],
                        limit,
                    ));
                }
            }
            for (scope, log, limit) in scopes {
                for window in limit.windows() {
                    status.windows.push(WindowUse {
                        scope: scope.clone(),
                        window: *window,
                        used: in_window(log, window.length, now),
                    });
                }
            }
            let mut paused: Vec<PausedBlock> = state
                .paused
                .iter()
                .filter(|(_, until)| **until > now)
                .map(|(block, until)| PausedBlock {
                    block: block.clone(),
                    left: until.duration_since(now),
                })
                .collect();
            paused.sort_by(|a, b| a.block.cmp(&b.block));
            status.paused = paused;
            status
        })
    }

    async fn lift_pause(&self, block: &str) -> Result<bool, StoreError> {
        self.with_budget(|state, now| {
            let was_paused = state.paused.remove(block).is_some_and(|until| until > now);
            state.block_sends.remove(block);
            state.block_uses.remove(block);
            was_paused
        })
    }
}
