//! `spawn_app()`: the real application, one per test, each with its own
//! database (and Redis key prefix), talking over HTTP.

use std::sync::{Arc, Mutex};

use chrono::Utc;
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};
use smsauth::config::{Config, Env};
use smsauth::db::users::NewUser;
use smsauth::domain::{Mobile, Region, UserId, Username};
use smsauth::sms::RecordingSmsProvider;
use smsauth::startup::Application;
use smsauth::state::AppState;

/// Where test databases are created (trust auth on the CI machine).
pub fn postgres_admin_url() -> String {
    std::env::var("SMSAUTH_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

pub fn redis_url() -> String {
    std::env::var("SMSAUTH_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Store {
    Memory,
    Redis,
    /// The Redis Cluster the test binary shares (`redis_cluster::shared`).
    RedisCluster,
}

/// Runs each `async fn name(x)` once per deployment variant, as tests in a
/// module `name`:
///
/// - `on_each!(setups: a, b)`: `on_postgres_and_redis`, `on_sqlite_in_memory` ([`Setup`]);
/// - `on_each!(databases: a, b)`: `on_postgres`, `on_sqlite` ([`Backend`]);
/// - `on_each!(stores: a, b)`: `on_redis`, `on_redis_cluster`, `in_memory` ([`Store`]).
#[macro_export]
macro_rules! on_each {
    (setups: $($name:ident),* $(,)?) => {
        $crate::on_each!(@variants Setup { PostgresRedis => on_postgres_and_redis, SqliteMemory => on_sqlite_in_memory } $($name),*);
    };
    (databases: $($name:ident),* $(,)?) => {
        $crate::on_each!(@variants Backend { Postgres => on_postgres, Sqlite => on_sqlite } $($name),*);
    };
    (stores: $($name:ident),* $(,)?) => {
        $crate::on_each!(@variants Store { Redis => on_redis, RedisCluster => on_redis_cluster, Memory => in_memory } $($name),*);
    };
    (@variants $kind:ident $variants:tt $($name:ident),*) => {$(
        $crate::on_each!(@tests $name $kind $variants);
    )*};
    (@tests $name:ident $kind:ident { $($variant:ident => $test:ident),+ }) => {
        mod $name {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    super::$name($crate::helpers::$kind::$variant).await
                }
            )+
        }
    };
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub sms: Arc<RecordingSmsProvider>,
    pub state: Arc<AppState>,
    /// Every SQL statement the app ran, in order.
    pub sql: Arc<Mutex<Vec<String>>>,
    pub redis_prefix: Option<String>,
    /// `http://host:port` of the metrics listener, when `METRICS_ADDR` is set.
    pub metrics_address: Option<String>,
}

pub struct TestAppBuilder {
    backend: Backend,
    store: Store,
    vars: Vec<(&'static str, String)>,
    configured_sms: bool,
    postgres_port: Option<u16>,
    redis_prefix: Option<String>,
    database_url: Option<String>,
}

pub fn spawn_app(backend: Backend) -> TestAppBuilder {
    TestAppBuilder {
        backend,
        store: Store::Memory,
        vars: Vec::new(),
        configured_sms: false,
        postgres_port: None,
        redis_prefix: None,
        database_url: None,
    }
}

impl TestAppBuilder {
    pub fn store(mut self, store: Store) -> Self {
        self.store = store;
        self
    }

    /// Uses the SMS provider the configuration names (e.g. `SMS_PROVIDER=tencent`)
    /// instead of the recording one.
    pub fn configured_sms_provider(mut self) -> Self {
        self.configured_sms = true;
        self
    }

    /// Reaches the fresh PostgreSQL database through this port (a fault-injecting proxy).
    pub fn postgres_port(mut self, port: u16) -> Self {
        self.postgres_port = Some(port);
        self
    }

    /// Uses this existing database instead of a fresh one (several instances share it).
    pub fn database_url(mut self, url: impl Into<String>) -> Self {
        self.database_url = Some(url.into());
        self
    }

    /// Uses this Redis key prefix (several instances of one deployment share it).
    pub fn redis_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.redis_prefix = Some(prefix.into());
        self
    }

    /// Sets a configuration variable as the contract names it.
    pub fn var(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.vars.push((key, value.into()));
        self
    }

    pub async fn spawn(self) -> TestApp {
        init_test_logging();
        let database_url = match self.backend {
            _ if self.database_url.is_some() => self.database_url.clone().unwrap_or_default(),
            Backend::Postgres => {
                let url = fresh_postgres_database().await;
                match self.postgres_port {
                    Some(port) => url.replace(":5432/", &format!(":{port}/")),
                    None => url,
                }
            }
            Backend::Sqlite => {
                let path =
                    std::env::temp_dir().join(format!("smsauth-test-{}.db", uuid::Uuid::new_v4()));
                format!("sqlite://{}?mode=rwc", path.display())
            }
        };
        let redis_prefix = (self.store != Store::Memory).then(|| {
            self.redis_prefix
                .clone()
                .unwrap_or_else(|| format!("smsauth-test-{}", uuid::Uuid::new_v4().simple()))
        });
        let mut pairs: Vec<(&str, String)> = vec![
            ("LISTEN_ADDR", "127.0.0.1:0".to_owned()),
            ("DATABASE_URL", database_url),
            (
                "JWT_SECRET",
                "test-secret-that-is-at-least-32-bytes-long".to_owned(),
            ),
            // Limits that would get in the way of unrelated tests are lifted;
            // the tests of those limits set them back.
            ("MOBILE_EXISTS_LIMIT_PER_IP", "off".to_owned()),
            ("SMS_SEND_LIMIT_PER_IP", "off".to_owned()),
            ("SMS_VERIFY_LIMIT_PER_IP", "off".to_owned()),
            ("LOGIN_FAILURE_LIMIT_PER_ACCOUNT", "off".to_owned()),
            ("LOGIN_FAILURE_LIMIT_PER_IP", "off".to_owned()),
            ("SMS_GLOBAL_LIMIT", "off".to_owned()),
            ("SMS_GUARD_MIN_SENDS", "off".to_owned()),
            ("SMS_ALLOWED_REGIONS", "CN,US".to_owned()),
        ];
        match self.store {
            Store::Redis => pairs.push(("REDIS_URL", redis_url())),
            Store::RedisCluster => pairs.push((
                "REDIS_CLUSTER_NODES",
                crate::redis_cluster::shared().seeds(),
            )),
            Store::Memory => {}
        }
        pairs.extend(self.vars);
        let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut config = Config::from_source(&Env::from_pairs(&borrowed)).expect("test config");
        if let (Some(redis), Some(prefix)) = (&mut config.redis, &redis_prefix) {
            redis.key_prefix = prefix.clone();
        }

        let sms = Arc::new(RecordingSmsProvider::new());
        let sql = Arc::new(Mutex::new(Vec::new()));
        let sql_log = sql.clone();
        let mut builder = Application::builder(config);
        if !self.configured_sms {
            builder = builder.sms_provider(sms.clone());
        }
        let app = builder
            .sql_observer(Arc::new(move |statement: &str| {
                sql_log.lock().unwrap().push(statement.to_owned());
            }))
            .build()
            .await
            .expect("the app builds");
        let address = format!("http://{}", app.local_addr().unwrap());
        let state = app.state();
        let metrics_address = app.metrics_addr().map(|addr| format!("http://{addr}"));
        tokio::spawn(app.run_until_stopped());
        TestApp {
            address,
            client: reqwest::Client::new(),
            sms,
            state,
            sql,
            redis_prefix,
            metrics_address,
        }
    }
}

fn init_test_logging() {
    if std::env::var("TEST_LOG").is_ok() {
        smsauth::telemetry::init();
    }
}

/// A new, empty PostgreSQL database; its URL.
pub async fn fresh_postgres_database() -> String {
    let admin_url = postgres_admin_url();
    let admin = Database::connect(&admin_url)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL must be reachable at {admin_url}: {e}"));
    let name = format!("smsauth_test_{}", uuid::Uuid::new_v4().simple());
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create the test database");
    admin.close().await.ok();
    match admin_url.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{name}"),
        None => panic!("SMSAUTH_TEST_POSTGRES must end in /DATABASE"),
    }
}

impl TestApp {
    /// A raw GET to `path`, for tests of HTTP itself (status codes, headers).
    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(format!("{}{path}", self.address))
    }

    /// `GET /readyz`: its status and JSON body.
    pub async fn readiness(&self) -> (u16, Value) {
        let response = self.get("/readyz").send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    /// A raw POST to `path`, for tests of HTTP itself (status codes, headers).
    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.post(format!("{}{path}", self.address))
    }

    /// The value of one series in a `/metrics` scrape (`0` when absent), by
    /// its name and labels exactly as Prometheus prints them.
    pub async fn metric(&self, series: &str) -> f64 {
        let scrape = self.scrape().await;
        scrape
            .lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .map_or(0.0, |value| value.trim().parse().unwrap())
    }

    /// The whole text of a `/metrics` scrape.
    pub async fn scrape(&self) -> String {
        let address = self
            .metrics_address
            .as_ref()
            .expect("spawned with METRICS_ADDR");
        let response = self
            .client
            .get(format!("{address}/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.text().await.unwrap()
    }

    /// Posts one GraphQL operation and returns the whole JSON answer.
    pub async fn graphql(&self, query: &str, variables: Value) -> Value {
        self.graphql_as(None, query, variables).await
    }

    /// The same, with `Authorization: Bearer <token>`.
    pub async fn graphql_as(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut request = self
            .post("/graphql")
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("the app answers");
        assert_eq!(response.status(), 200, "GraphQL answers 200");
        response.json().await.expect("a JSON body")
    }

    pub fn mobile(&self, written: &str) -> Mobile {
        Mobile::parse(written, Region::CN).unwrap()
    }

    /// Creates a user directly through the persistence layer.
    pub async fn create_user(
        &self,
        username: &str,
        mobile: &str,
        email: Option<&str>,
        password: &str,
    ) -> UserId {
        let mobile = self.mobile(mobile);
        let username = Username::parse(username).unwrap();
        let email = email.map(|e| smsauth::domain::Email::parse(e).unwrap());
        let id = UserId::new();
        smsauth::db::users::insert(
            &self.state.db,
            NewUser {
                id,
                username: &username,
                mobile: &mobile,
                email: email.as_ref(),
                password_hash: self.state.passwords.hash(password).await.unwrap(),
                now: Utc::now(),
                signed_in: false,
            },
        )
        .await
        .unwrap_or_else(|e| panic!("create_user: {e:?}"));
        id
    }

    /// Signs in with a password and returns the `AuthPayload`.
    pub async fn login(&self, account: &str, password: &str) -> Value {
        let answer = self
            .graphql(
                "mutation($a: String!, $p: String!) { loginWithPassword(account: $a, password: $p) { accessToken refreshToken expiresIn tokenType user { id username } } }",
                json!({ "a": account, "p": password }),
            )
            .await;
        assert_eq!(error_code(&answer), None, "login failed: {answer}");
        answer["data"]["loginWithPassword"].clone()
    }

    /// Sends a code; returns the answer.
    pub async fn send_code(&self, mobile: &str, purpose: &str) -> Value {
        self.graphql(
            "mutation($m: String!, $p: SmsPurpose!) { sendSmsCode(mobile: $m, purpose: $p) { mobile expiresIn resendIn } }",
            json!({ "m": mobile, "p": purpose }),
        )
        .await
    }

    /// The code the recording provider last sent to `mobile` (E.164).
    pub fn last_code(&self, e164: &str) -> String {
        self.sms.last_code_to(e164).expect("a code was sent")
    }

    pub async fn register(
        &self,
        mobile: &str,
        code: &str,
        password: &str,
        username: Option<&str>,
    ) -> Value {
        self.graphql(
            "mutation($m: String!, $c: String!, $p: String!, $u: String) { registerWithSms(mobile: $m, code: $c, password: $p, username: $u) { accessToken refreshToken user { id username mobile } } }",
            json!({ "m": mobile, "c": code, "p": password, "u": username }),
        )
        .await
    }

    /// Registers a new user through SMS; returns the `AuthPayload`.
    pub async fn register_via_sms(&self, mobile: &str, password: &str) -> Value {
        let sent = self.send_code(mobile, "REGISTER").await;
        assert_eq!(error_code(&sent), None, "{sent}");
        let e164 = sent["data"]["sendSmsCode"]["mobile"]
            .as_str()
            .unwrap()
            .to_owned();
        let answer = self
            .register(mobile, &self.last_code(&e164), password, None)
            .await;
        assert_eq!(error_code(&answer), None, "{answer}");
        answer["data"]["registerWithSms"].clone()
    }

    pub async fn login_with_sms(&self, mobile: &str, code: &str) -> Value {
        self.graphql(
            "mutation($m: String!, $c: String!) { loginWithSms(mobile: $m, code: $c) { accessToken refreshToken user { id } } }",
            json!({ "m": mobile, "c": code }),
        )
        .await
    }

    /// SELECT statements on `users` run so far.
    pub fn user_selects(&self) -> usize {
        self.sql
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.trim_start().starts_with("SELECT") && s.contains("\"users\""))
            .count()
    }

    pub async fn count(&self, sql: &str) -> i64 {
        let backend = self.state.db.get_database_backend();
        let row = self
            .state
            .db
            .query_one_raw(sea_orm::Statement::from_string(backend, sql.to_owned()))
            .await
            .unwrap()
            .unwrap();
        row.try_get_by_index::<i64>(0).unwrap()
    }
}

/// A loopback port free at the time of asking.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Blocks until something accepts connections on the loopback `port` (a
/// server the test started); fails the test after 10 s.
pub fn wait_for_port(port: u16, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what} did not start on port {port}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Polls `check` every 200 ms until it holds; fails the test after `within`.
pub async fn eventually<F, Fut>(what: &str, within: std::time::Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + within;
    while !check().await {
        assert!(
            std::time::Instant::now() < deadline,
            "{what} did not happen by itself within {within:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// The `extensions.code` of the first error, if any.
pub fn error_code(answer: &Value) -> Option<String> {
    answer["errors"][0]["extensions"]["code"]
        .as_str()
        .map(str::to_owned)
}

/// The first error's `extensions`.
pub fn error_extensions(answer: &Value) -> Value {
    answer["errors"][0]["extensions"].clone()
}

/// The two deployments tests run against: production-like and zero-setup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setup {
    PostgresRedis,
    SqliteMemory,
}

pub fn spawn_setup(setup: Setup) -> TestAppBuilder {
    match setup {
        Setup::PostgresRedis => spawn_app(Backend::Postgres).store(Store::Redis),
        Setup::SqliteMemory => spawn_app(Backend::Sqlite).store(Store::Memory),
    }
}

/// The `smsauth` binary cargo built for these tests; `SMSAUTH_TEST_BINARY`
/// names another (when several checkouts share one target directory, the
/// one cargo names may have been replaced by another checkout's build).
pub fn smsauth_binary() -> std::path::PathBuf {
    std::env::var_os("SMSAUTH_TEST_BINARY").map_or_else(
        || std::path::PathBuf::from(env!("CARGO_BIN_EXE_smsauth")),
        std::path::PathBuf::from,
    )
}

/// The real `smsauth` binary with a clean environment (no `.env` either), so
/// only the variables a test sets apply. Logs stay quiet unless `TEST_LOG`.
pub fn smsauth_command(args: &[&str]) -> std::process::Command {
    let mut command = std::process::Command::new(smsauth_binary());
    command
        .args(args)
        .env_clear()
        .current_dir(std::env::temp_dir())
        .env(
            "RUST_LOG",
            if std::env::var("TEST_LOG").is_ok() {
                "info"
            } else {
                "error"
            },
        );
    command
}

/// Runs `command` to its end, or kills it after 30 s and fails: a command
/// that should exit must not hang the suite (e.g. `serve` starting instead).
pub fn run_to_exit(command: &mut std::process::Command) -> std::process::Output {
    use std::process::Stdio;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the smsauth binary runs");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while child.try_wait().expect("waiting for smsauth").is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().ok();
            let output = child.wait_with_output().expect("smsauth's output");
            panic!(
                "{command:?} did not exit within 30 s; stderr: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().expect("smsauth's output")
}
