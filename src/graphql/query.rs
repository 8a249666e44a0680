//! Queries (contract §2). Each resolver parses its arguments into domain
//! types, then calls one service function.

use async_graphql::{Context, ID, Object, Result};

use super::context::{app_state, request_meta};
use super::loaders::{request_users, viewer};
use super::types::User;
use crate::domain::{Mobile, UserId};
use crate::service::{accounts, user_view};

pub struct Query;

#[Object]
impl Query {
    /// Whether a user is registered with this mobile (any accepted written form).
    async fn mobile_exists(&self, ctx: &Context<'_>, mobile: String) -> Result<bool> {
        let state = app_state(ctx)?;
        let mobile = Mobile::parse(&mobile, state.config.sms.default_region)?;
        Ok(accounts::mobile_exists(state, request_meta(ctx)?, &mobile).await?)
    }

    /// The signed-in user. Needs a valid access token.
    async fn me(&self, ctx: &Context<'_>) -> Result<User> {
        Ok(User::owner(viewer(ctx, app_state(ctx)?).await?))
    }

    /// A user by id (`null` if there is none). Needs a valid access token.
    async fn user(&self, ctx: &Context<'_>, id: ID) -> Result<Option<User>> {
        let state = app_state(ctx)?;
        let id = UserId::parse(&id)?;
        let users = request_users(ctx)?;
        // Both loads join one batch: the viewer check costs no extra query.
        let (viewer, user) =
            futures::try_join!(viewer(ctx, state), user_view::visible_user(&users, id))?;
        Ok(user.map(|user| User::seen_by(user, viewer.id)))
    }
}
