//! The ports: everything the core needs from outside, as small object-safe async traits.
//!
//! Each trait documents its contract; `crate::testing::contract` checks every implementation
//! (memory, SQLite, Postgres, Mongo, D1) against the same assertions.

use std::sync::Arc;

use async_trait::async_trait;

use crate::events::Event;
use crate::password::{PasswordError, Verified};
use crate::records::{
    CodeCheck, CodeKind, MfaCode, OAuthIdentity, OAuthState, PendingRegistration, PushSubscription, RefreshToken, User,
    UserPatch,
};
use crate::time::Timestamp;

/// Storage failures, independent of the backend.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The record addressed does not exist.
    #[error("not found")]
    NotFound,
    /// A unique constraint refused the write; the payload names the constraint.
    #[error("conflict on {0}")]
    Conflict(String),
    /// The backend cannot be reached right now; retrying later may work.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Anything else the backend reported.
    #[error("storage error: {0}")]
    Backend(String),
}

/// Accounts.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Inserts a new user and returns it as stored: backends that assign their own ids
    /// (Mongo's ObjectId) replace `user.id`. A user with the same email (ignoring case) →
    /// `Conflict("email")`.
    async fn create(&self, user: &User) -> Result<User, StoreError>;
    /// The user with this id.
    async fn get(&self, id: &str) -> Result<Option<User>, StoreError>;
    /// The user with this email, compared case-insensitively (adopted rows may be mixed-case).
    async fn find_by_email(&self, email: &str) -> Result<Option<User>, StoreError>;
    /// Applies `patch` atomically, sets `updated_at = now`, and returns the record after the
    /// change. Unknown id → `NotFound`; an email taken by another user → `Conflict("email")`.
    async fn update(&self, id: &str, patch: &UserPatch, now: Timestamp) -> Result<User, StoreError>;
    /// Deletes the user and, in the same transaction, what hangs off it: OAuth identities, MFA
    /// codes, the pending registration with that email and the login attempts for it.
    /// Returns whether a user was deleted.
    async fn delete(&self, user: &User) -> Result<bool, StoreError>;
    /// Checks the backend answers (for `/readyz`).
    async fn ping(&self) -> Result<(), StoreError>;
    /// Up to `limit` users after the first `skip`, newest first: by `created_at` descending,
    /// then by id descending, so pages are stable even when accounts share a creation time.
    /// Backed by an index, so a page costs the same at any size of table (plus `skip`).
    async fn list(&self, skip: u64, limit: u64) -> Result<Vec<User>, StoreError>;
    /// How many users there are in all and with each flag (for `/admin/stats`, and to keep the
    /// last superuser). Reads every row.
    async fn counts(&self) -> Result<UserCounts, StoreError>;
    /// How many users there are (the admin list's `total`): an index count, cheaper than
    /// [`UserStore::counts`].
    async fn total(&self) -> Result<u64, StoreError>;
}

/// The user counts of [`UserStore::counts`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UserCounts {
    /// Every user.
    pub total: u64,
    /// `is_active`.
    pub active: u64,
    /// `is_verified`.
    pub verified: u64,
    /// `is_superuser`.
    pub superusers: u64,
    /// `is_superuser` and `is_active`: the administrators who can sign in.
    pub active_superusers: u64,
}

/// Registrations awaiting email verification.
#[async_trait]
pub trait PendingStore: Send + Sync {
    /// Writes the row, replacing any row with the same email (the old token dies).
    async fn put(&self, pending: &PendingRegistration) -> Result<(), StoreError>;
    /// Atomically removes and returns the row with this token hash. A token is returned at
    /// most once, however many callers race for it.
    async fn take_by_token_hash(&self, token_hash: &str) -> Result<Option<PendingRegistration>, StoreError>;
    /// The row for this email (case-insensitive), expired or not.
    async fn find_by_email(&self, email: &str) -> Result<Option<PendingRegistration>, StoreError>;
    /// Atomically removes and returns the row for this email.
    async fn take_by_email(&self, email: &str) -> Result<Option<PendingRegistration>, StoreError>;
    /// How many rows have not expired at `now` (`expires_at > now`).
    async fn count_live(&self, now: Timestamp) -> Result<u64, StoreError>;
}

/// Per-token revocation (the `token_blacklist`).
#[async_trait]
pub trait RevocationStore: Send + Sync {
    /// Revokes `jti` until `exp`. Idempotent; answers `true` only for the one call that
    /// inserted it, which is how single-use tokens are consumed exactly once.
    async fn revoke(&self, jti: &str, exp: Timestamp) -> Result<bool, StoreError>;
    /// Whether `jti` is revoked.
    async fn is_revoked(&self, jti: &str) -> Result<bool, StoreError>;
}

/// What a bearer check reads, in one lookup (docs/performance.md, "The session check").
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SessionRecord {
    /// The token's user, active or not; `None` when there is no such user.
    pub user: Option<User>,
    /// Whether the token's `jti` is revoked.
    pub revoked: bool,
}

impl SessionRecord {
    /// The record from what a backend read. A revoked token is refused whatever its user
    /// row holds, so a row that fails to decode does not turn that refusal into an error.
    pub fn read(user: Result<Option<User>, StoreError>, revoked: bool) -> Result<Self, StoreError> {
        let user = if revoked { user.ok().flatten() } else { user? };
        Ok(Self { user, revoked })
    }
}

/// The read behind every authenticated request: the token's user and whether the token is
/// revoked, together. SQL backends answer it with one statement, so a request costs one
/// round trip; nothing is cached, so a revocation anywhere is seen on the next request.
#[async_trait]
pub trait SessionLookup: Send + Sync {
    /// The user with id `user_id` and whether `jti` is revoked, as
    /// [`UserStore::get`] and [`RevocationStore::is_revoked`] would answer them.
    async fn lookup(&self, user_id: &str, jti: &str) -> Result<SessionRecord, StoreError>;
}

/// The outcome of [`AttemptStore::try_reserve`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reservation {
    /// `threshold` failures are already in the window: refuse without checking the password.
    Locked,
    /// A failure row was written provisionally; `failures` counts it.
    Reserved {
        /// The row, for [`AttemptStore::release`].
        id: i64,
        /// Failures in the window including this one.
        failures: u64,
    },
}

/// Login failures for the lockout (`login_attempts`).
#[async_trait]
pub trait AttemptStore: Send + Sync {
    /// Atomically: if `count(email, when >= since) >= threshold` answer `Locked`, else insert a
    /// failure row at `now` and answer its id and the new count. Under N parallel calls, exactly
    /// `threshold - existing` of them are `Reserved`.
    async fn try_reserve(
        &self,
        email: &str,
        ip: Option<&str>,
        now: Timestamp,
        since: Timestamp,
        threshold: u64,
    ) -> Result<Reservation, StoreError>;
    /// Removes one reserved row (a correct password that does not clear the lockout).
    async fn release(&self, id: i64) -> Result<(), StoreError>;
    /// Removes every failure for `email` (case-insensitive).
    async fn clear(&self, email: &str) -> Result<(), StoreError>;
}

/// Pending SMS codes (`mfa_codes`).
#[async_trait]
pub trait MfaCodeStore: Send + Sync {
    /// Stores a code, replacing any pending code of the same user and kind.
    async fn put(&self, code: &MfaCode) -> Result<(), StoreError>;
    /// Checks a code atomically, in the contract's order: missing → locked (delete) → expired
    /// (delete) → wrong (count it; delete and answer `Locked` when none remain) → right
    /// (delete). Under N parallel guesses every guess is counted exactly once and at most one
    /// answer is `Ok`.
    async fn check(
        &self,
        user_id: &str,
        kind: CodeKind,
        code_hash: &str,
        now: Timestamp,
    ) -> Result<CodeCheck, StoreError>;
    /// Deletes every code of the user.
    async fn delete_for_user(&self, user_id: &str) -> Result<(), StoreError>;
}

/// The outcome of [`OAuthStore::unlink`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unlinked {
    /// The link is gone.
    Removed,
    /// The account has no link to that provider.
    NotLinked,
    /// It is the account's only way to sign in, so it stays.
    LastMethod,
}

/// Provider links and authorization round trips (`oauth_identities`, `oauth_states`).
#[async_trait]
pub trait OAuthStore: Send + Sync {
    /// The link of `provider`'s `subject`, whichever account has it.
    async fn identity(&self, provider: &str, subject: &str) -> Result<Option<OAuthIdentity>, StoreError>;
    /// The account's links, oldest first (`linked_at`, then id).
    async fn identities_of(&self, user_id: &str) -> Result<Vec<OAuthIdentity>, StoreError>;
    /// Inserts a link and returns it as stored (Mongo assigns its own ObjectId). A subject
    /// already linked → `Conflict("provider_subject")`; an account already linked to the
    /// provider → `Conflict("user_provider")`.
    async fn link(&self, identity: &OAuthIdentity) -> Result<OAuthIdentity, StoreError>;
    /// Removes the account's link to `provider`, atomically refusing (`LastMethod`) when
    /// `keep_one` is set and it is the account's only link, so two parallel unlinks of a
    /// password-less account can never both succeed and lock it out.
    async fn unlink(&self, user_id: &str, provider: &str, keep_one: bool) -> Result<Unlinked, StoreError>;
    /// Records a sign-in through the link.
    async fn touch(&self, identity_id: &str, now: Timestamp) -> Result<(), StoreError>;
    /// Stores a round trip, replacing a row with the same id.
    async fn put_state(&self, state: &OAuthState) -> Result<(), StoreError>;
    /// Atomically removes and returns the round trip with this id if it is still waiting for
    /// its callback (no `result_token`): the callback's claim, which at most one caller wins,
    /// and which a replayed callback never wins again.
    async fn take_waiting_state(&self, id: &str) -> Result<Option<OAuthState>, StoreError>;
    /// Atomically removes and returns the round trip with this id only if its callback
    /// completed (`result_token` set); a row still waiting for its callback is left alone.
    /// At most one caller gets the row.
    async fn take_completed_state(&self, id: &str) -> Result<Option<OAuthState>, StoreError>;
}

/// The successor a rotation writes: everything but what it inherits (the account and the
/// family come from the token it replaces).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NextRefresh {
    /// Its id.
    pub id: String,
    /// SHA-256 hex of the new raw token.
    pub token_hash: String,
    /// The `jti` of the session minted beside it.
    pub access_jti: String,
    /// When it stops working.
    pub expires_at: Timestamp,
}

impl NextRefresh {
    /// The successor as stored: this, with `previous`'s account and family, issued `now`.
    pub fn successor_of(&self, previous: &RefreshToken, now: Timestamp) -> RefreshToken {
        RefreshToken {
            id: self.id.clone(),
            user_id: previous.user_id.clone(),
            family_id: previous.family_id.clone(),
            token_hash: self.token_hash.clone(),
            access_jti: self.access_jti.clone(),
            created_at: now,
            expires_at: self.expires_at,
            used_at: None,
            revoked: false,
        }
    }
}

/// The outcome of [`RefreshTokenStore::rotate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rotation {
    /// The token was live: it is spent, and `next` (returned as stored) replaced it.
    /// `previous` is the spent token (its `used_at` may already show the spending).
    Rotated {
        /// The spent token.
        previous: RefreshToken,
        /// Its successor.
        next: RefreshToken,
    },
    /// The token was already spent or its family killed: presented again, it is reuse.
    Reused(RefreshToken),
    /// The token was never spent but has expired.
    Expired,
    /// No such token.
    Unknown,
}

impl Rotation {
    /// Why a token that exists could not be rotated: spent or killed (reuse), or else expired.
    pub fn refused(previous: RefreshToken) -> Self {
        if previous.used_at.is_some() || previous.revoked {
            Rotation::Reused(previous)
        } else {
            Rotation::Expired
        }
    }
}

/// A token of a killed family: the session minted beside it, for the token blacklist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FamilyMember {
    /// The session's `jti`.
    pub access_jti: String,
    /// When the token (and its session) was issued.
    pub issued_at: Timestamp,
}

/// Browsers' push subscriptions (`push_subscriptions`, docs/web-push.md).
#[async_trait]
pub trait PushSubscriptionStore: Send + Sync {
    /// Saves `subscription`. The user's subscription at the same endpoint, if any, takes the
    /// new keys and time instead (keeping its id); then the user's oldest past `limit` go.
    async fn subscribe(&self, subscription: &PushSubscription, limit: usize) -> Result<(), StoreError>;
    /// The user's subscriptions, oldest first.
    async fn subscriptions(&self, user_id: &str) -> Result<Vec<PushSubscription>, StoreError>;
    /// Deletes the user's subscription at `endpoint`; whether there was one.
    async fn unsubscribe(&self, user_id: &str, endpoint: &str) -> Result<bool, StoreError>;
}

/// Refresh tokens (`refresh_tokens`, docs/refresh-tokens.md).
#[async_trait]
pub trait RefreshTokenStore: Send + Sync {
    /// Stores the first token of a new family.
    async fn put(&self, token: &RefreshToken) -> Result<(), StoreError>;
    /// Spends the token with this hash and writes its successor, atomically: of N parallel
    /// rotations of one live token exactly one is `Rotated`; the others see it spent
    /// (`Reused`). A successor written while its family is being killed is killed too.
    async fn rotate(&self, token_hash: &str, next: &NextRefresh, now: Timestamp) -> Result<Rotation, StoreError>;
    /// Kills every token of a family, including one a rotation in flight is writing, and
    /// answers the sessions minted beside them.
    async fn revoke_family(&self, family_id: &str) -> Result<Vec<FamilyMember>, StoreError>;
    /// The family of the token minted beside session `access_jti`, if any.
    async fn family_of_session(&self, access_jti: &str) -> Result<Option<String>, StoreError>;
}

/// What one sweep removed, table by table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Purged {
    /// Login failures older than the lockout window.
    pub attempts: u64,
    /// Pending registrations past their expiry.
    pub pending: u64,
    /// Revocations (logouts, used one-time tokens, relay nonces) of tokens now expired.
    pub revocations: u64,
    /// SMS codes past their expiry.
    pub codes: u64,
    /// OAuth states past their expiry.
    pub oauth_states: u64,
    /// Refresh tokens past their expiry.
    pub refresh_tokens: u64,
}

impl Purged {
    /// Rows removed in all.
    pub fn total(&self) -> u64 {
        self.attempts + self.pending + self.revocations + self.codes + self.oauth_states + self.refresh_tokens
    }
}

/// Removes rows that can no longer matter, so no table grows without bound
/// (docs/security.md, "Housekeeping").
#[async_trait]
pub trait Sweeper: Send + Sync {
    /// Deletes login failures from before `attempts_before`, and pending registrations,
    /// revocations, SMS codes, OAuth states and refresh tokens whose expiry is at or before
    /// `now`. Rows still
    /// in force are untouched; running it twice removes nothing the second time.
    async fn purge_expired(&self, now: Timestamp, attempts_before: Timestamp) -> Result<Purged, StoreError>;
}

/// Atomic counters for per-IP rate limits.
#[async_trait]
pub trait Counter: Send + Sync {
    /// Adds one to `key` and returns the new value. The key may be forgotten once `now` has
    /// passed `expires_at`. N parallel calls on a fresh key return exactly 1..=N.
    async fn increment(&self, key: &str, now: Timestamp, expires_at: Timestamp) -> Result<u64, StoreError>;
}

/// A rendered email.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmailMessage {
    /// Recipient address.
    pub to: String,
    /// The From header, `Name <addr>`.
    pub from: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text part.
    pub text: String,
    /// HTML part.
    pub html: String,
}

/// A rendered SMS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmsMessage {
    /// E.164 recipient.
    pub to: String,
    /// Text.
    pub body: String,
}

/// A delivery provider refused or could not be reached.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("delivery failed: {0}")]
pub struct DeliveryError(pub String);

/// Sends email.
#[async_trait]
pub trait Mailer: Send + Sync {
    /// Delivers one message.
    async fn send(&self, message: &EmailMessage) -> Result<(), DeliveryError>;
}

/// Sends SMS.
#[async_trait]
pub trait SmsSender: Send + Sync {
    /// Delivers one message.
    async fn send(&self, message: &SmsMessage) -> Result<(), DeliveryError>;
}

/// Work handed to a [`Spawner`]: it owns what it needs and outlives the request.
pub type Job = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'static>>;

/// Runs work off the request path (a tokio task natively, started at once beside the response;
/// `waitUntil` at the edge, after it), so a route answers in the same time whether or not it
/// sent anything.
pub trait Spawner: Send + Sync {
    /// Starts `job`, or answers `false` and drops it when the runtime's queue is full.
    fn spawn(&self, job: Job) -> bool;
}

/// A network failure of an outbound request (no status to show for it).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NetError(pub String);

/// The methods regstack sends with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpMethod {
    /// A read (OpenID discovery, a provider's signing keys).
    Get,
    /// A write (a webhook delivery, an OAuth token exchange).
    Post,
}

/// One outbound request (a webhook delivery, an OAuth token exchange, a key-set fetch).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboundRequest {
    /// The method.
    pub method: HttpMethod,
    /// Where.
    pub url: String,
    /// Header names and values.
    pub headers: Vec<(String, String)>,
    /// The body (empty for a GET).
    pub body: Vec<u8>,
    /// How long the whole exchange may take, body included.
    pub timeout: std::time::Duration,
    /// The most body bytes read back; a longer answer is an error, and 0 reads none (a
    /// webhook only needs the status).
    pub max_response_bytes: usize,
}

/// What came back.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InboundResponse {
    /// The status.
    pub status: u16,
    /// Header names (lower-case) and values.
    pub headers: Vec<(String, String)>,
    /// The body, at most the request's `max_response_bytes`.
    pub body: Vec<u8>,
}

/// Sends requests over the network, never following a redirect (a 3xx is the answer, so a
/// receiver cannot send a signed event or a client secret somewhere else).
#[async_trait]
pub trait HttpClient: Send + Sync {
    /// Sends `req`; the answer, or why there was none. A network error never quotes the URL
    /// or the headers, which may carry secrets.
    async fn send(&self, req: OutboundRequest) -> Result<InboundResponse, NetError>;
}

/// Waits.
#[async_trait]
pub trait Timer: Send + Sync {
    /// Returns after `duration`.
    async fn sleep(&self, duration: std::time::Duration);
}

/// Runs Argon2 somewhere appropriate (a blocking pool natively, inline at the edge).
#[async_trait]
pub trait PasswordHasher: Send + Sync {
    /// Hashes a new password with the configured parameters.
    async fn hash(&self, password: &str) -> Result<String, PasswordError>;
    /// Checks a password against any PHC Argon2 hash. `Err` only when the check could not
    /// run at all (load shedding); a wrong password or a broken hash is `ok: false`.
    async fn verify(&self, password: &str, phc: &str) -> Result<Verified, PasswordError>;
    /// The parameters [`PasswordHasher::hash`] uses, when the hasher can say. The engine then
    /// builds its timing decoy from them without hashing; otherwise it hashes a random
    /// password once at start-up.
    fn params(&self) -> Option<crate::password::HashParams> {
        None
    }
}

/// Receives lifecycle events (the hooks of docs/wire.md, "Events"). Failures are the sink's to log and
/// swallow; a hook never changes a route's answer.
#[async_trait]
pub trait EventSink: Send + Sync {
    /// Handles one event.
    async fn emit(&self, event: &Event);
}

/// The current time. The core never reads a clock itself.
pub trait Clock: Send + Sync {
    /// Now, UTC.
    fn now(&self) -> Timestamp;
}

/// Cryptographically secure randomness.
pub trait Random: Send + Sync {
    /// Fills `buf` with random bytes.
    fn fill(&self, buf: &mut [u8]);
}

/// The storage ports of one backend.
#[derive(Clone)]
pub struct Stores {
    /// Accounts.
    pub users: Arc<dyn UserStore>,
    /// Pending registrations.
    pub pending: Arc<dyn PendingStore>,
    /// Revocations.
    pub revocations: Arc<dyn RevocationStore>,
    /// The session check's read.
    pub sessions: Arc<dyn SessionLookup>,
    /// Lockout failures.
    pub attempts: Arc<dyn AttemptStore>,
    /// SMS codes.
    pub mfa_codes: Arc<dyn MfaCodeStore>,
    /// Provider links and round trips.
    pub oauth: Arc<dyn OAuthStore>,
    /// Refresh tokens.
    pub refresh: Arc<dyn RefreshTokenStore>,
    /// Browsers' push subscriptions.
    pub push: Arc<dyn PushSubscriptionStore>,
    /// Expired-row sweeping.
    pub sweeper: Arc<dyn Sweeper>,
    /// Rate-limit counters.
    pub counter: Arc<dyn Counter>,
}

impl Stores {
    /// Every storage port from one backend value that implements them all, plus a counter.
    pub fn from_one<S>(store: S, counter: Arc<dyn Counter>) -> Self
    where
        S: UserStore
            + PendingStore
            + RevocationStore
            + SessionLookup
            + AttemptStore
            + MfaCodeStore
            + OAuthStore
            + RefreshTokenStore
            + PushSubscriptionStore
            + Sweeper
            + Clone
            + 'static,
    {
        Self {
            users: Arc::new(store.clone()),
            pending: Arc::new(store.clone()),
            revocations: Arc::new(store.clone()),
            sessions: Arc::new(store.clone()),
            attempts: Arc::new(store.clone()),
            mfa_codes: Arc::new(store.clone()),
            oauth: Arc::new(store.clone()),
            refresh: Arc::new(store.clone()),
            push: Arc::new(store.clone()),
            sweeper: Arc::new(store),
            counter,
        }
    }
}

/// The [`Spawner`] of [`Ports::new`]: it runs nothing, and says so.
struct NoBackground;

impl Spawner for NoBackground {
    fn spawn(&self, _job: Job) -> bool {
        false
    }
}

/// Every port, as shared trait objects, so a runtime picks implementations at start-up.
#[derive(Clone)]
pub struct Ports {
    /// Accounts.
    pub users: Arc<dyn UserStore>,
    /// Pending registrations.
    pub pending: Arc<dyn PendingStore>,
    /// Per-token revocation.
    pub revocations: Arc<dyn RevocationStore>,
    /// The session check's read.
    pub sessions: Arc<dyn SessionLookup>,
    /// Lockout failures.
    pub attempts: Arc<dyn AttemptStore>,
    /// SMS codes.
    pub mfa_codes: Arc<dyn MfaCodeStore>,
    /// Provider links and round trips.
    pub oauth: Arc<dyn OAuthStore>,
    /// Refresh tokens.
    pub refresh: Arc<dyn RefreshTokenStore>,
    /// Browsers' push subscriptions.
    pub push: Arc<dyn PushSubscriptionStore>,
    /// Expired-row sweeping.
    pub sweeper: Arc<dyn Sweeper>,
    /// Rate-limit counters.
    pub counter: Arc<dyn Counter>,
    /// Work off the request path (sign-in alerts). [`Ports::new`] starts with one that
    /// refuses everything; a runtime sets its own.
    pub background: Arc<dyn Spawner>,
    /// Email delivery.
    pub mailer: Arc<dyn Mailer>,
    /// SMS delivery.
    pub sms: Arc<dyn SmsSender>,
    /// Argon2.
    pub hasher: Arc<dyn PasswordHasher>,
    /// Hooks.
    pub events: Arc<dyn EventSink>,
    /// Outbound HTTP (OAuth providers).
    pub http: Arc<dyn HttpClient>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Randomness.
    pub random: Arc<dyn Random>,
}

impl Ports {
    /// The storage ports from `stores` plus delivery, hashing, hooks, the network, time and
    /// randomness.
    #[allow(clippy::too_many_arguments)] // one per port; a struct of them would be this again
    pub fn new(
        stores: Stores,
        mailer: Arc<dyn Mailer>,
        sms: Arc<dyn SmsSender>,
        hasher: Arc<dyn PasswordHasher>,
        events: Arc<dyn EventSink>,
        http: Arc<dyn HttpClient>,
        clock: Arc<dyn Clock>,
        random: Arc<dyn Random>,
    ) -> Self {
        let Stores {
            users,
            pending,
            revocations,
            sessions,
            attempts,
            mfa_codes,
            oauth,
            refresh,
            push,
            sweeper,
            counter,
        } = stores;
        Self {
            users,
            pending,
            revocations,
            sessions,
            attempts,
            mfa_codes,
            oauth,
            refresh,
            push,
            sweeper,
            counter,
            background: Arc::new(NoBackground),
            mailer,
            sms,
            hasher,
            events,
            http,
            clock,
            random,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{SessionRecord, StoreError};

    #[regstack_macros::dual_test]
    fn a_revoked_token_is_refused_whatever_its_user_row_holds() {
        let broken = || Err(StoreError::Backend("unreadable row".into()));
        let revoked = SessionRecord::read(broken(), true).unwrap();
        assert!(revoked.revoked && revoked.user.is_none());
        assert_eq!(
            SessionRecord::read(broken(), false),
            Err(StoreError::Backend("unreadable row".into()))
        );
        assert_eq!(
            SessionRecord::read(Ok(None), false),
            Ok(SessionRecord {
                user: None,
                revoked: false
            })
        );
    }
}
