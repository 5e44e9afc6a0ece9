//! The links emails carry, and their redacted form for hooks and logs.

use super::Config;

impl Config {
    /// `base_url` without a trailing slash.
    pub fn base_url_trimmed(&self) -> &str {
        self.base_url.trim_end_matches('/')
    }

    /// The path before `/verify`, `/reset-password` and `/confirm-email-change` in emails.
    pub fn email_link_prefix(&self) -> &str {
        match &self.email_link_prefix {
            Some(p) => p.as_str(),
            // A prefix of "/" adds nothing: the links are `/verify`, not `//verify`.
            None if self.enable_ui_router => self.ui_prefix.trim_end_matches('/'),
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
