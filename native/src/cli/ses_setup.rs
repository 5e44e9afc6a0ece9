//! `regstack ses setup` (docs/cli.md, "ses setup"): email through Amazon SES, configured into
//! an existing `regstack.toml` and `regstack.secrets.env`. Interactively, a page on
//! 127.0.0.1 takes the answers, checks them against SES (the sender's identity, the
//! account's sandbox, a test message) and shows what will change before it writes; headless,
//! the flags give the answers and nothing is asked of AWS.

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

/// The env name an explicit secret key is written under.
pub const SECRET_NAME: &str = "REGSTACK_EMAIL__SES_SECRET_ACCESS_KEY";

/// The regions with an SES endpoint.
pub const SES_REGIONS: &[&str] = &[
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "af-south-1",
    "ap-east-1",
    "ap-south-1",
    "ap-south-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-5",
    "ca-central-1",
    "ca-west-1",
    "eu-central-1",
    "eu-central-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
    "sa-east-1",
    "us-gov-east-1",
    "us-gov-west-1",
];

/// Where SES takes its credentials from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum CredentialSource {
    /// A named profile of the shared AWS files: `[email] ses_profile`.
    Profile,
    /// An access key: `[email] ses_access_key_id`, the secret in regstack.secrets.env.
    Explicit,
    /// The SDK's default chain at run time (environment, files, instance role): neither.
    Chain,
}

/// The answers, from flags or from the page.
#[derive(Debug, Default, Deserialize)]
pub struct Answers {
    /// `[email] ses_region`.
    pub region: String,
    /// `[email] from_address`.
    pub from_address: String,
    /// Where credentials come from. Left out, it follows from `--profile` or
    /// `--access-key-id`, else the file's credentials stay as they are.
    #[serde(default)]
    pub credential_source: Option<CredentialSource>,
    /// The profile (with `profile`).
    #[serde(default)]
    pub profile: Option<String>,
    /// The access key id (with `explicit`).
    #[serde(default)]
    pub access_key_id: Option<String>,
    /// The secret access key (with `explicit`).
    #[serde(default)]
    pub secret_access_key: Option<String>,
}

/// What `ses setup` was asked to do.
pub struct Options<'a> {
    /// `--config`: regstack.toml or its directory.
    pub config: Option<&'a Path>,
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

/// Runs the command: 0 when done, 2 when an answer is refused (or, interactively, when this
/// build has no SES support), 1 when a file cannot be read or written or the server cannot
/// start.
pub async fn run(options: Options<'_>) -> ExitCode {
    let (toml_path, secrets_path) = super::config_file::paths(options.config);
    if options.headless {
        let answers = options.answers.unwrap_or_default();
        return super::config_file::headless(&toml_path, &secrets_path, options.dry_run, |files| {
            merge(files, &answers)?;
            Ok(json!({ "aws_checks": "skipped (headless)" }))
        });
    }
    if options.answers.is_some() {
        eprintln!("\u{2718} the answer flags need --headless or --dry-run; the page asks for them otherwise");
        return ExitCode::from(2);
    }
    if !cfg!(feature = "ses") {
        eprintln!(
            "\u{2718} this build has no SES support, so the wizard cannot check anything with AWS: \
             build with --features ses, or use --headless"
        );
        return ExitCode::from(2);
    }
    let wizard = Arc::new(Wizard {
        toml_path,
        secrets_path,
        done: tokio::sync::Notify::new(),
    });
    let app = super::local_ui::page_routes(INDEX, "/ses.js", JS)
        .route("/api/state", get(state))
        .route("/api/check", post(check))
        .route("/api/send-test", post(send_test))
        .route("/api/preview", post(preview))
        .route("/api/save", post(save))
        .route("/api/done", post(done))
        .with_state(wizard.clone());
    let stop = async move { wizard.done.notified().await };
    super::local_ui::run("SES setup", options.port, options.open_browser, app, stop).await
}

fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// The credential source the answers mean: the one named, else the one their flags imply
/// (`--profile`, `--access-key-id`), else none (the file's credentials stay as they are).
fn source_of(a: &Answers) -> Result<Option<CredentialSource>, String> {
    let implied = match (
        given(&a.profile),
        given(&a.access_key_id).or(given(&a.secret_access_key)),
    ) {
        (Some(_), Some(_)) => return Err("--profile and an access key are two credential sources: give one".into()),
        (Some(_), None) => Some(CredentialSource::Profile),
        (None, Some(_)) => Some(CredentialSource::Explicit),
        (None, None) => None,
    };
    match (a.credential_source, implied) {
        (Some(named), Some(implied)) if named != implied => Err(format!(
            "--credential-source {} does not take {}",
            match named {
                CredentialSource::Profile => "profile",
                CredentialSource::Explicit => "explicit",
                CredentialSource::Chain => "chain",
            },
            if implied == CredentialSource::Profile {
                "--profile"
            } else {
                "an access key"
            }
        )),
        (named, implied) => Ok(named.or(implied)),
    }
}

/// The answers checked, or every refusal.
fn refusals_of(a: &Answers) -> Vec<String> {
    let mut errors = Vec::new();
    if a.region.trim().is_empty() {
        errors.push("--region is required".into());
    } else if !SES_REGIONS.contains(&a.region.trim()) {
        errors.push(format!(
            "--region: {:?} has no SES endpoint (one of: {})",
            a.region,
            SES_REGIONS.join(", ")
        ));
    }
    if a.from_address.trim().is_empty() {
        errors.push("--from-address is required".into());
    } else if regstack_core::email::Email::parse(a.from_address.trim()).is_err() {
        errors.push(format!("--from-address: {:?} is not an email address", a.from_address));
    }
    match source_of(a) {
        Err(e) => errors.push(e),
        Ok(Some(CredentialSource::Profile)) => match given(&a.profile) {
            None => errors.push("--profile is required with --credential-source profile".into()),
            Some(p) if !p.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-+@".contains(&b)) => {
                errors.push(format!("--profile: {p:?} is not a profile name"))
            }
            Some(_) => {}
        },
        Ok(Some(CredentialSource::Explicit)) => {
            match given(&a.access_key_id) {
                None => errors.push("--access-key-id is required with --credential-source explicit".into()),
                Some(k) if k.len() < 16 || !k.bytes().all(|b| b.is_ascii_alphanumeric()) => {
                    errors.push("--access-key-id: an access key id is 16 or more letters and digits".into())
                }
                Some(_) => {}
            }
            match given(&a.secret_access_key) {
                None => errors.push("--secret-access-key is required with --credential-source explicit".into()),
                Some(s) => {
                    if let Err(e) = check_secret("--secret-access-key", s) {
                        errors.push(e);
                    }
                }
            }
        }
        Ok(Some(CredentialSource::Chain) | None) => {}
    }
    errors
}

/// Checks the answers and merges them: `[email]` gets the SES backend, region and sender,
/// and (when the answers name one) exactly one credential source, the others' keys removed.
fn merge(files: &mut ConfigFiles, a: &Answers) -> Result<(), Vec<String>> {
    let errors = refusals_of(a);
    if !errors.is_empty() {
        return Err(errors);
    }
    let source = source_of(a).map_err(|e| vec![e])?;
    files.set("email", "backend", "ses");
    files.set("email", "ses_region", a.region.trim());
    files.set("email", "from_address", a.from_address.trim());
    // A secret belongs in the secrets file alone.
    files.remove_secret_key("email", "ses_secret_access_key");
    let trimmed = |v: &Option<String>| v.as_deref().unwrap_or_default().trim().to_string();
    match source {
        Some(CredentialSource::Profile) => {
            files.set("email", "ses_profile", trimmed(&a.profile));
            files.remove("email", "ses_access_key_id");
            files.remove_secret(SECRET_NAME);
        }
        Some(CredentialSource::Explicit) => {
            files.set("email", "ses_access_key_id", trimmed(&a.access_key_id));
            files.set_secret(SECRET_NAME, &trimmed(&a.secret_access_key));
            files.remove("email", "ses_profile");
        }
        Some(CredentialSource::Chain) => {
            files.remove("email", "ses_profile");
            files.remove("email", "ses_access_key_id");
            files.remove_secret(SECRET_NAME);
        }
        None => {}
    }
    let config = files.check().map_err(|e| vec![e.to_string()])?;
    // A REGSTACK_ line in the secrets file outranks the TOML: the merge must still show.
    let email = &config.email;
    let mut shadowed = Vec::new();
    if email.backend != regstack_core::config::EmailBackend::Ses {
        shadowed.push("email.backend");
    }
    if email.ses_region != a.region.trim() {
        shadowed.push("email.ses_region");
    }
    if email.from_address != a.from_address.trim() {
        shadowed.push("email.from_address");
    }
    let (profile, key) = (email.ses_profile.as_deref(), email.ses_access_key_id.as_deref());
    let holds = match source {
        Some(CredentialSource::Profile) => profile == given(&a.profile) && key.is_none(),
        Some(CredentialSource::Explicit) => key == given(&a.access_key_id) && profile.is_none(),
        Some(CredentialSource::Chain) => profile.is_none() && key.is_none(),
        None => true,
    };
    if !holds {
        shadowed.push("the credential source");
    }
    if !shadowed.is_empty() {
        return Err(vec![super::config_file::shadowed_message(files, &shadowed)]);
    }
    Ok(())
}

struct Wizard {
    toml_path: PathBuf,
    secrets_path: PathBuf,
    done: tokio::sync::Notify,
}

impl Wizard {
    fn files(&self) -> Result<ConfigFiles, super::config_file::ConfigFileError> {
        ConfigFiles::open(&self.toml_path, &self.secrets_path)
    }
}

const INDEX: &str = include_str!("../../ui/ses/index.html");
const JS: &str = include_str!("../../ui/ses/ses.js");

fn unreadable(e: impl std::fmt::Display) -> Response {
    refuse(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())
}

async fn state(State(w): State<Arc<Wizard>>) -> Response {
    let files = match w.files() {
        Ok(f) => f,
        Err(e) => return unreadable(e),
    };
    let get = |key: &str| files.get_str("email", key);
    let source = if get("ses_profile").is_some() {
        "profile"
    } else if get("ses_access_key_id").is_some() {
        "explicit"
    } else {
        "chain"
    };
    let region = get("ses_region").filter(|r| SES_REGIONS.contains(&r.as_str()));
    Json(json!({
        "config": files.toml_path().display().to_string(),
        "regions": SES_REGIONS,
        "region": region.unwrap_or_else(|| "eu-west-1".into()),
        "from_address": get("from_address"),
        "credential_source": source,
        "profile": get("ses_profile"),
        "access_key_id": get("ses_access_key_id"),
        "warning": files.secrets_warning(),
    }))
    .into_response()
}

fn apply(w: &Wizard, answers: &Answers, write: bool) -> Response {
    let mut files = match w.files() {
        Ok(f) => f,
        Err(e) => return unreadable(e),
    };
    if let Err(errors) = merge(&mut files, answers) {
        return super::local_ui::refusals(&errors);
    }
    let written = if write {
        match files.write() {
            Ok(wrote) => wrote,
            Err(e) => return unreadable(e),
        }
    } else {
        false
    };
    Json(json!({ "diff": files.diff(), "written": written })).into_response()
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

/// The answers as the `[email]` settings the server would read, for an SES client.
fn email_config(a: &Answers) -> regstack_core::config::EmailConfig {
    let mut email = regstack_core::config::EmailConfig {
        ses_region: a.region.trim().to_string(),
        from_address: a.from_address.trim().to_string(),
        ..Default::default()
    };
    match source_of(a).ok().flatten() {
        Some(CredentialSource::Profile) => email.ses_profile = given(&a.profile).map(str::to_string),
        Some(CredentialSource::Explicit) => {
            email.ses_access_key_id = given(&a.access_key_id).map(str::to_string);
            email.ses_secret_access_key = given(&a.secret_access_key).map(str::to_string);
        }
        Some(CredentialSource::Chain) | None => {}
    }
    email
}

/// The AWS checks: the sender's identity (which also proves the credentials), then the
/// account's sandbox. Each is one result line.
async fn check(Json(answers): Json<Answers>) -> Response {
    let errors = refusals_of(&answers);
    if !errors.is_empty() {
        return super::local_ui::refusals(&errors);
    }
    #[cfg(feature = "ses")]
    {
        let checks = regstack::delivery::aws::ses_checks::run(&email_config(&answers)).await;
        Json(json!({ "results": checks })).into_response()
    }
    #[cfg(not(feature = "ses"))]
    {
        let _ = email_config(&answers);
        refuse(StatusCode::NOT_IMPLEMENTED, "This build has no SES support.")
    }
}

/// The page's test message: the answers plus the address to send to.
#[derive(Deserialize)]
struct TestSend {
    #[serde(flatten)]
    answers: Answers,
    to: String,
}

async fn send_test(Json(t): Json<TestSend>) -> Response {
    let mut errors = refusals_of(&t.answers);
    if regstack_core::email::Email::parse(t.to.trim()).is_err() {
        errors.push(format!("{:?} is not an email address", t.to));
    }
    if !errors.is_empty() {
        return super::local_ui::refusals(&errors);
    }
    #[cfg(feature = "ses")]
    {
        let result = regstack::delivery::aws::ses_checks::send_test(&email_config(&t.answers), t.to.trim()).await;
        Json(json!({ "result": result })).into_response()
    }
    #[cfg(not(feature = "ses"))]
    {
        let _ = email_config(&t.answers);
        refuse(StatusCode::NOT_IMPLEMENTED, "This build has no SES support.")
    }
}
