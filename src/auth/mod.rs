//! Proving who someone is: password hashes (smsauth's Argon2id and, for
//! imported users, Django's) and access tokens.

mod jwt;
mod password_hash;
mod refresh;
pub(crate) mod signing_keys;

pub use django_hashers::DjangoHasher;
pub use jwt::{AccessClaims, JwtKeys};
pub use password_hash::{PasswordCheck, PasswordHasher};
pub use refresh::{PlainRefreshToken, hash_refresh_token};
pub use signing_keys::{AsymmetricAlgorithm, KeyProblem, SigningKeys};
