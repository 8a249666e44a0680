//! Tencent Cloud SMS (`SMS_PROVIDER=tencent`): `SendSms`, API 3.0 version 2021-01-11,
//! signed with TC3-HMAC-SHA256.
//!
//! - [`sign`] and [`api`] are pure: the signer, the wire types, and what each Tencent error
//!   code means. This module is the thin I/O around them.
//! - One shared `reqwest` client (rustls, connection pooling) with a connect timeout and a
//!   total timeout (`TENCENT_SMS_CONNECT_TIMEOUT_MS`, `TENCENT_SMS_TIMEOUT_MS`); the total
//!   bounds the whole send, including the one retry below.
//! - A send that may have reached Tencent is never repeated: it could deliver a second SMS
//!   (and bill it). Only a connect error, which proves the request never left, is retried,
//!   once, within the same total time.
//! - The body is serialized once; those exact bytes are signed and sent, with the `Host`
//!   header that was signed.
//! - Errors: Tencent's per-number frequency limits → [`SmsError::RateLimited`]; numbers
//!   Tencent refuses → [`SmsError::InvalidNumber`]; credentials, balance, template, signature
//!   and other refusals → [`SmsError::Rejected`] (with an error-level log telling the
//!   operator what to fix); timeouts, transport errors, non-200 answers, unreadable bodies
//!   and Tencent-side failures → [`SmsError::Unavailable`].
//! - Logs carry Tencent's `RequestId` (support asks for it), the masked mobile and the error
//!   code; never the secret key, the code or the full number. Tencent's own message is
//!   logged with digit runs masked, and never reaches the client.

pub mod api;
pub mod sign;

use std::fmt;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use async_trait::async_trait;
use chrono::Utc;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use secrecy::{ExposeSecret, SecretString};

use self::api::{Outcome, ProviderFailure, SendSmsRequest};
use self::sign::SigningInput;
use super::{OutgoingSms, SmsError, SmsProvider, SmsReceipt};
use crate::config::TencentConfig;

/// The `Content-Type` sent, and signed, exactly as written here.
const JSON: &str = "application/json";
/// Tencent's answers are a few hundred bytes; anything much larger is not Tencent.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// `SessionContext` must stay under 512 bytes.
const MAX_SESSION_CONTEXT_BYTES: usize = 511;

/// Sends verification codes through Tencent Cloud SMS. Build it once at start and share it:
/// it owns the connection pool.
pub struct TencentSmsProvider {
    client: reqwest::Client,
    endpoint: reqwest::Url,
    /// The `Host` header sent, and signed: `host[:port]` of the endpoint.
    host: String,
    secret_id: String,
    secret_key: SecretString,
    sdk_app_id: String,
    sign_name: String,
    template_id: String,
    region: String,
    connect_timeout: Duration,
    timeout: Duration,
}

impl TencentSmsProvider {
    /// Checks the settings and builds the HTTP client.
    ///
    /// # Errors
    ///
    /// When `TENCENT_SMS_ENDPOINT` is not a bare `http(s)://host[:port]` origin, a setting
    /// cannot go into an HTTP header, a timeout is zero, or the HTTP client cannot be built.
    /// The message names the variable and never contains the secret key.
    pub fn new(config: &TencentConfig) -> anyhow::Result<Self> {
        let endpoint = reqwest::Url::parse(&config.endpoint)
            .with_context(|| format!("TENCENT_SMS_ENDPOINT: {:?} is not a URL", config.endpoint))?;
        if !matches!(endpoint.scheme(), "http" | "https") {
            bail!("TENCENT_SMS_ENDPOINT: must be an http:// or https:// URL");
        }
        if endpoint.path() != "/"
            || endpoint.query().is_some()
            || endpoint.fragment().is_some()
            || !endpoint.username().is_empty()
            || endpoint.password().is_some()
        {
            bail!(
                "TENCENT_SMS_ENDPOINT: must be a bare origin such as \
                 https://sms.tencentcloudapi.com (SendSms is always POST /), got {:?}",
                config.endpoint
            );
        }
        let host =
            sign::host_header(&endpoint).context("TENCENT_SMS_ENDPOINT: the URL has no host")?;

        header_safe("TENCENT_SECRET_ID", &config.secret_id)?;
        if !is_header_token(config.secret_key.expose_secret()) {
            // The key itself is never printed.
            bail!("TENCENT_SECRET_KEY: must be non-empty printable ASCII without spaces");
        }
        header_safe("TENCENT_SMS_REGION", &config.region)?;
        for (name, value) in [
            ("TENCENT_SMS_SDK_APP_ID", &config.sdk_app_id),
            ("TENCENT_SMS_SIGN_NAME", &config.sign_name),
            ("TENCENT_SMS_TEMPLATE_ID", &config.template_id),
        ] {
            if value.trim().is_empty() {
                bail!("{name}: must not be empty");
            }
        }
        if config.connect_timeout.is_zero() {
            bail!("TENCENT_SMS_CONNECT_TIMEOUT_MS: must be at least 1");
        }
        if config.timeout.is_zero() {
            bail!("TENCENT_SMS_TIMEOUT_MS: must be at least 1");
        }

        // Also for callers that build the provider without `Application`.
        crate::tls::install_crypto_provider();
        let client = reqwest::Client::builder()
            .user_agent(concat!("smsauth/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            // A send is not idempotent: no automatic retry of any kind, no redirect that
            // would replay the body elsewhere.
            .retry(reqwest::retry::never())
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(Duration::from_secs(50))
            .tcp_keepalive(Duration::from_secs(30))
            .build()
            .context("building the HTTP client for Tencent Cloud SMS")?;

        Ok(Self {
            client,
            endpoint,
            host,
            secret_id: config.secret_id.clone(),
            secret_key: config.secret_key.clone(),
            sdk_app_id: config.sdk_app_id.clone(),
            sign_name: config.sign_name.clone(),
            template_id: config.template_id.clone(),
            region: config.region.clone(),
            connect_timeout: config.connect_timeout,
            timeout: config.timeout,
        })
    }

    /// Posts `body`, signed now. Retries once, within the total timeout, only when the
    /// connection could not be opened: then the request provably never left.
    async fn post(&self, body: &[u8]) -> Result<reqwest::Response, SmsError> {
        let started = Instant::now();
        let mut retried = false;
        loop {
            let remaining = self.timeout.saturating_sub(started.elapsed());
            if remaining.is_zero() {
                return Err(SmsError::Unavailable {
                    cause: anyhow!(
                        "Tencent SendSms: no connection within {} ms",
                        self.timeout.as_millis()
                    ),
                });
            }
            let request = self.request(body, remaining)?;
            match request.send().await {
                Ok(response) => return Ok(response),
                Err(error) if error.is_connect() && !retried => {
                    tracing::warn!(
                        error = %error_chain(&error),
                        "Tencent SendSms: could not connect; retrying once (nothing was sent)"
                    );
                    retried = true;
                }
                Err(error) => return Err(self.transport_error(error)),
            }
        }
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
            HeaderValue::from_str(&signature.authorization).map_err(|e| SmsError::Unavailable {
                cause: anyhow!("Tencent SendSms: the Authorization header is invalid: {e}"),
            })?;
        authorization.set_sensitive(true);
        Ok(self
            .client
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

    fn transport_error(&self, error: reqwest::Error) -> SmsError {
        let what = if error.is_timeout() {
            format!(
                "no complete answer within {} ms (connect timeout {} ms); \
                 the SMS may or may not have been sent",
                self.timeout.as_millis(),
                self.connect_timeout.as_millis()
            )
        } else if error.is_connect() {
            "could not connect, twice".to_owned()
        } else {
            "the connection failed; the SMS may or may not have been sent".to_owned()
        };
        SmsError::Unavailable {
            cause: anyhow::Error::new(error).context(format!("Tencent SendSms: {what}")),
        }
    }

    /// Reads the whole body, refusing more than [`MAX_RESPONSE_BYTES`].
    async fn read_body(&self, mut response: reqwest::Response) -> Result<Vec<u8>, SmsError> {
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                        return Err(SmsError::Unavailable {
                            cause: anyhow!(
                                "Tencent SendSms: the answer is larger than {MAX_RESPONSE_BYTES} bytes"
                            ),
                        });
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => return Ok(body),
                Err(error) => return Err(self.transport_error(error)),
            }
        }
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
        match api::classify(code) {
            ProviderFailure::RateLimited => {
                let secs = api::retry_after_secs(code, Utc::now()).unwrap_or(30);
                if let Some(hint) = hint {
                    tracing::error!(request_id, code, %mobile, provider_message = %message, "Tencent SMS: {hint}");
                } else {
                    tracing::info!(
                        request_id, code, %mobile, retry_after_secs = secs,
                        "Tencent SMS refused the number for its frequency limits"
                    );
                }
                SmsError::RateLimited {
                    provider_code,
                    retry_after: Duration::from_secs(secs),
                }
            }
            ProviderFailure::InvalidNumber => {
                if let Some(hint) = hint {
                    tracing::error!(request_id, code, %mobile, provider_message = %message, "Tencent SMS: {hint}");
                } else {
                    tracing::info!(request_id, code, %mobile, provider_message = %message, "Tencent SMS refused the number");
                }
                SmsError::InvalidNumber { provider_code }
            }
            ProviderFailure::Misconfigured => {
                let hint = hint.unwrap_or("check the TENCENT_* settings and the SMS console");
                tracing::error!(
                    request_id, code, %mobile, provider_message = %message,
                    "Tencent SMS refused to send, and no code can be delivered until this is fixed: {hint}"
                );
                SmsError::Rejected { provider_code }
            }
            ProviderFailure::Unavailable => SmsError::Unavailable {
                cause: anyhow!(
                    "Tencent SendSms answered {code} (RequestId {request_id}): {message}; \
                     the SMS may or may not have been sent"
                ),
            },
            ProviderFailure::Other => {
                match hint {
                    Some(hint) => {
                        tracing::error!(request_id, code, %mobile, provider_message = %message, "Tencent SMS: {hint}");
                    }
                    None => {
                        tracing::warn!(request_id, code, %mobile, provider_message = %message, "Tencent SMS refused to send");
                    }
                }
                SmsError::Rejected { provider_code }
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
        .map_err(|e| SmsError::Unavailable {
            cause: anyhow::Error::new(e).context("serializing the SendSms request"),
        })?;

        let started = Instant::now();
        let response = self.post(&body).await?;
        let status = response.status();
        let body = self.read_body(response).await?;
        let elapsed_ms = started.elapsed().as_millis();
        if status != reqwest::StatusCode::OK {
            return Err(SmsError::Unavailable {
                cause: anyhow!(
                    "Tencent SendSms answered HTTP {status} ({} bytes); \
                     the SMS may or may not have been sent",
                    body.len()
                ),
            });
        }
        let answer = api::parse_response(&body).map_err(|e| SmsError::Unavailable {
            cause: anyhow::Error::new(e).context(
                "Tencent SendSms: the answer is not Tencent's JSON; \
                 the SMS may or may not have been sent",
            ),
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
            Outcome::Malformed => Err(SmsError::Unavailable {
                cause: anyhow!(
                    "Tencent SendSms (RequestId {request_id}) answered neither Error nor \
                     SendStatusSet; the SMS may or may not have been sent"
                ),
            }),
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
            .field("connect_timeout", &self.connect_timeout)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// An error and its sources, `: `-separated (reqwest's `Display` shows only the outermost).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn non_empty(value: &str) -> Option<String> {
    (!value.is_empty()).then(|| value.to_owned())
}

/// Printable ASCII without spaces: what can go into `Authorization` or `X-TC-Region` as is.
fn is_header_token(value: &str) -> bool {
    !value.is_empty() && value.bytes().all(|b| b.is_ascii_graphic())
}

fn header_safe(name: &str, value: &str) -> anyhow::Result<()> {
    if is_header_token(value) {
        Ok(())
    } else {
        bail!("{name}: must be non-empty printable ASCII without spaces")
    }
}

/// Tencent's message, fit for a log line: the code and any run of 7 or more digits (a phone
/// number) masked, at most 200 characters.
fn scrub(message: &str, sms: &OutgoingSms<'_>) -> String {
    let message = message.replace(sms.code.expose(), "[code]");
    let mut out = String::with_capacity(message.len());
    let mut digits = String::new();
    let flush = |digits: &mut String, out: &mut String| {
        if digits.chars().count() >= 7 {
            out.push_str("[number]");
        } else {
            out.push_str(digits);
        }
        digits.clear();
    };
    for c in message.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else {
            flush(&mut digits, &mut out);
            out.push(c);
        }
    }
    flush(&mut digits, &mut out);
    out.chars().take(200).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::domain::{Mobile, Region, SmsCode, SmsPurpose};

    fn config(endpoint: &str) -> TencentConfig {
        TencentConfig {
            secret_id: "AKIDexample".into(),
            secret_key: SecretString::from("very-secret-key".to_owned()),
            sdk_app_id: "1400006666".into(),
            sign_name: "腾讯云".into(),
            template_id: "1234567".into(),
            region: "ap-guangzhou".into(),
            endpoint: endpoint.into(),
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
    fn refuses_endpoints_that_are_not_a_bare_origin() {
        for endpoint in [
            "sms.tencentcloudapi.com",
            "ftp://sms.tencentcloudapi.com",
            "https://sms.tencentcloudapi.com/v3",
            "https://sms.tencentcloudapi.com/?a=b",
            "https://user:pw@sms.tencentcloudapi.com",
        ] {
            let err = TencentSmsProvider::new(&config(endpoint)).unwrap_err();
            assert!(
                format!("{err:#}").contains("TENCENT_SMS_ENDPOINT"),
                "{endpoint}: {err:#}"
            );
        }
    }

    #[test]
    fn refuses_settings_that_cannot_be_sent_and_never_prints_the_key() {
        let mut bad_key = config("https://sms.tencentcloudapi.com");
        bad_key.secret_key = SecretString::from("very secret key".to_owned());
        let err = format!("{:#}", TencentSmsProvider::new(&bad_key).unwrap_err());
        assert!(err.contains("TENCENT_SECRET_KEY"), "{err}");
        assert!(!err.contains("very secret key"), "{err}");

        let mut bad_id = config("https://sms.tencentcloudapi.com");
        bad_id.secret_id = "AKID example\n".into();
        let err = format!("{:#}", TencentSmsProvider::new(&bad_id).unwrap_err());
        assert!(err.contains("TENCENT_SECRET_ID"), "{err}");

        let mut zero = config("https://sms.tencentcloudapi.com");
        zero.timeout = Duration::ZERO;
        let err = format!("{:#}", TencentSmsProvider::new(&zero).unwrap_err());
        assert!(err.contains("TENCENT_SMS_TIMEOUT_MS"), "{err}");
    }

    #[test]
    fn debug_hides_the_secret_key() {
        let provider = TencentSmsProvider::new(&config("https://sms.tencentcloudapi.com")).unwrap();
        let printed = format!("{provider:?}");
        assert!(!printed.contains("very-secret-key"), "{printed}");
        assert!(printed.contains("AKIDexample"), "{printed}");
    }

    #[test]
    fn scrub_masks_the_code_and_phone_numbers() {
        let mobile = Mobile::parse("+8613711112222", Region::CN).unwrap();
        let code = SmsCode::parse("042917", 6).unwrap();
        let sms = OutgoingSms {
            mobile: &mobile,
            purpose: SmsPurpose::Login,
            code: &code,
            ttl_minutes: 5,
            session_context: "ctx",
        };
        let scrubbed = scrub(
            "number +8613711112222 (13711112222) refused code 042917 within 30 seconds",
            &sms,
        );
        assert_eq!(
            scrubbed,
            "number +[number] ([number]) refused code [code] within 30 seconds"
        );
    }
}
