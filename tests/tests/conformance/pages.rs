//! The account pages (docs/pages.md): served by both runtimes under `ui_prefix` with their
//! files under `static_prefix`, behind a strict Content-Security-Policy; and driven in
//! headless Chromium through the whole account lifecycle, failing on any console error
//! (which is where Chromium reports a CSP violation).

use regstack_conformance::browser::{screenshot_dir, Browser};
use regstack_conformance::{msg, runs_here, unique_email, LinkKind, Only, Server, SmsKind, PASSWORD};

const UI: (&str, &str) = ("REGSTACK_ENABLE_UI_ROUTER", "true");

const PAGES: [&str; 10] = [
    "/login",
    "/register",
    "/verify",
    "/forgot",
    "/reset",
    "/reset-password",
    "/confirm-email-change",
    "/me",
    "/mfa-confirm",
    "/oauth-complete",
];

async fn ui_server(extra: &[(&str, &str)]) -> Server {
    let mut env = vec![UI, ("REGSTACK_REQUIRE_VERIFICATION", "true")];
    env.extend_from_slice(extra);
    Server::start(&env).await
}

/// Fills the sign-in form on the page the browser is at and sends it.
async fn submit_login(b: &Browser, email: &str, password: &str) {
    b.fill("#rs-email", email).await;
    b.fill("#rs-password", password).await;
    b.click("[data-rs-form='login'] [type='submit']").await;
}

/// Fails with what the console said if it said anything at SEVERE, except the API's own
/// refusals (Chromium logs every 4xx a `fetch` gets; the page shows those as banners).
async fn assert_quiet(b: &Browser, step: &str) {
    let mut errors = b.console_errors().await;
    errors.retain(|e| !(e.contains("/api/auth/") && e.contains("Failed to load resource")));
    assert!(errors.is_empty(), "{step}: the console reported {errors:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_pages_are_absent_unless_switched_on() {
    let s = Server::start(&[]).await;
    let r = s.get_root("/account/login").await;
    r.assert_status(404);
    s.get_root("/regstack-static/js/regstack.js").await.assert_status(404);
}

/// The suite's static-file fixture: natively named by `extra_static_dirs`, and bundled into
/// the test worker when it is built (scripts/lib/edge.sh).
const FIXTURE_STATIC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/static");

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hosts_static_files_join_and_replace_the_bundled_ones() {
    // Natively a second directory, listed first, also replaces the bundled theme.
    let first = std::env::temp_dir().join(format!("regstack-static-{}", regstack_conformance::unique_id()));
    std::fs::create_dir_all(first.join("css")).unwrap();
    let theme = ":root { --rs-accent: #0f766e; }\n";
    std::fs::write(first.join("css/theme.css"), theme).unwrap();
    std::fs::write(first.join("css/.editor-swap.css"), "skipped").unwrap();
    let dirs = serde_json::json!([first.to_string_lossy(), FIXTURE_STATIC]).to_string();
    let s = if regstack_conformance::on_edge() {
        ui_server(&[]).await
    } else {
        ui_server(&[("REGSTACK_EXTRA_STATIC_DIRS", &dirs)]).await
    };
    let mark = s.get_root("/regstack-static/img/regstack-mark.svg").await;
    mark.assert_status(200);
    assert_eq!(mark.header("content-type").as_deref(), Some("image/svg+xml"));
    assert_eq!(
        mark.text,
        std::fs::read_to_string(format!("{FIXTURE_STATIC}/img/regstack-mark.svg")).unwrap()
    );
    // Opened on its own, a host's SVG is a sandboxed document that can run nothing.
    let policy = mark.header("content-security-policy").unwrap_or_default();
    assert!(
        policy.contains("sandbox") && policy.contains("default-src 'none'"),
        "{policy}"
    );
    assert_eq!(mark.header("x-content-type-options").as_deref(), Some("nosniff"));

    let login = s.get_root("/account/login").await;
    // Attribute values come HTML-escaped (`/` as `&#x2f;`).
    let link = login
        .text
        .split('"')
        .map(|part| part.replace("&#x2f;", "/"))
        .find(|part| part.starts_with("/regstack-static/css/theme.css?v="))
        .expect("the page links the theme");
    let served = s.get_root(&link).await;
    served.assert_status(200);
    assert_eq!(
        served.header("cache-control").as_deref(),
        Some("public, max-age=31536000, immutable")
    );
    if regstack_conformance::on_edge() {
        assert!(served.text.contains("--rs-shadow"), "the edge keeps the bundled theme");
    } else {
        assert_eq!(
            served.text, theme,
            "the first directory's theme replaces the bundled one"
        );
        // A dot-file is never served.
        s.get_root("/regstack-static/css/.editor-swap.css")
            .await
            .assert_status(404);
    }
    std::fs::remove_dir_all(first).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_page_is_served_stateless_under_a_strict_policy() {
    let s = ui_server(&[]).await;
    for path in PAGES {
        let r = s
            .get_root(&format!(
                "/account{path}?token=<script>alert(1)</script>&redirect_to=javascript:x"
            ))
            .await;
        r.assert_status(200);
        let header = |n: &str| r.header(n).unwrap_or_default();
        assert_eq!(header("content-type"), "text/html; charset=utf-8", "{path}");
        let csp = header("content-security-policy");
        for part in [
            "default-src 'self'",
            "script-src 'self'",
            "frame-ancestors 'none'",
            "object-src 'none'",
        ] {
            assert!(csp.contains(part), "{path}: {csp}");
        }
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
            "{path}: {csp}"
        );
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("referrer-policy"), "no-referrer", "{path}");
        assert_eq!(header("cache-control"), "no-store", "{path}");
        let html = &r.text;
        assert!(
            !html.contains("<script>alert") && !html.contains("javascript:x"),
            "{path} reflects the query"
        );
        assert!(
            !html.contains("style=") && !html.contains("<style"),
            "{path} has inline style"
        );
        for tag in html.split("<script").skip(1) {
            let open = tag.split('>').next().unwrap_or_default();
            assert!(open.contains(" src="), "{path} has an inline script: <script{open}>");
        }
        assert_eq!(html.matches("<script").count(), 1, "{path}: one deferred script");
        assert!(html.contains("data-rs-api=\"&#x2f;api&#x2f;auth\""), "{path}");
    }
    // The bundled files: the right types, an ETag, a year's caching under the versioned URL.
    let login = s.get_root("/account/login").await.text;
    for (file, ty) in [
        ("css/core.css", "text/css; charset=utf-8"),
        ("css/theme.css", "text/css; charset=utf-8"),
        ("js/regstack.js", "text/javascript; charset=utf-8"),
    ] {
        let linked = login
            .split('"')
            .find(|v| v.replace("&#x2f;", "/").contains(file))
            .unwrap_or_else(|| panic!("{file} is not linked: {login}"))
            .replace("&#x2f;", "/");
        let r = s.get_root(&linked).await;
        r.assert_status(200);
        assert_eq!(r.header("content-type").as_deref(), Some(ty), "{file}");
        assert_eq!(
            r.header("cache-control").as_deref(),
            Some("public, max-age=31536000, immutable"),
            "{linked}"
        );
        let etag = r.header("etag").expect("an etag");
        let plain = s.get_root(&format!("/regstack-static/{file}")).await;
        assert_eq!(plain.header("cache-control").as_deref(), Some("no-cache"), "{file}");
        let revalidated = s
            .send(
                reqwest::Client::new()
                    .get(format!("{}/regstack-static/{file}", s.root_url()))
                    .header("if-none-match", &etag),
            )
            .await;
        revalidated.assert_status(304);
    }
    // The 16 custom properties, and a dark value for each colour and the shadow.
    let theme = s.get_root("/regstack-static/css/theme.css").await.text;
    for name in [
        "bg",
        "bg-hover",
        "surface",
        "fg",
        "fg-muted",
        "border",
        "accent",
        "accent-fg",
        "accent-bg",
        "danger",
        "danger-fg",
        "danger-bg",
        "radius",
        "shadow",
        "font-display",
        "font-body",
    ] {
        let set = theme.matches(&format!("--rs-{name}:")).count();
        let expected = if name == "radius" || name.starts_with("font") {
            1
        } else {
            2
        };
        assert_eq!(set, expected, "--rs-{name}");
    }
    for missing in [
        "/regstack-static/css/nothing.css",
        "/regstack-static/..%2fCargo.toml",
        "/regstack-static/css/../../Cargo.toml",
        "/regstack-static/",
    ] {
        s.get_root(missing).await.assert_status(404);
    }
    // Another method on a page is the contract's JSON 405.
    let posted = s
        .send(reqwest::Client::new().post(format!("{}/account/login", s.root_url())))
        .await;
    posted.assert_status(405);
    assert!(posted.json["detail"].is_string(), "{posted}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_pages_follow_their_prefix_and_load_turnstile_only_beside_its_widget() {
    let s = Server::start(&[
        UI,
        ("REGSTACK_UI_PREFIX", "/"),
        ("REGSTACK_TURNSTILE_ENABLED", "true"),
        ("REGSTACK_TURNSTILE_SITE_KEY", "0x4-site-key-for-pages"),
        ("REGSTACK_TURNSTILE_SECRET_KEY", "0x4-pages-scenario-q3Vx9Lr0aZt7mWcBn"),
        ("REGSTACK_TURNSTILE_VERIFY_URL", "http://127.0.0.1:9/siteverify"),
    ])
    .await;
    let register = s.get_root("/register").await;
    register.assert_status(200);
    assert!(register.text.contains("data-rs-ui=\"\""), "{}", register.text);
    assert!(
        register.text.contains(
            "class=\"rs-field cf-turnstile\" data-sitekey=\"0x4-site-key-for-pages\" data-action=\"register\""
        ),
        "{}",
        register.text
    );
    assert!(register.text.contains("challenges.cloudflare.com/turnstile/v0/api.js"));
    let csp = register.header("content-security-policy").unwrap_or_default();
    assert!(
        csp.contains("script-src 'self' https://challenges.cloudflare.com;"),
        "{csp}"
    );
    // Login needs no token by default, and no page with a session or a one-time token
    // loads the third-party script.
    for path in ["/login", "/verify", "/reset-password", "/oauth-complete"] {
        let page = s.get_root(path).await;
        page.assert_status(200);
        assert!(
            !page.text.contains("challenges.cloudflare.com"),
            "{path} loads Turnstile"
        );
    }
    drop(s);
    // The emailed links follow the prefix: /verify, not //verify.
    let s = Server::start(&[UI, ("REGSTACK_UI_PREFIX", "/")]).await;
    let body = serde_json::json!({ "email": unique_email("pages-root"), "password": PASSWORD });
    s.post_json("/register", &body).await.assert_status(201);
    let link = s.wait_for_link(LinkKind::Verify).await;
    assert!(link.starts_with(&format!("{}/verify?token=", s.root_url())), "{link}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_user_goes_from_register_to_sign_out_in_a_browser() {
    if !runs_here(Only::Pages) {
        return;
    }
    let s = ui_server(&[]).await;
    let b = Browser::start().await;
    let ui = format!("{}/account", s.root_url());
    let email = unique_email("pages-life");

    b.goto(&format!("{ui}/register")).await;
    b.fill("#rs-email", &email).await;
    b.fill("#rs-full-name", "Ada Lovelace").await;
    b.fill("#rs-password", PASSWORD).await;
    b.click("[data-rs-form='register'] [type='submit']").await;
    b.wait_for_text("[data-rs-message]", |t| t.contains("Check your inbox"))
        .await;
    assert_quiet(&b, "register").await;

    // The emailed link opens the verify page, which confirms and drops the token from the URL.
    let link = s.wait_for_link(LinkKind::Verify).await;
    assert!(link.starts_with(&format!("{ui}/verify?token=")), "{link}");
    b.goto(&link).await;
    b.wait_for_text("[data-rs-status]", |t| t.contains("confirmed")).await;
    assert!(!b.url().await.contains("token="), "the token stayed in the address bar");
    assert_quiet(&b, "verify").await;

    b.goto(&format!("{ui}/login")).await;
    submit_login(&b, &email, "wrong-password-1").await;
    b.wait_for_text("[data-rs-message]", |t| t.starts_with(msg::BAD_LOGIN))
        .await;
    b.fill("#rs-password", PASSWORD).await;
    b.click("[data-rs-form='login'] [type='submit']").await;
    b.wait_for_path("/account/me").await;
    b.wait_for_text("[data-rs-field='email']", |t| t == email).await;
    b.wait_for_text("[data-rs-field='full_name']", |t| t == "Ada Lovelace")
        .await;

    b.fill("#rs-full-name", "Ada King").await;
    b.click("[data-rs-form='update-profile'] [type='submit']").await;
    b.wait_for_text("[data-rs-field='full_name']", |t| t == "Ada King")
        .await;
    assert_quiet(&b, "me").await;

    b.fill("#rs-current-password", PASSWORD).await;
    b.fill("#rs-new-password", "a-brand-new-password-9").await;
    b.click("[data-rs-form='change-password'] [type='submit']").await;
    b.wait_for_path("/account/login").await;
    b.wait_for_text("[data-rs-message]", |t| t.contains("password has been changed"))
        .await;

    submit_login(&b, &email, "a-brand-new-password-9").await;
    b.wait_for_path("/account/me").await;
    b.click("[data-rs-action='logout']").await;
    b.wait_for_path("/account/login").await;
    b.wait_for_text("[data-rs-message]", |t| t.contains("signed out")).await;
    assert_quiet(&b, "sign out").await;
    // Signed out for real: /me sends the browser back to sign in.
    b.goto(&format!("{ui}/me")).await;
    b.wait_for_path("/account/login").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_forgotten_password_is_reset_from_the_emailed_link() {
    if !runs_here(Only::Pages) {
        return;
    }
    // Under a prefix of the host's choosing, which the script must follow.
    let s = ui_server(&[("REGSTACK_UI_PREFIX", "/my/account")]).await;
    let email = unique_email("pages-reset");
    s.register_verified(&email, PASSWORD).await;
    let b = Browser::start().await;
    let ui = format!("{}/my/account", s.root_url());
    b.goto(&format!("{ui}/forgot")).await;
    b.fill("#rs-email", &email).await;
    b.click("[data-rs-form='forgot'] [type='submit']").await;
    b.wait_for_text("[data-rs-message]", |t| t.contains("If an account exists"))
        .await;
    let link = s.wait_for_link(LinkKind::ResetPassword).await;
    // 0.9.3's emails link to /reset-password; the page is served there.
    assert!(link.starts_with(&format!("{ui}/reset-password?token=")), "{link}");
    b.goto(&link).await;
    assert!(!b.url().await.contains("token="), "the token stayed in the address bar");
    b.fill("#rs-new-password", "reset-to-this-password-3").await;
    b.click("[data-rs-form='reset'] [type='submit']").await;
    b.wait_for_path("/my/account/login").await;
    b.wait_for_text("[data-rs-message]", |t| t.contains("has been reset"))
        .await;
    assert_quiet(&b, "reset").await;
    s.login(&email, "reset-to-this-password-3").await.assert_status(200);
    // The link is spent: opening it again shows the contract's message in the page.
    b.goto(&link).await;
    b.fill("#rs-new-password", "another-password-4").await;
    b.click("[data-rs-form='reset'] [type='submit']").await;
    b.wait_for_text("[data-rs-message]", |t| t.contains("invalid or has expired"))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn error_banners_come_from_the_contract_and_codes() {
    if !runs_here(Only::Pages) {
        return;
    }
    let s = ui_server(&[]).await;
    let b = Browser::start().await;
    let ui = format!("{}/account", s.root_url());
    b.goto(&format!("{ui}/login?error=bad_state")).await;
    b.wait_for_text("[data-rs-message]", |t| t.contains("no longer valid"))
        .await;
    b.goto(&format!("{ui}/login?error=%3Cimg%20src%3Dx%3E")).await;
    let shown = b
        .wait_for_text("[data-rs-message]", |t| t.starts_with("Sign-in failed"))
        .await;
    assert_eq!(shown, "Sign-in failed (imgsrcx).");
    b.goto(&format!("{ui}/verify?token=not-a-real-token")).await;
    b.wait_for_text("[data-rs-status]", |t| t == msg::BAD_VERIFY_LINK).await;
    b.goto(&format!("{ui}/register")).await;
    b.fill("#rs-email", "not-an-address").await;
    b.fill("#rs-password", "short").await;
    b.click("[data-rs-form='register'] [type='submit']").await;
    b.wait_for_text("[data-rs-message]", |t| t.contains("; ")).await;
    assert_quiet(&b, "error banners").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_page_fits_a_phone_and_is_photographed_light_and_dark() {
    if !runs_here(Only::Pages) {
        return;
    }
    let s = ui_server(&[("REGSTACK_ENABLE_SMS_2FA", "true")]).await;
    let email = unique_email("pages-photo");
    s.register_verified(&email, PASSWORD).await;
    let token = s.login_ok(&email, PASSWORD).await;
    let b = Browser::start().await;
    let ui = format!("{}/account", s.root_url());
    let dir = screenshot_dir().join(if regstack_conformance::on_edge() {
        "edge"
    } else {
        "native"
    });
    for (width, height, label) in [(1280, 900, "desktop"), (360, 740, "phone")] {
        b.resize(width, height).await;
        b.goto(&format!("{ui}/login")).await;
        let inner = b.run("return window.innerWidth;", serde_json::json!([])).await;
        assert_eq!(inner.as_u64(), Some(width as u64), "the window is not {width} px wide");
        for dark in [false, true] {
            b.dark(dark).await;
            for path in PAGES {
                // The account page needs a session and the code step a pending sign-in;
                // without them each sends the browser to /login.
                let setup = match path {
                    "/me" => "localStorage.setItem('regstack.access_token', arguments[0]);",
                    "/mfa-confirm" => "sessionStorage.setItem('regstack.mfa_pending', 'pending');",
                    _ => "localStorage.clear(); sessionStorage.clear();",
                };
                b.run(setup, serde_json::json!([token])).await;
                b.goto(&format!("{ui}{path}")).await;
                b.wait_for_text(".rs-title", |t| !t.is_empty()).await;
                if path == "/me" {
                    b.wait_for_text("[data-rs-field='email']", |t| t == email).await;
                }
                assert!(b.url().await.ends_with(path), "{path} stayed put");
                let overflow = b
                    .run(
                        "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
                        serde_json::json!([]),
                    )
                    .await;
                assert!(
                    overflow.as_i64().unwrap_or(1) <= 0,
                    "{path} scrolls sideways at {width}px: {overflow}"
                );
                let name = format!(
                    "{}-{label}-{}",
                    path.trim_start_matches('/'),
                    if dark { "dark" } else { "light" }
                );
                b.screenshot(&dir, &name).await;
            }
        }
    }
    assert_quiet(&b, "every page").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_account_page_changes_email_and_sets_up_the_sms_second_factor() {
    if !runs_here(Only::Pages) {
        return;
    }
    let s = ui_server(&[("REGSTACK_ENABLE_SMS_2FA", "true")]).await;
    let email = unique_email("pages-account");
    s.register_verified(&email, PASSWORD).await;
    let b = Browser::start().await;
    let ui = format!("{}/account", s.root_url());
    b.goto(&format!("{ui}/login")).await;
    submit_login(&b, &email, PASSWORD).await;
    b.wait_for_path("/account/me").await;
    b.wait_for_text("[data-rs-mfa-status]", |t| t == "Off.").await;

    // The SMS second factor: a texted code turns it on.
    b.fill("#rs-phone", "+15555550199").await;
    b.fill("#rs-phone-password", PASSWORD).await;
    b.click("[data-rs-form='phone-setup-start'] [type='submit']").await;
    let (_, code) = s.wait_for_sms_code(SmsKind::PhoneSetup).await;
    b.fill("#rs-phone-code", &code).await;
    b.click("[data-rs-form='phone-setup-confirm'] [type='submit']").await;
    b.wait_for_text("[data-rs-mfa-status]", |t| t.starts_with("On:")).await;
    let shots = screenshot_dir().join(if regstack_conformance::on_edge() {
        "edge"
    } else {
        "native"
    });
    b.screenshot(&shots, "me-desktop-light").await;
    assert_quiet(&b, "sms setup").await;

    // Signing in now asks for the texted code.
    b.click("[data-rs-action='logout']").await;
    b.wait_for_path("/account/login").await;
    submit_login(&b, &email, PASSWORD).await;
    b.wait_for_path("/account/mfa-confirm").await;
    b.screenshot(&shots, "mfa-confirm-desktop-light").await;
    let (_, code) = s.wait_for_sms_code(SmsKind::LoginMfa).await;
    b.fill("#rs-code", &code).await;
    b.click("[data-rs-form='mfa-confirm'] [type='submit']").await;
    b.wait_for_path("/account/me").await;

    // A new address: the confirmation link, opened in the page, moves the account.
    let new_email = unique_email("pages-account-new");
    b.fill("#rs-new-email", &new_email).await;
    b.fill("#rs-email-password", PASSWORD).await;
    b.click("[data-rs-form='change-email'] [type='submit']").await;
    b.wait_for_text("[data-rs-message]", |t| t == msg::CHANGE_EMAIL_ACK)
        .await;
    let link = s.wait_for_link(LinkKind::ConfirmEmailChange).await;
    b.goto(&link).await;
    b.wait_for_text("[data-rs-status]", |t| t.contains("email address has been changed"))
        .await;
    assert!(!b.url().await.contains("token="), "the token stayed in the address bar");
    assert_quiet(&b, "email change").await;
    let r = s.login(&new_email, PASSWORD).await;
    assert_eq!(r.json["status"], "mfa_required", "{r}");

    // Deleting takes two presses, and then the account is gone.
    let (_, code) = s.wait_for_sms_code(SmsKind::LoginMfa).await;
    let session = s
        .post_json(
            "/login/mfa-confirm",
            &serde_json::json!({ "mfa_pending_token": r.str("mfa_pending_token"), "code": code }),
        )
        .await
        .str("access_token");
    b.run(
        "localStorage.setItem('regstack.access_token', arguments[0]);",
        serde_json::json!([session]),
    )
    .await;
    b.goto(&format!("{ui}/me")).await;
    b.wait_for_text("[data-rs-field='email']", |t| t == new_email).await;
    b.fill("#rs-delete-password", PASSWORD).await;
    b.click("[data-rs-form='delete-account'] [type='submit']").await;
    b.wait_for_text("[data-rs-message]", |t| t.contains("cannot be undone"))
        .await;
    b.click("[data-rs-form='delete-account'] [type='submit']").await;
    b.wait_for_path("/account/login").await;
    b.wait_for_text("[data-rs-message]", |t| t.contains("has been deleted"))
        .await;
    s.login(&new_email, PASSWORD).await.assert_status(401);
    assert_quiet(&b, "delete").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_provider_sign_in_starts_on_the_login_page_and_ends_on_the_account_page() {
    if !runs_here(Only::Pages) {
        return;
    }
    let s = Server::start_with(&regstack_conformance::oauth_env_with(&[
        UI,
        ("REGSTACK_REQUIRE_VERIFICATION", "false"),
    ]))
    .await;
    let b = Browser::start().await;
    let ui = format!("{}/account", s.root_url());
    b.goto(&format!("{ui}/login")).await;
    b.click("[data-rs-oauth-link='google']").await;
    // The provider's own sign-in form.
    let login = unique_email("pages-oauth");
    b.fill("input[name='login']", &login).await;
    b.click("button").await;
    b.wait_for_path("/account/me").await;
    assert!(
        !b.url().await.contains("id="),
        "the exchange id stayed in the address bar"
    );
    b.wait_for_text("[data-rs-field='email']", |t| t == login).await;
    b.wait_for_text("[data-rs-oauth-list]", |t| {
        t.contains(&format!("google ({login}): connected")) && t.contains("corp: not connected")
    })
    .await;
    // The provider's pages are not ours to judge (its favicon, say); ours must be quiet.
    let issuer = regstack_conformance::oidc_issuer();
    let mut errors = b.console_errors().await;
    errors.retain(|e| !e.contains(&issuer));
    assert!(errors.is_empty(), "the console reported {errors:#?}");
}
