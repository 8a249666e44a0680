//! Queries (contract §2). Each resolver parses its arguments into domain
//! types first, then calls the service or loader.

use async_graphql::{Context, ID, Object, Result};

use super::context::{app_state, request_meta};
use super::loaders::{load_user, viewer};
use super::types::User;
use crate::db;
use crate::domain::{Mobile, UserId};
use crate::limits::LimitedAction;
use crate::service::limits::hit;

pub struct Query;

#[Object]
impl Query {
    /// Whether a user is registered with this mobile (any accepted written form).
    async fn mobile_exists(&self, ctx: &Context<'_>, mobile: String) -> Result<bool> {
        let state = app_state(ctx)?;
        let mobile = Mobile::parse(&mobile, state.config.sms.default_region)?;
        let ip = request_meta(ctx)?.client_ip.to_string();
        hit(
            state,
            LimitedAction::MobileExistsPerIp,
            &ip,
            state.config.limits.mobile_exists_per_ip,
        )
        .await?;
        Ok(db::users::mobile_exists(&state.db, &mobile).await?)
    }

    /// The signed-in user. Needs a valid access token.
    async fn me(&self, ctx: &Context<'_>) -> Result<User> {
        Ok(User::owner(viewer(ctx).await?))
    }

    /// A user by id (`null` if there is none). Needs a valid access token.
    async fn user(&self, ctx: &Context<'_>, id: ID) -> Result<Option<User>> {
        let id = UserId::parse(&id)?;
        // Both loads join one batch: the viewer check costs no extra query.
        let (viewer, user) = futures::try_join!(viewer(ctx), load_user(ctx, id))?;
        Ok(user
            .filter(|user| user.is_active)
            .map(|user| User::seen_by(user, Some(viewer.id))))
    }
}
