//! Several instances on one Postgres or Mongo database share the login lockout and the per-IP
//! rate limits (docs/wire.md, "Decision 8"), and a regstack 0.9.3 Postgres database is adopted in place. Needs
//! the servers `scripts/test` starts (`REGSTACK_TEST_POSTGRES_URL`, `REGSTACK_TEST_MONGO_URL`).
#![cfg(all(feature = "postgres", feature = "mongo"))]

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use regstack::RegStack;
use serde_json::{json, Value};
use tower::ServiceExt;

async fn instance(database_url: &str) -> RegStack {
    let config = regstack_core::config::load(regstack_core::config::Sources {
        overrides: &[
            ("database_url".into(), json!(database_url)),
            ("jwt_secret".into(), json!("shared-state-secret-0123456789abcdef")),
            ("require_verification".into(), json!(false)),
            ("login_lockout_threshold".into(), json!(3)),
            ("forgot_password_rate_limit".into(), json!("3/minute")),
            ("password_hash_memory_kib".into(), json!(1024)),
            ("password_hash_iterations".into(), json!(1)),
        ],
        ..Default::default()
    })
    .unwrap()
    .config;
    RegStack::new(config).await.unwrap()
}

async fn post(app: &Router, path: &str, body: Value) -> (StatusCode, Value) {
    let req = Request::post(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn two_instances_share_state(url: &str) {
    let (a, b) = (instance(url).await.router(), instance(url).await.router());
    let email = format!("shared-{}@example.com", std::process::id());
    assert_eq!(
        post(&a, "/register", json!({"email": email, "password": "password123"}))
            .await
            .0,
        StatusCode::CREATED
    );
    let wrong = json!({"email": email, "password": "not-the-password"});
    let (_, first) = post(&a, "/login", wrong.clone()).await;
    let (_, second) = post(&b, "/login", wrong.clone()).await;
    let (_, third) = post(&a, "/login", wrong.clone()).await;
    assert_eq!(first["detail"], "Invalid email or password. 2 attempt(s) remaining.");
    assert_eq!(
        second["detail"], "Invalid email or password. 1 attempt(s) remaining.",
        "B saw A's failure"
    );
    assert_eq!(third["detail"], "Invalid email or password.");
    let (s, body) = post(&b, "/login", json!({"email": email, "password": "password123"})).await;
    assert_eq!(
        (s, body["detail"].as_str()),
        (
            StatusCode::TOO_MANY_REQUESTS,
            Some("Too many failed attempts. Try again in 900 seconds.")
        )
    );

    // One per-IP limit across both instances: 3 per minute in all.
    let forgot = json!({"email": "anyone@example.com"});
    let mut statuses = Vec::new();
    for app in [&a, &b, &a, &b, &a] {
        statuses.push(post(app, "/forgot-password", forgot.clone()).await.0.as_u16());
    }
    assert_eq!(statuses, [202, 202, 202, 429, 429]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_instances_share_lockout_and_rate_limits() {
    let admin =
        sqlx::PgPool::connect(&std::env::var("REGSTACK_TEST_POSTGRES_URL").expect("REGSTACK_TEST_POSTGRES_URL"))
            .await
            .unwrap();
    let db = format!("rs_shared_{}", std::process::id());
    sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {db}"))
        .execute(&admin)
        .await
        .unwrap();
    sqlx::raw_sql(&format!("CREATE DATABASE {db}"))
        .execute(&admin)
        .await
        .unwrap();
    let base = std::env::var("REGSTACK_TEST_POSTGRES_URL").unwrap();
    let url = format!("{}/{db}", base.rsplit_once('/').unwrap().0);
    two_instances_share_state(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongo_instances_share_lockout_and_rate_limits() {
    let base = std::env::var("REGSTACK_TEST_MONGO_URL").expect("REGSTACK_TEST_MONGO_URL");
    let url = base.replacen("/?", &format!("/rs_shared_{}?", std::process::id()), 1);
    two_instances_share_state(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adopts_a_regstack_093_postgres_database() {
    let base = std::env::var("REGSTACK_TEST_POSTGRES_URL").expect("REGSTACK_TEST_POSTGRES_URL");
    let admin = sqlx::PgPool::connect(&base).await.unwrap();
    let db = format!("rs_adopt_{}", std::process::id());
    sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {db}"))
        .execute(&admin)
        .await
        .unwrap();
    sqlx::raw_sql(&format!("CREATE DATABASE {db}"))
        .execute(&admin)
        .await
        .unwrap();
    let url = format!("{}/{db}", base.rsplit_once('/').unwrap().0);
    {
        // The schema 0.9.3 leaves at Alembic head 0003 (our 0001 migration reproduces it
        // statement for statement), then rows in its formats, and no regstack bookkeeping.
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        sqlx::raw_sql(include_str!("../../migrations/postgres/0001_initial.sql"))
            .execute(&pool)
            .await
            .unwrap();
        sqlx::raw_sql(
            "INSERT INTO users VALUES ('9f1c2b7e4d5a4c3b8a7f6e5d4c3b2a19', 'Mixed.Case@Example.com', \
             '$argon2id$v=19$m=65536,t=3,p=4$xSFxZoMtkEb/aDsuAm/uCw$fXp5tVXCJA/hvHobeJu5sB8fC4eKlPRTUUjYlvTDsJU', \
             true, true, false, 'Py Thon', NULL, false, '2026-01-02 03:04:05.123456+00', '2026-01-02 03:04:05.123456+00', NULL, NULL)",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    }
    let app = instance(&url).await.router();
    let (s, body) = post(
        &app,
        "/login",
        json!({"email": "mixed.case@example.com", "password": "adopted-password-1"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let token = body["access_token"].as_str().unwrap();
    let req = Request::get("/me")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let me: Value = serde_json::from_slice(&axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap()).unwrap();
    assert_eq!(me["id"], "9f1c2b7e4d5a4c3b8a7f6e5d4c3b2a19");
    assert_eq!(me["created_at"], "2026-01-02T03:04:05.123456Z");
    let (s, _) = post(
        &app,
        "/login",
        json!({"email": "mixed.case@example.com", "password": "wrong-password"}),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}
