//! What an operator does to one user from the command line (`smsauth users
//! …`): look them up, deactivate or activate them, end their sessions, lift a
//! password-login lockout.
//!
//! Ending sessions acts at once on every instance: the refresh tokens are
//! revoked and the user's token version is bumped, in one transaction, and
//! every request's viewer check compares that version with the access token's
//! `ver`. A sign-in racing the change issues tokens of the old version, which
//! fail the same check.

use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, TransactionTrait};

use super::accounts::{find_account, unlock_password_login};
use crate::codes::CodeStore;
use crate::db;
use crate::db::users::UserRow;
use crate::domain::{Account, Region, UserId};
use crate::error::AppError;

#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// No user has this username, mobile or email.
    #[error("no account {0:?} (give a username, mobile or email)")]
    UnknownAccount(String),
    #[error("{0:#}")]
    Failed(anyhow::Error),
}

impl From<AppError> for OperatorError {
    fn from(error: AppError) -> Self {
        Self::Failed(anyhow::anyhow!("{error:?}"))
    }
}

/// A user as `users show` prints them.
pub struct UserSummary {
    pub user: UserRow,
    pub live_sessions: u64,
}

/// The operator's actions, on one database (and code store, for `unlock`).
pub struct Operator<'a> {
    db: &'a DatabaseConnection,
    default_region: Region,
}

impl<'a> Operator<'a> {
    pub fn new(db: &'a DatabaseConnection, default_region: Region) -> Self {
        Self { db, default_region }
    }

    /// The user `account` names (username, mobile or email), active or not.
    pub async fn user(&self, account: &str) -> Result<UserRow, OperatorError> {
        let unknown = || OperatorError::UnknownAccount(account.to_owned());
        let parsed = Account::parse(account, self.default_region).map_err(|_| unknown())?;
        find_account(self.db, &parsed).await?.ok_or_else(unknown)
    }

    pub async fn show(
        &self,
        account: &str,
        now: DateTime<Utc>,
    ) -> Result<UserSummary, OperatorError> {
        let user = self.user(account).await?;
        let live_sessions = db::refresh_tokens::count_live_for_user(
            self.db,
            UserId::from(user.id),
            user.token_version,
            now,
        )
        .await?;
        Ok(UserSummary {
            user,
            live_sessions,
        })
    }

    /// Refuses sign-in from now on and ends every session and access token.
    /// Returns the user and how many sessions were live.
    pub async fn deactivate(
        &self,
        account: &str,
        now: DateTime<Utc>,
    ) -> Result<UserSummary, OperatorError> {
        self.end_sessions(account, Some(false), now).await
    }

    /// Allows sign-in again; sessions ended before stay ended.
    pub async fn activate(
        &self,
        account: &str,
        now: DateTime<Utc>,
    ) -> Result<UserRow, OperatorError> {
        let user = self.user(account).await?;
        db::users::set_active(self.db, UserId::from(user.id), true, now).await?;
        Ok(UserRow {
            is_active: true,
            ..user
        })
    }

    /// Ends every session and access token; the user may sign in again.
    pub async fn logout(
        &self,
        account: &str,
        now: DateTime<Utc>,
    ) -> Result<UserSummary, OperatorError> {
        self.end_sessions(account, None, now).await
    }

    /// Clears the password-login throttles of `user` (every IP).
    pub async fn unlock(&self, user: &UserRow, codes: &dyn CodeStore) -> Result<(), OperatorError> {
        unlock_password_login(codes, user, self.default_region)
            .await
            .map_err(|e| {
                OperatorError::Failed(e.context("clearing the throttles in the code store"))
            })
    }

    async fn end_sessions(
        &self,
        account: &str,
        set_active: Option<bool>,
        now: DateTime<Utc>,
    ) -> Result<UserSummary, OperatorError> {
        let user = self.user(account).await?;
        let id = UserId::from(user.id);
        let live_sessions =
            db::refresh_tokens::count_live_for_user(self.db, id, user.token_version, now).await?;
        let txn = self.db.begin().await.map_err(AppError::from)?;
        if let Some(active) = set_active {
            db::users::set_active(&txn, id, active, now).await?;
        }
        db::users::bump_token_version(&txn, id, now).await?;
        db::refresh_tokens::revoke_all_for_user(&txn, id, now).await?;
        txn.commit().await.map_err(AppError::from)?;
        tracing::info!(user = %user.id, "operator ended every session");
        Ok(UserSummary {
            user: UserRow {
                is_active: set_active.unwrap_or(user.is_active),
                token_version: user.token_version + 1,
                ..user
            },
            live_sessions,
        })
    }
}
