//! Lifecycle events (the hooks of docs/wire.md, "Events").
//!
//! Events carry what the original's keyword arguments carried. `url` holds a live one-time
//! token, so `Debug` shows only `url_without_token`.

use std::fmt;

use crate::records::{OAuthMode, User};

/// A link sent to someone, with and without its token.
#[derive(Clone, PartialEq, Eq)]
pub struct Link {
    /// The full link, token included: for hooks only, never for logs.
    pub url: String,
    /// The link with the token replaced by `[REDACTED]`.
    pub url_without_token: String,
}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url_without_token)
    }
}

/// One event and its arguments.
#[derive(Clone, Debug, PartialEq)]
#[allow(missing_docs)]
pub enum Event {
    UserRegistered {
        user: User,
    },
    VerificationRequested {
        email: String,
        link: Link,
    },
    UserVerified {
        user: User,
    },
    UserLoggedIn {
        user: User,
    },
    UserLoggedOut {
        user: User,
    },
    PasswordResetRequested {
        user: User,
        link: Link,
    },
    PasswordResetCompleted {
        user: User,
    },
    PasswordChanged {
        user: User,
    },
    EmailChangeRequested {
        user: User,
        new_email: String,
        link: Link,
    },
    EmailChanged {
        user: User,
        previous_email: String,
    },
    PhoneSetupStarted {
        user: User,
        phone: String,
    },
    MfaEnabled {
        user: User,
    },
    PhoneSetupDisabled {
        user: User,
    },
    MfaDisabled {
        user: User,
    },
    MfaLoginStarted {
        user: User,
    },
    UserDeleted {
        user: User,
    },
    OAuthSigninStarted {
        provider: String,
        mode: OAuthMode,
        user: Option<User>,
    },
    OAuthSigninCompleted {
        user: User,
        provider: String,
        mode: OAuthMode,
        was_new: bool,
        mfa_required: bool,
    },
    OAuthAccountLinked {
        user: User,
        provider: String,
    },
    OAuthAccountUnlinked {
        user: User,
        provider: String,
    },
}

impl Event {
    /// The hook name the original registers handlers under.
    pub fn name(&self) -> &'static str {
        match self {
            Event::UserRegistered { .. } => "user_registered",
            Event::VerificationRequested { .. } => "verification_requested",
            Event::UserVerified { .. } => "user_verified",
            Event::UserLoggedIn { .. } => "user_logged_in",
            Event::UserLoggedOut { .. } => "user_logged_out",
            Event::PasswordResetRequested { .. } => "password_reset_requested",
            Event::PasswordResetCompleted { .. } => "password_reset_completed",
            Event::PasswordChanged { .. } => "password_changed",
            Event::EmailChangeRequested { .. } => "email_change_requested",
            Event::EmailChanged { .. } => "email_changed",
            Event::PhoneSetupStarted { .. } => "phone_setup_started",
            Event::MfaEnabled { .. } => "mfa_enabled",
            Event::PhoneSetupDisabled { .. } => "phone_setup_disabled",
            Event::MfaDisabled { .. } => "mfa_disabled",
            Event::MfaLoginStarted { .. } => "mfa_login_started",
            Event::UserDeleted { .. } => "user_deleted",
            Event::OAuthSigninStarted { .. } => "oauth_signin_started",
            Event::OAuthSigninCompleted { .. } => "oauth_signin_completed",
            Event::OAuthAccountLinked { .. } => "oauth_account_linked",
            Event::OAuthAccountUnlinked { .. } => "oauth_account_unlinked",
        }
    }

    /// The user the event is about, when there is one.
    pub fn user(&self) -> Option<&User> {
        match self {
            Event::VerificationRequested { .. } => None,
            Event::OAuthSigninStarted { user, .. } => user.as_ref(),
            Event::UserRegistered { user }
            | Event::UserVerified { user }
            | Event::UserLoggedIn { user }
            | Event::UserLoggedOut { user }
            | Event::PasswordResetRequested { user, .. }
            | Event::PasswordResetCompleted { user }
            | Event::PasswordChanged { user }
            | Event::EmailChangeRequested { user, .. }
            | Event::EmailChanged { user, .. }
            | Event::PhoneSetupStarted { user, .. }
            | Event::MfaEnabled { user }
            | Event::PhoneSetupDisabled { user }
            | Event::MfaDisabled { user }
            | Event::MfaLoginStarted { user }
            | Event::UserDeleted { user }
            | Event::OAuthSigninCompleted { user, .. }
            | Event::OAuthAccountLinked { user, .. }
            | Event::OAuthAccountUnlinked { user, .. } => Some(user),
        }
    }
}
