//! Queries on `refresh_tokens`. Rotation is guarded by a conditional UPDATE
//! (`… WHERE used_at IS NULL AND revoked_at IS NULL`): of concurrent uses of
//! one token, only the one that changes the row wins.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, Set,
};
use uuid::Uuid;

use super::entity::refresh_tokens::{self, Column, Entity as RefreshTokens};
use crate::domain::UserId;
use crate::error::AppResult;

pub use refresh_tokens::Model as RefreshTokenRow;

pub struct NewRefreshToken<'a> {
    pub user_id: UserId,
    pub family_id: Uuid,
    pub token_hash: String,
    pub now: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub user_agent: Option<&'a str>,
    pub ip: Option<String>,
    pub token_version: i32,
}

#[tracing::instrument(level = "debug", name = "db.refresh_tokens.insert", skip_all)]
pub async fn insert<C: ConnectionTrait>(db: &C, new: NewRefreshToken<'_>) -> AppResult<()> {
    refresh_tokens::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(new.user_id.as_uuid()),
        family_id: Set(new.family_id),
        token_hash: Set(new.token_hash),
        created_at: Set(new.now),
        expires_at: Set(new.expires_at),
        used_at: Set(None),
        revoked_at: Set(None),
        // Stored for the user's own records; bounded so a huge header is no burden.
        user_agent: Set(new.user_agent.map(|ua| ua.chars().take(256).collect())),
        ip: Set(new.ip),
        token_version: Set(new.token_version),
    }
    .insert(db)
    .await?;
    Ok(())
}

#[tracing::instrument(level = "debug", name = "db.refresh_tokens.find_by_hash", skip_all)]
pub async fn find_by_hash(
    db: &DatabaseConnection,
    token_hash: &str,
) -> AppResult<Option<RefreshTokenRow>> {
    Ok(RefreshTokens::find()
        .filter(Column::TokenHash.eq(token_hash))
        .one(db)
        .await?)
}

/// Marks a live token used. `false` when another request got there first.
#[tracing::instrument(level = "debug", name = "db.refresh_tokens.retire", skip_all)]
pub async fn retire<C: ConnectionTrait>(db: &C, id: Uuid, now: DateTime<Utc>) -> AppResult<bool> {
    let result = RefreshTokens::update_many()
        .col_expr(Column::UsedAt, Expr::value(now))
        .filter(Column::Id.eq(id))
        .filter(Column::UsedAt.is_null())
        .filter(Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Ends a whole session family.
#[tracing::instrument(level = "debug", name = "db.refresh_tokens.revoke_family", skip_all)]
pub async fn revoke_family(
    db: &DatabaseConnection,
    family_id: Uuid,
    now: DateTime<Utc>,
) -> AppResult<()> {
    RefreshTokens::update_many()
        .col_expr(Column::RevokedAt, Expr::value(now))
        .filter(Column::FamilyId.eq(family_id))
        .filter(Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Ends every session of a user.
#[tracing::instrument(
    level = "debug",
    name = "db.refresh_tokens.revoke_all_for_user",
    skip_all
)]
pub async fn revoke_all_for_user<C: ConnectionTrait>(
    db: &C,
    user_id: UserId,
    now: DateTime<Utc>,
) -> AppResult<()> {
    RefreshTokens::update_many()
        .col_expr(Column::RevokedAt, Expr::value(now))
        .filter(Column::UserId.eq(user_id.as_uuid()))
        .filter(Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// The user's live sessions at `now`: one unused, unrevoked, unexpired token
/// per family, issued at the user's current token version.
#[tracing::instrument(
    level = "debug",
    name = "db.refresh_tokens.count_live_for_user",
    skip_all
)]
pub async fn count_live_for_user(
    db: &DatabaseConnection,
    user_id: UserId,
    token_version: i32,
    now: DateTime<Utc>,
) -> AppResult<u64> {
    Ok(RefreshTokens::find()
        .filter(Column::UserId.eq(user_id.as_uuid()))
        .filter(Column::TokenVersion.eq(token_version))
        .filter(Column::UsedAt.is_null())
        .filter(Column::RevokedAt.is_null())
        .filter(Column::ExpiresAt.gt(now))
        .count(db)
        .await?)
}

/// Deletes rows that expired before `cutoff`; returns how many.
#[tracing::instrument(level = "debug", name = "db.refresh_tokens.delete_expired", skip_all)]
pub async fn delete_expired(db: &DatabaseConnection, cutoff: DateTime<Utc>) -> AppResult<u64> {
    let result = RefreshTokens::delete_many()
        .filter(Column::ExpiresAt.lt(cutoff))
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}
