//! The request policy, applied to every document before it runs: the depth
//! and complexity limits, GET is read-only (a document carrying a mutation is
//! refused, also when it arrives as an automatic persisted query), and
//! request-level errors get the contract's codes (Apollo's names).

use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextPrepareRequest,
    NextValidation,
};
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationType};
use async_graphql::{Request, ServerError, ServerResult, ValidationResult, Variables};

use super::context::GetRequest;
use super::limits::QueryLimits;

/// The error a mutation sent over GET gets; the transport answers it with 405.
pub const MUTATION_OVER_GET: &str = "mutations are not allowed over GET: use POST";

pub struct RequestPolicy {
    pub limits: QueryLimits,
}

impl ExtensionFactory for RequestPolicy {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(RequestPolicyExtension {
            limits: self.limits,
        })
    }
}

struct RequestPolicyExtension {
    limits: QueryLimits,
}

/// Sets `extensions.code` on an error that has none yet.
fn with_code(mut error: ServerError, code: &str) -> ServerError {
    let extensions = error.extensions.get_or_insert_with(Default::default);
    if extensions.get("code").is_none() {
        extensions.set("code", code);
    }
    error
}

/// The `extensions.code` of a response error, if any.
pub fn error_code(error: &ServerError) -> Option<String> {
    match error.extensions.as_ref()?.get("code")? {
        async_graphql::Value::String(code) => Some(code.clone()),
        _ => None,
    }
}

fn has_mutation(document: &ExecutableDocument) -> bool {
    match &document.operations {
        DocumentOperations::Single(op) => op.node.ty == OperationType::Mutation,
        DocumentOperations::Multiple(ops) => {
            ops.values().any(|op| op.node.ty == OperationType::Mutation)
        }
    }
}

#[async_trait::async_trait]
impl Extension for RequestPolicyExtension {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        // Before anything parses it: the parser is recursive.
        if let Err(message) = QueryLimits::check_nesting(&request.query) {
            return Err(with_code(
                ServerError::new(message, None),
                "GRAPHQL_PARSE_FAILED",
            ));
        }
        let mut request = next.run(ctx, request).await.map_err(|error| {
            let code = if error.message == "PersistedQueryNotFound" {
                "PERSISTED_QUERY_NOT_FOUND"
            } else {
                "BAD_REQUEST"
            };
            with_code(error, code)
        })?;
        // The limits, on the document itself (also one that came from the
        // persisted-query cache), before async-graphql's own checks: those
        // expand fragment spreads without bound, ours stops early.
        let limits = self.limits;
        let document = request
            .parsed_query()
            .map_err(|error| with_code(error, "GRAPHQL_PARSE_FAILED"))?;
        if let Err(message) = limits.check(document) {
            return Err(with_code(
                ServerError::new(message, None),
                "GRAPHQL_VALIDATION_FAILED",
            ));
        }
        Ok(request)
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next
            .run(ctx, query, variables)
            .await
            .map_err(|error| with_code(error, "GRAPHQL_PARSE_FAILED"))?;
        if ctx.data_opt::<GetRequest>().is_some() && has_mutation(&document) {
            return Err(with_code(
                ServerError::new(MUTATION_OVER_GET, None),
                "BAD_REQUEST",
            ));
        }
        Ok(document)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx).await.map_err(|errors| {
            errors
                .into_iter()
                .map(|error| with_code(error, "GRAPHQL_VALIDATION_FAILED"))
                .collect()
        })
    }
}
