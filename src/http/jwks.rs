//! `GET /.well-known/jwks.json`: the public keys access tokens are signed
//! with (RFC 7517), for other services to verify them without any secret.
//! The document is fixed for the life of the process, so it is built once.

use axum::body::Bytes;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};

use super::HttpState;
use crate::auth::JwtKeys;

/// How long verifiers may cache the document. Key rotation waits this long
/// between publishing a new key and signing with it (see the README).
pub const JWKS_MAX_AGE_SECS: u64 = 300;

pub fn route(jwt: &JwtKeys) -> MethodRouter<HttpState> {
    let document = serde_json::to_vec(&jwt.jwks())
        .map(Bytes::from)
        .map_err(|e| tracing::error!(error = %e, "cannot serialise the JWKS"))
        .ok();
    get(move || {
        let document = document.clone();
        async move { respond(document) }
    })
}

fn respond(document: Option<Bytes>) -> Response {
    let Some(document) = document else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    (
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (
                header::CACHE_CONTROL,
                format!("public, max-age={JWKS_MAX_AGE_SECS}"),
            ),
        ],
        document,
    )
        .into_response()
}
