//! The OpenID Connect side of the OAuth scenarios: the real provider `scripts/test` starts
//! (`tests/oidc/provider.mjs`, named in `REGSTACK_TEST_OIDC_ISSUER`), the server settings that
//! point regstack at it, and a browser-less user agent that signs in there.

use super::*;

/// The Google client registered at the test provider.
pub const GOOGLE_CLIENT_ID: &str = "regstack-google";
/// Its secret.
pub const GOOGLE_CLIENT_SECRET: &str = "google-client-secret-for-the-conformance-suite";
/// The generic ("corp") client, whose ID tokens are ES256.
pub const CORP_CLIENT_ID: &str = "regstack-corp";
/// Its secret.
pub const CORP_CLIENT_SECRET: &str = "corp-client-secret-for-the-conformance-suite";

/// The test provider's issuer URL.
pub fn oidc_issuer() -> String {
    std::env::var("REGSTACK_TEST_OIDC_ISSUER")
        .expect("REGSTACK_TEST_OIDC_ISSUER must name the test OpenID Connect provider (scripts/test starts one)")
}

/// Server settings: OAuth on, Google's endpoints at the test provider, and the `corp`
/// provider found through the test provider's discovery document.
pub fn oauth_env() -> Vec<(String, String)> {
    let i = oidc_issuer();
    let providers = json!({ "corp": { "issuer": i, "client_id": CORP_CLIENT_ID, "display_name": "Corp" } });
    [
        ("REGSTACK_ENABLE_OAUTH", "true".to_string()),
        ("REGSTACK_OAUTH__GOOGLE_CLIENT_ID", GOOGLE_CLIENT_ID.into()),
        ("REGSTACK_OAUTH__GOOGLE_CLIENT_SECRET", GOOGLE_CLIENT_SECRET.into()),
        ("REGSTACK_OAUTH__GOOGLE_AUTHORIZATION_ENDPOINT", format!("{i}/auth")),
        ("REGSTACK_OAUTH__GOOGLE_TOKEN_ENDPOINT", format!("{i}/token")),
        ("REGSTACK_OAUTH__GOOGLE_JWKS_URI", format!("{i}/jwks")),
        ("REGSTACK_OAUTH__GOOGLE_ISSUER", i.clone()),
        ("REGSTACK_OAUTH__PROVIDERS", providers.to_string()),
        (
            "REGSTACK_OAUTH__PROVIDERS__CORP__CLIENT_SECRET",
            CORP_CLIENT_SECRET.into(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// [`oauth_env`] with `extra` set last (later entries win).
pub fn oauth_env_with(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env = oauth_env();
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    env
}

/// A person at the provider's sign-in page: follows the provider's redirects (keeping its
/// cookies) from `authorization_url`, signs in as `login`, and returns the URL the provider
/// finally sends the browser to (the relying party's callback, or an error page's URL).
pub async fn sign_in_at_provider(authorization_url: &str, login: &str) -> String {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("building the provider's user agent");
    let issuer = oidc_issuer();
    let mut url = authorization_url.to_string();
    let mut signed_in = false;
    for _ in 0..10 {
        if !url.starts_with(&issuer) {
            return url;
        }
        let resp = if url.contains("/interaction/") && !signed_in {
            signed_in = true;
            client
                .post(format!("{url}/login"))
                .form(&[("login", login)])
                .send()
                .await
        } else {
            client.get(&url).send().await
        }
        .unwrap_or_else(|e| panic!("the provider did not answer {url}: {e}"));
        let status = resp.status().as_u16();
        match resp.headers().get("location").and_then(|v| v.to_str().ok()) {
            Some(next) if (300..400).contains(&status) => {
                url = if next.starts_with('/') {
                    format!("{issuer}{next}")
                } else {
                    next.to_string()
                };
            }
            _ => {
                let body = resp.text().await.unwrap_or_default();
                panic!("the provider answered {status} at {url} instead of redirecting: {body}");
            }
        }
    }
    panic!("the provider kept redirecting from {authorization_url}")
}

/// A round trip begun at regstack: where the browser goes next, and the binding cookie the
/// start set (`name=value`), which that browser brings back to the callback.
#[derive(Clone, Debug)]
pub struct Started {
    /// The provider's authorization URL.
    pub url: String,
    /// The `Cookie` header value the browser sends back.
    pub cookie: String,
}

impl Started {
    fn from(resp: &Resp, url: String) -> Self {
        let set = resp
            .header("set-cookie")
            .unwrap_or_else(|| panic!("the start set no cookie:\n{resp}"));
        let cookie = set.split(';').next().unwrap_or_default().to_string();
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Lax"),
            "the binding cookie is HttpOnly and SameSite=Lax: {set}"
        );
        Started { url, cookie }
    }

    /// The query parameter `name` of the authorization URL.
    pub fn param(&self, name: &str) -> String {
        let query = self.url.split_once('?').map_or("", |(_, q)| q);
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("{name} missing from {}", self.url))
            .to_string()
    }
}

impl Api {
    /// `GET` an absolute URL of this server from this browser (its cookies sent).
    pub async fn get_absolute(&self, url: &str) -> Resp {
        self.send(self.client.get(url)).await
    }

    /// `GET` an absolute URL from another browser: none of this one's cookies, only `cookie`
    /// if given (a callback URL someone handed over).
    pub async fn get_elsewhere(&self, url: &str, cookie: Option<&str>) -> Resp {
        let other = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .expect("building another browser");
        let mut rb = other.get(url);
        if let Some(c) = cookie {
            rb = rb.header("cookie", c);
        }
        self.try_send_via(&other, rb)
            .await
            .unwrap_or_else(|e| panic!("GET {url} from another browser: {e}"))
    }

    /// `GET /oauth/{provider}/start` (with `?redirect_to=` already in `provider_and_query`'s
    /// tail, if any): the 302's target and cookie.
    pub async fn oauth_start(&self, provider_and_query: &str) -> Started {
        let (provider, query) = provider_and_query.split_once('?').unwrap_or((provider_and_query, ""));
        let path = if query.is_empty() {
            format!("/oauth/{provider}/start")
        } else {
            format!("/oauth/{provider}/start?{query}")
        };
        let r = self.get(&path).await;
        r.assert_status(302);
        let url = r.header("location").expect("start sets Location");
        Started::from(&r, url)
    }

    /// `POST /oauth/{provider}/link/start` as `token`'s account.
    pub async fn oauth_link_start(&self, path_tail: &str, token: &str) -> Started {
        let r = self.post_auth(&format!("/oauth/{path_tail}"), token).await;
        r.assert_status(200);
        let url = r.str("authorization_url");
        Started::from(&r, url)
    }

    /// The callback, from the browser that started the round trip (its cookie sent).
    pub async fn oauth_callback(&self, callback_url: &str, started: &Started) -> Resp {
        self.send(self.client.get(callback_url).header("cookie", &started.cookie))
            .await
    }

    /// The sign-in at the provider as `login` and the callback; the callback's `Location`.
    pub async fn oauth_finish(&self, started: &Started, login: &str) -> String {
        let callback = sign_in_at_provider(&started.url, login).await;
        assert!(
            callback.starts_with(self.root_url()),
            "the provider sent the browser to {callback}, not back to this server"
        );
        let back = self.oauth_callback(&callback, started).await;
        back.assert_status(302);
        back.header("location").expect("the callback sets Location")
    }

    /// The whole round trip through a browser: start, the sign-in at the provider as `login`,
    /// the callback; returns the callback's `Location` (relative).
    pub async fn oauth_signin_location(&self, provider: &str, login: &str) -> String {
        let started = self.oauth_start(provider).await;
        self.oauth_finish(&started, login).await
    }

    /// A sign-in that must succeed: the exchange's answer.
    pub async fn oauth_signin(&self, provider: &str, login: &str) -> Resp {
        let location = self.oauth_signin_location(provider, login).await;
        let id = oauth_complete_id(&location);
        let r = self.post_json("/oauth/exchange", &json!({ "id": id })).await;
        r.assert_status(200);
        r
    }
}

/// The `id` of a `/account/oauth-complete?id=…` location; panics with the location otherwise
/// (a login page's `?error=` code, say).
pub fn oauth_complete_id(location: &str) -> String {
    match location.split_once("/oauth-complete?id=") {
        Some((_, id)) => id.to_string(),
        None => panic!("the callback did not complete: it sent the browser to {location}"),
    }
}

/// The `error` code of a `/account/login?error=…` location; panics otherwise.
pub fn oauth_error(location: &str) -> String {
    match location.split_once("/login?error=") {
        Some((_, code)) => code.to_string(),
        None => panic!("the callback succeeded where it should have failed: {location}"),
    }
}
