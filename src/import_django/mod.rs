//! `smsauth import-django`: bring the users of the Django REST Framework
//! original over, passwords and all.
//!
//! - [`source`] reads Django's rows (PostgreSQL, SQLite or a dumpdata JSON
//!   file) into one bounded stream;
//! - [`mapping`] turns a row into what smsauth stores, as far as the row
//!   alone can tell (mobile in E.164, valid username and email, instants);
//! - [`writer`] settles what is taken and writes a batch per transaction;
//! - [`progress`] keeps the operator informed.
//!
//! Memory stays flat: at most one batch and two channels of rows (read
//! ahead, mapped ahead) are held. Every batch commits on its own, so an
//! interrupted import keeps what it reported and a re-run carries on (rows
//! already imported are recognised by `legacy_id`). `--dry-run` runs the same code in one transaction that is
//! rolled back at the end.

mod mapping;
mod progress;
mod source;
mod writer;

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use chrono::Utc;
use chrono_tz::Tz;
use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, DatabaseBackend, TransactionTrait};
use secrecy::ExposeSecret;
use serde_json::json;
use tokio::sync::mpsc;

pub use mapping::{RejectReason, parse_instant};
pub use source::Source;

use crate::codes::CodeHasher;
use crate::config::Config;
use crate::domain::Region;
use progress::Progress;
use writer::{BatchOutcome, Reject};

/// Rows written per INSERT and per transaction: PostgreSQL takes a batch's
/// columns as one array each; SQLite binds every value (at most 32,766 in
/// one statement, 11 per row).
fn batch_rows(backend: DatabaseBackend) -> usize {
    match backend {
        DatabaseBackend::Postgres => 5000,
        _ => 1000,
    }
}

/// What the command line asked for.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// A PostgreSQL URL, a SQLite file or URL, or a dumpdata JSON file.
    pub source: String,
    pub table: String,
    pub dry_run: bool,
    pub rejects: PathBuf,
    pub time_zone: Tz,
    /// Show progress on stderr (a bar on a terminal, plain lines otherwise).
    pub show_progress: bool,
}

/// The counts of the one-line summary.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub imported: u64,
    pub already_present: u64,
    pub rejected: u64,
    /// Imported with an unusable password or a hasher smsauth does not verify.
    pub sms_only: u64,
    pub usernames_replaced: u64,
    pub emails_dropped: u64,
    pub dry_run: bool,
}

impl Summary {
    fn add(&mut self, batch: &BatchOutcome) {
        self.imported += batch.imported;
        self.already_present += batch.already_present;
        self.rejected += batch.rejects.len() as u64;
        self.sms_only += batch.sms_only;
        self.usernames_replaced += batch.usernames_replaced;
        self.emails_dropped += batch.emails_dropped;
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}imported {}, already present {}, rejected {} ({} SMS sign-in only, {} usernames replaced, {} emails dropped)",
            if self.dry_run {
                "dry run, nothing written: "
            } else {
                ""
            },
            self.imported,
            self.already_present,
            self.rejected,
            self.sms_only,
            self.usernames_replaced,
            self.emails_dropped,
        )
    }
}

/// Runs the import into `config.database_url`, applying pending migrations
/// first (inside the rolled-back transaction for a dry run).
pub async fn run(config: &Config, options: &ImportOptions) -> anyhow::Result<Summary> {
    let rows = Source::detect(&options.source)?
        .open(&options.table)
        .await?;
    let db = crate::db::connect(
        config.database_url.expose_secret(),
        config.database_max_connections.min(2),
        None,
    )
    .await
    .context("DATABASE_URL: cannot connect")?;
    let hasher = CodeHasher::new(&server_secret(config));
    let mut rejects = RejectsFile::create(&options.rejects)?;
    let region = config.sms.default_region;
    let summary = if options.dry_run {
        let txn = db.begin().await?;
        Migrator::up(&txn, None).await?;
        let summary = import_rows(&txn, rows, options, region, &hasher, &mut rejects).await;
        txn.rollback().await?;
        summary?
    } else {
        Migrator::up(&db, None).await?;
        import_rows(&db, rows, options, region, &hasher, &mut rejects).await?
    };
    rejects.finish()?;
    db.close().await.ok();
    Ok(Summary {
        dry_run: options.dry_run,
        ..summary
    })
}

/// The derived usernames use the server's key, as registration does; without
/// `JWT_SECRET` any key will do (the names only have to be unique).
fn server_secret(config: &Config) -> Vec<u8> {
    match &config.jwt.secret {
        Some(secret) => secret.expose_secret().as_bytes().to_vec(),
        None => {
            let mut random = vec![0u8; 32];
            rand::fill(random.as_mut_slice());
            random
        }
    }
}

async fn import_rows<C>(
    db: &C,
    rows: source::Rows,
    options: &ImportOptions,
    region: Region,
    hasher: &CodeHasher,
    rejects: &mut RejectsFile,
) -> anyhow::Result<Summary>
where
    C: ConnectionTrait + TransactionTrait,
{
    let mut summary = Summary::default();
    let mut progress = Progress::new(options.show_progress, rows.total);
    let batch_rows = batch_rows(db.get_database_backend());
    let mut mapped = map_ahead(rows.receiver, region, options.time_zone, batch_rows);
    let mut batch = Vec::with_capacity(batch_rows);
    let mut finished = false;
    while !finished {
        // Fill a batch; rows that fail on their own are rejected on the way.
        let mut early = Vec::new();
        while batch.len() < batch_rows {
            let Some(row) = mapped.recv().await else {
                finished = true;
                break;
            };
            match row? {
                mapping::Mapped::Ready(prepared) => batch.push(prepared),
                mapping::Mapped::Rejected(row, reason) => early.push(Reject {
                    detail: detail_of(&row, reason),
                    row,
                    reason,
                }),
            }
        }
        let read = (batch.len() + early.len()) as u64;
        let mut outcome = match batch.is_empty() {
            true => BatchOutcome::default(),
            false => {
                writer::write_batch(db, std::mem::take(&mut batch), hasher, Utc::now()).await?
            }
        };
        outcome.rejects.extend(early);
        // Rejects go to the file in Django id order.
        outcome.rejects.sort_by_key(|reject| reject.row.id);
        for reject in &outcome.rejects {
            rejects.write(reject)?;
        }
        summary.add(&outcome);
        progress.advance(read, &summary);
    }
    progress.finish();
    Ok(summary)
}

/// Maps rows on their own task, up to a batch ahead of the writer, so the
/// next batch is parsed while the database writes this one.
fn map_ahead(
    mut rows: mpsc::Receiver<anyhow::Result<source::DjangoRow>>,
    region: Region,
    time_zone: Tz,
    ahead: usize,
) -> mpsc::Receiver<anyhow::Result<mapping::Mapped>> {
    let (sender, receiver) = mpsc::channel(ahead);
    tokio::spawn(async move {
        while let Some(row) = rows.recv().await {
            let mapped = row.map(|row| mapping::prepare(row, region, time_zone));
            if sender.send(mapped).await.is_err() {
                return;
            }
        }
    });
    receiver
}

fn detail_of(row: &source::DjangoRow, reason: RejectReason) -> String {
    match reason {
        RejectReason::InvalidMobile => format!(
            "{:?} is not a mobile number",
            row.mobile.as_deref().unwrap_or_default()
        ),
        RejectReason::InvalidTimestamp => format!(
            "date_joined {:?} or last_login {:?} is not a timestamp",
            row.date_joined, row.last_login
        ),
        RejectReason::MobileTaken => String::new(),
    }
}

/// `--rejects`: one JSON object per line, made afresh by every run (also a
/// dry run), readable by its owner only (it holds personal data).
struct RejectsFile {
    path: PathBuf,
    out: std::io::BufWriter<std::fs::File>,
}

impl RejectsFile {
    fn create(path: &std::path::Path) -> anyhow::Result<Self> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options
            .open(path)
            .with_context(|| format!("--rejects: cannot write {}", path.display()))?;
        Ok(Self {
            path: path.to_owned(),
            out: std::io::BufWriter::new(file),
        })
    }

    fn write(&mut self, reject: &Reject) -> anyhow::Result<()> {
        let line = json!({
            "legacy_id": reject.row.id,
            "reason": reject.reason.as_str(),
            "detail": reject.detail,
            "row": reject.row,
        });
        serde_json::to_writer(&mut self.out, &line)?;
        self.out
            .write_all(b"\n")
            .with_context(|| format!("--rejects: cannot write {}", self.path.display()))
    }

    fn finish(mut self) -> anyhow::Result<()> {
        self.out
            .flush()
            .with_context(|| format!("--rejects: cannot write {}", self.path.display()))
    }
}
