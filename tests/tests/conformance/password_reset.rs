//! Password reset (docs/wire.md, "Password reset", "Revocation", "Anti-enumeration"):
//! the 202 ack for every address, single-use reset tokens, and the routes vanishing when
//! `enable_password_reset=false`.

use std::time::Duration;

use regstack_conformance::{json, msg, unique_email, LinkKind, Server, PASSWORD};
use reqwest::Method;

const NO_LINK_WINDOW: Duration = Duration::from_millis(1000);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forgot_password_acks_every_address_and_mails_only_users() {
    let s = Server::start(&[]).await;
    let pending = unique_email("forgot-pending");
    s.post_json("/register", &json!({"email": pending, "password": PASSWORD}))
        .await
        .assert_status(201);
    s.wait_for_link(LinkKind::Verify).await;
    for email in [unique_email("forgot-unknown"), pending] {
        s.post_json("/forgot-password", &json!({"email": email}))
            .await
            .assert_message(202, msg::FORGOT_ACK);
    }
    s.expect_no_link(LinkKind::ResetPassword, NO_LINK_WINDOW).await;

    let user = unique_email("forgot-user");
    s.register_verified(&user, PASSWORD).await;
    s.post_json("/forgot-password", &json!({"email": user.to_uppercase()}))
        .await
        .assert_message(202, msg::FORGOT_ACK);
    let link = s.wait_for_link(LinkKind::ResetPassword).await;
    assert!(
        link.starts_with(&format!("{}/reset-password?token=", s.root_url())),
        "{link}"
    );
    // Asking does not change the password.
    s.login_ok(&user, PASSWORD).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reset_password_is_single_use_and_revokes_sessions() {
    let s = Server::start(&[("REGSTACK_REQUIRE_VERIFICATION", "false")]).await;
    let (email, token) = s.new_session("reset").await;

    s.post_json(
        "/reset-password",
        &json!({"token": "garbage", "new_password": "new-password-1"}),
    )
    .await
    .assert_detail(400, msg::BAD_RESET_LINK);

    s.post_json("/forgot-password", &json!({"email": email}))
        .await
        .assert_status(202);
    let reset = s.wait_for_token(LinkKind::ResetPassword).await;

    // A 422 does not consume the token.
    s.post_json("/reset-password", &json!({"token": reset, "new_password": "short"}))
        .await
        .assert_validation("string_too_short", &["body", "new_password"]);

    // Reset clears the lockout counter.
    s.login(&email, "wrong-password")
        .await
        .assert_detail(401, &msg::bad_login_remaining(4));
    s.login(&email, "wrong-password")
        .await
        .assert_detail(401, &msg::bad_login_remaining(3));

    s.post_json(
        "/reset-password",
        &json!({"token": reset, "new_password": "new-password-1"}),
    )
    .await
    .assert_message(200, msg::PASSWORD_RESET);
    s.post_json(
        "/reset-password",
        &json!({"token": reset, "new_password": "new-password-2"}),
    )
    .await
    .assert_detail(400, msg::BAD_RESET_LINK);

    s.get_auth("/me", &token)
        .await
        .assert_detail(401, msg::SESSION_INVALIDATED);
    s.login(&email, PASSWORD)
        .await
        .assert_detail(401, &msg::bad_login_remaining(4));
    s.login(&email, "new-password-2")
        .await
        .assert_detail(401, &msg::bad_login_remaining(3));
    let t2 = s.login_ok(&email, "new-password-1").await;
    s.me(&t2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn password_reset_disabled_unmounts_the_routes() {
    let s = Server::start(&[
        ("REGSTACK_REQUIRE_VERIFICATION", "false"),
        ("REGSTACK_ENABLE_PASSWORD_RESET", "false"),
    ])
    .await;
    let (email, _) = s.new_session("noreset").await;
    s.post_json("/forgot-password", &json!({"email": email}))
        .await
        .assert_detail(404, msg::NOT_FOUND);
    s.post_json(
        "/reset-password",
        &json!({"token": "x", "new_password": "new-password-1"}),
    )
    .await
    .assert_detail(404, msg::NOT_FOUND);
    // Unmounted means 404 for every method, not 405.
    s.send(s.request(Method::GET, "/forgot-password"))
        .await
        .assert_detail(404, msg::NOT_FOUND);
    s.expect_no_link(LinkKind::ResetPassword, NO_LINK_WINDOW).await;
    s.login_ok(&email, PASSWORD).await;
}
