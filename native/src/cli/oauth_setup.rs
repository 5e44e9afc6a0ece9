//! `regstack oauth setup` (docs/cli.md, "oauth setup"): sign-in with Google, configured
//! into an existing `regstack.toml` and `regstack.secrets.env`. Interactively, a page on
//! 127.0.0.1 walks through registering the Google client and shows what will change before
//! it writes; headless, the flags give the answers. Both merge through
//! [`super::config_file::ConfigFiles`], which checks the result loads before writing it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::config_file::{check_secret, ConfigFiles};
use super::local_ui::refuse;

/// The env name the client secret is written under.
pub const SECRET_NAME: &str = "REGSTACK_OAUTH__GOOGLE_CLIENT_SECRET";

/// Where a Google client id ends.
const GOOGLE_CLIENT_SUFFIX: &str = ".apps.googleusercontent.com";

/// The answers, from flags or from the page. `None` leaves a setting as the file has it.
#[derive(Debug, Default, Deserialize)]
pub struct Answers {
    /// The Google client id.
    pub client_id: String,
    /// The Google client secret.
    pub client_secret: String,
    /// `base_url` to write (and to build the redirect URI from), when given.
    #[serde(default)]
    pub base_url: Option<String>,
    /// `[oauth] auto_link_verified_emails`.
    #[serde(default)]
    pub auto_link: Option<bool>,
    /// `[oauth] enforce_mfa_on_oauth_signin`.
    #[serde(default)]
    pub mfa: Option<bool>,
}

/// What `oauth setup` was asked to do.
pub struct Options<'a> {
    /// `--config`: regstack.toml or its directory.
    pub config: Option<&'a Path>,
    /// `--api-prefix`, for the redirect URI shown.
    pub api_prefix: Option<&'a str>,
    /// `--port` (0: any free port).
    pub port: u16,
    /// `--headless` (or `--dry-run`).
    pub headless: bool,
    /// `--dry-run`.
    pub dry_run: bool,
    /// The answers the flags gave, if any flag gave one.
    pub answers: Option<Answers>,
    /// Whether to start the system browser.
    pub open_browser: bool,
}

/// Runs the command: 0 when done, 2 when an answer is refused, 1 when a file cannot be read
/// or written or the server cannot start.
pub async fn run(options: Options<'_>) -> ExitCode {
    let (toml_path, secrets_path) = super::config_file::paths(options.config);
    let api_prefix = options.api_prefix.map(str::to_string);
    if options.headless {
        let answers = options.answers.unwrap_or_default();
        return super::config_file::headless(&toml_path, &secrets_path, options.dry_run, |files| {
            let redirect_uri = merge(files, &answers, api_prefix.as_deref())?;
            Ok(json!({ "redirect_uri": redirect_uri }))
        });
    }
    if options.answers.is_some() {
        eprintln!("\u{2718} the answer flags need --headless or --dry-run; the page asks for them otherwise");
        return ExitCode::from(2);
    }
    let wizard = Arc::new(Wizard {
        toml_path,
        secrets_path,
        api_prefix,
        done: tokio::sync::Notify::new(),
    });
    let app = super::local_ui::page_routes(INDEX, "/oauth.js", JS)
        .route("/api/state", get(state))
        .route("/api/preview", post(preview))
        .route("/api/save", post(save))
        .route("/api/done", post(done))
        .with_state(wizard.clone());
    let stop = async move { wizard.done.notified().await };
    super::local_ui::run("OAuth setup", options.port, options.open_browser, app, stop).await
}

/// The redirect URI to register with Google, as the server derives it from `config` (with
/// the API prefix the host mounts it under, when given).
fn redirect_uri(mut config: regstack_core::config::Config, api_prefix: Option<&str>) -> String {
    if let Some(prefix) = api_prefix {
        config.api_prefix = prefix.to_string();
    }
    regstack_core::oauth::callback_url(&config, "google")
}

/// Checks the answers and merges them; answers the redirect URI, or every refusal.
fn merge(files: &mut ConfigFiles, a: &Answers, api_prefix: Option<&str>) -> Result<String, Vec<String>> {
    let mut errors = Vec::new();
    let client_id = a.client_id.trim();
    if client_id.is_empty() {
        errors.push("--client-id is required".to_string());
    } else if !client_id.ends_with(GOOGLE_CLIENT_SUFFIX) || client_id.contains(char::is_whitespace) {
        errors.push(format!(
            "--client-id: a Google client id ends in {GOOGLE_CLIENT_SUFFIX}"
        ));
    }
    if let Err(e) = check_secret("--client-secret", a.client_secret.trim()) {
        errors.push(e);
    }
    if let Some(base) = &a.base_url {
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            errors.push("--base-url: an http:// or https:// URL".to_string());
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    files.set("", "enable_oauth", true);
    if let Some(base) = &a.base_url {
        files.set("", "base_url", base.trim_end_matches('/'));
    }
    files.set("oauth", "google_client_id", client_id);
    // A secret belongs in the secrets file alone.
    files.remove_secret_key("oauth", "google_client_secret");
    files.set_secret(SECRET_NAME, a.client_secret.trim());
    if let Some(on) = a.auto_link {
        files.set("oauth", "auto_link_verified_emails", on);
    }
    if let Some(on) = a.mfa {
        files.set("oauth", "enforce_mfa_on_oauth_signin", on);
    }
    let config = files.check().map_err(|e| vec![e.to_string()])?;
    // A REGSTACK_ line in the secrets file outranks the TOML: the merge must still show.
    let mut shadowed = Vec::new();
    if !config.enable_oauth {
        shadowed.push("enable_oauth");
    }
    if config.oauth.google_client_id.as_deref() != Some(client_id) {
        shadowed.push("oauth.google_client_id");
    }
    if a.auto_link
        .is_some_and(|on| on != config.oauth.auto_link_verified_emails)
    {
        shadowed.push("oauth.auto_link_verified_emails");
    }
    if a.mfa.is_some_and(|on| on != config.oauth.enforce_mfa_on_oauth_signin) {
        shadowed.push("oauth.enforce_mfa_on_oauth_signin");
    }
    if !shadowed.is_empty() {
        return Err(vec![super::config_file::shadowed_message(files, &shadowed)]);
    }
    Ok(redirect_uri(config, api_prefix))
}

struct Wizard {
    toml_path: PathBuf,
    secrets_path: PathBuf,
    api_prefix: Option<String>,
    done: tokio::sync::Notify,
}

impl Wizard {
    fn files(&self) -> Result<ConfigFiles, super::config_file::ConfigFileError> {
        ConfigFiles::open(&self.toml_path, &self.secrets_path)
    }
}

const INDEX: &str = include_str!("../../ui/oauth/index.html");
const JS: &str = include_str!("../../ui/oauth/oauth.js");

fn unreadable(e: impl std::fmt::Display) -> Response {
    refuse(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())
}

async fn state(State(w): State<Arc<Wizard>>) -> Response {
    let files = match w.files() {
        Ok(f) => f,
        Err(e) => return unreadable(e),
    };
    let config = files.check().unwrap_or_default();
    Json(json!({
        "config": files.toml_path().display().to_string(),
        "redirect_uri": redirect_uri(config, w.api_prefix.as_deref()),
        "client_id": files.get_str("oauth", "google_client_id"),
        "auto_link": files.get_bool("oauth", "auto_link_verified_emails").unwrap_or(false),
        "mfa": files.get_bool("oauth", "enforce_mfa_on_oauth_signin").unwrap_or(false),
        "warning": files.secrets_warning(),
    }))
    .into_response()
}

/// Merges the page's answers; `write` decides whether the files change.
fn apply(w: &Wizard, answers: &Answers, write: bool) -> Response {
    let mut files = match w.files() {
        Ok(f) => f,
        Err(e) => return unreadable(e),
    };
    match merge(&mut files, answers, w.api_prefix.as_deref()) {
        Err(errors) => super::local_ui::refusals(&errors),
        Ok(redirect_uri) => {
            let written = if write {
                match files.write() {
                    Ok(wrote) => wrote,
                    Err(e) => return unreadable(e),
                }
            } else {
                false
            };
            Json(json!({ "diff": files.diff(), "written": written, "redirect_uri": redirect_uri })).into_response()
        }
    }
}

async fn preview(State(w): State<Arc<Wizard>>, Json(answers): Json<Answers>) -> Response {
    apply(&w, &answers, false)
}

async fn save(State(w): State<Arc<Wizard>>, Json(answers): Json<Answers>) -> Response {
    apply(&w, &answers, true)
}

async fn done(State(w): State<Arc<Wizard>>) -> Response {
    w.done.notify_one();
    Json(json!({ "ok": true })).into_response()
}
