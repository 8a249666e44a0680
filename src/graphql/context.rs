//! Per-request data the transport puts into each GraphQL request, and the
//! accessors resolvers use to read it.

use std::sync::Arc;

use async_graphql::Context;

use crate::error::{AppError, AppResult};
use crate::state::{AppState, RequestMeta};

/// The access token of `Authorization: Bearer …`, unchecked (`None` without
/// such a header). `service::sessions::authenticate` decides what it is worth.
pub struct BearerToken(pub Option<String>);

/// Marks a request that came over HTTP GET (queries only).
pub struct GetRequest;

pub fn app_state<'a>(ctx: &Context<'a>) -> AppResult<&'a Arc<AppState>> {
    ctx.data::<Arc<AppState>>()
        .map_err(|_| AppError::internal(anyhow::anyhow!("AppState missing from the schema")))
}

pub fn request_meta<'a>(ctx: &Context<'a>) -> AppResult<&'a RequestMeta> {
    ctx.data::<RequestMeta>()
        .map_err(|_| AppError::internal(anyhow::anyhow!("RequestMeta missing from the request")))
}
