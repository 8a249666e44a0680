//! Tokens other services can verify (EdDSA/ES256 + JWKS): every check goes
//! through `jsonwebtoken`'s own JWK decoding of the served document, as a
//! relying service would, never through smsauth's verification code.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use ed25519_dalek::pkcs8::{DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use jsonwebtoken::jwk::{Jwk, JwkSet, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::LineEnding;
use serde_json::{Value, json};

use crate::helpers::{Setup, TestApp, error_code, run_to_exit, smsauth_command, spawn_setup};
use crate::on_each;

const ME: &str = "{ me { id username } }";
const PASSWORD: &str = "correct horse battery";

/// A key pair made for this test: PEM files on disk and the key itself.
pub struct TestKey {
    pub algorithm: Algorithm,
    pub private_file: String,
    pub public_file: String,
    pub encoding: EncodingKey,
}

impl TestKey {
    pub fn new(algorithm: Algorithm) -> Self {
        let mut seed = [0u8; 32];
        rand::fill(&mut seed);
        let (private, public) = match algorithm {
            Algorithm::EdDSA => {
                let key = ed25519_dalek::SigningKey::from_bytes(&seed);
                (
                    key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string(),
                    key.verifying_key()
                        .to_public_key_pem(LineEnding::LF)
                        .unwrap(),
                )
            }
            Algorithm::ES256 => {
                let key = p256::SecretKey::from_slice(&seed).unwrap();
                (
                    key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string(),
                    key.public_key().to_public_key_pem(LineEnding::LF).unwrap(),
                )
            }
            other => panic!("no test keys for {other:?}"),
        };
        let encoding = match algorithm {
            Algorithm::EdDSA => EncodingKey::from_ed_der(
                ed25519_dalek::SigningKey::from_bytes(&seed)
                    .to_pkcs8_der()
                    .unwrap()
                    .as_bytes(),
            ),
            _ => EncodingKey::from_ec_der(
                p256::SecretKey::from_slice(&seed)
                    .unwrap()
                    .to_pkcs8_der()
                    .unwrap()
                    .as_bytes(),
            ),
        };
        let dir = std::env::temp_dir();
        let id = uuid::Uuid::new_v4().simple();
        let private_file = dir.join(format!("smsauth-test-{id}.key.pem"));
        let public_file = dir.join(format!("smsauth-test-{id}.pub.pem"));
        std::fs::write(&private_file, private).unwrap();
        std::fs::write(&public_file, public).unwrap();
        Self {
            algorithm,
            private_file: private_file.display().to_string(),
            public_file: public_file.display().to_string(),
            encoding,
        }
    }

    /// The RFC 7638 thumbprint, computed by jsonwebtoken from the public key.
    pub fn kid(&self) -> String {
        let pem = std::fs::read_to_string(&self.public_file).unwrap();
        let decoding = match self.algorithm {
            Algorithm::EdDSA => DecodingKey::from_ed_der(
                ed25519_dalek::VerifyingKey::from_public_key_pem(&pem)
                    .unwrap()
                    .as_bytes(),
            ),
            _ => DecodingKey::from_ec_der(
                p256::PublicKey::from_public_key_pem(&pem)
                    .unwrap()
                    .to_encoded_point(false)
                    .as_bytes(),
            ),
        };
        Jwk::from_decoding_key(&decoding, Some(self.algorithm))
            .unwrap()
            .thumbprint(ThumbprintHash::SHA256)
            .unwrap()
    }

    /// A token for `user` signed with this key, as smsauth would sign it.
    pub fn sign(&self, user: &str, kid: Option<String>) -> String {
        let mut header = Header::new(self.algorithm);
        header.kid = kid;
        jsonwebtoken::encode(&header, &claims(user), &self.encoding).unwrap()
    }
}

fn claims(user: &str) -> Value {
    let now = Utc::now().timestamp();
    json!({
        "sub": user, "iat": now, "exp": now + 900, "jti": uuid::Uuid::new_v4().simple().to_string(),
        "iss": "smsauth", "aud": "smsauth", "ver": 0
    })
}

pub async fn spawn_with_key(setup: Setup, key: &TestKey, verify: &[&TestKey]) -> TestApp {
    let name = match key.algorithm {
        Algorithm::EdDSA => "EdDSA",
        _ => "ES256",
    };
    let verify: Vec<&str> = verify.iter().map(|k| k.public_file.as_str()).collect();
    spawn_setup(setup)
        .var("JWT_ALGORITHM", name)
        .var("JWT_PRIVATE_KEY_FILE", key.private_file.clone())
        .var("JWT_VERIFY_KEY_FILES", verify.join(","))
        .spawn()
        .await
}

async fn fetch_jwks(app: &TestApp) -> (reqwest::header::HeaderMap, JwkSet) {
    let response = app
        .client
        .get(format!("{}/.well-known/jwks.json", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    (headers, response.json().await.unwrap())
}

/// Verifies `token` as another service would: the served JWKS, the key its
/// `kid` names, that key's algorithm.
fn verify_like_a_relying_service(jwks: &JwkSet, token: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).unwrap();
    let jwk = jwks
        .find(header.kid.as_deref().expect("tokens carry a kid"))
        .expect("the kid is published");
    // The key's own `alg`, never the token's.
    let algorithm: Algorithm =
        serde_json::from_value(serde_json::to_value(jwk.common.key_algorithm).unwrap()).unwrap();
    let mut validation = Validation::new(algorithm);
    validation.set_audience(&["smsauth"]);
    validation.set_issuer(&["smsauth"]);
    jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
        .expect("the token verifies against the published key")
        .claims
}

async fn me(app: &TestApp, token: &str) -> Value {
    app.graphql_as(Some(token), ME, json!({})).await
}

async fn tokens_verify_against_the_published_jwks(setup: Setup) {
    for algorithm in [Algorithm::EdDSA, Algorithm::ES256] {
        // Arrange
        let key = TestKey::new(algorithm);
        let old = TestKey::new(algorithm);
        let app = spawn_with_key(setup, &key, &[&old]).await;
        let id = app
            .create_user("alice", "13711112222", None, PASSWORD)
            .await;

        // Act
        let token = app.login("alice", PASSWORD).await["accessToken"]
            .as_str()
            .unwrap()
            .to_owned();
        let (headers, jwks) = fetch_jwks(&app).await;

        // Assert: the JWKS lists both keys, public parts only, and caches.
        let cache = headers["cache-control"].to_str().unwrap();
        assert!(cache.contains("max-age="), "{cache}");
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
        let kids: Vec<_> = jwks
            .keys
            .iter()
            .map(|k| k.common.key_id.clone().unwrap())
            .collect();
        assert_eq!(
            kids,
            [key.kid(), old.kid()],
            "signing key first, then the old one"
        );
        let raw: Value = serde_json::to_value(&jwks).unwrap();
        for published in raw["keys"].as_array().unwrap() {
            assert_eq!(published["use"], "sig");
            assert_eq!(published["alg"], json!(algorithm));
            assert!(published.get("d").is_none(), "a private part: {published}");
        }
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, algorithm);
        assert_eq!(header.kid, Some(key.kid()));
        let claims = verify_like_a_relying_service(&jwks, &token);
        assert_eq!(claims["sub"], id.to_string());
        assert_eq!(error_code(&me(&app, &token).await), None);
    }
}

async fn a_rotated_out_key_still_verifies(setup: Setup) {
    for algorithm in [Algorithm::EdDSA, Algorithm::ES256] {
        // Arrange: the new key signs; the old one is only listed for verifying.
        let old = TestKey::new(algorithm);
        let new = TestKey::new(algorithm);
        let app = spawn_with_key(setup, &new, &[&old]).await;
        let id = app
            .create_user("alice", "13711112222", None, PASSWORD)
            .await;
        let issued_before_rotation = old.sign(&id.to_string(), Some(old.kid()));

        // Act
        let answer = me(&app, &issued_before_rotation).await;

        // Assert
        assert_eq!(error_code(&answer), None, "{answer}");
        assert_eq!(answer["data"]["me"]["id"], id.to_string());
        // Once the old key leaves JWT_VERIFY_KEY_FILES, its tokens stop working.
        let later = spawn_with_key(setup, &new, &[]).await;
        let id = later
            .create_user("alice", "13711112222", None, PASSWORD)
            .await;
        let old_token = old.sign(&id.to_string(), Some(old.kid()));
        assert_eq!(
            error_code(&me(&later, &old_token).await).as_deref(),
            Some("UNAUTHENTICATED")
        );
    }
}

async fn foreign_and_confused_tokens_are_unauthenticated(setup: Setup) {
    // Arrange
    let key = TestKey::new(Algorithm::EdDSA);
    let app = spawn_with_key(setup, &key, &[]).await;
    let id = app
        .create_user("alice", "13711112222", None, PASSWORD)
        .await;
    let user = id.to_string();
    let stranger = TestKey::new(Algorithm::EdDSA);
    let (_, jwks) = fetch_jwks(&app).await;
    let published = DecodingKey::from_jwk(&jwks.keys[0]).unwrap();
    let public_bytes = published.try_get_as_bytes().unwrap().to_vec();
    let hs256 = |secret: &[u8], kid: Option<String>| {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = kid;
        jsonwebtoken::encode(&header, &claims(&user), &EncodingKey::from_secret(secret)).unwrap()
    };
    let unsigned = |header: Value| {
        let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        format!("{}.{}.", part(&header), part(&claims(&user)))
    };
    let cases = [
        ("an unknown kid", stranger.sign(&user, Some(stranger.kid()))),
        (
            "a stranger's key under our kid",
            stranger.sign(&user, Some(key.kid())),
        ),
        ("no kid", key.sign(&user, None)),
        (
            "HS256 with JWT_SECRET",
            hs256(b"test-secret-that-is-at-least-32-bytes-long", None),
        ),
        (
            "HS256 keyed with our public key",
            hs256(&public_bytes, Some(key.kid())),
        ),
        (
            "alg none",
            unsigned(json!({"alg": "none", "typ": "JWT", "kid": key.kid()})),
        ),
        (
            "alg None",
            unsigned(json!({"alg": "None", "kid": key.kid()})),
        ),
    ];
    // The genuine article works, so the refusals below are about the token.
    let genuine = key.sign(&user, Some(key.kid()));
    assert_eq!(error_code(&me(&app, &genuine).await), None);

    for (what, token) in cases {
        // Act
        let answer = me(&app, &token).await;

        // Assert
        assert_eq!(
            error_code(&answer).as_deref(),
            Some("UNAUTHENTICATED"),
            "{what}: {answer}"
        );
    }
}

async fn hs256_publishes_an_empty_jwks(setup: Setup) {
    let app = spawn_setup(setup).spawn().await;
    let (headers, jwks) = fetch_jwks(&app).await;
    assert!(jwks.keys.is_empty());
    assert!(headers.contains_key("cache-control"));
    let body = app
        .client
        .get(format!("{}/.well-known/jwks.json", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, r#"{"keys":[]}"#);
}

on_each!(setups:
    tokens_verify_against_the_published_jwks,
    a_rotated_out_key_still_verifies,
    foreign_and_confused_tokens_are_unauthenticated,
    hs256_publishes_an_empty_jwks,
);

/// A bad key file stops the real binary at start with exit 2, naming the variable.
#[test]
fn bad_key_files_stop_start_up_naming_the_variable() {
    let key = TestKey::new(Algorithm::EdDSA);
    let ec = TestKey::new(Algorithm::ES256);
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("JWT_ALGORITHM", "EdDSA")], "JWT_PRIVATE_KEY_FILE"),
        (
            &[
                ("JWT_ALGORITHM", "EdDSA"),
                ("JWT_PRIVATE_KEY_FILE", "/nonexistent/key.pem"),
            ],
            "JWT_PRIVATE_KEY_FILE",
        ),
        (
            &[
                ("JWT_ALGORITHM", "ES256"),
                ("JWT_PRIVATE_KEY_FILE", &key.private_file),
            ],
            "JWT_PRIVATE_KEY_FILE",
        ),
        (
            &[
                ("JWT_ALGORITHM", "EdDSA"),
                ("JWT_PRIVATE_KEY_FILE", &key.private_file),
                ("JWT_VERIFY_KEY_FILES", &ec.public_file),
            ],
            "JWT_VERIFY_KEY_FILES",
        ),
        (&[("JWT_ALGORITHM", "RS256")], "JWT_ALGORITHM"),
    ];
    for (vars, named) in cases {
        let output = run_to_exit(smsauth_command(&["serve"]).envs(vars.iter().copied()));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{vars:?}: {stderr}");
        let line = stderr.lines().last().unwrap_or_default();
        assert!(line.contains(named), "{vars:?}: {stderr}");
        assert!(!stderr.contains("PRIVATE KEY-----"), "{stderr}");
    }
}
