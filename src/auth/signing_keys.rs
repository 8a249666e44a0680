//! Asymmetric signing keys for access tokens (`JWT_ALGORITHM=EdDSA|ES256`):
//! the private key that signs, the public keys that verify (its own and the
//! rotated-out ones of `JWT_VERIFY_KEY_FILES`), and the JWKS that publishes
//! them. Each key's `kid` is its RFC 7638 thumbprint, so it names exactly one
//! public key and needs no bookkeeping.
//!
//! PEM files are parsed with the curve crates themselves (`ed25519-dalek`,
//! `p256`), which reject anything that is not a valid key of their curve, and
//! every loaded key signs and verifies a probe once, so a wrong file stops
//! start-up instead of the first sign-in.

use std::sync::Arc;

use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};

/// The asymmetric algorithms `JWT_ALGORITHM` may name besides `HS256`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AsymmetricAlgorithm {
    /// Ed25519 signatures (RFC 8037).
    EdDsa,
    /// ECDSA on P-256 with SHA-256.
    Es256,
}

impl AsymmetricAlgorithm {
    pub fn jwt_algorithm(self) -> Algorithm {
        match self {
            Self::EdDsa => Algorithm::EdDSA,
            Self::Es256 => Algorithm::ES256,
        }
    }

    /// The name in `JWT_ALGORITHM` and in the tokens' `alg` header.
    pub fn name(self) -> &'static str {
        match self {
            Self::EdDsa => "EdDSA",
            Self::Es256 => "ES256",
        }
    }

    fn key_kind(self) -> &'static str {
        match self {
            Self::EdDsa => "Ed25519",
            Self::Es256 => "P-256",
        }
    }
}

/// One public key tokens may be verified with.
#[derive(Clone)]
pub struct VerifyingKey {
    pub kid: String,
    decoding: DecodingKey,
    jwk: Jwk,
}

/// The signing key and every key accepted when verifying, loaded once at start.
#[derive(Clone)]
pub struct SigningKeys {
    algorithm: AsymmetricAlgorithm,
    signing: EncodingKey,
    signing_kid: String,
    /// The signing key's own public key first, then the rotated-out ones.
    verifying: Arc<[VerifyingKey]>,
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Key ids are public (they are in every token); the private key is not.
        f.debug_struct("SigningKeys")
            .field("algorithm", &self.algorithm.name())
            .field("signing_kid", &self.signing_kid)
            .field(
                "verifying_kids",
                &self.verifying.iter().map(|k| &k.kid).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// Which input a key problem is about, so the configuration can name it.
#[derive(Debug, PartialEq, Eq)]
pub enum KeyProblem {
    PrivateKey(String),
    VerifyKey(String),
}

impl SigningKeys {
    /// Loads the PKCS#8 private key `private_pem` and the SPKI public keys
    /// `verify_pems` (`(name, pem)`; the name appears in errors), all of
    /// `algorithm`. A verify key equal to the signing key is fine (listed once).
    pub fn from_pem(
        algorithm: AsymmetricAlgorithm,
        private_pem: &str,
        verify_pems: &[(String, String)],
    ) -> Result<Self, KeyProblem> {
        let (signing, own_public) = private_key(algorithm, private_pem).map_err(|problem| {
            KeyProblem::PrivateKey(format!(
                "is not a PKCS#8 PEM {} private key (\"BEGIN PRIVATE KEY\"; `openssl pkcs8 -topk8 -nocrypt` converts others) as JWT_ALGORITHM={} needs: {problem}",
                algorithm.key_kind(),
                algorithm.name()
            ))
        })?;
        let own = verifying_key(algorithm, own_public)
            .map_err(|problem| KeyProblem::PrivateKey(problem.to_string()))?;
        let signing_kid = own.kid.clone();
        let mut verifying = vec![own];
        for (name, pem) in verify_pems {
            let public = public_key(algorithm, pem).map_err(|problem| {
                KeyProblem::VerifyKey(format!(
                    "{name} is not a PEM {} public key (\"BEGIN PUBLIC KEY\") as JWT_ALGORITHM={} needs: {problem}",
                    algorithm.key_kind(),
                    algorithm.name()
                ))
            })?;
            let key = verifying_key(algorithm, public)
                .map_err(|problem| KeyProblem::VerifyKey(format!("{name}: {problem}")))?;
            if verifying.iter().all(|known| known.kid != key.kid) {
                verifying.push(key);
            }
        }
        let keys = Self {
            algorithm,
            signing,
            signing_kid,
            verifying: verifying.into(),
        };
        keys.probe().map_err(|problem| {
            KeyProblem::PrivateKey(format!("cannot sign and verify with this key: {problem}"))
        })?;
        Ok(keys)
    }

    pub fn algorithm(&self) -> AsymmetricAlgorithm {
        self.algorithm
    }

    pub fn signing_key(&self) -> &EncodingKey {
        &self.signing
    }

    /// The header of a new token: the algorithm and the signing key's `kid`.
    pub fn header(&self) -> Header {
        let mut header = Header::new(self.algorithm.jwt_algorithm());
        header.kid = Some(self.signing_kid.clone());
        header
    }

    /// The key a token's `kid` names, if it is one of ours.
    pub fn find(&self, kid: &str) -> Option<&DecodingKey> {
        self.verifying
            .iter()
            .find(|key| key.kid == kid)
            .map(|key| &key.decoding)
    }

    /// Every public key, as published at `/.well-known/jwks.json`.
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: self.verifying.iter().map(|key| key.jwk.clone()).collect(),
        }
    }

    /// Signs and verifies a throwaway token with the loaded keys.
    fn probe(&self) -> Result<(), jsonwebtoken::errors::Error> {
        #[derive(serde::Serialize, serde::Deserialize)]
        struct Probe {
            exp: i64,
        }
        let token = jsonwebtoken::encode(&self.header(), &Probe { exp: i64::MAX }, &self.signing)?;
        let decoding = self
            .find(&self.signing_kid)
            .ok_or(jsonwebtoken::errors::ErrorKind::InvalidKeyFormat)?;
        let mut validation = Validation::new(self.algorithm.jwt_algorithm());
        validation.required_spec_claims.clear();
        jsonwebtoken::decode::<Probe>(&token, decoding, &validation)?;
        Ok(())
    }
}

/// The raw public key bytes jsonwebtoken expects: Ed25519's 32 bytes, or
/// P-256's uncompressed SEC1 point.
struct PublicBytes(Vec<u8>);

fn private_key(
    algorithm: AsymmetricAlgorithm,
    pem: &str,
) -> Result<(EncodingKey, PublicBytes), String> {
    use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
    match algorithm {
        AsymmetricAlgorithm::EdDsa => {
            let key = ed25519_dalek::SigningKey::from_pkcs8_pem(pem).map_err(|e| e.to_string())?;
            let der = key.to_pkcs8_der().map_err(|e| e.to_string())?;
            Ok((
                EncodingKey::from_ed_der(der.as_bytes()),
                PublicBytes(key.verifying_key().as_bytes().to_vec()),
            ))
        }
        AsymmetricAlgorithm::Es256 => {
            let key = p256::SecretKey::from_pkcs8_pem(pem).map_err(|e| e.to_string())?;
            let der = key.to_pkcs8_der().map_err(|e| e.to_string())?;
            Ok((
                EncodingKey::from_ec_der(der.as_bytes()),
                PublicBytes(p256_point(&key.public_key())),
            ))
        }
    }
}

fn public_key(algorithm: AsymmetricAlgorithm, pem: &str) -> Result<PublicBytes, String> {
    use ed25519_dalek::pkcs8::DecodePublicKey;
    match algorithm {
        AsymmetricAlgorithm::EdDsa => ed25519_dalek::VerifyingKey::from_public_key_pem(pem)
            .map(|key| PublicBytes(key.as_bytes().to_vec()))
            .map_err(|e| e.to_string()),
        AsymmetricAlgorithm::Es256 => p256::PublicKey::from_public_key_pem(pem)
            .map(|key| PublicBytes(p256_point(&key)))
            .map_err(|e| e.to_string()),
    }
}

fn p256_point(key: &p256::PublicKey) -> Vec<u8> {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    key.to_encoded_point(false).as_bytes().to_vec()
}

/// The decoding key, the public JWK (`kid`, `alg`, `use: sig`) and its thumbprint.
fn verifying_key(
    algorithm: AsymmetricAlgorithm,
    public: PublicBytes,
) -> Result<VerifyingKey, jsonwebtoken::errors::Error> {
    let decoding = match algorithm {
        AsymmetricAlgorithm::EdDsa => DecodingKey::from_ed_der(&public.0),
        AsymmetricAlgorithm::Es256 => DecodingKey::from_ec_der(&public.0),
    };
    let mut jwk = Jwk::from_decoding_key(&decoding, Some(algorithm.jwt_algorithm()))?;
    let kid = jwk.thumbprint(ThumbprintHash::SHA256)?;
    jwk.common.key_id = Some(kid.clone());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    Ok(VerifyingKey { kid, decoding, jwk })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;
    use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey};
    use p256::pkcs8::LineEnding;

    /// A fresh key pair of `algorithm`: (private PKCS#8 PEM, public SPKI PEM).
    pub(crate) fn key_pair(algorithm: AsymmetricAlgorithm) -> (String, String) {
        let mut seed = [0u8; 32];
        rand::fill(&mut seed);
        match algorithm {
            AsymmetricAlgorithm::EdDsa => {
                let key = ed25519_dalek::SigningKey::from_bytes(&seed);
                (
                    key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string(),
                    key.verifying_key()
                        .to_public_key_pem(LineEnding::LF)
                        .unwrap(),
                )
            }
            AsymmetricAlgorithm::Es256 => {
                let key = p256::SecretKey::from_slice(&seed).unwrap();
                (
                    key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string(),
                    key.public_key().to_public_key_pem(LineEnding::LF).unwrap(),
                )
            }
        }
    }

    #[test]
    fn the_kid_is_the_rfc7638_thumbprint() {
        // RFC 8037 appendix A.3: the thumbprint of its Ed25519 example key
        // (x = 11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo).
        let x = hex::decode("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
            .unwrap();
        let key = verifying_key(AsymmetricAlgorithm::EdDsa, PublicBytes(x)).unwrap();
        assert_eq!(key.kid, "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
        let jwk = serde_json::to_value(&key.jwk).unwrap();
        assert_eq!(jwk["x"], "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo");
    }

    #[test]
    fn each_algorithm_loads_and_publishes_only_public_parts() {
        for algorithm in [AsymmetricAlgorithm::EdDsa, AsymmetricAlgorithm::Es256] {
            let (private, _) = key_pair(algorithm);
            let (_, old_public) = key_pair(algorithm);
            let keys =
                SigningKeys::from_pem(algorithm, &private, &[("old.pem".into(), old_public)])
                    .unwrap();
            let jwks = serde_json::to_value(keys.jwks()).unwrap();
            let listed = jwks["keys"].as_array().unwrap();
            assert_eq!(listed.len(), 2);
            for key in listed {
                assert_eq!(key["alg"], algorithm.name());
                assert_eq!(key["use"], "sig");
                assert!(key.get("d").is_none(), "no private part: {key}");
            }
            assert_eq!(listed[0]["kid"], keys.header().kid.unwrap().as_str());
        }
    }

    #[test]
    fn wrong_files_are_refused_with_what_they_are() {
        let (ed_private, ed_public) = key_pair(AsymmetricAlgorithm::EdDsa);
        let (ec_private, ec_public) = key_pair(AsymmetricAlgorithm::Es256);
        let ed = AsymmetricAlgorithm::EdDsa;
        let es = AsymmetricAlgorithm::Es256;
        for (algorithm, private) in [
            (ed, ec_private.as_str()),
            (es, ed_private.as_str()),
            (ed, ed_public.as_str()),
            (ed, "not a key"),
            (es, ""),
        ] {
            assert!(matches!(
                SigningKeys::from_pem(algorithm, private, &[]),
                Err(KeyProblem::PrivateKey(_))
            ));
        }
        for (algorithm, private, public) in [
            (ed, &ed_private, &ec_public),
            (es, &ec_private, &ed_public),
            (ed, &ed_private, &ed_private),
        ] {
            let problem =
                SigningKeys::from_pem(algorithm, private, &[("old.pem".into(), public.clone())])
                    .err()
                    .unwrap();
            assert!(
                matches!(&problem, KeyProblem::VerifyKey(text) if text.contains("old.pem")),
                "{problem:?}"
            );
        }
    }

    #[test]
    fn debug_shows_no_private_key() {
        let (private, _) = key_pair(AsymmetricAlgorithm::EdDsa);
        let keys = SigningKeys::from_pem(AsymmetricAlgorithm::EdDsa, &private, &[]).unwrap();
        let shown = format!("{keys:?}");
        assert!(shown.contains(&keys.signing_kid));
        assert!(!shown.contains("PRIVATE"));
    }
}
