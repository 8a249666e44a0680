//! What the fake SMS providers share: the behaviour a test switches them to,
//! the log of what they received, the socket they listen on, and a proxy's
//! HTML error page (the same whoever is behind the proxy).

use std::fmt::Debug;
use std::sync::Mutex;

use axum::http::StatusCode;
use axum::http::header::{CONNECTION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;

/// The behaviour of the next requests (`B`) and every request received (`R`).
pub struct Calls<B, R> {
    behaviour: Mutex<B>,
    received: Mutex<Vec<R>>,
}

impl<B: Clone, R: Clone + Debug> Calls<B, R> {
    pub fn new(behaviour: B) -> Self {
        Self {
            behaviour: Mutex::new(behaviour),
            received: Mutex::new(Vec::new()),
        }
    }

    /// From now on, requests that pass the checks get this.
    pub fn set(&self, behaviour: B) {
        *self.behaviour.lock().unwrap() = behaviour;
    }

    pub fn behaviour(&self) -> B {
        self.behaviour.lock().unwrap().clone()
    }

    pub fn record(&self, received: R) {
        self.received.lock().unwrap().push(received);
    }

    pub fn requests(&self) -> Vec<R> {
        self.received.lock().unwrap().clone()
    }

    /// The only request received so far.
    pub fn single_request(&self) -> R {
        let requests = self.requests();
        assert_eq!(
            requests.len(),
            1,
            "expected exactly one request: {requests:#?}"
        );
        requests.into_iter().next().unwrap()
    }
}

/// A listener on a free port of 127.0.0.1 and its `http://` address, the
/// value for the provider's `*_SMS_ENDPOINT`.
pub async fn listen(what: &str) -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind the fake {what}: {e}"));
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    (listener, endpoint)
}

/// A proxy's answer in front of the provider: `status` and an HTML page
/// carrying the fake's message marker.
pub fn proxy_page(status: u16, marker: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        [(CONNECTION, "close"), (CONTENT_TYPE, "text/html")],
        format!(
            "<html><body><h1>{}</h1>{marker}</body></html>",
            StatusCode::from_u16(status).unwrap()
        ),
    )
        .into_response()
}
