//! Bounds and cross-field rules: a config that passes can be served.

use super::{database_kind, invalid, Config, ConfigError, EmailBackend, SmsBackend};
use crate::email::Email;
use crate::rate_limit::{RateClass, RateLimit};

impl Config {
    /// Config honesty: a warning for each key regstack 0.9.3 accepts that is set here but does
    /// nothing yet, naming the key, so an operator never believes a setting took effect when it
    /// did not. Both runtimes log these at start-up.
    pub fn inert_settings(&self) -> Vec<String> {
        let defaults = Config::default();
        let pages_off = "it is shown on the pages, and enable_ui_router is off";
        let ui_off = !self.enable_ui_router;
        let checks: [(&str, bool, &str); 9] = [
            (
                "[oauth]",
                !self.enable_oauth && self.oauth != defaults.oauth,
                "enable_oauth is off",
            ),
            (
                "oauth.google_client_id",
                self.enable_oauth && self.oauth.google_client_id.is_some() != self.oauth.google_client_secret.is_some(),
                "Google sign-in needs both google_client_id and google_client_secret",
            ),
            (
                "extra_static_dirs",
                ui_off && !self.extra_static_dirs.is_empty(),
                pages_off,
            ),
            (
                "static_prefix",
                ui_off && self.static_prefix != defaults.static_prefix,
                pages_off,
            ),
            ("brand_logo_url", ui_off && self.brand_logo_url.is_some(), pages_off),
            ("brand_tagline", ui_off && self.brand_tagline.is_some(), pages_off),
            ("theme_css_url", ui_off && self.theme_css_url.is_some(), pages_off),
            (
                "admin_contact_email",
                ui_off && self.admin_contact_email.is_some(),
                pages_off,
            ),
            (
                "admin_contact_url",
                ui_off && self.admin_contact_url.is_some(),
                pages_off,
            ),
        ];
        checks
            .into_iter()
            .filter(|(_, set, _)| *set)
            .map(|(key, _, why)| format!("`{key}` is set but has no effect yet: {why}"))
            .collect()
    }
}

impl Config {
    /// Checks every bound of docs/wire.md, "Config" and the cross-field rules.
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
        if !crate::records::valid_role(&self.default_user_role) {
            return Err(invalid(
                "default_user_role",
                format!(
                    "must match {} (letters, digits, `_ . : -`, at most 64)",
                    crate::records::ROLE_PATTERN
                ),
            ));
        }
        if !self.jwt_secret.is_empty() && self.jwt_secret.chars().count() < 32 {
            return Err(invalid(
                "jwt_secret",
                "must be at least 32 characters; generate one with `openssl rand -base64 48`",
            ));
        }
        range("webhook_queue_limit", self.webhook_queue_limit as i64, 1, 1_000_000)?;
        if let Some(url) = &self.webhook_url {
            if !crate::webhook::allowed_url(url) {
                return Err(invalid(
                    "webhook_url",
                    "must be an https:// URL (http:// only to localhost or a loopback address)",
                ));
            }
            match &self.webhook_secret {
                Some(s) if s.chars().count() >= 32 => {}
                _ => {
                    return Err(invalid(
                        "webhook_secret",
                        "must be set, at least 32 characters, when webhook_url is; generate one with `openssl rand -base64 48`",
                    ))
                }
            }
        }
        for (field, secret) in [
            ("jwt_secret", Some(&self.jwt_secret)),
            ("relay_secret", self.relay_secret.as_ref()),
            ("origin_auth_secret", self.origin_auth_secret.as_ref()),
            ("webhook_secret", self.webhook_secret.as_ref()),
        ] {
            if secret.is_some_and(|s| is_placeholder_secret(s)) {
                return Err(invalid(
                    field,
                    "is a placeholder from an example, not a secret; generate one with `openssl rand -base64 48`",
                ));
            }
        }
        range("jwt_ttl_seconds", self.jwt_ttl_seconds, 60, 2_592_000)?;
        if self.access_token_expire_hours != 0 {
            range("access_token_expire_hours", self.access_token_expire_hours, 1, 720)?;
            if self.jwt_ttl_seconds != Config::default().jwt_ttl_seconds {
                return Err(invalid(
                    "access_token_expire_hours",
                    "set the session lifetime once: access_token_expire_hours or jwt_ttl_seconds, not both",
                ));
            }
        }
        range("refresh_token_expire_days", self.refresh_token_expire_days, 1, 365)?;
        self.validate_turnstile()?;
        self.validate_web_push()?;
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
        let per_route = RateClass::ALL
            .into_iter()
            .map(|class| (class.config_field(), self.rate_limit(class)));
        for (field, spec) in per_route.chain([
            ("sms_code_rate_limit", self.sms_code_rate_limit.as_deref()),
            ("email_rate_limit", self.email_rate_limit.as_deref()),
        ]) {
            if let Some(spec) = spec.filter(|s| !s.trim().is_empty()) {
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
        if self.email.backend == EmailBackend::Smtp && self.email.smtp_host.as_deref().unwrap_or("").is_empty() {
            return Err(invalid("email.smtp_host", "is required when email.backend = \"smtp\""));
        }
        let plain_smtp =
            self.email.backend == EmailBackend::Smtp && !self.email.smtp_starttls && self.email.smtp_port != 465;
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
        if self.email.backend == EmailBackend::Relay || self.sms.backend == SmsBackend::Relay {
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
        if self.sms.backend == SmsBackend::Twilio
            && (self.sms.twilio_account_sid.is_none() || self.sms.twilio_auth_token.is_none())
        {
            return Err(invalid(
                "sms.twilio_account_sid",
                "twilio needs twilio_account_sid and twilio_auth_token",
            ));
        }
        if self.sms.backend == SmsBackend::Twilio && self.sms.from_number.is_none() {
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
        self.validate_pages()?;
        range(
            "password_hash_memory_kib",
            self.password_hash_memory_kib as i64,
            8 * self.password_hash_parallelism.max(1) as i64,
            4 * 1024 * 1024,
        )?;
        range(
            "password_hash_max_memory_kib",
            self.password_hash_max_memory_kib as i64,
            self.password_hash_memory_kib as i64,
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
        range(
            "oauth.http_timeout_seconds",
            self.oauth.http_timeout_seconds as i64,
            1,
            120,
        )?;
        self.validate_oauth()?;
        Ok(())
    }

    /// With `enable_ui_router`: the pages, their files and the API under three different
    /// prefixes (the same paths under two would collide), and the stylesheet and logo either
    /// on this origin (a path) or at an origin the pages' policy can name.
    fn validate_pages(&self) -> Result<(), ConfigError> {
        if !self.enable_ui_router {
            return Ok(());
        }
        for (a, b) in [
            ("ui_prefix", "api_prefix"),
            ("static_prefix", "api_prefix"),
            ("static_prefix", "ui_prefix"),
        ] {
            let value = |f: &str| match f {
                "ui_prefix" => &self.ui_prefix,
                "static_prefix" => &self.static_prefix,
                _ => &self.api_prefix,
            };
            if value(a) == value(b) {
                return Err(invalid(a, format!("must differ from {b} when enable_ui_router is on")));
            }
        }
        for (field, url) in [
            ("theme_css_url", &self.theme_css_url),
            ("brand_logo_url", &self.brand_logo_url),
        ] {
            let Some(url) = url.as_deref() else { continue };
            let local = url.starts_with('/') && !url.starts_with("//") && !url.contains('\\');
            if !local && crate::pages::origin(url).is_none() {
                return Err(invalid(
                    field,
                    "must be a path on this site (/…) or an http(s) URL with a plain host name",
                ));
            }
        }
        Ok(())
    }

    /// With `turnstile_enabled`, both keys are set and real, and siteverify is reached over
    /// https (or http to this machine, for a stand-in).
    fn validate_turnstile(&self) -> Result<(), ConfigError> {
        if !self.turnstile_enabled {
            return Ok(());
        }
        let set = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
        if !set(&self.turnstile_site_key) {
            return Err(invalid(
                "turnstile_site_key",
                "must be set when turnstile_enabled is (the widget's site key from the Cloudflare dashboard)",
            ));
        }
        match self.turnstile_secret_key.as_deref() {
            // Seed 004's example value is a key's prefix, never a key.
            Some(s) if is_placeholder_secret(s) || s.trim() == "0x4AAAAAAA" => {
                return Err(invalid(
                    "turnstile_secret_key",
                    "is a placeholder from an example, not the secret key from the Cloudflare dashboard",
                ))
            }
            Some(s) if !s.trim().is_empty() => {}
            _ => {
                return Err(invalid(
                    "turnstile_secret_key",
                    "must be set when turnstile_enabled is (the secret key from the Cloudflare dashboard)",
                ))
            }
        }
        if !crate::webhook::allowed_url(&self.turnstile_verify_url) {
            return Err(invalid(
                "turnstile_verify_url",
                "must be an https:// URL (http:// only to localhost or a loopback address)",
            ));
        }
        if !(1..=60).contains(&self.turnstile_timeout_seconds) {
            return Err(invalid("turnstile_timeout_seconds", "must be between 1 and 60"));
        }
        Ok(())
    }

    /// With `enable_web_push`: both VAPID keys or neither (a pair is made then), in seed
    /// 004's formats and belonging together; a subject a push service can reach; push
    /// services as origins.
    fn validate_web_push(&self) -> Result<(), ConfigError> {
        if !self.enable_web_push {
            return Ok(());
        }
        let set = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
        match (set(&self.vapid_public_key), set(&self.vapid_private_key)) {
            (true, true) => {
                let public = self.vapid_public_key.as_deref().unwrap_or_default();
                let private = self.vapid_private_key.as_deref().unwrap_or_default();
                if let Err(message) = crate::push::VapidKeys::from_base64(public, private) {
                    let field = if message.starts_with("vapid_public_key") {
                        "vapid_public_key"
                    } else {
                        "vapid_private_key"
                    };
                    return Err(invalid(
                        field,
                        format!("{message}; `regstack vapid generate` prints a pair"),
                    ));
                }
            }
            (false, false) => {}
            (public, _) => {
                let (field, other) = if public {
                    ("vapid_private_key", "vapid_public_key")
                } else {
                    ("vapid_public_key", "vapid_private_key")
                };
                return Err(invalid(
                    field,
                    format!("must be set with {other} (set both, or neither to generate a pair per process)"),
                ));
            }
        }
        let subject = self.vapid_subject.trim();
        let reachable = subject.strip_prefix("mailto:").is_some_and(|a| a.contains('@'))
            || subject.strip_prefix("https://").is_some_and(|h| !h.is_empty());
        if !reachable || subject.chars().any(char::is_whitespace) {
            return Err(invalid(
                "vapid_subject",
                "must be a mailto: address or an https:// URL (a push service contacts you there)",
            ));
        }
        if let Some(bad) = self
            .push_service_origins
            .iter()
            .find(|s| !crate::push::valid_service(s))
        {
            return Err(invalid(
                "push_service_origins",
                format!("{bad:?} is not an origin: https://host[:port], https://*.domain, or http:// on loopback"),
            ));
        }
        if !(1..=100).contains(&self.push_subscription_limit) {
            return Err(invalid("push_subscription_limit", "must be between 1 and 100"));
        }
        Ok(())
    }

    /// Provider URLs are https (or http to this machine), names fit the `provider` column and
    /// do not shadow Google, and a provider has what it needs to sign anyone in. Only with
    /// `enable_oauth`: leftovers of a switched-off set-up must not stop a server.
    fn validate_oauth(&self) -> Result<(), ConfigError> {
        let o = &self.oauth;
        if !self.enable_oauth {
            return Ok(());
        }
        // The callback must be served on `base_url`'s origin: the browser brings the cookie
        // that binds a round trip only there (docs/oauth.md, "The round trip").
        let uris = std::iter::once(("oauth.google_redirect_uri".to_string(), &o.google_redirect_uri)).chain(
            o.providers
                .iter()
                .map(|(name, p)| (format!("oauth.providers.{name}.redirect_uri"), &p.redirect_uri)),
        );
        for (field, uri) in uris {
            let Some(uri) = uri.as_deref() else { continue };
            let absolute = uri.starts_with("https://") || uri.starts_with("http://");
            if !absolute || crate::oauth::same_origin_redirect(self, Some(uri)).is_none() {
                return Err(invalid(
                    &field,
                    format!(
                        "must be an http(s) URL on base_url's origin ({}), got {uri:?}",
                        self.base_url
                    ),
                ));
            }
        }
        for (field, url) in [
            ("oauth.google_authorization_endpoint", &o.google_authorization_endpoint),
            ("oauth.google_token_endpoint", &o.google_token_endpoint),
            ("oauth.google_jwks_uri", &o.google_jwks_uri),
            ("oauth.google_issuer", &o.google_issuer),
        ] {
            if !secure_url(url) {
                return Err(invalid(field, "must be an https URL (or http to localhost)"));
            }
        }
        for (name, p) in &o.providers {
            let field = |f: &str| format!("oauth.providers.{name}.{f}");
            if !valid_provider_name(name) || name == "google" {
                return Err(invalid(
                    &format!("oauth.providers.{name}"),
                    "a provider's name is 1 to 32 of a-z, 0-9, _ and -, starting with a letter or digit, \
                     without `__`, and not \"google\"",
                ));
            }
            if !secure_url(&p.issuer) {
                return Err(invalid(&field("issuer"), "must be an https URL (or http to localhost)"));
            }
            if p.client_id.trim().is_empty() {
                return Err(invalid(&field("client_id"), "is required"));
            }
            if p.client_secret.as_deref().is_none_or(|s| s.trim().is_empty()) {
                return Err(invalid(
                    &field("client_secret"),
                    format!(
                        "is required (put it in regstack.secrets.env as REGSTACK_OAUTH__PROVIDERS__{}__CLIENT_SECRET; \
                         a name with `-` cannot be exported from a POSIX shell, but the file takes it)",
                        name.to_ascii_uppercase()
                    ),
                ));
            }
            if !p.scopes.iter().any(|s| s == "openid") {
                return Err(invalid(&field("scopes"), "must include \"openid\""));
            }
        }
        Ok(())
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

/// Whether `url` is https, or http to this machine.
pub(crate) fn secure_url(url: &str) -> bool {
    match url.split_once("://") {
        Some(("https", rest)) => !rest.is_empty(),
        Some(("http", rest)) => is_loopback_authority(rest),
        _ => false,
    }
}

/// Whether `name` can name a provider: it goes in URLs, in a 32-character column, and in
/// environment names (so no `__`, the nesting separator).
pub(crate) fn valid_provider_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 32
        && !name.contains("__")
        && !name.ends_with('_')
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// Whether the host of `authority_and_path` (what follows `http://`) is `localhost` or a
/// loopback address.
pub(crate) fn is_loopback_authority(authority_and_path: &str) -> bool {
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
