//! Liveness, readiness and the metrics scrape, which share one dependency check.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::HttpState;
use crate::state::AppState;

/// Liveness: 200 while the process runs.
pub async fn healthz() -> &'static str {
    "ok"
}

/// Asks the database and the code store, each within a second, and records
/// the answer in `smsauth_dependency_up`. Returns what is down.
pub async fn dependencies_down(state: &AppState) -> Vec<&'static str> {
    let limit = Duration::from_secs(1);
    let (db, codes) = tokio::join!(
        tokio::time::timeout(limit, state.db.ping()),
        tokio::time::timeout(limit, state.codes.ping()),
    );
    let mut down = Vec::new();
    for (dependency, up) in [
        ("database", matches!(db, Ok(Ok(())))),
        ("code_store", matches!(codes, Ok(Ok(())))),
    ] {
        state.instruments.dependency_up(dependency, up);
        if !up {
            down.push(dependency);
        }
    }
    down
}

/// Readiness: 200 when the database and the code store both answer within a
/// second; otherwise 503 naming what is down.
pub async fn readyz(State(state): State<HttpState>) -> (StatusCode, Json<serde_json::Value>) {
    let down = dependencies_down(&state.app).await;
    if down.is_empty() {
        (StatusCode::OK, Json(json!({ "status": "ready" })))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "down": down })),
        )
    }
}

/// `GET /metrics` on the metrics listener: dependencies checked now, then
/// every series in the Prometheus text format.
pub async fn metrics(State(state): State<std::sync::Arc<AppState>>) -> Response {
    dependencies_down(&state).await;
    match state.instruments.render() {
        Some(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
