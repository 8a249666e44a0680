//! Tencent Cloud SMS (`SMS_PROVIDER=tencent`): `SendSms`, API 3.0 version 2021-01-11,
//! signed with TC3-HMAC-SHA256.
//!
//! - [`sign`] and [`api`] are pure: the signer, the wire types, and what each Tencent error
//!   code means. This module is the thin I/O around them.
//! - The settings are checked in `config` (a bad one stops start-up); this module only
//!   builds the client: one [`Transport`] (rustls, pooling, `TENCENT_SMS_CONNECT_TIMEOUT_MS`
//!   and `TENCENT_SMS_TIMEOUT_MS`, one retry only when the connection never opened).
//! - The body is serialized once; those exact bytes are signed and sent, with the `Host`
//!   header that was signed.
//! - Errors, in the classes of [`SmsError`]: per-number frequency limits → `RateLimited`;
//!   numbers Tencent refuses → `NumberRefused`; credentials, balance, template, signature and
//!   account-wide daily caps → `AccountProblem` (with an error-level log telling the operator
//!   what to fix); Tencent-side failures (`InternalError.*`…) and HTTP 5xx → `NotSent`;
//!   timeouts after sending, unreadable bodies → `MaybeSent`; anything else → `Refused`.
//! - Logs carry Tencent's `RequestId` (support asks for it), the masked mobile and the error
//!   code; never the secret key, the code or the full number. Tencent's own message is
//!   logged with digit runs masked, and never reaches the client.

pub mod api;
pub mod sign;

use std::fmt;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::Utc;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use secrecy::{ExposeSecret, SecretString};

use self::api::{Outcome, ProviderFailure, SendSmsRequest};
use self::sign::SigningInput;
use super::http::{Transport, non_empty, scrub, status_failure};
use super::{OutgoingSms, SmsError, SmsProvider, SmsReceipt};
use crate::config::TencentConfig;

/// The `Content-Type` sent, and signed, exactly as written here.
const JSON: &str = "application/json";
/// `SessionContext` must stay under 512 bytes.
const MAX_SESSION_CONTEXT_BYTES: usize = 511;
const LABEL: &str = "Tencent SendSms";

/// Sends verification codes through Tencent Cloud SMS. Build it once at start and share it:
/// it owns the connection pool.
pub struct TencentSmsProvider {
    transport: Transport,
    endpoint: reqwest::Url,
    /// The `Host` header sent, and signed: `host[:port]` of the endpoint.
    host: String,
    secret_id: String,
    secret_key: SecretString,
    sdk_app_id: String,
    sign_name: String,
    template_id: String,
    region: String,
}

impl TencentSmsProvider {
    /// Builds the HTTP client for settings `config` has checked.
    ///
    /// # Errors
    ///
    /// When the HTTP client cannot be built.
    pub fn new(config: &TencentConfig) -> anyhow::Result<Self> {
        Ok(Self {
            transport: Transport::new(LABEL, config.connect_timeout, config.timeout)?,
            endpoint: config.endpoint.url.clone(),
            host: config.endpoint.host.clone(),
            secret_id: config.secret_id.clone(),
            secret_key: config.secret_key.clone(),
            sdk_app_id: config.sdk_app_id.clone(),
            sign_name: config.sign_name.clone(),
            template_id: config.template_id.clone(),
            region: config.region.clone(),
        })
    }

    /// One signed request; the signature and `X-TC-Timestamp` use the current time.
    fn request(&self, body: &[u8], timeout: Duration) -> Result<reqwest::RequestBuilder, SmsError> {
        let signature = sign::sign(&SigningInput {
            secret_id: &self.secret_id,
            secret_key: self.secret_key.expose_secret(),
            host: &self.host,
            content_type: JSON,
            timestamp: Utc::now(),
            payload: body,
        });
        // Replayable for five minutes (another SMS): kept out of any header dump.
        let mut authorization =
            HeaderValue::from_str(&signature.authorization).map_err(|e| SmsError::NotSent {
                cause: anyhow::anyhow!("{LABEL}: the Authorization header is invalid: {e}"),
            })?;
        authorization.set_sensitive(true);
        Ok(self
            .transport
            .client()
            .post(self.endpoint.clone())
            .timeout(timeout)
            .header(AUTHORIZATION, authorization)
            .header(CONTENT_TYPE, JSON)
            .header(HOST, self.host.as_str())
            .header("X-TC-Action", api::ACTION)
            .header("X-TC-Version", api::VERSION)
            .header("X-TC-Timestamp", signature.timestamp)
            .header("X-TC-Region", self.region.as_str())
            .body(body.to_vec()))
    }

    /// What a refusal with `code` means, logged for the operator.
    fn refused(
        &self,
        sms: &OutgoingSms<'_>,
        request_id: &str,
        code: &str,
        message: &str,
    ) -> SmsError {
        let mobile = sms.mobile.masked();
        let message = scrub(message, sms);
        let provider_code = code.to_owned();
        let hint = api::operator_hint(code);
        let log_hint = |hint: &str| {
            tracing::error!(request_id, code, %mobile, provider_message = %message, "Tencent SMS: {hint}");
        };
        let retry_after =
            || Duration::from_secs(api::retry_after_secs(code, Utc::now()).unwrap_or(30));
        match api::classify(code) {
            ProviderFailure::RateLimited => {
                let retry_after = retry_after();
                match hint {
                    Some(hint) => log_hint(hint),
                    None => tracing::info!(
                        request_id, code, %mobile, retry_after_secs = retry_after.as_secs(),
                        "Tencent SMS refused the number for its frequency limits"
                    ),
                }
                SmsError::RateLimited {
                    provider_code,
                    retry_after,
                }
            }
            ProviderFailure::AccountLimit => {
                log_hint(hint.unwrap_or("an account-wide sending cap is reached"));
                SmsError::AccountProblem {
                    provider_code,
                    retry_after: Some(retry_after()),
                }
            }
            ProviderFailure::InvalidNumber => {
                match hint {
                    Some(hint) => log_hint(hint),
                    None => tracing::info!(
                        request_id, code, %mobile, provider_message = %message,
                        "Tencent SMS refused the number"
                    ),
                }
                SmsError::NumberRefused { provider_code }
            }
            ProviderFailure::Misconfigured => {
                let hint = hint.unwrap_or("check the TENCENT_* settings and the SMS console");
                tracing::error!(
                    request_id, code, %mobile, provider_message = %message,
                    "Tencent SMS refused to send, and no code can be delivered through it until \
                     this is fixed: {hint}"
                );
                SmsError::AccountProblem {
                    provider_code,
                    retry_after: None,
                }
            }
            ProviderFailure::Unavailable => SmsError::NotSent {
                cause: anyhow::anyhow!(
                    "{LABEL} answered {code} (RequestId {request_id}): {message}"
                ),
            },
            ProviderFailure::Other => {
                match hint {
                    Some(hint) => log_hint(hint),
                    None => tracing::warn!(
                        request_id, code, %mobile, provider_message = %message,
                        "Tencent SMS refused to send"
                    ),
                }
                SmsError::Refused { provider_code }
            }
        }
    }
}

#[async_trait]
impl SmsProvider for TencentSmsProvider {
    fn name(&self) -> &'static str {
        "tencent"
    }

    async fn send(&self, sms: &OutgoingSms<'_>) -> Result<SmsReceipt, SmsError> {
        let minutes = sms.ttl_minutes.to_string();
        let phone_numbers = [sms.mobile.as_str()];
        let params = [sms.code.expose(), minutes.as_str()];
        let session_context =
            (sms.session_context.len() <= MAX_SESSION_CONTEXT_BYTES).then_some(sms.session_context);
        let body = serde_json::to_vec(&SendSmsRequest {
            phone_number_set: &phone_numbers,
            sms_sdk_app_id: &self.sdk_app_id,
            sign_name: &self.sign_name,
            template_id: &self.template_id,
            template_param_set: &params,
            session_context,
        })
        .map_err(|e| SmsError::NotSent {
            cause: anyhow::Error::new(e).context("serializing the SendSms request"),
        })?;

        let started = Instant::now();
        let response = self
            .transport
            .send(|remaining| self.request(&body, remaining))
            .await?;
        let status = response.status();
        let body = self.transport.read_body(response).await?;
        let elapsed_ms = started.elapsed().as_millis();
        // Tencent answers its API errors with HTTP 200: anything else is a gateway's.
        if status != reqwest::StatusCode::OK {
            return Err(status_failure(LABEL, status, body.len()));
        }
        let answer = api::parse_response(&body).map_err(|_| {
            self.transport
                .unreadable("the answer is not Tencent's JSON")
        })?;
        let request_id = answer.request_id.as_str();
        match answer.outcome() {
            Outcome::Sent(sent) => {
                if sent.session_context != sms.session_context {
                    tracing::warn!(
                        request_id,
                        "Tencent SMS echoed another SessionContext than the one sent"
                    );
                }
                tracing::info!(
                    request_id,
                    serial_no = sent.serial_no.as_str(),
                    fee = sent.fee,
                    mobile = %sms.mobile.masked(),
                    elapsed_ms,
                    "Tencent SMS sent"
                );
                Ok(SmsReceipt {
                    request_id: non_empty(request_id),
                    serial_no: non_empty(&sent.serial_no),
                    fee: i32::try_from(sent.fee).ok(),
                })
            }
            Outcome::Refused { code, message } => Err(self.refused(sms, request_id, code, message)),
            Outcome::Malformed => Err(self.transport.unreadable(format_args!(
                "the answer (RequestId {request_id}) has neither Error nor SendStatusSet"
            ))),
        }
    }
}

impl fmt::Debug for TencentSmsProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TencentSmsProvider")
            .field("endpoint", &self.endpoint.as_str())
            .field("host", &self.host)
            .field("secret_id", &self.secret_id)
            .field("secret_key", &"[redacted]")
            .field("sdk_app_id", &self.sdk_app_id)
            .field("sign_name", &self.sign_name)
            .field("template_id", &self.template_id)
            .field("region", &self.region)
            .field("connect_timeout", &self.transport.connect_timeout())
            .field("timeout", &self.transport.timeout())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::config::ProviderEndpoint;

    fn config(endpoint: &str) -> TencentConfig {
        TencentConfig {
            secret_id: "AKIDexample".into(),
            secret_key: SecretString::from("very-secret-key".to_owned()),
            sdk_app_id: "1400006666".into(),
            sign_name: "腾讯云".into(),
            template_id: "1234567".into(),
            region: "ap-guangzhou".into(),
            endpoint: ProviderEndpoint::parse(endpoint).unwrap(),
            connect_timeout: Duration::from_secs(3),
            timeout: Duration::from_secs(10),
        }
    }

    #[test]
    fn builds_for_the_real_and_a_local_endpoint() {
        let real = TencentSmsProvider::new(&config("https://sms.tencentcloudapi.com")).unwrap();
        assert_eq!(real.host, "sms.tencentcloudapi.com");
        let local = TencentSmsProvider::new(&config("http://127.0.0.1:18080")).unwrap();
        assert_eq!(local.host, "127.0.0.1:18080");
    }

    #[test]
    fn debug_hides_the_secret_key() {
        let provider = TencentSmsProvider::new(&config("https://sms.tencentcloudapi.com")).unwrap();
        let printed = format!("{provider:?}");
        assert!(!printed.contains("very-secret-key"), "{printed}");
        assert!(printed.contains("AKIDexample"), "{printed}");
    }
}
