//! Alibaba Cloud SMS (`SMS_PROVIDER=aliyun`): `SendSms` of API 2017-05-25, signed with
//! ACS3-HMAC-SHA256.
//!
//! - [`sign`] and [`api`] are pure: the signer, the answer, and what each Aliyun code means.
//!   This module is the thin I/O around them, on the shared [`Transport`] (one retry only
//!   when the connection never opened; a send that may have reached Aliyun is never
//!   repeated: `SendSms` is not idempotent).
//! - The parameters travel in the query string of a `POST /` with an empty body. They are
//!   built once; the canonical query string derived from them is both signed and sent as the
//!   URL's query, and `Host` is the signed `host[:port]`.
//! - `PhoneNumbers` is the E.164 number without `+` (country code and number), a form
//!   Aliyun takes for mainland and international numbers alike; `TemplateParam` is
//!   `{"<ALIYUN_SMS_CODE_PARAM>":"<code>"}` (a verification-code template takes only the
//!   code); `OutId` is the attempt's audit row id, echoed in delivery receipts.
//! - Errors, in the classes of [`SmsError`]: `isv.BUSINESS_LIMIT_CONTROL` → `RateLimited`;
//!   `isv.MOBILE_NUMBER_ILLEGAL` → `NumberRefused`; credentials, clock, permissions,
//!   balance, signature, template, account caps → `AccountProblem` (an error-level log
//!   says what to fix); `InternalError`, `ServiceUnavailable`, `isp.SYSTEM_ERROR` and HTTP
//!   5xx → `NotSent`; timeouts and answers that are not Aliyun's → `MaybeSent`; other codes
//!   (`isv.BLACK_KEY_CONTROL_LIMIT`, unknown ones) → `Refused`.
//! - Logs carry Aliyun's `RequestId` and `BizId`, the masked mobile and the code; never the
//!   secret, the code or the full number. Aliyun's message is logged scrubbed.

pub mod api;
pub mod sign;

use std::fmt;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::Utc;
use reqwest::header::{AUTHORIZATION, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};

use self::api::ProviderFailure;
use self::sign::SigningInput;
use super::http::{Transport, non_empty, scrub, status_failure};
use super::{OutgoingSms, SmsError, SmsProvider, SmsReceipt};
use crate::config::AliyunConfig;

const LABEL: &str = "Aliyun SendSms";
/// Sent and signed: without it the gateway's choice of format is not documented.
const ACCEPT: &str = "application/json";

/// Sends verification codes through Alibaba Cloud SMS. Build it once at start and share it.
pub struct AliyunSmsProvider {
    transport: Transport,
    endpoint: reqwest::Url,
    /// The `Host` header reqwest sends for `endpoint`, and signs: `host[:port]`.
    host: String,
    access_key_id: String,
    access_key_secret: SecretString,
    sign_name: String,
    template_code: String,
    code_param: String,
}

impl AliyunSmsProvider {
    /// Builds the HTTP client for settings `config` has checked.
    ///
    /// # Errors
    ///
    /// When the HTTP client cannot be built.
    pub fn new(config: &AliyunConfig) -> anyhow::Result<Self> {
        Ok(Self {
            transport: Transport::new(LABEL, config.connect_timeout, config.timeout)?,
            endpoint: config.endpoint.url.clone(),
            host: config.endpoint.host.clone(),
            access_key_id: config.access_key_id.clone(),
            access_key_secret: config.access_key_secret.clone(),
            sign_name: config.sign_name.clone(),
            template_code: config.template_code.clone(),
            code_param: config.code_param.clone(),
        })
    }

    /// One signed request, with a fresh date and nonce (a retry must not reuse the nonce).
    fn request(
        &self,
        query: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<reqwest::RequestBuilder, SmsError> {
        let mut nonce = [0u8; 16];
        rand::fill(&mut nonce);
        let nonce = hex::encode(nonce);
        let signed = sign::sign(&SigningInput {
            access_key_id: &self.access_key_id,
            access_key_secret: self.access_key_secret.expose_secret(),
            host: &self.host,
            action: api::ACTION,
            version: api::VERSION,
            date: Utc::now(),
            nonce: &nonce,
            query,
            extra_headers: &[("accept", ACCEPT)],
            body: b"",
        });
        let not_built = |what: String| SmsError::NotSent {
            cause: anyhow::anyhow!("{LABEL}: {what}"),
        };
        let url = reqwest::Url::parse(&format!(
            "{}?{}",
            self.endpoint.as_str(),
            signed.canonical_query_string
        ))
        .map_err(|e| not_built(format!("the request URL is invalid: {e}")))?;
        let mut request = self.transport.client().post(url).timeout(timeout);
        for (name, value) in &signed.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| not_built(format!("header {name}: {e}")))?;
            let mut value = HeaderValue::from_str(value)
                .map_err(|e| not_built(format!("header {name}: {e}")))?;
            // Replayable for 15 minutes (another SMS): kept out of any header dump.
            value.set_sensitive(name == AUTHORIZATION);
            request = request.header(name, value);
        }
        Ok(request.body(Vec::new()))
    }

    /// What a refusal with `code` means, logged for the operator.
    fn refused(&self, sms: &OutgoingSms<'_>, answer: &api::SendSmsResponse) -> SmsError {
        let code = answer.code.as_str();
        let request_id = answer.request_id.as_str();
        let mobile = sms.mobile.masked();
        let message = scrub(&answer.message, sms);
        let provider_code = code.to_owned();
        match api::classify(code) {
            ProviderFailure::RateLimited => {
                let retry_after = api::business_limit_retry_after(&answer.message);
                tracing::info!(
                    request_id, code, %mobile, retry_after_secs = retry_after.as_secs(),
                    "Aliyun SMS refused the number for its frequency limits"
                );
                SmsError::RateLimited {
                    provider_code,
                    retry_after,
                }
            }
            ProviderFailure::InvalidNumber => {
                tracing::info!(request_id, code, %mobile, provider_message = %message, "Aliyun SMS refused the number");
                SmsError::NumberRefused { provider_code }
            }
            ProviderFailure::Misconfigured => {
                let hint = api::operator_hint(code)
                    .unwrap_or("check the ALIYUN_* settings and the SMS console");
                tracing::error!(
                    request_id, code, %mobile, provider_message = %message,
                    "Aliyun SMS refused to send, and no code can be delivered through it until \
                     this is fixed: {hint}"
                );
                SmsError::AccountProblem {
                    provider_code,
                    retry_after: None,
                }
            }
            ProviderFailure::ProviderError => SmsError::NotSent {
                cause: anyhow::anyhow!(
                    "{LABEL} answered {code} (RequestId {request_id}): {message}"
                ),
            },
            ProviderFailure::Other => {
                tracing::warn!(request_id, code, %mobile, provider_message = %message, "Aliyun SMS refused to send");
                SmsError::Refused { provider_code }
            }
        }
    }
}

#[async_trait]
impl SmsProvider for AliyunSmsProvider {
    fn name(&self) -> &'static str {
        "aliyun"
    }

    async fn send(&self, sms: &OutgoingSms<'_>) -> Result<SmsReceipt, SmsError> {
        let phone_number = sms.mobile.as_str().trim_start_matches('+');
        let template_param = api::template_param(&self.code_param, sms.code.expose());
        let query = [
            ("PhoneNumbers", phone_number),
            ("SignName", self.sign_name.as_str()),
            ("TemplateCode", self.template_code.as_str()),
            ("TemplateParam", template_param.as_str()),
            ("OutId", sms.session_context),
        ];

        let started = Instant::now();
        let response = self
            .transport
            .send(|remaining| self.request(&query, remaining))
            .await?;
        let status = response.status();
        let body = self.transport.read_body(response).await?;
        let elapsed_ms = started.elapsed().as_millis();
        let Some(answer) = api::parse_response(&body) else {
            return Err(if status == reqwest::StatusCode::OK {
                self.transport
                    .unreadable("HTTP 200 with an answer that is not Aliyun's JSON")
            } else {
                status_failure(LABEL, status, body.len())
            });
        };
        if status == reqwest::StatusCode::OK && answer.code == api::OK_CODE {
            tracing::info!(
                request_id = answer.request_id.as_str(),
                biz_id = answer.biz_id.as_str(),
                mobile = %sms.mobile.masked(),
                elapsed_ms,
                "Aliyun SMS sent"
            );
            return Ok(SmsReceipt {
                request_id: non_empty(&answer.request_id),
                serial_no: non_empty(&answer.biz_id),
                // SendSms does not say how many segments were billed.
                fee: None,
            });
        }
        // A 5xx whose code means nothing to smsauth is judged by its status (contract §3.5).
        if status.is_server_error() && api::classify(&answer.code) == ProviderFailure::Other {
            return Err(status_failure(LABEL, status, body.len()));
        }
        Err(self.refused(sms, &answer))
    }
}

impl fmt::Debug for AliyunSmsProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AliyunSmsProvider")
            .field("endpoint", &self.endpoint.as_str())
            .field("host", &self.host)
            .field("access_key_id", &self.access_key_id)
            .field("access_key_secret", &"[redacted]")
            .field("sign_name", &self.sign_name)
            .field("template_code", &self.template_code)
            .field("code_param", &self.code_param)
            .field("connect_timeout", &self.transport.connect_timeout())
            .field("timeout", &self.transport.timeout())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::ProviderEndpoint;

    #[test]
    fn debug_hides_the_secret() {
        let provider = AliyunSmsProvider::new(&AliyunConfig {
            access_key_id: "LTAIvisible".into(),
            access_key_secret: SecretString::from("aliyun-secret-value".to_owned()),
            sign_name: "阿里云".into(),
            template_code: "SMS_1".into(),
            endpoint: ProviderEndpoint::parse("http://127.0.0.1:18080").unwrap(),
            code_param: "code".into(),
            connect_timeout: Duration::from_secs(1),
            timeout: Duration::from_secs(2),
        })
        .unwrap();
        let printed = format!("{provider:?}");
        assert!(!printed.contains("aliyun-secret-value"), "{printed}");
        assert!(printed.contains("127.0.0.1:18080"), "{printed}");
    }
}
