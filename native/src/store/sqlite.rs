//! SQLite storage on sqlx, over the schema of `migrations/sqlite` (shared with the edge's D1).
//!
//! Every check-then-write step is a single write statement (or a transaction that starts with
//! a write), because SQLite takes the write lock at the start of such a statement: that is what
//! makes token consumption and lockout reservations exact under concurrency.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use regstack_core::ports::{
    AttemptStore, MfaCodeStore, PendingStore, Purged, Reservation, RevocationStore, StoreError, Sweeper, UserStore,
};
use regstack_core::records::{CodeCheck, CodeKind, MfaCode, PendingRegistration, User, UserPatch};
use regstack_core::sqlite::{self, code_from, pending_from, user_from, Statement, Value};
use regstack_core::time::Timestamp;
use sqlx::query::Query;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, Sqlite, SqlitePool};

/// The bundled forward-only migrations, in order.
pub const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "initial",
        include_str!("../../../migrations/sqlite/0001_initial.sql"),
    ),
    (
        2,
        "email_lower_index",
        include_str!("../../../migrations/sqlite/0002_email_lower_index.sql"),
    ),
    (
        3,
        "attempts_indexes",
        include_str!("../../../migrations/sqlite/0003_attempts_indexes.sql"),
    ),
    (
        4,
        "email_key",
        include_str!("../../../migrations/sqlite/0004_email_key.sql"),
    ),
];

/// Every store on one SQLite pool.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
}

/// Maps sqlx errors to the port's: unique violations by kind, I/O and pool trouble as
/// `Unavailable`.
pub(crate) fn map_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.kind() == sqlx::error::ErrorKind::UniqueViolation => {
            StoreError::Conflict(db.constraint().unwrap_or("unique").to_string())
        }
        sqlx::Error::Database(db) if db.code().as_deref() == Some("5") || db.code().as_deref() == Some("6") => {
            StoreError::Unavailable(format!("database is busy: {db}"))
        }
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => {
            StoreError::Unavailable(e.to_string())
        }
        _ => StoreError::Backend(e.to_string()),
    }
}

/// The statement with its values bound, ready to run.
fn query(st: &Statement) -> Query<'_, Sqlite, SqliteArguments<'_>> {
    st.params.iter().fold(sqlx::query(&st.sql), |q, v| match v {
        Value::Text(t) => q.bind(t.as_deref()),
        Value::Int(i) => q.bind(*i),
        Value::Bool(b) => q.bind(*b),
    })
}

/// A sqlx row, read through the shared row readers.
struct Read<'r>(&'r SqliteRow);

impl sqlite::Row for Read<'_> {
    fn text(&self, column: &str) -> Result<Option<String>, StoreError> {
        self.0.try_get(column).map_err(map_err)
    }

    fn int(&self, column: &str) -> Result<i64, StoreError> {
        self.0.try_get(column).map_err(map_err)
    }

    fn flag(&self, column: &str) -> Result<bool, StoreError> {
        self.0.try_get(column).map_err(map_err)
    }
}

/// Why the database cannot be opened or migrated.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// sqlx could not connect or run a statement.
    #[error("cannot open SQLite database {path}: {source}")]
    Connect {
        /// The path from `database_url`.
        path: String,
        /// What sqlx said.
        source: sqlx::Error,
    },
    /// A regstack 0.9.3 database at an older Alembic revision.
    #[error("the database was created by an older regstack (Alembic revision {0}); run `regstack migrate` of regstack 0.9.3 to reach revision 0003, then start this server again")]
    OldRevision(String),
}

impl SqliteStore {
    /// Opens (creating the file on first use) and migrates the database at `path` (`:memory:`
    /// for a private in-memory database), with at most `max_connections` connections.
    pub async fn open(path: &str, max_connections: u32) -> Result<Self, OpenError> {
        let connect = |source| OpenError::Connect {
            path: path.to_string(),
            source,
        };
        let memory = path == ":memory:";
        let options = if memory {
            SqliteConnectOptions::from_str("sqlite::memory:").map_err(connect)?
        } else {
            SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
        }
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(false);
        // An in-memory database lives in one connection; keep exactly that one forever.
        let pool = SqlitePoolOptions::new()
            .max_connections(if memory { 1 } else { max_connections.max(1) })
            .min_connections(if memory { 1 } else { 0 })
            .idle_timeout(if memory { None } else { Some(Duration::from_secs(600)) })
            .max_lifetime(if memory { None } else { Some(Duration::from_secs(3600)) })
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(connect)?;
        let store = Self { pool };
        store.migrate().await.map_err(|e| match e {
            MigrateError::Sql(source) => connect(source),
            MigrateError::OldRevision(r) => OpenError::OldRevision(r),
        })?;
        Ok(store)
    }

    /// The pool, for host code that wants to share it.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Applies the bundled migrations that have not run yet. A regstack 0.9.3 database at
    /// Alembic head is adopted as it is: the migrations are idempotent over it.
    pub async fn migrate(&self) -> Result<Vec<i64>, MigrateError> {
        let alembic: Option<String> = sqlx::query_scalar(
            "SELECT version_num FROM alembic_version WHERE EXISTS (SELECT 1 FROM sqlite_master WHERE type='table' AND name='alembic_version') LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await
        .or_else(|e| match e {
            // No alembic_version table: a fresh database or one of ours.
            sqlx::Error::Database(_) => Ok(None),
            other => Err(other),
        })?;
        if let Some(rev) = alembic.filter(|r| r != "0003") {
            return Err(MigrateError::OldRevision(rev));
        }
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS regstack_migrations (version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
        )
        .execute(&self.pool)
        .await?;
        let mut applied = Vec::new();
        for (version, name, sql) in MIGRATIONS {
            let mut tx = self.pool.begin().await?;
            let done: Option<i64> = sqlx::query_scalar("SELECT version FROM regstack_migrations WHERE version = ?")
                .bind(version)
                .fetch_optional(&mut *tx)
                .await?;
            if done.is_some() {
                continue;
            }
            // Comment lines go first: they may hold a `;`.
            let code: String = sql
                .lines()
                .filter(|l| !l.trim_start().starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n");
            for statement in code.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                // SQLite has no `ADD COLUMN IF NOT EXISTS`; a database that got the column by
                // another runner (wrangler's, for D1) must not fail on it.
                if let Some((table, column)) = added_column(statement) {
                    let exists: Option<i64> =
                        sqlx::query_scalar(&format!("SELECT 1 FROM pragma_table_info('{table}') WHERE name = ?"))
                            .bind(&column)
                            .fetch_optional(&mut *tx)
                            .await?;
                    if exists.is_some() {
                        continue;
                    }
                }
                sqlx::raw_sql(statement).execute(&mut *tx).await?;
            }
            sqlx::query("INSERT INTO regstack_migrations (version, name, applied_at) VALUES (?, ?, datetime('now'))")
                .bind(version)
                .bind(name)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            applied.push(*version);
        }
        self.key_emails().await?;
        Ok(applied)
    }

    /// Writes the `email_key` of rows SQL could not key (non-ASCII addresses, rows another
    /// writer added without one); a no-op once every row has the right key.
    async fn key_emails(&self) -> Result<(), sqlx::Error> {
        for table in sqlite::KEYED_TABLES {
            let rows = query(&sqlite::stale_keyed_rows(table)).fetch_all(&self.pool).await?;
            for row in rows {
                let (id, email): (String, String) = (row.try_get("id")?, row.try_get("email")?);
                query(&sqlite::set_email_key(table, &id, &email))
                    .execute(&self.pool)
                    .await?;
            }
        }
        Ok(())
    }
}

/// `(table, column)` of an `ALTER TABLE t ADD COLUMN c …` statement.
fn added_column(statement: &str) -> Option<(String, String)> {
    let words: Vec<&str> = statement.split_whitespace().collect();
    match words.as_slice() {
        [alter, tbl, table, add, col, column, ..]
            if alter.eq_ignore_ascii_case("alter")
                && tbl.eq_ignore_ascii_case("table")
                && add.eq_ignore_ascii_case("add")
                && col.eq_ignore_ascii_case("column") =>
        {
            Some((table.to_string(), column.to_string()))
        }
        _ => None,
    }
}

/// A migration failure.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// A statement failed.
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
    /// The database is a regstack 0.9.3 one below Alembic head.
    #[error("alembic revision {0} is older than 0003")]
    OldRevision(String),
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn create(&self, u: &User) -> Result<User, StoreError> {
        let done = query(&sqlite::create_user(u))
            .execute(&self.pool)
            .await
            .map_err(|e| match map_err(e) {
                StoreError::Conflict(c) if c.contains("email") || c == "unique" => StoreError::Conflict("email".into()),
                other => other,
            })?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict("email".into()));
        }
        Ok(u.clone())
    }

    async fn get(&self, id: &str) -> Result<Option<User>, StoreError> {
        self.one(&sqlite::user_by_id(id), |r| user_from(r)).await
    }

    async fn find_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        self.one(&sqlite::user_by_email(email), |r| user_from(r)).await
    }

    async fn update(&self, id: &str, patch: &UserPatch, now: Timestamp) -> Result<User, StoreError> {
        match self.one(&sqlite::update_user(id, patch, now), |r| user_from(r)).await? {
            Some(user) => Ok(user),
            None if patch.email.is_some() && self.get(id).await?.is_some() => Err(StoreError::Conflict("email".into())),
            None => Err(StoreError::NotFound),
        }
    }

    async fn delete(&self, user: &User) -> Result<bool, StoreError> {
        let changed = self.transaction(&sqlite::delete_user(user)).await?;
        Ok(changed.first().is_some_and(|&n| n > 0))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.run(&sqlite::ping()).await.map(|_| ())
    }
}

impl SqliteStore {
    /// The first row of `st`, read by `read`.
    async fn one<T>(
        &self,
        st: &Statement,
        read: impl FnOnce(&Read<'_>) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        let row = query(st).fetch_optional(&self.pool).await.map_err(map_err)?;
        row.as_ref().map(|r| read(&Read(r))).transpose()
    }

    /// Runs a write and answers how many rows it changed.
    async fn run(&self, st: &Statement) -> Result<u64, StoreError> {
        Ok(query(st).execute(&self.pool).await.map_err(map_err)?.rows_affected())
    }

    /// Runs statements as one transaction; answers how many rows each changed.
    async fn transaction(&self, statements: &[Statement]) -> Result<Vec<u64>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let mut changed = Vec::with_capacity(statements.len());
        for st in statements {
            changed.push(query(st).execute(&mut *tx).await.map_err(map_err)?.rows_affected());
        }
        tx.commit().await.map_err(map_err)?;
        Ok(changed)
    }
}

#[async_trait]
impl PendingStore for SqliteStore {
    async fn put(&self, p: &PendingRegistration) -> Result<(), StoreError> {
        self.transaction(&sqlite::put_pending(p)).await.map(|_| ())
    }

    async fn take_by_token_hash(&self, token_hash: &str) -> Result<Option<PendingRegistration>, StoreError> {
        self.one(&sqlite::take_pending_by_token(token_hash), |r| pending_from(r))
            .await
    }

    async fn find_by_email(&self, email: &str) -> Result<Option<PendingRegistration>, StoreError> {
        self.one(&sqlite::pending_by_email(email), |r| pending_from(r)).await
    }

    async fn take_by_email(&self, email: &str) -> Result<Option<PendingRegistration>, StoreError> {
        self.one(&sqlite::take_pending_by_email(email), |r| pending_from(r))
            .await
    }
}

#[async_trait]
impl RevocationStore for SqliteStore {
    async fn revoke(&self, jti: &str, exp: Timestamp) -> Result<bool, StoreError> {
        Ok(self.run(&sqlite::revoke(jti, exp)).await? == 1)
    }

    async fn is_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        Ok(self.one(&sqlite::revoked(jti), |_| Ok(())).await?.is_some())
    }
}

#[async_trait]
impl AttemptStore for SqliteStore {
    async fn try_reserve(
        &self,
        email: &str,
        ip: Option<&str>,
        now: Timestamp,
        since: Timestamp,
        threshold: u64,
    ) -> Result<Reservation, StoreError> {
        let reserved = self
            .one(&sqlite::reserve_attempt(email, ip, now, since, threshold), |r| {
                sqlite::Row::int(r, "id")
            })
            .await?;
        let Some(id) = reserved else {
            return Ok(Reservation::Locked);
        };
        let failures = self
            .one(&sqlite::attempts_through(email, since, id), |r| {
                sqlite::Row::int(r, "n")
            })
            .await?
            .unwrap_or(1);
        Ok(Reservation::Reserved {
            id,
            failures: failures.max(1) as u64,
        })
    }

    async fn release(&self, id: i64) -> Result<(), StoreError> {
        self.run(&sqlite::release_attempt(id)).await.map(|_| ())
    }

    async fn clear(&self, email: &str) -> Result<(), StoreError> {
        self.run(&sqlite::clear_attempts(email)).await.map(|_| ())
    }
}

#[async_trait]
impl MfaCodeStore for SqliteStore {
    async fn put(&self, c: &MfaCode) -> Result<(), StoreError> {
        self.run(&sqlite::put_code(c)).await.map(|_| ())
    }

    async fn check(
        &self,
        user_id: &str,
        kind: CodeKind,
        code_hash: &str,
        now: Timestamp,
    ) -> Result<CodeCheck, StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        // A write first takes SQLite's write lock, so concurrent checks of one code run one
        // after another and every guess is counted (the shared write's attempt-count condition
        // then always holds).
        sqlx::query("UPDATE mfa_codes SET attempts = attempts WHERE user_id = ?1 AND kind = ?2")
            .bind(user_id)
            .bind(kind.as_str())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let row = query(&sqlite::code_of(user_id, kind))
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
        let Some(row) = row else {
            return Ok(CodeCheck::Missing);
        };
        let (id, stored) = code_from(&Read(&row), user_id, kind)?;
        let outcome = stored.judge(code_hash, now);
        query(&sqlite::record_check(outcome, id, &stored))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(outcome)
    }

    async fn delete_for_user(&self, user_id: &str) -> Result<(), StoreError> {
        self.run(&sqlite::delete_codes(user_id)).await.map(|_| ())
    }
}

#[async_trait]
impl Sweeper for SqliteStore {
    async fn purge_expired(&self, now: Timestamp, attempts_before: Timestamp) -> Result<Purged, StoreError> {
        // One statement at a time: each is a short write, so no request waits behind a sweep.
        let mut changes = Vec::new();
        for st in sqlite::purge_expired(now, attempts_before) {
            changes.push(self.run(&st).await?);
        }
        Ok(sqlite::purged(&changes))
    }
}
