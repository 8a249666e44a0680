//! Protecting the SMS bill (contract §3.4), over HTTP on Redis and in memory:
//! `extensions.reason` on every `RATE_LIMITED`, limits of several windows,
//! the global budget and its alerts, region caps, the pumping guard and
//! `smsauth sms-guard`.

use std::collections::HashMap;
use std::time::Duration;

use futures::future::join_all;
use serde_json::{Value, json};

use crate::helpers::{Setup, TestApp, error_code, error_extensions, spawn_setup};
use crate::logs::capture;
use crate::on_each;

const PASSWORD: &str = "correct horse battery";
const LOGIN: &str = "mutation($a: String!, $p: String!) { loginWithPassword(account: $a, password: $p) { accessToken } }";
const EXISTS: &str = "query { mobileExists(mobile: \"13711112222\") }";

fn reason(answer: &Value) -> Option<String> {
    assert_eq!(
        error_code(answer).as_deref(),
        Some("RATE_LIMITED"),
        "{answer}"
    );
    error_extensions(answer)["reason"]
        .as_str()
        .map(str::to_owned)
}

fn retry_after(answer: &Value) -> u64 {
    error_extensions(answer)["retryAfter"].as_u64().unwrap()
}

fn assert_sent(answer: &Value) {
    assert_eq!(error_code(answer), None, "{answer}");
}

/// A CN mobile: block `+86137000B` (with 4 block digits), number `N` in it.
fn mobile_in_block(block: u32, n: u32) -> String {
    format!("+86137000{block}{n:04}")
}

async fn each_send_refusal_names_its_limit(setup: Setup) {
    // The cooldown, then the per-mobile cap, then the per-IP limit.
    let app = spawn_setup(setup)
        .var("SMS_RESEND_COOLDOWN_SECS", "60")
        .var("SMS_SEND_LIMIT_PER_IP", "4/1h")
        .spawn()
        .await;
    assert_sent(&app.send_code("13711112222", "REGISTER").await);
    let again = app.send_code("13711112222", "REGISTER").await;
    assert_eq!(reason(&again).as_deref(), Some("COOLDOWN"));
    assert!((1..=60).contains(&retry_after(&again)));

    let app = spawn_setup(setup)
        .var("SMS_RESEND_COOLDOWN_SECS", "0")
        .var("SMS_SEND_LIMIT_PER_MOBILE", "2/24h")
        // Every request counts per IP, the refused one too.
        .var("SMS_SEND_LIMIT_PER_IP", "4/1h")
        .spawn()
        .await;
    for _ in 0..2 {
        assert_sent(&app.send_code("13711112222", "REGISTER").await);
    }
    let capped = app.send_code("13711112222", "REGISTER").await;
    assert_eq!(reason(&capped).as_deref(), Some("MOBILE_LIMIT"));
    assert_sent(&app.send_code("13711113333", "REGISTER").await);
    let per_ip = app.send_code("13711114444", "REGISTER").await;
    assert_eq!(reason(&per_ip).as_deref(), Some("IP_LIMIT"));
}

async fn each_throttle_names_its_limit(setup: Setup) {
    let app = spawn_setup(setup)
        .var("SMS_VERIFY_LIMIT_PER_IP", "1/1h")
        .var("LOGIN_FAILURE_LIMIT_PER_IP", "1/1h")
        .var("MOBILE_EXISTS_LIMIT_PER_IP", "1/1m")
        .spawn()
        .await;
    app.create_user("alice", "13711112222", None, PASSWORD)
        .await;

    let wrong = app.login_with_sms("13711112222", "000000").await;
    assert_eq!(
        error_code(&wrong).as_deref(),
        Some("INVALID_CODE"),
        "{wrong}"
    );
    let throttled = app.login_with_sms("13711112222", "000000").await;
    assert_eq!(reason(&throttled).as_deref(), Some("VERIFY_LIMIT"));

    let guess = json!({ "a": "alice", "p": "guess" });
    let wrong = app.graphql(LOGIN, guess.clone()).await;
    assert_eq!(error_code(&wrong).as_deref(), Some("INVALID_CREDENTIALS"));
    let throttled = app.graphql(LOGIN, guess).await;
    assert_eq!(reason(&throttled).as_deref(), Some("LOGIN_THROTTLE"));

    assert_eq!(error_code(&app.graphql(EXISTS, json!({})).await), None);
    let throttled = app.graphql(EXISTS, json!({})).await;
    assert_eq!(reason(&throttled).as_deref(), Some("MOBILE_EXISTS_LIMIT"));
}

async fn every_window_of_a_limit_holds(setup: Setup) {
    let app = spawn_setup(setup)
        .var("SMS_RESEND_COOLDOWN_SECS", "0")
        .var("SMS_SEND_LIMIT_PER_IP", "1/2s,2/1h")
        .spawn()
        .await;
    assert_sent(&app.send_code("13711110001", "REGISTER").await);
    // Only the short window is full: wait for it.
    let short = app.send_code("13711110002", "REGISTER").await;
    assert_eq!(reason(&short).as_deref(), Some("IP_LIMIT"));
    assert!(retry_after(&short) <= 2, "{short}");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_sent(&app.send_code("13711110002", "REGISTER").await);
    // Both are full now: retryAfter is the latest, the hour's.
    let both = app.send_code("13711110003", "REGISTER").await;
    assert_eq!(reason(&both).as_deref(), Some("IP_LIMIT"));
    assert!((3_500..=3_600).contains(&retry_after(&both)), "{both}");
}

async fn the_global_budget_is_exact_under_a_burst_and_alerts_once(setup: Setup) {
    // A count no other test uses, to find this test's lines in the shared log.
    let count = match setup {
        Setup::PostgresRedis => 11,
        Setup::SqliteMemory => 13,
    };
    let captured = capture();
    let app = spawn_setup(setup)
        .var("SMS_GLOBAL_LIMIT", format!("{count}/1h"))
        .spawn()
        .await;
    let sends = (0..count * 2).map(|n| {
        let app = &app;
        async move { app.send_code(&format!("1371111{n:04}"), "REGISTER").await }
    });
    let answers = join_all(sends).await;
    let sent = answers.iter().filter(|a| error_code(a).is_none()).count();
    assert_eq!(sent, count as usize, "exactly the budget is sent");
    assert_eq!(app.sms.sent().len(), count as usize);
    for refused in answers.iter().filter(|a| error_code(a).is_some()) {
        assert_eq!(reason(refused).as_deref(), Some("GLOBAL_LIMIT"));
        assert!(retry_after(refused) > 3_000, "{refused}");
    }
    // More refusals log nothing new.
    let refused = app.send_code("13722220000", "REGISTER").await;
    assert_eq!(reason(&refused).as_deref(), Some("GLOBAL_LIMIT"));

    let log = captured.text();
    let lines = |needle: &str| {
        log.lines()
            .filter(|l| l.contains(needle) && l.contains(&format!("count={count} ")))
            .collect::<Vec<_>>()
    };
    let warnings = lines("SMS budget 80 % used");
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(warnings[0].contains("WARN"), "{}", warnings[0]);
    let errors = lines("SMS budget exhausted");
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].contains("ERROR"), "{}", errors[0]);
}

async fn region_caps_count_each_region(setup: Setup) {
    let app = spawn_setup(setup)
        .var("SMS_REGION_LIMITS", "US=2/1h,*=3/1h")
        .var("METRICS_ADDR", "127.0.0.1:0")
        .spawn()
        .await;
    for n in 0..2 {
        assert_sent(
            &app.send_code(&format!("+1 650 253 000{n}"), "REGISTER")
                .await,
        );
    }
    let us = app.send_code("+1 650 253 0009", "REGISTER").await;
    assert_eq!(reason(&us).as_deref(), Some("REGION_LIMIT"));
    // CN falls under `*`, with its own count.
    for n in 0..3 {
        assert_sent(&app.send_code(&format!("1371111000{n}"), "REGISTER").await);
    }
    let cn = app.send_code("13711110009", "REGISTER").await;
    assert_eq!(reason(&cn).as_deref(), Some("REGION_LIMIT"));
    assert_eq!(app.sms.sent().len(), 5);
    let blocked = r#"smsauth_sms_guard_blocked_total{reason="REGION_LIMIT"}"#;
    assert_eq!(app.metric(blocked).await, 2.0);
}

/// The guard of the contract's defaults, with the per-mobile rules out of the way.
async fn guarded(setup: Setup) -> TestApp {
    spawn_setup(setup)
        .var("SMS_RESEND_COOLDOWN_SECS", "0")
        .var("SMS_SEND_LIMIT_PER_MOBILE", "off")
        .var("SMS_GUARD_MIN_SENDS", "20/1h")
        .spawn()
        .await
}

async fn a_pumping_run_pauses_exactly_the_attacked_blocks(setup: Setup) {
    let app = guarded(setup).await;
    // Normal traffic: 25 sign-ups in block 5, every code used.
    for n in 0..25 {
        let payload = app.register_via_sms(&mobile_in_block(5, n), PASSWORD).await;
        assert!(payload["accessToken"].is_string());
    }
    // The attack: 200 sends over 40 numbers of blocks 1 and 2, none verified,
    // in parallel bursts.
    let attack = (0..200).map(|i| {
        let app = &app;
        let mobile = mobile_in_block(1 + i % 2, i % 40);
        async move { app.send_code(&mobile, "REGISTER").await }
    });
    let answers = join_all(attack).await;
    for refused in answers.iter().filter(|a| error_code(a).is_some()) {
        assert_eq!(reason(refused).as_deref(), Some("SMS_GUARD"));
        assert!(retry_after(refused) > 3_000, "{refused}");
    }
    let mut per_block: HashMap<String, usize> = HashMap::new();
    for sms in app.sms.sent() {
        *per_block.entry(sms.mobile[..10].to_owned()).or_default() += 1;
    }
    assert_eq!(per_block["+861370001"], 20, "{per_block:?}");
    assert_eq!(per_block["+861370002"], 20, "{per_block:?}");
    assert_eq!(per_block["+861370005"], 25, "{per_block:?}");

    // Other numbers of the attacked blocks are paused too; the used block is not.
    let paused = app.send_code(&mobile_in_block(1, 9999), "REGISTER").await;
    assert_eq!(reason(&paused).as_deref(), Some("SMS_GUARD"));
    assert_sent(&app.send_code(&mobile_in_block(5, 9999), "REGISTER").await);
    assert_sent(&app.send_code(&mobile_in_block(3, 1), "REGISTER").await);

    // The operator sees both pauses, and lifts one.
    let state = &app.state;
    let status = smsauth::service::sms_guard::status(&*state.codes, &state.config)
        .await
        .unwrap();
    assert!(status.contains("+861370001 "), "{status}");
    assert!(status.contains("+861370002 "), "{status}");
    assert!(!status.contains("+861370005"), "{status}");
    let lifted = smsauth::service::sms_guard::lift(&*state.codes, "+861370001")
        .await
        .unwrap();
    assert!(lifted.contains("lifted"), "{lifted}");
    let status = smsauth::service::sms_guard::status(&*state.codes, &state.config)
        .await
        .unwrap();
    assert!(!status.contains("+861370001 "), "{status}");
    assert!(status.contains("+861370002 "), "{status}");
    // Judged afresh: it gets codes again, up to the threshold.
    assert_sent(&app.send_code(&mobile_in_block(1, 0), "REGISTER").await);
    let still = app.send_code(&mobile_in_block(2, 0), "REGISTER").await;
    assert_eq!(reason(&still).as_deref(), Some("SMS_GUARD"));
    let not_paused = smsauth::service::sms_guard::lift(&*state.codes, "+861370005")
        .await
        .unwrap();
    assert!(not_paused.contains("was not paused"), "{not_paused}");
    assert!(
        smsauth::service::sms_guard::lift(&*state.codes, "1370001")
            .await
            .is_err()
    );
}

async fn a_block_whose_codes_are_used_is_never_paused(setup: Setup) {
    let app = spawn_setup(setup)
        .var("SMS_RESEND_COOLDOWN_SECS", "0")
        .var("SMS_SEND_LIMIT_PER_MOBILE", "off")
        .var("SMS_GUARD_MIN_SENDS", "5/1h")
        .var("SMS_GUARD_MIN_VERIFIED_PERCENT", "50")
        .spawn()
        .await;
    // One code in two used: exactly at the minimum share, every time it is judged.
    for n in 0..8 {
        let mobile = mobile_in_block(4, n);
        if n % 2 == 0 {
            app.register_via_sms(&mobile, PASSWORD).await;
        } else {
            assert_sent(&app.send_code(&mobile, "REGISTER").await);
        }
    }
    assert_sent(&app.send_code(&mobile_in_block(4, 100), "REGISTER").await);
    // A failed use (wrong code) does not count: the block keeps 1 used of 10.
    let app = spawn_setup(setup)
        .var("SMS_RESEND_COOLDOWN_SECS", "0")
        .var("SMS_GUARD_MIN_SENDS", "5/1h")
        .spawn()
        .await;
    for n in 0..5 {
        assert_sent(&app.send_code(&mobile_in_block(6, n), "REGISTER").await);
        let wrong = app
            .register(&mobile_in_block(6, n), "000000", PASSWORD, None)
            .await;
        assert_eq!(
            error_code(&wrong).as_deref(),
            Some("INVALID_CODE"),
            "{wrong}"
        );
    }
    let paused = app.send_code(&mobile_in_block(6, 5), "REGISTER").await;
    assert_eq!(reason(&paused).as_deref(), Some("SMS_GUARD"));
}

async fn test_numbers_are_never_counted_nor_paused(setup: Setup) {
    let test_number = mobile_in_block(1, 7777);
    let app = spawn_setup(setup)
        .var("SMS_RESEND_COOLDOWN_SECS", "0")
        .var("SMS_TEST_NUMBERS", format!("{test_number}=123456"))
        .var("SMS_GLOBAL_LIMIT", "3/1h")
        .var("SMS_REGION_LIMITS", "CN=3/1h")
        .var("SMS_GUARD_MIN_SENDS", "2/1h")
        .var("METRICS_ADDR", "127.0.0.1:0")
        .spawn()
        .await;
    for _ in 0..5 {
        assert_sent(&app.send_code(&test_number, "REGISTER").await);
    }
    // Two real sends to the test number's block, never used: it is paused.
    assert_sent(&app.send_code(&mobile_in_block(1, 1), "REGISTER").await);
    assert_sent(&app.send_code(&mobile_in_block(1, 2), "REGISTER").await);
    let paused = app.send_code(&mobile_in_block(1, 3), "REGISTER").await;
    assert_eq!(reason(&paused).as_deref(), Some("SMS_GUARD"));
    // The test number still gets its fixed code, and signs up with it.
    assert_sent(&app.send_code(&test_number, "REGISTER").await);
    let registered = app.register(&test_number, "123456", PASSWORD, None).await;
    assert_eq!(error_code(&registered), None, "{registered}");
    // The budget saw two sends, not seven: one is left.
    assert_sent(&app.send_code(&mobile_in_block(2, 1), "REGISTER").await);
    let spent = app.send_code(&mobile_in_block(3, 1), "REGISTER").await;
    assert_eq!(reason(&spent).as_deref(), Some("GLOBAL_LIMIT"));
    assert_eq!(app.sms.sent().len(), 3);
    for (reason, count) in [
        ("SMS_GUARD", 1.0),
        ("GLOBAL_LIMIT", 1.0),
        ("REGION_LIMIT", 0.0),
    ] {
        let series = format!("smsauth_sms_guard_blocked_total{{reason=\"{reason}\"}}");
        assert_eq!(app.metric(&series).await, count, "{series}");
    }
}

async fn a_send_refused_for_its_mobile_gives_the_budget_back(setup: Setup) {
    let app = spawn_setup(setup)
        .var("SMS_RESEND_COOLDOWN_SECS", "60")
        .var("SMS_GLOBAL_LIMIT", "2/1h")
        .spawn()
        .await;
    assert_sent(&app.send_code("13711112222", "REGISTER").await);
    for _ in 0..5 {
        let again = app.send_code("13711112222", "REGISTER").await;
        assert_eq!(reason(&again).as_deref(), Some("COOLDOWN"));
    }
    assert_sent(&app.send_code("13711113333", "REGISTER").await);
    let spent = app.send_code("13711114444", "REGISTER").await;
    assert_eq!(reason(&spent).as_deref(), Some("GLOBAL_LIMIT"));
}

on_each!(setups:
    each_send_refusal_names_its_limit,
    each_throttle_names_its_limit,
    every_window_of_a_limit_holds,
    the_global_budget_is_exact_under_a_burst_and_alerts_once,
    region_caps_count_each_region,
    a_pumping_run_pauses_exactly_the_attacked_blocks,
    a_block_whose_codes_are_used_is_never_paused,
    test_numbers_are_never_counted_nor_paused,
    a_send_refused_for_its_mobile_gives_the_budget_back,
);

/// The operator command itself: it needs the shared store, and says so.
#[test]
fn the_sms_guard_command_acts_on_the_shared_store() {
    let run = |args: &[&str], redis: bool| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_smsauth"));
        command.env_clear().args(args);
        if redis {
            command.env("REDIS_URL", crate::helpers::redis_url());
        }
        command.output().unwrap()
    };
    let status = run(&["sms-guard", "status"], true);
    let stdout = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "{status:?}");
    assert!(
        stdout.contains("global") && stdout.contains("1000"),
        "{stdout}"
    );
    assert!(stdout.contains("Paused blocks:"), "{stdout}");

    let without_redis = run(&["sms-guard", "status"], false);
    assert!(!without_redis.status.success());
    assert!(String::from_utf8_lossy(&without_redis.stderr).contains("REDIS_URL"));

    let bad_block = run(&["sms-guard", "lift", "not-a-block"], true);
    assert!(!bad_block.status.success());
}
