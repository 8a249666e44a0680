use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::json;

use super::HttpState;

/// Liveness: 200 while the process runs.
pub async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: 200 when the database and the code store both answer within a
/// second; otherwise 503 naming what is down.
pub async fn readyz(State(state): State<HttpState>) -> (StatusCode, Json<serde_json::Value>) {
    let limit = Duration::from_secs(1);
    let (db, codes) = tokio::join!(
        tokio::time::timeout(limit, state.app.db.ping()),
        tokio::time::timeout(limit, state.app.codes.ping()),
    );
    let mut down = Vec::new();
    if !matches!(db, Ok(Ok(()))) {
        down.push("database");
    }
    if !matches!(codes, Ok(Ok(()))) {
        down.push("code_store");
    }
    if down.is_empty() {
        (StatusCode::OK, Json(json!({ "status": "ready" })))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "down": down })),
        )
    }
}
