//! The transport: GET and POST, batches, GraphiQL, health, request-level
//! errors with their codes, and persisted queries.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{Backend, spawn_app};

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = spawn_app(Backend::Sqlite).spawn().await;
    let health = app.get("/healthz").send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = app.get("/readyz").send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.json::<Value>().await.unwrap()["status"], "ready");
}

#[tokio::test]
async fn a_browser_gets_graphiql() {
    let app = spawn_app(Backend::Sqlite).spawn().await;
    let page = app.get("/graphql").send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        page.text()
            .await
            .unwrap()
            .to_lowercase()
            .contains("graphiql")
    );
}

#[tokio::test]
async fn queries_work_over_get_but_mutations_do_not() {
    let app = spawn_app(Backend::Sqlite).spawn().await;
    let answer: Value = app
        .get("/graphql")
        .query(&[("query", "{ mobileExists(mobile: \"13711112222\") }")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["data"]["mobileExists"], false);

    let response = app
        .get("/graphql")
        .query(&[("query", "mutation { logout(refreshToken: \"x\") }")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["errors"][0]["extensions"]["code"], "BAD_REQUEST");
}

#[tokio::test]
async fn request_level_errors_carry_apollo_codes() {
    let app = spawn_app(Backend::Sqlite).spawn().await;
    let post = |body: String, accept: &'static str| {
        app.post("/graphql")
            .header("content-type", "application/json")
            .header("accept", accept)
            .body(body)
            .send()
    };
    let cases = [
        (
            r#"{"query": "{ mobileExists(mobile: "#.to_owned(),
            "BAD_REQUEST",
        ),
        (
            json!({ "query": "{ mobileExists(" }).to_string(),
            "GRAPHQL_PARSE_FAILED",
        ),
        (
            json!({ "query": "{ noSuchField }" }).to_string(),
            "GRAPHQL_VALIDATION_FAILED",
        ),
        (
            json!({ "query": "{ mobileExists(mobile: 5) }" }).to_string(),
            "GRAPHQL_VALIDATION_FAILED",
        ),
        (json!({ "variables": {} }).to_string(), "BAD_REQUEST"),
    ];
    for (body, code) in &cases {
        // application/json clients get 200 ...
        let legacy = post(body.clone(), "application/json").await.unwrap();
        assert!(legacy.status() == 200 || legacy.status() == 400, "{body}");
        let answer: Value = legacy.json().await.unwrap();
        assert_eq!(
            answer["errors"][0]["extensions"]["code"], *code,
            "{body}: {answer}"
        );
        // ... GraphQL-over-HTTP clients get 400.
        let modern = post(body.clone(), "application/graphql-response+json")
            .await
            .unwrap();
        assert_eq!(modern.status(), 400, "{body}");
    }
    // A field error is 200 whatever the client accepts.
    let field_error = post(
        json!({ "query": "{ me { id } }" }).to_string(),
        "application/graphql-response+json",
    )
    .await
    .unwrap();
    assert_eq!(field_error.status(), 200);
}

#[tokio::test]
async fn batches_run_and_are_bounded() {
    let app = spawn_app(Backend::Sqlite)
        .var("GRAPHQL_MAX_BATCH", "3")
        .spawn()
        .await;
    let op = json!({ "query": "{ mobileExists(mobile: \"13711112222\") }" });
    let answer: Value = app
        .post("/graphql")
        .json(&json!([op, op, op]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer.as_array().unwrap().len(), 3);
    assert_eq!(answer[2]["data"]["mobileExists"], false);

    let too_many = app
        .post("/graphql")
        .json(&json!([op, op, op, op]))
        .send()
        .await
        .unwrap();
    assert_eq!(too_many.status(), 400);
    let answer: Value = too_many.json().await.unwrap();
    assert_eq!(answer["errors"][0]["extensions"]["code"], "BAD_REQUEST");
}

#[tokio::test]
async fn automatic_persisted_queries_work_over_post_and_get() {
    let app = spawn_app(Backend::Sqlite).spawn().await;
    let query = "{ mobileExists(mobile: \"13711112222\") }";
    let hash = hex::encode(Sha256::digest(query.as_bytes()));
    let extensions = json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } });

    // Unknown hash: the client is told to send the query.
    let answer: Value = app
        .post("/graphql")
        .json(&json!({ "extensions": extensions }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        answer["errors"][0]["extensions"]["code"], "PERSISTED_QUERY_NOT_FOUND",
        "{answer}"
    );
    // Hash and query: run and remembered.
    let answer: Value = app
        .post("/graphql")
        .json(&json!({ "query": query, "extensions": extensions }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["data"]["mobileExists"], false, "{answer}");
    // The hash alone now works, over GET too.
    let answer: Value = app
        .get("/graphql")
        .query(&[("extensions", extensions.to_string())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["data"]["mobileExists"], false, "{answer}");
}

#[tokio::test]
async fn graphiql_schema_fetch_fits_the_limits() {
    // The introspection query GraphiQL sends must pass depth 10 / complexity 200.
    let app = spawn_app(Backend::Sqlite).spawn().await;
    let introspection = include_str!("introspection.graphql");
    let answer = app.graphql(introspection, json!({})).await;
    assert!(answer["errors"].is_null(), "{answer}");
    assert!(
        answer["data"]["__schema"]["types"]
            .as_array()
            .unwrap()
            .len()
            > 5
    );

    let app = spawn_app(Backend::Sqlite)
        .var("GRAPHQL_INTROSPECTION", "false")
        .spawn()
        .await;
    let answer = app.graphql(introspection, json!({})).await;
    assert!(
        answer["data"]["__schema"].is_null() || answer["errors"].is_array(),
        "{answer}"
    );
}

#[tokio::test]
async fn deep_or_complex_documents_are_refused() {
    let app = spawn_app(Backend::Sqlite)
        .var("GRAPHQL_MAX_COMPLEXITY", "5")
        .spawn()
        .await;
    let deep = format!("{{ {}x{} }}", "a { ".repeat(11), " }".repeat(11));
    let answer = app.graphql(&deep, json!({})).await;
    assert_eq!(
        answer["errors"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED",
        "{answer}"
    );
    assert_eq!(answer["errors"][0]["message"], "Query is nested too deep.");

    let fields: String = (0..6)
        .map(|i| format!("m{i}: mobileExists(mobile: \"13711112222\") "))
        .collect();
    let answer = app.graphql(&format!("{{ {fields} }}"), json!({})).await;
    assert_eq!(
        answer["errors"][0]["message"], "Query is too complex.",
        "{answer}"
    );
    // Fragments that refer to themselves or fan out are refused at once, not expanded.
    let started = std::time::Instant::now();
    // 25 levels that each spread the next twice: 2^25 expansions if walked naively.
    let fan: String = (0..25)
        .map(|i| format!("fragment F{i} on Query {{ ...F{n} ...F{n} }} ", n = i + 1))
        .collect();
    let bomb = format!("{{ ...F0 }} {fan} fragment F25 on Query {{ __typename }}");
    let answer = app.graphql(&bomb, json!({})).await;
    assert_eq!(
        answer["errors"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED",
        "{answer}"
    );
    assert_eq!(answer["errors"][0]["message"], "Query is too complex.");
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    let fields: String = (0..5)
        .map(|i| format!("m{i}: mobileExists(mobile: \"13711112222\") "))
        .collect();
    let answer = app.graphql(&format!("{{ {fields} }}"), json!({})).await;
    assert!(answer["errors"].is_null(), "{answer}");
}
