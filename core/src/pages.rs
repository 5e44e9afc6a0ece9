//! The account pages (docs/pages.md): the page table, the static assets with their content
//! hashes, and the headers every page carries. The pages are stateless (the same HTML for
//! everyone); the bundled `regstack.js` does the work in the browser against the JSON API.

use sha2::{Digest, Sha256};

use crate::config::Config;

/// One page under `ui_prefix`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Page {
    /// `/login`
    Login,
    /// `/register`
    Register,
    /// `/verify?token=…`
    Verify,
    /// `/forgot`
    Forgot,
    /// `/reset?token=…`
    Reset,
    /// `/reset-password?token=…`: the path 0.9.3's reset emails link to (the same page).
    ResetPassword,
    /// `/confirm-email-change?token=…`
    ConfirmEmailChange,
    /// `/me`
    Me,
    /// `/mfa-confirm`
    MfaConfirm,
    /// `/oauth-complete?id=…`
    OAuthComplete,
}

impl Page {
    /// Every page, in table order.
    pub const ALL: &'static [Page] = &[
        Page::Login,
        Page::Register,
        Page::Verify,
        Page::Forgot,
        Page::Reset,
        Page::ResetPassword,
        Page::ConfirmEmailChange,
        Page::Me,
        Page::MfaConfirm,
        Page::OAuthComplete,
    ];

    /// `(path below ui_prefix, template, data-rs-page, title)`.
    pub fn row(self) -> (&'static str, &'static str, &'static str, &'static str) {
        match self {
            Page::Login => ("/login", "auth/login.html", "login", "Sign in"),
            Page::Register => ("/register", "auth/register.html", "register", "Create an account"),
            Page::Verify => ("/verify", "auth/verify.html", "verify", "Confirm your email"),
            Page::Forgot => ("/forgot", "auth/forgot.html", "forgot", "Reset your password"),
            Page::Reset => ("/reset", "auth/reset.html", "reset", "Choose a new password"),
            Page::ResetPassword => ("/reset-password", "auth/reset.html", "reset", "Choose a new password"),
            Page::ConfirmEmailChange => (
                "/confirm-email-change",
                "auth/email_change_confirm.html",
                "confirm-email-change",
                "Confirm your new email",
            ),
            Page::Me => ("/me", "auth/me.html", "me", "Your account"),
            Page::MfaConfirm => (
                "/mfa-confirm",
                "auth/mfa_confirm.html",
                "mfa-confirm",
                "Enter your code",
            ),
            Page::OAuthComplete => (
                "/oauth-complete",
                "auth/oauth_complete.html",
                "oauth-complete",
                "Signing you in",
            ),
        }
    }
}

/// One static file under `static_prefix`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Asset {
    /// Path below `static_prefix`, without the leading slash.
    pub path: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its bytes.
    pub body: &'static str,
}

/// The bundled static files.
pub const ASSETS: &[Asset] = &[
    Asset {
        path: "css/core.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../../templates/static/css/core.css"),
    },
    Asset {
        path: "css/theme.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../../templates/static/css/theme.css"),
    },
    Asset {
        path: "js/regstack.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../templates/static/js/regstack.js"),
    },
];

impl Asset {
    /// The bundled file at `path`.
    pub fn find(path: &str) -> Option<&'static Asset> {
        ASSETS.iter().find(|a| a.path == path)
    }

    /// The first 16 hex digits of its SHA-256: the `?v=` of its URL and its ETag, so a new
    /// release is a new URL and an old one can be cached for a year. Hashed once.
    pub fn version(&self) -> &'static str {
        static VERSIONS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
        let versions = VERSIONS.get_or_init(|| {
            ASSETS
                .iter()
                .map(|a| crate::hex::encode(&Sha256::digest(a.body.as_bytes())[..8]))
                .collect()
        });
        let at = ASSETS.iter().position(|a| a.path == self.path).unwrap_or(0);
        versions[at].as_str()
    }
}

/// The origin (`scheme://host[:port]`, lower-cased) of an absolute http(s) URL whose host is
/// a plain DNS name or IPv4 address: anything else (a wildcard, whitespace, a control
/// character, user info) could widen a policy, so it has none. The pages' CSP and the push
/// services' allowlist (`crate::push`) both read origins through it.
pub fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "https" && scheme != "http" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?.to_ascii_lowercase();
    let (host, port) = match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority.as_str(), None),
    };
    let host_ok = !host.is_empty()
        && !host.starts_with(['.', '-'])
        && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.chars().all(|c| c.is_ascii_digit()));
    (host_ok && port_ok).then(|| format!("{scheme}://{authority}"))
}

/// The policy with nothing added: what a page gets should its own ever fail to build.
pub const STRICTEST_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; frame-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'";

/// Cloudflare Turnstile's widget comes from here (docs/turnstile.md).
pub const TURNSTILE_ORIGIN: &str = "https://challenges.cloudflare.com";

/// The `Content-Security-Policy` of every page: only this origin, plus the origins the config
/// names (`theme_css_url`'s for styles, `brand_logo_url`'s for the logo, Turnstile's for its
/// widget when it is on). No inline script or style anywhere.
pub fn content_security_policy(config: &Config) -> String {
    let extra = |url: &Option<String>| {
        url.as_deref()
            .and_then(origin)
            .map(|o| format!(" {o}"))
            .unwrap_or_default()
    };
    let turnstile = config.turnstile_enabled;
    let script = if turnstile {
        format!(" {TURNSTILE_ORIGIN}")
    } else {
        String::new()
    };
    let frame = if turnstile {
        TURNSTILE_ORIGIN.to_string()
    } else {
        "'none'".to_string()
    };
    format!(
        "default-src 'self'; script-src 'self'{script}; style-src 'self'{}; img-src 'self' data:{}; \
         connect-src 'self'; frame-src {frame}; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; \
         object-src 'none'",
        extra(&config.theme_css_url),
        extra(&config.brand_logo_url),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[regstack_macros::dual_test]
    fn the_policy_names_only_the_origins_the_config_does() {
        let plain = content_security_policy(&Config::default());
        assert!(
            plain.contains("script-src 'self';") && plain.contains("frame-src 'none'"),
            "{plain}"
        );
        assert!(!plain.contains("unsafe-inline"), "{plain}");
        let config = Config {
            turnstile_enabled: true,
            theme_css_url: Some("https://cdn.example.com/brand/theme.css?v=2".into()),
            brand_logo_url: Some("https://img.example.com/logo.png".into()),
            ..Config::default()
        };
        let csp = content_security_policy(&config);
        assert!(
            csp.contains("script-src 'self' https://challenges.cloudflare.com;"),
            "{csp}"
        );
        assert!(csp.contains("frame-src https://challenges.cloudflare.com;"), "{csp}");
        assert!(csp.contains("style-src 'self' https://cdn.example.com;"), "{csp}");
        assert!(csp.contains("img-src 'self' data: https://img.example.com;"), "{csp}");
        // A URL that would smuggle a directive in adds nothing.
        let hostile = Config {
            theme_css_url: Some("https://x.example; script-src *".into()),
            ..Config::default()
        };
        let csp = content_security_policy(&hostile);
        assert!(
            !csp.contains("script-src *") && csp.contains("style-src 'self';"),
            "{csp}"
        );
    }

    #[regstack_macros::dual_test]
    fn pages_have_one_path_each_and_assets_one_version_each() {
        let mut paths: Vec<&str> = Page::ALL.iter().map(|p| p.row().0).collect();
        paths.sort_unstable();
        paths.dedup();
        assert_eq!(paths.len(), Page::ALL.len());
        let versions: Vec<&str> = ASSETS.iter().map(Asset::version).collect();
        assert!(versions.iter().all(|v| v.len() == 16), "{versions:?}");
        assert_ne!(versions[0], versions[1]);
        let js = crate::hex::encode(&Sha256::digest(ASSETS[2].body.as_bytes())[..8]);
        assert_eq!(Asset::find("js/regstack.js").map(Asset::version), Some(js.as_str()));
    }

    #[regstack_macros::dual_test]
    fn every_page_renders_and_a_broken_override_is_named() {
        let renderer = crate::render::Renderer::new(Default::default());
        let config = Config {
            app_name: "Acme <Accounts>".into(),
            ..Config::default()
        };
        renderer.check_pages(&config, &[]).unwrap();
        let login = renderer
            .page(Page::Login, &config, &[("google".into(), "Google".into())])
            .unwrap();
        assert!(login.contains("Acme &lt;Accounts&gt;"), "the app name is escaped");
        assert!(!login.contains("Sign in with Google"), "OAuth is off in this config");
        let broken = crate::render::Renderer::new(
            [(
                "auth/forgot.html".to_string(),
                "{% extends \"base.html\" %}\n{% block content %}{% if %}{% endblock %}".to_string(),
            )]
            .into_iter()
            .collect(),
        );
        let e = broken.check_pages(&config, &[]).unwrap_err();
        assert!(e.to_string().contains("auth/forgot.html"), "{e}");
        assert!(e.to_string().contains("auth/forgot.html:2"), "the line is named: {e}");
    }
}
