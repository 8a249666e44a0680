//! Imported users sign in with their Django passwords (every hasher of the
//! fixture, made by real Django), and their first success stores Argon2id.

use serde_json::json;
use smsauth::domain::UserId;

use crate::helpers::{Backend, Setup, TestApp, error_code, spawn_app, spawn_setup};
use crate::import_django::{fixture_users, import, json_source};
use crate::on_each;

const LOGIN: &str = "mutation($a: String!, $p: String!) { loginWithPassword(account: $a, password: $p) { accessToken user { id username } } }";

async fn stored_hash(app: &TestApp, legacy_id: i64) -> String {
    let db = &app.state.db;
    let row = db
        .query_one_raw(sea_orm::Statement::from_sql_and_values(
            db.get_database_backend(),
            match db.get_database_backend() {
                sea_orm::DatabaseBackend::Postgres => {
                    "SELECT password_hash FROM users WHERE legacy_id = $1"
                }
                _ => "SELECT password_hash FROM users WHERE legacy_id = ?",
            },
            [legacy_id.into()],
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get("", "password_hash").unwrap()
}

use sea_orm::ConnectionTrait;

async fn login(app: &TestApp, account: &str, password: &str) -> Option<String> {
    let answer = app
        .graphql(LOGIN, json!({ "a": account, "p": password }))
        .await;
    error_code(&answer)
}

/// The fixture's quicker users, one or more per hasher and parameter set.
const EVERY_HASHER: [(i64, &str); 10] = [
    (24, "pbkdf2_sha256$260000"),
    (25, "pbkdf2_sha256$36000"),
    (26, "pbkdf2_sha1$1000000"),
    (27, "pbkdf2_sha1$20000"),
    (28, "argon2$argon2id$"),
    (29, "argon2$argon2i$"),
    (30, "bcrypt_sha256$"),
    (31, "bcrypt$"),
    (32, "scrypt$16384$"),
    (33, "scrypt$16384$"),
];

async fn every_django_hasher_signs_in_and_becomes_argon2id(setup: Setup) {
    let app = spawn_setup(setup).spawn().await;
    import(&app, &json_source(), false).await;
    let users = fixture_users();

    for (id, prefix) in EVERY_HASHER {
        let user = &users[&id];
        let username = user["username"].as_str().unwrap();
        let password = user["password"].as_str().unwrap();
        assert!(stored_hash(&app, id).await.starts_with(prefix), "user {id}");

        // A wrong password is refused and changes nothing.
        let wrong = login(&app, username, &format!("{password}-wrong")).await;
        assert_eq!(wrong.as_deref(), Some("INVALID_CREDENTIALS"), "user {id}");
        assert!(stored_hash(&app, id).await.starts_with(prefix), "user {id}");

        // The right one signs in and replaces the hash.
        assert_eq!(
            login(&app, username, password).await,
            None,
            "user {id} ({prefix})"
        );
        let upgraded = stored_hash(&app, id).await;
        assert!(
            upgraded.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "user {id}: {upgraded}"
        );

        // Afterwards the same password still works, by mobile too; a wrong one still fails.
        assert_eq!(
            login(&app, user["mobile"].as_str().unwrap(), password).await,
            None
        );
        let wrong = login(&app, username, &format!("{password}-wrong")).await;
        assert_eq!(wrong.as_deref(), Some("INVALID_CREDENTIALS"), "user {id}");
    }
}

on_each!(setups: every_django_hasher_signs_in_and_becomes_argon2id);

/// Every fixture user with a password, at Django 5.2's 1,000,000 rounds too:
/// by mobile (national and E.164), by username where kept, by email where
/// kept; including `123456`, a password equal to the mobile and a non-ASCII one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_imported_user_signs_in_with_their_django_password() {
    let app = spawn_app(Backend::Postgres).spawn().await;
    import(&app, &json_source(), false).await;
    let users = fixture_users();

    let mut first_logins = Vec::new();
    for (id, user) in &users {
        let want = &user["expected"];
        if want["outcome"] != "import" || want["password_login"] != true {
            continue;
        }
        let app = &app;
        first_logins.push(async move {
            let password = user["password"].as_str().unwrap();
            let national = user["mobile"].as_str().unwrap();
            let e164 = want["mobile_e164"].as_str().unwrap();
            let mut accounts = vec![national.to_owned(), e164.to_owned()];
            if want["username_kept"] == true {
                accounts.push(user["username"].as_str().unwrap().to_owned());
            }
            if want["email_kept"] == true {
                accounts.push(user["email"].as_str().unwrap().to_owned());
            }
            let active = want["is_active"] == true;
            for account in &accounts {
                let expected = (!active).then(|| "INVALID_CREDENTIALS".to_owned());
                assert_eq!(
                    login(app, account, password).await,
                    expected,
                    "user {id} as {account}"
                );
            }
            if active {
                assert!(
                    stored_hash(app, *id).await.starts_with("$argon2id$"),
                    "user {id}"
                );
            }
        });
    }
    assert_eq!(first_logins.len(), 38);
    // Two at a time: the hasher runs one per core anyway.
    use futures::StreamExt;
    futures::stream::iter(first_logins)
        .buffer_unordered(2)
        .collect::<Vec<()>>()
        .await;
}

async fn sms_only_users_never_sign_in_with_a_password(backend: Backend) {
    let app = spawn_app(backend).spawn().await;
    import(&app, &json_source(), false).await;

    for (account, password) in [
        ("trent", ""),
        ("trent", "!"),
        ("trent", "sNOuLZFynXxuijQukK0P1S6bSJnwKSIXGzfQYrlQ"),
        ("victor", "victor-md5"),
        ("13611110035", "victor-md5"),
    ] {
        let code = login(&app, account, password).await;
        assert_eq!(code.as_deref(), Some("INVALID_CREDENTIALS"), "{account}");
    }
    assert!(
        stored_hash(&app, 35).await.starts_with("md5$"),
        "left as it was"
    );
}

on_each!(databases: sms_only_users_never_sign_in_with_a_password);

/// Parallel first logins of one migrated user: every one succeeds, and the
/// hash is replaced once (the UPDATE is conditional on the Django hash).
async fn parallel_first_logins_all_succeed_and_rehash_once(backend: Backend) {
    let app = spawn_app(backend).spawn().await;
    import(&app, &json_source(), false).await;
    let legacy = stored_hash(&app, 27).await;

    let logins = (0..6).map(|_| login(&app, "mallory", "mallory1984"));
    let answers = futures::future::join_all(logins).await;

    assert!(answers.iter().all(Option::is_none), "{answers:?}");
    let upgraded = stored_hash(&app, 27).await;
    assert!(upgraded.starts_with("$argon2id$"));
    assert_eq!(login(&app, "mallory", "mallory1984").await, None);

    // The write itself: of many racing replacements of the same Django hash,
    // exactly one lands.
    let user = smsauth::db::users::find_by_username(
        &app.state.db,
        &smsauth::domain::Username::parse("ted").unwrap(),
    )
    .await
    .unwrap()
    .unwrap();
    let racing = (0..8).map(|i| {
        smsauth::db::users::replace_legacy_hash(
            &app.state.db,
            UserId::from(user.id),
            &user.password_hash,
            format!("$argon2id$racer{i}"),
            chrono::Utc::now(),
        )
    });
    let won: Vec<bool> = futures::future::join_all(racing)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
    assert_ne!(legacy, upgraded);
}

on_each!(databases: parallel_first_logins_all_succeed_and_rehash_once);
