//! `/metrics` (contract §3.3): each series moves by exactly what happened,
//! only on the metrics listener, and no document can add label values.

use serde_json::json;

use crate::helpers::{Backend, Setup, error_code, spawn_app, spawn_setup};

const PASSWORD: &str = "correct horse battery";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_known_sequence_moves_each_counter_by_what_happened() {
    let app = spawn_setup(Setup::PostgresRedis)
        .var("METRICS_ADDR", "127.0.0.1:0")
        .var("SMS_RESEND_COOLDOWN_SECS", "0")
        .spawn()
        .await;
    // Send and register; a wrong code; SMS login; password login; refresh; bad input.
    let registered = app.register_via_sms("13711112222", PASSWORD).await;
    app.send_code("13711112222", "LOGIN").await;
    let code = app.last_code("+8613711112222");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let refused = app.login_with_sms("13711112222", wrong).await;
    assert_eq!(error_code(&refused).as_deref(), Some("INVALID_CODE"));
    let signed_in = app.login_with_sms("13711112222", &code).await;
    assert_eq!(error_code(&signed_in), None, "{signed_in}");
    let username = registered["user"]["username"].as_str().unwrap();
    app.login(username, PASSWORD).await;
    let refreshed = app
        .graphql(
            "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken } }",
            json!({ "t": registered["refreshToken"] }),
        )
        .await;
    assert_eq!(error_code(&refreshed), None, "{refreshed}");
    let bad = app
        .graphql("{ mobileExists(mobile: \"x\") }", json!({}))
        .await;
    assert_eq!(error_code(&bad).as_deref(), Some("BAD_USER_INPUT"));

    let expected = [
        (
            r#"smsauth_graphql_operations_total{operation="sendSmsCode",outcome="ok"}"#,
            2.0,
        ),
        (
            r#"smsauth_graphql_operations_total{operation="registerWithSms",outcome="ok"}"#,
            1.0,
        ),
        (
            r#"smsauth_graphql_operations_total{operation="loginWithSms",outcome="INVALID_CODE"}"#,
            1.0,
        ),
        (
            r#"smsauth_graphql_operations_total{operation="loginWithSms",outcome="ok"}"#,
            1.0,
        ),
        (
            r#"smsauth_graphql_operations_total{operation="loginWithPassword",outcome="ok"}"#,
            1.0,
        ),
        (
            r#"smsauth_graphql_operations_total{operation="refreshToken",outcome="ok"}"#,
            1.0,
        ),
        (
            r#"smsauth_graphql_operations_total{operation="mobileExists",outcome="BAD_USER_INPUT"}"#,
            1.0,
        ),
        (
            r#"smsauth_graphql_operation_duration_seconds_count{operation="loginWithSms"}"#,
            2.0,
        ),
        (
            r#"smsauth_sms_sent_total{provider="recording",purpose="REGISTER",status="sent"}"#,
            1.0,
        ),
        (
            r#"smsauth_sms_sent_total{provider="recording",purpose="LOGIN",status="sent"}"#,
            1.0,
        ),
        (r#"smsauth_sms_fee_total{provider="recording"}"#, 2.0),
        (
            r#"smsauth_sms_codes_verified_total{purpose="REGISTER"}"#,
            1.0,
        ),
        (r#"smsauth_sms_codes_verified_total{purpose="LOGIN"}"#, 1.0),
        (r#"smsauth_sessions_issued_total{method="register"}"#, 1.0),
        (r#"smsauth_sessions_issued_total{method="sms"}"#, 1.0),
        (r#"smsauth_sessions_issued_total{method="password"}"#, 1.0),
        (r#"smsauth_sessions_issued_total{method="refresh"}"#, 1.0),
        (r#"smsauth_dependency_up{dependency="database"}"#, 1.0),
        (r#"smsauth_dependency_up{dependency="code_store"}"#, 1.0),
    ];
    let scrape = app.scrape().await;
    for (series, value) in expected {
        assert_eq!(app.metric(series).await, value, "{series}\n{scrape}");
    }
    for series in ["process_resident_memory_bytes", "process_cpu_seconds_total"] {
        assert!(scrape.contains(series), "{series} missing");
    }
    let buckets =
        r#"smsauth_graphql_operation_duration_seconds_bucket{operation="loginWithSms",le="0.001"}"#;
    assert!(scrape.contains(buckets), "1 ms bucket: {scrape}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_global_sms_budget_is_published_for_its_alert() {
    let app = spawn_app(Backend::Sqlite)
        .var("METRICS_ADDR", "127.0.0.1:0")
        .var("SMS_GLOBAL_LIMIT", "200/1h,2000/24h")
        .spawn()
        .await;
    let hourly = r#"smsauth_sms_global_limit{window_seconds="3600"}"#;
    assert_eq!(app.metric(hourly).await, 200.0);
    let daily = r#"smsauth_sms_global_limit{window_seconds="86400"}"#;
    assert_eq!(app.metric(daily).await, 2000.0);

    let unlimited = spawn_app(Backend::Sqlite)
        .var("METRICS_ADDR", "127.0.0.1:0")
        .var("SMS_GLOBAL_LIMIT", "off")
        .spawn()
        .await;
    assert!(
        !unlimited
            .scrape()
            .await
            .contains("smsauth_sms_global_limit")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_are_not_public_and_documents_cannot_add_labels() {
    let app = spawn_app(Backend::Sqlite)
        .var("METRICS_ADDR", "127.0.0.1:0")
        .spawn()
        .await;
    assert_eq!(app.get("/metrics").send().await.unwrap().status(), 404);

    app.graphql(
        "{ hostileAlias: mobileExists(mobile: \"13711112222\") }",
        json!({}),
    )
    .await;
    app.graphql("{ noSuchField }", json!({})).await;
    app.graphql(
        "{ __typename ...F } fragment F on Query { evil: __typename }",
        json!({}),
    )
    .await;
    let scrape = app.scrape().await;
    assert_eq!(
        app.metric(r#"smsauth_graphql_operations_total{operation="mobileExists",outcome="ok"}"#)
            .await,
        1.0,
        "{scrape}"
    );
    for hostile in ["hostileAlias", "noSuchField", "evil", "__typename"] {
        assert!(
            !scrape.contains(hostile),
            "{hostile} became a label:\n{scrape}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_error_below_an_operation_is_its_outcome() {
    let app = spawn_app(Backend::Sqlite)
        .var("METRICS_ADDR", "127.0.0.1:0")
        .spawn()
        .await;
    let alice = app.register_via_sms("13711112222", PASSWORD).await;
    let bob = app.register_via_sms("13722223333", PASSWORD).await;
    let answer = app
        .graphql_as(
            alice["accessToken"].as_str(),
            "query($id: ID!) { other: user(id: $id) { mobile } me { id } }",
            json!({ "id": bob["user"]["id"] }),
        )
        .await;
    assert_eq!(
        error_code(&answer).as_deref(),
        Some("FORBIDDEN"),
        "{answer}"
    );
    let scrape = app.scrape().await;
    assert_eq!(
        app.metric(r#"smsauth_graphql_operations_total{operation="user",outcome="FORBIDDEN"}"#)
            .await,
        1.0,
        "{scrape}"
    );
    assert_eq!(
        app.metric(r#"smsauth_graphql_operations_total{operation="me",outcome="ok"}"#)
            .await,
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_metrics_addr_there_is_no_listener() {
    let app = spawn_app(Backend::Sqlite).spawn().await;
    assert!(app.metrics_address.is_none());
    assert_eq!(app.get("/metrics").send().await.unwrap().status(), 404);
}
