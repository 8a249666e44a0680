//! Queries on `refresh_tokens`. Rotation is guarded by a conditional UPDATE
//! (`… WHERE used_at IS NULL AND revoked_at IS NULL`): of concurrent uses of
//! one token, only the one that changes the row wins.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, SimpleExpr};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr,
    EntityTrait, FromQueryResult, IdenStatic, Iterable, PaginatorTrait, QueryFilter, Set,
    TransactionTrait,
};
use uuid::Uuid;

use super::entity::refresh_tokens::{self, Column, Entity as RefreshTokens};
use super::entity::users;
use super::fixed_sql;
use super::users::UserRow;
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

impl NewRefreshToken<'_> {
    fn into_row(self) -> refresh_tokens::ActiveModel {
        refresh_tokens::ActiveModel {
            id: Set(Uuid::now_v7()),
            user_id: Set(self.user_id.as_uuid()),
            family_id: Set(self.family_id),
            token_hash: Set(self.token_hash),
            created_at: Set(self.now),
            expires_at: Set(self.expires_at),
            used_at: Set(None),
            revoked_at: Set(None),
            // Stored for the user's own records; bounded so a huge header is no burden.
            user_agent: Set(self.user_agent.map(|ua| ua.chars().take(256).collect())),
            ip: Set(self.ip),
            token_version: Set(self.token_version),
        }
    }
}

#[tracing::instrument(level = "debug", name = "db.refresh_tokens.insert", skip_all)]
pub async fn insert<C: ConnectionTrait>(db: &C, new: NewRefreshToken<'_>) -> AppResult<()> {
    new.into_row().insert(db).await?;
    Ok(())
}

/// Stores the first token of a new family, and for a sign-in (`touch_user`)
/// the user's `last_login_at`: on PostgreSQL in one statement, so one round
/// trip instead of two. The two writes need not be atomic (both are records a
/// crash may lose, see `db::connect_relaxed`); they are only cheaper together.
#[tracing::instrument(level = "debug", name = "db.refresh_tokens.start_family", skip_all)]
pub async fn start_family(
    db: &DatabaseConnection,
    first: NewRefreshToken<'_>,
    touch_user: bool,
) -> AppResult<()> {
    if !touch_user {
        return insert(db, first).await;
    }
    if db.get_database_backend() != DatabaseBackend::Postgres {
        super::users::touch_last_login(db, first.user_id, first.now).await?;
        return insert(db, first).await;
    }
    let leading = [first.now.into(), first.user_id.as_uuid().into()];
    execute_with_row(db, &SIGN_IN, leading, &first.into_row()).await?;
    Ok(())
}

/// PostgreSQL: `last_login_at = $1` for user `$2`, and the new row (`$3`…).
/// A data-modifying `WITH` runs whether or not the INSERT reads it.
static SIGN_IN: LazyLock<String> = LazyLock::new(|| {
    format!(
        r#"WITH "touched" AS (UPDATE "users" SET "last_login_at" = $1 WHERE "id" = $2) INSERT INTO "refresh_tokens" ({}) VALUES ({})"#,
        super::column_list::<Column>(None),
        row_placeholders(),
    )
});

/// Runs fixed SQL whose `$1` and `$2` are `leading` and whose `$3`… are a new
/// row's columns in `Column` order (see `row_placeholders`).
async fn execute_with_row(
    db: &DatabaseConnection,
    sql: &str,
    leading: [sea_orm::Value; 2],
    row: &refresh_tokens::ActiveModel,
) -> AppResult<sea_orm::ExecResult> {
    let values = leading.into_iter().chain(row_values(row)?);
    Ok(db.execute_raw(fixed_sql(db, sql, values)).await?)
}

/// A new row's values in `Column` order, one per placeholder: a column
/// `into_row` left unset is an error here, not a shifted value list.
fn row_values(row: &refresh_tokens::ActiveModel) -> AppResult<Vec<sea_orm::Value>> {
    Column::iter()
        .map(|column| {
            row.get(column).into_value().ok_or_else(|| {
                DbErr::Custom(format!(
                    "refresh token column {} is not set",
                    column.as_str()
                ))
            })
        })
        .collect::<Result<_, _>>()
        .map_err(Into::into)
}

/// `$3, $4, …`, one per column: the row's placeholders after the two
/// leading values of `execute_with_row`.
fn row_placeholders() -> String {
    (0..Column::iter().count())
        .map(|i| format!("${}", i + 3))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A presented token and its user, in one SELECT (a refresh's first step).
#[tracing::instrument(level = "debug", name = "db.refresh_tokens.find_with_user", skip_all)]
pub async fn find_with_user(
    db: &DatabaseConnection,
    token_hash: &str,
) -> AppResult<Option<(RefreshTokenRow, UserRow)>> {
    let query = fixed_sql(db, &TOKEN_WITH_USER, [token_hash.into()]);
    let Some(row) = db.query_one_raw(query).await? else {
        return Ok(None);
    };
    Ok(Some((
        RefreshTokenRow::from_query_result(&row, "t_")?,
        UserRow::from_query_result(&row, "u_")?,
    )))
}

static TOKEN_WITH_USER: LazyLock<String> = LazyLock::new(|| {
    format!(
        r#"SELECT {}, {} FROM "refresh_tokens" AS t JOIN "users" AS u ON u."id" = t."user_id" WHERE t."token_hash" = $1"#,
        super::column_list::<Column>(Some("t")),
        super::column_list::<users::Column>(Some("u")),
    )
});

/// Retires the live token `retiring` and stores its successor, both or
/// neither: `false`, with nothing stored, when another request retired or
/// revoked it first.
#[tracing::instrument(level = "debug", name = "db.refresh_tokens.rotate", skip_all)]
pub async fn rotate(
    db: &DatabaseConnection,
    retiring: Uuid,
    successor: NewRefreshToken<'_>,
) -> AppResult<bool> {
    let now = successor.now;
    let successor = successor.into_row();
    if db.get_database_backend() == DatabaseBackend::Postgres {
        // One statement, so one round trip and one commit instead of four.
        let leading = [now.into(), retiring.into()];
        let rotated = execute_with_row(db, &ROTATE, leading, &successor).await?;
        return Ok(rotated.rows_affected() == 1);
    }
    // SQLite has no UPDATE inside WITH: the same in a transaction.
    let txn = db.begin().await?;
    if !retire(&txn, retiring, now).await? {
        txn.rollback().await?;
        return Ok(false);
    }
    successor.insert(&txn).await?;
    txn.commit().await?;
    Ok(true)
}

/// PostgreSQL: retire `$2` at `$1` and, only if that changed the row, insert
/// the successor (`$3`… in `Column` order).
static ROTATE: LazyLock<String> = LazyLock::new(|| {
    format!(
        r#"WITH "retired" AS (UPDATE "refresh_tokens" SET "used_at" = $1 WHERE "id" = $2 AND "used_at" IS NULL AND "revoked_at" IS NULL RETURNING 1) INSERT INTO "refresh_tokens" ({}) SELECT {} FROM "retired""#,
        super::column_list::<Column>(None),
        row_placeholders(),
    )
});

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
    revoke_live(db, Column::FamilyId.eq(family_id), now).await
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
    revoke_live(db, Column::UserId.eq(user_id.as_uuid()), now).await
}

/// Revokes every unrevoked row `rows` matches, in passes until one finds
/// none. One pass can miss a row on PostgreSQL: a pass that waited for a
/// concurrent rotation's lock on the token it retired revokes that token,
/// but its snapshot predates the successor the rotation inserted in the same
/// statement; the next pass, with a fresh snapshot, sees it. A rotation
/// inserts only while its predecessor is live, so the passes end; the bound
/// only keeps a pathological stream of rotations from holding us forever.
async fn revoke_live<C: ConnectionTrait>(
    db: &C,
    rows: SimpleExpr,
    now: DateTime<Utc>,
) -> AppResult<()> {
    const MAX_PASSES: usize = 8;
    for _ in 0..MAX_PASSES {
        let revoked = RefreshTokens::update_many()
            .col_expr(Column::RevokedAt, Expr::value(now))
            .filter(rows.clone())
            .filter(Column::RevokedAt.is_null())
            .exec(db)
            .await?;
        if revoked.rows_affected == 0 {
            break;
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_row_has_a_value_for_every_column() {
        let new = NewRefreshToken {
            user_id: UserId::from(Uuid::now_v7()),
            family_id: Uuid::now_v7(),
            token_hash: "hash".to_owned(),
            now: Utc::now(),
            expires_at: Utc::now(),
            user_agent: None,
            ip: None,
            token_version: 0,
        };
        let values = row_values(&new.into_row()).map(|values| values.len());
        assert_eq!(values.ok(), Some(Column::iter().count()));
    }
}
