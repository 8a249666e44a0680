//! `SMS_PROVIDER=tencent,aliyun`: the chain over both local fakes. The next provider is tried
//! only when the failed one proves the SMS was not sent; every attempt is its own audit row.

use std::time::Duration;

use futures::future::join_all;

use crate::fake_aliyun::{self, FakeAliyun};
use crate::fake_tencent::{self, FakeTencent};
use crate::helpers::{TestApp, error_code, error_extensions};
use crate::provider_checks::{PASSWORD, app_with_provider, assert_code_withdrawn};

const OUT_OF_BALANCE: &str = "FailedOperation.InsufficientBalanceInSmsPackage";

struct Chain {
    app: TestApp,
    tencent: FakeTencent,
    aliyun: FakeAliyun,
}

async fn chain(extra: &[(&'static str, &str)]) -> Chain {
    let tencent = FakeTencent::start().await;
    let aliyun = FakeAliyun::start().await;
    let mut settings = fake_tencent::settings(&tencent);
    settings.extend(fake_aliyun::settings(&aliyun));
    Chain {
        app: app_with_provider("tencent,aliyun", settings, extra).await,
        tencent,
        aliyun,
    }
}

/// A port nothing listens on.
async fn closed_endpoint() -> String {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    endpoint
}

/// `(provider, status, error_code)` of every audit row of `mobile`, oldest first.
async fn rows(app: &TestApp, mobile: &str) -> Vec<(String, String, Option<String>)> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
    use smsauth::db::entity::sms_messages;
    sms_messages::Entity::find()
        .filter(sms_messages::Column::Mobile.eq(mobile))
        .order_by_asc(sms_messages::Column::Id)
        .all(&app.state.db)
        .await
        .unwrap()
        .into_iter()
        .map(|row| (row.provider, row.status, row.error_code))
        .collect()
}

fn row(provider: &str, status: &str, error: Option<&str>) -> (String, String, Option<String>) {
    (
        provider.to_owned(),
        status.to_owned(),
        error.map(str::to_owned),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tencent_out_of_balance_fails_over_to_aliyun_and_its_code_signs_in() {
    let c = chain(&[("METRICS_ADDR", "127.0.0.1:0")]).await;
    let mobile = "+8613700000301";
    c.tencent
        .set(fake_tencent::Behaviour::RequestError(OUT_OF_BALANCE));
    c.app
        .create_user("failover_user", mobile, None, PASSWORD)
        .await;

    let answer = c.app.send_code(mobile, "LOGIN").await;
    assert_eq!(error_code(&answer), None, "{answer}");
    let from_tencent = c.tencent.single_request();
    let from_aliyun = c.aliyun.single_request();
    assert!(from_aliyun.signature_valid && from_aliyun.problems.is_empty());
    assert_eq!(
        from_tencent.code(),
        from_aliyun.code(),
        "the next provider gets the same code"
    );
    assert_eq!(
        rows(&c.app, mobile).await,
        vec![
            row("tencent", "failed", Some(OUT_OF_BALANCE)),
            row("aliyun", "sent", None)
        ]
    );
    // Each attempt names its own row.
    assert_ne!(from_tencent.session_context, from_aliyun.param("OutId"));

    // Each attempt is counted under its own provider.
    for (series, value) in [
        (
            r#"smsauth_sms_sent_total{provider="tencent",purpose="LOGIN",status="failed"}"#,
            1.0,
        ),
        (
            r#"smsauth_sms_sent_total{provider="aliyun",purpose="LOGIN",status="sent"}"#,
            1.0,
        ),
        (
            r#"smsauth_sms_sent_total{provider="tencent",purpose="LOGIN",status="sent"}"#,
            0.0,
        ),
    ] {
        assert_eq!(c.app.metric(series).await, value, "{series}");
    }

    let signed_in = c.app.login_with_sms(mobile, &from_aliyun.code()).await;
    assert_eq!(error_code(&signed_in), None, "{signed_in}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tencent_refusing_connections_fails_over_to_aliyun() {
    let closed = closed_endpoint().await;
    let c = chain(&[("TENCENT_SMS_ENDPOINT", closed.as_str())]).await;
    let mobile = "+8613700000302";
    let answer = c.app.send_code(mobile, "REGISTER").await;
    assert_eq!(error_code(&answer), None, "{answer}");
    assert_eq!(
        rows(&c.app, mobile).await,
        vec![
            row("tencent", "failed", Some("Unavailable")),
            row("aliyun", "sent", None)
        ]
    );
    let code = c.aliyun.single_request().code();
    let registered = c.app.register(mobile, &code, PASSWORD, None).await;
    assert_eq!(error_code(&registered), None, "{registered}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tencent_timeout_after_sending_never_fails_over() {
    let c = chain(&[("TENCENT_SMS_TIMEOUT_MS", "500")]).await;
    c.tencent
        .set(fake_tencent::Behaviour::Slow(Duration::from_secs(3)));
    let mobile = "+8613700000303";
    let answer = c.app.send_code(mobile, "REGISTER").await;
    assert_eq!(
        error_code(&answer).as_deref(),
        Some("SERVICE_UNAVAILABLE"),
        "{answer}"
    );
    assert_eq!(c.tencent.requests().len(), 1);
    assert!(c.aliyun.requests().is_empty(), "Aliyun got nothing");
    assert_eq!(
        rows(&c.app, mobile).await,
        vec![row("tencent", "failed", Some("Unavailable"))]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_number_or_a_per_number_limit_never_fails_over() {
    let c = chain(&[]).await;
    let refused = "InvalidParameterValue.IncorrectPhoneNumber";
    c.tencent.set(fake_tencent::Behaviour::NumberError(refused));
    let mobile = "+8613700000304";
    let answer = c.app.send_code(mobile, "REGISTER").await;
    assert_eq!(
        error_code(&answer).as_deref(),
        Some("BAD_USER_INPUT"),
        "{answer}"
    );
    assert_eq!(
        rows(&c.app, mobile).await,
        vec![row("tencent", "failed", Some(refused))]
    );

    let limit = "LimitExceeded.PhoneNumberDailyLimit";
    c.tencent.set(fake_tencent::Behaviour::NumberError(limit));
    let mobile = "+8613700000305";
    let answer = c.app.send_code(mobile, "REGISTER").await;
    assert_eq!(
        error_code(&answer).as_deref(),
        Some("RATE_LIMITED"),
        "{answer}"
    );
    assert_eq!(error_extensions(&answer)["providerCode"], limit);
    assert_eq!(
        rows(&c.app, mobile).await,
        vec![row("tencent", "failed", Some(limit))]
    );

    assert!(
        c.aliyun.requests().is_empty(),
        "another provider must not bypass either"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn both_down_is_service_unavailable_with_both_rows_and_no_valid_code() {
    let closed = closed_endpoint().await;
    let c = chain(&[("TENCENT_SMS_ENDPOINT", closed.as_str())]).await;
    c.aliyun.set(fake_aliyun::Behaviour::GatewayError(
        503,
        "ServiceUnavailable",
    ));
    let mobile = "+8613700000306";
    let answer = c.app.send_code(mobile, "REGISTER").await;
    assert_eq!(
        error_code(&answer).as_deref(),
        Some("SERVICE_UNAVAILABLE"),
        "{answer}"
    );
    assert_eq!(
        rows(&c.app, mobile).await,
        vec![
            row("tencent", "failed", Some("Unavailable")),
            row("aliyun", "failed", Some("Unavailable"))
        ]
    );
    assert_code_withdrawn(&c.app, mobile, &c.aliyun.single_request().code()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_provider_failing_5_times_in_a_row_is_skipped_for_a_while_then_retried() {
    let c = chain(&[("SMS_PROVIDER_SKIP_SECS", "2")]).await;
    c.tencent
        .set(fake_tencent::Behaviour::RequestError(OUT_OF_BALANCE));
    let send = |i: u32| {
        let app = &c.app;
        async move {
            let mobile = format!("+86137000004{i:02}");
            let answer = app.send_code(&mobile, "REGISTER").await;
            assert_eq!(error_code(&answer), None, "{answer}");
            rows(app, &mobile)
                .await
                .into_iter()
                .map(|(provider, status, _)| format!("{provider}:{status}"))
                .collect::<Vec<_>>()
        }
    };
    for i in 0..5 {
        assert_eq!(send(i).await, ["tencent:failed", "aliyun:sent"], "send {i}");
    }
    // Skipped: no Tencent timeout or refusal in the way, one attempt per send.
    assert_eq!(send(5).await, ["aliyun:sent"]);
    assert_eq!(send(6).await, ["aliyun:sent"]);
    assert_eq!(c.tencent.requests().len(), 5);

    // After the pause Tencent is tried again, and delivers.
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    c.tencent.set(fake_tencent::Behaviour::Succeed);
    assert_eq!(send(7).await, ["tencent:sent"]);
    assert_eq!(c.tencent.requests().len(), 6);
    assert_eq!(c.aliyun.requests().len(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_parallel_sends_during_failover_deliver_exactly_one_sms() {
    let c = chain(&[("SMS_RESEND_COOLDOWN_SECS", "60")]).await;
    c.tencent
        .set(fake_tencent::Behaviour::RequestError(OUT_OF_BALANCE));
    let mobile = "+8613700000307";
    let answers = join_all((0..20).map(|_| c.app.send_code(mobile, "REGISTER"))).await;
    let ok = answers.iter().filter(|a| error_code(a).is_none()).count();
    let limited = answers
        .iter()
        .filter(|a| error_code(a).as_deref() == Some("RATE_LIMITED"))
        .count();
    assert_eq!((ok, limited), (1, 19), "{answers:#?}");
    assert_eq!(c.tencent.requests().len(), 1);
    assert_eq!(c.aliyun.requests().len(), 1, "exactly one SMS");
    assert_eq!(
        rows(&c.app, mobile).await,
        vec![
            row("tencent", "failed", Some(OUT_OF_BALANCE)),
            row("aliyun", "sent", None)
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn account_wide_caps_internal_errors_and_5xx_fail_over_but_gateway_502_and_content_refusals_do_not()
 {
    let c = chain(&[]).await;
    let cases = [
        (
            fake_tencent::Behaviour::RequestError("LimitExceeded.AppDailyLimit"),
            true,
        ),
        (
            fake_tencent::Behaviour::RequestError("InternalError.Timeout"),
            true,
        ),
        (fake_tencent::Behaviour::HttpStatus(503), true),
        (fake_tencent::Behaviour::HttpStatus(502), false),
        (
            fake_tencent::Behaviour::RequestError("FailedOperation.ContainSensitiveWord"),
            false,
        ),
    ];
    for (i, (behaviour, fails_over)) in cases.into_iter().enumerate() {
        c.tencent.set(behaviour.clone());
        let mobile = format!("+86137000005{i:02}");
        let before = c.aliyun.requests().len();
        let answer = c.app.send_code(&mobile, "REGISTER").await;
        let providers: Vec<String> = rows(&c.app, &mobile)
            .await
            .into_iter()
            .map(|r| r.0)
            .collect();
        if fails_over {
            assert_eq!(error_code(&answer), None, "{behaviour:?}: {answer}");
            assert_eq!(providers, ["tencent", "aliyun"], "{behaviour:?}");
            assert_eq!(c.aliyun.requests().len(), before + 1);
        } else {
            assert!(error_code(&answer).is_some(), "{behaviour:?}: {answer}");
            assert_eq!(providers, ["tencent"], "{behaviour:?}");
            assert_eq!(c.aliyun.requests().len(), before);
        }
    }
}
