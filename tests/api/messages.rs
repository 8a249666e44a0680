//! Messages in the client's language (contract §3.9): `Accept-Language`
//! preferring `zh` gives Chinese messages, anything else English, and
//! nothing but `message` changes: for every error code, the same request
//! answers with the same `extensions` (and `data`, `path`) in both.

use reqwest::header::{ACCEPT_LANGUAGE, CONTENT_TYPE, VARY};
use serde_json::{Value, json};
use smsauth::error::AppError;
use smsauth::sms::Failure;

use crate::helpers::{Backend, TestApp, error_code, free_port, spawn_app};

const PASSWORD: &str = "correct horse battery";

fn has_chinese(text: &str) -> bool {
    text.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
}

/// One GraphQL request, as the test sends it in each language.
struct Ask {
    query: &'static str,
    variables: Value,
    token: Option<String>,
}

fn ask(query: &'static str, variables: Value) -> Ask {
    Ask {
        query,
        variables,
        token: None,
    }
}

async fn send(app: &TestApp, ask: &Ask, language: Option<&str>) -> reqwest::Response {
    let mut request = app
        .post("/graphql")
        .json(&json!({ "query": ask.query, "variables": ask.variables }));
    if let Some(token) = &ask.token {
        request = request.bearer_auth(token);
    }
    if let Some(language) = language {
        request = request.header(ACCEPT_LANGUAGE, language);
    }
    request.send().await.unwrap()
}

async fn answer(app: &TestApp, ask: &Ask, language: Option<&str>) -> Value {
    send(app, ask, language).await.json().await.unwrap()
}

const SEND: &str =
    "mutation($m: String!, $p: SmsPurpose!) { sendSmsCode(mobile: $m, purpose: $p) { mobile } }";
const LOGIN_SMS: &str =
    "mutation($m: String!, $c: String!) { loginWithSms(mobile: $m, code: $c) { accessToken } }";
const REGISTER: &str = "mutation($m: String!, $c: String!, $u: String) { registerWithSms(mobile: $m, code: $c, password: \"correct horse battery\", username: $u) { accessToken } }";

/// Every code an operation can answer with over HTTP: all of them but
/// `EMAIL_TAKEN`, which no operation can cause (none sets an email; the
/// message table's unit test covers it). A new code fails below until
/// `arrange` can cause it.
fn codes() -> impl Iterator<Item = &'static str> {
    AppError::CODES
        .into_iter()
        .filter(|code| *code != "EMAIL_TAKEN")
}

/// A fresh app, brought to the state in which the request it returns
/// answers with `code`. Each language gets its own app, so an answer that
/// changes state (attempts left, cooldowns) is compared with its twin.
async fn arrange(code: &str) -> (TestApp, Ask) {
    let mut builder = spawn_app(Backend::Sqlite);
    match code {
        "TOO_MANY_ATTEMPTS" => builder = builder.var("SMS_MAX_ATTEMPTS", "1"),
        "SMS_DELIVERY_FAILED" => builder = builder.var("SMS_RESEND_COOLDOWN_SECS", "0"),
        "SERVICE_UNAVAILABLE" => {
            builder = builder.var("REDIS_URL", format!("redis://127.0.0.1:{}", free_port()))
        }
        _ => {}
    }
    let app = builder.spawn().await;
    let ask = match code {
        "BAD_USER_INPUT" => ask(
            "query($m: String!) { mobileExists(mobile: $m) }",
            json!({ "m": "not a number" }),
        ),
        "UNAUTHENTICATED" => ask("{ me { id } }", json!({})),
        "FORBIDDEN" => {
            app.create_user("alice", "13711112222", None, PASSWORD)
                .await;
            let bob = app.create_user("bob", "13711113333", None, PASSWORD).await;
            let token = app.login("alice", PASSWORD).await["accessToken"]
                .as_str()
                .unwrap()
                .to_owned();
            Ask {
                token: Some(token),
                ..ask(
                    "query($id: ID!) { user(id: $id) { username mobile } }",
                    json!({ "id": bob.to_string() }),
                )
            }
        }
        "INVALID_CREDENTIALS" => {
            app.create_user("alice", "13711112222", None, PASSWORD)
                .await;
            ask(
                "mutation { loginWithPassword(account: \"alice\", password: \"wrong password\") { accessToken } }",
                json!({}),
            )
        }
        "INVALID_CODE" | "TOO_MANY_ATTEMPTS" => {
            app.create_user("alice", "13711112222", None, PASSWORD)
                .await;
            app.send_code("13711112222", "LOGIN").await;
            let wrong = if app.last_code("+8613711112222") == "000000" {
                "111111"
            } else {
                "000000"
            };
            ask(LOGIN_SMS, json!({ "m": "13711112222", "c": wrong }))
        }
        "RATE_LIMITED" => {
            app.send_code("13711112222", "REGISTER").await;
            ask(SEND, json!({ "m": "13711112222", "p": "REGISTER" }))
        }
        "MOBILE_TAKEN" => {
            app.create_user("alice", "13711112222", None, PASSWORD)
                .await;
            ask(SEND, json!({ "m": "13711112222", "p": "REGISTER" }))
        }
        "USERNAME_TAKEN" => {
            app.create_user("alice", "13711112222", None, PASSWORD)
                .await;
            app.send_code("13711113333", "REGISTER").await;
            let code = app.last_code("+8613711113333");
            ask(
                REGISTER,
                json!({ "m": "13711113333", "c": code, "u": "alice" }),
            )
        }
        "USER_NOT_FOUND" => ask(SEND, json!({ "m": "13711112222", "p": "LOGIN" })),
        "REGION_NOT_ALLOWED" => ask(SEND, json!({ "m": "+447911123456", "p": "REGISTER" })),
        "INVALID_REFRESH_TOKEN" => ask(
            "mutation { refreshToken(refreshToken: \"no such token\") { accessToken } }",
            json!({}),
        ),
        "SMS_DELIVERY_FAILED" => {
            app.sms.fail_with(Some(Failure::Rejected));
            ask(SEND, json!({ "m": "13711112222", "p": "REGISTER" }))
        }
        "SERVICE_UNAVAILABLE" => ask(SEND, json!({ "m": "13711112222", "p": "REGISTER" })),
        "INTERNAL_SERVER_ERROR" => {
            app.send_code("13711112222", "REGISTER").await;
            let code = app.last_code("+8613711112222");
            sqlite(
                &app,
                "CREATE TRIGGER refuse BEFORE INSERT ON users BEGIN SELECT RAISE(ABORT, 'disk full'); END",
            )
            .await;
            ask(REGISTER, json!({ "m": "13711112222", "c": code }))
        }
        other => panic!("no arrangement for {other}"),
    };
    (app, ask)
}

async fn sqlite(app: &TestApp, statement: &str) {
    use sea_orm::ConnectionTrait;
    app.state.db.execute_unprepared(statement).await.unwrap();
}

/// Everything but the messages.
fn without_messages(mut answer: Value) -> Value {
    if let Some(errors) = answer["errors"].as_array_mut() {
        for error in errors {
            error["message"] = Value::Null;
        }
    }
    answer
}

fn first_message(answer: &Value) -> &str {
    answer["errors"][0]["message"].as_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_operation_error_speaks_both_languages_with_the_same_extensions() {
    for code in codes() {
        let (zh_app, zh_ask) = arrange(code).await;
        let chinese = answer(&zh_app, &zh_ask, Some("zh-CN,zh;q=0.9,en;q=0.8")).await;
        let (en_app, en_ask) = arrange(code).await;
        let english = answer(&en_app, &en_ask, Some("en-US,en;q=0.9")).await;

        assert_eq!(error_code(&chinese).as_deref(), Some(code), "{chinese}");
        assert_eq!(
            without_messages(chinese.clone()),
            without_messages(english.clone()),
            "{code}: only the message may differ"
        );
        let (zh, en) = (first_message(&chinese), first_message(&english));
        assert!(has_chinese(zh), "{code}: Chinese message {zh:?}");
        assert!(!has_chinese(en), "{code}: English message {en:?}");
        assert!(!zh.contains("disk full"), "{code}: no internals: {zh:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn messages_follow_the_preferred_language_and_default_to_english() {
    let (app, login) = arrange("INVALID_CREDENTIALS").await;
    for (header, expected) in [
        (Some("zh"), "账号或密码错误"),
        (Some("zh-Hans"), "账号或密码错误"),
        (Some("zh-TW;q=0.9, en;q=0.8"), "账号或密码错误"),
        (Some("en, zh;q=0.9"), "wrong account or password"),
        (Some("fr"), "wrong account or password"),
        (Some("*"), "wrong account or password"),
        (Some("zh;q=nonsense"), "wrong account or password"),
        (None, "wrong account or password"),
    ] {
        let response = send(&app, &login, header).await;
        let vary = response.headers().get_all(VARY).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.to_ascii_lowercase().contains("accept-language"))
        });
        assert!(vary, "caches keep one answer per language");
        let body: Value = response.json().await.unwrap();
        assert_eq!(first_message(&body), expected, "{header:?}");
    }
    // The reason of a BAD_USER_INPUT, and the limit of a RATE_LIMITED, in Chinese.
    let bad = answer(
        &app,
        &ask(
            "mutation { loginWithPassword(account: \"\", password: \"x\") { accessToken } }",
            json!({}),
        ),
        Some("zh-CN"),
    )
    .await;
    assert_eq!(first_message(&bad), "账号须为用户名、手机号或邮箱");
    app.send_code("13711119999", "REGISTER").await;
    let again = ask(SEND, json!({ "m": "13711119999", "p": "REGISTER" }));
    let limited = answer(&app, &again, Some("zh-CN")).await;
    assert_eq!(limited["errors"][0]["extensions"]["reason"], "COOLDOWN");
    let message = first_message(&limited);
    assert!(
        message.starts_with("验证码刚刚已发送，请 ") && message.ends_with(" 秒后再试"),
        "{message}"
    );
}

/// Builds the same request again, once per language.
type MakeRequest<'a> = Box<dyn Fn() -> reqwest::RequestBuilder + 'a>;

/// Requests that cannot run at all: our own messages and async-graphql's
/// (quoted after a Chinese lead), with the same extensions; Apollo's
/// `PersistedQueryNotFound` is the same word in both, as clients match on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn request_errors_speak_both_languages_with_the_same_extensions() {
    let app = spawn_app(Backend::Sqlite).spawn().await;
    let requests: Vec<(&str, MakeRequest)> = vec![
        (
            "BAD_REQUEST",
            Box::new(|| {
                app.post("/graphql")
                    .header(CONTENT_TYPE, "text/plain")
                    .body("{ mobileExists(mobile: \"1\") }")
            }),
        ),
        (
            "BAD_REQUEST",
            Box::new(|| app.client.put(format!("{}/graphql", app.address))),
        ),
        (
            "BAD_REQUEST",
            Box::new(|| {
                app.get("/graphql?query=mutation%20%7B%20logout(refreshToken%3A%20%22x%22)%20%7D")
            }),
        ),
        (
            "GRAPHQL_PARSE_FAILED",
            Box::new(|| app.post("/graphql").json(&json!({ "query": "{ me {" }))),
        ),
        (
            "GRAPHQL_VALIDATION_FAILED",
            Box::new(|| app.post("/graphql").json(&json!({ "query": "{ nope }" }))),
        ),
        (
            "GRAPHQL_VALIDATION_FAILED",
            Box::new(|| {
                app.post("/graphql").json(&json!({
                    "query": "mutation { a: logout(refreshToken: \"x\") b: logout(refreshToken: \"y\") }"
                }))
            }),
        ),
        (
            "PERSISTED_QUERY_NOT_FOUND",
            Box::new(|| {
                app.post("/graphql").json(&json!({
                    "extensions": { "persistedQuery": { "version": 1, "sha256Hash": "ab".repeat(32) } }
                }))
            }),
        ),
    ];
    for (code, request) in &requests {
        let chinese = request()
            .header(ACCEPT_LANGUAGE, "zh-CN")
            .send()
            .await
            .unwrap();
        let zh_status = chinese.status();
        let chinese: Value = chinese.json().await.unwrap();
        let english = request()
            .header(ACCEPT_LANGUAGE, "en")
            .send()
            .await
            .unwrap();
        assert_eq!(english.status(), zh_status, "{code}");
        let english: Value = english.json().await.unwrap();

        assert_eq!(error_code(&chinese).as_deref(), Some(*code), "{chinese}");
        assert_eq!(
            without_messages(chinese.clone()),
            without_messages(english.clone()),
            "{code}: only the message may differ"
        );
        let (zh, en) = (first_message(&chinese), first_message(&english));
        if *code == "PERSISTED_QUERY_NOT_FOUND" {
            assert_eq!(
                (zh, en),
                ("PersistedQueryNotFound", "PersistedQueryNotFound")
            );
        } else {
            assert!(has_chinese(zh), "{code}: Chinese message {zh:?}");
            assert!(!has_chinese(en), "{code}: English message {en:?}");
        }
    }
}
