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
use super::query_cost::QueryLimits;
use crate::error::RequestError;

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
            return Err(RequestError::ParseFailed.error(message));
        }
        let mut request = next.run(ctx, request).await.map_err(|error| {
            // async-graphql's persisted-query extension names this error by its message only.
            let kind = if error.message == "PersistedQueryNotFound" {
                RequestError::PersistedQueryNotFound
            } else {
                RequestError::BadRequest
            };
            kind.tag(error)
        })?;
        // The limits, on the document itself (also one that came from the
        // persisted-query cache), before async-graphql's own checks: those
        // expand fragment spreads without bound, ours stops early.
        let limits = self.limits;
        let document = request
            .parsed_query()
            .map_err(|error| RequestError::ParseFailed.tag(error))?;
        if let Err(message) = limits.check(document) {
            return Err(RequestError::ValidationFailed.error(message));
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
            .map_err(|error| RequestError::ParseFailed.tag(error))?;
        if ctx.data_opt::<GetRequest>().is_some() && has_mutation(&document) {
            return Err(
                RequestError::MutationOverGet.error("mutations are not allowed over GET: use POST")
            );
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
                .map(|error| RequestError::ValidationFailed.tag(error))
                .collect()
        })
    }
}
