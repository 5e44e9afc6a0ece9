//! PostgreSQL storage on sqlx, over `migrations/postgres` (the schema of regstack 0.9.3 plus the
//! shared rate-limit counters of docs/wire.md, "Decision 8").
//!
//! Read-committed isolation lets two transactions read the same rows, so every
//! check-then-write step here either is one statement (`DELETE … RETURNING`,
//! `INSERT … ON CONFLICT`) or holds a row lock (`FOR UPDATE`) or an advisory lock for its key.

use std::time::Duration;

use async_trait::async_trait;
use regstack_core::ports::{
    AttemptStore, Counter, FamilyMember, MfaCodeStore, NextRefresh, OAuthStore, PendingStore, Purged,
    PushSubscriptionStore, RefreshTokenStore, Reservation, RevocationStore, Rotation, SessionLookup, SessionRecord,
    StoreError, Sweeper, Unlinked, UserCounts, UserStore,
};
use regstack_core::records::{
    CodeCheck, CodeKind, MfaCode, OAuthIdentity, OAuthMode, OAuthState, PendingRegistration, PushSubscription,
    RefreshToken, User, UserPatch,
};
use regstack_core::time::{truncate_micros, Timestamp};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{PgPool, Row};

use super::SchemaState;

/// The bundled forward-only migrations, in order.
pub const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "initial",
        include_str!("../../../migrations/postgres/0001_initial.sql"),
    ),
    (
        2,
        "rate_limits",
        include_str!("../../../migrations/postgres/0002_rate_limits.sql"),
    ),
    (
        3,
        "email_lower_index",
        include_str!("../../../migrations/postgres/0003_email_lower_index.sql"),
    ),
    (
        4,
        "attempts_indexes",
        include_str!("../../../migrations/postgres/0004_attempts_indexes.sql"),
    ),
    (
        5,
        "email_key",
        include_str!("../../../migrations/postgres/0005_email_key.sql"),
    ),
    (
        6,
        "roles_and_user_listing",
        include_str!("../../../migrations/postgres/0006_roles_and_user_listing.sql"),
    ),
    (
        7,
        "refresh_tokens",
        include_str!("../../../migrations/postgres/0007_refresh_tokens.sql"),
    ),
    (
        8,
        "push_subscriptions",
        include_str!("../../../migrations/postgres/0008_push_subscriptions.sql"),
    ),
];

/// Serialises migrations across instances starting at once.
const MIGRATION_LOCK: i64 = 0x7265_6773_7461_636b; // "regstack"

/// Every store on one Postgres pool.
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
    sessions: std::sync::Arc<super::pg_sessions::SessionChecks>,
}

/// Maps sqlx errors to the port's, by error kind and SQLSTATE class, never by message text.
pub(crate) fn map_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.kind() == sqlx::error::ErrorKind::UniqueViolation => {
            StoreError::Conflict(db.constraint().unwrap_or("unique").to_string())
        }
        // 08: connection exception; 57P: operator intervention (shutdown, crash recovery);
        // 53: insufficient resources.
        sqlx::Error::Database(db)
            if db
                .code()
                .is_some_and(|c| c.starts_with("08") || c.starts_with("57P") || c.starts_with("53")) =>
        {
            StoreError::Unavailable(db.to_string())
        }
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Tls(_) => {
            StoreError::Unavailable(e.to_string())
        }
        sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e.to_string()),
        _ => StoreError::Backend(e.to_string()),
    }
}

/// Why the database cannot be opened or migrated.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The URL does not parse.
    #[error("invalid PostgreSQL URL: {0}")]
    Url(sqlx::Error),
    /// The server cannot be reached or refused us.
    #[error("cannot connect to PostgreSQL at {host}: {source}")]
    Connect {
        /// Host and port, without credentials.
        host: String,
        /// What sqlx said.
        source: sqlx::Error,
    },
    /// A migration failed.
    #[error("migrating PostgreSQL failed: {0}")]
    Migrate(sqlx::Error),
    /// An Alembic revision no regstack 0.9.3 release made.
    #[error("the database carries Alembic revision {0}, which no regstack 0.9.3 release made; this regstack adopts 0001, 0002 and 0003")]
    UnknownRevision(String),
}

impl PgStore {
    /// Connects with at most `max_connections`, waiting at most `acquire_timeout` for a
    /// connection (so a database that goes away gives 503 quickly, never a hang), and migrates.
    pub async fn open(url: &str, max_connections: u32, acquire_timeout: Duration) -> Result<Self, OpenError> {
        let store = Self::connect(url, max_connections, acquire_timeout).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Connects without migrating (`regstack migrate`, `doctor`, `serve --no-migrate`).
    pub async fn connect(url: &str, max_connections: u32, acquire_timeout: Duration) -> Result<Self, OpenError> {
        let options: PgConnectOptions = url.parse().map_err(OpenError::Url)?;
        let host = format!("{}:{}", options.get_host(), options.get_port());
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(acquire_timeout)
            .idle_timeout(Some(Duration::from_secs(300)))
            .test_before_acquire(true)
            .connect_with(options)
            .await
            .map_err(|source| OpenError::Connect { host, source })?;
        Ok(Self::on(pool, true))
    }

    /// How many session checks have been answered together, in how many statements
    /// (docs/performance.md, "The session check").
    pub fn session_check_counts(&self) -> super::pg_sessions::SessionCheckCounts {
        self.sessions.counts()
    }

    /// Stores on `pool`; `owned` when regstack made the pool, so its session checks may hold
    /// connections of it (docs/performance.md).
    fn on(pool: PgPool, owned: bool) -> Self {
        Self {
            sessions: std::sync::Arc::new(super::pg_sessions::SessionChecks::new(pool.clone(), owned)),
            pool,
        }
    }

    /// Stores on a pool the host already owns (its own options and size), migrated first.
    /// Every read goes through that pool; the gathered session checks are for pools regstack
    /// opens itself, since a host's pool may be shared.
    pub async fn from_pool(pool: PgPool) -> Result<Self, OpenError> {
        let store = Self::on(pool, false);
        store.migrate().await?;
        Ok(store)
    }

    /// The pool, for host code that wants to share it.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies the bundled migrations not yet applied, under an advisory lock. A regstack
    /// 0.9.3 database is adopted in place: at Alembic head (0003) as it is, and at 0001 or
    /// 0002 after the steps 0.9.3's own migrations would take.
    pub async fn migrate(&self) -> Result<Vec<i64>, OpenError> {
        self.migrate_to(None).await
    }

    /// Where the schema stands, without changing anything.
    pub async fn schema_state(&self) -> Result<SchemaState, OpenError> {
        let has = |table: &'static str| {
            sqlx::query_scalar::<_, bool>("SELECT to_regclass($1) IS NOT NULL")
                .bind(table)
                .fetch_one(&self.pool)
        };
        let alembic: Option<String> = if has("alembic_version").await.map_err(OpenError::Migrate)? {
            sqlx::query_scalar("SELECT version_num FROM alembic_version LIMIT 1")
                .fetch_optional(&self.pool)
                .await
                .map_err(OpenError::Migrate)?
        } else {
            None
        };
        let has_ours = has("regstack_migrations").await.map_err(OpenError::Migrate)?;
        let current: Option<i64> = if has_ours {
            sqlx::query_scalar("SELECT MAX(version) FROM regstack_migrations")
                .fetch_one(&self.pool)
                .await
                .map_err(OpenError::Migrate)?
        } else {
            None
        };
        Ok(SchemaState::of(alembic, current, MIGRATIONS))
    }

    /// Applies the bundled migrations up to `target` (all of them when `None`).
    pub async fn migrate_to(&self, target: Option<i64>) -> Result<Vec<i64>, OpenError> {
        let mut conn = self.pool.acquire().await.map_err(OpenError::Migrate)?;
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *conn)
            .await
            .map_err(OpenError::Migrate)?;
        let result = async {
            let has_alembic: bool = sqlx::query_scalar("SELECT to_regclass('alembic_version') IS NOT NULL")
                .fetch_one(&mut *conn)
                .await
                .map_err(OpenError::Migrate)?;
            if has_alembic {
                let rev: Option<String> = sqlx::query_scalar("SELECT version_num FROM alembic_version LIMIT 1")
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(OpenError::Migrate)?;
                match rev.as_deref() {
                    None | Some("0003") => {}
                    Some(rev) => adopt_alembic(&mut conn, rev).await?,
                }
            }
            sqlx::raw_sql(
                "CREATE TABLE IF NOT EXISTS regstack_migrations (version BIGINT NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
            )
            .execute(&mut *conn)
            .await
            .map_err(OpenError::Migrate)?;
            let mut applied = Vec::new();
            for (version, name, sql) in MIGRATIONS.iter().filter(|m| target.is_none_or(|t| m.0 <= t)) {
                let done: Option<i64> = sqlx::query_scalar("SELECT version FROM regstack_migrations WHERE version = $1")
                    .bind(version)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(OpenError::Migrate)?;
                if done.is_some() {
                    continue;
                }
                let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(OpenError::Migrate)?;
                sqlx::raw_sql(sql).execute(&mut *tx).await.map_err(OpenError::Migrate)?;
                sqlx::query("INSERT INTO regstack_migrations (version, name) VALUES ($1, $2)")
                    .bind(version)
                    .bind(name)
                    .execute(&mut *tx)
                    .await
                    .map_err(OpenError::Migrate)?;
                tx.commit().await.map_err(OpenError::Migrate)?;
                applied.push(*version);
            }
            // Rows SQL could not key: non-ASCII addresses (lower() follows the locale) and rows
            // another writer added without a key. Keying needs the column of migration 4, so
            // a partial migration leaves it for later.
            for table in ["users", "pending_registrations"].into_iter().filter(|_| target.is_none()) {
                let rows: Vec<(String, String)> = sqlx::query_as(&format!(
                    "SELECT id, email FROM {table} WHERE email_key IS NULL OR email ~ '[^ -~]' \
                     OR email_key <> lower(email COLLATE \"C\")"
                ))
                .fetch_all(&mut *conn)
                .await
                .map_err(OpenError::Migrate)?;
                for (id, email) in rows {
                    sqlx::query(&format!(
                        "UPDATE {table} SET email_key = $2 WHERE id = $1 AND email = $3 \
                         AND email_key IS DISTINCT FROM $2"
                    ))
                    .bind(&id)
                    .bind(key(&email))
                    .bind(&email)
                    .execute(&mut *conn)
                    .await
                    .map_err(OpenError::Migrate)?;
                }
            }
            Ok(applied)
        }
        .await;
        let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *conn)
            .await;
        result
    }
}

fn user_from(row: &PgRow) -> Result<User, StoreError> {
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
        created_at: row.try_get("created_at").map_err(map_err)?,
        updated_at: row.try_get("updated_at").map_err(map_err)?,
        last_login: row.try_get("last_login").map_err(map_err)?,
        tokens_invalidated_after: row.try_get("tokens_invalidated_after").map_err(map_err)?,
        role: row.try_get("role").map_err(map_err)?,
    })
}

fn pending_from(row: &PgRow) -> Result<PendingRegistration, StoreError> {
    Ok(PendingRegistration {
        id: row.try_get("id").map_err(map_err)?,
        email: row.try_get("email").map_err(map_err)?,
        hashed_password: row.try_get("hashed_password").map_err(map_err)?,
        full_name: row.try_get("full_name").map_err(map_err)?,
        token_hash: row.try_get("token_hash").map_err(map_err)?,
        created_at: row.try_get("created_at").map_err(map_err)?,
        expires_at: row.try_get("expires_at").map_err(map_err)?,
    })
}

pub(crate) const USER_COLUMNS: &str = "id, email, hashed_password, is_active, is_verified, is_superuser, full_name, phone_number, is_mfa_enabled, created_at, updated_at, last_login, tokens_invalidated_after, role";
const PENDING_COLUMNS: &str = "id, email, hashed_password, full_name, token_hash, created_at, expires_at";

fn t(v: Timestamp) -> Timestamp {
    truncate_micros(v)
}

use regstack_core::email::key;

/// An address in any case against a row's `email_key`, or `lower(email)` for a row not keyed
/// yet: `$k` is the key's placeholder, `$e` the address's.
fn matches_email(k: &str, e: &str) -> String {
    format!("(email_key = {k} OR (email_key IS NULL AND lower(email) = lower({e})))")
}

/// Brings a regstack 0.9.3 database at Alembic revision 0001 or 0002 to 0003 in one
/// transaction, as 0.9.3's migrations would: 0002 made `users.hashed_password` nullable and
/// added the OAuth tables (the same idempotent DDL as migration 1), and 0003 added
/// `oauth_states.result_was_new`. The revision is recorded, so 0.9.3's own tools still
/// recognise the database.
async fn adopt_alembic(conn: &mut sqlx::PgConnection, rev: &str) -> Result<(), OpenError> {
    let steps: Vec<&str> = match rev {
        "0001" => vec![
            "ALTER TABLE users ALTER COLUMN hashed_password DROP NOT NULL",
            MIGRATIONS[0].2,
        ],
        "0002" => {
            vec!["ALTER TABLE oauth_states ADD COLUMN IF NOT EXISTS result_was_new BOOLEAN DEFAULT false NOT NULL"]
        }
        _ => return Err(OpenError::UnknownRevision(rev.to_string())),
    };
    let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(OpenError::Migrate)?;
    for step in steps {
        sqlx::raw_sql(step)
            .execute(&mut *tx)
            .await
            .map_err(OpenError::Migrate)?;
    }
    sqlx::query("UPDATE alembic_version SET version_num = '0003'")
        .execute(&mut *tx)
        .await
        .map_err(OpenError::Migrate)?;
    tx.commit().await.map_err(OpenError::Migrate)?;
    tracing::info!(target: "regstack.migrate", "adopted a regstack 0.9.3 database at Alembic revision {rev}: now at 0003");
    Ok(())
}

#[async_trait]
impl UserStore for PgStore {
    async fn create(&self, u: &User) -> Result<User, StoreError> {
        let done = sqlx::query(&format!(
            "INSERT INTO users ({USER_COLUMNS}, email_key) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15 \
             WHERE NOT EXISTS (SELECT 1 FROM users WHERE {})",
            matches_email("$15", "$2")
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
        .bind(t(u.created_at))
        .bind(t(u.updated_at))
        .bind(u.last_login.map(t))
        .bind(u.tokens_invalidated_after.map(t))
        .bind(&u.role)
        .bind(key(&u.email))
        .execute(&self.pool)
        .await
        .map_err(|e| match map_err(e) {
            StoreError::Conflict(c) if c != "pk_users" => StoreError::Conflict("email".into()),
            other => other,
        })?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict("email".into()));
        }
        Ok(u.clone())
    }

    async fn get(&self, id: &str) -> Result<Option<User>, StoreError> {
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.as_ref().map(user_from).transpose()
    }

    async fn find_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        let row = sqlx::query(&format!(
            "(SELECT {USER_COLUMNS} FROM users WHERE email = $1) \
             UNION ALL (SELECT {USER_COLUMNS} FROM users WHERE {} AND email <> $1) LIMIT 1",
            matches_email("$2", "$1")
        ))
        .bind(email)
        .bind(key(email))
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.as_ref().map(user_from).transpose()
    }

    async fn update(&self, id: &str, patch: &UserPatch, now: Timestamp) -> Result<User, StoreError> {
        let mut qb = sqlx::QueryBuilder::<sqlx::Postgres>::new("UPDATE users SET updated_at = ");
        qb.push_bind(t(now));
        if let Some(v) = &patch.email {
            qb.push(", email = ").push_bind(v.clone());
            qb.push(", email_key = ").push_bind(key(v));
        }
        if let Some(v) = &patch.hashed_password {
            qb.push(", hashed_password = ").push_bind(v.clone());
        }
        for (col, v) in [
            ("is_active", patch.is_active),
            ("is_verified", patch.is_verified),
            ("is_superuser", patch.is_superuser),
            ("is_mfa_enabled", patch.is_mfa_enabled),
        ] {
            if let Some(v) = v {
                qb.push(format!(", {col} = ")).push_bind(v);
            }
        }
        if let Some(v) = &patch.full_name {
            qb.push(", full_name = ").push_bind(v.clone());
        }
        if let Some(v) = &patch.phone_number {
            qb.push(", phone_number = ").push_bind(v.clone());
        }
        if let Some(v) = &patch.role {
            qb.push(", role = ").push_bind(v.clone());
        }
        if let Some(v) = patch.last_login {
            qb.push(", last_login = ").push_bind(t(v));
        }
        if let Some(v) = patch.tokens_invalidated_after {
            qb.push(", tokens_invalidated_after = ").push_bind(t(v));
        }
        qb.push(" WHERE id = ").push_bind(id.to_string());
        if let Some(email) = &patch.email {
            qb.push(" AND NOT EXISTS (SELECT 1 FROM users WHERE (email_key = ")
                .push_bind(key(email))
                .push(" OR (email_key IS NULL AND lower(email) = lower(")
                .push_bind(email.clone())
                .push("))) AND id <> ")
                .push_bind(id.to_string())
                .push(")");
        }
        qb.push(format!(" RETURNING {USER_COLUMNS}"));
        let row = qb
            .build()
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| match map_err(e) {
                StoreError::Conflict(_) => StoreError::Conflict("email".into()),
                other => other,
            })?;
        match row {
            Some(row) => user_from(&row),
            None if patch.email.is_some() && self.get(id).await?.is_some() => Err(StoreError::Conflict("email".into())),
            None => Err(StoreError::NotFound),
        }
    }

    async fn delete(&self, user: &User) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let deleted = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(&user.id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?
            .rows_affected()
            > 0;
        for sql in [
            "DELETE FROM oauth_identities WHERE user_id = $1",
            "DELETE FROM mfa_codes WHERE user_id = $1",
            "DELETE FROM refresh_tokens WHERE user_id = $1",
            "DELETE FROM push_subscriptions WHERE user_id = $1",
        ] {
            sqlx::query(sql)
                .bind(&user.id)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        let pending = format!("DELETE FROM pending_registrations WHERE {}", matches_email("$2", "$1"));
        for sql in [
            pending.as_str(),
            // The core keys failures by the lower-cased address; 0.9.3 wrote them as submitted.
            "DELETE FROM login_attempts WHERE lower(email) = lower($1) OR email = $2",
        ] {
            sqlx::query(sql)
                .bind(&user.email)
                .bind(key(&user.email))
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(deleted)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(map_err)?;
        Ok(())
    }

    async fn list(&self, skip: u64, limit: u64) -> Result<Vec<User>, StoreError> {
        let int = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2"
        ))
        .bind(int(limit))
        .bind(int(skip))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(user_from).collect()
    }

    async fn total(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(n.max(0) as u64)
    }

    async fn counts(&self) -> Result<UserCounts, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS total, COUNT(*) FILTER (WHERE is_active) AS active, \
             COUNT(*) FILTER (WHERE is_verified) AS verified, COUNT(*) FILTER (WHERE is_superuser) AS superusers, \
             COUNT(*) FILTER (WHERE is_superuser AND is_active) AS active_superusers FROM users",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)?;
        let n = |c: &str| row.try_get::<i64, _>(c).map(|v| v.max(0) as u64).map_err(map_err);
        Ok(UserCounts {
            total: n("total")?,
            active: n("active")?,
            verified: n("verified")?,
            superusers: n("superusers")?,
            active_superusers: n("active_superusers")?,
        })
    }
}

#[async_trait]
impl PendingStore for PgStore {
    async fn put(&self, p: &PendingRegistration) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        // Rows of adopted databases may differ in case only; the upsert handles the rest.
        sqlx::query(&format!(
            "DELETE FROM pending_registrations WHERE {} AND email <> $1",
            matches_email("$2", "$1")
        ))
        .bind(&p.email)
        .bind(key(&p.email))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        sqlx::query(&format!(
            "INSERT INTO pending_registrations ({PENDING_COLUMNS}, email_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (email) DO UPDATE SET id = excluded.id, hashed_password = excluded.hashed_password, \
             full_name = excluded.full_name, token_hash = excluded.token_hash, created_at = excluded.created_at, \
             expires_at = excluded.expires_at, email_key = excluded.email_key"
        ))
        .bind(&p.id)
        .bind(&p.email)
        .bind(&p.hashed_password)
        .bind(&p.full_name)
        .bind(&p.token_hash)
        .bind(t(p.created_at))
        .bind(t(p.expires_at))
        .bind(key(&p.email))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }

    async fn take_by_token_hash(&self, token_hash: &str) -> Result<Option<PendingRegistration>, StoreError> {
        let row = sqlx::query(&format!(
            "DELETE FROM pending_registrations WHERE token_hash = $1 RETURNING {PENDING_COLUMNS}"
        ))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.as_ref().map(pending_from).transpose()
    }

    async fn find_by_email(&self, email: &str) -> Result<Option<PendingRegistration>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {PENDING_COLUMNS} FROM pending_registrations WHERE {} LIMIT 1",
            matches_email("$2", "$1")
        ))
        .bind(email)
        .bind(key(email))
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.as_ref().map(pending_from).transpose()
    }

    async fn take_by_email(&self, email: &str) -> Result<Option<PendingRegistration>, StoreError> {
        let row = sqlx::query(&format!(
            "DELETE FROM pending_registrations WHERE {} RETURNING {PENDING_COLUMNS}",
            matches_email("$2", "$1")
        ))
        .bind(email)
        .bind(key(email))
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.as_ref().map(pending_from).transpose()
    }

    async fn count_live(&self, now: Timestamp) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pending_registrations WHERE expires_at > $1")
            .bind(t(now))
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(n.max(0) as u64)
    }
}

#[async_trait]
impl RevocationStore for PgStore {
    async fn revoke(&self, jti: &str, exp: Timestamp) -> Result<bool, StoreError> {
        let done = sqlx::query("INSERT INTO token_blacklist (jti, exp) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING")
            .bind(jti)
            .bind(t(exp))
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn is_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        let hit: Option<i32> = sqlx::query_scalar("SELECT 1 FROM token_blacklist WHERE jti = $1")
            .bind(jti)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(hit.is_some())
    }
}

/// One round trip: the user's row (all NULL when there is none) beside the revocation flag.
#[async_trait]
impl SessionLookup for PgStore {
    async fn lookup(&self, user_id: &str, jti: &str) -> Result<SessionRecord, StoreError> {
        if let Some(record) = self.sessions.check(user_id, jti).await {
            return Ok(record);
        }
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS}, EXISTS (SELECT 1 FROM token_blacklist WHERE jti = $2) AS revoked \
             FROM (SELECT 1 AS one) AS one LEFT JOIN users ON users.id = $1"
        ))
        .bind(user_id)
        .bind(jti)
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)?;
        session_from(&row)
    }
}

/// A session check's record from a row of [`USER_COLUMNS`] (all NULL for no such user) and
/// `revoked`.
pub(crate) fn session_from(row: &PgRow) -> Result<SessionRecord, StoreError> {
    let id: Option<String> = row.try_get("id").map_err(map_err)?;
    let revoked: bool = row.try_get("revoked").map_err(map_err)?;
    SessionRecord::read(id.map(|_| user_from(row)).transpose(), revoked)
}

#[async_trait]
impl AttemptStore for PgStore {
    async fn try_reserve(
        &self,
        email: &str,
        ip: Option<&str>,
        now: Timestamp,
        since: Timestamp,
        threshold: u64,
    ) -> Result<Reservation, StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        // One email's reservations run one at a time, across every instance.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('regstack-lockout:' || $1))")
            .bind(email)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM login_attempts WHERE email = $1 AND \"when\" >= $2")
            .bind(email)
            .bind(t(since))
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
        if count as u64 >= threshold {
            tx.commit().await.map_err(map_err)?;
            return Ok(Reservation::Locked);
        }
        let id: i32 =
            sqlx::query_scalar("INSERT INTO login_attempts (email, \"when\", ip) VALUES ($1, $2, $3) RETURNING id")
                .bind(email)
                .bind(t(now))
                .bind(ip)
                .fetch_one(&mut *tx)
                .await
                .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(Reservation::Reserved {
            id: id as i64,
            failures: count as u64 + 1,
        })
    }

    async fn release(&self, id: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM login_attempts WHERE id = $1")
            .bind(id as i32)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn clear(&self, email: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM login_attempts WHERE lower(email) = lower($1)")
            .bind(email)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }
}

#[async_trait]
impl MfaCodeStore for PgStore {
    async fn put(&self, c: &MfaCode) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO mfa_codes (user_id, kind, code_hash, expires_at, attempts, max_attempts, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (user_id, kind) DO UPDATE SET code_hash = excluded.code_hash, \
             expires_at = excluded.expires_at, attempts = excluded.attempts, max_attempts = excluded.max_attempts, \
             created_at = excluded.created_at",
        )
        .bind(&c.user_id)
        .bind(c.kind.as_str())
        .bind(&c.code_hash)
        .bind(t(c.expires_at))
        .bind(c.attempts as i32)
        .bind(c.max_attempts as i32)
        .bind(t(c.created_at))
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
        let row = sqlx::query(
            "SELECT id, code_hash, expires_at, attempts, max_attempts, created_at FROM mfa_codes \
             WHERE user_id = $1 AND kind = $2 FOR UPDATE",
        )
        .bind(user_id)
        .bind(kind.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        let Some(row) = row else {
            return Ok(CodeCheck::Missing);
        };
        let id: i32 = row.try_get("id").map_err(map_err)?;
        let stored = MfaCode {
            user_id: user_id.to_string(),
            kind,
            code_hash: row.try_get("code_hash").map_err(map_err)?,
            expires_at: row.try_get("expires_at").map_err(map_err)?,
            attempts: row.try_get::<i32, _>("attempts").map_err(map_err)? as i64,
            max_attempts: row.try_get::<i32, _>("max_attempts").map_err(map_err)? as i64,
            created_at: row.try_get("created_at").map_err(map_err)?,
        };
        let outcome = stored.judge(code_hash, now);
        let sql = match outcome {
            CodeCheck::Wrong { .. } => "UPDATE mfa_codes SET attempts = attempts + 1 WHERE id = $1",
            _ => "DELETE FROM mfa_codes WHERE id = $1",
        };
        sqlx::query(sql).bind(id).execute(&mut *tx).await.map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(outcome)
    }

    async fn delete_for_user(&self, user_id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM mfa_codes WHERE user_id = $1")
            .bind(user_id)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }
}

#[async_trait]
impl Counter for PgStore {
    async fn increment(&self, key: &str, now: Timestamp, expires_at: Timestamp) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar(
            "INSERT INTO regstack_rate_limits (key, count, expires_at) VALUES ($1, 1, $3) \
             ON CONFLICT (key) DO UPDATE SET \
               count = CASE WHEN regstack_rate_limits.expires_at <= $2 THEN 1 ELSE regstack_rate_limits.count + 1 END, \
               expires_at = CASE WHEN regstack_rate_limits.expires_at <= $2 THEN $3 ELSE regstack_rate_limits.expires_at END \
             RETURNING count",
        )
        .bind(key)
        .bind(t(now))
        .bind(t(expires_at))
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)?;
        if count == 1 {
            // A new window: sweep the keys of closed ones, so the table stays small.
            sqlx::query("DELETE FROM regstack_rate_limits WHERE expires_at <= $1")
                .bind(t(now))
                .execute(&self.pool)
                .await
                .map_err(map_err)?;
        }
        Ok(count as u64)
    }
}

const IDENTITY_COLUMNS: &str = "id, user_id, provider, subject_id, email, linked_at, last_used_at";
const STATE_COLUMNS: &str = "id, provider, code_verifier, nonce, redirect_to, mode, linking_user_id, created_at, \
     expires_at, result_token, result_was_new";

fn identity_from(row: &PgRow) -> Result<OAuthIdentity, StoreError> {
    Ok(OAuthIdentity {
        id: row.try_get("id").map_err(map_err)?,
        user_id: row.try_get("user_id").map_err(map_err)?,
        provider: row.try_get("provider").map_err(map_err)?,
        subject_id: row.try_get("subject_id").map_err(map_err)?,
        email: row.try_get("email").map_err(map_err)?,
        linked_at: row.try_get("linked_at").map_err(map_err)?,
        last_used_at: row.try_get("last_used_at").map_err(map_err)?,
    })
}

fn state_from(row: &PgRow) -> Result<OAuthState, StoreError> {
    let mode: String = row.try_get("mode").map_err(map_err)?;
    Ok(OAuthState {
        id: row.try_get("id").map_err(map_err)?,
        provider: row.try_get("provider").map_err(map_err)?,
        code_verifier: row.try_get("code_verifier").map_err(map_err)?,
        nonce: row.try_get("nonce").map_err(map_err)?,
        redirect_to: row.try_get("redirect_to").map_err(map_err)?,
        mode: OAuthMode::parse(&mode).ok_or_else(|| StoreError::Backend(format!("unknown oauth mode {mode:?}")))?,
        linking_user_id: row.try_get("linking_user_id").map_err(map_err)?,
        created_at: row.try_get("created_at").map_err(map_err)?,
        expires_at: row.try_get("expires_at").map_err(map_err)?,
        result_token: row.try_get("result_token").map_err(map_err)?,
        result_was_new: row.try_get("result_was_new").map_err(map_err)?,
    })
}

#[async_trait]
impl OAuthStore for PgStore {
    async fn identity(&self, provider: &str, subject: &str) -> Result<Option<OAuthIdentity>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {IDENTITY_COLUMNS} FROM oauth_identities WHERE provider = $1 AND subject_id = $2"
        ))
        .bind(provider)
        .bind(subject)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.as_ref().map(identity_from).transpose()
    }

    async fn identities_of(&self, user_id: &str) -> Result<Vec<OAuthIdentity>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {IDENTITY_COLUMNS} FROM oauth_identities WHERE user_id = $1 ORDER BY linked_at, id"
        ))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(identity_from).collect()
    }

    async fn link(&self, i: &OAuthIdentity) -> Result<OAuthIdentity, StoreError> {
        let done = sqlx::query(&format!(
            "INSERT INTO oauth_identities ({IDENTITY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING"
        ))
        .bind(&i.id)
        .bind(&i.user_id)
        .bind(&i.provider)
        .bind(&i.subject_id)
        .bind(&i.email)
        .bind(t(i.linked_at))
        .bind(i.last_used_at.map(t))
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 1 {
            return Ok(i.clone());
        }
        let taken = self.identity(&i.provider, &i.subject_id).await?.is_some();
        Err(StoreError::Conflict(
            if taken { "provider_subject" } else { "user_provider" }.into(),
        ))
    }

    async fn unlink(&self, user_id: &str, provider: &str, keep_one: bool) -> Result<Unlinked, StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        // One account's links change one at a time, so the count below stays true.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('regstack-oauth-links:' || $1))")
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let providers: Vec<String> = sqlx::query_scalar("SELECT provider FROM oauth_identities WHERE user_id = $1")
            .bind(user_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?;
        if !providers.iter().any(|p| p == provider) {
            return Ok(Unlinked::NotLinked);
        }
        if keep_one && providers.len() <= 1 {
            return Ok(Unlinked::LastMethod);
        }
        sqlx::query("DELETE FROM oauth_identities WHERE user_id = $1 AND provider = $2")
            .bind(user_id)
            .bind(provider)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(Unlinked::Removed)
    }

    async fn touch(&self, identity_id: &str, now: Timestamp) -> Result<(), StoreError> {
        sqlx::query("UPDATE oauth_identities SET last_used_at = $2 WHERE id = $1")
            .bind(identity_id)
            .bind(t(now))
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn put_state(&self, s: &OAuthState) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO oauth_states ({STATE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (id) DO UPDATE SET provider = excluded.provider, code_verifier = excluded.code_verifier, \
             nonce = excluded.nonce, redirect_to = excluded.redirect_to, mode = excluded.mode, \
             linking_user_id = excluded.linking_user_id, created_at = excluded.created_at, \
             expires_at = excluded.expires_at, result_token = excluded.result_token, \
             result_was_new = excluded.result_was_new"
        ))
        .bind(&s.id)
        .bind(&s.provider)
        .bind(&s.code_verifier)
        .bind(&s.nonce)
        .bind(&s.redirect_to)
        .bind(s.mode.as_str())
        .bind(&s.linking_user_id)
        .bind(t(s.created_at))
        .bind(t(s.expires_at))
        .bind(&s.result_token)
        .bind(s.result_was_new)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn take_waiting_state(&self, id: &str) -> Result<Option<OAuthState>, StoreError> {
        let row = sqlx::query(&format!(
            "DELETE FROM oauth_states WHERE id = $1 AND result_token IS NULL RETURNING {STATE_COLUMNS}"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.as_ref().map(state_from).transpose()
    }

    async fn take_completed_state(&self, id: &str) -> Result<Option<OAuthState>, StoreError> {
        let row = sqlx::query(&format!(
            "DELETE FROM oauth_states WHERE id = $1 AND result_token IS NOT NULL RETURNING {STATE_COLUMNS}"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.as_ref().map(state_from).transpose()
    }
}

const PUSH_COLUMNS: &str = "id, user_id, endpoint, p256dh, auth, created_at";

fn push_from(row: &PgRow) -> Result<PushSubscription, StoreError> {
    Ok(PushSubscription {
        id: row.try_get("id").map_err(map_err)?,
        user_id: row.try_get("user_id").map_err(map_err)?,
        endpoint: row.try_get("endpoint").map_err(map_err)?,
        p256dh: row.try_get("p256dh").map_err(map_err)?,
        auth: row.try_get("auth").map_err(map_err)?,
        created_at: row.try_get("created_at").map_err(map_err)?,
    })
}

#[async_trait]
impl PushSubscriptionStore for PgStore {
    /// The upsert and the trim in one transaction, under the user's row lock so parallel
    /// subscribes trim one after the other; the trim keeps the one just saved and the newest
    /// others up to `limit`.
    async fn subscribe(&self, s: &PushSubscription, limit: usize) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        sqlx::query("SELECT id FROM users WHERE id = $1 FOR UPDATE")
            .bind(&s.user_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
        sqlx::query(&format!(
            "INSERT INTO push_subscriptions ({PUSH_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (user_id, endpoint) DO UPDATE SET p256dh = EXCLUDED.p256dh, auth = EXCLUDED.auth, \
             created_at = EXCLUDED.created_at"
        ))
        .bind(&s.id)
        .bind(&s.user_id)
        .bind(&s.endpoint)
        .bind(&s.p256dh)
        .bind(&s.auth)
        .bind(t(s.created_at))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        sqlx::query(
            "DELETE FROM push_subscriptions WHERE user_id = $1 AND endpoint <> $3 AND id NOT IN (SELECT id \
             FROM push_subscriptions WHERE user_id = $1 AND endpoint <> $3 ORDER BY created_at DESC, id DESC LIMIT $2)",
        )
        .bind(&s.user_id)
        .bind(i64::try_from(limit.saturating_sub(1)).unwrap_or(i64::MAX))
        .bind(&s.endpoint)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }

    async fn subscriptions(&self, user_id: &str) -> Result<Vec<PushSubscription>, StoreError> {
        sqlx::query(&format!(
            "SELECT {PUSH_COLUMNS} FROM push_subscriptions WHERE user_id = $1 ORDER BY created_at, id"
        ))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?
        .iter()
        .map(push_from)
        .collect()
    }

    async fn unsubscribe(&self, user_id: &str, endpoint: &str) -> Result<bool, StoreError> {
        Ok(
            sqlx::query("DELETE FROM push_subscriptions WHERE user_id = $1 AND endpoint = $2")
                .bind(user_id)
                .bind(endpoint)
                .execute(&self.pool)
                .await
                .map_err(map_err)?
                .rows_affected()
                > 0,
        )
    }
}

const REFRESH_COLUMNS: &str =
    "id, user_id, family_id, token_hash, access_jti, created_at, expires_at, used_at, revoked";

fn refresh_from(row: &PgRow) -> Result<RefreshToken, StoreError> {
    Ok(RefreshToken {
        id: row.try_get("id").map_err(map_err)?,
        user_id: row.try_get("user_id").map_err(map_err)?,
        family_id: row.try_get("family_id").map_err(map_err)?,
        token_hash: row.try_get("token_hash").map_err(map_err)?,
        access_jti: row.try_get("access_jti").map_err(map_err)?,
        created_at: row.try_get("created_at").map_err(map_err)?,
        expires_at: row.try_get("expires_at").map_err(map_err)?,
        used_at: row.try_get("used_at").map_err(map_err)?,
        revoked: row.try_get("revoked").map_err(map_err)?,
    })
}

#[async_trait]
impl RefreshTokenStore for PgStore {
    async fn put(&self, r: &RefreshToken) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO refresh_tokens ({REFRESH_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(&r.id)
        .bind(&r.user_id)
        .bind(&r.family_id)
        .bind(&r.token_hash)
        .bind(&r.access_jti)
        .bind(t(r.created_at))
        .bind(t(r.expires_at))
        .bind(r.used_at.map(t))
        .bind(r.revoked)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    /// Spends the token under its row lock (a parallel rotation waits, then finds it spent)
    /// and writes the successor in the same transaction.
    async fn rotate(&self, token_hash: &str, next: &NextRefresh, now: Timestamp) -> Result<Rotation, StoreError> {
        let now = t(now);
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let spent = sqlx::query(&format!(
            "UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL AND NOT revoked \
             AND expires_at > $2 RETURNING {REFRESH_COLUMNS}"
        ))
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        if let Some(row) = spent {
            let previous = refresh_from(&row)?;
            let successor = next.successor_of(&previous, now);
            sqlx::query(&format!(
                "INSERT INTO refresh_tokens ({REFRESH_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, false)"
            ))
            .bind(&successor.id)
            .bind(&successor.user_id)
            .bind(&successor.family_id)
            .bind(&successor.token_hash)
            .bind(&successor.access_jti)
            .bind(successor.created_at)
            .bind(successor.expires_at)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
            tx.commit().await.map_err(map_err)?;
            return Ok(Rotation::Rotated {
                previous,
                next: successor,
            });
        }
        tx.rollback().await.map_err(map_err)?;
        let row = sqlx::query(&format!(
            "SELECT {REFRESH_COLUMNS} FROM refresh_tokens WHERE token_hash = $1"
        ))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        let Some(previous) = row.as_ref().map(refresh_from).transpose()? else {
            return Ok(Rotation::Unknown);
        };
        Ok(Rotation::refused(previous))
    }

    /// Repeated until it marks nothing: a rotation in flight holds its token's row lock, and
    /// the successor it inserts is not in this statement's snapshot; the next pass takes it.
    async fn revoke_family(&self, family_id: &str) -> Result<Vec<FamilyMember>, StoreError> {
        let mut members = Vec::new();
        for _ in 0..16 {
            let rows = sqlx::query(
                "UPDATE refresh_tokens SET revoked = true WHERE family_id = $1 AND NOT revoked \
                 RETURNING access_jti, created_at",
            )
            .bind(family_id)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
            if rows.is_empty() {
                return Ok(members);
            }
            for r in &rows {
                members.push(FamilyMember {
                    access_jti: r.try_get("access_jti").map_err(map_err)?,
                    issued_at: r.try_get("created_at").map_err(map_err)?,
                });
            }
        }
        Err(StoreError::Unavailable(
            "the family kept growing while it was revoked".into(),
        ))
    }

    async fn family_of_session(&self, access_jti: &str) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar("SELECT family_id FROM refresh_tokens WHERE access_jti = $1 LIMIT 1")
            .bind(access_jti)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)
    }
}

#[async_trait]
impl Sweeper for PgStore {
    async fn purge_expired(&self, now: Timestamp, attempts_before: Timestamp) -> Result<Purged, StoreError> {
        let now = truncate_micros(now);
        let delete = |sql: &'static str, at: Timestamp| {
            let pool = self.pool.clone();
            async move {
                sqlx::query(sql)
                    .bind(at)
                    .execute(&pool)
                    .await
                    .map(|r| r.rows_affected())
                    .map_err(map_err)
            }
        };
        Ok(Purged {
            attempts: delete(
                "DELETE FROM login_attempts WHERE \"when\" < $1",
                truncate_micros(attempts_before),
            )
            .await?,
            pending: delete("DELETE FROM pending_registrations WHERE expires_at <= $1", now).await?,
            revocations: delete("DELETE FROM token_blacklist WHERE exp <= $1", now).await?,
            codes: delete("DELETE FROM mfa_codes WHERE expires_at <= $1", now).await?,
            oauth_states: delete("DELETE FROM oauth_states WHERE expires_at <= $1", now).await?,
            refresh_tokens: delete("DELETE FROM refresh_tokens WHERE expires_at <= $1", now).await?,
        })
    }
}
