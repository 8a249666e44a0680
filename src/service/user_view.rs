//! A user as the API shows them, and the rule for who may be seen at all.
//! The GraphQL types wrap [`UserView`], never a database row, so no column
//! (such as `password_hash`) can reach a response by accident.

use chrono::{DateTime, Utc};

use crate::db::users::UserRow;
use crate::domain::UserId;
use crate::error::AppResult;

#[derive(Clone, Debug)]
pub struct UserView {
    pub id: UserId,
    pub username: String,
    /// E.164.
    pub mobile: String,
    pub email: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
}

impl From<UserRow> for UserView {
    fn from(row: UserRow) -> Self {
        Self {
            id: UserId::from(row.id),
            username: row.username,
            mobile: row.mobile,
            email: row.email,
            created_at: row.created_at,
            last_login_at: row.last_login_at,
        }
    }
}

/// Users by id, as the caller can fetch them best (the GraphQL layer batches
/// every lookup of one request into one query).
pub trait UserLookup {
    fn find(&self, id: UserId) -> impl Future<Output = AppResult<Option<UserRow>>> + Send;
}

/// The user with this id as others see them: `None` when there is none or
/// the account is inactive (an inactive user is not shown to anyone).
pub async fn visible_user(users: &impl UserLookup, id: UserId) -> AppResult<Option<UserView>> {
    Ok(users
        .find(id)
        .await?
        .filter(|user| user.is_active)
        .map(UserView::from))
}
