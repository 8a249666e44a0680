//! Alibaba Cloud signature V3, ACS3-HMAC-SHA256, for `POST /?<query>` requests, by hand with
//! `hmac` + `sha2`. Pure: the caller passes the time and the nonce, so the signer reproduces
//! the official SDK's golden vectors step by step (the unit tests read every intermediate
//! value of every vector).
//!
//! What is signed is what is sent: [`Signed::canonical_query_string`] is also the URL's query
//! (RFC 3986 encoding, sorted), [`Signed::headers`] are the headers to send besides `Host`,
//! and `host` must be the `Host` header reqwest writes (`config::ProviderEndpoint::host`).
//!
//! ```text
//! CanonicalRequest = "POST\n/\n" + query + "\n" + headers (each "name:value\n") + "\n"
//!                    + signed header names ";"-joined + "\n" + hex(SHA-256(body))
//! StringToSign     = "ACS3-HMAC-SHA256\n" + hex(SHA-256(CanonicalRequest))
//! Signature        = hex(HMAC-SHA256(AccessKeySecret, StringToSign))
//! ```
//! No date scope and no key derivation (unlike Tencent's TC3), and no spaces after the commas
//! of `Authorization`.

use std::fmt;

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::{Digest, Sha256};

/// The algorithm name: first word of `Authorization`, first line of the string to sign.
pub const ALGORITHM: &str = "ACS3-HMAC-SHA256";

/// RFC 3986 unreserved characters stay, every other byte is `%XX` (uppercase hex): space is
/// `%20`, `*` is `%2A`, `~` stays.
const RFC3986: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Everything the signature covers.
pub struct SigningInput<'a> {
    pub access_key_id: &'a str,
    pub access_key_secret: &'a str,
    /// The `Host` header as sent: `host[:port]`.
    pub host: &'a str,
    /// `x-acs-action`, e.g. `SendSms`.
    pub action: &'a str,
    /// `x-acs-version`, e.g. `2017-05-25`.
    pub version: &'a str,
    /// `x-acs-date`, to the second.
    pub date: DateTime<Utc>,
    /// `x-acs-signature-nonce`: new for every request, a retry too.
    pub nonce: &'a str,
    /// The query parameters, decoded, in any order.
    pub query: &'a [(&'a str, &'a str)],
    /// Other headers that are sent and signed (lowercase names), e.g. `accept`.
    pub extra_headers: &'a [(&'a str, &'a str)],
    /// The exact body bytes sent (empty for `SendSms`).
    pub body: &'a [u8],
}

impl fmt::Debug for SigningInput<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The query holds the mobile number and the code, the secret is a credential.
        f.debug_struct("SigningInput")
            .field("access_key_id", &self.access_key_id)
            .field("access_key_secret", &"[redacted]")
            .field("host", &self.host)
            .field("action", &self.action)
            .field("date", &self.date)
            .field("query_params", &self.query.len())
            .finish_non_exhaustive()
    }
}

/// The signature and every step on the way to it.
pub struct Signed {
    pub canonical_query_string: String,
    pub hashed_request_payload: String,
    pub canonical_headers: String,
    pub signed_headers: String,
    pub canonical_request: String,
    pub hashed_canonical_request: String,
    pub string_to_sign: String,
    pub signature: String,
    pub authorization: String,
    /// The headers to send besides `Host`, `authorization` last, lowercase names.
    pub headers: Vec<(String, String)>,
}

impl fmt::Debug for Signed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The query carries the code; the authorization is replayable for 15 minutes.
        f.debug_struct("Signed")
            .field("signed_headers", &self.signed_headers)
            .field("signature", &"[redacted]")
            .finish_non_exhaustive()
    }
}

/// RFC 3986 percent-encoding of the UTF-8 bytes of `value`.
pub fn encode(value: &str) -> String {
    utf8_percent_encode(value, RFC3986).to_string()
}

/// The date as `x-acs-date` wants it: `2026-12-01T22:06:03Z`.
pub fn format_date(date: DateTime<Utc>) -> String {
    date.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

pub fn sign(input: &SigningInput<'_>) -> Signed {
    let mut query: Vec<(String, String)> = input
        .query
        .iter()
        .map(|(name, value)| (encode(name), encode(value)))
        .collect();
    query.sort();
    let canonical_query_string = query
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("&");

    let hashed_request_payload = sha256_hex(input.body);
    let mut headers: Vec<(String, String)> = vec![
        ("host".to_owned(), input.host.to_owned()),
        ("x-acs-action".to_owned(), input.action.to_owned()),
        (
            "x-acs-content-sha256".to_owned(),
            hashed_request_payload.clone(),
        ),
        ("x-acs-date".to_owned(), format_date(input.date)),
        ("x-acs-signature-nonce".to_owned(), input.nonce.to_owned()),
        ("x-acs-version".to_owned(), input.version.to_owned()),
    ];
    headers.extend(
        input
            .extra_headers
            .iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), (*value).to_owned())),
    );
    headers.sort();
    let canonical_headers: String = headers
        .iter()
        .map(|(name, value)| format!("{name}:{}\n", value.trim()))
        .collect();
    let signed_headers = headers
        .iter()
        .map(|(name, _)| name.as_str())
        .collect::<Vec<_>>()
        .join(";");

    let canonical_request = format!(
        "POST\n/\n{canonical_query_string}\n{canonical_headers}\n{signed_headers}\n{hashed_request_payload}"
    );
    let hashed_canonical_request = sha256_hex(canonical_request.as_bytes());
    let string_to_sign = format!("{ALGORITHM}\n{hashed_canonical_request}");
    let signature = hmac_sha256_hex(
        input.access_key_secret.as_bytes(),
        string_to_sign.as_bytes(),
    );
    let authorization = format!(
        "{ALGORITHM} Credential={},SignedHeaders={signed_headers},Signature={signature}",
        input.access_key_id
    );

    headers.retain(|(name, _)| name != "host");
    headers.push(("authorization".to_owned(), authorization.clone()));
    Signed {
        canonical_query_string,
        hashed_request_payload,
        canonical_headers,
        signed_headers,
        canonical_request,
        hashed_canonical_request,
        string_to_sign,
        signature,
        authorization,
        headers,
    }
}

fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> String {
    // HMAC takes keys of any length: this cannot fail.
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(message);
            hex::encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use serde_json::Value;

    use super::*;

    /// The official SDK's golden vectors, read at test time.
    fn vectors() -> Vec<Value> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/aliyun-acs3-vectors.json"
        );
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("the ACS3 vectors must be readable at {path}: {e}"));
        let json: Value = serde_json::from_str(&text).unwrap();
        json["vectors"].as_array().unwrap().clone()
    }

    fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
        v[key]
            .as_str()
            .unwrap_or_else(|| panic!("vector field {key}"))
    }

    #[test]
    fn reproduces_every_step_of_every_golden_vector() {
        let vectors = vectors();
        assert!(vectors.len() >= 4, "{} vectors", vectors.len());
        for vector in &vectors {
            let name = str_of(vector, "name");
            assert_eq!(str_of(vector, "method"), "POST", "{name}");
            assert_eq!(str_of(vector, "canonical_uri"), "/", "{name}");
            let query: Vec<(&str, &str)> = vector["query_params"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str().unwrap()))
                .collect();
            // Headers sent besides the minimal signed set are signed too (the SDK's request).
            let sent = vector["headers"].as_object().unwrap();
            let minimal = [
                "host",
                "x-acs-action",
                "x-acs-content-sha256",
                "x-acs-date",
                "x-acs-signature-nonce",
                "x-acs-version",
                "authorization",
            ];
            let extra: Vec<(&str, &str)> = sent
                .iter()
                .filter(|(k, _)| !minimal.contains(&k.as_str()))
                .map(|(k, v)| (k.as_str(), v.as_str().unwrap()))
                .collect();
            let date = DateTime::parse_from_rfc3339(str_of(vector, "x_acs_date"))
                .unwrap()
                .with_timezone(&Utc);
            let body = str_of(vector, "body").as_bytes();
            let signed = sign(&SigningInput {
                access_key_id: str_of(vector, "access_key_id"),
                access_key_secret: str_of(vector, "access_key_secret"),
                host: str_of(vector, "host"),
                action: str_of(vector, "action"),
                version: str_of(vector, "version"),
                date,
                nonce: str_of(vector, "x_acs_signature_nonce"),
                query: &query,
                extra_headers: &extra,
                body,
            });
            let expected = &vector["expected"];
            let steps = [
                ("canonical_query_string", &signed.canonical_query_string),
                ("hashed_request_payload", &signed.hashed_request_payload),
                ("canonical_headers", &signed.canonical_headers),
                ("signed_headers", &signed.signed_headers),
                ("canonical_request", &signed.canonical_request),
                ("hashed_canonical_request", &signed.hashed_canonical_request),
                ("string_to_sign", &signed.string_to_sign),
                ("signature", &signed.signature),
                ("authorization", &signed.authorization),
            ];
            for (step, value) in steps {
                assert_eq!(value, str_of(expected, step), "{name}: {step}");
            }
            // The wire: the canonical query is the URL's query, and the headers are the
            // vector's, value for value.
            assert_eq!(
                format!("/?{}", signed.canonical_query_string),
                str_of(vector, "request_target"),
                "{name}"
            );
            let mut headers: Vec<(String, String)> = signed.headers.clone();
            headers.push(("host".to_owned(), str_of(vector, "host").to_owned()));
            headers.sort();
            let mut want: Vec<(String, String)> = sent
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect();
            want.sort();
            assert_eq!(headers, want, "{name}: headers");
            if let Some(published) = vector.get("published") {
                for step in ["canonical_request", "hashed_canonical_request", "signature"] {
                    assert_eq!(str_of(expected, step), str_of(published, step), "{name}");
                }
            }
        }
    }

    #[test]
    fn encoding_is_rfc_3986_not_form_encoding() {
        assert_eq!(encode("a b*c~d+e,f/阿"), "a%20b%2Ac~d%2Be%2Cf%2F%E9%98%BF");
        assert_eq!(encode("A-Z_a.z~09"), "A-Z_a.z~09");
        assert_eq!(encode(r#"{"code":"1"}"#), "%7B%22code%22%3A%221%22%7D");
    }

    #[test]
    fn the_date_is_utc_to_the_second() {
        let date = DateTime::parse_from_rfc3339("2026-12-01T22:06:03.987+00:00")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(format_date(date), "2026-12-01T22:06:03Z");
    }

    #[test]
    fn debug_shows_neither_secret_nor_query() {
        let input = SigningInput {
            access_key_id: "LTAIvisible",
            access_key_secret: "super-secret-value",
            host: "dysmsapi.aliyuncs.com",
            action: "SendSms",
            version: "2017-05-25",
            date: Utc::now(),
            nonce: "n",
            query: &[
                ("PhoneNumbers", "+8613711112222"),
                ("TemplateParam", "{\"code\":\"123456\"}"),
            ],
            extra_headers: &[],
            body: b"",
        };
        let printed = format!("{input:?} {:?}", sign(&input));
        for hidden in ["super-secret-value", "13711112222", "123456"] {
            assert!(!printed.contains(hidden), "{printed}");
        }
        assert!(printed.contains("LTAIvisible"), "{printed}");
    }
}
