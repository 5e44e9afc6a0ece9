//! The configuration model of contract §3 and the one layering function.
//!
//! Both runtimes load config the same way: [`load`] merges TOML text < secrets-env text <
//! environment pairs < programmatic overrides, highest last. The runtimes only read files and
//! the environment and hand the text over, so the merge rules live in one place.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::ids::Email;
use crate::rate_limit::RateLimit;

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
    pub jwt_algorithm: String,
    pub jwt_ttl_seconds: i64,
    pub jwt_audience: Option<String>,
    pub transport: String,
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
    // Additive (Decision 4): Argon2id parameters for new hashes.
    pub password_hash_memory_kib: u32,
    pub password_hash_iterations: u32,
    pub password_hash_parallelism: u32,
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
}

/// `[email]` (contract §3.3).
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
#[allow(missing_docs)]
pub struct EmailConfig {
    pub backend: String,
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

/// `[sms]` (contract §3.4).
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
#[allow(missing_docs)]
pub struct SmsConfig {
    pub backend: String,
    pub from_number: Option<String>,
    pub sns_region: String,
    pub twilio_account_sid: Option<String>,
    pub twilio_auth_token: Option<String>,
    pub log_bodies: bool,
    // Additive: Twilio's API origin (a local stand-in in tests).
    pub twilio_api_base: String,
}

/// `[oauth]` (contract §3.5).
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
            jwt_algorithm: "HS256".into(),
            jwt_ttl_seconds: 7200,
            jwt_audience: None,
            transport: "bearer".into(),
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
            purge_interval_seconds: 3600,
            password_verify_floor: None,
        }
    }
}

impl Default for EmailConfig {
    fn default() -> Self {
        Self {
            backend: "console".into(),
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
            backend: "null".into(),
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
        }
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
                let secret = ["secret", "password", "token", "access_key"]
                    .iter()
                    .any(|w| key.contains(w))
                    && !key.ends_with("_ttl_seconds")
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

/// Whether `secret` is a well-known placeholder rather than random: it says "change me" or
/// "secret"/"example" in some spelling, or it is one short pattern repeated (`aaaa…`,
/// `abcabc…`). Such values pass a length check but are the first thing an attacker tries.
pub fn is_placeholder_secret(secret: &str) -> bool {
    let folded: String = secret
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    const WORDS: [&str; 8] = [
        "changeme",
        "replaceme",
        "yoursecret",
        "mysecret",
        "secretkey",
        "placeholder",
        "example",
        "insecure",
    ];
    if WORDS.iter().any(|w| folded.contains(w)) {
        return true;
    }
    let bytes = secret.as_bytes();
    (1..=8).any(|period| bytes.len() > period && bytes.iter().enumerate().all(|(i, b)| *b == bytes[i % period]))
}

/// The inputs of [`load`], lowest precedence first.
#[derive(Default, Clone, Copy)]
pub struct Sources<'a> {
    /// The text of `regstack.toml`, if one was found.
    pub toml: Option<&'a str>,
    /// The text of `regstack.secrets.env`, if one was found.
    pub secrets_env: Option<&'a str>,
    /// The process environment (only `REGSTACK_*` names are read, case-insensitively).
    pub env: &'a [(String, String)],
    /// Programmatic overrides as `(dotted.field, value)`: the constructor kwargs.
    pub overrides: &'a [(String, Value)],
}

/// A loaded config and the warnings the operator should see (unknown keys and the like).
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The validated config.
    pub config: Config,
    /// One line per ignored key.
    pub warnings: Vec<String>,
}

const SUB_MODELS: &[&str] = &["email", "sms", "oauth"];

/// Merges the sources (TOML < secrets-env < env < overrides), coerces strings to each
/// field's type, warns about unknown keys, and validates bounds.
pub fn load(sources: Sources<'_>) -> Result<Loaded, ConfigError> {
    let schema = serde_json::to_value(Config::default()).expect("config serialises");
    let mut tree = schema.clone();
    let mut warnings = Vec::new();

    if let Some(text) = sources.toml {
        let table: toml::Table = toml::from_str(text).map_err(|e| ConfigError::Toml(e.message().to_string()))?;
        for (key, value) in table {
            let value = toml_to_json(value);
            let key = key.to_ascii_lowercase();
            if SUB_MODELS.contains(&key.as_str()) {
                match value {
                    Value::Object(inner) => {
                        for (k, v) in inner {
                            set_path(
                                &schema,
                                &mut tree,
                                &[key.clone(), k.to_ascii_lowercase()],
                                v,
                                "regstack.toml",
                                &mut warnings,
                            )?;
                        }
                    }
                    other => set_path(&schema, &mut tree, &[key], other, "regstack.toml", &mut warnings)?,
                }
            } else {
                set_path(&schema, &mut tree, &[key], value, "regstack.toml", &mut warnings)?;
            }
        }
    }
    if let Some(text) = sources.secrets_env {
        for (name, value) in parse_env_file(text) {
            apply_env(&schema, &mut tree, &name, &value, "regstack.secrets.env", &mut warnings)?;
        }
    }
    for (name, value) in sources.env {
        apply_env(&schema, &mut tree, name, value, "environment", &mut warnings)?;
    }
    for (name, value) in sources.overrides {
        let path: Vec<String> = name
            .split(['.'])
            .flat_map(|p| p.split("__"))
            .map(|p| p.to_ascii_lowercase())
            .collect();
        set_path(&schema, &mut tree, &path, value.clone(), "overrides", &mut warnings)?;
    }

    let config: Config = serde_json::from_value(tree).map_err(|e| invalid("config", e.to_string()))?;
    config.validate()?;
    Ok(Loaded { config, warnings })
}

/// `KEY=value` lines: `#` comments and blank lines skipped, matching quotes stripped, no
/// `export` and no interpolation (contract §3.1).
pub fn parse_env_file(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else { continue };
        let mut v = v.trim();
        if v.len() >= 2 && ((v.starts_with('"') && v.ends_with('"')) || (v.starts_with('\'') && v.ends_with('\''))) {
            v = &v[1..v.len() - 1];
        }
        out.push((k.trim().to_string(), v.to_string()));
    }
    out
}

fn apply_env(
    schema: &Value,
    tree: &mut Value,
    name: &str,
    raw: &str,
    source: &str,
    warnings: &mut Vec<String>,
) -> Result<(), ConfigError> {
    let lower = name.to_ascii_lowercase();
    let Some(rest) = lower.strip_prefix("regstack_") else {
        return Ok(());
    };
    // REGSTACK_CONFIG names the TOML file; it is not a field.
    if rest == "config" {
        return Ok(());
    }
    let path: Vec<String> = rest.split("__").map(str::to_string).collect();
    set_path(schema, tree, &path, Value::String(raw.to_string()), source, warnings)
}

fn set_path(
    schema: &Value,
    tree: &mut Value,
    path: &[String],
    value: Value,
    source: &str,
    warnings: &mut Vec<String>,
) -> Result<(), ConfigError> {
    let dotted = path.join(".");
    let (Some(schema_obj), Some(tree_obj)) = (schema.as_object(), tree.as_object_mut()) else {
        return Ok(());
    };
    let Some(first) = path.first() else { return Ok(()) };
    let Some(field_schema) = schema_obj.get(first) else {
        warnings.push(format!("ignoring unknown config key `{dotted}` from {source}"));
        return Ok(());
    };
    if path.len() > 1 {
        if !field_schema.is_object() {
            warnings.push(format!("ignoring unknown config key `{dotted}` from {source}"));
            return Ok(());
        }
        let slot = tree_obj.entry(first.clone()).or_insert_with(|| field_schema.clone());
        return set_path(field_schema, slot, &path[1..], value, source, warnings);
    }
    if let (Value::Object(_), Value::String(s)) = (field_schema, &value) {
        // A whole sub-model as JSON (pydantic-settings accepts it), merged key by key.
        let parsed: Value = serde_json::from_str(s).map_err(|_| invalid(&dotted, "expected a JSON object"))?;
        let Value::Object(map) = parsed else {
            return Err(invalid(&dotted, "expected a JSON object"));
        };
        let slot = tree_obj.entry(first.clone()).or_insert_with(|| field_schema.clone());
        for (k, v) in map {
            set_path(field_schema, slot, &[k.to_ascii_lowercase()], v, source, warnings)?;
        }
        return Ok(());
    }
    let coerced = coerce(field_schema, value).map_err(|m| invalid(&dotted, m))?;
    tree_obj.insert(first.clone(), coerced);
    Ok(())
}

/// Converts a value to the type the field's default has; env and secrets values are strings.
fn coerce(like: &Value, value: Value) -> Result<Value, String> {
    match (like, value) {
        (Value::Bool(_), Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "t" | "yes" | "y" | "on" => Ok(Value::Bool(true)),
            "0" | "false" | "f" | "no" | "n" | "off" => Ok(Value::Bool(false)),
            _ => Err(format!("expected a boolean, got {s:?}")),
        },
        (Value::Bool(_), Value::Number(n)) if n.as_i64() == Some(0) || n.as_i64() == Some(1) => {
            Ok(Value::Bool(n.as_i64() == Some(1)))
        }
        (Value::Bool(_), v @ Value::Bool(_)) => Ok(v),
        (Value::Number(_), Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("expected an integer, got {s:?}")),
        (Value::Number(_), Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(Value::Number(n)),
        (Value::Number(_), Value::Number(n)) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 => Ok(Value::from(f as i64)),
            _ => Err(format!("expected an integer, got {n}")),
        },
        (Value::Array(_), Value::String(s)) => match serde_json::from_str::<Value>(&s) {
            Ok(Value::Array(items)) if items.iter().all(Value::is_string) => Ok(Value::Array(items)),
            _ => Err("expected a JSON list of strings, e.g. [\"/srv/templates\"]".into()),
        },
        (Value::Array(_), Value::Array(items)) if items.iter().all(Value::is_string) => Ok(Value::Array(items)),
        (Value::String(_) | Value::Null, Value::String(s)) => Ok(Value::String(s)),
        (Value::Null, Value::Null) => Ok(Value::Null),
        (Value::String(_) | Value::Null, Value::Number(n)) => Ok(Value::String(n.to_string())),
        (Value::String(_) | Value::Null, Value::Bool(b)) => Ok(Value::String(b.to_string())),
        (_, other) => Err(format!("unexpected value {other}")),
    }
}

fn toml_to_json(v: toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::from(i),
        toml::Value::Float(f) => serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.into_iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => Value::Object(t.into_iter().map(|(k, v)| (k, toml_to_json(v))).collect::<Map<_, _>>()),
    }
}

/// Which storage backend `database_url` selects (contract §3.2).
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

impl Config {
    /// Checks every bound of contract §3 and the cross-field rules.
    pub fn validate(&self) -> Result<(), ConfigError> {
        fn range(field: &str, v: i64, lo: i64, hi: i64) -> Result<(), ConfigError> {
            if v < lo || v > hi {
                return Err(invalid(field, format!("must be between {lo} and {hi}, got {v}")));
            }
            Ok(())
        }
        if !(self.base_url.starts_with("http://") || self.base_url.starts_with("https://")) {
            return Err(invalid("base_url", "must be an http:// or https:// URL"));
        }
        database_kind(&self.database_url)?;
        if !self.jwt_secret.is_empty() && self.jwt_secret.chars().count() < 32 {
            return Err(invalid(
                "jwt_secret",
                "must be at least 32 characters; generate one with `openssl rand -base64 48`",
            ));
        }
        for (field, secret) in [
            ("jwt_secret", Some(&self.jwt_secret)),
            ("relay_secret", self.relay_secret.as_ref()),
            ("origin_auth_secret", self.origin_auth_secret.as_ref()),
        ] {
            if secret.is_some_and(|s| is_placeholder_secret(s)) {
                return Err(invalid(
                    field,
                    "is a placeholder from an example, not a secret; generate one with `openssl rand -base64 48`",
                ));
            }
        }
        if !matches!(self.jwt_algorithm.as_str(), "HS256" | "HS384" | "HS512") {
            return Err(invalid("jwt_algorithm", "must be HS256, HS384 or HS512"));
        }
        range("jwt_ttl_seconds", self.jwt_ttl_seconds, 60, 2_592_000)?;
        if self.transport != "bearer" {
            return Err(invalid("transport", "the only supported transport is \"bearer\""));
        }
        range(
            "verification_token_ttl_seconds",
            self.verification_token_ttl_seconds,
            60,
            i64::MAX / 2_000_000,
        )?;
        range(
            "password_reset_token_ttl_seconds",
            self.password_reset_token_ttl_seconds,
            60,
            i64::MAX / 2_000_000,
        )?;
        range(
            "email_change_token_ttl_seconds",
            self.email_change_token_ttl_seconds,
            60,
            i64::MAX / 2_000_000,
        )?;
        range("sms_code_length", self.sms_code_length as i64, 4, 10)?;
        range("sms_code_ttl_seconds", self.sms_code_ttl_seconds, 30, 1800)?;
        range("sms_code_max_attempts", self.sms_code_max_attempts, 1, 20)?;
        range(
            "mfa_pending_token_ttl_seconds",
            self.mfa_pending_token_ttl_seconds,
            60,
            1800,
        )?;
        range("login_lockout_threshold", self.login_lockout_threshold, 1, i64::MAX)?;
        range(
            "login_lockout_window_seconds",
            self.login_lockout_window_seconds,
            10,
            i64::MAX / 2_000_000,
        )?;
        for (field, value) in self.rate_limit_fields().into_iter().chain([
            ("sms_code_rate_limit", &self.sms_code_rate_limit),
            ("email_rate_limit", &self.email_rate_limit),
        ]) {
            if let Some(spec) = value.as_deref().filter(|s| !s.trim().is_empty()) {
                RateLimit::parse_all(spec).map_err(|e| invalid(field, e.to_string()))?;
            }
        }
        range(
            "password_hash_queue_limit",
            self.password_hash_queue_limit as i64,
            1,
            1_000_000,
        )?;
        range("delivery_queue_limit", self.delivery_queue_limit as i64, 1, 1_000_000)?;
        if let Some(floor) = &self.password_verify_floor {
            if crate::password::work_of_params(floor).is_none() {
                return Err(invalid(
                    "password_verify_floor",
                    "write it as Argon2 parameters, e.g. \"m=65536,t=3,p=4\"",
                ));
            }
        }
        range(
            "purge_interval_seconds",
            self.purge_interval_seconds.min(i64::MAX as u64) as i64,
            0,
            30 * 86_400,
        )?;

        Email::parse(&self.email.from_address).map_err(|e| invalid("email.from_address", e.0))?;
        if !matches!(self.email.backend.as_str(), "console" | "smtp" | "ses" | "relay") {
            return Err(invalid("email.backend", "must be console, smtp, ses or relay"));
        }
        if self.email.backend == "smtp" && self.email.smtp_host.as_deref().unwrap_or("").is_empty() {
            return Err(invalid("email.smtp_host", "is required when email.backend = \"smtp\""));
        }
        let plain_smtp = self.email.backend == "smtp" && !self.email.smtp_starttls && self.email.smtp_port != 465;
        if plain_smtp
            && (self.email.smtp_username.is_some() || self.email.smtp_password.is_some())
            && !is_loopback_authority(self.email.smtp_host.as_deref().unwrap_or(""))
        {
            return Err(invalid(
                "email.smtp_starttls",
                "SMTP credentials would cross the network in clear text: turn smtp_starttls on, use port 465 \
                 (implicit TLS), or relay through localhost",
            ));
        }
        if self.email.ses_access_key_id.is_some() != self.email.ses_secret_access_key.is_some() {
            return Err(invalid(
                "email.ses_access_key_id",
                "set both ses_access_key_id and ses_secret_access_key, or neither",
            ));
        }
        if self.email.ses_profile.is_some() && self.email.ses_access_key_id.is_some() {
            return Err(invalid(
                "email.ses_profile",
                "ses_profile and explicit SES keys are mutually exclusive",
            ));
        }
        if !matches!(self.sms.backend.as_str(), "null" | "sns" | "twilio" | "relay") {
            return Err(invalid("sms.backend", "must be null, sns, twilio or relay"));
        }
        if self.email.backend == "relay" || self.sms.backend == "relay" {
            // Relayed messages carry live links and codes: plain http only on this machine.
            match &self.relay_url {
                Some(url) if url.starts_with("https://") => {}
                Some(url) if url.strip_prefix("http://").is_some_and(is_loopback_authority) => {}
                Some(url) if url.starts_with("http://") => {
                    return Err(invalid(
                        "relay_url",
                        "must be https:// (plain http:// only to localhost or a loopback address)",
                    ))
                }
                _ => return Err(invalid("relay_url", "an https URL is required with a relay backend")),
            }
            if self.relay_secret.is_none() {
                return Err(invalid("relay_secret", "is required with a relay backend"));
            }
        }
        if self.relay_secret.as_ref().is_some_and(|s| s.chars().count() < 32) {
            return Err(invalid("relay_secret", "must be at least 32 characters"));
        }
        if self.sms.backend == "twilio"
            && (self.sms.twilio_account_sid.is_none() || self.sms.twilio_auth_token.is_none())
        {
            return Err(invalid(
                "sms.twilio_account_sid",
                "twilio needs twilio_account_sid and twilio_auth_token",
            ));
        }
        if self.sms.backend == "twilio" && self.sms.from_number.is_none() {
            return Err(invalid("sms.from_number", "is required when sms.backend = \"twilio\""));
        }
        for (field, value) in [
            ("api_prefix", &self.api_prefix),
            ("ui_prefix", &self.ui_prefix),
            ("static_prefix", &self.static_prefix),
        ] {
            if !value.starts_with('/') || (value.len() > 1 && value.ends_with('/')) {
                return Err(invalid(field, "must start with `/` and not end with one"));
            }
        }
        range(
            "password_hash_memory_kib",
            self.password_hash_memory_kib as i64,
            8 * self.password_hash_parallelism.max(1) as i64,
            4 * 1024 * 1024,
        )?;
        range("password_hash_iterations", self.password_hash_iterations as i64, 1, 100)?;
        range(
            "password_hash_parallelism",
            self.password_hash_parallelism as i64,
            1,
            64,
        )?;
        range(
            "max_request_body_bytes",
            self.max_request_body_bytes as i64,
            1024,
            64 * 1024 * 1024,
        )?;
        range(
            "password_hash_concurrency",
            self.password_hash_concurrency as i64,
            1,
            1024,
        )?;
        range("database_pool_size", self.database_pool_size as i64, 1, 1000)?;
        range("database_timeout_seconds", self.database_timeout_seconds as i64, 1, 300)?;
        if let Some(url) = &self.origin_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(invalid("origin_url", "must be an http:// or https:// URL"));
            }
            if self.origin_auth_secret.is_none() {
                return Err(invalid(
                    "origin_auth_secret",
                    "is required with origin_url: the origin verifies the identity headers with it",
                ));
            }
        }
        if self.origin_auth_secret.as_ref().is_some_and(|s| s.chars().count() < 32) {
            return Err(invalid("origin_auth_secret", "must be at least 32 characters"));
        }
        for pattern in &self.origin_protected_paths {
            let body = pattern.strip_suffix("/*").unwrap_or(pattern);
            if !pattern.starts_with('/') || body.contains('*') {
                return Err(invalid(
                    "origin_protected_paths",
                    "each pattern is an absolute path, optionally ending in /* (e.g. \"/app/*\")",
                ));
            }
        }
        range("oauth.state_ttl_seconds", self.oauth.state_ttl_seconds, 1, 86_400)?;
        range(
            "oauth.completion_ttl_seconds",
            self.oauth.completion_ttl_seconds,
            1,
            86_400,
        )?;
        Ok(())
    }

    /// The 15 per-route rate-limit fields, by name.
    pub fn rate_limit_fields(&self) -> [(&'static str, &Option<String>); 15] {
        [
            ("login_rate_limit", &self.login_rate_limit),
            ("login_mfa_confirm_rate_limit", &self.login_mfa_confirm_rate_limit),
            ("register_rate_limit", &self.register_rate_limit),
            ("forgot_password_rate_limit", &self.forgot_password_rate_limit),
            ("reset_password_rate_limit", &self.reset_password_rate_limit),
            ("verify_rate_limit", &self.verify_rate_limit),
            ("resend_verification_rate_limit", &self.resend_verification_rate_limit),
            ("change_password_rate_limit", &self.change_password_rate_limit),
            ("change_email_rate_limit", &self.change_email_rate_limit),
            ("confirm_email_change_rate_limit", &self.confirm_email_change_rate_limit),
            ("delete_account_rate_limit", &self.delete_account_rate_limit),
            ("oauth_exchange_rate_limit", &self.oauth_exchange_rate_limit),
            ("phone_start_rate_limit", &self.phone_start_rate_limit),
            ("phone_confirm_rate_limit", &self.phone_confirm_rate_limit),
            ("phone_disable_rate_limit", &self.phone_disable_rate_limit),
        ]
    }

    /// `base_url` without a trailing slash.
    pub fn base_url_trimmed(&self) -> &str {
        self.base_url.trim_end_matches('/')
    }

    /// The path before `/verify`, `/reset-password` and `/confirm-email-change` in emails.
    pub fn email_link_prefix(&self) -> &str {
        match &self.email_link_prefix {
            Some(p) => p.as_str(),
            None if self.enable_ui_router => self.ui_prefix.as_str(),
            None => "",
        }
    }

    fn link(&self, template: &Option<String>, bare: &str, token: &str) -> String {
        match template {
            Some(t) => t
                .replace("{base_url}", self.base_url_trimmed())
                .replace("{token}", token),
            None => format!(
                "{}{}{}?token={}",
                self.base_url_trimmed(),
                self.email_link_prefix(),
                bare,
                token
            ),
        }
    }

    /// The link in a verification email.
    pub fn verify_url(&self, token: &str) -> String {
        self.link(&self.verify_url_template, "/verify", token)
    }

    /// The link in a password-reset email.
    pub fn password_reset_url(&self, token: &str) -> String {
        self.link(&self.password_reset_url_template, "/reset-password", token)
    }

    /// The link in an email-change confirmation email.
    pub fn email_change_url(&self, token: &str) -> String {
        self.link(&self.email_change_url_template, "/confirm-email-change", token)
    }

    /// The From header: `"{from_name or app_name} <{from_address}>"`.
    pub fn email_from(&self) -> String {
        let name = self.email.from_name.as_deref().unwrap_or(&self.app_name);
        format!("{name} <{}>", self.email.from_address)
    }
}

/// The link with every occurrence of the raw token (and its percent-encoded form) replaced
/// by `[REDACTED]`, for hooks and logs.
pub fn redact_token(url: &str, token: &str) -> String {
    if token.is_empty() {
        return url.to_string();
    }
    let encoded: String = token
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    url.replace(token, "[REDACTED]").replace(&encoded, "[REDACTED]")
}

/// Whether the host of `authority_and_path` (what follows `http://`) is `localhost` or a
/// loopback address.
fn is_loopback_authority(authority_and_path: &str) -> bool {
    // `\` ends the authority too: URL parsers read it as `/` in http URLs.
    let authority = authority_and_path
        .split(['/', '\\', '?', '#'])
        .next()
        .unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    let host = match host_port.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => host_port.split(':').next().unwrap_or_default(),
    };
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn a_relay_url_is_https_unless_it_stays_on_this_machine() {
        let with = |url: &str| {
            let e = env(&[
                ("REGSTACK_EMAIL__BACKEND", "relay"),
                ("REGSTACK_RELAY_URL", url),
                ("REGSTACK_RELAY_SECRET", "relay-secret-0123456789-0123456789-abc"),
            ]);
            load(Sources {
                env: &e,
                ..Sources::default()
            })
            .map(|l| l.config.relay_url)
        };
        for ok in [
            "https://mail.example.com/api/auth/relay",
            "http://127.0.0.1:8000/api/auth/relay",
            "http://127.5.0.1/relay",
            "http://localhost:8000/relay",
            "http://[::1]:8000/relay",
            "http://LOCALHOST",
        ] {
            assert_eq!(with(ok).unwrap().as_deref(), Some(ok), "{ok}");
        }
        for refused in [
            "http://mail.example.com/relay",
            "http://10.0.0.1/relay",
            "http://127.0.0.1.evil.example/relay",
            "http://localhost.evil.example/relay",
            "http://127.0.0.1@evil.example/relay",
            "http://mail.example.com\\@127.0.0.1/relay",
            "ftp://127.0.0.1/relay",
            "mail.example.com",
        ] {
            assert!(with(refused).is_err(), "{refused}");
        }
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn placeholder_secrets_are_refused() {
        for secret in [
            "change-me-to-64-random-characters-change-me-to-64-random-characters",
            "CHANGEME_CHANGEME_CHANGEME_CHANGEME",
            "your-secret-key-goes-here-0123456789",
            "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            "abcabcabcabcabcabcabcabcabcabcabcabc",
        ] {
            let config = Config {
                jwt_secret: secret.into(),
                ..Config::default()
            };
            match config.validate() {
                Err(ConfigError::Invalid { field, .. }) => assert_eq!(field, "jwt_secret", "{secret}"),
                other => panic!("{secret} was accepted: {other:?}"),
            }
        }
        let random = Config {
            jwt_secret: "q3Vx9-Lr0aZt_7mWcBn2KpHs5YdE8uJf".into(),
            ..Config::default()
        };
        assert_eq!(random.validate(), Ok(()));
        let relay = Config {
            relay_secret: Some("r".repeat(40)),
            ..Config::default()
        };
        assert!(relay.validate().is_err());
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn smtp_credentials_never_travel_in_clear_text_off_this_machine() {
        let smtp = |host: &str, port: u16, starttls: bool, user: Option<&str>| {
            let mut c = Config::default();
            c.email.backend = "smtp".into();
            c.email.smtp_host = Some(host.into());
            c.email.smtp_port = port;
            c.email.smtp_starttls = starttls;
            c.email.smtp_username = user.map(str::to_string);
            c.email.smtp_password = user.map(|_| "pw".to_string());
            c.validate()
        };
        let refused = smtp("mail.example.com", 587, false, Some("app"));
        assert!(
            matches!(&refused, Err(ConfigError::Invalid { field, .. }) if field == "email.smtp_starttls"),
            "{refused:?}"
        );
        assert_eq!(smtp("mail.example.com", 587, true, Some("app")), Ok(()));
        assert_eq!(smtp("mail.example.com", 465, false, Some("app")), Ok(()));
        assert_eq!(smtp("127.0.0.1", 2525, false, Some("app")), Ok(()));
        assert_eq!(
            smtp("mail.example.com", 25, false, None),
            Ok(()),
            "no credentials to leak"
        );
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn debug_output_redacts_secrets() {
        let mut config = Config {
            jwt_secret: "q3Vx9-Lr0aZt_7mWcBn2KpHs5YdE8uJf".into(),
            relay_secret: Some("relay-q3Vx9-Lr0aZt_7mWcBn2KpHs5YdE".into()),
            ..Config::default()
        };
        config.email.smtp_password = Some("smtp-pw-q3Vx9".into());
        config.sms.twilio_auth_token = Some("twilio-q3Vx9".into());
        config.oauth.google_client_secret = Some("google-q3Vx9".into());
        config.database_url = "postgresql://app:pg-q3Vx9@db.internal/regstack".into();
        let shown = format!("{config:?}");
        assert!(!shown.contains("q3Vx9"), "{shown}");
        assert!(
            shown.contains("[redacted]") && shown.contains("jwt_ttl_seconds"),
            "{shown}"
        );
        assert!(
            shown.contains("postgresql://[redacted]@db.internal/regstack"),
            "{shown}"
        );
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn defaults_match_the_contract() {
        let c = load(Sources::default()).unwrap().config;
        assert_eq!(c.app_name, "RegStack");
        assert_eq!(c.jwt_ttl_seconds, 7200);
        assert_eq!(c.login_lockout_threshold, 5);
        assert_eq!(c.email.backend, "console");
        assert_eq!(c.sms.backend, "null");
        assert_eq!(c.api_prefix, "/api/auth");
        assert!(c.require_verification);
        assert_eq!(c.password_hash_memory_kib, 19_456);
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn precedence_is_toml_then_secrets_then_env_then_overrides() {
        let toml = "app_name = \"FromToml\"\njwt_ttl_seconds = 100\nbase_url = \"http://toml\"\n[email]\nbackend = \"smtp\"\nsmtp_host = \"mail\"\n";
        let secrets = "# comment\nREGSTACK_JWT_TTL_SECONDS='200'\nREGSTACK_APP_NAME=\"FromSecrets\"\n";
        let e = env(&[
            ("regstack_app_name", "FromEnv"),
            ("REGSTACK_EMAIL__SMTP_PORT", "2525"),
            ("OTHER", "x"),
        ]);
        let o = vec![("app_name".to_string(), Value::from("FromOverride"))];
        let c = load(Sources {
            toml: Some(toml),
            secrets_env: Some(secrets),
            env: &e,
            overrides: &o,
        })
        .unwrap()
        .config;
        assert_eq!(c.app_name, "FromOverride");
        assert_eq!(c.jwt_ttl_seconds, 200);
        assert_eq!(c.base_url, "http://toml");
        assert_eq!(c.email.backend, "smtp");
        assert_eq!(c.email.smtp_port, 2525);
        let c = load(Sources {
            toml: Some(toml),
            secrets_env: Some(secrets),
            env: &e,
            overrides: &[],
        })
        .unwrap()
        .config;
        assert_eq!(c.app_name, "FromEnv");
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn arrays_unknown_keys_and_booleans() {
        let toml = "extra_template_dirs = [\"a\", \"b\"]\ncookie_domain = \"x\"\nlogin_max_per_minute = 3\n";
        let e = env(&[("REGSTACK_ENABLE_ADMIN_ROUTER", "yes"), ("REGSTACK_NOPE", "1")]);
        let loaded = load(Sources {
            toml: Some(toml),
            env: &e,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(loaded.config.extra_template_dirs, vec!["a", "b"]);
        assert!(loaded.config.enable_admin_router);
        assert_eq!(loaded.warnings.len(), 3, "{:?}", loaded.warnings);
        let e = env(&[("REGSTACK_EXTRA_TEMPLATE_DIRS", "[\"/x\"]")]);
        let c = load(Sources {
            env: &e,
            ..Default::default()
        })
        .unwrap()
        .config;
        assert_eq!(c.extra_template_dirs, vec!["/x"]);
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn bad_values_are_named() {
        let cases: &[(&str, &str, &str)] = &[
            ("REGSTACK_JWT_SECRET", "short", "jwt_secret"),
            ("REGSTACK_JWT_TTL_SECONDS", "10", "jwt_ttl_seconds"),
            ("REGSTACK_JWT_TTL_SECONDS", "ten", "jwt_ttl_seconds"),
            ("REGSTACK_SMS_CODE_LENGTH", "11", "sms_code_length"),
            ("REGSTACK_DATABASE_URL", "mysql://x", "database_url"),
            ("REGSTACK_LOGIN_RATE_LIMIT", "5/fortnight", "login_rate_limit"),
            ("REGSTACK_REQUIRE_VERIFICATION", "maybe", "require_verification"),
            ("REGSTACK_JWT_ALGORITHM", "RS256", "jwt_algorithm"),
        ];
        for (k, v, field) in cases {
            let e = env(&[(k, v)]);
            match load(Sources {
                env: &e,
                ..Default::default()
            }) {
                Err(ConfigError::Invalid { field: f, .. }) => assert_eq!(&f, field),
                other => panic!("{k}={v}: {other:?}"),
            }
        }
        assert!(matches!(
            load(Sources {
                toml: Some("= broken"),
                ..Default::default()
            }),
            Err(ConfigError::Toml(_))
        ));
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn database_urls() {
        assert_eq!(
            database_kind("sqlite+aiosqlite:///./regstack.db").unwrap(),
            DatabaseKind::Sqlite("./regstack.db".into())
        );
        assert_eq!(
            database_kind("sqlite+aiosqlite:////var/lib/x.db").unwrap(),
            DatabaseKind::Sqlite("/var/lib/x.db".into())
        );
        assert_eq!(
            database_kind("sqlite:///:memory:").unwrap(),
            DatabaseKind::Sqlite(":memory:".into())
        );
        assert_eq!(
            database_kind("postgresql+asyncpg://u:p@h/db").unwrap(),
            DatabaseKind::Postgres("postgresql://u:p@h/db".into())
        );
        assert!(matches!(
            database_kind("mongodb://h/db").unwrap(),
            DatabaseKind::Mongo(_)
        ));
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn links_follow_prefix_and_templates() {
        let mut c = Config {
            base_url: "http://h:1/".into(),
            ..Config::default()
        };
        assert_eq!(c.verify_url("T"), "http://h:1/verify?token=T");
        c.enable_ui_router = true;
        assert_eq!(c.password_reset_url("T"), "http://h:1/account/reset-password?token=T");
        c.email_link_prefix = Some("/app".into());
        assert_eq!(c.email_change_url("T"), "http://h:1/app/confirm-email-change?token=T");
        c.verify_url_template = Some("{base_url}/v/{token}?x={other}".into());
        assert_eq!(c.verify_url("T"), "http://h:1/v/T?x={other}");
        assert_eq!(c.email_from(), "RegStack <noreply@example.com>");
        assert_eq!(
            redact_token("http://x/verify?token=a+b", "a+b"),
            "http://x/verify?token=[REDACTED]"
        );
    }
}
