//! Settings no sane deployment uses stop the real binary at start with exit
//! code 2 and one line naming the variable (contract §3.1), instead of a
//! panic inside a request much later; and start-up failures print their
//! cause once.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::smsauth_binary;

/// What the binary did with this environment (and nothing else from ours).
struct Outcome {
    /// `None`: still running after the grace period (it started serving).
    code: Option<i32>,
    stderr: String,
}

fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("smsauth-config-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run_binary(vars: &[(&str, &str)], grace: Duration) -> Outcome {
    let dir = scratch_dir();
    let mut command = Command::new(smsauth_binary());
    command
        .arg("serve")
        .env_clear()
        .current_dir(&dir) // no stray .env
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/t.db?mode=rwc", dir.display()),
        )
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (key, value) in vars {
        command.env(key, value);
    }
    let mut child = command.spawn().unwrap();
    let started = Instant::now();
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status.code().unwrap_or(-1));
        }
        if started.elapsed() > grace {
            child.kill().unwrap();
            child.wait().unwrap();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    let _ = std::fs::remove_dir_all(dir);
    Outcome { code, stderr }
}

const TENCENT: [(&str, &str); 6] = [
    ("SMS_PROVIDER", "tencent"),
    ("TENCENT_SECRET_ID", "id"),
    ("TENCENT_SECRET_KEY", "key"),
    ("TENCENT_SMS_SDK_APP_ID", "1400000000"),
    ("TENCENT_SMS_SIGN_NAME", "sign"),
    ("TENCENT_SMS_TEMPLATE_ID", "1"),
];

#[test]
fn insane_settings_exit_2_naming_the_variable() {
    let cases: &[(&str, &str)] = &[
        // Panicked in a request while holding the in-process store's lock.
        ("SMS_RESEND_COOLDOWN_SECS", "10000000000000000000"),
        ("SMS_RESEND_COOLDOWN_SECS", "1e19"),
        // Panicked in chrono when issuing a refresh token.
        ("REFRESH_TOKEN_TTL_SECS", "8000000000000"),
        // iat + ttl wrapped.
        ("ACCESS_TOKEN_TTL_SECS", "9223372036854775807"),
        ("SMS_CODE_TTL_SECS", "315619201"),
        ("HTTP_REQUEST_TIMEOUT_SECS", "18446744073709551615"),
        ("SMS_MAX_ATTEMPTS", "4000000000"),
        ("SMS_SEND_LIMIT_PER_MOBILE", "4000000000/24h"),
        ("SMS_SEND_LIMIT_PER_IP", "5/99999999h"),
        ("LOGIN_FAILURE_LIMIT_PER_IP", "5/999999999999m"),
        ("DATABASE_MAX_CONNECTIONS", "0"),
        ("DATABASE_MAX_CONNECTIONS", "4000000000"),
        ("HTTP_BODY_LIMIT_BYTES", "0"),
        ("HTTP_BODY_LIMIT_BYTES", "18446744073709551615"),
        ("GRAPHQL_MAX_DEPTH", "0"),
        ("GRAPHQL_MAX_COMPLEXITY", "0"),
        ("GRAPHQL_MAX_BATCH", "0"),
        ("GRAPHQL_MAX_BATCH", "1000000000000"),
        ("IPV6_CLIENT_PREFIX", "0"),
        ("IPV6_CLIENT_PREFIX", "129"),
        ("CORS_ALLOWED_ORIGINS", "https://app.example/login"),
        ("CORS_ALLOWED_ORIGINS", "app.example"),
    ];
    let failures: Vec<String> = std::thread::scope(|scope| {
        let runs: Vec<_> = cases
            .iter()
            .map(|(key, value)| {
                scope.spawn(move || {
                    (
                        key,
                        value,
                        run_binary(&[(key, value)], Duration::from_secs(20)),
                    )
                })
            })
            .collect();
        runs.into_iter()
            .filter_map(|run| {
                let (key, value, outcome) = run.join().unwrap();
                check_refused(key, value, &outcome).err()
            })
            .collect()
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn insane_sms_provider_timeouts_exit_2() {
    for key in ["TENCENT_SMS_TIMEOUT_MS", "TENCENT_SMS_CONNECT_TIMEOUT_MS"] {
        for value in ["0", "18446744073709551615"] {
            let mut vars = TENCENT.to_vec();
            vars.push((key, value));
            let outcome = run_binary(&vars, Duration::from_secs(20));
            check_refused(key, value, &outcome).unwrap();
        }
    }
}

fn check_refused(key: &str, value: &str, outcome: &Outcome) -> Result<(), String> {
    let lines: Vec<&str> = outcome
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    let named = lines.len() == 1 && lines[0].contains(key) && !lines[0].contains("panicked");
    if outcome.code == Some(2) && named {
        Ok(())
    } else {
        Err(format!(
            "{key}={value}: exit {:?} (started and kept running: {}), stderr {:?}",
            outcome.code,
            outcome.code.is_none(),
            outcome.stderr
        ))
    }
}

#[test]
fn cors_star_starts() {
    let outcome = run_binary(&[("CORS_ALLOWED_ORIGINS", "*")], Duration::from_secs(5));
    assert_eq!(
        outcome.code, None,
        "it must start and serve: {:?}",
        outcome.stderr
    );
}

#[test]
fn a_database_error_prints_its_cause_once() {
    // Nothing listens on port 1.
    let outcome = run_binary(
        &[("DATABASE_URL", "postgres://postgres@127.0.0.1:1/nowhere")],
        Duration::from_secs(30),
    );
    assert_eq!(outcome.code, Some(1), "{:?}", outcome.stderr);
    let line = outcome
        .stderr
        .lines()
        .find(|l| l.starts_with("smsauth:"))
        .unwrap_or_else(|| panic!("no error line in {:?}", outcome.stderr));
    assert!(line.contains("DATABASE_URL"), "{line}");
    // Every part of the message appears once.
    let parts: Vec<&str> = line.split(": ").collect();
    for part in &parts {
        assert_eq!(
            line.matches(part).count(),
            1,
            "{part:?} is repeated in {line:?}"
        );
    }
}
