//! `HTTP_REQUEST_TIMEOUT_SECS`: a request still running when it passes is
//! dropped and answered `503` with a GraphQL error, `SERVICE_UNAVAILABLE`,
//! in the client's language, so that Apollo Client and urql read
//! `extensions.code` rather than a bare network error.

use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::Response;

use super::graphql::timed_out;

pub async fn limit_time(timeout: Duration, request: Request, next: Next) -> Response {
    // Only what the answer depends on; the request itself is moved on.
    let mut answer_headers = HeaderMap::new();
    for name in [header::ACCEPT, header::ACCEPT_LANGUAGE] {
        for value in request.headers().get_all(&name) {
            answer_headers.append(name.clone(), value.clone());
        }
    }
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => timed_out(&answer_headers, timeout),
    }
}
