//! The routing table: every endpoint, declared once, as data.
//!
//! `crate::http` turns this table into the axum Router that both runtimes serve. Adding an
//! endpoint means one variant here, one row in [`Endpoint::route`] and one handler arm in
//! `http.rs`; the exhaustive match there refuses to compile until all three exist.

use http::Method;

use crate::config::{Config, EmailBackend, SmsBackend};
pub use crate::rate_limit::RateClass;

/// Who may call an endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone.
    Public,
    /// A valid session bearer token.
    Bearer,
    /// A valid session of a superuser.
    Admin,
}

/// The feature group an endpoint belongs to; a disabled group is not mounted (404).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    /// Always mounted.
    Core,
    /// `enable_password_reset`.
    PasswordReset,
    /// `enable_sms_2fa`.
    Sms,
    /// `relay_secret` set on an instance that sends for itself (not one that relays).
    Relay,
}

impl Group {
    /// Whether this group is mounted under `config`.
    pub fn enabled(self, config: &Config) -> bool {
        match self {
            Group::Core => true,
            Group::PasswordReset => config.enable_password_reset,
            Group::Sms => config.enable_sms_2fa,
            Group::Relay => {
                config.relay_secret.is_some()
                    && config.email.backend != EmailBackend::Relay
                    && config.sms.backend != SmsBackend::Relay
            }
        }
    }
}

/// One row of the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// HTTP method.
    pub method: Method,
    /// Path below `api_prefix`, axum 0.8 syntax.
    pub path: &'static str,
    /// Who may call it; checked before the body is read.
    pub access: Access,
    /// The per-IP limit that applies, if configured.
    pub rate: Option<RateClass>,
    /// When it is mounted.
    pub group: Group,
}

/// Every endpoint of the JSON API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Endpoint {
    Register,
    Verify,
    ResendVerification,
    Login,
    Logout,
    GetMe,
    PatchMe,
    ChangePassword,
    ChangeEmail,
    ConfirmEmailChange,
    DeleteAccount,
    ForgotPassword,
    ResetPassword,
    LoginMfaConfirm,
    PhoneStart,
    PhoneConfirm,
    PhoneDisable,
    Relay,
}

impl Endpoint {
    /// Every endpoint, in table order.
    pub const ALL: &'static [Endpoint] = &[
        Endpoint::Register,
        Endpoint::Verify,
        Endpoint::ResendVerification,
        Endpoint::Login,
        Endpoint::Logout,
        Endpoint::GetMe,
        Endpoint::PatchMe,
        Endpoint::ChangePassword,
        Endpoint::ChangeEmail,
        Endpoint::ConfirmEmailChange,
        Endpoint::DeleteAccount,
        Endpoint::ForgotPassword,
        Endpoint::ResetPassword,
        Endpoint::LoginMfaConfirm,
        Endpoint::PhoneStart,
        Endpoint::PhoneConfirm,
        Endpoint::PhoneDisable,
        Endpoint::Relay,
    ];

    /// This endpoint's row.
    pub fn route(self) -> Route {
        use Access::*;
        use Group::*;
        let (method, path, access, rate, group) = match self {
            Endpoint::Register => (Method::POST, "/register", Public, Some(RateClass::Register), Core),
            Endpoint::Verify => (Method::POST, "/verify", Public, Some(RateClass::Verify), Core),
            Endpoint::ResendVerification => (
                Method::POST,
                "/resend-verification",
                Public,
                Some(RateClass::ResendVerification),
                Core,
            ),
            Endpoint::Login => (Method::POST, "/login", Public, Some(RateClass::Login), Core),
            Endpoint::Logout => (Method::POST, "/logout", Bearer, None, Core),
            Endpoint::GetMe => (Method::GET, "/me", Bearer, None, Core),
            Endpoint::PatchMe => (Method::PATCH, "/me", Bearer, None, Core),
            Endpoint::ChangePassword => (
                Method::POST,
                "/change-password",
                Bearer,
                Some(RateClass::ChangePassword),
                Core,
            ),
            Endpoint::ChangeEmail => (
                Method::POST,
                "/change-email",
                Bearer,
                Some(RateClass::ChangeEmail),
                Core,
            ),
            Endpoint::ConfirmEmailChange => (
                Method::POST,
                "/confirm-email-change",
                Public,
                Some(RateClass::ConfirmEmailChange),
                Core,
            ),
            Endpoint::DeleteAccount => (Method::DELETE, "/account", Bearer, Some(RateClass::DeleteAccount), Core),
            Endpoint::ForgotPassword => (
                Method::POST,
                "/forgot-password",
                Public,
                Some(RateClass::ForgotPassword),
                PasswordReset,
            ),
            Endpoint::ResetPassword => (
                Method::POST,
                "/reset-password",
                Public,
                Some(RateClass::ResetPassword),
                PasswordReset,
            ),
            // Mounted whatever `enable_sms_2fa` says, like the original (docs/wire.md, "Decision 7 (6)").
            Endpoint::LoginMfaConfirm => (
                Method::POST,
                "/login/mfa-confirm",
                Public,
                Some(RateClass::LoginMfaConfirm),
                Core,
            ),
            Endpoint::PhoneStart => (Method::POST, "/phone/start", Bearer, Some(RateClass::PhoneStart), Sms),
            Endpoint::PhoneConfirm => (
                Method::POST,
                "/phone/confirm",
                Public,
                Some(RateClass::PhoneConfirm),
                Sms,
            ),
            Endpoint::PhoneDisable => (Method::DELETE, "/phone", Bearer, Some(RateClass::PhoneDisable), Sms),
            Endpoint::Relay => (Method::POST, "/relay", Public, None, Relay),
        };
        Route {
            method,
            path,
            access,
            rate,
            group,
        }
    }

    /// The endpoints mounted under `config`.
    pub fn mounted(config: &Config) -> impl Iterator<Item = Endpoint> + '_ {
        Self::ALL.iter().copied().filter(|e| e.route().group.enabled(config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn table_is_consistent() {
        let mut seen = std::collections::HashSet::new();
        for e in Endpoint::ALL {
            let r = e.route();
            assert!(r.path.starts_with('/') && !r.path.ends_with('/'));
            assert!(seen.insert((r.method.clone(), r.path)), "{e:?} declared twice");
        }
        let mut c = Config::default();
        assert_eq!(
            Endpoint::mounted(&c).count(),
            Endpoint::ALL.len() - 4,
            "sms routes and the relay endpoint are off by default"
        );
        c.relay_secret = Some("r".repeat(32));
        assert!(Endpoint::mounted(&c).any(|e| e == Endpoint::Relay));
        c.email.backend = EmailBackend::Relay;
        assert!(
            !Endpoint::mounted(&c).any(|e| e == Endpoint::Relay),
            "an instance that relays does not receive"
        );
        c = Config::default();
        c.enable_password_reset = false;
        assert!(Endpoint::mounted(&c).all(|e| e.route().group == Group::Core));
        c.enable_sms_2fa = true;
        assert_eq!(
            Endpoint::mounted(&c).filter(|e| e.route().group == Group::Sms).count(),
            3
        );
        assert_eq!(RateClass::Login.key(), "login");
        c.login_rate_limit = Some("5/minute".into());
        assert_eq!(c.rate_limit(RateClass::Login), Some("5/minute"));
    }
}
