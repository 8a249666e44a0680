#!/usr/bin/env bash
# bench/run.sh [--with-peer] [--with-floor] [--cluster]: benchmark smsauth on this machine.
#
# Builds the release binary, starts it on PostgreSQL + Redis with a local fake
# of Tencent's SMS endpoint (so sendSmsCode pays for signing and an HTTP call,
# not for a real network), seeds users, loads each operation with wrk for
# DURATION s at CONCURRENCY connections, and prints a table: req/s, p50, p99,
# errors (any answer without the operation's success marker) and the server's
# peak RSS during the run. Raw Argon2id hashes/s is measured right before and
# right after the two password operations, and their rate is set against the
# mean. Then mobileExists while loginWithPassword floods at 64 connections.
# --with-peer also runs ../shared/peer-django/bench/bench.sh and prints the
# ratios. --with-floor builds ../shared/perf-floor (axum + sqlx, one
# SELECT, no GraphQL) into its own target directory, runs it on the same
# database with the same pool size, and loads it in ROUNDS alternating rounds
# with smsauth's mobileExists and me: the median of each and smsauth's share.
# --cluster runs on a Redis Cluster of 3 masters on loopback (CLUSTER_PORT..+2,
# made here, removed after) instead of one Redis. LIMITS=high sets every limit
# to a count no run reaches instead of off, so their bookkeeping is paid.
# Raw output: bench/out/<time>/ (not in git).
#
# Env: DURATION (10), CONCURRENCY (32), THREADS (wrk threads, 1), PROBE_CONCURRENCY (8), USERS (100000: one LOGIN code each, enough for loginWithSms at 10,000/s),
#      LIMITS (off|high), ROUNDS (3), SMSAUTH_BIN (a built smsauth to measure instead of this checkout's),
#      BUILD (1; 0: use what the target directory holds),
#      PORT (18000), FAKE_PORT (18090), PEER_PORT (18001), FLOOR_PORT (18002), FLOOR_TARGET_DIR,
#      PG (postgres://postgres@127.0.0.1:5432), DB_SSLMODE (disable), REDIS_DB (14), CLUSTER_PORT (17301).
# Needs: wrk (apt-get install -y wrk), psql, redis-cli.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
with_peer=false with_floor=false cluster=false
for arg in "$@"; do
  case $arg in
    --with-peer) with_peer=true ;;
    --with-floor) with_floor=true ;;
    --cluster) cluster=true ;;
    *) echo "bench: unknown option $arg" >&2; exit 2 ;;
  esac
done
duration=${DURATION:-10} conc=${CONCURRENCY:-32} threads=${THREADS:-1} users=${USERS:-100000}
port=${PORT:-18000} fake_port=${FAKE_PORT:-18090} peer_port=${PEER_PORT:-18001} floor_port=${FLOOR_PORT:-18002}
limits=${LIMITS:-off} rounds=${ROUNDS:-3}
case $limits in off | high) ;; *) echo "bench: LIMITS is off or high, not $limits" >&2; exit 2 ;; esac
pg=${PG:-postgres://postgres@127.0.0.1:5432} redis_db=${REDIS_DB:-14}
password=bench-password-1
out=$here/out/$(date +%Y%m%dT%H%M%S)
mkdir -p "$out"
for tool in wrk psql redis-cli; do
  command -v "$tool" >/dev/null || { echo "bench: needs $tool (apt-get install -y wrk postgresql-client redis-tools)" >&2; exit 1; }
done

if [ "${BUILD:-1}" = 1 ]; then
  echo "bench: building (release)" >&2
  (cd "$repo" && cargo build --release --locked --bin smsauth --example bench_fake_tencent --example argon2_rate -q)
fi
bin=${CARGO_TARGET_DIR:-$repo/target}/release
smsauth_bin=${SMSAUTH_BIN:-$bin/smsauth}
if $with_floor; then
  echo "bench: building ../shared/perf-floor (release)" >&2
  floor_target=${FLOOR_TARGET_DIR:-${CARGO_TARGET_DIR:-$repo/target}/perf-floor}
  cargo build --release --locked -q --manifest-path "$repo/../shared/perf-floor/Cargo.toml" --target-dir "$floor_target"
fi

pids=() cluster_dir=
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [ -n "$cluster_dir" ]; then sleep 0.5; rm -rf "$cluster_dir"; fi
}
trap cleanup EXIT

# A fresh database and Redis DB. BENCH_DB (smsauth_bench) names the database, so
# two runs on one machine (with other PORT, FAKE_PORT, REDIS_DB, CLUSTER_PORT) keep apart.
bench_db=${BENCH_DB:-smsauth_bench}
psql "$pg/postgres" -qAtc "DROP DATABASE IF EXISTS $bench_db" -c "CREATE DATABASE $bench_db" >/dev/null
redis-cli -n "$redis_db" flushdb >/dev/null

: >"$out/codes.txt"
"$bin/examples/bench_fake_tencent" "127.0.0.1:$fake_port" "$out/codes.txt" &
pids+=($!)

# Plaintext to PostgreSQL on loopback, as the floor (sqlx without TLS) talks:
# libpq's default sslmode=prefer encrypts when the server offers TLS (Debian's
# does), which cost smsauth ~15 % of mobileExists' req/s. DB_SSLMODE=prefer measures that.
sslmode=${DB_SSLMODE:-disable}
db_url="$pg/$bench_db?sslmode=$sslmode"
export LISTEN_ADDR=127.0.0.1:$port DATABASE_URL=$db_url REDIS_URL=redis://127.0.0.1:6379/$redis_db
store="Redis"
if $cluster; then
  # Three masters, no replicas: the cost of slot routing, not of replication.
  cluster_port=${CLUSTER_PORT:-17301} cluster_dir=$(mktemp -d) nodes=() seeds=()
  for p in $cluster_port $((cluster_port + 1)) $((cluster_port + 2)); do
    mkdir -p "$cluster_dir/$p"
    redis-server --port "$p" --bind 127.0.0.1 --cluster-enabled yes --cluster-port $((p + 100)) \
      --cluster-config-file nodes.conf --cluster-require-full-coverage no --save "" --appendonly no \
      --dir "$cluster_dir/$p" --logfile redis.log &
    pids+=($!) nodes+=("127.0.0.1:$p") seeds+=("redis://127.0.0.1:$p")
  done
  for p in $cluster_port $((cluster_port + 1)) $((cluster_port + 2)); do
    for _ in $(seq 1 50); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.1; done
  done
  redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >"$out/cluster.txt"
  for _ in $(seq 1 100); do redis-cli -p "$cluster_port" cluster info | grep -q cluster_state:ok && break; sleep 0.1; done
  unset REDIS_URL
  REDIS_CLUSTER_NODES=$(IFS=,; echo "${seeds[*]}")
  export REDIS_CLUSTER_NODES
  store="a Redis Cluster (3 masters)"
fi
export JWT_SECRET=bench-secret-bench-secret-bench-secret RUST_LOG=warn
# PostgreSQL shares the 2 cores here: a small pool means fewer backends
# switching in and out (mobileExists: 7.1k req/s at 2-4 connections, 6.1k at 16).
export DATABASE_MAX_CONNECTIONS=${DATABASE_MAX_CONNECTIONS:-4}
export SMS_PROVIDER=tencent TENCENT_SECRET_ID=AKIDbench TENCENT_SECRET_KEY=bench-key
export TENCENT_SMS_SDK_APP_ID=1400000000 TENCENT_SMS_SIGN_NAME=smsauth TENCENT_SMS_TEMPLATE_ID=1000000
export TENCENT_SMS_ENDPOINT=http://127.0.0.1:$fake_port
# Every request comes from 127.0.0.1, and the seeded numbers are consecutive:
# per-IP limits, the SMS budget and the pumping guard would measure the
# limiter, not the service. LIMITS=high keeps them all on, out of reach.
if [ "$limits" = high ]; then
  high=1000000000/1h
  export SMS_SEND_LIMIT_PER_IP=$high SMS_VERIFY_LIMIT_PER_IP=$high MOBILE_EXISTS_LIMIT_PER_IP=$high
  export LOGIN_FAILURE_LIMIT_PER_IP=$high LOGIN_FAILURE_LIMIT_PER_ACCOUNT=$high
  export SMS_GLOBAL_LIMIT=$high SMS_REGION_LIMITS="*=$high" SMS_GUARD_MIN_SENDS=$high
else
  export SMS_SEND_LIMIT_PER_IP=off SMS_VERIFY_LIMIT_PER_IP=off MOBILE_EXISTS_LIMIT_PER_IP=off
  export LOGIN_FAILURE_LIMIT_PER_IP=off LOGIN_FAILURE_LIMIT_PER_ACCOUNT=off
  export SMS_GLOBAL_LIMIT=off SMS_GUARD_MIN_SENDS=off
fi
"$smsauth_bin" >"$out/server.log" 2>&1 &
server=$!
pids+=($server)
base=http://127.0.0.1:$port
for _ in $(seq 1 100); do curl -fs -o /dev/null "$base/readyz" && break; sleep 0.1; done
curl -fs -o /dev/null "$base/readyz" || { cat "$out/server.log"; echo "bench: smsauth did not start" >&2; exit 1; }

echo "bench: seeding $users users" >&2
hash=$("$bin/examples/argon2_rate" --hash "$password")
psql "$pg/$bench_db" -qAt -v ON_ERROR_STOP=1 -c "
  INSERT INTO users (id, username, mobile, email, password_hash, is_active, token_version, created_at, updated_at)
  SELECT gen_random_uuid(), 'bench' || i, '+86139' || lpad(i::text, 8, '0'), NULL, '$hash', true, 0, now(), now()
  FROM generate_series(0, $users - 1) AS i" >/dev/null

# Peak RSS of the server while a command runs (sampled every 50 ms), in MiB.
rss_peak_file=$out/rss
sample_rss() {
  local peak=0 kb
  while kill -0 "$server" 2>/dev/null; do
    kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$server/status" 2>/dev/null || echo 0)
    [ "${kb:-0}" -gt "$peak" ] && peak=$kb && echo "$peak" >"$rss_peak_file"
    sleep 0.05
  done
}
load() { # load OP SECONDS CONNECTIONS [VAR=value ...]: one wrk run; its RESULT line + peak RSS
  local op=$1 secs=$2 c=$3; shift 3
  echo 0 >"$rss_peak_file"
  sample_rss & local sampler=$!
  env OP="$op" USERS="$users" THREADS="$threads" PASSWORD="$password" "$@" \
    wrk -t "$threads" -c "$c" -d "${secs}s" --timeout 30s --latency -s "$here/ops.lua" "${URL:-$base}" >"$out/$op.txt"
  kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null || true
  echo "RSS $(( $(cat "$rss_peak_file") / 1024 ))" >>"$out/$op.txt"
}
result() { grep '^RESULT' "$out/$1.txt"; }
access_token() { # of the first seeded user, by password
  curl -s "$base/graphql" -H 'content-type: application/json' \
    -d "{\"query\":\"mutation{loginWithPassword(account:\\\"+8613900000000\\\",password:\\\"$password\\\"){accessToken}}\"}" |
    sed -n 's/.*"accessToken":"\([^"]*\)".*/\1/p'
}

echo "bench: warm-up" >&2
load mobileExists 3 "$conc" && mv "$out/mobileExists.txt" "$out/warmup.txt"

# Codes for loginWithSms: one LOGIN code to each seeded user, through the
# service (not timed); the fake endpoint writes down what it "delivered".
echo "bench: sending LOGIN codes to the seeded users" >&2
# Past the last user the cooldown answers cheaply, but a fast machine comes
# round again after the cooldown and sends a second code, which replaces the
# first: only each mobile's last code is valid.
OP=seedLogin USERS="$users" THREADS=1 wrk -t 1 -c "$conc" -d "$((users / 1500 + 5))s" --timeout 30s \
  -s "$here/ops.lua" "$base" >"$out/seed.txt"
awk '/^[+]86139/ {last[$1] = $0} END {for (m in last) print last[m]}' "$out/codes.txt" >"$out/login-pairs.txt"
echo "bench: $(wc -l <"$out/login-pairs.txt") LOGIN codes" >&2

ops="mobileExists sendSmsCode loginWithSms registerWithSms loginWithPassword me refreshToken"
for op in $ops; do
  echo "bench: $op" >&2
  # Raw Argon2id right before and right after the two password operations:
  # this machine's speed drifts within minutes, so the ratio compares neighbours.
  case $op in
    registerWithSms) "$bin/examples/argon2_rate" "$duration" >"$out/argon2-before.txt" ;;
    me) "$bin/examples/argon2_rate" "$duration" >"$out/argon2-after.txt" ;;
  esac
  case $op in
    sendSmsCode) load sendSmsCode "$duration" "$conc" SEND_BASE=13800000000 ;;
    loginWithSms) load loginWithSms "$duration" "$conc" PAIRS="$out/login-pairs.txt" SAVE_TOKENS="$out/refresh" ;;
    registerWithSms)
      grep '^+86138' "$out/codes.txt" >"$out/register-pairs.txt"
      load registerWithSms "$duration" "$conc" PAIRS="$out/register-pairs.txt" ;;
    me) load me "$duration" "$conc" TOKEN="$(access_token)" ;;
    refreshToken)
      cat "$out"/refresh.* >"$out/refresh-tokens.txt"
      load refreshToken "$duration" "$conc" TOKENS="$out/refresh-tokens.txt" ;;
    *) load "$op" "$duration" "$conc" ;;
  esac
done

echo "bench: mixed runs" >&2
# (b) mobileExists at a modest concurrency, idle and then during a password flood.
probe_conc=${PROBE_CONCURRENCY:-8}
cp "$out/mobileExists.txt" "$out/mobileExists-table.txt"
[ -f "$out/me.txt" ] && cp "$out/me.txt" "$out/me-table.txt"
# The sign-in runs leave PostgreSQL with dirty pages to write: a checkpoint
# during the idle probe measured 20 ms p99 against 6 ms without. Flush them
# first, so the idle and the flood probe start from the same quiet database.
psql "$db_url" -qAtc "CHECKPOINT" >/dev/null
load mobileExists "$duration" "$probe_conc" && mv "$out/mobileExists.txt" "$out/mobileExists-idle.txt"
OP=loginWithPassword USERS="$users" THREADS=1 PASSWORD="$password" \
  wrk -t 1 -c 64 -d "$((duration + 2))s" --timeout 30s -s "$here/ops.lua" "$base" >"$out/flood.txt" &
flood=$!
sleep 1
load mobileExists "$duration" "$probe_conc" && mv "$out/mobileExists.txt" "$out/mobileExists-flood.txt"
cp "$out/mobileExists-table.txt" "$out/mobileExists.txt"
wait "$flood" || true

if $with_floor; then
  # The floor beside smsauth, in alternating rounds: both see the same noise.
  echo "bench: the floor (../shared/perf-floor), $rounds alternating rounds" >&2
  # The flood left writes behind: flush them, as before the idle probe.
  psql "$db_url" -qAtc "CHECKPOINT" >/dev/null
  DATABASE_URL=$db_url LISTEN_ADDR=127.0.0.1:$floor_port POOL=$DATABASE_MAX_CONNECTIONS \
    "$floor_target/release/floor-axum" >"$out/floor.log" 2>&1 &
  pids+=($!)
  floor_base=http://127.0.0.1:$floor_port
  for _ in $(seq 1 100); do curl -s -o /dev/null "$floor_base/" && break; sleep 0.1; done
  URL=$floor_base load mobileExists 3 "$conc" && mv "$out/mobileExists.txt" "$out/floor-warmup.txt"
  me_token=$(access_token)
  cp "$out/mobileExists-table.txt" "$out/mobileExists-keep.txt"
  for r in $(seq 1 "$rounds"); do
    URL=$floor_base load mobileExists "$duration" "$conc" && mv "$out/mobileExists.txt" "$out/round$r-floor.txt"
    load mobileExists "$duration" "$conc" && mv "$out/mobileExists.txt" "$out/round$r-mobileExists.txt"
    load me "$duration" "$conc" TOKEN="$me_token" && mv "$out/me.txt" "$out/round$r-me.txt"
  done
  cp "$out/mobileExists-keep.txt" "$out/mobileExists.txt"
  [ -f "$out/me-table.txt" ] && cp "$out/me-table.txt" "$out/me.txt"
fi
peak_total=$(awk '/^VmHWM:/ {print int($2 / 1024)}' "/proc/$server/status")

{
  echo "# $(date -u +%FT%TZ) $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "# smsauth $(git -C "$repo" rev-parse --short HEAD)${SMSAUTH_BIN:+ ($SMSAUTH_BIN)} on PostgreSQL (sslmode=$sslmode) + $store, limits $limits; wrk -t $threads -c $conc -d ${duration}s; $users users"
  printf '%-18s %10s %9s %9s %8s %9s %9s\n' operation 'req/s' 'p50 ms' 'p99 ms' errors requests 'RSS MiB'
  for op in $ops; do
    read -r _ name reqs _ rps p50 p99 errs < <(result "$op")
    rss=$(awk '/^RSS/ {print $2}' "$out/$op.txt")
    printf '%-18s %10s %9s %9s %8s %9s %9s\n' "$name" "$rps" "$p50" "$p99" "$errs" "$reqs" "$rss"
  done
  read -r _ cores _ _ _ before < <(cat "$out/argon2-before.txt")
  read -r _ _ _ _ _ after < <(cat "$out/argon2-after.txt")
  rate=$(awk -v a="${before%/s}" -v b="${after%/s}" 'BEGIN {printf "%.1f/s", (a + b) / 2}')
  read -r _ _ _ _ login_rps _ < <(result loginWithPassword)
  read -r _ _ _ _ register_rps _ < <(result registerWithSms)
  echo "# (a) raw Argon2id ${rate} on $cores cores (mean of ${before} right before and ${after} right after them); loginWithPassword $login_rps/s, registerWithSms $register_rps/s" \
    "($(awk -v a="$login_rps" -v b="${rate%/s}" 'BEGIN {printf "%.0f", 100 * a / b}')%, $(awk -v a="$register_rps" -v b="${rate%/s}" 'BEGIN {printf "%.0f", 100 * a / b}')%)"
  read -r _ _ _ _ _ _ idle_p99 _ < <(grep '^RESULT' "$out/mobileExists-idle.txt")
  read -r _ _ _ _ flood_rps _ flood_p99 flood_errs < <(grep '^RESULT' "$out/mobileExists-flood.txt")
  echo "# (b) mobileExists (wrk -c $probe_conc) during a loginWithPassword flood (-c 64): p99 $flood_p99 ms vs $idle_p99 ms idle" \
    "($(awk -v a="$flood_p99" -v b="$idle_p99" 'BEGIN {printf "%.1f", a / b}')x), $flood_rps req/s, $flood_errs errors"
  echo "# server peak RSS across all runs: $peak_total MiB"
  if $with_floor; then
    # Median of the rounds: field N of each round's RESULT line.
    median() { for f in "$out"/round*-"$1".txt; do grep '^RESULT' "$f" | awk -v n="$2" '{print $n}'; done |
      sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
    all() { for f in "$out"/round*-"$1".txt; do grep '^RESULT' "$f" | awk '{printf "%s ", $5}'; done; }
    floor_rps=$(median floor 5)
    echo "# the floor (axum + sqlx, one SELECT, pool $DATABASE_MAX_CONNECTIONS), $rounds alternating rounds, median (each round's req/s):"
    printf '%-18s %10s %9s %9s %7s   %s\n' side 'req/s' 'p50 ms' 'p99 ms' share rounds
    for side in floor mobileExists me; do
      rps=$(median "$side" 5)
      printf '%-18s %10s %9s %9s %6s%%   %s\n' "$side" "$rps" "$(median "$side" 6)" "$(median "$side" 7)" \
        "$(awk -v a="$rps" -v b="$floor_rps" 'BEGIN {printf "%.0f", 100 * a / b}')" "$(all "$side")"
    done
  fi
} | tee "$out/table.txt"

if $with_peer; then
  echo "bench: the Django peer (a copy of ../shared/peer-django, which is read-only)" >&2
  peer_copy=$(mktemp -d)/peer-django
  cp -r "$repo/../shared/peer-django" "$peer_copy"
  chmod -R u+w "$peer_copy"
  bash "$peer_copy/bench/bench.sh" "$peer_port" | tee "$out/peer.txt"
  {
    echo "# ratio smsauth / Django (req/s)"
    peer_rps() { awk -v op="$1" '$1 == op {print $2}' "$out/peer.txt"; }
    ours_rps() { read -r _ _ _ _ rps _ < <(result "$1"); echo "$rps"; }
    for pair in mobileExists:check sendSmsCode:send_sms loginWithSms:login_sms loginWithPassword:login_mul registerWithSms:register me:check; do
      ours=${pair%%:*} theirs=${pair##*:}
      a=$(ours_rps "$ours") b=$(peer_rps "$theirs")
      printf '%-18s vs %-10s %8s / %8s = %6s\n' "$ours" "$theirs" "$a" "$b" "$(awk -v a="$a" -v b="$b" 'BEGIN {if (b > 0) printf "%.1fx", a / b; else print "-"}')"
    done
  } | tee -a "$out/table.txt"
fi
