//! Reading Django's user rows from wherever they are: a PostgreSQL or SQLite
//! database (the `--table`, read in pages by id) or a `manage.py dumpdata`
//! JSON file (parsed as a stream, one object at a time). Every source feeds
//! one bounded channel, so memory stays flat whatever the table's size.

use std::fmt;
use std::io::{BufReader, Read};
use std::path::Path;

use anyhow::{Context, bail};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, Statement, Value};
use serde::de::{DeserializeSeed, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// Rows fetched from a database per query (keyset pagination on `id`).
const PAGE_SIZE: u64 = 5000;
/// Rows read ahead of the mapping: a page, so the next query runs meanwhile.
const CHANNEL_ROWS: usize = 5000;

/// A stored Django password hash. Never shown by `Debug` nor written to the
/// rejects file.
#[derive(Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct DjangoPassword(pub String);

impl DjangoPassword {
    /// Whether smsauth can check a password against it (one of Django's
    /// hashers it verifies).
    pub fn is_verifiable(&self) -> bool {
        crate::auth::DjangoHasher::of(&self.0).is_some()
    }

    /// What smsauth stores: the column as Django wrote it (an unusable `!…`
    /// password or an unknown hasher such as `md5$…` is never checked), except
    /// a string in the PHC form of smsauth's own hashes (`$argon2id$…`, which no
    /// Django hasher writes): that one goes behind Django's unusable marker
    /// `!`, so it is never checked as a password of ours, with whatever
    /// parameters it names, and the original is still there to read.
    pub fn stored_form(&self) -> String {
        match self.0.starts_with('$') {
            true => format!("!{}", self.0),
            false => self.0.clone(),
        }
    }
}

impl fmt::Debug for DjangoPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DjangoPassword([REDACTED])")
    }
}

/// One row of Django's `AbstractUser` table with the original's `mobile`.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct DjangoRow {
    #[serde(default)]
    pub id: i64,
    #[serde(default, skip_serializing)]
    pub password: DjangoPassword,
    #[serde(default)]
    pub last_login: Option<String>,
    #[serde(default)]
    pub is_superuser: bool,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub is_staff: bool,
    #[serde(default = "active_by_default")]
    pub is_active: bool,
    #[serde(default)]
    pub date_joined: String,
    #[serde(default)]
    pub mobile: Option<String>,
}

fn active_by_default() -> bool {
    true
}

/// Rows in Django id order (a dumpdata file: in its own order, which is by
/// primary key), and how many there are when the source can tell cheaply.
pub struct Rows {
    pub receiver: mpsc::Receiver<anyhow::Result<DjangoRow>>,
    pub total: Option<u64>,
}

/// Where the rows come from, told apart by the `SOURCE` argument alone.
#[derive(Debug, PartialEq, Eq)]
pub enum Source {
    Postgres(String),
    Sqlite(String),
    DumpdataJson(std::path::PathBuf),
}

impl Source {
    pub fn detect(source: &str) -> anyhow::Result<Self> {
        if source.starts_with("postgres://") || source.starts_with("postgresql://") {
            return Ok(Self::Postgres(source.to_owned()));
        }
        if source.starts_with("sqlite:") {
            let url = if source.contains("mode=") {
                source.to_owned()
            } else {
                let separator = if source.contains('?') { '&' } else { '?' };
                format!("{source}{separator}mode=ro")
            };
            return Ok(Self::Sqlite(url));
        }
        let path = Path::new(source);
        let mut head = [0u8; 16];
        let read = std::fs::File::open(path)
            .and_then(|mut file| file.read(&mut head))
            .with_context(|| format!("SOURCE: cannot read {source}"))?;
        if head[..read].starts_with(b"SQLite format 3\0") {
            let absolute = std::fs::canonicalize(path)
                .with_context(|| format!("SOURCE: cannot read {source}"))?;
            return Ok(Self::Sqlite(format!(
                "sqlite://{}?mode=ro",
                absolute.display()
            )));
        }
        Ok(Self::DumpdataJson(path.to_owned()))
    }

    /// Starts reading. `table` is the Django table (`user_user`); for a JSON
    /// file it names the model the same way (`user_user` is `user.user`).
    pub async fn open(self, table: &str) -> anyhow::Result<Rows> {
        let table = TableName::parse(table)?;
        match self {
            Self::Postgres(url) | Self::Sqlite(url) => open_database(&url, table).await,
            Self::DumpdataJson(path) => open_json(&path, &table.model_label()),
        }
    }
}

/// A validated `table` or `schema.table`, quoted when put into SQL.
#[derive(Clone)]
struct TableName(Vec<String>);

impl TableName {
    fn parse(raw: &str) -> anyhow::Result<Self> {
        let parts: Vec<String> = raw.split('.').map(str::to_owned).collect();
        let valid = |part: &String| {
            part.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && part.len() <= 63
        };
        if parts.len() > 2 || !parts.iter().all(valid) {
            bail!("--table: {raw:?} is not a table name such as user_user or public.user_user");
        }
        Ok(Self(parts))
    }

    fn quoted(&self) -> String {
        self.0
            .iter()
            .map(|part| format!("\"{part}\""))
            .collect::<Vec<_>>()
            .join(".")
    }

    /// Django names a model's table `app_model`: `user_user` is `user.user`.
    fn model_label(&self) -> String {
        let table = self.0.last().map(String::as_str).unwrap_or_default();
        table.replacen('_', ".", 1).to_lowercase()
    }
}

async fn open_database(url: &str, table: TableName) -> anyhow::Result<Rows> {
    let mut options = ConnectOptions::new(url.to_owned());
    options.max_connections(1).sqlx_logging(false);
    let db = Database::connect(options)
        .await
        .context("SOURCE: cannot connect to the Django database")?;
    let backend = db.get_database_backend();
    let count = db
        .query_one_raw(Statement::from_string(
            backend,
            format!("SELECT COUNT(*) FROM {}", table.quoted()),
        ))
        .await
        .with_context(|| format!("SOURCE: cannot read the table {}", table.quoted()))?
        .and_then(|row| row.try_get_by_index::<i64>(0).ok())
        .and_then(|n| u64::try_from(n).ok());
    // Fail now, with the reason, if a column is missing.
    fetch_page(&db, &table, i64::MIN, 1)
        .await
        .context("SOURCE: the table is not a Django user table with a mobile column")?;
    let (sender, receiver) = mpsc::channel(CHANNEL_ROWS);
    tokio::spawn(async move {
        let mut after = i64::MIN;
        loop {
            let page = match fetch_page(&db, &table, after, PAGE_SIZE).await {
                Ok(page) => page,
                Err(err) => {
                    let _ = sender.send(Err(err)).await;
                    break;
                }
            };
            let Some(last) = page.last().map(|row| row.id) else {
                break;
            };
            after = last;
            for row in page {
                if sender.send(Ok(row)).await.is_err() {
                    return;
                }
            }
        }
        db.close().await.ok();
    });
    Ok(Rows {
        receiver,
        total: count,
    })
}

/// Up to `limit` rows with an id above `after`, in id order. Timestamps are
/// read as text whatever their column type, so both backends and both of
/// Django's `USE_TZ` settings come out the same way.
async fn fetch_page(
    db: &DatabaseConnection,
    table: &TableName,
    after: i64,
    limit: u64,
) -> anyhow::Result<Vec<DjangoRow>> {
    let backend = db.get_database_backend();
    let placeholder = match backend {
        sea_orm::DatabaseBackend::Postgres => "$1",
        _ => "?",
    };
    let sql = format!(
        "SELECT CAST(id AS BIGINT) AS id, password, CAST(last_login AS TEXT) AS last_login, \
         is_superuser, username, first_name, last_name, email, is_staff, is_active, \
         CAST(date_joined AS TEXT) AS date_joined, mobile \
         FROM {} WHERE id > {placeholder} ORDER BY id LIMIT {limit}",
        table.quoted()
    );
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [Value::from(after)],
        ))
        .await?;
    rows.into_iter()
        .map(|row| {
            let text = |column: &str| -> anyhow::Result<String> {
                Ok(row
                    .try_get::<Option<String>>("", column)?
                    .unwrap_or_default())
            };
            Ok(DjangoRow {
                id: row.try_get("", "id")?,
                password: DjangoPassword(text("password")?),
                last_login: row.try_get("", "last_login")?,
                is_superuser: row.try_get("", "is_superuser")?,
                username: text("username")?,
                first_name: text("first_name")?,
                last_name: text("last_name")?,
                email: text("email")?,
                is_staff: row.try_get("", "is_staff")?,
                is_active: row.try_get("", "is_active")?,
                date_joined: text("date_joined")?,
                mobile: row.try_get("", "mobile")?,
            })
        })
        .collect()
}

/// One object of a dumpdata file.
#[derive(Deserialize)]
struct Record {
    model: String,
    pk: i64,
    fields: DjangoRow,
}

fn open_json(path: &Path, model: &str) -> anyhow::Result<Rows> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("SOURCE: cannot read {}", path.display()))?;
    let (sender, receiver) = mpsc::channel(CHANNEL_ROWS);
    let model = model.to_owned();
    let name = path.display().to_string();
    tokio::task::spawn_blocking(move || {
        let mut deserializer = serde_json::Deserializer::from_reader(BufReader::new(file));
        let streamed = RecordStream {
            sender: &sender,
            model: &model,
        }
        .deserialize(&mut deserializer)
        .and_then(|()| deserializer.end());
        if let Err(err) = streamed {
            // A closed channel means the reader stopped; nothing to tell.
            let _ = sender.blocking_send(Err(anyhow::anyhow!(
                "SOURCE: {name} is not a dumpdata JSON file: {err}"
            )));
        }
    });
    Ok(Rows {
        receiver,
        total: None,
    })
}

/// Visits the top-level array one record at a time, sending each row of
/// `model` on as soon as it is parsed (never the whole array in memory).
struct RecordStream<'a> {
    sender: &'a mpsc::Sender<anyhow::Result<DjangoRow>>,
    model: &'a str,
}

impl<'de> DeserializeSeed<'de> for RecordStream<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RecordStream<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the array `manage.py dumpdata` writes")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(record) = seq.next_element::<Record>()? {
            if record.model != self.model {
                continue;
            }
            let row = DjangoRow {
                id: record.pk,
                ..record.fields
            };
            if self.sender.blocking_send(Ok(row)).is_err() {
                return Err(serde::de::Error::custom("the import stopped"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_checked_and_quoted() {
        assert_eq!(
            TableName::parse("user_user").unwrap().quoted(),
            "\"user_user\""
        );
        assert_eq!(
            TableName::parse("public.user_user").unwrap().quoted(),
            "\"public\".\"user_user\""
        );
        assert_eq!(
            TableName::parse("user_user").unwrap().model_label(),
            "user.user"
        );
        assert_eq!(
            TableName::parse("accounts_customuser")
                .unwrap()
                .model_label(),
            "accounts.customuser"
        );
        for bad in ["", "user user", "users;drop", "a.b.c", "\"x\"", "1abc"] {
            assert!(TableName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sources_are_told_apart_by_their_argument() {
        assert_eq!(
            Source::detect("postgres://u@h/db").unwrap(),
            Source::Postgres("postgres://u@h/db".into())
        );
        assert_eq!(
            Source::detect("sqlite://x.db").unwrap(),
            Source::Sqlite("sqlite://x.db?mode=ro".into())
        );
        assert!(Source::detect("/no/such/file.json").is_err());
    }
}
