//! A local stand-in for Tencent Cloud SMS (`SendSms`, 2021-01-11) that is as strict as the
//! real endpoint where it matters: it recomputes the TC3-HMAC-SHA256 signature from what it
//! received (the `Host` header, `X-TC-Timestamp`, `Content-Type` and the raw body bytes) with
//! the signer under test and refuses a mismatch with `AuthFailure.SignatureFailure`; it checks
//! the `X-TC-*` headers and every body field. It records what it received, so tests can read
//! the code that was "delivered", and can be switched to answer with any error (request-level
//! or per number), a gateway error, a slow answer, or a connection dropped after the request
//! arrived.
//!
//! Every answer carries `Connection: close`, so each send opens a new connection and the
//! behaviour chosen when a connection is accepted is the one its request gets.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{AUTHORIZATION, CONNECTION, CONTENT_TYPE, HOST};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use smsauth::sms::tencent::sign::{self, SigningInput};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

use crate::fake_provider::{Calls, listen, proxy_page};

pub const SECRET_ID: &str = "AKIDfakeTencentId00000000000000000001";
pub const SECRET_KEY: &str = "fakeTencentSecretKey-MUST-NOT-LEAK-0001";
pub const SDK_APP_ID: &str = "1400006666";
/// Non-ASCII on purpose: the body is signed as UTF-8 bytes.
pub const SIGN_NAME: &str = "腾讯云";
pub const TEMPLATE_ID: &str = "1234567";
pub const REGION: &str = "ap-guangzhou";
/// Every message the fake writes starts with this, so tests can check that none reaches a client.
pub const MESSAGE_MARKER: &str = "[fake Tencent message]";

/// What the fake does with the next requests that pass its checks.
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// `SendStatusSet[0].Code = "Ok"`, with a serial number and `Fee: 1`.
    Succeed,
    /// `Response.Error` with this code: nothing sent.
    RequestError(&'static str),
    /// HTTP 200, no `Error`, `SendStatusSet[0].Code` = this code, `SerialNo ""`, `Fee 0`.
    NumberError(&'static str),
    /// A gateway's answer: this status and an HTML body.
    HttpStatus(u16),
    /// Sleeps this long, then succeeds.
    Slow(Duration),
    /// Reads the whole request, then closes the connection without answering.
    DropConnection,
}

/// One request as the fake received it.
#[derive(Clone, Debug)]
pub struct Received {
    /// The recomputed signature equals `Authorization`.
    pub signature_valid: bool,
    /// Every rule the request broke, as `(Tencent error code, explanation)`; the first one
    /// is what the fake answered.
    pub problems: Vec<(&'static str, String)>,
    /// `Ok`, an error code, `HTTP <status>`, or `dropped`.
    pub answered: String,
    pub headers: HeaderMap,
    pub phone_numbers: Vec<String>,
    pub template_params: Vec<String>,
    pub session_context: Option<String>,
    /// The `RequestId` answered (none when the connection was dropped).
    pub request_id: Option<String>,
    /// The `SerialNo` answered on success.
    pub serial_no: Option<String>,
}

impl Received {
    /// The code the template would have carried (first parameter).
    pub fn code(&self) -> String {
        self.template_params
            .first()
            .cloned()
            .expect("a TemplateParamSet was received")
    }
}

type Shared = Calls<Behaviour, Received>;

pub struct FakeTencent {
    /// `http://127.0.0.1:<port>`: the value for `TENCENT_SMS_ENDPOINT`.
    pub endpoint: String,
    shared: Arc<Shared>,
}

impl FakeTencent {
    /// Starts the fake on a free port of 127.0.0.1, on the test's runtime.
    pub async fn start() -> Self {
        let (listener, endpoint) = listen("Tencent").await;
        let shared = Arc::new(Calls::new(Behaviour::Succeed));
        let router = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        let listener = FakeListener {
            inner: listener,
            shared: shared.clone(),
        };
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { endpoint, shared }
    }

    /// A client asks the app at `address` (`http://host:port`) for a REGISTER
    /// code to `mobile`, and hangs up once this fake has the app's call: the
    /// send is past its checks and the fake is still answering (set it
    /// `Slow`). Returns after the app had time to see the connection close.
    pub async fn hang_up_on_a_send(&self, address: &str, mobile: &str) {
        smsauth::tls::install_crypto_provider();
        let client = tokio::spawn(
            reqwest::Client::new()
                .post(format!("{address}/graphql"))
                .json(&json!({
                    "query": "mutation($m: String!) { sendSmsCode(mobile: $m, purpose: REGISTER) { mobile } }",
                    "variables": { "m": mobile },
                }))
                .send(),
        );
        for _ in 0..100 {
            if !self.requests().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(!self.requests().is_empty(), "Tencent never got the send");
        client.abort();
        assert!(
            client.await.is_err(),
            "the client was meant to give up first"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `set`, `requests` and `single_request` of what the fake received.
impl std::ops::Deref for FakeTencent {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.shared
    }
}

/// Accepts connections for axum, except in [`Behaviour::DropConnection`] mode, where it
/// reads the request itself, records it, and closes the connection unanswered.
struct FakeListener {
    inner: TcpListener,
    shared: Arc<Shared>,
}

impl axum::serve::Listener for FakeListener {
    type Io = TcpStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (stream, addr) = match self.inner.accept().await {
                Ok(accepted) => accepted,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let drop_it = matches!(self.shared.behaviour(), Behaviour::DropConnection);
            if !drop_it {
                return (stream, addr);
            }
            let shared = self.shared.clone();
            tokio::spawn(async move {
                let mut stream = stream;
                if let Some((method, uri, headers, body)) = read_raw_request(&mut stream).await {
                    let mut received = check(&method, &uri, &headers, &body);
                    received.answered = "dropped".to_owned();
                    shared.record(received);
                }
                // Dropping the stream closes the connection: no status line, no body.
                drop(stream);
            });
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// Reads one HTTP/1.1 request (head and `Content-Length` body) off a raw stream.
async fn read_raw_request(stream: &mut TcpStream) -> Option<(Method, Uri, HeaderMap, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_end]).ok()?;
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = Method::from_bytes(request_line.next()?.as_bytes()).ok()?;
    let uri: Uri = request_line.next()?.parse().ok()?;
    let mut headers = HeaderMap::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':')?;
        headers.append(
            HeaderName::from_bytes(name.trim().as_bytes()).ok()?,
            HeaderValue::from_bytes(value.trim().as_bytes()).ok()?,
        );
    }
    let length: usize = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some((
        method,
        uri,
        headers,
        buf[head_end..head_end + length].to_vec(),
    ))
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut received = check(&method, &uri, &headers, &body);
    let request_id = uuid::Uuid::new_v4().to_string();
    received.request_id = Some(request_id.clone());
    let behaviour = shared.behaviour();

    let (status, answer) = if let Some((code, _)) = received.problems.first() {
        (StatusCode::OK, request_error(code, &request_id))
    } else {
        match behaviour {
            Behaviour::Succeed | Behaviour::Slow(_) => {
                let serial_no = format!("2433:{}", uuid::Uuid::new_v4().simple());
                received.serial_no = Some(serial_no.clone());
                (StatusCode::OK, success(&received, &serial_no, &request_id))
            }
            Behaviour::RequestError(code) => (StatusCode::OK, request_error(code, &request_id)),
            Behaviour::NumberError(code) => {
                (StatusCode::OK, number_error(&received, code, &request_id))
            }
            Behaviour::HttpStatus(status) => {
                received.answered = format!("HTTP {status}");
                shared.record(received);
                return proxy_page(status, MESSAGE_MARKER);
            }
            // Only reachable on a connection accepted before the switch; `Connection: close`
            // on every answer keeps that from happening.
            Behaviour::DropConnection => (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({ "note": "drop requested on a kept-alive connection" }),
            ),
        }
    };
    received.answered = answer["Response"]["Error"]["Code"]
        .as_str()
        .or_else(|| answer["Response"]["SendStatusSet"][0]["Code"].as_str())
        .unwrap_or("?")
        .to_owned();
    shared.record(received);
    if let Behaviour::Slow(delay) = behaviour {
        tokio::time::sleep(delay).await;
    }
    (
        status,
        [(CONNECTION, "close"), (CONTENT_TYPE, "application/json")],
        answer.to_string(),
    )
        .into_response()
}

fn request_error(code: &str, request_id: &str) -> Value {
    json!({ "Response": {
        "Error": { "Code": code, "Message": format!("{MESSAGE_MARKER} {code}: {SECRET_KEY_HINT}") },
        "RequestId": request_id,
    }})
}

/// Real messages never contain the key; this one does, so a test catches a message that leaks.
const SECRET_KEY_HINT: &str =
    "please check the key (hint: fakeTencentSecretKey-MUST-NOT-LEAK-0001)";

fn success(received: &Received, serial_no: &str, request_id: &str) -> Value {
    json!({ "Response": {
        "SendStatusSet": [{
            "SerialNo": serial_no,
            "PhoneNumber": received.phone_numbers.first(),
            "Fee": 1,
            "SessionContext": received.session_context.clone().unwrap_or_default(),
            "Code": "Ok",
            "Message": "send success",
            "IsoCode": "CN",
        }],
        "RequestId": request_id,
    }})
}

fn number_error(received: &Received, code: &str, request_id: &str) -> Value {
    json!({ "Response": {
        "SendStatusSet": [{
            "SerialNo": "",
            "PhoneNumber": received.phone_numbers.first(),
            "Fee": 0,
            "SessionContext": received.session_context.clone().unwrap_or_default(),
            "Code": code,
            "Message": format!("{MESSAGE_MARKER} {code} for {}", received.phone_numbers.first().cloned().unwrap_or_default()),
            "IsoCode": "CN",
        }],
        "RequestId": request_id,
    }})
}

/// Every check the real endpoint makes that a client can get wrong, in Tencent's order:
/// authentication first, then the common parameters, then the body.
fn check(method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Received {
    let mut problems: Vec<(&'static str, String)> = Vec::new();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());

    if method != Method::POST || uri.path() != "/" || uri.query().is_some() {
        problems.push((
            "InvalidParameter",
            format!("expected POST / without a query, got {method} {uri}"),
        ));
    }

    // --- the signature ---
    let authorization = header(AUTHORIZATION.as_str()).unwrap_or_default();
    let host = header(HOST.as_str());
    let content_type = header(CONTENT_TYPE.as_str());
    let timestamp = header("x-tc-timestamp").and_then(|t| t.parse::<i64>().ok());
    let mut signature_valid = false;
    if !authorization.starts_with("TC3-HMAC-SHA256 Credential=") {
        problems.push((
            "AuthFailure.InvalidAuthorization",
            format!("Authorization {authorization:?}"),
        ));
    } else if !authorization.contains(&format!("Credential={SECRET_ID}/")) {
        problems.push((
            "AuthFailure.SecretIdNotFound",
            "unknown SecretId".to_owned(),
        ));
    }
    match (host, content_type, timestamp) {
        (Some(host), Some(content_type), Some(timestamp)) => {
            let now = Utc::now().timestamp();
            if (now - timestamp).abs() > 300 {
                problems.push((
                    "AuthFailure.SignatureExpire",
                    format!("X-TC-Timestamp {timestamp}, now {now}"),
                ));
            }
            let expected = sign::sign(&SigningInput {
                secret_id: SECRET_ID,
                secret_key: SECRET_KEY,
                host,
                content_type,
                timestamp: DateTime::from_timestamp(timestamp, 0).unwrap_or_default(),
                payload: body,
            });
            signature_valid = expected.authorization == authorization;
            if !signature_valid {
                problems.push((
                    "AuthFailure.SignatureFailure",
                    "the signature does not match".to_owned(),
                ));
            }
        }
        _ => problems.push((
            "MissingParameter",
            format!("Host {host:?}, Content-Type {content_type:?}, X-TC-Timestamp {timestamp:?}"),
        )),
    }

    // --- common parameters ---
    let expect_header = |problems: &mut Vec<(&'static str, String)>,
                         name: &str,
                         expected: &str,
                         code: &'static str| {
        match header(name) {
            None => problems.push(("MissingParameter", format!("no {name}"))),
            Some(value) if value != expected => {
                problems.push((code, format!("{name}: {value:?}, expected {expected:?}")))
            }
            Some(_) => {}
        }
    };
    expect_header(&mut problems, "x-tc-action", "SendSms", "InvalidAction");
    expect_header(&mut problems, "x-tc-version", "2021-01-11", "NoSuchVersion");
    expect_header(&mut problems, "x-tc-region", REGION, "UnsupportedRegion");
    if headers.contains_key("x-tc-token") {
        problems.push((
            "AuthFailure.TokenFailure",
            "X-TC-Token sent with a permanent key".to_owned(),
        ));
    }
    if !content_type.is_some_and(|ct| {
        ct.split(';')
            .next()
            .is_some_and(|t| t.trim() == "application/json")
    }) {
        problems.push(("InvalidParameter", format!("Content-Type {content_type:?}")));
    }

    // --- the body ---
    let mut received = Received {
        signature_valid,
        problems: Vec::new(),
        answered: String::new(),
        headers: headers.clone(),
        phone_numbers: Vec::new(),
        template_params: Vec::new(),
        session_context: None,
        request_id: None,
        serial_no: None,
    };
    let parsed: Option<serde_json::Map<String, Value>> = serde_json::from_slice(body).ok();
    let Some(fields) = parsed else {
        problems.push((
            "FailedOperation.JsonParseFail",
            "the body is not a JSON object".to_owned(),
        ));
        received.problems = problems;
        return received;
    };
    const KNOWN: &[&str] = &[
        "PhoneNumberSet",
        "SmsSdkAppId",
        "SignName",
        "TemplateId",
        "TemplateParamSet",
        "SessionContext",
        "ExtendCode",
        "SenderId",
    ];
    for (name, value) in &fields {
        if !KNOWN.contains(&name.as_str()) {
            problems.push(("UnknownParameter", format!("unknown field {name}")));
        }
        if value.is_null() {
            problems.push(("InvalidParameter", format!("{name} is null")));
        }
    }
    let strings = |value: Option<&Value>| -> Option<Vec<String>> {
        value?
            .as_array()?
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect()
    };

    match strings(fields.get("PhoneNumberSet")) {
        None => problems.push((
            "MissingParameter.EmptyPhoneNumberSet",
            "PhoneNumberSet is not an array of strings".to_owned(),
        )),
        Some(numbers) if numbers.is_empty() => problems.push((
            "MissingParameter.EmptyPhoneNumberSet",
            "empty PhoneNumberSet".to_owned(),
        )),
        Some(numbers) => {
            for number in &numbers {
                let digits = number.strip_prefix('+').unwrap_or("");
                if !(8..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit())
                {
                    problems.push((
                        "InvalidParameterValue.IncorrectPhoneNumber",
                        format!("{number:?} is not E.164"),
                    ));
                }
            }
            received.phone_numbers = numbers;
        }
    }
    let expect_field = |problems: &mut Vec<(&'static str, String)>,
                        name: &str,
                        expected: &str,
                        code: &'static str| {
        match fields.get(name).and_then(Value::as_str) {
            None => problems.push((
                "MissingParameter",
                format!("{name} missing or not a string"),
            )),
            Some(value) if value != expected => problems.push((code, format!("{name}: {value:?}"))),
            Some(_) => {}
        }
    };
    expect_field(
        &mut problems,
        "SmsSdkAppId",
        SDK_APP_ID,
        "InvalidParameterValue.SdkAppIdNotExist",
    );
    expect_field(
        &mut problems,
        "SignName",
        SIGN_NAME,
        "FailedOperation.SignatureIncorrectOrUnapproved",
    );
    expect_field(
        &mut problems,
        "TemplateId",
        TEMPLATE_ID,
        "FailedOperation.TemplateIncorrectOrUnapproved",
    );

    // The template is a verification-code template with {1} = code and {2} = minutes.
    match strings(fields.get("TemplateParamSet")) {
        None => problems.push((
            "FailedOperation.TemplateParamSetNotMatchApprovedTemplate",
            "TemplateParamSet is not an array of strings".to_owned(),
        )),
        Some(params) => {
            if params.len() != 2 {
                problems.push((
                    "FailedOperation.TemplateParamSetNotMatchApprovedTemplate",
                    format!("{} parameters", params.len()),
                ));
            }
            if params
                .iter()
                .any(|p| p.is_empty() || p.len() > 6 || !p.bytes().all(|b| b.is_ascii_digit()))
            {
                problems.push((
                    "InvalidParameterValue.TemplateParameterFormatError",
                    "parameters must be 1 to 6 digits".to_owned(),
                ));
            }
            received.template_params = params;
        }
    }

    // Not required by Tencent, but smsauth always correlates a send with its audit row.
    match fields.get("SessionContext").and_then(Value::as_str) {
        Some(context) if !context.is_empty() && context.len() < 512 => {
            received.session_context = Some(context.to_owned());
        }
        other => problems.push(("MissingParameter", format!("SessionContext {other:?}"))),
    }

    received.problems = problems;
    received
}

/// The settings that point the app at this fake.
pub fn settings(fake: &FakeTencent) -> Vec<(&'static str, String)> {
    vec![
        ("TENCENT_SECRET_ID", SECRET_ID.to_owned()),
        ("TENCENT_SECRET_KEY", SECRET_KEY.to_owned()),
        ("TENCENT_SMS_SDK_APP_ID", SDK_APP_ID.to_owned()),
        ("TENCENT_SMS_SIGN_NAME", SIGN_NAME.to_owned()),
        ("TENCENT_SMS_TEMPLATE_ID", TEMPLATE_ID.to_owned()),
        ("TENCENT_SMS_REGION", REGION.to_owned()),
        ("TENCENT_SMS_ENDPOINT", fake.endpoint.clone()),
    ]
}
