//! The log of a whole flow holds no code, password, token or secret, and
//! masks mobiles.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::json;
use tracing_subscriber::fmt::MakeWriter;

use crate::helpers::{Setup, error_code, spawn_setup};

#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// Everything logged so far, by every test of this binary.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Installs (once) a global subscriber at TRACE that writes into a buffer.
pub fn capture() -> Captured {
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    CAPTURED
        .get_or_init(|| {
            let captured = Captured::default();
            let subscriber = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(
                    "trace,hyper=info,hyper_util=info,h2=info,reqwest=info,sqlx=info,redis=info",
                ))
                .without_time()
                .with_ansi(false)
                // A line per closed span: its fields are checked for secrets too.
                .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
                .with_writer(captured.clone())
                .finish();
            tracing::subscriber::set_global_default(subscriber)
                .expect("no other global subscriber (run this test without TEST_LOG)");
            captured
        })
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_flow_logs_no_secret() {
    let captured = capture();
    let app = spawn_setup(Setup::PostgresRedis)
        .var("SMS_RESEND_COOLDOWN_SECS", "0")
        .spawn()
        .await;
    let password = "correct horse battery staple";

    // Register, fail a code, sign in by password and code, refresh, reset, log out.
    let registered = app.register_via_sms("13711112222", password).await;
    let register_code = app.last_code("+8613711112222");
    app.send_code("13711112222", "LOGIN").await;
    let login_code = app.last_code("+8613711112222");
    let wrong = app.login_with_sms("13711112222", "000001").await;
    assert!(error_code(&wrong).is_some());
    let by_code = app.login_with_sms("13711112222", &login_code).await;
    assert_eq!(error_code(&by_code), None, "{by_code}");
    let failed = app
        .graphql(
            "mutation($p: String!) { loginWithPassword(account: \"13711112222\", password: $p) { accessToken } }",
            json!({ "p": "wrong password guess" }),
        )
        .await;
    assert_eq!(error_code(&failed).as_deref(), Some("INVALID_CREDENTIALS"));
    let signed_in = app.login("13711112222", password).await;
    let refreshed = app
        .graphql(
            "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken refreshToken } }",
            json!({ "t": signed_in["refreshToken"] }),
        )
        .await;
    app.send_code("13711112222", "RESET_PASSWORD").await;
    let reset_code = app.last_code("+8613711112222");
    let new_password = "another long secret phrase";
    app.graphql(
        "mutation($c: String!, $p: String!) { resetPasswordWithSms(mobile: \"13711112222\", code: $c, newPassword: $p) }",
        json!({ "c": reset_code, "p": new_password }),
    )
    .await;
    app.graphql(
        "mutation($t: String!) { logout(refreshToken: $t) }",
        json!({ "t": refreshed["data"]["refreshToken"]["refreshToken"] }),
    )
    .await;

    let log = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    assert!(log.contains("+86137****2222"), "mobiles appear masked");
    let secrets = [
        password.to_owned(),
        new_password.to_owned(),
        "wrong password guess".to_owned(),
        registered["accessToken"].as_str().unwrap().to_owned(),
        registered["refreshToken"].as_str().unwrap().to_owned(),
        signed_in["accessToken"].as_str().unwrap().to_owned(),
        signed_in["refreshToken"].as_str().unwrap().to_owned(),
        "test-secret-that-is-at-least-32-bytes-long".to_owned(),
        "13711112222".to_owned(),
    ];
    for secret in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "the log contains a secret ({} chars)",
            secret.len()
        );
    }
    // Codes are short: look for them as whole tokens, as a leak would write them.
    for code in [&register_code, &login_code] {
        assert!(!contains_token(&log, code), "the log contains a code");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_io_call_has_a_span_under_its_request() {
    let captured = capture();
    let app = spawn_setup(Setup::PostgresRedis).spawn().await;
    let sent = app
        .post("/graphql")
        .header("x-request-id", "trace-io-spans-1")
        .json(&json!({
            "query": "mutation { sendSmsCode(mobile: \"13722223333\", purpose: REGISTER) { expiresIn } }"
        }))
        .send()
        .await
        .unwrap();
    let sent: serde_json::Value = sent.json().await.unwrap();
    assert_eq!(error_code(&sent), None, "{sent}");
    app.register_via_sms("13744445555", "correct horse battery staple")
        .await;

    let log = captured.text();
    let request = log
        .lines()
        .filter(|line| line.contains("request_id=trace-io-spans-1"))
        .collect::<Vec<_>>()
        .join("\n");
    // Each I/O step closes its own span, nested in the request's (so it carries the id).
    for span in [
        "db.users.find_by_mobile",
        "code_store.spend_send",
        "code_store.issue{mobile=+86137****3333 purpose=\"REGISTER\"}",
        "sms_provider.send{provider=\"recording\" mobile=+86137****3333 purpose=\"REGISTER\"}",
        "db.sms_messages.record",
    ] {
        assert!(
            request
                .lines()
                .any(|line| line.contains(span) && line.ends_with(": close")),
            "no closed span {span} under the request:\n{request}"
        );
    }
    for span in [
        "code_store.verify",
        "password.hash",
        "db.users.insert",
        "db.refresh_tokens.insert",
    ] {
        assert!(log.contains(span), "no span {span}");
    }
    assert!(!log.contains("13722223333") && !log.contains("13744445555"));
}

/// Whether `needle` occurs with no letter, digit, '.' or ':' on either side.
fn contains_token(haystack: &str, needle: &str) -> bool {
    let part_of_token =
        |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '.' || c == ':');
    haystack.match_indices(needle).any(|(at, _)| {
        !part_of_token(haystack[..at].chars().next_back())
            && !part_of_token(haystack[at + needle.len()..].chars().next())
    })
}
