//! `SMS_PROVIDER=aliyun` end to end: the running app, over HTTP, sending through the real
//! provider to the local fake Aliyun endpoint (`fake_aliyun`), which verifies the ACS3
//! signature, headers and parameters and answers with each class of outcome.

use std::time::{Duration, Instant};

use sea_orm::EntityTrait;
use serde_json::{Value, json};
use smsauth::db::entity::sms_messages;

use crate::fake_aliyun::{
    self, ACCESS_KEY_SECRET, Behaviour, CODE_PARAM, FakeAliyun, MESSAGE_MARKER, SIGN_NAME,
    TEMPLATE_CODE,
};
use crate::helpers::{TestApp, error_code, error_extensions};
use crate::provider_checks::{self as checks, PASSWORD, app_with_provider, assert_code_withdrawn};

async fn app_for(fake: &FakeAliyun, extra: &[(&'static str, &str)]) -> TestApp {
    app_with_provider("aliyun", fake_aliyun::settings(fake), extra).await
}

fn assert_nothing_secret(answer: &Value) {
    checks::assert_nothing_secret(
        answer,
        &[
            ACCESS_KEY_SECRET,
            MESSAGE_MARKER,
            "fakeAliyunSecret",
            "wrong-aliyun-secret",
        ],
    );
}

async fn assert_failed_audit_row(app: &TestApp, mobile: &str, error_code: &str) {
    checks::assert_failed_audit_row(app, "aliyun", mobile, error_code).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_send_is_signed_delivered_and_audited_with_provider_aliyun() {
    let mobile = "+8613700000101";
    let fake = FakeAliyun::start().await;
    let app = app_for(&fake, &[]).await;
    let answer = app.send_code(mobile, "REGISTER").await;
    assert_eq!(error_code(&answer), None, "{answer}");

    // What Aliyun received: a valid ACS3 signature over exactly these parameters.
    let received = fake.single_request();
    assert!(received.signature_valid, "{received:#?}");
    assert!(received.problems.is_empty(), "{:#?}", received.problems);
    assert_eq!(received.answered, "OK");
    assert_eq!(
        received.param("PhoneNumbers").as_deref(),
        Some("8613700000101")
    );
    assert_eq!(received.param("SignName").as_deref(), Some(SIGN_NAME));
    assert_eq!(
        received.param("TemplateCode").as_deref(),
        Some(TEMPLATE_CODE)
    );
    let code = received.code();
    assert_eq!(code.len(), 6);
    assert_eq!(
        received.param("TemplateParam"),
        Some(json!({ CODE_PARAM: code }).to_string()),
        "the code only, in the template's variable"
    );
    assert_eq!(received.params.len(), 5, "{:?}", received.params);
    let host = fake.endpoint.trim_start_matches("http://");
    assert_eq!(received.headers["host"], host);
    assert_eq!(received.headers.get_all("host").iter().count(), 1);
    assert_eq!(received.headers["x-acs-action"], "SendSms");
    assert_eq!(received.headers["x-acs-version"], "2017-05-25");
    assert_eq!(received.headers["accept"], "application/json");
    assert!(
        received.headers.get("content-type").is_none(),
        "no body, no Content-Type"
    );

    // The audit row is the one named by OutId, with Aliyun's receipt and no fee (not told).
    let out_id = received.param("OutId").unwrap();
    let id = uuid::Uuid::parse_str(&out_id).expect("OutId is the audit row id");
    let row = sms_messages::Entity::find_by_id(id)
        .one(&app.state.db)
        .await
        .unwrap()
        .expect("the audit row named by OutId");
    assert_eq!(row.provider, "aliyun");
    assert_eq!(row.status, "sent");
    assert_eq!(row.mobile, mobile);
    assert_eq!(row.serial_no, received.biz_id);
    assert!(row.serial_no.is_some());
    assert_eq!(
        row.provider_request_id.as_deref(),
        Some(received.request_id.as_str())
    );
    assert_eq!(row.fee, None);
    assert_eq!(row.error_code, None);

    let registered = app.register(mobile, &code, PASSWORD, None).await;
    assert_eq!(error_code(&registered), None, "{registered}");
}

/// What the app answers for one of Aliyun's outcomes.
struct Case {
    behaviour: Behaviour,
    code: &'static str,
    /// Checked against the error's `extensions`.
    extensions: Value,
    /// The failed audit row's `error_code`.
    audit: &'static str,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_aliyun_answer_maps_to_its_contract_code() {
    let case = |behaviour, code, extensions, audit| Case {
        behaviour,
        code,
        extensions,
        audit,
    };
    let cases = [
        case(
            Behaviour::BusinessError("isv.BUSINESS_LIMIT_CONTROL", "触发分钟级流控Permits:1"),
            "RATE_LIMITED",
            json!({ "retryAfter": 60, "providerCode": "isv.BUSINESS_LIMIT_CONTROL" }),
            "isv.BUSINESS_LIMIT_CONTROL",
        ),
        case(
            Behaviour::BusinessError("isv.BUSINESS_LIMIT_CONTROL", "触发小时级流控Permits:5"),
            "RATE_LIMITED",
            json!({ "retryAfter": 3600, "providerCode": "isv.BUSINESS_LIMIT_CONTROL" }),
            "isv.BUSINESS_LIMIT_CONTROL",
        ),
        case(
            Behaviour::BusinessError("isv.BUSINESS_LIMIT_CONTROL", "触发天级流控Permits:10"),
            "RATE_LIMITED",
            json!({ "retryAfter": 86400, "providerCode": "isv.BUSINESS_LIMIT_CONTROL" }),
            "isv.BUSINESS_LIMIT_CONTROL",
        ),
        case(
            Behaviour::BusinessError("isv.MOBILE_NUMBER_ILLEGAL", "非法手机号"),
            "BAD_USER_INPUT",
            json!({ "field": "mobile" }),
            "isv.MOBILE_NUMBER_ILLEGAL",
        ),
        case(
            Behaviour::BusinessError("isv.AMOUNT_NOT_ENOUGH", "账户余额不足"),
            "SMS_DELIVERY_FAILED",
            json!({ "providerCode": "isv.AMOUNT_NOT_ENOUGH" }),
            "isv.AMOUNT_NOT_ENOUGH",
        ),
        case(
            Behaviour::BusinessError("isv.DAY_LIMIT_CONTROL", "触发日发送限额"),
            "SMS_DELIVERY_FAILED",
            json!({ "providerCode": "isv.DAY_LIMIT_CONTROL" }),
            "isv.DAY_LIMIT_CONTROL",
        ),
        case(
            Behaviour::BusinessError("isv.BLACK_KEY_CONTROL_LIMIT", "黑名单管控"),
            "SMS_DELIVERY_FAILED",
            json!({ "providerCode": "isv.BLACK_KEY_CONTROL_LIMIT" }),
            "isv.BLACK_KEY_CONTROL_LIMIT",
        ),
        case(
            Behaviour::GatewayError(404, "InvalidAccessKeyId.NotFound"),
            "SMS_DELIVERY_FAILED",
            json!({ "providerCode": "InvalidAccessKeyId.NotFound" }),
            "InvalidAccessKeyId.NotFound",
        ),
        case(
            Behaviour::GatewayError(400, "Throttling.User"),
            "SMS_DELIVERY_FAILED",
            json!({ "providerCode": "Throttling.User" }),
            "Throttling.User",
        ),
        case(
            Behaviour::BusinessError("isp.SYSTEM_ERROR", "系统错误"),
            "SERVICE_UNAVAILABLE",
            json!({}),
            "Unavailable",
        ),
        case(
            Behaviour::GatewayError(500, "InternalError"),
            "SERVICE_UNAVAILABLE",
            json!({}),
            "Unavailable",
        ),
        case(
            Behaviour::GatewayError(503, "SomethingNew.NeverSeen"),
            "SERVICE_UNAVAILABLE",
            json!({}),
            "Unavailable",
        ),
        case(
            Behaviour::HttpStatus(502),
            "SERVICE_UNAVAILABLE",
            json!({}),
            "Unavailable",
        ),
        case(
            Behaviour::HttpStatus(200),
            "SERVICE_UNAVAILABLE",
            json!({}),
            "Unavailable",
        ),
    ];
    let fake = FakeAliyun::start().await;
    let app = app_for(&fake, &[]).await;
    let sends = cases.len();
    for (i, case) in cases.into_iter().enumerate() {
        let mobile = format!("+86137000002{i:02}");
        fake.set(case.behaviour.clone());
        let answer = app.send_code(&mobile, "REGISTER").await;
        let what = format!("{:?}: {answer}", case.behaviour);
        assert_eq!(error_code(&answer).as_deref(), Some(case.code), "{what}");
        let extensions = error_extensions(&answer);
        for (key, value) in case.extensions.as_object().unwrap() {
            assert_eq!(&extensions[key], value, "{key} of {what}");
        }
        assert_nothing_secret(&answer);
        let received = fake.requests().pop().unwrap();
        assert!(
            received.signature_valid && received.problems.is_empty(),
            "{received:#?}"
        );
        assert_failed_audit_row(&app, &mobile, case.audit).await;
        // The code Aliyun did not send is not valid.
        assert_code_withdrawn(&app, &mobile, &received.code()).await;
    }
    assert_eq!(
        fake.requests().len(),
        sends,
        "one request per send, never retried"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wrong_secret_is_refused_by_the_signature_check_and_nothing_secret_is_shown() {
    let mobile = "+8613700000102";
    let fake = FakeAliyun::start().await;
    let app = app_for(
        &fake,
        &[("ALIYUN_ACCESS_KEY_SECRET", "wrong-aliyun-secret")],
    )
    .await;
    let answer = app.send_code(mobile, "REGISTER").await;

    let received = fake.single_request();
    assert!(!received.signature_valid);
    assert_eq!(received.answered, "SignatureDoesNotMatch");
    assert_eq!(
        error_code(&answer).as_deref(),
        Some("SMS_DELIVERY_FAILED"),
        "{answer}"
    );
    assert_eq!(
        error_extensions(&answer)["providerCode"],
        "SignatureDoesNotMatch"
    );
    assert_nothing_secret(&answer);
    assert_failed_audit_row(&app, mobile, "SignatureDoesNotMatch").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_answer_times_out_within_the_bound_and_is_not_repeated() {
    let mobile = "+8613700000103";
    let fake = FakeAliyun::start().await;
    // Far slower than the bound, so the answer cannot come from the fake finishing.
    fake.set(Behaviour::Slow(Duration::from_secs(6)));
    let app = app_for(&fake, &[("ALIYUN_SMS_TIMEOUT_MS", "500")]).await;

    let started = Instant::now();
    let answer = app.send_code(mobile, "REGISTER").await;
    assert_eq!(
        error_code(&answer).as_deref(),
        Some("SERVICE_UNAVAILABLE"),
        "{answer}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    let received = fake.single_request();
    assert!(received.signature_valid);
    assert_failed_audit_row(&app, mobile, "Unavailable").await;
    assert_code_withdrawn(&app, mobile, &received.code()).await;
}
