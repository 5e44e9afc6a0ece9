//! Email through Amazon SES and SMS through Amazon SNS (native only: every test here is named
//! `aws_…` so the edge run can skip them), against moto's server mode (an AWS API
//! emulator that `scripts/test` starts and names in `REGSTACK_TEST_MOTO_URL`). The server
//! reaches it through the SDK's standard `AWS_ENDPOINT_URL`; the tests read what was sent from
//! moto's `/moto-api/data.json` and its request recording, follow the link or use the code,
//! and check what an operator sees when the provider refuses.

use std::time::{Duration, Instant};

use regstack_conformance::{
    base64url_decode, find_links, find_sms_code, json, msg, random_u64, token_of, unique_email, unique_id, Server,
    SmsKind, Value, PASSWORD,
};

/// The domain the tests verify in SES, so mail from it is accepted.
const VERIFIED_DOMAIN: &str = "ses-verified.example.com";

fn moto() -> String {
    std::env::var("REGSTACK_TEST_MOTO_URL")
        .expect("REGSTACK_TEST_MOTO_URL must name the moto server (scripts/test starts one)")
}

/// A request signed well enough for moto to route it to `service` (moto checks no signature).
fn moto_call(service: &str, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential=testing/20260101/eu-west-1/{service}/aws4_request, SignedHeaders=host, Signature=00"
    );
    reqwest::Client::new()
        .request(method, format!("{}{path}", moto()))
        .header("authorization", auth)
}

/// Verifies the test domain in SES (idempotent), as an operator does before sending.
async fn verify_sender_domain() {
    let r = moto_call("ses", reqwest::Method::POST, "/v2/email/identities")
        .json(&json!({ "EmailIdentity": VERIFIED_DOMAIN }))
        .send()
        .await
        .expect("moto answers");
    let status = r.status().as_u16();
    let body = r.text().await.unwrap_or_default();
    assert!(
        status == 200 || body.contains("AlreadyExists"),
        "creating the SES identity: {status} {body}"
    );
}

async fn moto_data() -> Value {
    reqwest::get(format!("{}/moto-api/data.json", moto()))
        .await
        .expect("moto answers")
        .json()
        .await
        .expect("moto's data.json is JSON")
}

/// Polls moto until `pick` finds something in its data, for up to ten seconds.
async fn wait_in_moto<T>(what: &str, server: &Server, pick: impl Fn(&Value) -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(found) = pick(&moto_data().await) {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "{what} never reached moto\n--- server output (tail) ---\n{}",
            server.output_tail(40)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The SES message moto holds for `to`.
async fn ses_message_to(server: &Server, to: &str) -> Value {
    wait_in_moto(&format!("an SES message to {to}"), server, |d| {
        d["ses"]["Message"]
            .as_array()?
            .iter()
            .find(|m| {
                m["destinations"]["ToAddresses"]
                    .as_array()
                    .is_some_and(|a| a.contains(&json!(to)))
            })
            .cloned()
    })
    .await
}

/// The text of the SNS SMS moto holds for `phone` (the latest one when there are several).
async fn sns_sms_to(server: &Server, phone: &str, containing: &str) -> String {
    wait_in_moto(&format!("an SNS SMS to {phone}"), server, |d| {
        d["sns"]["SMS"]
            .as_array()?
            .iter()
            .rev()
            .find(|m| m["phone_number"] == phone && m["message"].as_str().is_some_and(|t| t.contains(containing)))
            .and_then(|m| m["message"].as_str().map(str::to_string))
    })
    .await
}

/// The server's environment for SES: endpoint and default-chain credentials from the standard
/// AWS variables, shared files pointed away from the machine's own.
fn aws_env(dir: &str) -> Vec<(String, String)> {
    [
        ("AWS_ENDPOINT_URL", moto()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_CONFIG_FILE", format!("{dir}/aws-config")),
        ("AWS_SHARED_CREDENTIALS_FILE", format!("{dir}/aws-credentials")),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

async fn start(extra: Vec<(String, String)>) -> Server {
    let refs: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Server::start(&refs).await
}

fn ses_env(dir: &str, from: &str) -> Vec<(String, String)> {
    let mut env = aws_env(dir);
    env.extend(
        [
            ("REGSTACK_EMAIL__BACKEND", "ses"),
            ("REGSTACK_EMAIL__FROM_ADDRESS", from),
            ("REGSTACK_EMAIL__FROM_NAME", "Accounts Team"),
            ("REGSTACK_APP_NAME", "SES Test"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    env
}

/// The links of an HTML body, with the entities minijinja's autoescape writes decoded.
fn html_links(html: &str) -> Vec<String> {
    let text = html
        .replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    find_links(&text)
}

fn scratch_dir() -> String {
    let dir = std::env::temp_dir().join(format!("regstack-aws-{}", unique_id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.to_string_lossy().into_owned()
}

#[tokio::test]
async fn ses_delivers_the_verification_email_and_its_link_verifies() {
    if !regstack_conformance::runs_here(regstack_conformance::Only::NativeSqlite) {
        return;
    }
    verify_sender_domain().await;
    let dir = scratch_dir();
    let s = start(ses_env(&dir, &format!("accounts@{VERIFIED_DOMAIN}"))).await;
    let email = unique_email("ses");
    s.post_json("/register", &json!({"email": email, "password": PASSWORD}))
        .await
        .assert_status(201);
    let m = ses_message_to(&s, &email).await;
    assert_eq!(
        m["source"],
        format!("Accounts Team <accounts@{VERIFIED_DOMAIN}>"),
        "{m}"
    );
    assert!(
        m["subject"].as_str().is_some_and(|t| t.contains("SES Test")),
        "subject names the app: {m}"
    );
    let body = m["body"].as_str().expect("a body");
    let link = html_links(body)
        .into_iter()
        .find(|l| l.contains("/verify"))
        .unwrap_or_else(|| panic!("no verify link in the SES body: {body}"));
    let verified = s.post_json("/verify", &json!({"token": token_of(&link)})).await;
    verified.assert_status(200);
    assert_eq!(verified.json["email"], email.as_str());
    assert_eq!(verified.json["is_verified"], true);
    s.login_ok(&email, PASSWORD).await;
}

#[tokio::test]
async fn ses_with_explicit_keys_delivers_a_password_reset_link_that_works() {
    if !regstack_conformance::runs_here(regstack_conformance::Only::NativeSqlite) {
        return;
    }
    verify_sender_domain().await;
    let dir = scratch_dir();
    let mut env = ses_env(&dir, &format!("reset@{VERIFIED_DOMAIN}"));
    env.retain(|(k, _)| !k.starts_with("AWS_ACCESS_KEY_ID") && !k.starts_with("AWS_SECRET_ACCESS_KEY"));
    env.push(("REGSTACK_EMAIL__SES_ACCESS_KEY_ID".into(), "AKIDEXPLICIT".into()));
    env.push(("REGSTACK_EMAIL__SES_SECRET_ACCESS_KEY".into(), "explicit-secret".into()));
    env.push(("REGSTACK_REQUIRE_VERIFICATION".into(), "false".into()));
    let s = start(env).await;
    let email = unique_email("ses-reset");
    s.post_json("/register", &json!({"email": email, "password": PASSWORD}))
        .await
        .assert_status(201);
    s.post_json("/forgot-password", &json!({"email": email}))
        .await
        .assert_message(202, msg::FORGOT_ACK);
    let m = ses_message_to(&s, &email).await;
    let body = m["body"].as_str().expect("a body");
    let link = html_links(body)
        .into_iter()
        .find(|l| l.contains("/reset-password"))
        .unwrap_or_else(|| panic!("no reset link in the SES body: {body}"));
    let new_password = "an entirely new passphrase";
    s.post_json(
        "/reset-password",
        &json!({"token": token_of(&link), "new_password": new_password}),
    )
    .await
    .assert_message(200, msg::PASSWORD_RESET);
    s.login_ok(&email, new_password).await;
}

#[tokio::test]
async fn an_ses_refusal_is_logged_for_the_operator_and_the_route_answers_as_usual() {
    if !regstack_conformance::runs_here(regstack_conformance::Only::NativeSqlite) {
        return;
    }
    let dir = scratch_dir();
    let s = start(ses_env(&dir, "accounts@never-verified.example.net")).await;
    let email = unique_email("ses-refused");
    s.post_json("/register", &json!({"email": email, "password": PASSWORD}))
        .await
        .assert_status(201);
    let line = s
        .wait_for_line("the SES failure", |l| l.contains("email delivery failed"))
        .await;
    assert!(
        line.contains("MessageRejected"),
        "the service's error code is shown: {line}"
    );
    assert!(line.contains(&email), "the recipient is shown: {line}");
    let output = s.output_tail(200);
    assert!(
        !output.contains("token="),
        "no link or token reaches the log when delivery fails:\n{output}"
    );
    // Nothing was half-done: the pending registration stands and a resend answers as always.
    s.post_json("/resend-verification", &json!({"email": email}))
        .await
        .assert_message(202, msg::RESEND_ACK);
}

#[tokio::test]
async fn a_named_ses_profile_is_used_instead_of_the_default_chain() {
    if !regstack_conformance::runs_here(regstack_conformance::Only::NativeSqlite) {
        return;
    }
    verify_sender_domain().await;
    let dir = scratch_dir();
    std::fs::write(
        format!("{dir}/aws-credentials"),
        "[mailer]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = profile-secret\n",
    )
    .unwrap();
    // The profile exists: mail goes out.
    let mut env = ses_env(&dir, &format!("profile@{VERIFIED_DOMAIN}"));
    env.push(("REGSTACK_EMAIL__SES_PROFILE".into(), "mailer".into()));
    let s = start(env.clone()).await;
    let email = unique_email("ses-profile");
    s.post_json("/register", &json!({"email": email, "password": PASSWORD}))
        .await
        .assert_status(201);
    ses_message_to(&s, &email).await;
    drop(s);
    // A profile that does not exist: the default chain's keys are not silently used instead.
    for (k, v) in env.iter_mut() {
        if k == "REGSTACK_EMAIL__SES_PROFILE" {
            *v = "absent".into();
        }
    }
    let s = start(env).await;
    let email = unique_email("ses-no-profile");
    s.post_json("/register", &json!({"email": email, "password": PASSWORD}))
        .await
        .assert_status(201);
    let line = s
        .wait_for_line("the credentials failure", |l| l.contains("email delivery failed"))
        .await;
    assert!(line.contains("absent"), "the missing profile is named: {line}");
}

#[tokio::test]
async fn ses_keys_and_a_profile_together_stop_the_server_at_start() {
    if !regstack_conformance::runs_here(regstack_conformance::Only::NativeSqlite) {
        return;
    }
    let dir = scratch_dir();
    let bin = regstack_conformance::binary_path();
    let mut env = ses_env(&dir, &format!("x@{VERIFIED_DOMAIN}"));
    env.push(("REGSTACK_EMAIL__SES_PROFILE".into(), "mailer".into()));
    env.push(("REGSTACK_EMAIL__SES_ACCESS_KEY_ID".into(), "AKID".into()));
    env.push(("REGSTACK_EMAIL__SES_SECRET_ACCESS_KEY".into(), "secret".into()));
    let out = tokio::process::Command::new(bin)
        .args(["serve", "--host", "127.0.0.1", "--port", "0"])
        .current_dir(&dir)
        .envs(env)
        .env("REGSTACK_DATABASE_URL", format!("sqlite+aiosqlite:///{dir}/x.db"))
        .output()
        .await
        .expect("running regstack");
    assert!(!out.status.success(), "the server must refuse to start");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("mutually exclusive"),
        "the conflict is explained: {stderr}"
    );
}

/// A North American test number no other scenario uses.
fn unique_phone() -> String {
    let digits = format!("{:07}", random_u64() % 10_000_000);
    format!("+1555{digits:0>7}")
}

#[tokio::test]
async fn sns_carries_the_whole_sms_second_factor() {
    if !regstack_conformance::runs_here(regstack_conformance::Only::NativeSqlite) {
        return;
    }
    let dir = scratch_dir();
    let mut env = aws_env(&dir);
    env.extend(
        [
            ("REGSTACK_ENABLE_SMS_2FA", "true"),
            ("REGSTACK_REQUIRE_VERIFICATION", "false"),
            ("REGSTACK_SMS__BACKEND", "sns"),
            ("REGSTACK_SMS__FROM_NUMBER", "RegStack"),
            ("REGSTACK_APP_NAME", "SNS Test"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let s = start(env).await;
    let email = unique_email("sns");
    let phone = unique_phone();
    s.post_json("/register", &json!({"email": email, "password": PASSWORD}))
        .await
        .assert_status(201);
    let token = s.login_ok(&email, PASSWORD).await;
    let started = s
        .post_json_auth(
            "/phone/start",
            &token,
            &json!({"phone_number": phone, "current_password": PASSWORD}),
        )
        .await;
    started.assert_status(202);
    let text = sns_sms_to(&s, &phone, "verification code:").await;
    let code = find_sms_code(&text, SmsKind::PhoneSetup).unwrap_or_else(|| panic!("no code in {text:?}"));
    s.post_json(
        "/phone/confirm",
        &json!({"pending_token": started.str("pending_token"), "code": code}),
    )
    .await
    .assert_status(200);

    let login = s.login(&email, PASSWORD).await;
    login.assert_status(200);
    assert_eq!(login.json["status"], "mfa_required", "{login}");
    let text = sns_sms_to(&s, &phone, "sign-in code:").await;
    let code = find_sms_code(&text, SmsKind::LoginMfa).unwrap_or_else(|| panic!("no code in {text:?}"));
    let confirmed = s
        .post_json(
            "/login/mfa-confirm",
            &json!({"mfa_pending_token": login.str("mfa_pending_token"), "code": code}),
        )
        .await;
    confirmed.assert_status(200);
    assert!(confirmed.json["access_token"].is_string());

    // The sender ID travels as the attribute SNS documents (moto drops attributes from its
    // store, so the recorded request is read).
    let recording = reqwest::get(format!("{}/moto-api/recorder/download-recording", moto()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let encoded_phone = phone.replace('+', "%2B");
    let publish = recording
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|r| {
            let body = r["body"].as_str()?;
            let body = if r["body_encoded"] == true {
                String::from_utf8(base64url_decode(&body.replace('+', "-").replace('/', "_"))?).ok()?
            } else {
                body.to_string()
            };
            (body.contains("Action=Publish") && body.contains(&encoded_phone)).then_some(body)
        })
        .next()
        .unwrap_or_else(|| panic!("no Publish to {phone} in moto's recording"));
    assert!(
        publish.contains("Name=AWS.SNS.SMS.SenderID") && publish.contains("StringValue=RegStack"),
        "SenderID attribute: {publish}"
    );
    assert!(
        publish.contains("Name=AWS.SNS.SMS.SMSType") && publish.contains("StringValue=Transactional"),
        "SMSType attribute: {publish}"
    );
}
