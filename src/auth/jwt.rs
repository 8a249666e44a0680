//! Access tokens: JWTs with `sub`, `iat`, `exp`, `jti`, `iss`, `aud`, `ver`,
//! signed with HS256 (one shared secret) or with an asymmetric key (EdDSA,
//! ES256; see `signing_keys`) whose public half other services can fetch.
//! Time is a parameter (`now`), so expiry is testable without sleeping.
//!
//! No algorithm confusion: a server verifies with exactly one algorithm, and
//! with asymmetric keys only with the key the token's `kid` names. A token
//! whose header names another algorithm (`HS256` on an EdDSA server, `none`)
//! fails before any signature check.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::signing_keys::SigningKeys;
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
enum Keys {
    /// HS256: one secret signs and verifies.
    Shared {
        encoding: EncodingKey,
        decoding: DecodingKey,
    },
    /// EdDSA or ES256: a private key signs, public keys (found by `kid`) verify.
    Asymmetric(Arc<SigningKeys>),
}

#[derive(Clone)]
pub struct JwtKeys {
    keys: Keys,
    /// Allows exactly the one algorithm of `keys`.
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
    /// HS256 tokens keyed with `secret`.
    pub fn new(secret: &[u8], ttl_secs: i64, issuer: &str, audience: &str) -> Self {
        let keys = Keys::Shared {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        };
        Self::with_keys(keys, Algorithm::HS256, ttl_secs, issuer, audience)
    }

    /// EdDSA or ES256 tokens signed with `keys`' private key, each with its `kid`.
    pub fn asymmetric(keys: Arc<SigningKeys>, ttl_secs: i64, issuer: &str, audience: &str) -> Self {
        let algorithm = keys.algorithm().jwt_algorithm();
        Self::with_keys(
            Keys::Asymmetric(keys),
            algorithm,
            ttl_secs,
            issuer,
            audience,
        )
    }

    fn with_keys(
        keys: Keys,
        algorithm: Algorithm,
        ttl_secs: i64,
        issuer: &str,
        audience: &str,
    ) -> Self {
        // `Validation::new` allows this one algorithm and no other.
        let mut validation = Validation::new(algorithm);
        // Expiry is checked against our `now` below, not the library's clock.
        validation.validate_exp = false;
        validation.required_spec_claims = ["sub", "exp", "iat", "iss", "aud"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        Self {
            keys,
            validation,
            ttl_secs,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
        }
    }

    pub fn ttl_secs(&self) -> i64 {
        self.ttl_secs
    }

    /// The public keys other services verify tokens with (empty for HS256,
    /// whose secret is never published).
    pub fn jwks(&self) -> JwkSet {
        match &self.keys {
            Keys::Shared { .. } => JwkSet::default(),
            Keys::Asymmetric(keys) => keys.jwks(),
        }
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
        let (header, key) = match &self.keys {
            Keys::Shared { encoding, .. } => (Header::new(Algorithm::HS256), encoding),
            Keys::Asymmetric(keys) => (keys.header(), keys.signing_key()),
        };
        Ok(jsonwebtoken::encode(&header, &claims, key)?)
    }

    /// The key to check `token` with: the shared secret, or the public key
    /// its `kid` names (none for a missing or unknown `kid`).
    fn decoding_key_for(&self, token: &str) -> Option<&DecodingKey> {
        match &self.keys {
            Keys::Shared { decoding, .. } => Some(decoding),
            Keys::Asymmetric(keys) => {
                let header = jsonwebtoken::decode_header(token)
                    .map_err(|e| tracing::debug!(error = %e, "access token header rejected"))
                    .ok()?;
                let key = header.kid.as_deref().and_then(|kid| keys.find(kid));
                if key.is_none() {
                    tracing::debug!("access token names no key of ours");
                }
                key
            }
        }
    }

    /// The claims of a valid, unexpired token; `None` for anything else.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Option<AccessClaims> {
        let key = self.decoding_key_for(token)?;
        let data = jsonwebtoken::decode::<AccessClaims>(token, key, &self.validation)
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod asymmetric_tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::jwk::Jwk;

    use super::*;
    use crate::auth::signing_keys::AsymmetricAlgorithm;
    use crate::auth::signing_keys::tests::key_pair;

    fn keys_of(algorithm: AsymmetricAlgorithm, private: &str, old: &[String]) -> JwtKeys {
        let old: Vec<(String, String)> = old
            .iter()
            .map(|pem| ("old.pem".to_owned(), pem.clone()))
            .collect();
        let keys = SigningKeys::from_pem(algorithm, private, &old).unwrap();
        JwtKeys::asymmetric(Arc::new(keys), 900, "smsauth", "smsauth")
    }

    fn claims(now: DateTime<Utc>) -> serde_json::Value {
        serde_json::json!({
            "sub": UserId::new().to_string(), "iat": now.timestamp(),
            "exp": now.timestamp() + 900, "jti": "x", "iss": "smsauth", "aud": "smsauth", "ver": 0
        })
    }

    #[test]
    fn tokens_carry_the_kid_and_verify_after_rotation() {
        for algorithm in [AsymmetricAlgorithm::EdDsa, AsymmetricAlgorithm::Es256] {
            let (old_private, old_public) = key_pair(algorithm);
            let (new_private, _) = key_pair(algorithm);
            let before = keys_of(algorithm, &old_private, &[]);
            let after = keys_of(algorithm, &new_private, &[old_public]);
            let now = Utc::now();
            let old_token = before.issue(UserId::new(), 0, now).unwrap();
            let new_token = after.issue(UserId::new(), 0, now).unwrap();
            let header = jsonwebtoken::decode_header(&new_token).unwrap();
            assert_eq!(header.alg, algorithm.jwt_algorithm());
            assert_eq!(
                header.kid.as_deref(),
                after.jwks().keys[0].common.key_id.as_deref()
            );
            assert!(after.verify(&old_token, now).is_some(), "{algorithm:?}");
            assert!(after.verify(&new_token, now).is_some(), "{algorithm:?}");
            // Without the old key listed, its tokens are unknown.
            let without_old = keys_of(algorithm, &new_private, &[]);
            assert!(without_old.verify(&old_token, now).is_none());
        }
    }

    #[test]
    fn no_algorithm_confusion() {
        let algorithm = AsymmetricAlgorithm::EdDsa;
        let (private, _) = key_pair(algorithm);
        let server = keys_of(algorithm, &private, &[]);
        let jwk: Jwk = server.jwks().keys[0].clone();
        let kid = jwk.common.key_id.clone().unwrap();
        let now = Utc::now();

        // HS256 keyed with the published public key, naming our kid.
        let public = DecodingKey::from_jwk(&jwk).unwrap();
        let public_bytes = public.try_get_as_bytes().unwrap().to_vec();
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(kid.clone());
        let forged = jsonwebtoken::encode(
            &header,
            &claims(now),
            &EncodingKey::from_secret(&public_bytes),
        )
        .unwrap();
        assert!(server.verify(&forged, now).is_none());

        // An HS256 token from a v1 server.
        let hs256 = JwtKeys::new(&[7u8; 32], 900, "smsauth", "smsauth");
        let token = hs256.issue(UserId::new(), 0, now).unwrap();
        assert!(server.verify(&token, now).is_none());

        // `alg: none`, with and without our kid.
        for header in [
            serde_json::json!({"alg": "none", "typ": "JWT", "kid": kid}),
            serde_json::json!({"alg": "none", "typ": "JWT"}),
        ] {
            let encode = |value: &serde_json::Value| URL_SAFE_NO_PAD.encode(value.to_string());
            let unsigned = format!("{}.{}.", encode(&header), encode(&claims(now)));
            assert!(server.verify(&unsigned, now).is_none());
        }

        // A genuine token whose kid was changed to one we do not have.
        let genuine = server.issue(UserId::new(), 0, now).unwrap();
        let (head, rest) = genuine.split_once('.').unwrap();
        let mut decoded: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(head).unwrap()).unwrap();
        decoded["kid"] = "someone-else".into();
        let renamed = format!("{}.{rest}", URL_SAFE_NO_PAD.encode(decoded.to_string()));
        assert!(server.verify(&renamed, now).is_none());
        assert!(server.verify(&genuine, now).is_some());
    }

    #[test]
    fn hs256_publishes_nothing() {
        let hs256 = JwtKeys::new(&[7u8; 32], 900, "smsauth", "smsauth");
        assert!(hs256.jwks().keys.is_empty());
    }
}
