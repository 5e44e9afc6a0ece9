//! The database-outage scenario shared by the Postgres and Mongo fault tests.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use regstack::RegStack;
use serde_json::{json, Value};

/// A database the test can stop and start again.
pub trait Switch {
    /// Stops the server.
    fn down(&mut self);
    /// Starts it again, on the same port and data.
    fn up(&mut self);
}

async fn call(app: &axum::Router, req: Request<Body>) -> (StatusCode, Value) {
    let a = regstack_core::testing::oneshot_request(app, req).await;
    (a.status, a.json)
}

fn post(path: &str, body: Value) -> Request<Body> {
    Request::post(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn me(token: &str) -> Request<Body> {
    Request::get("/me")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

/// Registers and signs in on `database_url`, stops the database, expects every request to
/// answer 503 in the contract's shape within seconds (never a 500 or a hang) and `/readyz` to
/// report it, starts it again, and expects recovery on its own with the acknowledged
/// registration intact.
pub async fn outage_round_trip(database_url: &str, db: &mut impl Switch) {
    let config = regstack_core::config::load(regstack_core::config::Sources {
        overrides: &[
            ("database_url".into(), json!(database_url)),
            ("require_verification".into(), json!(false)),
            ("database_timeout_seconds".into(), json!(2)),
            ("password_hash_memory_kib".into(), json!(1024)),
            ("password_hash_iterations".into(), json!(1)),
        ],
        ..Default::default()
    })
    .unwrap()
    .config;
    let rs = RegStack::new(config).await.unwrap();
    let app = rs.router();
    let creds = json!({"email": "durable@example.com", "password": "password123"});
    assert_eq!(
        call(&app, post("/register", creds.clone())).await.0,
        StatusCode::CREATED
    );
    let (s, body) = call(&app, post("/login", creds.clone())).await;
    assert_eq!(s, StatusCode::OK);
    let token = body["access_token"].as_str().unwrap().to_string();

    db.down();
    for _ in 0..3 {
        let started = Instant::now();
        let (s, body) = call(&app, me(&token)).await;
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "a request hung for {:?}",
            started.elapsed()
        );
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(
            body["detail"],
            "The account service is temporarily unavailable. Try again shortly."
        );
    }
    let (s, _) = call(&app, post("/login", creds.clone())).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert!(!rs.ready().await, "readyz reports the outage");

    db.up();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (s, body) = call(&app, me(&token)).await;
        if s == StatusCode::OK {
            assert_eq!(
                body["email"], "durable@example.com",
                "the acknowledged registration survived"
            );
            break;
        }
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(Instant::now() < deadline, "no recovery within 20 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(rs.ready().await);
    assert_eq!(call(&app, post("/login", creds)).await.0, StatusCode::OK);
}
