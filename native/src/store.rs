//! Storage backends, chosen at start-up from the scheme of `database_url`.

#[cfg(feature = "mongo")]
pub mod mongo;
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
        #[cfg(not(feature = "sqlite"))]
        DatabaseKind::Sqlite(_) => Err(StoreOpenError::NotBuilt("SQLite", "sqlite")),
        #[cfg(feature = "postgres")]
        DatabaseKind::Postgres(url) => {
            let timeout = std::time::Duration::from_secs(config.database_timeout_seconds);
            let store = postgres::PgStore::open(&url, config.database_pool_size, timeout).await?;
            Ok(Stores::from_one(store.clone(), Arc::new(store)))
        }
        #[cfg(not(feature = "postgres"))]
        DatabaseKind::Postgres(_) => Err(StoreOpenError::NotBuilt("PostgreSQL", "postgres")),
        #[cfg(feature = "mongo")]
        DatabaseKind::Mongo(url) => {
            let timeout = std::time::Duration::from_secs(config.database_timeout_seconds);
            let store = mongo::MongoStore::open(config, &url, timeout).await?;
            Ok(Stores::from_one(store.clone(), Arc::new(store)))
        }
        #[cfg(not(feature = "mongo"))]
        DatabaseKind::Mongo(_) => Err(StoreOpenError::NotBuilt("MongoDB", "mongo")),
    }
}
