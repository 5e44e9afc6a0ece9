//! Email delivered through a real SMTP server (aiosmtpd, started by `scripts/test`, which sets
//! `REGSTACK_TEST_SMTP_PORT` and `REGSTACK_TEST_MAILDIR`), and the link in it followed.
#![cfg(feature = "smtp")]

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use regstack::RegStack;
use regstack_conformance::mail::{sink, unquote, wait_for_mail};
use serde_json::{json, Value};
use tower::ServiceExt;

async fn instance(smtp_port: u16) -> RegStack {
    let config = regstack_core::config::load(regstack_core::config::Sources {
        overrides: &[
            ("app_name".into(), json!("Mail Test")),
            ("base_url".into(), json!("http://app.example.com")),
            ("database_url".into(), json!("sqlite+aiosqlite:///:memory:")),
            ("password_hash_memory_kib".into(), json!(1024)),
            ("password_hash_iterations".into(), json!(1)),
            ("email.backend".into(), json!("smtp")),
            ("email.smtp_host".into(), json!("127.0.0.1")),
            ("email.smtp_port".into(), json!(smtp_port)),
            ("email.smtp_starttls".into(), json!(false)),
            ("email.from_address".into(), json!("accounts@app.example.com")),
            ("email.from_name".into(), json!("Accounts Team")),
        ],
        ..Default::default()
    })
    .unwrap()
    .config;
    RegStack::new(config).await.unwrap()
}

fn post(path: &str, body: Value) -> Request<Body> {
    Request::post(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_email_arrives_over_smtp_and_its_link_verifies() {
    let (port, maildir) = sink();
    let rs = instance(port).await;
    let app = rs.router();
    let email = format!("smtp-{}@example.com", std::process::id());
    let resp = app
        .clone()
        .oneshot(post(
            "/register",
            json!({"email": email, "password": "password123", "full_name": "Mae"}),
        ))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let raw = wait_for_mail(&maildir, &email).await;
    assert!(
        raw.contains("From: \"Accounts Team\" <accounts@app.example.com>")
            || raw.contains("From: Accounts Team <accounts@app.example.com>"),
        "{raw}"
    );
    assert!(raw.contains("Subject: Confirm your Mail Test account"), "{raw}");
    assert!(raw.contains("multipart/alternative"), "{raw}");
    assert!(raw.contains("text/plain") && raw.contains("text/html"), "{raw}");
    let text = unquote(&raw);
    let url = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("http://app.example.com/verify?token="))
        .unwrap_or_else(|| panic!("no verify link in {text}"));
    let token = url.split("?token=").nth(1).unwrap();
    let resp = app.oneshot(post("/verify", json!({"token": token}))).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_unreachable_smtp_server_does_not_change_the_answer() {
    // Nothing listens on port 1: delivery fails in the background, the route still answers 202.
    let rs = instance(1).await;
    let resp = rs
        .router()
        .oneshot(post("/forgot-password", json!({"email": "nobody@example.com"})))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let resp = rs
        .router()
        .oneshot(post(
            "/register",
            json!({"email": "down@example.com", "password": "password123"}),
        ))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
}

/// STARTTLS with a certificate from a private CA (`smtp_ca_file`) and AUTH, against a server
/// that refuses mail without both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_with_auth_and_a_private_ca_delivers() {
    let (_, maildir) = sink();
    let port: u16 = std::env::var("REGSTACK_TEST_SMTP_TLS_PORT")
        .expect("REGSTACK_TEST_SMTP_TLS_PORT must name the STARTTLS test server (scripts/test starts one)")
        .parse()
        .unwrap();
    let ca = std::env::var("REGSTACK_TEST_SMTP_CA").expect("REGSTACK_TEST_SMTP_CA must name its CA certificate");
    let config = regstack_core::config::load(regstack_core::config::Sources {
        overrides: &[
            ("app_name".into(), json!("TLS Mail Test")),
            ("database_url".into(), json!("sqlite+aiosqlite:///:memory:")),
            ("password_hash_memory_kib".into(), json!(1024)),
            ("password_hash_iterations".into(), json!(1)),
            ("email.backend".into(), json!("smtp")),
            ("email.smtp_host".into(), json!("127.0.0.1")),
            ("email.smtp_port".into(), json!(port)),
            ("email.smtp_starttls".into(), json!(true)),
            ("email.smtp_username".into(), json!("regstack")),
            ("email.smtp_password".into(), json!("smtp-test-password")),
            ("email.smtp_ca_file".into(), json!(ca)),
            ("email.from_address".into(), json!("accounts@app.example.com")),
        ],
        ..Default::default()
    })
    .unwrap()
    .config;
    let rs = RegStack::new(config).await.unwrap();
    let email = format!("smtp-tls-{}@example.com", std::process::id());
    let resp = rs
        .router()
        .oneshot(post("/register", json!({"email": email, "password": "password123"})))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let raw = unquote(&wait_for_mail(&maildir, &email).await);
    assert!(raw.contains("Subject: Confirm your TLS Mail Test account"), "{raw}");
    assert!(raw.contains("/verify?token="), "{raw}");
}
