//! Registration, verification and resend-verification (docs/wire.md, "Registration and verification", "Response shapes", "Decision 7 (11)").

use std::time::Duration;

use regstack_conformance::{
    assert_user_public, is_isoformat_utc, json, msg, now_secs, parse_utc, unique_email, LinkKind, Server, PASSWORD,
    USER_PUBLIC_KEYS,
};

const NO_LINK_WINDOW: Duration = Duration::from_millis(1000);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn register_returns_pending_response() {
    let s = Server::start(&[]).await;
    let email = unique_email("pending");
    let mixed = format!("Mixed.{}", email.replace("example.com", "EXAMPLE.Com"));
    let r = s
        .post_json("/register", &json!({"email": mixed, "password": PASSWORD}))
        .await;
    r.assert_status(201);
    let obj = r.json.as_object().unwrap_or_else(|| panic!("not an object: {r}"));
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["email", "expires_at", "status"], "PendingResponse keys: {r}");
    assert_eq!(r.json["status"], "pending_verification");
    assert_eq!(
        r.json["email"],
        mixed.to_lowercase().as_str(),
        "docs/wire.md, Decision 7 (11): the email is lower-cased: {r}"
    );
    let expires_at = r.str("expires_at");
    assert!(
        is_isoformat_utc(&expires_at),
        "expires_at uses isoformat() with +00:00: {expires_at:?}"
    );
    let expires = parse_utc(&expires_at).expect("parse expires_at");
    let expected = now_secs() + 86_400.0;
    assert!(
        (expires - expected).abs() < 120.0,
        "expires_at is now + verification_token_ttl_seconds (86400): {expires_at}"
    );

    // The link verifies the lower-cased address.
    let token = s.wait_for_token(LinkKind::Verify).await;
    let v = s.post_json("/verify", &json!({"token": token})).await;
    v.assert_status(200);
    assert_user_public(&v.json);
    assert_eq!(v.json["email"], mixed.to_lowercase().as_str());
    assert_eq!(v.json["is_verified"], true);
    assert_eq!(v.json["is_active"], true);
    assert_eq!(v.json["is_superuser"], false);
    assert_eq!(v.json["is_mfa_enabled"], false);
    assert_eq!(v.json["full_name"], json!(null));
    assert_eq!(
        v.json["last_login"],
        json!(null),
        "no session is issued by /verify: {v}"
    );
    s.login_ok(&mixed, PASSWORD).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn re_register_while_pending_replaces_the_pending_row() {
    let s = Server::start(&[]).await;
    let email = unique_email("replace");
    s.post_json("/register", &json!({"email": email, "password": "first-password"}))
        .await
        .assert_status(201);
    let old = s.wait_for_token(LinkKind::Verify).await;

    // Same address in another case: still the same pending registration (docs/wire.md, "Decision 7 (11)").
    let r = s
        .post_json(
            "/register",
            &json!({"email": email.to_uppercase(), "password": "second-password"}),
        )
        .await;
    r.assert_status(201);
    assert_eq!(r.json["status"], "pending_verification");
    assert_eq!(r.json["email"], email.as_str());
    let new = s.wait_for_token(LinkKind::Verify).await;
    assert_ne!(old, new, "re-register issues a new token");

    s.post_json("/verify", &json!({"token": old}))
        .await
        .assert_detail(400, msg::BAD_VERIFY_LINK);
    let v = s.post_json("/verify", &json!({"token": new})).await;
    v.assert_status(200);
    assert_eq!(v.json["email"], email.as_str());

    // The second registration's password is the one stored.
    s.login(&email, "first-password")
        .await
        .assert_detail(401, &format!("{} 4 attempt(s) remaining.", msg::BAD_LOGIN));
    s.login_ok(&email, "second-password").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn register_existing_user_conflicts_in_any_case() {
    let s = Server::start(&[]).await;
    let email = unique_email("exists");
    s.register_verified(&email, PASSWORD).await;
    s.post_json("/register", &json!({"email": email, "password": "other-password"}))
        .await
        .assert_detail(409, msg::EMAIL_EXISTS);
    s.post_json(
        "/register",
        &json!({"email": email.to_uppercase(), "password": "other-password"}),
    )
    .await
    .assert_detail(409, msg::EMAIL_EXISTS);
    // Nothing was replaced: the original password still works.
    s.login_ok(&email, PASSWORD).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn register_without_verification_returns_user_public() {
    let s = Server::start(&[("REGSTACK_REQUIRE_VERIFICATION", "false")]).await;
    let email = unique_email("direct");
    let r = s
        .post_json(
            "/register",
            &json!({"email": email.to_uppercase(), "password": PASSWORD, "full_name": "Dee Rect"}),
        )
        .await;
    r.assert_status(201);
    assert_user_public(&r.json);
    let keys: Vec<&str> = r
        .json
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    assert_eq!(keys.len(), USER_PUBLIC_KEYS.len(), "{r}");
    assert!(!r.text.contains("argon2"), "the password hash leaks: {r}");
    assert_eq!(r.json["email"], email.as_str());
    assert_eq!(r.json["is_verified"], true);
    assert_eq!(r.json["is_active"], true);
    assert_eq!(r.json["is_superuser"], false);
    assert_eq!(r.json["is_mfa_enabled"], false);
    assert_eq!(r.json["full_name"], "Dee Rect");
    assert_eq!(r.json["phone_number"], json!(null));
    assert_eq!(r.json["last_login"], json!(null));
    assert_eq!(r.json["tokens_invalidated_after"], json!(null));
    s.expect_no_link(LinkKind::Verify, NO_LINK_WINDOW).await;

    let token = s.login_ok(&email, PASSWORD).await;
    let me = s.me(&token).await;
    assert_eq!(me["id"], r.json["id"]);
    s.post_json("/register", &json!({"email": email, "password": PASSWORD}))
        .await
        .assert_detail(409, msg::EMAIL_EXISTS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn registration_disabled_is_forbidden() {
    let s = Server::start(&[("REGSTACK_ALLOW_REGISTRATION", "false")]).await;
    let email = unique_email("closed");
    s.post_json("/register", &json!({"email": email, "password": PASSWORD}))
        .await
        .assert_detail(403, msg::REGISTRATION_DISABLED);
    s.expect_no_link(LinkKind::Verify, NO_LINK_WINDOW).await;
    let r = s.login(&email, PASSWORD).await;
    r.assert_status(401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn verify_is_single_use_and_rejects_garbage() {
    let s = Server::start(&[]).await;
    let email = unique_email("verify-twice");
    s.post_json("/register", &json!({"email": email, "password": PASSWORD}))
        .await
        .assert_status(201);
    let token = s.wait_for_token(LinkKind::Verify).await;
    s.post_json("/verify", &json!({"token": token}))
        .await
        .assert_status(200);
    s.post_json("/verify", &json!({"token": token}))
        .await
        .assert_detail(400, msg::BAD_VERIFY_LINK);
    s.post_json("/verify", &json!({"token": "not-a-real-token"}))
        .await
        .assert_detail(400, msg::BAD_VERIFY_LINK);
    s.post_json("/verify", &json!({"token": ""}))
        .await
        .assert_detail(400, msg::BAD_VERIFY_LINK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn resend_verification_acks_everything_and_only_mails_pending() {
    let s = Server::start(&[]).await;
    let existing = unique_email("resend-user");
    s.register_verified(&existing, PASSWORD).await;
    let pending = unique_email("resend-pending");
    s.post_json("/register", &json!({"email": pending, "password": PASSWORD}))
        .await
        .assert_status(201);
    let old = s.wait_for_token(LinkKind::Verify).await;

    for email in [unique_email("resend-unknown"), existing.clone()] {
        s.post_json("/resend-verification", &json!({"email": email}))
            .await
            .assert_message(202, msg::RESEND_ACK);
    }
    s.expect_no_link(LinkKind::Verify, NO_LINK_WINDOW).await;

    // The pending address (in another case) gets a new link; the old one dies.
    s.post_json("/resend-verification", &json!({"email": pending.to_uppercase()}))
        .await
        .assert_message(202, msg::RESEND_ACK);
    let new = s.wait_for_token(LinkKind::Verify).await;
    assert_ne!(old, new);
    s.post_json("/verify", &json!({"token": old}))
        .await
        .assert_detail(400, msg::BAD_VERIFY_LINK);
    let v = s.post_json("/verify", &json!({"token": new})).await;
    v.assert_status(200);
    assert_eq!(v.json["email"], pending.as_str());
    s.login_ok(&pending, PASSWORD).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn login_before_verification_is_unknown_user() {
    let s = Server::start(&[]).await;
    let email = unique_email("unverified");
    s.post_json("/register", &json!({"email": email, "password": PASSWORD}))
        .await
        .assert_status(201);
    // No user row exists until /verify: the same 401 as an unknown address.
    s.login(&email, PASSWORD)
        .await
        .assert_detail(401, &format!("{} 4 attempt(s) remaining.", msg::BAD_LOGIN));
    let token = s.wait_for_token(LinkKind::Verify).await;
    s.post_json("/verify", &json!({"token": token}))
        .await
        .assert_status(200);
    s.login_ok(&email, PASSWORD).await;
}
