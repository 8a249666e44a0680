//! Sessions: signing in (an access token plus a refresh token that starts a
//! family), rotating refresh tokens, reuse detection and logout.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::user_view::{UserLookup, UserView};
use crate::auth::{PlainRefreshToken, hash_refresh_token};
use crate::db;
use crate::db::refresh_tokens::NewRefreshToken;
use crate::db::users::UserRow;
use crate::domain::UserId;
use crate::error::{AppError, AppResult};
use crate::state::{AppState, RequestMeta};

/// A signed-in user: what `AuthPayload` shows.
pub struct SignedIn {
    pub access_token: String,
    pub expires_in: i64,
    pub refresh_token: PlainRefreshToken,
    pub user: UserView,
}

/// How a session was started (also the `method` label of the sessions metric).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignInMethod {
    Sms,
    Password,
    /// Registration signs in; its insert already set `last_login_at`.
    Register,
}

impl SignInMethod {
    /// The `method` label of `smsauth_sessions_issued_total`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Sms => "sms",
            Self::Password => "password",
            Self::Register => "register",
        }
    }
}

/// Starts a new session family for `user`, who has just proven who they are:
/// records the sign-in and issues an access token and a refresh token.
pub async fn sign_in(
    state: &AppState,
    meta: &RequestMeta,
    user: UserRow,
    method: SignInMethod,
    now: DateTime<Utc>,
) -> AppResult<SignedIn> {
    // Registration's insert already set `last_login_at`.
    let touch_user = method != SignInMethod::Register;
    let user = UserRow {
        last_login_at: if touch_user {
            Some(now)
        } else {
            user.last_login_at
        },
        ..user
    };
    let refresh_token = PlainRefreshToken::generate();
    // A new family: if a crash lost it, the user would only sign in again.
    let first = new_refresh_row(state, meta, &user, Uuid::now_v7(), &refresh_token, now);
    db::refresh_tokens::start_family(&state.db_relaxed, first, touch_user).await?;
    state.instruments.session_issued(method.label());
    issue_tokens(state, user, refresh_token, now)
}

fn new_refresh_row<'a>(
    state: &AppState,
    meta: &'a RequestMeta,
    user: &UserRow,
    family_id: Uuid,
    token: &PlainRefreshToken,
    now: DateTime<Utc>,
) -> NewRefreshToken<'a> {
    let ttl = chrono::Duration::from_std(state.config.jwt.refresh_ttl)
        .unwrap_or(chrono::Duration::days(30));
    NewRefreshToken {
        user_id: UserId::from(user.id),
        family_id,
        token_hash: token.hashed(),
        now,
        expires_at: now + ttl,
        user_agent: meta.user_agent.as_deref(),
        ip: Some(meta.client_ip.to_string()),
        token_version: user.token_version,
    }
}

/// The answer of a sign-in or refresh: a fresh access token beside the refresh token.
fn issue_tokens(
    state: &AppState,
    user: UserRow,
    refresh_token: PlainRefreshToken,
    now: DateTime<Utc>,
) -> AppResult<SignedIn> {
    let access_token = state
        .jwt
        .issue(UserId::from(user.id), user.token_version, now)
        .map_err(AppError::internal)?;
    Ok(SignedIn {
        access_token,
        expires_in: state.jwt.ttl_secs(),
        refresh_token,
        user: user.into(),
    })
}

/// The signed-in user of a request: an access token with a valid signature
/// and lifetime, whose user exists, is active, and has not reset their
/// password (or been signed out everywhere) since it was issued. Anything
/// else is `UNAUTHENTICATED`, with the reason logged at debug level only.
pub async fn authenticate(
    state: &AppState,
    access_token: Option<&str>,
    users: &impl UserLookup,
    now: DateTime<Utc>,
) -> AppResult<UserView> {
    let Some(token) = access_token else {
        return Err(AppError::Unauthenticated);
    };
    let Some(claims) = state.jwt.verify(token, now) else {
        tracing::debug!("access token refused: malformed, forged or expired");
        return Err(AppError::Unauthenticated);
    };
    let id = claims.user_id().ok_or(AppError::Unauthenticated)?;
    match users.find(id).await? {
        Some(user) if user.is_active && user.token_version == claims.ver => Ok(user.into()),
        Some(_) => {
            tracing::debug!("access token refused: user inactive or token version stale");
            Err(AppError::Unauthenticated)
        }
        None => Err(AppError::Unauthenticated),
    }
}

/// Exchanges a live refresh token for a new pair. A token that was already
/// used is a stolen or replayed token: its whole family is revoked.
pub async fn refresh(
    state: &AppState,
    meta: &RequestMeta,
    presented: &str,
    now: DateTime<Utc>,
) -> AppResult<SignedIn> {
    let Some((row, user)) =
        db::refresh_tokens::find_with_user(&state.db, &hash_refresh_token(presented)).await?
    else {
        return Err(AppError::InvalidRefreshToken);
    };
    if row.revoked_at.is_some() || row.expires_at <= now {
        return Err(AppError::InvalidRefreshToken);
    }
    if row.used_at.is_some() {
        tracing::warn!(family = %row.family_id, "a retired refresh token was reused: revoking its family");
        db::refresh_tokens::revoke_family(&state.db, row.family_id, now).await?;
        return Err(AppError::InvalidRefreshToken);
    }
    if !user.is_active {
        return Err(AppError::InvalidRefreshToken);
    }
    if row.token_version != user.token_version {
        // Issued before a password reset (possibly by a sign-in that raced it).
        db::refresh_tokens::revoke_family(&state.db, row.family_id, now).await?;
        return Err(AppError::InvalidRefreshToken);
    }

    let successor = PlainRefreshToken::generate();
    let successor_row = new_refresh_row(state, meta, &user, row.family_id, &successor, now);
    // Of concurrent refreshes with one token, only one changes the row; the
    // others lose the race and fail without revoking (they were not replays).
    if !db::refresh_tokens::rotate(&state.db, row.id, successor_row).await? {
        return Err(AppError::InvalidRefreshToken);
    }
    state.instruments.session_issued("refresh");
    issue_tokens(state, user, successor, now)
}

/// Ends the token's whole family. Unknown or dead tokens are fine too: logout
/// always succeeds and reveals nothing.
pub async fn logout(state: &AppState, presented: &str, now: DateTime<Utc>) -> AppResult<()> {
    if let Some(row) =
        db::refresh_tokens::find_by_hash(&state.db, &hash_refresh_token(presented)).await?
    {
        db::refresh_tokens::revoke_family(&state.db, row.family_id, now).await?;
    }
    Ok(())
}

/// Deletes refresh tokens that expired more than a day before `now`, so the
/// table does not grow without bound (run hourly by `startup`).
pub async fn prune_expired(state: &AppState, now: DateTime<Utc>) {
    let cutoff = now - chrono::Duration::days(1);
    match db::refresh_tokens::delete_expired(&state.db, cutoff).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(deleted = n, "pruned expired refresh tokens"),
        Err(e) => tracing::warn!(error = ?e, "could not prune expired refresh tokens"),
    }
}
