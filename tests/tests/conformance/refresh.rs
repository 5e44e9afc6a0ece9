//! Refresh tokens (docs/refresh-tokens.md, seed 004): off by default; rotated on every use;
//! a spent token presented again kills its family; families die at logout, with a password
//! change, an admin disable and account deletion; parallel rotations of one token yield one
//! success; the cookie mode.

use regstack_conformance::{json, msg, LinkKind, Resp, Server, SmsKind, PASSWORD};

const ON: (&str, &str) = ("REGSTACK_ENABLE_REFRESH_TOKENS", "true");
const INVALID: &str = "Invalid or expired refresh token.";

async fn refresh(s: &Server, token: &str) -> Resp {
    s.post_json("/token/refresh", &json!({ "refresh_token": token })).await
}

/// Signs in a fresh account: `(email, access, refresh)`.
async fn signed_in(s: &Server, tag: &str) -> (String, String, String) {
    let email = regstack_conformance::unique_email(tag);
    s.register_verified(&email, PASSWORD).await;
    let r = s.login(&email, PASSWORD).await;
    r.assert_status(200);
    (email, r.str("access_token"), r.str("refresh_token"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refresh_tokens_are_off_unless_switched_on() {
    let s = Server::start(&[]).await;
    let (email, _) = s.new_session("refresh-off").await;
    let r = s.login(&email, PASSWORD).await;
    assert!(r.json.get("refresh_token").is_none(), "{r}");
    refresh(&s, "anything").await.assert_detail(404, msg::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotation_and_reuse_detection() {
    let s = Server::start(&[ON, ("REGSTACK_ACCESS_TOKEN_EXPIRE_HOURS", "24")]).await;
    let (_, access, first) = signed_in(&s, "refresh-rotate").await;
    let r = refresh(&s, &first).await;
    r.assert_status(200);
    assert_eq!(r.json["token_type"], "bearer");
    assert_eq!(
        r.json["expires_in"], 86_400,
        "access_token_expire_hours sets the lifetime"
    );
    let (access2, second) = (r.str("access_token"), r.str("refresh_token"));
    assert_ne!(second, first);
    s.me(&access2).await;
    // The rotated token comes back: the whole family dies, with its sessions.
    refresh(&s, &first).await.assert_detail(401, INVALID);
    refresh(&s, &second).await.assert_detail(401, INVALID);
    s.get_auth("/me", &access2).await.assert_status(401);
    s.get_auth("/me", &access).await.assert_status(401);
    // Junk and missing tokens.
    refresh(&s, "not-a-token").await.assert_detail(401, INVALID);
    s.post_json("/token/refresh", &json!({}))
        .await
        .assert_detail(401, INVALID);
    s.post_json("/token/refresh", &json!({"refresh_token": 5}))
        .await
        .assert_validation("string_type", &["body", "refresh_token"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_rotations_of_one_token_yield_one_success() {
    let s = Server::start(&[ON]).await;
    let (_, _, token) = signed_in(&s, "refresh-race").await;
    let answers = s
        .post_json_at_once(
            "/token/refresh",
            (0..8).map(|_| json!({ "refresh_token": token })).collect(),
        )
        .await;
    let wins: Vec<&Resp> = answers.iter().filter(|r| r.status == 200).collect();
    assert_eq!(wins.len(), 1, "{answers:?}");
    assert!(
        answers.iter().all(|r| r.status == 200 || r.status == 401),
        "{answers:?}"
    );
    // The losers were reuse: the winner's family is dead too, its new session included.
    refresh(&s, &wins[0].str("refresh_token"))
        .await
        .assert_detail(401, INVALID);
    s.get_auth("/me", &wins[0].str("access_token")).await.assert_status(401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn families_die_with_logout_password_change_disable_and_deletion() {
    let s = Server::start(&[ON, ("REGSTACK_ENABLE_ADMIN_ROUTER", "true")]).await;
    // Logout ends its own family only.
    let (email, access, token) = signed_in(&s, "refresh-logout").await;
    let other = s.login(&email, PASSWORD).await.str("refresh_token");
    s.post_auth("/logout", &access)
        .await
        .assert_message(200, msg::LOGGED_OUT);
    refresh(&s, &token).await.assert_detail(401, INVALID);
    refresh(&s, &other).await.assert_status(200);

    // A password change ends every family.
    let (_, access, token) = signed_in(&s, "refresh-password").await;
    s.post_json_auth(
        "/change-password",
        &access,
        &json!({"current_password": PASSWORD, "new_password": "another long password"}),
    )
    .await
    .assert_status(200);
    refresh(&s, &token).await.assert_detail(401, INVALID);

    // An admin disable ends them, and a disabled account cannot refresh.
    let (_, admin) = s.new_admin_session("refresh-admin").await;
    let (_, access, token) = signed_in(&s, "refresh-disabled").await;
    let id = s.me(&access).await["id"].as_str().unwrap().to_string();
    let (_, _, kept) = {
        let email = s.me(&access).await["email"].as_str().unwrap().to_string();
        let r = s.login(&email, PASSWORD).await;
        (email, r.str("access_token"), r.str("refresh_token"))
    };
    s.patch_json_auth(&format!("/admin/users/{id}"), &admin, &json!({"is_active": false}))
        .await
        .assert_status(200);
    refresh(&s, &token).await.assert_detail(401, INVALID);
    // Enabled again: families from before the disable stay dead (the disable moved the
    // account's cutoff), though the account may sign in anew.
    s.patch_json_auth(&format!("/admin/users/{id}"), &admin, &json!({"is_active": true}))
        .await
        .assert_status(200);
    refresh(&s, &kept).await.assert_detail(401, INVALID);

    // A password reset ends every family.
    let (email, _, token) = signed_in(&s, "refresh-reset").await;
    s.post_json("/forgot-password", &json!({ "email": email }))
        .await
        .assert_status(202);
    let reset = s.wait_for_token(LinkKind::ResetPassword).await;
    s.post_json(
        "/reset-password",
        &json!({"token": reset, "new_password": "yet another long password"}),
    )
    .await
    .assert_status(200);
    refresh(&s, &token).await.assert_detail(401, INVALID);

    // Account deletion.
    let (_, access, token) = signed_in(&s, "refresh-deleted").await;
    s.delete_json_auth("/account", &access, &json!({"current_password": PASSWORD}))
        .await
        .assert_status(200);
    refresh(&s, &token).await.assert_detail(401, INVALID);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cookie_mode_keeps_the_token_out_of_the_body() {
    let s = Server::start(&[ON, ("REGSTACK_REFRESH_TOKEN_COOKIE", "true")]).await;
    let email = regstack_conformance::unique_email("refresh-cookie");
    s.register_verified(&email, PASSWORD).await;
    let r = s.login(&email, PASSWORD).await;
    r.assert_status(200);
    assert!(r.json.get("refresh_token").is_none(), "{r}");
    let set = r.header("set-cookie").expect("the refresh cookie");
    for part in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/api/auth/token/refresh"] {
        assert!(set.contains(part), "{part} missing: {set}");
    }
    let cookie = set.split(';').next().unwrap().to_string();
    // The browser sends it back to the refresh route (over https; the test sends it by hand).
    let r = s
        .send(
            s.request(reqwest::Method::POST, "/token/refresh")
                .header("cookie", &cookie),
        )
        .await;
    r.assert_status(200);
    assert!(r.json.get("refresh_token").is_none());
    let next = r.header("set-cookie").unwrap();
    assert_ne!(next.split(';').next().unwrap(), cookie, "rotated");
    // The spent one again: reuse.
    let again = s
        .send(
            s.request(reqwest::Method::POST, "/token/refresh")
                .header("cookie", &cookie),
        )
        .await;
    again.assert_detail(401, INVALID);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_sms_second_factor_hands_out_a_refresh_token_when_it_is_done() {
    let s = Server::start(&[
        ON,
        ("REGSTACK_ENABLE_SMS_2FA", "true"),
        ("REGSTACK_REQUIRE_VERIFICATION", "false"),
    ])
    .await;
    let (email, session) = s.new_session("refresh-mfa").await;
    s.enrol_sms(&session, "+15555550188").await;
    let r = s.login(&email, PASSWORD).await;
    assert!(
        r.json.get("refresh_token").is_none(),
        "not before the second factor: {r}"
    );
    let pending = r.str("mfa_pending_token");
    let (_, code) = s.wait_for_sms_code(SmsKind::LoginMfa).await;
    let done = s
        .post_json(
            "/login/mfa-confirm",
            &json!({"mfa_pending_token": pending, "code": code}),
        )
        .await;
    done.assert_status(200);
    refresh(&s, &done.str("refresh_token")).await.assert_status(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn in_cookie_mode_the_body_still_wins_and_logout_clears_the_cookie() {
    let s = Server::start(&[ON, ("REGSTACK_REFRESH_TOKEN_COOKIE", "true")]).await;
    let (email, _) = s.new_session("refresh-cookie-body").await;
    let r = s.login(&email, PASSWORD).await;
    let set = r.header("set-cookie").unwrap();
    let token = set.split(';').next().unwrap().split_once('=').unwrap().1.to_string();
    // A token in the body wins over a cookie that holds nonsense.
    let r = s
        .send(
            s.request(reqwest::Method::POST, "/token/refresh")
                .header("cookie", "regstack_refresh=nonsense")
                .json(&json!({ "refresh_token": token })),
        )
        .await;
    r.assert_status(200);
    let out = s.post_auth("/logout", &r.str("access_token")).await;
    out.assert_status(200);
    let cleared = out.header("set-cookie").expect("logout clears the cookie");
    assert!(
        cleared.starts_with("regstack_refresh=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
}
