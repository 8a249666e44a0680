//! `SMS_PROVIDER=tencent` end to end: the running app, over HTTP, sending through the real
//! provider to the local fake Tencent endpoint (`fake_tencent`), which verifies signatures
//! and fields and answers with each class of outcome.

use std::time::{Duration, Instant};

use sea_orm::EntityTrait;
use serde_json::{Value, json};
use smsauth::db::entity::sms_messages;

use crate::fake_tencent::{self, Behaviour, FakeTencent, MESSAGE_MARKER, REGION, SECRET_KEY};
use crate::helpers::{TestApp, error_code, error_extensions};
use crate::provider_checks::{self as checks, PASSWORD, app_with_provider, assert_code_withdrawn};

/// The app configured for the fake, plus `extra` settings (later ones win).
async fn app_for(fake: &FakeTencent, extra: &[(&'static str, &str)]) -> TestApp {
    app_with_provider("tencent", fake_tencent::settings(fake), extra).await
}

/// Nothing a client sees may carry a secret or Tencent's own words.
fn assert_nothing_secret(answer: &Value) {
    checks::assert_nothing_secret(
        answer,
        &[
            SECRET_KEY,
            MESSAGE_MARKER,
            "fakeTencentSecretKey",
            "wrong-key-on-the-app-side",
        ],
    );
}

async fn assert_failed_audit_row(app: &TestApp, mobile: &str, error_code: &str) {
    checks::assert_failed_audit_row(app, "tencent", mobile, error_code).await;
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

/// One of Tencent's refusals and what the app answers for it.
struct Refusal {
    behaviour: Behaviour,
    /// Settings of the app for this case only (they get their own app and fake).
    settings: &'static [(&'static str, &'static str)],
    code: &'static str,
    /// Checked against the error's `extensions`; `retryAfter: "until-midnight"` means
    /// between 1 s and a day.
    extensions: Value,
    /// The failed audit row's `error_code`.
    audit: &'static str,
    /// What the fake answered (the request error code, or `HTTP <status>`).
    answered: &'static str,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_tencent_refusal_maps_to_its_contract_code_and_leaves_no_valid_code() {
    let signature = "AuthFailure.SignatureFailure";
    let daily = "LimitExceeded.PhoneNumberDailyLimit";
    let thirty = "LimitExceeded.PhoneNumberThirtySecondLimit";
    let app_daily = "LimitExceeded.AppDailyLimit";
    let number = "InvalidParameterValue.IncorrectPhoneNumber";
    let balance = "FailedOperation.InsufficientBalanceInSmsPackage";
    let template = "FailedOperation.TemplateParamSetNotMatchApprovedTemplate";
    let sensitive = "FailedOperation.ContainSensitiveWord";
    let refusals = [
        Refusal {
            behaviour: Behaviour::Succeed,
            settings: &[("TENCENT_SECRET_KEY", "wrong-key-on-the-app-side")],
            code: "SMS_DELIVERY_FAILED",
            extensions: json!({ "providerCode": signature }),
            audit: signature,
            answered: signature,
        },
        Refusal {
            behaviour: Behaviour::NumberError(daily),
            settings: &[],
            code: "RATE_LIMITED",
            extensions: json!({ "providerCode": daily, "reason": "PROVIDER_LIMIT", "retryAfter": "until-midnight" }),
            audit: daily,
            answered: daily,
        },
        Refusal {
            behaviour: Behaviour::RequestError(thirty),
            settings: &[],
            code: "RATE_LIMITED",
            extensions: json!({ "providerCode": thirty, "reason": "PROVIDER_LIMIT", "retryAfter": 30 }),
            audit: thirty,
            answered: thirty,
        },
        // The application's own daily cap: with no other provider, the user is told when.
        Refusal {
            behaviour: Behaviour::RequestError(app_daily),
            settings: &[],
            code: "RATE_LIMITED",
            extensions: json!({ "providerCode": app_daily, "reason": "PROVIDER_LIMIT", "retryAfter": "until-midnight" }),
            audit: app_daily,
            answered: app_daily,
        },
        Refusal {
            behaviour: Behaviour::NumberError(number),
            settings: &[],
            code: "BAD_USER_INPUT",
            extensions: json!({ "field": "mobile" }),
            audit: number,
            answered: number,
        },
        Refusal {
            behaviour: Behaviour::RequestError(balance),
            settings: &[],
            code: "SMS_DELIVERY_FAILED",
            extensions: json!({ "providerCode": balance }),
            audit: balance,
            answered: balance,
        },
        Refusal {
            behaviour: Behaviour::NumberError(template),
            settings: &[],
            code: "SMS_DELIVERY_FAILED",
            extensions: json!({ "providerCode": template }),
            audit: template,
            answered: template,
        },
        Refusal {
            behaviour: Behaviour::RequestError(sensitive),
            settings: &[],
            code: "SMS_DELIVERY_FAILED",
            extensions: json!({ "providerCode": sensitive }),
            audit: sensitive,
            answered: sensitive,
        },
        Refusal {
            behaviour: Behaviour::RequestError("InternalError"),
            settings: &[],
            code: "SERVICE_UNAVAILABLE",
            extensions: json!({}),
            audit: "Unavailable",
            answered: "InternalError",
        },
        Refusal {
            behaviour: Behaviour::HttpStatus(502),
            settings: &[],
            code: "SERVICE_UNAVAILABLE",
            extensions: json!({}),
            audit: "Unavailable",
            answered: "HTTP 502",
        },
        Refusal {
            behaviour: Behaviour::HttpStatus(503),
            settings: &[],
            code: "SERVICE_UNAVAILABLE",
            extensions: json!({}),
            audit: "Unavailable",
            answered: "HTTP 503",
        },
    ];

    let shared_fake = FakeTencent::start().await;
    let shared_app = app_for(&shared_fake, &[]).await;
    for (i, refusal) in refusals.into_iter().enumerate() {
        let own = if refusal.settings.is_empty() {
            None
        } else {
            let fake = FakeTencent::start().await;
            let app = app_for(&fake, refusal.settings).await;
            Some((app, fake))
        };
        let (app, fake) = match &own {
            Some((app, fake)) => (app, fake),
            None => (&shared_app, &shared_fake),
        };
        let mobile = format!("+86137000000{:02}", 20 + i);
        fake.set(refusal.behaviour.clone());
        let requests_before = fake.requests().len();
        let answer = app.send_code(&mobile, "REGISTER").await;
        let what = format!("{:?}: {answer}", refusal.behaviour);

        assert_eq!(error_code(&answer).as_deref(), Some(refusal.code), "{what}");
        let extensions = error_extensions(&answer);
        for (key, value) in refusal.extensions.as_object().unwrap() {
            if value == "until-midnight" {
                let secs = extensions[key].as_u64().unwrap_or(0);
                assert!((1..=86_400).contains(&secs), "{key} of {what}");
            } else {
                assert_eq!(&extensions[key], value, "{key} of {what}");
            }
        }
        assert_nothing_secret(&answer);
        let requests = fake.requests();
        assert_eq!(
            requests.len(),
            requests_before + 1,
            "one request, never repeated: {what}"
        );
        let received = requests.last().unwrap();
        assert_eq!(received.answered, refusal.answered, "{what}");
        assert_eq!(
            received.signature_valid,
            refusal.settings.is_empty(),
            "{what}"
        );
        assert_failed_audit_row(app, &mobile, refusal.audit).await;
        assert_code_withdrawn(app, &mobile, &received.code()).await;
    }
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
async fn a_client_that_hangs_up_mid_send_still_gets_a_code_that_works_and_an_audit_row() {
    let mobile = "+8613700000012";
    let fake = FakeTencent::start().await;
    fake.set(Behaviour::Slow(Duration::from_millis(800)));
    let app = app_for(&fake, &[]).await;

    // The app gives up while Tencent is still answering: the server sees the connection close.
    fake.hang_up_on_a_send(&app.address, mobile).await;

    // The send runs to its end regardless: the SMS Tencent accepted is on record...
    let sent =
        format!("SELECT COUNT(*) FROM sms_messages WHERE status = 'sent' AND mobile = '{mobile}'");
    let deadline = Instant::now() + Duration::from_secs(5);
    while app.count(&sent).await == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        app.count(&sent).await,
        1,
        "the delivered SMS has its audit row"
    );
    // ...and the code the user received signs them up.
    let received = fake.single_request();
    let answer = app.register(mobile, &received.code(), PASSWORD, None).await;
    assert_eq!(error_code(&answer), None, "{answer}");
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
