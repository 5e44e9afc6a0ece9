//! The configuration model (docs/wire.md, "Config"): every field regstack 0.9.3 accepts plus
//! the additive ones, typed, with its defaults.
//!
//! - [`load`] merges the sources and names the `REGSTACK_*` environment variables;
//! - `validate` checks bounds and cross-field rules;
//! - `links` builds the links emails carry.

mod links;
mod load;
mod validate;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use links::redact_token;
pub use load::{env_name, env_names, load, parse_env_file, provider_env_names, Loaded, Sources, ENV_PREFIX};
pub use validate::is_placeholder_secret;
#[cfg(feature = "oauth")]
pub(crate) use validate::secure_url;
pub(crate) use validate::{is_loopback_authority, valid_provider_name};

pub use crate::jwt::JwtAlgorithm;
use crate::rate_limit::RateClass;

/// Where email goes (`email.backend`). An unknown name is refused when the config loads, with
/// the accepted ones listed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmailBackend {
    /// Written to the log (development; `log_bodies` prints the links).
    Console,
    /// An SMTP server (native, feature `smtp`).
    Smtp,
    /// Amazon SES v2 (native, feature `ses`).
    Ses,
    /// Handed to a `regstack serve` relay (the edge).
    Relay,
}

/// Where SMS go (`sms.backend`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmsBackend {
    /// Written to the log (development; `log_bodies` prints the codes).
    Null,
    /// Amazon SNS (native, feature `sns`).
    Sns,
    /// Twilio's REST API (native, feature `twilio`).
    Twilio,
    /// Handed to a `regstack serve` relay (the edge).
    Relay,
}

impl EmailBackend {
    /// The name used in config.
    pub fn as_str(self) -> &'static str {
        match self {
            EmailBackend::Console => "console",
            EmailBackend::Smtp => "smtp",
            EmailBackend::Ses => "ses",
            EmailBackend::Relay => "relay",
        }
    }
}

impl SmsBackend {
    /// The name used in config.
    pub fn as_str(self) -> &'static str {
        match self {
            SmsBackend::Null => "null",
            SmsBackend::Sns => "sns",
            SmsBackend::Twilio => "twilio",
            SmsBackend::Relay => "relay",
        }
    }
}

/// How sessions travel (`transport`): bearer tokens only, as in regstack 0.9.3's API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// `Authorization: Bearer <token>`.
    Bearer,
}

/// Every field of regstack 0.9.3's `RegStackConfig`, plus the additive ones of the decisions.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
#[allow(missing_docs)]
pub struct Config {
    pub app_name: String,
    pub base_url: String,
    pub behind_proxy: bool,
    pub database_url: String,
    pub mongodb_database: String,
    pub user_collection: String,
    pub pending_collection: String,
    pub blacklist_collection: String,
    pub login_attempt_collection: String,
    pub mfa_code_collection: String,
    pub oauth_identity_collection: String,
    pub oauth_state_collection: String,
    pub jwt_secret: String,
    pub jwt_algorithm: JwtAlgorithm,
    pub jwt_ttl_seconds: i64,
    pub jwt_audience: Option<String>,
    pub transport: Transport,
    pub verification_token_ttl_seconds: i64,
    pub password_reset_token_ttl_seconds: i64,
    pub email_change_token_ttl_seconds: i64,
    pub sms_code_length: u32,
    pub sms_code_ttl_seconds: i64,
    pub sms_code_max_attempts: i64,
    pub mfa_pending_token_ttl_seconds: i64,
    pub require_verification: bool,
    pub allow_registration: bool,
    pub enable_password_reset: bool,
    pub enable_account_deletion: bool,
    pub enable_admin_router: bool,
    pub enable_ui_router: bool,
    pub enable_sms_2fa: bool,
    pub enable_oauth: bool,
    pub rate_limit_disabled: bool,
    pub login_lockout_threshold: i64,
    pub login_lockout_window_seconds: i64,
    pub login_rate_limit: Option<String>,
    pub login_mfa_confirm_rate_limit: Option<String>,
    pub register_rate_limit: Option<String>,
    pub forgot_password_rate_limit: Option<String>,
    pub reset_password_rate_limit: Option<String>,
    pub verify_rate_limit: Option<String>,
    pub resend_verification_rate_limit: Option<String>,
    pub change_password_rate_limit: Option<String>,
    pub change_email_rate_limit: Option<String>,
    pub confirm_email_change_rate_limit: Option<String>,
    pub delete_account_rate_limit: Option<String>,
    pub oauth_exchange_rate_limit: Option<String>,
    pub phone_start_rate_limit: Option<String>,
    pub phone_confirm_rate_limit: Option<String>,
    pub phone_disable_rate_limit: Option<String>,
    pub email: EmailConfig,
    pub sms: SmsConfig,
    pub oauth: OAuthConfig,
    pub brand_logo_url: Option<String>,
    pub brand_tagline: Option<String>,
    pub extra_template_dirs: Vec<String>,
    pub extra_static_dirs: Vec<String>,
    pub api_prefix: String,
    pub ui_prefix: String,
    pub static_prefix: String,
    pub theme_css_url: Option<String>,
    pub email_link_prefix: Option<String>,
    pub verify_url_template: Option<String>,
    pub password_reset_url_template: Option<String>,
    pub email_change_url_template: Option<String>,
    // Additive (docs/wire.md, "Decision 4"): Argon2id parameters for new hashes.
    pub password_hash_memory_kib: u32,
    pub password_hash_iterations: u32,
    pub password_hash_parallelism: u32,
    // Additive: the most memory a stored hash may make one check use (KiB). regstack 0.9.3's
    // hashes use 65536; more is refused rather than allowed to outgrow the hashing pool.
    pub password_hash_max_memory_kib: u32,
    pub password_rehash_on_login: bool,
    // Additive: the largest request body accepted, in bytes (413 beyond it).
    pub max_request_body_bytes: usize,
    // Additive: how many Argon2 computations may run at once (native; bounds memory).
    pub password_hash_concurrency: usize,
    // Additive: the most database connections one instance opens.
    pub database_pool_size: u32,
    // Additive: how long a request waits for a database connection before answering 503.
    pub database_timeout_seconds: u64,
    // Additive (edge): the origin app the worker fronts; paths outside the api, ui and static
    // prefixes are proxied to it.
    pub origin_url: Option<String>,
    // Additive (edge): origin path patterns that need a session: `/app` (exact) or `/app/*`
    // (the prefix and everything under it).
    pub origin_protected_paths: Vec<String>,
    // Additive: the shared secret that signs the identity headers the edge sends the origin.
    pub origin_auth_secret: Option<String>,
    // Additive: where an edge worker with a `relay` backend POSTs messages (the `/relay`
    // endpoint of a `regstack serve`).
    pub relay_url: Option<String>,
    // Additive: the shared secret that signs relayed messages; on a server it mounts `/relay`.
    pub relay_secret: Option<String>,
    // Additive: SMS codes texted per account and, separately, per phone number
    // (`N/unit[;N/unit]`; an empty string turns the limit off). Past it: 429 + Retry-After.
    pub sms_code_rate_limit: Option<String>,
    // Additive: emails sent per recipient address (links from register, resend-verification,
    // forgot-password and change-email). Past it the route answers as usual and sends nothing.
    pub email_rate_limit: Option<String>,
    // Additive: password hashes allowed to wait for a hashing slot; past it a request that
    // needs one answers 503 with Retry-After at once (load shedding).
    pub password_hash_queue_limit: usize,
    // Additive (native): messages waiting to be sent in the background; past it a message is
    // dropped and logged instead of queued.
    pub delivery_queue_limit: usize,
    // Additive: the Argon2 work every failed login costs at least, as `m=…,t=…[,p=…]`. Set it
    // to the costliest parameters among stored hashes (regstack 0.9.3's are
    // `m=65536,t=3,p=4`) so failed logins take the same time for every account from start-up;
    // unset, regstack raises the floor as it meets costlier hashes.
    pub password_verify_floor: Option<String>,
    // Additive (native): how often `regstack serve` sweeps expired rows, in seconds (0: never;
    // a host embedding regstack calls `RegStack::purge_expired` itself).
    pub purge_interval_seconds: u64,
    // Seed 004 (docs/wire.md, "Decision 13"): the role stored on each new account.
    pub default_user_role: String,
    // Seed 004: shown on the pages for users who need help (`mailto:` and a link).
    pub admin_contact_email: Option<String>,
    pub admin_contact_url: Option<String>,
    // Additive (docs/events.md): every event POSTed, signed with `webhook_secret`, to
    // `webhook_url` (https, or http to loopback). The live link of an event is included only
    // with `webhook_include_links`; `webhook_queue_limit` bounds the native backlog.
    pub webhook_url: Option<String>,
    pub webhook_secret: Option<String>,
    pub webhook_include_links: bool,
    pub webhook_queue_limit: usize,
    // Seed 004 (docs/refresh-tokens.md): the session lifetime in hours instead of
    // `jwt_ttl_seconds` (not both; 0: unset), and refresh tokens, off unless switched on.
    pub access_token_expire_hours: i64,
    pub enable_refresh_tokens: bool,
    pub refresh_token_expire_days: i64,
    pub refresh_token_cookie: bool,
    pub token_refresh_rate_limit: Option<String>,
    // Seed 004 (docs/turnstile.md): Cloudflare Turnstile in front of login, registration and
    // password change, verified at `turnstile_verify_url` within `turnstile_timeout_seconds`.
    pub turnstile_enabled: bool,
    pub turnstile_site_key: Option<String>,
    pub turnstile_secret_key: Option<String>,
    pub turnstile_require_on_login: bool,
    pub turnstile_require_on_register: bool,
    pub turnstile_require_on_password_change: bool,
    pub turnstile_verify_url: String,
    pub turnstile_timeout_seconds: u64,
    // Seed 004 (docs/web-push.md): an encrypted Web Push to each of a user's browsers on every
    // new sign-in, signed with the VAPID pair (generated per process when unset). Additive:
    // the switch, the push services subscriptions may name, and the subscriptions per user.
    pub enable_web_push: bool,
    pub vapid_public_key: Option<String>,
    pub vapid_private_key: Option<String>,
    pub vapid_subject: String,
    pub push_service_origins: Vec<String>,
    pub push_subscription_limit: usize,
}

/// `[email]` (docs/wire.md, "Fields and defaults").
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
#[allow(missing_docs)]
pub struct EmailConfig {
    pub backend: EmailBackend,
    pub from_address: String,
    pub from_name: Option<String>,
    pub smtp_host: Option<String>,
    pub smtp_port: u16,
    pub smtp_starttls: bool,
    pub smtp_username: Option<String>,
    pub smtp_password: Option<String>,
    // Additive: a PEM file of CA certificates to trust for the SMTP server's TLS, besides the
    // public roots (a relay with a private CA).
    pub smtp_ca_file: Option<String>,
    pub ses_region: String,
    pub ses_profile: Option<String>,
    pub ses_access_key_id: Option<String>,
    pub ses_secret_access_key: Option<String>,
    pub log_bodies: bool,
}

/// `[sms]` (docs/wire.md, "Fields and defaults").
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
#[allow(missing_docs)]
pub struct SmsConfig {
    pub backend: SmsBackend,
    pub from_number: Option<String>,
    pub sns_region: String,
    pub twilio_account_sid: Option<String>,
    pub twilio_auth_token: Option<String>,
    pub log_bodies: bool,
    // Additive: Twilio's API origin (a local stand-in in tests).
    pub twilio_api_base: String,
}

/// `[oauth]` (docs/wire.md, "Fields and defaults").
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
#[allow(missing_docs)]
pub struct OAuthConfig {
    pub google_client_id: Option<String>,
    pub google_client_secret: Option<String>,
    pub google_redirect_uri: Option<String>,
    pub auto_link_verified_emails: bool,
    pub enforce_mfa_on_oauth_signin: bool,
    pub state_ttl_seconds: i64,
    pub completion_ttl_seconds: i64,
    // Additive (docs/oauth.md): Google's endpoints and issuer, to point them elsewhere (a
    // local OpenID Connect provider in tests).
    pub google_authorization_endpoint: String,
    pub google_token_endpoint: String,
    pub google_jwks_uri: String,
    pub google_issuer: String,
    // Additive: how long a provider may take to answer a token exchange, in seconds
    // (discovery and key sets get at most 5).
    pub http_timeout_seconds: u64,
    // Additive: any OpenID Connect provider, by name (`[oauth.providers.<name>]`).
    pub providers: std::collections::BTreeMap<String, OidcProviderConfig>,
    // The names of the providers a host registered in code (not read from any source).
    #[serde(skip)]
    pub host_providers: Vec<String>,
}

impl OAuthConfig {
    /// Whether any provider is configured: Google's credentials, a generic provider, or one a
    /// host registered. The OAuth routes mount only then (and with `enable_oauth`).
    pub fn has_providers(&self) -> bool {
        (self.google_client_id.is_some() && self.google_client_secret.is_some())
            || !self.providers.is_empty()
            || !self.host_providers.is_empty()
    }
}

/// One generic OpenID Connect provider (`[oauth.providers.<name>]`, docs/oauth.md): found
/// through its issuer's `/.well-known/openid-configuration`.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
#[allow(missing_docs)]
pub struct OidcProviderConfig {
    pub issuer: String,
    pub display_name: Option<String>,
    pub client_id: String,
    pub client_secret: Option<String>,
    pub redirect_uri: Option<String>,
    pub scopes: Vec<String>,
    // Per provider (Google's is `oauth.auto_link_verified_emails`): off unless this issuer is
    // trusted to verify addresses.
    pub auto_link_verified_emails: bool,
}

impl Default for OidcProviderConfig {
    fn default() -> Self {
        Self {
            issuer: String::new(),
            display_name: None,
            client_id: String::new(),
            client_secret: None,
            redirect_uri: None,
            scopes: vec!["openid".into(), "email".into(), "profile".into()],
            auto_link_verified_emails: false,
        }
    }
}

impl std::fmt::Debug for OidcProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        debug_redacted("OidcProviderConfig", self, f)
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            app_name: "RegStack".into(),
            base_url: "http://localhost:8000".into(),
            behind_proxy: false,
            database_url: "sqlite+aiosqlite:///./regstack.db".into(),
            mongodb_database: "regstack".into(),
            user_collection: "users".into(),
            pending_collection: "pending_registrations".into(),
            blacklist_collection: "token_blacklist".into(),
            login_attempt_collection: "login_attempts".into(),
            mfa_code_collection: "mfa_codes".into(),
            oauth_identity_collection: "oauth_identities".into(),
            oauth_state_collection: "oauth_states".into(),
            jwt_secret: String::new(),
            jwt_algorithm: JwtAlgorithm::Hs256,
            jwt_ttl_seconds: 7200,
            jwt_audience: None,
            transport: Transport::Bearer,
            verification_token_ttl_seconds: 86_400,
            password_reset_token_ttl_seconds: 1800,
            email_change_token_ttl_seconds: 3600,
            sms_code_length: 6,
            sms_code_ttl_seconds: 300,
            sms_code_max_attempts: 5,
            mfa_pending_token_ttl_seconds: 600,
            require_verification: true,
            allow_registration: true,
            enable_password_reset: true,
            enable_account_deletion: true,
            enable_admin_router: false,
            enable_ui_router: false,
            enable_sms_2fa: false,
            enable_oauth: false,
            rate_limit_disabled: false,
            login_lockout_threshold: 5,
            login_lockout_window_seconds: 900,
            login_rate_limit: None,
            login_mfa_confirm_rate_limit: None,
            register_rate_limit: None,
            forgot_password_rate_limit: None,
            reset_password_rate_limit: None,
            verify_rate_limit: None,
            resend_verification_rate_limit: None,
            change_password_rate_limit: None,
            change_email_rate_limit: None,
            confirm_email_change_rate_limit: None,
            delete_account_rate_limit: None,
            oauth_exchange_rate_limit: None,
            phone_start_rate_limit: None,
            phone_confirm_rate_limit: None,
            phone_disable_rate_limit: None,
            email: EmailConfig::default(),
            sms: SmsConfig::default(),
            oauth: OAuthConfig::default(),
            brand_logo_url: None,
            brand_tagline: None,
            extra_template_dirs: Vec::new(),
            extra_static_dirs: Vec::new(),
            api_prefix: "/api/auth".into(),
            ui_prefix: "/account".into(),
            static_prefix: "/regstack-static".into(),
            theme_css_url: None,
            email_link_prefix: None,
            verify_url_template: None,
            password_reset_url_template: None,
            email_change_url_template: None,
            password_hash_memory_kib: 19_456,
            password_hash_iterations: 2,
            password_hash_parallelism: 1,
            password_hash_max_memory_kib: 65_536,
            password_rehash_on_login: true,
            max_request_body_bytes: 64 * 1024,
            password_hash_concurrency: 4,
            database_pool_size: 10,
            database_timeout_seconds: 5,
            origin_url: None,
            origin_protected_paths: Vec::new(),
            origin_auth_secret: None,
            relay_url: None,
            relay_secret: None,
            sms_code_rate_limit: Some("5/15 minutes".into()),
            email_rate_limit: Some("5/15 minutes".into()),
            password_hash_queue_limit: 64,
            delivery_queue_limit: 1000,
            default_user_role: crate::records::DEFAULT_ROLE.into(),
            admin_contact_email: None,
            admin_contact_url: None,
            webhook_url: None,
            webhook_secret: None,
            webhook_include_links: false,
            webhook_queue_limit: 1000,
            access_token_expire_hours: 0,
            enable_refresh_tokens: false,
            refresh_token_expire_days: 7,
            refresh_token_cookie: false,
            token_refresh_rate_limit: None,
            turnstile_enabled: false,
            turnstile_site_key: None,
            turnstile_secret_key: None,
            turnstile_require_on_login: false,
            turnstile_require_on_register: true,
            turnstile_require_on_password_change: true,
            turnstile_verify_url: crate::turnstile::SITEVERIFY_URL.into(),
            turnstile_timeout_seconds: 5,
            enable_web_push: false,
            vapid_public_key: None,
            vapid_private_key: None,
            vapid_subject: "mailto:admin@example.com".into(),
            push_service_origins: crate::push::DEFAULT_PUSH_SERVICES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            push_subscription_limit: 10,
            purge_interval_seconds: 3600,
            password_verify_floor: None,
        }
    }
}

impl Default for EmailConfig {
    fn default() -> Self {
        Self {
            backend: EmailBackend::Console,
            from_address: "noreply@example.com".into(),
            from_name: None,
            smtp_host: None,
            smtp_port: 587,
            smtp_starttls: true,
            smtp_username: None,
            smtp_password: None,
            smtp_ca_file: None,
            ses_region: "eu-west-1".into(),
            ses_profile: None,
            ses_access_key_id: None,
            ses_secret_access_key: None,
            log_bodies: false,
        }
    }
}

impl Default for SmsConfig {
    fn default() -> Self {
        Self {
            backend: SmsBackend::Null,
            from_number: None,
            sns_region: "eu-west-1".into(),
            twilio_account_sid: None,
            twilio_auth_token: None,
            log_bodies: false,
            twilio_api_base: "https://api.twilio.com".into(),
        }
    }
}

impl Default for OAuthConfig {
    fn default() -> Self {
        Self {
            google_client_id: None,
            google_client_secret: None,
            google_redirect_uri: None,
            auto_link_verified_emails: false,
            enforce_mfa_on_oauth_signin: false,
            state_ttl_seconds: 300,
            completion_ttl_seconds: 30,
            google_authorization_endpoint: "https://accounts.google.com/o/oauth2/v2/auth".into(),
            google_token_endpoint: "https://oauth2.googleapis.com/token".into(),
            google_jwks_uri: "https://www.googleapis.com/oauth2/v3/certs".into(),
            google_issuer: "https://accounts.google.com".into(),
            http_timeout_seconds: 10,
            providers: Default::default(),
            host_providers: Vec::new(),
        }
    }
}

impl Config {
    /// The per-IP limit configured for `class` (`N/unit[;N/unit]`), if any: the one way to
    /// reach the fifteen `*_rate_limit` fields, so no caller looks a field up by name.
    pub fn rate_limit(&self, class: RateClass) -> Option<&str> {
        let field = match class {
            RateClass::Login => &self.login_rate_limit,
            RateClass::LoginMfaConfirm => &self.login_mfa_confirm_rate_limit,
            RateClass::Register => &self.register_rate_limit,
            RateClass::ForgotPassword => &self.forgot_password_rate_limit,
            RateClass::ResetPassword => &self.reset_password_rate_limit,
            RateClass::Verify => &self.verify_rate_limit,
            RateClass::ResendVerification => &self.resend_verification_rate_limit,
            RateClass::ChangePassword => &self.change_password_rate_limit,
            RateClass::ChangeEmail => &self.change_email_rate_limit,
            RateClass::ConfirmEmailChange => &self.confirm_email_change_rate_limit,
            RateClass::DeleteAccount => &self.delete_account_rate_limit,
            RateClass::OAuthExchange => &self.oauth_exchange_rate_limit,
            RateClass::PhoneStart => &self.phone_start_rate_limit,
            RateClass::PhoneConfirm => &self.phone_confirm_rate_limit,
            RateClass::PhoneDisable => &self.phone_disable_rate_limit,
            RateClass::TokenRefresh => &self.token_refresh_rate_limit,
        };
        field.as_deref().map(str::trim).filter(|s| !s.is_empty())
    }
}

/// Why a configuration cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// The TOML text does not parse.
    #[error("regstack.toml is not valid TOML: {0}")]
    Toml(String),
    /// A field has a value of the wrong type or outside its bounds.
    #[error("invalid config value for `{field}`: {message}")]
    Invalid {
        /// The dotted field name.
        field: String,
        /// What is wrong with it.
        message: String,
    },
}

fn invalid(field: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.to_string(),
        message: message.into(),
    }
}

/// `Debug` for the config structs: every field, except that secrets (any key naming a secret,
/// a password, a token or a key id) show as `[redacted]` when set, so a config can be logged
/// or put in a panic message safely.
fn debug_redacted<T: Serialize>(name: &str, value: &T, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    fn redact(v: &mut Value) {
        if let Value::Object(map) = v {
            for (key, value) in map.iter_mut() {
                let secret = ["secret", "password", "token", "access_key", "private_key"]
                    .iter()
                    .any(|w| key.contains(w))
                    && !key.ends_with("_ttl_seconds")
                    && !key.ends_with("_endpoint")
                    && !value.is_null();
                if secret {
                    *value = Value::from("[redacted]");
                } else if let Some(url) = value.as_str().filter(|_| key.ends_with("_url")) {
                    *value = Value::from(without_userinfo(url));
                } else {
                    redact(value);
                }
            }
        }
    }
    let mut v = serde_json::to_value(value).unwrap_or(Value::Null);
    redact(&mut v);
    write!(f, "{name} {v}")
}

/// `scheme://user:pass@host/…` → `scheme://[redacted]@host/…`; other text unchanged.
fn without_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://[redacted]{}", &rest[at..]),
        None => url.to_string(),
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        debug_redacted("Config", self, f)
    }
}

impl std::fmt::Debug for EmailConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        debug_redacted("EmailConfig", self, f)
    }
}

impl std::fmt::Debug for SmsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        debug_redacted("SmsConfig", self, f)
    }
}

impl std::fmt::Debug for OAuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        debug_redacted("OAuthConfig", self, f)
    }
}

/// Which storage backend `database_url` selects (docs/wire.md, "Fields and defaults").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseKind {
    /// SQLite; the path after the `///` (`:memory:` for an in-memory database).
    Sqlite(String),
    /// PostgreSQL; the URL with any `+asyncpg` driver suffix removed.
    Postgres(String),
    /// MongoDB; the URL as given.
    Mongo(String),
}

/// Classifies a database URL by scheme.
pub fn database_kind(url: &str) -> Result<DatabaseKind, ConfigError> {
    let (scheme, rest) = url.split_once("://").ok_or_else(|| {
        invalid(
            "database_url",
            "expected a URL such as sqlite+aiosqlite:///./regstack.db",
        )
    })?;
    match scheme.to_ascii_lowercase().as_str() {
        "sqlite" | "sqlite+aiosqlite" => {
            let path = rest.strip_prefix('/').unwrap_or(rest);
            let path = path.split('?').next().unwrap_or(path);
            if path.is_empty() {
                return Err(invalid("database_url", "the SQLite URL has no path"));
            }
            Ok(DatabaseKind::Sqlite(path.to_string()))
        }
        "postgresql" | "postgresql+asyncpg" | "postgres" | "postgresql+psycopg" => {
            Ok(DatabaseKind::Postgres(format!("postgresql://{rest}")))
        }
        "mongodb" | "mongodb+srv" => Ok(DatabaseKind::Mongo(url.to_string())),
        other => Err(invalid(
            "database_url",
            format!("unsupported scheme `{other}` (use sqlite+aiosqlite://, postgresql:// or mongodb://)"),
        )),
    }
}

#[cfg(test)]
mod tests;
