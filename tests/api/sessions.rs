//! Refresh tokens: rotation, reuse detection, logout, storage.

use std::time::{Duration, Instant};

use futures::future::join_all;
use sea_orm::{ConnectionTrait, TransactionTrait};
use serde_json::{Value, json};

use crate::helpers::{Setup, TestApp, error_code, spawn_setup};
use crate::on_each;

const PASSWORD: &str = "correct horse battery";
const LOGOUT: &str = "mutation($t: String!) { logout(refreshToken: $t) }";
const REFRESH: &str = "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken refreshToken expiresIn tokenType user { id mobile } } }";

async fn refresh(app: &TestApp, token: &str) -> Value {
    app.graphql(REFRESH, json!({ "t": token })).await
}

fn tokens(payload: &Value) -> (String, String) {
    (
        payload["accessToken"].as_str().unwrap().to_owned(),
        payload["refreshToken"].as_str().unwrap().to_owned(),
    )
}

async fn signed_in(app: &TestApp) -> (String, String) {
    app.create_user("alice", "13711112222", None, PASSWORD)
        .await;
    tokens(&app.login("alice", PASSWORD).await)
}

async fn refresh_rotates_the_pair(setup: Setup) {
    let app = spawn_setup(setup).spawn().await;
    let (_, first) = signed_in(&app).await;

    let answer = refresh(&app, &first).await;
    assert_eq!(error_code(&answer), None, "{answer}");
    let (access, second) = tokens(&answer["data"]["refreshToken"]);
    assert_ne!(first, second);
    assert_eq!(answer["data"]["refreshToken"]["expiresIn"], 900);
    assert_eq!(
        answer["data"]["refreshToken"]["user"]["mobile"],
        "+8613711112222"
    );
    let me = app
        .graphql_as(Some(&access), "{ me { username } }", json!({}))
        .await;
    assert_eq!(me["data"]["me"]["username"], "alice");

    // The old one is retired.
    let again = refresh(&app, &first).await;
    assert_eq!(error_code(&again).as_deref(), Some("INVALID_REFRESH_TOKEN"));
}

async fn reusing_a_retired_token_ends_the_family(setup: Setup) {
    let app = spawn_setup(setup).spawn().await;
    let (_, first) = signed_in(&app).await;
    let (_, second) = tokens(&refresh(&app, &first).await["data"]["refreshToken"]);

    // A thief replays the first token...
    let replay = refresh(&app, &first).await;
    assert_eq!(
        error_code(&replay).as_deref(),
        Some("INVALID_REFRESH_TOKEN")
    );
    // ...and the legitimate successor dies with it.
    let successor = refresh(&app, &second).await;
    assert_eq!(
        error_code(&successor).as_deref(),
        Some("INVALID_REFRESH_TOKEN"),
        "{successor}"
    );
}

async fn ten_parallel_refreshes_succeed_once(setup: Setup) {
    let app = spawn_setup(setup).spawn().await;
    let (_, token) = signed_in(&app).await;

    let answers = join_all((0..10).map(|_| refresh(&app, &token))).await;

    let winners: Vec<&Value> = answers.iter().filter(|a| error_code(a).is_none()).collect();
    assert_eq!(winners.len(), 1, "{answers:?}");
    assert!(
        answers
            .iter()
            .filter(|a| error_code(a).is_some())
            .all(|a| error_code(a).as_deref() == Some("INVALID_REFRESH_TOKEN"))
    );
    // Losers that arrived after the winner retired the token presented a
    // retired token: by the contract that is reuse, so the family may be gone.
    // Clients refresh single-flight (see the README) and never hit this.

    // Only the winner stored a successor: the first token and one more.
    assert_eq!(app.count("SELECT COUNT(*) FROM refresh_tokens").await, 2);
}

async fn logout_ends_the_family_and_is_idempotent(setup: Setup) {
    let app = spawn_setup(setup).spawn().await;
    let (_, first) = signed_in(&app).await;
    let (_, second) = tokens(&refresh(&app, &first).await["data"]["refreshToken"]);
    let (_, other_session) = tokens(&app.login("alice", PASSWORD).await);

    for token in [second.as_str(), second.as_str(), "unknown", ""] {
        let answer = app.graphql(LOGOUT, json!({ "t": token })).await;
        assert_eq!(answer["data"]["logout"], true, "{token}: {answer}");
    }
    assert_eq!(
        error_code(&refresh(&app, &second).await).as_deref(),
        Some("INVALID_REFRESH_TOKEN")
    );
    // Another session of the same user is untouched.
    assert_eq!(error_code(&refresh(&app, &other_session).await), None);
}

/// A logout that waits on an in-flight rotation's row lock ends the successor
/// that rotation inserted too, though its first pass's snapshot predates it
/// (PostgreSQL; SQLite runs one writer at a time).
#[tokio::test]
async fn a_logout_waiting_on_a_rotation_ends_its_successor_too() {
    let app = spawn_setup(Setup::PostgresRedis).spawn().await;
    let (_, first) = signed_in(&app).await;
    // A rotation in flight: the token retired and its successor inserted, uncommitted.
    let rotation = app.state.db.begin().await.unwrap();
    rotation
        .execute_unprepared("UPDATE refresh_tokens SET used_at = now()")
        .await
        .unwrap();
    rotation
        .execute_unprepared(
            "INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, created_at, expires_at, token_version) \
             SELECT gen_random_uuid(), user_id, family_id, 'successor', now(), expires_at, token_version FROM refresh_tokens",
        )
        .await
        .unwrap();

    let logout = app.graphql(LOGOUT, json!({ "t": first }));
    let commit_once_logout_waits = async {
        let waiting = "SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()";
        let deadline = Instant::now() + Duration::from_secs(10);
        while app.count(waiting).await == 0 {
            assert!(
                Instant::now() < deadline,
                "the logout never waited on the rotation"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        rotation.commit().await.unwrap();
    };
    let (answer, ()) = tokio::join!(logout, commit_once_logout_waits);

    assert_eq!(answer["data"]["logout"], true, "{answer}");
    let live = "SELECT COUNT(*) FROM refresh_tokens WHERE revoked_at IS NULL";
    assert_eq!(app.count(live).await, 0);
}

async fn the_database_holds_no_plain_refresh_token(setup: Setup) {
    let app = spawn_setup(setup).spawn().await;
    let (_, token) = signed_in(&app).await;
    let hex = token.trim_start_matches("smsauth_rt_");
    let plain = app
        .count(&format!(
            "SELECT COUNT(*) FROM refresh_tokens WHERE token_hash = '{token}' OR token_hash LIKE '%{hex}%' OR user_agent LIKE '%{hex}%'"
        ))
        .await;
    assert_eq!(plain, 0);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM refresh_tokens WHERE length(token_hash) = 64")
            .await,
        1
    );
}

on_each!(setups:
    refresh_rotates_the_pair,
    reusing_a_retired_token_ends_the_family,
    ten_parallel_refreshes_succeed_once,
    logout_ends_the_family_and_is_idempotent,
    the_database_holds_no_plain_refresh_token,
);

async fn a_session_older_than_the_token_version_cannot_refresh(setup: Setup) {
    // A sign-in that raced a password reset (read the user before it, wrote its
    // refresh token after the reset revoked every family) carries the old version.
    let app = spawn_setup(setup).spawn().await;
    let (_, token) = signed_in(&app).await;
    let backend = app.state.db.get_database_backend();
    sea_orm::ConnectionTrait::execute_raw(
        &app.state.db,
        sea_orm::Statement::from_string(
            backend,
            "UPDATE users SET token_version = token_version + 1".to_owned(),
        ),
    )
    .await
    .unwrap();
    let answer = refresh(&app, &token).await;
    assert_eq!(
        error_code(&answer).as_deref(),
        Some("INVALID_REFRESH_TOKEN"),
        "{answer}"
    );
}

on_each!(setups: a_session_older_than_the_token_version_cannot_refresh);
