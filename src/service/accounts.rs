//! Accounts: registration, the three ways to sign in, and password reset.

use chrono::Utc;

use super::sessions::{self, SignedIn};
use super::sms_codes::consume_code;
use crate::db;
use crate::db::users::{NewUser, UserRow};
use crate::domain::{Email, InvalidInput, Mobile, Password, SmsCode, SmsPurpose, UserId, Username};
use crate::error::{AppError, AppResult};
use crate::state::{AppState, RequestMeta};

/// A login `account`: which column it names is decided by its shape alone,
/// which is never ambiguous (usernames start with a letter and have no `@`).
#[derive(Debug)]
pub enum Account {
    Username(Username),
    Mobile(Mobile),
    Email(Email),
    /// Well-formed as input, but no account could have this name.
    Unknown,
}

impl Account {
    pub fn parse(input: &str, default_region: crate::domain::Region) -> Result<Self, InvalidInput> {
        let input = input.trim();
        if input.is_empty() || input.len() > 254 {
            return Err(InvalidInput::new(
                "account",
                "must be a username, mobile or email",
            ));
        }
        Ok(if input.contains('@') {
            Email::parse(input).map_or(Self::Unknown, Self::Email)
        } else if let Ok(name) = Username::parse(input) {
            Self::Username(name)
        } else {
            Mobile::parse(input, default_region).map_or(Self::Unknown, Self::Mobile)
        })
    }
}

/// `loginWithPassword`. An unknown account costs the same Argon2 work as a
/// wrong password and gives the same `INVALID_CREDENTIALS`.
#[tracing::instrument(name = "login with password", skip_all)]
pub async fn login_with_password(
    state: &AppState,
    meta: &RequestMeta,
    account: Account,
    password: &str,
) -> AppResult<SignedIn> {
    let user = match &account {
        Account::Username(name) => db::users::find_by_username(&state.db, name).await?,
        Account::Mobile(mobile) => db::users::find_by_mobile(&state.db, mobile).await?,
        Account::Email(email) => db::users::find_by_email(&state.db, email).await?,
        Account::Unknown => None,
    };
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let matches = state.passwords.verify(password, stored).await?;
    match user {
        Some(user) if matches && user.is_active => sign_in(state, meta, user).await,
        _ => Err(AppError::InvalidCredentials),
    }
}

/// `registerWithSms`. Every input is checked before the code is consumed, so
/// a typo does not burn the code. The unique indexes settle any race.
#[tracing::instrument(name = "register with sms", skip_all, fields(mobile = %mobile.masked()))]
pub async fn register_with_sms(
    state: &AppState,
    meta: &RequestMeta,
    mobile: Mobile,
    code: SmsCode,
    password: Password,
    username: Option<Username>,
) -> AppResult<SignedIn> {
    if db::users::mobile_exists(&state.db, &mobile).await? {
        return Err(AppError::MobileTaken);
    }
    if let Some(name) = &username
        && db::users::username_exists(&state.db, name).await?
    {
        return Err(AppError::UsernameTaken);
    }
    consume_code(state, meta, &mobile, SmsPurpose::Register, &code).await?;
    let password_hash = state.passwords.hash(password.expose()).await?;

    // A chosen username that is taken is the user's to change; a derived one
    // that collides is ours to vary.
    let mut attempt = 0;
    let user = loop {
        let name = match &username {
            Some(name) => name.clone(),
            None => default_username(state, &mobile, attempt)?,
        };
        let inserted = db::users::insert(
            &state.db,
            NewUser {
                id: UserId::new(),
                username: &name,
                mobile: &mobile,
                email: None,
                password_hash: password_hash.clone(),
                now: Utc::now(),
            },
        )
        .await;
        match inserted {
            Err(AppError::UsernameTaken) if username.is_none() && attempt < 5 => attempt += 1,
            other => break other?,
        }
    };
    tracing::info!(user = %user.id, "user registered");
    sign_in(state, meta, user).await
}

/// A default username derived from the mobile without revealing it: `u` and
/// ten base-32 characters of a keyed hash of the number (and the attempt).
fn default_username(state: &AppState, mobile: &Mobile, attempt: u32) -> AppResult<Username> {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let digest = state
        .code_hasher
        .digest(&format!("default-username/{attempt}"), mobile.as_str());
    let tail: String = digest
        .iter()
        .take(10)
        .map(|byte| char::from(ALPHABET[usize::from(byte % 32)]))
        .collect();
    Ok(Username::parse(&format!("u{tail}"))?)
}

/// `loginWithSms`.
#[tracing::instrument(name = "login with sms", skip_all, fields(mobile = %mobile.masked()))]
pub async fn login_with_sms(
    state: &AppState,
    meta: &RequestMeta,
    mobile: Mobile,
    code: SmsCode,
) -> AppResult<SignedIn> {
    let user = registered_user(state, &mobile).await?;
    consume_code(state, meta, &mobile, SmsPurpose::Login, &code).await?;
    sign_in(state, meta, user).await
}

/// `resetPasswordWithSms`: sets the password and ends every session.
#[tracing::instrument(name = "reset password", skip_all, fields(mobile = %mobile.masked()))]
pub async fn reset_password_with_sms(
    state: &AppState,
    meta: &RequestMeta,
    mobile: Mobile,
    code: SmsCode,
    new_password: &str,
) -> AppResult<()> {
    let user = registered_user(state, &mobile).await?;
    let username = Username::parse(&user.username).ok();
    let password = Password::parse(new_password, &mobile, username.as_ref())
        .map_err(|invalid| InvalidInput::new("newPassword", invalid.reason))?;
    consume_code(state, meta, &mobile, SmsPurpose::ResetPassword, &code).await?;
    let password_hash = state.passwords.hash(password.expose()).await?;
    let now = Utc::now();
    let id = UserId::from(user.id);
    db::users::set_password(&state.db, id, password_hash, now).await?;
    sessions::end_all_sessions(state, id, now).await?;
    tracing::info!(user = %user.id, "password reset; every session ended");
    Ok(())
}

async fn registered_user(state: &AppState, mobile: &Mobile) -> AppResult<UserRow> {
    db::users::find_by_mobile(&state.db, mobile)
        .await?
        .filter(|user| user.is_active)
        .ok_or(AppError::UserNotFound)
}

async fn sign_in(state: &AppState, meta: &RequestMeta, user: UserRow) -> AppResult<SignedIn> {
    let now = Utc::now();
    db::users::touch_last_login(&state.db, UserId::from(user.id), now).await?;
    let user = UserRow {
        last_login_at: Some(now),
        ..user
    };
    sessions::sign_in(state, meta, user, now).await
}
