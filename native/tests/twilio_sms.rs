//! SMS through the Twilio backend against a local stand-in that checks each request exactly as
//! Twilio documents it (path, form fields, basic auth), including retries on 503 and no retry
//! on a permanent refusal. Twilio itself cannot run here, so it is faked at the HTTP level.
#![cfg(feature = "twilio")]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Form, Json, Router};
use base64::Engine as _;
use regstack::RegStack;
use serde_json::{json, Value};

#[derive(Default)]
struct Fake {
    /// Answers to give, in order; `201` once exhausted.
    script: Vec<u16>,
    received: Vec<HashMap<String, String>>,
    attempts: usize,
}

type Shared = Arc<Mutex<Fake>>;

async fn messages(
    State(fake): State<Shared>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> impl IntoResponse {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("AC0123456789:secret-token")
    );
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    if sid != "AC0123456789" || auth != expected || !ct.starts_with("application/x-www-form-urlencoded") {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"code": 20003, "message": "Authenticate", "status": 401})),
        )
            .into_response();
    }
    let mut fake = fake.lock().unwrap();
    fake.attempts += 1;
    let status = if fake.script.is_empty() {
        201
    } else {
        fake.script.remove(0)
    };
    if status != 201 {
        let body = json!({"code": 21211, "message": "The 'To' number is not a valid phone number.", "status": status});
        return (StatusCode::from_u16(status).unwrap(), Json(body)).into_response();
    }
    let mut keys: Vec<&String> = form.keys().collect();
    keys.sort();
    assert_eq!(keys, ["Body", "From", "To"], "exactly the documented fields");
    fake.received.push(form);
    (StatusCode::CREATED, Json(json!({"sid": "SM0123", "status": "queued"}))).into_response()
}

async fn start_fake(script: Vec<u16>) -> (String, Shared) {
    let fake: Shared = Arc::new(Mutex::new(Fake {
        script,
        ..Fake::default()
    }));
    let app = Router::new()
        .route("/2010-04-01/Accounts/{sid}/Messages.json", post(messages))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), fake)
}

async fn instance(api_base: &str) -> RegStack {
    let config = regstack_core::config::load(regstack_core::config::Sources {
        overrides: &[
            ("app_name".into(), json!("Twilio Test")),
            ("database_url".into(), json!("sqlite+aiosqlite:///:memory:")),
            ("require_verification".into(), json!(false)),
            ("enable_sms_2fa".into(), json!(true)),
            ("password_hash_memory_kib".into(), json!(1024)),
            ("password_hash_iterations".into(), json!(1)),
            ("sms.backend".into(), json!("twilio")),
            ("sms.from_number".into(), json!("+15005550006")),
            ("sms.twilio_account_sid".into(), json!("AC0123456789")),
            ("sms.twilio_auth_token".into(), json!("secret-token")),
            ("sms.twilio_api_base".into(), json!(api_base)),
        ],
        ..Default::default()
    })
    .unwrap()
    .config;
    RegStack::new(config).await.unwrap()
}

async fn call(app: &Router, method: &str, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
    let method = method.parse().expect("a method");
    let a = regstack_core::testing::oneshot(app, method, path, token, Some(&body)).await;
    (a.status, a.json)
}

async fn signed_in(app: &Router) -> String {
    let creds = json!({"email": "sms@example.com", "password": "password123"});
    assert_eq!(
        call(app, "POST", "/register", None, creds.clone()).await.0,
        StatusCode::CREATED
    );
    let (_, body) = call(app, "POST", "/login", None, creds).await;
    body["access_token"].as_str().unwrap().to_string()
}

async fn wait_until(fake: &Shared, what: impl Fn(&Fake) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !what(&fake.lock().unwrap()) {
        assert!(
            Instant::now() < deadline,
            "the stand-in never saw the expected requests"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_setup_code_arrives_through_twilio_after_retries() {
    let (base, fake) = start_fake(vec![503, 503]).await;
    let app = instance(&base).await.router();
    let token = signed_in(&app).await;
    let (s, body) = call(
        &app,
        "POST",
        "/phone/start",
        Some(&token),
        json!({"phone_number": "+15555550123", "current_password": "password123"}),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let pending = body["pending_token"].as_str().unwrap().to_string();
    wait_until(&fake, |f| !f.received.is_empty()).await;
    let (sms, attempts) = {
        let f = fake.lock().unwrap();
        (f.received[0].clone(), f.attempts)
    };
    assert_eq!(attempts, 3, "two 503s, then success");
    assert_eq!(sms["To"], "+15555550123");
    assert_eq!(sms["From"], "+15005550006");
    let text = &sms["Body"];
    assert!(
        text.starts_with("Twilio Test verification code: ") && text.ends_with(". Expires in 5 minutes."),
        "{text}"
    );
    let code: String = text
        .trim_start_matches("Twilio Test verification code: ")
        .chars()
        .take(6)
        .collect();
    let (s, user) = call(
        &app,
        "POST",
        "/phone/confirm",
        None,
        json!({"pending_token": pending, "code": code}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(user["is_mfa_enabled"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_refusal_is_not_retried_and_changes_no_answer() {
    let (base, fake) = start_fake(vec![400]).await;
    let app = instance(&base).await.router();
    let token = signed_in(&app).await;
    let (s, body) = call(
        &app,
        "POST",
        "/phone/start",
        Some(&token),
        json!({"phone_number": "+15555550124", "current_password": "password123"}),
    )
    .await;
    assert_eq!((s, body["status"].as_str()), (StatusCode::ACCEPTED, Some("code_sent")));
    wait_until(&fake, |f| f.attempts >= 1).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let f = fake.lock().unwrap();
    assert_eq!((f.attempts, f.received.len()), (1, 0), "a 400 is final");
}
