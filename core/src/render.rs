//! Rendering emails and SMS texts with minijinja.
//!
//! The bundled templates are compiled into the binary; a host's override templates (read by
//! the runtime from `extra_template_dirs`) are searched first, by the same file name.

use std::collections::HashMap;

use minijinja::{context, Environment};

use crate::config::Config;

/// The bundled templates, by name: emails and SMS texts under `email/`, the pages as
/// regstack 0.9.3 named them (`base.html`, `auth/*.html`), so its overrides still apply.
pub const BUNDLED: &[(&str, &str)] = &[
    ("base.html", include_str!("../../templates/pages/base.html")),
    (
        "auth/_token_handoff.html",
        include_str!("../../templates/pages/auth/_token_handoff.html"),
    ),
    (
        "auth/_turnstile.html",
        include_str!("../../templates/pages/auth/_turnstile.html"),
    ),
    ("auth/login.html", include_str!("../../templates/pages/auth/login.html")),
    (
        "auth/register.html",
        include_str!("../../templates/pages/auth/register.html"),
    ),
    (
        "auth/verify.html",
        include_str!("../../templates/pages/auth/verify.html"),
    ),
    (
        "auth/forgot.html",
        include_str!("../../templates/pages/auth/forgot.html"),
    ),
    ("auth/reset.html", include_str!("../../templates/pages/auth/reset.html")),
    (
        "auth/email_change_confirm.html",
        include_str!("../../templates/pages/auth/email_change_confirm.html"),
    ),
    ("auth/me.html", include_str!("../../templates/pages/auth/me.html")),
    (
        "auth/mfa_confirm.html",
        include_str!("../../templates/pages/auth/mfa_confirm.html"),
    ),
    (
        "auth/oauth_complete.html",
        include_str!("../../templates/pages/auth/oauth_complete.html"),
    ),
    (
        "email/verification.subject.txt",
        include_str!("../../templates/email/verification.subject.txt"),
    ),
    (
        "email/verification.txt",
        include_str!("../../templates/email/verification.txt"),
    ),
    (
        "email/verification.html",
        include_str!("../../templates/email/verification.html"),
    ),
    (
        "email/password_reset.subject.txt",
        include_str!("../../templates/email/password_reset.subject.txt"),
    ),
    (
        "email/password_reset.txt",
        include_str!("../../templates/email/password_reset.txt"),
    ),
    (
        "email/password_reset.html",
        include_str!("../../templates/email/password_reset.html"),
    ),
    (
        "email/email_change.subject.txt",
        include_str!("../../templates/email/email_change.subject.txt"),
    ),
    (
        "email/email_change.txt",
        include_str!("../../templates/email/email_change.txt"),
    ),
    (
        "email/email_change.html",
        include_str!("../../templates/email/email_change.html"),
    ),
    (
        "email/email_changed_notice.subject.txt",
        include_str!("../../templates/email/email_changed_notice.subject.txt"),
    ),
    (
        "email/email_changed_notice.txt",
        include_str!("../../templates/email/email_changed_notice.txt"),
    ),
    (
        "email/email_changed_notice.html",
        include_str!("../../templates/email/email_changed_notice.html"),
    ),
    (
        "email/sms_2fa_changed_notice.subject.txt",
        include_str!("../../templates/email/sms_2fa_changed_notice.subject.txt"),
    ),
    (
        "email/sms_2fa_changed_notice.txt",
        include_str!("../../templates/email/sms_2fa_changed_notice.txt"),
    ),
    (
        "email/sms_2fa_changed_notice.html",
        include_str!("../../templates/email/sms_2fa_changed_notice.html"),
    ),
    (
        "email/sms_login_mfa.txt",
        include_str!("../../templates/email/sms_login_mfa.txt"),
    ),
    (
        "email/sms_phone_setup.txt",
        include_str!("../../templates/email/sms_phone_setup.txt"),
    ),
];

/// The three emails regstack sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmailKind {
    /// Confirm a new account.
    Verification,
    /// Reset a forgotten password.
    PasswordReset,
    /// Confirm a new address (sent to the new address).
    EmailChange,
}

impl EmailKind {
    fn stem(self) -> &'static str {
        match self {
            EmailKind::Verification => "verification",
            EmailKind::PasswordReset => "password_reset",
            EmailKind::EmailChange => "email_change",
        }
    }
}

/// The security notices sent to an account's own address after a change the owner should
/// know about (they carry no link and no secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// Sent to the previous address after an email change; names the new one.
    EmailChanged {
        /// The address the account moved to.
        new_email: String,
    },
    /// The SMS second factor was turned off.
    SecondFactorDisabled,
    /// Sign-in codes now go to another number; only its last two digits are shown.
    SecondFactorMoved {
        /// The new number.
        phone: String,
    },
}

/// A name as it may appear in a message: control characters (CR, LF, tabs, escapes) are
/// dropped, so a `full_name` cannot add header lines or forge a layout.
pub fn display_name(full_name: Option<&str>) -> Option<String> {
    full_name
        .map(|n| n.chars().filter(|c| !c.is_control()).collect::<String>())
        .filter(|n| !n.trim().is_empty())
}

/// A template failed to render (a broken host override, usually).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("template {name} failed: {message}")]
pub struct RenderError {
    /// The template.
    pub name: String,
    /// minijinja's explanation.
    pub message: String,
}

/// A rendered email body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderedEmail {
    /// Subject line.
    pub subject: String,
    /// Plain-text part.
    pub text: String,
    /// HTML part.
    pub html: String,
}

/// Renders the bundled templates, host overrides first.
pub struct Renderer {
    env: Environment<'static>,
    static_files: std::sync::Arc<crate::pages::StaticFiles>,
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Renderer")
    }
}

impl Renderer {
    /// A renderer whose `overrides` (name → source, e.g. `email/verification.txt`) win over the
    /// bundled files.
    pub fn new(overrides: HashMap<String, String>) -> Self {
        let mut env = Environment::new();
        let bundled: HashMap<&'static str, &'static str> = BUNDLED.iter().copied().collect();
        env.set_loader(move |name| {
            Ok(overrides
                .get(name)
                .cloned()
                .or_else(|| bundled.get(name).map(|s| s.to_string())))
        });
        Self {
            env,
            static_files: std::sync::Arc::new(crate::pages::StaticFiles::bundled()),
        }
    }

    /// The same renderer serving, and linking the pages to, `files` (a host's
    /// `extra_static_dirs` over the bundled files).
    pub fn with_static_files(mut self, files: crate::pages::StaticFiles) -> Self {
        self.static_files = std::sync::Arc::new(files);
        self
    }

    /// The files under `static_prefix`.
    pub fn static_files(&self) -> &std::sync::Arc<crate::pages::StaticFiles> {
        &self.static_files
    }

    fn render(&self, name: &str, ctx: minijinja::Value) -> Result<String, RenderError> {
        let err = |e: minijinja::Error| RenderError {
            name: name.to_string(),
            message: e.to_string(),
        };
        self.env.get_template(name).map_err(err)?.render(ctx).map_err(err)
    }

    /// Renders `page` for `config`, with the OAuth providers on offer (name, display name).
    pub fn page(
        &self,
        page: crate::pages::Page,
        config: &Config,
        providers: &[(String, String)],
    ) -> Result<String, RenderError> {
        let (_, template, name, title) = page.row();
        let static_prefix = config.static_prefix.clone();
        let files = self.static_files.clone();
        let asset = minijinja::Value::from_function(move |path: String| files.url(&static_prefix, &path));
        let api_prefix = config.api_prefix.trim_end_matches('/');
        let ui_prefix = config.ui_prefix.trim_end_matches('/');
        // A sign-in through a provider comes back to this UI's account page.
        let after: String = form_urlencoded::byte_serialize(format!("{ui_prefix}/me").as_bytes()).collect();
        let oauth_providers: Vec<minijinja::Value> = providers
            .iter()
            .map(|(name, display)| {
                let start_url = format!("{api_prefix}/oauth/{name}/start?redirect_to={after}");
                context! { name => name, display_name => display, start_url => start_url }
            })
            .collect();
        let turnstile = |g: crate::turnstile::Guarded| g.required(config);
        // Turnstile's script loads only on a page that shows its widget, never beside a
        // stored session or a one-time token it has no business near.
        let turnstile_widget = match page {
            crate::pages::Page::Login => turnstile(crate::turnstile::Guarded::Login),
            crate::pages::Page::Register => turnstile(crate::turnstile::Guarded::Register),
            crate::pages::Page::Me => turnstile(crate::turnstile::Guarded::ChangePassword),
            _ => false,
        };
        let ctx = context! {
            page => name,
            title => title,
            app_name => config.app_name,
            brand_logo_url => config.brand_logo_url,
            brand_tagline => config.brand_tagline,
            api_prefix => api_prefix,
            ui_prefix => ui_prefix,
            static_prefix => config.static_prefix.trim_end_matches('/'),
            theme_css_url => config.theme_css_url,
            allow_registration => config.allow_registration,
            enable_password_reset => config.enable_password_reset,
            enable_account_deletion => config.enable_account_deletion,
            enable_sms_2fa => config.enable_sms_2fa,
            enable_oauth => config.enable_oauth && !providers.is_empty(),
            oauth_providers => oauth_providers,
            admin_contact_email => config.admin_contact_email,
            admin_contact_url => config.admin_contact_url,
            turnstile_site_key => config.turnstile_enabled.then(|| config.turnstile_site_key.clone()).flatten(),
            turnstile_on_login => turnstile(crate::turnstile::Guarded::Login),
            turnstile_on_register => turnstile(crate::turnstile::Guarded::Register),
            turnstile_on_password_change => turnstile(crate::turnstile::Guarded::ChangePassword),
            turnstile_widget => turnstile_widget,
            asset => asset,
        };
        self.render(template, ctx)
    }

    /// Renders every page once (host overrides included), so a broken template stops
    /// start-up with its name and line instead of failing a request.
    pub fn check_pages(&self, config: &Config, providers: &[(String, String)]) -> Result<(), RenderError> {
        for page in crate::pages::Page::ALL {
            self.page(*page, config, providers)?;
        }
        Ok(())
    }

    /// Renders an SMS text with its code.
    pub fn sms(&self, kind: crate::records::CodeKind, config: &Config, code: &str) -> Result<String, RenderError> {
        let name = match kind {
            crate::records::CodeKind::LoginMfa => "email/sms_login_mfa.txt",
            crate::records::CodeKind::PhoneSetup => "email/sms_phone_setup.txt",
        };
        let ctx = context! { app_name => config.app_name, code => code, minutes => (config.sms_code_ttl_seconds / 60).max(1) };
        Ok(self.render(name, ctx)?.trim().to_string())
    }

    /// Renders one email.
    pub fn email(
        &self,
        kind: EmailKind,
        config: &Config,
        full_name: Option<&str>,
        url: &str,
        new_email: Option<&str>,
    ) -> Result<RenderedEmail, RenderError> {
        let ttl = match kind {
            EmailKind::Verification => config.verification_token_ttl_seconds,
            EmailKind::PasswordReset => config.password_reset_token_ttl_seconds,
            EmailKind::EmailChange => config.email_change_token_ttl_seconds,
        };
        let ctx = context! {
            app_name => config.app_name,
            full_name => display_name(full_name),
            url => url,
            new_email => new_email,
            hours => (ttl / 3600).max(1),
            minutes => (ttl / 60).max(1),
        };
        self.email_from_stem(kind.stem(), ctx)
    }

    /// Renders a security notice.
    pub fn notice(
        &self,
        notice: &Notice,
        config: &Config,
        full_name: Option<&str>,
    ) -> Result<RenderedEmail, RenderError> {
        let (stem, change, new_email, phone_tail) = match notice {
            Notice::EmailChanged { new_email } => ("email_changed_notice", "email", Some(new_email.as_str()), None),
            Notice::SecondFactorDisabled => ("sms_2fa_changed_notice", "disabled", None, None),
            Notice::SecondFactorMoved { phone } => (
                "sms_2fa_changed_notice",
                "moved",
                None,
                Some(
                    phone
                        .chars()
                        .rev()
                        .take(2)
                        .collect::<Vec<_>>()
                        .into_iter()
                        .rev()
                        .collect::<String>(),
                ),
            ),
        };
        let ctx = context! {
            app_name => config.app_name,
            full_name => display_name(full_name),
            change => change,
            new_email => new_email,
            phone_tail => phone_tail,
        };
        self.email_from_stem(stem, ctx)
    }

    fn email_from_stem(&self, stem: &str, ctx: minijinja::Value) -> Result<RenderedEmail, RenderError> {
        Ok(RenderedEmail {
            subject: self
                .render(&format!("email/{stem}.subject.txt"), ctx.clone())?
                .trim()
                .to_string(),
            text: self.render(&format!("email/{stem}.txt"), ctx.clone())?,
            html: self.render(&format!("email/{stem}.html"), ctx)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[regstack_macros::dual_test]
    fn bundled_emails_carry_the_link_alone_on_a_line() {
        let r = Renderer::new(HashMap::new());
        let c = Config {
            app_name: "Demo".into(),
            ..Config::default()
        };
        let url = "http://x/verify?token=abc";
        let m = r
            .email(EmailKind::Verification, &c, Some("Ann <b>"), url, None)
            .unwrap();
        assert_eq!(m.subject, "Confirm your Demo account");
        assert!(m.text.lines().any(|l| l == format!("  {url}")));
        assert!(m.text.contains("valid for 24 hours"));
        assert!(m.html.contains("Ann &lt;b&gt;"));
        let m = r.email(EmailKind::PasswordReset, &c, None, url, None).unwrap();
        assert_eq!(m.subject, "Reset your Demo password");
        assert!(m.text.contains("30 minutes"));
        let m = r
            .email(EmailKind::EmailChange, &c, None, url, Some("n@example.com"))
            .unwrap();
        assert_eq!(m.subject, "Confirm your new Demo email address");
        assert!(m.text.contains("n@example.com"));
    }

    #[regstack_macros::dual_test]
    fn an_override_replaces_one_file() {
        let overrides = HashMap::from([(
            "email/verification.subject.txt".to_string(),
            "Welcome to {{ app_name }}!".to_string(),
        )]);
        let r = Renderer::new(overrides);
        let m = r
            .email(EmailKind::Verification, &Config::default(), None, "u", None)
            .unwrap();
        assert_eq!(m.subject, "Welcome to RegStack!");
        assert!(m.text.contains("  u"));
        let broken = Renderer::new(HashMap::from([(
            "email/verification.txt".to_string(),
            "{{ oops(".to_string(),
        )]));
        assert!(broken
            .email(EmailKind::Verification, &Config::default(), None, "u", None)
            .is_err());
    }
}
