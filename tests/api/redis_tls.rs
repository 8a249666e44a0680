//! `rediss://` against a real `redis-server --tls-port`, with a CA and server
//! certificate made for the test: trusted through `REDIS_CA_FILE` it works; a
//! server whose certificate comes from a CA the service does not trust is
//! refused, never silently accepted. The same for a cluster speaking TLS only.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use serde_json::json;

use crate::helpers::{Backend, error_code, free_port, spawn_app, wait_for_port};
use crate::redis_cluster::{ClusterTls, RedisCluster};

/// A CA able to sign server certificates, written to `dir/NAME.pem`.
struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    pem_path: PathBuf,
}

impl TestCa {
    fn new(dir: &Path, name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("smsauth test CA {name}"));
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let pem_path = dir.join(format!("{name}.pem"));
        std::fs::write(&pem_path, issuer.pem()).unwrap();
        Self { issuer, pem_path }
    }

    /// A certificate for 127.0.0.1 and localhost; the paths of its PEM and key.
    fn server_certificate(&self, dir: &Path) -> (PathBuf, PathBuf) {
        let params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let (cert_path, key_path) = (dir.join("server.pem"), dir.join("server.key"));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        (cert_path, key_path)
    }
}

/// `redis-server` serving TLS only, killed on drop.
struct TlsRedis {
    port: u16,
    child: Child,
    dir: PathBuf,
}

impl TlsRedis {
    fn start(dir: PathBuf, ca: &TestCa) -> Self {
        let (cert, key) = ca.server_certificate(&dir);
        let port = free_port();
        let path = |p: &Path| p.display().to_string();
        let child = Command::new("redis-server")
            .args(["--port", "0", "--tls-port", &port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args([
                "--tls-cert-file",
                &path(&cert),
                "--tls-key-file",
                &path(&key),
            ])
            .args(["--tls-ca-cert-file", &path(&ca.pem_path)])
            .args(["--tls-auth-clients", "no", "--dir", &path(&dir)])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        wait_for_port(port, "redis-server (TLS)");
        Self { port, child, dir }
    }

    fn url(&self) -> String {
        format!("rediss://127.0.0.1:{}", self.port)
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

const SEND: &str =
    "mutation($m: String!) { sendSmsCode(mobile: $m, purpose: REGISTER) { mobile } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rediss_works_with_the_ca_file_and_refuses_an_unknown_ca() {
    let dir = std::env::temp_dir().join(format!(
        "smsauth-test-tls-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let trusted = TestCa::new(&dir, "trusted");
    let unknown = TestCa::new(&dir, "unknown");
    let redis = TlsRedis::start(dir.clone(), &trusted);

    let app = spawn_app(Backend::Postgres)
        .var("REDIS_URL", redis.url())
        .var("REDIS_CA_FILE", trusted.pem_path.display().to_string())
        .spawn()
        .await;
    let sent = app.graphql(SEND, json!({ "m": "13711112222" })).await;
    assert_eq!(error_code(&sent), None, "{sent}");
    let code = app.last_code("+8613711112222");
    let registered = app
        .register("13711112222", &code, "correct horse battery", None)
        .await;
    assert_eq!(error_code(&registered), None, "{registered}");
    assert_eq!(app.readiness().await.0, 200);

    // A CA the server's certificate does not chain to, or the system's roots alone.
    for ca_file in [Some(&unknown.pem_path), None] {
        let mut builder = spawn_app(Backend::Postgres).var("REDIS_URL", redis.url());
        if let Some(ca_file) = ca_file {
            builder = builder.var("REDIS_CA_FILE", ca_file.display().to_string());
        }
        let app = builder.spawn().await;
        let started = Instant::now();
        let refused = app.graphql(SEND, json!({ "m": "13722223333" })).await;
        assert_eq!(
            error_code(&refused).as_deref(),
            Some("SERVICE_UNAVAILABLE"),
            "{refused}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(app.sms.sent().is_empty(), "nothing sent without the store");
        let (status, body) = app.readiness().await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["down"], json!(["code_store"]));
    }
}

/// `REDIS_CA_FILE` applies to every node of a cluster that speaks TLS only.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tls_cluster_works_with_the_ca_file_and_refuses_an_unknown_ca() {
    let dir = std::env::temp_dir().join(format!(
        "smsauth-test-tls-cluster-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let trusted = TestCa::new(&dir, "trusted");
    let unknown = TestCa::new(&dir, "unknown");
    let (cert_file, key_file) = trusted.server_certificate(&dir);
    let tls = ClusterTls {
        ca_file: trusted.pem_path.clone(),
        cert_file,
        key_file,
    };
    let cluster = tokio::task::spawn_blocking(move || RedisCluster::start_tls(3, &tls))
        .await
        .unwrap();
    assert!(cluster.seeds().starts_with("rediss://"));

    let app = spawn_app(Backend::Postgres)
        .var("REDIS_CLUSTER_NODES", cluster.seeds())
        .var("REDIS_CA_FILE", trusted.pem_path.display().to_string())
        .spawn()
        .await;
    let mobiles = ["13711112222", "13722223333", "13733334444", "13744445555"];
    let masters: std::collections::BTreeSet<usize> = mobiles
        .iter()
        .map(|national| cluster.master_of(cluster.slot_of(&format!("+86{national}"))))
        .collect();
    assert!(
        masters.len() > 1,
        "the mobiles' keys spread over the masters"
    );
    for national in mobiles {
        let sent = app.graphql(SEND, json!({ "m": national })).await;
        assert_eq!(error_code(&sent), None, "{sent}");
        let code = app.last_code(&format!("+86{national}"));
        let registered = app
            .register(national, &code, "correct horse battery", None)
            .await;
        assert_eq!(error_code(&registered), None, "{registered}");
    }
    assert_eq!(app.readiness().await, (200, json!({ "status": "ready" })));

    let app = spawn_app(Backend::Postgres)
        .var("REDIS_CLUSTER_NODES", cluster.seeds())
        .var("REDIS_CA_FILE", unknown.pem_path.display().to_string())
        .spawn()
        .await;
    let started = Instant::now();
    let refused = app.graphql(SEND, json!({ "m": "13711112222" })).await;
    assert_eq!(
        error_code(&refused).as_deref(),
        Some("SERVICE_UNAVAILABLE"),
        "{refused}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    let (status, body) = app.readiness().await;
    assert_eq!(status, 503, "{body}");
    drop(cluster);
    std::fs::remove_dir_all(&dir).ok();
}
