//! Cloudflare Turnstile in front of the routes a bot would hammer (docs/turnstile.md).
//!
//! The browser's widget yields a one-use token; the route's handler passes it here, and it
//! is checked with Cloudflare's siteverify API through the [`HttpClient`] port: `success`,
//! then the `hostname` the widget ran on (that of `base_url`), then the `action` the widget
//! was given, so a token minted on one form cannot be spent on another. Every way the check
//! can go wrong without a verdict fails closed.
//!
//! [`HttpClient`]: crate::ports::HttpClient

use std::time::Duration;

use serde::Deserialize;

use crate::config::Config;
use crate::engine::Engine;
use crate::flows::{FlowError, FlowResult};
use crate::ports::{HttpMethod, OutboundRequest};
use crate::routes::Endpoint;

/// Cloudflare's siteverify endpoint, the default `turnstile_verify_url`.
pub const SITEVERIFY_URL: &str = "https://challenges.cloudflare.com/turnstile/v0/siteverify";

/// The body field, and the header, that carry the widget's token.
pub const FIELD: &str = "cf-turnstile-response";

/// Cloudflare caps a token at 2048 characters; anything longer is not one.
pub const TOKEN_MAX_CHARS: usize = 2048;

/// A siteverify answer is a few hundred bytes.
const ANSWER_MAX_BYTES: usize = 16 * 1024;

/// A route Turnstile can guard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Guarded {
    /// `POST /login` (`turnstile_require_on_login`, off by default).
    Login,
    /// `POST /register` (`turnstile_require_on_register`).
    Register,
    /// `POST /change-password` (`turnstile_require_on_password_change`).
    ChangePassword,
}

impl Guarded {
    /// The guard of `endpoint`, if it has one.
    pub fn of(endpoint: Endpoint) -> Option<Self> {
        match endpoint {
            Endpoint::Login => Some(Self::Login),
            Endpoint::Register => Some(Self::Register),
            Endpoint::ChangePassword => Some(Self::ChangePassword),
            _ => None,
        }
    }

    /// The widget's `data-action` on this route's form; siteverify must report the same.
    pub fn action(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::Register => "register",
            Self::ChangePassword => "change-password",
        }
    }

    /// Whether `config` demands a token here.
    pub fn required(self, config: &Config) -> bool {
        config.turnstile_enabled
            && match self {
                Self::Login => config.turnstile_require_on_login,
                Self::Register => config.turnstile_require_on_register,
                Self::ChangePassword => config.turnstile_require_on_password_change,
            }
    }
}

/// Why a request got past no Turnstile check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No token came with the request.
    Missing,
    /// Cloudflare said no, or said yes for another site or form.
    Failed,
    /// No verdict: siteverify was unreachable, slow, or answered something else.
    Unavailable,
}

#[derive(Deserialize)]
struct Verdict {
    success: bool,
    #[serde(default)]
    hostname: Option<String>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default, rename = "error-codes")]
    error_codes: Vec<String>,
}

/// Checks `token` for `guarded` when the config requires it; `remote_ip` goes to Cloudflare
/// as a further signal. Nothing happens on a route the config leaves unguarded.
pub async fn check(engine: &Engine, guarded: Guarded, token: Option<&str>, remote_ip: Option<&str>) -> FlowResult<()> {
    let config = &engine.config;
    if !guarded.required(config) {
        return Ok(());
    }
    let token = token.map(str::trim).filter(|t| !t.is_empty());
    let Some(token) = token else {
        return Err(FlowError::Turnstile(Refusal::Missing));
    };
    if token.chars().count() > TOKEN_MAX_CHARS {
        return Err(FlowError::Turnstile(Refusal::Failed));
    }
    // The serializer is not `Send`; only its text may live across the await.
    let form = {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("secret", config.turnstile_secret_key.as_deref().unwrap_or_default());
        form.append_pair("response", token);
        if let Some(ip) = remote_ip {
            form.append_pair("remoteip", ip);
        }
        form.finish()
    };
    let request = OutboundRequest {
        method: HttpMethod::Post,
        url: config.turnstile_verify_url.clone(),
        headers: vec![("content-type".into(), "application/x-www-form-urlencoded".into())],
        body: form.into_bytes(),
        timeout: Duration::from_secs(config.turnstile_timeout_seconds),
        max_response_bytes: ANSWER_MAX_BYTES,
    };
    let unavailable = |why: &str| {
        tracing::warn!(target: "regstack.turnstile", reason = why, "turnstile siteverify gave no verdict; refusing");
        FlowError::Turnstile(Refusal::Unavailable)
    };
    let answer = match engine.ports.http.send(request).await {
        Ok(answer) => answer,
        Err(e) => return Err(unavailable(&e.to_string())),
    };
    if answer.status != 200 {
        return Err(unavailable(&format!("status {}", answer.status)));
    }
    let Ok(verdict) = serde_json::from_slice::<Verdict>(&answer.body) else {
        return Err(unavailable("an answer that is not a siteverify verdict"));
    };
    judge(&verdict, guarded, &expected_hostname(config))
}

fn judge(verdict: &Verdict, guarded: Guarded, hostname: &str) -> FlowResult<()> {
    if !verdict.success {
        // Our own secret refused is the operator's problem, not the user's: say so loudly and
        // answer 503, as for any other missing verdict.
        if verdict
            .error_codes
            .iter()
            .any(|c| c == "missing-input-secret" || c == "invalid-input-secret")
        {
            tracing::error!(target: "regstack.turnstile", "siteverify refused turnstile_secret_key");
            return Err(FlowError::Turnstile(Refusal::Unavailable));
        }
        tracing::info!(target: "regstack.turnstile", codes = ?verdict.error_codes, "turnstile token refused");
        return Err(FlowError::Turnstile(Refusal::Failed));
    }
    let host_ok = verdict
        .hostname
        .as_deref()
        .is_some_and(|h| h.eq_ignore_ascii_case(hostname));
    let action_ok = verdict.action.as_deref() == Some(guarded.action());
    if !host_ok || !action_ok {
        tracing::info!(
            target: "regstack.turnstile",
            hostname = ?verdict.hostname,
            action = ?verdict.action,
            expected_action = guarded.action(),
            "turnstile token was minted for another site or form"
        );
        return Err(FlowError::Turnstile(Refusal::Failed));
    }
    Ok(())
}

/// The host of `base_url`, without port: where the widget runs.
pub fn expected_hostname(config: &Config) -> String {
    let rest = config
        .base_url
        .split_once("://")
        .map(|(_, rest)| rest)
        .unwrap_or(&config.base_url);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority.rsplit('@').next().unwrap_or_default();
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        authority.split(':').next().unwrap_or_default()
    };
    host.to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(json: &str) -> Verdict {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_verdict_must_name_this_site_and_this_form() {
        let good = r#"{"success":true,"hostname":"app.example.com","action":"login"}"#;
        assert!(judge(&verdict(good), Guarded::Login, "app.example.com").is_ok());
        for (json, guarded) in [
            (good, Guarded::Register),
            (
                r#"{"success":true,"hostname":"evil.example","action":"login"}"#,
                Guarded::Login,
            ),
            (r#"{"success":true,"action":"login"}"#, Guarded::Login),
            (r#"{"success":true,"hostname":"app.example.com"}"#, Guarded::Login),
            (
                r#"{"success":false,"error-codes":["timeout-or-duplicate"]}"#,
                Guarded::Login,
            ),
        ] {
            assert!(
                matches!(
                    judge(&verdict(json), guarded, "app.example.com"),
                    Err(FlowError::Turnstile(Refusal::Failed))
                ),
                "{json} for {guarded:?}"
            );
        }
        let bad_secret = r#"{"success":false,"error-codes":["invalid-input-secret"]}"#;
        assert!(matches!(
            judge(&verdict(bad_secret), Guarded::Login, "app.example.com"),
            Err(FlowError::Turnstile(Refusal::Unavailable))
        ));
    }

    #[test]
    fn the_expected_hostname_is_base_urls_host() {
        for (base, host) in [
            ("https://App.Example.com", "app.example.com"),
            ("http://localhost:8000/", "localhost"),
            ("https://u:p@example.com:8443/app?x", "example.com"),
            ("http://[::1]:8000", "::1"),
        ] {
            let config = Config {
                base_url: base.into(),
                ..Config::default()
            };
            assert_eq!(expected_hostname(&config), host, "{base}");
        }
    }
}
