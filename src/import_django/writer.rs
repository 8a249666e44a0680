//! Writing one batch of prepared rows: a handful of `IN (…)` queries find
//! what is already taken, the rules decide each row in Django id order, and
//! one multi-row INSERT writes the batch in its own transaction.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, Set, TransactionSession,
    TransactionTrait,
};

use super::mapping::{Prepared, RejectReason};
use super::source::DjangoRow;
use crate::codes::CodeHasher;
use crate::db::entity::users::{self, Column, Entity as Users};
use crate::domain::{UserId, Username};
use crate::service::accounts::default_username;

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
        let (outcome, models) = decide(&txn, &batch, hasher, now).await?;
        let inserted = match models.is_empty() {
            true => Ok(()),
            false => Users::insert_many(models).exec(&txn).await.map(|_| ()),
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

/// Applies the rules to each row in order: an id already imported is
/// skipped; a mobile already taken is a reject; a username or email that
/// is taken (or invalid) gives way to the derived username / no email.
async fn decide<C: ConnectionTrait>(
    db: &C,
    batch: &[Prepared],
    hasher: &CodeHasher,
    now: DateTime<Utc>,
) -> anyhow::Result<(BatchOutcome, Vec<users::ActiveModel>)> {
    let mut taken = taken(db, batch, hasher).await?;
    let mut outcome = BatchOutcome::default();
    let mut models = Vec::with_capacity(batch.len());
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
        models.push(users::ActiveModel {
            id: Set(UserId::new().as_uuid()),
            username: Set(username.as_str().to_owned()),
            mobile: Set(prepared.mobile.as_str().to_owned()),
            email: Set(email.map(|e| e.as_str().to_owned())),
            password_hash: Set(row.password.stored_form()),
            is_active: Set(row.is_active),
            token_version: Set(0),
            created_at: Set(prepared.created_at),
            updated_at: Set(now),
            last_login_at: Set(prepared.last_login_at),
            legacy_id: Set(Some(row.id)),
        });
    }
    Ok((outcome, models))
}

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
        .filter(Column::LegacyId.is_in(ids))
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
        .filter(Column::Mobile.is_in(mobiles))
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
        .filter(lower.is_in(lowered))
        .into_tuple::<String>()
        .all(db)
        .await?
        .into_iter()
        .collect())
}
