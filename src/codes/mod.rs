//! The code store: one-time SMS codes, resend cooldowns and every sliding-window
//! rate limit, behind one trait with two implementations that pass one shared
//! test suite (`tests/api/code_store.rs`):
//!
//! - [`RedisCodeStore`] (`REDIS_URL`, or `REDIS_CLUSTER_NODES` for a Redis
//!   Cluster): each check-and-change is one Lua script, so limits are exact
//!   across any number of instances. Every script's keys share one Redis
//!   Cluster hash slot (`{+8613711112222}`, `{limit:send-ip:203.0.113.7}`).
//! - [`MemoryCodeStore`] (the zero-setup default): the same rules behind one
//!   mutex, for a single process.
//!
//! Codes are never stored in plain text, only as an HMAC-SHA256 keyed with a
//! server secret, and compared in constant time.

pub mod budget;
mod connection;
mod memory;
mod redis;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use hmac::{Hmac, KeyInit, Mac};
use secrecy::ExposeSecret;
use sha2::Sha256;

pub use self::budget::SmsBudgetStore;
pub use self::memory::MemoryCodeStore;
pub use self::redis::RedisCodeStore;
use crate::config::{RedisConfig, RedisTarget};
use crate::domain::{Mobile, SmsCode, SmsPurpose};
use crate::error::RateLimitReason;
use crate::rate_limit::{LimitedAction, RateLimit};

/// What a store reports when it cannot answer (unreachable, timed out).
pub type StoreError = anyhow::Error;

/// The keyed hash of one code, bound to its mobile and purpose.
#[derive(Clone, PartialEq, Eq)]
pub struct CodeHash([u8; 32]);

impl CodeHash {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for CodeHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodeHash(..)")
    }
}

/// Hashes codes with a server-side key, so a dump of the store reveals no code
/// and a 6-digit code cannot be brute-forced offline from its hash.
#[derive(Clone)]
pub struct CodeHasher {
    key: [u8; 32],
}

impl std::fmt::Debug for CodeHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodeHasher([REDACTED])")
    }
}

type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA256 of `parts`, each length-prefixed so no two inputs collide.
fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = match <HmacSha256 as KeyInit>::new_from_slice(key) {
        Ok(mac) => mac,
        // HMAC takes keys of any length; this branch cannot be reached.
        Err(_) => return [0; 32],
    };
    for part in parts {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

impl CodeHasher {
    /// Derives the code key from the server secret (domain-separated from the JWT use).
    pub fn new(server_secret: &[u8]) -> Self {
        Self {
            key: hmac(server_secret, &[b"smsauth/sms-code-key/v1"]),
        }
    }

    pub fn hash(&self, mobile: &Mobile, purpose: SmsPurpose, code: &SmsCode) -> CodeHash {
        CodeHash(hmac(
            &self.key,
            &[
                mobile.as_str().as_bytes(),
                purpose.as_str().as_bytes(),
                code.expose().as_bytes(),
            ],
        ))
    }

    /// A stable, secret-keyed digest of any string, for deriving values (such as
    /// default usernames) that must not reveal their input.
    pub fn digest(&self, label: &str, input: &str) -> [u8; 32] {
        hmac(&self.key, &[label.as_bytes(), input.as_bytes()])
    }
}

/// Everything `issue` needs to store a new code atomically.
pub struct IssueRequest<'a> {
    pub mobile: &'a Mobile,
    pub purpose: SmsPurpose,
    pub code_hash: &'a CodeHash,
    pub ttl: Duration,
    pub max_attempts: u32,
    /// Minimum gap between two codes to this mobile, across purposes (zero: none).
    pub cooldown: Duration,
    /// Codes this mobile can receive per window.
    pub per_mobile: Option<&'a RateLimit>,
    /// Test numbers skip the cooldown and the per-mobile cap.
    pub exempt_from_mobile_limits: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub enum IssueOutcome {
    /// Stored, replacing any earlier code of the same purpose; cooldown started.
    Issued,
    /// In cooldown (`Cooldown`) or over the per-mobile cap (`MobileLimit`):
    /// nothing stored.
    Refused {
        reason: RateLimitReason,
        retry_after: Duration,
    },
}

#[derive(Debug, PartialEq, Eq)]
pub enum VerifyOutcome {
    /// The right code: it is now leased to this request, which must
    /// [`CodeStore::settle`] it (spent or returned) once what it authorised
    /// is done. Meanwhile no other request can use it.
    Accepted(CodeLease),
    /// Wrong (`attempts_left` known) or no live code at all (`None`).
    Rejected { attempts_left: Option<u32> },
    /// Wrong, and that was the last attempt: the code is destroyed.
    Exhausted,
}

/// A right code held by one request while what it authorises runs. The code
/// keeps its lifetime and attempts; a lease never settled (the process died)
/// counts as spent once it runs out, so a code is never used twice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeLease(String);

impl CodeLease {
    pub fn new() -> Self {
        Self(uuid::Uuid::new_v4().simple().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for CodeLease {
    fn default() -> Self {
        Self::new()
    }
}

/// How much of the store answers (readiness, contract §3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreHealth {
    Up,
    /// Part of a Redis Cluster answers: requests needing the rest fail.
    Degraded,
    Down,
}

#[derive(Debug, PartialEq, Eq)]
pub enum LimitOutcome {
    Allowed,
    Limited { retry_after: Duration },
}

#[async_trait]
pub trait CodeStore: SmsBudgetStore + Send + Sync {
    /// Checks the cooldown and the per-mobile cap, then stores the code, all as
    /// one atomic step: of concurrent sends to one mobile, one gets through.
    async fn issue(&self, request: IssueRequest<'_>) -> Result<IssueOutcome, StoreError>;

    /// Removes the code if it is still `code_hash` (its SMS could not be sent).
    /// The cooldown and the counts stay.
    async fn withdraw(
        &self,
        mobile: &Mobile,
        purpose: SmsPurpose,
        code_hash: &CodeHash,
    ) -> Result<(), StoreError>;

    /// Checks a code and, when right, leases it to the caller for `lease`,
    /// atomically: of concurrent checks with the right code, exactly one is
    /// `Accepted`; the others see no live code while the lease runs. Wrong
    /// codes cost an attempt as always, leased or not.
    async fn verify(
        &self,
        mobile: &Mobile,
        purpose: SmsPurpose,
        code_hash: &CodeHash,
        lease: Duration,
    ) -> Result<VerifyOutcome, StoreError>;

    /// Ends a lease: `spent` removes the code (what it authorised succeeded);
    /// otherwise the code is usable again, as it was. Does nothing when the
    /// code is no longer under this lease (replaced, withdrawn, destroyed by
    /// wrong tries, or its lease ran out), so a settle never revives a code.
    async fn settle(
        &self,
        mobile: &Mobile,
        purpose: SmsPurpose,
        lease: &CodeLease,
        spent: bool,
    ) -> Result<(), StoreError>;

    /// Counts one event (named `event`, unique) for `subject` under `limit`,
    /// unless that would exceed it: check and count are one atomic step.
    async fn hit(
        &self,
        action: LimitedAction,
        subject: &str,
        limit: &RateLimit,
        event: &str,
    ) -> Result<LimitOutcome, StoreError>;

    /// Takes a counted event back (it turned out not to be a failure).
    async fn forget(
        &self,
        action: LimitedAction,
        subject: &str,
        event: &str,
    ) -> Result<(), StoreError>;

    /// Forgets the window of `action` for `subject` and for every pair
    /// `subject|…` (e.g. an account with each client IP): an operator lifting
    /// a lockout. Exact on one Redis and on a Cluster alike: the pairs of a
    /// subject live beside it and are listed there, so nothing is scanned.
    async fn clear_limits(&self, action: LimitedAction, subject: &str) -> Result<(), StoreError>;

    /// Answers when the store is reachable (readiness).
    async fn ping(&self) -> Result<(), StoreError>;

    /// Whether all, part or none of the store answers.
    async fn health(&self) -> StoreHealth {
        match self.ping().await {
            Ok(()) => StoreHealth::Up,
            Err(_) => StoreHealth::Down,
        }
    }

    /// A short name for logs and `/readyz`.
    fn kind(&self) -> &'static str;
}

/// The Redis code store the configuration names: one server or a cluster.
pub fn redis_store(config: &RedisConfig) -> anyhow::Result<Arc<dyn CodeStore>> {
    let ca_pem = config.ca_pem.as_deref();
    Ok(match &config.target {
        RedisTarget::Single(url) => Arc::new(
            RedisCodeStore::connect_with_ca(url.expose_secret(), ca_pem, &config.key_prefix)
                .context("REDIS_URL")?,
        ),
        RedisTarget::Cluster(nodes) => {
            let nodes: Vec<&str> = nodes.iter().map(|node| node.expose_secret()).collect();
            Arc::new(
                RedisCodeStore::connect_cluster(&nodes, ca_pem, &config.key_prefix)
                    .context("REDIS_CLUSTER_NODES")?,
            )
        }
    })
}

/// Joins the two parts of a paired limit subject (`ACCOUNT|IP`), so
/// [`CodeStore::clear_limits`] can find every pair of one subject. A subject
/// that is not a pair never contains it (see [`pair_subject`]).
pub const PAIR_SEPARATOR: char = '|';

/// The limit subject of `subject` together with `other` (an account with one
/// client network): cleared with `subject`. Neither part may contain
/// [`PAIR_SEPARATOR`]; callers escape what could (`login_throttle_subject`).
pub fn pair_subject(subject: &str, other: &str) -> String {
    format!("{subject}{PAIR_SEPARATOR}{other}")
}

/// The two parts of a paired subject, `None` for a plain one.
fn split_pair(subject: &str) -> Option<(&str, &str)> {
    subject.split_once(PAIR_SEPARATOR)
}

/// Milliseconds of a duration, saturating, at least 1 (Redis rejects `PX 0`).
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}
