//! The account flows: async functions over `&Engine`, taking and returning domain values.
//! No HTTP types appear here; `crate::http` maps [`FlowError`] to the wire.

pub mod account;
pub mod admin;
pub mod email_change;
mod guess;
pub mod housekeeping;
pub mod limits;
pub mod login;
pub mod oauth;
pub mod password;
pub mod phone;
pub mod push;
pub mod refresh;
pub mod register;
pub mod relay;
pub mod session;

use crate::password::PasswordError;
use crate::ports::StoreError;
use crate::rate_limit::RateLimit;
use crate::render::RenderError;

/// Why a bearer token was refused (docs/wire.md, "Auth failures", in the order they are checked).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthFailure {
    /// No `Authorization: Bearer` header.
    Missing,
    /// Undecodable, expired, or signed with another key.
    Invalid,
    /// The token's `jti` was revoked (logout).
    Revoked,
    /// The user is gone or disabled.
    Inactive,
    /// Issued at or before the user's `tokens_invalidated_after`.
    Invalidated,
}

/// Every way a flow can refuse; each maps to one status and message in `ApiError`.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)]
pub enum FlowError {
    #[error("authentication failed: {0:?}")]
    Auth(AuthFailure),
    #[error("administrator privileges required")]
    NotAdmin,
    #[error("registration is disabled")]
    RegistrationDisabled,
    #[error("a user with that email exists")]
    EmailTaken,
    #[error("verification token invalid or expired")]
    VerificationInvalid,
    #[error("email already registered")]
    AlreadyRegistered,
    #[error("account locked")]
    Locked { retry_after: i64 },
    #[error("bad credentials")]
    BadCredentials { remaining: Option<u64> },
    #[error("account disabled")]
    AccountDisabled,
    #[error("email not verified")]
    NotVerified,
    #[error("phone number is not E.164")]
    PhoneInvalid,
    #[error("phone-setup token invalid")]
    PhoneSessionInvalid,
    #[error("login_mfa token invalid")]
    MfaSessionInvalid,
    /// An SMS code of this kind was refused with this outcome (never `Ok`).
    #[error("sms code refused: {1:?}")]
    Code(crate::records::CodeKind, crate::records::CodeCheck),
    #[error("no password set")]
    NoPassword,
    #[error("current password incorrect")]
    WrongCurrentPassword,
    #[error("new password equals current")]
    SamePassword,
    #[error("new email equals current")]
    SameEmail,
    #[error("email-change token invalid")]
    EmailChangeInvalid,
    #[error("token does not match an active account")]
    TokenUserInactive,
    #[error("email address in use")]
    EmailInUse,
    #[error("account deletion disabled")]
    AccountDeletionDisabled,
    #[error("relay request refused")]
    RelayRefused,
    #[error("password reset disabled")]
    PasswordResetDisabled,
    #[error("reset token invalid")]
    ResetInvalid,
    #[error("reset token user inactive")]
    ResetUserInactive,
    #[error("no such user")]
    UserNotFound,
    #[error("user already verified")]
    AlreadyVerified,
    #[error("user has no password to verify with")]
    NoPasswordToVerify,
    #[error("no pending registration for {0}")]
    NoPendingRegistration(String),
    #[error("a user with email {0} exists")]
    UserExists(String),
    #[error("the last superuser cannot give up the flag")]
    LastSuperuser,
    #[error("invalid email address: {0}")]
    InvalidEmail(String),
    #[error("password must be 8 to 128 characters")]
    PasswordLength,
    #[error("OAuth provider {0:?} is not configured")]
    OAuthProviderUnknown(String),
    #[error("redirect_to is not same-origin")]
    OAuthRedirectRefused,
    #[error("the OAuth provider cannot be reached")]
    OAuthProviderUnavailable,
    #[error("that provider is not linked")]
    OAuthNotLinked,
    #[error("the only sign-in method cannot be unlinked")]
    OAuthLastMethod,
    #[error("OAuth state not found or not completed")]
    OAuthStateNotFound,
    #[error("OAuth state expired")]
    OAuthStateExpired,
    #[error("refresh token invalid, expired or spent")]
    RefreshInvalid,
    #[error("no push subscription at that endpoint")]
    PushSubscriptionNotFound,
    #[error("turnstile check refused: {0:?}")]
    Turnstile(crate::turnstile::Refusal),
    #[error("rate limited")]
    RateLimited { limit: RateLimit, retry_after: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error(transparent)]
    Render(#[from] RenderError),
}

/// Flow results.
pub type FlowResult<T> = Result<T, FlowError>;

use crate::config::redact_token;
use crate::engine::Engine;
use crate::events::Link;
use crate::ports::EmailMessage;
use crate::render::EmailKind;

/// Builds the link for `token`, renders the email of `kind` around it and hands it to the
/// mailer. A delivery failure is logged for the operator (never with the link) and does not
/// change the route's answer. Returns the link for the event.
pub(crate) async fn send_link(
    engine: &Engine,
    kind: EmailKind,
    to: &str,
    full_name: Option<&str>,
    token: &str,
    new_email: Option<&str>,
) -> FlowResult<Link> {
    let config = &engine.config;
    let url = match kind {
        EmailKind::Verification => config.verify_url(token),
        EmailKind::PasswordReset => config.password_reset_url(token),
        EmailKind::EmailChange => config.email_change_url(token),
    };
    let rendered = engine.renderer.email(kind, config, full_name, &url, new_email)?;
    let message = EmailMessage {
        to: to.to_string(),
        from: config.email_from(),
        subject: rendered.subject,
        text: rendered.text,
        html: rendered.html,
    };
    if let Err(e) = engine.ports.mailer.send(&message).await {
        tracing::error!(target: "regstack.email", kind = ?kind, error = %e, "email delivery failed");
    }
    Ok(Link {
        url_without_token: redact_token(&url, token),
        url,
    })
}

/// Counts one email to `address` against `email_rate_limit` and says whether it may be sent.
/// Past the limit the route answers as it always does and sends nothing, so the limit stops
/// a stranger flooding an inbox without telling them whether the address has an account.
/// The count is by the address submitted, whether or not an account has it.
pub(crate) async fn mail_allowed(engine: &Engine, address: &str) -> FlowResult<bool> {
    match count_mail_to(engine, address).await {
        Ok(()) => Ok(true),
        Err(FlowError::RateLimited { limit, .. }) => {
            tracing::warn!(target: "regstack.email", %limit, "email_rate_limit reached for a recipient; not sending");
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Counts one email to `address` against `email_rate_limit` (keyed by a hash of the
/// address's canonical form, so the counter never holds the address); past the limit,
/// [`FlowError::RateLimited`].
pub(crate) async fn count_mail_to(engine: &Engine, address: &str) -> FlowResult<()> {
    let subject = &crate::token::hash_secret(&crate::email::key(address))[..32];
    limits::count_against(engine, &engine.email_limits, "email_to", subject).await
}

/// Renders a security notice and hands it to the mailer; a failure is logged, never shown.
pub(crate) async fn send_notice(
    engine: &Engine,
    notice: crate::render::Notice,
    to: &str,
    full_name: Option<&str>,
) -> FlowResult<()> {
    let rendered = match engine.renderer.notice(&notice, &engine.config, full_name) {
        Ok(r) => r,
        Err(e) => {
            // The change it reports is already made; a broken template must not turn that
            // into an error answer.
            tracing::error!(target: "regstack.email", error = %e, "security notice not rendered");
            return Ok(());
        }
    };
    let message = EmailMessage {
        to: to.to_string(),
        from: engine.config.email_from(),
        subject: rendered.subject,
        text: rendered.text,
        html: rendered.html,
    };
    if let Err(e) = engine.ports.mailer.send(&message).await {
        tracing::error!(target: "regstack.email", error = %e, "security notice delivery failed");
    }
    Ok(())
}

/// Consumes a single-use token by revoking its `jti`: true for exactly one caller.
pub(crate) async fn claim_once(engine: &Engine, claims: &crate::jwt::Claims) -> FlowResult<bool> {
    Ok(engine
        .ports
        .revocations
        .revoke(&claims.jti, claims.expires_at())
        .await?)
}
