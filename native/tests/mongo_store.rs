//! The shared port contract suite on a MongoDB-wire server (SecantusDB, started by
//! `scripts/test`, which sets `REGSTACK_TEST_MONGO_URL`), the indexes of contract §4.3, and
//! the start-up error for an unreachable server.
#![cfg(feature = "mongo")]

use std::sync::Arc;
use std::time::Duration;

use regstack::store::mongo::{index_names, MongoStore};
use regstack_core::config::Config;
use regstack_core::ports::Stores;
use regstack_core::testing::contract_at;
use regstack_core::time::from_micros;

fn server_url() -> String {
    std::env::var("REGSTACK_TEST_MONGO_URL")
        .expect("REGSTACK_TEST_MONGO_URL must point at a MongoDB-wire server (scripts/test starts SecantusDB)")
}

fn config(db: &str) -> Config {
    Config {
        mongodb_database: db.to_string(),
        ..Config::default()
    }
}

fn now_ms() -> regstack_core::time::Timestamp {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    from_micros(ms * 1000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mongo_passes_the_port_contract() {
    let db = format!("rs_contract_{}", std::process::id());
    let store = MongoStore::open(&config(&db), &server_url(), Duration::from_secs(10))
        .await
        .unwrap();
    contract_at(Stores::from_one(store.clone(), Arc::new(store)), 12, now_ms()).await;
}

#[tokio::test]
async fn indexes_follow_the_contract_and_install_idempotently() {
    let db = format!("rs_indexes_{}", std::process::id());
    let store = MongoStore::open(&config(&db), &server_url(), Duration::from_secs(10))
        .await
        .unwrap();
    MongoStore::open(&config(&db), &server_url(), Duration::from_secs(10))
        .await
        .expect("a second install is a no-op");
    for (collection, wanted) in [
        ("users", &["email_unique"][..]),
        ("token_blacklist", &["jti_unique", "exp_ttl"][..]),
        (
            "pending_registrations",
            &["pending_email_unique", "pending_token_unique", "pending_ttl"][..],
        ),
        ("login_attempts", &["email_when", "when_ttl"][..]),
        ("mfa_codes", &["user_kind_unique", "mfa_ttl"][..]),
        (
            "oauth_identities",
            &["provider_subject_unique", "user_provider_unique"][..],
        ),
        ("oauth_states", &["oauth_state_ttl"][..]),
    ] {
        let names = index_names(&store, collection).await.unwrap();
        for w in wanted {
            assert!(names.iter().any(|n| n == w), "{collection}: {w} missing from {names:?}");
        }
    }
}

#[tokio::test]
async fn an_unreachable_server_is_a_clear_error() {
    let err = MongoStore::open(
        &config("x"),
        "mongodb://127.0.0.1:1/?directConnection=true",
        Duration::from_secs(2),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("cannot reach MongoDB at 127.0.0.1:1"), "{err}");
}
