//! The HTTP plumbing every cloud SMS provider shares, and the one place where a transport
//! failure is classified (contract §3.5):
//!
//! - no connection could be opened (DNS, refused, TLS handshake, connect timeout): the
//!   request never left, [`SmsError::NotSent`]; this one case is retried, once, within the
//!   same total time;
//! - anything after the request may have been written (timeout, reset, a truncated or
//!   oversized answer): [`SmsError::MaybeSent`], never retried;
//! - an HTTP status that is not 200 and carries no answer of the provider's own:
//!   [`status_failure`].
//!
//! The client never retries or follows redirects by itself: a send is not idempotent.

use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use reqwest::StatusCode;

use super::{OutgoingSms, SmsError};

/// Provider answers are a few hundred bytes; anything much larger is not the provider.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// One provider's HTTP client with its bounds. Build it once at start and share it: it owns
/// the connection pool.
pub struct Transport {
    client: reqwest::Client,
    /// Names the call in errors and logs, e.g. `Tencent SendSms`.
    label: &'static str,
    connect_timeout: Duration,
    timeout: Duration,
}

impl Transport {
    /// `timeout` bounds a whole send, the one connect retry included.
    ///
    /// # Errors
    ///
    /// When the TLS stack cannot be set up.
    pub fn new(
        label: &'static str,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        crate::tls::install_crypto_provider();
        let client = reqwest::Client::builder()
            .user_agent(concat!("smsauth/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(connect_timeout)
            .timeout(timeout)
            // A send is not idempotent: no automatic retry of any kind, no redirect that
            // would replay the request elsewhere.
            .retry(reqwest::retry::never())
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(Duration::from_secs(50))
            .tcp_keepalive(Duration::from_secs(30))
            .build()
            .with_context(|| format!("building the HTTP client for {label}"))?;
        Ok(Self {
            client,
            label,
            connect_timeout,
            timeout,
        })
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends the request `build(remaining)` makes (signed afresh each time, with `remaining`
    /// as its timeout). Retries once, within the total timeout, only when the connection
    /// could not be opened: then the request provably never left.
    pub async fn send(
        &self,
        mut build: impl FnMut(Duration) -> Result<reqwest::RequestBuilder, SmsError>,
    ) -> Result<reqwest::Response, SmsError> {
        let started = Instant::now();
        let mut retried = false;
        loop {
            let remaining = self.timeout.saturating_sub(started.elapsed());
            if remaining.is_zero() {
                return Err(SmsError::NotSent {
                    cause: anyhow!(
                        "{}: no connection within {} ms",
                        self.label,
                        self.timeout.as_millis()
                    ),
                });
            }
            match build(remaining)?.send().await {
                Ok(response) => return Ok(response),
                Err(error) if error.is_connect() && !retried => {
                    tracing::warn!(
                        error = %error_chain(&error),
                        "{}: could not connect; retrying once (nothing was sent)",
                        self.label
                    );
                    retried = true;
                }
                Err(error) => return Err(self.failure(error)),
            }
        }
    }

    /// Reads the whole body, refusing more than [`MAX_RESPONSE_BYTES`].
    pub async fn read_body(&self, mut response: reqwest::Response) -> Result<Vec<u8>, SmsError> {
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                        return Err(SmsError::MaybeSent {
                            cause: anyhow!(
                                "{}: the answer is larger than {MAX_RESPONSE_BYTES} bytes",
                                self.label
                            ),
                        });
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => return Ok(body),
                Err(error) => return Err(self.failure(error)),
            }
        }
    }

    /// A transport error: [`SmsError::NotSent`] when the connection was never opened, else
    /// [`SmsError::MaybeSent`].
    fn failure(&self, error: reqwest::Error) -> SmsError {
        // A connect timeout is both `is_connect` and `is_timeout`: it proves nothing left.
        if error.is_connect() {
            return SmsError::NotSent {
                cause: anyhow::Error::new(error)
                    .context(format!("{}: could not connect, twice", self.label)),
            };
        }
        let what = if error.is_timeout() {
            format!(
                "no complete answer within {} ms (connect timeout {} ms); \
                 the SMS may or may not have been sent",
                self.timeout.as_millis(),
                self.connect_timeout.as_millis()
            )
        } else {
            "the connection failed; the SMS may or may not have been sent".to_owned()
        };
        SmsError::MaybeSent {
            cause: anyhow::Error::new(error).context(format!("{}: {what}", self.label)),
        }
    }

    /// An answer that is not the provider's (a proxy's page, a truncated body, JSON of
    /// another shape): the outcome is unknown.
    pub fn unreadable(&self, what: impl std::fmt::Display) -> SmsError {
        SmsError::MaybeSent {
            cause: anyhow!(
                "{}: {what}; the SMS may or may not have been sent",
                self.label
            ),
        }
    }
}

/// An HTTP status other than 200 without an answer of the provider's own in the body. A 5xx
/// is the provider failing before it sent (contract §3.5: failover), except the gateway
/// statuses 502 and 504: a proxy that lost or timed out on the upstream may have forwarded
/// the request. Anything else (a 4xx page, a redirect) is not understood: outcome unknown.
pub fn status_failure(label: &str, status: StatusCode, body_len: usize) -> SmsError {
    let cause = anyhow!("{label} answered HTTP {status} ({body_len} bytes)");
    let gateway = matches!(
        status,
        StatusCode::BAD_GATEWAY | StatusCode::GATEWAY_TIMEOUT
    );
    if status.is_server_error() && !gateway {
        SmsError::NotSent { cause }
    } else {
        SmsError::MaybeSent {
            cause: cause.context("the SMS may or may not have been sent"),
        }
    }
}

/// An error and its sources, `: `-separated (reqwest's `Display` shows only the outermost).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `Some(value)` unless it is empty.
pub fn non_empty(value: &str) -> Option<String> {
    (!value.is_empty()).then(|| value.to_owned())
}

/// A provider's message, fit for a log line: the code and any run of 7 or more digits (a
/// phone number) masked, at most 200 characters.
pub fn scrub(message: &str, sms: &OutgoingSms<'_>) -> String {
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
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::domain::{Mobile, Region, SmsCode, SmsPurpose};

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

    #[test]
    fn server_errors_are_not_sent_but_gateway_errors_and_others_may_have_been() {
        let not_sent = |status: u16| {
            matches!(
                status_failure("P", StatusCode::from_u16(status).unwrap(), 0),
                SmsError::NotSent { .. }
            )
        };
        for status in [500, 501, 503, 505, 599] {
            assert!(not_sent(status), "{status}");
        }
        for status in [502, 504, 400, 403, 404, 429, 301, 204] {
            assert!(!not_sent(status), "{status}");
        }
    }
}
