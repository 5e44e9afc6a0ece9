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

/// The bundled static files: path below `static_prefix` and contents.
pub const BUNDLED_FILES: &[(&str, &str)] = &[
    ("css/core.css", include_str!("../../templates/static/css/core.css")),
    ("css/theme.css", include_str!("../../templates/static/css/theme.css")),
    ("js/regstack.js", include_str!("../../templates/static/js/regstack.js")),
];

/// The largest file `extra_static_dirs` may hold.
pub const STATIC_FILE_MAX_BYTES: usize = 4 * 1024 * 1024;
/// The most all of them may hold together (they are served from memory).
pub const STATIC_TOTAL_MAX_BYTES: usize = 32 * 1024 * 1024;
/// The most files they may hold.
pub const STATIC_FILES_MAX: usize = 1000;

/// One file under `static_prefix`.
#[derive(Clone, Debug)]
pub struct StaticFile {
    /// Path below `static_prefix`, without the leading slash.
    pub path: String,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its bytes.
    pub body: axum::body::Bytes,
    /// The first 16 hex digits of its SHA-256: the `?v=` of its URL and its ETag, so a new
    /// file is a new URL and an old one can be cached for a year.
    pub version: String,
}

impl StaticFile {
    fn new(path: &str, content_type: &'static str, body: axum::body::Bytes) -> Self {
        let version = crate::hex::encode(&Sha256::digest(&body)[..8]);
        Self {
            path: path.to_string(),
            content_type,
            body,
            version,
        }
    }
}

/// Why a file of `extra_static_dirs` cannot be served.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StaticFileError {
    /// A path segment outside `[A-Za-z0-9._-]`, or one starting with a dot.
    #[error(
        "static file {0:?}: each part of its path must be letters, digits, '.', '_' or '-', not starting with '.'"
    )]
    Path(String),
    /// A type the pages have no use for.
    #[error("static file {0:?}: only css, js, mjs, json, map, txt, png, jpg, jpeg, gif, webp, avif, svg, ico, woff, woff2, ttf and otf files are served")]
    Type(String),
    /// Over [`STATIC_FILE_MAX_BYTES`].
    #[error("static file {0:?} is over 4 MiB")]
    TooLarge(String),
    /// Over [`STATIC_TOTAL_MAX_BYTES`] or [`STATIC_FILES_MAX`] in all.
    #[error("extra_static_dirs hold more than 32 MiB or 1000 files; serve large collections from a CDN")]
    TooMany,
}

/// The `Content-Type` of a file served under `static_prefix`, by extension; `None` for a
/// type the pages have no use for (an HTML file there would be a page on this origin outside
/// the pages' policy).
pub fn static_content_type(path: &str) -> Option<&'static str> {
    let ext = path.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" | "map" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "svg" => "image/svg+xml",
        "ico" => "image/x-icon",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "otf" => "font/otf",
        _ => return None,
    })
}

/// The files served under `static_prefix`: the bundled ones, with a host's files from
/// `extra_static_dirs` replacing them by path or added beside them.
#[derive(Clone, Debug)]
pub struct StaticFiles {
    files: Vec<StaticFile>,
}

impl StaticFiles {
    /// The bundled files alone.
    pub fn bundled() -> Self {
        static BUNDLED: std::sync::OnceLock<StaticFiles> = std::sync::OnceLock::new();
        BUNDLED
            .get_or_init(|| StaticFiles {
                files: BUNDLED_FILES
                    .iter()
                    .map(|(path, body)| {
                        let kind = static_content_type(path).unwrap_or("application/octet-stream");
                        StaticFile::new(path, kind, axum::body::Bytes::from_static(body.as_bytes()))
                    })
                    .collect(),
            })
            .clone()
    }

    /// The bundled files with `overrides` (path below `static_prefix`, contents) laid over
    /// them. Where two overrides share a path the first wins, as the first of
    /// `extra_static_dirs` does. Every path, type and size is checked.
    pub fn with_overrides(overrides: Vec<(String, Vec<u8>)>) -> Result<Self, StaticFileError> {
        let mut out = Self::bundled();
        if overrides.len() > STATIC_FILES_MAX {
            return Err(StaticFileError::TooMany);
        }
        let mut seen = std::collections::HashSet::new();
        let mut total = 0usize;
        for (path, body) in overrides {
            let safe = |seg: &str| {
                !seg.is_empty()
                    && !seg.starts_with('.')
                    && seg.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            };
            if !path.split('/').all(safe) {
                return Err(StaticFileError::Path(path));
            }
            let kind = static_content_type(&path).ok_or_else(|| StaticFileError::Type(path.clone()))?;
            if body.len() > STATIC_FILE_MAX_BYTES {
                return Err(StaticFileError::TooLarge(path));
            }
            if !seen.insert(path.clone()) {
                continue;
            }
            total += body.len();
            if total > STATIC_TOTAL_MAX_BYTES {
                return Err(StaticFileError::TooMany);
            }
            let file = StaticFile::new(&path, kind, body.into());
            match out.files.iter_mut().find(|f| f.path == path) {
                Some(bundled) => *bundled = file,
                None => out.files.push(file),
            }
        }
        Ok(out)
    }

    /// The file at `path` (below `static_prefix`).
    pub fn find(&self, path: &str) -> Option<&StaticFile> {
        self.files.iter().find(|f| f.path == path)
    }

    /// Every file.
    pub fn iter(&self) -> impl Iterator<Item = &StaticFile> {
        self.files.iter()
    }

    /// The URL the pages link `path` by: versioned when it is one of these files.
    pub fn url(&self, static_prefix: &str, path: &str) -> String {
        let prefix = static_prefix.trim_end_matches('/');
        match self.find(path) {
            Some(f) => format!("{prefix}/{}?v={}", f.path, f.version),
            None => format!("{prefix}/{path}"),
        }
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
        let files = StaticFiles::bundled();
        let versions: Vec<&str> = files.iter().map(|f| f.version.as_str()).collect();
        assert!(versions.iter().all(|v| v.len() == 16), "{versions:?}");
        assert_ne!(versions[0], versions[1]);
        let js = crate::hex::encode(&Sha256::digest(BUNDLED_FILES[2].1.as_bytes())[..8]);
        assert_eq!(
            files.find("js/regstack.js").map(|f| f.version.as_str()),
            Some(js.as_str())
        );
        assert_eq!(files.url("/s/", "js/regstack.js"), format!("/s/js/regstack.js?v={js}"));
    }

    #[regstack_macros::dual_test]
    fn a_hosts_static_files_replace_and_join_the_bundled_ones() {
        let files = StaticFiles::with_overrides(vec![
            ("css/theme.css".into(), b":root{--rs-accent:#000}".to_vec()),
            ("img/logo.svg".into(), b"<svg/>".to_vec()),
            ("css/theme.css".into(), b"second: ignored".to_vec()),
        ])
        .unwrap();
        let theme = files.find("css/theme.css").unwrap();
        assert_eq!(&theme.body[..], b":root{--rs-accent:#000}");
        assert_ne!(
            theme.version,
            StaticFiles::bundled().find("css/theme.css").unwrap().version
        );
        assert_eq!(files.find("img/logo.svg").unwrap().content_type, "image/svg+xml");
        assert_eq!(files.iter().count(), 4);
        for (path, want) in [
            ("../etc/passwd.css", "Path"),
            ("css/.hidden.css", "Path"),
            ("css//x.css", "Path"),
            ("css/x y.css", "Path"),
            ("index.html", "Type"),
            ("noext", "Type"),
        ] {
            let e = StaticFiles::with_overrides(vec![(path.into(), vec![])]).unwrap_err();
            assert!(format!("{e:?}").starts_with(want), "{path}: {e:?}");
        }
        let big = vec![0u8; STATIC_FILE_MAX_BYTES + 1];
        assert_eq!(
            StaticFiles::with_overrides(vec![("a.png".into(), big)]).unwrap_err(),
            StaticFileError::TooLarge("a.png".into())
        );
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
