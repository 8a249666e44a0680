//! Proving who someone is: password hashes and access tokens.

mod jwt;
mod password_hash;
mod refresh;

pub use jwt::{AccessClaims, JwtKeys};
pub use password_hash::PasswordHasher;
pub use refresh::{PlainRefreshToken, hash_refresh_token};
