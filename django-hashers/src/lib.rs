//! Django's password hashes, as users imported by `smsauth import-django`
//! still hold them until their first successful login (which replaces them
//! with Argon2id). A crate of its own so that it is optimised even in debug
//! builds: PBKDF2's generic code is compiled where it is called, and a
//! million unoptimised rounds take seconds.
//!
//! Django writes `algorithm$…` strings; each hasher here parses its own
//! format, recomputes the hash with the stored parameters (RustCrypto's
//! `pbkdf2`, `scrypt`, `argon2` and the `bcrypt` crate) and compares in
//! constant time. Parameters are bounded: a hash from the old database can
//! cost at most about twice what Django's own defaults cost, never an unbounded amount of CPU
//! or memory. Anything unparseable, an unusable password (`!…`) or a hasher
//! not listed here (`md5`, `sha1`, …) simply never matches: the user signs in
//! by SMS instead.

use argon2::Block;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

// The bounds below allow about twice the work of Django's newest defaults
// (and any older, cheaper ones), so that a stored hash costs at most a
// couple of seconds of one hasher; a hash asking for more is refused as if
// it did not match (the user can still sign in by SMS).

/// PBKDF2 rounds accepted: Django 5.2 uses 1,000,000, Django 6.0 1,200,000.
const MAX_PBKDF2_ITERATIONS: u32 = 2_500_000;
/// bcrypt cost accepted (Django uses 12; each step doubles the work).
const MAX_BCRYPT_COST: u32 = 13;
/// Memory one scrypt or Argon2 check may take (Django's defaults: 16 MiB and 100 MiB).
const MAX_MEMORY_BYTES: u64 = 256 * 1024 * 1024;
/// Argon2 memory × passes, in KiB (Django: 102,400 KiB × 2 passes).
const MAX_ARGON2_WORK_KIB: u64 = 2 * 102_400 * 2;
/// scrypt's N × r × p (Django: 2^14 × 8 × 5).
const MAX_SCRYPT_WORK: u64 = 2 * 16_384 * 8 * 5;

/// A Django hash smsauth can verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DjangoHasher {
    Pbkdf2Sha256,
    Pbkdf2Sha1,
    Argon2,
    BcryptSha256,
    Bcrypt,
    Scrypt,
}

impl DjangoHasher {
    /// The hasher a stored Django hash names, if it is one smsauth verifies.
    pub fn of(stored: &str) -> Option<Self> {
        let (algorithm, _) = stored.split_once('$')?;
        Some(match algorithm {
            "pbkdf2_sha256" => Self::Pbkdf2Sha256,
            "pbkdf2_sha1" => Self::Pbkdf2Sha1,
            "argon2" => Self::Argon2,
            "bcrypt_sha256" => Self::BcryptSha256,
            "bcrypt" => Self::Bcrypt,
            "scrypt" => Self::Scrypt,
            _ => return None,
        })
    }
}

/// Whether `password` matches the Django hash `stored`. `memory` is the
/// hasher's reusable Argon2 working memory.
pub fn verify(password: &[u8], stored: &str, memory: &mut Vec<Block>) -> bool {
    let Some(hasher) = DjangoHasher::of(stored) else {
        return false;
    };
    let matches = match hasher {
        DjangoHasher::Pbkdf2Sha256 => verify_pbkdf2::<Sha256>(password, stored),
        DjangoHasher::Pbkdf2Sha1 => verify_pbkdf2::<sha1::Sha1>(password, stored),
        DjangoHasher::Argon2 => verify_argon2(password, stored, memory),
        DjangoHasher::BcryptSha256 => verify_bcrypt_sha256(password, stored),
        DjangoHasher::Bcrypt => verify_bcrypt(password, stored),
        DjangoHasher::Scrypt => verify_scrypt(password, stored),
    };
    matches.unwrap_or(false)
}

fn equal(computed: &[u8], expected: &[u8]) -> bool {
    bool::from(computed.ct_eq(expected))
}

/// `pbkdf2_sha256$<iterations>$<salt>$<base64 hash>` (and `pbkdf2_sha1$…`).
/// The salt is used as its ASCII text, as Django does.
fn verify_pbkdf2<D>(password: &[u8], stored: &str) -> Option<bool>
where
    D: hmac::EagerHash,
{
    let mut parts = stored.splitn(4, '$').skip(1);
    let iterations: u32 = parts.next()?.parse().ok()?;
    let salt = parts.next()?;
    let expected = STANDARD.decode(parts.next()?).ok()?;
    if !(1..=MAX_PBKDF2_ITERATIONS).contains(&iterations) || !(1..=64).contains(&expected.len()) {
        return None;
    }
    let mut computed = vec![0u8; expected.len()];
    pbkdf2::pbkdf2_hmac::<D>(password, salt.as_bytes(), iterations, &mut computed);
    Some(equal(&computed, &expected))
}

/// `argon2$argon2id$v=19$m=…,t=…,p=…$<salt>$<hash>`: Django's prefix before
/// a PHC string (salt and hash in unpadded base64), also for the argon2i
/// hashes of Django 1.10–3.0.
fn verify_argon2(password: &[u8], stored: &str, memory: &mut Vec<Block>) -> Option<bool> {
    use argon2::password_hash::phc::PasswordHash;
    use argon2::{Algorithm, Argon2, Params, Version};

    let phc = stored.strip_prefix("argon2")?;
    let parsed = PasswordHash::new(phc).ok()?;
    let algorithm = Algorithm::try_from(parsed.algorithm.as_str()).ok()?;
    let version = match parsed.version {
        Some(version) => Version::try_from(version).ok()?,
        None => Version::V0x10,
    };
    let params = Params::try_from(&parsed).ok()?;
    let work = u64::from(params.m_cost()) * u64::from(params.t_cost());
    if u64::from(params.m_cost()) * 1024 > MAX_MEMORY_BYTES || work > MAX_ARGON2_WORK_KIB {
        return None;
    }
    let (salt, expected) = (parsed.salt?, parsed.hash?);
    let mut computed = vec![0u8; expected.len()];
    let blocks = params.block_count();
    let usual = memory.len();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let result = Argon2::new(algorithm, version, params).hash_password_into_with_memory(
        password,
        salt.as_ref(),
        &mut computed,
        &mut memory[..blocks],
    );
    if memory.len() > usual {
        // Django's 100 MiB is five times smsauth's own: give it back rather
        // than keep it for every later login.
        memory.truncate(usual);
        memory.shrink_to_fit();
    }
    result.ok()?;
    Some(equal(&computed, expected.as_bytes()))
}

/// `bcrypt$$2b$12$…`: Django's prefix before a standard bcrypt hash.
fn verify_bcrypt(password: &[u8], stored: &str) -> Option<bool> {
    verify_bcrypt_hash(password, stored.strip_prefix("bcrypt$")?)
}

/// `bcrypt_sha256$$2b$12$…`: bcrypt of the hex SHA-256 of the password, so
/// that passwords longer than bcrypt's 72 bytes still count in full.
fn verify_bcrypt_sha256(password: &[u8], stored: &str) -> Option<bool> {
    let digest = hex::encode(Sha256::digest(password));
    verify_bcrypt_hash(digest.as_bytes(), stored.strip_prefix("bcrypt_sha256$")?)
}

fn verify_bcrypt_hash(password: &[u8], hash: &str) -> Option<bool> {
    let parts: bcrypt::HashParts = hash.parse().ok()?;
    if parts.get_cost() > MAX_BCRYPT_COST {
        return None;
    }
    // The crate recomputes with the stored salt and compares in constant time.
    bcrypt::verify(password, hash).ok()
}

/// `scrypt$<n>$<salt>$<r>$<p>$<base64 hash>` (64-byte hash, salt as text).
fn verify_scrypt(password: &[u8], stored: &str) -> Option<bool> {
    let mut parts = stored.splitn(6, '$').skip(1);
    let n: u64 = parts.next()?.parse().ok()?;
    let salt = parts.next()?;
    let r: u32 = parts.next()?.parse().ok()?;
    let p: u32 = parts.next()?.parse().ok()?;
    let expected = STANDARD.decode(parts.next()?).ok()?;
    let memory = 128u64.checked_mul(n)?.checked_mul(u64::from(r))?;
    // Django computes the p lanes one after another: p multiplies time, not memory.
    let work = n.checked_mul(u64::from(r))?.checked_mul(u64::from(p))?;
    if !n.is_power_of_two()
        || n < 2
        || memory > MAX_MEMORY_BYTES
        || work > MAX_SCRYPT_WORK
        || p == 0
    {
        return None;
    }
    if !(1..=128).contains(&expected.len()) {
        return None;
    }
    let log_n = u8::try_from(n.trailing_zeros()).ok()?;
    let params = scrypt::Params::new(log_n, r, p).ok()?;
    let mut computed = vec![0u8; expected.len()];
    scrypt::scrypt(password, salt.as_bytes(), &params, &mut computed).ok()?;
    Some(equal(&computed, &expected))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    // Django's own test vector, and one made the way Django makes it (Python's
    // hashlib); the fixture's hashes from real Django are verified end to end
    // in smsauth's tests/api/legacy_passwords.rs.

    #[test]
    fn pbkdf2_sha256_from_djangos_tests() {
        let mut memory = Vec::new();
        let hash = "pbkdf2_sha256$30000$seasalt$VrX+V8drCGo68wlvy6rfu8i1d1pfkdeXA4LJkRGJodY=";
        assert!(verify("lètmein".as_bytes(), hash, &mut memory));
        assert!(!verify(b"letmein", hash, &mut memory));
    }

    #[test]
    fn pbkdf2_sha1_as_hashlib_computes_it() {
        let mut memory = Vec::new();
        let hash = "pbkdf2_sha1$30000$seasalt$6/5h7qgEePCUoe8yZfjlzi9SSaw=";
        assert!(verify("lètmein".as_bytes(), hash, &mut memory));
        assert!(!verify(b"letmein", hash, &mut memory));
    }

    #[test]
    fn unusable_unknown_and_malformed_hashes_never_match() {
        let mut memory = Vec::new();
        for stored in [
            "!sNOuLZFynXxuijQukK0P1S6bSJnwKSIXGzfQYrlQ",
            "md5$seasalt$f5531bef9f3687d0ccf0f617f0e25573",
            "",
            "pbkdf2_sha256$",
            "pbkdf2_sha256$abc$salt$hash",
            "pbkdf2_sha256$999999999$salt$AAAA",
            "scrypt$3$salt$8$1$AAAA",
            "bcrypt$$2b$31$WYfIVKv1iBWg72G0EMCD0uyTgOVUuwhAskb.jDO3osqP4ayUkm52i",
            "argon2$argon2id$v=19$m=4194304,t=2,p=1$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAA",
        ] {
            assert!(!verify(b"", stored, &mut memory), "{stored}");
            assert!(!verify(b"letmein", stored, &mut memory), "{stored}");
        }
        assert_eq!(DjangoHasher::of("md5$x$y"), None);
    }

    #[test]
    fn hashes_costing_far_more_than_djangos_defaults_are_refused_at_once() {
        let mut memory = Vec::new();
        for stored in [
            "pbkdf2_sha256$10000000$salt$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            "bcrypt$$2b$16$WYfIVKv1iBWg72G0EMCD0uyTgOVUuwhAskb.jDO3osqP4ayUkm52i",
            "bcrypt_sha256$$2b$14$GSsUDzKtG5gBxmjtr1GgEeWOrT422PnXgdh9dTmXDYxhH5nOn",
            "argon2$argon2id$v=19$m=262144,t=16,p=1$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAA",
            "argon2$argon2id$v=19$m=102400,t=8,p=8$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAA",
            "scrypt$1048576$salt$2$16$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==",
            "scrypt$16384$salt$8$64$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==",
        ] {
            let started = std::time::Instant::now();
            assert!(!verify(b"letmein", stored, &mut memory), "{stored}");
            assert!(
                started.elapsed() < std::time::Duration::from_millis(500),
                "{stored} was computed"
            );
        }
        assert_eq!(DjangoHasher::of("!unusable"), None);
        assert_eq!(
            DjangoHasher::of("bcrypt_sha256$$2b$12$x"),
            Some(DjangoHasher::BcryptSha256)
        );
    }
}
