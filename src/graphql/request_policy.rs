//! The request policy, applied to every document before it runs: the depth
//! and complexity limits, the rules of `document_rules`, GET is read-only (a document carrying a mutation is
//! refused, also when it arrives as an automatic persisted query),
//! request-level errors get the contract's codes (Apollo's names), and field
//! errors null their parents as the specification says (`null_propagation`).
//! A document that passed is kept by its text (`document_cache`): the same
//! query again is neither parsed nor walked again.

use std::sync::{Arc, Mutex};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextPrepareRequest,
    NextValidation,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Request, Response, ServerError, ServerResult, ValidationResult, Variables};

use super::context::GetRequest;
use super::document_cache::{Checked, DocumentCache};
use super::document_rules;
use super::null_propagation::propagate_nulls;
use super::query_cost::QueryLimits;
use crate::error::RequestError;
use crate::messages::RequestProblem;

pub struct RequestPolicy {
    limits: QueryLimits,
    /// Shared by every request of the schema.
    documents: Arc<DocumentCache>,
}

impl RequestPolicy {
    pub fn new(limits: QueryLimits) -> Self {
        Self {
            limits,
            documents: Arc::default(),
        }
    }
}

impl ExtensionFactory for RequestPolicy {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(RequestPolicyExtension {
            limits: self.limits,
            documents: self.documents.clone(),
            document: Mutex::new(None),
        })
    }
}

/// One per request.
struct RequestPolicyExtension {
    limits: QueryLimits,
    documents: Arc<DocumentCache>,
    /// The document being executed, kept for shaping its response.
    document: Mutex<Option<Arc<Checked>>>,
}

/// Refuses a mutation that came over GET.
fn refuse_mutation_over_get(over_get: bool, checked: &Checked) -> ServerResult<()> {
    if over_get && checked.has_mutation {
        return Err(RequestError::MutationOverGet.error(RequestProblem::MutationOverGet));
    }
    Ok(())
}

impl RequestPolicyExtension {
    /// Parses and checks a document the cache does not hold, and keeps it
    /// when it passes.
    fn check(
        &self,
        ctx: &ExtensionContext<'_>,
        request: &mut Request,
        over_get: bool,
    ) -> ServerResult<Arc<Checked>> {
        let document = request.parsed_query().map_err(RequestError::parse_failed)?;
        let checked = Checked::new(document.clone());
        refuse_mutation_over_get(over_get, &checked)?;
        if let Err(problem) = self.limits.check(&checked.document) {
            return Err(RequestError::ValidationFailed.error(problem));
        }
        if let Err(problem) = document_rules::check(&checked.document, &ctx.schema_env.registry) {
            return Err(RequestError::ValidationFailed.error(problem));
        }
        let checked = Arc::new(checked);
        self.documents.insert(&request.query, checked.clone());
        Ok(checked)
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
        // The request's own data is not yet the context's here.
        let over_get = request
            .data
            .contains_key(&std::any::TypeId::of::<GetRequest>());
        let checked = match self.documents.get(&request.query) {
            Some(checked) => {
                refuse_mutation_over_get(over_get, &checked)?;
                request.set_parsed_query(checked.document.clone());
                checked
            }
            None => self.check(ctx, &mut request, over_get)?,
        };
        if let Ok(mut kept) = self.document.lock() {
            *kept = Some(checked);
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
            && let Some(checked) = kept.as_ref()
        {
            propagate_nulls(
                &mut response,
                &checked.document,
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
