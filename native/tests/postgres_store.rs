//! The shared port contract suite on PostgreSQL, migrations, and adoption of a regstack 0.9.3
//! database. Needs a server: `scripts/test` starts one and sets `REGSTACK_TEST_POSTGRES_URL`.
#![cfg(feature = "postgres")]

use std::sync::Arc;
use std::time::Duration;

use regstack::store::postgres::PgStore;
use regstack_core::ports::Stores;
use regstack_core::testing::contract;

fn server_url() -> String {
    std::env::var("REGSTACK_TEST_POSTGRES_URL")
        .expect("REGSTACK_TEST_POSTGRES_URL must point at a PostgreSQL server (scripts/test starts one)")
}

/// A fresh database on the test server, so tests do not see each other's rows.
async fn fresh_database(name: &str) -> String {
    let admin = sqlx::PgPool::connect(&server_url()).await.unwrap();
    let db = format!("rs_store_{name}_{}", std::process::id());
    sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {db}"))
        .execute(&admin)
        .await
        .unwrap();
    sqlx::raw_sql(&format!("CREATE DATABASE {db}"))
        .execute(&admin)
        .await
        .unwrap();
    let base = server_url();
    let (prefix, _) = base.rsplit_once('/').unwrap();
    format!("{prefix}/{db}")
}

fn stores(s: PgStore) -> Stores {
    Stores::from_one(s.clone(), Arc::new(s))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_passes_the_port_contract() {
    let url = fresh_database("contract").await;
    let store = PgStore::open(&url, 30, Duration::from_secs(10)).await.unwrap();
    contract(stores(store), 25).await;
}

#[tokio::test]
async fn migrations_create_the_contract_schema_once() {
    let url = fresh_database("schema").await;
    let store = PgStore::open(&url, 2, Duration::from_secs(10)).await.unwrap();
    assert!(store.migrate().await.unwrap().is_empty(), "already applied at open");
    // Two instances opening the same database at once both succeed.
    let (a, b) = tokio::join!(
        PgStore::open(&url, 2, Duration::from_secs(10)),
        PgStore::open(&url, 2, Duration::from_secs(10))
    );
    a.unwrap();
    b.unwrap();
    let constraints: Vec<String> = sqlx::query_scalar(
        "SELECT conname::text FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace \
         WHERE n.nspname = 'public' AND conname NOT LIKE '%regstack%' ORDER BY conname",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    for name in [
        "email_unique",
        "jti_unique",
        "pending_email_unique",
        "pending_token_unique",
        "user_kind_unique",
        "provider_subject_unique",
        "user_provider_unique",
        "ck_mfa_codes_ck_mfa_codes_attempts_nonneg",
        "ck_oauth_states_ck_oauth_states_mode_valid",
        "pk_users",
    ] {
        assert!(
            constraints.iter().any(|c| c == name),
            "{name} missing from {constraints:?}"
        );
    }
    let created: String = sqlx::query_scalar(
        "SELECT data_type FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'created_at'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(created, "timestamp with time zone");
    let rev: String = sqlx::query_scalar("SELECT version_num FROM alembic_version")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(rev, "0003");
}

#[tokio::test]
async fn an_unreachable_server_is_a_clear_error() {
    let err = PgStore::open("postgresql://postgres@127.0.0.1:1/none", 1, Duration::from_secs(2))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("cannot connect to PostgreSQL at 127.0.0.1:1"),
        "{err}"
    );
}

/// Many session checks at once are answered together, each with its own user and revocation,
/// and a revocation is seen by the next check (docs/performance.md, "The session check").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_checks_at_once_share_statements_and_each_gets_its_own_answer() {
    use regstack_core::ports::{RevocationStore, SessionLookup, UserStore};
    let url = fresh_database("gathered").await;
    let store = PgStore::open(&url, 8, Duration::from_secs(10)).await.unwrap();
    let now = regstack_core::time::from_micros(1_767_268_800_000_000);
    let mut ids = Vec::new();
    for i in 0..20 {
        let id = format!("{i:032}");
        let mut u = regstack_core::records::User::new(id.clone(), format!("u{i}@example.com"), None, now);
        u.full_name = Some(format!("user {i}"));
        store.create(&u).await.unwrap();
        ids.push(id);
    }
    for i in (0..40).step_by(3) {
        store
            .revoke(&format!("jti-{i}"), regstack_core::time::plus_seconds(now, 600))
            .await
            .unwrap();
    }
    // 400 checks: users that exist (i < 20) and ones that do not, live and revoked tokens.
    let mut checks = tokio::task::JoinSet::new();
    for k in 0..400 {
        let store = store.clone();
        let (i, j) = (k % 40, (k * 7) % 40);
        let user_id = ids.get(i).cloned().unwrap_or_else(|| format!("missing-{i}"));
        checks.spawn(async move { (i, j, store.lookup(&user_id, &format!("jti-{j}")).await.unwrap()) });
    }
    for (i, j, record) in checks.join_all().await {
        assert_eq!(record.revoked, j % 3 == 0, "check ({i}, {j})");
        match &record.user {
            Some(u) => {
                assert!(i < 20, "check ({i}, {j}) found a user that does not exist");
                assert_eq!(u.id, ids[i]);
                assert_eq!(u.full_name.as_deref(), Some(format!("user {i}").as_str()));
            }
            None => assert!(i >= 20, "check ({i}, {j}) lost its user"),
        }
    }
    let counts = store.session_check_counts();
    assert!(counts.answered > 0, "the gathered path answered: {counts:?}");
    assert!(
        counts.statements * 2 <= counts.answered,
        "checks waiting together share a statement: {counts:?}"
    );
    // A revocation is seen by the very next check.
    assert!(!store.lookup(&ids[1], "fresh").await.unwrap().revoked);
    store
        .revoke("fresh", regstack_core::time::plus_seconds(now, 600))
        .await
        .unwrap();
    assert!(store.lookup(&ids[1], "fresh").await.unwrap().revoked);
    // A pool the host owns may be shared, so its stores hold none of its connections.
    let hosted = PgStore::from_pool(sqlx::PgPool::connect(&url).await.unwrap())
        .await
        .unwrap();
    let mut checks = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let (hosted, id) = (hosted.clone(), ids[2].clone());
        checks.spawn(async move { hosted.lookup(&id, "fresh").await.unwrap() });
    }
    assert!(checks.join_all().await.iter().all(|r| r.revoked && r.user.is_some()));
    assert_eq!(
        hosted.session_check_counts().statements,
        0,
        "all through the host's pool"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_owned_pool_carries_an_instance() {
    let url = fresh_database("hostpool").await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let config = regstack_core::config::Config {
        password_hash_memory_kib: 1024,
        password_hash_iterations: 1,
        ..Default::default()
    };
    let rs = regstack::RegStack::builder(config)
        .pg_pool(pool.clone())
        .build()
        .await
        .unwrap();
    let (did, _) = rs
        .bootstrap_admin("boss@example.com", "long-strong-password")
        .await
        .unwrap();
    assert_eq!(did, regstack_core::flows::admin::Bootstrapped::Created);
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE is_superuser")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 1, "the instance migrated and wrote through the host's pool");
}

/// Databases regstack 0.9.3 left at Alembic revisions 0001 and 0002 (the DDL its migrations
/// emit for PostgreSQL, in tests/fixtures) are brought to 0003 as 0.9.3 would, then to head.
#[tokio::test]
async fn adopts_regstack_093_databases_below_alembic_head() {
    use regstack_core::ports::UserStore;
    use regstack_core::records::User;
    use regstack_core::time::from_micros;
    for (rev, fixture) in [
        ("0001", include_str!("fixtures/regstack-0.9.3-postgres-0001.sql")),
        ("0002", include_str!("fixtures/regstack-0.9.3-postgres-0002.sql")),
    ] {
        let url = fresh_database(&format!("alembic_{rev}")).await;
        {
            let pool = sqlx::PgPool::connect(&url).await.unwrap();
            sqlx::raw_sql(fixture).execute(&pool).await.unwrap();
            sqlx::raw_sql(
                "INSERT INTO users (id, email, hashed_password, is_active, is_verified, is_superuser, full_name, \
                 phone_number, is_mfa_enabled, created_at, updated_at) VALUES ('9f0e0c1f2a3b4c5d6e7f8091a2b3c4d5', \
                 'Old.User@Example.com', '$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA', \
                 true, true, false, 'Old User', NULL, false, '2026-01-01 10:00:00+00', '2026-01-01 10:00:00+00')",
            )
            .execute(&pool)
            .await
            .unwrap();
            if rev == "0002" {
                sqlx::raw_sql(
                    "INSERT INTO oauth_states (id, provider, code_verifier, nonce, redirect_to, mode, created_at, expires_at) \
                     VALUES ('in-flight', 'google', 'verifier', 'nonce', '/', 'signin', now(), now() + interval '10 minutes')",
                )
                .execute(&pool)
                .await
                .unwrap();
            }
            pool.close().await;
        }
        let store = PgStore::open(&url, 2, Duration::from_secs(10)).await.unwrap();
        let state = store.schema_state().await.unwrap();
        assert!(state.at_head(), "{rev}: {state}");
        assert_eq!(
            state.alembic.as_deref(),
            Some("0003"),
            "{rev}: 0.9.3 still recognises it"
        );
        let old = store
            .find_by_email("old.user@example.com")
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{rev}: the 0.9.3 row survives"));
        assert_eq!(old.full_name.as_deref(), Some("Old User"), "{rev}");
        let oauth_only = User::new(
            "00000000000000000000000000000042".into(),
            "oauth.only@example.com".into(),
            None,
            from_micros(1_767_268_800_000_000),
        );
        store.create(&oauth_only).await.unwrap_or_else(|e| panic!("{rev}: {e}"));
        let flags: Vec<bool> = sqlx::query_scalar("SELECT result_was_new FROM oauth_states")
            .fetch_all(store.pool())
            .await
            .unwrap_or_else(|e| panic!("{rev}: {e}"));
        assert!(flags.iter().all(|f| !f), "{rev}: {flags:?}");
        assert!(
            store.migrate().await.unwrap().is_empty(),
            "{rev}: a second run does nothing"
        );
    }
}
