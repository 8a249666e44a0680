//! The in-process code store: the same rules as Redis behind one mutex. One
//! process only — with several instances, each would keep its own limits.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use subtle::ConstantTimeEq;

use super::{
    CodeHash, CodeLease, CodeStore, IssueOutcome, IssueRequest, LimitOutcome, PAIR_SEPARATOR,
    StoreError, VerifyOutcome,
};
use crate::domain::{Mobile, SmsPurpose};
use crate::error::RateLimitReason;
use crate::rate_limit::{LimitedAction, RateLimit};

mod budget;

#[derive(Default)]
pub struct MemoryCodeStore {
    state: Mutex<State>,
    /// The SMS budget and the pumping guard (`budget`).
    budget: Mutex<budget::BudgetState>,
}

#[derive(Default)]
struct State {
    codes: HashMap<(String, SmsPurpose), StoredCode>,
    cooldowns: HashMap<String, Instant>,
    /// Sliding logs: the instants of the events still inside their window.
    logs: HashMap<String, (Duration, VecDeque<(Instant, String)>)>,
    operations: u64,
}

struct StoredCode {
    hash: CodeHash,
    attempts_left: u32,
    expires_at: Instant,
    /// While a request uses the code: its lease, and when the lease ends.
    lease: Option<(CodeLease, Instant)>,
}

impl MemoryCodeStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut State, Instant) -> T) -> Result<T, StoreError> {
        let mut state = self
            .state
            .lock()
            .map_err(|_| anyhow::anyhow!("the in-memory code store lock is poisoned"))?;
        let now = Instant::now();
        state.operations += 1;
        // Now and then, drop what has expired so memory stays bounded.
        if state.operations % 1024 == 0 {
            state.sweep(now);
        }
        Ok(f(&mut state, now))
    }
}

impl State {
    fn sweep(&mut self, now: Instant) {
        self.codes.retain(|_, code| code.expires_at > now);
        self.cooldowns.retain(|_, until| *until > now);
        self.logs.retain(|_, (window, log)| {
            prune(log, *window, now);
            !log.is_empty()
        });
    }

    /// Sliding windows: `Allowed` (and `event` counted) while every window of
    /// `limit` has room for one more event.
    fn sliding(
        &mut self,
        key: String,
        limit: &RateLimit,
        now: Instant,
        event: &str,
    ) -> LimitOutcome {
        let longest = limit.longest();
        let (kept_for, log) = self
            .logs
            .entry(key)
            .or_insert_with(|| (longest, VecDeque::new()));
        *kept_for = longest;
        prune(log, longest, now);
        let ages: Vec<Duration> = log.iter().map(|(at, _)| now.duration_since(*at)).collect();
        if let Some(retry_after) = limit.wait_given_ages(&ages) {
            return LimitOutcome::Limited { retry_after };
        }
        log.push_back((now, event.to_owned()));
        LimitOutcome::Allowed
    }
}

fn prune(log: &mut VecDeque<(Instant, String)>, window: Duration, now: Instant) {
    while log
        .front()
        .is_some_and(|(at, _)| now.duration_since(*at) >= window)
    {
        log.pop_front();
    }
}

fn limit_key(action: LimitedAction, subject: &str) -> String {
    format!("limit:{}:{subject}", action.key_part())
}

#[async_trait]
impl CodeStore for MemoryCodeStore {
    async fn issue(&self, request: IssueRequest<'_>) -> Result<IssueOutcome, StoreError> {
        self.with_state(|state, now| {
            let mobile = request.mobile.as_str().to_owned();
            if !request.exempt_from_mobile_limits {
                if let Some(until) = state.cooldowns.get(&mobile)
                    && *until > now
                {
                    return IssueOutcome::Refused {
                        reason: RateLimitReason::Cooldown,
                        retry_after: until.duration_since(now),
                    };
                }
                if let Some(cap) = request.per_mobile
                    && let LimitOutcome::Limited { retry_after } =
                        state.sliding(format!("sends:{mobile}"), cap, now, "")
                {
                    return IssueOutcome::Refused {
                        reason: RateLimitReason::MobileLimit,
                        retry_after,
                    };
                }
                if !request.cooldown.is_zero() {
                    state
                        .cooldowns
                        .insert(mobile.clone(), now + request.cooldown);
                }
            }
            state.codes.insert(
                (mobile, request.purpose),
                StoredCode {
                    hash: request.code_hash.clone(),
                    attempts_left: request.max_attempts,
                    lease: None,
                    expires_at: now + request.ttl,
                },
            );
            IssueOutcome::Issued
        })
    }

    async fn withdraw(
        &self,
        mobile: &Mobile,
        purpose: SmsPurpose,
        code_hash: &CodeHash,
    ) -> Result<(), StoreError> {
        self.with_state(|state, _| {
            let key = (mobile.as_str().to_owned(), purpose);
            if state
                .codes
                .get(&key)
                .is_some_and(|code| &code.hash == code_hash)
            {
                state.codes.remove(&key);
            }
        })
    }

    async fn verify(
        &self,
        mobile: &Mobile,
        purpose: SmsPurpose,
        code_hash: &CodeHash,
        lease: Duration,
    ) -> Result<VerifyOutcome, StoreError> {
        const NO_LIVE_CODE: VerifyOutcome = VerifyOutcome::Rejected {
            attempts_left: None,
        };
        self.with_state(|state, now| {
            let key = (mobile.as_str().to_owned(), purpose);
            let Some(code) = state.codes.get_mut(&key) else {
                return NO_LIVE_CODE;
            };
            // Expired, or leased by a request that never settled: spent.
            let lease_ran_out = code.lease.as_ref().is_some_and(|(_, until)| *until <= now);
            if code.expires_at <= now || lease_ran_out {
                state.codes.remove(&key);
                return NO_LIVE_CODE;
            }
            if bool::from(code.hash.as_bytes().ct_eq(code_hash.as_bytes())) {
                if code.lease.is_some() {
                    return NO_LIVE_CODE;
                }
                let granted = CodeLease::new();
                code.lease = Some((granted.clone(), now + lease));
                return VerifyOutcome::Accepted(granted);
            }
            code.attempts_left = code.attempts_left.saturating_sub(1);
            if code.attempts_left == 0 {
                state.codes.remove(&key);
                return VerifyOutcome::Exhausted;
            }
            VerifyOutcome::Rejected {
                attempts_left: Some(code.attempts_left),
            }
        })
    }

    async fn settle(
        &self,
        mobile: &Mobile,
        purpose: SmsPurpose,
        lease: &CodeLease,
        spent: bool,
    ) -> Result<(), StoreError> {
        self.with_state(|state, now| {
            let key = (mobile.as_str().to_owned(), purpose);
            let Some(code) = state.codes.get_mut(&key) else {
                return;
            };
            let Some((held, until)) = &code.lease else {
                return;
            };
            if held != lease {
                return;
            }
            if spent || *until <= now {
                state.codes.remove(&key);
            } else {
                code.lease = None;
            }
        })
    }

    async fn hit(
        &self,
        action: LimitedAction,
        subject: &str,
        limit: &RateLimit,
        event: &str,
    ) -> Result<LimitOutcome, StoreError> {
        self.with_state(|state, now| state.sliding(limit_key(action, subject), limit, now, event))
    }

    async fn forget(
        &self,
        action: LimitedAction,
        subject: &str,
        event: &str,
    ) -> Result<(), StoreError> {
        self.with_state(|state, _| {
            if let Some((_, log)) = state.logs.get_mut(&limit_key(action, subject)) {
                log.retain(|(_, id)| id != event);
            }
        })
    }

    async fn clear_limits(&self, action: LimitedAction, subject: &str) -> Result<(), StoreError> {
        let exact = limit_key(action, subject);
        let pairs = format!("{exact}{PAIR_SEPARATOR}");
        self.with_state(|state, _| {
            state
                .logs
                .retain(|key, _| *key != exact && !key.starts_with(&pairs));
        })
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.with_state(|_, _| ())
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}
