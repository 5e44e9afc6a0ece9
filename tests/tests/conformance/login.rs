//! `POST /login`: the token response, the per-email lockout (docs/wire.md, "Lockout", and the seven steps of "Login, MFA, logout") and `rate_limit_disabled`.

use regstack_conformance::{json, jwt_parts, msg, unique_email, Resp, Server, PASSWORD};

#[track_caller]
fn assert_locked(r: &Resp) {
    r.assert_detail(429, msg::LOCKED_900);
    assert_eq!(r.header("retry-after").as_deref(), Some("900"), "Retry-After:\n{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn token_response_shape() {
    let s = Server::start(&[("REGSTACK_REQUIRE_VERIFICATION", "false")]).await;
    let email = unique_email("shape");
    s.register_verified(&email, PASSWORD).await;
    let r = s.login(&email, PASSWORD).await;
    r.assert_status(200);
    let obj = r.json.as_object().unwrap_or_else(|| panic!("not an object: {r}"));
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["access_token", "expires_in", "token_type"],
        "TokenResponse keys: {r}"
    );
    assert_eq!(r.json["token_type"], "bearer");
    assert_eq!(r.json["expires_in"], 7200);
    let token = r.str("access_token");
    assert_eq!(token.split('.').count(), 3, "a compact JWS: {token}");
    let me = s.me(&token).await;
    assert!(me["last_login"].is_string(), "login sets last_login: {me}");
    // Email lookup ignores case (docs/wire.md, "Decision 7 (11)").
    s.login_ok(&email.to_uppercase(), PASSWORD).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn session_token_claims() {
    let s = Server::start(&[("REGSTACK_REQUIRE_VERIFICATION", "false")]).await;
    let email = unique_email("claims");
    let user = s.register_verified(&email, PASSWORD).await;
    let token = s.login_ok(&email, PASSWORD).await;
    let (header, payload) = jwt_parts(&token);
    assert_eq!(header, json!({"alg": "HS256", "typ": "JWT"}), "JWT header");
    let keys: Vec<&str> = payload
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    assert_eq!(
        keys,
        ["sub", "jti", "iat", "exp", "purpose"],
        "claims and their order (docs/wire.md, Keys and claims): {payload}"
    );
    assert_eq!(payload["sub"], user["id"]);
    assert_eq!(payload["purpose"], "session");
    assert!(payload["iat"].is_f64(), "iat is a float with a fraction: {payload}");
    assert!(payload["exp"].is_u64(), "exp is an integer: {payload}");
    assert_eq!(
        payload["jti"].as_str().map(str::len),
        Some(22),
        "jti is 16 bytes base64url: {payload}"
    );
    let iat = payload["iat"].as_f64().unwrap_or_default();
    let exp = payload["exp"].as_u64().unwrap_or_default();
    assert_eq!(exp, (iat as u64) + 7200, "exp = trunc(iat + ttl): {payload}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lockout_counts_down_then_locks() {
    let s = Server::start(&[
        ("REGSTACK_REQUIRE_VERIFICATION", "false"),
        ("REGSTACK_LOGIN_LOCKOUT_THRESHOLD", "5"),
    ])
    .await;
    let email = unique_email("lockout");
    s.register_verified(&email, PASSWORD).await;
    for n in [4, 3, 2, 1] {
        s.login(&email, "wrong-password")
            .await
            .assert_detail(401, &msg::bad_login_remaining(n));
    }
    s.login(&email, "wrong-password")
        .await
        .assert_detail(401, msg::BAD_LOGIN);
    assert_locked(&s.login(&email, "wrong-password").await);
    // While locked the password is not even checked.
    assert_locked(&s.login(&email, PASSWORD).await);
    // Another account is unaffected.
    let other = unique_email("lockout-other");
    s.register_verified(&other, PASSWORD).await;
    s.login_ok(&other, PASSWORD).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lockout_counts_unknown_emails() {
    let s = Server::start(&[("REGSTACK_LOGIN_LOCKOUT_THRESHOLD", "5")]).await;
    let email = unique_email("ghost");
    for n in [4, 3, 2, 1] {
        s.login(&email, PASSWORD)
            .await
            .assert_detail(401, &msg::bad_login_remaining(n));
    }
    s.login(&email, PASSWORD).await.assert_detail(401, msg::BAD_LOGIN);
    assert_locked(&s.login(&email, PASSWORD).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lockout_ignores_email_case() {
    let s = Server::start(&[("REGSTACK_REQUIRE_VERIFICATION", "false")]).await;
    let email = unique_email("case-lock");
    s.register_verified(&email, PASSWORD).await;
    // docs/wire.md, "Decision 7 (11)": input is lower-cased, so every spelling counts against one address.
    s.login(&email, "wrong-password")
        .await
        .assert_detail(401, &msg::bad_login_remaining(4));
    s.login(&email.to_uppercase(), "wrong-password")
        .await
        .assert_detail(401, &msg::bad_login_remaining(3));
    let capital = format!("{}{}", email[..1].to_uppercase(), &email[1..]);
    s.login(&capital, "wrong-password")
        .await
        .assert_detail(401, &msg::bad_login_remaining(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn success_clears_failures() {
    let s = Server::start(&[("REGSTACK_REQUIRE_VERIFICATION", "false")]).await;
    let email = unique_email("clear");
    s.register_verified(&email, PASSWORD).await;
    for n in [4, 3, 2] {
        s.login(&email, "wrong-password")
            .await
            .assert_detail(401, &msg::bad_login_remaining(n));
    }
    s.login_ok(&email, PASSWORD).await;
    s.login(&email, "wrong-password")
        .await
        .assert_detail(401, &msg::bad_login_remaining(4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lockout_threshold_is_configurable() {
    let s = Server::start(&[
        ("REGSTACK_REQUIRE_VERIFICATION", "false"),
        ("REGSTACK_LOGIN_LOCKOUT_THRESHOLD", "2"),
    ])
    .await;
    let email = unique_email("thresh");
    s.register_verified(&email, PASSWORD).await;
    s.login(&email, "wrong-password")
        .await
        .assert_detail(401, &msg::bad_login_remaining(1));
    s.login(&email, "wrong-password")
        .await
        .assert_detail(401, msg::BAD_LOGIN);
    assert_locked(&s.login(&email, PASSWORD).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rate_limit_disabled_never_locks() {
    let s = Server::start(&[
        ("REGSTACK_REQUIRE_VERIFICATION", "false"),
        ("REGSTACK_RATE_LIMIT_DISABLED", "true"),
    ])
    .await;
    let email = unique_email("nolock");
    s.register_verified(&email, PASSWORD).await;
    for _ in 0..8 {
        s.login(&email, "wrong-password")
            .await
            .assert_detail(401, msg::BAD_LOGIN);
    }
    s.login_ok(&email, PASSWORD).await;
    let ghost = unique_email("nolock-ghost");
    for _ in 0..7 {
        s.login(&ghost, PASSWORD).await.assert_detail(401, msg::BAD_LOGIN);
    }
}
