//! Per-request data the transport puts into each GraphQL request, and the
//! accessors resolvers use to read it.

use std::sync::Arc;

use async_graphql::Context;

use crate::auth::AccessClaims;
use crate::error::{AppError, AppResult};
use crate::state::{AppState, RequestMeta};

/// What the `Authorization` header held.
pub enum Bearer {
    /// No header.
    Missing,
    /// A header whose token did not verify (malformed, forged, expired).
    Invalid,
    /// A token with a valid signature and lifetime; the user may still be
    /// inactive or the token revoked by a password reset.
    Valid(AccessClaims),
}

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
