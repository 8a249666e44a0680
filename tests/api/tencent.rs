//! `SMS_PROVIDER=tencent` end to end: the running app, over HTTP, sending through the real
//! provider to the local fake Tencent endpoint (`fake_tencent`), which verifies signatures
//! and fields and answers with each class of outcome.

use std::time::{Duration, Instant};

use sea_orm::EntityTrait;
use serde_json::Value;
use smsauth::db::entity::sms_messages;

use crate::fake_tencent::{
    Behaviour, FakeTencent, MESSAGE_MARKER, REGION, SDK_APP_ID, SECRET_ID, SECRET_KEY, SIGN_NAME,
    TEMPLATE_ID,
};
use crate::helpers::{Backend, TestApp, error_code, error_extensions, spawn_app};

const PASSWORD: &str = "correct horse battery staple";

/// The app configured for the fake, plus `extra` settings (later ones win).
async fn app_for(fake: &FakeTencent, extra: &[(&'static str, &str)]) -> TestApp {
    let mut builder = spawn_app(Backend::Sqlite)
        .configured_sms_provider()
        .var("SMS_PROVIDER", "tencent")
        .var("TENCENT_SECRET_ID", SECRET_ID)
        .var("TENCENT_SECRET_KEY", SECRET_KEY)
        .var("TENCENT_SMS_SDK_APP_ID", SDK_APP_ID)
        .var("TENCENT_SMS_SIGN_NAME", SIGN_NAME)
        .var("TENCENT_SMS_TEMPLATE_ID", TEMPLATE_ID)
        .var("TENCENT_SMS_REGION", REGION)
        .var("TENCENT_SMS_ENDPOINT", fake.endpoint.clone())
        .var("SMS_RESEND_COOLDOWN_SECS", "0");
    for (key, value) in extra {
        builder = builder.var(key, *value);
    }
    builder.spawn().await
}

/// Nothing a client sees may carry a secret or Tencent's own words.
fn assert_nothing_secret(answer: &Value) {
    let text = answer.to_string();
    for secret in [
        SECRET_KEY,
        MESSAGE_MARKER,
        "fakeTencentSecretKey",
        "wrong-key-on-the-app-side",
    ] {
        assert!(!text.contains(secret), "{secret:?} leaked into {text}");
    }
}

/// The failed audit row of `mobile`, with `error_code`.
async fn assert_failed_audit_row(app: &TestApp, mobile: &str, error_code: &str) {
    let rows = app
        .count(&format!(
            "SELECT COUNT(*) FROM sms_messages WHERE mobile = '{mobile}' AND provider = 'tencent' \
             AND status = 'failed' AND error_code = '{error_code}'"
        ))
        .await;
    assert_eq!(
        rows, 1,
        "one failed audit row for {mobile} with {error_code}"
    );
    let sent = app
        .count(&format!(
            "SELECT COUNT(*) FROM sms_messages WHERE mobile = '{mobile}' AND status = 'sent'"
        ))
        .await;
    assert_eq!(sent, 0);
}

/// The code the fake received is not valid: the failed send withdrew it.
async fn assert_code_withdrawn(app: &TestApp, mobile: &str, code: &str) {
    let answer = app.register(mobile, code, PASSWORD, None).await;
    assert_eq!(
        error_code(&answer).as_deref(),
        Some("INVALID_CODE"),
        "{answer}"
    );
}

/// Sends a REGISTER code to `mobile` with the fake behaving as told; returns the app, the
/// fake, the answer and the one request the fake received.
async fn send_with(behaviour: Behaviour, mobile: &str) -> (TestApp, FakeTencent, Value) {
    let fake = FakeTencent::start().await;
    fake.set(behaviour);
    let app = app_for(&fake, &[]).await;
    let answer = app.send_code(mobile, "REGISTER").await;
    (app, fake, answer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_send_is_signed_delivered_and_audited_with_serial_and_fee() {
    let mobile = "+8613700000001";
    let (app, fake, answer) = send_with(Behaviour::Succeed, mobile).await;
    assert_eq!(error_code(&answer), None, "{answer}");
    assert_eq!(answer["data"]["sendSmsCode"]["mobile"], mobile);

    // What Tencent received: a valid signature over exactly these fields.
    let received = fake.single_request();
    assert!(received.signature_valid, "{received:#?}");
    assert!(received.problems.is_empty(), "{:#?}", received.problems);
    assert_eq!(received.phone_numbers, vec![mobile.to_owned()]);
    let code = received.code();
    assert_eq!(code.len(), 6);
    assert_eq!(received.template_params, vec![code.clone(), "5".to_owned()]);
    let host = fake.endpoint.trim_start_matches("http://");
    assert_eq!(received.headers["host"], host);
    assert_eq!(received.headers["content-type"], "application/json");
    assert_eq!(received.headers["x-tc-action"], "SendSms");
    assert_eq!(received.headers["x-tc-version"], "2021-01-11");
    assert_eq!(received.headers["x-tc-region"], REGION);

    // The audit row is the one named by SessionContext, with Tencent's receipt.
    let session_context = received.session_context.clone().unwrap();
    let id = uuid::Uuid::parse_str(&session_context).expect("SessionContext is the audit row id");
    let row = sms_messages::Entity::find_by_id(id)
        .one(&app.state.db)
        .await
        .unwrap()
        .expect("the audit row named by SessionContext");
    assert_eq!(row.provider, "tencent");
    assert_eq!(row.status, "sent");
    assert_eq!(row.mobile, mobile);
    assert_eq!(row.serial_no, received.serial_no);
    assert!(row.serial_no.is_some());
    assert_eq!(row.fee, Some(1));
    assert_eq!(row.provider_request_id, received.request_id);
    assert_eq!(row.error_code, None);

    // The delivered code works.
    let registered = app.register(mobile, &code, PASSWORD, None).await;
    assert_eq!(error_code(&registered), None, "{registered}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wrong_secret_key_is_sms_delivery_failed_and_nothing_secret_is_shown() {
    let mobile = "+8613700000002";
    let fake = FakeTencent::start().await;
    let app = app_for(
        &fake,
        &[("TENCENT_SECRET_KEY", "wrong-key-on-the-app-side")],
    )
    .await;
    let answer = app.send_code(mobile, "REGISTER").await;

    let received = fake.single_request();
    assert!(!received.signature_valid);
    assert_eq!(received.answered, "AuthFailure.SignatureFailure");
    assert_eq!(
        error_code(&answer).as_deref(),
        Some("SMS_DELIVERY_FAILED"),
        "{answer}"
    );
    assert_eq!(
        error_extensions(&answer)["providerCode"],
        "AuthFailure.SignatureFailure"
    );
    assert_nothing_secret(&answer);
    assert_failed_audit_row(&app, mobile, "AuthFailure.SignatureFailure").await;
    assert_code_withdrawn(&app, mobile, &received.code()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tencents_daily_limit_is_rate_limited_until_beijing_midnight() {
    let mobile = "+8613700000003";
    let code = "LimitExceeded.PhoneNumberDailyLimit";
    let (app, fake, answer) = send_with(Behaviour::NumberError(code), mobile).await;

    assert_eq!(
        error_code(&answer).as_deref(),
        Some("RATE_LIMITED"),
        "{answer}"
    );
    let extensions = error_extensions(&answer);
    assert_eq!(extensions["providerCode"], code);
    let retry_after = extensions["retryAfter"].as_u64().unwrap();
    assert!((1..=86_400).contains(&retry_after), "{retry_after}");
    assert_nothing_secret(&answer);
    assert_failed_audit_row(&app, mobile, code).await;
    assert_code_withdrawn(&app, mobile, &fake.single_request().code()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tencents_thirty_second_limit_as_a_request_error_is_rate_limited_for_30_s() {
    let mobile = "+8613700000004";
    let code = "LimitExceeded.PhoneNumberThirtySecondLimit";
    let (app, _fake, answer) = send_with(Behaviour::RequestError(code), mobile).await;

    assert_eq!(
        error_code(&answer).as_deref(),
        Some("RATE_LIMITED"),
        "{answer}"
    );
    assert_eq!(error_extensions(&answer)["retryAfter"], 30);
    assert_eq!(error_extensions(&answer)["providerCode"], code);
    assert_failed_audit_row(&app, mobile, code).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_number_tencent_refuses_is_bad_user_input() {
    let mobile = "+8613700000005";
    let code = "InvalidParameterValue.IncorrectPhoneNumber";
    let (app, fake, answer) = send_with(Behaviour::NumberError(code), mobile).await;

    assert_eq!(
        error_code(&answer).as_deref(),
        Some("BAD_USER_INPUT"),
        "{answer}"
    );
    assert_eq!(error_extensions(&answer)["field"], "mobile");
    assert_nothing_secret(&answer);
    assert_failed_audit_row(&app, mobile, code).await;
    assert_code_withdrawn(&app, mobile, &fake.single_request().code()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_empty_sms_package_is_sms_delivery_failed_with_the_provider_code() {
    let mobile = "+8613700000006";
    let code = "FailedOperation.InsufficientBalanceInSmsPackage";
    let (app, fake, answer) = send_with(Behaviour::RequestError(code), mobile).await;

    assert_eq!(
        error_code(&answer).as_deref(),
        Some("SMS_DELIVERY_FAILED"),
        "{answer}"
    );
    assert_eq!(error_extensions(&answer)["providerCode"], code);
    assert_nothing_secret(&answer);
    assert_failed_audit_row(&app, mobile, code).await;
    assert_code_withdrawn(&app, mobile, &fake.single_request().code()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_template_refused_for_one_number_is_sms_delivery_failed() {
    let mobile = "+8613700000007";
    let code = "FailedOperation.TemplateParamSetNotMatchApprovedTemplate";
    let (app, _fake, answer) = send_with(Behaviour::NumberError(code), mobile).await;

    assert_eq!(
        error_code(&answer).as_deref(),
        Some("SMS_DELIVERY_FAILED"),
        "{answer}"
    );
    assert_eq!(error_extensions(&answer)["providerCode"], code);
    assert_nothing_secret(&answer);
    assert_failed_audit_row(&app, mobile, code).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tencent_internal_error_is_service_unavailable() {
    let mobile = "+8613700000008";
    let (app, fake, answer) = send_with(Behaviour::RequestError("InternalError"), mobile).await;

    assert_eq!(
        error_code(&answer).as_deref(),
        Some("SERVICE_UNAVAILABLE"),
        "{answer}"
    );
    assert_nothing_secret(&answer);
    assert_failed_audit_row(&app, mobile, "Unavailable").await;
    assert_code_withdrawn(&app, mobile, &fake.single_request().code()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_gateway_502_is_service_unavailable() {
    let mobile = "+8613700000009";
    let (app, fake, answer) = send_with(Behaviour::HttpStatus(502), mobile).await;

    assert_eq!(
        error_code(&answer).as_deref(),
        Some("SERVICE_UNAVAILABLE"),
        "{answer}"
    );
    assert_eq!(fake.single_request().answered, "HTTP 502");
    assert_nothing_secret(&answer);
    assert_failed_audit_row(&app, mobile, "Unavailable").await;
    assert_code_withdrawn(&app, mobile, &fake.single_request().code()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_answer_times_out_within_the_bound_and_the_code_is_not_left_valid() {
    let mobile = "+8613700000010";
    let fake = FakeTencent::start().await;
    fake.set(Behaviour::Slow(Duration::from_secs(3)));
    let app = app_for(&fake, &[("TENCENT_SMS_TIMEOUT_MS", "500")]).await;

    let started = Instant::now();
    let answer = app.send_code(mobile, "REGISTER").await;
    let elapsed = started.elapsed();

    assert_eq!(
        error_code(&answer).as_deref(),
        Some("SERVICE_UNAVAILABLE"),
        "{answer}"
    );
    assert!(
        elapsed < Duration::from_secs(2),
        "answered after {elapsed:?}"
    );
    // Tencent may have delivered it: not sent again, and the code does not work.
    let received = fake.single_request();
    assert!(received.signature_valid);
    assert_nothing_secret(&answer);
    assert_failed_audit_row(&app, mobile, "Unavailable").await;
    assert_code_withdrawn(&app, mobile, &received.code()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dropped_connection_is_service_unavailable_and_is_not_retried() {
    let mobile = "+8613700000011";
    let (app, fake, answer) = send_with(Behaviour::DropConnection, mobile).await;

    assert_eq!(
        error_code(&answer).as_deref(),
        Some("SERVICE_UNAVAILABLE"),
        "{answer}"
    );
    // The request arrived whole (and may have been sent): exactly one, never repeated.
    let received = fake.single_request();
    assert_eq!(received.answered, "dropped");
    // Read off the raw socket: one Host header, the one that was signed.
    assert_eq!(received.headers.get_all("host").iter().count(), 1);
    assert!(received.signature_valid, "{received:#?}");
    assert_nothing_secret(&answer);
    assert_failed_audit_row(&app, mobile, "Unavailable").await;
    assert_code_withdrawn(&app, mobile, &received.code()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unreachable_endpoint_is_service_unavailable() {
    let mobile = "+8613700000012";
    // A port that was free a moment ago: nothing listens there.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let fake = FakeTencent::start().await;
    let app = app_for(&fake, &[("TENCENT_SMS_ENDPOINT", endpoint.as_str())]).await;

    let started = Instant::now();
    let answer = app.send_code(mobile, "REGISTER").await;

    assert_eq!(
        error_code(&answer).as_deref(),
        Some("SERVICE_UNAVAILABLE"),
        "{answer}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(fake.requests().is_empty());
    assert_failed_audit_row(&app, mobile, "Unavailable").await;
}
