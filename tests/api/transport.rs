//! The HTTP transport against clients a browser or an attacker would be
//! (contract §3.1): slow headers, oversized bodies still being sent, other
//! methods, CORS with `*`, and `x-request-id` on every answer.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{Backend, TestApp, spawn_app};

fn host_port(app: &TestApp) -> String {
    app.address.trim_start_matches("http://").to_owned()
}

/// Reads until the server closes the connection (or `give_up` passes);
/// how long that took, or `None` when it was still open.
async fn time_until_closed(
    stream: &mut TcpStream,
    since: Instant,
    give_up: Duration,
) -> Option<Duration> {
    let mut buf = [0u8; 4096];
    loop {
        let left = give_up.checked_sub(since.elapsed())?;
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(since.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

/// Reads one HTTP/1.1 response with a `content-length`: status line and
/// headers (as text, lower-cased) and the body.
async fn read_response(stream: &mut TcpStream) -> (String, Vec<u8>) {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut buf).await.expect("reading the response");
        assert!(
            n > 0,
            "closed before a complete response: {:?}",
            String::from_utf8_lossy(&bytes)
        );
        bytes.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&bytes[..head_end]).to_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    while bytes.len() < head_end + length {
        let n = stream.read(&mut buf).await.expect("reading the body");
        assert!(n > 0, "closed mid-body");
        bytes.extend_from_slice(&buf[..n]);
    }
    (head, bytes[head_end..head_end + length].to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_headers_get_the_connection_closed_after_10_s() {
    let app = spawn_app(Backend::Sqlite).spawn().await;
    let addr = host_port(&app);
    let give_up = Duration::from_secs(20);

    // Connects and sends nothing.
    let silent = async {
        let started = Instant::now();
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        time_until_closed(&mut stream, started, give_up).await
    };
    // Sends half its headers, then one byte every second (slowloris).
    let dribbling = async {
        let started = Instant::now();
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        stream
            .write_all(b"POST /graphql HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .unwrap();
        let (mut read, mut write) = stream.into_split();
        let drip = async {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if write.write_all(b"a").await.is_err() {
                    break;
                }
            }
        };
        let closed = async {
            let mut buf = [0u8; 1024];
            loop {
                match tokio::time::timeout(
                    give_up.saturating_sub(started.elapsed()),
                    read.read(&mut buf),
                )
                .await
                {
                    Err(_) => return None,
                    Ok(Ok(0) | Err(_)) => return Some(started.elapsed()),
                    Ok(Ok(_)) => {}
                }
            }
        };
        tokio::select! {
            closed = closed => closed,
            () = drip => Some(started.elapsed()),
        }
    };
    // Kept alive after one good request, then sends nothing.
    let idle_after_a_response = async {
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let (head, _) = read_response(&mut stream).await;
        assert!(head.starts_with("http/1.1 200"), "{head}");
        let answered = Instant::now();
        time_until_closed(&mut stream, answered, give_up).await
    };

    let (silent, dribbling, idle) = tokio::join!(silent, dribbling, idle_after_a_response);
    for (what, closed_after) in [
        ("silent", silent),
        ("dribbling", dribbling),
        ("idle after a response", idle),
    ] {
        let closed_after =
            closed_after.unwrap_or_else(|| panic!("{what}: still open after {give_up:?}"));
        eprintln!("{what}: closed after {closed_after:?}");
        assert!(
            (Duration::from_secs(9)..Duration::from_secs(13)).contains(&closed_after),
            "{what}: closed after {closed_after:?}, expected about 10 s"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_still_sending_a_large_body_reads_its_413() {
    let app = spawn_app(Backend::Sqlite).spawn().await;
    let mut stream = TcpStream::connect(host_port(&app)).await.unwrap();
    let body_len = 3 * 1024 * 1024;
    stream
        .write_all(
            format!(
                "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                 Content-Length: {body_len}\r\n\r\n{{\"query\":\""
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    // Paced like a client on a real network: on loopback, kernel buffers
    // would otherwise swallow the whole body before the server answers.
    let chunk = vec![b'a'; 16 * 1024];
    let mut sent = 10;
    while sent < body_len {
        let n = chunk.len().min(body_len - sent);
        if let Err(e) = stream.write_all(&chunk[..n]).await {
            panic!("the server stopped reading after {sent} of {body_len} bytes: {e}");
        }
        sent += n;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let (head, body) = read_response(&mut stream).await;
    assert!(head.starts_with("http/1.1 413"), "{head}");
    assert!(head.contains("x-request-id:"), "{head}");
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "BAD_REQUEST",
        "{body}"
    );
}

#[tokio::test]
async fn a_large_body_announced_with_expect_continue_is_refused_before_it_is_sent() {
    let app = spawn_app(Backend::Sqlite).spawn().await;
    let mut stream = TcpStream::connect(host_port(&app)).await.unwrap();
    stream
        .write_all(
            b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 3145728\r\nExpect: 100-continue\r\n\r\n",
        )
        .await
        .unwrap();
    let (head, _) = read_response(&mut stream).await;
    assert!(head.starts_with("http/1.1 413"), "{head}");
}

#[tokio::test]
async fn a_body_within_the_limit_still_works() {
    let app = spawn_app(Backend::Sqlite).spawn().await;
    // Padding near the 64 KiB default limit, sent chunked (no content-length).
    let padding = " ".repeat(60 * 1024);
    let body = format!("{{\"query\":\"{padding}{{ __typename }}\"}}");
    let mut stream = TcpStream::connect(host_port(&app)).await.unwrap();
    stream
        .write_all(
            b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Transfer-Encoding: chunked\r\n\r\n",
        )
        .await
        .unwrap();
    for chunk in body.as_bytes().chunks(1000) {
        stream
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await
            .unwrap();
        stream.write_all(chunk).await.unwrap();
        stream.write_all(b"\r\n").await.unwrap();
    }
    stream.write_all(b"0\r\n\r\n").await.unwrap();
    let (head, body) = read_response(&mut stream).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer, json!({ "data": { "__typename": "Query" } }));
}

#[tokio::test]
async fn other_methods_get_405_with_allow_and_a_json_error() {
    let app = spawn_app(Backend::Sqlite).spawn().await;
    for method in [
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
        reqwest::Method::PATCH,
    ] {
        let response = app
            .client
            .request(method.clone(), format!("{}/graphql", app.address))
            .header("content-type", "application/json")
            .body(r#"{"query":"{ __typename }"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405, "{method}");
        assert_eq!(response.headers()["allow"], "GET, POST", "{method}");
        assert!(response.headers().contains_key("x-request-id"), "{method}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "BAD_REQUEST",
            "{method}: {body}"
        );
    }
}

#[tokio::test]
async fn cors_star_allows_every_origin_and_exposes_the_request_id() {
    let app = spawn_app(Backend::Sqlite)
        .var("CORS_ALLOWED_ORIGINS", "*")
        .spawn()
        .await;
    let url = format!("{}/graphql", app.address);
    let preflight = app
        .client
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", "https://anyone.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    let headers = preflight.headers();
    assert_eq!(headers["access-control-allow-origin"], "*");
    let allowed = headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    for name in ["authorization", "content-type"] {
        assert!(allowed.split(',').any(|h| h.trim() == name), "{allowed}");
    }
    assert!(!headers.contains_key("access-control-allow-credentials"));
    assert!(headers.contains_key("x-request-id"));

    let response = app
        .client
        .post(&url)
        .header("origin", "https://someone-else.example")
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    let headers = response.headers();
    assert_eq!(headers["access-control-allow-origin"], "*");
    let exposed = headers["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(exposed.contains("x-request-id"), "{exposed}");
    assert!(!headers["x-request-id"].is_empty());
}

#[tokio::test]
async fn listed_origins_only_and_every_answer_has_a_request_id() {
    let app = spawn_app(Backend::Sqlite)
        .var(
            "CORS_ALLOWED_ORIGINS",
            "https://app.example, http://localhost:3000",
        )
        .spawn()
        .await;
    let allowed_origin = |origin: &'static str| {
        let app = &app;
        async move {
            let response = app
                .client
                .post(format!("{}/graphql", app.address))
                .header("origin", origin)
                .json(&json!({ "query": "{ __typename }" }))
                .send()
                .await
                .unwrap();
            response
                .headers()
                .get("access-control-allow-origin")
                .map(|v| v.to_str().unwrap().to_owned())
        }
    };
    assert_eq!(
        allowed_origin("https://app.example").await.as_deref(),
        Some("https://app.example")
    );
    assert_eq!(
        allowed_origin("http://localhost:3000").await.as_deref(),
        Some("http://localhost:3000")
    );
    assert_eq!(allowed_origin("https://evil.example").await, None);

    // Answers from every layer carry an id: a handler, a 404, an unparsable body.
    for (method, path, body) in [
        ("GET", "/healthz", ""),
        ("GET", "/nowhere", ""),
        ("POST", "/graphql", "not json"),
    ] {
        let response = app
            .client
            .request(method.parse().unwrap(), format!("{}{path}", app.address))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(
            response.headers().contains_key("x-request-id"),
            "{method} {path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_past_its_time_gets_a_graphql_error_clients_can_read() {
    let app = spawn_app(Backend::Sqlite)
        .var("HTTP_REQUEST_TIMEOUT_SECS", "1")
        .spawn()
        .await;
    for (language, message) in [("en", "unavailable"), ("zh-CN", "服务")] {
        // Announces 100 bytes, sends 10, then waits: the body never completes.
        let mut stream = TcpStream::connect(host_port(&app)).await.unwrap();
        let head = format!(
            "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Accept-Language: {language}\r\nContent-Length: 100\r\n\r\n{{\"query\":"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let started = Instant::now();
        let (head, body) = tokio::time::timeout(Duration::from_secs(5), read_response(&mut stream))
            .await
            .expect("answered at the timeout");
        assert!(
            started.elapsed() >= Duration::from_millis(900),
            "{:?}",
            started.elapsed()
        );
        assert!(head.starts_with("http/1.1 503"), "{head}");
        assert!(head.contains("content-type: application/json"), "{head}");
        let answer: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            answer["errors"][0]["extensions"]["code"], "SERVICE_UNAVAILABLE",
            "{answer}"
        );
        let text = answer["errors"][0]["message"].as_str().unwrap();
        assert!(text.contains(message), "{language}: {text}");
    }
}
