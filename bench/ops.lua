-- wrk script for smsauth's operations (bench/run.sh sets the environment).
--   OP=mobileExists|sendSmsCode|loginWithSms|registerWithSms|loginWithPassword|me|refreshToken
-- A response counts as an error unless it is HTTP 200 and its body holds the
-- operation's success marker (a GraphQL error is HTTP 200 too).
-- done() prints: RESULT op requests seconds rps p50_ms p99_ms errors
local op = os.getenv("OP") or "mobileExists"
local users = tonumber(os.getenv("USERS") or "10000")
local stride = tonumber(os.getenv("THREADS") or "1")
local password = os.getenv("PASSWORD") or "bench-password-1"
local token = os.getenv("TOKEN") or ""
local pairs_file = os.getenv("PAIRS") or ""      -- "mobile code" lines (SMS ops)
local tokens_file = os.getenv("TOKENS") or ""    -- refresh tokens, one per line
local save_tokens = os.getenv("SAVE_TOKENS") or "" -- where loginWithSms writes refresh tokens
local send_base = tonumber(os.getenv("SEND_BASE") or "13800000000")

local markers = {
  mobileExists = '"mobileExists":true',
  seedLogin = '"sendSmsCode":{',
  sendSmsCode = '"sendSmsCode":{',
  loginWithSms = '"loginWithSms":{',
  registerWithSms = '"registerWithSms":{',
  loginWithPassword = '"loginWithPassword":{',
  me = '"me":{',
  refreshToken = '"refreshToken":{"accessToken"',
}

local threads = {}
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

local n = 0
local items = {}   -- this thread's share of PAIRS or TOKENS
local queue = {}   -- refreshToken: live tokens of this thread
local saved = nil
bad = 0

local function read_lines(path, id)
  local mine = {}
  local i = 0
  for line in io.lines(path) do
    if i % stride == id then table.insert(mine, line) end
    i = i + 1
  end
  return mine
end

function init(args)
  n = id or 0
  if op == "loginWithSms" or op == "registerWithSms" then
    items = read_lines(pairs_file, id or 0)
  elseif op == "refreshToken" then
    queue = read_lines(tokens_file, id or 0)
  end
  if save_tokens ~= "" then
    saved = io.open(save_tokens .. "." .. (id or 0), "w")
  end
end

local headers = { ["Content-Type"] = "application/json" }
local function gql(query, variables)
  return wrk.format("POST", "/graphql", headers, '{"query":"' .. query .. '","variables":' .. variables .. '}')
end

local function user_mobile(i)
  return string.format("+86139%08d", i % users)
end

local next_item = 0
function request()
  local i = n
  n = n + stride
  if op == "mobileExists" then
    return gql("query($m:String!){mobileExists(mobile:$m)}", '{"m":"' .. user_mobile(i) .. '"}')
  elseif op == "seedLogin" then
    return gql("mutation($m:String!){sendSmsCode(mobile:$m,purpose:LOGIN){resendIn}}", '{"m":"' .. user_mobile(i) .. '"}')
  elseif op == "sendSmsCode" then
    return gql("mutation($m:String!){sendSmsCode(mobile:$m,purpose:REGISTER){resendIn}}",
      '{"m":"+86' .. string.format("%d", send_base + i) .. '"}')
  elseif op == "loginWithSms" or op == "registerWithSms" then
    next_item = next_item + 1
    local line = items[next_item] or "+8600000000000 000000"
    local mobile, code = line:match("(%S+) (%S+)")
    if op == "loginWithSms" then
      return gql("mutation($m:String!,$c:String!){loginWithSms(mobile:$m,code:$c){accessToken refreshToken}}",
        '{"m":"' .. mobile .. '","c":"' .. code .. '"}')
    end
    return gql("mutation($m:String!,$c:String!,$p:String!){registerWithSms(mobile:$m,code:$c,password:$p){accessToken}}",
      '{"m":"' .. mobile .. '","c":"' .. code .. '","p":"' .. password .. '"}')
  elseif op == "loginWithPassword" then
    return gql("mutation($a:String!,$p:String!){loginWithPassword(account:$a,password:$p){accessToken}}",
      '{"a":"' .. user_mobile(i) .. '","p":"' .. password .. '"}')
  elseif op == "me" then
    return wrk.format("POST", "/graphql",
      { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token },
      '{"query":"{me{id username mobile}}"}')
  elseif op == "refreshToken" then
    local t = table.remove(queue, 1) or "none"
    return gql("mutation($t:String!){refreshToken(refreshToken:$t){accessToken refreshToken}}", '{"t":"' .. t .. '"}')
  end
  error("unknown OP " .. op)
end

function response(status, headers, body)
  if status ~= 200 or not body or not body:find(markers[op], 1, true) then
    bad = bad + 1
    return
  end
  if op == "refreshToken" or saved then
    local t = body:match('"refreshToken":"(smsauth_rt_%x+)"')
    if t and op == "refreshToken" then table.insert(queue, t) end
    if t and saved then saved:write(t, "\n") saved:flush() end
  end
end

function done(summary, latency, requests)
  local failed = 0
  for _, t in ipairs(threads) do
    failed = failed + t:get("bad")
  end
  local e = summary.errors
  failed = failed + e.connect + e.read + e.write + e.timeout
  local secs = summary.duration / 1e6
  io.write(string.format("RESULT %s %d %.2f %.1f %.2f %.2f %d\n", op, summary.requests, secs,
    summary.requests / secs, latency:percentile(50) / 1000, latency:percentile(99) / 1000, failed))
end
