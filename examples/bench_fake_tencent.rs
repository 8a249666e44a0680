//! A fast stand-in for Tencent Cloud SMS, for the benchmark (`bench/run.sh`):
//! answers every SendSms with success and appends `mobile code` to a file, so
//! the harness can use the codes that were "delivered".
//!
//! Run: `cargo run --release --example bench_fake_tencent -- 127.0.0.1:18090 /tmp/codes.txt`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use serde_json::{Value, json};

type Codes = Arc<Mutex<std::io::BufWriter<std::fs::File>>>;

async fn send_sms(State(codes): State<Codes>, body: Bytes) -> axum::Json<Value> {
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mobile = request["PhoneNumberSet"][0]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let code = request["TemplateParamSet"][0].as_str().unwrap_or_default();
    {
        let mut file = codes.lock().unwrap();
        writeln!(file, "{mobile} {code}").unwrap();
        file.flush().unwrap();
    }
    axum::Json(json!({ "Response": {
        "SendStatusSet": [{
            "SerialNo": "2433:bench", "PhoneNumber": mobile, "Fee": 1,
            "SessionContext": request["SessionContext"], "Code": "Ok",
            "Message": "send success", "IsoCode": "CN"
        }],
        "RequestId": "bench"
    }}))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:18090".to_owned());
    let path = args.next().unwrap_or_else(|| "codes.txt".to_owned());
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap();
    let codes: Codes = Arc::new(Mutex::new(std::io::BufWriter::new(file)));
    let app = Router::new().route("/", post(send_sms)).with_state(codes);
    let listener = tokio::net::TcpListener::bind(&addr).await.unwrap();
    axum::serve(listener, app).await.unwrap();
}
