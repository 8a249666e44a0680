//! 500 parallel password logins: each completes or gets SERVICE_UNAVAILABLE
//! (the Argon2 queue is bounded), and mobileExists keeps answering meanwhile.
//! Numbers are printed (run with --nocapture), not asserted: the benchmark
//! harness measures performance.

use std::time::{Duration, Instant};

use futures::future::join_all;
use serde_json::json;

use crate::helpers::{Setup, error_code, spawn_setup};

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_login_flood_is_bounded_and_other_operations_keep_answering() {
    let app = spawn_setup(Setup::PostgresRedis).spawn().await;
    app.create_user("alice", "13711112222", None, "correct horse battery")
        .await;
    let started = Instant::now();

    let flood = join_all((0..500).map(|i| {
        let app = &app;
        async move {
            let password = if i % 2 == 0 { "correct horse battery" } else { "wrong horse battery" };
            app.graphql(
                "mutation($p: String!) { loginWithPassword(account: \"alice\", password: $p) { accessToken } }",
                json!({ "p": password }),
            )
            .await
        }
    }));
    let probe = async {
        // Give the flood a head start, then ask 20 times.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut slowest = Duration::ZERO;
        for _ in 0..20 {
            let asked = Instant::now();
            let answer = app
                .graphql("{ mobileExists(mobile: \"13711112222\") }", json!({}))
                .await;
            assert_eq!(
                answer["data"]["mobileExists"], true,
                "mobileExists answers during the flood: {answer}"
            );
            slowest = slowest.max(asked.elapsed());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        slowest
    };
    let (answers, slowest_probe) = tokio::join!(flood, probe);

    let mut completed = 0;
    let mut unavailable = 0;
    for answer in &answers {
        match error_code(answer).as_deref() {
            None | Some("INVALID_CREDENTIALS") => completed += 1,
            Some("SERVICE_UNAVAILABLE") => unavailable += 1,
            other => panic!("unexpected answer {other:?}: {answer}"),
        }
    }
    assert_eq!(completed + unavailable, 500);
    assert!(completed > 0);
    println!(
        "500 logins in {:.1?}: {completed} completed, {unavailable} SERVICE_UNAVAILABLE; \
         slowest mobileExists during the flood {slowest_probe:.1?}; peak RSS of the test process {:.0} MiB",
        started.elapsed(),
        peak_rss_mib()
    );
}
