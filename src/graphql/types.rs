//! The GraphQL types. They wrap the service's views, never database rows,
//! so no column (such as `password_hash`) can leak by accident.

use async_graphql::{Enum, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::guards::OwnerOnly;
use crate::domain::{self, UserId};
use crate::error::retry_after_secs;
use crate::service::sessions::SignedIn;
use crate::service::sms_codes::SmsTicket;
use crate::service::user_view::UserView;

/// What a code may be used for; a code works for its own purpose only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enum)]
pub enum SmsPurpose {
    Register,
    Login,
    ResetPassword,
}

impl From<SmsPurpose> for domain::SmsPurpose {
    fn from(purpose: SmsPurpose) -> Self {
        match purpose {
            SmsPurpose::Register => Self::Register,
            SmsPurpose::Login => Self::Login,
            SmsPurpose::ResetPassword => Self::ResetPassword,
        }
    }
}

pub struct User {
    row: UserView,
    /// Whether the one asking is this user (owner-only fields need it).
    is_owner: bool,
}

impl User {
    pub fn seen_by(row: UserView, viewer: UserId) -> Self {
        let is_owner = viewer == row.id;
        Self { row, is_owner }
    }

    /// The user of an `AuthPayload` is its owner.
    pub fn owner(row: UserView) -> Self {
        Self {
            row,
            is_owner: true,
        }
    }
}

#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.row.id.to_string())
    }

    async fn username(&self) -> &str {
        &self.row.username
    }

    /// E.164. Owner only: `FORBIDDEN` for anyone else.
    #[graphql(guard = "OwnerOnly(self.is_owner)")]
    async fn mobile(&self) -> &str {
        &self.row.mobile
    }

    /// Owner only: `FORBIDDEN` for anyone else.
    #[graphql(guard = "OwnerOnly(self.is_owner)")]
    async fn email(&self) -> Option<&str> {
        self.row.email.as_deref()
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.row.created_at
    }

    async fn last_login_at(&self) -> Option<DateTime<Utc>> {
        self.row.last_login_at
    }
}

#[derive(SimpleObject)]
pub struct AuthPayload {
    access_token: String,
    /// Always `Bearer`.
    token_type: String,
    /// Seconds until the access token expires.
    expires_in: i32,
    refresh_token: String,
    user: User,
}

impl From<SignedIn> for AuthPayload {
    fn from(signed_in: SignedIn) -> Self {
        Self {
            access_token: signed_in.access_token,
            token_type: "Bearer".to_owned(),
            expires_in: i32::try_from(signed_in.expires_in).unwrap_or(i32::MAX),
            refresh_token: signed_in.refresh_token.expose().to_owned(),
            user: User::owner(signed_in.user),
        }
    }
}

#[derive(SimpleObject)]
pub struct SmsCodeTicket {
    /// The mobile the code went to, in E.164.
    mobile: String,
    /// Seconds the code stays valid.
    expires_in: i32,
    /// Seconds before another code can be sent to this mobile.
    resend_in: i32,
}

impl From<SmsTicket> for SmsCodeTicket {
    fn from(ticket: SmsTicket) -> Self {
        let secs = |d: std::time::Duration| {
            if d.is_zero() {
                0
            } else {
                i32::try_from(retry_after_secs(d)).unwrap_or(i32::MAX)
            }
        };
        Self {
            mobile: ticket.mobile.as_str().to_owned(),
            expires_in: secs(ticket.expires_in),
            resend_in: secs(ticket.resend_in),
        }
    }
}
