//! Routing conventions (docs/wire.md, "Unknown paths, wrong methods, trailing slashes", "Decision 1", "Decision 9"): 404 and 405
//! bodies, the `Allow` header, the 307 trailing-slash redirect, and the health probes.

use regstack_conformance::{json, msg, Server};
use reqwest::Method;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn health_probes() {
    let s = Server::start(&[]).await;
    s.get_root("/healthz").await.assert_status(200);
    s.get_root("/readyz").await.assert_status(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unknown_paths_are_404() {
    let s = Server::start(&[]).await;
    s.get("/nope").await.assert_detail(404, msg::NOT_FOUND);
    s.post_json("/nope", &json!({}))
        .await
        .assert_detail(404, msg::NOT_FOUND);
    s.get_root("/nope").await.assert_detail(404, msg::NOT_FOUND);
    s.get_root("/api/auth").await.assert_status(404);
    // Routers that are off by default are not mounted: 404, never 401/405 (docs/wire.md, "The validate walk").
    s.get("/admin/stats").await.assert_detail(404, msg::NOT_FOUND);
    s.get("/oauth/providers").await.assert_detail(404, msg::NOT_FOUND);
    s.post_json(
        "/phone/start",
        &json!({"phone_number": "+15555550100", "current_password": "x"}),
    )
    .await
    .assert_detail(404, msg::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wrong_method_is_405_with_allow() {
    let s = Server::start(&[]).await;
    for path in ["/login", "/register", "/verify", "/logout", "/forgot-password"] {
        let r = s.get(path).await;
        r.assert_detail(405, msg::METHOD_NOT_ALLOWED);
        let allow = r.header("allow").unwrap_or_else(|| panic!("405 without Allow:\n{r}"));
        assert!(allow.split(',').any(|m| m.trim() == "POST"), "Allow lacks POST:\n{r}");
    }
    let r = s.send(s.request(Method::PUT, "/me")).await;
    r.assert_detail(405, msg::METHOD_NOT_ALLOWED);
    assert!(r.header("allow").is_some(), "405 without Allow:\n{r}");
    let r = s.send(s.request(Method::GET, "/account")).await;
    r.assert_detail(405, msg::METHOD_NOT_ALLOWED);
    let allow = r.header("allow").unwrap_or_default();
    assert!(
        allow.split(',').any(|m| m.trim() == "DELETE"),
        "Allow lacks DELETE:\n{r}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn trailing_slash_redirects_307() {
    let s = Server::start(&[]).await;
    let r = s
        .post_json("/login/", &json!({"email": "a@example.com", "password": "whatever-pw"}))
        .await;
    r.assert_status(307);
    let location = r
        .header("location")
        .unwrap_or_else(|| panic!("307 without Location:\n{r}"));
    // A relative Location (a departure from 0.9.3's `http://{Host}/...`): the password is
    // re-sent on the scheme and host the client chose, never in clear text or to a forged Host.
    assert_eq!(location, "/api/auth/login", "Location:\n{r}");
    let r = s
        .api()
        .send(s.api().request(Method::GET, "/me/?a=1").header("host", "evil.example"))
        .await;
    r.assert_status(307);
    assert_eq!(
        r.header("location").as_deref(),
        Some("/api/auth/me?a=1"),
        "Location:\n{r}"
    );
}

/// `GET {api_prefix}/openapi.json` serves an OpenAPI 3.1 document of what is mounted, and it
/// validates against the OpenAPI schema (openapi-spec-validator from PyPI, which
/// `scripts/test` installs and names in `REGSTACK_TEST_OPENAPI_PYTHON`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_openapi_document_covers_what_is_mounted_and_validates() {
    use std::io::Write;
    use std::process::{Command, Stdio};

    let s = Server::start(&[("REGSTACK_ENABLE_SMS_2FA", "true")]).await;
    let r = s.get("/openapi.json").await;
    r.assert_status(200);
    let doc = &r.json;
    assert_eq!(doc["openapi"], "3.1.0");
    for (path, method) in [
        ("/register", "post"),
        ("/login", "post"),
        ("/me", "get"),
        ("/me", "patch"),
        ("/phone/start", "post"),
        ("/openapi.json", "get"),
    ] {
        assert!(doc["paths"][path][method].is_object(), "{method} {path} missing");
    }
    assert!(
        doc["paths"]["/relay"].is_null(),
        "the relay endpoint is not mounted here"
    );
    let python = std::env::var("REGSTACK_TEST_OPENAPI_PYTHON")
        .expect("REGSTACK_TEST_OPENAPI_PYTHON names a python with openapi-spec-validator (scripts/test sets it)");
    let mut child = Command::new(python)
        .args([
            "-c",
            "import json, sys\nfrom openapi_spec_validator import validate\nvalidate(json.load(sys.stdin))",
        ])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the validator starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(doc.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the document is not valid OpenAPI 3.1:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
