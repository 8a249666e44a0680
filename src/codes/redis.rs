//! The Redis code store. Every check-and-change is one Lua script, so it is
//! atomic across all instances; the time inside scripts is Redis's own
//! (`TIME`), so instances with skewed clocks still agree on every window.
//! Every script touches keys of one Redis Cluster hash slot only: the keys of
//! one mobile share its tag, and a limit script has one key.
//!
//! Keys (`P` is the configured prefix; `{…}` is the Cluster hash tag):
//! - `P:{+8613711112222}:code:LOGIN` — hash `h` (hex HMAC of the code), `a` (attempts
//!   left), and while a request uses it `l` (lease id) and `lu` (lease end, ms)
//! - `P:{+8613711112222}:cooldown` — exists while the resend cooldown runs
//! - `P:{+8613711112222}:sends` — sorted set, the per-mobile sliding windows
//! - `P:{limit:ACTION:SUBJECT}` — sorted set per limit and subject; one set
//!   serves all the windows of a limit (`200/1h,2000/24h`), kept for the longest
//! - `P:{limit:ACTION:SUBJECT}|OTHER` — the same for a pair (an account with
//!   one client network), in its subject's slot, and listed in
//!   `P:{limit:ACTION:SUBJECT}:pairs` (a set), so clearing a subject finds its
//!   pairs in one place, on one node of a Cluster, without scanning

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use redis::cluster_async::ClusterConnection;
use redis::{ErrorKind, Script, ServerErrorKind};

use super::connection::{self, RedisConnection};
use super::{
    CodeHash, CodeLease, CodeStore, IssueOutcome, IssueRequest, LimitOutcome, PAIR_SEPARATOR,
    StoreError, StoreHealth, VerifyOutcome, millis, split_pair,
};
use crate::domain::{Mobile, SmsPurpose};
use crate::error::RateLimitReason;
use crate::rate_limit::{LimitedAction, RateLimit};

mod budget;

/// No Redis call may hold a request longer than this.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// Each step of a health probe waits at most this long.
const HEALTH_STEP_TIMEOUT: Duration = Duration::from_millis(400);

/// Helpers every script starts with: constant-time string equality (Redis
/// ships the `bit` library), Redis's clock, and the sliding window.
const HELPERS: &str = r#"
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
-- Limits arrive as 'COUNT:MILLIS,COUNT:MILLIS' (`RateLimit::to_script_arg`).
local function windows_of(spec)
  local windows = {}
  for count, ms in string.gmatch(spec, '(%d+):(%d+)') do
    windows[#windows + 1] = {tonumber(count), tonumber(ms)}
  end
  return windows
end
local function longest_of(windows)
  local longest = 1
  for _, w in ipairs(windows) do longest = math.max(longest, w[2]) end
  return longest
end
-- The milliseconds until one more event fits in every window of the sorted
-- set `key` (0: it fits now), the latest wait of the full windows.
local function wait_of(key, windows, now)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - longest_of(windows))
  local wait = 0
  for _, w in ipairs(windows) do
    local inside = redis.call('ZCOUNT', key, '(' .. (now - w[2]), '+inf')
    if inside >= w[1] then
      local leaving = redis.call('ZRANGEBYSCORE', key, '(' .. (now - w[2]), '+inf',
        'WITHSCORES', 'LIMIT', inside - w[1], 1)
      wait = math.max(wait, 1, tonumber(leaving[2]) + w[2] - now)
    end
  end
  return wait
end
-- Sliding windows on a sorted set: returns 0 when allowed (counting the
-- event `member`), else the milliseconds until every window has room.
local function sliding(key, spec, member)
  local now = now_ms()
  local windows = windows_of(spec)
  local wait = wait_of(key, windows, now)
  if wait > 0 then return wait end
  redis.call('ZADD', key, now, member)
  redis.call('PEXPIRE', key, longest_of(windows))
  return 0
end
"#;

/// KEYS: code, cooldown, sends. ARGV: hash, ttl_ms, attempts, cooldown_ms,
/// cap windows ('' = off), exempt (1/0), member.
/// Returns {0, 0} when issued, else {1 (cooldown) or 2 (cap), ms to wait}.
const ISSUE: &str = r#"
if ARGV[6] ~= '1' then
  local cooldown = redis.call('PTTL', KEYS[2])
  if cooldown > 0 then return {1, cooldown} end
  if ARGV[5] ~= '' then
    local wait = sliding(KEYS[3], ARGV[5], ARGV[7])
    if wait > 0 then return {2, wait} end
  end
  if tonumber(ARGV[4]) > 0 then redis.call('SET', KEYS[2], '1', 'PX', ARGV[4]) end
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'h', ARGV[1], 'a', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {0, 0}
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

/// KEYS: window, and for a pair its subject's list of pairs. ARGV: windows,
/// member. A counted pair joins the list, which lives as long as its pairs.
const LIMIT: &str = r#"
local wait = sliding(KEYS[1], ARGV[1], ARGV[2])
if wait == 0 and KEYS[2] then
  redis.call('SADD', KEYS[2], KEYS[1])
  local keep = longest_of(windows_of(ARGV[1]))
  if redis.call('PTTL', KEYS[2]) < keep then redis.call('PEXPIRE', KEYS[2], keep) end
end
return wait
"#;

/// KEYS: window, list of pairs, some of its pairs. Deletes the windows and
/// takes the pairs off the list, in one step with the counting above.
const CLEAR: &str = r#"
redis.call('DEL', KEYS[1])
for i = 3, #KEYS do
  redis.call('DEL', KEYS[i])
  redis.call('SREM', KEYS[2], KEYS[i])
end
return 0
"#;

/// Pairs cleared per script call: a script blocks its node while it runs.
const CLEAR_CHUNK: usize = 500;

/// One Lua script, run by its SHA1 (`EVALSHA`) and sent whole (`EVAL`, which
/// also caches it) on the node that lacks it. Not `SCRIPT LOAD`: on a cluster
/// that goes to every node, and fails while any node is down.
struct Lua {
    body: String,
    sha1: String,
}

impl Lua {
    fn new(body: String) -> Self {
        let sha1 = Script::new(&body).get_hash().to_owned();
        Self { body, sha1 }
    }

    fn with_helpers(body: &str) -> Self {
        Self::new(format!("{HELPERS}\n{body}"))
    }
}

/// The code store on one Redis server ([`ConnectionManager`]) or a Redis
/// Cluster ([`ClusterConnection`]): the same scripts and keys on both.
pub struct RedisCodeStore<C = ConnectionManager> {
    connection: C,
    prefix: String,
    issue: Lua,
    verify: Lua,
    settle: Lua,
    withdraw: Lua,
    limit: Lua,
    forget: Lua,
    clear: Lua,
}

impl RedisCodeStore<ConnectionManager> {
    /// Connects lazily to one server (`redis://` or `rediss://`): the service
    /// starts even while Redis is down, answers `SERVICE_UNAVAILABLE`
    /// meanwhile, and reconnects by itself.
    pub fn connect(url: &str, prefix: &str) -> Result<Self, StoreError> {
        Self::connect_with_ca(url, None, prefix)
    }

    /// The same, trusting the CAs in `ca_pem` besides the system's roots.
    pub fn connect_with_ca(
        url: &str,
        ca_pem: Option<&[u8]>,
        prefix: &str,
    ) -> Result<Self, StoreError> {
        Ok(Self::with_connection(
            connection::single(url, ca_pem, CALL_TIMEOUT)?,
            prefix,
        ))
    }
}

impl RedisCodeStore<ClusterConnection> {
    /// Connects lazily to a Redis Cluster through its seed nodes; the client
    /// follows slot moves and failovers by itself. Must run inside Tokio.
    pub fn connect_cluster(
        nodes: &[&str],
        ca_pem: Option<&[u8]>,
        prefix: &str,
    ) -> Result<Self, StoreError> {
        Ok(Self::with_connection(
            connection::cluster(nodes, ca_pem, CALL_TIMEOUT)?,
            prefix,
        ))
    }
}

impl<C: RedisConnection> RedisCodeStore<C> {
    fn with_connection(connection: C, prefix: &str) -> Self {
        Self {
            connection,
            prefix: prefix.to_owned(),
            issue: Lua::with_helpers(ISSUE),
            verify: Lua::with_helpers(VERIFY),
            settle: Lua::with_helpers(SETTLE),
            withdraw: Lua::with_helpers(WITHDRAW),
            limit: Lua::with_helpers(LIMIT),
            forget: Lua::new(FORGET.to_owned()),
            clear: Lua::new(CLEAR.to_owned()),
        }
    }

    fn mobile_key(&self, mobile: &Mobile, rest: &str) -> String {
        format!("{}:{{{}}}:{rest}", self.prefix, mobile.as_str())
    }

    fn code_key(&self, mobile: &Mobile, purpose: SmsPurpose) -> String {
        self.mobile_key(mobile, &format!("code:{}", purpose.as_str()))
    }

    /// One key per limit and subject, whole in its hash tag; a pair's key
    /// has the tag of its first subject, so every limit script (and clearing
    /// a subject with its pairs) stays in one slot.
    fn limit_key(&self, action: LimitedAction, subject: &str) -> String {
        match split_pair(subject) {
            Some((first, other)) => {
                format!("{}{PAIR_SEPARATOR}{other}", self.limit_key(action, first))
            }
            None => format!("{}:{{limit:{}:{subject}}}", self.prefix, action.key_part()),
        }
    }

    /// The set listing the pairs of `subject` (the keys of their windows).
    fn pairs_key(&self, action: LimitedAction, subject: &str) -> String {
        format!("{}:pairs", self.limit_key(action, subject))
    }

    /// Runs one command with the call timeout.
    async fn command<T: redis::FromRedisValue>(
        &self,
        command: &mut redis::Cmd,
    ) -> Result<T, StoreError> {
        let mut connection = self.connection.clone();
        tokio::time::timeout(CALL_TIMEOUT, command.query_async(&mut connection))
            .await
            .map_err(|_| anyhow::anyhow!("redis did not answer within {CALL_TIMEOUT:?}"))?
            .map_err(StoreError::from)
    }

    /// Runs `lua` on the node owning `keys` (one slot), within the call timeout.
    async fn run<T: redis::FromRedisValue>(
        &self,
        lua: &Lua,
        keys: &[String],
        args: &[String],
    ) -> Result<T, StoreError> {
        let call = |command: &str, script: &str| {
            let mut cmd = redis::cmd(command);
            cmd.arg(script).arg(keys.len()).arg(keys).arg(args);
            cmd
        };
        let mut connection = self.connection.clone();
        let attempt = async {
            match call("EVALSHA", &lua.sha1)
                .query_async(&mut connection)
                .await
            {
                Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                    call("EVAL", &lua.body).query_async(&mut connection).await
                }
                other => other,
            }
        };
        let result = tokio::time::timeout(CALL_TIMEOUT, attempt)
            .await
            .map_err(|_| anyhow::anyhow!("redis did not answer within {CALL_TIMEOUT:?}"))?;
        Ok(result?)
    }

    async fn sliding(
        &self,
        action: LimitedAction,
        subject: &str,
        limit: &RateLimit,
        event: &str,
    ) -> Result<LimitOutcome, StoreError> {
        let mut keys = vec![self.limit_key(action, subject)];
        if let Some((first, _)) = split_pair(subject) {
            keys.push(self.pairs_key(action, first));
        }
        let wait_ms: u64 = self
            .run(
                &self.limit,
                &keys,
                &[limit.to_script_arg(), event.to_owned()],
            )
            .await?;
        Ok(match wait_ms {
            0 => LimitOutcome::Allowed,
            ms => LimitOutcome::Limited {
                retry_after: Duration::from_millis(ms),
            },
        })
    }
}

#[async_trait]
impl<C: RedisConnection> CodeStore for RedisCodeStore<C> {
    #[tracing::instrument(level = "debug", name = "code_store.issue", skip_all, fields(mobile = %request.mobile.masked(), purpose = request.purpose.as_str()))]
    async fn issue(&self, request: IssueRequest<'_>) -> Result<IssueOutcome, StoreError> {
        let cap = request
            .per_mobile
            .map(RateLimit::to_script_arg)
            .unwrap_or_default();
        let cooldown_ms = if request.cooldown.is_zero() {
            0
        } else {
            millis(request.cooldown)
        };
        let exempt = if request.exempt_from_mobile_limits {
            "1"
        } else {
            "0"
        };
        let keys = [
            self.code_key(request.mobile, request.purpose),
            self.mobile_key(request.mobile, "cooldown"),
            self.mobile_key(request.mobile, "sends"),
        ];
        let args = [
            request.code_hash.to_hex(),
            millis(request.ttl).to_string(),
            request.max_attempts.to_string(),
            cooldown_ms.to_string(),
            cap,
            exempt.to_owned(),
            uuid::Uuid::new_v4().simple().to_string(),
        ];
        let (refusal, wait_ms): (u8, u64) = self.run(&self.issue, &keys, &args).await?;
        Ok(match refusal {
            0 => IssueOutcome::Issued,
            1 => IssueOutcome::Refused {
                reason: RateLimitReason::Cooldown,
                retry_after: Duration::from_millis(wait_ms),
            },
            _ => IssueOutcome::Refused {
                reason: RateLimitReason::MobileLimit,
                retry_after: Duration::from_millis(wait_ms),
            },
        })
    }

    #[tracing::instrument(level = "debug", name = "code_store.withdraw", skip_all, fields(mobile = %mobile.masked(), purpose = purpose.as_str()))]
    async fn withdraw(
        &self,
        mobile: &Mobile,
        purpose: SmsPurpose,
        code_hash: &CodeHash,
    ) -> Result<(), StoreError> {
        let _: i64 = self
            .run(
                &self.withdraw,
                &[self.code_key(mobile, purpose)],
                &[code_hash.to_hex()],
            )
            .await?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", name = "code_store.verify", skip_all, fields(mobile = %mobile.masked(), purpose = purpose.as_str()))]
    async fn verify(
        &self,
        mobile: &Mobile,
        purpose: SmsPurpose,
        code_hash: &CodeHash,
        lease: Duration,
    ) -> Result<VerifyOutcome, StoreError> {
        let lease_id = CodeLease::new();
        let (status, left): (i64, i64) = self
            .run(
                &self.verify,
                &[self.code_key(mobile, purpose)],
                &[
                    code_hash.to_hex(),
                    lease_id.as_str().to_owned(),
                    millis(lease).to_string(),
                ],
            )
            .await?;
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

    #[tracing::instrument(level = "debug", name = "code_store.settle", skip_all, fields(mobile = %mobile.masked(), purpose = purpose.as_str()))]
    async fn settle(
        &self,
        mobile: &Mobile,
        purpose: SmsPurpose,
        lease: &CodeLease,
        spent: bool,
    ) -> Result<(), StoreError> {
        let _: i64 = self
            .run(
                &self.settle,
                &[self.code_key(mobile, purpose)],
                &[
                    lease.as_str().to_owned(),
                    if spent { "1" } else { "0" }.to_owned(),
                ],
            )
            .await?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", name = "code_store.hit", skip_all, fields(limit = action.key_part()))]
    async fn hit(
        &self,
        action: LimitedAction,
        subject: &str,
        limit: &RateLimit,
        event: &str,
    ) -> Result<LimitOutcome, StoreError> {
        self.sliding(action, subject, limit, event).await
    }

    #[tracing::instrument(level = "debug", name = "code_store.forget", skip_all, fields(limit = action.key_part()))]
    async fn forget(
        &self,
        action: LimitedAction,
        subject: &str,
        event: &str,
    ) -> Result<(), StoreError> {
        let _: i64 = self
            .run(
                &self.forget,
                &[self.limit_key(action, subject)],
                &[event.to_owned()],
            )
            .await?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", name = "code_store.clear_limits", skip_all, fields(limit = action.key_part()))]
    async fn clear_limits(&self, action: LimitedAction, subject: &str) -> Result<(), StoreError> {
        let exact = self.limit_key(action, subject);
        let list = self.pairs_key(action, subject);
        let pairs: Vec<String> = self.command(redis::cmd("SMEMBERS").arg(&list)).await?;
        // The window goes with the first chunk, also when there are no pairs.
        let mut rest = pairs.as_slice();
        loop {
            let (chunk, next) = rest.split_at(rest.len().min(CLEAR_CHUNK));
            let keys: Vec<String> = [exact.clone(), list.clone()]
                .into_iter()
                .chain(chunk.iter().cloned())
                .collect();
            let _: i64 = self.run(&self.clear, &keys, &[]).await?;
            if next.is_empty() {
                return Ok(());
            }
            rest = next;
        }
    }

    #[tracing::instrument(level = "debug", name = "code_store.ping", skip_all)]
    async fn ping(&self) -> Result<(), StoreError> {
        match self.health().await {
            StoreHealth::Up => Ok(()),
            StoreHealth::Degraded => Err(anyhow::anyhow!("some cluster slots do not answer")),
            StoreHealth::Down => Err(anyhow::anyhow!("redis does not answer")),
        }
    }

    async fn health(&self) -> StoreHealth {
        // Short steps, so a hung node reads as degraded within readiness's second.
        let probe = self.connection.clone().health(HEALTH_STEP_TIMEOUT);
        tokio::time::timeout(2 * HEALTH_STEP_TIMEOUT, probe)
            .await
            .unwrap_or(StoreHealth::Down)
    }

    fn kind(&self) -> &'static str {
        C::KIND
    }
}
