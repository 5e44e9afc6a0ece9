//! The shared port contract suite on SQLite, and adoption of a regstack 0.9.3 database.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use regstack::store::sqlite::SqliteStore;
use regstack::RegStack;
use regstack_core::memory::MemoryCounter;
use regstack_core::ports::Stores;
use regstack_core::testing::contract;
use serde_json::{json, Value};
use std::sync::Arc;
use tower::ServiceExt;

fn stores(s: SqliteStore) -> Stores {
    Stores::from_one(regstack_core::sqlite::SqlStore(s), Arc::new(MemoryCounter::default()))
}

fn temp_db(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("regstack-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("regstack.db")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_file_passes_the_port_contract() {
    let path = temp_db("contract");
    let store = SqliteStore::open(path.to_str().unwrap(), 8).await.unwrap();
    contract(stores(store), 25).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_memory_passes_the_port_contract() {
    let store = SqliteStore::open(":memory:", 8).await.unwrap();
    contract(stores(store), 10).await;
}

#[tokio::test]
async fn migrations_are_recorded_and_run_once() {
    let path = temp_db("migrate");
    let store = SqliteStore::open(path.to_str().unwrap(), 2).await.unwrap();
    assert_eq!(
        store.migrate().await.unwrap(),
        Vec::<i64>::new(),
        "already applied at open"
    );
    let rev: String = sqlx::query_scalar("SELECT version_num FROM alembic_version")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(rev, "0003");
    let mut names: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type IN ('table','index') AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    names.retain(|n| n != "regstack_migrations");
    assert_eq!(
        names,
        [
            "alembic_version",
            "ix_blacklist_exp",
            "ix_login_attempts_email_lower",
            "ix_login_attempts_email_when",
            "ix_login_attempts_when",
            "ix_mfa_codes_expires_at",
            "ix_oauth_states_expires_at",
            "ix_pending_email_key",
            "ix_pending_email_lower",
            "ix_pending_expires_at",
            "ix_refresh_tokens_access_jti",
            "ix_refresh_tokens_expires_at",
            "ix_refresh_tokens_family",
            "ix_refresh_tokens_user",
            "ix_users_created_at",
            "ix_users_email_key",
            "ix_users_email_lower",
            "login_attempts",
            "mfa_codes",
            "oauth_identities",
            "oauth_states",
            "pending_registrations",
            "push_subscriptions",
            "refresh_tokens",
            "token_blacklist",
            "users",
        ]
    );
}

/// The DDL SQLAlchemy/Alembic 0.9.3 leaves at head, with rows in its formats.
const PYTHON_DB: &str = r#"
CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num));
INSERT INTO alembic_version VALUES ('0003');
CREATE TABLE users (id VARCHAR(36) NOT NULL, email VARCHAR(320) NOT NULL, hashed_password TEXT, is_active BOOLEAN NOT NULL,
  is_verified BOOLEAN NOT NULL, is_superuser BOOLEAN NOT NULL, full_name VARCHAR(200), phone_number VARCHAR(20),
  is_mfa_enabled BOOLEAN NOT NULL, created_at DATETIME NOT NULL, updated_at DATETIME NOT NULL, last_login DATETIME,
  tokens_invalidated_after DATETIME, CONSTRAINT pk_users PRIMARY KEY (id), CONSTRAINT email_unique UNIQUE (email));
CREATE TABLE pending_registrations (id VARCHAR(36) NOT NULL, email VARCHAR(320) NOT NULL, hashed_password TEXT NOT NULL,
  full_name VARCHAR(200), token_hash VARCHAR(64) NOT NULL, created_at DATETIME NOT NULL, expires_at DATETIME NOT NULL,
  CONSTRAINT pk_pending_registrations PRIMARY KEY (id), CONSTRAINT pending_email_unique UNIQUE (email),
  CONSTRAINT pending_token_unique UNIQUE (token_hash));
CREATE INDEX ix_pending_expires_at ON pending_registrations (expires_at);
CREATE TABLE token_blacklist (id INTEGER NOT NULL, jti VARCHAR(64) NOT NULL, exp DATETIME NOT NULL,
  CONSTRAINT pk_token_blacklist PRIMARY KEY (id), CONSTRAINT jti_unique UNIQUE (jti));
CREATE INDEX ix_blacklist_exp ON token_blacklist (exp);
CREATE TABLE login_attempts (id INTEGER NOT NULL, email VARCHAR(320) NOT NULL, "when" DATETIME NOT NULL, ip VARCHAR(64),
  CONSTRAINT pk_login_attempts PRIMARY KEY (id));
CREATE INDEX ix_login_attempts_email_when ON login_attempts (email, "when");
CREATE TABLE mfa_codes (id INTEGER NOT NULL, user_id VARCHAR(36) NOT NULL, kind VARCHAR(32) NOT NULL, code_hash VARCHAR(64) NOT NULL,
  expires_at DATETIME NOT NULL, attempts INTEGER NOT NULL, max_attempts INTEGER NOT NULL, created_at DATETIME NOT NULL,
  CONSTRAINT pk_mfa_codes PRIMARY KEY (id), CONSTRAINT user_kind_unique UNIQUE (user_id, kind),
  CONSTRAINT ck_mfa_codes_ck_mfa_codes_attempts_nonneg CHECK (attempts >= 0));
CREATE INDEX ix_mfa_codes_expires_at ON mfa_codes (expires_at);
CREATE TABLE oauth_identities (id VARCHAR(36) NOT NULL, user_id VARCHAR(36) NOT NULL, provider VARCHAR(32) NOT NULL,
  subject_id VARCHAR(255) NOT NULL, email VARCHAR(320), linked_at DATETIME NOT NULL, last_used_at DATETIME,
  CONSTRAINT pk_oauth_identities PRIMARY KEY (id), CONSTRAINT provider_subject_unique UNIQUE (provider, subject_id),
  CONSTRAINT user_provider_unique UNIQUE (user_id, provider));
CREATE TABLE oauth_states (id VARCHAR(64) NOT NULL, provider VARCHAR(32) NOT NULL, code_verifier TEXT NOT NULL, nonce VARCHAR(64) NOT NULL,
  redirect_to TEXT NOT NULL, mode VARCHAR(16) NOT NULL, linking_user_id VARCHAR(36), created_at DATETIME NOT NULL,
  expires_at DATETIME NOT NULL, result_token TEXT, result_was_new BOOLEAN DEFAULT 0 NOT NULL,
  CONSTRAINT pk_oauth_states PRIMARY KEY (id), CONSTRAINT ck_oauth_states_ck_oauth_states_mode_valid CHECK (mode IN ('signin', 'link')));
CREATE INDEX ix_oauth_states_expires_at ON oauth_states (expires_at);
INSERT INTO users VALUES ('9f1c2b7e4d5a4c3b8a7f6e5d4c3b2a19', 'Mixed.Case@Example.com',
  '$argon2id$v=19$m=65536,t=3,p=4$xSFxZoMtkEb/aDsuAm/uCw$fXp5tVXCJA/hvHobeJu5sB8fC4eKlPRTUUjYlvTDsJU',
  1, 1, 0, 'Py Thon', NULL, 0, '2026-01-02 03:04:05.123456', '2026-01-02 03:04:05.123456', NULL, '2026-01-02 03:04:06.000001');
INSERT INTO users VALUES ('8e0b1a6d3c4f4b2a9e8d7c6b5a493827', 'Ärger.Ünal@Example.com',
  '$argon2id$v=19$m=65536,t=3,p=4$xSFxZoMtkEb/aDsuAm/uCw$fXp5tVXCJA/hvHobeJu5sB8fC4eKlPRTUUjYlvTDsJU',
  1, 1, 0, NULL, NULL, 0, '2026-01-02 03:04:05.123456', '2026-01-02 03:04:05.123456', NULL, NULL);
INSERT INTO token_blacklist (jti, exp) VALUES ('old-jti', '2026-01-02 05:04:05.000000');
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adopts_a_regstack_093_database_in_place() {
    let path = temp_db("adopt");
    {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=rwc", path.display()))
            .await
            .unwrap();
        sqlx::raw_sql(PYTHON_DB).execute(&pool).await.unwrap();
        pool.close().await;
    }
    let config = regstack_core::config::load(regstack_core::config::Sources {
        overrides: &[
            (
                "database_url".into(),
                json!(format!("sqlite+aiosqlite:///{}", path.display())),
            ),
            ("jwt_secret".into(), json!("0123456789abcdef0123456789abcdef")),
        ],
        ..Default::default()
    })
    .unwrap()
    .config;
    let rs = RegStack::new(config).await.expect("the adopted database opens");
    let app = rs.router();
    let post = |body: Value| {
        Request::post("/login")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    // The original's hash verifies, and the mixed-case address matches case-insensitively.
    let resp = app
        .clone()
        .oneshot(post(
            json!({"email": "mixed.case@example.com", "password": "adopted-password-1"}),
        ))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value =
        serde_json::from_slice(&axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap()).unwrap();
    let token = body["access_token"].as_str().unwrap();
    let me = Request::get("/me")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let resp = app.clone().oneshot(me).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let me: Value = serde_json::from_slice(&axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap()).unwrap();
    assert_eq!(me["id"], "9f1c2b7e4d5a4c3b8a7f6e5d4c3b2a19");
    assert_eq!(me["email"], "Mixed.Case@Example.com", "data is left as it was");
    assert_eq!(me["created_at"], "2026-01-02T03:04:05.123456Z");
    assert_eq!(me["tokens_invalidated_after"], "2026-01-02T03:04:06.000001Z");
    // A wrong password is still refused, and the existing blacklist row is still there.
    let resp = app
        .oneshot(post(
            json!({"email": "mixed.case@example.com", "password": "not-the-password"}),
        ))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM token_blacklist WHERE jti = 'old-jti'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 1);
    // Rehash on login replaced the 64 MiB hash with the configured parameters.
    let hash: String =
        sqlx::query_scalar("SELECT hashed_password FROM users WHERE id = '9f1c2b7e4d5a4c3b8a7f6e5d4c3b2a19'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
    // A non-ASCII address written by 0.9.3 in mixed case is found from the lower-cased input:
    // SQL's lower() folds ASCII only, so regstack keyed the row at start-up.
    let resp = rs
        .router()
        .oneshot(post(
            json!({"email": "Ärger.Ünal@example.com", "password": "adopted-password-1"}),
        ))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_unknown_alembic_revision_is_refused_clearly() {
    let path = temp_db("old-rev");
    {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=rwc", path.display()))
            .await
            .unwrap();
        sqlx::raw_sql("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY); INSERT INTO alembic_version VALUES ('0004');")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    }
    let err = SqliteStore::open(path.to_str().unwrap(), 1).await.unwrap_err();
    assert!(err.to_string().contains("Alembic revision 0004"), "{err}");
}

/// Key reads answered on the calling thread give exactly the rows the sqlx pool gives, for a
/// user with every kind of column filled, and for the session read with and without a user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_reads_match_the_pool_row_for_row() {
    use regstack_core::records::User;
    use regstack_core::sqlite::{session_lookup, user_by_id, Executor, SqlStore};
    use regstack_core::time::from_micros;
    let path = temp_db("key-reads");
    let store = SqliteStore::open(path.to_str().unwrap(), 2).await.unwrap();
    assert!(store.reads_keys_inline(), "a database file gets the inline key reads");
    let now = from_micros(1_767_268_800_123_456);
    let mut u = User::new(
        "0123456789abcdef0123456789abcdef".into(),
        "keys@example.com".into(),
        Some("$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaA".into()),
        now,
    );
    u.full_name = Some("Kéy Réads".into());
    u.phone_number = Some("+15555550100".into());
    u.is_verified = true;
    u.last_login = Some(now);
    u.tokens_invalidated_after = Some(now);
    let stores = SqlStore(store.clone());
    regstack_core::ports::UserStore::create(&stores, &u).await.unwrap();
    regstack_core::ports::RevocationStore::revoke(&stores, "jti-1", now)
        .await
        .unwrap();
    for st in [
        user_by_id(&u.id),
        user_by_id("nobody"),
        session_lookup(&u.id, "jti-1"),
        session_lookup(&u.id, "jti-2"),
        session_lookup("nobody", "jti-1"),
    ] {
        let inline = store.rows_by_key(st.clone()).await.unwrap();
        let pooled = store.rows(st.clone()).await.unwrap();
        assert_eq!(inline, pooled, "{}", st.sql);
    }
    assert_eq!(
        store.rows_by_key(user_by_id(&u.id)).await.unwrap().len(),
        1,
        "the user row is found"
    );
}

/// A 0.9.3 user row, as its SQLAlchemy models write one.
const LEGACY_USER: &str =
    "INSERT INTO users (id, email, hashed_password, is_active, is_verified, is_superuser, full_name, \
     phone_number, is_mfa_enabled, created_at, updated_at, last_login, tokens_invalidated_after) VALUES \
     ('9f0e0c1f2a3b4c5d6e7f8091a2b3c4d5', 'Old.User@Example.com', \
     '$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA', 1, 1, 0, 'Old User', NULL, 0, \
     '2026-01-01 10:00:00.000000', '2026-01-01 10:00:00.000000', NULL, NULL)";

/// Databases regstack 0.9.3 left at Alembic revisions 0001 and 0002 (its own DDL, dumped
/// into tests/fixtures) are brought to 0003 as 0.9.3's migrations would, then to head, with
/// their rows intact and every regstack feature working on them.
#[tokio::test]
async fn adopts_regstack_093_databases_below_alembic_head() {
    use regstack_core::ports::UserStore;
    use regstack_core::records::User;
    use regstack_core::sqlite::SqlStore;
    use regstack_core::time::from_micros;
    for (rev, fixture) in [
        ("0001", include_str!("fixtures/regstack-0.9.3-sqlite-0001.sql")),
        ("0002", include_str!("fixtures/regstack-0.9.3-sqlite-0002.sql")),
    ] {
        let path = temp_db(&format!("alembic-{rev}"));
        {
            let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=rwc", path.display()))
                .await
                .unwrap();
            sqlx::raw_sql(fixture).execute(&pool).await.unwrap();
            sqlx::raw_sql(LEGACY_USER).execute(&pool).await.unwrap();
            if rev == "0002" {
                sqlx::raw_sql(
                    "INSERT INTO oauth_states (id, provider, code_verifier, nonce, redirect_to, mode, created_at, expires_at) \
                     VALUES ('in-flight', 'google', 'verifier', 'nonce', '/', 'signin', '2026-01-01 10:00:00.000000', '2026-01-01 10:10:00.000000')",
                )
                .execute(&pool)
                .await
                .unwrap();
            }
            pool.close().await;
        }
        // Two servers starting on the file at once: one adopts it, the other finds it adopted.
        let (store, twin) = tokio::join!(
            SqliteStore::open(path.to_str().unwrap(), 2),
            SqliteStore::open(path.to_str().unwrap(), 2)
        );
        let store = store.unwrap_or_else(|e| panic!("{rev}: {e}"));
        twin.unwrap_or_else(|e| panic!("{rev}: {e}"));
        let state = store.schema_state().await.unwrap();
        assert!(state.at_head(), "{rev}: {state}");
        let columns: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info('users')")
            .fetch_all(store.pool())
            .await
            .unwrap();
        assert!(
            columns.iter().any(|c| c == "role") && columns.iter().any(|c| c == "email_key"),
            "{rev}: later migrations' columns survive: {columns:?}"
        );
        assert_eq!(
            state.alembic.as_deref(),
            Some("0003"),
            "{rev}: 0.9.3 still recognises it"
        );
        let users = SqlStore(store.clone());
        let old = users
            .find_by_email("old.user@example.com")
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{rev}: the 0.9.3 row survives"));
        assert_eq!(old.full_name.as_deref(), Some("Old User"), "{rev}");
        assert!(
            old.hashed_password
                .as_deref()
                .unwrap()
                .starts_with("$argon2id$v=19$m=65536"),
            "{rev}"
        );
        // 0002's change: an account without a password (OAuth-only) can be stored.
        let oauth_only = User::new(
            "00000000000000000000000000000042".into(),
            "oauth.only@example.com".into(),
            None,
            from_micros(1_767_268_800_000_000),
        );
        users.create(&oauth_only).await.unwrap_or_else(|e| panic!("{rev}: {e}"));
        // 0003's change, with in-flight rows defaulting to false.
        let flags: Vec<i64> = sqlx::query_scalar("SELECT result_was_new FROM oauth_states")
            .fetch_all(store.pool())
            .await
            .unwrap_or_else(|e| panic!("{rev}: {e}"));
        assert!(flags.iter().all(|f| *f == 0), "{rev}: {flags:?}");
        // The rebuilt table keeps 0.9.3's constraints.
        let dup = sqlx::raw_sql(LEGACY_USER).execute(store.pool()).await;
        assert!(dup.is_err(), "{rev}: the primary key and email_unique still hold");
        assert!(
            store.migrate().await.unwrap().is_empty(),
            "{rev}: a second run does nothing"
        );
    }
}

/// Adopting on a host's pool, where foreign keys are on, must not fire the `ON DELETE`
/// actions of the host's own tables when `users` is rebuilt.
#[tokio::test]
async fn adoption_on_a_host_pool_keeps_rows_that_reference_users() {
    use std::str::FromStr;
    let path = temp_db("alembic-fk");
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(&format!("sqlite://{}?mode=rwc", path.display()))
        .unwrap()
        .foreign_keys(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    sqlx::raw_sql(include_str!("fixtures/regstack-0.9.3-sqlite-0001.sql"))
        .execute(&pool)
        .await
        .unwrap();
    sqlx::raw_sql(LEGACY_USER).execute(&pool).await.unwrap();
    sqlx::raw_sql(
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, user_id VARCHAR(36) NOT NULL REFERENCES users (id) ON DELETE CASCADE); \
         INSERT INTO notes (user_id) VALUES ('9f0e0c1f2a3b4c5d6e7f8091a2b3c4d5');",
    )
    .execute(&pool)
    .await
    .unwrap();
    let store = SqliteStore::from_pool(pool.clone()).await.unwrap();
    assert!(store.schema_state().await.unwrap().at_head());
    let notes: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM notes")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(notes, 1, "the host's row survived the rebuild of users");
    let on: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(on, 1, "foreign keys are on again afterwards");
}
