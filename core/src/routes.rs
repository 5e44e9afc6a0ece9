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
    /// `enable_admin_router`.
    Admin,
    /// `enable_oauth` with at least one provider.
    OAuth,
    /// `enable_refresh_tokens`.
    RefreshTokens,
    /// `enable_web_push`.
    WebPush,
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
            Group::Admin => config.enable_admin_router,
            Group::OAuth => config.enable_oauth && config.oauth.has_providers(),
            Group::RefreshTokens => config.enable_refresh_tokens,
            Group::WebPush => config.enable_web_push,
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
    AdminStats,
    AdminListUsers,
    AdminGetUser,
    AdminPatchUser,
    AdminDeleteUser,
    AdminResendVerification,
    AdminPromotePending,
    OAuthProviders,
    OAuthStart,
    OAuthLinkStart,
    OAuthUnlink,
    OAuthCallback,
    OAuthExchange,
    TokenRefresh,
    PushVapidPublicKey,
    PushSubscribe,
    PushSubscriptions,
    PushUnsubscribe,
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
        Endpoint::AdminStats,
        Endpoint::AdminListUsers,
        Endpoint::AdminGetUser,
        Endpoint::AdminPatchUser,
        Endpoint::AdminDeleteUser,
        Endpoint::AdminResendVerification,
        Endpoint::AdminPromotePending,
        Endpoint::OAuthProviders,
        Endpoint::OAuthStart,
        Endpoint::OAuthLinkStart,
        Endpoint::OAuthUnlink,
        Endpoint::OAuthCallback,
        Endpoint::OAuthExchange,
        Endpoint::TokenRefresh,
        Endpoint::PushVapidPublicKey,
        Endpoint::PushSubscribe,
        Endpoint::PushSubscriptions,
        Endpoint::PushUnsubscribe,
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
            Endpoint::AdminStats => (Method::GET, "/admin/stats", Access::Admin, None, Group::Admin),
            Endpoint::AdminListUsers => (Method::GET, "/admin/users", Access::Admin, None, Group::Admin),
            Endpoint::AdminGetUser => (Method::GET, "/admin/users/{user_id}", Access::Admin, None, Group::Admin),
            Endpoint::AdminPatchUser => (
                Method::PATCH,
                "/admin/users/{user_id}",
                Access::Admin,
                None,
                Group::Admin,
            ),
            Endpoint::AdminDeleteUser => (
                Method::DELETE,
                "/admin/users/{user_id}",
                Access::Admin,
                None,
                Group::Admin,
            ),
            Endpoint::AdminResendVerification => (
                Method::POST,
                "/admin/users/{user_id}/resend-verification",
                Access::Admin,
                None,
                Group::Admin,
            ),
            Endpoint::AdminPromotePending => (
                Method::POST,
                "/admin/pending/{email}/promote",
                Access::Admin,
                None,
                Group::Admin,
            ),
            Endpoint::OAuthProviders => (Method::GET, "/oauth/providers", Bearer, None, OAuth),
            Endpoint::OAuthStart => (Method::GET, "/oauth/{provider}/start", Public, None, OAuth),
            Endpoint::OAuthLinkStart => (Method::POST, "/oauth/{provider}/link/start", Bearer, None, OAuth),
            Endpoint::OAuthUnlink => (Method::DELETE, "/oauth/{provider}/link", Bearer, None, OAuth),
            Endpoint::OAuthCallback => (Method::GET, "/oauth/{provider}/callback", Public, None, OAuth),
            Endpoint::OAuthExchange => (
                Method::POST,
                "/oauth/exchange",
                Public,
                Some(RateClass::OAuthExchange),
                OAuth,
            ),
            Endpoint::TokenRefresh => (
                Method::POST,
                "/token/refresh",
                Public,
                Some(RateClass::TokenRefresh),
                RefreshTokens,
            ),
            Endpoint::PushVapidPublicKey => (Method::GET, "/push/vapid-public-key", Public, None, WebPush),
            Endpoint::PushSubscribe => (Method::POST, "/push/subscriptions", Bearer, None, WebPush),
            Endpoint::PushSubscriptions => (Method::GET, "/push/subscriptions", Bearer, None, WebPush),
            Endpoint::PushUnsubscribe => (Method::DELETE, "/push/subscriptions", Bearer, None, WebPush),
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
    /// `true`, `false` (or pydantic's lax spellings of them), or `null` to leave it alone.
    NullableBool,
    /// A role name matching `records::ROLE_PATTERN`, or `null` to leave it alone.
    NullableRole,
}

/// One query parameter: an integer (pydantic's `Query(ge=…, le=…)`), or text when `text`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueryParam {
    /// Its name.
    pub name: &'static str,
    /// A string rather than an integer (the bounds then do not apply).
    pub text: bool,
    /// The value when absent.
    pub default: u64,
    /// Smallest accepted.
    pub min: u64,
    /// Largest accepted (`None`: no bound).
    pub max: Option<u64>,
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
    /// Query parameters (path parameters follow from the path's `{name}` segments).
    pub query: &'static [QueryParam],
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

/// `skip` and `limit` of the admin user list (docs/wire.md, "Admin").
pub const PAGE: &[QueryParam] = &[
    QueryParam {
        name: "skip",
        text: false,
        default: 0,
        min: 0,
        max: None,
    },
    QueryParam {
        name: "limit",
        text: false,
        default: 50,
        min: 1,
        max: Some(crate::flows::admin::PAGE_LIMIT_MAX),
    },
];

/// `redirect_to` of the OAuth start routes (docs/oauth.md, "redirect_to").
pub const REDIRECT_TO: &[QueryParam] = &[QueryParam {
    name: "redirect_to",
    text: true,
    default: 0,
    min: 0,
    max: None,
}];

const fn ok(status: u16, bodies: &'static [&'static str]) -> Success {
    Success { status, bodies }
}

impl Endpoint {
    /// This endpoint's typed contract (see [`Contract`]).
    pub fn contract(self) -> Contract {
        let c = |summary, body, ok, errors| Contract {
            summary,
            body,
            query: &[],
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
        const EXCHANGE: &[Field] = &[text("id", 8, Some(128))];
        const SUBSCRIPTION: &[Field] = &[
            text("endpoint", 1, Some(crate::push::ENDPOINT_MAX_CHARS)),
            text("p256dh", 1, Some(100)),
            text("auth", 1, Some(50)),
        ];
        const ENDPOINT: &[Field] = &[text("endpoint", 1, Some(crate::push::ENDPOINT_MAX_CHARS))];
        const REFRESH: &[Field] = &[Field {
            name: "refresh_token",
            ty: FieldType::NullableText { max: 512 },
            required: false,
        }];
        const ADMIN_PATCH: &[Field] = &[
            Field {
                name: "is_active",
                ty: FieldType::NullableBool,
                required: false,
            },
            Field {
                name: "is_superuser",
                ty: FieldType::NullableBool,
                required: false,
            },
            FULL_NAME,
            Field {
                name: "role",
                ty: FieldType::NullableRole,
                required: false,
            },
        ];
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
            Endpoint::AdminStats => c(
                "Counts of users and pending registrations",
                None,
                ok(200, &["AdminStats"]),
                &[],
            ),
            Endpoint::AdminListUsers => Contract {
                query: PAGE,
                ..c(
                    "Users, newest first, a page at a time",
                    None,
                    ok(200, &["UserList"]),
                    &[],
                )
            },
            Endpoint::AdminGetUser => c("One user", None, ok(200, USER), &[404]),
            Endpoint::AdminPatchUser => c(
                "Change a user's flags, name or role (null leaves a field alone; is_active=false signs them out)",
                Some(ADMIN_PATCH),
                ok(200, USER),
                &[404, 409],
            ),
            Endpoint::AdminDeleteUser => c(
                "Delete a user and what hangs off the account",
                None,
                ok(200, MESSAGE),
                &[404],
            ),
            Endpoint::AdminResendVerification => c(
                "Email an unverified user a new verification link",
                None,
                ok(202, MESSAGE),
                &[400, 404, 429],
            ),
            Endpoint::AdminPromotePending => c(
                "Turn a pending registration into a verified user without its link",
                None,
                ok(201, USER),
                &[404, 409],
            ),
            Endpoint::OAuthProviders => c(
                "The providers on offer and the ones linked to the caller",
                None,
                ok(200, &["OAuthProviders"]),
                &[],
            ),
            Endpoint::OAuthStart => Contract {
                query: REDIRECT_TO,
                ..c(
                    "Sign in with a provider: redirects the browser to it",
                    None,
                    ok(302, &[]),
                    &[400, 404, 503],
                )
            },
            Endpoint::OAuthLinkStart => Contract {
                query: REDIRECT_TO,
                ..c(
                    "Link a provider to the caller: the URL to send the browser to",
                    None,
                    ok(200, &["AuthorizationUrl"]),
                    &[400, 404, 503],
                )
            },
            Endpoint::OAuthUnlink => c(
                "Unlink a provider from the caller (never the only way to sign in)",
                None,
                ok(200, MESSAGE),
                &[400, 404],
            ),
            Endpoint::OAuthCallback => c(
                "Where the provider sends the browser back: redirects to the UI, with an error code on failure",
                None,
                ok(302, &[]),
                &[],
            ),
            Endpoint::OAuthExchange => c(
                "Trade a completed round trip's id for its session (once)",
                Some(EXCHANGE),
                ok(200, &["OAuthExchange"]),
                &[400, 404],
            ),
            Endpoint::TokenRefresh => c(
                "Trade a refresh token (body or cookie) for a new session and a new refresh token",
                Some(REFRESH),
                ok(200, &["Token"]),
                &[401],
            ),
            Endpoint::PushVapidPublicKey => c(
                "The VAPID public key browsers subscribe with (applicationServerKey)",
                None,
                ok(200, &["VapidPublicKey"]),
                &[],
            ),
            Endpoint::PushSubscribe => c(
                "Subscribe the caller's browser to sign-in alerts (the same endpoint again replaces it)",
                Some(SUBSCRIPTION),
                ok(201, &["PushSubscription"]),
                &[],
            ),
            Endpoint::PushSubscriptions => c(
                "The caller's push subscriptions, oldest first",
                None,
                ok(200, &["PushSubscriptionList"]),
                &[],
            ),
            Endpoint::PushUnsubscribe => c(
                "Remove one of the caller's push subscriptions",
                Some(ENDPOINT),
                ok(200, MESSAGE),
                &[404],
            ),
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
            Endpoint::ALL.len() - 22,
            "sms routes, the relay endpoint, the admin API, OAuth, refresh tokens and Web Push are off by default"
        );
        c.enable_oauth = true;
        assert!(
            !Endpoint::mounted(&c).any(|e| e.route().group == Group::OAuth),
            "OAuth needs a provider as well"
        );
        c.oauth.providers.insert("corp".into(), Default::default());
        assert_eq!(
            Endpoint::mounted(&c)
                .filter(|e| e.route().group == Group::OAuth)
                .count(),
            6
        );
        c = Config::default();
        c.enable_admin_router = true;
        assert_eq!(
            Endpoint::mounted(&c)
                .filter(|e| e.route().access == Access::Admin)
                .count(),
            7
        );
        c.enable_admin_router = false;
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
