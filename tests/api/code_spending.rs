//! A code is spent only by success, and no answer of the code-checking
//! operations is a free oracle (contract §3.1).

use serde_json::json;

use crate::helpers::{Backend, Setup, TestApp, error_code, spawn_app, spawn_setup};
use crate::on_each;

const PASSWORD: &str = "correct horse battery";

/// Runs SQL on the app's own database.
async fn sql(app: &TestApp, statement: &str) {
    let backend = app.state.db.get_database_backend();
    sea_orm::ConnectionTrait::execute_raw(
        &app.state.db,
        sea_orm::Statement::from_string(backend, statement.to_owned()),
    )
    .await
    .unwrap();
}

async fn a_username_race_lost_keeps_the_code_for_a_retry(setup: Setup) {
    let app = spawn_setup(setup).spawn().await;
    let mobiles = ["13711110001", "13711110002", "13711110003"];
    let mut codes = Vec::new();
    for mobile in mobiles {
        app.send_code(mobile, "REGISTER").await;
        codes.push(app.last_code(&format!("+86{mobile}")));
    }
    // Three spellings of one name, registered at once from three mobiles.
    let names = ["SameName", "samename", "SAMENAME"];
    let answers = futures::future::join_all(
        (0..3).map(|i| app.register(mobiles[i], &codes[i], PASSWORD, Some(names[i]))),
    )
    .await;
    let won: Vec<usize> = (0..3)
        .filter(|i| error_code(&answers[*i]).is_none())
        .collect();
    assert_eq!(won.len(), 1, "one registration wins: {answers:?}");
    for i in (0..3).filter(|i| !won.contains(i)) {
        assert_eq!(
            error_code(&answers[i]).as_deref(),
            Some("USERNAME_TAKEN"),
            "{}",
            answers[i]
        );
        // The code authorised nothing: it works for the retry with another name.
        let retry = app
            .register(mobiles[i], &codes[i], PASSWORD, Some(&format!("other{i}")))
            .await;
        assert_eq!(error_code(&retry), None, "retry of {}: {retry}", mobiles[i]);
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 3);
}

/// A database failure after the code was accepted (here: a trigger that
/// refuses the insert) must not burn the code.
async fn a_database_failure_after_the_check_keeps_the_code() {
    let app = spawn_app(Backend::Postgres)
        .var("SMS_RESEND_COOLDOWN_SECS", "0")
        .spawn()
        .await;
    app.send_code("13711112222", "REGISTER").await;
    let code = app.last_code("+8613711112222");
    sql(
        &app,
        "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'disk full'; END $$ LANGUAGE plpgsql",
    )
    .await;
    sql(&app, "CREATE TRIGGER refuse_insert BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION refuse()").await;
    let failed = app.register("13711112222", &code, PASSWORD, None).await;
    assert_eq!(
        error_code(&failed).as_deref(),
        Some("INTERNAL_SERVER_ERROR"),
        "{failed}"
    );
    sql(&app, "DROP TRIGGER refuse_insert ON users").await;
    let retry = app.register("13711112222", &code, PASSWORD, None).await;
    assert_eq!(
        error_code(&retry),
        None,
        "the same code still works: {retry}"
    );

    // The same after an SMS login whose sign-in write fails.
    app.send_code("13711112222", "LOGIN").await;
    let code = app.last_code("+8613711112222");
    sql(&app, "CREATE TRIGGER refuse_update BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION refuse()").await;
    let failed = app.login_with_sms("13711112222", &code).await;
    assert_eq!(
        error_code(&failed).as_deref(),
        Some("INTERNAL_SERVER_ERROR"),
        "{failed}"
    );
    sql(&app, "DROP TRIGGER refuse_update ON users").await;
    let retry = app.login_with_sms("13711112222", &code).await;
    assert_eq!(
        error_code(&retry),
        None,
        "the same code still works: {retry}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_failure_after_the_check_keeps_the_code_on_postgres() {
    a_database_failure_after_the_check_keeps_the_code().await;
}

async fn every_failed_answer_counts_toward_the_verify_limit(setup: Setup) {
    let app = spawn_setup(setup)
        .var("SMS_VERIFY_LIMIT_PER_IP", "5/1h")
        .var("SMS_RESEND_COOLDOWN_SECS", "0")
        .spawn()
        .await;
    let alice = app.register_via_sms("13711112222", PASSWORD).await;
    let username = alice["user"]["username"].as_str().unwrap().to_owned();
    app.create_user("bobby", "13722223333", None, PASSWORD)
        .await;
    let reset = |code: String| {
        app.graphql(
            "mutation($c: String!, $p: String!) { resetPasswordWithSms(mobile: \"13711112222\", code: $c, newPassword: $p) }",
            json!({ "c": code, "p": username }),
        )
    };

    // Each of these answers tells something, or could: none is free.
    app.send_code("13711112222", "RESET_PASSWORD").await;
    let code = app.last_code("+8613711112222");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    // Without the code, a password equal to the username says nothing of it.
    let guessed = reset(wrong.to_owned()).await;
    assert_eq!(
        error_code(&guessed).as_deref(),
        Some("INVALID_CODE"),
        "{guessed}"
    );
    let refused = reset(code.clone()).await;
    assert_eq!(
        error_code(&refused).as_deref(),
        Some("BAD_USER_INPUT"),
        "{refused}"
    );
    assert_eq!(refused["errors"][0]["extensions"]["field"], "newPassword");

    app.send_code("13744445555", "REGISTER").await;
    let code = app.last_code("+8613744445555");
    let taken = app
        .register("13744445555", &code, PASSWORD, Some("bobby"))
        .await;
    assert_eq!(
        error_code(&taken).as_deref(),
        Some("USERNAME_TAKEN"),
        "{taken}"
    );

    let malformed = app.login_with_sms("not a mobile", "123456").await;
    assert_eq!(error_code(&malformed).as_deref(), Some("BAD_USER_INPUT"));
    let short = app.register("13744445555", &code, "short", None).await;
    assert_eq!(error_code(&short).as_deref(), Some("BAD_USER_INPUT"));

    // Five failures: the right code is refused now.
    let limited = app.register("13744445555", &code, PASSWORD, None).await;
    assert_eq!(
        error_code(&limited).as_deref(),
        Some("RATE_LIMITED"),
        "{limited}"
    );
}

on_each!(setups:
    a_username_race_lost_keeps_the_code_for_a_retry,
    every_failed_answer_counts_toward_the_verify_limit,
);
