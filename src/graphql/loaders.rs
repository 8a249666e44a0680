//! `UserLoader`: users by id, batched into one SELECT per tick and cached for
//! the request, so `me`, `user(id)` and the viewer check cost one query.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::Context;
use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use sea_orm::DatabaseConnection;

use super::context::Bearer;
use crate::db;
use crate::db::users::UserRow;
use crate::domain::UserId;
use crate::error::{AppError, AppResult};

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
                unavailable: error.code() == "SERVICE_UNAVAILABLE",
                detail: format!("{error:?}").into(),
            })
    }
}

pub type UserDataLoader = DataLoader<UserLoader, HashMapCache>;

/// A fresh loader for one request.
pub fn new_user_loader(db: DatabaseConnection) -> UserDataLoader {
    DataLoader::with_cache(UserLoader { db }, tokio::spawn, HashMapCache::default())
}

pub async fn load_user(ctx: &Context<'_>, id: UserId) -> AppResult<Option<UserRow>> {
    let loader = ctx
        .data::<UserDataLoader>()
        .map_err(|_| AppError::internal(anyhow::anyhow!("UserDataLoader missing")))?;
    Ok(loader.load_one(id).await?)
}

/// The signed-in user: a verified token whose user exists, is active, and has
/// not reset their password since the token was issued. Else `UNAUTHENTICATED`.
pub async fn viewer(ctx: &Context<'_>) -> AppResult<UserRow> {
    let Some(Bearer::Valid(claims)) = ctx.data_opt::<Bearer>() else {
        return Err(AppError::Unauthenticated);
    };
    let id = claims.user_id().ok_or(AppError::Unauthenticated)?;
    match load_user(ctx, id).await? {
        Some(user) if user.is_active && user.token_version == claims.ver => Ok(user),
        _ => Err(AppError::Unauthenticated),
    }
}
