//! TC3-HMAC-SHA256, the request signature of Tencent Cloud API 3.0, as pure functions.
//!
//! Tencent answers a wrong signature with one opaque `AuthFailure.SignatureFailure`, so the
//! signer is kept free of clocks, I/O and HTTP types and is checked step by step against
//! golden vectors computed by Tencent's official SDK (`shared/tencent-tc3-vectors.json`).
//! The caller passes what it will put on the wire and gets back every intermediate value:
//!
//! - `payload` is the exact body bytes that will be sent: serialize once, sign those bytes,
//!   send those bytes;
//! - `host` is the `Host` header that will be sent, `host[:port]` (`config::ProviderEndpoint::host`);
//! - `content_type` is the `Content-Type` header that will be sent;
//! - `timestamp` is taken once per request; send [`Signature::timestamp`] as `X-TC-Timestamp`.
//!
//! Only `content-type` and `host` are signed, as the SDKs do; the other `X-TC-*` headers are
//! sent unsigned (the timestamp is covered through the string to sign). The request is always
//! `POST /` with no query string, the only shape `SendSms` needs.

use std::fmt;

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

/// The algorithm name, first word of `Authorization` and first line of the string to sign.
pub const ALGORITHM: &str = "TC3-HMAC-SHA256";
/// The service in the credential scope: the host's first label, `sms`.
pub const SERVICE: &str = "sms";
/// The headers covered by the signature, lowercase, sorted, `;`-separated.
pub const SIGNED_HEADERS: &str = "content-type;host";

/// Everything the signature covers, borrowed from the request about to be sent.
pub struct SigningInput<'a> {
    /// `TENCENT_SECRET_ID`; appears in clear in `Authorization`.
    pub secret_id: &'a str,
    /// `TENCENT_SECRET_KEY`; never printed (see the `Debug` impl).
    pub secret_key: &'a str,
    /// The `Host` header value as sent: `host[:port]`, see `config::ProviderEndpoint::host`.
    pub host: &'a str,
    /// The `Content-Type` header value as sent, e.g. `application/json`.
    pub content_type: &'a str,
    /// The request time; its Unix seconds go to `X-TC-Timestamp`, its UTC date to the scope.
    pub timestamp: DateTime<Utc>,
    /// The exact body bytes that will be sent.
    pub payload: &'a [u8],
}

impl fmt::Debug for SigningInput<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The body holds the mobile number and the code, the key is a credential: neither is printed.
        f.debug_struct("SigningInput")
            .field("secret_id", &self.secret_id)
            .field("secret_key", &"[redacted]")
            .field("host", &self.host)
            .field("content_type", &self.content_type)
            .field("timestamp", &self.timestamp)
            .field("payload", &format_args!("[{} bytes]", self.payload.len()))
            .finish()
    }
}

/// The result of signing, with each intermediate step named as in Tencent's documentation.
///
/// Holds nothing secret (the derived keys stay inside this module), so it can be logged
/// when a signature is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// The `X-TC-Timestamp` header value: Unix seconds, decimal.
    pub timestamp: String,
    /// UTC date of the timestamp, `YYYY-MM-DD`.
    pub date: String,
    /// `<date>/sms/tc3_request`.
    pub credential_scope: String,
    /// Lowercase hex SHA-256 of the body bytes.
    pub hashed_request_payload: String,
    pub canonical_request: String,
    pub hashed_canonical_request: String,
    pub string_to_sign: String,
    /// Lowercase hex HMAC-SHA256 of the string to sign.
    pub signature: String,
    /// The `Authorization` header value.
    pub authorization: String,
}

/// Signs a `POST /` request with TC3-HMAC-SHA256.
#[must_use]
pub fn sign(input: &SigningInput<'_>) -> Signature {
    let timestamp = input.timestamp.timestamp().to_string();
    // UTC, not Beijing time: from 00:00 to 08:00 in Beijing the two dates differ.
    let date = input.timestamp.format("%Y-%m-%d").to_string();
    let credential_scope = format!("{date}/{SERVICE}/tc3_request");

    let hashed_request_payload = sha256_hex(input.payload);
    // Method, URI, empty query string, canonical headers (each ending in '\n', then the
    // blank line that closes them), signed headers, payload hash.
    let canonical_request = format!(
        "POST\n/\n\ncontent-type:{}\nhost:{}\n\n{SIGNED_HEADERS}\n{hashed_request_payload}",
        canonical_header_value(input.content_type),
        canonical_header_value(input.host),
    );
    let hashed_canonical_request = sha256_hex(canonical_request.as_bytes());
    let string_to_sign =
        format!("{ALGORITHM}\n{timestamp}\n{credential_scope}\n{hashed_canonical_request}");

    let keys = SigningKeys::derive(input.secret_key, &date);
    let signature = hex::encode(hmac_sha256(&keys.secret_signing, string_to_sign.as_bytes()));
    let authorization = format!(
        "{ALGORITHM} Credential={}/{credential_scope}, SignedHeaders={SIGNED_HEADERS}, Signature={signature}",
        input.secret_id,
    );

    Signature {
        timestamp,
        date,
        credential_scope,
        hashed_request_payload,
        canonical_request,
        hashed_canonical_request,
        string_to_sign,
        signature,
        authorization,
    }
}

/// `CanonicalHeaders` values are lowercased and trimmed (the header sent need not be).
fn canonical_header_value(value: &str) -> String {
    value.trim().to_ascii_lowercase()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

type HmacSha256 = Hmac<Sha256>;

/// The key chain `"TC3" + SecretKey` → date → service → `tc3_request`, raw bytes throughout.
///
/// These keys are credentials (the last one signs anything for a whole day), so the type has
/// no `Debug` and never leaves this module.
struct SigningKeys {
    // Only the last key signs; the tests compare the other two with the vectors' steps.
    #[cfg_attr(not(test), allow(dead_code))]
    secret_date: [u8; 32],
    #[cfg_attr(not(test), allow(dead_code))]
    secret_service: [u8; 32],
    secret_signing: [u8; 32],
}

impl SigningKeys {
    fn derive(secret_key: &str, date: &str) -> Self {
        let secret_date = hmac_sha256(format!("TC3{secret_key}").as_bytes(), date.as_bytes());
        let secret_service = hmac_sha256(&secret_date, SERVICE.as_bytes());
        let secret_signing = hmac_sha256(&secret_service, b"tc3_request");
        SigningKeys {
            secret_date,
            secret_service,
            secret_signing,
        }
    }
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new(&hmac_key_block(key));
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// The HMAC key as one SHA-256 block (RFC 2104 §2: a key longer than the block is hashed
/// first, then the key is padded with zeros). HMAC over this block equals HMAC over `key`
/// (a unit test checks it against `new_from_slice`); building it ourselves lets us use the
/// infallible `KeyInit::new` instead of `new_from_slice`, whose error HMAC can never return.
fn hmac_key_block(key: &[u8]) -> hmac::digest::Key<HmacSha256> {
    let mut block = hmac::digest::Key::<HmacSha256>::default();
    if key.len() > block.len() {
        let hashed = Sha256::digest(key);
        block[..hashed.len()].copy_from_slice(&hashed);
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    block
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::*;

    /// Golden vectors from Tencent's official Python SDK; outside the crate, read at test time.
    const VECTORS_PATH: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/tencent-tc3-vectors.json"
    );

    #[derive(Deserialize)]
    struct VectorFile {
        vectors: Vec<Vector>,
    }

    #[derive(Deserialize)]
    struct Vector {
        name: String,
        secret_id: String,
        secret_key: String,
        timestamp: i64,
        host: String,
        method: String,
        canonical_uri: String,
        canonical_query_string: String,
        content_type: String,
        payload: String,
        headers: BTreeMap<String, String>,
        expected: Expected,
    }

    #[derive(Deserialize)]
    struct Expected {
        hashed_request_payload: String,
        date: String,
        credential_scope: String,
        canonical_request: String,
        hashed_canonical_request: String,
        string_to_sign: String,
        secret_date_hex: String,
        secret_service_hex: String,
        secret_signing_hex: String,
        signature: String,
        authorization: String,
    }

    fn load_vectors() -> Vec<Vector> {
        let text = std::fs::read_to_string(VECTORS_PATH).unwrap_or_else(|err| {
            panic!("the TC3 golden vectors must be readable at {VECTORS_PATH}: {err}")
        });
        let file: VectorFile = serde_json::from_str(&text)
            .unwrap_or_else(|err| panic!("{VECTORS_PATH} is not the expected JSON: {err}"));
        assert!(
            file.vectors.len() >= 3,
            "{VECTORS_PATH} holds {} vectors, expected at least 3",
            file.vectors.len()
        );
        file.vectors
    }

    fn at(timestamp: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(timestamp, 0).unwrap()
    }

    #[test]
    fn sign_reproduces_every_golden_vector_step_by_step() {
        for v in load_vectors() {
            let name = v.name.as_str();
            // Arrange: the signer only knows `POST /` without a query string.
            assert_eq!(v.method, "POST", "{name}");
            assert_eq!(v.canonical_uri, "/", "{name}");
            assert_eq!(v.canonical_query_string, "", "{name}");
            let input = SigningInput {
                secret_id: &v.secret_id,
                secret_key: &v.secret_key,
                host: &v.host,
                content_type: &v.content_type,
                timestamp: at(v.timestamp),
                payload: v.payload.as_bytes(),
            };

            // Act
            let got = sign(&input);
            let keys = SigningKeys::derive(&v.secret_key, &got.date);

            // Assert: every intermediate value, byte for byte.
            let e = &v.expected;
            assert_eq!(
                got.hashed_request_payload, e.hashed_request_payload,
                "{name}"
            );
            assert_eq!(got.date, e.date, "{name}");
            assert_eq!(got.credential_scope, e.credential_scope, "{name}");
            assert_eq!(got.canonical_request, e.canonical_request, "{name}");
            assert_eq!(
                got.hashed_canonical_request, e.hashed_canonical_request,
                "{name}"
            );
            assert_eq!(got.string_to_sign, e.string_to_sign, "{name}");
            assert_eq!(hex::encode(keys.secret_date), e.secret_date_hex, "{name}");
            assert_eq!(
                hex::encode(keys.secret_service),
                e.secret_service_hex,
                "{name}"
            );
            assert_eq!(
                hex::encode(keys.secret_signing),
                e.secret_signing_hex,
                "{name}"
            );
            assert_eq!(got.signature, e.signature, "{name}");
            assert_eq!(got.authorization, e.authorization, "{name}");
            assert_eq!(got.timestamp, v.timestamp.to_string(), "{name}");
        }
    }

    #[test]
    fn signed_values_match_the_headers_the_sdk_sends() {
        for v in load_vectors() {
            let name = v.name.as_str();
            let got = sign(&SigningInput {
                secret_id: &v.secret_id,
                secret_key: &v.secret_key,
                host: &v.host,
                content_type: &v.content_type,
                timestamp: at(v.timestamp),
                payload: v.payload.as_bytes(),
            });
            let header = |h: &str| v.headers.get(h).map(String::as_str);
            assert_eq!(
                header("Authorization"),
                Some(got.authorization.as_str()),
                "{name}"
            );
            assert_eq!(
                header("X-TC-Timestamp"),
                Some(got.timestamp.as_str()),
                "{name}"
            );
            assert_eq!(header("Host"), Some(v.host.as_str()), "{name}");
            assert_eq!(
                header("Content-Type"),
                Some(v.content_type.as_str()),
                "{name}"
            );
        }
    }

    #[test]
    fn the_scope_date_is_the_utc_date_even_when_beijing_is_a_day_ahead() {
        // 2019-02-25 16:44:25 UTC is 2019-02-26 00:44:25 in Beijing.
        let got = sign(&SigningInput {
            secret_id: "id",
            secret_key: "key",
            host: "sms.tencentcloudapi.com",
            content_type: "application/json",
            timestamp: at(1_551_113_065),
            payload: b"{}",
        });
        assert_eq!(got.date, "2019-02-25");
        assert_eq!(got.credential_scope, "2019-02-25/sms/tc3_request");
    }

    #[test]
    fn canonical_header_values_are_trimmed_and_lowercased() {
        let sign_with = |host: &str, content_type: &str| {
            sign(&SigningInput {
                secret_id: "id",
                secret_key: "key",
                host,
                content_type,
                timestamp: at(1_700_000_000),
                payload: b"{}",
            })
        };
        let plain = sign_with("sms.tencentcloudapi.com", "application/json");
        let messy = sign_with(" SMS.TencentCloudAPI.com ", "Application/JSON ");
        assert_eq!(messy.canonical_request, plain.canonical_request);
        assert_eq!(messy.authorization, plain.authorization);
    }

    #[test]
    fn sha256_matches_tencents_published_checkpoint() {
        // From the "Signature v3" documentation example (CVM DescribeInstances, key masked).
        let payload = r#"{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}"#;
        let hash = sha256_hex(payload.as_bytes());
        assert!(
            hash.starts_with("35e9c5b0") && hash.ends_with("f064"),
            "{hash}"
        );
    }

    #[test]
    fn hmac_key_block_gives_the_same_mac_as_any_length_key() {
        for len in [0, 1, 32, 35, 63, 64, 65, 100, 200] {
            let key: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let mut reference = HmacSha256::new_from_slice(&key).unwrap();
            reference.update(b"message");
            let expected: [u8; 32] = reference.finalize().into_bytes().into();
            assert_eq!(hmac_sha256(&key, b"message"), expected, "key length {len}");
        }
    }

    #[test]
    fn hmac_matches_rfc_4231_test_case_2() {
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn debug_output_hides_the_secret_key_and_the_body() {
        let input = SigningInput {
            secret_id: "AKIDvisible",
            secret_key: "super-secret-key-value",
            host: "sms.tencentcloudapi.com",
            content_type: "application/json",
            timestamp: at(1_700_000_000),
            payload: br#"{"PhoneNumberSet":["+8613711112222"],"TemplateParamSet":["123456"]}"#,
        };
        let printed = format!("{input:?}");
        assert!(!printed.contains("super-secret-key-value"), "{printed}");
        assert!(!printed.contains("123456"), "{printed}");
        assert!(!printed.contains("13711112222"), "{printed}");
        assert!(printed.contains("AKIDvisible"), "{printed}");

        let signed = format!("{:?}", sign(&input));
        assert!(!signed.contains("super-secret-key-value"), "{signed}");
    }
}
