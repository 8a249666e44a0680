use chrono::{Duration, Utc};
use sea_orm::ConnectionTrait;
use serde_json::json;
use smsauth::auth::JwtKeys;

use crate::helpers::{Backend, error_code, spawn_app};
use crate::on_each;

const ME: &str = "{ me { id username mobile email createdAt lastLoginAt } }";

async fn me_needs_a_valid_token(backend: Backend) {
    // Arrange
    let app = spawn_app(backend).spawn().await;
    let id = app
        .create_user(
            "alice",
            "13711112222",
            Some("a@example.com"),
            "correct horse battery",
        )
        .await;
    let payload = app.login("alice", "correct horse battery").await;
    let token = payload["accessToken"].as_str().unwrap();

    // A valid token: the owner sees everything.
    let answer = app.graphql_as(Some(token), ME, json!({})).await;
    assert_eq!(error_code(&answer), None, "{answer}");
    assert_eq!(answer["data"]["me"]["id"], id.to_string());
    assert_eq!(answer["data"]["me"]["mobile"], "+8613711112222");
    assert_eq!(answer["data"]["me"]["email"], "a@example.com");
    assert!(
        answer["data"]["me"]["createdAt"]
            .as_str()
            .unwrap()
            .contains('T')
    );

    // No token, garbage, a forged one and an expired one.
    let other_keys = JwtKeys::new(&[9u8; 32], 900, "smsauth", "smsauth");
    let forged = other_keys.issue(id, 0, Utc::now()).unwrap();
    let our_keys = &app.state.jwt;
    let expired = our_keys
        .issue(id, 0, Utc::now() - Duration::hours(2))
        .unwrap();
    for bad in [
        None,
        Some("garbage"),
        Some(""),
        Some(forged.as_str()),
        Some(expired.as_str()),
    ] {
        let answer = app.graphql_as(bad, ME, json!({})).await;
        assert_eq!(
            error_code(&answer).as_deref(),
            Some("UNAUTHENTICATED"),
            "{bad:?}: {answer}"
        );
        assert_eq!(answer["data"], serde_json::Value::Null);
    }
}

async fn owner_only_fields_are_forbidden_to_others(backend: Backend) {
    let app = spawn_app(backend).spawn().await;
    app.create_user(
        "alice",
        "13711112222",
        Some("a@example.com"),
        "correct horse battery",
    )
    .await;
    let bob = app
        .create_user(
            "bob",
            "13722223333",
            Some("b@example.com"),
            "correct horse battery",
        )
        .await;
    let alice_token = app.login("alice", "correct horse battery").await["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();

    // Public fields of another user are fine.
    let answer = app
        .graphql_as(
            Some(&alice_token),
            "query($id: ID!) { user(id: $id) { id username createdAt } }",
            json!({ "id": bob.to_string() }),
        )
        .await;
    assert_eq!(error_code(&answer), None, "{answer}");
    assert_eq!(answer["data"]["user"]["username"], "bob");

    // Their mobile and email are not.
    for field in ["mobile", "email"] {
        let query = format!("query($id: ID!) {{ user(id: $id) {{ username {field} }} }}");
        let answer = app
            .graphql_as(Some(&alice_token), &query, json!({ "id": bob.to_string() }))
            .await;
        assert_eq!(
            error_code(&answer).as_deref(),
            Some("FORBIDDEN"),
            "{field}: {answer}"
        );
        assert!(!answer.to_string().contains("13722223333"));
        assert!(!answer.to_string().contains("b@example.com"));
    }

    // Unknown ids are null; malformed ones are bad input; no token is unauthenticated.
    let answer = app
        .graphql_as(
            Some(&alice_token),
            "query($id: ID!) { user(id: $id) { id } }",
            json!({ "id": smsauth::domain::UserId::new().to_string() }),
        )
        .await;
    assert_eq!(answer["data"]["user"], serde_json::Value::Null, "{answer}");
    let answer = app
        .graphql_as(
            Some(&alice_token),
            "query($id: ID!) { user(id: $id) { id } }",
            json!({ "id": "not-an-id" }),
        )
        .await;
    assert_eq!(error_code(&answer).as_deref(), Some("BAD_USER_INPUT"));
    let answer = app
        .graphql(
            "query($id: ID!) { user(id: $id) { id } }",
            json!({ "id": bob.to_string() }),
        )
        .await;
    assert_eq!(error_code(&answer).as_deref(), Some("UNAUTHENTICATED"));
}

async fn fifty_aliased_users_cost_one_select(backend: Backend) {
    // Arrange: 50 users and a signed-in viewer.
    let app = spawn_app(backend).spawn().await;
    let mut ids = Vec::new();
    for i in 0..50 {
        ids.push(
            app.create_user(
                &format!("user{i}"),
                &format!("1371111{i:04}"),
                None,
                "correct horse battery",
            )
            .await,
        );
    }
    let token = app.login("user0", "correct horse battery").await["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let fields: String = ids
        .iter()
        .enumerate()
        .map(|(i, id)| format!("u{i}: user(id: \"{id}\") {{ id username }} "))
        .collect();
    let query = format!("{{ {fields} }}");
    let before = app.user_selects();

    // Act
    let answer = app.graphql_as(Some(&token), &query, json!({})).await;

    // Assert: every user came back, from exactly one SELECT on users.
    assert_eq!(error_code(&answer), None, "{answer}");
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(answer["data"][format!("u{i}")]["id"], id.to_string());
    }
    assert_eq!(
        app.user_selects() - before,
        1,
        "one SELECT on users for 50 users and the viewer"
    );
}

/// A rolling upgrade: another instance migrates (adds a column to `users`)
/// while this one runs. Its pooled connections have the hot lookups prepared
/// already; they must keep answering (PostgreSQL refuses a prepared
/// `SELECT *` whose result type changed).
async fn lookups_survive_a_column_added_while_running(backend: Backend) {
    // Arrange: one pooled connection, which prepares the viewer lookup (me)
    // and the lookup by mobile (password login with the mobile).
    let app = spawn_app(backend)
        .var("DATABASE_MAX_CONNECTIONS", "1")
        .spawn()
        .await;
    app.create_user("alice", "13712345678", None, "correct horse battery")
        .await;
    let token = app.login("+8613712345678", "correct horse battery").await["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let me = "{ me { username } }";
    let answer = app.graphql_as(Some(&token), me, json!({})).await;
    assert_eq!(answer["data"]["me"]["username"], "alice", "{answer}");

    // Act: the other instance's migration.
    app.state
        .db
        .execute_unprepared("ALTER TABLE users ADD COLUMN nickname TEXT")
        .await
        .unwrap();

    // Assert: both lookups still answer on the same connection.
    let answer = app.graphql_as(Some(&token), me, json!({})).await;
    assert_eq!(answer["data"]["me"]["username"], "alice", "{answer}");
    app.login("+8613712345678", "correct horse battery").await;
}

on_each!(databases:
    me_needs_a_valid_token,
    owner_only_fields_are_forbidden_to_others,
    fifty_aliased_users_cost_one_select,
    lookups_survive_a_column_added_while_running,
);
