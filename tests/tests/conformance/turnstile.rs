//! Cloudflare Turnstile (docs/turnstile.md, seed 004): with `turnstile_enabled`, registration
//! and password change need a token by default and login only when asked; the token is checked
//! with a siteverify stand-in on loopback that knows the secret, spends each token once and
//! reports the hostname and action the test minted it for. Without a verdict the routes fail
//! closed with 503; with Turnstile off the 0.9.3 models are unchanged.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::routing::post;
use axum::{Extension, Form, Json, Router};
use regstack_conformance::{json, unique_email, Server, Value, PASSWORD};

const SECRET: &str = "0x4-turnstile-secret-of-the-conformance-suite";
const SITE_KEY: &str = "0x4-site-key";
const MISSING: &str = "Turnstile verification is required: send the widget's token as cf-turnstile-response.";
const FAILED: &str = "Turnstile verification failed. Complete the challenge again.";
const UNAVAILABLE: &str = "Turnstile verification is unavailable. Try again shortly.";

#[derive(Default)]
struct Seen {
    spent: HashSet<String>,
    /// The `remoteip` of every verification asked for.
    remote_ips: Vec<String>,
}

/// A siteverify stand-in. A token `ok:<hostname>:<action>` succeeds once for that site and
/// form; `hang` never answers; `status-500` answers 500; anything else is refused.
async fn start_siteverify() -> (String, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let app = Router::new()
        .route(
            "/siteverify",
            post(
                |Extension(seen): Extension<Arc<Mutex<Seen>>>, Form(form): Form<HashMap<String, String>>| async move {
                    let refuse =
                        |code: &str| (StatusCode::OK, Json(json!({ "success": false, "error-codes": [code] })));
                    if form.get("secret").map(String::as_str) != Some(SECRET) {
                        return refuse("invalid-input-secret");
                    }
                    let token = form.get("response").cloned().unwrap_or_default();
                    if token == "hang" {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                    }
                    if token == "status-500" {
                        return (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({})));
                    }
                    let mut seen = seen.lock().unwrap();
                    seen.remote_ips.push(form.get("remoteip").cloned().unwrap_or_default());
                    let Some(rest) = token.strip_prefix("ok:") else {
                        return refuse("invalid-input-response");
                    };
                    if !seen.spent.insert(token.clone()) {
                        return refuse("timeout-or-duplicate");
                    }
                    // `<hostname>:<action>:<salt>`; the salt makes each token distinct.
                    let mut parts = rest.splitn(3, ':');
                    let (hostname, action) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                    (
                        StatusCode::OK,
                        Json(json!({
                            "success": true,
                            "challenge_ts": "2026-12-01T00:00:00Z",
                            "hostname": hostname,
                            "action": action,
                            "error-codes": [],
                        })),
                    )
                },
            ),
        )
        .layer(Extension(seen.clone()));
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let url = format!("http://{}/siteverify", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

fn turnstile_env(verify_url: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("REGSTACK_TURNSTILE_ENABLED", "true"),
        ("REGSTACK_TURNSTILE_SITE_KEY", SITE_KEY),
        ("REGSTACK_TURNSTILE_SECRET_KEY", SECRET),
        ("REGSTACK_TURNSTILE_VERIFY_URL", verify_url),
        ("REGSTACK_TURNSTILE_TIMEOUT_SECONDS", "2"),
        ("REGSTACK_REQUIRE_VERIFICATION", "false"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    env
}

/// A token the stand-in accepts once, for the suite's `base_url` host and `action`.
fn token(action: &str, salt: &str) -> String {
    format!("ok:127.0.0.1:{action}:{salt}")
}

fn with_token(mut body: Value, token: &str) -> Value {
    body["cf-turnstile-response"] = json!(token);
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn registration_and_password_change_need_a_token_and_login_does_not_by_default() {
    let (url, seen) = start_siteverify().await;
    let s = Server::start_with(&turnstile_env(&url, &[])).await;
    let email = unique_email("turnstile-default");
    let body = json!({ "email": email, "password": PASSWORD });
    s.post_json("/register", &body).await.assert_detail(400, MISSING);
    // Refused before the flow ran: no account exists, so the address is still free.
    s.login(&email, PASSWORD).await.assert_status(401);
    let ok = s
        .post_json("/register", &with_token(body.clone(), &token("register", "a")))
        .await;
    ok.assert_status(201);

    // Login is unguarded by default, yet takes the field when a form always sends it.
    let login = s.post_json("/login", &with_token(body.clone(), "not-checked")).await;
    login.assert_status(200);
    let session = login.str("access_token");

    let change = json!({ "current_password": PASSWORD, "new_password": "a-new-password-1" });
    s.post_json_auth("/change-password", &session, &change)
        .await
        .assert_detail(400, MISSING);
    // Still the old password: the refused request changed nothing.
    s.login(&email, PASSWORD).await.assert_status(200);
    let by_header = s
        .send(
            s.request(reqwest::Method::POST, "/change-password")
                .bearer_auth(&session)
                .header("cf-turnstile-response", token("change-password", "b"))
                .json(&change),
        )
        .await;
    by_header.assert_status(200);
    s.login(&email, "a-new-password-1").await.assert_status(200);
    // Each check told Cloudflare the client's address, as a further signal.
    let ips = seen.lock().unwrap().remote_ips.clone();
    assert_eq!(ips.len(), 2, "{ips:?}");
    assert!(ips.iter().all(|ip| ip.parse::<std::net::IpAddr>().is_ok()), "{ips:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_token_for_another_form_site_or_a_second_use_is_refused() {
    let (url, _) = start_siteverify().await;
    let s = Server::start_with(&turnstile_env(&url, &[("REGSTACK_TURNSTILE_REQUIRE_ON_LOGIN", "true")])).await;
    let email = unique_email("turnstile-refused");
    let body = json!({ "email": email, "password": PASSWORD });
    for bad in [
        "refused-by-cloudflare".to_string(),
        token("login", "wrong-form"),
        "ok:evil.example:register:wrong-site".to_string(),
        "x".repeat(2049),
    ] {
        let r = s.post_json("/register", &with_token(body.clone(), &bad)).await;
        if bad.len() > 2048 {
            r.assert_validation("string_too_long", &["body", "cf-turnstile-response"]);
        } else {
            r.assert_detail(400, FAILED);
        }
    }
    let once = token("register", "once");
    s.post_json("/register", &with_token(body.clone(), &once))
        .await
        .assert_status(201);
    // Spent: the same token again, for a different address, is refused.
    let other = json!({ "email": unique_email("turnstile-replay"), "password": PASSWORD });
    s.post_json("/register", &with_token(other, &once))
        .await
        .assert_detail(400, FAILED);

    // Login now demands a token, before the password is looked at.
    s.login(&email, PASSWORD).await.assert_detail(400, MISSING);
    s.post_json(
        "/login",
        &with_token(
            json!({ "email": email, "password": "wrong-password" }),
            &token("login", "l1"),
        ),
    )
    .await
    .assert_status(401);
    s.post_json("/login", &with_token(body.clone(), &token("login", "l2")))
        .await
        .assert_status(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_a_verdict_the_routes_fail_closed() {
    let (url, _) = start_siteverify().await;
    let s = Server::start_with(&turnstile_env(&url, &[])).await;
    let body = json!({ "email": unique_email("turnstile-closed"), "password": PASSWORD });
    for (what, bad) in [("a 500", "status-500"), ("no answer in time", "hang")] {
        let started = Instant::now();
        let r = s.post_json("/register", &with_token(body.clone(), bad)).await;
        r.assert_detail(503, UNAVAILABLE);
        assert_eq!(r.header("retry-after").as_deref(), Some("5"), "{what}");
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{what}: {:?}",
            started.elapsed()
        );
    }
    drop(s);

    // Nobody listening.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/siteverify", l.local_addr().unwrap())
    };
    let s = Server::start_with(&turnstile_env(&closed, &[])).await;
    s.post_json("/register", &with_token(body.clone(), &token("register", "c")))
        .await
        .assert_detail(503, UNAVAILABLE);
    drop(s);

    // Our own secret refused is an operator's error, not the user's: 503 too.
    let mut env = turnstile_env(&url, &[]);
    env.retain(|(k, _)| k != "REGSTACK_TURNSTILE_SECRET_KEY");
    env.push((
        "REGSTACK_TURNSTILE_SECRET_KEY".into(),
        "0x4-a-secret-cloudflare-never-issued".into(),
    ));
    let s = Server::start_with(&env).await;
    s.post_json("/register", &with_token(body, &token("register", "d")))
        .await
        .assert_detail(503, UNAVAILABLE);
    assert!(
        !s.output_tail(400).contains("0x4-a-secret-cloudflare-never-issued"),
        "the secret reached the log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_turnstile_off_the_field_is_an_extra_and_nothing_is_checked() {
    let s = Server::start(&[("REGSTACK_REQUIRE_VERIFICATION", "false")]).await;
    let body = json!({ "email": unique_email("turnstile-off"), "password": PASSWORD });
    s.post_json("/register", &with_token(body.clone(), "anything"))
        .await
        .assert_validation("extra_forbidden", &["body", "cf-turnstile-response"]);
    s.post_json("/register", &body).await.assert_status(201);
    let doc = s.get("/openapi.json").await;
    let props = &doc.json["components"]["schemas"]["RegisterRequest"]["properties"];
    assert!(props.get("cf-turnstile-response").is_none(), "{props}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_openapi_document_names_the_field_where_turnstile_is_on() {
    let (url, _) = start_siteverify().await;
    let s = Server::start_with(&turnstile_env(&url, &[])).await;
    let doc = s.get("/openapi.json").await;
    doc.assert_status(200);
    for schema in ["RegisterRequest", "LoginRequest", "ChangePasswordRequest"] {
        let props = &doc.json["components"]["schemas"][schema]["properties"];
        assert!(props.get("cf-turnstile-response").is_some(), "{schema}: {props}");
    }
    let register = &doc.json["paths"]["/register"]["post"]["responses"];
    assert!(
        register.get("400").is_some() && register.get("503").is_some(),
        "{register}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_half_configured_turnstile_stops_startup() {
    if !regstack_conformance::runs_here(regstack_conformance::Only::Native) {
        return;
    }
    let s = Server::start(&[]).await;
    let (ok, out) = s
        .cli_with_env(
            &["doctor"],
            &[
                ("REGSTACK_TURNSTILE_ENABLED", "true"),
                ("REGSTACK_TURNSTILE_SITE_KEY", SITE_KEY),
            ],
        )
        .await;
    assert!(!ok, "{out}");
    assert!(out.contains("turnstile_secret_key"), "{out}");
}
