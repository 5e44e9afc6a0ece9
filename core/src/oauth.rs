//! Sign-in through OAuth 2.0 / OpenID Connect providers (docs/oauth.md): the provider port, the
//! registry of an instance's providers, and the rules every round trip follows (the callback
//! URL, the same-origin `redirect_to`, PKCE). The flows are in `crate::flows::oauth`; the
//! built-in OpenID Connect client that signs in with Google and any discovered issuer is
//! [`oidc`], with the `oauth` feature.

#[cfg(feature = "oauth")]
pub mod oidc;

use std::sync::Arc;

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::time::Timestamp;

/// What the authorization request carries for one round trip.
#[derive(Clone, Copy, Debug)]
pub struct AuthorizationRequest<'a> {
    /// The `state` parameter (the round trip's id).
    pub state: &'a str,
    /// The PKCE S256 challenge of the round trip's verifier.
    pub code_challenge: &'a str,
    /// The OpenID Connect nonce the ID token must carry back.
    pub nonce: &'a str,
    /// Now.
    pub now: Timestamp,
}

/// Who the provider says signed in, from a verified ID token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderIdentity {
    /// The provider's stable subject id (`sub`).
    pub subject: String,
    /// The address, if the provider gave one.
    pub email: Option<String>,
    /// Whether the provider vouches for the address (`email_verified`).
    pub email_verified: bool,
    /// The display name (`name`), if any.
    pub full_name: Option<String>,
}

/// Why a provider could not finish a round trip. Each maps to one of the callback's error
/// codes; the text goes to the log only (never a secret, never a token).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The code could not be exchanged for tokens (`token_exchange_failed`).
    #[error("token exchange failed: {0}")]
    TokenExchange(String),
    /// The ID token was missing or did not verify (`id_token_failed`).
    #[error("ID token refused: {0}")]
    IdToken(String),
    /// The provider could not be reached or described itself wrongly (`oauth_failed`).
    #[error("provider unavailable: {0}")]
    Unavailable(String),
}

/// One provider. The built-in [`oidc::OidcProvider`] serves Google and any OpenID Connect
/// issuer; a host registers its own by implementing this (natively,
/// `Builder::oauth_provider`).
#[async_trait]
pub trait OAuthProvider: Send + Sync {
    /// The name in URLs and in `oauth_identities.provider`: 1 to 32 of `a-z 0-9 _ -`.
    fn name(&self) -> &str;
    /// The name shown to people ("Google").
    fn display_name(&self) -> &str;
    /// Whether a sign-in whose address this provider verified may link to an existing
    /// account with that (confirmed) address. Off unless the provider's issuer is trusted
    /// to verify addresses: an issuer that lets its users mark any address verified would
    /// otherwise hand them other people's accounts.
    fn auto_link_verified_emails(&self) -> bool {
        false
    }
    /// Where to send the browser to authorize this round trip.
    async fn authorization_url(&self, req: &AuthorizationRequest<'_>) -> Result<String, ProviderError>;
    /// Exchanges `code` (with the round trip's PKCE verifier) and verifies the ID token,
    /// whose nonce must equal `nonce`, at time `now`.
    async fn complete(
        &self,
        code: &str,
        code_verifier: &str,
        nonce: &str,
        now: Timestamp,
    ) -> Result<ProviderIdentity, ProviderError>;
}

/// The providers of one instance, in the order `GET /oauth/providers` lists them.
#[derive(Clone, Default)]
pub struct Providers(Vec<Arc<dyn OAuthProvider>>);

impl std::fmt::Debug for Providers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl Providers {
    /// The provider called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn OAuthProvider>> {
        self.0.iter().find(|p| p.name() == name)
    }

    /// `(name, display name)` of each, for the pages' sign-in buttons.
    pub fn labels(&self) -> Vec<(String, String)> {
        self.0
            .iter()
            .map(|p| (p.name().to_string(), p.display_name().to_string()))
            .collect()
    }

    /// Every provider's name.
    pub fn names(&self) -> Vec<String> {
        self.0.iter().map(|p| p.name().to_string()).collect()
    }

    /// Whether there is none (the OAuth routes are then not mounted).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds a provider; a name that is malformed or already taken is refused.
    pub fn register(&mut self, provider: Arc<dyn OAuthProvider>) -> Result<(), String> {
        let name = provider.name();
        if !crate::config::valid_provider_name(name) {
            return Err(format!(
                "OAuth provider name {name:?} is not 1 to 32 of a-z, 0-9, _ and -"
            ));
        }
        if self.get(name).is_some() {
            return Err(format!("OAuth provider {name:?} is registered twice"));
        }
        self.0.push(provider);
        Ok(())
    }
}

/// The callback URL of `provider`: `google_redirect_uri` or a provider's `redirect_uri` when
/// set, else `<base_url><api_prefix>/oauth/<provider>/callback`.
pub fn callback_url(config: &Config, provider: &str) -> String {
    let configured = match provider {
        "google" => config.oauth.google_redirect_uri.clone(),
        other => config.oauth.providers.get(other).and_then(|p| p.redirect_uri.clone()),
    };
    configured.unwrap_or_else(|| {
        format!(
            "{}{}/oauth/{provider}/callback",
            config.base_url_trimmed(),
            config.api_prefix.trim_end_matches('/')
        )
    })
}

/// Where a round trip sends the browser when no `redirect_to` is given (regstack 0.9.3's
/// fixed default, not derived from `ui_prefix`).
pub const DEFAULT_REDIRECT: &str = "/account/me";

/// `redirect_to` checked as same-origin (docs/oauth.md, "redirect_to"): trimmed, empty means
/// [`DEFAULT_REDIRECT`]; a path must start with exactly one `/`; an absolute URL must have
/// `base_url`'s scheme, host and port; a backslash or a control character anywhere is refused
/// (browsers read `\` as `/`). `None` when it is refused.
pub fn same_origin_redirect(config: &Config, raw: Option<&str>) -> Option<String> {
    let value = raw.unwrap_or(DEFAULT_REDIRECT).trim();
    if value.is_empty() {
        return Some(DEFAULT_REDIRECT.to_string());
    }
    if value.contains('\\') || value.chars().any(char::is_control) {
        return None;
    }
    match value.split_once("://") {
        Some((scheme, rest)) if scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) => {
            let origin = |scheme: &str, rest: &str| {
                let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
                (scheme.to_ascii_lowercase(), authority.to_ascii_lowercase())
            };
            let (base_scheme, base_rest) = config.base_url.split_once("://")?;
            let same = origin(scheme, rest) == origin(base_scheme, base_rest) && !rest.contains('@');
            same.then(|| value.to_string())
        }
        _ if value.starts_with('/') && !value.starts_with("//") => Some(value.to_string()),
        _ => None,
    }
}

/// The PKCE S256 challenge of a verifier: base64url(SHA-256(verifier)), unpadded.
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A provider's free text (an `error` parameter) made safe for one log line: control
/// characters dropped, at most 200 characters.
pub fn sanitize_for_log(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[regstack_macros::dual_test]
    fn redirect_to_stays_on_this_origin() {
        let c = Config {
            base_url: "https://app.example.com".into(),
            ..Config::default()
        };
        let check = |raw: &str| same_origin_redirect(&c, Some(raw));
        assert_eq!(same_origin_redirect(&c, None).as_deref(), Some("/account/me"));
        assert_eq!(check("  ").as_deref(), Some("/account/me"));
        assert_eq!(check(" /dash?x=1 ").as_deref(), Some("/dash?x=1"));
        // A path is a path, whatever it contains after its first segment.
        assert_eq!(check("/go/http://x").as_deref(), Some("/go/http://x"));
        assert_eq!(
            check("https://app.example.com/dash").as_deref(),
            Some("https://app.example.com/dash")
        );
        assert_eq!(
            check("HTTPS://APP.example.com/x").as_deref(),
            Some("HTTPS://APP.example.com/x")
        );
        for hostile in [
            "//evil.example/x",
            "/\\evil.example",
            "\\\\evil.example",
            "https://evil.example/",
            "http://app.example.com/",
            "https://app.example.com:444/",
            "https://app.example.com@evil.example/",
            "https://app.example.com.evil.example/",
            "javascript:alert(1)",
            "dash",
            "/x\n/y",
        ] {
            assert_eq!(check(hostile), None, "{hostile:?} must be refused");
        }
    }

    #[regstack_macros::dual_test]
    fn pkce_matches_rfc_7636_appendix_b() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[regstack_macros::dual_test]
    fn callback_urls_follow_base_url_unless_configured() {
        let mut c = Config {
            base_url: "https://app.example.com/".into(),
            ..Config::default()
        };
        assert_eq!(
            callback_url(&c, "google"),
            "https://app.example.com/api/auth/oauth/google/callback"
        );
        c.oauth.google_redirect_uri = Some("https://id.example.com/cb".into());
        assert_eq!(callback_url(&c, "google"), "https://id.example.com/cb");
        assert_eq!(
            callback_url(&c, "corp"),
            "https://app.example.com/api/auth/oauth/corp/callback"
        );
        assert_eq!(
            sanitize_for_log("access_denied\r\n\x1b[31mforged"),
            "access_denied[31mforged"
        );
    }
}
