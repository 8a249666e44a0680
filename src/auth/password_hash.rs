//! Argon2id password hashing on tokio's blocking pool.
//!
//! Each hash takes ~19 MiB and tens of milliseconds of one core, so hashes
//! never run on an async worker, and at most one per core runs at a time: a
//! flood of logins queues here (for a bounded time) instead of exhausting
//! memory or starving every other request.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

use crate::error::{AppError, AppResult};
use crate::telemetry::spawn_blocking_in_span;

/// A hash of a random password, checked when the account is unknown so that
/// an unknown account and a wrong password cost the same.
static DUMMY_HASH: LazyLock<Option<String>> = LazyLock::new(|| {
    let mut random = [0u8; 32];
    rand::fill(&mut random);
    Argon2::default()
        .hash_password(&random)
        .ok()
        .map(|hash| hash.to_string())
});

#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    max_wait: Duration,
}

impl PasswordHasher {
    /// `concurrency` hashes at most at once; a request that waits longer than
    /// `max_wait` for its turn gets `SERVICE_UNAVAILABLE`.
    pub fn new(concurrency: usize, max_wait: Duration) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            max_wait,
        }
    }

    /// One hash per core, waiting at most 5 s.
    pub fn for_this_machine() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::new(cores, Duration::from_secs(5))
    }

    /// Hashes a new password as an Argon2id PHC string.
    pub async fn hash(&self, password: &str) -> AppResult<String> {
        let password = SecretString::from(password);
        self.run(move || {
            Argon2::default()
                .hash_password(password.expose_secret().as_bytes())
                .map(|hash| hash.to_string())
                .map_err(|e| AppError::internal(anyhow::anyhow!("hashing a password: {e}")))
        })
        .await
    }

    /// Whether `password` matches `stored`. With no stored hash (unknown
    /// account), verifies against the dummy hash and returns `false`.
    pub async fn verify(&self, password: &str, stored: Option<String>) -> AppResult<bool> {
        let password = SecretString::from(password);
        self.run(move || {
            let known = stored.is_some();
            let Some(hash) = stored.or_else(|| DUMMY_HASH.clone()) else {
                return Ok(false);
            };
            let matches = PasswordHash::new(&hash).is_ok_and(|parsed| {
                Argon2::default()
                    .verify_password(password.expose_secret().as_bytes(), &parsed)
                    .is_ok()
            });
            Ok(known && matches)
        })
        .await
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> AppResult<T> + Send + 'static,
    ) -> AppResult<T> {
        let permit = tokio::time::timeout(self.max_wait, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| {
                AppError::unavailable("password hasher", anyhow::anyhow!("all hashers busy"))
            })?
            .map_err(AppError::internal)?;
        spawn_blocking_in_span(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(AppError::internal)?
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_unknown_accounts_fail() {
        let hasher = PasswordHasher::new(2, Duration::from_secs(5));
        let hash = hasher.hash("correct horse").await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(
            hasher
                .verify("correct horse", Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(!hasher.verify("wrong horse", Some(hash)).await.unwrap());
        assert!(!hasher.verify("correct horse", None).await.unwrap());
        assert!(!hasher.verify("x", Some("not a hash".into())).await.unwrap());
    }
}
