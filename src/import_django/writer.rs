//! Writing one batch of prepared rows: four queries find what is already
//! taken, the rules decide each row in Django id order, and one INSERT
//! writes the batch in its own transaction.
//!
//! On PostgreSQL every query carries its values as arrays (`= ANY($1)`,
//! `INSERT … SELECT FROM unnest($1, …)`): one parameter per column whatever
//! the batch size, and a statement PostgreSQL plans at once. The batch
//! commits without waiting for its WAL flush (`synchronous_commit = off`,
//! for this transaction only): a crash of PostgreSQL right after may lose the
//! last batches, which the importer had not reported yet, or had reported
//! just before; a re-run brings them in (rows are recognised by `legacy_id`).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Func, PgFunc};
use sea_orm::{
    ConnectionTrait, DatabaseBackend, DbErr, EntityTrait, QueryFilter, QuerySelect, Set, Statement,
    TransactionSession, TransactionTrait, Value,
};

use super::mapping::{Prepared, RejectReason};
use super::source::DjangoRow;
use crate::codes::CodeHasher;
use crate::db::entity::users::{self, Column, Entity as Users};
use crate::domain::{Email, UserId, Username};
use crate::service::accounts::default_username;

/// Each batch transaction's settings on PostgreSQL. The lookups probe the
/// unique indexes with a batch of keys; while the import grows the table the
/// planner's statistics lag behind and it would scan the whole table per
/// lookup instead (measured: 100 ms a batch at 100,000 users, and growing).
/// The commit does not wait for the WAL flush (see the module's comment).
const POSTGRES_BATCH_SETTINGS: [&str; 2] = [
    "SET LOCAL enable_seqscan = off",
    "SET LOCAL synchronous_commit = off",
];

/// What happened to each row of a batch.
#[derive(Debug, Default)]
pub struct BatchOutcome {
    pub imported: u64,
    pub already_present: u64,
    pub usernames_replaced: u64,
    pub emails_dropped: u64,
    pub sms_only: u64,
    pub rejects: Vec<Reject>,
}

#[derive(Debug)]
pub struct Reject {
    pub row: DjangoRow,
    pub reason: RejectReason,
    pub detail: String,
}

/// Everything already taken that a batch could collide with.
#[derive(Default)]
struct Taken {
    legacy_ids: HashSet<i64>,
    /// Mobile → the Django id of its holder (`None`: a user who registered here).
    mobiles: HashMap<String, Option<i64>>,
    /// Lower-cased.
    usernames: HashSet<String>,
    /// Lower-cased.
    emails: HashSet<String>,
}

/// Writes `batch` (in Django id order) in one transaction on `db`; retried
/// from scratch if a user registering meanwhile takes a mobile, username or
/// email between the check and the insert.
pub async fn write_batch<C>(
    db: &C,
    batch: Vec<Prepared>,
    hasher: &CodeHasher,
    now: DateTime<Utc>,
) -> anyhow::Result<BatchOutcome>
where
    C: ConnectionTrait + TransactionTrait,
{
    const ATTEMPTS: u32 = 3;
    let mut attempt = 1;
    loop {
        let txn = db.begin().await?;
        if txn.get_database_backend() == DatabaseBackend::Postgres {
            for setting in POSTGRES_BATCH_SETTINGS {
                txn.execute_unprepared(setting).await?;
            }
        }
        let (outcome, users) = decide(&txn, &batch, hasher).await?;
        let inserted = match users.is_empty() {
            true => Ok(()),
            false => insert(&txn, users, now).await,
        };
        match inserted {
            Ok(()) => {
                txn.commit().await?;
                return Ok(outcome);
            }
            Err(err) if crate::db::unique_violation(&err).is_some() && attempt < ATTEMPTS => {
                txn.rollback().await?;
                attempt += 1;
            }
            Err(err) => return Err(err.into()),
        }
    }
}

/// A user to insert, as the rules decided it.
struct NewUser<'a> {
    prepared: &'a Prepared,
    username: Username,
    email: Option<&'a str>,
}

/// Applies the rules to each row in order: an id already imported is
/// skipped; a mobile already taken is a reject; a username or email that
/// is taken (or invalid) gives way to the derived username / no email.
async fn decide<'a, C: ConnectionTrait>(
    db: &C,
    batch: &'a [Prepared],
    hasher: &CodeHasher,
) -> anyhow::Result<(BatchOutcome, Vec<NewUser<'a>>)> {
    let mut taken = taken(db, batch, hasher).await?;
    let mut outcome = BatchOutcome::default();
    let mut users = Vec::with_capacity(batch.len());
    for prepared in batch {
        let row = &prepared.row;
        if taken.legacy_ids.contains(&row.id) {
            outcome.already_present += 1;
            continue;
        }
        if let Some(holder) = taken.mobiles.get(prepared.mobile.as_str()) {
            let detail = match holder {
                Some(id) => format!("{} already belongs to Django user {id}", prepared.mobile),
                None => format!("{} already belongs to a user of smsauth", prepared.mobile),
            };
            outcome.rejects.push(Reject {
                row: row.clone(),
                reason: RejectReason::MobileTaken,
                detail,
            });
            continue;
        }
        let kept = prepared
            .username
            .clone()
            .filter(|name| !taken.usernames.contains(&name.as_str().to_lowercase()));
        let username = match kept {
            Some(name) => name,
            None => {
                outcome.usernames_replaced += 1;
                derived_username(db, prepared, hasher, &taken).await?
            }
        };
        let email = prepared
            .email
            .as_ref()
            .filter(|email| !taken.emails.contains(&email.as_str().to_lowercase()));
        if email.is_none() && !row.email.trim().is_empty() {
            outcome.emails_dropped += 1;
        }
        if !row.password.is_verifiable() {
            outcome.sms_only += 1;
        }
        taken.legacy_ids.insert(row.id);
        taken
            .mobiles
            .insert(prepared.mobile.as_str().to_owned(), Some(row.id));
        taken.usernames.insert(username.as_str().to_lowercase());
        if let Some(email) = email {
            taken.emails.insert(email.as_str().to_lowercase());
        }
        outcome.imported += 1;
        users.push(NewUser {
            prepared,
            username,
            email: email.map(Email::as_str),
        });
    }
    Ok((outcome, users))
}

/// Inserts the decided users in one statement.
async fn insert<C: ConnectionTrait>(
    db: &C,
    users: Vec<NewUser<'_>>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    if db.get_database_backend() != DatabaseBackend::Postgres {
        let models = users.into_iter().map(|user| {
            let prepared = user.prepared;
            users::ActiveModel {
                id: Set(UserId::new().as_uuid()),
                username: Set(user.username.as_str().to_owned()),
                mobile: Set(prepared.mobile.as_str().to_owned()),
                email: Set(user.email.map(str::to_owned)),
                password_hash: Set(prepared.row.password.stored_form()),
                is_active: Set(prepared.row.is_active),
                token_version: Set(0),
                created_at: Set(prepared.created_at),
                updated_at: Set(now),
                last_login_at: Set(prepared.last_login_at),
                legacy_id: Set(Some(prepared.row.id)),
            }
        });
        return Users::insert_many(models).exec(db).await.map(|_| ());
    }
    // One array per column. sea-query binds no NULL inside an array: no email
    // is '' (never an address), a missing last login is flagged beside a
    // stand-in instant.
    let column = |f: &dyn Fn(&NewUser<'_>) -> String| -> Value {
        users.iter().map(f).collect::<Vec<String>>().into()
    };
    let values = vec![
        users
            .iter()
            .map(|_| UserId::new().as_uuid())
            .collect::<Vec<_>>()
            .into(),
        column(&|u| u.username.as_str().to_owned()),
        column(&|u| u.prepared.mobile.as_str().to_owned()),
        column(&|u| u.email.unwrap_or_default().to_owned()),
        column(&|u| u.prepared.row.password.stored_form()),
        users
            .iter()
            .map(|u| u.prepared.row.is_active)
            .collect::<Vec<_>>()
            .into(),
        users
            .iter()
            .map(|u| u.prepared.created_at)
            .collect::<Vec<_>>()
            .into(),
        users
            .iter()
            .map(|u| u.prepared.last_login_at.is_some())
            .collect::<Vec<_>>()
            .into(),
        users
            .iter()
            .map(|u| u.prepared.last_login_at.unwrap_or(u.prepared.created_at))
            .collect::<Vec<_>>()
            .into(),
        users
            .iter()
            .map(|u| u.prepared.row.id)
            .collect::<Vec<_>>()
            .into(),
        now.into(),
    ];
    let statement =
        Statement::from_sql_and_values(DatabaseBackend::Postgres, INSERT_UNNEST, values);
    db.execute_raw(statement).await.map(|_| ())
}

/// The PostgreSQL INSERT of a whole batch: one array per column.
const INSERT_UNNEST: &str = "\
INSERT INTO users (id, username, mobile, email, password_hash, is_active, token_version, \
                   created_at, updated_at, last_login_at, legacy_id) \
SELECT t.id, t.username, t.mobile, NULLIF(t.email, ''), t.password_hash, t.is_active, 0, \
       t.created_at, $11, CASE WHEN t.logged_in THEN t.last_login_at END, t.legacy_id \
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bool[], \
            $7::timestamptz[], $8::bool[], $9::timestamptz[], $10::int8[]) \
  AS t(id, username, mobile, email, password_hash, is_active, created_at, logged_in, \
       last_login_at, legacy_id)";

/// The registration's derived username for the mobile; in the (astronomically
/// rare) case that it is taken, the next variant.
async fn derived_username<C: ConnectionTrait>(
    db: &C,
    prepared: &Prepared,
    hasher: &CodeHasher,
    taken: &Taken,
) -> anyhow::Result<Username> {
    let mut attempt = 0;
    loop {
        let name = default_username(hasher, &prepared.mobile, attempt)
            .map_err(|_| anyhow::anyhow!("deriving a username"))?;
        let lower = name.as_str().to_lowercase();
        let free = !taken.usernames.contains(&lower)
            && (attempt == 0
                || lower_values(db, Column::Username, vec![lower])
                    .await?
                    .is_empty());
        if free {
            return Ok(name);
        }
        attempt += 1;
        if attempt > 5 {
            anyhow::bail!("no free username for Django user {}", prepared.row.id);
        }
    }
}

/// What the database already holds of the batch's ids, mobiles, usernames
/// (kept and derived) and emails: four queries, whatever the batch size.
async fn taken<C: ConnectionTrait>(
    db: &C,
    batch: &[Prepared],
    hasher: &CodeHasher,
) -> anyhow::Result<Taken> {
    let ids: Vec<i64> = batch.iter().map(|p| p.row.id).collect();
    let legacy_ids = Users::find()
        .select_only()
        .column(Column::LegacyId)
        .filter(one_of(db, Expr::col(Column::LegacyId), ids))
        .into_tuple::<Option<i64>>()
        .all(db)
        .await?
        .into_iter()
        .flatten()
        .collect();
    let mobiles: Vec<String> = batch.iter().map(|p| p.mobile.as_str().to_owned()).collect();
    let mobiles = Users::find()
        .select_only()
        .column(Column::Mobile)
        .column(Column::LegacyId)
        .filter(one_of(db, Expr::col(Column::Mobile), mobiles))
        .into_tuple::<(String, Option<i64>)>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    let mut names = Vec::with_capacity(batch.len() * 2);
    for prepared in batch {
        if let Some(name) = &prepared.username {
            names.push(name.as_str().to_lowercase());
        }
        if let Ok(derived) = default_username(hasher, &prepared.mobile, 0) {
            names.push(derived.as_str().to_lowercase());
        }
    }
    let emails = batch
        .iter()
        .filter_map(|p| p.email.as_ref())
        .map(|email| email.as_str().to_lowercase())
        .collect();
    Ok(Taken {
        legacy_ids,
        mobiles,
        usernames: lower_values(db, Column::Username, names).await?,
        emails: lower_values(db, Column::Email, emails).await?,
    })
}

/// Which of `lowered` are held by some user, compared with `lower(column)`
/// (the expression the unique indexes are on).
async fn lower_values<C: ConnectionTrait>(
    db: &C,
    column: Column,
    lowered: Vec<String>,
) -> anyhow::Result<HashSet<String>> {
    if lowered.is_empty() {
        return Ok(HashSet::new());
    }
    let lower = Expr::expr(Func::lower(Expr::col(column)));
    Ok(Users::find()
        .select_only()
        .expr(lower.clone())
        .filter(one_of(db, lower, lowered))
        .into_tuple::<String>()
        .all(db)
        .await?
        .into_iter()
        .collect())
}

/// `expr` is one of `values`: `= ANY($1)` with one array on PostgreSQL,
/// `IN (…)` elsewhere.
fn one_of<C, T>(db: &C, expr: Expr, values: Vec<T>) -> Expr
where
    C: ConnectionTrait,
    T: Into<Value>,
    Vec<T>: Into<Value>,
{
    match db.get_database_backend() {
        DatabaseBackend::Postgres => expr.eq(PgFunc::any(Expr::val(values))),
        _ => expr.is_in(values.into_iter().map(Into::<Value>::into)),
    }
}
