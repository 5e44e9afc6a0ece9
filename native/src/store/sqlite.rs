//! SQLite storage on sqlx, over the schema of `migrations/sqlite` (shared with the edge's D1).
//!
//! Every check-then-write step is a single write statement (or a transaction that starts with
//! a write), because SQLite takes the write lock at the start of such a statement: that is what
//! makes token consumption and lockout reservations exact under concurrency.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use regstack_core::flows::phone::judge;
use regstack_core::ports::{
    AttemptStore, MfaCodeStore, PendingStore, Reservation, RevocationStore, StoreError, UserStore,
};
use regstack_core::records::{CodeCheck, CodeKind, MfaCode, PendingRegistration, User, UserPatch};
use regstack_core::time::{from_sql_text, to_sql_text, Timestamp};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

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

fn ts(row: &SqliteRow, col: &str) -> Result<Timestamp, StoreError> {
    let text: String = row.try_get(col).map_err(map_err)?;
    from_sql_text(&text).ok_or_else(|| StoreError::Backend(format!("unreadable datetime in {col}: {text:?}")))
}

fn opt_ts(row: &SqliteRow, col: &str) -> Result<Option<Timestamp>, StoreError> {
    let text: Option<String> = row.try_get(col).map_err(map_err)?;
    text.map(|t| from_sql_text(&t).ok_or_else(|| StoreError::Backend(format!("unreadable datetime in {col}: {t:?}"))))
        .transpose()
}

fn user_from(row: &SqliteRow) -> Result<User, StoreError> {
    Ok(User {
        id: row.try_get("id").map_err(map_err)?,
        email: row.try_get("email").map_err(map_err)?,
        hashed_password: row.try_get("hashed_password").map_err(map_err)?,
        is_active: row.try_get("is_active").map_err(map_err)?,
        is_verified: row.try_get("is_verified").map_err(map_err)?,
        is_superuser: row.try_get("is_superuser").map_err(map_err)?,
        full_name: row.try_get("full_name").map_err(map_err)?,
        phone_number: row.try_get("phone_number").map_err(map_err)?,
        is_mfa_enabled: row.try_get("is_mfa_enabled").map_err(map_err)?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
        last_login: opt_ts(row, "last_login")?,
        tokens_invalidated_after: opt_ts(row, "tokens_invalidated_after")?,
    })
}

fn pending_from(row: &SqliteRow) -> Result<PendingRegistration, StoreError> {
    Ok(PendingRegistration {
        id: row.try_get("id").map_err(map_err)?,
        email: row.try_get("email").map_err(map_err)?,
        hashed_password: row.try_get("hashed_password").map_err(map_err)?,
        full_name: row.try_get("full_name").map_err(map_err)?,
        token_hash: row.try_get("token_hash").map_err(map_err)?,
        created_at: ts(row, "created_at")?,
        expires_at: ts(row, "expires_at")?,
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
            sqlx::raw_sql(sql).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO regstack_migrations (version, name, applied_at) VALUES (?, ?, datetime('now'))")
                .bind(version)
                .bind(name)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            applied.push(*version);
        }
        Ok(applied)
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

const USER_COLUMNS: &str = "id, email, hashed_password, is_active, is_verified, is_superuser, full_name, phone_number, is_mfa_enabled, created_at, updated_at, last_login, tokens_invalidated_after";

#[async_trait]
impl UserStore for SqliteStore {
    async fn create(&self, u: &User) -> Result<User, StoreError> {
        // The NOT EXISTS makes uniqueness case-insensitive even against adopted mixed-case rows.
        let done = sqlx::query(&format!(
            "INSERT INTO users ({USER_COLUMNS}) SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? \
             WHERE NOT EXISTS (SELECT 1 FROM users WHERE lower(email) = lower(?))"
        ))
        .bind(&u.id)
        .bind(&u.email)
        .bind(&u.hashed_password)
        .bind(u.is_active)
        .bind(u.is_verified)
        .bind(u.is_superuser)
        .bind(&u.full_name)
        .bind(&u.phone_number)
        .bind(u.is_mfa_enabled)
        .bind(to_sql_text(u.created_at))
        .bind(to_sql_text(u.updated_at))
        .bind(u.last_login.map(to_sql_text))
        .bind(u.tokens_invalidated_after.map(to_sql_text))
        .bind(&u.email)
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
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.as_ref().map(user_from).transpose()
    }

    async fn find_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        // Exact match first (uses the unique index), then case-insensitive for adopted rows.
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE email = ?1 \
             UNION ALL SELECT {USER_COLUMNS} FROM users WHERE lower(email) = lower(?1) AND email <> ?1 LIMIT 1"
        ))
        .bind(email)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.as_ref().map(user_from).transpose()
    }

    async fn update(&self, id: &str, patch: &UserPatch, now: Timestamp) -> Result<User, StoreError> {
        let mut sets: Vec<&str> = vec!["updated_at = ?"];
        let mut qb_values: Vec<Bound> = vec![Bound::Text(Some(to_sql_text(now)))];
        if let Some(v) = &patch.email {
            sets.push("email = ?");
            qb_values.push(Bound::Text(Some(v.clone())));
        }
        if let Some(v) = &patch.hashed_password {
            sets.push("hashed_password = ?");
            qb_values.push(Bound::Text(v.clone()));
        }
        for (col, v) in [
            ("is_active = ?", patch.is_active),
            ("is_verified = ?", patch.is_verified),
            ("is_superuser = ?", patch.is_superuser),
            ("is_mfa_enabled = ?", patch.is_mfa_enabled),
        ] {
            if let Some(v) = v {
                sets.push(col);
                qb_values.push(Bound::Bool(v));
            }
        }
        if let Some(v) = &patch.full_name {
            sets.push("full_name = ?");
            qb_values.push(Bound::Text(v.clone()));
        }
        if let Some(v) = &patch.phone_number {
            sets.push("phone_number = ?");
            qb_values.push(Bound::Text(v.clone()));
        }
        if let Some(v) = patch.last_login {
            sets.push("last_login = ?");
            qb_values.push(Bound::Text(Some(to_sql_text(v))));
        }
        if let Some(v) = patch.tokens_invalidated_after {
            sets.push("tokens_invalidated_after = ?");
            qb_values.push(Bound::Text(Some(to_sql_text(v))));
        }
        let mut sql = format!("UPDATE users SET {} WHERE id = ?", sets.join(", "));
        if let Some(email) = &patch.email {
            // Refuse an address another user holds in any case, in the same statement.
            sql.push_str(" AND NOT EXISTS (SELECT 1 FROM users WHERE lower(email) = lower(?) AND id <> ?)");
            qb_values.push(Bound::Text(Some(id.to_string())));
            qb_values.push(Bound::Text(Some(email.clone())));
            qb_values.push(Bound::Text(Some(id.to_string())));
        } else {
            qb_values.push(Bound::Text(Some(id.to_string())));
        }
        sql.push_str(&format!(" RETURNING {USER_COLUMNS}"));
        let mut q = sqlx::query(&sql);
        for v in qb_values {
            q = match v {
                Bound::Text(t) => q.bind(t),
                Bound::Bool(b) => q.bind(b),
            };
        }
        match q.fetch_optional(&self.pool).await.map_err(map_err)? {
            Some(row) => user_from(&row),
            None if patch.email.is_some() && self.get(id).await?.is_some() => Err(StoreError::Conflict("email".into())),
            None => Err(StoreError::NotFound),
        }
    }

    async fn delete(&self, user: &User) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let deleted = sqlx::query("DELETE FROM users WHERE id = ?")
            .bind(&user.id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?
            .rows_affected()
            > 0;
        for (sql, key) in [
            ("DELETE FROM oauth_identities WHERE user_id = ?", user.id.as_str()),
            ("DELETE FROM mfa_codes WHERE user_id = ?", user.id.as_str()),
            (
                "DELETE FROM pending_registrations WHERE lower(email) = lower(?)",
                user.email.as_str(),
            ),
            (
                "DELETE FROM login_attempts WHERE lower(email) = lower(?)",
                user.email.as_str(),
            ),
        ] {
            sqlx::query(sql).bind(key).execute(&mut *tx).await.map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(deleted)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(map_err)?;
        Ok(())
    }
}

enum Bound {
    Text(Option<String>),
    Bool(bool),
}

const PENDING_COLUMNS: &str = "id, email, hashed_password, full_name, token_hash, created_at, expires_at";

#[async_trait]
impl PendingStore for SqliteStore {
    async fn put(&self, p: &PendingRegistration) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        sqlx::query("DELETE FROM pending_registrations WHERE lower(email) = lower(?)")
            .bind(&p.email)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        sqlx::query(&format!(
            "INSERT INTO pending_registrations ({PENDING_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(&p.id)
        .bind(&p.email)
        .bind(&p.hashed_password)
        .bind(&p.full_name)
        .bind(&p.token_hash)
        .bind(to_sql_text(p.created_at))
        .bind(to_sql_text(p.expires_at))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }

    async fn take_by_token_hash(&self, token_hash: &str) -> Result<Option<PendingRegistration>, StoreError> {
        let row = sqlx::query(&format!(
            "DELETE FROM pending_registrations WHERE token_hash = ? RETURNING {PENDING_COLUMNS}"
        ))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.as_ref().map(pending_from).transpose()
    }

    async fn find_by_email(&self, email: &str) -> Result<Option<PendingRegistration>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {PENDING_COLUMNS} FROM pending_registrations WHERE lower(email) = lower(?) LIMIT 1"
        ))
        .bind(email)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.as_ref().map(pending_from).transpose()
    }

    async fn take_by_email(&self, email: &str) -> Result<Option<PendingRegistration>, StoreError> {
        let row = sqlx::query(&format!(
            "DELETE FROM pending_registrations WHERE lower(email) = lower(?) RETURNING {PENDING_COLUMNS}"
        ))
        .bind(email)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.as_ref().map(pending_from).transpose()
    }
}

#[async_trait]
impl RevocationStore for SqliteStore {
    async fn revoke(&self, jti: &str, exp: Timestamp) -> Result<bool, StoreError> {
        let done = sqlx::query("INSERT INTO token_blacklist (jti, exp) VALUES (?, ?) ON CONFLICT (jti) DO NOTHING")
            .bind(jti)
            .bind(to_sql_text(exp))
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn is_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        let hit: Option<i64> = sqlx::query_scalar("SELECT 1 FROM token_blacklist WHERE jti = ?")
            .bind(jti)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(hit.is_some())
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
        let since = to_sql_text(since);
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO login_attempts (email, \"when\", ip) SELECT ?1, ?2, ?3 \
             WHERE (SELECT COUNT(*) FROM login_attempts WHERE email = ?1 AND \"when\" >= ?4) < ?5 RETURNING id",
        )
        .bind(email)
        .bind(to_sql_text(now))
        .bind(ip)
        .bind(&since)
        .bind(threshold as i64)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        let Some(id) = id else {
            return Ok(Reservation::Locked);
        };
        // Rows with a smaller id were there when this one went in; later ones do not count.
        let failures: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM login_attempts WHERE email = ? AND \"when\" >= ? AND id <= ?")
                .bind(email)
                .bind(&since)
                .bind(id)
                .fetch_one(&self.pool)
                .await
                .map_err(map_err)?;
        Ok(Reservation::Reserved {
            id,
            failures: failures.max(1) as u64,
        })
    }

    async fn release(&self, id: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM login_attempts WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn clear(&self, email: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM login_attempts WHERE lower(email) = lower(?)")
            .bind(email)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }
}

#[async_trait]
impl MfaCodeStore for SqliteStore {
    async fn put(&self, c: &MfaCode) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO mfa_codes (user_id, kind, code_hash, expires_at, attempts, max_attempts, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (user_id, kind) DO UPDATE SET code_hash = excluded.code_hash, \
             expires_at = excluded.expires_at, attempts = excluded.attempts, max_attempts = excluded.max_attempts, \
             created_at = excluded.created_at",
        )
        .bind(&c.user_id)
        .bind(c.kind.as_str())
        .bind(&c.code_hash)
        .bind(to_sql_text(c.expires_at))
        .bind(c.attempts)
        .bind(c.max_attempts)
        .bind(to_sql_text(c.created_at))
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
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
        // after another and every guess is counted.
        sqlx::query("UPDATE mfa_codes SET attempts = attempts WHERE user_id = ? AND kind = ?")
            .bind(user_id)
            .bind(kind.as_str())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let row = sqlx::query(
            "SELECT id, code_hash, expires_at, attempts, max_attempts, created_at FROM mfa_codes WHERE user_id = ? AND kind = ?",
        )
        .bind(user_id)
        .bind(kind.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        let Some(row) = row else {
            return Ok(CodeCheck::Missing);
        };
        let id: i64 = row.try_get("id").map_err(map_err)?;
        let stored = MfaCode {
            user_id: user_id.to_string(),
            kind,
            code_hash: row.try_get("code_hash").map_err(map_err)?,
            expires_at: ts(&row, "expires_at")?,
            attempts: row.try_get("attempts").map_err(map_err)?,
            max_attempts: row.try_get("max_attempts").map_err(map_err)?,
            created_at: ts(&row, "created_at")?,
        };
        let outcome = judge(&stored, code_hash, now);
        let sql = match outcome {
            CodeCheck::Wrong { .. } => "UPDATE mfa_codes SET attempts = attempts + 1 WHERE id = ?",
            _ => "DELETE FROM mfa_codes WHERE id = ?",
        };
        sqlx::query(sql).bind(id).execute(&mut *tx).await.map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(outcome)
    }

    async fn delete_for_user(&self, user_id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM mfa_codes WHERE user_id = ?")
            .bind(user_id)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }
}
