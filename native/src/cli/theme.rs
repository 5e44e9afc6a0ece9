//! `regstack theme design` (docs/cli.md, "theme design"): the theme designer. Interactively
//! it serves a page on 127.0.0.1 whose left pane edits the managed `--rs-*` properties and
//! whose right pane shows the real account pages with them applied; headless, it applies
//! `--var` arguments. Either way it writes the theme file through
//! [`regstack_core::theme::Theme::write_into`], which changes only the managed values.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use regstack_core::config::Config;
use regstack_core::pages::Page;
use regstack_core::render::Renderer;
use regstack_core::theme::{Kind, Theme, VARS};
use serde_json::{json, Value};

use super::local_ui::{refusals, refuse, served_file};

/// What `theme design` was asked to do.
pub struct Options<'a> {
    /// `--config`: regstack.toml or its directory; the theme file is written beside it.
    pub config: Option<&'a Path>,
    /// `--filename`.
    pub filename: &'a str,
    /// `--port` (0: any free port).
    pub port: u16,
    /// `--headless` (or `--dry-run`, which implies it).
    pub headless: bool,
    /// `--dry-run`.
    pub dry_run: bool,
    /// `--var` arguments.
    pub vars: &'a [String],
    /// Whether to start the system browser.
    pub open_browser: bool,
}

/// Runs the designer. Exit 0 on success, 2 when a value or flag is refused, 1 when a file
/// cannot be read or written or the server cannot start.
pub async fn run(options: Options<'_>) -> ExitCode {
    let dir = super::config_dir(options.config);
    let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
    let name = options.filename;
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\']) {
        eprintln!("\u{2718} --filename takes a file name, not a path: {name:?}");
        return ExitCode::from(2);
    }
    if !options.vars.is_empty() && !options.headless {
        eprintln!("\u{2718} --var needs --headless or --dry-run; the interactive designer edits values in the page");
        return ExitCode::from(2);
    }
    let path = dir.join(name);
    let existing = match super::read_or_empty(&path) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("\u{2718} cannot read {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    };
    if options.headless {
        headless(&path, &existing, options.vars, options.dry_run)
    } else {
        interactive(&path, options.config, options.port, options.open_browser).await
    }
}

/// `--headless`/`--dry-run`: applies the `--var`s over the file's values (or the defaults)
/// and prints a JSON summary.
fn headless(path: &Path, existing: &str, vars: &[String], dry_run: bool) -> ExitCode {
    let before = Theme::from_css(existing);
    let mut theme = before.clone();
    let errors: Vec<String> = vars
        .iter()
        .filter_map(|arg| theme.set_arg(arg).err().map(|e| e.to_string()))
        .collect();
    if !errors.is_empty() {
        for e in &errors {
            eprintln!("\u{2718} {e}");
        }
        println!("{}", json!({ "ok": false, "errors": errors }));
        return ExitCode::from(2);
    }
    let css = theme.write_into(existing);
    let changed = css != existing;
    if !dry_run && changed {
        if let Err(e) = super::replace_file(path, &css, false) {
            eprintln!("\u{2718} cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&summary(path, &theme, &before, !dry_run && changed, dry_run)).unwrap_or_default()
    );
    ExitCode::SUCCESS
}

fn summary(path: &Path, theme: &Theme, before: &Theme, written: bool, dry_run: bool) -> Value {
    json!({
        "ok": true,
        "path": path.display().to_string(),
        "written": written,
        "dry_run": dry_run,
        "changed": theme.changes_from(before),
        "light": theme.light,
        "dark": theme.dark,
    })
}

/// The interactive designer's state.
struct Designer {
    path: PathBuf,
    renderer: Renderer,
    preview: Config,
    done: tokio::sync::Notify,
}

/// Where the preview mounts the pages, their files and the stand-in API.
const PREVIEW_UI: &str = "/preview";
const PREVIEW_STATIC: &str = "/preview-static";
const PREVIEW_API: &str = "/preview-api";

async fn interactive(path: &Path, config: Option<&Path>, port: u16, open_browser: bool) -> ExitCode {
    let (preview, renderer) = match preview_site(config) {
        Ok(site) => site,
        Err(e) => {
            eprintln!("\u{2718} {e}");
            return ExitCode::FAILURE;
        }
    };
    let designer = Arc::new(Designer {
        path: path.to_path_buf(),
        renderer,
        preview,
        done: tokio::sync::Notify::new(),
    });
    let mut pages: Router<Arc<Designer>> = Router::new();
    for page in Page::ALL {
        let page = *page;
        pages = pages.route(
            page.row().0,
            get(move |State(d): State<Arc<Designer>>| async move {
                framed_by_the_designer(regstack_core::http::pages::page_response(
                    &d.renderer,
                    &d.preview,
                    &[],
                    page,
                ))
            }),
        );
    }
    let files = regstack_core::http::pages::static_files(designer.renderer.static_files());
    let app = super::local_ui::page_routes(INDEX, "/designer.js", JS)
        .route(
            "/designer.css",
            get(|| async { served_file(CSS, "text/css; charset=utf-8") }),
        )
        .route("/api/theme", get(current).put(save))
        .route("/api/css", post(css))
        .route("/api/done", post(done))
        .nest(PREVIEW_UI, pages)
        .nest(PREVIEW_STATIC, files)
        .route(&format!("{PREVIEW_API}/me"), get(sample_user))
        .route(&format!("{PREVIEW_API}/{{*rest}}"), axum::routing::any(preview_only))
        .with_state(designer.clone());
    println!("Theme file: {}", path.display());
    let stop = async move { designer.done.notified().await };
    super::local_ui::run("Theme designer", port, open_browser, app, stop).await
}

/// The config the preview renders with: the host's, when it loads, for its name, brand and
/// overrides, with every section shown and the API replaced by the stand-in.
fn preview_site(config: Option<&Path>) -> anyhow::Result<(Config, Renderer)> {
    let toml = regstack::settings::toml_path(config);
    let mut preview = match toml.as_deref().map(|p| regstack::settings::load(Some(p), &[])) {
        Some(Ok(loaded)) => loaded.config,
        Some(Err(e)) => {
            eprintln!("\u{26a0} previewing with the default settings: {e}");
            Config::default()
        }
        None => Config::default(),
    };
    let renderer = regstack::renderer(&preview, &[])?;
    preview.enable_ui_router = true;
    preview.ui_prefix = PREVIEW_UI.into();
    preview.static_prefix = PREVIEW_STATIC.into();
    preview.api_prefix = PREVIEW_API.into();
    preview.enable_password_reset = true;
    preview.enable_account_deletion = true;
    preview.enable_sms_2fa = true;
    preview.allow_registration = true;
    preview.enable_oauth = false;
    preview.turnstile_enabled = false;
    // The designer lays its values over the page itself; a host sheet would hide them.
    preview.theme_css_url = None;
    renderer.check_pages(&preview, &[])?;
    Ok((preview, renderer))
}

/// A page that the designer's own page may frame: the pages refuse every frame, so the
/// preview relaxes that to this origin alone.
fn framed_by_the_designer(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("SAMEORIGIN"));
    let policy = h
        .get(header::CONTENT_SECURITY_POLICY)
        .and_then(|v| v.to_str().ok())
        .map(|p| p.replace("frame-ancestors 'none'", "frame-ancestors 'self'"));
    if let Some(v) = policy.and_then(|p| HeaderValue::from_str(&p).ok()) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    resp
}

const INDEX: &str = include_str!("../../ui/theme/index.html");
const CSS: &str = include_str!("../../ui/theme/designer.css");
const JS: &str = include_str!("../../ui/theme/designer.js");

async fn current(State(d): State<Arc<Designer>>) -> Response {
    let existing = match super::read_or_empty(&d.path) {
        Ok(text) => text,
        Err(e) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, &format!("cannot read the file: {e}")),
    };
    let vars: Vec<Value> = VARS
        .iter()
        .map(|v| {
            json!({
                "name": v.name,
                "kind": match v.kind { Kind::Colour => "colour", Kind::Length => "length", Kind::Font => "font" },
                "light": v.light,
                "dark": v.dark,
            })
        })
        .collect();
    Json(json!({
        "path": d.path.display().to_string(),
        "vars": vars,
        "theme": Theme::from_css(&existing),
        "defaults": Theme::defaults(),
    }))
    .into_response()
}

async fn css(State(d): State<Arc<Designer>>, Json(theme): Json<Theme>) -> Response {
    let existing = super::read_or_empty(&d.path).unwrap_or_default();
    let theme = match theme.checked(&Theme::from_css(&existing)) {
        Ok(t) => t,
        Err(errors) => return refusals(&errors),
    };
    Json(json!({ "css": theme.write_into(&existing) })).into_response()
}

async fn save(State(d): State<Arc<Designer>>, Json(theme): Json<Theme>) -> Response {
    // Read again: an edit made outside the designer since it started is kept.
    let existing = match super::read_or_empty(&d.path) {
        Ok(text) => text,
        Err(e) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, &format!("cannot read the file: {e}")),
    };
    let before = Theme::from_css(&existing);
    let theme = match theme.checked(&before) {
        Ok(t) => t,
        Err(errors) => return refusals(&errors),
    };
    let css = theme.write_into(&existing);
    let written = css != existing;
    if written {
        if let Err(e) = super::replace_file(&d.path, &css, false) {
            return refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("cannot write the file: {e}"),
            );
        }
    }
    Json(summary(&d.path, &theme, &before, written, false)).into_response()
}

async fn done(State(d): State<Arc<Designer>>) -> Response {
    d.done.notify_one();
    Json(json!({ "ok": true })).into_response()
}

/// The account the preview's account page shows.
async fn sample_user() -> Response {
    Json(json!({
        "id": "preview",
        "email": "ada@example.com",
        "full_name": "Ada Lovelace",
        "is_active": true,
        "is_verified": true,
        "is_superuser": false,
        "is_mfa_enabled": false,
        "phone_number": null,
        "created_at": "2026-01-01T12:00:00Z",
        "updated_at": "2026-01-01T12:00:00Z",
    }))
    .into_response()
}

/// Every other call of the preview's pages: their error banner, in the theme's colours.
async fn preview_only() -> Response {
    refuse(
        StatusCode::SERVICE_UNAVAILABLE,
        "This is the theme designer's preview: nothing is sent.",
    )
}
