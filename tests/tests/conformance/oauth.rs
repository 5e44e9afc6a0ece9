//! Sign-in with OAuth providers (docs/oauth.md) against a real OpenID Connect provider
//! (`oidc-provider` from npm, started by scripts/test): Google's endpoints pointed at it
//! (RS256 ID tokens), and a generic provider `corp` found through its discovery document
//! (ES256). The browser is a cookie-keeping HTTP client that follows the provider's redirects
//! and posts its sign-in form.

use std::time::Duration;

use regstack_conformance::{
    json, msg, oauth_complete_id, oauth_env, oauth_env_with, oauth_error, oidc_issuer, unique_email, Server, SmsKind,
    GOOGLE_CLIENT_ID, PASSWORD,
};

const UNLINK_LAST: &str =
    "Cannot unlink your only sign-in method. Set a password (use forgot-password) or link another provider first.";

/// A login at the test provider whose address is `tag`'s unique one, verified.
fn verified(tag: &str) -> String {
    unique_email(tag)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn oauth_routes_are_absent_unless_a_provider_is_configured() {
    let s = Server::start(&[("REGSTACK_ENABLE_OAUTH", "true")]).await;
    s.get("/oauth/google/start").await.assert_detail(404, msg::NOT_FOUND);
    s.post_json("/oauth/exchange", &json!({"id": "abcdefgh"}))
        .await
        .assert_detail(404, msg::NOT_FOUND);
    assert!(s.get("/openapi.json").await.json["paths"]["/oauth/exchange"].is_null());
}

/// What regstack 0.9.3's own `validate` checks: a 302 to Google with the client, the state and
/// the callback in the query. No request reaches Google.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn google_start_redirects_to_google() {
    let s = Server::start(&[
        ("REGSTACK_ENABLE_OAUTH", "true"),
        ("REGSTACK_OAUTH__GOOGLE_CLIENT_ID", "1234.apps.googleusercontent.com"),
        (
            "REGSTACK_OAUTH__GOOGLE_CLIENT_SECRET",
            "not-used-by-this-scenario-q3Vx9",
        ),
    ])
    .await;
    let r = s.get("/oauth/google/start").await;
    r.assert_status(302);
    let to = r.header("location").unwrap();
    assert!(to.starts_with("https://accounts.google.com/o/oauth2/v2/auth?"), "{to}");
    let callback = format!("redirect_uri={}", urlencode(&s.url("/oauth/google/callback")));
    for part in [
        "client_id=1234.apps.googleusercontent.com",
        "response_type=code",
        "code_challenge_method=S256",
        "scope=openid+email+profile",
        "prompt=select_account",
        "access_type=online",
        &callback,
    ] {
        assert!(to.contains(part), "{part} missing from {to}");
    }
    for param in ["state=", "nonce=", "code_challenge="] {
        assert!(to.contains(param), "{param} missing from {to}");
    }
    let providers = s.get("/oauth/providers").await;
    providers.assert_status(401);
    s.get("/oauth/github/start")
        .await
        .assert_detail(404, "OAuth provider 'github' is not configured.");
    s.get("/oauth/exchange")
        .await
        .assert_detail(405, msg::METHOD_NOT_ALLOWED);
    let doc = s.get("/openapi.json").await;
    assert!(doc.json["paths"]["/oauth/{provider}/callback"]["get"].is_object());
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn signin_makes_an_account_and_hands_its_session_out_once() {
    let s = Server::start_with(&oauth_env()).await;
    let login = verified("oauth-new");
    let location = s.oauth_signin_location("google", &login).await;
    assert!(location.starts_with("/account/oauth-complete?id="), "{location}");
    let id = oauth_complete_id(&location);
    let r = s.post_json("/oauth/exchange", &json!({ "id": id })).await;
    r.assert_status(200);
    assert_eq!(r.json["was_new_account"], true);
    assert_eq!(r.json["redirect_to"], "/account/me");
    assert_eq!(r.json["token_type"], "bearer");
    assert_eq!(r.json["expires_in"], 7200);
    assert_eq!(r.json["mfa_required"], false);
    assert!(r.json["mfa_pending_token"].is_null());
    let token = r.str("access_token");
    let me = s.me(&token).await;
    assert_eq!(me["email"], login.as_str());
    assert_eq!(me["is_verified"], true, "the provider vouched for the address");
    // Once only.
    s.post_json("/oauth/exchange", &json!({ "id": id }))
        .await
        .assert_detail(404, "OAuth state not found or already consumed.");
    let providers = s.get_auth("/oauth/providers", &token).await;
    providers.assert_status(200);
    assert_eq!(providers.json["available"], json!(["google", "corp"]));
    let linked = providers.json["linked"].as_array().unwrap();
    assert_eq!(linked.len(), 1);
    assert_eq!(linked[0]["provider"], "google");
    assert_eq!(linked[0]["email"], login.as_str());
    assert!(linked[0]["linked_at"].as_str().unwrap().ends_with("+00:00"));

    // The same person again: the same account, not a new one.
    let again = s.oauth_signin("google", &login).await;
    assert_eq!(again.json["was_new_account"], false);
    assert_eq!(s.me(&again.str("access_token")).await["id"], me["id"]);
    // The session is a normal one: logout revokes it.
    s.post_auth("/logout", &token)
        .await
        .assert_message(200, msg::LOGGED_OUT);
    s.get_auth("/me", &token).await.assert_detail(401, msg::REVOKED);

    // The generic provider (discovered, ES256 ID tokens), for an account with no address.
    let r = s.oauth_signin("corp", "noemail:carol").await;
    assert_eq!(r.json["was_new_account"], true);
    let me = s.me(&r.str("access_token")).await;
    let email = me["email"].as_str().unwrap();
    assert!(
        email.starts_with("corp.") && email.ends_with("@oauth.invalid"),
        "{email}"
    );
    assert_eq!(me["is_verified"], false);

    // An address the provider does not vouch for is not claimed: its owner can still
    // register it.
    let claimed = verified("oauth-unclaimed");
    let r = s.oauth_signin("google", &format!("unverified:{claimed}")).await;
    let me = s.me(&r.str("access_token")).await;
    assert!(me["email"].as_str().unwrap().ends_with("@oauth.invalid"), "{me}");
    s.post_json("/register", &json!({"email": claimed, "password": PASSWORD}))
        .await
        .assert_status(201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_existing_address_links_only_when_allowed_and_verified() {
    let off = Server::start_with(&oauth_env_with(&[("REGSTACK_REQUIRE_VERIFICATION", "false")])).await;
    let (email, _) = off.new_session("oauth-owner").await;
    let code = oauth_error(&off.oauth_signin_location("google", &email).await);
    assert_eq!(code, "email_in_use", "auto-link is off by default");

    // Auto-link trusts an account's confirmation only when addresses are confirmed at all.
    let unconfirmed = Server::start_with(&oauth_env_with(&[
        ("REGSTACK_REQUIRE_VERIFICATION", "false"),
        ("REGSTACK_OAUTH__AUTO_LINK_VERIFIED_EMAILS", "true"),
    ]))
    .await;
    let (email, _) = unconfirmed.new_session("oauth-squatter").await;
    assert_eq!(
        oauth_error(&unconfirmed.oauth_signin_location("google", &email).await),
        "email_in_use",
        "registered without confirming the address: never linked"
    );

    let on = Server::start_with(&oauth_env_with(&[(
        "REGSTACK_OAUTH__AUTO_LINK_VERIFIED_EMAILS",
        "true",
    )]))
    .await;
    let (email, password_session) = on.new_session("oauth-owner").await;
    let owner = on.me(&password_session).await["id"].clone();
    // A provider that does not vouch for the address never links.
    let unverified = format!("unverified:{email}");
    assert_eq!(
        oauth_error(&on.oauth_signin_location("google", &unverified).await),
        "email_in_use"
    );
    let r = on.oauth_signin("google", &email).await;
    assert_eq!(r.json["was_new_account"], false);
    assert_eq!(on.me(&r.str("access_token")).await["id"], owner);
    // The password still works beside the link.
    on.login_ok(&email, PASSWORD).await;

    // Registration closed: an unknown person gets no account.
    let closed = Server::start_with(&oauth_env_with(&[("REGSTACK_ALLOW_REGISTRATION", "false")])).await;
    assert_eq!(
        oauth_error(&closed.oauth_signin_location("google", &verified("oauth-closed")).await),
        "registration_disabled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn linking_unlinking_and_the_last_way_in() {
    let s = Server::start_with(&oauth_env_with(&[("REGSTACK_REQUIRE_VERIFICATION", "false")])).await;
    let (_, session) = s.new_session("oauth-linker").await;
    let me = s.me(&session).await["id"].clone();
    let subject = verified("oauth-link-subject");

    let started = s
        .oauth_link_start("google/link/start?redirect_to=/settings", &session)
        .await;
    assert!(started.url.starts_with(&oidc_issuer()), "{}", started.url);
    assert_eq!(started.param("client_id"), GOOGLE_CLIENT_ID);
    let id = oauth_complete_id(&s.oauth_finish(&started, &subject).await);
    let r = s.post_json("/oauth/exchange", &json!({ "id": id })).await;
    r.assert_status(200);
    assert_eq!(r.json["was_new_account"], false);
    assert_eq!(r.json["redirect_to"], "/settings");
    assert_eq!(s.me(&r.str("access_token")).await["id"], me);
    let linked = s.get_auth("/oauth/providers", &session).await;
    assert_eq!(linked.json["linked"][0]["provider"], "google");

    // The same subject again, by the same account and by another.
    let again = s.oauth_link_start("google/link/start", &session).await;
    assert_eq!(oauth_error(&s.oauth_finish(&again, &subject).await), "already_linked");
    let (_, other) = s.new_session("oauth-other").await;
    let theirs = s.oauth_link_start("google/link/start", &other).await;
    assert_eq!(oauth_error(&s.oauth_finish(&theirs, &subject).await), "identity_in_use");
    // Signing in with the linked subject reaches the linking account.
    let r = s.oauth_signin("google", &subject).await;
    assert_eq!(s.me(&r.str("access_token")).await["id"], me);

    // A link begun before the account signed out everywhere (a password change) is void.
    let (_, late) = s.new_session("oauth-late-link").await;
    let started = s.oauth_link_start("corp/link/start", &late).await;
    s.post_json_auth(
        "/change-password",
        &late,
        &json!({"current_password": PASSWORD, "new_password": "a different long password"}),
    )
    .await
    .assert_status(200);
    let location = s.oauth_finish(&started, &verified("oauth-late-subject")).await;
    assert_eq!(oauth_error(&location), "bad_state");

    // Unlink: it has a password, so the only link may go.
    s.delete_auth("/oauth/google/link", &session)
        .await
        .assert_message(200, "Unlinked google.");
    s.delete_auth("/oauth/google/link", &session)
        .await
        .assert_detail(404, "That provider is not linked to your account.");
    s.delete_auth("/oauth/google/link", "not-a-token")
        .await
        .assert_status(401);

    // An account made through a provider has no password: its only link stays.
    let oauth_only = s
        .oauth_signin("google", &verified("oauth-only"))
        .await
        .str("access_token");
    s.delete_auth("/oauth/google/link", &oauth_only)
        .await
        .assert_detail(400, UNLINK_LAST);
    // With a second provider linked, one of them may go, and then the other is the last.
    let url = s.oauth_link_start("corp/link/start", &oauth_only).await;
    let id = oauth_complete_id(&s.oauth_finish(&url, &verified("oauth-only-corp")).await);
    s.post_json("/oauth/exchange", &json!({ "id": id }))
        .await
        .assert_status(200);
    s.delete_auth("/oauth/google/link", &oauth_only)
        .await
        .assert_message(200, "Unlinked google.");
    s.delete_auth("/oauth/corp/link", &oauth_only)
        .await
        .assert_detail(400, UNLINK_LAST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_sms_second_factor_follows_an_oauth_signin_when_enforced() {
    let s = Server::start_with(&oauth_env_with(&[
        ("REGSTACK_REQUIRE_VERIFICATION", "false"),
        ("REGSTACK_ENABLE_SMS_2FA", "true"),
        ("REGSTACK_OAUTH__ENFORCE_MFA_ON_OAUTH_SIGNIN", "true"),
    ]))
    .await;
    let (_, session) = s.new_session("oauth-mfa").await;
    let phone = "+15555550177";
    s.enrol_sms(&session, phone).await;
    // Linking is not signing in: no second factor for it.
    let subject = verified("oauth-mfa-subject");
    let url = s.oauth_link_start("google/link/start", &session).await;
    let id = oauth_complete_id(&s.oauth_finish(&url, &subject).await);
    let linked = s.post_json("/oauth/exchange", &json!({ "id": id })).await;
    assert_eq!(linked.json["mfa_required"], false);

    let r = s.oauth_signin("google", &subject).await;
    assert_eq!(r.json["mfa_required"], true);
    assert_eq!(r.json["access_token"], "");
    assert_eq!(r.json["expires_in"], 600);
    let pending = r.str("mfa_pending_token");
    let (to, code) = s.wait_for_sms_code(SmsKind::LoginMfa).await;
    assert_eq!(to, phone);
    let done = s
        .post_json(
            "/login/mfa-confirm",
            &json!({"mfa_pending_token": pending, "code": code}),
        )
        .await;
    done.assert_status(200);
    s.me(&done.str("access_token")).await;
}

/// Every callback failure sends the browser to the login page with its code; none is a 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn callback_failures_are_codes_never_errors() {
    let s = Server::start_with(&oauth_env_with(&[("REGSTACK_OAUTH__STATE_TTL_SECONDS", "2")])).await;
    let cb = |q: &str| s.url(&format!("/oauth/google/callback{q}"));
    let error_of = |r: regstack_conformance::Resp| {
        r.assert_status(302);
        oauth_error(&r.header("location").unwrap())
    };
    assert_eq!(
        error_of(s.get_absolute(&cb("?error=access_denied%0d%0aforged")).await),
        "oauth_failed"
    );
    assert_eq!(
        error_of(s.get_absolute(&cb("?state=abc")).await),
        "missing_code_or_state"
    );
    assert_eq!(
        error_of(s.get_absolute(&cb("?code=abc&state=")).await),
        "missing_code_or_state"
    );
    assert_eq!(
        error_of(s.get_absolute(&cb("?code=abc&state=unknown")).await),
        "bad_state"
    );
    assert_eq!(
        error_of(s.get_absolute(&s.url("/oauth/github/callback?code=a&state=b")).await),
        "unknown_provider"
    );

    // A callback opened in another browser (someone handed the victim the attacker's
    // callback URL, or the other way round) signs nobody in, and leaves the round trip to
    // the browser that started it.
    let started = s.oauth_start("google").await;
    let callback = regstack_conformance::sign_in_at_provider(&started.url, &verified("oauth-csrf")).await;
    assert_eq!(error_of(s.get_elsewhere(&callback, None).await), "bad_state");
    let forged = format!("{}x", started.cookie);
    assert_eq!(
        error_of(s.get_elsewhere(&callback, Some(&forged)).await),
        "bad_state",
        "a cookie with another value"
    );
    let done = s.oauth_callback(&callback, &started).await;
    let id = oauth_complete_id(&done.header("location").unwrap());
    assert!(
        done.headers
            .get_all("set-cookie")
            .iter()
            .any(|c| c.to_str().unwrap_or("").contains("Max-Age=0")),
        "the start's binding cookie is cleared"
    );
    // The exchange id is bound to this browser as well: handed to another one (to sign its
    // owner in to this account), it collects nothing, and stays.
    let stranger = reqwest::Client::new()
        .post(s.url("/oauth/exchange"))
        .json(&json!({ "id": id }))
        .send()
        .await
        .unwrap();
    assert_eq!(stranger.status().as_u16(), 404);
    // The session waits under a new id only that browser learned: the `state`, which went
    // through the provider and which whoever started the round trip knows, collects nothing.
    assert_ne!(id, started.param("state"));
    s.post_json("/oauth/exchange", &json!({ "id": started.param("state") }))
        .await
        .assert_detail(404, "OAuth state not found or already consumed.");
    s.post_json("/oauth/exchange", &json!({ "id": id }))
        .await
        .assert_status(200);

    // A replayed callback: the state was used.
    let started = s.oauth_start("google").await;
    let callback = regstack_conformance::sign_in_at_provider(&started.url, &verified("oauth-replay")).await;
    let first = s.oauth_callback(&callback, &started).await;
    oauth_complete_id(&first.header("location").unwrap());
    assert_eq!(error_of(s.oauth_callback(&callback, &started).await), "bad_state");

    // A state used with another provider's callback is spent, and refused.
    let started = s.oauth_start("google").await;
    let callback = regstack_conformance::sign_in_at_provider(&started.url, &verified("oauth-cross")).await;
    let crossed = callback.replace("/oauth/google/callback", "/oauth/corp/callback");
    assert_eq!(error_of(s.oauth_callback(&crossed, &started).await), "bad_state");
    assert_eq!(error_of(s.oauth_callback(&callback, &started).await), "bad_state");

    // A code used twice: a fresh round trip with the first one's code.
    let started = s.oauth_start("google").await;
    let used = regstack_conformance::sign_in_at_provider(&started.url, &verified("oauth-code")).await;
    s.oauth_callback(&used, &started).await.assert_status(302);
    let fresh = s.oauth_start("google").await;
    let code = query_param(&used, "code");
    let reused = cb(&format!("?code={code}&state={}", fresh.param("state")));
    assert_eq!(
        error_of(s.oauth_callback(&reused, &fresh).await),
        "token_exchange_failed"
    );

    // A nonce changed on the way to the provider comes back in the ID token.
    let mut started = s.oauth_start("google").await;
    let nonce = started.param("nonce");
    started.url = started
        .url
        .replace(&format!("nonce={nonce}"), "nonce=somebody-elses-nonce");
    let callback = regstack_conformance::sign_in_at_provider(&started.url, &verified("oauth-nonce")).await;
    assert_eq!(error_of(s.oauth_callback(&callback, &started).await), "id_token_failed");

    // An expired state.
    let started = s.oauth_start("google").await;
    let callback = regstack_conformance::sign_in_at_provider(&started.url, &verified("oauth-late")).await;
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let late = error_of(s.oauth_callback(&callback, &started).await);
    // MongoDB's TTL monitor may have removed the expired row first.
    assert!(late == "state_expired" || late == "bad_state", "{late}");

    // redirect_to must stay on this origin.
    for hostile in [
        "//evil.example/x",
        "https://evil.example/",
        "/\\evil.example",
        "javascript:alert(1)",
    ] {
        s.get(&format!("/oauth/google/start?redirect_to={}", urlencode(hostile)))
            .await
            .assert_detail(400, "redirect_to must be same-origin.");
    }
    let here = s.url("/dashboard");
    s.get(&format!("/oauth/google/start?redirect_to={}", urlencode(&here)))
        .await
        .assert_status(302);

    // The exchange: bad bodies, and a round trip whose callback has not come back yet, which
    // stays usable.
    s.post_json("/oauth/exchange", &json!({"id": "short"}))
        .await
        .assert_validation("string_too_short", &["body", "id"]);
    let started = s.oauth_start("google").await;
    s.post_json("/oauth/exchange", &json!({ "id": started.param("state") }))
        .await
        .assert_detail(404, "OAuth state not found or already consumed.");
    let id = oauth_complete_id(&s.oauth_finish(&started, &verified("oauth-early")).await);
    s.post_json("/oauth/exchange", &json!({ "id": id }))
        .await
        .assert_status(200);
}

/// The provider's answers themselves are wrong: each is refused with its code.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_provider_that_misbehaves_is_refused() {
    let i = oidc_issuer();
    let cases: Vec<(Vec<(&str, String)>, &str)> = vec![
        (
            vec![(
                "REGSTACK_OAUTH__GOOGLE_TOKEN_ENDPOINT",
                format!("{i}/sabotage/token?mode=expired"),
            )],
            "id_token_failed",
        ),
        (
            vec![(
                "REGSTACK_OAUTH__GOOGLE_TOKEN_ENDPOINT",
                format!("{i}/sabotage/token?mode=audience"),
            )],
            "id_token_failed",
        ),
        (
            vec![(
                "REGSTACK_OAUTH__GOOGLE_TOKEN_ENDPOINT",
                format!("{i}/sabotage/token?mode=issuer"),
            )],
            "id_token_failed",
        ),
        (
            vec![("REGSTACK_OAUTH__GOOGLE_ISSUER", "https://accounts.google.com".into())],
            "id_token_failed",
        ),
        (
            vec![("REGSTACK_OAUTH__GOOGLE_JWKS_URI", format!("{i}/sabotage/rogue-jwks"))],
            "id_token_failed",
        ),
        (
            vec![(
                "REGSTACK_OAUTH__GOOGLE_TOKEN_ENDPOINT",
                format!("{i}/sabotage/junk-token"),
            )],
            "token_exchange_failed",
        ),
        (
            vec![
                (
                    "REGSTACK_OAUTH__GOOGLE_TOKEN_ENDPOINT",
                    format!("{i}/sabotage/slow-token"),
                ),
                ("REGSTACK_OAUTH__HTTP_TIMEOUT_SECONDS", "2".into()),
            ],
            "token_exchange_failed",
        ),
    ];
    // The control: the sabotage proxy re-signs soundly, so each failure below is its spoiling.
    let control = format!("{i}/sabotage/token?mode=same");
    let s = Server::start_with(&oauth_env_with(&[("REGSTACK_OAUTH__GOOGLE_TOKEN_ENDPOINT", &control)])).await;
    s.oauth_signin("google", &verified("oauth-control")).await;
    for (settings, expected) in cases {
        let extra: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let s = Server::start_with(&oauth_env_with(&extra)).await;
        let location = s.oauth_signin_location("google", &verified("oauth-sabotage")).await;
        assert_eq!(oauth_error(&location), expected, "with {settings:?}");
    }
    // An issuer with no discovery document: the round trip cannot start, and says so.
    let nowhere = json!({ "corp": { "issuer": format!("{i}/nowhere"), "client_id": "regstack-corp" } });
    let s = Server::start_with(&oauth_env_with(&[("REGSTACK_OAUTH__PROVIDERS", &nowhere.to_string())])).await;
    let r = s.get("/oauth/corp/start").await;
    r.assert_detail(503, "The sign-in provider cannot be reached. Try again shortly.");
}

fn query_param(url: &str, name: &str) -> String {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("{name} missing from {url}"))
        .to_string()
}

/// A regstack 0.9.3 database (Alembic revision 0002) with an account that only ever signed in
/// with Google: after adoption, that person signs in to the same account.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_google_only_account_of_an_adopted_093_database_signs_in() {
    if !regstack_conformance::runs_here(regstack_conformance::Only::NativeSqlite) {
        return;
    }
    const LEGACY_ID: &str = "4d1c0a6e9b2f4e3a8c7d6b5a49382716";
    let login = verified("legacy-google");
    let schema = include_str!("../../../native/tests/fixtures/regstack-0.9.3-sqlite-0002.sql");
    let rows = format!(
        "INSERT INTO users VALUES ('{LEGACY_ID}', '{login}', NULL, 1, 1, 0, 'Legacy Person', NULL, 0, \
         '2026-01-01 10:00:00.000000', '2026-01-01 10:00:00.000000', NULL, NULL);
         INSERT INTO oauth_identities VALUES ('0b7e1c2d3e4f4a5b8c9d0e1f2a3b4c5d', '{LEGACY_ID}', 'google', '{login}', \
         '{login}', '2026-01-01 10:00:00.000000', NULL);"
    );
    let s = Server::start_native_on_prepared_sqlite(&oauth_env(), |dir| {
        let db = dir.join("regstack.db");
        let made = std::process::Command::new("python3")
            .args([
                "-c",
                "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2] + sys.argv[3]); c.commit()",
            ])
            .arg(&db)
            .arg(schema)
            .arg(&rows)
            .status()
            .expect("running python3");
        assert!(made.success(), "laying down the 0.9.3 database failed");
    })
    .await;
    let r = s.oauth_signin("google", &login).await;
    assert_eq!(r.json["was_new_account"], false);
    let me = s.me(&r.str("access_token")).await;
    assert_eq!(me["id"], LEGACY_ID);
    assert_eq!(me["full_name"], "Legacy Person");
    let providers = s.get_auth("/oauth/providers", &r.str("access_token")).await;
    assert!(
        providers.json["linked"][0]["last_used_at"].is_string(),
        "the use is recorded"
    );
    // No password: the only way in stays.
    s.delete_auth("/oauth/google/link", &r.str("access_token"))
        .await
        .assert_detail(400, UNLINK_LAST);
}

/// With refresh tokens on, an OAuth session comes with one, as a password sign-in's does.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn oauth_sessions_come_with_refresh_tokens() {
    let s = Server::start_with(&oauth_env_with(&[("REGSTACK_ENABLE_REFRESH_TOKENS", "true")])).await;
    let r = s.oauth_signin("google", &verified("oauth-refresh")).await;
    let token = r.str("refresh_token");
    let next = s.post_json("/token/refresh", &json!({ "refresh_token": token })).await;
    next.assert_status(200);
    assert_eq!(
        s.me(&next.str("access_token")).await["email"],
        s.me(&r.str("access_token")).await["email"]
    );
}
