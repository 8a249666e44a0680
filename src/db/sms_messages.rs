//! The SMS audit trail: one row per attempted send, never the code itself.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, DatabaseConnection, Set};

use super::entity::sms_messages;
use crate::domain::{Mobile, SmsPurpose};
use crate::error::AppResult;

pub struct SmsAuditRow<'a> {
    pub id: uuid::Uuid,
    pub mobile: &'a Mobile,
    pub purpose: SmsPurpose,
    pub provider: &'a str,
    pub sent: bool,
    pub provider_request_id: Option<String>,
    pub serial_no: Option<String>,
    pub fee: Option<i32>,
    pub error_code: Option<String>,
    pub now: DateTime<Utc>,
}

#[tracing::instrument(level = "debug", name = "db.sms_messages.record", skip_all)]
pub async fn record(db: &DatabaseConnection, row: SmsAuditRow<'_>) -> AppResult<()> {
    sms_messages::ActiveModel {
        id: Set(row.id),
        mobile: Set(row.mobile.as_str().to_owned()),
        purpose: Set(row.purpose.as_str().to_owned()),
        provider: Set(row.provider.to_owned()),
        status: Set(if row.sent { "sent" } else { "failed" }.to_owned()),
        provider_request_id: Set(row.provider_request_id),
        serial_no: Set(row.serial_no),
        fee: Set(row.fee),
        error_code: Set(row.error_code),
        created_at: Set(row.now),
    }
    .insert(db)
    .await?;
    Ok(())
}
