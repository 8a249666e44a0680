//! Faults injected for real: a Redis server of our own that we stop and
//! restart, and a TCP proxy in front of PostgreSQL that we cut and restore.
//! Errors come quickly, readiness reports what is down, nothing half-done is
//! left valid, and service returns by itself.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use crate::helpers::{
    Backend, TestApp, error_code, eventually, free_port, spawn_app, wait_for_port,
};

/// No request may take longer than this while a dependency is down.
const BOUND: Duration = Duration::from_secs(5);

struct RedisServer {
    port: u16,
    child: Option<Child>,
}

impl RedisServer {
    fn start(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (apt-get install redis-server)");
        wait_for_port(port, "redis-server");
        Self {
            port,
            child: Some(child),
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Forwards 127.0.0.1:port to an upstream until cut.
struct TcpProxy {
    port: u16,
    open: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl TcpProxy {
    async fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let open = Arc::new(AtomicBool::new(true));
        let connections: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (open_flag, tasks) = (open.clone(), connections.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !open_flag.load(Ordering::SeqCst) {
                    drop(client); // cut: refuse by closing at once
                    continue;
                }
                tasks.lock().await.push(tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream)).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                }));
            }
        });
        Self {
            port,
            open,
            connections,
        }
    }

    /// Drops every connection and refuses new ones.
    async fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        for task in self.connections.lock().await.drain(..) {
            task.abort();
        }
    }

    fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

async fn timed(app: &TestApp, query: &str, variables: Value) -> (Value, Duration) {
    let started = Instant::now();
    let answer = app.graphql(query, variables).await;
    (answer, started.elapsed())
}

/// Recovery must come by itself within this.
const RECOVERY: Duration = Duration::from_secs(20);

const SEND: &str =
    "mutation($m: String!) { sendSmsCode(mobile: $m, purpose: REGISTER) { mobile } }";
const EXISTS: &str = "{ mobileExists(mobile: \"13711112222\") }";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redis_outage_fails_fast_and_heals() {
    let mut redis = RedisServer::start(free_port());
    let app = spawn_app(Backend::Postgres)
        .var("REDIS_URL", format!("redis://127.0.0.1:{}", redis.port))
        .spawn()
        .await;
    let (answer, _) = timed(&app, SEND, json!({ "m": "13700000001" })).await;
    assert_eq!(error_code(&answer), None, "{answer}");

    redis.stop();
    let (answer, took) = timed(&app, SEND, json!({ "m": "13700000002" })).await;
    assert_eq!(
        error_code(&answer).as_deref(),
        Some("SERVICE_UNAVAILABLE"),
        "{answer}"
    );
    assert!(took < BOUND, "took {took:?}");
    assert_eq!(app.sms.sent().len(), 1, "no SMS without a stored code");
    let code = app.last_code("+8613700000001");
    let (answer, took) = timed(&app, "mutation($c: String!) { registerWithSms(mobile: \"13700000001\", code: $c, password: \"correct horse battery\") { accessToken } }", json!({ "c": code })).await;
    assert_eq!(
        error_code(&answer).as_deref(),
        Some("SERVICE_UNAVAILABLE"),
        "{answer}"
    );
    assert!(took < BOUND, "took {took:?}");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM users").await,
        0,
        "no user without a checked code"
    );
    let (status, body) = app.readiness().await;
    assert_eq!(status, 503);
    assert_eq!(body["down"], json!(["code_store"]));

    let _redis = RedisServer::start(redis.port);
    eventually("sending", RECOVERY, || async {
        error_code(&app.graphql(SEND, json!({ "m": "13700000003" })).await).is_none()
    })
    .await;
    assert_eq!(app.readiness().await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_dependency_gauge_follows_a_redis_outage() {
    let mut redis = RedisServer::start(free_port());
    let app = spawn_app(Backend::Sqlite)
        .var("REDIS_URL", format!("redis://127.0.0.1:{}", redis.port))
        .var("METRICS_ADDR", "127.0.0.1:0")
        .spawn()
        .await;
    const UP: &str = r#"smsauth_dependency_up{dependency="code_store"}"#;
    assert_eq!(app.metric(UP).await, 1.0);
    redis.stop();
    assert_eq!(app.metric(UP).await, 0.0);
    assert_eq!(
        app.metric(r#"smsauth_dependency_up{dependency="database"}"#)
            .await,
        1.0
    );
    let _redis = RedisServer::start(redis.port);
    eventually("the gauge", RECOVERY, || async {
        app.metric(UP).await == 1.0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_postgres_outage_fails_fast_and_heals() {
    let proxy = TcpProxy::start(5432).await;
    let app = spawn_app(Backend::Postgres)
        .postgres_port(proxy.port)
        .spawn()
        .await;
    app.create_user("alice", "13711112222", None, "correct horse battery")
        .await;
    assert_eq!(
        app.graphql(EXISTS, json!({})).await["data"]["mobileExists"],
        true
    );

    proxy.cut().await;
    for (query, variables) in [
        (EXISTS, json!({})),
        (SEND, json!({ "m": "13700000009" })),
        (
            "mutation { loginWithPassword(account: \"alice\", password: \"correct horse battery\") { accessToken } }",
            json!({}),
        ),
    ] {
        let (answer, took) = timed(&app, query, variables).await;
        assert_eq!(
            error_code(&answer).as_deref(),
            Some("SERVICE_UNAVAILABLE"),
            "{query}: {answer}"
        );
        assert!(took < BOUND, "{query} took {took:?}");
    }
    assert!(
        app.sms.sent().is_empty(),
        "nothing sent while the database was down"
    );
    let (status, body) = app.readiness().await;
    assert_eq!(status, 503);
    assert_eq!(body["down"], json!(["database"]));

    proxy.restore();
    eventually("the database", RECOVERY, || async {
        app.graphql(EXISTS, json!({})).await["data"]["mobileExists"] == true
    })
    .await;
    assert_eq!(app.readiness().await.0, 200);
    assert_eq!(
        error_code(&app.graphql(SEND, json!({ "m": "13700000009" })).await),
        None
    );
}
