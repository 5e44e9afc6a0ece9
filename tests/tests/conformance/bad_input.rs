//! Hostile and malformed input (docs/wire.md, "Request bodies", "Validation errors (422)", "Datetimes, ids and email addresses"): every case is a 4xx with the
//! pydantic-shaped 422 where the contract gives one, never a 5xx, and nothing is written.

use regstack_conformance::{json, msg, unique_email, Resp, Server, PASSWORD};
use reqwest::header::HeaderValue;
use reqwest::Method;

#[track_caller]
fn assert_client_error(r: &Resp) {
    assert!((400..500).contains(&r.status), "expected a 4xx:\n{r}");
}

#[track_caller]
fn assert_not_server_error(r: &Resp) {
    assert!(r.status < 500, "5xx:\n{r}");
}

/// Both runs below use a server without verification, so an accidental write would show up
/// as a 409 on the final register (or a 200 on login).
async fn assert_nothing_written(s: &Server, emails: &[String]) {
    s.get_root("/healthz").await.assert_status(200);
    for email in emails {
        s.login(email, PASSWORD).await.assert_status(401);
        let r = s
            .post_json("/register", &json!({"email": email, "password": PASSWORD}))
            .await;
        r.assert_status(201);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_bodies() {
    let s = Server::start(&[("REGSTACK_REQUIRE_VERIFICATION", "false")]).await;
    let email = unique_email("malformed");

    // Malformed JSON.
    let body = format!("{{\"email\": \"{email}\", \"password\": ");
    let r = s
        .post_raw("/register", Some("application/json"), body.into_bytes(), None)
        .await;
    r.assert_status(422);
    assert_eq!(r.detail()[0]["type"], "json_invalid", "{r}");
    assert_eq!(r.detail()[0]["loc"][0], "body", "{r}");

    // A form body is not JSON.
    let form = format!("email={}&password=correct-horse", email.replace('@', "%40"));
    let r = s
        .post_raw(
            "/register",
            Some("application/x-www-form-urlencoded"),
            form.into_bytes(),
            None,
        )
        .await;
    r.assert_validation("model_attributes_type", &["body"]);

    // JSON that is not an object.
    for body in ["[]", "[1,2]", "\"a string\"", "42", "null", "true"] {
        let r = s
            .post_raw("/register", Some("application/json"), body.as_bytes().to_vec(), None)
            .await;
        r.assert_status(422);
        assert!(r.detail().is_array(), "{body}: {r}");
        assert_eq!(r.detail()[0]["loc"][0], "body", "{body}: {r}");
    }

    // Invalid UTF-8 under a JSON content type.
    let mut bytes = format!("{{\"email\": \"{email}\", \"password\": \"").into_bytes();
    bytes.extend_from_slice(b"\xff\xfe\xc3\x28-password\"}");
    assert_client_error(&s.post_raw("/register", Some("application/json"), bytes, None).await);

    // No body at all.
    let r = s
        .post_raw("/register", Some("application/json"), Vec::new(), None)
        .await;
    r.assert_status(422);

    // Deep nesting must not take the server down.
    let deep = format!("{{\"email\": {}1{}}}", "[".repeat(20_000), "]".repeat(20_000));
    assert_client_error(
        &s.post_raw("/register", Some("application/json"), deep.into_bytes(), None)
            .await,
    );

    // A JSON body with charset is still JSON.
    let other = unique_email("charset");
    let body = json!({"email": other, "password": PASSWORD}).to_string();
    s.post_raw(
        "/register",
        Some("application/json; charset=utf-8"),
        body.into_bytes(),
        None,
    )
    .await
    .assert_status(201);

    assert_nothing_written(&s, &[email]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn field_validation() {
    let s = Server::start(&[("REGSTACK_REQUIRE_VERIFICATION", "false")]).await;
    let email = unique_email("fields");

    // Wrong types.
    s.post_json("/register", &json!({"email": email, "password": 123}))
        .await
        .assert_validation("string_type", &["body", "password"]);
    s.post_json("/login", &json!({"email": email, "password": ["x"]}))
        .await
        .assert_validation("string_type", &["body", "password"]);
    s.post_json(
        "/register",
        &json!({"email": email, "password": PASSWORD, "full_name": 7}),
    )
    .await
    .assert_validation("string_type", &["body", "full_name"]);

    // Unknown keys are rejected on every model.
    s.post_json(
        "/register",
        &json!({"email": email, "password": PASSWORD, "is_superuser": true}),
    )
    .await
    .assert_validation("extra_forbidden", &["body", "is_superuser"]);
    s.post_json(
        "/login",
        &json!({"email": email, "password": PASSWORD, "remember": true}),
    )
    .await
    .assert_validation("extra_forbidden", &["body", "remember"]);
    s.post_json("/forgot-password", &json!({"email": email, "x": 1}))
        .await
        .assert_validation("extra_forbidden", &["body", "x"]);
    s.post_json("/verify", &json!({"token": "t", "email": email}))
        .await
        .assert_validation("extra_forbidden", &["body", "email"]);

    // Bad addresses.
    let long_local = format!("{}@example.com", "a".repeat(300));
    for bad in [
        "x@nodot",
        "a@probe.invalid",
        "b@host.test",
        "c@localhost",
        "not-an-email",
        "",
        long_local.as_str(),
        "d\u{0}@example.com",
    ] {
        s.post_json("/register", &json!({"email": bad, "password": PASSWORD}))
            .await
            .assert_validation("value_error", &["body", "email"]);
    }
    s.post_json("/login", &json!({"email": "x@nodot", "password": PASSWORD}))
        .await
        .assert_validation("value_error", &["body", "email"]);
    s.post_json("/resend-verification", &json!({"email": "a@probe.invalid"}))
        .await
        .assert_validation("value_error", &["body", "email"]);

    // Missing fields.
    let e = s
        .post_json("/login", &json!({"email": email}))
        .await
        .assert_validation("missing", &["body", "password"]);
    assert_eq!(e["msg"], "Field required", "{e}");
    s.post_json("/register", &json!({"password": PASSWORD}))
        .await
        .assert_validation("missing", &["body", "email"]);
    s.post_json("/reset-password", &json!({"token": "x"}))
        .await
        .assert_validation("missing", &["body", "new_password"]);

    // Password length: the exact pydantic error of docs/wire.md, "Validation errors (422)".
    s.post_json("/register", &json!({"email": email, "password": "short"}))
        .await
        .assert_json(
            422,
            &json!({"detail": [{
                "type": "string_too_short",
                "loc": ["body", "password"],
                "msg": "String should have at least 8 characters",
                // Departure from 0.9.3, which echoes the password back.
                "input": "[redacted]",
                "ctx": {"min_length": 8}
            }]}),
        );
    let e = s
        .post_json("/login", &json!({"email": email, "password": "x"}))
        .await
        .assert_validation("string_too_short", &["body", "password"]);
    assert_eq!(e["ctx"]["min_length"], 8);
    let e = s
        .post_json("/register", &json!({"email": email, "password": "p".repeat(129)}))
        .await
        .assert_validation("string_too_long", &["body", "password"]);
    assert_eq!(e["ctx"]["max_length"], 128);
    assert_eq!(e["msg"], "String should have at most 128 characters");
    let e = s
        .post_json(
            "/register",
            &json!({"email": email, "password": PASSWORD, "full_name": "n".repeat(201)}),
        )
        .await
        .assert_validation("string_too_long", &["body", "full_name"]);
    assert_eq!(e["ctx"]["max_length"], 200);

    // A NUL in a free-text field is a 4xx or accepted, never a 5xx.
    let nul = unique_email("nul");
    let r = s
        .post_json(
            "/register",
            &json!({"email": nul, "password": PASSWORD, "full_name": "a\u{0}b"}),
        )
        .await;
    assert_not_server_error(&r);

    // The lockout did not count any of the 422s.
    s.login(&email, PASSWORD)
        .await
        .assert_detail(401, &format!("{} 4 attempt(s) remaining.", msg::BAD_LOGIN));
    assert_nothing_written(&s, &[email]).await;
    // 128 characters is accepted.
    s.post_json(
        "/register",
        &json!({"email": unique_email("longpw"), "password": "p".repeat(128)}),
    )
    .await
    .assert_status(201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn oversized_bodies_and_odd_headers() {
    let s = Server::start(&[("REGSTACK_REQUIRE_VERIFICATION", "false")]).await;
    let email = unique_email("big");

    // 1 MiB of JSON: 413 with a string detail. The server answers before reading the whole
    // body and then drops the connection, so these requests ask for `Connection: close` to keep
    // the half-read connection out of the client's pool.
    let oversized = |full_name_len: usize| {
        let body = json!({"email": email, "password": PASSWORD, "full_name": "x".repeat(full_name_len)}).to_string();
        s.request(Method::POST, "/register")
            .header("content-type", "application/json")
            .header("connection", "close")
            .body(body)
    };
    let r = s.send(oversized(1 << 20)).await;
    r.assert_status(413);
    assert!(r.detail().is_string(), "413 body is {{\"detail\": \"...\"}}:\n{r}");
    // Just over 64 KiB is also too large.
    s.send(oversized(65 * 1024)).await.assert_status(413);

    // A 10 KB header value and header values with non-ASCII bytes.
    let big = "v".repeat(10 * 1024);
    let r = s
        .send(s.request(Method::GET, "/me").header("x-padding", big.as_str()))
        .await;
    assert_not_server_error(&r);
    let r = s
        .send(
            s.request(Method::GET, "/me")
                .header("authorization", format!("Bearer {big}")),
        )
        .await;
    assert_client_error(&r);
    let weird = HeaderValue::from_bytes(b"Bearer \xff\xfe\x80caf\xc3\xa9").expect("obs-text header value");
    let r = s
        .send(s.request(Method::GET, "/me").header("authorization", weird))
        .await;
    r.assert_status(401);
    let weird = HeaderValue::from_bytes(b"\xff\xfe\tx").expect("obs-text header value");
    let body = json!({"email": email, "password": PASSWORD}).to_string();
    let r = s
        .send(
            s.request(Method::POST, "/login")
                .header("content-type", "application/json")
                .header("x-weird", weird.clone())
                .header("user-agent", weird)
                .body(body),
        )
        .await;
    assert_not_server_error(&r);
    let r = s
        .send(
            s.request(Method::POST, "/login")
                .header(
                    "content-type",
                    HeaderValue::from_bytes(b"application/json\xff").expect("ct"),
                )
                .body("{}"),
        )
        .await;
    assert_client_error(&r);

    assert_nothing_written(&s, &[email]).await;
}
