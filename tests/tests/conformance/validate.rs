//! `regstack validate` (docs/cli.md, "validate") run as an operator runs it: against the
//! server under test on every backend and at the edge, reading the server's output from the
//! file the harness writes it to; and against deployments broken on purpose, where it must
//! name the phase that fails.

use regstack_conformance::{json, unique_email, Server, Value, PASSWORD};

/// Runs `regstack validate` against `api` (the API's URL) with `args`; answers the exit code
/// and the JSON report.
async fn validate(api: &str, args: &[&str]) -> (Option<i32>, Vec<Value>, String) {
    let mut cmd = tokio::process::Command::new(regstack_conformance::binary_path());
    cmd.args(["validate", "--url", api, "--json", "--timeout", "20"])
        .args(args);
    for (k, _) in std::env::vars_os() {
        let name = k.to_string_lossy().to_ascii_uppercase();
        if name.starts_with("REGSTACK_") || name == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    let out = cmd.output().await.expect("running regstack validate");
    let report: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap_or_default();
    (
        out.status.code(),
        report,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn check<'a>(report: &'a [Value], name: &str) -> &'a Value {
    report
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name:?} check in {report:#?}"))
}

fn passed(report: &[Value], name: &str) -> bool {
    let c = check(report, name);
    c["ok"] == true && c["skipped"] == false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn validate_passes_every_phase_the_deployment_offers() {
    let s = Server::start(&[
        ("REGSTACK_REQUIRE_VERIFICATION", "true"),
        ("REGSTACK_ENABLE_SMS_2FA", "true"),
        ("REGSTACK_ENABLE_ADMIN_ROUTER", "true"),
    ])
    .await;
    let api = format!("{}/api/auth", s.root_url());
    let source = format!("file:{}", s.output_file().display());
    // A shared deployment: others register all the while, and their verification links are
    // printed between the probe's (each email whole, as a server prints it). The probe must
    // take only the links addressed to it.
    let others = s.api();
    let bystanders = tokio::spawn(async move {
        loop {
            let body = json!({ "email": unique_email("bystander"), "password": PASSWORD });
            others.post_json("/register", &body).await;
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    });
    let (code, report, err) = validate(&api, &["--log-source", &source, "--phone", "+15555550142"]).await;
    bystanders.abort();
    assert_eq!(code, Some(0), "{report:#?}\n{err}\n{}", s.output_tail(40));
    for name in [
        "reachability",
        "features",
        "register",
        "verify",
        "login",
        "me",
        "logout",
        "login again",
        "profile",
        "change password",
        "change email",
        "password reset",
        "sms 2fa",
        "cleanup",
    ] {
        assert!(passed(&report, name), "{name}: {report:#?}");
    }
    assert_eq!(check(&report, "features")["detail"], "admin, sms-2fa, password-reset");
    assert_eq!(check(&report, "oauth")["skipped"], true, "OAuth is off here");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn validate_fails_the_verify_phase_when_links_are_never_printed() {
    let s = Server::start(&[
        ("REGSTACK_REQUIRE_VERIFICATION", "true"),
        ("REGSTACK_EMAIL__LOG_BODIES", "false"),
    ])
    .await;
    let api = format!("{}/api/auth", s.root_url());
    let source = format!("file:{}", s.output_file().display());
    let (code, report, err) = validate(&api, &["--log-source", &source, "--wait", "3"]).await;
    assert_eq!(code, Some(1), "{report:#?}\n{err}");
    let verify = check(&report, "verify");
    assert_eq!(verify["ok"], false, "{report:#?}");
    assert!(
        verify["detail"].as_str().is_some_and(|d| d.contains("no /verify link")),
        "{verify}"
    );
    assert!(
        report.iter().all(|c| c["name"] != "login"),
        "the walk stops at a failed verify: {report:#?}"
    );
    assert_eq!(
        check(&report, "cleanup")["skipped"],
        true,
        "an unconfirmed registration is no account to delete: {report:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn validate_fails_the_logout_phase_when_logout_revokes_nothing() {
    let s = Server::start(&[("REGSTACK_REQUIRE_VERIFICATION", "false")]).await;
    let upstream = format!("{}/api/auth", s.root_url());
    // A deployment whose logout says 200 and revokes nothing: a proxy that answers it itself.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let forward = move |req: axum::extract::Request| {
        let (http, upstream) = (http.clone(), upstream.clone());
        async move {
            use axum::response::IntoResponse;
            if req.uri().path() == "/logout" {
                return axum::Json(serde_json::json!({ "message": "Logged out." })).into_response();
            }
            let (parts, body) = req.into_parts();
            let body = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
            let mut out = http.request(parts.method.clone(), format!("{upstream}{}", parts.uri));
            for (k, v) in parts.headers.iter().filter(|(k, _)| *k != "host") {
                out = out.header(k, v);
            }
            let resp = out.body(body).send().await.unwrap();
            let status = resp.status();
            let bytes = resp.bytes().await.unwrap_or_default();
            (status, [("content-type", "application/json")], bytes).into_response()
        }
    };
    let app = axum::Router::new().fallback(forward);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let (code, report, err) = validate(&proxy, &[]).await;
    assert_eq!(code, Some(1), "{report:#?}\n{err}");
    let logout = check(&report, "logout");
    assert_eq!(logout["ok"], false);
    assert!(
        logout["detail"]
            .as_str()
            .is_some_and(|d| d.contains("the old session still works")),
        "{logout}"
    );
    assert!(passed(&report, "cleanup"), "the probe account still goes: {report:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn validate_refuses_a_bad_log_source_and_a_wrong_url() {
    let s = Server::start(&[]).await;
    let api = format!("{}/api/auth", s.root_url());
    let (code, report, err) = validate(&api, &["--log-source", "tcp:1234"]).await;
    assert_eq!(code, Some(2), "{report:#?}");
    assert!(
        err.starts_with("error: --log-source: unknown log source kind \"tcp\""),
        "{err}"
    );
    let (code, report, _) = validate(&format!("{}/nowhere", s.root_url()), &[]).await;
    assert_eq!(code, Some(1));
    let reach = check(&report, "reachability");
    assert!(
        reach["detail"]
            .as_str()
            .is_some_and(|d| d.contains("is --url the API prefix")),
        "{reach}"
    );
    assert_eq!(
        report.len(),
        1,
        "nothing runs after an unreachable API, and there is nothing to clean up"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn validate_starts_the_round_trip_of_the_provider_on_offer() {
    // Only the `corp` OpenID Connect provider: the oauth phase checks its start.
    let mut env: Vec<(String, String)> = regstack_conformance::oauth_env()
        .into_iter()
        .filter(|(k, _)| !k.contains("GOOGLE"))
        .collect();
    env.push(("REGSTACK_REQUIRE_VERIFICATION".into(), "false".into()));
    let s = Server::start_with(&env).await;
    let api = format!("{}/api/auth", s.root_url());
    let (code, report, err) = validate(&api, &["--skip", "account,reset,sms"]).await;
    assert_eq!(code, Some(0), "{report:#?}\n{err}");
    let oauth = check(&report, "oauth");
    assert!(passed(&report, "oauth"), "{report:#?}");
    assert!(
        oauth["detail"].as_str().is_some_and(|d| d.starts_with("corp: 302 to ")),
        "{oauth}"
    );
    assert_eq!(check(&report, "account")["skipped"], true);
}
