//! Forward-auth at the edge: the worker proxies paths outside its own prefixes to an origin
//! app, refuses protected paths without a valid session, strips identity headers that
//! clients send, and vouches for the signed-in user with signed headers that the origin
//! verifies with regstack's `EdgeUser` extractor. The origin here is a small axum app on
//! loopback. Edge only: `scripts/test` runs these (named `edge_…`) in its edge pass.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{HeaderMap, Uri};
use axum::routing::{any, get};
use axum::{Extension, Json, Router};
use regstack::{EdgeUser, ForwardAuth, OptionalEdgeUser};
use regstack_conformance::{json, msg, on_edge, Server, Value};

const SECRET: &str = "origin-auth-secret-for-the-conformance-suite-0123";

struct Origin {
    url: String,
    hits: Arc<AtomicUsize>,
}

/// The origin app: `/app/whoami` needs an `EdgeUser`; `/public/echo` shows what arrived.
async fn start_origin() -> Origin {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let app = Router::new()
        .route(
            "/app/whoami",
            get(|EdgeUser(who): EdgeUser| async move {
                Json(json!({"id": who.user_id, "email": who.email, "is_superuser": who.is_superuser}))
            }),
        )
        .route(
            "/public/echo",
            any(
                |OptionalEdgeUser(who): OptionalEdgeUser, uri: Uri, headers: HeaderMap, body: Bytes| async move {
                    let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap_or("").to_string());
                    let regstack: Vec<(String, String)> = headers
                        .iter()
                        .filter(|(k, _)| k.as_str().starts_with("x-regstack-"))
                        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                        .collect();
                    Json(json!({
                        "user": who.map(|w| w.email),
                        "regstack_headers": regstack,
                        "query": uri.query(),
                        "body": String::from_utf8_lossy(&body),
                        "authorization": header("authorization"),
                        "forwarded": header("forwarded"),
                        "x_forwarded_for": header("x-forwarded-for"),
                        "x_forwarded_host": header("x-forwarded-host"),
                        "x_real_ip": header("x-real-ip"),
                        "x_forwarded_prefix": header("x-forwarded-prefix"),
                    }))
                },
            ),
        )
        .layer(Extension(ForwardAuth::new(SECRET).expect("a 32-character secret")))
        .layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                let counted = counted.clone();
                async move {
                    counted.fetch_add(1, Ordering::SeqCst);
                    next.run(req).await
                }
            },
        ));
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Origin { url, hits }
}

async fn edge_in_front_of(origin: &Origin) -> Server {
    assert!(
        on_edge(),
        "forward-auth is the edge worker's: run with REGSTACK_TEST_EDGE (scripts/test does)"
    );
    Server::start(&[
        ("REGSTACK_REQUIRE_VERIFICATION", "false"),
        ("REGSTACK_ORIGIN_URL", &origin.url),
        ("REGSTACK_ORIGIN_PROTECTED_PATHS", r#"["/app/*"]"#),
        ("REGSTACK_ORIGIN_AUTH_SECRET", SECRET),
    ])
    .await
}

#[tokio::test]
async fn anonymous_access_to_a_protected_path_is_refused_before_the_origin() {
    if !regstack_conformance::runs_here(regstack_conformance::Only::Edge) {
        return;
    }
    let origin = start_origin().await;
    let s = edge_in_front_of(&origin).await;
    let r = s.get_root("/app/whoami").await;
    r.assert_detail(401, msg::AUTH_REQUIRED).assert_www_authenticate();
    let r = s
        .send(
            s.client
                .get(format!("{}/app/whoami", s.root_url()))
                .bearer_auth("not-a-jwt"),
        )
        .await;
    r.assert_detail(401, msg::INVALID_TOKEN);
    assert_eq!(origin.hits.load(Ordering::SeqCst), 0, "the origin never saw them");
}

#[tokio::test]
async fn a_valid_session_reaches_the_origin_with_verified_identity() {
    if !regstack_conformance::runs_here(regstack_conformance::Only::Edge) {
        return;
    }
    let origin = start_origin().await;
    let s = edge_in_front_of(&origin).await;
    let (email, token) = s.new_session("forward").await;
    let me = s.me(&token).await;
    let r = s
        .send(s.client.get(format!("{}/app/whoami", s.root_url())).bearer_auth(&token))
        .await;
    r.assert_json(200, &json!({"id": me["id"], "email": email, "is_superuser": false}));
    // Method, query and body pass through; the session token is replaced by the identity.
    let r = s
        .send(
            s.client
                .post(format!("{}/public/echo?a=1&b=two", s.root_url()))
                .bearer_auth(&token)
                .body("hello origin"),
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.json["user"], email.as_str());
    assert_eq!(r.json["query"], "a=1&b=two");
    assert_eq!(r.json["body"], "hello origin");
    assert_eq!(r.json["authorization"], Value::Null, "{r}");
    // An Authorization header that is not a regstack session is the origin's business.
    let r = s
        .send(
            s.client
                .get(format!("{}/public/echo", s.root_url()))
                .header("authorization", "Basic b3JpZ2luOmtleQ=="),
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.json["authorization"], "Basic b3JpZ2luOmtleQ==", "{r}");
    assert_eq!(r.json["user"], Value::Null);
}

#[tokio::test]
async fn forwarding_headers_come_from_the_edge_not_the_client() {
    if !regstack_conformance::runs_here(regstack_conformance::Only::Edge) {
        return;
    }
    let origin = start_origin().await;
    let s = edge_in_front_of(&origin).await;
    let r = s
        .send(
            s.client
                .get(format!("{}/public/echo", s.root_url()))
                .header("x-forwarded-for", "6.6.6.6")
                .header("forwarded", "for=6.6.6.6;host=evil.example")
                .header("x-forwarded-host", "evil.example")
                .header("x-real-ip", "6.6.6.6")
                .header("x-forwarded-prefix", "//evil.example"),
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.json["forwarded"], Value::Null, "{r}");
    assert_eq!(r.json["x_real_ip"], Value::Null, "{r}");
    assert_eq!(r.json["x_forwarded_prefix"], Value::Null, "{r}");
    let forwarded_for = r.json["x_forwarded_for"].as_str().unwrap_or_default();
    assert!(!forwarded_for.contains("6.6.6.6"), "{r}");
    let host = r.json["x_forwarded_host"].as_str().unwrap_or_default();
    assert!(!host.is_empty() && !host.contains("evil"), "{r}");
}

#[tokio::test]
async fn other_spellings_of_a_protected_path_are_refused_too() {
    if !regstack_conformance::runs_here(regstack_conformance::Only::Edge) {
        return;
    }
    let origin = start_origin().await;
    let s = edge_in_front_of(&origin).await;
    for path in ["/App/whoami", "//app/whoami", "/%61pp/whoami", "/app;x/whoami", "/APP"] {
        s.get_root(path).await.assert_detail(401, msg::AUTH_REQUIRED);
    }
    assert_eq!(origin.hits.load(Ordering::SeqCst), 0, "the origin never saw them");
}

#[tokio::test]
async fn client_sent_identity_headers_are_stripped() {
    if !regstack_conformance::runs_here(regstack_conformance::Only::Edge) {
        return;
    }
    let origin = start_origin().await;
    let s = edge_in_front_of(&origin).await;
    let forged = |rb: reqwest::RequestBuilder| {
        rb.header("x-regstack-user-id", "ffffffffffffffffffffffffffffffff")
            .header("x-regstack-user-email", "mallory@example.com")
            .header("x-regstack-user-superuser", "true")
            .header("x-regstack-timestamp", "0")
            .header("x-regstack-signature", "00")
            .header("x-regstack-anything", "else")
    };
    // Anonymous: nothing of the forgery arrives.
    let r = s
        .send(forged(s.client.get(format!("{}/public/echo", s.root_url()))))
        .await;
    r.assert_status(200);
    assert_eq!(r.json["regstack_headers"], json!([]), "{r}");
    assert_eq!(r.json["user"], Value::Null);
    // Signed in: the real identity replaces the forged one.
    let (email, token) = s.new_session("strip").await;
    let r = s
        .send(forged(s.client.get(format!("{}/public/echo", s.root_url()))).bearer_auth(&token))
        .await;
    r.assert_status(200);
    assert_eq!(r.json["user"], email.as_str(), "{r}");
    let names: Vec<&str> = r.json["regstack_headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[0].as_str().unwrap())
        .collect();
    assert!(!names.contains(&"x-regstack-anything"), "{r}");
    let r = s
        .send(forged(s.client.get(format!("{}/app/whoami", s.root_url()))))
        .await;
    r.assert_detail(401, msg::AUTH_REQUIRED);
}

#[tokio::test]
async fn a_revoked_session_is_refused() {
    if !regstack_conformance::runs_here(regstack_conformance::Only::Edge) {
        return;
    }
    let origin = start_origin().await;
    let s = edge_in_front_of(&origin).await;
    let (_, token) = s.new_session("revoked").await;
    let whoami = || s.client.get(format!("{}/app/whoami", s.root_url())).bearer_auth(&token);
    s.send(whoami()).await.assert_status(200);
    s.post_auth("/logout", &token).await.assert_status(200);
    s.send(whoami()).await.assert_detail(401, msg::REVOKED);
}

#[tokio::test]
async fn the_origin_refuses_identity_headers_that_did_not_come_from_the_edge() {
    if !regstack_conformance::runs_here(regstack_conformance::Only::Edge) {
        return;
    }
    let origin = start_origin().await;
    let client = reqwest::Client::new();
    let r = client
        .get(format!("{}/app/whoami", origin.url))
        .header("x-regstack-user-id", "ffffffffffffffffffffffffffffffff")
        .header("x-regstack-user-email", "mallory@example.com")
        .header("x-regstack-user-superuser", "true")
        .header("x-regstack-timestamp", "1")
        .header("x-regstack-signature", "00")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body, json!({"detail": msg::INVALID_TOKEN}));
    let r = client.get(format!("{}/app/whoami", origin.url)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
}
