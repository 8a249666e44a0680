//! `sms_messages`: the audit trail, one row per attempted send, whatever its
//! outcome. It never holds a code.

use sea_orm_migration::prelude::*;

use crate::{for_backend, run_script};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261124_000002_create_sms_messages"
    }
}

const POSTGRES_UP: &str = r#"
CREATE TABLE sms_messages (
    id UUID PRIMARY KEY,
    mobile VARCHAR(20) NOT NULL,
    purpose VARCHAR(16) NOT NULL,
    provider VARCHAR(16) NOT NULL,
    status VARCHAR(8) NOT NULL,
    provider_request_id TEXT,
    serial_no TEXT,
    fee INTEGER,
    error_code TEXT,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX sms_messages_created_at_idx ON sms_messages (created_at);
CREATE INDEX sms_messages_mobile_idx ON sms_messages (mobile, created_at)
"#;

const SQLITE_UP: &str = r#"
CREATE TABLE sms_messages (
    id BLOB PRIMARY KEY NOT NULL,
    mobile TEXT NOT NULL,
    purpose TEXT NOT NULL,
    provider TEXT NOT NULL,
    status TEXT NOT NULL,
    provider_request_id TEXT,
    serial_no TEXT,
    fee INTEGER,
    error_code TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX sms_messages_created_at_idx ON sms_messages (created_at);
CREATE INDEX sms_messages_mobile_idx ON sms_messages (mobile, created_at)
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run_script(manager, for_backend(manager, POSTGRES_UP, SQLITE_UP)).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run_script(manager, "DROP TABLE sms_messages").await
    }
}
