//! Refresh tokens: 256 random bits, shown to the client once, stored only as
//! their SHA-256. A fixed prefix tells what kind of secret a leaked string is.

use sha2::{Digest, Sha256};

const PREFIX: &str = "smsauth_rt_";

/// The token as handed to the client. `Debug` does not print it.
pub struct PlainRefreshToken(String);

impl PlainRefreshToken {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::fill(&mut bytes);
        Self(format!("{PREFIX}{}", hex::encode(bytes)))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hashed(&self) -> String {
        hash_refresh_token(&self.0)
    }
}

impl std::fmt::Debug for PlainRefreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PlainRefreshToken([REDACTED])")
    }
}

/// The stored form of a presented token (hex SHA-256). A token of a foreign
/// shape hashes too and simply matches nothing.
pub fn hash_refresh_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.trim().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_prefixed_and_hash_stably() {
        let a = PlainRefreshToken::generate();
        let b = PlainRefreshToken::generate();
        assert_ne!(a.expose(), b.expose());
        assert!(a.expose().starts_with(PREFIX));
        assert_eq!(a.expose().len(), PREFIX.len() + 64);
        assert_eq!(a.hashed(), hash_refresh_token(a.expose()));
        assert_ne!(a.hashed(), a.expose());
        assert!(!format!("{a:?}").contains(&a.expose()[PREFIX.len()..]));
    }
}
