use serde_json::json;

use crate::helpers::{Backend, error_code, error_extensions, spawn_app};
use crate::on_each;

const QUERY: &str = "query($m: String!) { mobileExists(mobile: $m) }";

async fn every_written_form_finds_the_same_registered_mobile(backend: Backend) {
    // Arrange
    let app = spawn_app(backend).spawn().await;
    app.create_user("alice", "13711112222", None, "correct horse battery")
        .await;

    // Act + Assert
    for written in [
        "13711112222",
        "+8613711112222",
        "+86 137 1111 2222",
        "137-1111-2222",
        "(137) 1111 2222",
        "１３７１１１１２２２２",
    ] {
        let answer = app.graphql(QUERY, json!({ "m": written })).await;
        assert_eq!(answer["data"]["mobileExists"], true, "{written}: {answer}");
    }
    let answer = app.graphql(QUERY, json!({ "m": "13711113333" })).await;
    assert_eq!(answer["data"]["mobileExists"], false);
}

async fn bad_forms_are_bad_user_input(backend: Backend) {
    let app = spawn_app(backend).spawn().await;
    for bad in [
        "",
        "12345",
        "call 13711112222",
        "137l1112222",
        "+86 137 1111 2222 x",
        &"9".repeat(5000),
    ] {
        let answer = app.graphql(QUERY, json!({ "m": bad })).await;
        assert_eq!(
            error_code(&answer).as_deref(),
            Some("BAD_USER_INPUT"),
            "{bad:?}: {answer}"
        );
        assert_eq!(error_extensions(&answer)["field"], "mobile");
    }
}

async fn numbers_of_any_valid_region_are_accepted(backend: Backend) {
    // The region allowlist guards sending only.
    let app = spawn_app(backend)
        .var("SMS_ALLOWED_REGIONS", "CN")
        .spawn()
        .await;
    let answer = app.graphql(QUERY, json!({ "m": "+44 7911 123456" })).await;
    assert_eq!(answer["data"]["mobileExists"], false, "{answer}");
}

async fn callers_are_rate_limited_per_ip(backend: Backend) {
    let app = spawn_app(backend)
        .var("MOBILE_EXISTS_LIMIT_PER_IP", "3/1m")
        .spawn()
        .await;
    for _ in 0..3 {
        let answer = app.graphql(QUERY, json!({ "m": "13711112222" })).await;
        assert_eq!(error_code(&answer), None, "{answer}");
    }
    let answer = app.graphql(QUERY, json!({ "m": "13711112222" })).await;
    assert_eq!(error_code(&answer).as_deref(), Some("RATE_LIMITED"));
    let retry_after = error_extensions(&answer)["retryAfter"].as_u64().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
}

on_each!(databases:
    every_written_form_finds_the_same_registered_mobile,
    bad_forms_are_bad_user_input,
    numbers_of_any_valid_region_are_accepted,
    callers_are_rate_limited_per_ip,
);
