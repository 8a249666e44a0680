//! `UserLoader`: users by id, batched into one SELECT per tick and cached for
//! the request, so `me`, `user(id)` and the viewer check cost one query. It is
//! only an adapter: the rules about users live in `service`.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::Context;
use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use sea_orm::DatabaseConnection;

use super::context::BearerToken;
use crate::db;
use crate::db::users::UserRow;
use crate::domain::UserId;
use crate::error::{AppError, AppResult};
use crate::service::sessions;
use crate::service::user_view::{UserLookup, UserView};
use crate::state::AppState;

pub struct UserLoader {
    db: DatabaseConnection,
}

/// A load failure, shared by every field that waited on the batch.
#[derive(Clone)]
pub struct LoadError {
    unavailable: bool,
    detail: Arc<str>,
}

impl From<LoadError> for AppError {
    fn from(error: LoadError) -> Self {
        let cause = anyhow::anyhow!("loading users: {}", error.detail);
        if error.unavailable {
            AppError::unavailable("database", cause)
        } else {
            AppError::internal(cause)
        }
    }
}

impl Loader<UserId> for UserLoader {
    type Value = UserRow;
    type Error = LoadError;

    async fn load(&self, keys: &[UserId]) -> Result<HashMap<UserId, UserRow>, LoadError> {
        db::users::find_by_ids(&self.db, keys)
            .await
            .map(|rows| {
                rows.into_iter()
                    .map(|row| (UserId::from(row.id), row))
                    .collect()
            })
            .map_err(|error| LoadError {
                unavailable: matches!(error, AppError::ServiceUnavailable { .. }),
                detail: format!("{error:?}").into(),
            })
    }
}

pub type UserDataLoader = DataLoader<UserLoader, HashMapCache>;

/// A fresh loader for one request. Its batching delay (1 ms) runs on
/// tokio's timer (async-graphql's `tokio-timer`), not on a timer thread of
/// its own that would wake the request across threads.
pub fn new_user_loader(db: DatabaseConnection) -> UserDataLoader {
    DataLoader::with_cache(UserLoader { db }, tokio::spawn, HashMapCache::default())
}

/// The request's loader as the service layer's [`UserLookup`].
pub struct RequestUsers<'a>(&'a UserDataLoader);

impl UserLookup for RequestUsers<'_> {
    async fn find(&self, id: UserId) -> AppResult<Option<UserRow>> {
        Ok(self.0.load_one(id).await?)
    }
}

pub fn request_users<'a>(ctx: &Context<'a>) -> AppResult<RequestUsers<'a>> {
    ctx.data::<UserDataLoader>()
        .map(RequestUsers)
        .map_err(|_| AppError::internal(anyhow::anyhow!("UserDataLoader missing")))
}

/// The signed-in user of this request (see `sessions::authenticate`).
pub async fn viewer(ctx: &Context<'_>, state: &AppState) -> AppResult<UserView> {
    let token = ctx.data_opt::<BearerToken>().and_then(|t| t.0.as_deref());
    sessions::authenticate(state, token, &request_users(ctx)?, chrono::Utc::now()).await
}
