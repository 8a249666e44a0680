//! Accounts: registration, the three ways to sign in, password reset, and
//! whether a mobile is registered.

use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, TransactionTrait};
use secrecy::{ExposeSecret, SecretString};

use super::legacy_passwords;
use super::sessions::{self, SignInMethod, SignedIn};
use super::sms_codes::{spend_code_on, under_verify_limit};
use super::throttle;
use crate::auth::PasswordCheck;
use crate::codes::CodeHasher;
use crate::codes::{CodeStore, StoreError, pair_subject};
use crate::db;
use crate::db::users::{NewUser, UserRow};
use crate::domain::{
    Account, Email, InvalidInput, Mobile, Password, Region, SmsCode, SmsPurpose, UserId, Username,
};
use crate::error::{AppError, AppResult};
use crate::rate_limit::{LimitedAction, RateLimit};
use crate::state::{AppState, RequestMeta};

/// `mobileExists`: whether a user is registered with this mobile, under the
/// client's `MOBILE_EXISTS_LIMIT_PER_IP` (the answer is an enumeration oracle).
pub async fn mobile_exists(
    state: &AppState,
    meta: &RequestMeta,
    mobile: &Mobile,
) -> AppResult<bool> {
    throttle::hit(
        state,
        LimitedAction::MobileExistsPerIp,
        &meta.limit_key(),
        state.config.limits.mobile_exists_per_ip.as_ref(),
    )
    .await?;
    db::users::mobile_exists(&state.db, mobile).await
}

/// The user `account` names, active or not.
pub async fn find_account(
    db: &DatabaseConnection,
    account: &Account,
) -> AppResult<Option<UserRow>> {
    match account {
        Account::Username(name) => db::users::find_by_username(db, name).await,
        Account::Mobile(mobile) => db::users::find_by_mobile(db, mobile).await,
        Account::Email(email) => db::users::find_by_email(db, email).await,
        Account::Unknown => Ok(None),
    }
}

/// `loginWithPassword`. An unknown account costs the same Argon2 work as a
/// wrong password and gives the same `INVALID_CREDENTIALS`. Each attempt is
/// counted against the throttles (see `LoginThrottle`) before any hashing and
/// taken back when it succeeds, so a burst of parallel guesses cannot slip
/// past the count.
#[tracing::instrument(name = "login with password", skip_all)]
pub async fn login_with_password(
    state: &AppState,
    meta: &RequestMeta,
    account: Account,
    password: &str,
    now: DateTime<Utc>,
) -> AppResult<SignedIn> {
    let user = find_account(&state.db, &account).await?;
    let throttle = LoginThrottle::new(state, meta, &account);
    let attempt = throttle::reserve(state, &throttle.limits()).await?;
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let check = state.passwords.check(password, stored).await?;
    match user {
        Some(user) if check != PasswordCheck::Mismatch && user.is_active => {
            // Not a failure: the attempt does not count.
            attempt.release().await;
            legacy_passwords::upgrade_if_legacy(state, &user, password, check, now).await;
            sessions::sign_in(state, meta, user, SignInMethod::Password, now).await
        }
        _ => Err(AppError::InvalidCredentials),
    }
}

/// How failed password logins are throttled, so guessing is slow but a
/// stranger cannot lock someone out for long:
///
/// - per client IP: `LOGIN_FAILURE_LIMIT_PER_IP`, across accounts (spraying);
/// - per account *and* IP: `LOGIN_FAILURE_LIMIT_PER_ACCOUNT`, so one guesser
///   is stopped without touching the owner, who signs in from elsewhere;
/// - per account from all IPs together: ten times that count, which caps
///   guessing spread over many addresses. Only a stranger who fails that often
///   within the window blocks password login for the rest of it.
///
/// "Account" is the account as written, normalised (a mobile in E.164, a
/// username or email without regard to case), never the user it resolves
/// to: otherwise guessing by username would make the throttle answer for the
/// same user's mobile, telling a stranger that the two belong together.
struct LoginThrottle<'a> {
    state: &'a AppState,
    ip: String,
    account: String,
}

/// The subject an account's login throttles are counted under: one per way
/// of writing it that names a different column (see `LoginThrottle`). An
/// email may contain the pair separator; it is escaped, so that unlocking one
/// account never clears another whose address merely starts the same.
pub fn login_throttle_subject(account: &Account) -> String {
    match account {
        Account::Username(name) => format!("username:{}", name.as_str().to_lowercase()),
        Account::Mobile(mobile) => format!("mobile:{}", mobile.as_str()),
        Account::Email(email) => {
            let email = email.as_str().to_lowercase();
            format!("email:{}", email.replace('%', "%25").replace('|', "%7C"))
        }
        Account::Unknown => "unknown".to_owned(),
    }
}

/// Lifts the per-account login throttles of `user` at once, for every way of
/// writing the account and from every IP (the operator's `smsauth users
/// unlock`). The per-IP throttle stays: it is about the address, not the account.
pub async fn unlock_password_login(
    codes: &dyn CodeStore,
    user: &UserRow,
    default_region: Region,
) -> Result<(), StoreError> {
    // A stored value that no longer parses cannot be typed at login either.
    let written = [
        Username::parse(&user.username).ok().map(Account::Username),
        Mobile::parse(&user.mobile, default_region)
            .ok()
            .map(Account::Mobile),
        user.email
            .as_deref()
            .and_then(|email| Email::parse(email).ok())
            .map(Account::Email),
    ];
    for account in written.into_iter().flatten() {
        codes
            .clear_limits(
                LimitedAction::LoginFailurePerAccount,
                &login_throttle_subject(&account),
            )
            .await?;
    }
    Ok(())
}

/// How many per-account failures, from all IPs together, are tolerated
/// compared with one account-and-IP pair.
const ACCOUNT_WIDE_FACTOR: u32 = 10;

impl<'a> LoginThrottle<'a> {
    fn new(state: &'a AppState, meta: &RequestMeta, account: &Account) -> Self {
        Self {
            state,
            ip: meta.limit_key(),
            account: login_throttle_subject(account),
        }
    }

    fn limits(&self) -> [(LimitedAction, String, Option<RateLimit>); 3] {
        let config = &self.state.config.limits;
        let per_account = config.login_failures_per_account.clone();
        let account_wide = per_account
            .as_ref()
            .map(|limit| limit.scaled(ACCOUNT_WIDE_FACTOR));
        [
            (
                LimitedAction::LoginFailurePerIp,
                self.ip.clone(),
                config.login_failures_per_ip.clone(),
            ),
            (
                LimitedAction::LoginFailurePerAccount,
                pair_subject(&self.account, &self.ip),
                per_account,
            ),
            (
                LimitedAction::LoginFailurePerAccount,
                self.account.clone(),
                account_wide,
            ),
        ]
    }
}

/// What `registerWithSms` carries, parsed.
pub struct SmsRegistration {
    pub mobile: Mobile,
    pub code: SmsCode,
    pub password: Password,
    pub username: Option<Username>,
}

/// `registerWithSms`. Every input is checked before the code is consumed, so
/// a typo does not burn the code, and a failure after it (a uniqueness race,
/// a database error) puts the code back. The unique indexes settle any race.
///
/// The input comes as the transport parsed it, refusal included: like every
/// answer but success, a refused input counts toward the client's verify
/// limit (see `under_verify_limit`).
#[tracing::instrument(name = "register with sms", skip_all, fields(mobile = tracing::field::Empty))]
pub async fn register_with_sms(
    state: &AppState,
    meta: &RequestMeta,
    input: Result<SmsRegistration, InvalidInput>,
    now: DateTime<Utc>,
) -> AppResult<SignedIn> {
    under_verify_limit(state, meta, async {
        let SmsRegistration {
            mobile,
            code,
            password,
            username,
        } = input?;
        record_mobile(&mobile);
        if db::users::mobile_exists(&state.db, &mobile).await? {
            return Err(AppError::MobileTaken);
        }
        if let Some(name) = &username
            && db::users::username_exists(&state.db, name).await?
        {
            return Err(AppError::UsernameTaken);
        }
        // Hash before consuming the code: a busy hasher must not burn it.
        let password_hash = state.passwords.hash(password.expose()).await?;
        spend_code_on(state, &mobile, SmsPurpose::Register, &code, async {
            let user = insert_user(state, &mobile, username.as_ref(), password_hash, now).await?;
            tracing::info!(user = %user.id, "user registered");
            sessions::sign_in(state, meta, user, SignInMethod::Register, now).await
        })
        .await
    })
    .await
}

/// Names the (masked) mobile in the current span, once it is known to be one.
fn record_mobile(mobile: &Mobile) {
    tracing::Span::current().record("mobile", tracing::field::display(mobile.masked()));
}

/// Inserts a new, signed-in user. A chosen username that is taken is the
/// user's to change; a derived one that collides is ours to vary.
async fn insert_user(
    state: &AppState,
    mobile: &Mobile,
    username: Option<&Username>,
    password_hash: String,
    now: DateTime<Utc>,
) -> AppResult<UserRow> {
    let mut attempt = 0;
    loop {
        let name = match username {
            Some(name) => name.clone(),
            None => default_username(&state.code_hasher, mobile, attempt)?,
        };
        let inserted = db::users::insert(
            &state.db,
            NewUser {
                id: UserId::new(),
                username: &name,
                mobile,
                email: None,
                password_hash: password_hash.clone(),
                now,
                signed_in: true,
            },
        )
        .await;
        match inserted {
            Err(AppError::UsernameTaken) if username.is_none() && attempt < 5 => attempt += 1,
            other => return other,
        }
    }
}

/// A default username derived from the mobile without revealing it: `u` and
/// ten base-32 characters of a keyed hash of the number (and the attempt).
/// `import-django` gives the same name to a Django user whose own cannot be kept.
pub fn default_username(hasher: &CodeHasher, mobile: &Mobile, attempt: u32) -> AppResult<Username> {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let digest = hasher.digest(&format!("default-username/{attempt}"), mobile.as_str());
    let tail: String = digest
        .iter()
        .take(10)
        .map(|byte| char::from(ALPHABET[usize::from(byte % 32)]))
        .collect();
    Ok(Username::parse(&format!("u{tail}"))?)
}

/// What `loginWithSms` carries, parsed.
pub struct SmsLogin {
    pub mobile: Mobile,
    pub code: SmsCode,
}

/// `loginWithSms` (input and verify limit as for `register_with_sms`).
#[tracing::instrument(name = "login with sms", skip_all, fields(mobile = tracing::field::Empty))]
pub async fn login_with_sms(
    state: &AppState,
    meta: &RequestMeta,
    input: Result<SmsLogin, InvalidInput>,
    now: DateTime<Utc>,
) -> AppResult<SignedIn> {
    under_verify_limit(state, meta, async {
        let SmsLogin { mobile, code } = input?;
        record_mobile(&mobile);
        let user = registered_user(state, &mobile).await?;
        spend_code_on(state, &mobile, SmsPurpose::Login, &code, async {
            sessions::sign_in(state, meta, user, SignInMethod::Sms, now).await
        })
        .await
    })
    .await
}

/// What `resetPasswordWithSms` carries, parsed. The new password is checked
/// here, against the user's mobile and username.
pub struct SmsPasswordReset {
    pub mobile: Mobile,
    pub code: SmsCode,
    pub new_password: SecretString,
}

/// `resetPasswordWithSms`: sets the password and ends every session (input
/// and verify limit as for `register_with_sms`).
#[tracing::instrument(name = "reset password", skip_all, fields(mobile = tracing::field::Empty))]
pub async fn reset_password_with_sms(
    state: &AppState,
    meta: &RequestMeta,
    input: Result<SmsPasswordReset, InvalidInput>,
    now: DateTime<Utc>,
) -> AppResult<()> {
    under_verify_limit(state, meta, async {
        let SmsPasswordReset {
            mobile,
            code,
            new_password,
        } = input?;
        record_mobile(&mobile);
        // The length needs no lookup. Whether the password equals the
        // user's username is told only to whoever holds the code: it would
        // link the mobile to the username.
        Password::check_length(new_password.expose_secret())?;
        let user = registered_user(state, &mobile).await?;
        let id = UserId::from(user.id);
        spend_code_on(state, &mobile, SmsPurpose::ResetPassword, &code, async {
            let username = Username::parse(&user.username).ok();
            let password =
                Password::parse(new_password.expose_secret(), &mobile, username.as_ref())?;
            // A refusal here (or a busy hasher) hands the code back.
            let password_hash = state.passwords.hash(password.expose()).await?;
            // One transaction: the new password and the end of every session
            // stand or fall together. The token-version bump also stops
            // sign-ins racing it.
            let txn = state.db.begin().await?;
            db::users::set_password(&txn, id, password_hash, now).await?;
            db::refresh_tokens::revoke_all_for_user(&txn, id, now).await?;
            txn.commit().await?;
            Ok(())
        })
        .await?;
        tracing::info!(user = %user.id, "password reset; every session ended");
        Ok(())
    })
    .await
}

async fn registered_user(state: &AppState, mobile: &Mobile) -> AppResult<UserRow> {
    db::users::find_by_mobile(&state.db, mobile)
        .await?
        .filter(|user| user.is_active)
        .ok_or(AppError::UserNotFound)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::codes::PAIR_SEPARATOR;

    fn email_subject(email: &str) -> String {
        login_throttle_subject(&Account::Email(Email::parse(email).unwrap()))
    }

    #[test]
    fn an_email_subject_is_never_a_pair_and_never_another_email() {
        let piped = email_subject("a|b@example.com");
        assert!(!piped.contains(PAIR_SEPARATOR), "{piped}");
        // Escaping keeps distinct addresses apart, the escape character too.
        assert_ne!(piped, email_subject("a%7Cb@example.com"));
        assert_eq!(email_subject("A@Example.com"), "email:a@example.com");
    }
}
