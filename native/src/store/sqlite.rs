//! SQLite storage on sqlx, over the schema of `migrations/sqlite` (shared with the edge's D1):
//! an [`Executor`] of the shared statements, made into every store port by the core's
//! `SqlStore` ([`open`](SqliteStore::open) gives the executor; wrap it).
//!
//! Every check-then-write step is a single write statement (or a transaction that starts with
//! a write), because SQLite takes the write lock at the start of such a statement: that is what
//! makes token consumption and lockout reservations exact under concurrency.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use regstack_core::ports::StoreError;
use regstack_core::records::{CodeCheck, CodeKind};
use regstack_core::sqlite::{self, code_from, Executor, Statement, Value};
use regstack_core::time::Timestamp;
use serde_json::{Map, Value as Json};
use sqlx::query::Query;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Column, Row, Sqlite, SqlitePool, TypeInfo, ValueRef};

use super::sqlite_reader::InlineReader;
use super::SchemaState;

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
    (
        5,
        "roles_and_user_listing",
        include_str!("../../../migrations/sqlite/0005_roles_and_user_listing.sql"),
    ),
    (
        6,
        "refresh_tokens",
        include_str!("../../../migrations/sqlite/0006_refresh_tokens.sql"),
    ),
    (
        7,
        "push_subscriptions",
        include_str!("../../../migrations/sqlite/0007_push_subscriptions.sql"),
    ),
];

/// Every store on one SQLite pool, plus read-only connections for key reads.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
    reader: Option<Arc<InlineReader>>,
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
    /// An Alembic revision no regstack 0.9.3 release made.
    #[error("the database carries Alembic revision {0}, which no regstack 0.9.3 release made; this regstack adopts 0001, 0002 and 0003")]
    UnknownRevision(String),
    /// A regstack 0.9.3 database that is not as its revision says.
    #[error("cannot adopt the regstack 0.9.3 database: {0}")]
    Adoption(String),
}

impl SqliteStore {
    /// Opens (creating the file on first use) and migrates the database at `path` (`:memory:`
    /// for a private in-memory database), with at most `max_connections` connections.
    pub async fn open(path: &str, max_connections: u32) -> Result<Self, OpenError> {
        let store = Self::connect(path, max_connections, Access::Create).await?;
        store.migrate().await.map_err(|e| e.opening(path))?;
        Ok(store)
    }

    /// Opens the database at `path` without migrating it (`regstack migrate`, `doctor`,
    /// `serve --no-migrate`), as `access` says.
    pub async fn connect(path: &str, max_connections: u32, access: Access) -> Result<Self, OpenError> {
        let connect = |source| OpenError::Connect {
            path: path.to_string(),
            source,
        };
        let memory = path == ":memory:";
        let options = if memory {
            SqliteConnectOptions::from_str("sqlite::memory:").map_err(connect)?
        } else {
            let file = SqliteConnectOptions::new().filename(path);
            match access {
                // Changing the journal mode is a write (it persists in the file).
                Access::Inspect => file.read_only(true),
                Access::Create | Access::Existing => file
                    .create_if_missing(access == Access::Create)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal),
            }
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
        let mut store = Self { pool, reader: None };
        if !memory && access != Access::Inspect {
            store.reader = key_reader(Path::new(path));
        }
        Ok(store)
    }

    /// Stores on a pool the host already owns (its own options and size), migrated first.
    /// Key reads stay on the pool: its options (in-memory, URI, journal mode) are the host's,
    /// and a second connection made from the file name alone might not see the same database.
    pub async fn from_pool(pool: SqlitePool) -> Result<Self, OpenError> {
        let store = Self { pool, reader: None };
        store.migrate().await.map_err(|e| e.opening("the host's pool"))?;
        Ok(store)
    }

    /// The pool, for host code that wants to share it.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Whether key reads are answered on the calling thread rather than through the pool
    /// (docs/performance.md, "Key reads on the calling thread").
    pub fn reads_keys_inline(&self) -> bool {
        self.reader.is_some()
    }

    /// Applies the bundled migrations that have not run yet. A regstack 0.9.3 database is
    /// adopted in place: at Alembic head (0003) as it is, since the migrations are idempotent
    /// over it, and at 0001 or 0002 after the steps 0.9.3's own migrations would take.
    pub async fn migrate(&self) -> Result<Vec<i64>, MigrateError> {
        self.migrate_to(None).await
    }

    /// Whether the database has a table called `table`.
    async fn has_table(&self, table: &str) -> Result<bool, sqlx::Error> {
        let hit: Option<i64> = sqlx::query_scalar("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?")
            .bind(table)
            .fetch_optional(&self.pool)
            .await?;
        Ok(hit.is_some())
    }

    /// The Alembic revision regstack 0.9.3 left, if it made this database.
    async fn alembic_revision(&self) -> Result<Option<String>, sqlx::Error> {
        if !self.has_table("alembic_version").await? {
            return Ok(None);
        }
        sqlx::query_scalar("SELECT version_num FROM alembic_version LIMIT 1")
            .fetch_optional(&self.pool)
            .await
    }

    /// Where the schema stands, without changing anything.
    pub async fn schema_state(&self) -> Result<SchemaState, sqlx::Error> {
        let alembic = self.alembic_revision().await?;
        let current: Option<i64> = if self.has_table("regstack_migrations").await? {
            sqlx::query_scalar("SELECT MAX(version) FROM regstack_migrations")
                .fetch_one(&self.pool)
                .await?
        } else {
            None
        };
        Ok(SchemaState::of(alembic, current, MIGRATIONS))
    }

    /// Brings a regstack 0.9.3 database at Alembic revision 0001 or 0002 to 0003 in one
    /// transaction, as 0.9.3's migrations would: 0002 made `users.hashed_password` nullable
    /// (SQLite rebuilds the table, as Alembic's batch mode does) and added the OAuth tables,
    /// and 0003 added `oauth_states.result_was_new`. The revision is recorded, so 0.9.3's own
    /// tools still recognise the database.
    ///
    /// The rebuild drops and recreates `users`, so it runs with foreign keys off (on a host's
    /// pool they may be on, and dropping a referenced table would fire its `ON DELETE`
    /// actions), under `BEGIN IMMEDIATE`, with the revision read again inside: of two processes
    /// adopting one file, the second finds 0003 and does nothing.
    async fn adopt_alembic(&self) -> Result<(), MigrateError> {
        let mut conn = self.pool.acquire().await?;
        let foreign_keys: i64 = sqlx::query_scalar("PRAGMA foreign_keys").fetch_one(&mut *conn).await?;
        sqlx::raw_sql("PRAGMA foreign_keys = OFF").execute(&mut *conn).await?;
        sqlx::raw_sql("BEGIN IMMEDIATE").execute(&mut *conn).await?;
        let adopted = adopt_in(&mut conn).await;
        let end = if adopted.is_ok() { "COMMIT" } else { "ROLLBACK" };
        let ended = sqlx::raw_sql(end).execute(&mut *conn).await;
        if foreign_keys != 0 {
            sqlx::raw_sql("PRAGMA foreign_keys = ON").execute(&mut *conn).await?;
        }
        let rev = adopted?;
        ended?;
        if let Some(rev) = rev {
            tracing::info!(target: "regstack.migrate", "adopted a regstack 0.9.3 database at Alembic revision {rev}: now at 0003");
        }
        Ok(())
    }

    /// Applies the bundled migrations up to `target` (all of them when `None`).
    pub async fn migrate_to(&self, target: Option<i64>) -> Result<Vec<i64>, MigrateError> {
        if self.alembic_revision().await?.is_some_and(|r| r != "0003") {
            self.adopt_alembic().await?;
        }
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS regstack_migrations (version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
        )
        .execute(&self.pool)
        .await?;
        let mut applied = Vec::new();
        for (version, name, sql) in MIGRATIONS.iter().filter(|m| target.is_none_or(|t| m.0 <= t)) {
            // IMMEDIATE: the write lock first, so two processes migrating one file queue on
            // the busy timeout instead of one failing at once when both try to upgrade a read.
            let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
            let done: Option<i64> = sqlx::query_scalar("SELECT version FROM regstack_migrations WHERE version = ?")
                .bind(version)
                .fetch_optional(&mut *tx)
                .await?;
            if done.is_some() {
                continue;
            }
            for statement in sql_statements(sql) {
                // SQLite has no `ADD COLUMN IF NOT EXISTS`; a database that got the column by
                // another runner (wrangler's, for D1) must not fail on it.
                if let Some((table, column)) = added_column(&statement) {
                    let exists: Option<i64> =
                        sqlx::query_scalar(&format!("SELECT 1 FROM pragma_table_info('{table}') WHERE name = ?"))
                            .bind(&column)
                            .fetch_optional(&mut *tx)
                            .await?;
                    if exists.is_some() {
                        continue;
                    }
                }
                sqlx::raw_sql(&statement).execute(&mut *tx).await?;
            }
            sqlx::query("INSERT INTO regstack_migrations (version, name, applied_at) VALUES (?, ?, datetime('now'))")
                .bind(version)
                .bind(name)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            applied.push(*version);
        }
        // Keying needs the column of migration 4; a partial migration leaves it for later.
        if target.is_none() {
            self.key_emails().await?;
        }
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

/// The adoption itself, inside the caller's `BEGIN IMMEDIATE`: the revision as it is now,
/// the steps from it to 0003, and the new revision. `None` when there was nothing to do.
async fn adopt_in(conn: &mut sqlx::SqliteConnection) -> Result<Option<String>, MigrateError> {
    let rev: Option<String> = sqlx::query_scalar("SELECT version_num FROM alembic_version LIMIT 1")
        .fetch_optional(&mut *conn)
        .await?;
    let Some(rev) = rev.filter(|r| r != "0003") else {
        return Ok(None);
    };
    let statements: Vec<String> = match rev.as_str() {
        "0001" => {
            // Only 0.9.3's own columns are copied: a users table with more was changed by
            // something else, and rebuilding it would drop what that added.
            let columns: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pragma_table_info('users')")
                .fetch_one(&mut *conn)
                .await?;
            if columns != 13 {
                return Err(MigrateError::Adoption(format!(
                    "Alembic says 0001, but users has {columns} columns rather than 0.9.3's 13; it is left as it is"
                )));
            }
            ALEMBIC_0001_TO_0002
                .iter()
                .map(|s| s.to_string())
                .chain(
                    sql_statements(MIGRATIONS[0].2)
                        .into_iter()
                        .filter(|s| s.contains("oauth_")),
                )
                .collect()
        }
        "0002" => {
            let has: Option<i64> =
                sqlx::query_scalar("SELECT 1 FROM pragma_table_info('oauth_states') WHERE name = 'result_was_new'")
                    .fetch_optional(&mut *conn)
                    .await?;
            if has.is_some() {
                Vec::new()
            } else {
                vec![ALEMBIC_0002_TO_0003.to_string()]
            }
        }
        _ => return Err(MigrateError::UnknownRevision(rev)),
    };
    for statement in &statements {
        sqlx::raw_sql(statement).execute(&mut *conn).await?;
    }
    sqlx::query("UPDATE alembic_version SET version_num = '0003'")
        .execute(&mut *conn)
        .await?;
    Ok(Some(rev))
}

/// How [`SqliteStore::connect`] opens a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// To serve and migrate, creating the file when it is missing.
    Create,
    /// To serve a file that must exist (`serve --no-migrate`).
    Existing,
    /// To look only (`doctor`): read-only, the journal mode left as it is, no key readers.
    Inspect,
}

/// The statements of a migration file. Comment lines go first: they may hold a `;`.
fn sql_statements(sql: &str) -> Vec<String> {
    let code: String = sql
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    code.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// regstack 0.9.3's Alembic 0002 for `users` on SQLite: the table rebuilt with
/// `hashed_password` nullable, under the same name and constraints (the DDL is what 0.9.3's
/// batch mode leaves; native/tests/fixtures holds its dump).
const ALEMBIC_0001_TO_0002: [&str; 4] = [
    "CREATE TABLE _alembic_tmp_users (\n\tid VARCHAR(36) NOT NULL, \n\temail VARCHAR(320) NOT NULL, \n\thashed_password TEXT, \n\tis_active BOOLEAN NOT NULL, \n\tis_verified BOOLEAN NOT NULL, \n\tis_superuser BOOLEAN NOT NULL, \n\tfull_name VARCHAR(200), \n\tphone_number VARCHAR(20), \n\tis_mfa_enabled BOOLEAN NOT NULL, \n\tcreated_at DATETIME NOT NULL, \n\tupdated_at DATETIME NOT NULL, \n\tlast_login DATETIME, \n\ttokens_invalidated_after DATETIME, \n\tCONSTRAINT pk_users PRIMARY KEY (id), \n\tCONSTRAINT email_unique UNIQUE (email)\n)",
    "INSERT INTO _alembic_tmp_users (id, email, hashed_password, is_active, is_verified, is_superuser, full_name, phone_number, is_mfa_enabled, created_at, updated_at, last_login, tokens_invalidated_after) SELECT id, email, hashed_password, is_active, is_verified, is_superuser, full_name, phone_number, is_mfa_enabled, created_at, updated_at, last_login, tokens_invalidated_after FROM users",
    "DROP TABLE users",
    "ALTER TABLE _alembic_tmp_users RENAME TO users",
];

/// regstack 0.9.3's Alembic 0003 on SQLite.
const ALEMBIC_0002_TO_0003: &str = "ALTER TABLE oauth_states ADD COLUMN result_was_new BOOLEAN DEFAULT 0 NOT NULL";

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

/// The inline key readers for a database file, one per core (a read runs on the request's
/// own thread). Without them every read still works, through the pool.
fn key_reader(path: &Path) -> Option<Arc<InlineReader>> {
    let count = std::thread::available_parallelism().map_or(2, |n| n.get());
    InlineReader::open(path, count)
        .map(Arc::new)
        .map_err(|e| tracing::warn!("key reads go through the pool: cannot open {}: {e}", path.display()))
        .ok()
}

/// A migration failure.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// A statement failed.
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
    /// The database carries an Alembic revision no regstack 0.9.3 release made.
    #[error("unknown Alembic revision {0}")]
    UnknownRevision(String),
    /// A regstack 0.9.3 database that is not as its revision says.
    #[error("{0}")]
    Adoption(String),
}

impl MigrateError {
    pub(crate) fn opening(self, path: &str) -> OpenError {
        match self {
            MigrateError::Sql(source) => OpenError::Connect {
                path: path.to_string(),
                source,
            },
            MigrateError::UnknownRevision(r) => OpenError::UnknownRevision(r),
            MigrateError::Adoption(why) => OpenError::Adoption(why),
        }
    }
}

/// A sqlx row as the shared readers take it: column name → JSON value, by SQLite's own type of
/// each cell.
fn to_map(row: &SqliteRow) -> Result<Map<String, Json>, StoreError> {
    let mut map = Map::new();
    for (i, column) in row.columns().iter().enumerate() {
        let raw = row.try_get_raw(i).map_err(map_err)?;
        let value = if raw.is_null() {
            Json::Null
        } else {
            match raw.type_info().name() {
                "INTEGER" | "BOOLEAN" => Json::from(row.try_get::<i64, _>(i).map_err(map_err)?),
                "REAL" => Json::from(row.try_get::<f64, _>(i).map_err(map_err)?),
                _ => Json::from(row.try_get::<String, _>(i).map_err(map_err)?),
            }
        };
        map.insert(column.name().to_string(), value);
    }
    Ok(map)
}

/// sqlx runs the shared statements; the store decisions are the core's `SqlStore`.
#[async_trait]
impl Executor for SqliteStore {
    async fn rows(&self, st: Statement) -> Result<Vec<Map<String, Json>>, StoreError> {
        let rows = query(&st).fetch_all(&self.pool).await.map_err(map_err)?;
        rows.iter().map(to_map).collect()
    }

    async fn rows_by_key(&self, st: Statement) -> Result<Vec<Map<String, Json>>, StoreError> {
        match self.reader.as_ref().and_then(|r| r.rows(&st)) {
            Some(rows) => Ok(rows),
            None => self.rows(st).await,
        }
    }

    async fn run(&self, st: Statement) -> Result<u64, StoreError> {
        Ok(query(&st).execute(&self.pool).await.map_err(map_err)?.rows_affected())
    }

    async fn batch(&self, statements: Vec<Statement>) -> Result<Vec<u64>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let mut changed = Vec::with_capacity(statements.len());
        for st in &statements {
            changed.push(query(st).execute(&mut *tx).await.map_err(map_err)?.rows_affected());
        }
        tx.commit().await.map_err(map_err)?;
        Ok(changed)
    }

    /// SQLite has interactive transactions: a write first takes its write lock, so concurrent
    /// checks of one code run one after another and every guess is counted without retries
    /// (the shared write's condition then always holds).
    async fn check_code(
        &self,
        user_id: &str,
        kind: CodeKind,
        code_hash: &str,
        now: Timestamp,
    ) -> Result<CodeCheck, StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
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
        let (id, stored) = code_from(&to_map(&row)?, user_id, kind)?;
        let outcome = stored.judge(code_hash, now);
        query(&sqlite::record_check(outcome, id, &stored))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(outcome)
    }
}
