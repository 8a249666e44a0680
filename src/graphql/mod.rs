//! The GraphQL API of the contract (§2): schema, resolvers, loaders, guards
//! and the single mapping from `AppError` to GraphQL errors. The transport
//! (`http`) only adds per-request data and runs it.

mod context;
mod document_cache;
mod document_rules;
mod errors;
mod guards;
mod loaders;
mod mutation;
mod null_propagation;
mod operation_metrics;
mod query;
mod query_cost;
mod request_policy;
mod types;

use std::sync::Arc;

use async_graphql::extensions::apollo_persisted_queries::{
    ApolloPersistedQueries, LruCacheStorage,
};
use async_graphql::{EmptySubscription, SDLExportOptions, Schema};

pub use context::{BearerToken, GetRequest};
pub use errors::localize;
pub use loaders::new_user_loader;
use mutation::Mutation;
use query::Query;

use crate::config::GraphqlConfig;
use crate::state::AppState;

pub type AppSchema = Schema<Query, Mutation, EmptySubscription>;

/// Builds the schema with the configured limits and the shared state.
pub fn build_schema(state: Arc<AppState>, limits: &GraphqlConfig) -> AppSchema {
    let mut builder = Schema::build(Query, Mutation, EmptySubscription)
        .extension(request_policy::RequestPolicy::new(
            query_cost::QueryLimits {
                max_depth: limits.max_depth,
                max_complexity: limits.max_complexity,
            },
        ))
        .extension(ApolloPersistedQueries::new(LruCacheStorage::new(1024)))
        .extension(operation_metrics::OperationMetrics)
        .data(state);
    if !limits.introspection {
        builder = builder.disable_introspection();
    }
    builder.finish()
}

/// The SDL of the schema, sorted so that `schema.graphql` diffs stay readable.
pub fn sdl() -> String {
    Schema::build(Query, Mutation, EmptySubscription)
        .finish()
        .sdl_with_options(SDLExportOptions::new().sorted_fields())
}
