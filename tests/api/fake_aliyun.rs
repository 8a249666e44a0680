//! A local stand-in for Alibaba Cloud SMS (`SendSms`, 2017-05-25) that checks what the real
//! gateway checks, in its order: the `Authorization` shape and key id, that `host` and every
//! `x-acs-*` header sent are signed, action, version, date window, nonce reuse, the body hash,
//! then the ACS3-HMAC-SHA256 signature recomputed from what arrived (the URL query decoded as
//! the server decodes it, `+` and `%20` both a space, then re-encoded canonically), and then
//! the parameters (no V2 leftovers, signature name, template, `TemplateParam` a JSON object
//! of strings with the code variable, the number's format). Gateway refusals are HTTP 4xx
//! JSON, business answers HTTP 200 JSON, as Aliyun answers.
//!
//! It records what it received, so tests can read the code that was "delivered", and can be
//! switched to answer with any business or gateway error, a proxy's HTML page, or slowly.
//! Every answer carries `Connection: close`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{CONNECTION, CONTENT_TYPE};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use percent_encoding::percent_decode_str;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use smsauth::sms::aliyun::sign::{self, SigningInput};

use crate::fake_provider::{Calls, listen, proxy_page};

pub const ACCESS_KEY_ID: &str = "LTAI5tFakeAliyunKeyId0001";
pub const ACCESS_KEY_SECRET: &str = "fakeAliyunSecret-MUST-NOT-LEAK-0001";
/// Non-ASCII on purpose: the query is signed as percent-encoded UTF-8.
pub const SIGN_NAME: &str = "阿里云短信测试";
pub const TEMPLATE_CODE: &str = "SMS_154950909";
/// The template's variable, `${otp}`: not the default `code`, so the setting is exercised.
pub const CODE_PARAM: &str = "otp";
/// Every message the fake writes starts with this, so tests can check that none reaches a client.
pub const MESSAGE_MARKER: &str = "[fake Aliyun message]";

/// The headers every request must sign.
const REQUIRED_SIGNED: &[&str] = &[
    "host",
    "x-acs-action",
    "x-acs-content-sha256",
    "x-acs-date",
    "x-acs-signature-nonce",
    "x-acs-version",
];

/// What the fake does with the next requests that pass its checks.
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// `Code: OK` with a `BizId`.
    Succeed,
    /// HTTP 200 with this business `Code` and `Message`: nothing sent.
    BusinessError(&'static str, &'static str),
    /// This HTTP status with a gateway-shaped JSON body carrying this `Code`.
    GatewayError(u16, &'static str),
    /// This status with an HTML body (a proxy's page).
    HttpStatus(u16),
    /// Sleeps this long, then succeeds.
    Slow(Duration),
}

/// One request as the fake received it.
#[derive(Clone, Debug)]
pub struct Received {
    pub signature_valid: bool,
    /// Every rule the request broke, as `(Aliyun code, HTTP status, explanation)`; the first
    /// one is what the fake answered.
    pub problems: Vec<(&'static str, u16, String)>,
    /// `OK`, an error code, or `HTTP <status>`.
    pub answered: String,
    pub headers: HeaderMap,
    /// The decoded query parameters.
    pub params: Vec<(String, String)>,
    pub request_id: String,
    pub biz_id: Option<String>,
}

impl Received {
    pub fn param(&self, name: &str) -> Option<String> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }

    /// The code the template would have carried.
    pub fn code(&self) -> String {
        let param = self.param("TemplateParam").expect("a TemplateParam");
        let json: Value = serde_json::from_str(&param).expect("TemplateParam is JSON");
        json[CODE_PARAM]
            .as_str()
            .expect("the code variable")
            .to_owned()
    }
}

struct Shared {
    calls: Calls<Behaviour, Received>,
    nonces: Mutex<HashSet<String>>,
}

pub struct FakeAliyun {
    /// `http://127.0.0.1:<port>`: the value for `ALIYUN_SMS_ENDPOINT`.
    pub endpoint: String,
    shared: Arc<Shared>,
}

impl FakeAliyun {
    pub async fn start() -> Self {
        let (listener, endpoint) = listen("Aliyun").await;
        let shared = Arc::new(Shared {
            calls: Calls::new(Behaviour::Succeed),
            nonces: Mutex::new(HashSet::new()),
        });
        let router = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { endpoint, shared }
    }
}

/// `set`, `requests` and `single_request` of what the fake received.
impl std::ops::Deref for FakeAliyun {
    type Target = Calls<Behaviour, Received>;
    fn deref(&self) -> &Self::Target {
        &self.shared.calls
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut received = check(&shared, &method, &uri, &headers, &body);
    let behaviour = shared.calls.behaviour();
    let request_id = received.request_id.clone();

    let (status, answer) = if let Some((code, status, _)) = received.problems.first() {
        if *status == 200 {
            (
                200,
                json!({ "Code": code, "Message": MESSAGE_MARKER, "RequestId": request_id }),
            )
        } else {
            (*status, gateway_error(code, &request_id))
        }
    } else {
        match behaviour {
            Behaviour::Succeed | Behaviour::Slow(_) => {
                let biz_id = format!("{}^0", uuid::Uuid::new_v4().as_u128() % 10u128.pow(18));
                received.biz_id = Some(biz_id.clone());
                (
                    200,
                    json!({ "Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": request_id }),
                )
            }
            Behaviour::BusinessError(code, message) => (
                200,
                json!({ "Code": code, "Message": format!("{message} {MESSAGE_MARKER}"), "RequestId": request_id }),
            ),
            Behaviour::GatewayError(status, code) => (status, gateway_error(code, &request_id)),
            Behaviour::HttpStatus(status) => {
                received.answered = format!("HTTP {status}");
                shared.calls.record(received);
                return proxy_page(status, MESSAGE_MARKER);
            }
        }
    };
    received.answered = answer["Code"].as_str().unwrap_or("?").to_owned();
    shared.calls.record(received);
    if let Behaviour::Slow(delay) = behaviour {
        tokio::time::sleep(delay).await;
    }
    (
        StatusCode::from_u16(status).unwrap(),
        [
            (CONNECTION, "close"),
            (CONTENT_TYPE, "application/json;charset=utf-8"),
        ],
        answer.to_string(),
    )
        .into_response()
}

fn gateway_error(code: &str, request_id: &str) -> Value {
    json!({
        "RequestId": request_id,
        "HostId": "dysmsapi.aliyuncs.com",
        "Code": code,
        "Message": format!("{MESSAGE_MARKER} {code} (secret hint: {ACCESS_KEY_SECRET})"),
        "Recommend": format!("https://api.aliyun.com/troubleshoot?q={code}&product=Dysmsapi"),
    })
}

/// The query as the server reads it: split on `&` and `=`, `+` and `%XX` decoded.
fn decode_query(query: &str) -> Option<Vec<(String, String)>> {
    let decode = |s: &str| {
        percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .ok()
            .map(|c| c.into_owned())
    };
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            Some((decode(name)?, decode(value)?))
        })
        .collect()
}

/// A mainland number in one of the forms Aliyun takes, or country code + number without `+`.
fn phone_number_ok(number: &str) -> bool {
    let digits = number
        .strip_prefix("+86")
        .or_else(|| number.strip_prefix("0086"))
        .unwrap_or(number);
    (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

fn check(
    shared: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Received {
    let mut problems: Vec<(&'static str, u16, String)> = Vec::new();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let params = decode_query(uri.query().unwrap_or("")).unwrap_or_default();
    let mut received = Received {
        signature_valid: false,
        problems: Vec::new(),
        answered: String::new(),
        headers: headers.clone(),
        params: params.clone(),
        request_id: uuid::Uuid::new_v4().to_string().to_uppercase(),
        biz_id: None,
    };

    if method != Method::POST || uri.path() != "/" {
        problems.push((
            "InvalidAction.NotFound",
            404,
            format!("{method} {}", uri.path()),
        ));
    }

    // --- Authorization: one exact shape, no spaces after the commas ---
    let authorization = header("authorization").unwrap_or_default();
    let parts = authorization
        .strip_prefix("ACS3-HMAC-SHA256 ")
        .and_then(|rest| {
            let mut fields = rest.split(',');
            let credential = fields.next()?.strip_prefix("Credential=")?;
            let signed = fields.next()?.strip_prefix("SignedHeaders=")?;
            let signature = fields.next()?.strip_prefix("Signature=")?;
            fields
                .next()
                .is_none()
                .then_some((credential, signed, signature))
        });
    let Some((credential, signed_headers, _signature)) = parts else {
        problems.push((
            "IncompleteSignature",
            400,
            format!("Authorization {authorization:?}"),
        ));
        received.problems = problems;
        return received;
    };
    if credential != ACCESS_KEY_ID {
        problems.push((
            "InvalidAccessKeyId.NotFound",
            404,
            "unknown AccessKeyId".to_owned(),
        ));
    }
    let signed: Vec<&str> = signed_headers.split(';').collect();
    let mut sorted = signed.clone();
    sorted.sort_unstable();
    if sorted != signed || signed.iter().any(|h| h.to_ascii_lowercase() != *h) {
        problems.push((
            "IncompleteSignature",
            400,
            format!("SignedHeaders {signed_headers:?} not sorted lowercase"),
        ));
    }
    for required in REQUIRED_SIGNED {
        if !signed.contains(required) {
            problems.push((
                "IncompleteSignature",
                400,
                format!("{required} is not signed"),
            ));
        }
    }
    for name in headers.keys() {
        let name = name.as_str();
        if (name.starts_with("x-acs-") || name == "content-type") && !signed.contains(&name) {
            problems.push((
                "IncompleteSignature",
                400,
                format!("{name} is sent but not signed"),
            ));
        }
    }

    // --- common headers ---
    if header("x-acs-action") != Some("SendSms") {
        problems.push((
            "InvalidAction.NotFound",
            404,
            format!("x-acs-action {:?}", header("x-acs-action")),
        ));
    }
    if header("x-acs-version") != Some("2017-05-25") {
        problems.push((
            "InvalidVersion",
            400,
            format!("x-acs-version {:?}", header("x-acs-version")),
        ));
    }
    let date = header("x-acs-date").unwrap_or_default();
    let parsed_date: Option<DateTime<Utc>> =
        chrono::NaiveDateTime::parse_from_str(date, "%Y-%m-%dT%H:%M:%SZ")
            .ok()
            .filter(|_| date.len() == 20)
            .map(|d| d.and_utc());
    match parsed_date {
        None => problems.push((
            "InvalidTimeStamp.Format",
            400,
            format!("x-acs-date {date:?}"),
        )),
        Some(d) if (Utc::now() - d).num_seconds().abs() > 15 * 60 => {
            problems.push((
                "InvalidTimeStamp.Expired",
                400,
                format!("x-acs-date {date}"),
            ));
        }
        Some(_) => {}
    }
    let nonce = header("x-acs-signature-nonce")
        .unwrap_or_default()
        .to_owned();
    if nonce.is_empty() || !shared.nonces.lock().unwrap().insert(nonce.clone()) {
        problems.push(("SignatureNonceUsed", 400, format!("nonce {nonce:?}")));
    }
    let body_hash = hex::encode(Sha256::digest(body));
    if header("x-acs-content-sha256") != Some(body_hash.as_str()) {
        problems.push((
            "SignatureDoesNotMatch",
            400,
            "x-acs-content-sha256 is not the body's".to_owned(),
        ));
    }
    if !body.is_empty() {
        problems.push((
            "InvalidParameter",
            400,
            "SendSms takes its parameters in the query".to_owned(),
        ));
    }

    // --- the signature, recomputed from what arrived ---
    let extra: Vec<(&str, &str)> = signed
        .iter()
        .filter(|name| !REQUIRED_SIGNED.contains(name))
        .map(|name| (*name, header(name).unwrap_or_default()))
        .collect();
    let query: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    if let (Some(host), Some(date)) = (header("host"), parsed_date) {
        let expected = sign::sign(&SigningInput {
            access_key_id: ACCESS_KEY_ID,
            access_key_secret: ACCESS_KEY_SECRET,
            host,
            action: header("x-acs-action").unwrap_or_default(),
            version: header("x-acs-version").unwrap_or_default(),
            date,
            nonce: &nonce,
            query: &query,
            extra_headers: &extra,
            body,
        });
        received.signature_valid = expected.authorization == authorization;
    }
    if !received.signature_valid && problems.is_empty() {
        problems.push((
            "SignatureDoesNotMatch",
            400,
            "the signature does not match".to_owned(),
        ));
    }

    // --- parameters (gateway first, then business) ---
    const KNOWN: &[&str] = &[
        "PhoneNumbers",
        "SignName",
        "TemplateCode",
        "TemplateParam",
        "OutId",
        "SmsUpExtendCode",
    ];
    for (name, _) in &params {
        if !KNOWN.contains(&name.as_str()) {
            problems.push((
                "InvalidParameter",
                400,
                format!("unexpected parameter {name} (a V2 leftover?)"),
            ));
        }
    }
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    for (name, missing) in [
        ("PhoneNumbers", "MissingPhoneNumbers"),
        ("SignName", "MissingSignName"),
        ("TemplateCode", "MissingTemplateCode"),
    ] {
        if param(name).is_none_or(str::is_empty) {
            problems.push((
                missing,
                400,
                format!("{name} is mandatory for this action."),
            ));
        }
    }
    if let Some(numbers) = param("PhoneNumbers")
        && numbers.split(',').any(|n| !phone_number_ok(n))
    {
        problems.push((
            "isv.MOBILE_NUMBER_ILLEGAL",
            200,
            format!("PhoneNumbers {numbers:?}"),
        ));
    }
    if param("SignName").is_some_and(|s| s != SIGN_NAME) {
        problems.push((
            "isv.SMS_SIGNATURE_ILLEGAL",
            200,
            format!("SignName {:?}", param("SignName")),
        ));
    }
    if param("TemplateCode").is_some_and(|s| s != TEMPLATE_CODE) {
        problems.push((
            "isv.SMS_TEMPLATE_ILLEGAL",
            200,
            format!("TemplateCode {:?}", param("TemplateCode")),
        ));
    }
    // A verification-code template: exactly the one variable, a string of 4 to 6 digits.
    match param("TemplateParam").map(serde_json::from_str::<serde_json::Map<String, Value>>) {
        Some(Ok(object)) => {
            if object.values().any(|v| !v.is_string()) {
                problems.push((
                    "isv.INVALID_JSON_PARAM",
                    200,
                    "values must be strings".to_owned(),
                ));
            }
            match object.get(CODE_PARAM).and_then(Value::as_str) {
                Some(code)
                    if (4..=6).contains(&code.len())
                        && code.bytes().all(|b| b.is_ascii_digit()) => {}
                other => problems.push((
                    "isv.TEMPLATE_MISSING_PARAMETERS",
                    200,
                    format!("{CODE_PARAM}: {other:?}"),
                )),
            }
            if object.len() != 1 {
                problems.push((
                    "isv.TEMPLATE_PARAMS_ILLEGAL",
                    200,
                    format!("{} variables", object.len()),
                ));
            }
        }
        _ => problems.push((
            "isv.INVALID_JSON_PARAM",
            200,
            "TemplateParam is not a JSON object".to_owned(),
        )),
    }
    // Not required by Aliyun, but smsauth always correlates a send with its audit row.
    if param("OutId").is_none_or(str::is_empty) {
        problems.push(("InvalidParameter", 400, "no OutId".to_owned()));
    }

    received.problems = problems;
    received
}

/// The settings that point the app at this fake.
pub fn settings(fake: &FakeAliyun) -> Vec<(&'static str, String)> {
    vec![
        ("ALIYUN_ACCESS_KEY_ID", ACCESS_KEY_ID.to_owned()),
        ("ALIYUN_ACCESS_KEY_SECRET", ACCESS_KEY_SECRET.to_owned()),
        ("ALIYUN_SMS_SIGN_NAME", SIGN_NAME.to_owned()),
        ("ALIYUN_SMS_TEMPLATE_CODE", TEMPLATE_CODE.to_owned()),
        ("ALIYUN_SMS_CODE_PARAM", CODE_PARAM.to_owned()),
        ("ALIYUN_SMS_ENDPOINT", fake.endpoint.clone()),
    ]
}
