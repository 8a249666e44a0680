//! `HTTP_BODY_LIMIT_BYTES` with an answer the client can read (contract
//! §3.1). A server that answers 413 and closes while the client is still
//! sending makes the client's kernel see a reset: it reports EPIPE or
//! ECONNRESET and never reads the 413. So the body is read here, before any
//! handler; past the limit the rest is read and dropped, up to
//! [`DRAIN_BYTES`] in all, and only then does the 413 go out. The request
//! timeout bounds how long a slow sender can keep us draining.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use futures::StreamExt as _;

use super::graphql::bad_request;
use crate::messages::RequestProblem;

/// How much of an oversized body is read and dropped before giving up on
/// the connection.
pub const DRAIN_BYTES: usize = 4 * 1024 * 1024;

/// Buffers the body of `request` (at most `limit` bytes) for the handlers.
pub async fn buffer_body(limit: usize, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    if announces_too_much(&parts.headers, limit) && expects_continue(&parts.headers) {
        // The client waits for our go-ahead before sending: it need not send at all.
        return too_large(&parts.headers);
    }
    let mut stream = body.into_data_stream();
    let mut buffered: Vec<u8> = Vec::new();
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else {
            // The client went away mid-body: nobody is left to read an answer.
            return bad_request(
                &parts.headers,
                StatusCode::BAD_REQUEST,
                RequestProblem::BodyCutOff,
            );
        };
        if buffered.len() + chunk.len() > limit {
            let mut read = buffered.len() + chunk.len();
            drop(buffered);
            while read < DRAIN_BYTES {
                match stream.next().await {
                    Some(Ok(chunk)) => read += chunk.len(),
                    Some(Err(_)) | None => break,
                }
            }
            return too_large(&parts.headers);
        }
        buffered.extend_from_slice(&chunk);
    }
    next.run(Request::from_parts(parts, Body::from(buffered)))
        .await
}

fn too_large(headers: &HeaderMap) -> Response {
    bad_request(
        headers,
        StatusCode::PAYLOAD_TOO_LARGE,
        RequestProblem::BodyTooLarge,
    )
}

fn announces_too_much(headers: &HeaderMap, limit: usize) -> bool {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|length| length > limit as u64)
}

fn expects_continue(headers: &HeaderMap) -> bool {
    headers
        .get(header::EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
}
