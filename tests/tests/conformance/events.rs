//! Events leave both runtimes as signed webhooks (docs/events.md). A receiver on loopback
//! checks every signature with regstack's own verifier, answers 500 to the first delivery to
//! see it retried under the same id, and records what arrives.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Extension, Router};
use regstack_conformance::{json, unique_email, LinkKind, Server, Value, PASSWORD};

const SECRET: &str = "webhook-secret-for-the-conformance-suite-0123456";

#[derive(Default)]
struct Received {
    /// (delivery id, event name, body) of every request, in arrival order.
    requests: Vec<(String, String, Value)>,
    /// Requests whose signature did not verify.
    forged: usize,
}

struct Receiver {
    url: String,
    seen: Arc<Mutex<Received>>,
}

/// Fails the first request with 500; verifies and records every one.
async fn start_receiver() -> Receiver {
    let seen = Arc::new(Mutex::new(Received::default()));
    let app = Router::new()
        .route(
            "/hook",
            post(
                |Extension(seen): Extension<Arc<Mutex<Received>>>, headers: HeaderMap, body: Bytes| async move {
                    let mut seen = seen.lock().unwrap();
                    if regstack::webhook::verify_request(SECRET, &headers, &body).is_err() {
                        seen.forged += 1;
                        return StatusCode::UNAUTHORIZED;
                    }
                    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    // The id and name that count are the signed ones in the body; the headers
                    // must repeat them.
                    let (id, event) = (
                        value["id"].as_str().unwrap_or("").to_string(),
                        value["event"].as_str().unwrap_or("").to_string(),
                    );
                    if header(regstack::webhook::DELIVERY) != id || header(regstack::webhook::EVENT) != event {
                        seen.forged += 1;
                    }
                    seen.requests.push((id, event, value));
                    if seen.requests.len() == 1 {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::OK
                    }
                },
            ),
        )
        .layer(Extension(seen.clone()));
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Receiver { url, seen }
}

impl Receiver {
    /// The accepted deliveries (2xx answered), one per id, once `n` of them have arrived.
    async fn accepted(&self, n: usize) -> Vec<(String, String, Value)> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got: Vec<(String, String, Value)> = {
                let seen = self.seen.lock().unwrap();
                // The first request was answered 500; everything after it was accepted.
                seen.requests.iter().skip(1).cloned().collect()
            };
            if got.len() >= n || Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_arrive_signed_once_each_and_a_failure_is_retried() {
    let receiver = start_receiver().await;
    let s = Server::start(&[
        ("REGSTACK_WEBHOOK_URL", &receiver.url),
        ("REGSTACK_WEBHOOK_SECRET", SECRET),
    ])
    .await;
    let email = unique_email("hooked");
    s.post_json("/register", &json!({"email": email, "password": PASSWORD}))
        .await
        .assert_status(201);
    // The first delivery (verification_requested) is answered 500 and sent again.
    let token = s.wait_for_token(LinkKind::Verify).await;
    s.post_json("/verify", &json!({"token": token}))
        .await
        .assert_status(200);
    let session = s.login_ok(&email, PASSWORD).await;
    s.post_auth("/logout", &session).await.assert_status(200);
    let session = s.login_ok(&email, PASSWORD).await;
    s.delete_json_auth("/account", &session, &json!({"current_password": PASSWORD}))
        .await
        .assert_status(200);

    let expected = [
        "verification_requested",
        "user_verified",
        "user_logged_in",
        "user_logged_out",
        "user_logged_in",
        "user_deleted",
    ];
    let accepted = receiver.accepted(expected.len()).await;
    let seen = receiver.seen.lock().unwrap();
    assert_eq!(seen.forged, 0, "every delivery is signed with the secret");
    let (first_id, first_event, _) = seen.requests[0].clone();
    assert_eq!(first_event, "verification_requested");
    assert_eq!(
        accepted.iter().filter(|(id, _, _)| *id == first_id).count(),
        1,
        "the 500 was retried once, under the same delivery id: {:?}",
        seen.requests.iter().map(|r| (&r.0, &r.1)).collect::<Vec<_>>()
    );
    let mut names: Vec<&str> = accepted.iter().map(|(_, e, _)| e.as_str()).collect();
    let mut want = expected.to_vec();
    names.sort_unstable();
    want.sort_unstable();
    assert_eq!(names, want, "each event once");
    let mut ids: Vec<&str> = accepted.iter().map(|(id, _, _)| id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), expected.len(), "one id per event");

    for (_, event, body) in &accepted {
        assert_eq!(body["event"], event.as_str());
        match event.as_str() {
            "verification_requested" => {
                assert_eq!(body["data"]["email"], email.as_str());
                let redacted = body["data"]["url_without_token"].as_str().unwrap();
                assert!(redacted.contains("[REDACTED]") && !redacted.contains(&token), "{body}");
                assert!(body["data"]["url"].is_null(), "no live link by default: {body}");
                assert!(!body.to_string().contains(&token), "the token never leaves: {body}");
            }
            _ => assert_eq!(body["data"]["user"]["email"], email.as_str(), "{body}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_other_event_arrives_once_with_its_arguments() {
    let receiver = start_receiver().await;
    let s = Server::start(&[
        ("REGSTACK_WEBHOOK_URL", &receiver.url),
        ("REGSTACK_WEBHOOK_SECRET", SECRET),
        ("REGSTACK_REQUIRE_VERIFICATION", "false"),
        ("REGSTACK_ENABLE_SMS_2FA", "true"),
    ])
    .await;
    const PHONE: &str = "+15555550177";
    let email = unique_email("everything");
    s.post_json("/register", &json!({"email": email, "password": PASSWORD}))
        .await
        .assert_status(201);
    let session = s.login_ok(&email, PASSWORD).await;
    let new_password = "another horse battery staple";
    s.post_json_auth(
        "/change-password",
        &session,
        &json!({"current_password": PASSWORD, "new_password": new_password}),
    )
    .await
    .assert_status(200);
    s.post_json("/forgot-password", &json!({"email": email}))
        .await
        .assert_status(202);
    let reset = s.wait_for_token(LinkKind::ResetPassword).await;
    s.post_json("/reset-password", &json!({"token": reset, "new_password": PASSWORD}))
        .await
        .assert_status(200);
    let session = s.login_ok(&email, PASSWORD).await;
    let moved = unique_email("moved");
    let change = s.change_email_token(&session, &moved).await;
    s.post_json("/confirm-email-change", &json!({"token": change}))
        .await
        .assert_status(200);
    let session = s.login_ok(&moved, PASSWORD).await;
    let r = s
        .post_json_auth(
            "/phone/start",
            &session,
            &json!({"phone_number": PHONE, "current_password": PASSWORD}),
        )
        .await;
    r.assert_status(202);
    let (_, code) = s.wait_for_sms_code(regstack_conformance::SmsKind::PhoneSetup).await;
    s.post_json(
        "/phone/confirm",
        &json!({"pending_token": r.str("pending_token"), "code": code}),
    )
    .await
    .assert_status(200);
    let r = s.login(&moved, PASSWORD).await;
    r.assert_status(200);
    let (_, code) = s.wait_for_sms_code(regstack_conformance::SmsKind::LoginMfa).await;
    let done = s
        .post_json(
            "/login/mfa-confirm",
            &json!({"mfa_pending_token": r.str("mfa_pending_token"), "code": code}),
        )
        .await;
    done.assert_status(200);
    s.delete_json_auth(
        "/phone",
        &done.str("access_token"),
        &json!({"current_password": PASSWORD}),
    )
    .await
    .assert_status(200);

    // The first delivery (user_registered) was answered 500 and retried; count accepted ones.
    let expected = [
        ("user_registered", 1),
        ("user_logged_in", 4),
        ("password_changed", 1),
        ("password_reset_requested", 1),
        ("password_reset_completed", 1),
        ("email_change_requested", 1),
        ("email_changed", 1),
        ("phone_setup_started", 1),
        ("mfa_enabled", 1),
        ("mfa_login_started", 1),
        ("phone_setup_disabled", 1),
        ("mfa_disabled", 1),
    ];
    let total: usize = expected.iter().map(|(_, n)| n).sum();
    let accepted = receiver.accepted(total).await;
    assert_eq!(receiver.seen.lock().unwrap().forged, 0);
    for (name, n) in expected {
        let of: Vec<&Value> = accepted
            .iter()
            .filter(|(_, e, _)| e == name)
            .map(|(_, _, b)| b)
            .collect();
        assert_eq!(
            of.len(),
            n,
            "{name}: {:?}",
            accepted.iter().map(|a| &a.1).collect::<Vec<_>>()
        );
        let data = &of[0]["data"];
        assert!(data["user"]["id"].is_string(), "{name} carries the user: {data}");
        match name {
            "password_reset_requested" => {
                assert!(
                    data["url_without_token"].as_str().unwrap().contains("[REDACTED]"),
                    "{data}"
                );
                assert!(!of[0].to_string().contains(&reset), "{data}");
            }
            "email_change_requested" => {
                assert_eq!(data["new_email"], moved.as_str());
                assert!(!of[0].to_string().contains(&change), "{data}");
            }
            "email_changed" => {
                assert_eq!(
                    (data["previous_email"].as_str(), data["user"]["email"].as_str()),
                    (Some(email.as_str()), Some(moved.as_str()))
                );
            }
            "phone_setup_started" => assert_eq!(data["phone"], PHONE),
            _ => {}
        }
    }
}
