//! The SMS budget and the pumping guard, as the store keeps them (contract
//! §3.4): one atomic step per send decides the global budget, the region cap
//! and the guard of the number's block together, so they are exact across
//! instances (Redis) and cost one store call whatever the traffic.
//!
//! The rules, in the order they are applied to a send:
//! 1. the block is paused → refused (`SMS_GUARD`);
//! 2. in some guard window the block has had at least `COUNT` sends and fewer
//!    than the minimum share of them were used → the block is paused now (its
//!    counts cleared, so it is judged afresh when the pause ends), and this
//!    send refused (`SMS_GUARD`);
//! 3. the global budget, then the region's cap, is full in some window →
//!    refused (`GLOBAL_LIMIT`, `REGION_LIMIT`), nothing counted;
//! 4. otherwise the send is counted everywhere, and each window that reaches
//!    80 % or 100 % raises an alert, at most once per window length.

use std::time::Duration;

use async_trait::async_trait;

use super::StoreError;
use crate::config::RegionLimits;
use crate::error::RateLimitReason;
use crate::rate_limit::{RateLimit, Window};

/// One send, asking the budget and the guard.
pub struct BudgetRequest<'a> {
    /// Unique per send, so the send can be taken back ([`SmsBudgetStore::refund_send`]).
    pub event: &'a str,
    pub global: Option<&'a RateLimit>,
    /// The region the number is counted under (`config::region_key`).
    pub region: &'a str,
    pub region_limit: Option<&'a RateLimit>,
    /// `None` when the guard is off.
    pub guard: Option<GuardRequest<'a>>,
}

pub struct GuardRequest<'a> {
    /// The number's block (`Mobile::block`).
    pub block: &'a str,
    pub min_sends: &'a RateLimit,
    pub min_verified_percent: u32,
    pub pause: Duration,
}

/// What the store decided about one send.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct BudgetDecision {
    /// `None`: allowed and counted. Otherwise why not, and for how long.
    pub refused: Option<(RateLimitReason, Duration)>,
    /// What happened for the first time in its window, to be logged once.
    pub alerts: Vec<BudgetAlert>,
}

/// What is being counted: the global budget or one region's cap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BudgetScope {
    Global,
    Region(String),
}

impl std::fmt::Display for BudgetScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Global => f.write_str("global"),
            Self::Region(region) => write!(f, "region {region}"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BudgetAlert {
    /// A window of a budget reached 80 % of its count.
    NearlyFull { scope: BudgetScope, window: Window },
    /// A window of a budget is full: further sends are refused until it slides.
    Full { scope: BudgetScope, window: Window },
    /// The guard paused a block (it had `sends` codes in a window, `used` of them used).
    Paused {
        block: String,
        sends: u64,
        used: u64,
        pause: Duration,
    },
}

/// What `smsauth sms-guard status` shows.
#[derive(Debug, Default)]
pub struct GuardStatus {
    pub windows: Vec<WindowUse>,
    pub paused: Vec<PausedBlock>,
}

#[derive(Debug)]
pub struct WindowUse {
    pub scope: BudgetScope,
    pub window: Window,
    pub used: u64,
}

#[derive(Debug, PartialEq, Eq)]
pub struct PausedBlock {
    pub block: String,
    pub left: Duration,
}

#[async_trait]
pub trait SmsBudgetStore: Send + Sync {
    /// Applies the rules above to one send, atomically.
    async fn spend_send(&self, request: BudgetRequest<'_>) -> Result<BudgetDecision, StoreError>;

    /// Takes a counted send back (the code was then refused for its mobile,
    /// so no SMS went out).
    async fn refund_send(&self, request: &BudgetRequest<'_>) -> Result<(), StoreError>;

    /// Counts one successfully used code of `block`, kept for `window` (the
    /// guard's longest).
    async fn record_code_used(
        &self,
        block: &str,
        window: Duration,
        event: &str,
    ) -> Result<(), StoreError>;

    /// Budget use per window, and the paused blocks with the time left.
    async fn budget_status(
        &self,
        global: Option<&RateLimit>,
        regions: &RegionLimits,
    ) -> Result<GuardStatus, StoreError>;

    /// Ends the pause of `block` and clears its counts, so it is judged
    /// afresh. `true` when it was paused.
    async fn lift_pause(&self, block: &str) -> Result<bool, StoreError>;
}

/// Whether a block with `sends` codes sent and `used` of them used in a
/// window of `count` is to be paused: the one statement of the guard's rule
/// (the Redis script states the same in Lua).
pub fn guard_pauses(sends: u64, used: u64, count: u32, min_verified_percent: u32) -> bool {
    sends >= u64::from(count) && used * 100 < u64::from(min_verified_percent) * sends
}

/// Whether `used` of `count` is at least 80 %.
pub fn nearly_full(used: u64, count: u32) -> bool {
    used * 5 >= u64::from(count) * 4
}
