//! The SMS budget and the pumping guard on Redis: the rules of
//! `codes::budget` as one Lua script per send.
//!
//! Keys (`P` is the configured prefix). They all share the hash tag
//! `{sms-budget}` on purpose: the global budget, the region caps and the
//! guard must be decided together, atomically, so on a Redis Cluster they live
//! in one slot (one node takes every send's budget call; a send is rare next
//! to what one Redis node serves):
//! - `P:{sms-budget}:global` — sorted set of sends, for all global windows
//! - `P:{sms-budget}:region:US` — sorted set of sends to one region
//! - `P:{sms-budget}:block:+861371111:sends` / `:uses` — sorted sets per block
//! - `P:{sms-budget}:block:+861371111:paused` — exists while the block is paused
//! - `P:{sms-budget}:paused` — sorted set: paused block → end of pause (for `status`)
//! - `P:{sms-budget}:regions` — set of the regions counted (for `status`)
//! - `P:{sms-budget}:alerts` — hash: alert → until when it stays quiet

use std::sync::LazyLock;
use std::time::Duration;

use super::{Lua, RedisCodeStore};
use crate::codes::budget::{
    BudgetAlert, BudgetDecision, BudgetRequest, BudgetScope, GuardStatus, PausedBlock,
    SmsBudgetStore, WindowUse,
};
use crate::codes::connection::RedisConnection;
use crate::codes::{StoreError, millis};
use crate::config::RegionLimits;
use crate::error::RateLimitReason;
use crate::rate_limit::{RateLimit, Window};
use async_trait::async_trait;

/// KEYS: global, region, block sends, block uses, block pause, paused index,
/// alerts, regions. ARGV: event, global windows ('' = off), region, region
/// windows ('' = none), block ('' = guard off), guard windows, minimum
/// percent, pause ms.
/// Returns {status, wait_ms, alerts}: status 0 allowed, 1 global, 2 region,
/// 3 guard; each alert `full|SCOPE|WINDOW_MS|COUNT`, `nearly|…` or
/// `paused|BLOCK|SENDS|USED`.
const SPEND: &str = r#"
local now = now_ms()
local function alert_once(name, window)
  local quiet_until = tonumber(redis.call('HGET', KEYS[7], name) or '0')
  if quiet_until > now then return false end
  redis.call('HSET', KEYS[7], name, now + window)
  if redis.call('PTTL', KEYS[7]) < window then redis.call('PEXPIRE', KEYS[7], window) end
  return true
end
local block = ARGV[5]
local guard_windows = {}
if block ~= '' then
  local paused = redis.call('PTTL', KEYS[5])
  if paused > 0 then return {3, paused, {}} end
  guard_windows = windows_of(ARGV[6])
  local longest = longest_of(guard_windows)
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - longest)
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - longest)
  for _, w in ipairs(guard_windows) do
    local sends = redis.call('ZCOUNT', KEYS[3], '(' .. (now - w[2]), '+inf')
    local used = redis.call('ZCOUNT', KEYS[4], '(' .. (now - w[2]), '+inf')
    -- The same rule as `codes::budget::guard_pauses`.
    if sends >= w[1] and used * 100 < tonumber(ARGV[7]) * sends then
      -- Paused with its counts cleared: judged afresh when the pause ends.
      redis.call('SET', KEYS[5], '1', 'PX', ARGV[8])
      redis.call('DEL', KEYS[3], KEYS[4])
      redis.call('ZADD', KEYS[6], now + tonumber(ARGV[8]), block)
      return {3, tonumber(ARGV[8]), {'paused|' .. block .. '|' .. sends .. '|' .. used}}
    end
  end
end
local scopes = {}
if ARGV[2] ~= '' then scopes[#scopes + 1] = {KEYS[1], windows_of(ARGV[2]), 1, 'global'} end
if ARGV[4] ~= '' then scopes[#scopes + 1] = {KEYS[2], windows_of(ARGV[4]), 2, ARGV[3]} end
for _, s in ipairs(scopes) do
  local wait = wait_of(s[1], s[2], now)
  if wait > 0 then return {s[3], wait, {}} end
end
local alerts = {}
for _, s in ipairs(scopes) do
  redis.call('ZADD', s[1], now, ARGV[1])
  redis.call('PEXPIRE', s[1], longest_of(s[2]))
  for _, w in ipairs(s[2]) do
    local used = redis.call('ZCOUNT', s[1], '(' .. (now - w[2]), '+inf')
    local name = s[4] .. '|' .. w[2] .. '|' .. w[1]
    -- The same thresholds as `codes::budget::nearly_full`.
    if used >= w[1] then
      if alert_once('full|' .. name, w[2]) then alerts[#alerts + 1] = 'full|' .. name end
    elseif used * 5 >= w[1] * 4 then
      if alert_once('nearly|' .. name, w[2]) then alerts[#alerts + 1] = 'nearly|' .. name end
    end
  end
end
if ARGV[4] ~= '' then redis.call('SADD', KEYS[8], ARGV[3]) end
if block ~= '' then
  redis.call('ZADD', KEYS[3], now, ARGV[1])
  redis.call('PEXPIRE', KEYS[3], longest_of(guard_windows))
end
return {0, 0, alerts}
"#;

/// KEYS: global, region, block sends. ARGV: event.
const REFUND: &str = r#"
for _, key in ipairs(KEYS) do redis.call('ZREM', key, ARGV[1]) end
return 0
"#;

/// KEYS: block uses. ARGV: event, window ms.
const RECORD_USE: &str = r#"
local now = now_ms()
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 0
"#;

/// KEYS: block pause, block sends, block uses, paused index. ARGV: block.
/// Returns 1 when the block was paused.
const LIFT: &str = r#"
local was_paused = redis.call('DEL', KEYS[1])
redis.call('DEL', KEYS[2], KEYS[3])
redis.call('ZREM', KEYS[4], ARGV[1])
return was_paused
"#;

/// KEYS: paused index. Returns {block, ms left, …} of the live pauses, and
/// forgets the ended ones.
const PAUSED: &str = r#"
local now = now_ms()
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local live = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local out = {}
for i = 1, #live, 2 do
  out[#out + 1] = live[i]
  out[#out + 1] = tostring(math.max(1, tonumber(live[i + 1]) - now))
end
return out
"#;

/// KEYS: the set of regions counted. Returns its members.
const REGIONS: &str = r#"
return redis.call('SMEMBERS', KEYS[1])
"#;

/// KEYS: one sorted set of sends. ARGV: windows. Returns the count in each window.
const WINDOW_USE: &str = r#"
local now = now_ms()
local out = {}
for _, w in ipairs(windows_of(ARGV[1])) do
  out[#out + 1] = redis.call('ZCOUNT', KEYS[1], '(' .. (now - w[2]), '+inf')
end
return out
"#;

static SPEND_SCRIPT: LazyLock<Lua> = LazyLock::new(|| Lua::with_helpers(SPEND));
static REFUND_SCRIPT: LazyLock<Lua> = LazyLock::new(|| Lua::with_helpers(REFUND));
static RECORD_USE_SCRIPT: LazyLock<Lua> = LazyLock::new(|| Lua::with_helpers(RECORD_USE));
static LIFT_SCRIPT: LazyLock<Lua> = LazyLock::new(|| Lua::with_helpers(LIFT));
static PAUSED_SCRIPT: LazyLock<Lua> = LazyLock::new(|| Lua::with_helpers(PAUSED));
static WINDOW_USE_SCRIPT: LazyLock<Lua> = LazyLock::new(|| Lua::with_helpers(WINDOW_USE));
static REGIONS_SCRIPT: LazyLock<Lua> = LazyLock::new(|| Lua::with_helpers(REGIONS));

impl<C: RedisConnection> RedisCodeStore<C> {
    fn budget_key(&self, rest: &str) -> String {
        format!("{}:{{sms-budget}}:{rest}", self.prefix)
    }

    fn block_key(&self, block: &str, rest: &str) -> String {
        self.budget_key(&format!("block:{block}:{rest}"))
    }

    fn region_budget_key(&self, region: &str) -> String {
        self.budget_key(&format!("region:{region}"))
    }
}

fn spec(limit: Option<&RateLimit>) -> String {
    limit.map(RateLimit::to_script_arg).unwrap_or_default()
}

/// Reads one alert of the script (`full|SCOPE|WINDOW_MS|COUNT`, …).
fn parse_alert(raw: &str, pause: Duration) -> Option<BudgetAlert> {
    let mut parts = raw.split('|');
    let kind = parts.next()?;
    let first = parts.next()?.to_owned();
    let second: u64 = parts.next()?.parse().ok()?;
    let third: u64 = parts.next()?.parse().ok()?;
    if kind == "paused" {
        return Some(BudgetAlert::Paused {
            block: first,
            sends: second,
            used: third,
            pause,
        });
    }
    let scope = if first == "global" {
        BudgetScope::Global
    } else {
        BudgetScope::Region(first)
    };
    let window = Window {
        count: u32::try_from(third).ok()?,
        length: Duration::from_millis(second),
    };
    match kind {
        "full" => Some(BudgetAlert::Full { scope, window }),
        "nearly" => Some(BudgetAlert::NearlyFull { scope, window }),
        _ => None,
    }
}

#[async_trait]
impl<C: RedisConnection> SmsBudgetStore for RedisCodeStore<C> {
    #[tracing::instrument(level = "debug", name = "code_store.spend_send", skip_all, fields(region = request.region))]
    async fn spend_send(&self, request: BudgetRequest<'_>) -> Result<BudgetDecision, StoreError> {
        let block = request.guard.as_ref().map_or("", |g| g.block);
        let keys = [
            self.budget_key("global"),
            self.region_budget_key(request.region),
            self.block_key(block, "sends"),
            self.block_key(block, "uses"),
            self.block_key(block, "paused"),
            self.budget_key("paused"),
            self.budget_key("alerts"),
            self.budget_key("regions"),
        ];
        let guard = request.guard.as_ref();
        let args = [
            request.event.to_owned(),
            spec(request.global),
            request.region.to_owned(),
            spec(request.region_limit),
            block.to_owned(),
            guard.map_or_else(String::new, |g| g.min_sends.to_script_arg()),
            guard.map_or(0, |g| g.min_verified_percent).to_string(),
            guard.map_or(1, |g| millis(g.pause)).to_string(),
        ];
        let (status, wait_ms, alerts): (u8, u64, Vec<String>) =
            self.run(&SPEND_SCRIPT, &keys, &args).await?;
        let pause = request.guard.as_ref().map_or(Duration::ZERO, |g| g.pause);
        let reason = match status {
            0 => None,
            1 => Some(RateLimitReason::GlobalLimit),
            2 => Some(RateLimitReason::RegionLimit),
            _ => Some(RateLimitReason::SmsGuard),
        };
        Ok(BudgetDecision {
            refused: reason.map(|r| (r, Duration::from_millis(wait_ms.max(1)))),
            alerts: alerts
                .iter()
                .filter_map(|a| parse_alert(a, pause))
                .collect(),
        })
    }

    #[tracing::instrument(level = "debug", name = "code_store.refund_send", skip_all)]
    async fn refund_send(&self, request: &BudgetRequest<'_>) -> Result<(), StoreError> {
        let block = request.guard.as_ref().map_or("", |g| g.block);
        let keys = [
            self.budget_key("global"),
            self.region_budget_key(request.region),
            self.block_key(block, "sends"),
        ];
        let _: i64 = self
            .run(&REFUND_SCRIPT, &keys, &[request.event.to_owned()])
            .await?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", name = "code_store.record_code_used", skip_all)]
    async fn record_code_used(
        &self,
        block: &str,
        window: Duration,
        event: &str,
    ) -> Result<(), StoreError> {
        let _: i64 = self
            .run(
                &RECORD_USE_SCRIPT,
                &[self.block_key(block, "uses")],
                &[event.to_owned(), millis(window).to_string()],
            )
            .await?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", name = "code_store.budget_status", skip_all)]
    async fn budget_status(
        &self,
        global: Option<&RateLimit>,
        regions: &RegionLimits,
    ) -> Result<GuardStatus, StoreError> {
        let mut status = GuardStatus::default();
        let mut scopes: Vec<(BudgetScope, String, &RateLimit)> = Vec::new();
        if let Some(limit) = global {
            scopes.push((BudgetScope::Global, self.budget_key("global"), limit));
        }
        let mut seen: Vec<String> = self
            .run(&REGIONS_SCRIPT, &[self.budget_key("regions")], &[])
            .await?;
        seen.sort();
        for region in seen {
            if let Some(limit) = regions.for_region(&region) {
                let key = self.region_budget_key(&region);
                scopes.push((BudgetScope::Region(region), key, limit));
            }
        }
        for (scope, key, limit) in scopes {
            let counts: Vec<u64> = self
                .run(&WINDOW_USE_SCRIPT, &[key], &[limit.to_script_arg()])
                .await?;
            for (window, used) in limit.windows().iter().zip(counts) {
                status.windows.push(WindowUse {
                    scope: scope.clone(),
                    window: *window,
                    used,
                });
            }
        }
        let paused: Vec<String> = self
            .run(&PAUSED_SCRIPT, &[self.budget_key("paused")], &[])
            .await?;
        status.paused = paused
            .chunks(2)
            .filter_map(|pair| match pair {
                [block, ms] => Some(PausedBlock {
                    block: block.clone(),
                    left: Duration::from_millis(ms.parse().ok()?),
                }),
                _ => None,
            })
            .collect();
        Ok(status)
    }

    #[tracing::instrument(level = "debug", name = "code_store.lift_pause", skip_all)]
    async fn lift_pause(&self, block: &str) -> Result<bool, StoreError> {
        let keys = [
            self.block_key(block, "paused"),
            self.block_key(block, "sends"),
            self.block_key(block, "uses"),
            self.budget_key("paused"),
        ];
        let was_paused: i64 = self.run(&LIFT_SCRIPT, &keys, &[block.to_owned()]).await?;
        Ok(was_paused == 1)
    }
}
