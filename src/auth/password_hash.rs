//! Argon2id password hashing on threads of its own, at a lower priority.
//!
//! Each hash takes ~19 MiB and tens of milliseconds of one core, so hashes
//! never run on an async worker, and at most one per core runs at a time: a
//! flood of logins queues here (for a bounded time) instead of exhausting
//! memory or starving every other request. The hashing threads run at nice
//! [`HASHING_NICE`], so that when the cores are short the scheduler serves
//! the async workers (every other request) first and the hashes take what is
//! left; with spare cores the hashes run at full speed as before.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use tokio::sync::{Semaphore, oneshot};

use crate::error::{AppError, AppResult};
use django_hashers::DjangoHasher;

/// What checking a password found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PasswordCheck {
    Mismatch,
    Match,
    /// A match against a Django hash: store an Argon2id hash in its place.
    MatchNeedsRehash,
}

/// A hash of a random password, checked when the account is unknown so that
/// an unknown account and a wrong password cost the same.
static DUMMY_HASH: LazyLock<Option<String>> = LazyLock::new(|| {
    let mut random = [0u8; 32];
    rand::fill(&mut random);
    let mut memory = Vec::new();
    hash_with(&random, &mut memory).ok()
});

/// Argon2 working memory, kept between hashes. Allocating ~19 MiB per hash
/// leaves every malloc arena holding its own copy (a login flood measured
/// 457 MiB RSS); one buffer per hashing thread keeps the hashers' memory at
/// `threads × m_cost`.
type Memory = Vec<Block>;

/// The scheduling priority of the hashing threads (0 is the default, 19 the
/// lowest): at 10 the kernel gives a busy async worker about nine times the
/// CPU of a hashing thread on the same core. Only lowering a priority needs
/// no privilege, hence threads of their own rather than tokio's blocking
/// pool, whose threads run other work too.
const HASHING_NICE: i32 = 10;

/// One hash to run on a hashing thread, with that thread's memory.
type Job = Box<dyn FnOnce(&mut Memory) + Send>;

#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    jobs: flume::Sender<Job>,
    max_wait: Duration,
}

impl PasswordHasher {
    /// `concurrency` hashes at most at once, on as many hashing threads; a
    /// request that waits longer than `max_wait` for its turn gets
    /// `SERVICE_UNAVAILABLE`. The threads end when the last clone is dropped.
    /// Fails if the system refuses a thread: a permit without its thread
    /// would queue a hash past `max_wait`.
    pub fn new(concurrency: usize, max_wait: Duration) -> std::io::Result<Self> {
        let threads = concurrency.max(1);
        let (jobs, queue) = flume::unbounded::<Job>();
        for index in 0..threads {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("smsauth-hash-{index}"))
                .spawn(move || run_hashing_thread(&queue))?;
        }
        Ok(Self {
            permits: Arc::new(Semaphore::new(threads)),
            jobs,
            max_wait,
        })
    }

    /// One hash per core, waiting at most 5 s.
    pub fn for_this_machine() -> std::io::Result<Self> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::new(cores, Duration::from_secs(5))
    }

    /// Hashes a new password as an Argon2id PHC string (the argon2 crate's
    /// recommended parameters: 19 MiB, 2 passes, 1 lane).
    #[tracing::instrument(level = "debug", name = "password.hash", skip_all)]
    pub async fn hash(&self, password: &str) -> AppResult<String> {
        let password = SecretString::from(password);
        self.run(move |memory| {
            hash_with(password.expose_secret().as_bytes(), memory)
                .map_err(|e| AppError::internal(anyhow::anyhow!("hashing a password: {e}")))
        })
        .await
    }

    /// Whether `password` matches `stored`. With no stored hash (unknown
    /// account), verifies against the dummy hash and returns `false`.
    pub async fn verify(&self, password: &str, stored: Option<String>) -> AppResult<bool> {
        Ok(self.check(password, stored).await? != PasswordCheck::Mismatch)
    }

    /// Checks `password` against `stored`: smsauth's own Argon2id or one of
    /// Django's hashes (see the `django_hashers` crate). No stored hash (unknown account),
    /// an unusable one or an unknown hasher costs a dummy Argon2id check, as
    /// a wrong password for an account that has signed in here does.
    #[tracing::instrument(level = "debug", name = "password.check", skip_all)]
    pub async fn check(&self, password: &str, stored: Option<String>) -> AppResult<PasswordCheck> {
        let password = SecretString::from(password);
        self.run(move |memory| {
            let password = password.expose_secret().as_bytes();
            let stored = stored.unwrap_or_default();
            if DjangoHasher::of(&stored).is_some() {
                return Ok(match django_hashers::verify(password, &stored, memory) {
                    true => PasswordCheck::MatchNeedsRehash,
                    false => PasswordCheck::Mismatch,
                });
            }
            let own = is_own_hash(&stored);
            let Some(hash) = own.then_some(stored).or_else(|| DUMMY_HASH.clone()) else {
                return Ok(PasswordCheck::Mismatch);
            };
            let matches = verify_with(password, &hash, memory);
            Ok(match own && matches {
                true => PasswordCheck::Match,
                false => PasswordCheck::Mismatch,
            })
        })
        .await
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Memory) -> AppResult<T> + Send + 'static,
    ) -> AppResult<T> {
        let permit = tokio::time::timeout(self.max_wait, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| {
                AppError::unavailable("password hasher", anyhow::anyhow!("all hashers busy"))
            })?
            .map_err(AppError::internal)?;
        // A permit per thread: the job starts as soon as it is queued.
        let (done, result) = oneshot::channel();
        let span = tracing::Span::current();
        let job: Job = Box::new(move |memory| {
            let _permit = permit;
            let _ = done.send(span.in_scope(|| work(memory)));
        });
        self.jobs
            .send(job)
            .map_err(|_| AppError::internal(anyhow::anyhow!("no password hashing thread")))?;
        // A job that panicked dropped `done` unsent.
        result
            .await
            .map_err(|_| AppError::internal(anyhow::anyhow!("a password hash panicked")))?
    }
}

/// A hashing thread: lowers its own priority, then runs queued jobs until
/// every sender is gone. A panicking job costs its request, not the thread.
fn run_hashing_thread(queue: &flume::Receiver<Job>) {
    lower_this_threads_priority();
    let mut memory = Memory::new();
    while let Ok(job) = queue.recv() {
        let _ = std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut memory)));
    }
}

/// On Linux the nice value belongs to a thread, so this lowers only the
/// calling one, and only lowers: a process started at nice 15 keeps its
/// hashes at 15 (a privileged process could otherwise raise them above its
/// requests). Elsewhere `setpriority` would lower the whole process, so the
/// hashing threads keep the process's priority there.
fn lower_this_threads_priority() {
    #[cfg(target_os = "linux")]
    {
        let thread = Some(rustix::thread::gettid());
        match rustix::process::getpriority_process(thread) {
            Ok(current) if current >= HASHING_NICE => {}
            _ => {
                if let Err(error) = rustix::process::setpriority_process(thread, HASHING_NICE) {
                    tracing::warn!(%error, "could not lower a password hashing thread's priority");
                }
            }
        }
    }
}

/// `memory` grown (once) to the block count of `params`.
fn blocks_for<'m>(memory: &'m mut Memory, params: &Params) -> &'m mut [Block] {
    let needed = params.block_count();
    if memory.len() < needed {
        memory.resize(needed, Block::default());
    }
    &mut memory[..needed]
}

fn hash_with(password: &[u8], memory: &mut Memory) -> Result<String, argon2::password_hash::Error> {
    let params = Params::default();
    let mut salt = [0u8; 16];
    rand::fill(&mut salt);
    let mut output = [0u8; Params::DEFAULT_OUTPUT_LEN];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(
            password,
            &salt,
            &mut output,
            blocks_for(memory, &params),
        )?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params)?,
        salt: Some(Salt::new(&salt)?),
        hash: Some(Output::new(&output)?),
    };
    Ok(hash.to_string())
}

/// The most a stored Argon2 hash may ask for: smsauth writes
/// `m=19456,t=2,p=1` with a 32-byte output, and these bounds leave room to
/// raise that later. A string beyond them was not written by smsauth (a
/// hostile or corrupt row), and checking it could cost hours of a hasher or
/// gigabytes of memory; it simply does not match.
const MAX_OWN_MEMORY_KIB: u32 = 64 * 1024;
const MAX_OWN_PASSES: u32 = 8;
const MAX_OWN_LANES: u32 = 4;
const MAX_OWN_OUTPUT_BYTES: usize = 64;

/// Whether `stored` is an Argon2 PHC string within those bounds: one
/// smsauth may check. Anything else costs the dummy check instead.
fn is_own_hash(stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    let (Ok(params), Some(output)) = (Params::try_from(&parsed), &parsed.hash) else {
        return false;
    };
    Algorithm::try_from(parsed.algorithm.as_str()).is_ok()
        && params.m_cost() <= MAX_OWN_MEMORY_KIB
        && params.t_cost() <= MAX_OWN_PASSES
        && params.p_cost() <= MAX_OWN_LANES
        && output.len() <= MAX_OWN_OUTPUT_BYTES
}

/// Recomputes the hash with the parameters stored in the PHC string and
/// compares in constant time. Anything unparseable simply does not match.
fn verify_with(password: &[u8], stored: &str, memory: &mut Memory) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm.as_str()) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(version) => version.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let mut output = vec![0u8; expected.len()];
    let computed = Argon2::new(algorithm, version, params.clone()).hash_password_into_with_memory(
        password,
        salt.as_ref(),
        &mut output,
        blocks_for(memory, &params),
    );
    computed.is_ok() && bool::from(output.as_slice().ct_eq(expected.as_bytes()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_unknown_accounts_fail() {
        let hasher = PasswordHasher::new(2, Duration::from_secs(5)).unwrap();
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

    #[tokio::test]
    async fn a_hash_beyond_the_bounds_never_matches_and_answers_promptly() {
        let hasher = PasswordHasher::new(1, Duration::from_secs(5)).unwrap();
        // Five million passes, or 4 TiB: either would hold a hasher for hours or abort.
        for hostile in [
            "$argon2id$v=19$m=8,t=5000000,p=1$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAA",
            "$argon2id$v=19$m=4294967295,t=1,p=1$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAA",
        ] {
            assert!(!is_own_hash(hostile));
            let started = std::time::Instant::now();
            let check = hasher.check("x", Some(hostile.to_owned())).await.unwrap();
            assert_eq!(check, PasswordCheck::Mismatch);
            assert!(started.elapsed() < Duration::from_secs(3));
        }
        let ours = hasher.hash("correct horse").await.unwrap();
        assert!(is_own_hash(&ours));
    }

    #[tokio::test]
    #[allow(clippy::panic)]
    async fn a_panicking_hash_fails_its_request_and_the_thread_runs_on() {
        let hasher = PasswordHasher::new(1, Duration::from_secs(5)).unwrap();
        let panicked = hasher
            .run(|_memory| -> AppResult<()> { panic!("a hash that panics") })
            .await;
        assert!(panicked.is_err());
        // The one thread and its one permit are still there.
        let hash = hasher.hash("correct horse").await.unwrap();
        assert!(hasher.verify("correct horse", Some(hash)).await.unwrap());
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn hashes_run_on_threads_of_lower_priority() {
        let caller = rustix::process::getpriority_process(None).unwrap();
        let hasher = PasswordHasher::new(1, Duration::from_secs(5)).unwrap();
        let nice = hasher
            .run(|_memory| Ok(rustix::process::getpriority_process(None)))
            .await
            .unwrap()
            .unwrap();
        // (A test run already above nice 10 keeps its own.)
        assert_eq!(nice, HASHING_NICE.max(caller));
        // Only the hashing thread was lowered, not the caller's.
        assert_eq!(rustix::process::getpriority_process(None).unwrap(), caller);
    }

    #[tokio::test]
    async fn hashes_are_standard_phc_strings() {
        // A hash made by the argon2 crate's own API verifies here, and ours there.
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let theirs = Argon2::default()
            .hash_password(b"correct horse")
            .unwrap()
            .to_string();
        let hasher = PasswordHasher::new(1, Duration::from_secs(5)).unwrap();
        assert!(hasher.verify("correct horse", Some(theirs)).await.unwrap());
        let ours = hasher.hash("correct horse").await.unwrap();
        assert!(
            ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{ours}"
        );
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        assert!(
            Argon2::default()
                .verify_password(b"wrong horse", &parsed)
                .is_err()
        );
    }
}
