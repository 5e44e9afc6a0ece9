//! The stored records of docs/wire.md, "Records" and their public JSON forms.

use serde_json::{json, Value};

use crate::time::{to_isoformat, to_pydantic, Timestamp};

/// A user account. Its `Debug` shows whether a password hash is set, never the hash.
#[derive(Clone, PartialEq)]
pub struct User {
    /// 32-char uuid hex on SQL, ObjectId hex on Mongo.
    pub id: String,
    /// The address; lower-case for rows we write, possibly mixed-case in adopted databases.
    pub email: String,
    /// PHC Argon2 string; `None` for OAuth-only accounts.
    pub hashed_password: Option<String>,
    /// Disabled accounts cannot sign in.
    pub is_active: bool,
    /// The email address was confirmed.
    pub is_verified: bool,
    /// Administrator.
    pub is_superuser: bool,
    /// Display name, at most 200 chars.
    pub full_name: Option<String>,
    /// E.164 number for SMS 2FA.
    pub phone_number: Option<String>,
    /// SMS second factor on.
    pub is_mfa_enabled: bool,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last mutation time.
    pub updated_at: Timestamp,
    /// Last successful sign-in (the session's `iat`).
    pub last_login: Option<Timestamp>,
    /// Bulk revocation cutoff: tokens with `iat <= cutoff` are dead.
    pub tokens_invalidated_after: Option<Timestamp>,
    /// The account's role, for the host's own authorisation (`default_user_role` when made;
    /// `"user"` on rows written by regstack 0.9.3). regstack itself only knows superusers.
    pub role: String,
}

/// The role of accounts that predate roles (the column's default).
pub const DEFAULT_ROLE: &str = "user";

/// Whether `role` is a well-formed role name: 1 to 64 characters from `A-Z a-z 0-9 _ . : -`,
/// starting with a letter or digit, so that it is safe in a header, a log line or a URL.
pub fn valid_role(role: &str) -> bool {
    let mut chars = role.chars();
    role.len() <= 64
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'))
}

/// [`valid_role`] as a regular expression, for 422 messages and the OpenAPI document.
pub const ROLE_PATTERN: &str = "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$";

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("hashed_password", &self.hashed_password.as_ref().map(|_| "[redacted]"))
            .field("is_active", &self.is_active)
            .field("is_verified", &self.is_verified)
            .field("is_superuser", &self.is_superuser)
            .field("full_name", &self.full_name)
            .field("phone_number", &self.phone_number)
            .field("is_mfa_enabled", &self.is_mfa_enabled)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .field("last_login", &self.last_login)
            .field("tokens_invalidated_after", &self.tokens_invalidated_after)
            .field("role", &self.role)
            .finish()
    }
}

impl User {
    /// A new account with the contract's defaults.
    pub fn new(id: String, email: String, hashed_password: Option<String>, now: Timestamp) -> Self {
        Self {
            id,
            email,
            hashed_password,
            is_active: true,
            is_verified: false,
            is_superuser: false,
            full_name: None,
            phone_number: None,
            is_mfa_enabled: false,
            created_at: now,
            updated_at: now,
            last_login: None,
            tokens_invalidated_after: None,
            role: DEFAULT_ROLE.to_string(),
        }
    }

    /// `UserPublic`: everything but the hash, datetimes in pydantic's form.
    pub fn public(&self) -> Value {
        serde_json::to_value(self.wire()).expect("a user serialises")
    }

    /// [`User::public`] without building a JSON tree: serialise it straight into a response
    /// (`GET /me` answers it on every call).
    pub fn wire(&self) -> UserPublic<'_> {
        UserPublic {
            id: &self.id,
            email: &self.email,
            is_active: self.is_active,
            is_verified: self.is_verified,
            is_superuser: self.is_superuser,
            full_name: self.full_name.as_deref(),
            phone_number: self.phone_number.as_deref(),
            is_mfa_enabled: self.is_mfa_enabled,
            created_at: to_pydantic(self.created_at),
            updated_at: to_pydantic(self.updated_at),
            last_login: self.last_login.map(to_pydantic),
            tokens_invalidated_after: self.tokens_invalidated_after.map(to_pydantic),
            role: &self.role,
        }
    }
}

/// A user as the wire shows it (`UserPublic` in docs/wire.md), members in the original's order.
#[derive(serde::Serialize)]
pub struct UserPublic<'a> {
    id: &'a str,
    email: &'a str,
    is_active: bool,
    is_verified: bool,
    is_superuser: bool,
    full_name: Option<&'a str>,
    phone_number: Option<&'a str>,
    is_mfa_enabled: bool,
    created_at: String,
    updated_at: String,
    last_login: Option<String>,
    tokens_invalidated_after: Option<String>,
    role: &'a str,
}

/// A field-by-field change to a user; `None` leaves a field alone. Stores apply it atomically
/// and bump `updated_at`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UserPatch {
    /// New address.
    pub email: Option<String>,
    /// New hash (`Some(None)` clears it).
    pub hashed_password: Option<Option<String>>,
    /// Active flag.
    pub is_active: Option<bool>,
    /// Verified flag.
    pub is_verified: Option<bool>,
    /// Superuser flag.
    pub is_superuser: Option<bool>,
    /// Display name (`Some(None)` clears it).
    pub full_name: Option<Option<String>>,
    /// Phone (`Some(None)` clears it).
    pub phone_number: Option<Option<String>>,
    /// MFA flag.
    pub is_mfa_enabled: Option<bool>,
    /// Last sign-in.
    pub last_login: Option<Timestamp>,
    /// Bulk revocation cutoff.
    pub tokens_invalidated_after: Option<Timestamp>,
    /// Role.
    pub role: Option<String>,
}

impl UserPatch {
    /// Applies the patch to an in-memory copy (used by the memory store and by tests).
    pub fn apply(&self, user: &mut User, now: Timestamp) {
        if let Some(v) = &self.email {
            user.email = v.clone();
        }
        if let Some(v) = &self.hashed_password {
            user.hashed_password = v.clone();
        }
        if let Some(v) = self.is_active {
            user.is_active = v;
        }
        if let Some(v) = self.is_verified {
            user.is_verified = v;
        }
        if let Some(v) = self.is_superuser {
            user.is_superuser = v;
        }
        if let Some(v) = &self.full_name {
            user.full_name = v.clone();
        }
        if let Some(v) = &self.phone_number {
            user.phone_number = v.clone();
        }
        if let Some(v) = self.is_mfa_enabled {
            user.is_mfa_enabled = v;
        }
        if let Some(v) = self.last_login {
            user.last_login = Some(v);
        }
        if let Some(v) = self.tokens_invalidated_after {
            user.tokens_invalidated_after = Some(v);
        }
        if let Some(v) = &self.role {
            user.role = v.clone();
        }
        user.updated_at = now;
    }
}

/// A registration waiting for its email to be verified; no user row exists until `/verify`.
#[derive(Clone, Debug, PartialEq)]
pub struct PendingRegistration {
    /// 32-char uuid hex.
    pub id: String,
    /// The address (unique among pending rows).
    pub email: String,
    /// The Argon2 hash chosen at registration.
    pub hashed_password: String,
    /// Display name.
    pub full_name: Option<String>,
    /// SHA-256 hex of the emailed token.
    pub token_hash: String,
    /// When the row was (re)written.
    pub created_at: Timestamp,
    /// When the link stops working.
    pub expires_at: Timestamp,
}

impl PendingRegistration {
    /// `PendingResponse`.
    pub fn response(&self) -> Value {
        json!({
            "status": "pending_verification",
            "email": self.email,
            "expires_at": to_isoformat(self.expires_at),
        })
    }
}

/// What an SMS code is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CodeKind {
    /// Confirming a new phone number.
    PhoneSetup,
    /// The second step of a login.
    LoginMfa,
}

impl CodeKind {
    /// The stored `kind` value.
    pub fn as_str(self) -> &'static str {
        match self {
            CodeKind::PhoneSetup => "phone_setup",
            CodeKind::LoginMfa => "login_mfa",
        }
    }
}

/// A pending SMS code, hashed at rest (one per user and kind).
#[derive(Clone, Debug, PartialEq)]
pub struct MfaCode {
    /// The user.
    pub user_id: String,
    /// What the code is for.
    pub kind: CodeKind,
    /// HMAC-SHA256 hex of the digits (and, for phone setup, the number) under the server's
    /// code key (docs/security.md, "Timing").
    pub code_hash: String,
    /// When it stops working.
    pub expires_at: Timestamp,
    /// Wrong guesses so far.
    pub attempts: i64,
    /// Wrong guesses allowed.
    pub max_attempts: i64,
    /// When it was issued.
    pub created_at: Timestamp,
}

impl MfaCode {
    /// The decision for one guess at this stored code (every store makes it inside its
    /// atomic step): locked → expired → wrong → right, the hash compared in constant time.
    pub fn judge(&self, code_hash: &str, now: Timestamp) -> CodeCheck {
        if self.attempts >= self.max_attempts {
            return CodeCheck::Locked;
        }
        if self.expires_at <= now {
            return CodeCheck::Expired;
        }
        if !crate::token::secrets_equal(&self.code_hash, code_hash) {
            let remaining = self.max_attempts - (self.attempts + 1);
            return if remaining <= 0 {
                CodeCheck::Locked
            } else {
                CodeCheck::Wrong { remaining }
            };
        }
        CodeCheck::Ok
    }
}

/// The outcome of checking an SMS code (docs/wire.md, "SMS codes", in that order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeCheck {
    /// No code pending for this user and kind.
    Missing,
    /// Attempts exhausted (the row is gone now).
    Locked,
    /// Past `expires_at` (the row is gone now).
    Expired,
    /// Wrong; this many attempts remain.
    Wrong {
        /// Attempts left.
        remaining: i64,
    },
    /// Right (the row is gone now).
    Ok,
}

/// An account's link to a provider's subject (`oauth_identities`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthIdentity {
    /// 32-char uuid hex on SQL, ObjectId hex on Mongo.
    pub id: String,
    /// The account.
    pub user_id: String,
    /// The provider's name (`google`, or a configured one).
    pub provider: String,
    /// The provider's `sub`.
    pub subject_id: String,
    /// The address the provider gave when the link was made (a snapshot).
    pub email: Option<String>,
    /// When the link was made.
    pub linked_at: Timestamp,
    /// The last sign-in through it.
    pub last_used_at: Option<Timestamp>,
}

impl OAuthIdentity {
    /// The entry of `GET /oauth/providers`' `linked` list (timestamps in `isoformat()`).
    pub fn public(&self) -> Value {
        json!({
            "provider": self.provider,
            "email": self.email,
            "linked_at": to_isoformat(self.linked_at),
            "last_used_at": self.last_used_at.map(to_isoformat),
        })
    }
}

/// What an authorization round trip is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OAuthMode {
    /// Sign in (or create an account).
    Signin,
    /// Attach the provider to the signed-in account.
    Link,
}

impl OAuthMode {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            OAuthMode::Signin => "signin",
            OAuthMode::Link => "link",
        }
    }

    /// The mode of a stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "signin" => Some(OAuthMode::Signin),
            "link" => Some(OAuthMode::Link),
            _ => None,
        }
    }
}

/// One authorization round trip (`oauth_states`): made at start, taken by the callback (which
/// puts it back with the result), and taken for good by the exchange. Its `Debug` hides the
/// PKCE verifier and the result token.
#[derive(Clone, PartialEq, Eq)]
pub struct OAuthState {
    /// The `state` parameter (32 random bytes, base64url).
    pub id: String,
    /// The provider's name.
    pub provider: String,
    /// The PKCE verifier (64 random bytes, base64url).
    pub code_verifier: String,
    /// The OpenID Connect nonce (16 random bytes, base64url).
    pub nonce: String,
    /// Where the browser goes when it is done.
    pub redirect_to: String,
    /// Sign in or link.
    pub mode: OAuthMode,
    /// The account a link attaches to.
    pub linking_user_id: Option<String>,
    /// When the round trip started.
    pub created_at: Timestamp,
    /// When the row stops counting.
    pub expires_at: Timestamp,
    /// After a successful callback: the session (or `login_mfa`) token the exchange hands out.
    pub result_token: Option<String>,
    /// After a successful callback: whether it made a new account.
    pub result_was_new: bool,
}

impl std::fmt::Debug for OAuthState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthState")
            .field("provider", &self.provider)
            .field("mode", &self.mode)
            .field("linking_user_id", &self.linking_user_id)
            .field("expires_at", &self.expires_at)
            .field("completed", &self.result_token.is_some())
            .finish_non_exhaustive()
    }
}

/// A refresh token (`refresh_tokens`), stored as the SHA-256 of the raw token. Its `Debug`
/// hides the hash.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshToken {
    /// 32-char uuid hex.
    pub id: String,
    /// The account.
    pub user_id: String,
    /// The sign-in this token descends from: every rotation keeps it.
    pub family_id: String,
    /// SHA-256 hex of the raw token.
    pub token_hash: String,
    /// The `jti` of the session minted beside it.
    pub access_jti: String,
    /// When it was issued.
    pub created_at: Timestamp,
    /// When it stops working.
    pub expires_at: Timestamp,
    /// When it was rotated (it is spent then).
    pub used_at: Option<Timestamp>,
    /// Its family was killed.
    pub revoked: bool,
}

impl std::fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshToken")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("family_id", &self.family_id)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("used_at", &self.used_at)
            .field("revoked", &self.revoked)
            .finish_non_exhaustive()
    }
}

/// A browser's Web Push subscription (`push_subscriptions`; docs/web-push.md). Its `Debug`
/// hides the endpoint, a capability URL, and the browser's secret.
#[derive(Clone, PartialEq, Eq)]
pub struct PushSubscription {
    /// 32-char uuid hex.
    pub id: String,
    /// The account.
    pub user_id: String,
    /// Where the browser's push service takes messages for it.
    pub endpoint: String,
    /// The browser's P-256 public key, base64url (unpadded), that alerts are encrypted to.
    pub p256dh: String,
    /// The browser's 16-byte authentication secret, base64url (unpadded).
    pub auth: String,
    /// When it was subscribed (or subscribed again).
    pub created_at: Timestamp,
}

impl PushSubscription {
    /// What its owner sees: the id, the endpoint and when (never the keys).
    pub fn public(&self) -> Value {
        json!({ "id": self.id, "endpoint": self.endpoint, "created_at": to_pydantic(self.created_at) })
    }
}

impl std::fmt::Debug for PushSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushSubscription")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[regstack_macros::dual_test]
    fn a_user_on_the_wire_has_the_originals_members_in_order() {
        let at = |micros| crate::time::from_micros(micros);
        let mut user = User::new(
            "u1".into(),
            "a@example.com".into(),
            Some("$argon2id$secret".into()),
            at(1_767_268_800_000_000),
        );
        user.full_name = Some("Ada \"L\"".into());
        user.last_login = Some(at(1_767_268_800_123_456));
        let text = serde_json::to_string(&user.wire()).unwrap();
        assert_eq!(
            text,
            r#"{"id":"u1","email":"a@example.com","is_active":true,"is_verified":false,"is_superuser":false,"full_name":"Ada \"L\"","phone_number":null,"is_mfa_enabled":false,"created_at":"2026-01-01T12:00:00Z","updated_at":"2026-01-01T12:00:00Z","last_login":"2026-01-01T12:00:00.123456Z","tokens_invalidated_after":null,"role":"user"}"#
        );
        assert_eq!(
            serde_json::to_string(&user.public()).unwrap(),
            text,
            "the tree and the direct form agree"
        );
        assert!(!text.contains("argon2"), "never the hash");
    }
}
