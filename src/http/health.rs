//! Liveness, readiness and the metrics scrape, which share one dependency check.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::HttpState;
use crate::codes::StoreHealth;
use crate::state::AppState;

/// Liveness: 200 while the process runs.
pub async fn healthz() -> &'static str {
    "ok"
}

/// What the dependency check found.
pub struct Dependencies {
    pub database_up: bool,
    pub code_store: StoreHealth,
}

impl Dependencies {
    /// The dependencies not fully up (a degraded cluster counts).
    pub fn down(&self) -> Vec<&'static str> {
        let mut down = Vec::new();
        if !self.database_up {
            down.push("database");
        }
        if self.code_store != StoreHealth::Up {
            down.push("code_store");
        }
        down
    }
}

/// Asks the database and the code store, each within a second, and records
/// the answer in `smsauth_dependency_up` (a code store is up only when all
/// of it answers).
pub async fn check_dependencies(state: &AppState) -> Dependencies {
    let limit = Duration::from_secs(1);
    let (db, codes) = tokio::join!(
        tokio::time::timeout(limit, state.db.ping()),
        tokio::time::timeout(limit, state.codes.health()),
    );
    let found = Dependencies {
        database_up: matches!(db, Ok(Ok(()))),
        code_store: codes.unwrap_or(StoreHealth::Down),
    };
    state
        .instruments
        .dependency_up("database", found.database_up);
    state
        .instruments
        .dependency_up("code_store", found.code_store == StoreHealth::Up);
    found
}

/// Readiness: 200 when the database and the code store both answer within a
/// second; otherwise 503 naming what is down. A Redis Cluster that serves
/// only some of its slots keeps the instance in the balancer (200, `degraded`):
/// every instance sees the same cluster, so taking them all out would turn a
/// partial outage into a full one.
pub async fn readyz(State(state): State<HttpState>) -> (StatusCode, Json<serde_json::Value>) {
    let found = check_dependencies(&state.app).await;
    let down = found.down();
    if down.is_empty() {
        (StatusCode::OK, Json(json!({ "status": "ready" })))
    } else if found.database_up && found.code_store == StoreHealth::Degraded {
        (
            StatusCode::OK,
            Json(json!({ "status": "degraded", "down": down })),
        )
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
    check_dependencies(&state).await;
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
