//! Counts and times every operation (a root field of `Query` or `Mutation`)
//! with its outcome: `ok`, or the code of the first error under it (its own,
//! or a field's below, such as `FORBIDDEN` on another user's `mobile`).
//! Field names come from the schema (a document naming another field fails
//! validation), and codes from the contract's catalogue, so no document can
//! create a series.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextResolve, ResolveInfo,
};
use async_graphql::{PathSegment, Response, ServerError, ServerResult, Value};

use crate::error::{AppError, INTERNAL_SERVER_ERROR};
use crate::state::AppState;

pub struct OperationMetrics;

impl ExtensionFactory for OperationMetrics {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(OperationMetricsExtension::default())
    }
}

/// One per request: the root fields resolved, kept until the response is known.
#[derive(Default)]
struct OperationMetricsExtension {
    resolved: Mutex<Vec<Resolved>>,
}

struct Resolved {
    /// The response key (alias or name), to find the errors under it.
    key: String,
    operation: String,
    took: Duration,
}

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
        if !is_operation {
            return next.run(ctx, info).await;
        }
        let resolved = Resolved {
            key: info.alias.unwrap_or(info.name).to_owned(),
            operation: info.name.to_owned(),
            took: Duration::ZERO,
        };
        let started = Instant::now();
        let result = next.run(ctx, info).await;
        if let Ok(mut all) = self.resolved.lock() {
            all.push(Resolved {
                took: started.elapsed(),
                ..resolved
            });
        }
        result
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let response = next.run(ctx, operation_name).await;
        let resolved = self
            .resolved
            .lock()
            .map(|mut all| std::mem::take(&mut *all))
            .unwrap_or_default();
        if let Some(state) = ctx.data_opt::<Arc<AppState>>() {
            for field in resolved {
                let first_error = response.errors.iter().find(|error| {
                    matches!(error.path.first(), Some(PathSegment::Field(key)) if *key == field.key)
                });
                let outcome = first_error.map_or("ok", outcome);
                state
                    .instruments
                    .operation(&field.operation, outcome, field.took);
            }
        }
        response
    }
}
