//! Development provider: writes the code to the server log at info level, and
//! sends nothing. The code appears nowhere else.

use async_trait::async_trait;

use super::{OutgoingSms, SmsError, SmsProvider, SmsReceipt};

#[derive(Debug, Default)]
pub struct LogSmsProvider;

#[async_trait]
impl SmsProvider for LogSmsProvider {
    fn name(&self) -> &'static str {
        "log"
    }

    async fn send(&self, sms: &OutgoingSms<'_>) -> Result<SmsReceipt, SmsError> {
        tracing::info!(
            target: "smsauth::sms::log",
            mobile = %sms.mobile.masked(),
            purpose = sms.purpose.as_str(),
            code = sms.code.expose(),
            valid_minutes = sms.ttl_minutes,
            "SMS code (log provider, for development: nothing was sent)"
        );
        Ok(SmsReceipt::default())
    }
}
