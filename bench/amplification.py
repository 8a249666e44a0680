#!/usr/bin/env python3
"""bench/amplification.py [BINARY]: what one hostile request costs the server.

Starts BINARY (default: target/release/smsauth) on a fresh SQLite file with
the in-process store and one user, then sends, one at a time:

- 415 aliased `__schema` selections in one operation (about 8 KB), and a
  batch of 7 such operations (about 58 KB, raised body limit);
- one batch of 3 operations x 99 aliased `loginWithPassword` with the right
  password;

and prints, for each, the HTTP status, the answer's size, the time taken,
the server's RSS after it, and (for the logins) how many refresh tokens the
database then holds. Run it against two builds to compare them.
"""

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target/release/smsauth")
PORT = int(os.environ.get("PORT", "18400"))
URL = f"http://127.0.0.1:{PORT}/graphql"


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def post(body):
    data = json.dumps(body).encode()
    request = urllib.request.Request(URL, data=data, headers={"content-type": "application/json"})
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            payload = response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        payload = error.read()
        status = error.code
    return status, len(data), len(payload), time.monotonic() - started, payload


def main():
    workdir = tempfile.mkdtemp(prefix="smsauth-amplification-")
    db = os.path.join(workdir, "smsauth.db")
    env = dict(
        os.environ,
        LISTEN_ADDR=f"127.0.0.1:{PORT}",
        DATABASE_URL=f"sqlite://{db}?mode=rwc",
        JWT_SECRET="amplification-bench-secret-of-32-bytes!",
        HTTP_BODY_LIMIT_BYTES="1048576",
        SMS_TEST_NUMBERS="+8613800000000=123456",
        SMS_SEND_LIMIT_PER_IP="off",
        SMS_VERIFY_LIMIT_PER_IP="off",
        LOGIN_FAILURE_LIMIT_PER_ACCOUNT="off",
        LOGIN_FAILURE_LIMIT_PER_IP="off",
        RUST_LOG="warn",
    )
    server = subprocess.Popen([BINARY, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{PORT}/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        post({"query": 'mutation { sendSmsCode(mobile: "13800000000", purpose: REGISTER) { mobile } }'})
        post({"query": 'mutation { registerWithSms(mobile: "13800000000", code: "123456", password: "amplification pw", username: "victim") { accessToken } }'})
        print(f"{'case':<44} {'status':>6} {'sent':>8} {'answer':>11} {'time s':>7} {'RSS MiB':>8}")
        print(f"{'(idle)':<44} {'':>6} {'':>8} {'':>11} {'':>7} {rss_mib(server.pid):>8.1f}")

        schema = "{ " + " ".join(f"s{i}:__schema{{...F}}" for i in range(415)) + " }"
        schema += " fragment F on __Schema { types { name kind fields { name type { name kind } } } }"
        cases = [
            ("415 aliased __schema, one operation", {"query": schema}),
            ("the same x7 in one batch", [{"query": schema}] * 7),
        ]
        login = 'loginWithPassword(account: "victim", password: "amplification pw") { accessToken }'
        logins = " ".join(f"l{i}: {login}" for i in range(99))
        cases.append(("3 operations x 99 aliased loginWithPassword", [{"query": "mutation { " + logins + " }"}] * 3))
        for name, body in cases:
            status, sent, size, took, payload = post(body)
            print(f"{name:<44} {status:>6} {sent:>8} {size:>11} {took:>7.2f} {rss_mib(server.pid):>8.1f}")
        time.sleep(1)
        print(f"{'(1 s later)':<44} {'':>6} {'':>8} {'':>11} {'':>7} {rss_mib(server.pid):>8.1f}")
        tokens = sqlite3.connect(db).execute("SELECT COUNT(*) FROM refresh_tokens").fetchone()[0]
        print(f"refresh tokens in the database: {tokens} (1 from the registration)")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
