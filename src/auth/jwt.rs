//! Access tokens: HS256 JWTs with `sub`, `iat`, `exp`, `jti`, `iss`, `aud`.
//! Time is a parameter (`now`), so expiry is testable without sleeping.

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::domain::UserId;

/// Clock difference tolerated between instances when checking `exp`/`iat`.
const LEEWAY_SECS: i64 = 30;

#[derive(Debug, Serialize, Deserialize)]
pub struct AccessClaims {
    pub sub: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    pub iss: String,
    pub aud: String,
    /// The user's token version at issue; a password reset bumps it.
    pub ver: i32,
}

impl AccessClaims {
    pub fn user_id(&self) -> Option<UserId> {
        UserId::parse(&self.sub).ok()
    }
}

#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl_secs: i64,
    issuer: String,
    audience: String,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtKeys([REDACTED])")
    }
}

impl JwtKeys {
    pub fn new(secret: &[u8], ttl_secs: i64, issuer: &str, audience: &str) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        // Expiry is checked against our `now` below, not the library's clock.
        validation.validate_exp = false;
        validation.required_spec_claims = ["sub", "exp", "iat", "iss", "aud"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl_secs,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
        }
    }

    pub fn ttl_secs(&self) -> i64 {
        self.ttl_secs
    }

    /// A new access token for `user`, valid from `now` for the configured TTL.
    pub fn issue(
        &self,
        user: UserId,
        token_version: i32,
        now: DateTime<Utc>,
    ) -> Result<String, anyhow::Error> {
        let iat = now.timestamp();
        let claims = AccessClaims {
            sub: user.to_string(),
            iat,
            exp: iat + self.ttl_secs,
            jti: uuid::Uuid::new_v4().simple().to_string(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            ver: token_version,
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.encoding,
        )?)
    }

    /// The claims of a valid, unexpired token; `None` for anything else.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Option<AccessClaims> {
        let data = jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &self.validation)
            .map_err(|e| tracing::debug!(error = %e, "access token rejected"))
            .ok()?;
        let now = now.timestamp();
        let claims = data.claims;
        let live = claims.exp + LEEWAY_SECS > now && claims.iat - LEEWAY_SECS <= now;
        if !live {
            tracing::debug!("access token expired or not yet valid");
        }
        live.then_some(claims)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn keys() -> JwtKeys {
        JwtKeys::new(&[7u8; 32], 900, "smsauth", "smsauth")
    }

    #[test]
    fn a_fresh_token_verifies_and_names_the_user() {
        let user = UserId::new();
        let now = Utc::now();
        let token = keys().issue(user, 0, now).unwrap();
        let claims = keys().verify(&token, now).unwrap();
        assert_eq!(claims.user_id(), Some(user));
        assert_eq!(claims.exp - claims.iat, 900);
        assert!(!claims.jti.is_empty());
    }

    #[test]
    fn expired_forged_and_foreign_tokens_fail() {
        let now = Utc::now();
        let token = keys().issue(UserId::new(), 0, now).unwrap();
        assert!(
            keys()
                .verify(&token, now + chrono::Duration::seconds(900 + 31))
                .is_none()
        );
        let other = JwtKeys::new(&[8u8; 32], 900, "smsauth", "smsauth");
        assert!(other.verify(&token, now).is_none());
        let other_audience = JwtKeys::new(&[7u8; 32], 900, "smsauth", "elsewhere");
        assert!(other_audience.verify(&token, now).is_none());
        assert!(keys().verify("garbage", now).is_none());
        assert!(keys().verify("", now).is_none());
    }
}
