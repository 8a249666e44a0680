//! Abuse limits that need a real client: password guessing, and IP spoofing.

use serde_json::json;

use crate::helpers::{Setup, error_code, error_extensions, spawn_setup};
use crate::on_each;

const LOGIN: &str = "mutation($a: String!, $p: String!) { loginWithPassword(account: $a, password: $p) { accessToken } }";
const EXISTS: &str = "query { mobileExists(mobile: \"13711112222\") }";

async fn password_guessing_is_throttled_per_account(setup: Setup) {
    let app = spawn_setup(setup)
        .var("LOGIN_FAILURE_LIMIT_PER_ACCOUNT", "3/15m")
        .spawn()
        .await;
    app.create_user(
        "alice",
        "13711112222",
        Some("a@example.com"),
        "correct horse battery",
    )
    .await;

    // Three wrong guesses by mobile, written three ways: one account as written.
    for account in ["13711112222", "+8613711112222", "+86 137-1111-2222"] {
        let answer = app
            .graphql(LOGIN, json!({ "a": account, "p": "guess" }))
            .await;
        assert_eq!(error_code(&answer).as_deref(), Some("INVALID_CREDENTIALS"));
    }
    // Now even the right password is refused by mobile from this client, with a retry time.
    let answer = app
        .graphql(
            LOGIN,
            json!({ "a": "137 1111 2222", "p": "correct horse battery" }),
        )
        .await;
    assert_eq!(
        error_code(&answer).as_deref(),
        Some("RATE_LIMITED"),
        "{answer}"
    );
    let retry_after = error_extensions(&answer)["retryAfter"].as_u64().unwrap();
    assert!((800..=900).contains(&retry_after), "{retry_after}");

    // The throttle tells nothing about which username or email belongs to that
    // mobile: those spellings answer as before, until they are guessed themselves.
    for account in ["alice", "A@example.com"] {
        let answer = app
            .graphql(LOGIN, json!({ "a": account, "p": "correct horse battery" }))
            .await;
        assert_eq!(error_code(&answer), None, "{account}: {answer}");
    }
    for _ in 0..3 {
        app.graphql(LOGIN, json!({ "a": "ALICE", "p": "guess" }))
            .await;
    }
    let answer = app
        .graphql(LOGIN, json!({ "a": "alice", "p": "correct horse battery" }))
        .await;
    assert_eq!(
        error_code(&answer).as_deref(),
        Some("RATE_LIMITED"),
        "{answer}"
    );
}

async fn password_spraying_is_throttled_per_ip(setup: Setup) {
    let app = spawn_setup(setup)
        .var("LOGIN_FAILURE_LIMIT_PER_IP", "3/1h")
        .spawn()
        .await;
    for account in ["anna", "bert", "carl"] {
        let answer = app
            .graphql(LOGIN, json!({ "a": account, "p": "password1" }))
            .await;
        assert_eq!(error_code(&answer).as_deref(), Some("INVALID_CREDENTIALS"));
    }
    let answer = app
        .graphql(LOGIN, json!({ "a": "dora", "p": "password1" }))
        .await;
    assert_eq!(
        error_code(&answer).as_deref(),
        Some("RATE_LIMITED"),
        "{answer}"
    );
}

async fn a_direct_client_cannot_spoof_its_ip(setup: Setup) {
    // No trusted proxies: X-Forwarded-For is ignored.
    let app = spawn_setup(setup)
        .var("MOBILE_EXISTS_LIMIT_PER_IP", "2/1m")
        .spawn()
        .await;
    let mut codes = Vec::new();
    for fake in ["1.1.1.1", "2.2.2.2", "3.3.3.3"] {
        let answer: serde_json::Value = app
            .post("/graphql")
            .header("x-forwarded-for", fake)
            .json(&json!({ "query": EXISTS }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        codes.push(error_code(&answer));
    }
    assert_eq!(codes, vec![None, None, Some("RATE_LIMITED".to_owned())]);

    // Behind a trusted proxy, the forwarded address is the client.
    let app = spawn_setup(setup)
        .var("MOBILE_EXISTS_LIMIT_PER_IP", "2/1m")
        .var("TRUSTED_PROXIES", "127.0.0.0/8")
        .spawn()
        .await;
    for client in ["198.51.100.1", "198.51.100.2", "198.51.100.3"] {
        let answer: serde_json::Value = app
            .post("/graphql")
            .header("x-forwarded-for", format!("6.6.6.6, {client}"))
            .json(&json!({ "query": EXISTS }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            error_code(&answer),
            None,
            "each client has its own limit: {answer}"
        );
    }
}

async fn parallel_guesses_cannot_slip_past_the_count(setup: Setup) {
    let app = spawn_setup(setup)
        .var("LOGIN_FAILURE_LIMIT_PER_ACCOUNT", "3/15m")
        .spawn()
        .await;
    app.create_user("alice", "13711112222", None, "correct horse battery")
        .await;

    let answers = futures::future::join_all(
        (0..30).map(|_| app.graphql(LOGIN, json!({ "a": "alice", "p": "guess" }))),
    )
    .await;

    let guessed = answers
        .iter()
        .filter(|a| error_code(a).as_deref() == Some("INVALID_CREDENTIALS"))
        .count();
    let limited = answers
        .iter()
        .filter(|a| error_code(a).as_deref() == Some("RATE_LIMITED"))
        .count();
    assert_eq!(
        (guessed, limited),
        (3, 27),
        "exactly the limit's count of guesses is checked"
    );
    // And a successful login does not use up the allowance.
    let app = spawn_setup(setup)
        .var("LOGIN_FAILURE_LIMIT_PER_ACCOUNT", "2/15m")
        .spawn()
        .await;
    app.create_user("bob", "13722223333", None, "correct horse battery")
        .await;
    for _ in 0..4 {
        app.login("bob", "correct horse battery").await;
    }
}

/// An email may contain `|`, the separator of the per-(account, network)
/// key: failures as `victim@example.com|<victim's network>` from elsewhere
/// must not fill the victim's own counter.
async fn a_forged_email_cannot_fill_another_clients_throttle(setup: Setup) {
    let app = spawn_setup(setup)
        .var("TRUSTED_PROXIES", "127.0.0.0/8")
        .var("LOGIN_FAILURE_LIMIT_PER_ACCOUNT", "3/15m")
        .spawn()
        .await;
    app.create_user(
        "victim",
        "13711112222",
        Some("victim@example.com"),
        "correct horse",
    )
    .await;
    let login_from = |client: &'static str, account: &'static str, password: &'static str| {
        let request = app.post("/graphql").header("x-forwarded-for", client).json(&json!({
            "query": "mutation($a: String!, $p: String!) { loginWithPassword(account: $a, password: $p) { accessToken } }",
            "variables": { "a": account, "p": password },
        }));
        async move {
            let answer: serde_json::Value = request.send().await.unwrap().json().await.unwrap();
            error_code(&answer)
        }
    };
    for _ in 0..3 {
        let code = login_from(
            "198.51.100.7",
            "victim@example.com|203.0.113.5/32",
            "guess1234",
        )
        .await;
        assert_eq!(code.as_deref(), Some("INVALID_CREDENTIALS"));
    }
    let code = login_from("203.0.113.5", "victim@example.com", "correct horse").await;
    assert_eq!(
        code, None,
        "the victim was throttled by someone else's failures"
    );
}

on_each!(setups:
    a_forged_email_cannot_fill_another_clients_throttle,
    parallel_guesses_cannot_slip_past_the_count,
    password_guessing_is_throttled_per_account,
    password_spraying_is_throttled_per_ip,
    a_direct_client_cannot_spoof_its_ip,
);
