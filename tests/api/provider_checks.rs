//! What the tests of every SMS provider share: an app configured for a provider's fake, and
//! the checks a failed send must pass (no secret in the answer, one failed audit row, no
//! valid code left).

use serde_json::Value;

use crate::helpers::{Backend, TestApp, error_code, spawn_app};

pub const PASSWORD: &str = "correct horse battery staple";

/// The app with `SMS_PROVIDER=provider`, the fakes' `settings`, no cooldown, then `extra`
/// (later settings win).
pub async fn app_with_provider(
    provider: &str,
    settings: Vec<(&'static str, String)>,
    extra: &[(&'static str, &str)],
) -> TestApp {
    let mut builder = spawn_app(Backend::Sqlite)
        .configured_sms_provider()
        .var("SMS_PROVIDER", provider)
        .var("SMS_RESEND_COOLDOWN_SECS", "0");
    for (key, value) in settings {
        builder = builder.var(key, value);
    }
    for (key, value) in extra {
        builder = builder.var(key, *value);
    }
    builder.spawn().await
}

/// Nothing a client sees may carry one of `secrets` (keys, the provider's own words).
pub fn assert_nothing_secret(answer: &Value, secrets: &[&str]) {
    let text = answer.to_string();
    for secret in secrets {
        assert!(!text.contains(secret), "{secret:?} leaked into {text}");
    }
}

/// The only audit row of `mobile` is a failed one of `provider` with `error_code`.
pub async fn assert_failed_audit_row(
    app: &TestApp,
    provider: &str,
    mobile: &str,
    error_code: &str,
) {
    let failed = app
        .count(&format!(
            "SELECT COUNT(*) FROM sms_messages WHERE mobile = '{mobile}' AND provider = '{provider}' \
             AND status = 'failed' AND error_code = '{error_code}'"
        ))
        .await;
    assert_eq!(
        failed, 1,
        "one failed {provider} row for {mobile} with {error_code}"
    );
    let all = app
        .count(&format!(
            "SELECT COUNT(*) FROM sms_messages WHERE mobile = '{mobile}'"
        ))
        .await;
    assert_eq!(all, 1, "no other row for {mobile}");
}

/// The code the provider received is not valid: the failed send withdrew it.
pub async fn assert_code_withdrawn(app: &TestApp, mobile: &str, code: &str) {
    let answer = app.register(mobile, code, PASSWORD, None).await;
    assert_eq!(
        error_code(&answer).as_deref(),
        Some("INVALID_CODE"),
        "{answer}"
    );
}
