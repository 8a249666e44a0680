//! Upgrading an imported user's Django hash to Argon2id on their first
//! successful password login (the hashes themselves: the `django-hashers` crate).

use chrono::{DateTime, Utc};

use crate::auth::PasswordCheck;
use crate::db;
use crate::db::users::UserRow;
use crate::domain::UserId;
use crate::state::AppState;

/// After a successful check: if it matched a Django hash, stores an Argon2id
/// hash of the same password, written only if the row still holds that
/// Django hash (parallel first logins all succeed; one of them rehashes).
/// A failure here is logged and leaves the Django hash, which keeps working
/// and is upgraded at a later login: it never fails the sign-in.
#[tracing::instrument(level = "debug", name = "password.upgrade_if_legacy", skip_all)]
pub async fn upgrade_if_legacy(
    state: &AppState,
    user: &UserRow,
    password: &str,
    check: PasswordCheck,
    now: DateTime<Utc>,
) {
    if check != PasswordCheck::MatchNeedsRehash {
        return;
    }
    let upgraded = async {
        let argon2_hash = state.passwords.hash(password).await?;
        db::users::replace_legacy_hash(
            &state.db,
            UserId::from(user.id),
            &user.password_hash,
            argon2_hash,
            now,
        )
        .await
    }
    .await;
    match upgraded {
        Ok(true) => tracing::info!(user = %user.id, "Django password hash upgraded to Argon2id"),
        Ok(false) => {} // A parallel login upgraded it first.
        Err(err) => {
            tracing::warn!(user = %user.id, error = ?err, "keeping the Django password hash for now");
        }
    }
}
