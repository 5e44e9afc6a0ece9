//! Router behaviour through `oneshot` on in-memory ports: the contract's statuses, bodies and
//! headers, without sockets, on native and wasm32 alike.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use regstack_core::config::Config;
use regstack_core::records::User;
use regstack_core::render::Renderer;
use regstack_core::testing::{oneshot, oneshot_request, test_ports, TestPorts};
use regstack_core::time::from_micros;
use regstack_core::Engine;
use serde_json::{json, Value};

struct Harness {
    app: Router,
    t: TestPorts,
}

const SECRET: &str = "0123456789abcdef0123456789abcdef";

async fn harness(mut config: Config) -> Harness {
    config.jwt_secret = SECRET.into();
    let t = test_ports();
    let engine = Engine::new(config, t.ports.clone(), Renderer::new(Default::default()))
        .await
        .unwrap();
    Harness {
        app: regstack_core::http::router(Arc::new(engine)),
        t,
    }
}

impl Harness {
    async fn raw(&self, req: Request<Body>) -> (StatusCode, HeaderMap, Value) {
        let a = oneshot_request(&self.app, req).await;
        (a.status, a.headers, a.json)
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, HeaderMap, Value) {
        let a = oneshot(&self.app, method, path, token, body.as_ref()).await;
        (a.status, a.headers, a.json)
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, HeaderMap, Value) {
        self.call(Method::POST, path, None, Some(body)).await
    }

    fn link_token(&self, to: &str, path: &str) -> String {
        self.t
            .mailer
            .last_token(to, path)
            .unwrap_or_else(|| panic!("no {path} link sent to {to}"))
    }

    async fn verified_user(&self, email: &str, password: &str) -> String {
        let (s, _, _) = self
            .post("/register", json!({"email": email, "password": password}))
            .await;
        assert_eq!(s, StatusCode::CREATED);
        let token = self.link_token(email, "/verify");
        let (s, _, _) = self.post("/verify", json!({"token": token})).await;
        assert_eq!(s, StatusCode::OK);
        self.login(email, password).await
    }

    async fn login(&self, email: &str, password: &str) -> String {
        let (s, _, b) = self.post("/login", json!({"email": email, "password": password})).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        b["access_token"].as_str().unwrap().to_string()
    }
}

macro_rules! router_test {
    ($name:ident, $body:block) => {
        #[regstack_macros::dual_test]
        async fn $name() $body
    };
}

router_test!(lifecycle_register_verify_login_me_logout, {
    let h = harness(Config::default()).await;
    let (s, _, b) = h
        .post(
            "/register",
            json!({"email": "Ann@Example.com", "password": "password123", "full_name": "Ann"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(b["status"], "pending_verification");
    assert_eq!(b["email"], "ann@example.com");
    assert!(b["expires_at"].as_str().unwrap().ends_with("+00:00"));
    // No user until /verify.
    let (s, _, _) = h
        .post("/login", json!({"email": "ann@example.com", "password": "password123"}))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let token = h.link_token("ann@example.com", "/verify");
    let (s, _, user) = h.post("/verify", json!({"token": token})).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(user["is_verified"], true);
    assert_eq!(user["full_name"], "Ann");
    assert_eq!(user.as_object().unwrap().len(), 13, "0.9.3's twelve keys and the role");
    assert!(user.get("hashed_password").is_none());
    let (s, _, b) = h.post("/verify", json!({"token": token})).await;
    assert_eq!(
        (s, b["detail"].as_str().unwrap()),
        (
            StatusCode::BAD_REQUEST,
            "Verification link is invalid or has expired. Request a new one."
        )
    );
    let access = h.login("ANN@example.com", "password123").await;
    let (s, _, me) = h.call(Method::GET, "/me", Some(&access), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(me["email"], "ann@example.com");
    assert!(me["last_login"].as_str().unwrap().ends_with('Z'));
    let (s, _, b) = h.call(Method::POST, "/logout", Some(&access), None).await;
    assert_eq!((s, b), (StatusCode::OK, json!({"message": "Logged out."})));
    let (s, headers, b) = h.call(Method::GET, "/me", Some(&access), None).await;
    assert_eq!(
        (s, b),
        (StatusCode::UNAUTHORIZED, json!({"detail": "Token has been revoked."}))
    );
    assert!(headers.get(header::WWW_AUTHENTICATE).is_none());
    assert_eq!(
        h.t.events.names(),
        [
            "verification_requested",
            "user_verified",
            "user_logged_in",
            "user_logged_out"
        ]
    );
});

router_test!(register_without_verification_and_conflicts, {
    let h = harness(Config {
        require_verification: false,
        ..Config::default()
    })
    .await;
    let (s, _, b) = h
        .post(
            "/register",
            json!({"email": "bo@example.com", "password": "password123"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(b["is_verified"], true);
    let (s, _, b) = h
        .post(
            "/register",
            json!({"email": "BO@example.com", "password": "password123"}),
        )
        .await;
    assert_eq!(
        (s, b),
        (
            StatusCode::CONFLICT,
            json!({"detail": "An account with that email already exists."})
        )
    );
    assert_eq!(h.t.events.names(), ["user_registered"]);
    let h = harness(Config {
        allow_registration: false,
        ..Config::default()
    })
    .await;
    let (s, _, b) = h
        .post(
            "/register",
            json!({"email": "bo@example.com", "password": "password123"}),
        )
        .await;
    assert_eq!(
        (s, b),
        (StatusCode::FORBIDDEN, json!({"detail": "Registration is disabled."}))
    );
});

router_test!(reregister_replaces_the_pending_row_and_resend_is_neutral, {
    let h = harness(Config::default()).await;
    h.post(
        "/register",
        json!({"email": "cy@example.com", "password": "password123"}),
    )
    .await;
    let first = h.link_token("cy@example.com", "/verify");
    h.post(
        "/register",
        json!({"email": "cy@example.com", "password": "password456"}),
    )
    .await;
    let second = h.link_token("cy@example.com", "/verify");
    assert_ne!(first, second);
    let (s, _, _) = h.post("/verify", json!({"token": first})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let ack = json!({"message": "If a pending registration exists, a new email has been sent."});
    for email in ["cy@example.com", "nobody@example.com"] {
        let (s, _, b) = h.post("/resend-verification", json!({"email": email})).await;
        assert_eq!((s, b), (StatusCode::ACCEPTED, ack.clone()));
    }
    let third = h.link_token("cy@example.com", "/verify");
    assert_ne!(third, second);
    assert_eq!(h.t.mailer.sent.lock().unwrap().len(), 3);
    let (s, _, _) = h.post("/verify", json!({"token": third})).await;
    assert_eq!(s, StatusCode::OK);
    h.login("cy@example.com", "password456").await;
    // Resend for an existing user sends nothing.
    h.post("/resend-verification", json!({"email": "cy@example.com"})).await;
    assert_eq!(h.t.mailer.sent.lock().unwrap().len(), 3);
});

router_test!(lockout_counts_down_then_locks, {
    let h = harness(Config::default()).await;
    h.verified_user("dee@example.com", "password123").await;
    let mut details = Vec::new();
    for _ in 0..5 {
        let (s, _, b) = h
            .post(
                "/login",
                json!({"email": "dee@example.com", "password": "wrong-password"}),
            )
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        details.push(b["detail"].as_str().unwrap().to_string());
    }
    assert_eq!(
        details,
        [
            "Invalid email or password. 4 attempt(s) remaining.",
            "Invalid email or password. 3 attempt(s) remaining.",
            "Invalid email or password. 2 attempt(s) remaining.",
            "Invalid email or password. 1 attempt(s) remaining.",
            "Invalid email or password.",
        ]
    );
    let (s, headers, b) = h
        .post("/login", json!({"email": "dee@example.com", "password": "password123"}))
        .await;
    assert_eq!(
        (s, b),
        (
            StatusCode::TOO_MANY_REQUESTS,
            json!({"detail": "Too many failed attempts. Try again in 900 seconds."})
        )
    );
    assert_eq!(headers[header::RETRY_AFTER], "900");
    h.t.clock.advance_seconds(901);
    h.login("dee@example.com", "password123").await;
    let (_, _, b) = h
        .post(
            "/login",
            json!({"email": "dee@example.com", "password": "wrong-password"}),
        )
        .await;
    assert_eq!(
        b["detail"], "Invalid email or password. 4 attempt(s) remaining.",
        "success cleared the failures"
    );
    // Unknown emails are counted too.
    for _ in 0..5 {
        h.post("/login", json!({"email": "ghost@example.com", "password": "whatever1"}))
            .await;
    }
    let (s, _, _) = h
        .post("/login", json!({"email": "ghost@example.com", "password": "whatever1"}))
        .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
});

router_test!(disabled_and_unverified_accounts_after_a_correct_password, {
    let h = harness(Config::default()).await;
    let now = from_micros(1_767_268_800_000_000);
    let hash = regstack_core::password::hash("password123", &[1; 16], regstack_core::testing::CHEAP_HASH).unwrap();
    let mut u = User::new("u-disabled".into(), "off@example.com".into(), Some(hash.clone()), now);
    u.is_active = false;
    u.is_verified = true;
    regstack_core::ports::UserStore::create(&h.t.store, &u).await.unwrap();
    let (s, _, b) = h
        .post("/login", json!({"email": "off@example.com", "password": "password123"}))
        .await;
    assert_eq!(
        (s, b),
        (StatusCode::FORBIDDEN, json!({"detail": "Account is disabled."}))
    );
    let u = User::new("u-unverified".into(), "new@example.com".into(), Some(hash), now);
    regstack_core::ports::UserStore::create(&h.t.store, &u).await.unwrap();
    let (s, _, b) = h
        .post("/login", json!({"email": "new@example.com", "password": "password123"}))
        .await;
    assert_eq!(
        (s, b),
        (
            StatusCode::FORBIDDEN,
            json!({"detail": "Email address has not been verified."})
        )
    );
    let (_, _, b) = h
        .post("/login", json!({"email": "new@example.com", "password": "wrong-pass"}))
        .await;
    assert_eq!(
        b["detail"], "Invalid email or password. 3 attempt(s) remaining.",
        "the 403 was counted"
    );
});

router_test!(auth_failures_and_auth_before_body, {
    let h = harness(Config::default()).await;
    let (s, headers, b) = h.call(Method::GET, "/me", None, None).await;
    assert_eq!(
        (s, b),
        (StatusCode::UNAUTHORIZED, json!({"detail": "Authentication required."}))
    );
    assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
    let (s, headers, b) = h.call(Method::GET, "/me", Some("not.a.token"), None).await;
    assert_eq!(
        (s, b),
        (StatusCode::UNAUTHORIZED, json!({"detail": "Invalid or expired token."}))
    );
    assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
    let req = Request::builder()
        .uri("/me")
        .header(header::AUTHORIZATION, "Basic abc")
        .body(Body::empty())
        .unwrap();
    let (s, _, b) = h.raw(req).await;
    assert_eq!(
        (s, b["detail"].as_str().unwrap()),
        (StatusCode::UNAUTHORIZED, "Authentication required.")
    );
    for (m, p) in [
        (Method::POST, "/change-password"),
        (Method::DELETE, "/account"),
        (Method::POST, "/change-email"),
    ] {
        let (s, _, _) = h.call(m, p, None, Some(json!({"junk": 1}))).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{p}");
    }
});

router_test!(python_session_token_is_accepted, {
    let h = harness(Config::default()).await;
    let now = from_micros(1_767_268_800_000_000);
    let mut u = User::new("user-1".into(), "py@example.com".into(), None, now);
    u.is_verified = true;
    regstack_core::ports::UserStore::create(&h.t.store, &u).await.unwrap();
    let token = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VyLTEiLCJqdGkiOiJfSDdwSF9RaHB2VldmZEJvcW1SWktBIiwiaWF0IjoxNzY3MjY4ODAwLjEyMzQ1NiwiZXhwIjoxNzY3Mjc2MDAwLCJwdXJwb3NlIjoic2Vzc2lvbiJ9.AfgYzUmOKbWUXMWkCGm4eSEmsR22_yfpBw2WTXRRt8s";
    let (s, _, me) = h.call(Method::GET, "/me", Some(token), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(me["id"], "user-1");
    // A cutoff equal to iat revokes it.
    let patch = regstack_core::records::UserPatch {
        tokens_invalidated_after: Some(from_micros(1_767_268_800_123_456)),
        ..Default::default()
    };
    regstack_core::ports::UserStore::update(&h.t.store, "user-1", &patch, now)
        .await
        .unwrap();
    let (s, _, b) = h.call(Method::GET, "/me", Some(token), None).await;
    assert_eq!(
        (s, b["detail"].as_str().unwrap()),
        (
            StatusCode::UNAUTHORIZED,
            "Session was invalidated; please sign in again."
        )
    );
});

router_test!(account_changes_revoke_and_report_the_new_state, {
    let h = harness(Config::default()).await;
    let access = h.verified_user("eve@example.com", "password123").await;
    let (s, _, b) = h
        .call(Method::PATCH, "/me", Some(&access), Some(json!({"full_name": "Eve"})))
        .await;
    assert_eq!((s, b["full_name"].clone()), (StatusCode::OK, json!("Eve")));
    let (_, _, b) = h.call(Method::PATCH, "/me", Some(&access), Some(json!({}))).await;
    assert_eq!(b["full_name"], "Eve", "an absent field is left alone");
    let (_, _, b) = h
        .call(Method::PATCH, "/me", Some(&access), Some(json!({"full_name": null})))
        .await;
    assert_eq!(b["full_name"], Value::Null, "an explicit null clears it");
    let cp = |cur: &str, new: &str| json!({"current_password": cur, "new_password": new});
    let (s, _, b) = h
        .call(
            Method::POST,
            "/change-password",
            Some(&access),
            Some(cp("nope-nope", "password456")),
        )
        .await;
    assert_eq!(
        (s, b["detail"].as_str().unwrap()),
        (StatusCode::BAD_REQUEST, "Current password is incorrect.")
    );
    let (s, _, b) = h
        .call(
            Method::POST,
            "/change-password",
            Some(&access),
            Some(cp("password123", "password123")),
        )
        .await;
    assert_eq!(
        (s, b["detail"].as_str().unwrap()),
        (
            StatusCode::BAD_REQUEST,
            "New password must differ from the current password."
        )
    );
    let (s, _, b) = h
        .call(
            Method::POST,
            "/change-password",
            Some(&access),
            Some(cp("password123", "password456")),
        )
        .await;
    assert_eq!(
        (s, b),
        (
            StatusCode::OK,
            json!({"message": "Password changed. Existing sessions have been signed out."})
        )
    );
    let (s, _, b) = h.call(Method::GET, "/me", Some(&access), None).await;
    assert_eq!(
        (s, b["detail"].as_str().unwrap()),
        (
            StatusCode::UNAUTHORIZED,
            "Session was invalidated; please sign in again."
        )
    );
    let access = h.login("eve@example.com", "password456").await;
    // Email change: same address, then a real change, then replay.
    let ce = |e: &str| json!({"new_email": e, "current_password": "password456"});
    let (s, _, b) = h
        .call(
            Method::POST,
            "/change-email",
            Some(&access),
            Some(ce("EVE@example.com")),
        )
        .await;
    assert_eq!(
        (s, b["detail"].as_str().unwrap()),
        (StatusCode::BAD_REQUEST, "New email is the same as the current email.")
    );
    let (s, _, b) = h
        .call(
            Method::POST,
            "/change-email",
            Some(&access),
            Some(ce("eve2@example.com")),
        )
        .await;
    assert_eq!(
        (s, b["message"].as_str().unwrap()),
        (
            StatusCode::ACCEPTED,
            "If the address is available, a confirmation link has been sent. Check your email."
        )
    );
    let token = h.link_token("eve2@example.com", "/confirm-email-change");
    let (s, _, user) = h.post("/confirm-email-change", json!({"token": token})).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(user["email"], "eve2@example.com");
    assert!(
        user["tokens_invalidated_after"].is_string(),
        "the response shows the new cutoff"
    );
    let (s, _, b) = h.post("/confirm-email-change", json!({"token": token})).await;
    assert_eq!(
        (s, b["detail"].as_str().unwrap()),
        (
            StatusCode::BAD_REQUEST,
            "Email-change link is invalid or has expired. Request a new one."
        )
    );
    let access = h.login("eve2@example.com", "password456").await;
    // Delete: body required, then wrong password, then done.
    let (s, _, b) = h.call(Method::DELETE, "/account", Some(&access), None).await;
    assert_eq!(
        (s, b),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"detail": [{"type": "missing", "loc": ["body"], "msg": "Field required", "input": null}]})
        )
    );
    let (s, _, _) = h
        .call(
            Method::DELETE,
            "/account",
            Some(&access),
            Some(json!({"current_password": "wrong-one"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _, b) = h
        .call(
            Method::DELETE,
            "/account",
            Some(&access),
            Some(json!({"current_password": "password456"})),
        )
        .await;
    assert_eq!((s, b), (StatusCode::OK, json!({"message": "Account deleted."})));
    let (s, _, b) = h.call(Method::GET, "/me", Some(&access), None).await;
    assert_eq!(
        (s, b["detail"].as_str().unwrap()),
        (StatusCode::UNAUTHORIZED, "User no longer active.")
    );
    let names = h.t.events.names();
    assert!(
        names.ends_with(&[
            "email_change_requested",
            "email_changed",
            "user_logged_in",
            "user_deleted"
        ]),
        "{names:?}"
    );
});

router_test!(change_email_to_a_taken_address_answers_the_same_and_sends_nothing, {
    let h = harness(Config::default()).await;
    h.verified_user("taken@example.com", "password123").await;
    let access = h.verified_user("fay@example.com", "password123").await;
    let before = h.t.mailer.sent.lock().unwrap().len();
    let (s, _, b) = h
        .call(
            Method::POST,
            "/change-email",
            Some(&access),
            Some(json!({"new_email": "Taken@example.com", "current_password": "password123"})),
        )
        .await;
    assert_eq!(
        (s, b["message"].as_str().unwrap()),
        (
            StatusCode::ACCEPTED,
            "If the address is available, a confirmation link has been sent. Check your email."
        )
    );
    assert_eq!(h.t.mailer.sent.lock().unwrap().len(), before);
});

router_test!(password_reset_is_single_use_and_neutral, {
    let h = harness(Config::default()).await;
    let old = h.verified_user("gus@example.com", "password123").await;
    let ack =
        json!({"message": "If the address matches an active account, a reset link has been sent. Check your email."});
    for e in ["gus@example.com", "unknown@example.com"] {
        let (s, _, b) = h.post("/forgot-password", json!({"email": e})).await;
        assert_eq!((s, b), (StatusCode::ACCEPTED, ack.clone()));
    }
    let token = h.link_token("gus@example.com", "/reset-password");
    let (s, _, b) = h
        .post(
            "/reset-password",
            json!({"token": token, "new_password": "password789"}),
        )
        .await;
    assert_eq!(
        (s, b),
        (
            StatusCode::OK,
            json!({"message": "Password has been reset. Please sign in."})
        )
    );
    let (s, _, b) = h
        .post(
            "/reset-password",
            json!({"token": token, "new_password": "password000"}),
        )
        .await;
    assert_eq!(
        (s, b["detail"].as_str().unwrap()),
        (
            StatusCode::BAD_REQUEST,
            "Reset link is invalid or has expired. Request a new one."
        )
    );
    let (s, _, _) = h.call(Method::GET, "/me", Some(&old), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    h.login("gus@example.com", "password789").await;
    // A session token is not a reset token.
    let (s, _, _) = h
        .post("/reset-password", json!({"token": old, "new_password": "password000"}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
});

router_test!(disabled_groups_are_not_mounted, {
    let h = harness(Config {
        enable_password_reset: false,
        enable_account_deletion: false,
        ..Config::default()
    })
    .await;
    let (s, _, b) = h.post("/forgot-password", json!({"email": "a@example.com"})).await;
    assert_eq!((s, b), (StatusCode::NOT_FOUND, json!({"detail": "Not Found"})));
    let access = h.verified_user("hal@example.com", "password123").await;
    let (s, _, b) = h
        .call(
            Method::DELETE,
            "/account",
            Some(&access),
            Some(json!({"current_password": "password123"})),
        )
        .await;
    assert_eq!(
        (s, b),
        (
            StatusCode::NOT_FOUND,
            json!({"detail": "Account deletion is disabled for this application."})
        )
    );
});

router_test!(routing_404_405_and_trailing_slash, {
    let h = harness(Config::default()).await;
    let (s, _, b) = h.call(Method::GET, "/nope", None, None).await;
    assert_eq!((s, b), (StatusCode::NOT_FOUND, json!({"detail": "Not Found"})));
    let (s, headers, b) = h.call(Method::GET, "/login", None, None).await;
    assert_eq!(
        (s, b),
        (StatusCode::METHOD_NOT_ALLOWED, json!({"detail": "Method Not Allowed"}))
    );
    assert!(headers[header::ALLOW].to_str().unwrap().contains("POST"));
    let (s, headers, _) = h.call(Method::POST, "/login/?x=1", None, None).await;
    assert_eq!(s, StatusCode::TEMPORARY_REDIRECT);
    // Relative, so the client keeps its scheme and host (never `http://{Host}`).
    assert_eq!(headers[header::LOCATION], "/login?x=1");
});

router_test!(validation_errors_have_pydantic_shapes, {
    let h = harness(Config::default()).await;
    let (s, _, b) = h
        .post("/login", json!({"email": "x@nodot", "password": 5, "extra": true}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let kinds: Vec<&str> = b["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["value_error", "string_type", "extra_forbidden"]);
    assert_eq!(b["detail"][2]["loc"], json!(["body", "extra"]));
    let (_, _, b) = h.post("/login", json!({"email": "a@example.com"})).await;
    assert_eq!(
        b["detail"][0],
        json!({"type": "missing", "loc": ["body", "password"], "msg": "Field required", "input": {"email": "a@example.com"}})
    );
    let (_, _, b) = h
        .post("/login", json!({"email": "a@example.com", "password": "x"}))
        .await;
    assert_eq!(
        b["detail"][0],
        json!({"type": "string_too_short", "loc": ["body", "password"], "msg": "String should have at least 8 characters", "input": "[redacted]", "ctx": {"min_length": 8}})
    );
    let (_, _, b) = h.post("/login", json!([1, 2])).await;
    assert_eq!(b["detail"][0]["type"], "model_attributes_type");
    let req = Request::post("/login")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{\"email\": "))
        .unwrap();
    let (s, _, b) = h.raw(req).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(b["detail"][0]["type"], "json_invalid");
    assert_eq!(b["detail"][0]["loc"], json!(["body", 10]));
    let req = Request::post("/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from("email=a"))
        .unwrap();
    let (_, _, b) = h.raw(req).await;
    assert_eq!(b["detail"][0]["type"], "model_attributes_type");
    let req = Request::post("/login")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(vec![0xff, 0xfe]))
        .unwrap();
    let (s, _, _) = h.raw(req).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let big = format!("{{\"email\": \"{}\"}}", "a".repeat(70_000));
    let req = Request::post("/login")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(big))
        .unwrap();
    let (s, _, _) = h.raw(req).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    let (_, _, b) = h
        .post(
            "/register",
            json!({"email": "a@example.com", "password": "p".repeat(129), "full_name": "n".repeat(201)}),
        )
        .await;
    let kinds: Vec<&str> = b["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["string_too_long", "string_too_long"]);
    let (s, _, b) = h
        .post(
            "/register",
            json!({"email": "nul@example.com", "password": "password123", "full_name": "a\u{0}b"}),
        )
        .await;
    assert_eq!(
        (s, b["detail"][0]["type"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("value_error"))
    );
    assert!(
        h.t.mailer.sent.lock().unwrap().is_empty(),
        "nothing was written or sent"
    );
});

router_test!(per_ip_rate_limit_counts_exactly, {
    let h = harness(Config {
        login_rate_limit: Some("3/minute".into()),
        ..Config::default()
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let (s, headers, b) = h
            .post("/login", json!({"email": "rl@example.com", "password": "whatever1"}))
            .await;
        if s == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(b, json!({"detail": "Rate limit exceeded: 3 per 1 minute"}));
            let retry: u64 = headers[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
            assert!((1..=60).contains(&retry));
        }
        statuses.push(s.as_u16());
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429]);
    // Other routes have their own (absent) limit.
    let (s, _, _) = h.post("/forgot-password", json!({"email": "rl@example.com"})).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    h.t.clock.advance_seconds(60);
    let (s, _, _) = h
        .post("/login", json!({"email": "rl@example.com", "password": "whatever1"}))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "a new window admits again");
});

router_test!(rate_limit_disabled_turns_the_lockout_off, {
    let h = harness(Config {
        rate_limit_disabled: true,
        ..Config::default()
    })
    .await;
    for _ in 0..8 {
        let (s, _, b) = h
            .post("/login", json!({"email": "z@example.com", "password": "whatever1"}))
            .await;
        assert_eq!(
            (s, b),
            (
                StatusCode::UNAUTHORIZED,
                json!({"detail": "Invalid email or password."})
            )
        );
    }
});

router_test!(memory_stores_pass_the_port_contract, {
    regstack_core::testing::contract(regstack_core::testing::memory_stores(), 8).await;
});

impl Harness {
    fn last_sms_code(&self, to: &str, phrase: &str) -> String {
        let sent = self.t.sms.sent.lock().unwrap();
        let m = sent
            .iter()
            .rev()
            .find(|m| m.to == to && m.body.contains(phrase))
            .expect("an sms was sent");
        let after = m.body.split(phrase).nth(1).unwrap().trim_start();
        after.chars().take_while(|c| c.is_ascii_digit()).collect()
    }
}

router_test!(sms_second_factor_end_to_end, {
    let h = harness(Config {
        enable_sms_2fa: true,
        app_name: "Demo".into(),
        ..Config::default()
    })
    .await;
    let access = h.verified_user("sms@example.com", "password123").await;
    let start = |phone: &str, pw: &str| json!({"phone_number": phone, "current_password": pw});
    // E.164 is checked before the password.
    let (s, _, b) = h
        .call(
            Method::POST,
            "/phone/start",
            Some(&access),
            Some(start("0123456", "wrong-pw")),
        )
        .await;
    assert_eq!(
        (s, b["detail"].as_str().unwrap()),
        (
            StatusCode::BAD_REQUEST,
            "Phone number must be in E.164 format (e.g. +14155552671)."
        )
    );
    let (s, _, b) = h
        .call(
            Method::POST,
            "/phone/start",
            Some(&access),
            Some(start("+15555550123", "wrong-pw")),
        )
        .await;
    assert_eq!(
        (s, b["detail"].as_str().unwrap()),
        (StatusCode::BAD_REQUEST, "Current password is incorrect.")
    );
    let (s, _, b) = h
        .call(
            Method::POST,
            "/phone/start",
            Some(&access),
            Some(start("+15555550123", "password123")),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    assert_eq!(
        (b["status"].as_str(), b["expires_in"].as_i64()),
        (Some("code_sent"), Some(600))
    );
    let pending = b["pending_token"].as_str().unwrap().to_string();
    let body = h.t.sms.sent.lock().unwrap().last().unwrap().body.clone();
    assert!(
        body.starts_with("Demo verification code: ") && body.ends_with(". Expires in 5 minutes."),
        "{body}"
    );
    let code = h.last_sms_code("+15555550123", "verification code:");
    assert_eq!(code.len(), 6);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (s, _, b) = h
        .post("/phone/confirm", json!({"pending_token": pending, "code": wrong}))
        .await;
    assert_eq!(
        (s, b["detail"].as_str().unwrap()),
        (StatusCode::BAD_REQUEST, "Wrong code; 4 attempts remaining.")
    );
    let (s, _, user) = h
        .post("/phone/confirm", json!({"pending_token": pending, "code": code}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (user["phone_number"].as_str(), user["is_mfa_enabled"].as_bool()),
        (Some("+15555550123"), Some(true))
    );
    let (_, _, b) = h
        .post("/phone/confirm", json!({"pending_token": pending, "code": code}))
        .await;
    assert_eq!(b["detail"], "No pending verification code \u{2014} request a new one.");

    // Login now needs the code.
    let (s, _, b) = h
        .post("/login", json!({"email": "sms@example.com", "password": "password123"}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (b["status"].as_str(), b["delivery"].as_str(), b["expires_in"].as_i64()),
        (Some("mfa_required"), Some("sms"), Some(600))
    );
    assert!(b.get("access_token").is_none());
    let mfa = b["mfa_pending_token"].as_str().unwrap().to_string();
    let sms = h.t.sms.sent.lock().unwrap().last().unwrap().body.clone();
    assert!(
        sms.ends_with("Expires in 5 minutes. If you didn't try to sign in, ignore this message."),
        "{sms}"
    );
    let code = h.last_sms_code("+15555550123", "sign-in code:");
    let (s, _, b) = h
        .post("/login/mfa-confirm", json!({"mfa_pending_token": access, "code": code}))
        .await;
    assert_eq!(
        (s, b["detail"].as_str().unwrap()),
        (
            StatusCode::BAD_REQUEST,
            "Sign-in session is invalid or has expired. Start over from sign-in."
        )
    );
    let (s, _, b) = h
        .post("/login/mfa-confirm", json!({"mfa_pending_token": mfa, "code": code}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let session = b["access_token"].as_str().unwrap().to_string();
    let (s, _, _) = h.call(Method::GET, "/me", Some(&session), None).await;
    assert_eq!(s, StatusCode::OK);

    // Disable.
    let (s, _, b) = h
        .call(
            Method::DELETE,
            "/phone",
            Some(&session),
            Some(json!({"current_password": "password123"})),
        )
        .await;
    assert_eq!((s, b), (StatusCode::OK, json!({"message": "SMS 2FA disabled."})));
    let token = h.login("sms@example.com", "password123").await;
    assert!(!token.is_empty());
    let names = h.t.events.names();
    for e in [
        "phone_setup_started",
        "mfa_enabled",
        "mfa_login_started",
        "phone_setup_disabled",
        "mfa_disabled",
    ] {
        assert!(names.contains(&e), "{e} missing from {names:?}");
    }
    let seen = h.t.events.seen.lock().unwrap();
    assert!(!format!("{seen:?}").contains(&code), "hooks never see a code");
});

router_test!(sms_code_outcomes_expired_and_locked, {
    let h = harness(Config {
        enable_sms_2fa: true,
        sms_code_max_attempts: 2,
        ..Config::default()
    })
    .await;
    let access = h.verified_user("lock@example.com", "password123").await;
    let start = json!({"phone_number": "+447700900123", "current_password": "password123"});
    let (_, _, b) = h
        .call(Method::POST, "/phone/start", Some(&access), Some(start.clone()))
        .await;
    let pending = b["pending_token"].as_str().unwrap().to_string();
    let code = h.last_sms_code("+447700900123", "verification code:");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (_, _, b) = h
        .post("/phone/confirm", json!({"pending_token": pending, "code": wrong}))
        .await;
    assert_eq!(b["detail"], "Wrong code; 1 attempts remaining.");
    let (_, _, b) = h
        .post("/phone/confirm", json!({"pending_token": pending, "code": wrong}))
        .await;
    assert_eq!(b["detail"], "Too many wrong attempts \u{2014} request a new code.");
    let (_, _, b) = h
        .post("/phone/confirm", json!({"pending_token": pending, "code": code}))
        .await;
    assert_eq!(b["detail"], "No pending verification code \u{2014} request a new one.");
    // A new code, then too late.
    let (_, _, b) = h.call(Method::POST, "/phone/start", Some(&access), Some(start)).await;
    let pending = b["pending_token"].as_str().unwrap().to_string();
    let code = h.last_sms_code("+447700900123", "verification code:");
    h.t.clock.advance_seconds(301);
    let (_, _, b) = h
        .post("/phone/confirm", json!({"pending_token": pending, "code": code}))
        .await;
    assert_eq!(b["detail"], "Verification code has expired. Request a new one.");
    let (s, _, b) = h
        .post("/phone/confirm", json!({"pending_token": pending, "code": "12"}))
        .await;
    assert_eq!(
        (s, b["detail"][0]["type"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("string_too_short"))
    );
});

router_test!(phone_routes_follow_the_flag_and_mfa_confirm_is_always_mounted, {
    let h = harness(Config::default()).await;
    let (s, _, _) = h
        .post("/phone/confirm", json!({"pending_token": "x", "code": "123456"}))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, b) = h
        .post(
            "/login/mfa-confirm",
            json!({"mfa_pending_token": "x", "code": "123456"}),
        )
        .await;
    assert_eq!(
        (s, b["detail"].as_str().unwrap()),
        (
            StatusCode::BAD_REQUEST,
            "Sign-in session is invalid or has expired. Start over from sign-in."
        )
    );
    let h = harness(Config {
        enable_sms_2fa: true,
        ..Config::default()
    })
    .await;
    let (s, _, _) = h
        .call(Method::POST, "/phone/start", None, Some(json!({"bad": true})))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "auth before body");
});

router_test!(no_route_answers_500_to_a_valid_session, {
    // The guard hands each bearer route its session (`SignedIn`); a route that took one
    // without the table marking it authenticated would answer 500. Every mounted route is
    // called with a valid session and an empty body; each runs on its own account, since
    // some (logout, deleting the account) end the session they are given.
    let config = Config {
        enable_admin_router: true,
        enable_sms_2fa: true,
        ..Config::default()
    };
    let h = harness(config.clone()).await;
    let mut reached = 0;
    for (i, endpoint) in regstack_core::routes::Endpoint::mounted(&config).enumerate() {
        let route = endpoint.route();
        let token = h.verified_user(&format!("bearer{i}@example.com"), "password123").await;
        let path: String = route
            .path
            .split('/')
            .map(|part| if part.starts_with('{') { "x" } else { part })
            .collect::<Vec<_>>()
            .join("/");
        let body = (route.method != Method::GET).then(|| json!({}));
        let (s, _, b) = h.call(route.method.clone(), &path, Some(&token), body).await;
        assert_ne!(s, StatusCode::INTERNAL_SERVER_ERROR, "{} {path}: {b}", route.method);
        if route.access == regstack_core::routes::Access::Bearer {
            assert_ne!(
                s,
                StatusCode::UNAUTHORIZED,
                "{} {path} refused a valid session: {b}",
                route.method
            );
            reached += 1;
        }
    }
    assert!(reached >= 8, "only {reached} bearer routes were called");
});
