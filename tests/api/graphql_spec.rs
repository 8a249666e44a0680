//! Where the GraphQL specification and the contract (§3.1) are stricter than
//! async-graphql: aliased mutations, bounded introspection, enum literals,
//! undeclared variables, null propagation, and request errors as GraphQL over
//! HTTP wants them.

use serde_json::{Value, json};

use crate::helpers::{Backend, error_code, spawn_app};

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

async fn post_modern(app: &crate::helpers::TestApp, body: Value) -> (u16, Value) {
    let response = app
        .post("/graphql")
        .header("accept", GRAPHQL_RESPONSE_JSON)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_mutation_operation_selects_exactly_one_field() {
    let app = spawn_app(Backend::Sqlite).spawn().await;
    app.create_user("alice", "13711112222", None, "correct horse battery")
        .await;
    let login =
        "loginWithPassword(account: \"alice\", password: \"wrong password\") { accessToken }";
    let aliased = format!("mutation {{ a: {login} b: {login} }}");
    let through_fragment =
        format!("mutation {{ a: {login} ...More }} fragment More on Mutation {{ b: {login} }}");
    for document in [aliased, through_fragment] {
        let answer = app.graphql(&document, json!({})).await;
        assert_eq!(
            error_code(&answer).as_deref(),
            Some("GRAPHQL_VALIDATION_FAILED"),
            "{answer}"
        );
        assert!(answer.get("data").is_none() || answer["data"].is_null());
    }
    // Nothing ran: not one hash was checked, so no failure was counted either.
    assert_eq!(app.count("SELECT COUNT(*) FROM refresh_tokens").await, 0);
    // __typename does not count; one field is fine.
    let one = app
        .graphql(&format!("mutation {{ __typename {login} }}"), json!({}))
        .await;
    assert_eq!(
        error_code(&one).as_deref(),
        Some("INVALID_CREDENTIALS"),
        "{one}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn introspection_cannot_be_multiplied() {
    let app = spawn_app(Backend::Sqlite).spawn().await;
    let twice = app
        .graphql(
            "{ a: __schema { queryType { name } } b: __schema { queryType { name } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        error_code(&twice).as_deref(),
        Some("GRAPHQL_VALIDATION_FAILED"),
        "{twice}"
    );
    let types: String = (0..11)
        .map(|i| format!("t{i}: __type(name: \"User\") {{ name }} "))
        .collect();
    let eleven = app.graphql(&format!("{{ {types} }}"), json!({})).await;
    assert_eq!(
        error_code(&eleven).as_deref(),
        Some("GRAPHQL_VALIDATION_FAILED"),
        "{eleven}"
    );
    let spread = app
        .graphql(
            "{ __schema { queryType { name } } ...S } fragment S on Query { __schema { queryType { name } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        error_code(&spread).as_deref(),
        Some("GRAPHQL_VALIDATION_FAILED")
    );
    // Once, and ten __type, are fine.
    let ten: String = (0..10)
        .map(|i| format!("t{i}: __type(name: \"User\") {{ name }} "))
        .collect();
    let fine = app
        .graphql(
            &format!("{{ __schema {{ queryType {{ name }} }} {ten} }}"),
            json!({}),
        )
        .await;
    assert_eq!(error_code(&fine), None, "{fine}");
    assert_eq!(fine["data"]["t9"]["name"], "User");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_enum_written_as_a_string_is_invalid_and_sends_nothing() {
    let app = spawn_app(Backend::Sqlite).spawn().await;
    let answer = app
        .graphql(
            "mutation { sendSmsCode(mobile: \"13711112222\", purpose: \"REGISTER\") { mobile } }",
            json!({}),
        )
        .await;
    assert_eq!(
        error_code(&answer).as_deref(),
        Some("GRAPHQL_VALIDATION_FAILED"),
        "{answer}"
    );
    assert!(app.sms.sent().is_empty());
    // As a variable, the JSON string is the enum's value.
    let sent = app.send_code("13711112222", "REGISTER").await;
    assert_eq!(error_code(&sent), None, "{sent}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_enum_default_written_as_a_string_is_invalid() {
    let app = spawn_app(Backend::Sqlite).spawn().await;
    let answer = app
        .graphql(
            "mutation($p: SmsPurpose! = \"REGISTER\") { sendSmsCode(mobile: \"13711112222\", purpose: $p) { mobile } }",
            json!({}),
        )
        .await;
    assert_eq!(
        error_code(&answer).as_deref(),
        Some("GRAPHQL_VALIDATION_FAILED"),
        "{answer}"
    );
    assert!(app.sms.sent().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_mutation_over_get_is_405_whatever_it_selects() {
    let app = spawn_app(Backend::Sqlite).spawn().await;
    for document in [
        "mutation { __typename }",
        "mutation { a: logout(refreshToken: \"x\") b: logout(refreshToken: \"y\") }",
    ] {
        let response = app
            .get("/graphql")
            .query(&[("query", document)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405, "{document}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["errors"][0]["extensions"]["code"], "BAD_REQUEST");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_persisted_query_that_does_not_parse_is_a_one_line_parse_error() {
    use sha2::Digest;
    let app = spawn_app(Backend::Sqlite).spawn().await;
    let query = "{ mobileExists(";
    let hash = hex::encode(sha2::Sha256::digest(query.as_bytes()));
    let (_, answer) = post_modern(
        &app,
        json!({ "query": query, "extensions": { "persistedQuery": { "version": 1, "sha256Hash": hash } } }),
    )
    .await;
    assert_eq!(
        answer["errors"][0]["extensions"]["code"], "GRAPHQL_PARSE_FAILED",
        "{answer}"
    );
    let message = answer["errors"][0]["message"].as_str().unwrap();
    assert!(!message.contains('\n'), "one line: {message:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_variable_used_but_not_declared_is_invalid() {
    let app = spawn_app(Backend::Sqlite).spawn().await;
    for document in [
        "{ __typename @include(if: $nope) }",
        "{ mobileExists(mobile: $m) }",
        "query Q { ...F } fragment F on Query { mobileExists(mobile: $m) }",
    ] {
        let answer = app.graphql(document, json!({})).await;
        assert_eq!(
            error_code(&answer).as_deref(),
            Some("GRAPHQL_VALIDATION_FAILED"),
            "{document}: {answer}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_forbidden_non_null_field_nulls_its_nullable_parent() {
    let app = spawn_app(Backend::Sqlite).spawn().await;
    let alice = app
        .register_via_sms("13711112222", "correct horse battery")
        .await;
    let bob = app
        .register_via_sms("13722223333", "correct horse battery")
        .await;
    let token = alice["accessToken"].as_str().unwrap();
    let bob_id = bob["user"]["id"].as_str().unwrap();
    let answer = app
        .graphql_as(
            Some(token),
            "query($id: ID!) { me { username } other: user(id: $id) { id username mobile email } }",
            json!({ "id": bob_id }),
        )
        .await;
    assert_eq!(answer["data"]["other"], Value::Null, "{answer}");
    assert!(answer["data"]["me"]["username"].is_string(), "{answer}");
    let errors = answer["errors"].as_array().unwrap();
    assert!(
        errors
            .iter()
            .all(|e| e["extensions"]["code"] == "FORBIDDEN"),
        "{answer}"
    );
    assert_eq!(errors[0]["path"][0], "other");

    // A nullable guarded field alone is just null, its parent kept.
    let email_only = app
        .graphql_as(
            Some(token),
            "query($id: ID!) { user(id: $id) { id email } }",
            json!({ "id": bob_id }),
        )
        .await;
    assert_eq!(email_only["data"]["user"]["id"], bob_id, "{email_only}");
    assert_eq!(email_only["data"]["user"]["email"], Value::Null);
    assert_eq!(email_only["errors"][0]["extensions"]["code"], "FORBIDDEN");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn request_errors_have_no_data_key_and_one_line_messages() {
    let app = spawn_app(Backend::Sqlite).spawn().await;
    let (status, parse) = post_modern(&app, json!({ "query": "{ mobileExists(" })).await;
    assert_eq!(status, 400);
    assert!(parse.get("data").is_none(), "no data key: {parse}");
    assert_eq!(
        parse["errors"][0]["extensions"]["code"],
        "GRAPHQL_PARSE_FAILED"
    );
    let message = parse["errors"][0]["message"].as_str().unwrap();
    assert!(!message.contains('\n'), "one line: {message:?}");

    let (status, invalid) = post_modern(&app, json!({ "query": "{ nope }" })).await;
    assert_eq!(status, 400);
    assert!(invalid.get("data").is_none(), "no data key: {invalid}");
    assert_eq!(
        invalid["errors"][0]["extensions"]["code"],
        "GRAPHQL_VALIDATION_FAILED"
    );

    // Field errors keep `data`, with the spec's nulls.
    let (status, field) =
        post_modern(&app, json!({ "query": "{ mobileExists(mobile: \"x\") }" })).await;
    assert_eq!(status, 200);
    assert!(field.get("data").is_some(), "{field}");
}
