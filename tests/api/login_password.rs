use serde_json::json;

use crate::helpers::{Backend, error_code, spawn_app};
use crate::on_each;

const LOGIN: &str = "mutation($a: String!, $p: String!) { loginWithPassword(account: $a, password: $p) { accessToken tokenType expiresIn refreshToken user { id username mobile lastLoginAt } } }";

async fn login_works_by_username_mobile_and_email(backend: Backend) {
    // Arrange
    let app = spawn_app(backend).spawn().await;
    let id = app
        .create_user(
            "Alice_01",
            "13711112222",
            Some("Alice@Example.com"),
            "correct horse battery",
        )
        .await;

    // Act + Assert: every account form, usernames and emails without regard to case.
    for account in [
        "Alice_01",
        "alice_01",
        "13711112222",
        "+86 137 1111 2222",
        "alice@example.com",
        " Alice@Example.com ",
    ] {
        let answer = app
            .graphql(LOGIN, json!({ "a": account, "p": "correct horse battery" }))
            .await;
        assert_eq!(error_code(&answer), None, "{account}: {answer}");
        let payload = &answer["data"]["loginWithPassword"];
        assert_eq!(payload["tokenType"], "Bearer");
        assert_eq!(payload["expiresIn"], 900);
        assert_eq!(payload["user"]["id"], id.to_string());
        assert_eq!(payload["user"]["mobile"], "+8613711112222");
        assert!(
            payload["user"]["lastLoginAt"].is_string(),
            "last_login_at is set"
        );
        assert!(payload["accessToken"].as_str().unwrap().split('.').count() == 3);
    }
}

async fn wrong_password_and_unknown_account_give_the_same_error(backend: Backend) {
    let app = spawn_app(backend).spawn().await;
    app.create_user("alice", "13711112222", None, "correct horse battery")
        .await;

    let wrong_password = app
        .graphql(LOGIN, json!({ "a": "alice", "p": "wrong horse battery" }))
        .await;
    let unknown_user = app
        .graphql(LOGIN, json!({ "a": "bob", "p": "correct horse battery" }))
        .await;
    let unknown_mobile = app
        .graphql(
            LOGIN,
            json!({ "a": "13799998888", "p": "correct horse battery" }),
        )
        .await;
    let unknown_email = app
        .graphql(
            LOGIN,
            json!({ "a": "x@example.com", "p": "correct horse battery" }),
        )
        .await;

    for answer in [
        &wrong_password,
        &unknown_user,
        &unknown_mobile,
        &unknown_email,
    ] {
        assert_eq!(
            error_code(answer).as_deref(),
            Some("INVALID_CREDENTIALS"),
            "{answer}"
        );
        assert_eq!(
            answer["errors"][0]["message"],
            wrong_password["errors"][0]["message"]
        );
        assert_eq!(answer["data"], serde_json::Value::Null);
    }
}

async fn an_empty_account_is_bad_input(backend: Backend) {
    let app = spawn_app(backend).spawn().await;
    let answer = app
        .graphql(LOGIN, json!({ "a": "  ", "p": "whatever123" }))
        .await;
    assert_eq!(error_code(&answer).as_deref(), Some("BAD_USER_INPUT"));
}

on_each!(databases:
    login_works_by_username_mobile_and_email,
    wrong_password_and_unknown_account_give_the_same_error,
    an_empty_account_is_bad_input,
);
