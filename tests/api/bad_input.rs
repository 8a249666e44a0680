//! Every operation and argument of the contract, fed hostile values: only
//! contract codes come back, never a 5xx, and the service keeps answering.

use serde_json::{Value, json};

use crate::helpers::{Backend, spawn_app};

/// The contract's codes.
const CODES: [&str; 21] = [
    "BAD_USER_INPUT",
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "INVALID_CREDENTIALS",
    "INVALID_CODE",
    "TOO_MANY_ATTEMPTS",
    "RATE_LIMITED",
    "MOBILE_TAKEN",
    "USERNAME_TAKEN",
    "EMAIL_TAKEN",
    "USER_NOT_FOUND",
    "REGION_NOT_ALLOWED",
    "INVALID_REFRESH_TOKEN",
    "SMS_DELIVERY_FAILED",
    "SERVICE_UNAVAILABLE",
    "PERSISTED_QUERY_NOT_FOUND",
    "BAD_REQUEST",
    "GRAPHQL_PARSE_FAILED",
    "GRAPHQL_VALIDATION_FAILED",
    "INTERNAL_SERVER_ERROR",
    "-",
];

/// (operation, its string arguments) for every operation of the contract.
const OPERATIONS: &[(&str, &str, &[&str])] = &[
    ("query", "mobileExists", &["mobile"]),
    ("query", "user", &["id"]),
    ("mutation", "sendSmsCode", &["mobile"]),
    (
        "mutation",
        "registerWithSms",
        &["mobile", "code", "password", "username"],
    ),
    ("mutation", "loginWithSms", &["mobile", "code"]),
    ("mutation", "loginWithPassword", &["account", "password"]),
    (
        "mutation",
        "resetPasswordWithSms",
        &["mobile", "code", "newPassword"],
    ),
    ("mutation", "refreshToken", &["refreshToken"]),
    ("mutation", "logout", &["refreshToken"]),
];

fn hostile_values() -> Vec<Value> {
    vec![
        json!(""),
        json!(" "),
        json!("x".repeat(60 * 1024)),
        json!("\u{0}\u{1}\u{7}\u{1b}[31m\r\n"),
        json!("１３７１１１１２２２２\u{200b}"),
        json!("+86 137 1111 2222\u{202e}"),
        json!("ｍｏｂｉｌｅ＠ｅｘａｍｐｌｅ．ｃｏｍ"),
        json!("'; DROP TABLE users; --"),
        json!("\" OR 1=1 --"),
        json!("<script>alert(1)</script>"),
        json!("${jndi:ldap://x}"),
        json!("🙂🙂🙂🙂🙂🙂🙂🙂"),
        json!(12345),
        json!(true),
        json!(null),
        json!({ "nested": "object" }),
        json!(["list"]),
    ]
}

/// Valid filler for the arguments not under test.
fn filler(argument: &str) -> Value {
    match argument {
        "mobile" => json!("13711112222"),
        "code" => json!("123456"),
        "password" | "newPassword" => json!("correct horse battery"),
        "username" => json!("alice"),
        "account" => json!("alice"),
        "id" => json!("01a20f9d-5625-7292-b3f7-45bffe1aca5c"),
        _ => json!("smsauth_rt_0000"),
    }
}

fn document(kind: &str, operation: &str, arguments: &[&str]) -> String {
    let params: Vec<String> = arguments
        .iter()
        .map(|a| match *a {
            "id" => "$id: ID!".to_owned(),
            "username" => "$username: String".to_owned(),
            other => format!("${other}: String!"),
        })
        .collect();
    let mut args: Vec<String> = arguments.iter().map(|a| format!("{a}: ${a}")).collect();
    if operation == "sendSmsCode" {
        args.push("purpose: LOGIN".to_owned());
    }
    let selection = match operation {
        "mobileExists" | "resetPasswordWithSms" | "logout" => "",
        "user" => "{ id }",
        "sendSmsCode" => "{ mobile }",
        _ => "{ accessToken }",
    };
    format!(
        "{kind}({}) {{ {operation}({}) {selection} }}",
        params.join(", "),
        args.join(", ")
    )
}

fn assert_only_contract_codes(answer: &Value, context: &str) {
    let errors = answer["errors"].as_array().cloned().unwrap_or_default();
    for error in errors {
        let code = error["extensions"]["code"].as_str().unwrap_or("-");
        assert!(
            CODES.contains(&code) && code != "-",
            "{context}: an error without a contract code: {error}"
        );
        assert_ne!(code, "INTERNAL_SERVER_ERROR", "{context}: {error}");
        let message = error["message"].as_str().unwrap_or_default();
        assert!(
            !message.to_lowercase().contains("sql"),
            "{context}: internals leak: {message}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_argument_survives_hostile_values() {
    let app = spawn_app(Backend::Postgres)
        .var("SMS_RESEND_COOLDOWN_SECS", "0")
        .spawn()
        .await;
    app.create_user("alice", "13711112222", None, "correct horse battery")
        .await;

    for (kind, operation, arguments) in OPERATIONS {
        let doc = document(kind, operation, arguments);
        for argument in *arguments {
            for value in hostile_values() {
                let mut variables = serde_json::Map::new();
                for other in *arguments {
                    variables.insert((*other).to_owned(), filler(other));
                }
                variables.insert((*argument).to_owned(), value.clone());
                let response = app
                    .post("/graphql")
                    .json(&json!({ "query": doc, "variables": variables }))
                    .send()
                    .await
                    .unwrap();
                let context = format!("{operation}({argument} = {})", truncate(&value));
                assert!(
                    response.status().as_u16() < 500,
                    "{context}: HTTP {}",
                    response.status()
                );
                let answer: Value = response.json().await.unwrap();
                assert_only_contract_codes(&answer, &context);
            }
        }
    }

    // The service still answers.
    let answer = app
        .graphql("{ mobileExists(mobile: \"13711112222\") }", json!({}))
        .await;
    assert_eq!(answer["data"]["mobileExists"], true);
}

#[tokio::test]
async fn hostile_bodies_get_bad_request_not_a_crash() {
    let app = spawn_app(Backend::Sqlite).spawn().await;
    let bodies: Vec<(Vec<u8>, &str)> = vec![
        (b"\xff\xfe\xfd".to_vec(), "application/json"),
        (
            b"{\"query\": \"{ mobileExists(mobile: \\\"\xff\\\") }\"}".to_vec(),
            "application/json",
        ),
        (b"not json".to_vec(), "application/json"),
        (b"query { me { id } }".to_vec(), "text/plain"),
        (vec![b'['; 100_000], "application/json"),
        (
            format!("{{\"query\": \"{}\"}}", "x".repeat(1 << 20)).into_bytes(),
            "application/json",
        ),
        (b"[]".to_vec(), "application/json"),
        (b"{\"query\": 5}".to_vec(), "application/json"),
    ];
    for (body, content_type) in bodies {
        let response = app
            .post("/graphql")
            .header("content-type", content_type)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let status = response.status();
        assert!(
            status.is_client_error() || status.is_success(),
            "{status} for {}",
            truncate(&json!(String::from_utf8_lossy(&body)))
        );
        let answer: Value = response.json().await.unwrap();
        assert_only_contract_codes(&answer, "hostile body");
    }
    let answer = app
        .graphql("{ mobileExists(mobile: \"13711112222\") }", json!({}))
        .await;
    assert_eq!(answer["data"]["mobileExists"], false);
}

fn truncate(value: &Value) -> String {
    let text = value.to_string();
    if text.len() > 40 {
        format!(
            "{}… ({} bytes)",
            &text[..text.char_indices().nth(40).map_or(text.len(), |(i, _)| i)],
            text.len()
        )
    } else {
        text
    }
}
