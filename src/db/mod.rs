//! Persistence: the connection, the SeaORM entities (internal, never exposed
//! to GraphQL) and one module of queries per table.

pub mod entity;
pub mod refresh_tokens;
pub mod sms_messages;
pub mod users;

use std::sync::Arc;
use std::time::Duration;

use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DbErr, IdenStatic, Iterable, SqlErr, Statement,
    Value,
};

/// Observes every SQL statement the app runs (tests count SELECTs with it).
pub type SqlObserver = Arc<dyn Fn(&str) + Send + Sync>;

/// Connects to PostgreSQL or SQLite. Timeouts are short so that a database
/// outage becomes `SERVICE_UNAVAILABLE` quickly instead of a hanging request.
pub async fn connect(
    url: &str,
    max_connections: u32,
    observer: Option<SqlObserver>,
) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(max_connections.max(1))
        .min_connections(1)
        .connect_timeout(Duration::from_secs(3))
        .acquire_timeout(Duration::from_secs(3))
        // SQLx pings a connection on every release, and by default on every
        // acquire too: a round trip per query for nothing. One that was
        // pinged on its release and has not sat idle since is known good.
        .test_before_acquire_if_idle_for(Duration::from_secs(10))
        .sqlx_logging(false);
    let mut db = Database::connect(options).await?;
    if url.starts_with("sqlite") {
        // Concurrent writers wait for the lock instead of failing with SQLITE_BUSY.
        use sea_orm::ConnectionTrait;
        db.execute_unprepared("PRAGMA journal_mode=WAL").await?;
        db.execute_unprepared("PRAGMA busy_timeout=5000").await?;
    }
    if let Some(observer) = observer {
        db.set_metric_callback(move |info| observer(&info.statement.sql));
    }
    Ok(db)
}

/// A pool for writes that may be lost in a database crash without harm
/// (audit rows, last-login times, the first refresh token of a sign-in): on
/// PostgreSQL its sessions commit with `synchronous_commit = off`, so a
/// request does not wait for the WAL flush (at most ~0.6 s of such writes can
/// be lost in a crash; nothing is ever corrupted). Accounts, passwords and
/// token rotation and revocation never use it. On SQLite it is the same pool.
pub async fn connect_relaxed(
    url: &str,
    max_connections: u32,
    primary: &DatabaseConnection,
) -> Result<DatabaseConnection, DbErr> {
    if !url.starts_with("postgres") {
        return Ok(primary.clone());
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    let url = format!("{url}{separator}options=-c%20synchronous_commit%3Doff");
    connect(&url, max_connections, None).await
}

/// The name of the unique index an insert or update violated, if that is why it failed.
/// PostgreSQL names the index; SQLite names the column (`users.mobile`) or the index.
pub fn unique_violation(err: &DbErr) -> Option<String> {
    match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(detail)) => Some(detail),
        _ => None,
    }
}

/// Every column of an entity by name, quoted, for fixed SQL — never `*`:
/// PostgreSQL refuses a prepared `SELECT *` once a migration adds a column
/// ("cached plan must not change result type"), which would break running
/// instances during a rolling upgrade. With a `table` alias each column is
/// qualified and renamed `{table}_{column}`, the prefix sea-orm's
/// `FromQueryResult` reads a joined row's halves by.
pub fn column_list<C: Iterable + IdenStatic>(table: Option<&str>) -> String {
    C::iter()
        .map(|column| match table {
            None => format!("\"{}\"", column.as_str()),
            Some(t) => format!("{t}.\"{c}\" AS \"{t}_{c}\"", c = column.as_str()),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The hottest statements (`mobileExists`, the viewer of `me`, every send,
/// SMS sign-in, refresh) as fixed SQL: sea-query would build the same text
/// again on every call (about 4 % of `mobileExists`' CPU in a profile). `$n`
/// is a placeholder on PostgreSQL and SQLite alike; values convert as the
/// query builder's would.
fn fixed_sql(
    db: &DatabaseConnection,
    sql: &str,
    values: impl IntoIterator<Item = Value>,
) -> Statement {
    Statement::from_sql_and_values(db.get_database_backend(), sql, values)
}
