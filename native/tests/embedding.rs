//! Embedding: a host nests the Router, uses the extractors on its own routes, and runs two
//! independent instances in one process.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::routing::get;
use axum::{Extension, Router};
use regstack::{Admin, CurrentUser, OptionalUser, RegStack};
use serde_json::{json, Value};

async fn instance(app_name: &str) -> RegStack {
    let config = regstack_core::config::load(regstack_core::config::Sources {
        overrides: &[
            ("app_name".into(), json!(app_name)),
            ("database_url".into(), json!("sqlite+aiosqlite:///:memory:")),
            ("require_verification".into(), json!(false)),
            ("password_hash_memory_kib".into(), json!(1024)),
            ("password_hash_iterations".into(), json!(1)),
        ],
        ..Default::default()
    })
    .unwrap()
    .config;
    RegStack::new(config).await.unwrap()
}

fn host_app(rs: &RegStack) -> Router {
    Router::new()
        .route("/private", get(|CurrentUser(u): CurrentUser| async move { u.email }))
        .route(
            "/maybe",
            get(
                |OptionalUser(u): OptionalUser| async move { u.map(|u| u.email).unwrap_or_else(|| "anonymous".into()) },
            ),
        )
        .route("/admin-only", get(|Admin(u): Admin| async move { u.email }))
        .nest("/api/auth", rs.router())
        .layer(Extension(rs.clone()))
}

async fn send(app: &Router, req: Request<Body>) -> (StatusCode, String) {
    let a = regstack_core::testing::oneshot_request(app, req).await;
    (a.status, a.text)
}

fn post(path: &str, body: Value) -> Request<Body> {
    Request::post(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

/// Registers `creds` under `prefix` (verification off) and logs in; the session token.
async fn register_and_login(app: &Router, prefix: &str, creds: &Value) -> String {
    let (s, _) = send(app, post(&format!("{prefix}/register"), creds.clone())).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, body) = send(app, post(&format!("{prefix}/login"), creds.clone())).await;
    assert_eq!(s, StatusCode::OK);
    serde_json::from_str::<Value>(&body).unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

fn get_with(path: &str, token: Option<&str>) -> Request<Body> {
    let mut r = Request::get(path);
    if let Some(t) = token {
        r = r.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    r.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn host_routes_use_the_same_auth_rules_and_instances_do_not_share_state() {
    let (a, b) = (instance("A").await, instance("B").await);
    let (app_a, app_b) = (host_app(&a), host_app(&b));
    let creds = json!({"email": "host@example.com", "password": "password123"});
    let token = register_and_login(&app_a, "/api/auth", &creds).await;

    assert_eq!(
        send(&app_a, get_with("/private", Some(&token))).await,
        (StatusCode::OK, "host@example.com".into())
    );
    assert_eq!(
        send(&app_a, get_with("/maybe", Some(&token))).await,
        (StatusCode::OK, "host@example.com".into())
    );
    assert_eq!(
        send(&app_a, get_with("/maybe", Some("junk"))).await,
        (StatusCode::OK, "anonymous".into())
    );
    let (s, body) = send(&app_a, get_with("/private", None)).await;
    assert_eq!(
        (s, body.as_str()),
        (StatusCode::UNAUTHORIZED, r#"{"detail":"Authentication required."}"#)
    );
    let (s, body) = send(&app_a, get_with("/admin-only", Some(&token))).await;
    assert_eq!(
        (s, body.as_str()),
        (
            StatusCode::FORBIDDEN,
            r#"{"detail":"Administrator privileges required."}"#
        )
    );

    // Instance B knows neither the user nor A's signing secret.
    let (s, _) = send(&app_b, post("/api/auth/login", creds)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, body) = send(&app_b, get_with("/private", Some(&token))).await;
    assert_eq!(
        (s, body.as_str()),
        (StatusCode::UNAUTHORIZED, r#"{"detail":"Invalid or expired token."}"#)
    );

    // Logging out through the API revokes the token for host routes too.
    let logout = Request::post("/api/auth/logout")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app_a, logout).await.0, StatusCode::OK);
    let (s, body) = send(&app_a, get_with("/private", Some(&token))).await;
    assert_eq!(
        (s, body.as_str()),
        (StatusCode::UNAUTHORIZED, r#"{"detail":"Token has been revoked."}"#)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_fire_and_a_failing_or_slow_hook_changes_nothing() {
    let rs = instance("Hooks").await;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let s2 = seen.clone();
    rs.on("user_registered", move |e| {
        let s2 = s2.clone();
        async move { s2.lock().unwrap().push(e.user().unwrap().email.clone()) }
    });
    rs.on("user_registered", |_| async { panic!("a broken host hook") });
    // A hook that only finishes once the answer has arrived: if the request waited for its
    // hooks, it would never answer (the test's own timeout would fail it).
    let answered = std::sync::Arc::new(tokio::sync::Notify::new());
    let (finished_tx, finished_rx) = tokio::sync::oneshot::channel::<()>();
    let finished_tx = std::sync::Mutex::new(Some(finished_tx));
    let gate = answered.clone();
    rs.on("user_registered", move |_| {
        let gate = gate.clone();
        let tx = finished_tx.lock().unwrap().take();
        async move {
            gate.notified().await;
            if let Some(tx) = tx {
                let _ = tx.send(());
            }
        }
    });
    let app = host_app(&rs);
    let (s, _) = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        send(
            &app,
            post(
                "/api/auth/register",
                json!({"email": "hook@example.com", "password": "password123"}),
            ),
        ),
    )
    .await
    .expect("the request does not wait for its hooks");
    assert_eq!(s, StatusCode::CREATED);
    answered.notify_one();
    finished_rx.await.expect("the slow hook still ran to its end");
    // The recording hook runs on its own task too: give it until the test's timeout.
    for _ in 0..600 {
        if !seen.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(*seen.lock().unwrap(), vec!["hook@example.com".to_string()]);
}

/// Keeps what it is asked to send.
#[derive(Default)]
struct Outbox(std::sync::Mutex<Vec<regstack_core::ports::EmailMessage>>);

#[async_trait::async_trait]
impl regstack_core::ports::Mailer for Outbox {
    async fn send(&self, m: &regstack_core::ports::EmailMessage) -> Result<(), regstack_core::ports::DeliveryError> {
        self.0.lock().unwrap().push(m.clone());
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_pool_a_swapped_mailer_and_the_host_calls() {
    // The host owns the pool (one connection: an in-memory database lives in it).
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect("sqlite::memory:")
        .await
        .unwrap();
    let config = regstack_core::config::load(regstack_core::config::Sources {
        overrides: &[
            ("password_hash_memory_kib".into(), json!(1024)),
            ("password_hash_iterations".into(), json!(1)),
        ],
        ..Default::default()
    })
    .unwrap()
    .config;
    let rs = RegStack::builder(config)
        .sqlite_pool(pool.clone())
        .build()
        .await
        .unwrap();
    let outbox = std::sync::Arc::new(Outbox::default());
    rs.set_mailer(outbox.clone());
    let app = host_app(&rs);
    let (s, _) = send(
        &app,
        post(
            "/api/auth/register",
            json!({"email": "pending@example.com", "password": "password123"}),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    for _ in 0..100 {
        if !outbox.0.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        outbox.0.lock().unwrap().first().map(|m| m.to.clone()),
        Some("pending@example.com".to_string()),
        "the swapped-in mailer sent the verification email"
    );

    let user = rs.promote_pending("pending@example.com").await.unwrap();
    assert!(user.is_verified);
    let (did, admin) = rs
        .bootstrap_admin("boss@example.com", "long-strong-password")
        .await
        .unwrap();
    assert_eq!(did, regstack_core::flows::admin::Bootstrapped::Created);
    assert!(admin.is_superuser);
    let (did, _) = rs.bootstrap_admin("boss@example.com", "").await.unwrap();
    assert_eq!(did, regstack_core::flows::admin::Bootstrapped::AlreadyAdmin);
    let purged = rs.purge_expired().await.unwrap();
    assert_eq!(purged.pending, 0);
    // The rows are in the host's own database.
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 2);
}

#[tokio::test]
async fn two_instances_in_one_router_under_different_prefixes() {
    let (b2c, b2b) = (instance("B2C").await, instance("B2B").await);
    let tenant = |rs: &RegStack| {
        Router::new()
            .route("/private", get(|CurrentUser(u): CurrentUser| async move { u.email }))
            .nest("/api/auth", rs.router())
            .layer(Extension(rs.clone()))
    };
    let app = Router::new().nest("/b2c", tenant(&b2c)).nest("/b2b", tenant(&b2b));
    let creds = json!({"email": "both@example.com", "password": "password123"});
    let token = register_and_login(&app, "/b2c/api/auth", &creds).await;
    assert_eq!(
        send(&app, get_with("/b2c/private", Some(&token))).await,
        (StatusCode::OK, "both@example.com".into())
    );
    assert_eq!(
        send(&app, get_with("/b2b/private", Some(&token))).await.0,
        StatusCode::UNAUTHORIZED,
        "a session of one instance means nothing to the other"
    );
    assert_eq!(
        send(&app, post("/b2b/api/auth/login", creds)).await.0,
        StatusCode::UNAUTHORIZED,
        "the account exists in one instance only"
    );
}
