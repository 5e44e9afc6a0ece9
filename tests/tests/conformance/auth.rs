//! Bearer authentication failures (docs/wire.md, "Auth failures", "Tokens"): the exact 401
//! texts, `WWW-Authenticate`, and the rule that auth is evaluated before body validation.

use regstack_conformance::{json, msg, LinkKind, Server};
use reqwest::Method;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn missing_or_non_bearer_header() {
    let s = Server::start(&[]).await;
    s.get("/me")
        .await
        .assert_detail(401, msg::AUTH_REQUIRED)
        .assert_www_authenticate();
    for value in ["Basic x", "Basic dXNlcjpwYXNz", "Token abc", "Bearer"] {
        let r = s
            .send(s.request(Method::GET, "/me").header("authorization", value))
            .await;
        r.assert_detail(401, msg::AUTH_REQUIRED).assert_www_authenticate();
    }
    let r = s.send(s.request(Method::POST, "/logout")).await;
    r.assert_detail(401, msg::AUTH_REQUIRED).assert_www_authenticate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn undecodable_tokens() {
    let s = Server::start(&[]).await;
    let (_, token) = s.new_session("auth-bad").await;
    let mut tampered = token.clone();
    let last = tampered.pop().unwrap_or('A');
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let mut payload_swapped: Vec<&str> = token.split('.').collect();
    let foreign = "eyJzdWIiOiJ1c2VyLTEiLCJqdGkiOiJfSDdwSF9RaHB2VldmZEJvcW1SWktBIiwiaWF0IjoxNzY3MjY4ODAwLjEyMzQ1NiwiZXhwIjoxNzY3Mjc2MDAwLCJwdXJwb3NlIjoic2Vzc2lvbiJ9";
    payload_swapped[1] = foreign;
    let payload_swapped = payload_swapped.join(".");
    // The test vector of docs/wire.md, "Keys and claims": signed with another secret, and long expired.
    let vector = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VyLTEiLCJqdGkiOiJfSDdwSF9RaHB2VldmZEJvcW1SWktBIiwiaWF0IjoxNzY3MjY4ODAwLjEyMzQ1NiwiZXhwIjoxNzY3Mjc2MDAwLCJwdXJwb3NlIjoic2Vzc2lvbiJ9.AfgYzUmOKbWUXMWkCGm4eSEmsR22_yfpBw2WTXRRt8s";
    for bad in [
        "garbage",
        "a.b.c",
        "....",
        tampered.as_str(),
        payload_swapped.as_str(),
        vector,
    ] {
        s.get_auth("/me", bad)
            .await
            .assert_detail(401, msg::INVALID_TOKEN)
            .assert_www_authenticate();
    }
    // The genuine token still works.
    s.me(&token).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wrong_purpose_token_is_invalid() {
    let s = Server::start(&[]).await;
    let (email, token) = s.new_session("auth-purpose").await;
    s.post_json("/forgot-password", &json!({"email": email}))
        .await
        .assert_status(202);
    let reset = s.wait_for_token(LinkKind::ResetPassword).await;
    s.get_auth("/me", &reset)
        .await
        .assert_detail(401, msg::INVALID_TOKEN)
        .assert_www_authenticate();
    let change = s
        .change_email_token(&token, &regstack_conformance::unique_email("purpose-new"))
        .await;
    s.get_auth("/me", &change).await.assert_detail(401, msg::INVALID_TOKEN);
    // And a session token is not a reset token.
    s.post_json(
        "/reset-password",
        &json!({"token": token, "new_password": "whatever-password"}),
    )
    .await
    .assert_detail(400, msg::BAD_RESET_LINK);
    s.me(&token).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn auth_is_checked_before_the_body() {
    let s = Server::start(&[]).await;
    // No credentials and a bad or missing body: 401, not 422.
    s.post_json("/change-password", &json!({"nope": 1}))
        .await
        .assert_detail(401, msg::AUTH_REQUIRED)
        .assert_www_authenticate();
    s.post_raw(
        "/change-password",
        Some("application/json"),
        b"{not json".to_vec(),
        None,
    )
    .await
    .assert_detail(401, msg::AUTH_REQUIRED);
    s.post_raw("/change-email", None, Vec::new(), None)
        .await
        .assert_detail(401, msg::AUTH_REQUIRED);
    s.send(s.request(Method::DELETE, "/account"))
        .await
        .assert_detail(401, msg::AUTH_REQUIRED);
    s.send(s.request(Method::PATCH, "/me").json(&json!({"full_name": 5})))
        .await
        .assert_detail(401, msg::AUTH_REQUIRED);
    // A bad token with a bad body: the token error wins too.
    s.post_raw(
        "/change-password",
        Some("application/json"),
        b"[]".to_vec(),
        Some("garbage"),
    )
    .await
    .assert_detail(401, msg::INVALID_TOKEN);
    s.send(s.request(Method::DELETE, "/account").bearer_auth("garbage"))
        .await
        .assert_detail(401, msg::INVALID_TOKEN);
    // A revoked token with a missing body.
    let (_, token) = s.new_session("auth-order").await;
    s.post_auth("/logout", &token).await.assert_status(200);
    s.delete_auth("/account", &token).await.assert_detail(401, msg::REVOKED);
}
