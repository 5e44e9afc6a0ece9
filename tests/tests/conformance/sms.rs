//! SMS two-factor authentication (docs/wire.md, "Login, MFA, logout" and "Phone and SMS 2FA", "SMS codes" for the two SMS texts and the code mechanics, "Console output" for how codes are scraped):
//! phone setup, the MFA branch of `/login`, `/login/mfa-confirm`, the code outcomes, their
//! behaviour under parallel guesses, and what is mounted and printed when.
//!
//! Real-time code expiry is not exercised here: the minimum `sms_code_ttl_seconds` is 30, which
//! is too slow for this suite (the core's unit tests cover it with an injected clock).

use std::time::Duration;

use regstack_conformance::{
    assert_user_public, find_sms_code, json, jwt_parts, msg, sms_recipient, unique_email, Api, Resp, Server, SmsKind,
    Value, NULL_SMS_MARKER, PASSWORD,
};
use reqwest::Method;

/// The number most scenarios enrol.
const PHONE: &str = "+15555550123";

/// The suite's usual environment plus SMS 2FA, without email verification.
const SMS_ON: [(&str, &str); 2] = [
    ("REGSTACK_ENABLE_SMS_2FA", "true"),
    ("REGSTACK_REQUIRE_VERIFICATION", "false"),
];

/// [`SMS_ON`] with the account lockout and the per-account code limit out of the way, for the
/// scenarios about one code's own attempts (wrong guesses also count toward the lockout, and
/// codes per account are limited: `hardening` covers both).
const SMS_CODES: [(&str, &str); 4] = [
    SMS_ON[0],
    SMS_ON[1],
    ("REGSTACK_LOGIN_LOCKOUT_THRESHOLD", "1000"),
    ("REGSTACK_SMS_CODE_RATE_LIMIT", ""),
];

/// A code of the same length that is certainly wrong (the last digit changed).
fn other_code(code: &str) -> String {
    let (head, last) = code.split_at(code.len() - 1);
    let d = last.parse::<u32>().expect("a digit");
    format!("{head}{}", (d + 1) % 10)
}

#[track_caller]
fn assert_code_shape(code: &str, len: usize) {
    assert!(
        code.len() == len && code.bytes().all(|b| b.is_ascii_digit()),
        "expected a {len}-digit code, got {code:?}"
    );
}

#[track_caller]
fn assert_token_response(r: &Resp) -> String {
    r.assert_status(200);
    let token = r.str("access_token");
    r.assert_json(
        200,
        &json!({"access_token": token, "token_type": "bearer", "expires_in": 7200}),
    );
    let (_, claims) = jwt_parts(&token);
    assert_eq!(claims["purpose"], "session", "session token claims: {claims}");
    token
}

/// `exp - iat` of a JWT, in whole seconds.
fn jwt_ttl(claims: &Value) -> i64 {
    let iat = claims["iat"]
        .as_f64()
        .unwrap_or_else(|| panic!("iat is not a number: {claims}"));
    let exp = claims["exp"]
        .as_i64()
        .unwrap_or_else(|| panic!("exp is not an integer: {claims}"));
    exp - iat.floor() as i64
}

async fn phone_start(s: &Server, token: &str, phone: &str, password: &str) -> Resp {
    s.post_json_auth(
        "/phone/start",
        token,
        &json!({"phone_number": phone, "current_password": password}),
    )
    .await
}

/// `POST /phone/start`, asserting the 202 body; returns the pending token and the scraped code.
async fn start_setup(s: &Server, token: &str, phone: &str) -> (String, String) {
    let r = phone_start(s, token, phone, PASSWORD).await;
    r.assert_status(202);
    let pending = r.str("pending_token");
    r.assert_json(
        202,
        &json!({"status": "code_sent", "pending_token": pending, "expires_in": 600}),
    );
    let (to, code) = s.wait_for_sms_code(SmsKind::PhoneSetup).await;
    assert_eq!(to, phone, "the setup SMS goes to the new number");
    assert_code_shape(&code, 6);
    (pending, code)
}

async fn phone_confirm(s: &Server, pending: &str, code: &str) -> Resp {
    s.post_json("/phone/confirm", &json!({"pending_token": pending, "code": code}))
        .await
}

/// The model of a code confirmation at `path`: the code is 4–10 characters, the code and the
/// token (`token_field`) are both required, and no other key is allowed.
async fn assert_code_body_rules(s: &Server, path: &str, token_field: &str, token: &str) {
    let body = |pairs: &[(&str, Value)]| Value::Object(pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect());
    let token = Value::from(token);
    for (code, error) in [("12", "string_too_short"), ("12345678901", "string_too_long")] {
        s.post_json(path, &body(&[(token_field, token.clone()), ("code", code.into())]))
            .await
            .assert_validation(error, &["body", "code"]);
    }
    s.post_json(path, &body(&[(token_field, token.clone())]))
        .await
        .assert_validation("missing", &["body", "code"]);
    s.post_json(path, &body(&[("code", "123456".into())]))
        .await
        .assert_validation("missing", &["body", token_field]);
    s.post_json(
        path,
        &body(&[(token_field, token), ("code", "123456".into()), ("x", 1.into())]),
    )
    .await
    .assert_validation("extra_forbidden", &["body", "x"]);
}

async fn mfa_confirm(api: &Api, pending: &str, code: &str) -> Resp {
    api.post_json(
        "/login/mfa-confirm",
        &json!({"mfa_pending_token": pending, "code": code}),
    )
    .await
}

/// A fresh user with SMS 2FA enabled on `phone`: `(email, session token)`.
async fn mfa_user(s: &Server, tag: &str, phone: &str) -> (String, String) {
    let (email, token) = s.new_session(tag).await;
    let (pending, code) = start_setup(s, &token, phone).await;
    let r = phone_confirm(s, &pending, &code).await;
    r.assert_status(200);
    assert_eq!(r.json["phone_number"], phone, "{r}");
    assert_eq!(r.json["is_mfa_enabled"], true, "{r}");
    (email, token)
}

/// `POST /login` for an MFA user, asserting the `MfaPendingResponse`; returns the pending
/// token and the scraped sign-in code.
async fn start_mfa_login(s: &Server, email: &str, phone: &str) -> (String, String) {
    let r = s.login(email, PASSWORD).await;
    r.assert_status(200);
    let pending = r.str("mfa_pending_token");
    r.assert_json(
        200,
        &json!({"status": "mfa_required", "mfa_pending_token": pending, "expires_in": 600, "delivery": "sms"}),
    );
    let (to, code) = s.wait_for_sms_code(SmsKind::LoginMfa).await;
    assert_eq!(to, phone, "the sign-in SMS goes to the enrolled number");
    assert_code_shape(&code, 6);
    (pending, code)
}

// ---------------------------------------------------------------------------------------------
// The happy path

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn full_sms_2fa_flow() {
    // Email verification on (the default), as `regstack validate` runs it.
    let s = Server::start(&[("REGSTACK_ENABLE_SMS_2FA", "true")]).await;
    let email = unique_email("sms-flow");
    let registered = s.register_verified(&email, PASSWORD).await;
    let token = s.login_ok(&email, PASSWORD).await;
    let before = s.me(&token).await;
    assert_eq!(before["phone_number"], Value::Null, "{before}");
    assert_eq!(before["is_mfa_enabled"], false, "{before}");

    // Start: 202 with a phone_setup token that binds the number.
    let r = phone_start(&s, &token, PHONE, PASSWORD).await;
    r.assert_status(202);
    let setup = r.str("pending_token");
    r.assert_json(
        202,
        &json!({"status": "code_sent", "pending_token": setup, "expires_in": 600}),
    );
    let (_, claims) = jwt_parts(&setup);
    assert_eq!(claims["purpose"], "phone_setup", "{claims}");
    assert_eq!(claims["phone"], PHONE, "{claims}");
    assert_eq!(claims["sub"], registered["id"], "{claims}");
    assert_eq!(jwt_ttl(&claims), 600, "{claims}");
    // The number is written only after the code; the setup token is no session.
    let mid = s.me(&token).await;
    assert_eq!(mid["phone_number"], Value::Null, "{mid}");
    assert_eq!(mid["is_mfa_enabled"], false, "{mid}");
    s.get_auth("/me", &setup).await.assert_detail(401, msg::INVALID_TOKEN);

    let (to, code) = s.wait_for_sms_code(SmsKind::PhoneSetup).await;
    assert_eq!(to, PHONE);
    assert_code_shape(&code, 6);

    // Confirm without auth: the UserPublic with the number and MFA on.
    let r = phone_confirm(&s, &setup, &code).await;
    r.assert_status(200);
    assert_user_public(&r.json);
    assert_eq!(r.json["id"], registered["id"], "{r}");
    assert_eq!(r.json["email"], email.as_str(), "{r}");
    assert_eq!(r.json["phone_number"], PHONE, "{r}");
    assert_eq!(r.json["is_mfa_enabled"], true, "{r}");
    let me = s.me(&token).await;
    assert_eq!(me["phone_number"], PHONE, "{me}");
    assert_eq!(me["is_mfa_enabled"], true, "{me}");
    // The code row was consumed.
    phone_confirm(&s, &setup, &code)
        .await
        .assert_detail(400, msg::NO_PHONE_CODE);

    s.post_auth("/logout", &token)
        .await
        .assert_message(200, msg::LOGGED_OUT);

    // Login now stops at the MFA step: no access token.
    let r = s.login(&email, PASSWORD).await;
    r.assert_status(200);
    let pending = r.str("mfa_pending_token");
    r.assert_json(
        200,
        &json!({"status": "mfa_required", "mfa_pending_token": pending, "expires_in": 600, "delivery": "sms"}),
    );
    let (_, claims) = jwt_parts(&pending);
    assert_eq!(claims["purpose"], "login_mfa", "{claims}");
    assert_eq!(claims["sub"], registered["id"], "{claims}");
    assert_eq!(jwt_ttl(&claims), 600, "{claims}");
    let mut keys: Vec<&str> = claims
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["exp", "iat", "jti", "purpose", "sub"],
        "login_mfa claims: {claims}"
    );
    s.get_auth("/me", &pending).await.assert_detail(401, msg::INVALID_TOKEN);

    let (to, code) = s.wait_for_sms_code(SmsKind::LoginMfa).await;
    assert_eq!(to, PHONE);
    assert_code_shape(&code, 6);

    let r = mfa_confirm(&s.api(), &pending, &code).await;
    let session = assert_token_response(&r);
    let me = s.me(&session).await;
    assert_eq!(me["email"], email.as_str(), "{me}");
    assert!(me["last_login"].is_string(), "mfa-confirm sets last_login: {me}");
    // The sign-in code is single-use.
    mfa_confirm(&s.api(), &pending, &code)
        .await
        .assert_detail(400, msg::NO_SIGN_IN_CODE);

    // Disable: 200, number cleared, MFA off, and login issues a token directly again.
    s.delete_json_auth("/phone", &session, &json!({"current_password": PASSWORD}))
        .await
        .assert_message(200, msg::SMS_2FA_DISABLED);
    let me = s.me(&session).await;
    assert_eq!(me["phone_number"], Value::Null, "{me}");
    assert_eq!(me["is_mfa_enabled"], false, "{me}");
    let r = s.login(&email, PASSWORD).await;
    let direct = assert_token_response(&r);
    s.me(&direct).await;
    s.expect_no_sms(Duration::from_millis(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sms_settings_shape_the_texts_and_tokens() {
    let s = Server::start(&[
        ("REGSTACK_ENABLE_SMS_2FA", "true"),
        ("REGSTACK_REQUIRE_VERIFICATION", "false"),
        ("REGSTACK_APP_NAME", "Acme Demo"),
        ("REGSTACK_SMS_CODE_LENGTH", "8"),
        ("REGSTACK_SMS_CODE_TTL_SECONDS", "120"),
        ("REGSTACK_MFA_PENDING_TOKEN_TTL_SECONDS", "180"),
    ])
    .await;
    let phone = "+447700900123";
    let (email, token) = s.new_session("sms-settings").await;
    let r = phone_start(&s, &token, phone, PASSWORD).await;
    r.assert_status(202);
    let setup = r.str("pending_token");
    r.assert_json(
        202,
        &json!({"status": "code_sent", "pending_token": setup, "expires_in": 180}),
    );
    assert_eq!(jwt_ttl(&jwt_parts(&setup).1), 180);
    let line = s
        .wait_for_line("the phone-setup SMS", |l| l.contains(NULL_SMS_MARKER))
        .await;
    let code = find_sms_code(&line, SmsKind::PhoneSetup).unwrap_or_else(|| panic!("no code in {line:?}"));
    assert_code_shape(&code, 8);
    assert_eq!(sms_recipient(&line).as_deref(), Some(phone), "{line}");
    assert!(
        line.ends_with(&format!(
            "To: {phone} | From: (unset) | Body: Acme Demo verification code: {code}. Expires in 2 minutes."
        )),
        "phone-setup SMS line: {line}"
    );
    phone_confirm(&s, &setup, &code).await.assert_status(200);

    let r = s.login(&email, PASSWORD).await;
    r.assert_status(200);
    let pending = r.str("mfa_pending_token");
    r.assert_json(
        200,
        &json!({"status": "mfa_required", "mfa_pending_token": pending, "expires_in": 180, "delivery": "sms"}),
    );
    assert_eq!(jwt_ttl(&jwt_parts(&pending).1), 180);
    let line = s
        .wait_for_line("the sign-in SMS", |l| l.contains(NULL_SMS_MARKER))
        .await;
    let code = find_sms_code(&line, SmsKind::LoginMfa).unwrap_or_else(|| panic!("no code in {line:?}"));
    assert_code_shape(&code, 8);
    assert!(
        line.ends_with(&format!(
            "To: {phone} | From: (unset) | Body: Acme Demo sign-in code: {code}. Expires in 2 minutes. \
             If you didn't try to sign in, ignore this message."
        )),
        "sign-in SMS line: {line}"
    );
    assert_token_response(&mfa_confirm(&s.api(), &pending, &code).await);
}

// ---------------------------------------------------------------------------------------------
// /phone/start and DELETE /phone

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn phone_start_rejections() {
    let s = Server::start(&SMS_ON).await;
    let (_, token) = s.new_session("sms-start").await;

    // Not E.164: 400 before the password is looked at, whether it is right or wrong.
    for bad in [
        "15555550123",
        "+05555550123",
        "+1 555 555 0123",
        "+1-555-555-0123",
        "++15555550123",
        "+1555555012a",
        "+1234567890123456",
        "+1234567890123456789",
        "abcd",
    ] {
        phone_start(&s, &token, bad, "not-the-password")
            .await
            .assert_detail(400, msg::PHONE_NOT_E164);
        phone_start(&s, &token, bad, PASSWORD)
            .await
            .assert_detail(400, msg::PHONE_NOT_E164);
    }
    // A valid number with the wrong password.
    phone_start(&s, &token, PHONE, "not-the-password")
        .await
        .assert_detail(400, msg::WRONG_CURRENT_PASSWORD);
    phone_start(&s, &token, "+123", "")
        .await
        .assert_detail(400, msg::WRONG_CURRENT_PASSWORD);

    // Length 4–20 is a model constraint: 422.
    let e = phone_start(&s, &token, "+12", PASSWORD)
        .await
        .assert_validation("string_too_short", &["body", "phone_number"]);
    assert_eq!(e["ctx"], json!({"min_length": 4}), "{e}");
    let e = phone_start(&s, &token, "+123456789012345678901", PASSWORD)
        .await
        .assert_validation("string_too_long", &["body", "phone_number"]);
    assert_eq!(e["ctx"], json!({"max_length": 20}), "{e}");
    s.post_json_auth("/phone/start", &token, &json!({"phone_number": PHONE}))
        .await
        .assert_validation("missing", &["body", "current_password"]);
    s.post_json_auth(
        "/phone/start",
        &token,
        &json!({"phone_number": PHONE, "current_password": PASSWORD, "extra": 1}),
    )
    .await
    .assert_validation("extra_forbidden", &["body", "extra"]);

    // Auth before the body: 401 even with a bad or missing body.
    s.post_json("/phone/start", &json!({"phone_number": "1", "nope": true}))
        .await
        .assert_detail(401, msg::AUTH_REQUIRED)
        .assert_www_authenticate();
    s.post_raw("/phone/start", Some("application/json"), b"{not json".to_vec(), None)
        .await
        .assert_detail(401, msg::AUTH_REQUIRED);
    s.post_raw("/phone/start", None, Vec::new(), None)
        .await
        .assert_detail(401, msg::AUTH_REQUIRED);
    s.post_raw(
        "/phone/start",
        Some("application/json"),
        b"[]".to_vec(),
        Some("garbage"),
    )
    .await
    .assert_detail(401, msg::INVALID_TOKEN);
    // The validate feature probe: mounted, so not 404.
    s.post_json(
        "/phone/start",
        &json!({"phone_number": "+15555550100", "current_password": "x"}),
    )
    .await
    .assert_detail(401, msg::AUTH_REQUIRED);

    // Nothing was sent and nothing changed.
    s.expect_no_sms(Duration::from_millis(500)).await;
    let me = s.me(&token).await;
    assert_eq!(me["phone_number"], Value::Null, "{me}");
    assert_eq!(me["is_mfa_enabled"], false, "{me}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn delete_phone_rejections_and_code_cleanup() {
    let s = Server::start(&SMS_ON).await;
    let (email, token) = mfa_user(&s, "sms-delete", PHONE).await;

    s.delete_json_auth("/phone", &token, &json!({"current_password": "not-the-password"}))
        .await
        .assert_detail(400, msg::WRONG_CURRENT_PASSWORD);
    s.delete_auth("/phone", &token)
        .await
        .assert_validation("missing", &["body"]);
    s.send(s.request(Method::DELETE, "/phone"))
        .await
        .assert_detail(401, msg::AUTH_REQUIRED)
        .assert_www_authenticate();
    s.send(s.request(Method::DELETE, "/phone").bearer_auth("garbage"))
        .await
        .assert_detail(401, msg::INVALID_TOKEN);
    let me = s.me(&token).await;
    assert_eq!(me["is_mfa_enabled"], true, "rejections leave MFA on: {me}");

    // A pending sign-in code and a pending phone-setup code, then disable: both rows go.
    let (login_pending, login_code) = start_mfa_login(&s, &email, PHONE).await;
    let (setup_pending, setup_code) = start_setup(&s, &token, "+15555550199").await;
    s.delete_json_auth("/phone", &token, &json!({"current_password": PASSWORD}))
        .await
        .assert_message(200, msg::SMS_2FA_DISABLED);
    mfa_confirm(&s.api(), &login_pending, &login_code)
        .await
        .assert_detail(400, msg::NO_SIGN_IN_CODE);
    phone_confirm(&s, &setup_pending, &setup_code)
        .await
        .assert_detail(400, msg::NO_PHONE_CODE);
    let me = s.me(&token).await;
    assert_eq!(me["phone_number"], Value::Null, "{me}");
    assert_eq!(me["is_mfa_enabled"], false, "{me}");
    // Disabling again is harmless.
    s.delete_json_auth("/phone", &token, &json!({"current_password": PASSWORD}))
        .await
        .assert_message(200, msg::SMS_2FA_DISABLED);
    assert_token_response(&s.login(&email, PASSWORD).await);
}

// ---------------------------------------------------------------------------------------------
// Code outcomes on /phone/confirm

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn phone_confirm_code_outcomes() {
    let s = Server::start(&SMS_CODES).await;
    let (_, token) = s.new_session("sms-phone-codes").await;
    let (setup, code) = start_setup(&s, &token, PHONE).await;
    let wrong = other_code(&code);

    for n in [4, 3, 2, 1] {
        phone_confirm(&s, &setup, &wrong)
            .await
            .assert_detail(400, &msg::wrong_code(n));
    }
    phone_confirm(&s, &setup, &wrong)
        .await
        .assert_detail(400, msg::PHONE_CODE_LOCKED);
    // The row is gone: the right code is now "no pending code".
    phone_confirm(&s, &setup, &code)
        .await
        .assert_detail(400, msg::NO_PHONE_CODE);
    let me = s.me(&token).await;
    assert_eq!(me["phone_number"], Value::Null, "{me}");
    assert_eq!(me["is_mfa_enabled"], false, "{me}");

    // Bad setup sessions: garbage, a session token, a login_mfa-shaped stranger.
    for bad in ["garbage", "a.b.c", token.as_str()] {
        phone_confirm(&s, bad, "123456")
            .await
            .assert_detail(400, msg::BAD_PHONE_SETUP_SESSION);
    }

    assert_code_body_rules(&s, "/phone/confirm", "pending_token", &setup).await;

    // A new /phone/start replaces the code: the older one is now wrong.
    let (_, first) = start_setup(&s, &token, PHONE).await;
    let (setup2, second) = start_setup(&s, &token, PHONE).await;
    if first != second {
        phone_confirm(&s, &setup2, &first)
            .await
            .assert_detail(400, &msg::wrong_code(4));
    }
    let r = phone_confirm(&s, &setup2, &second).await;
    r.assert_status(200);
    assert_eq!(r.json["phone_number"], PHONE, "{r}");
    assert_eq!(r.json["is_mfa_enabled"], true, "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_setup_code_only_confirms_the_number_it_was_texted_to() {
    let s = Server::start(&SMS_ON).await;
    let (_, token) = s.new_session("sms-bound").await;
    let (for_a, _) = start_setup(&s, &token, "+15555550141").await;
    let (for_b, code_b) = start_setup(&s, &token, "+15555550142").await;
    // B's code with A's token would set a number that never received anything.
    phone_confirm(&s, &for_a, &code_b)
        .await
        .assert_detail(400, &msg::wrong_code(4));
    let r = phone_confirm(&s, &for_b, &code_b).await;
    r.assert_status(200);
    assert_eq!(r.json["phone_number"], "+15555550142", "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn phone_confirm_with_two_attempts() {
    let s = Server::start(&[
        ("REGSTACK_ENABLE_SMS_2FA", "true"),
        ("REGSTACK_REQUIRE_VERIFICATION", "false"),
        ("REGSTACK_SMS_CODE_MAX_ATTEMPTS", "2"),
    ])
    .await;
    let (_, token) = s.new_session("sms-phone-max2").await;
    let (setup, code) = start_setup(&s, &token, PHONE).await;
    let wrong = other_code(&code);
    phone_confirm(&s, &setup, &wrong)
        .await
        .assert_detail(400, &msg::wrong_code(1));
    phone_confirm(&s, &setup, &wrong)
        .await
        .assert_detail(400, msg::PHONE_CODE_LOCKED);
    phone_confirm(&s, &setup, &code)
        .await
        .assert_detail(400, msg::NO_PHONE_CODE);

    // A re-issued code starts again from zero attempts (docs/wire.md, "SMS codes": re-issue replaces the row).
    let (setup, code) = start_setup(&s, &token, PHONE).await;
    phone_confirm(&s, &setup, &other_code(&code))
        .await
        .assert_detail(400, &msg::wrong_code(1));
    let r = phone_confirm(&s, &setup, &code).await;
    r.assert_status(200);
    assert_eq!(r.json["is_mfa_enabled"], true, "{r}");
}

// ---------------------------------------------------------------------------------------------
// Code outcomes on /login/mfa-confirm

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mfa_confirm_code_outcomes() {
    let s = Server::start(&SMS_CODES).await;
    let (email, session) = mfa_user(&s, "sms-login-codes", PHONE).await;
    let (pending, code) = start_mfa_login(&s, &email, PHONE).await;
    let wrong = other_code(&code);

    for n in [4, 3, 2, 1] {
        mfa_confirm(&s.api(), &pending, &wrong)
            .await
            .assert_detail(400, &msg::wrong_code(n));
    }
    mfa_confirm(&s.api(), &pending, &wrong)
        .await
        .assert_detail(400, msg::SIGN_IN_CODE_LOCKED);
    mfa_confirm(&s.api(), &pending, &code)
        .await
        .assert_detail(400, msg::NO_SIGN_IN_CODE);

    // Bad sign-in sessions: garbage, a session token, a phone_setup token.
    let (setup, _) = start_setup(&s, &session, "+15555550177").await;
    for bad in ["garbage", "a.b.c", session.as_str(), setup.as_str()] {
        mfa_confirm(&s.api(), bad, "123456")
            .await
            .assert_detail(400, msg::BAD_SIGN_IN_SESSION);
    }

    assert_code_body_rules(&s, "/login/mfa-confirm", "mfa_pending_token", &pending).await;

    // A new /login replaces the sign-in code: the older code fails with the newer token.
    let (_, first) = start_mfa_login(&s, &email, PHONE).await;
    let (pending2, second) = start_mfa_login(&s, &email, PHONE).await;
    if first != second {
        mfa_confirm(&s.api(), &pending2, &first)
            .await
            .assert_detail(400, &msg::wrong_code(4));
    }
    let token = assert_token_response(&mfa_confirm(&s.api(), &pending2, &second).await);
    s.me(&token).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mfa_confirm_with_two_attempts() {
    let s = Server::start(&[
        ("REGSTACK_ENABLE_SMS_2FA", "true"),
        ("REGSTACK_REQUIRE_VERIFICATION", "false"),
        ("REGSTACK_SMS_CODE_MAX_ATTEMPTS", "2"),
    ])
    .await;
    let (email, _) = mfa_user(&s, "sms-login-max2", PHONE).await;
    let (pending, code) = start_mfa_login(&s, &email, PHONE).await;
    let wrong = other_code(&code);
    mfa_confirm(&s.api(), &pending, &wrong)
        .await
        .assert_detail(400, &msg::wrong_code(1));
    mfa_confirm(&s.api(), &pending, &wrong)
        .await
        .assert_detail(400, msg::SIGN_IN_CODE_LOCKED);
    mfa_confirm(&s.api(), &pending, &code)
        .await
        .assert_detail(400, msg::NO_SIGN_IN_CODE);

    // Signing in again issues a fresh code with fresh attempts.
    let (pending, code) = start_mfa_login(&s, &email, PHONE).await;
    mfa_confirm(&s.api(), &pending, &other_code(&code))
        .await
        .assert_detail(400, &msg::wrong_code(1));
    assert_token_response(&mfa_confirm(&s.api(), &pending, &code).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mfa_login_keeps_the_lockout_until_the_code_is_confirmed() {
    let s = Server::start(&SMS_ON).await;
    let (email, _) = mfa_user(&s, "sms-lockout", PHONE).await;

    s.login(&email, "wrong-password-1")
        .await
        .assert_detail(401, &msg::bad_login_remaining(4));
    // The password step of an MFA login does not clear the failures (docs/wire.md, "Login, MFA, logout", step 6)…
    let (pending, code) = start_mfa_login(&s, &email, PHONE).await;
    s.login(&email, "wrong-password-2")
        .await
        .assert_detail(401, &msg::bad_login_remaining(3));
    // …that replaced the code, so sign in again and finish: success clears them.
    let (pending2, code2) = start_mfa_login(&s, &email, PHONE).await;
    if code != code2 {
        mfa_confirm(&s.api(), &pending, &code)
            .await
            .assert_detail(400, &msg::wrong_code(4));
    }
    assert_token_response(&mfa_confirm(&s.api(), &pending2, &code2).await);
    s.login(&email, "wrong-password-3")
        .await
        .assert_detail(401, &msg::bad_login_remaining(4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn confirm_after_the_account_is_deleted_never_signs_in() {
    let s = Server::start(&SMS_ON).await;
    let (email, session) = mfa_user(&s, "sms-deleted", PHONE).await;
    let (pending, code) = start_mfa_login(&s, &email, PHONE).await;
    let (setup, setup_code) = start_setup(&s, &session, "+15555550166").await;
    s.delete_json_auth("/account", &session, &json!({"current_password": PASSWORD}))
        .await
        .assert_message(200, msg::ACCOUNT_DELETED);
    // Deleting the account deletes its codes with it, so the code answers "no pending code";
    // a server that kept the rows would verify the code and then fail the user lookup ("Token
    // does not match an active account."). Either way no session and no phone change.
    let r = mfa_confirm(&s.api(), &pending, &code).await;
    r.assert_status(400);
    assert!(
        r.json == json!({"detail": msg::NO_ACTIVE_ACCOUNT}) || r.json == json!({"detail": msg::NO_SIGN_IN_CODE}),
        "unexpected body:\n{r}"
    );
    let r = phone_confirm(&s, &setup, &setup_code).await;
    r.assert_status(400);
    assert!(
        r.json == json!({"detail": msg::NO_ACTIVE_ACCOUNT}) || r.json == json!({"detail": msg::NO_PHONE_CODE}),
        "unexpected body:\n{r}"
    );
}

// ---------------------------------------------------------------------------------------------
// Races

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_wrong_guesses_use_exactly_the_allowed_attempts() {
    let s = Server::start(&SMS_CODES).await;
    let (email, _) = mfa_user(&s, "sms-race-wrong", PHONE).await;
    let (pending, code) = start_mfa_login(&s, &email, PHONE).await;
    let wrong = other_code(&code);
    let bodies = (0..20)
        .map(|_| json!({"mfa_pending_token": pending, "code": wrong}))
        .collect();
    let rs = s.api().post_json_at_once("/login/mfa-confirm", bodies).await;

    let mut remaining = Vec::new();
    let mut locked = 0;
    for r in &rs {
        r.assert_status(400);
        let detail = r
            .detail()
            .as_str()
            .unwrap_or_else(|| panic!("detail is not a string:\n{r}"));
        if let Some(n) = (1..=4).find(|n| detail == msg::wrong_code(*n)) {
            remaining.push(n);
        } else if detail == msg::SIGN_IN_CODE_LOCKED {
            locked += 1;
        } else {
            assert_eq!(detail, msg::NO_SIGN_IN_CODE, "unexpected body:\n{r}");
        }
    }
    remaining.sort_unstable();
    assert_eq!(remaining, [1, 2, 3, 4], "the wrong-code answers: {rs:#?}");
    assert!(locked >= 1, "the guess that used the last attempt says so: {rs:#?}");
    // The row is gone: even the right code fails now.
    mfa_confirm(&s.api(), &pending, &code)
        .await
        .assert_detail(400, msg::NO_SIGN_IN_CODE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_right_guesses_sign_in_once() {
    let s = Server::start(&SMS_CODES).await;
    let (email, _) = mfa_user(&s, "sms-race-right", PHONE).await;
    let (pending, code) = start_mfa_login(&s, &email, PHONE).await;
    let bodies = (0..10)
        .map(|_| json!({"mfa_pending_token": pending, "code": code}))
        .collect();
    let rs = s.api().post_json_at_once("/login/mfa-confirm", bodies).await;
    let winners: Vec<&Resp> = rs.iter().filter(|r| r.status == 200).collect();
    assert_eq!(winners.len(), 1, "exactly one sign-in: {rs:#?}");
    let token = assert_token_response(winners[0]);
    for r in rs.iter().filter(|r| r.status != 200) {
        r.assert_detail(400, msg::NO_SIGN_IN_CODE);
    }
    s.me(&token).await;

    // The same on /phone/confirm: one setup wins.
    let (_, session) = s.new_session("sms-race-setup").await;
    let (setup, code) = start_setup(&s, &session, "+15555550144").await;
    let bodies = (0..10).map(|_| json!({"pending_token": setup, "code": code})).collect();
    let rs = s.api().post_json_at_once("/phone/confirm", bodies).await;
    let winners: Vec<&Resp> = rs.iter().filter(|r| r.status == 200).collect();
    assert_eq!(winners.len(), 1, "exactly one setup: {rs:#?}");
    assert_eq!(winners[0].json["is_mfa_enabled"], true, "{}", winners[0]);
    for r in rs.iter().filter(|r| r.status != 200) {
        r.assert_detail(400, msg::NO_PHONE_CODE);
    }
    let me = s.me(&session).await;
    assert_eq!(me["phone_number"], "+15555550144", "{me}");
}

// ---------------------------------------------------------------------------------------------
// The flag, and what is printed

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn flag_off_unmounts_phone_routes_but_not_the_mfa_login() {
    let mut s = Server::start(&SMS_ON).await;
    let (email, session) = mfa_user(&s, "sms-flag", PHONE).await;
    s.restart_with_env(vec![("REGSTACK_REQUIRE_VERIFICATION".into(), "false".into())])
        .await;

    let not_found = json!({"detail": msg::NOT_FOUND});
    phone_start(&s, &session, PHONE, PASSWORD)
        .await
        .assert_json(404, &not_found);
    s.post_json(
        "/phone/start",
        &json!({"phone_number": "+15555550100", "current_password": "x"}),
    )
    .await
    .assert_json(404, &not_found);
    s.post_json("/phone/confirm", &json!({"pending_token": "x", "code": "123456"}))
        .await
        .assert_json(404, &not_found);
    s.delete_json_auth("/phone", &session, &json!({"current_password": PASSWORD}))
        .await
        .assert_json(404, &not_found);

    // /login/mfa-confirm stays mounted (docs/wire.md, "Decision 7 (6)")…
    mfa_confirm(&s.api(), "garbage", "123456")
        .await
        .assert_detail(400, msg::BAD_SIGN_IN_SESSION);
    // …and the MFA branch of /login depends on the user, not on the flag.
    let (pending, code) = start_mfa_login(&s, &email, PHONE).await;
    let token = assert_token_response(&mfa_confirm(&s.api(), &pending, &code).await);
    let me = s.me(&token).await;
    assert_eq!(me["is_mfa_enabled"], true, "{me}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn flag_off_from_the_start() {
    let s = Server::start(&[("REGSTACK_REQUIRE_VERIFICATION", "false")]).await;
    let (email, session) = s.new_session("sms-off").await;
    phone_start(&s, &session, PHONE, PASSWORD)
        .await
        .assert_detail(404, msg::NOT_FOUND);
    mfa_confirm(&s.api(), "garbage", "123456")
        .await
        .assert_detail(400, msg::BAD_SIGN_IN_SESSION);
    mfa_confirm(&s.api(), &session, "123456")
        .await
        .assert_detail(400, msg::BAD_SIGN_IN_SESSION);
    assert_token_response(&s.login(&email, PASSWORD).await);
    s.expect_no_sms(Duration::from_millis(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn codes_are_not_logged_without_log_bodies() {
    // Extra environment overrides the harness default `REGSTACK_SMS__LOG_BODIES=true`.
    let s = Server::start(&[
        ("REGSTACK_ENABLE_SMS_2FA", "true"),
        ("REGSTACK_REQUIRE_VERIFICATION", "false"),
        ("REGSTACK_SMS__LOG_BODIES", "false"),
    ])
    .await;
    let (_, token) = s.new_session("sms-quiet").await;
    let r = phone_start(&s, &token, PHONE, PASSWORD).await;
    r.assert_status(202);
    let line = s
        .wait_for_line("the suppressed phone-setup SMS line", |l| l.contains(NULL_SMS_MARKER))
        .await;
    assert!(line.ends_with("| (body suppressed)"), "SMS line: {line}");
    assert_eq!(sms_recipient(&line).as_deref(), Some(PHONE), "{line}");
    assert!(!line.contains("Body:"), "SMS line: {line}");
    assert_eq!(find_sms_code(&line, SmsKind::PhoneSetup), None, "{line}");
    // Nothing else in the output carries the code phrase either.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let out = s.output_tail(5000);
    assert!(
        !out.contains(SmsKind::PhoneSetup.phrase()) && !out.contains(SmsKind::LoginMfa.phrase()),
        "a code phrase was printed:\n{out}"
    );
}
