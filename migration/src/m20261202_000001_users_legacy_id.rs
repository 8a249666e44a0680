//! `users.legacy_id`: the Django `id` of a user brought over by
//! `smsauth import-django`, kept for joins with the old database (never in
//! the API). Unique, so a re-run (or two imports racing) can never bring the
//! same Django user in twice; NULL for users who registered here.

use sea_orm_migration::prelude::*;

use crate::run_script;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000001_users_legacy_id"
    }
}

// Both statements are valid on PostgreSQL and SQLite; several NULLs never
// collide in a unique index on either.
const UP: &str = r#"
ALTER TABLE users ADD COLUMN legacy_id BIGINT;
CREATE UNIQUE INDEX users_legacy_id_key ON users (legacy_id)
"#;

const DOWN: &str = r#"
DROP INDEX users_legacy_id_key;
ALTER TABLE users DROP COLUMN legacy_id
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run_script(manager, UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run_script(manager, DOWN).await
    }
}
