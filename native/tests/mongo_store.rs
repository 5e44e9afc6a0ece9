//! The shared port contract suite on a MongoDB-wire server (SecantusDB, started by
//! `scripts/test`, which sets `REGSTACK_TEST_MONGO_URL`), the indexes of docs/wire.md, "MongoDB collections", and
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
        (
            "refresh_tokens",
            &["refresh_token_hash_unique", "refresh_family", "refresh_ttl"][..],
        ),
        ("push_subscriptions", &["push_subscription_unique"][..]),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adopts_documents_written_by_regstack_093() {
    use axum::body::Body;
    use axum::http::{header, Request, StatusCode};
    use mongodb::bson::{doc, oid::ObjectId, DateTime};
    use serde_json::{json, Value};
    use tower::ServiceExt;

    let db = format!("rs_adopt_{}", std::process::id());
    let url = server_url().replacen("/?", &format!("/{db}?"), 1);
    {
        // The original's layout: ObjectId ids, BSON dates, null fields omitted, custom collection
        // names honoured through `user_collection`.
        let client = mongodb::Client::with_uri_str(&url).await.unwrap();
        let users = client.database(&db).collection::<mongodb::bson::Document>("accounts");
        users
            .insert_one(doc! {
                "_id": ObjectId::parse_str("65a1b2c3d4e5f60718293a4b").unwrap(),
                "email": "Mixed.Case@Example.com",
                "hashed_password": "$argon2id$v=19$m=65536,t=3,p=4$xSFxZoMtkEb/aDsuAm/uCw$fXp5tVXCJA/hvHobeJu5sB8fC4eKlPRTUUjYlvTDsJU",
                "is_active": true,
                "is_verified": true,
                "is_superuser": false,
                "is_mfa_enabled": false,
                "full_name": "Py Thon",
                "created_at": DateTime::from_millis(1_767_323_045_123),
                "updated_at": DateTime::from_millis(1_767_323_045_123),
            })
            .await
            .unwrap();
    }
    let config = regstack_core::config::load(regstack_core::config::Sources {
        overrides: &[
            ("database_url".into(), json!(url)),
            ("user_collection".into(), json!("accounts")),
            ("jwt_secret".into(), json!("0123456789abcdef0123456789abcdef")),
        ],
        ..Default::default()
    })
    .unwrap()
    .config;
    let app = regstack::RegStack::new(config)
        .await
        .expect("the adopted database opens")
        .router();
    let login = |password: &str| {
        Request::post("/login")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(
                json!({"email": "mixed.case@example.com", "password": password}).to_string(),
            ))
            .unwrap()
    };
    let resp = app.clone().oneshot(login("adopted-password-1")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value =
        serde_json::from_slice(&axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap()).unwrap();
    let me = Request::get("/me")
        .header(
            header::AUTHORIZATION,
            format!("Bearer {}", body["access_token"].as_str().unwrap()),
        )
        .body(Body::empty())
        .unwrap();
    let resp = app.clone().oneshot(me).await.unwrap();
    let me: Value = serde_json::from_slice(&axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap()).unwrap();
    assert_eq!(me["id"], "65a1b2c3d4e5f60718293a4b");
    assert_eq!(me["email"], "Mixed.Case@Example.com");
    assert_eq!(
        me["created_at"], "2026-01-02T03:04:05.123000Z",
        "pydantic prints six fraction digits"
    );
    assert_eq!(me["phone_number"], Value::Null);
    let resp = app.oneshot(login("not-the-password")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_owned_database_carries_an_instance() {
    let name = format!("rs_hostdb_{}", std::process::id());
    let client = mongodb::Client::with_uri_str(server_url()).await.unwrap();
    let db = client.database(&name);
    let config = Config {
        password_hash_memory_kib: 1024,
        password_hash_iterations: 1,
        ..config(&name)
    };
    let rs = regstack::RegStack::builder(config.clone())
        .mongo_database(db.clone())
        .build()
        .await
        .unwrap();
    let (did, _) = rs
        .bootstrap_admin("boss@example.com", "long-strong-password")
        .await
        .unwrap();
    assert_eq!(did, regstack_core::flows::admin::Bootstrapped::Created);
    let n = db
        .collection::<mongodb::bson::Document>("users")
        .count_documents(mongodb::bson::doc! { "is_superuser": true })
        .await
        .unwrap();
    assert_eq!(n, 1, "the instance wrote through the host's database");
    assert!(
        index_names(&MongoStore::from_database(&config, db).await.unwrap(), "users")
            .await
            .unwrap()
            .contains(&"created_at_listing".to_string())
    );
}
