//! The whole account lifecycle end to end, as `regstack validate` walks it (docs/wire.md, "The validate walk"),
//! with the exact bodies of docs/wire.md, "Routes" and its rules of "Revocation" asserted at every step.

use regstack_conformance::{assert_user_public, json, msg, unique_email, LinkKind, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn full_lifecycle() {
    let s = Server::start(&[]).await;
    let email = unique_email("life");
    let pw1 = "first-password-1";
    let pw2 = "second-password-2";
    let pw3 = "third-password-3";

    // register → pending; the verification link is printed with `?token=` first.
    let r = s
        .post_json(
            "/register",
            &json!({"email": email, "password": pw1, "full_name": "Life Cycle"}),
        )
        .await;
    r.assert_status(201);
    assert_eq!(r.json["status"], "pending_verification", "{r}");
    let link = s.wait_for_link(LinkKind::Verify).await;
    let token = regstack_conformance::token_of(&link);
    assert_eq!(
        link,
        format!("{}/verify?token={token}", s.root_url()),
        "verification link shape"
    );
    assert_eq!(
        token.len(),
        43,
        "verification token is 32 random bytes base64url: {token}"
    );

    // verify → 200 UserPublic of the new, active, verified user.
    let r = s.post_json("/verify", &json!({"token": token})).await;
    r.assert_status(200);
    assert_user_public(&r.json);
    assert_eq!(r.json["email"], email.as_str());
    assert_eq!(r.json["is_verified"], true);
    assert_eq!(r.json["is_active"], true);
    assert_eq!(r.json["full_name"], "Life Cycle");
    let user_id = r.json["id"].clone();

    // login → me → logout → me is revoked.
    let t1 = s.login_ok(&email, pw1).await;
    let me = s.me(&t1).await;
    assert_eq!(me["email"], email.as_str());
    assert_eq!(me["id"], user_id);
    assert!(me["last_login"].is_string(), "last_login is set by login: {me}");
    s.post_auth("/logout", &t1).await.assert_message(200, msg::LOGGED_OUT);
    s.get_auth("/me", &t1)
        .await
        .assert_detail(401, msg::REVOKED)
        .assert_no_www_authenticate();
    s.post_auth("/logout", &t1).await.assert_detail(401, msg::REVOKED);

    // login again, change the password: the caller's own token dies, a new login works at once.
    let t2 = s.login_ok(&email, pw1).await;
    s.post_json_auth(
        "/change-password",
        &t2,
        &json!({"current_password": pw1, "new_password": pw2}),
    )
    .await
    .assert_message(200, msg::PASSWORD_CHANGED);
    s.get_auth("/me", &t2)
        .await
        .assert_detail(401, msg::SESSION_INVALIDATED);
    let t3 = s.login_ok(&email, pw2).await;
    assert_eq!(s.me(&t3).await["id"], user_id);
    s.login(&email, pw1)
        .await
        .assert_detail(401, &format!("{} 4 attempt(s) remaining.", msg::BAD_LOGIN));

    // change the email (mixed case in, lower case out) and confirm it.
    let new_email = unique_email("life-renamed");
    let r = s
        .post_json_auth(
            "/change-email",
            &t3,
            &json!({"new_email": new_email.to_uppercase(), "current_password": pw2}),
        )
        .await;
    r.assert_message(202, msg::CHANGE_EMAIL_ACK);
    let link = s.wait_for_link(LinkKind::ConfirmEmailChange).await;
    let token = regstack_conformance::token_of(&link);
    assert_eq!(
        link,
        format!("{}/confirm-email-change?token={token}", s.root_url()),
        "email-change link shape"
    );
    let r = s.post_json("/confirm-email-change", &json!({"token": token})).await;
    r.assert_status(200);
    assert_user_public(&r.json);
    assert_eq!(
        r.json["email"],
        new_email.as_str(),
        "confirm returns the new (lower-cased) email: {r}"
    );
    assert_eq!(r.json["id"], user_id);
    assert!(
        r.json["tokens_invalidated_after"].is_string(),
        "docs/wire.md, Decision 7 (8): the confirm response shows the bumped tokens_invalidated_after: {r}"
    );
    s.get_auth("/me", &t3)
        .await
        .assert_detail(401, msg::SESSION_INVALIDATED);
    s.login(&email, pw2)
        .await
        .assert_detail(401, &format!("{} 4 attempt(s) remaining.", msg::BAD_LOGIN));
    let t4 = s.login_ok(&new_email, pw2).await;
    assert_eq!(s.me(&t4).await["email"], new_email.as_str());

    // forgot → reset: the old session dies, the new password works.
    s.post_json("/forgot-password", &json!({"email": new_email}))
        .await
        .assert_message(202, msg::FORGOT_ACK);
    let link = s.wait_for_link(LinkKind::ResetPassword).await;
    let token = regstack_conformance::token_of(&link);
    assert_eq!(
        link,
        format!("{}/reset-password?token={token}", s.root_url()),
        "reset link shape"
    );
    s.post_json("/reset-password", &json!({"token": token, "new_password": pw3}))
        .await
        .assert_message(200, msg::PASSWORD_RESET);
    s.get_auth("/me", &t4)
        .await
        .assert_detail(401, msg::SESSION_INVALIDATED);
    s.login(&new_email, pw2)
        .await
        .assert_detail(401, &format!("{} 4 attempt(s) remaining.", msg::BAD_LOGIN));
    let t5 = s.login_ok(&new_email, pw3).await;

    // delete the account: the token fails at "user no longer active", the email is free again.
    s.delete_json_auth("/account", &t5, &json!({"current_password": pw3}))
        .await
        .assert_message(200, msg::ACCOUNT_DELETED);
    s.get_auth("/me", &t5).await.assert_detail(401, msg::USER_INACTIVE);
    let r = s.login(&new_email, pw3).await;
    r.assert_status(401);
    assert!(r.detail().as_str().unwrap_or("").starts_with(msg::BAD_LOGIN), "{r}");
    let r = s
        .post_json("/register", &json!({"email": new_email, "password": pw3}))
        .await;
    r.assert_status(201);
    assert_eq!(r.json["status"], "pending_verification", "{r}");
}
