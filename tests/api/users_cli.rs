//! `smsauth users …` end to end: the real binary, with the environment of the
//! running app, acting on what the app's users notice over HTTP.

use std::process::Output;

use serde_json::{Value, json};
use smsauth::config::RedisTarget;

use crate::helpers::{
    Setup, TestApp, error_code, redis_url, run_to_exit, smsauth_command, spawn_setup,
};
use crate::on_each;
use crate::scale_out::three_instances;

const ME: &str = "{ me { id } }";
const REFRESH: &str =
    "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken refreshToken } }";
const LOGIN: &str = "mutation($a: String!, $p: String!) { loginWithPassword(account: $a, password: $p) { accessToken refreshToken } }";
const PASSWORD: &str = "correct horse battery";

/// Runs `smsauth users ARGS…` against the app's database and code store.
fn users(app: &TestApp, args: &[&str]) -> Output {
    use secrecy::ExposeSecret;
    let mut all = vec!["users"];
    all.extend_from_slice(args);
    let mut command = smsauth_command(&all);
    command.env(
        "DATABASE_URL",
        app.state.config.database_url.expose_secret(),
    );
    if let (Some(redis), Some(prefix)) = (&app.state.config.redis, &app.redis_prefix) {
        match &redis.target {
            RedisTarget::Single(_) => command.env("REDIS_URL", redis_url()),
            RedisTarget::Cluster(_) => command.env(
                "REDIS_CLUSTER_NODES",
                crate::redis_cluster::shared().seeds(),
            ),
        };
        command.env("REDIS_KEY_PREFIX", prefix);
    }
    run_to_exit(&mut command)
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_success(output: &Output) {
    assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr(output));
}

async fn me_code(app: &TestApp, token: &str) -> Option<String> {
    error_code(&app.graphql_as(Some(token), ME, json!({})).await)
}

async fn refresh_code(app: &TestApp, token: &str) -> Option<String> {
    error_code(&app.graphql(REFRESH, json!({ "t": token })).await)
}

async fn login_answer(app: &TestApp, account: &str, password: &str) -> Value {
    app.graphql(LOGIN, json!({ "a": account, "p": password }))
        .await
}

/// The same from the client `ip`, behind the app's trusted (loopback) proxy.
async fn login_from(app: &TestApp, ip: &str, account: &str, password: &str) -> Value {
    app.post("/graphql")
        .header("x-forwarded-for", ip)
        .json(&json!({ "query": LOGIN, "variables": { "a": account, "p": password } }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Access and refresh token of a fresh sign-in.
async fn sign_in(app: &TestApp) -> (String, String) {
    let payload = app.login("alice", PASSWORD).await;
    (
        payload["accessToken"].as_str().unwrap().to_owned(),
        payload["refreshToken"].as_str().unwrap().to_owned(),
    )
}

async fn show_prints_the_user_by_any_account_name(setup: Setup) {
    // Arrange
    let app = spawn_setup(setup).spawn().await;
    let id = app
        .create_user("alice", "13711112222", Some("alice@example.com"), PASSWORD)
        .await;
    let never = stdout(&users(&app, &["show", "alice"]));
    sign_in(&app).await;
    sign_in(&app).await;

    for account in [
        "alice",
        "ALICE",
        "13711112222",
        "+8613711112222",
        "Alice@Example.com",
    ] {
        // Act
        let output = users(&app, &["show", account]);

        // Assert
        assert_success(&output);
        let shown = stdout(&output);
        for line in [
            format!("id: {id}"),
            "username: alice".to_owned(),
            "mobile: +8613711112222".to_owned(),
            "email: alice@example.com".to_owned(),
            "active: yes".to_owned(),
            "active sessions: 2".to_owned(),
        ] {
            assert!(shown.lines().any(|l| l == line), "{line:?} in {shown}");
        }
        assert!(shown.contains("created: 20"), "{shown}");
        assert!(!shown.contains("last login: never"), "{shown}");
    }
    assert!(never.contains("last login: never"), "{never}");
    assert!(never.contains("active sessions: 0"), "{never}");
}

async fn unknown_accounts_exit_1_with_one_line(setup: Setup) {
    let app = spawn_setup(setup).spawn().await;
    app.create_user("alice", "13711112222", None, PASSWORD)
        .await;
    for command in ["show", "deactivate", "activate", "logout", "unlock"] {
        for account in [
            "bob",
            "13700000000",
            "nobody@example.com",
            "not an account!",
            "",
        ] {
            let output = users(&app, &[command, account]);
            assert_eq!(output.status.code(), Some(1), "{command} {account:?}");
            let said = stderr(&output);
            assert_eq!(said.trim_end().lines().count(), 1, "{command}: {said}");
            assert!(said.contains("no account"), "{command}: {said}");
        }
    }
    // Nothing happened to the one who exists.
    let shown = stdout(&users(&app, &["show", "alice"]));
    assert!(shown.contains("active: yes"), "{shown}");
}

async fn deactivate_ends_everything_at_once(setup: Setup) {
    // Arrange
    let app = spawn_setup(setup).spawn().await;
    app.create_user("alice", "13711112222", None, PASSWORD)
        .await;
    let (access, refresh) = sign_in(&app).await;
    assert_eq!(me_code(&app, &access).await, None);

    // Act
    let output = users(&app, &["deactivate", "alice"]);

    // Assert: sign-in refused, and both tokens dead without waiting.
    assert_success(&output);
    assert!(stdout(&output).contains("1 session"), "{}", stdout(&output));
    assert_eq!(
        me_code(&app, &access).await.as_deref(),
        Some("UNAUTHENTICATED")
    );
    assert_eq!(
        refresh_code(&app, &refresh).await.as_deref(),
        Some("INVALID_REFRESH_TOKEN")
    );
    assert_eq!(
        error_code(&login_answer(&app, "alice", PASSWORD).await).as_deref(),
        Some("INVALID_CREDENTIALS")
    );
    // SMS sign-in treats the account as unregistered: no code is even sent.
    let sent = app.send_code("13711112222", "LOGIN").await;
    assert_eq!(
        error_code(&sent).as_deref(),
        Some("USER_NOT_FOUND"),
        "{sent}"
    );
    let shown = stdout(&users(&app, &["show", "alice"]));
    assert!(shown.contains("active: no"), "{shown}");
    assert!(shown.contains("active sessions: 0"), "{shown}");

    // Activating allows sign-in again; the old session stays ended.
    assert_success(&users(&app, &["activate", "alice"]));
    assert_eq!(
        me_code(&app, &access).await.as_deref(),
        Some("UNAUTHENTICATED")
    );
    assert_eq!(
        refresh_code(&app, &refresh).await.as_deref(),
        Some("INVALID_REFRESH_TOKEN")
    );
    let (fresh, _) = sign_in(&app).await;
    assert_eq!(me_code(&app, &fresh).await, None);
    assert!(stdout(&users(&app, &["show", "alice"])).contains("active: yes"));
}

async fn logout_ends_every_session_but_not_the_account(setup: Setup) {
    // Arrange
    let app = spawn_setup(setup).spawn().await;
    app.create_user("alice", "13711112222", None, PASSWORD)
        .await;
    let (phone_access, phone_refresh) = sign_in(&app).await;
    let (laptop_access, laptop_refresh) = sign_in(&app).await;

    // Act
    let output = users(&app, &["logout", "+8613711112222"]);

    // Assert
    assert_success(&output);
    assert!(stdout(&output).contains("2 session"), "{}", stdout(&output));
    for access in [&phone_access, &laptop_access] {
        assert_eq!(
            me_code(&app, access).await.as_deref(),
            Some("UNAUTHENTICATED")
        );
    }
    for refresh in [&phone_refresh, &laptop_refresh] {
        assert_eq!(
            refresh_code(&app, refresh).await.as_deref(),
            Some("INVALID_REFRESH_TOKEN")
        );
    }
    let (fresh, fresh_refresh) = sign_in(&app).await;
    assert_eq!(me_code(&app, &fresh).await, None);
    assert_eq!(refresh_code(&app, &fresh_refresh).await, None);
}

async fn deactivate_beats_sign_ins_racing_it(setup: Setup) {
    // Arrange
    let app = spawn_setup(setup).spawn().await;
    app.create_user("alice", "13711112222", None, PASSWORD)
        .await;

    // Act: sign-ins in parallel with the deactivation.
    let racing: Vec<_> = (0..8)
        .map(|_| {
            let (address, client) = (app.address.clone(), app.client.clone());
            tokio::spawn(async move {
                let answer: Value = client
                    .post(format!("{address}/graphql"))
                    .json(&json!({ "query": LOGIN, "variables": { "a": "alice", "p": PASSWORD } }))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                answer
            })
        })
        .collect();
    let output = tokio::task::block_in_place(|| users(&app, &["deactivate", "alice"]));
    assert_success(&output);

    // Assert: whatever the racers got, none of it works afterwards.
    for racer in racing {
        let answer = racer.await.unwrap();
        let payload = &answer["data"]["loginWithPassword"];
        if let (Some(access), Some(refresh)) = (
            payload["accessToken"].as_str(),
            payload["refreshToken"].as_str(),
        ) {
            assert_eq!(
                me_code(&app, access).await.as_deref(),
                Some("UNAUTHENTICATED")
            );
            assert_eq!(
                refresh_code(&app, refresh).await.as_deref(),
                Some("INVALID_REFRESH_TOKEN")
            );
        } else {
            assert_eq!(
                error_code(&answer).as_deref(),
                Some("INVALID_CREDENTIALS"),
                "{answer}"
            );
        }
    }
}

async fn unlock_lifts_the_account_throttle(setup: Setup) {
    // Arrange: the account throttle is exhausted by wrong passwords.
    let app = spawn_setup(setup)
        .var("LOGIN_FAILURE_LIMIT_PER_ACCOUNT", "3/15m")
        .spawn()
        .await;
    app.create_user("alice", "13711112222", None, PASSWORD)
        .await;
    app.create_user("bob", "13711113333", None, PASSWORD).await;
    for name in ["alice", "bob"] {
        for _ in 0..3 {
            let answer = login_answer(&app, name, "wrong password").await;
            assert_eq!(error_code(&answer).as_deref(), Some("INVALID_CREDENTIALS"));
        }
        let locked = login_answer(&app, name, PASSWORD).await;
        assert_eq!(
            error_code(&locked).as_deref(),
            Some("RATE_LIMITED"),
            "{locked}"
        );
    }

    // Act
    let output = users(&app, &["unlock", "alice"]);

    // Assert
    if app.redis_prefix.is_none() {
        // The in-process store lives inside the server: the CLI says so.
        assert_eq!(output.status.code(), Some(1));
        assert!(stderr(&output).contains("REDIS_URL"), "{}", stderr(&output));
        return;
    }
    assert_success(&output);
    let answer = login_answer(&app, "alice", PASSWORD).await;
    assert_eq!(error_code(&answer), None, "{answer}");
    // Only that account was unlocked.
    let bob = login_answer(&app, "bob", PASSWORD).await;
    assert_eq!(error_code(&bob).as_deref(), Some("RATE_LIMITED"), "{bob}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unlock_on_a_redis_cluster_lifts_the_throttle_of_every_network() {
    // Arrange: three instances on the cluster; alice's password is guessed
    // from five networks, each through another instance, until each is locked.
    let apps = three_instances(&[
        ("LOGIN_FAILURE_LIMIT_PER_ACCOUNT", "3/15m"),
        ("TRUSTED_PROXIES", "127.0.0.0/8"),
    ])
    .await;
    apps[0]
        .create_user("alice", "13711112222", Some("alice@example.com"), PASSWORD)
        .await;
    apps[0]
        .create_user("bob", "13711113333", None, PASSWORD)
        .await;
    let networks = [
        "198.51.100.1",
        "198.51.100.2",
        "203.0.113.9",
        "2001:db8::1",
        "2001:db8:5::1",
    ];
    for (i, ip) in networks.iter().enumerate() {
        for attempt in 0..3 {
            let app = &apps[(i + attempt) % 3];
            let answer = login_from(app, ip, "alice", "wrong password").await;
            assert_eq!(
                error_code(&answer).as_deref(),
                Some("INVALID_CREDENTIALS"),
                "{answer}"
            );
        }
        for app in &apps {
            let locked = login_from(app, ip, "alice", PASSWORD).await;
            assert_eq!(
                error_code(&locked).as_deref(),
                Some("RATE_LIMITED"),
                "{locked}"
            );
        }
    }
    for _ in 0..3 {
        login_from(&apps[1], networks[0], "bob", "wrong password").await;
    }

    // Act
    let output = users(&apps[2], &["unlock", "alice@example.com"]);

    // Assert: the right password goes through from every network, on every instance.
    assert_success(&output);
    for (i, ip) in networks.iter().enumerate() {
        let answer = login_from(&apps[i % 3], ip, "alice", PASSWORD).await;
        assert_eq!(error_code(&answer), None, "{ip}: {answer}");
    }
    // Only that account was unlocked.
    let bob = login_from(&apps[0], networks[0], "bob", PASSWORD).await;
    assert_eq!(error_code(&bob).as_deref(), Some("RATE_LIMITED"), "{bob}");
}

on_each!(setups:
    show_prints_the_user_by_any_account_name,
    unknown_accounts_exit_1_with_one_line,
    deactivate_ends_everything_at_once,
    logout_ends_every_session_but_not_the_account,
    deactivate_beats_sign_ins_racing_it,
    unlock_lifts_the_account_throttle,
);
