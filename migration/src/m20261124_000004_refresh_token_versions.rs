//! Each refresh token remembers the user's token version when it was issued.
//! A password reset bumps the version, so a sign-in that raced the reset (read
//! the user before it, wrote its token after the revocation) still cannot
//! refresh: its token carries the old version.

use sea_orm_migration::prelude::*;

use crate::run_script;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261124_000004_refresh_token_versions"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The same statement is valid on PostgreSQL and SQLite.
        run_script(
            manager,
            "ALTER TABLE refresh_tokens ADD COLUMN token_version INTEGER NOT NULL DEFAULT 0",
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run_script(
            manager,
            "ALTER TABLE refresh_tokens DROP COLUMN token_version",
        )
        .await
    }
}
