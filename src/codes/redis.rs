//! The Redis code store. Every check-and-change is one Lua script, so it is
//! atomic across all instances; the time inside scripts is Redis's own
//! (`TIME`), so instances with skewed clocks still agree on every window.
//!
//! Keys (`P` is the configured prefix; `{…}` is the Cluster hash tag):
//! - `P:{+8613711112222}:code:LOGIN` — hash `h` (hex HMAC of the code), `a` (attempts
//!   left), and while a request uses it `l` (lease id) and `lu` (lease end, ms)
//! - `P:{+8613711112222}:cooldown` — exists while the resend cooldown runs
//! - `P:{+8613711112222}:sends` — sorted set, the per-mobile sliding window
//! - `P:{limit:ACTION:SUBJECT}` — sorted set, one sliding window per limit and subject

use std::time::Duration;

use async_trait::async_trait;
use redis::Script;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{
    CodeHash, CodeLease, CodeStore, IssueOutcome, IssueRequest, LimitOutcome, StoreError,
    VerifyOutcome, millis,
};
use crate::domain::{Mobile, SmsPurpose};
use crate::rate_limit::{LimitedAction, RateLimit};

/// No Redis call may hold a request longer than this.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// Constant-time string equality in Lua (Redis ships the `bit` library).
const CT_EQ: &str = r#"
local function ct_eq(a, b)
  if #a ~= #b then return false end
  local diff = 0
  for i = 1, #a do diff = bit.bor(diff, bit.bxor(string.byte(a, i), string.byte(b, i))) end
  return diff == 0
end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- Sliding window on a sorted set: returns 0 when allowed (counting the event
-- `member`), else the milliseconds until the oldest event leaves.
local function sliding(key, limit, window, member)
  local now = now_ms()
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  if redis.call('ZCARD', key) >= limit then
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    return math.max(1, tonumber(oldest[2]) + window - now)
  end
  redis.call('ZADD', key, now, member)
  redis.call('PEXPIRE', key, window)
  return 0
end
"#;

/// KEYS: code, cooldown, sends. ARGV: hash, ttl_ms, attempts, cooldown_ms,
/// cap_count (0 = off), cap_window_ms, exempt (1/0), member.
/// Returns 0 when issued, else the milliseconds to wait.
const ISSUE: &str = r#"
if ARGV[7] ~= '1' then
  local cooldown = redis.call('PTTL', KEYS[2])
  if cooldown > 0 then return cooldown end
  local cap = tonumber(ARGV[5])
  if cap > 0 then
    local wait = sliding(KEYS[3], cap, tonumber(ARGV[6]), ARGV[8])
    if wait > 0 then return wait end
  end
  if tonumber(ARGV[4]) > 0 then redis.call('SET', KEYS[2], '1', 'PX', ARGV[4]) end
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'h', ARGV[1], 'a', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 0
"#;

/// KEYS: code. ARGV: hash, lease id, lease_ms. Returns {status,
/// attempts_left}: 0 no live code, 1 accepted (now leased: fields `l`, `lu`),
/// 2 exhausted, 3 wrong. A lease that ran out unsettled means the code was spent.
const VERIFY: &str = r#"
local stored = redis.call('HGET', KEYS[1], 'h')
if not stored then return {0, 0} end
local now = now_ms()
local leased_until = tonumber(redis.call('HGET', KEYS[1], 'lu') or '0')
if leased_until > 0 and leased_until <= now then
  redis.call('DEL', KEYS[1])
  return {0, 0}
end
if ct_eq(stored, ARGV[1]) then
  if leased_until > 0 then return {0, 0} end
  redis.call('HSET', KEYS[1], 'l', ARGV[2], 'lu', now + tonumber(ARGV[3]))
  return {1, 0}
end
local left = redis.call('HINCRBY', KEYS[1], 'a', -1)
if left <= 0 then
  redis.call('DEL', KEYS[1])
  return {2, 0}
end
return {3, left}
"#;

/// KEYS: code. ARGV: lease id, spent (1/0). Ends the lease if it still holds.
const SETTLE: &str = r#"
if redis.call('HGET', KEYS[1], 'l') ~= ARGV[1] then return 0 end
local ran_out = tonumber(redis.call('HGET', KEYS[1], 'lu')) <= now_ms()
if ARGV[2] == '1' or ran_out then
  redis.call('DEL', KEYS[1])
else
  redis.call('HDEL', KEYS[1], 'l', 'lu')
end
return 1
"#;

/// KEYS: code. ARGV: hash. Deletes the code only if it is still this one.
const WITHDRAW: &str = r#"
local stored = redis.call('HGET', KEYS[1], 'h')
if stored and ct_eq(stored, ARGV[1]) then redis.call('DEL', KEYS[1]) end
return 0
"#;

/// KEYS: window. ARGV: member. Takes one counted event back.
const FORGET: &str = r#"
return redis.call('ZREM', KEYS[1], ARGV[1])
"#;

/// KEYS: window. ARGV: limit, window_ms, member.
const LIMIT: &str = r#"
return sliding(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3])
"#;

pub struct RedisCodeStore {
    connection: ConnectionManager,
    prefix: String,
    issue: Script,
    verify: Script,
    settle: Script,
    withdraw: Script,
    limit: Script,
    forget: Script,
}

impl RedisCodeStore {
    /// Connects lazily: the service starts even while Redis is down, answers
    /// `SERVICE_UNAVAILABLE` meanwhile, and reconnects by itself.
    pub fn connect(url: &str, prefix: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(CALL_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let connection = ConnectionManager::new_lazy_with_config(client, config)?;
        let script = |body: &str| Script::new(&format!("{CT_EQ}\n{body}"));
        Ok(Self {
            connection,
            prefix: prefix.to_owned(),
            issue: script(ISSUE),
            verify: script(VERIFY),
            settle: script(SETTLE),
            withdraw: script(WITHDRAW),
            limit: script(LIMIT),
            forget: Script::new(FORGET),
        })
    }

    fn mobile_key(&self, mobile: &Mobile, rest: &str) -> String {
        format!("{}:{{{}}}:{rest}", self.prefix, mobile.as_str())
    }

    fn code_key(&self, mobile: &Mobile, purpose: SmsPurpose) -> String {
        self.mobile_key(mobile, &format!("code:{}", purpose.as_str()))
    }

    fn limit_key(&self, action: LimitedAction, subject: &str) -> String {
        format!("{}:{{limit:{}:{subject}}}", self.prefix, action.key_part())
    }

    /// Runs a prepared script with the call timeout.
    async fn run<T: redis::FromRedisValue>(
        &self,
        invocation: redis::ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        let mut connection = self.connection.clone();
        let result = tokio::time::timeout(CALL_TIMEOUT, invocation.invoke_async(&mut connection))
            .await
            .map_err(|_| anyhow::anyhow!("redis did not answer within {CALL_TIMEOUT:?}"))?;
        Ok(result?)
    }

    async fn sliding(
        &self,
        action: LimitedAction,
        subject: &str,
        limit: RateLimit,
        event: &str,
    ) -> Result<LimitOutcome, StoreError> {
        let mut invocation = self.limit.prepare_invoke();
        invocation
            .key(self.limit_key(action, subject))
            .arg(limit.count)
            .arg(millis(limit.window))
            .arg(event);
        let wait_ms: u64 = self.run(invocation).await?;
        Ok(match wait_ms {
            0 => LimitOutcome::Allowed,
            ms => LimitOutcome::Limited {
                retry_after: Duration::from_millis(ms),
            },
        })
    }
}

#[async_trait]
impl CodeStore for RedisCodeStore {
    async fn issue(&self, request: IssueRequest<'_>) -> Result<IssueOutcome, StoreError> {
        let (cap_count, cap_window) = request
            .per_mobile
            .map_or((0, 1), |cap| (cap.count, millis(cap.window)));
        let mut invocation = self.issue.prepare_invoke();
        invocation
            .key(self.code_key(request.mobile, request.purpose))
            .key(self.mobile_key(request.mobile, "cooldown"))
            .key(self.mobile_key(request.mobile, "sends"))
            .arg(request.code_hash.to_hex())
            .arg(millis(request.ttl))
            .arg(request.max_attempts)
            .arg(if request.cooldown.is_zero() {
                0
            } else {
                millis(request.cooldown)
            })
            .arg(cap_count)
            .arg(cap_window)
            .arg(if request.exempt_from_mobile_limits {
                "1"
            } else {
                "0"
            })
            .arg(uuid::Uuid::new_v4().simple().to_string());
        let wait_ms: u64 = self.run(invocation).await?;
        Ok(match wait_ms {
            0 => IssueOutcome::Issued,
            ms => IssueOutcome::Refused {
                retry_after: Duration::from_millis(ms),
            },
        })
    }

    async fn withdraw(
        &self,
        mobile: &Mobile,
        purpose: SmsPurpose,
        code_hash: &CodeHash,
    ) -> Result<(), StoreError> {
        let mut invocation = self.withdraw.prepare_invoke();
        invocation
            .key(self.code_key(mobile, purpose))
            .arg(code_hash.to_hex());
        let _: i64 = self.run(invocation).await?;
        Ok(())
    }

    async fn verify(
        &self,
        mobile: &Mobile,
        purpose: SmsPurpose,
        code_hash: &CodeHash,
        lease: Duration,
    ) -> Result<VerifyOutcome, StoreError> {
        let lease_id = CodeLease::new();
        let mut invocation = self.verify.prepare_invoke();
        invocation
            .key(self.code_key(mobile, purpose))
            .arg(code_hash.to_hex())
            .arg(lease_id.as_str())
            .arg(millis(lease));
        let (status, left): (i64, i64) = self.run(invocation).await?;
        Ok(match status {
            1 => VerifyOutcome::Accepted(lease_id),
            2 => VerifyOutcome::Exhausted,
            3 => VerifyOutcome::Rejected {
                attempts_left: u32::try_from(left).ok(),
            },
            _ => VerifyOutcome::Rejected {
                attempts_left: None,
            },
        })
    }

    async fn settle(
        &self,
        mobile: &Mobile,
        purpose: SmsPurpose,
        lease: &CodeLease,
        spent: bool,
    ) -> Result<(), StoreError> {
        let mut invocation = self.settle.prepare_invoke();
        invocation
            .key(self.code_key(mobile, purpose))
            .arg(lease.as_str())
            .arg(if spent { "1" } else { "0" });
        let _: i64 = self.run(invocation).await?;
        Ok(())
    }

    async fn hit(
        &self,
        action: LimitedAction,
        subject: &str,
        limit: RateLimit,
        event: &str,
    ) -> Result<LimitOutcome, StoreError> {
        self.sliding(action, subject, limit, event).await
    }

    async fn forget(
        &self,
        action: LimitedAction,
        subject: &str,
        event: &str,
    ) -> Result<(), StoreError> {
        let mut invocation = self.forget.prepare_invoke();
        invocation.key(self.limit_key(action, subject)).arg(event);
        let _: i64 = self.run(invocation).await?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut connection = self.connection.clone();
        let pong: String = tokio::time::timeout(
            CALL_TIMEOUT,
            redis::cmd("PING").query_async(&mut connection),
        )
        .await
        .map_err(|_| anyhow::anyhow!("redis did not answer within {CALL_TIMEOUT:?}"))??;
        anyhow::ensure!(pong == "PONG", "unexpected PING answer");
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "redis"
    }
}
