//! The request policy, applied to every document before it runs: the depth
//! and complexity limits, the rules of `document_rules`, GET is read-only (a document carrying a mutation is
//! refused, also when it arrives as an automatic persisted query),
//! request-level errors get the contract's codes (Apollo's names), and field
//! errors null their parents as the specification says (`null_propagation`).

use std::sync::{Arc, Mutex};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextPrepareRequest,
    NextValidation,
};
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationType};
use async_graphql::{Request, Response, ServerError, ServerResult, ValidationResult, Variables};

use super::context::GetRequest;
use super::document_rules;
use super::null_propagation::propagate_nulls;
use super::query_cost::QueryLimits;
use crate::error::RequestError;
use crate::messages::RequestProblem;

pub struct RequestPolicy {
    pub limits: QueryLimits,
}

impl ExtensionFactory for RequestPolicy {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(RequestPolicyExtension {
            limits: self.limits,
            document: Mutex::new(None),
        })
    }
}

/// One per request.
struct RequestPolicyExtension {
    limits: QueryLimits,
    /// The document being executed, kept for shaping its response.
    document: Mutex<Option<ExecutableDocument>>,
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
        if let Err(problem) = QueryLimits::check_nesting(&request.query) {
            return Err(RequestError::ParseFailed.error(problem));
        }
        let mut request = next.run(ctx, request).await.map_err(|error| {
            // async-graphql's persisted-query extension names this error by
            // its message only; a query it registers may fail to parse.
            if error.message == "PersistedQueryNotFound" {
                RequestError::PersistedQueryNotFound.tag(error)
            } else if !error.locations.is_empty() {
                RequestError::parse_failed(error)
            } else {
                RequestError::BadRequest.tag(error)
            }
        })?;
        // The limits, on the document itself (also one that came from the
        // persisted-query cache), before async-graphql's own checks: those
        // expand fragment spreads without bound, ours stops early.
        let limits = self.limits;
        // The request's own data is not yet the context's here.
        let over_get = request
            .data
            .contains_key(&std::any::TypeId::of::<GetRequest>());
        let document = request.parsed_query().map_err(RequestError::parse_failed)?;
        if over_get && has_mutation(document) {
            return Err(RequestError::MutationOverGet.error(RequestProblem::MutationOverGet));
        }
        if let Err(problem) = limits.check(document) {
            return Err(RequestError::ValidationFailed.error(problem));
        }
        if let Err(problem) = document_rules::check(document, &ctx.schema_env.registry) {
            return Err(RequestError::ValidationFailed.error(problem));
        }
        if let Ok(mut kept) = self.document.lock() {
            *kept = Some(document.clone());
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
        // The document was parsed (and checked) in `prepare_request`; this
        // only names async-graphql's own post-parse errors.
        next.run(ctx, query, variables)
            .await
            .map_err(RequestError::parse_failed)
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let mut response = next.run(ctx, operation_name).await;
        if !response.errors.is_empty()
            && let Ok(kept) = self.document.lock()
            && let Some(document) = kept.as_ref()
        {
            propagate_nulls(
                &mut response,
                document,
                operation_name,
                &ctx.schema_env.registry,
            );
        }
        response
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
