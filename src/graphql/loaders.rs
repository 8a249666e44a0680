//! `UserLoader`: users by id, batched into one SELECT and cached for the
//! request, so `me`, `user(id)` and the viewer check cost one query. It is
//! only an adapter: the rules about users live in `service`.
//!
//! The batch is gathered and loaded on the request's own task (the
//! `dataloader` crate): a lookup registers its id, yields once so that the
//! other fields of the same pass register theirs, and the first to resume
//! runs one SELECT for all of them. No task is spawned and no timer is set
//! per request, which async-graphql's own loader (a spawned task behind a
//! 1 ms delay) would cost every `me`.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::Context;
use dataloader::BatchFn;
use dataloader::cached::Loader;
use sea_orm::DatabaseConnection;

use super::context::BearerToken;
use crate::db;
use crate::db::users::UserRow;
use crate::domain::UserId;
use crate::error::{AppError, AppResult};
use crate::service::sessions;
use crate::service::user_view::{UserLookup, UserView};
use crate::state::AppState;

/// What one id's lookup found; a load failure is shared by every id of the batch.
type Loaded = Result<Option<UserRow>, LoadError>;

pub struct UserBatch {
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

impl BatchFn<UserId, Loaded> for UserBatch {
    async fn load(&mut self, keys: &[UserId]) -> HashMap<UserId, Loaded> {
        match db::users::find_by_ids(&self.db, keys).await {
            Ok(rows) => {
                let mut found: HashMap<UserId, Loaded> =
                    keys.iter().map(|&id| (id, Ok(None))).collect();
                for row in rows {
                    found.insert(UserId::from(row.id), Ok(Some(row)));
                }
                found
            }
            Err(error) => {
                let error = LoadError {
                    unavailable: matches!(error, AppError::ServiceUnavailable { .. }),
                    detail: format!("{error:?}").into(),
                };
                keys.iter().map(|&id| (id, Err(error.clone()))).collect()
            }
        }
    }
}

pub type UserLoader = Loader<UserId, Loaded, UserBatch>;

/// A fresh loader for one request. One yield is enough to batch: every field
/// of a selection set is polled once before any is polled again, and each
/// registers its ids on that first poll. An `.await` before a lookup (an
/// async guard, a rate limit) would split the batch;
/// `fifty_aliased_users_cost_one_select` would catch that for `user`.
pub fn new_user_loader(db: DatabaseConnection) -> UserLoader {
    Loader::new(UserBatch { db }).with_yield_count(1)
}

/// The request's loader as the service layer's [`UserLookup`].
pub struct RequestUsers<'a>(&'a UserLoader);

impl UserLookup for RequestUsers<'_> {
    async fn find(&self, id: UserId) -> AppResult<Option<UserRow>> {
        match self.0.try_load(id).await {
            Ok(loaded) => Ok(loaded?),
            // Only if a batch was dropped half-way, i.e. its request is gone.
            Err(missing) => Err(AppError::internal(anyhow::anyhow!(
                "loading users: {missing}"
            ))),
        }
    }
}

pub fn request_users<'a>(ctx: &Context<'a>) -> AppResult<RequestUsers<'a>> {
    ctx.data::<UserLoader>()
        .map(RequestUsers)
        .map_err(|_| AppError::internal(anyhow::anyhow!("UserLoader missing")))
}

/// The signed-in user of this request (see `sessions::authenticate`).
pub async fn viewer(ctx: &Context<'_>, state: &AppState) -> AppResult<UserView> {
    let token = ctx.data_opt::<BearerToken>().and_then(|t| t.0.as_deref());
    sessions::authenticate(state, token, &request_users(ctx)?, chrono::Utc::now()).await
}
