//! Storage backends, chosen at start-up from the scheme of `database_url`.

#[cfg(feature = "mongo")]
pub mod mongo;
#[cfg(feature = "postgres")]
pub mod pg_sessions;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;
#[cfg(feature = "sqlite")]
mod sqlite_reader;

#[cfg(not(any(feature = "sqlite", feature = "postgres", feature = "mongo")))]
compile_error!("regstack needs at least one storage backend feature: `sqlite` (the default), `postgres` or `mongo`");

use std::sync::Arc;

use regstack_core::config::{database_kind, Config, DatabaseKind};
#[cfg(feature = "sqlite")]
use regstack_core::memory::MemoryCounter;

pub use regstack_core::ports::Stores;

/// Why storage could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum StoreOpenError {
    /// The URL is malformed or names an unsupported scheme.
    #[error(transparent)]
    Config(#[from] regstack_core::config::ConfigError),
    /// The URL names a backend this build leaves out.
    #[error("database_url selects {0}, but this regstack was built without the `{1}` feature")]
    NotBuilt(&'static str, &'static str),
    /// SQLite failed to open or migrate.
    #[cfg(feature = "sqlite")]
    #[error(transparent)]
    Sqlite(#[from] sqlite::OpenError),
    /// PostgreSQL failed to connect or migrate.
    #[cfg(feature = "postgres")]
    #[error(transparent)]
    Postgres(#[from] postgres::OpenError),
    /// MongoDB failed to connect or install its indexes.
    #[cfg(feature = "mongo")]
    #[error(transparent)]
    Mongo(#[from] mongo::OpenError),
    /// Migrations were left to the operator and the schema is behind.
    #[error("the database schema is at {0}; run `regstack migrate` first (the server was started with --no-migrate)")]
    NotMigrated(SchemaState),
    /// A `--target` this database cannot be moved to.
    #[error("{0}")]
    Target(String),
}

/// Where a SQL database's schema stands (docs/cli.md, "migrate").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaState {
    /// The Alembic revision regstack 0.9.3 left, when it made the database.
    pub alembic: Option<String>,
    /// The newest of regstack's own migrations applied; 0 when none has run.
    pub current: i64,
    /// The newest migration this build carries.
    pub head: i64,
}

impl SchemaState {
    /// The state from the Alembic revision, the newest of `migrations` applied (if any), and
    /// the migrations this build carries.
    pub(crate) fn of(alembic: Option<String>, current: Option<i64>, migrations: &[(i64, &str, &str)]) -> Self {
        Self {
            alembic,
            current: current.unwrap_or(0),
            head: migrations.last().map_or(0, |m| m.0),
        }
    }

    /// Whether nothing is left to apply.
    pub fn at_head(&self) -> bool {
        self.current >= self.head && self.alembic.as_deref().is_none_or(|r| r == "0003")
    }
}

impl std::fmt::Display for SchemaState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.current, self.alembic.as_deref()) {
            (0, None) => write!(f, "an empty database (head is {:04})", self.head),
            (0, Some(rev)) => write!(
                f,
                "regstack 0.9.3's schema at Alembic revision {rev}, none of this regstack's migrations yet (head is {:04})",
                self.head
            ),
            (current, _) if current > self.head => write!(
                f,
                "revision {current:04}, from a newer regstack (this one's head is {:04})",
                self.head
            ),
            (current, _) if current == self.head => write!(f, "revision {current:04} (head)"),
            (current, _) => write!(f, "revision {current:04} (head is {:04})", self.head),
        }
    }
}

/// Where `regstack migrate --target` goes: `head`, a revision (`0004`), or a number of steps
/// past the current one (`+1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Every migration.
    Head,
    /// Up to and including this revision.
    Revision(i64),
    /// This many revisions past the current one.
    Steps(i64),
}

impl std::str::FromStr for Target {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("--target takes head, a revision such as 0004, or +N; got {s:?}");
        match s.trim() {
            "head" => Ok(Target::Head),
            t if t.starts_with('+') => match t[1..].parse::<i64>() {
                Ok(n) if n > 0 => Ok(Target::Steps(n)),
                _ => Err(bad()),
            },
            t if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) => {
                t.parse().map(Target::Revision).map_err(|_| bad())
            }
            _ => Err(bad()),
        }
    }
}

impl Target {
    /// The revision to stop at, or why this database cannot go there.
    pub fn resolve(self, state: &SchemaState) -> Result<i64, String> {
        let wanted = match self {
            // A database a newer build migrated is left as it is.
            Target::Head => state.head.max(state.current),
            Target::Revision(r) => r,
            Target::Steps(n) => state.current.saturating_add(n),
        };
        if wanted < 1 || (wanted > state.head && wanted != state.current) {
            return Err(format!(
                "there is no revision {wanted:04}: this regstack's revisions are 0001 to {:04}",
                state.head
            ));
        }
        if wanted < state.current {
            return Err(format!(
                "the database is at revision {:04}, past {wanted:04}; regstack does not downgrade",
                state.current
            ));
        }
        Ok(wanted)
    }
}

/// What `regstack migrate` did.
#[derive(Clone, Debug)]
pub struct Migrated {
    /// Before.
    pub before: SchemaState,
    /// After.
    pub after: SchemaState,
    /// The revisions applied, in order.
    pub applied: Vec<i64>,
}

/// Applies migrations up to `target` on the SQL database `config.database_url` names;
/// `Ok(None)` for MongoDB, which has no migrations (its indexes are installed at start).
pub async fn migrate(config: &Config, target: Target) -> Result<Option<Migrated>, StoreOpenError> {
    match database_kind(&config.database_url)? {
        #[cfg(feature = "sqlite")]
        DatabaseKind::Sqlite(path) => {
            let store = sqlite::SqliteStore::connect(&path, 1, sqlite::Access::Create).await?;
            let before = store.schema_state().await.map_err(|e| sqlite_error(&path, e))?;
            let stop = target.resolve(&before).map_err(StoreOpenError::Target)?;
            let full = stop >= before.head;
            let applied = store
                .migrate_to((!full).then_some(stop))
                .await
                .map_err(|e| e.opening(&path))?;
            let after = store.schema_state().await.map_err(|e| sqlite_error(&path, e))?;
            Ok(Some(Migrated { before, after, applied }))
        }
        #[cfg(feature = "postgres")]
        DatabaseKind::Postgres(url) => {
            let timeout = std::time::Duration::from_secs(config.database_timeout_seconds);
            let store = postgres::PgStore::connect(&url, 1, timeout).await?;
            let before = store.schema_state().await?;
            let stop = target.resolve(&before).map_err(StoreOpenError::Target)?;
            let full = stop >= before.head;
            let applied = store.migrate_to((!full).then_some(stop)).await?;
            let after = store.schema_state().await?;
            Ok(Some(Migrated { before, after, applied }))
        }
        #[cfg(feature = "mongo")]
        DatabaseKind::Mongo(_) => Ok(None),
        #[allow(unreachable_patterns)]
        other => open_kind_not_built(other),
    }
}

/// Where the schema of `config.database_url` stands, changing nothing (a missing SQLite file
/// is an error, not created); `Ok(None)` for MongoDB.
pub async fn schema(config: &Config) -> Result<Option<SchemaState>, StoreOpenError> {
    match database_kind(&config.database_url)? {
        #[cfg(feature = "sqlite")]
        DatabaseKind::Sqlite(path) => {
            let store = sqlite::SqliteStore::connect(&path, 1, sqlite::Access::Inspect).await?;
            Ok(Some(store.schema_state().await.map_err(|e| sqlite_error(&path, e))?))
        }
        #[cfg(feature = "postgres")]
        DatabaseKind::Postgres(url) => {
            let timeout = std::time::Duration::from_secs(config.database_timeout_seconds);
            let store = postgres::PgStore::connect(&url, 1, timeout).await?;
            Ok(Some(store.schema_state().await?))
        }
        #[cfg(feature = "mongo")]
        DatabaseKind::Mongo(_) => Ok(None),
        #[allow(unreachable_patterns)]
        other => open_kind_not_built(other),
    }
}

#[cfg(feature = "sqlite")]
fn sqlite_error(path: &str, source: sqlx::Error) -> StoreOpenError {
    StoreOpenError::Sqlite(sqlite::OpenError::Connect {
        path: path.to_string(),
        source,
    })
}

/// The answer for a backend this build leaves out.
fn open_kind_not_built<T>(kind: DatabaseKind) -> Result<T, StoreOpenError> {
    Err(match kind {
        DatabaseKind::Sqlite(_) => StoreOpenError::NotBuilt("SQLite", "sqlite"),
        DatabaseKind::Postgres(_) => StoreOpenError::NotBuilt("PostgreSQL", "postgres"),
        DatabaseKind::Mongo(_) => StoreOpenError::NotBuilt("MongoDB", "mongo"),
    })
}

/// Stores on a host's SQLite pool, migrated; rate limits count in this process.
#[cfg(feature = "sqlite")]
pub async fn on_sqlite(pool: sqlx::SqlitePool) -> Result<Stores, StoreOpenError> {
    let store = sqlite::SqliteStore::from_pool(pool).await?;
    Ok(Stores::from_one(
        regstack_core::sqlite::SqlStore(store),
        Arc::new(MemoryCounter::default()),
    ))
}

/// Stores on a host's PostgreSQL pool, migrated; rate limits shared through the database.
#[cfg(feature = "postgres")]
pub async fn on_postgres(pool: sqlx::PgPool) -> Result<Stores, StoreOpenError> {
    let store = postgres::PgStore::from_pool(pool).await?;
    Ok(Stores::from_one(store.clone(), Arc::new(store)))
}

/// Stores in a host's MongoDB database, indexes installed; rate limits shared through it.
#[cfg(feature = "mongo")]
pub async fn on_mongo(config: &Config, db: mongodb::Database) -> Result<Stores, StoreOpenError> {
    let store = mongo::MongoStore::from_database(config, db).await?;
    Ok(Stores::from_one(store.clone(), Arc::new(store)))
}

/// Opens the backend without migrating (`regstack serve --no-migrate`): a SQL schema behind
/// this build's head is refused. MongoDB's indexes are installed as at every start; they are
/// not migrations.
pub async fn open_checked(config: &Config) -> Result<Stores, StoreOpenError> {
    let behind = |state: SchemaState| match state.at_head() {
        true => Ok(()),
        false => Err(StoreOpenError::NotMigrated(state)),
    };
    match database_kind(&config.database_url)? {
        #[cfg(feature = "sqlite")]
        DatabaseKind::Sqlite(path) => {
            let store =
                sqlite::SqliteStore::connect(&path, config.database_pool_size, sqlite::Access::Existing).await?;
            behind(store.schema_state().await.map_err(|e| sqlite_error(&path, e))?)?;
            Ok(Stores::from_one(
                regstack_core::sqlite::SqlStore(store),
                Arc::new(MemoryCounter::default()),
            ))
        }
        #[cfg(feature = "postgres")]
        DatabaseKind::Postgres(url) => {
            let timeout = std::time::Duration::from_secs(config.database_timeout_seconds);
            let store = postgres::PgStore::connect(&url, config.database_pool_size, timeout).await?;
            behind(store.schema_state().await?)?;
            Ok(Stores::from_one(store.clone(), Arc::new(store)))
        }
        #[allow(unreachable_patterns)]
        _ => open(config).await,
    }
}

/// Opens and migrates the backend `config.database_url` selects.
pub async fn open(config: &Config) -> Result<Stores, StoreOpenError> {
    match database_kind(&config.database_url)? {
        #[cfg(feature = "sqlite")]
        DatabaseKind::Sqlite(path) => {
            let store = sqlite::SqliteStore::open(&path, config.database_pool_size).await?;
            // One SQLite file serves one process, so its rate limits count in memory.
            Ok(Stores::from_one(
                regstack_core::sqlite::SqlStore(store),
                Arc::new(MemoryCounter::default()),
            ))
        }
        #[cfg(feature = "postgres")]
        DatabaseKind::Postgres(url) => {
            let timeout = std::time::Duration::from_secs(config.database_timeout_seconds);
            let store = postgres::PgStore::open(&url, config.database_pool_size, timeout).await?;
            Ok(Stores::from_one(store.clone(), Arc::new(store)))
        }
        #[cfg(feature = "mongo")]
        DatabaseKind::Mongo(url) => {
            let timeout = std::time::Duration::from_secs(config.database_timeout_seconds);
            let store = mongo::MongoStore::open(config, &url, timeout).await?;
            Ok(Stores::from_one(store.clone(), Arc::new(store)))
        }
        #[allow(unreachable_patterns)]
        other => open_kind_not_built(other),
    }
}

#[cfg(test)]
mod tests {
    use super::{SchemaState, Target};

    fn at(current: i64) -> SchemaState {
        SchemaState {
            alembic: Some("0003".into()),
            current,
            head: 5,
        }
    }

    #[test]
    fn targets_parse_and_resolve_against_the_schema() {
        assert_eq!("head".parse(), Ok(Target::Head));
        assert_eq!("0004".parse(), Ok(Target::Revision(4)));
        assert_eq!("+2".parse(), Ok(Target::Steps(2)));
        for bad in ["", "latest", "+0", "+", "-1", "4.0", "+x"] {
            assert!(bad.parse::<Target>().is_err(), "{bad:?}");
        }
        assert_eq!(Target::Head.resolve(&at(0)), Ok(5));
        assert_eq!(Target::Revision(2).resolve(&at(0)), Ok(2));
        assert_eq!(Target::Steps(2).resolve(&at(2)), Ok(4));
        assert!(Target::Steps(4).resolve(&at(2)).is_err(), "past head");
        assert!(Target::Steps(i64::MAX).resolve(&at(2)).is_err(), "no overflow");
        assert!(Target::Revision(0).resolve(&at(0)).is_err());
        assert!(Target::Revision(6).resolve(&at(0)).is_err());
        assert!(Target::Revision(2)
            .resolve(&at(3))
            .unwrap_err()
            .contains("does not downgrade"));
        // A database a newer build migrated: head leaves it alone, nothing is refused.
        assert_eq!(Target::Head.resolve(&at(7)), Ok(7));
        assert!(at(7).at_head());
        assert!(at(7).to_string().contains("from a newer regstack"), "{}", at(7));
        assert!(!SchemaState {
            alembic: Some("0002".into()),
            current: 5,
            head: 5
        }
        .at_head());
    }
}
