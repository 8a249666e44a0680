//! Three instances of the service on one Redis Cluster and one PostgreSQL
//! database, as a load balancer would spread requests: every race of section
//! 2 and every limit holds when the racing requests land on different
//! instances.

use futures::future::join_all;
use serde_json::{Value, json};

use crate::helpers::{
    Backend, Store, TestApp, error_code, error_extensions, fresh_postgres_database, spawn_app,
};

const PASSWORD: &str = "correct horse battery";
const LOGIN: &str = "mutation($a: String!, $p: String!) { loginWithPassword(account: $a, password: $p) { accessToken } }";
const EXISTS: &str = "query($m: String!) { mobileExists(mobile: $m) }";
const REFRESH: &str =
    "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken refreshToken } }";

/// Three instances sharing one database and one key prefix on the shared cluster.
pub async fn three_instances(vars: &[(&'static str, &str)]) -> Vec<TestApp> {
    let database = fresh_postgres_database().await;
    let prefix = format!("smsauth-test-{}", uuid::Uuid::new_v4().simple());
    let mut instances = Vec::new();
    // One after the other: the first applies the migrations.
    for _ in 0..3 {
        let mut builder = spawn_app(Backend::Postgres)
            .store(Store::RedisCluster)
            .database_url(database.clone())
            .redis_prefix(prefix.clone());
        for (key, value) in vars {
            builder = builder.var(key, *value);
        }
        instances.push(builder.spawn().await);
    }
    instances
}

fn successes(answers: &[Value]) -> usize {
    answers.iter().filter(|a| error_code(a).is_none()).count()
}

/// Exactly `count` of `answers` got through the limit (succeeded, or failed
/// with `passed`, the error of a request the limit let through); every
/// other one was refused by the limit, naming `reason`.
fn assert_limited_to(answers: &[Value], passed: Option<&str>, count: usize, reason: &str) {
    let (through, refused): (Vec<&Value>, Vec<&Value>) = answers
        .iter()
        .partition(|a| error_code(a).as_deref() == passed);
    assert_eq!(through.len(), count, "{answers:?}");
    for answer in refused {
        assert_rate_limited(answer, reason);
    }
}

fn sms_sent(instances: &[TestApp]) -> usize {
    instances.iter().map(|app| app.sms.sent().len()).sum()
}

/// The code whichever instance sent it sent to `e164`.
fn code_sent(instances: &[TestApp], e164: &str) -> String {
    instances
        .iter()
        .find_map(|app| app.sms.last_code_to(e164))
        .expect("a code was sent")
}

fn assert_rate_limited(answer: &Value, reason: &str) {
    assert_eq!(
        error_code(answer).as_deref(),
        Some("RATE_LIMITED"),
        "{answer}"
    );
    let extensions = error_extensions(answer);
    assert!(
        extensions["retryAfter"].as_u64().is_some_and(|s| s > 0),
        "{answer}"
    );
    assert_eq!(extensions["reason"], reason, "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_code_sent_via_one_instance_works_once_via_another() {
    let apps = three_instances(&[]).await;
    apps[0]
        .create_user("alice", "13711112222", None, PASSWORD)
        .await;
    let sent = apps[0].send_code("13711112222", "LOGIN").await;
    assert_eq!(error_code(&sent), None, "{sent}");
    let code = code_sent(&apps, "+8613711112222");

    let via_b = apps[1].login_with_sms("13711112222", &code).await;
    assert_eq!(error_code(&via_b), None, "{via_b}");
    let via_c = apps[2].login_with_sms("13711112222", &code).await;
    assert_eq!(
        error_code(&via_c).as_deref(),
        Some("INVALID_CODE"),
        "{via_c}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_parallel_logins_over_three_instances_sign_in_once() {
    let apps = three_instances(&[]).await;
    apps[0]
        .create_user("alice", "13711112222", None, PASSWORD)
        .await;
    apps[1].send_code("13711112222", "LOGIN").await;
    let code = code_sent(&apps, "+8613711112222");

    let answers = join_all((0..30).map(|i| apps[i % 3].login_with_sms("13711112222", &code))).await;

    assert_eq!(successes(&answers), 1, "exactly one login succeeds");
    assert!(
        answers
            .iter()
            .filter(|a| error_code(a).is_some())
            .all(|a| error_code(a).as_deref() == Some("INVALID_CODE")),
        "{answers:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_parallel_registrations_over_three_instances_create_one_user() {
    let apps = three_instances(&[]).await;
    apps[2].send_code("13711112222", "REGISTER").await;
    let code = code_sent(&apps, "+8613711112222");

    let answers = join_all((0..20).map(|i| {
        let (app, code, name) = (&apps[i % 3], code.clone(), format!("racer{i}"));
        async move {
            app.register("13711112222", &code, PASSWORD, Some(&name))
                .await
        }
    }))
    .await;

    assert_eq!(successes(&answers), 1, "{answers:?}");
    assert_eq!(apps[0].count("SELECT COUNT(*) FROM users").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_parallel_sends_over_three_instances_send_one_sms() {
    let apps = three_instances(&[]).await;
    for app in &apps {
        // A slow provider widens the window in which duplicates could slip through.
        app.sms.delay(Some(std::time::Duration::from_millis(50)));
    }

    let answers = join_all((0..20).map(|i| apps[i % 3].send_code("13711112222", "REGISTER"))).await;

    assert_limited_to(&answers, None, 1, "COOLDOWN");
    assert_eq!(sms_sent(&apps), 1, "exactly one provider call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_parallel_refreshes_over_three_instances_rotate_once() {
    let apps = three_instances(&[]).await;
    apps[0]
        .create_user("alice", "13711112222", None, PASSWORD)
        .await;
    let refresh_token = apps[0].login("alice", PASSWORD).await["refreshToken"]
        .as_str()
        .unwrap()
        .to_owned();

    let answers =
        join_all((0..10).map(|i| apps[i % 3].graphql(REFRESH, json!({ "t": refresh_token }))))
            .await;

    assert_eq!(successes(&answers), 1, "{answers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cooldown_and_the_per_mobile_cap_count_once_across_instances() {
    let apps = three_instances(&[("SMS_SEND_LIMIT_PER_MOBILE", "2/1h")]).await;
    assert_eq!(
        error_code(&apps[0].send_code("13711112222", "REGISTER").await),
        None
    );
    // The cooldown started on A holds on B and C.
    let on_b = apps[1].send_code("13711112222", "REGISTER").await;
    assert_rate_limited(&on_b, "COOLDOWN");
    let retry_after = error_extensions(&on_b)["retryAfter"].as_u64().unwrap();
    assert!((55..=60).contains(&retry_after), "{retry_after}");
    assert_rate_limited(
        &apps[2].send_code("13711112222", "REGISTER").await,
        "COOLDOWN",
    );
    assert_eq!(sms_sent(&apps), 1);

    // Without a cooldown: 9 parallel sends to one mobile over three instances, cap 2.
    let apps = three_instances(&[
        ("SMS_RESEND_COOLDOWN_SECS", "0"),
        ("SMS_SEND_LIMIT_PER_MOBILE", "2/1h"),
    ])
    .await;
    let answers = join_all((0..9).map(|i| apps[i % 3].send_code("13711112222", "REGISTER"))).await;
    assert_limited_to(&answers, None, 2, "MOBILE_LIMIT");
    assert_eq!(sms_sent(&apps), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_per_ip_limit_counts_once_across_instances() {
    let apps = three_instances(&[
        ("SMS_SEND_LIMIT_PER_IP", "4/1h"),
        ("SMS_VERIFY_LIMIT_PER_IP", "4/1h"),
        ("MOBILE_EXISTS_LIMIT_PER_IP", "4/1m"),
        ("LOGIN_FAILURE_LIMIT_PER_IP", "4/1h"),
    ])
    .await;

    // Sends to 12 different mobiles, in parallel, spread over the instances.
    let sends = join_all((0..12).map(|i| {
        let mobile = format!("137000000{i:02}");
        let app = &apps[i % 3];
        async move { app.send_code(&mobile, "REGISTER").await }
    }))
    .await;
    assert_limited_to(&sends, None, 4, "IP_LIMIT");
    assert_eq!(sms_sent(&apps), 4);

    // Wrong codes for never-sent mobiles: 4 count, then every check is refused.
    let checks = join_all((0..12).map(|i| {
        let mobile = format!("137100000{i:02}");
        let app = &apps[i % 3];
        async move { app.register(&mobile, "000000", PASSWORD, None).await }
    }))
    .await;
    assert_limited_to(&checks, Some("INVALID_CODE"), 4, "VERIFY_LIMIT");

    let lookups =
        join_all((0..12).map(|i| apps[i % 3].graphql(EXISTS, json!({ "m": "13711112222" })))).await;
    assert_limited_to(&lookups, None, 4, "MOBILE_EXISTS_LIMIT");

    let logins = join_all((0..12).map(|i| {
        let account = format!("nobody{i}");
        let app = &apps[i % 3];
        async move {
            app.graphql(LOGIN, json!({ "a": account, "p": "password1" }))
                .await
        }
    }))
    .await;
    assert_limited_to(&logins, Some("INVALID_CREDENTIALS"), 4, "LOGIN_THROTTLE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_per_account_password_throttle_counts_once_across_instances() {
    let apps = three_instances(&[("LOGIN_FAILURE_LIMIT_PER_ACCOUNT", "3/15m")]).await;
    apps[0]
        .create_user("alice", "13711112222", None, PASSWORD)
        .await;
    let guesses =
        join_all((0..9).map(|i| apps[i % 3].graphql(LOGIN, json!({ "a": "alice", "p": "guess" }))))
            .await;
    assert_limited_to(&guesses, Some("INVALID_CREDENTIALS"), 3, "LOGIN_THROTTLE");
    // Now even the right password is refused, on every instance.
    for app in &apps {
        assert_rate_limited(
            &app.graphql(LOGIN, json!({ "a": "alice", "p": PASSWORD }))
                .await,
            "LOGIN_THROTTLE",
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_sms_budget_and_the_pumping_guard_are_exact_across_instances() {
    let apps = three_instances(&[
        ("SMS_RESEND_COOLDOWN_SECS", "0"),
        ("SMS_SEND_LIMIT_PER_MOBILE", "off"),
        ("SMS_GLOBAL_LIMIT", "15/1h"),
        ("SMS_GUARD_MIN_SENDS", "10/1h"),
    ])
    .await;
    // Pumping one block through all three instances: it gets exactly 10 codes.
    let pumping = (0..40).map(|i| {
        let app = &apps[i % 3];
        async move {
            app.send_code(&format!("+861370001{:04}", i % 20), "REGISTER")
                .await
        }
    });
    let answers = join_all(pumping).await;
    assert_limited_to(&answers, None, 10, "SMS_GUARD");
    assert_eq!(sms_sent(&apps), 10);
    // Twenty other blocks, one send each: the budget has 5 left, and gives 5.
    let spread = (0..20).map(|b| {
        let app = &apps[b % 3];
        async move { app.send_code(&format!("1380{b:03}0000"), "REGISTER").await }
    });
    let answers = join_all(spread).await;
    assert_limited_to(&answers, None, 5, "GLOBAL_LIMIT");
    assert_eq!(sms_sent(&apps), 15);
}
