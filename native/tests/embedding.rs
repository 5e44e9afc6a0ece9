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
    let (s, _) = send(&app_a, post("/api/auth/register", creds.clone())).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, body) = send(&app_a, post("/api/auth/login", creds.clone())).await;
    assert_eq!(s, StatusCode::OK);
    let token = serde_json::from_str::<Value>(&body).unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();

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

#[tokio::test]
async fn hooks_fire_and_a_failing_hook_changes_nothing() {
    let rs = instance("Hooks").await;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let s2 = seen.clone();
    rs.on("user_registered", move |e| {
        let s2 = s2.clone();
        async move { s2.lock().unwrap().push(e.user().unwrap().email.clone()) }
    });
    rs.on("user_registered", |_| async { panic!("a broken host hook") });
    let app = host_app(&rs);
    let (s, _) = send(
        &app,
        post(
            "/api/auth/register",
            json!({"email": "hook@example.com", "password": "password123"}),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(*seen.lock().unwrap(), vec!["hook@example.com".to_string()]);
}
