//! State that must survive a restart on the same database and JWT secret (docs/wire.md, "Revocation", "Lockout"): sessions, the logout blacklist and the lockout counter live in the database, not in
//! process memory.

use regstack_conformance::{json, msg, Server, PASSWORD};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sessions_blacklist_and_lockout_survive_a_restart() {
    let mut s = Server::start(&[("REGSTACK_REQUIRE_VERIFICATION", "false")]).await;
    let (email, token) = s.new_session("restart").await;
    let user = s.me(&token).await;
    let logged_out = s.login_ok(&email, PASSWORD).await;
    s.post_auth("/logout", &logged_out)
        .await
        .assert_message(200, msg::LOGGED_OUT);
    s.login(&email, "wrong-password")
        .await
        .assert_detail(401, &format!("{} 4 attempt(s) remaining.", msg::BAD_LOGIN));
    s.login(&email, "wrong-password")
        .await
        .assert_detail(401, &format!("{} 3 attempt(s) remaining.", msg::BAD_LOGIN));

    s.restart().await;

    let me = s.me(&token).await;
    assert_eq!(me["id"], user["id"]);
    assert_eq!(me["email"], email.as_str());
    s.get_auth("/me", &logged_out).await.assert_detail(401, msg::REVOKED);
    s.login(&email, "wrong-password")
        .await
        .assert_detail(401, &format!("{} 2 attempt(s) remaining.", msg::BAD_LOGIN));
    s.post_json("/register", &json!({"email": email, "password": PASSWORD}))
        .await
        .assert_detail(409, msg::EMAIL_EXISTS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_jwt_secret_ends_every_session() {
    let mut s = Server::start(&[("REGSTACK_REQUIRE_VERIFICATION", "false")]).await;
    let (email, token) = s.new_session("rekey").await;
    s.restart_with_env(vec![
        ("REGSTACK_REQUIRE_VERIFICATION".into(), "false".into()),
        (
            "REGSTACK_JWT_SECRET".into(),
            "another-secret-that-is-long-enough-0123456789".into(),
        ),
    ])
    .await;
    s.get_auth("/me", &token)
        .await
        .assert_detail(401, msg::INVALID_TOKEN)
        .assert_www_authenticate();
    let fresh = s.login_ok(&email, PASSWORD).await;
    s.me(&fresh).await;
}
