//! The SMS operations end to end, over HTTP: sending, registering, signing in
//! and resetting, their limits, and how they hold under parallel requests.

use std::time::Duration;

use futures::future::join_all;
use serde_json::json;
use smsauth::sms::Failure;

use crate::helpers::{Setup, error_code, error_extensions, redis_url, spawn_setup};
use crate::on_each;

const PASSWORD: &str = "correct horse battery";

async fn a_person_registers_with_a_code_and_the_cooldown_spans_purposes(setup: Setup) {
    let app = spawn_setup(setup).spawn().await;

    // Register with a REGISTER code.
    let sent = app.send_code("137 1111 2222", "REGISTER").await;
    assert_eq!(error_code(&sent), None, "{sent}");
    assert_eq!(sent["data"]["sendSmsCode"]["mobile"], "+8613711112222");
    assert_eq!(sent["data"]["sendSmsCode"]["expiresIn"], 300);
    assert_eq!(sent["data"]["sendSmsCode"]["resendIn"], 60);
    let sms = app.sms.sent();
    assert_eq!(sms.len(), 1);
    assert_eq!(sms[0].code.len(), 6);
    assert_eq!(sms[0].ttl_minutes, 5);
    let registered = app
        .register("13711112222", &sms[0].code, PASSWORD, Some("alice"))
        .await;
    assert_eq!(error_code(&registered), None, "{registered}");
    assert_eq!(
        registered["data"]["registerWithSms"]["user"]["username"],
        "alice"
    );
    assert_eq!(
        registered["data"]["registerWithSms"]["user"]["mobile"],
        "+8613711112222"
    );

    // The cooldown spans purposes: no LOGIN code right away.
    let sent = app.send_code("+8613711112222", "LOGIN").await;
    assert_eq!(error_code(&sent).as_deref(), Some("RATE_LIMITED"), "{sent}");
    let retry_after = error_extensions(&sent)["retryAfter"].as_u64().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
}

async fn login_code_signs_in_once(setup: Setup) {
    let app = spawn_setup(setup)
        .var("SMS_RESEND_COOLDOWN_SECS", "0")
        .spawn()
        .await;
    let registered = app.register_via_sms("13711112222", PASSWORD).await;
    let sent = app.send_code("13711112222", "LOGIN").await;
    assert_eq!(error_code(&sent), None, "{sent}");
    let code = app.last_code("+8613711112222");

    let answer = app.login_with_sms("+86 137-1111-2222", &code).await;
    assert_eq!(error_code(&answer), None, "{answer}");
    assert_eq!(
        answer["data"]["loginWithSms"]["user"]["id"],
        registered["user"]["id"]
    );

    // Replayed after success: refused.
    let replay = app.login_with_sms("13711112222", &code).await;
    assert_eq!(
        error_code(&replay).as_deref(),
        Some("INVALID_CODE"),
        "{replay}"
    );
}

async fn codes_work_for_their_purpose_only(setup: Setup) {
    let app = spawn_setup(setup)
        .var("SMS_RESEND_COOLDOWN_SECS", "0")
        .spawn()
        .await;
    app.register_via_sms("13711112222", PASSWORD).await;
    app.send_code("13711112222", "RESET_PASSWORD").await;
    let reset_code = app.last_code("+8613711112222");
    let answer = app.login_with_sms("13711112222", &reset_code).await;
    assert_eq!(
        error_code(&answer).as_deref(),
        Some("INVALID_CODE"),
        "{answer}"
    );
}

async fn sending_checks_the_purpose_and_region_first(setup: Setup) {
    let app = spawn_setup(setup)
        .var("SMS_ALLOWED_REGIONS", "CN")
        .spawn()
        .await;
    app.create_user("alice", "13711112222", None, PASSWORD)
        .await;

    let taken = app.send_code("13711112222", "REGISTER").await;
    assert_eq!(error_code(&taken).as_deref(), Some("MOBILE_TAKEN"));
    let unknown = app.send_code("13722223333", "LOGIN").await;
    assert_eq!(error_code(&unknown).as_deref(), Some("USER_NOT_FOUND"));
    let unknown = app.send_code("13722223333", "RESET_PASSWORD").await;
    assert_eq!(error_code(&unknown).as_deref(), Some("USER_NOT_FOUND"));
    let abroad = app.send_code("+1 650 253 0000", "REGISTER").await;
    assert_eq!(error_code(&abroad).as_deref(), Some("REGION_NOT_ALLOWED"));
    let bad = app.send_code("not a number", "REGISTER").await;
    assert_eq!(error_code(&bad).as_deref(), Some("BAD_USER_INPUT"));
    assert!(app.sms.sent().is_empty(), "nothing was sent");
}

async fn wrong_codes_run_out_of_attempts(setup: Setup) {
    let app = spawn_setup(setup).spawn().await;
    app.send_code("13711112222", "REGISTER").await;
    let code = app.last_code("+8613711112222");
    let wrong = if code == "000000" { "111111" } else { "000000" };

    for left in (1..5).rev() {
        let answer = app.register("13711112222", wrong, PASSWORD, None).await;
        assert_eq!(
            error_code(&answer).as_deref(),
            Some("INVALID_CODE"),
            "{answer}"
        );
        assert_eq!(error_extensions(&answer)["attemptsLeft"], left);
    }
    let answer = app.register("13711112222", wrong, PASSWORD, None).await;
    assert_eq!(
        error_code(&answer).as_deref(),
        Some("TOO_MANY_ATTEMPTS"),
        "{answer}"
    );
    // The code is gone: even the right one fails now.
    let answer = app.register("13711112222", &code, PASSWORD, None).await;
    assert_eq!(
        error_code(&answer).as_deref(),
        Some("INVALID_CODE"),
        "{answer}"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 0);
}

async fn bad_input_does_not_burn_the_code(setup: Setup) {
    let app = spawn_setup(setup).spawn().await;
    app.send_code("13711112222", "REGISTER").await;
    let code = app.last_code("+8613711112222");
    let short = app.register("13711112222", &code, "short", None).await;
    assert_eq!(error_code(&short).as_deref(), Some("BAD_USER_INPUT"));
    assert_eq!(error_extensions(&short)["field"], "password");
    let same = app
        .register("13711112222", &code, "13711112222", None)
        .await;
    assert_eq!(error_code(&same).as_deref(), Some("BAD_USER_INPUT"));
    let bad_name = app
        .register("13711112222", &code, PASSWORD, Some("1abc"))
        .await;
    assert_eq!(error_extensions(&bad_name)["field"], "username");
    let ok = app.register("13711112222", &code, PASSWORD, None).await;
    assert_eq!(error_code(&ok), None, "{ok}");
    let username = ok["data"]["registerWithSms"]["user"]["username"]
        .as_str()
        .unwrap();
    assert!(
        !username.contains("2222"),
        "the default username does not reveal the mobile"
    );
}

async fn a_failed_send_leaves_no_valid_code_and_keeps_the_cooldown(setup: Setup) {
    // Without a cooldown: a good code, then a send the provider refuses.
    let app = spawn_setup(setup)
        .var("SMS_RESEND_COOLDOWN_SECS", "0")
        .spawn()
        .await;
    app.send_code("13711112222", "REGISTER").await;
    let earlier = app.last_code("+8613711112222");
    app.sms.fail_with(Some(Failure::Rejected));
    let answer = app.send_code("13711112222", "REGISTER").await;
    assert_eq!(
        error_code(&answer).as_deref(),
        Some("SMS_DELIVERY_FAILED"),
        "{answer}"
    );
    assert_eq!(
        error_extensions(&answer)["providerCode"],
        "FailedOperation.InsufficientBalanceInSmsPackage"
    );
    app.sms.fail_with(None);
    // The failed send replaced the earlier code and was withdrawn: none is valid.
    let answer = app.register("13711112222", &earlier, PASSWORD, None).await;
    assert_eq!(
        error_code(&answer).as_deref(),
        Some("INVALID_CODE"),
        "{answer}"
    );
    let failed_rows = app
        .count("SELECT COUNT(*) FROM sms_messages WHERE status = 'failed' AND error_code = 'FailedOperation.InsufficientBalanceInSmsPackage'")
        .await;
    assert_eq!(failed_rows, 1);

    // With the default cooldown: a send that timed out still starts it.
    let app = spawn_setup(setup).spawn().await;
    app.sms.fail_with(Some(Failure::Unavailable));
    let answer = app.send_code("13733334444", "REGISTER").await;
    assert_eq!(
        error_code(&answer).as_deref(),
        Some("SERVICE_UNAVAILABLE"),
        "{answer}"
    );
    app.sms.fail_with(None);
    let again = app.send_code("13733334444", "REGISTER").await;
    assert_eq!(
        error_code(&again).as_deref(),
        Some("RATE_LIMITED"),
        "{again}"
    );
}

async fn test_numbers_get_their_fixed_code_without_an_sms(setup: Setup) {
    let app = spawn_setup(setup)
        .var("SMS_TEST_NUMBERS", "+8613800000000=246810")
        .spawn()
        .await;
    for _ in 0..3 {
        // Exempt from the cooldown.
        let sent = app.send_code("13800000000", "REGISTER").await;
        assert_eq!(error_code(&sent), None, "{sent}");
    }
    assert!(app.sms.sent().is_empty(), "no SMS for test numbers");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM sms_messages WHERE provider = 'test' AND status = 'sent'")
            .await,
        3
    );
    let ok = app.register("13800000000", "246810", PASSWORD, None).await;
    assert_eq!(error_code(&ok), None, "{ok}");
    // Single use per send.
    app.send_code("13800000000", "LOGIN").await;
    assert_eq!(
        error_code(&app.login_with_sms("13800000000", "246810").await),
        None
    );
    let again = app.login_with_sms("13800000000", "246810").await;
    assert_eq!(error_code(&again).as_deref(), Some("INVALID_CODE"));
}

async fn test_numbers_still_count_toward_the_per_ip_limit(setup: Setup) {
    let app = spawn_setup(setup)
        .var("SMS_TEST_NUMBERS", "+8613800000000=246810")
        .var("SMS_SEND_LIMIT_PER_IP", "2/1h")
        .spawn()
        .await;
    for _ in 0..2 {
        let sent = app.send_code("13800000000", "REGISTER").await;
        assert_eq!(error_code(&sent), None, "{sent}");
    }
    let limited = app.send_code("13800000000", "REGISTER").await;
    assert_eq!(
        error_code(&limited).as_deref(),
        Some("RATE_LIMITED"),
        "a test number is exempt from per-mobile rules only: {limited}"
    );
    // And the client's allowance is used up for real numbers too.
    let real = app.send_code("13711112222", "REGISTER").await;
    assert_eq!(error_code(&real).as_deref(), Some("RATE_LIMITED"), "{real}");
    assert!(app.sms.sent().is_empty());
}

async fn an_inactive_user_is_sent_no_code(setup: Setup) {
    let app = spawn_setup(setup).spawn().await;
    app.create_user("dormant", "13711112222", None, PASSWORD)
        .await;
    let backend = app.state.db.get_database_backend();
    sea_orm::ConnectionTrait::execute_raw(
        &app.state.db,
        sea_orm::Statement::from_string(backend, "UPDATE users SET is_active = false"),
    )
    .await
    .unwrap();
    for purpose in ["LOGIN", "RESET_PASSWORD"] {
        let sent = app.send_code("13711112222", purpose).await;
        assert_eq!(
            error_code(&sent).as_deref(),
            Some("USER_NOT_FOUND"),
            "{purpose}: {sent}"
        );
    }
    // The mobile stays taken: it cannot be registered again.
    let register = app.send_code("13711112222", "REGISTER").await;
    assert_eq!(error_code(&register).as_deref(), Some("MOBILE_TAKEN"));
    assert!(app.sms.sent().is_empty(), "nothing was sent");
    assert_eq!(app.count("SELECT COUNT(*) FROM sms_messages").await, 0);
}

async fn the_per_mobile_cap_and_per_ip_limit_refuse_with_retry_after(setup: Setup) {
    let app = spawn_setup(setup)
        .var("SMS_RESEND_COOLDOWN_SECS", "0")
        .var("SMS_SEND_LIMIT_PER_MOBILE", "2/1h")
        .var("SMS_SEND_LIMIT_PER_IP", "4/1h")
        .spawn()
        .await;
    for _ in 0..2 {
        assert_eq!(
            error_code(&app.send_code("13711112222", "REGISTER").await),
            None
        );
    }
    let capped = app.send_code("13711112222", "REGISTER").await;
    assert_eq!(
        error_code(&capped).as_deref(),
        Some("RATE_LIMITED"),
        "{capped}"
    );
    let retry_after = error_extensions(&capped)["retryAfter"].as_u64().unwrap();
    assert!((3590..=3600).contains(&retry_after), "{retry_after}");

    // The third request counted toward the IP; one more is allowed, then none.
    assert_eq!(
        error_code(&app.send_code("13722223333", "REGISTER").await),
        None
    );
    let limited = app.send_code("13744445555", "REGISTER").await;
    assert_eq!(
        error_code(&limited).as_deref(),
        Some("RATE_LIMITED"),
        "{limited}"
    );
    assert_eq!(app.sms.sent().len(), 3);
}

async fn failed_checks_count_toward_the_verify_limit(setup: Setup) {
    let app = spawn_setup(setup)
        .var("SMS_VERIFY_LIMIT_PER_IP", "3/1h")
        .spawn()
        .await;
    app.send_code("13711112222", "REGISTER").await;
    let code = app.last_code("+8613711112222");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    // Wrong, never-sent and wrong-mobile checks all count.
    app.register("13711112222", wrong, PASSWORD, None).await;
    app.register("13799990000", wrong, PASSWORD, None).await;
    app.register("13799990001", wrong, PASSWORD, None).await;
    let limited = app.register("13711112222", &code, PASSWORD, None).await;
    assert_eq!(
        error_code(&limited).as_deref(),
        Some("RATE_LIMITED"),
        "{limited}"
    );
}

async fn thirty_parallel_logins_with_one_code_sign_in_once(setup: Setup) {
    let app = spawn_setup(setup)
        .var("SMS_RESEND_COOLDOWN_SECS", "0")
        .spawn()
        .await;
    app.register_via_sms("13711112222", PASSWORD).await;
    app.send_code("13711112222", "LOGIN").await;
    let code = app.last_code("+8613711112222");

    let answers = join_all((0..30).map(|_| app.login_with_sms("13711112222", &code))).await;

    let successes = answers.iter().filter(|a| error_code(a).is_none()).count();
    assert_eq!(successes, 1, "exactly one login succeeds");
    assert!(
        answers
            .iter()
            .filter(|a| error_code(a).is_some())
            .all(|a| error_code(a).as_deref() == Some("INVALID_CODE"))
    );
}

async fn twenty_parallel_registrations_create_one_user(setup: Setup) {
    let app = spawn_setup(setup).spawn().await;
    app.send_code("13711112222", "REGISTER").await;
    let code = app.last_code("+8613711112222");

    let answers = join_all((0..20).map(|i| {
        let name = format!("racer{i}");
        let app = &app;
        let code = code.clone();
        async move {
            app.register("13711112222", &code, PASSWORD, Some(&name))
                .await
        }
    }))
    .await;

    assert_eq!(
        answers.iter().filter(|a| error_code(a).is_none()).count(),
        1
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 1);
}

async fn twenty_parallel_sends_send_one_sms(setup: Setup) {
    let app = spawn_setup(setup).spawn().await;
    // A slow provider widens the window in which duplicates could slip through.
    app.sms.delay(Some(Duration::from_millis(50)));

    let answers = join_all((0..20).map(|_| app.send_code("13711112222", "REGISTER"))).await;

    assert_eq!(
        answers.iter().filter(|a| error_code(a).is_none()).count(),
        1
    );
    assert!(
        answers
            .iter()
            .filter(|a| error_code(a).is_some())
            .all(|a| error_code(a).as_deref() == Some("RATE_LIMITED"))
    );
    assert_eq!(app.sms.sent().len(), 1, "exactly one provider call");
}

async fn reset_password_ends_every_session(setup: Setup) {
    let app = spawn_setup(setup)
        .var("SMS_RESEND_COOLDOWN_SECS", "0")
        .spawn()
        .await;
    let registered = app.register_via_sms("13711112222", PASSWORD).await;
    let old_access = registered["accessToken"].as_str().unwrap().to_owned();
    let old_refresh = registered["refreshToken"].as_str().unwrap().to_owned();
    let me = app
        .graphql_as(Some(&old_access), "{ me { id } }", json!({}))
        .await;
    assert_eq!(error_code(&me), None);

    app.send_code("13711112222", "RESET_PASSWORD").await;
    let code = app.last_code("+8613711112222");
    let reset = app
        .graphql(
            "mutation($m: String!, $c: String!, $p: String!) { resetPasswordWithSms(mobile: $m, code: $c, newPassword: $p) }",
            json!({ "m": "13711112222", "c": code, "p": "a brand new secret" }),
        )
        .await;
    assert_eq!(reset["data"]["resetPasswordWithSms"], true, "{reset}");

    let me = app
        .graphql_as(Some(&old_access), "{ me { id } }", json!({}))
        .await;
    assert_eq!(
        error_code(&me).as_deref(),
        Some("UNAUTHENTICATED"),
        "old access token: {me}"
    );
    let refreshed = app
        .graphql(
            "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken } }",
            json!({ "t": old_refresh }),
        )
        .await;
    assert_eq!(
        error_code(&refreshed).as_deref(),
        Some("INVALID_REFRESH_TOKEN")
    );
    let old = app
        .graphql(
            "mutation { loginWithPassword(account: \"13711112222\", password: \"correct horse battery\") { accessToken } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&old).as_deref(), Some("INVALID_CREDENTIALS"));
    let fresh = app.login("13711112222", "a brand new secret").await;
    let me = app
        .graphql_as(fresh["accessToken"].as_str(), "{ me { id } }", json!({}))
        .await;
    assert_eq!(
        error_code(&me),
        None,
        "a token issued after the reset works: {me}"
    );
}

on_each!(setups:
    a_person_registers_with_a_code_and_the_cooldown_spans_purposes,
    login_code_signs_in_once,
    codes_work_for_their_purpose_only,
    sending_checks_the_purpose_and_region_first,
    wrong_codes_run_out_of_attempts,
    bad_input_does_not_burn_the_code,
    a_failed_send_leaves_no_valid_code_and_keeps_the_cooldown,
    test_numbers_get_their_fixed_code_without_an_sms,
    test_numbers_still_count_toward_the_per_ip_limit,
    an_inactive_user_is_sent_no_code,
    the_per_mobile_cap_and_per_ip_limit_refuse_with_retry_after,
    failed_checks_count_toward_the_verify_limit,
    thirty_parallel_logins_with_one_code_sign_in_once,
    twenty_parallel_registrations_create_one_user,
    twenty_parallel_sends_send_one_sms,
    reset_password_ends_every_session,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_holds_no_plain_code() {
    let app = spawn_setup(Setup::PostgresRedis).spawn().await;
    app.send_code("13711112222", "REGISTER").await;
    let code = app.last_code("+8613711112222");

    let client = redis::Client::open(redis_url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let prefix = app.redis_prefix.clone().unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(!keys.is_empty(), "the code is in Redis");
    let mut dump = String::new();
    for key in &keys {
        let kind: String = redis::cmd("TYPE")
            .arg(key)
            .query_async(&mut connection)
            .await
            .unwrap();
        let value: Vec<String> = match kind.as_str() {
            "hash" => redis::cmd("HGETALL")
                .arg(key)
                .query_async(&mut connection)
                .await
                .unwrap(),
            "zset" => redis::cmd("ZRANGE")
                .arg(key)
                .arg(0)
                .arg(-1)
                .query_async(&mut connection)
                .await
                .unwrap(),
            _ => vec![
                redis::cmd("GET")
                    .arg(key)
                    .query_async(&mut connection)
                    .await
                    .unwrap(),
            ],
        };
        dump.push_str(&format!("{key} {value:?}\n"));
    }
    assert!(!dump.contains(&code), "a plain code in Redis:\n{dump}");
    assert!(
        keys.iter()
            .any(|k| k.contains("{+8613711112222}:code:REGISTER")),
        "{keys:?}"
    );
}

async fn probing_unregistered_mobiles_counts_toward_the_verify_limit(setup: Setup) {
    let app = spawn_setup(setup)
        .var("SMS_VERIFY_LIMIT_PER_IP", "3/1h")
        .spawn()
        .await;
    for mobile in ["13700000001", "13700000002", "13700000003"] {
        let answer = app.login_with_sms(mobile, "123456").await;
        assert_eq!(
            error_code(&answer).as_deref(),
            Some("USER_NOT_FOUND"),
            "{answer}"
        );
    }
    let answer = app.login_with_sms("13700000004", "123456").await;
    assert_eq!(
        error_code(&answer).as_deref(),
        Some("RATE_LIMITED"),
        "{answer}"
    );
}

on_each!(setups: probing_unregistered_mobiles_counts_toward_the_verify_limit);
