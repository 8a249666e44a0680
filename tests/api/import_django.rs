//! `smsauth import-django` on the users real Django 5.2 made (the shared
//! fixture: a dumpdata JSON, a SQLite database and what each user must
//! become), from each kind of source, into PostgreSQL and SQLite.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::{Value, json};
use smsauth::import_django::{ImportOptions, Summary};

use crate::helpers::{Backend, TestApp, error_code, postgres_admin_url, spawn_app};
use crate::on_each;

/// `../shared/django-users`, read at test time.
pub fn fixture_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/django-users");
    assert!(
        dir.join("users.json").is_file(),
        "the Django fixture must be at {} (the shared folder beside the repo)",
        dir.display()
    );
    dir
}

/// `passwords.json`'s users by Django id.
pub fn fixture_users() -> BTreeMap<i64, Value> {
    let text = std::fs::read_to_string(fixture_dir().join("passwords.json")).unwrap();
    let all: Value = serde_json::from_str(&text).unwrap();
    all["users"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(pk, user)| (pk.parse().unwrap(), user.clone()))
        .collect()
}

pub struct Imported {
    pub summary: Summary,
    /// The rejects file, one parsed object per line.
    pub rejects: Vec<Value>,
}

pub async fn import(app: &TestApp, source: &str, dry_run: bool) -> Imported {
    let rejects = std::env::temp_dir().join(format!("rejects-{}.jsonl", uuid::Uuid::new_v4()));
    let options = ImportOptions {
        source: source.to_owned(),
        table: "user_user".to_owned(),
        dry_run,
        rejects: rejects.clone(),
        time_zone: "Asia/Shanghai".parse().unwrap(),
        show_progress: false,
    };
    let summary = smsauth::import_django::run(&app.state.config, &options)
        .await
        .unwrap_or_else(|e| panic!("import from {source}: {e:#}"));
    let text = std::fs::read_to_string(&rejects).expect("the rejects file is written");
    std::fs::remove_file(&rejects).ok();
    Imported {
        summary,
        rejects: text
            .lines()
            .map(|line| serde_json::from_str(line).expect("each line is one JSON object"))
            .collect(),
    }
}

pub fn json_source() -> String {
    fixture_dir().join("users.json").display().to_string()
}

fn sqlite_source() -> String {
    fixture_dir().join("django.sqlite3").display().to_string()
}

/// One imported user as stored, by Django id.
#[derive(Debug)]
struct Row {
    username: String,
    mobile: String,
    email: Option<String>,
    password_hash: String,
    is_active: bool,
    created_at: DateTime<Utc>,
    last_login_at: Option<DateTime<Utc>>,
}

async fn stored_users(app: &TestApp) -> BTreeMap<i64, Row> {
    let db = &app.state.db;
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT legacy_id, username, mobile, email, password_hash, is_active, created_at, last_login_at FROM users WHERE legacy_id IS NOT NULL",
        ))
        .await
        .unwrap();
    rows.into_iter()
        .map(|row| {
            (
                row.try_get::<i64>("", "legacy_id").unwrap(),
                Row {
                    username: row.try_get("", "username").unwrap(),
                    mobile: row.try_get("", "mobile").unwrap(),
                    email: row.try_get("", "email").unwrap(),
                    password_hash: row.try_get("", "password_hash").unwrap(),
                    is_active: row.try_get("", "is_active").unwrap(),
                    created_at: row.try_get("", "created_at").unwrap(),
                    last_login_at: row.try_get("", "last_login_at").unwrap(),
                },
            )
        })
        .collect()
}

fn instant(value: &Value) -> Option<DateTime<Utc>> {
    value
        .as_str()
        .map(|text| DateTime::parse_from_rfc3339(text).unwrap().to_utc())
}

/// Every fixture user ended as the fixture's README says. `precision`: the
/// source's (dumpdata keeps milliseconds, SQLite microseconds).
async fn assert_fixture_outcome(app: &TestApp, imported: &Imported, micros: bool) {
    let expected = fixture_users();
    let summary = &imported.summary;
    assert_eq!(
        (summary.imported, summary.already_present, summary.rejected),
        (40, 0, 5),
        "{summary}"
    );
    assert_eq!(summary.sms_only, 2, "34 (unusable) and 35 (md5)");
    assert_eq!(summary.usernames_replaced, 16, "2–7, 12, 14–22");
    assert_eq!(summary.emails_dropped, 3, "37, 38, 39");

    // Rejects: each with its Django id, a reason telling invalid from taken, and the row.
    let reasons: Vec<(i64, &str)> = imported
        .rejects
        .iter()
        .map(|r| {
            (
                r["legacy_id"].as_i64().unwrap(),
                r["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        reasons,
        [
            (1, "invalid_mobile"),
            (42, "invalid_mobile"),
            (43, "mobile_taken"),
            (44, "invalid_mobile"),
            (45, "invalid_mobile"),
        ]
    );
    for reject in &imported.rejects {
        let id = reject["legacy_id"].as_i64().unwrap();
        assert_eq!(reject["row"]["id"], id);
        assert_eq!(reject["row"]["username"], expected[&id]["username"]);
        assert_eq!(reject["row"]["mobile"], expected[&id]["mobile"]);
        assert!(
            reject["row"].get("password").is_none(),
            "no password hash in the rejects file: {reject}"
        );
    }
    assert!(
        imported.rejects[2]["detail"]
            .as_str()
            .unwrap()
            .contains("Django user 2")
    );

    let stored = stored_users(app).await;
    assert_eq!(stored.len(), 40);
    for (id, user) in &expected {
        let want = &user["expected"];
        let Some(row) = stored.get(id) else {
            assert_eq!(want["outcome"], "reject", "user {id} is missing");
            continue;
        };
        assert_eq!(want["outcome"], "import", "user {id} should be rejected");
        assert_eq!(
            row.mobile,
            want["mobile_e164"].as_str().unwrap(),
            "user {id}"
        );
        let original = user["username"].as_str().unwrap();
        if want["username_kept"] == true {
            assert_eq!(row.username, original, "user {id} keeps the username");
        } else {
            assert_ne!(row.username, original, "user {id}");
            assert!(
                row.username.starts_with('u') && row.username.len() == 11,
                "user {id}: the derived default, not {:?}",
                row.username
            );
        }
        match &want["email_kept"] {
            Value::Bool(true) => assert_eq!(row.email.as_deref(), user["email"].as_str()),
            _ => assert_eq!(row.email, None, "user {id} has no email"),
        }
        assert_eq!(row.is_active, want["is_active"] == true, "user {id}");
        let truncate = |t: DateTime<Utc>| match micros {
            true => t,
            false => {
                t - chrono::Duration::nanoseconds(i64::from(t.timestamp_subsec_nanos() % 1_000_000))
            }
        };
        assert_eq!(
            Some(row.created_at),
            instant(&user["date_joined_utc"]).map(truncate),
            "user {id}: date_joined is Beijing time"
        );
        assert_eq!(
            row.last_login_at,
            instant(&user["last_login_utc"]).map(truncate),
            "user {id}"
        );
        assert!(row.password_hash.contains('$') || row.password_hash.starts_with('!'));
    }
    // Every derived username is unique, and registration's own derivation.
    let mut names: Vec<&str> = stored.values().map(|r| r.username.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), 40);
}

async fn dumpdata_json_imports_every_user_as_the_fixture_says(backend: Backend) {
    let app = spawn_app(backend).spawn().await;

    let imported = import(&app, &json_source(), false).await;

    assert_fixture_outcome(&app, &imported, false).await;
}

async fn sqlite_database_imports_every_user_as_the_fixture_says(backend: Backend) {
    let app = spawn_app(backend).spawn().await;

    let imported = import(&app, &sqlite_source(), false).await;

    assert_fixture_outcome(&app, &imported, true).await;
}

async fn a_second_run_imports_only_what_is_new(backend: Backend) {
    let app = spawn_app(backend).spawn().await;
    import(&app, &json_source(), false).await;
    let before = stored_users(&app).await;

    // The same users from the other form of the same database.
    let again = import(&app, &sqlite_source(), false).await;

    assert_eq!(
        (
            again.summary.imported,
            again.summary.already_present,
            again.summary.rejected
        ),
        (0, 40, 5),
        "{}",
        again.summary
    );
    let after = stored_users(&app).await;
    assert_eq!(after.len(), 40);
    for (id, row) in &before {
        let now = &after[id];
        assert_eq!(
            (
                &now.username,
                &now.email,
                &now.password_hash,
                now.created_at
            ),
            (
                &row.username,
                &row.email,
                &row.password_hash,
                row.created_at
            ),
            "user {id} is not overwritten"
        );
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 40);
}

async fn a_dry_run_writes_nothing_but_reports_everything(backend: Backend) {
    let app = spawn_app(backend).spawn().await;

    let dry = import(&app, &json_source(), true).await;

    assert!(dry.summary.dry_run);
    assert_eq!(
        (
            dry.summary.imported,
            dry.summary.already_present,
            dry.summary.rejected
        ),
        (40, 0, 5)
    );
    assert_eq!(dry.rejects.len(), 5, "the rejects file is still written");
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 0);
    // And a real run afterwards finds everything still to do.
    let real = import(&app, &json_source(), false).await;
    assert_eq!(real.summary.imported, 40);
}

async fn users_of_smsauth_keep_their_mobile_username_and_email(backend: Backend) {
    let app = spawn_app(backend).spawn().await;
    // Someone registered here first, with alice's mobile, grace's username and walter's email.
    app.create_user(
        "Grace",
        "13911110008",
        Some("Shared@Example.com"),
        "mine-all-mine",
    )
    .await;

    let imported = import(&app, &json_source(), false).await;

    assert_eq!(imported.summary.imported, 39);
    let alice = imported
        .rejects
        .iter()
        .find(|r| r["legacy_id"] == 8)
        .expect("alice is rejected");
    assert_eq!(alice["reason"], "mobile_taken");
    assert!(
        alice["detail"]
            .as_str()
            .unwrap()
            .contains("a user of smsauth")
    );
    let stored = stored_users(&app).await;
    assert_ne!(
        stored[&23].username, "grace",
        "grace gets the derived username"
    );
    assert_eq!(stored[&36].email, None, "walter's email was taken");
    let mine = app
        .graphql(
            "mutation { loginWithPassword(account: \"13911110008\", password: \"mine-all-mine\") { user { username email } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        mine["data"]["loginWithPassword"]["user"]["username"],
        "Grace"
    );
}

on_each!(databases:
    dumpdata_json_imports_every_user_as_the_fixture_says,
    sqlite_database_imports_every_user_as_the_fixture_says,
    a_second_run_imports_only_what_is_new,
    a_dry_run_writes_nothing_but_reports_everything,
    users_of_smsauth_keep_their_mobile_username_and_email,
);

/// Loads the fixture into a fresh PostgreSQL database, in the table Django's
/// `migrate` makes for the original (`USE_TZ = False`: timestamps without
/// time zone), and returns its URL.
async fn django_postgres_database() -> String {
    let admin_url = postgres_admin_url();
    let admin = Database::connect(&admin_url).await.unwrap();
    let name = format!("django_fixture_{}", uuid::Uuid::new_v4().simple());
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    admin.close().await.ok();
    let url = format!("{}/{name}", admin_url.rsplit_once('/').unwrap().0);
    let django = Database::connect(&url).await.unwrap();
    django
        .execute_unprepared(
            r#"CREATE TABLE "user_user" (
                "id" bigint NOT NULL PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY,
                "password" varchar(128) NOT NULL, "last_login" timestamp NULL,
                "is_superuser" boolean NOT NULL, "username" varchar(150) NOT NULL UNIQUE,
                "first_name" varchar(150) NOT NULL, "last_name" varchar(150) NOT NULL,
                "email" varchar(254) NOT NULL, "is_staff" boolean NOT NULL,
                "is_active" boolean NOT NULL, "date_joined" timestamp NOT NULL,
                "mobile" varchar(11) NOT NULL UNIQUE)"#,
        )
        .await
        .unwrap();
    let text = std::fs::read_to_string(fixture_dir().join("users.json")).unwrap();
    let records: Vec<Value> = serde_json::from_str(&text).unwrap();
    for record in records {
        let f = &record["fields"];
        let text = |key: &str| sea_orm::Value::from(f[key].as_str().map(str::to_owned));
        let flag = |key: &str| sea_orm::Value::from(f[key].as_bool().unwrap());
        django
            .execute_raw(Statement::from_sql_and_values(
                sea_orm::DatabaseBackend::Postgres,
                r#"INSERT INTO "user_user" VALUES ($1, $2, CAST($3 AS timestamp), $4, $5, $6, $7, $8, $9, $10, CAST($11 AS timestamp), $12)"#,
                [
                    sea_orm::Value::from(record["pk"].as_i64().unwrap()),
                    text("password"),
                    text("last_login"),
                    flag("is_superuser"),
                    text("username"),
                    text("first_name"),
                    text("last_name"),
                    text("email"),
                    flag("is_staff"),
                    flag("is_active"),
                    text("date_joined"),
                    text("mobile"),
                ],
            ))
            .await
            .unwrap();
    }
    django.close().await.ok();
    url
}

async fn postgres_database_imports_every_user_as_the_fixture_says(backend: Backend) {
    let source = django_postgres_database().await;
    let app = spawn_app(backend).spawn().await;

    let imported = import(&app, &source, false).await;

    assert_fixture_outcome(&app, &imported, false).await;
}

on_each!(databases: postgres_database_imports_every_user_as_the_fixture_says);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sms_sign_in_only_users_can_still_sign_in_by_sms() {
    let app = spawn_app(Backend::Sqlite).spawn().await;
    import(&app, &json_source(), false).await;

    for (mobile, username) in [("13611110034", "trent"), ("13611110035", "victor")] {
        let exists = app
            .graphql(
                "query($m: String!) { mobileExists(mobile: $m) }",
                json!({ "m": mobile }),
            )
            .await;
        assert_eq!(exists["data"]["mobileExists"], true, "{exists}");
        let sent = app.send_code(mobile, "LOGIN").await;
        assert_eq!(error_code(&sent), None, "{sent}");
        let code = app.last_code(&format!("+86{mobile}"));
        let answer = app.login_with_sms(mobile, &code).await;
        assert_eq!(error_code(&answer), None, "{username}: {answer}");
    }
}

#[tokio::test]
async fn an_unreadable_source_is_an_error_not_an_empty_import() {
    let app = spawn_app(Backend::Sqlite).spawn().await;
    for source in [
        "/no/such/file.json".to_owned(),
        fixture_dir().join("README.md").display().to_string(),
        "postgres://postgres@127.0.0.1:5432/no_such_database_here".to_owned(),
    ] {
        let options = ImportOptions {
            source: source.clone(),
            table: "user_user".to_owned(),
            dry_run: false,
            rejects: std::env::temp_dir().join(format!("rejects-{}.jsonl", uuid::Uuid::new_v4())),
            time_zone: chrono_tz::Tz::UTC,
            show_progress: false,
        };
        let result = smsauth::import_django::run(&app.state.config, &options).await;
        let err = result.expect_err(&source);
        assert!(format!("{err:#}").contains("SOURCE"), "{source}: {err:#}");
    }
    let bad_table = ImportOptions {
        source: sqlite_source(),
        table: "user_user; DROP TABLE users".to_owned(),
        dry_run: false,
        rejects: std::env::temp_dir().join(format!("rejects-{}.jsonl", uuid::Uuid::new_v4())),
        time_zone: chrono_tz::Tz::UTC,
        show_progress: false,
    };
    let err = smsauth::import_django::run(&app.state.config, &bad_table)
        .await
        .expect_err("a bad --table");
    assert!(format!("{err:#}").contains("--table"), "{err:#}");
}

/// A password column that is not one of Django's hashers smsauth verifies is
/// "SMS sign-in only" whatever it looks like: even a string shaped like
/// smsauth's own Argon2id hash (which, with hostile parameters, would hold a
/// hasher for hours or abort the process on the first wrong password).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_password_smsauth_does_not_verify_is_stored_unusable() {
    use argon2::password_hash::PasswordHasher as _;
    let app = spawn_app(Backend::Sqlite).spawn().await;
    let shaped_like_ours = argon2::Argon2::default()
        .hash_password(b"imported password")
        .unwrap()
        .to_string();
    let passwords = [
        (
            9001,
            "$argon2id$v=19$m=8,t=5000000,p=1$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAA".to_owned(),
        ),
        (
            9002,
            "$argon2id$v=19$m=4294967295,t=1,p=1$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAA".to_owned(),
        ),
        (9003, shaped_like_ours),
        (9004, "md5$salt$00000000000000000000000000000000".to_owned()),
    ];
    let dump: Vec<Value> = passwords
        .iter()
        .map(|(pk, password)| {
            json!({ "model": "user.user", "pk": pk, "fields": {
                "password": password, "last_login": null, "username": format!("legacy{pk}"),
                "email": "", "is_active": true, "date_joined": "2020-01-01T00:00:00",
                "mobile": format!("1371119{pk:04}"),
            }})
        })
        .collect();
    let path = std::env::temp_dir().join(format!("unverifiable-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&path, Value::from(dump).to_string()).unwrap();
    let imported = import(&app, &path.display().to_string(), false).await;
    std::fs::remove_file(&path).ok();
    assert_eq!(imported.summary.imported, 4, "{:?}", imported.rejects);
    assert_eq!(imported.summary.sms_only, 4);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM users WHERE password_hash LIKE '!$argon2id$%'")
            .await,
        3,
        "hashes shaped like smsauth's own are kept behind the unusable marker"
    );

    for (pk, _) in &passwords {
        let started = std::time::Instant::now();
        let answer = app
            .graphql(
                "mutation($a: String!, $p: String!) { loginWithPassword(account: $a, password: $p) { accessToken } }",
                json!({ "a": format!("legacy{pk}"), "p": "imported password" }),
            )
            .await;
        assert_eq!(
            error_code(&answer).as_deref(),
            Some("INVALID_CREDENTIALS"),
            "{pk}: {answer}"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(3),
            "{pk} took {:?}",
            started.elapsed()
        );
    }
}
