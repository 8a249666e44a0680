//! Database migrations for smsauth, for PostgreSQL and SQLite alike. The app
//! runs `Migrator::up` at start (unless `AUTO_MIGRATE=false`) and from
//! `smsauth migrate`.
//!
//! Each migration writes its SQL per backend by hand: the indexes that matter
//! (case-insensitive uniqueness on `lower(username)`) are not expressible with
//! the schema builder, and plain SQL is easier to review.

pub use sea_orm_migration::prelude::*;

mod m20261124_000001_create_users;
mod m20261124_000002_create_sms_messages;
mod m20261124_000003_create_refresh_tokens;
mod m20261124_000004_refresh_token_versions;
mod m20261202_000001_users_legacy_id;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261124_000001_create_users::Migration),
            Box::new(m20261124_000002_create_sms_messages::Migration),
            Box::new(m20261124_000003_create_refresh_tokens::Migration),
            Box::new(m20261124_000004_refresh_token_versions::Migration),
            Box::new(m20261202_000001_users_legacy_id::Migration),
        ]
    }
}

/// Runs one SQL script (statements separated by `;`) on the manager's connection.
async fn run_script(manager: &SchemaManager<'_>, script: &str) -> Result<(), DbErr> {
    let db = manager.get_connection();
    for statement in script.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        db.execute_unprepared(statement).await?;
    }
    Ok(())
}

/// Picks the script for the connected backend.
fn for_backend<'a>(manager: &SchemaManager<'_>, postgres: &'a str, sqlite: &'a str) -> &'a str {
    match manager.get_database_backend() {
        sea_orm_migration::sea_orm::DatabaseBackend::Sqlite => sqlite,
        _ => postgres,
    }
}
