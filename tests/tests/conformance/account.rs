//! Account management (docs/wire.md, "Account management"): `PATCH /me` (docs/wire.md, "Decision 7 (7)"),
//! change-password, change-email and its confirmation (docs/wire.md, "Decision 7 (8)", "Decision 7 (10)", "Decision 7 (11)") and
//! `DELETE /account`.

use std::time::Duration;

use regstack_conformance::{assert_user_public, json, msg, unique_email, LinkKind, Server, PASSWORD};

const NO_LINK_WINDOW: Duration = Duration::from_millis(1000);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn patch_me_full_name_semantics() {
    let s = Server::start(&[("REGSTACK_REQUIRE_VERIFICATION", "false")]).await;
    let (_, token) = s.new_session("patch").await;

    let r = s.patch_json_auth("/me", &token, &json!({"full_name": "X"})).await;
    r.assert_status(200);
    assert_user_public(&r.json);
    assert_eq!(r.json["full_name"], "X");
    assert_eq!(s.me(&token).await["full_name"], "X");

    // docs/wire.md, "Decision 7 (7)": an absent field is left alone...
    let r = s.patch_json_auth("/me", &token, &json!({})).await;
    r.assert_status(200);
    assert_eq!(
        r.json["full_name"], "X",
        "PATCH /me {{}} must leave full_name alone: {r}"
    );
    assert_eq!(s.me(&token).await["full_name"], "X");

    // ...and an explicit null clears it.
    let r = s.patch_json_auth("/me", &token, &json!({"full_name": null})).await;
    r.assert_status(200);
    assert_eq!(r.json["full_name"], json!(null), "{r}");
    assert_eq!(s.me(&token).await["full_name"], json!(null));

    // 200 characters (not bytes) is the limit.
    let max = "é".repeat(200);
    let r = s.patch_json_auth("/me", &token, &json!({"full_name": max})).await;
    r.assert_status(200);
    assert_eq!(r.json["full_name"], max.as_str());
    let e = s
        .patch_json_auth("/me", &token, &json!({"full_name": "y".repeat(201)}))
        .await
        .assert_validation("string_too_long", &["body", "full_name"]);
    assert_eq!(e["ctx"]["max_length"], 200, "{e}");
    assert_eq!(
        s.me(&token).await["full_name"],
        max.as_str(),
        "a rejected PATCH writes nothing"
    );
    s.patch_json_auth("/me", &token, &json!({"full_name": "Z", "is_superuser": true}))
        .await
        .assert_validation("extra_forbidden", &["body", "is_superuser"]);
    let me = s.me(&token).await;
    assert_eq!(me["is_superuser"], false);
    assert_eq!(me["full_name"], max.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn change_password_errors_and_success() {
    let s = Server::start(&[("REGSTACK_REQUIRE_VERIFICATION", "false")]).await;
    let (email, token) = s.new_session("chpw").await;

    s.post_json_auth(
        "/change-password",
        &token,
        &json!({"current_password": "not-my-password", "new_password": "brand-new-password"}),
    )
    .await
    .assert_detail(400, msg::WRONG_CURRENT_PASSWORD);
    s.post_json_auth(
        "/change-password",
        &token,
        &json!({"current_password": PASSWORD, "new_password": PASSWORD}),
    )
    .await
    .assert_detail(400, msg::SAME_PASSWORD);
    let e = s
        .post_json_auth(
            "/change-password",
            &token,
            &json!({"current_password": PASSWORD, "new_password": "short"}),
        )
        .await
        .assert_validation("string_too_short", &["body", "new_password"]);
    assert_eq!(e["ctx"]["min_length"], 8);
    // `current_password` is unconstrained: a short wrong one is a 400, not a 422.
    s.post_json_auth(
        "/change-password",
        &token,
        &json!({"current_password": "x", "new_password": "brand-new-password"}),
    )
    .await
    .assert_detail(400, msg::WRONG_CURRENT_PASSWORD);
    // None of that revoked the session.
    s.me(&token).await;

    // The two wrong current passwords above counted toward the lockout (a departure from
    // 0.9.3, where they were free), and success clears the counter.
    s.login(&email, "wrong-password")
        .await
        .assert_detail(401, &msg::bad_login_remaining(2));
    s.login(&email, "wrong-password")
        .await
        .assert_detail(401, &msg::bad_login_remaining(1));
    s.post_json_auth(
        "/change-password",
        &token,
        &json!({"current_password": PASSWORD, "new_password": "brand-new-password"}),
    )
    .await
    .assert_message(200, msg::PASSWORD_CHANGED);
    s.get_auth("/me", &token)
        .await
        .assert_detail(401, msg::SESSION_INVALIDATED);
    s.login(&email, "wrong-password")
        .await
        .assert_detail(401, &msg::bad_login_remaining(4));
    s.login(&email, PASSWORD)
        .await
        .assert_detail(401, &msg::bad_login_remaining(3));
    let t2 = s.login_ok(&email, "brand-new-password").await;
    let me = s.me(&t2).await;
    assert!(
        me["tokens_invalidated_after"].is_string(),
        "the cutoff is recorded: {me}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn change_email_rejections() {
    let s = Server::start(&[("REGSTACK_REQUIRE_VERIFICATION", "false")]).await;
    let (email, token) = s.new_session("chem").await;
    // Same address in any case: 400, checked before the password.
    for (new_email, pw) in [(email.to_uppercase(), PASSWORD), (email.clone(), "not-my-password")] {
        s.post_json_auth(
            "/change-email",
            &token,
            &json!({"new_email": new_email, "current_password": pw}),
        )
        .await
        .assert_detail(400, msg::SAME_EMAIL);
    }
    s.post_json_auth(
        "/change-email",
        &token,
        &json!({"new_email": unique_email("chem-new"), "current_password": "not-my-password"}),
    )
    .await
    .assert_detail(400, msg::WRONG_CURRENT_PASSWORD);
    s.post_json_auth(
        "/change-email",
        &token,
        &json!({"new_email": "a@probe.invalid", "current_password": PASSWORD}),
    )
    .await
    .assert_validation("value_error", &["body", "new_email"]);
    s.expect_no_link(LinkKind::ConfirmEmailChange, NO_LINK_WINDOW).await;
    assert_eq!(s.me(&token).await["email"], email.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn change_email_to_a_taken_address_looks_the_same() {
    let s = Server::start(&[("REGSTACK_REQUIRE_VERIFICATION", "false")]).await;
    let (_, token) = s.new_session("taken-a").await;
    let (other, _) = s.new_session("taken-b").await;
    for new_email in [other.clone(), other.to_uppercase()] {
        s.post_json_auth(
            "/change-email",
            &token,
            &json!({"new_email": new_email, "current_password": PASSWORD}),
        )
        .await
        .assert_message(202, msg::CHANGE_EMAIL_ACK);
    }
    s.expect_no_link(LinkKind::ConfirmEmailChange, NO_LINK_WINDOW).await;
    // Nothing changed for either account, and the session is intact.
    s.me(&token).await;
    s.login_ok(&other, PASSWORD).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn email_change_token_is_single_use() {
    let s = Server::start(&[("REGSTACK_REQUIRE_VERIFICATION", "false")]).await;
    let (email, token) = s.new_session("single").await;
    let new_email = unique_email("single-new");
    let change = s.change_email_token(&token, &new_email).await;
    // The request alone changes nothing.
    assert_eq!(s.me(&token).await["email"], email.as_str());

    let r = s.post_json("/confirm-email-change", &json!({"token": change})).await;
    r.assert_status(200);
    assert_user_public(&r.json);
    assert_eq!(r.json["email"], new_email.as_str());
    assert!(
        r.json["tokens_invalidated_after"].is_string(),
        "docs/wire.md, Decision 7 (8): {r}"
    );
    // docs/wire.md, "Decision 7 (10)": a replay is refused.
    s.post_json("/confirm-email-change", &json!({"token": change}))
        .await
        .assert_detail(400, msg::BAD_EMAIL_CHANGE_LINK);
    s.post_json("/confirm-email-change", &json!({"token": "garbage"}))
        .await
        .assert_detail(400, msg::BAD_EMAIL_CHANGE_LINK);

    s.get_auth("/me", &token)
        .await
        .assert_detail(401, msg::SESSION_INVALIDATED);
    let t2 = s.login_ok(&new_email, PASSWORD).await;
    let me = s.me(&t2).await;
    assert_eq!(me["email"], new_email.as_str());
    assert!(me["tokens_invalidated_after"].is_string(), "{me}");
    // The old address is free again.
    s.post_json("/register", &json!({"email": email, "password": PASSWORD}))
        .await
        .assert_status(201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn confirm_email_change_to_an_address_taken_meanwhile() {
    let s = Server::start(&[("REGSTACK_REQUIRE_VERIFICATION", "false")]).await;
    let (email, token) = s.new_session("race-a").await;
    let target = unique_email("race-target");
    let change = s.change_email_token(&token, &target).await;
    s.register_verified(&target, PASSWORD).await;
    s.post_json("/confirm-email-change", &json!({"token": change}))
        .await
        .assert_detail(409, msg::EMAIL_IN_USE);
    assert_eq!(
        s.me(&token).await["email"],
        email.as_str(),
        "a failed confirm changes nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn confirm_email_change_clears_the_old_lockout() {
    let s = Server::start(&[("REGSTACK_REQUIRE_VERIFICATION", "false")]).await;
    let (email, token) = s.new_session("oldlock").await;
    s.login(&email, "wrong-password")
        .await
        .assert_detail(401, &msg::bad_login_remaining(4));
    s.login(&email, "wrong-password")
        .await
        .assert_detail(401, &msg::bad_login_remaining(3));
    let new_email = unique_email("oldlock-new");
    let change = s.change_email_token(&token, &new_email).await;
    s.post_json("/confirm-email-change", &json!({"token": change}))
        .await
        .assert_status(200);
    s.login(&email, "wrong-password")
        .await
        .assert_detail(401, &msg::bad_login_remaining(4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn delete_account_errors_then_success() {
    let s = Server::start(&[("REGSTACK_REQUIRE_VERIFICATION", "false")]).await;
    let (email, token) = s.new_session("delete").await;

    s.delete_json_auth("/account", &token, &json!({"current_password": "not-my-password"}))
        .await
        .assert_detail(400, msg::WRONG_CURRENT_PASSWORD);
    s.delete_auth("/account", &token).await.assert_json(
        422,
        &json!({"detail": [{"type": "missing", "loc": ["body"], "msg": "Field required", "input": null}]}),
    );
    s.delete_json_auth("/account", &token, &json!({}))
        .await
        .assert_validation("missing", &["body", "current_password"]);
    s.delete_json_auth(
        "/account",
        &token,
        &json!({"current_password": PASSWORD, "reason": "x"}),
    )
    .await
    .assert_validation("extra_forbidden", &["body", "reason"]);
    s.me(&token).await;

    s.delete_json_auth("/account", &token, &json!({"current_password": PASSWORD}))
        .await
        .assert_message(200, msg::ACCOUNT_DELETED);
    s.get_auth("/me", &token).await.assert_detail(401, msg::USER_INACTIVE);
    s.delete_json_auth("/account", &token, &json!({"current_password": PASSWORD}))
        .await
        .assert_detail(401, msg::USER_INACTIVE);
    s.login(&email, PASSWORD)
        .await
        .assert_detail(401, &msg::bad_login_remaining(4));
    let r = s
        .post_json("/register", &json!({"email": email, "password": PASSWORD}))
        .await;
    r.assert_status(201);
    assert_user_public(&r.json);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn account_deletion_disabled() {
    let s = Server::start(&[
        ("REGSTACK_REQUIRE_VERIFICATION", "false"),
        ("REGSTACK_ENABLE_ACCOUNT_DELETION", "false"),
    ])
    .await;
    let (email, token) = s.new_session("nodelete").await;
    s.delete_json_auth("/account", &token, &json!({"current_password": PASSWORD}))
        .await
        .assert_detail(404, msg::DELETION_DISABLED);
    // The flag is checked after auth and body validation.
    s.send(s.request(reqwest::Method::DELETE, "/account"))
        .await
        .assert_detail(401, msg::AUTH_REQUIRED);
    s.delete_auth("/account", &token)
        .await
        .assert_validation("missing", &["body"]);
    let me = s.me(&token).await;
    assert_eq!(me["email"], email.as_str());
    s.login_ok(&email, PASSWORD).await;
}
