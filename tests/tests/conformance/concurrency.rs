//! Races: single-use tokens, the login lockout and the per-IP rate limit must hold under
//! parallel requests (docs/wire.md, "Routes", "Lockout", "Decision 8", "Decision 7 (10)").

use std::collections::BTreeMap;

use regstack_conformance::{json, msg, unique_email, LinkKind, Resp, Server, PASSWORD};

fn status_counts(rs: &[Resp]) -> BTreeMap<u16, usize> {
    let mut m = BTreeMap::new();
    for r in rs {
        *m.entry(r.status).or_insert(0) += 1;
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_reset_with_one_token_succeeds_once() {
    let s = Server::start(&[("REGSTACK_REQUIRE_VERIFICATION", "false")]).await;
    let (email, _) = s.new_session("race-reset").await;
    s.post_json("/forgot-password", &json!({"email": email}))
        .await
        .assert_status(202);
    let token = s.wait_for_token(LinkKind::ResetPassword).await;

    let passwords: Vec<String> = (0..50).map(|i| format!("parallel-password-{i:02}")).collect();
    let bodies = passwords
        .iter()
        .map(|p| json!({"token": token, "new_password": p}))
        .collect();
    let rs = s.api().post_json_at_once("/reset-password", bodies).await;
    assert_eq!(
        status_counts(&rs),
        BTreeMap::from([(200, 1), (400, 49)]),
        "statuses: {rs:#?}"
    );
    let winner = rs.iter().position(|r| r.status == 200).unwrap_or_default();
    for r in &rs {
        if r.status == 200 {
            r.assert_message(200, msg::PASSWORD_RESET);
        } else {
            r.assert_detail(400, msg::BAD_RESET_LINK);
        }
    }
    s.login_ok(&email, &passwords[winner]).await;
    let loser = (winner + 1) % passwords.len();
    s.login(&email, &passwords[loser]).await.assert_status(401);
    s.login(&email, PASSWORD).await.assert_status(401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_wrong_logins_lock_at_exactly_the_threshold() {
    let s = Server::start(&[
        ("REGSTACK_REQUIRE_VERIFICATION", "false"),
        ("REGSTACK_LOGIN_LOCKOUT_THRESHOLD", "5"),
    ])
    .await;
    let email = unique_email("race-lock");
    s.register_verified(&email, PASSWORD).await;
    let bodies = (0..20)
        .map(|_| json!({"email": email, "password": "wrong-password"}))
        .collect();
    let rs = s.api().post_json_at_once("/login", bodies).await;
    assert_eq!(
        status_counts(&rs),
        BTreeMap::from([(401, 5), (429, 15)]),
        "statuses: {rs:#?}"
    );
    let allowed_401: Vec<String> = [4, 3, 2, 1]
        .iter()
        .map(|n| format!("{} {n} attempt(s) remaining.", msg::BAD_LOGIN))
        .chain([msg::BAD_LOGIN.to_string()])
        .collect();
    for r in &rs {
        if r.status == 401 {
            let d = r.detail().as_str().unwrap_or_default().to_string();
            assert!(allowed_401.contains(&d), "unexpected 401 detail:\n{r}");
        } else {
            r.assert_detail(429, msg::LOCKED_900);
            assert_eq!(r.header("retry-after").as_deref(), Some("900"), "{r}");
        }
    }
    let r = s.login(&email, PASSWORD).await;
    r.assert_detail(429, msg::LOCKED_900);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
// An hour's window: the windows are fixed, and a minute's could roll over between the burst
// and the last request (it did once, at 19:44:00).
async fn per_ip_login_rate_limit_admits_exactly_k() {
    let s = Server::start(&[("REGSTACK_LOGIN_RATE_LIMIT", "3/hour")]).await;
    let bodies = (0..10)
        .map(|_| json!({"email": unique_email("rl"), "password": PASSWORD}))
        .collect();
    let rs = s.api().post_json_at_once("/login", bodies).await;
    assert_eq!(
        status_counts(&rs),
        BTreeMap::from([(401, 3), (429, 7)]),
        "statuses: {rs:#?}"
    );
    for r in rs.iter().filter(|r| r.status == 429) {
        r.assert_detail(429, "Rate limit exceeded: 3 per 1 hour");
        let retry = r
            .header("retry-after")
            .unwrap_or_else(|| panic!("429 without Retry-After:\n{r}"));
        let secs: u64 = retry
            .parse()
            .unwrap_or_else(|_| panic!("Retry-After is not whole seconds:\n{r}"));
        assert!((1..=3600).contains(&secs), "Retry-After out of range:\n{r}");
    }
    // Other routes are not limited by the login limit.
    s.post_json("/forgot-password", &json!({"email": unique_email("rl-other")}))
        .await
        .assert_message(202, msg::FORGOT_ACK);
    s.post_json("/login", &json!({"email": unique_email("rl"), "password": PASSWORD}))
        .await
        .assert_detail(429, "Rate limit exceeded: 3 per 1 hour");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_register_of_one_email_creates_one_user() {
    let s = Server::start(&[("REGSTACK_REQUIRE_VERIFICATION", "false")]).await;
    let email = unique_email("race-register");
    let bodies = (0..20)
        .map(|i| json!({"email": email, "password": format!("race-password-{i:02}")}))
        .collect();
    let rs = s.api().post_json_at_once("/register", bodies).await;
    assert_eq!(
        status_counts(&rs),
        BTreeMap::from([(201, 1), (409, 19)]),
        "statuses: {rs:#?}"
    );
    for r in rs.iter().filter(|r| r.status == 409) {
        r.assert_detail(409, msg::EMAIL_EXISTS);
    }
    let winner = rs.iter().position(|r| r.status == 201).unwrap_or_default();
    s.login_ok(&email, &format!("race-password-{winner:02}")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_verify_of_one_token_succeeds_once() {
    let s = Server::start(&[]).await;
    let email = unique_email("race-verify");
    s.post_json("/register", &json!({"email": email, "password": PASSWORD}))
        .await
        .assert_status(201);
    let token = s.wait_for_token(LinkKind::Verify).await;
    let bodies = (0..20).map(|_| json!({"token": token})).collect();
    let rs = s.api().post_json_at_once("/verify", bodies).await;
    assert_eq!(
        status_counts(&rs),
        BTreeMap::from([(200, 1), (400, 19)]),
        "statuses: {rs:#?}"
    );
    for r in rs.iter().filter(|r| r.status == 400) {
        let d = r.detail().as_str().unwrap_or_default();
        assert!(
            d == msg::BAD_VERIFY_LINK || d == "This email is already registered. Please sign in.",
            "unexpected 400:\n{r}"
        );
    }
    s.login_ok(&email, PASSWORD).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_email_change_confirm_succeeds_once() {
    let s = Server::start(&[("REGSTACK_REQUIRE_VERIFICATION", "false")]).await;
    let (_, token) = s.new_session("race-change").await;
    let new_email = unique_email("race-change-new");
    let change = s.change_email_token(&token, &new_email).await;
    let bodies = (0..20).map(|_| json!({"token": change})).collect();
    let rs = s.api().post_json_at_once("/confirm-email-change", bodies).await;
    assert_eq!(
        status_counts(&rs),
        BTreeMap::from([(200, 1), (400, 19)]),
        "statuses: {rs:#?}"
    );
    for r in rs.iter().filter(|r| r.status == 400) {
        r.assert_detail(400, msg::BAD_EMAIL_CHANGE_LINK);
    }
    s.login_ok(&new_email, PASSWORD).await;
}
