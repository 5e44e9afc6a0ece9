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
    OpenApi,
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
        Endpoint::OpenApi,
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
            Endpoint::OpenApi => (Method::GET, "/openapi.json", Public, None, Core),
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

/// The type of one request field, as the handler validates it (docs/wire.md, "Request
/// bodies").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    /// A string of `min..=max` characters (`max` unbounded when `None`).
    Text {
        /// Fewest characters.
        min: usize,
        /// Most characters.
        max: Option<usize>,
    },
    /// A string or `null`, at most `max` characters; `null` clears the value.
    NullableText {
        /// Most characters.
        max: usize,
    },
    /// An email address, validated and lower-cased.
    Email,
}

/// One field of a request body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    /// The JSON key.
    pub name: &'static str,
    /// Its type.
    pub ty: FieldType,
    /// Whether leaving it out is a 422 `missing`.
    pub required: bool,
}

/// What a route answers on success: a status and the shape of its body (a component of the
/// OpenAPI document).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Success {
    /// The status.
    pub status: u16,
    /// The body's schemas (more than one: any of them).
    pub bodies: &'static [&'static str],
}

/// The typed contract of an endpoint beyond its row: request body, success answer and the
/// route's own error statuses (401/403/422/429/503 follow from the row). The OpenAPI document
/// is built from this and the row, and a test holds the handlers to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Contract {
    /// One line for the document.
    pub summary: &'static str,
    /// The JSON body's fields; `None` when the route reads no JSON body.
    pub body: Option<&'static [Field]>,
    /// The success answer.
    pub ok: Success,
    /// Statuses this route answers with `{"detail": ...}` for its own reasons.
    pub errors: &'static [u16],
}

const fn text(name: &'static str, min: usize, max: Option<usize>) -> Field {
    Field {
        name,
        ty: FieldType::Text { min, max },
        required: true,
    }
}

const fn email(name: &'static str) -> Field {
    Field {
        name,
        ty: FieldType::Email,
        required: true,
    }
}

const FULL_NAME: Field = Field {
    name: "full_name",
    ty: FieldType::NullableText { max: 200 },
    required: false,
};
const NEW_PASSWORD: Field = text("new_password", 8, Some(128));
const CURRENT_PASSWORD: Field = text("current_password", 0, None);
const CODE: Field = text("code", 4, Some(10));

const fn ok(status: u16, bodies: &'static [&'static str]) -> Success {
    Success { status, bodies }
}

impl Endpoint {
    /// This endpoint's typed contract (see [`Contract`]).
    pub fn contract(self) -> Contract {
        let c = |summary, body, ok, errors| Contract {
            summary,
            body,
            ok,
            errors,
        };
        const USER: &[&str] = &["UserPublic"];
        const MESSAGE: &[&str] = &["Message"];
        const BODY_1: &[Field] = &[email("email"), text("password", 8, Some(128)), FULL_NAME];
        const BODY_2: &[Field] = &[text("token", 0, None)];
        const BODY_3: &[Field] = &[email("email")];
        const BODY_4: &[Field] = &[email("email"), text("password", 8, Some(128))];
        const BODY_5: &[Field] = &[FULL_NAME];
        const BODY_6: &[Field] = &[CURRENT_PASSWORD, NEW_PASSWORD];
        const BODY_7: &[Field] = &[email("new_email"), CURRENT_PASSWORD];
        const BODY_8: &[Field] = &[text("token", 0, None)];
        const BODY_9: &[Field] = &[CURRENT_PASSWORD];
        const BODY_10: &[Field] = &[email("email")];
        const BODY_11: &[Field] = &[text("token", 0, None), NEW_PASSWORD];
        const BODY_12: &[Field] = &[text("mfa_pending_token", 0, None), CODE];
        const BODY_13: &[Field] = &[text("phone_number", 4, Some(20)), CURRENT_PASSWORD];
        const BODY_14: &[Field] = &[text("pending_token", 0, None), CODE];
        const BODY_15: &[Field] = &[CURRENT_PASSWORD];
        match self {
            Endpoint::Register => c(
                "Register an account (a pending registration when email verification is on)",
                Some(BODY_1),
                ok(201, &["UserPublic", "PendingRegistration"]),
                &[403, 409],
            ),
            Endpoint::Verify => c(
                "Confirm an email address with the emailed token",
                Some(BODY_2),
                ok(200, USER),
                &[400],
            ),
            Endpoint::ResendVerification => c(
                "Send the verification email again (same answer for every address)",
                Some(BODY_3),
                ok(202, MESSAGE),
                &[],
            ),
            Endpoint::Login => c(
                "Sign in with email and password",
                Some(BODY_4),
                ok(200, &["Token", "MfaRequired"]),
                &[401, 403],
            ),
            Endpoint::Logout => c("Revoke the caller's session", None, ok(200, MESSAGE), &[]),
            Endpoint::GetMe => c("The signed-in user", None, ok(200, USER), &[]),
            Endpoint::PatchMe => c(
                "Change the profile (an absent field stays, null clears)",
                Some(BODY_5),
                ok(200, USER),
                &[],
            ),
            Endpoint::ChangePassword => c(
                "Change the password and sign out every session",
                Some(BODY_6),
                ok(200, MESSAGE),
                &[400],
            ),
            Endpoint::ChangeEmail => c(
                "Email a confirmation link to a new address",
                Some(BODY_7),
                ok(202, MESSAGE),
                &[400],
            ),
            Endpoint::ConfirmEmailChange => c(
                "Apply an email change with the emailed token",
                Some(BODY_8),
                ok(200, USER),
                &[400, 409],
            ),
            Endpoint::DeleteAccount => c(
                "Delete the caller's account",
                Some(BODY_9),
                ok(200, MESSAGE),
                &[400, 404],
            ),
            Endpoint::ForgotPassword => c(
                "Email a password-reset link (same answer for every address)",
                Some(BODY_10),
                ok(202, MESSAGE),
                &[404],
            ),
            Endpoint::ResetPassword => c(
                "Set a new password with the emailed token",
                Some(BODY_11),
                ok(200, MESSAGE),
                &[400, 404],
            ),
            Endpoint::LoginMfaConfirm => c(
                "Finish an SMS sign-in with the texted code",
                Some(BODY_12),
                ok(200, &["Token"]),
                &[400],
            ),
            Endpoint::PhoneStart => c(
                "Text a code to a new number for the SMS second factor",
                Some(BODY_13),
                ok(202, &["PhoneCodeSent"]),
                &[400],
            ),
            Endpoint::PhoneConfirm => c(
                "Confirm the new number with the texted code",
                Some(BODY_14),
                ok(200, USER),
                &[400],
            ),
            Endpoint::PhoneDisable => c(
                "Turn the SMS second factor off",
                Some(BODY_15),
                ok(200, MESSAGE),
                &[400],
            ),
            Endpoint::Relay => c(
                "Send a message an edge worker rendered (HMAC-signed; see docs/wire.md, \"Relay\")",
                None,
                ok(202, MESSAGE),
                &[401, 413],
            ),
            Endpoint::OpenApi => c("This document", None, ok(200, &["OpenApi"]), &[]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[regstack_macros::dual_test]
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
