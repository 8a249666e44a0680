//! Counts and times every operation (a root field of `Query` or `Mutation`)
//! with its outcome: `ok` or the error code it answered. Field names come
//! from the schema (a document naming another field fails validation), and
//! codes from the contract's catalogue, so no document can create a series.

use std::sync::Arc;
use std::time::Instant;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextResolve, ResolveInfo,
};
use async_graphql::{ServerError, ServerResult, Value};

use crate::error::{AppError, INTERNAL_SERVER_ERROR};
use crate::state::AppState;

pub struct OperationMetrics;

impl ExtensionFactory for OperationMetrics {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(OperationMetricsExtension)
    }
}

struct OperationMetricsExtension;

/// The contract's code of a field error (anything unknown is internal).
fn outcome(error: &ServerError) -> &'static str {
    let code = error.extensions.as_ref().and_then(|e| match e.get("code") {
        Some(Value::String(code)) => Some(code.as_str()),
        _ => None,
    });
    code.and_then(|code| AppError::CODES.iter().copied().find(|known| *known == code))
        .unwrap_or(INTERNAL_SERVER_ERROR)
}

#[async_trait::async_trait]
impl Extension for OperationMetricsExtension {
    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        let is_operation = info.path_node.parent.is_none()
            && !info.is_for_introspection
            && !info.name.starts_with("__");
        let state = ctx.data_opt::<Arc<AppState>>();
        let (true, Some(state)) = (is_operation, state) else {
            return next.run(ctx, info).await;
        };
        let operation = info.name;
        let started = Instant::now();
        let result = next.run(ctx, info).await;
        let outcome = result.as_ref().map_or_else(outcome, |_| "ok");
        state
            .instruments
            .operation(operation, outcome, started.elapsed());
        result
    }
}
