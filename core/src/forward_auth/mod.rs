//! Forward-auth of an origin app (docs/architecture.md, "Forward-auth"): the policy for a
//! request the edge passes on to `origin_url`, decided here without I/O so it is unit-tested;
//! the edge only applies it and makes the fetch.
//!
//! For every request outside the API prefix and, with `enable_ui_router`, outside the pages
//! and their files (without it the ui and static prefixes go to the origin too, which may
//! serve its own pages there):
//! 1. [`target`] says where it goes (the contract's 404 without an origin);
//! 2. [`strip_client_headers`] removes what only the edge may say (regstack's identity
//!    headers, `Forwarded`, `X-Forwarded-*`, `X-Real-IP` and kin) and sets the forwarding
//!    headers from what the edge saw;
//! 3. [`vouch`] checks the caller's session when the path is protected ([`path`]) or a bearer
//!    token came along: a valid one is replaced by signed identity headers ([`identity`]); an
//!    invalid one on a protected path is refused with the contract's 401.

pub mod identity;
pub mod path;

use http::header::{AUTHORIZATION, HOST};
use http::{HeaderMap, HeaderName, HeaderValue};

pub use identity::{sign, verify, ForwardedIdentity, IdentityError, HEADERS, MAX_AGE_SECONDS, PREFIX};
pub use path::{canonical_path, is_protected};

use crate::config::Config;
use crate::engine::Engine;
use crate::flows::session::authenticate;
use crate::flows::FlowResult;

/// Where a request outside the API goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// No origin is configured: the contract's 404.
    NotFound,
    /// The origin's URL for this request, and whether the path needs a session.
    Origin {
        /// `origin_url` + path + query.
        url: String,
        /// The path matches `origin_protected_paths`.
        protected: bool,
    },
}

/// Where a request for `path` (and `query`) is sent under `config`.
pub fn target(config: &Config, path: &str, query: Option<&str>) -> Target {
    let Some(origin) = &config.origin_url else {
        return Target::NotFound;
    };
    let query = query.map(|q| format!("?{q}")).unwrap_or_default();
    Target::Origin {
        url: format!("{}{path}{query}", origin.trim_end_matches('/')),
        protected: is_protected(&config.origin_protected_paths, path),
    }
}

/// Headers a client may not send to the origin: regstack's identity headers, and those by
/// which a proxy tells the origin who the client is or what URL it asked for. Only the edge
/// may say either.
pub fn only_the_edge_sets(name: &str) -> bool {
    name.starts_with(PREFIX)
        || name.starts_with("x-forwarded-")
        || matches!(
            name,
            "forwarded" | "x-real-ip" | "true-client-ip" | "x-client-ip" | "x-original-url" | "x-rewrite-url"
        )
}

/// Removes every header [`only_the_edge_sets`] from a client's request, then says who the
/// client is as the edge saw it: `X-Forwarded-For` (the client IP), `X-Forwarded-Host` (the
/// `Host` it asked for) and `X-Forwarded-Proto`. `Host` itself goes: the fetch sets the
/// origin's own.
pub fn strip_client_headers(headers: &mut HeaderMap, client_ip: Option<&str>, scheme: Option<&str>) {
    let spoofed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| only_the_edge_sets(name.as_str()))
        .cloned()
        .collect();
    for name in spoofed {
        headers.remove(&name);
    }
    let host = headers.remove(HOST);
    if let Some(ip) = client_ip.and_then(|ip| HeaderValue::from_str(ip).ok()) {
        headers.insert("x-forwarded-for", ip);
    }
    if let Some(host) = host {
        headers.insert("x-forwarded-host", host);
    }
    if let Some(scheme) = scheme.and_then(|s| HeaderValue::from_str(s).ok()) {
        headers.insert("x-forwarded-proto", scheme);
    }
}

/// Checks the caller's session when the path is `protected` or a bearer token came along. A
/// valid session's token is replaced by the signed identity headers (a session JWT has no
/// business in the origin's logs); an `Authorization` that is not a valid session passes
/// through untouched on an unprotected path; on a protected path it is refused with the
/// session check's own error (the contract's 401).
pub async fn vouch(engine: &Engine, headers: &mut HeaderMap, protected: bool) -> FlowResult<()> {
    let authorization = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if !protected && authorization.is_none() {
        return Ok(());
    }
    match authenticate(engine, authorization.as_deref()).await {
        Ok(session) => {
            let secret = engine.config.origin_auth_secret.as_deref().unwrap_or_default();
            let vouched = ForwardedIdentity {
                user_id: session.user.id.clone(),
                email: session.user.email.clone(),
                is_superuser: session.user.is_superuser,
            };
            for (name, value) in sign(secret, &vouched, engine.now().timestamp()) {
                if let Ok(value) = HeaderValue::from_str(&value) {
                    headers.insert(name, value);
                }
            }
            headers.remove(AUTHORIZATION);
            Ok(())
        }
        Err(e) if protected => Err(e),
        // An unprotected path still reaches the origin, just without an identity.
        Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config {
            origin_url: Some("https://origin.example/".into()),
            origin_protected_paths: vec!["/app/*".into()],
            ..Config::default()
        }
    }

    #[regstack_macros::dual_test]
    fn targets_keep_path_and_query_and_know_what_is_protected() {
        let c = config();
        assert_eq!(
            target(&c, "/app/x", Some("a=1")),
            Target::Origin {
                url: "https://origin.example/app/x?a=1".into(),
                protected: true
            }
        );
        assert_eq!(
            target(&c, "/blog", None),
            Target::Origin {
                url: "https://origin.example/blog".into(),
                protected: false
            }
        );
        assert_eq!(
            target(&c, "/%41pp/x", None),
            Target::Origin {
                url: "https://origin.example/%41pp/x".into(),
                protected: true
            }
        );
        // With no pages served here, the ui and static prefixes are the origin's (a 0.9.3
        // deployment's links keep reaching whatever served them); without an origin, 404.
        assert_eq!(
            target(&c, "/account/reset-password", Some("token=t")),
            Target::Origin {
                url: "https://origin.example/account/reset-password?token=t".into(),
                protected: false
            }
        );
        assert_ne!(target(&c, "/regstack-static/x.css", None), Target::NotFound);
        assert_eq!(target(&Config::default(), "/blog", None), Target::NotFound);
    }

    #[regstack_macros::dual_test]
    fn client_headers_that_only_the_edge_may_set_are_replaced() {
        let mut h = HeaderMap::new();
        for (name, value) in [
            ("x-regstack-user-id", "admin"),
            ("x-regstack-anything", "x"),
            ("x-forwarded-for", "10.0.0.1"),
            ("x-forwarded-prefix", "/evil"),
            ("forwarded", "for=10.0.0.1"),
            ("x-real-ip", "10.0.0.1"),
            ("true-client-ip", "10.0.0.1"),
            ("x-client-ip", "10.0.0.1"),
            ("x-original-url", "/admin"),
            ("x-rewrite-url", "/admin"),
            ("host", "shop.example"),
            ("accept", "text/html"),
            ("authorization", "Basic b3JpZ2luOnNlY3JldA=="),
        ] {
            h.insert(HeaderName::from_static(name), HeaderValue::from_static(value));
        }
        strip_client_headers(&mut h, Some("203.0.113.9"), Some("https"));
        let names: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        for gone in [
            "x-regstack-user-id",
            "x-regstack-anything",
            "x-forwarded-prefix",
            "forwarded",
            "x-real-ip",
            "true-client-ip",
            "x-client-ip",
            "x-original-url",
            "x-rewrite-url",
            "host",
        ] {
            assert!(!names.contains(&gone), "{gone} survived: {names:?}");
        }
        assert_eq!(h["x-forwarded-for"], "203.0.113.9");
        assert_eq!(h["x-forwarded-host"], "shop.example");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["accept"], "text/html");
        assert_eq!(
            h["authorization"], "Basic b3JpZ2luOnNlY3JldA==",
            "the origin's own auth passes"
        );
        assert_eq!(h.get_all("x-forwarded-for").iter().count(), 1);
    }
}
