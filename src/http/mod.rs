//! The HTTP transport (contract §1): routes, middleware and shutdown.

/// Reads request bodies up to `HTTP_BODY_LIMIT_BYTES`, with a 413 the client can read.
mod body_limit;
/// Finds the client IP that every per-IP limit applies to.
pub mod client_ip;
/// The GraphiQL page and its embedded assets: no CDN.
mod graphiql;
/// `POST/GET /graphql`: per-request data around the schema.
mod graphql;
/// `/healthz`, `/readyz` and `/metrics`.
mod health;
/// `HTTP_REQUEST_TIMEOUT_SECS`, answered with a GraphQL error.
mod request_timeout;
/// The accept loop and HTTP/1.1 connections, with a header-read timeout.
mod serve;

pub use serve::{HEADER_READ_TIMEOUT, serve};
/// `/.well-known/jwks.json`: the public keys of access tokens.
pub mod jwks;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::routing::get;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::graphql::AppSchema;
use crate::state::AppState;

/// What the handlers share.
#[derive(Clone)]
pub struct HttpState {
    pub app: Arc<AppState>,
    pub schema: AppSchema,
}

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn router(state: HttpState) -> Router {
    let http = &state.app.config.http;
    let request_id = REQUEST_ID.clone();
    let body_limit = http.body_limit_bytes;
    let request_timeout = http.request_timeout;
    let trace = TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
        let id = request
            .headers()
            .get(&REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id = %id)
    });
    Router::new()
        .route(
            "/graphql",
            get(graphql::get)
                .post(graphql::post)
                .fallback(method_not_allowed),
        )
        .route(graphiql::ASSETS_ROUTE, get(graphiql::asset))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/.well-known/jwks.json", jwks::route(&state.app.jwt))
        .layer(axum::middleware::from_fn(move |request, next| {
            body_limit::buffer_body(body_limit, request, next)
        }))
        .layer(DefaultBodyLimit::max(http.body_limit_bytes))
        .layer(axum::middleware::from_fn(move |request, next| {
            request_timeout::limit_time(request_timeout, request, next)
        }))
        // Outside the timeout and the body limit, so their answers are readable too.
        .layer(cors(http.cors_allowed_origins.as_deref()))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(trace)
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

/// Browsers may call `/graphql` from the configured origins only (`None`:
/// every origin, `CORS_ALLOWED_ORIGINS=*`). Tokens travel in headers, so no
/// credentials (cookies) are allowed, and the allowed request headers are
/// named: a `*` would never cover `authorization`. Browsers may read
/// `x-request-id`, to quote it in a bug report.
fn cors(origins: Option<&[String]>) -> CorsLayer {
    let allow_origin = match origins {
        None => AllowOrigin::any(),
        Some(origins) => AllowOrigin::list(
            origins
                .iter()
                .filter_map(|origin| HeaderValue::from_str(origin).ok()),
        ),
    };
    CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT])
        .expose_headers([REQUEST_ID.clone()])
        .max_age(std::time::Duration::from_secs(600))
}

/// The metrics listener's routes: `GET /metrics` only. Never on the public
/// listener, which answers 404 there.
pub fn metrics_router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/metrics", get(health::metrics))
        .with_state(state)
}

/// PUT, DELETE, PATCH, ... on `/graphql`: 405 naming the methods that work,
/// with a JSON error a GraphQL client can show.
async fn method_not_allowed(headers: HeaderMap) -> axum::response::Response {
    let mut response = graphql::bad_request(
        &headers,
        StatusCode::METHOD_NOT_ALLOWED,
        crate::messages::RequestProblem::MethodNotAllowed,
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
    response
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
