//! The built-in OpenID Connect client (docs/oauth.md): the authorization-code flow with PKCE
//! through the `oauth2` crate, and ID tokens verified with `jwt-compact` (RS256 or ES256)
//! against the provider's key set. Google's endpoints are fixed (and overridable); any other
//! issuer is found through `/.well-known/openid-configuration`. Every request goes through the
//! [`HttpClient`] port, never following a redirect, each with a timeout.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use jwt_compact::alg::{Es256, Rsa, RsaPublicKey, StrongAlg, StrongKey};
use jwt_compact::jwk::JsonWebKey;
use jwt_compact::{Algorithm, AlgorithmExt, UntrustedToken};
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, ExtraTokenFields, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope, StandardRevocableToken, StandardTokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{AuthorizationRequest, OAuthProvider, ProviderError, ProviderIdentity};
use crate::config::{Config, OidcProviderConfig};
use crate::ports::{HttpClient, HttpMethod, InboundResponse, NetError, OutboundRequest};
use crate::time::{plus_seconds, Timestamp};

/// How far a provider's clock may be ahead of or behind ours when `exp`, `iat` and `nbf` are
/// checked.
const CLOCK_SKEW_SECONDS: i64 = 30;
/// The longest discovery document or key set read.
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// Discovery and key-set fetches take at most this long (or the token timeout, if shorter).
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// A key set is fetched again after this long, and at most this often when a token names a
/// key it does not hold (a rotation), so a stream of bad tokens cannot make us hammer the
/// provider.
const KEYS_MAX_AGE_SECONDS: i64 = 3600;
const KEYS_REFETCH_AFTER_SECONDS: i64 = 10;

/// Where a provider's endpoints are, and who it is.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Endpoints {
    issuer: String,
    authorization: String,
    token: String,
    jwks_uri: String,
    /// Client credentials in the form body (`client_secret_post`) rather than HTTP Basic.
    secret_in_body: bool,
}

/// How the endpoints are known.
#[derive(Debug)]
enum Source {
    /// Configured (Google).
    Fixed(Endpoints),
    /// Discovered from the issuer, once, on first use. `failed_at` is the last failure: for
    /// a few seconds after it, round trips are refused without asking again, so a stream of
    /// start requests cannot turn into a stream of fetches while the issuer is down.
    Discovered {
        issuer: String,
        found: Mutex<Option<Endpoints>>,
        failed_at: Mutex<Option<Timestamp>>,
    },
}

/// How long a failed discovery is remembered.
const DISCOVERY_RETRY_AFTER_SECONDS: i64 = 10;

/// A verifying key from the provider's key set.
enum Key {
    Rsa(StrongKey<RsaPublicKey>),
    Es256(<Es256 as Algorithm>::VerifyingKey),
}

struct KeySet {
    keys: Vec<(Option<String>, Key)>,
    /// The last fetch that succeeded.
    fetched_at: Option<Timestamp>,
    /// The last fetch tried, successful or not: fetches are at least
    /// `KEYS_REFETCH_AFTER_SECONDS` apart, even while the provider's key set is down.
    tried_at: Option<Timestamp>,
}

/// An OpenID Connect relying party for one provider.
pub struct OidcProvider {
    name: String,
    display_name: String,
    client_id: String,
    client_secret: String,
    redirect_uri: String,
    scopes: Vec<String>,
    /// Parameters the authorization request adds (Google: `prompt`, `access_type`).
    extra_params: Vec<(String, String)>,
    /// Verified addresses link to existing accounts.
    auto_link: bool,
    source: Source,
    keys: Mutex<KeySet>,
    http: Arc<dyn HttpClient>,
    timeout: Duration,
}

impl std::fmt::Debug for OidcProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcProvider")
            .field("name", &self.name)
            .field("client_id", &self.client_id)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl OidcProvider {
    /// Google, with the `[oauth]` table's credentials and endpoints; `None` unless both
    /// `google_client_id` and `google_client_secret` are set.
    pub fn google(config: &Config, http: Arc<dyn HttpClient>) -> Option<Self> {
        let o = &config.oauth;
        let (id, secret) = (o.google_client_id.clone()?, o.google_client_secret.clone()?);
        Some(Self::new(
            o.auto_link_verified_emails,
            "google",
            "Google",
            id,
            secret,
            super::callback_url(config, "google"),
            vec!["openid".into(), "email".into(), "profile".into()],
            vec![
                ("prompt".into(), "select_account".into()),
                ("access_type".into(), "online".into()),
            ],
            Source::Fixed(Endpoints {
                issuer: o.google_issuer.clone(),
                authorization: o.google_authorization_endpoint.clone(),
                token: o.google_token_endpoint.clone(),
                jwks_uri: o.google_jwks_uri.clone(),
                secret_in_body: true,
            }),
            http,
            Duration::from_secs(o.http_timeout_seconds),
        ))
    }

    /// A provider of `[oauth.providers.<name>]`, discovered from its issuer on first use.
    pub fn discovered(config: &Config, name: &str, p: &OidcProviderConfig, http: Arc<dyn HttpClient>) -> Self {
        Self::new(
            p.auto_link_verified_emails,
            name,
            p.display_name.as_deref().unwrap_or(name),
            p.client_id.clone(),
            p.client_secret.clone().unwrap_or_default(),
            super::callback_url(config, name),
            p.scopes.clone(),
            Vec::new(),
            Source::Discovered {
                issuer: p.issuer.trim_end_matches('/').to_string(),
                found: Mutex::new(None),
                failed_at: Mutex::new(None),
            },
            http,
            Duration::from_secs(config.oauth.http_timeout_seconds),
        )
    }

    #[allow(clippy::too_many_arguments)] // private: the two constructors above name each
    fn new(
        auto_link: bool,
        name: &str,
        display_name: &str,
        client_id: String,
        client_secret: String,
        redirect_uri: String,
        scopes: Vec<String>,
        extra_params: Vec<(String, String)>,
        source: Source,
        http: Arc<dyn HttpClient>,
        timeout: Duration,
    ) -> Self {
        Self {
            auto_link,
            name: name.to_string(),
            display_name: display_name.to_string(),
            client_id,
            client_secret,
            redirect_uri,
            scopes,
            extra_params,
            source,
            keys: Mutex::new(KeySet {
                keys: Vec::new(),
                fetched_at: None,
                tried_at: None,
            }),
            http,
            timeout,
        }
    }

    /// The endpoints, discovering them on first use. A failure is remembered for
    /// [`DISCOVERY_RETRY_AFTER_SECONDS`]; after that a round trip tries again.
    async fn endpoints(&self, now: Timestamp) -> Result<Endpoints, ProviderError> {
        let (issuer, found, failed_at) = match &self.source {
            Source::Fixed(e) => return Ok(e.clone()),
            Source::Discovered {
                issuer,
                found,
                failed_at,
            } => (issuer, found, failed_at),
        };
        if let Some(e) = lock(found).clone() {
            return Ok(e);
        }
        // A clock that stepped back counts as time passed, never as a longer wait.
        if lock(failed_at).is_some_and(|t| (0..DISCOVERY_RETRY_AFTER_SECONDS).contains(&(now - t).num_seconds())) {
            return Err(ProviderError::Unavailable("discovery failed moments ago".into()));
        }
        let discovered = self.discover(issuer).await;
        match &discovered {
            Ok(e) => *lock(found) = Some(e.clone()),
            Err(_) => *lock(failed_at) = Some(now),
        }
        discovered
    }

    async fn discover(&self, issuer: &str) -> Result<Endpoints, ProviderError> {
        let url = format!("{issuer}/.well-known/openid-configuration");
        let doc: Discovery = self.get_json(&url).await.map_err(ProviderError::Unavailable)?;
        if doc.issuer.trim_end_matches('/') != issuer {
            return Err(ProviderError::Unavailable(format!(
                "the discovery document names issuer {:?}, not the configured one",
                doc.issuer
            )));
        }
        for endpoint in [&doc.authorization_endpoint, &doc.token_endpoint, &doc.jwks_uri] {
            if !crate::config::secure_url(endpoint) {
                return Err(ProviderError::Unavailable(format!(
                    "the discovery document names an endpoint that is not https: {endpoint:?}"
                )));
            }
        }
        let methods = doc.token_endpoint_auth_methods_supported.unwrap_or_default();
        let endpoints = Endpoints {
            // The ID token's `iss` must be exactly the document's.
            issuer: doc.issuer,
            authorization: doc.authorization_endpoint,
            token: doc.token_endpoint,
            jwks_uri: doc.jwks_uri,
            secret_in_body: !methods.is_empty()
                && !methods.iter().any(|m| m == "client_secret_basic")
                && methods.iter().any(|m| m == "client_secret_post"),
        };
        Ok(endpoints)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, String> {
        let resp = self
            .http
            .send(OutboundRequest {
                method: HttpMethod::Get,
                url: url.to_string(),
                headers: vec![("accept".into(), "application/json".into())],
                body: Vec::new(),
                timeout: self.timeout.min(FETCH_TIMEOUT),
                max_response_bytes: MAX_DOCUMENT_BYTES,
            })
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        if resp.status != 200 {
            return Err(format!("GET {url} answered {}", resp.status));
        }
        serde_json::from_slice(&resp.body).map_err(|e| format!("GET {url}: not the JSON expected: {e}"))
    }

    /// The key for `kid` (or the only key of the algorithm's type when the token names
    /// none), fetching the key set when it is old or lacks the key.
    async fn verify_signature(
        &self,
        jwks_uri: &str,
        token: &UntrustedToken<'_>,
        now: Timestamp,
    ) -> Result<IdClaims, ProviderError> {
        let kid = token.header().key_id.clone();
        let alg = token.algorithm().to_string();
        if alg != "RS256" && alg != "ES256" {
            return Err(ProviderError::IdToken(format!("algorithm {alg:?} is not accepted")));
        }
        let (stale, can_refetch) = {
            let keys = lock(&self.keys);
            // A clock that stepped back counts as time passed.
            let older =
                |t: Option<Timestamp>, limit: i64| t.is_none_or(|t| !(0..limit).contains(&(now - t).num_seconds()));
            let can_refetch = older(keys.tried_at, KEYS_REFETCH_AFTER_SECONDS);
            let stale = older(keys.fetched_at, KEYS_MAX_AGE_SECONDS) && can_refetch;
            (stale, can_refetch)
        };
        if stale {
            if let Err(e) = self.fetch_keys(jwks_uri, now).await {
                // Keys already held still verify what they signed; only an empty set fails.
                if lock(&self.keys).keys.is_empty() {
                    return Err(e);
                }
                tracing::warn!(target: "regstack.oauth", provider = %self.name, error = %e, "refreshing the key set failed; using the keys held");
            }
        }
        if let Some(claims) = self.check_with_held_keys(kid.as_deref(), &alg, token)? {
            return Ok(claims);
        }
        // A key we do not hold: the provider may have rotated; look once more.
        if !stale && can_refetch {
            self.fetch_keys(jwks_uri, now).await?;
            if let Some(claims) = self.check_with_held_keys(kid.as_deref(), &alg, token)? {
                return Ok(claims);
            }
        }
        Err(ProviderError::IdToken(format!(
            "no {alg} key {kid:?} in the provider's key set"
        )))
    }

    /// `Some(claims)` when a held key matches and verifies; `None` when no held key matches.
    fn check_with_held_keys(
        &self,
        kid: Option<&str>,
        alg: &str,
        token: &UntrustedToken<'_>,
    ) -> Result<Option<IdClaims>, ProviderError> {
        let keys = lock(&self.keys);
        let candidates: Vec<&Key> = keys
            .keys
            .iter()
            .filter(|(id, key)| {
                let right_type = matches!((alg, key), ("RS256", Key::Rsa(_)) | ("ES256", Key::Es256(_)));
                right_type && (kid.is_none() || id.as_deref() == kid)
            })
            .map(|(_, key)| key)
            .collect();
        // Without a kid, only an unambiguous key set will do; with one, any key of that id
        // (a provider may publish a key twice during a rotation).
        match (kid, candidates.as_slice()) {
            (_, []) => return Ok(None),
            (None, [_, _, ..]) => {
                return Err(ProviderError::IdToken(
                    "the token names no key and several match".into(),
                ))
            }
            _ => {}
        }
        let mut refused = None;
        let verified = candidates.iter().find_map(|key| {
            let outcome = match key {
                Key::Rsa(k) => StrongAlg(Rsa::rs256()).validator::<IdClaims>(k).validate(token),
                Key::Es256(k) => Es256.validator::<IdClaims>(k).validate(token),
            };
            outcome.map_err(|e| refused = Some(e.to_string())).ok()
        });
        let verified = verified.ok_or_else(|| refused.unwrap_or_default());
        let token = verified.map_err(|e| ProviderError::IdToken(format!("signature: {e}")))?;
        let c = token.claims();
        Ok(Some(IdClaims {
            exp: c.expiration,
            iat: c.issued_at,
            nbf: c.not_before,
            ..c.custom.clone()
        }))
    }

    async fn fetch_keys(&self, jwks_uri: &str, now: Timestamp) -> Result<(), ProviderError> {
        lock(&self.keys).tried_at = Some(now);
        let set: JwkSet = self
            .get_json(jwks_uri)
            .await
            .map_err(|e| ProviderError::IdToken(format!("key set: {e}")))?;
        let mut keys = Vec::new();
        for raw in set.keys {
            let usable = raw.get("use").and_then(Value::as_str).is_none_or(|u| u == "sig");
            let kid = raw.get("kid").and_then(Value::as_str).map(str::to_string);
            let Ok(jwk) = serde_json::from_value::<JsonWebKey<'_>>(raw) else {
                continue;
            };
            let key = match &jwk {
                JsonWebKey::Rsa { .. } => RsaPublicKey::try_from(&jwk)
                    .ok()
                    .and_then(|k| StrongKey::try_from(k).ok())
                    .map(Key::Rsa),
                JsonWebKey::EllipticCurve { .. } => {
                    <Es256 as Algorithm>::VerifyingKey::try_from(&jwk).ok().map(Key::Es256)
                }
                _ => None,
            };
            if let (true, Some(key)) = (usable, key) {
                keys.push((kid, key));
            }
        }
        *lock(&self.keys) = KeySet {
            keys,
            fetched_at: Some(now),
            tried_at: Some(now),
        };
        Ok(())
    }

    /// Exchanges the code at the token endpoint; the ID token from the answer.
    async fn exchange(&self, endpoints: &Endpoints, code: &str, verifier: &str) -> Result<String, ProviderError> {
        let failed = |e: String| ProviderError::TokenExchange(e);
        let client = Client::new(ClientId::new(self.client_id.clone()))
            .set_client_secret(ClientSecret::new(self.client_secret.clone()))
            .set_auth_uri(AuthUrl::new(endpoints.authorization.clone()).map_err(|e| failed(e.to_string()))?)
            .set_token_uri(TokenUrl::new(endpoints.token.clone()).map_err(|e| failed(e.to_string()))?)
            .set_redirect_uri(RedirectUrl::new(self.redirect_uri.clone()).map_err(|e| failed(e.to_string()))?)
            .set_auth_type(if endpoints.secret_in_body {
                AuthType::RequestBody
            } else {
                AuthType::BasicAuth
            });
        let http = self.http.clone();
        let timeout = self.timeout;
        let send = move |req: oauth2::HttpRequest| {
            let http = http.clone();
            async move { send_through(http.as_ref(), req, timeout).await }
        };
        let request = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_string()));
        // Boxed as `Send` here, where every lifetime is concrete: the crate's `impl Future`
        // otherwise leaves the compiler unable to prove it for the enclosing async fn.
        let pending: std::pin::Pin<Box<dyn std::future::Future<Output = _> + Send + '_>> =
            Box::pin(request.request_async(&send));
        let answer = pending.await.map_err(|e| {
            failed(match e {
                RequestTokenError::ServerResponse(r) => format!("the provider refused: {}", r.error()),
                RequestTokenError::Request(e) => format!("network: {e}"),
                RequestTokenError::Parse(e, _) => format!("unreadable answer: {e}"),
                RequestTokenError::Other(e) => e,
            })
        })?;
        answer
            .extra_fields()
            .id_token
            .clone()
            .ok_or_else(|| ProviderError::IdToken("the token answer has no id_token".into()))
    }

    /// Checks an ID token: signature, then issuer, audience, times, nonce and subject.
    async fn verify_id_token(
        &self,
        endpoints: &Endpoints,
        id_token: &str,
        nonce: &str,
        now: Timestamp,
    ) -> Result<ProviderIdentity, ProviderError> {
        let refused = |why: &str| ProviderError::IdToken(why.to_string());
        let token = UntrustedToken::new(id_token).map_err(|e| ProviderError::IdToken(format!("malformed: {e}")))?;
        let claims = self.verify_signature(&endpoints.jwks_uri, &token, now).await?;
        if claims.iss.as_deref() != Some(endpoints.issuer.as_str()) {
            return Err(refused("wrong issuer"));
        }
        let audiences: Vec<&str> = match &claims.aud {
            Some(Value::String(a)) => vec![a.as_str()],
            Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !audiences.contains(&self.client_id.as_str()) {
            return Err(refused("wrong audience"));
        }
        // With other audiences beside us the token must have been issued to us, and an `azp`
        // that names someone else is refused whatever the audience.
        let azp = claims.azp.as_deref();
        if (audiences.len() > 1 && azp.is_none()) || azp.is_some_and(|a| a != self.client_id) {
            return Err(refused("azp is not this client"));
        }
        let exp = claims.exp.ok_or_else(|| refused("no exp"))?;
        if exp <= plus_seconds(now, -CLOCK_SKEW_SECONDS) {
            return Err(refused("expired"));
        }
        let iat = claims.iat.ok_or_else(|| refused("no iat"))?;
        if iat > plus_seconds(now, CLOCK_SKEW_SECONDS) {
            return Err(refused("issued in the future"));
        }
        if claims
            .nbf
            .is_some_and(|nbf| nbf > plus_seconds(now, CLOCK_SKEW_SECONDS))
        {
            return Err(refused("not valid yet"));
        }
        let sent = claims.nonce.as_deref().ok_or_else(|| refused("no nonce"))?;
        if !crate::token::secrets_equal(sent, nonce) {
            return Err(refused("nonce mismatch"));
        }
        let subject = claims.sub.filter(|s| !s.is_empty() && s.chars().count() <= 255);
        let subject = subject.ok_or_else(|| refused("no usable sub"))?;
        let email_verified = match &claims.email_verified {
            Some(Value::Bool(b)) => *b,
            // Some providers send the flag as a string.
            Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
            _ => false,
        };
        Ok(ProviderIdentity {
            subject,
            email: claims.email.filter(|e| !e.is_empty()),
            email_verified,
            full_name: claims
                .name
                .as_ref()
                .and_then(Value::as_str)
                .map(|n| n.chars().take(200).collect()),
        })
    }
}

#[async_trait]
impl OAuthProvider for OidcProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn display_name(&self) -> &str {
        &self.display_name
    }

    fn auto_link_verified_emails(&self) -> bool {
        self.auto_link
    }

    async fn authorization_url(&self, req: &AuthorizationRequest<'_>) -> Result<String, ProviderError> {
        let endpoints = self.endpoints(req.now).await?;
        let bad = |e: String| ProviderError::Unavailable(e);
        let client = Client::new(ClientId::new(self.client_id.clone()))
            .set_auth_uri(AuthUrl::new(endpoints.authorization.clone()).map_err(|e| bad(e.to_string()))?)
            .set_redirect_uri(RedirectUrl::new(self.redirect_uri.clone()).map_err(|e| bad(e.to_string()))?);
        let state = req.state.to_string();
        let mut request = client
            .authorize_url(move || CsrfToken::new(state))
            .add_scopes(self.scopes.iter().cloned().map(Scope::new))
            .set_pkce_challenge(challenge_of(req.code_challenge))
            .add_extra_param("nonce", req.nonce.to_string());
        for (k, v) in &self.extra_params {
            request = request.add_extra_param(k.clone(), v.clone());
        }
        Ok(request.url().0.to_string())
    }

    async fn complete(
        &self,
        code: &str,
        code_verifier: &str,
        nonce: &str,
        now: Timestamp,
    ) -> Result<ProviderIdentity, ProviderError> {
        let endpoints = self.endpoints(now).await?;
        let id_token = self.exchange(&endpoints, code, code_verifier).await?;
        self.verify_id_token(&endpoints, &id_token, nonce, now).await
    }
}

/// The round trip's S256 challenge as the `oauth2` crate carries one. The crate builds
/// challenges only from a verifier or from their serialised form; the provider is handed the
/// challenge alone, so the verifier stays with the round trip until the exchange.
fn challenge_of(challenge: &str) -> PkceCodeChallenge {
    serde_json::from_value(serde_json::json!({
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }))
    .expect("a PKCE challenge deserialises from its two fields")
}

/// One `oauth2` request through the [`HttpClient`] port.
async fn send_through(
    http: &dyn HttpClient,
    req: oauth2::HttpRequest,
    timeout: Duration,
) -> Result<oauth2::HttpResponse, NetError> {
    let method = if req.method() == http::Method::GET {
        HttpMethod::Get
    } else {
        HttpMethod::Post
    };
    let headers = req
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    let resp: InboundResponse = http
        .send(OutboundRequest {
            method,
            url: req.uri().to_string(),
            headers,
            body: req.into_body(),
            timeout,
            max_response_bytes: MAX_DOCUMENT_BYTES,
        })
        .await?;
    let mut out = http::Response::builder().status(resp.status);
    for (k, v) in &resp.headers {
        out = out.header(k.as_str(), v.as_str());
    }
    out.body(resp.body)
        .map_err(|e| NetError(format!("an answer that is not HTTP: {e}")))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The `id_token` of a token answer.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
struct IdTokenField {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
}

impl ExtraTokenFields for IdTokenField {}

type Client = oauth2::Client<
    BasicErrorResponse,
    StandardTokenResponse<IdTokenField, BasicTokenType>,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
>;

/// The claims regstack reads from an ID token.
#[derive(Clone, Debug, Default, Deserialize)]
struct IdClaims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<Value>,
    azp: Option<String>,
    nonce: Option<String>,
    email: Option<String>,
    email_verified: Option<Value>,
    name: Option<Value>,
    #[serde(skip)]
    exp: Option<Timestamp>,
    #[serde(skip)]
    iat: Option<Timestamp>,
    #[serde(skip)]
    nbf: Option<Timestamp>,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    #[serde(default)]
    token_endpoint_auth_methods_supported: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct JwkSet {
    keys: Vec<Value>,
}
