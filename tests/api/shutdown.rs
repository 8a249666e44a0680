//! SIGTERM (contract §1): the real binary stops accepting, finishes the
//! request in flight, and a send whose client hung up, and exits 0.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, Database, Statement};

use crate::fake_tencent::{self, Behaviour, FakeTencent};
use crate::helpers::smsauth_binary;

/// The real binary serving on SQLite in a fresh directory. Killed (and its
/// directory removed) when dropped, so a failing test leaves no server behind.
struct Server {
    child: Child,
    addr: String,
    dir: PathBuf,
}

impl Server {
    fn sigterm(&self) {
        let killed = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
    }

    /// Its exit status, failing the test (rather than hanging it) if it
    /// takes longer than the stop's own 25 s bound and a margin.
    fn wait_for_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(35);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the server did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts the server with `extra` settings; returns once it listens.
fn start_server(extra: &[(&'static str, String)]) -> Server {
    let dir = std::env::temp_dir().join(format!("smsauth-shutdown-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut child = Command::new(smsauth_binary())
        .arg("serve")
        .env_clear()
        .current_dir(&dir)
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/t.db?mode=rwc", dir.display()),
        )
        .env("RUST_LOG", "info")
        .envs(extra.iter().map(|(name, value)| (name, value)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut log = BufReader::new(child.stdout.take().unwrap());
    let addr = loop {
        let mut line = String::new();
        assert!(
            log.read_line(&mut line).unwrap() > 0,
            "exited before listening"
        );
        if let Some(at) = line.find("addr=") {
            break line[at + 5..].split_whitespace().next().unwrap().to_owned();
        }
    };
    // Keep reading the log so the child never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut log, &mut std::io::sink()));
    Server { child, addr, dir }
}

#[test]
fn sigterm_finishes_the_request_in_flight_then_exits_0() {
    let mut server = start_server(&[]);
    let addr = server.addr.clone();

    // A request in flight: headers and half the body sent.
    let body = br#"{"query":"{ __typename }"}"#;
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(&body[..10]).unwrap();
    std::thread::sleep(Duration::from_millis(300));

    server.sigterm();
    std::thread::sleep(Duration::from_millis(500));
    // No longer accepting.
    assert!(
        TcpStream::connect(&addr).is_err(),
        "a new connection was accepted after SIGTERM"
    );
    // The request in flight still gets its answer.
    stream.write_all(&body[10..]).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.ends_with(r#"{"data":{"__typename":"Query"}}"#),
        "{answer}"
    );

    assert_eq!(server.wait_for_exit().code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_waits_for_a_send_whose_client_hung_up() {
    let mobile = "+8613700000013";
    let fake = FakeTencent::start().await;
    fake.set(Behaviour::Slow(Duration::from_millis(1500)));
    let mut settings = fake_tencent::settings(&fake);
    settings.push(("SMS_PROVIDER", "tencent".to_owned()));
    let mut server = tokio::task::spawn_blocking(move || start_server(&settings))
        .await
        .unwrap();

    // The client hangs up while Tencent is still answering; then the
    // server is told to stop. The send is held by nothing but the detached
    // work that shutdown waits for.
    fake.hang_up_on_a_send(&format!("http://{}", server.addr), mobile)
        .await;
    server.sigterm();
    let (server, status) = tokio::task::spawn_blocking(move || {
        let status = server.wait_for_exit();
        (server, status)
    })
    .await
    .unwrap();
    assert_eq!(status.code(), Some(0));

    // It stopped only after the send had its answer, and its audit row.
    let received = fake.single_request();
    assert!(received.signature_valid);
    let db = Database::connect(format!("sqlite://{}/t.db", server.dir.display()))
        .await
        .unwrap();
    let sent = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT COUNT(*) AS n FROM sms_messages WHERE status = 'sent' AND mobile = '{mobile}'"),
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap();
    assert_eq!(sent, 1, "the SMS Tencent accepted has its audit row");
}
