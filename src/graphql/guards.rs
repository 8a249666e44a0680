//! Field guards. Authentication itself is checked in the resolvers (see
//! `query.rs`), where loading the viewer can share a batch with the data.

use async_graphql::{Context, Guard, Result};

use crate::error::AppError;

/// Owner-only fields (`User.mobile`, `User.email`): `FORBIDDEN` for anyone
/// but the user themself.
pub struct OwnerOnly(pub bool);

impl Guard for OwnerOnly {
    async fn check(&self, _ctx: &Context<'_>) -> Result<()> {
        if self.0 {
            Ok(())
        } else {
            Err(AppError::Forbidden.into())
        }
    }
}
