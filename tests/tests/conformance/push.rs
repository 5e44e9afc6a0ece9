//! Web Push sign-in alerts (docs/web-push.md, seed 004). A push-service stand-in on loopback
//! plays every browser: it checks the VAPID JWT of each push with the key in its
//! `Authorization` header (and that key against `GET /push/vapid-public-key`), then decrypts
//! the body with the browser's own private key and secret (RFC 8291), as a browser would.
//! Endpoints named `gone-*` answer 410, `broken-*` 500 and `slow-*` take a minute.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aes_gcm::aead::{Aead, KeyInit};
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Extension, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use p256::ecdsa::signature::Verifier;
use regstack_conformance::{json, msg, Server, SmsKind, Value, PASSWORD};
use sha2::{Digest, Sha256};

/// A pair made by seed 004's own script (Python's `cryptography`), in its text.
const VAPID_PUBLIC: &str = "BCdXJXyjoIFw7FdU85zSC3V_vjF40xD9qgIoYMu4BWjx7uIdWiiub6atldiFZeqgHn1BJD8C0alW2sQR-Vms10E=";
const VAPID_PRIVATE: &str = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgnML9xFefd7jWVRFLjJPwba9W80iaXybvV_LATCXNVzmhRANCAAQnVyV8o6CBcOxXVPOc0gt1f74xeNMQ_aoCKGDLuAVo8e7iHVoorm-mrZXYhWXqoB59QSQ_AtGpVtrEEflZrNdB";

/// One browser: its key pair and auth secret, derived from its name.
struct Browser {
    name: String,
    secret: p256::SecretKey,
    auth: [u8; 16],
}

impl Browser {
    fn new(name: &str) -> Browser {
        let seed = Sha256::digest(format!("browser {name} {}", regstack_conformance::unique_id()));
        let secret = p256::SecretKey::from_slice(&seed).expect("a digest is a valid scalar, but for 2^-128");
        let auth: [u8; 16] = Sha256::digest(seed)[..16].try_into().unwrap();
        Browser {
            name: name.to_string(),
            secret,
            auth,
        }
    }

    fn p256dh(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.secret.public_key().to_sec1_bytes())
    }
}

/// What arrived for one browser.
#[derive(Clone, Debug)]
struct Delivery {
    browser: String,
    /// The decrypted JSON.
    payload: Value,
    /// The `k=` of the `Authorization` header.
    key: String,
}

#[derive(Default)]
struct Seen {
    browsers: Vec<Arc<Browser>>,
    delivered: Vec<Delivery>,
    /// Pushes that failed a check, with why.
    refused: Vec<String>,
}

struct PushService {
    origin: String,
    seen: Arc<Mutex<Seen>>,
}

const SUBJECT: &str = "mailto:security@example.com";

async fn start_push_service() -> PushService {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let aud = origin.clone();
    let app = Router::new()
        .route(
            "/push/{name}",
            post(
                move |Extension(seen): Extension<Arc<Mutex<Seen>>>,
                      Path(name): Path<String>,
                      headers: HeaderMap,
                      body: Bytes| {
                    let aud = aud.clone();
                    async move {
                        let browser = seen.lock().unwrap().browsers.iter().find(|b| b.name == name).cloned();
                        let Some(browser) = browser else {
                            return StatusCode::NOT_FOUND;
                        };
                        match receive(&browser, &aud, &headers, &body) {
                            Ok((payload, key)) => {
                                if name.starts_with("slow-") {
                                    tokio::time::sleep(Duration::from_secs(60)).await;
                                }
                                seen.lock().unwrap().delivered.push(Delivery {
                                    browser: name.clone(),
                                    payload,
                                    key,
                                });
                                if name.starts_with("gone-") {
                                    StatusCode::GONE
                                } else if name.starts_with("broken-") {
                                    StatusCode::INTERNAL_SERVER_ERROR
                                } else {
                                    StatusCode::CREATED
                                }
                            }
                            Err(why) => {
                                seen.lock().unwrap().refused.push(format!("{name}: {why}"));
                                StatusCode::UNAUTHORIZED
                            }
                        }
                    }
                },
            ),
        )
        .layer(Extension(seen.clone()));
    tokio::spawn(async move { axum::serve(listener, app).await });
    PushService { origin, seen }
}

/// Checks a push as a push service and a browser would; `(payload, VAPID key)`.
fn receive(browser: &Browser, aud: &str, headers: &HeaderMap, body: &[u8]) -> Result<(Value, String), String> {
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    if header("content-encoding") != "aes128gcm" {
        return Err(format!("content-encoding {:?}", header("content-encoding")));
    }
    if header("ttl").parse::<u64>().is_err() {
        return Err("no TTL".into());
    }
    // RFC 8292: `vapid t=<jwt>, k=<key>`.
    let auth = header("authorization");
    let rest = auth.strip_prefix("vapid ").ok_or("not a vapid authorization")?;
    let (mut jwt, mut key) = ("", "");
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("t=") {
            jwt = v;
        } else if let Some(v) = part.strip_prefix("k=") {
            key = v;
        }
    }
    let key_bytes = URL_SAFE_NO_PAD.decode(key).map_err(|_| "k is not base64url")?;
    let verifying = p256::ecdsa::VerifyingKey::from_sec1_bytes(&key_bytes).map_err(|_| "k is not a P-256 key")?;
    let (signed, signature) = jwt.rsplit_once('.').ok_or("not a JWT")?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| "signature not base64url")?;
    let signature = p256::ecdsa::Signature::from_slice(&signature).map_err(|_| "not an ES256 signature")?;
    verifying
        .verify(signed.as_bytes(), &signature)
        .map_err(|_| "the JWT's signature does not verify with k")?;
    let (head, claims) = signed.split_once('.').ok_or("not a JWT")?;
    let head: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(head).map_err(|_| "header")?).map_err(|_| "header")?;
    if head["alg"] != "ES256" {
        return Err(format!("alg {}", head["alg"]));
    }
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).map_err(|_| "claims")?).map_err(|_| "claims")?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let exp = claims["exp"].as_i64().unwrap_or(0);
    if claims["aud"] != aud || exp <= now || exp > now + 86_400 || claims["sub"] != SUBJECT {
        return Err(format!("claims {claims}"));
    }
    // RFC 8291: salt, record size, key id (the sender's ephemeral key), then one record.
    if body.len() < 21 {
        return Err("body too short".into());
    }
    let salt = &body[..16];
    let id_len = body[20] as usize;
    let sender = body.get(21..21 + id_len).ok_or("no key id")?;
    let sealed = &body[21 + id_len..];
    let sender = p256::PublicKey::from_sec1_bytes(sender).map_err(|_| "key id is not a P-256 key")?;
    let shared = p256::ecdh::diffie_hellman(browser.secret.to_nonzero_scalar(), sender.as_affine());
    let ua_public = browser.secret.public_key().to_sec1_bytes();
    let mut info = b"WebPush: info\0".to_vec();
    info.extend_from_slice(&ua_public);
    info.extend_from_slice(&body[21..21 + id_len]);
    let mut ikm = [0u8; 32];
    hkdf::Hkdf::<Sha256>::new(Some(&browser.auth), shared.raw_secret_bytes())
        .expand(&info, &mut ikm)
        .unwrap();
    let prk = hkdf::Hkdf::<Sha256>::new(Some(salt), &ikm);
    let (mut cek, mut nonce) = ([0u8; 16], [0u8; 12]);
    prk.expand(b"Content-Encoding: aes128gcm\0", &mut cek).unwrap();
    prk.expand(b"Content-Encoding: nonce\0", &mut nonce).unwrap();
    let cipher = aes_gcm::Aes128Gcm::new_from_slice(&cek).unwrap();
    let mut plain = cipher
        .decrypt(aes_gcm::Nonce::from_slice(&nonce), sealed)
        .map_err(|_| "the body does not decrypt with this browser's keys")?;
    while plain.last() == Some(&0) {
        plain.pop();
    }
    if plain.pop() != Some(2) {
        return Err("no last-record delimiter".into());
    }
    let payload = serde_json::from_slice(&plain).map_err(|_| "the payload is not JSON")?;
    Ok((payload, key.to_string()))
}

impl PushService {
    fn browser(&self, name: &str) -> Arc<Browser> {
        let b = Arc::new(Browser::new(name));
        self.seen.lock().unwrap().browsers.push(b.clone());
        b
    }

    fn endpoint(&self, browser: &Browser) -> String {
        format!("{}/push/{}", self.origin, browser.name)
    }

    fn subscription(&self, browser: &Browser) -> Value {
        json!({ "endpoint": self.endpoint(browser), "p256dh": browser.p256dh(), "auth": URL_SAFE_NO_PAD.encode(browser.auth) })
    }

    fn delivered(&self) -> Vec<Delivery> {
        let seen = self.seen.lock().unwrap();
        assert!(seen.refused.is_empty(), "pushes failed the checks: {:?}", seen.refused);
        seen.delivered.clone()
    }

    /// Waits until `n` deliveries have arrived in all.
    async fn wait_for(&self, n: usize) -> Vec<Delivery> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got = self.delivered();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} pushes arrived: {got:?}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Web Push on, with the fixed pair (the edge needs one: its isolates cannot share a
/// generated pair), this stand-in as a push service, and `extra`.
fn push_env(service: &PushService, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vec![
        ("REGSTACK_ENABLE_WEB_PUSH".into(), "true".into()),
        ("REGSTACK_VAPID_PUBLIC_KEY".into(), VAPID_PUBLIC.into()),
        ("REGSTACK_VAPID_PRIVATE_KEY".into(), VAPID_PRIVATE.into()),
        ("REGSTACK_VAPID_SUBJECT".into(), SUBJECT.into()),
        (
            "REGSTACK_PUSH_SERVICE_ORIGINS".into(),
            json!([service.origin, "https://fcm.googleapis.com"]).to_string(),
        ),
    ];
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    env
}

async fn subscribe(s: &Server, session: &str, body: &Value) -> regstack_conformance::Resp {
    s.post_json_auth("/push/subscriptions", session, body).await
}

/// The endpoints `GET /push/subscriptions` lists for `session`, oldest first.
async fn endpoints(s: &Server, session: &str) -> Vec<String> {
    let list = s.get_auth("/push/subscriptions", session).await;
    list.assert_status(200);
    list.json["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {list}"))
        .iter()
        .filter_map(|v| v["endpoint"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn web_push_is_off_unless_switched_on() {
    let s = Server::start(&[]).await;
    s.get("/push/vapid-public-key").await.assert_detail(404, msg::NOT_FOUND);
    let (_, session) = s.new_session("push-off").await;
    let body = json!({ "endpoint": "https://fcm.googleapis.com/fcm/send/x", "p256dh": "x", "auth": "y" });
    subscribe(&s, &session, &body).await.assert_detail(404, msg::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_new_sign_in_alerts_each_browser_and_a_refresh_does_not() {
    let service = start_push_service().await;
    let env = push_env(
        &service,
        &[
            ("REGSTACK_ENABLE_REFRESH_TOKENS", "true"),
            ("REGSTACK_ENABLE_SMS_2FA", "true"),
        ],
    );
    let s = Server::start_with(&env).await;
    let served = s.get("/push/vapid-public-key").await;
    served.assert_status(200);
    let public_key = served.str("public_key");

    let (email, session) = s.new_session("push-alerts").await;
    let (laptop, phone) = (service.browser("laptop"), service.browser("phone"));
    for b in [&laptop, &phone] {
        let r = subscribe(&s, &session, &service.subscription(b)).await;
        r.assert_status(201);
        assert_eq!(r.str("endpoint"), service.endpoint(b));
    }
    assert_eq!(endpoints(&s, &session).await.len(), 2);
    assert!(service.delivered().is_empty(), "subscribing pushed something");

    let login = s.login(&email, PASSWORD).await;
    login.assert_status(200);
    let got = service.wait_for(2).await;
    let mut browsers: Vec<&str> = got.iter().map(|d| d.browser.as_str()).collect();
    browsers.sort_unstable();
    assert_eq!(browsers, ["laptop", "phone"]);
    for d in &got {
        assert_eq!(d.key, public_key, "signed with another key than the one served");
        assert_eq!(d.key, VAPID_PUBLIC.trim_end_matches('='));
        assert_eq!(d.payload["type"], "sign_in", "{}", d.payload);
        assert_eq!(d.payload["method"], "password", "{}", d.payload);
        assert!(
            d.payload["title"].as_str().is_some_and(|t| !t.is_empty()),
            "{}",
            d.payload
        );
    }

    // A refresh continues a sign-in; it is not a new one. The login after it is, and its
    // alerts were queued after any the refresh could have queued.
    let refreshed = s
        .post_json(
            "/token/refresh",
            &json!({ "refresh_token": login.str("refresh_token") }),
        )
        .await;
    refreshed.assert_status(200);
    s.login(&email, PASSWORD).await.assert_status(200);
    service.wait_for(4).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(service.delivered().len(), 4, "{:?}", service.delivered());

    // A second factor: the alert comes when the code is confirmed, not when it is sent.
    s.enrol_sms(&session, "+15555550178").await;
    let r = s.login(&email, PASSWORD).await;
    assert_eq!(r.json["status"], "mfa_required", "{r}");
    let (_, code) = s.wait_for_sms_code(SmsKind::LoginMfa).await;
    let confirmed = s
        .post_json(
            "/login/mfa-confirm",
            &json!({ "mfa_pending_token": r.str("mfa_pending_token"), "code": code }),
        )
        .await;
    confirmed.assert_status(200);
    let got = service.wait_for(6).await;
    assert!(got[4..].iter().all(|d| d.payload["method"] == "sms"), "{:?}", &got[4..]);

    // Unsubscribed: no more alerts to that browser.
    let gone = json!({ "endpoint": service.endpoint(&phone) });
    s.delete_json_auth("/push/subscriptions", &session, &gone)
        .await
        .assert_status(200);
    s.delete_json_auth("/push/subscriptions", &session, &gone)
        .await
        .assert_status(404);
    let r = s.login(&email, PASSWORD).await;
    let (_, code) = s.wait_for_sms_code(SmsKind::LoginMfa).await;
    s.post_json(
        "/login/mfa-confirm",
        &json!({ "mfa_pending_token": r.str("mfa_pending_token"), "code": code }),
    )
    .await
    .assert_status(200);
    service.wait_for(7).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = service.delivered();
    assert_eq!(got.len(), 7, "{got:?}");
    assert_eq!(got[6].browser, "laptop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_password_change_ends_the_subscriptions_made_before_it() {
    let service = start_push_service().await;
    let s = Server::start_with(&push_env(&service, &[])).await;
    let (email, session) = s.new_session("push-cutoff").await;
    let borrowed = service.browser("borrowed");
    subscribe(&s, &session, &service.subscription(&borrowed))
        .await
        .assert_status(201);
    // The owner takes the account back: every session ends, and so does that subscription.
    let change = json!({ "current_password": PASSWORD, "new_password": "another-password-2" });
    s.post_json_auth("/change-password", &session, &change)
        .await
        .assert_status(200);
    let fresh = s.login_ok(&email, "another-password-2").await;
    let own = service.browser("own");
    subscribe(&s, &fresh, &service.subscription(&own))
        .await
        .assert_status(201);
    s.login(&email, "another-password-2").await.assert_status(200);
    let got = service.wait_for(1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got_after = service.delivered();
    assert_eq!(got_after.len(), 1, "{got_after:?}");
    assert_eq!(got[0].browser, "own");
    assert_eq!(endpoints(&s, &fresh).await, [service.endpoint(&own)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn subscriptions_are_checked_and_capped() {
    let service = start_push_service().await;
    let s = Server::start_with(&push_env(&service, &[("REGSTACK_PUSH_SUBSCRIPTION_LIMIT", "3")])).await;
    let (_, session) = s.new_session("push-checks").await;
    let b = service.browser("checked");
    let good = service.subscription(&b);
    s.post_json("/push/subscriptions", &good).await.assert_status(401);

    let with = |key: &str, value: Value| {
        let mut body = good.clone();
        body[key] = value;
        body
    };
    let not_a_point = URL_SAFE_NO_PAD.encode([[4u8].as_slice(), &[0xff; 64]].concat());
    let other_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/push/checked", l.local_addr().unwrap())
    };
    for (body, field) in [
        (with("endpoint", json!(other_port)), "endpoint"),
        (
            with("endpoint", json!("http://fcm.googleapis.com/fcm/send/x")),
            "endpoint",
        ),
        (with("endpoint", json!("https://evil.example/push")), "endpoint"),
        (
            with("endpoint", json!("https://fcm.googleapis.com.evil.example/x")),
            "endpoint",
        ),
        (with("endpoint", json!("https://user@fcm.googleapis.com/x")), "endpoint"),
        (
            with("endpoint", json!("https://fcm.googleapis.com/fcm/send/\u{1f600}")),
            "endpoint",
        ),
        (with("p256dh", json!(URL_SAFE_NO_PAD.encode([4u8; 64]))), "p256dh"),
        (with("p256dh", json!(not_a_point)), "p256dh"),
        (with("p256dh", json!("not base64 !")), "p256dh"),
        (with("auth", json!(URL_SAFE_NO_PAD.encode([1u8; 15]))), "auth"),
    ] {
        let r = subscribe(&s, &session, &body).await;
        r.assert_validation("value_error", &["body", field]);
    }
    subscribe(
        &s,
        &session,
        &with(
            "endpoint",
            json!(format!("https://fcm.googleapis.com/{}", "x".repeat(1024))),
        ),
    )
    .await
    .assert_validation("string_too_long", &["body", "endpoint"]);
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("auth");
    subscribe(&s, &session, &missing)
        .await
        .assert_validation("missing", &["body", "auth"]);
    subscribe(&s, &session, &with("extra", json!(1)))
        .await
        .assert_validation("extra_forbidden", &["body", "extra"]);

    // The same browser again replaces its subscription; past the cap the oldest goes.
    let first = subscribe(&s, &session, &good).await;
    first.assert_status(201);
    let again = subscribe(&s, &session, &good).await;
    again.assert_status(201);
    assert_eq!(again.str("id"), first.str("id"), "a second row for one browser");
    assert_eq!(endpoints(&s, &session).await, [service.endpoint(&b)]);
    let more: Vec<Arc<Browser>> = (0..3).map(|i| service.browser(&format!("more-{i}"))).collect();
    for m in &more {
        subscribe(&s, &session, &service.subscription(m))
            .await
            .assert_status(201);
    }
    let listed = endpoints(&s, &session).await;
    assert_eq!(listed.len(), 3, "{listed:?}");
    assert!(!listed.contains(&service.endpoint(&b)), "the oldest stayed: {listed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gone_subscriptions_are_deleted_and_failing_services_never_delay_a_sign_in() {
    let service = start_push_service().await;
    let env = push_env(
        &service,
        &[
            ("REGSTACK_VAPID_PUBLIC_KEY", VAPID_PUBLIC),
            ("REGSTACK_VAPID_PRIVATE_KEY", VAPID_PRIVATE),
        ],
    );
    let s = Server::start_with(&env).await;
    let served = s.get("/push/vapid-public-key").await;
    assert_eq!(served.str("public_key"), VAPID_PUBLIC.trim_end_matches('='));
    let (email, session) = s.new_session("push-gone").await;
    let browsers: Vec<Arc<Browser>> = ["gone-1", "broken-1", "slow-1", "fine-1"]
        .iter()
        .map(|n| service.browser(n))
        .collect();
    for b in &browsers {
        subscribe(&s, &session, &service.subscription(b))
            .await
            .assert_status(201);
    }
    let started = Instant::now();
    s.login(&email, PASSWORD).await.assert_status(200);
    // The slow service holds its push for a minute, and a send gives up after 10 s; the
    // sign-in waited for neither.
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    let got = service.wait_for(3).await;
    assert!(
        got.iter().all(|d| d.key == VAPID_PUBLIC.trim_end_matches('=')),
        "{got:?}"
    );
    // 410 deletes that subscription; a 500 does not.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let listed = endpoints(&s, &session).await;
        if !listed.contains(&service.endpoint(&browsers[0])) {
            assert_eq!(listed.len(), 3, "{listed:?}");
            assert!(listed.contains(&service.endpoint(&browsers[1])), "{listed:?}");
            break;
        }
        assert!(Instant::now() < deadline, "the gone subscription stayed: {listed:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn vapid_generate_prints_a_pair_that_loads_and_bad_pairs_stop_startup() {
    if !regstack_conformance::runs_here(regstack_conformance::Only::Native) {
        return;
    }
    let s = Server::start(&[]).await;
    let out = s.cli(&["vapid", "generate"]).await;
    let line = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name} in {out}"))
            .to_string()
    };
    let (public, private) = (line("REGSTACK_VAPID_PUBLIC_KEY"), line("REGSTACK_VAPID_PRIVATE_KEY"));
    // Seed 004's text: padded base64url of the 65-byte point and of the PKCS#8 DER.
    assert_eq!(public.len(), 88, "{public}");
    assert!(public.ends_with('=') && !public.contains(['+', '/']), "{public}");
    assert!(line("REGSTACK_VAPID_SUBJECT").starts_with("mailto:"), "{out}");
    let (ok, said) = s
        .cli_with_env(
            &["doctor"],
            &[
                ("REGSTACK_ENABLE_WEB_PUSH", "true"),
                ("REGSTACK_VAPID_PUBLIC_KEY", &public),
                ("REGSTACK_VAPID_PRIVATE_KEY", &private),
            ],
        )
        .await;
    assert!(ok && !said.contains("vapid"), "a generated pair was refused: {said}");
    for (public, private, field) in [
        (VAPID_PUBLIC, private.as_str(), "vapid_public_key"),
        (public.as_str(), "bm90IGEga2V5", "vapid_private_key"),
        ("", private.as_str(), "vapid_public_key"),
    ] {
        let (ok, said) = s
            .cli_with_env(
                &["doctor"],
                &[
                    ("REGSTACK_ENABLE_WEB_PUSH", "true"),
                    ("REGSTACK_VAPID_PUBLIC_KEY", public),
                    ("REGSTACK_VAPID_PRIVATE_KEY", private),
                ],
            )
            .await;
        assert!(!ok && said.contains(field), "{field}: {said}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_oauth_sign_in_alerts_and_linking_a_provider_does_not() {
    let service = start_push_service().await;
    let mut env = regstack_conformance::oauth_env_with(&[("REGSTACK_REQUIRE_VERIFICATION", "false")]);
    env.extend(push_env(&service, &[]));
    let s = Server::start_with(&env).await;
    let (_, session) = s.new_session("push-oauth").await;
    let browser = service.browser("oauth-laptop");
    subscribe(&s, &session, &service.subscription(&browser))
        .await
        .assert_status(201);
    // Linking Google to the signed-in account is not a sign-in.
    let login = regstack_conformance::unique_email("push-oauth-subject");
    let started = s.oauth_link_start("google/link/start", &session).await;
    let id = regstack_conformance::oauth_complete_id(&s.oauth_finish(&started, &login).await);
    s.post_json("/oauth/exchange", &json!({ "id": id }))
        .await
        .assert_status(200);
    // Signing in through it is.
    s.oauth_signin("google", &login).await;
    let got = service.wait_for(1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got_after = service.delivered();
    assert_eq!(got_after.len(), 1, "the link pushed too: {got_after:?}");
    assert_eq!(got[0].payload["method"], "oauth", "{}", got[0].payload);
    assert_eq!(got[0].payload["provider"], "google", "{}", got[0].payload);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_generated_secret_warns_once() {
    let service = start_push_service().await;
    // The edge refuses Web Push without a configured pair (docs/web-push.md), so there only
    // the JWT key is generated.
    let edge = regstack_conformance::on_edge();
    let mut env: Vec<(String, String)> = push_env(&service, &[]);
    let dropped = |k: &str| k.starts_with("REGSTACK_VAPID_") || (edge && k == "REGSTACK_ENABLE_WEB_PUSH");
    env.retain(|(k, _)| !dropped(k));
    env.push(("REGSTACK_JWT_SECRET".into(), String::new()));
    let s = Server::start_with(&env).await;
    // The edge builds its instance on the first request; make a few.
    let (_, session) = s.new_session("push-warnings").await;
    s.me(&session).await;
    let mut needles = vec![("jwt_secret", "Always set a stable key in production")];
    if !edge {
        needles.push(("VAPID", "set a stable VAPID key pair"));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let log = loop {
        let log = s.output_tail(2000);
        if needles.iter().all(|(_, n)| log.contains(n)) || Instant::now() > deadline {
            break log;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for (what, needle) in needles {
        assert_eq!(log.matches(needle).count(), 1, "{what}: {log}");
    }
}
