//! The local web server behind the interactive wizards: `theme design`, `oauth setup` and
//! `ses setup` (docs/cli.md, "Local wizards"). It listens on 127.0.0.1 only, and every call under `/api/` must carry the
//! launch's random token in `X-Regstack-Token`, so another process or a web page on the same
//! machine cannot drive it. Requests naming any other host are refused, which closes DNS
//! rebinding.
//!
//! The operator gets the token in the URL printed on the terminal, after `#` so that it
//! never reaches a log or a `Referer`. A browser opened for them gets a one-time launch path
//! instead, because a command line is visible to every local user: whoever opens it first
//! gets the token, so a second opening is refused and reported on the terminal.

use std::future::Future;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use subtle::ConstantTimeEq;

/// The header that carries the token.
pub const TOKEN_HEADER: &str = "x-regstack-token";

struct Guard {
    token: String,
    launch: Mutex<Option<String>>,
    hosts: [String; 2],
}

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS has randomness");
    regstack_core::hex::encode(&bytes)
}

/// A JSON error in the API's shape.
pub fn refuse(status: StatusCode, detail: &str) -> Response {
    (status, Json(serde_json::json!({ "detail": detail }))).into_response()
}

/// A 422 listing every refused answer, in the API's validation shape.
pub fn refusals(errors: &[impl ToString]) -> Response {
    let detail: Vec<serde_json::Value> = errors
        .iter()
        .map(|e| serde_json::json!({ "msg": e.to_string() }))
        .collect();
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(serde_json::json!({ "detail": detail })),
    )
        .into_response()
}

/// The wizards' shared style sheet and script.
pub const WIZARD_CSS: &str = include_str!("../../ui/wizard/wizard.css");
/// See [`WIZARD_CSS`].
pub const WIZARD_JS: &str = include_str!("../../ui/wizard/wizard.js");

/// One of a wizard's own files, under a policy that allows only this origin's files and
/// frames, and no framing by anyone else.
pub fn served_file(body: &'static str, kind: &'static str) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             frame-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        ),
    );
    resp
}

async fn check(State(guard): State<Arc<Guard>>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if !guard.hosts.iter().any(|h| h == host) {
        return refuse(StatusCode::FORBIDDEN, "This wizard answers on 127.0.0.1 only.");
    }
    if req.uri().path().starts_with("/api/") {
        let given = req
            .headers()
            .get(TOKEN_HEADER)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if !bool::from(given.ct_eq(guard.token.as_bytes())) {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "Missing or wrong token: open the URL this command printed.",
            );
        }
    }
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    resp
}

/// The launch path: once, a redirect to the page with the token; after that, nothing.
async fn launch(State(guard): State<Arc<Guard>>, Path(code): Path<String>) -> Response {
    let mut slot = guard.launch.lock().unwrap_or_else(|e| e.into_inner());
    match slot.as_deref() {
        Some(expected) if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) => {
            *slot = None;
            Redirect::to(&format!("/#token={}", guard.token)).into_response()
        }
        _ => {
            eprintln!(
                "\u{26a0} the one-time launch link was opened again. If you did not open it twice, \
                 another local process may hold the token: stop this command (Ctrl-C) and start it again."
            );
            refuse(
                StatusCode::GONE,
                "This launch link was used already: open the URL this command printed.",
            )
        }
    }
}

/// The routes of a wizard's page: the page at `/`, the shared `/wizard.css` and
/// `/wizard.js`, and its own script at `script_path`.
pub fn page_routes<S: Clone + Send + Sync + 'static>(
    index: &'static str,
    script_path: &'static str,
    script: &'static str,
) -> Router<S> {
    Router::new()
        .route(
            "/",
            get(move || async move { served_file(index, "text/html; charset=utf-8") }),
        )
        .route(
            "/wizard.css",
            get(|| async { served_file(WIZARD_CSS, "text/css; charset=utf-8") }),
        )
        .route(
            "/wizard.js",
            get(|| async { served_file(WIZARD_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            script_path,
            get(move || async move { served_file(script, "text/javascript; charset=utf-8") }),
        )
}

/// [`serve`], its outcome as the command's exit code: 0 once stopped, 1 when the port
/// cannot be had.
pub async fn run(
    name: &str,
    port: u16,
    open_browser: bool,
    app: Router,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::process::ExitCode {
    match serve(name, port, open_browser, app, stop).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\u{2718} {name} cannot listen on 127.0.0.1:{port}: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Serves `app` on 127.0.0.1:`port` (0: any free port) until `stop` completes or Ctrl-C,
/// printing `name: URL` first and opening the system browser when `open_browser` is set and
/// there is one.
pub async fn serve(
    name: &str,
    port: u16,
    open_browser: bool,
    app: Router,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let port = listener.local_addr()?.port();
    let guard = Arc::new(Guard {
        token: random_hex(),
        launch: Mutex::new(Some(random_hex())),
        hosts: [format!("127.0.0.1:{port}"), format!("localhost:{port}")],
    });
    let url = format!("http://127.0.0.1:{port}/#token={}", guard.token);
    let launch_url = format!(
        "http://127.0.0.1:{port}/open/{}",
        guard
            .launch
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_default()
    );
    let app = app
        .route("/open/{code}", get(launch).with_state(guard.clone()))
        .layer(middleware::from_fn_with_state(guard, check));
    println!("{name}: {url}");
    if open_browser && open_in_browser(&launch_url) {
        println!("Opened it in your browser.");
    }
    println!("Stop with Ctrl-C, or press Done in the page.");
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            tokio::select! {
                _ = stop => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        })
        .await
}

/// Starts the system's browser on `url` where there is one; false when there is none.
fn open_in_browser(url: &str) -> bool {
    use std::process::{Command, Stdio};
    let command = if cfg!(target_os = "macos") {
        Some(Command::new("open"))
    } else if cfg!(windows) {
        let mut c = Command::new("cmd");
        c.args(["/C", "start", ""]);
        Some(c)
    } else if std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some() {
        Some(Command::new("xdg-open"))
    } else {
        None
    };
    command.is_some_and(|mut c| {
        c.arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .is_ok()
    })
}
