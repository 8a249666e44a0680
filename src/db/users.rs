//! Queries on `users`. Lookups by username and email ignore case, matching
//! the `lower(...)` unique indexes.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    Set,
};

use super::entity::users::{self, Column, Entity as Users};
use super::fixed_sql;
use crate::domain::{Email, Mobile, UserId, Username};
use crate::error::{AppError, AppResult};

pub use users::Model as UserRow;

pub struct NewUser<'a> {
    pub id: UserId,
    pub username: &'a Username,
    pub mobile: &'a Mobile,
    pub email: Option<&'a Email>,
    pub password_hash: String,
    pub now: DateTime<Utc>,
    /// Set when the user is signed in as they are created (registration).
    pub signed_in: bool,
}

/// Every user whose id is in `ids`, in one SELECT.
#[tracing::instrument(level = "debug", name = "db.users.find_by_ids", skip_all)]
pub async fn find_by_ids(db: &DatabaseConnection, ids: &[UserId]) -> AppResult<Vec<UserRow>> {
    Ok(match ids {
        [] => Vec::new(),
        [id] => {
            let by_id = fixed_sql(db, &USER_BY_ID, [id.as_uuid().into()]);
            Users::find().from_raw_sql(by_id).all(db).await?
        }
        _ => {
            Users::find()
                .filter(Column::Id.is_in(ids.iter().map(UserId::as_uuid)))
                .all(db)
                .await?
        }
    })
}

#[tracing::instrument(level = "debug", name = "db.users.find_by_mobile", skip_all)]
pub async fn find_by_mobile(
    db: &DatabaseConnection,
    mobile: &Mobile,
) -> AppResult<Option<UserRow>> {
    let by_mobile = fixed_sql(db, &USER_BY_MOBILE, [mobile.as_str().into()]);
    Ok(Users::find().from_raw_sql(by_mobile).one(db).await?)
}

// The hottest reads (`mobileExists`, the viewer of `me`, every send, SMS
// sign-in, password login by mobile) are fixed SQL (see `db::fixed_sql`).
/// Every column by name, never `*` (see `column_list`).
static USER_COLUMNS: LazyLock<String> = LazyLock::new(|| super::column_list::<Column>(None));
static USER_BY_ID: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {} FROM \"users\" WHERE \"id\" = $1", *USER_COLUMNS));
static USER_BY_MOBILE: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {} {BY_MOBILE}", *USER_COLUMNS));
static MOBILE_EXISTS: LazyLock<String> = LazyLock::new(|| format!("SELECT 1 {BY_MOBILE}"));
/// The one user a mobile names (the column is unique).
const BY_MOBILE: &str = r#"FROM "users" WHERE "mobile" = $1 LIMIT 1"#;

#[tracing::instrument(level = "debug", name = "db.users.find_by_username", skip_all)]
pub async fn find_by_username(
    db: &DatabaseConnection,
    username: &Username,
) -> AppResult<Option<UserRow>> {
    Ok(Users::find()
        .filter(
            Expr::expr(Func::lower(Expr::col(Column::Username)))
                .eq(username.as_str().to_lowercase()),
        )
        .one(db)
        .await?)
}

#[tracing::instrument(level = "debug", name = "db.users.find_by_email", skip_all)]
pub async fn find_by_email(db: &DatabaseConnection, email: &Email) -> AppResult<Option<UserRow>> {
    Ok(Users::find()
        .filter(Expr::expr(Func::lower(Expr::col(Column::Email))).eq(email.as_str().to_lowercase()))
        .one(db)
        .await?)
}

/// One index lookup, stopping at the first row (`count` would wrap the
/// query in a subquery and count).
#[tracing::instrument(level = "debug", name = "db.users.mobile_exists", skip_all)]
pub async fn mobile_exists(db: &DatabaseConnection, mobile: &Mobile) -> AppResult<bool> {
    let exists = fixed_sql(db, &MOBILE_EXISTS, [mobile.as_str().into()]);
    Ok(db.query_one_raw(exists).await?.is_some())
}

#[tracing::instrument(level = "debug", name = "db.users.username_exists", skip_all)]
pub async fn username_exists(db: &DatabaseConnection, username: &Username) -> AppResult<bool> {
    Ok(find_by_username(db, username).await?.is_some())
}

/// Inserts a user. The unique indexes have the last word: losing a race is
/// `MOBILE_TAKEN`, `USERNAME_TAKEN` or `EMAIL_TAKEN`, never an internal error.
#[tracing::instrument(level = "debug", name = "db.users.insert", skip_all)]
pub async fn insert(db: &DatabaseConnection, new: NewUser<'_>) -> AppResult<UserRow> {
    let row = users::ActiveModel {
        id: Set(new.id.as_uuid()),
        username: Set(new.username.as_str().to_owned()),
        mobile: Set(new.mobile.as_str().to_owned()),
        email: Set(new.email.map(|e| e.as_str().to_owned())),
        password_hash: Set(new.password_hash),
        is_active: Set(true),
        token_version: Set(0),
        created_at: Set(new.now),
        updated_at: Set(new.now),
        last_login_at: Set(new.signed_in.then_some(new.now)),
        legacy_id: Set(None),
    };
    row.insert(db)
        .await
        .map_err(|err| match super::unique_violation(&err) {
            Some(index) if index.contains("mobile") => AppError::MobileTaken,
            Some(index) if index.contains("username") => AppError::UsernameTaken,
            Some(index) if index.contains("email") => AppError::EmailTaken,
            _ => AppError::from(err),
        })
}

#[tracing::instrument(level = "debug", name = "db.users.touch_last_login", skip_all, fields(user = %id))]
pub async fn touch_last_login(
    db: &DatabaseConnection,
    id: UserId,
    now: DateTime<Utc>,
) -> AppResult<()> {
    Users::update_many()
        .col_expr(Column::LastLoginAt, Expr::value(now))
        .filter(Column::Id.eq(id.as_uuid()))
        .exec(db)
        .await?;
    Ok(())
}

/// Sets a new password hash and bumps the token version, so every access
/// token issued before it is rejected.
#[tracing::instrument(level = "debug", name = "db.users.set_password", skip_all, fields(user = %id))]
pub async fn set_password<C: sea_orm::ConnectionTrait>(
    db: &C,
    id: UserId,
    password_hash: String,
    now: DateTime<Utc>,
) -> AppResult<()> {
    Users::update_many()
        .col_expr(Column::PasswordHash, Expr::value(password_hash))
        .col_expr(Column::TokenVersion, Expr::col(Column::TokenVersion).add(1))
        .col_expr(Column::UpdatedAt, Expr::value(now))
        .filter(Column::Id.eq(id.as_uuid()))
        .exec(db)
        .await?;
    Ok(())
}

/// Replaces an imported user's Django hash with an Argon2id one, only if the
/// row still holds `legacy_hash`: of several first logins racing, exactly
/// one writes. Returns whether this call did. The password is the same, so
/// sessions and the token version are left alone.
#[tracing::instrument(level = "debug", name = "db.users.replace_legacy_hash", skip_all, fields(user = %id))]
pub async fn replace_legacy_hash(
    db: &DatabaseConnection,
    id: UserId,
    legacy_hash: &str,
    argon2_hash: String,
    now: DateTime<Utc>,
) -> AppResult<bool> {
    let result = Users::update_many()
        .col_expr(Column::PasswordHash, Expr::value(argon2_hash))
        .col_expr(Column::UpdatedAt, Expr::value(now))
        .filter(Column::Id.eq(id.as_uuid()))
        .filter(Column::PasswordHash.eq(legacy_hash))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Bumps the token version, so every access token issued so far is rejected
/// (on every instance: the viewer check compares it with the token's `ver`).
#[tracing::instrument(level = "debug", name = "db.users.bump_token_version", skip_all, fields(user = %id))]
pub async fn bump_token_version<C: sea_orm::ConnectionTrait>(
    db: &C,
    id: UserId,
    now: DateTime<Utc>,
) -> AppResult<()> {
    Users::update_many()
        .col_expr(Column::TokenVersion, Expr::col(Column::TokenVersion).add(1))
        .col_expr(Column::UpdatedAt, Expr::value(now))
        .filter(Column::Id.eq(id.as_uuid()))
        .exec(db)
        .await?;
    Ok(())
}

/// Allows or refuses the user's sign-ins from now on.
#[tracing::instrument(level = "debug", name = "db.users.set_active", skip_all, fields(user = %id))]
pub async fn set_active<C: sea_orm::ConnectionTrait>(
    db: &C,
    id: UserId,
    active: bool,
    now: DateTime<Utc>,
) -> AppResult<()> {
    Users::update_many()
        .col_expr(Column::IsActive, Expr::value(active))
        .col_expr(Column::UpdatedAt, Expr::value(now))
        .filter(Column::Id.eq(id.as_uuid()))
        .exec(db)
        .await?;
    Ok(())
}
