//! `POST /register`, `POST /verify`, `POST /resend-verification`.

use crate::email::Email;
use crate::engine::Engine;
use crate::events::Event;
use crate::ports::StoreError;
use crate::records::{PendingRegistration, User, UserPatch};
use crate::render::EmailKind;
use crate::time::plus_seconds;
use crate::token::{hash_secret, new_url_token};

use super::{mail_allowed, send_link, FlowError, FlowResult};

/// What `/register` created.
#[derive(Debug)]
pub enum Registered {
    /// `require_verification=false`: a verified user.
    User(User),
    /// `require_verification=true`: a pending row, and an email on its way.
    Pending(PendingRegistration),
}

/// Registers an account, directly or through a pending row and a verification email.
pub async fn register(
    engine: &Engine,
    email: Email,
    password: &str,
    full_name: Option<String>,
) -> FlowResult<Registered> {
    let config = &engine.config;
    if !config.allow_registration {
        return Err(FlowError::RegistrationDisabled);
    }
    if engine.ports.users.find_by_email(email.as_str()).await?.is_some() {
        return Err(FlowError::EmailTaken);
    }
    let hashed = engine.ports.hasher.hash(password).await?;
    if !config.require_verification {
        let mut user = engine.new_user(email.into_string(), Some(hashed));
        user.is_verified = true;
        user.full_name = full_name;
        let user = engine
            .ports
            .users
            .create(&user)
            .await
            .map_err(conflict_as(FlowError::EmailTaken))?;
        engine
            .ports
            .events
            .emit(&Event::UserRegistered { user: user.clone() })
            .await;
        return Ok(Registered::User(user));
    }
    let allowed = mail_allowed(engine, email.as_str()).await?;
    let pending = issue_pending(engine, email.as_str(), hashed, full_name, allowed).await?;
    Ok(Registered::Pending(pending))
}

/// Writes (or replaces) the pending row for `email` with a new token and emails the link.
/// When `email_rate_limit` says no more mail to this address (`send_allowed` false), nothing
/// is sent and a pending row that exists keeps its token (the link already sent stays valid).
pub(crate) async fn issue_pending(
    engine: &Engine,
    email: &str,
    hashed_password: String,
    full_name: Option<String>,
    send_allowed: bool,
) -> FlowResult<PendingRegistration> {
    if !send_allowed {
        if let Some(existing) = engine.ports.pending.find_by_email(email).await? {
            // The link already sent stays valid, and, as when a link is sent, the latest
            // registration's password and name are the ones it will create the account with.
            let kept = PendingRegistration {
                hashed_password,
                full_name,
                ..existing
            };
            engine.ports.pending.put(&kept).await?;
            return Ok(kept);
        }
    }
    let now = engine.now();
    let token = new_url_token(engine.ports.random.as_ref());
    let pending = PendingRegistration {
        id: engine.new_id(),
        email: email.to_string(),
        hashed_password,
        full_name,
        token_hash: hash_secret(&token),
        created_at: now,
        expires_at: plus_seconds(now, engine.config.verification_token_ttl_seconds),
    };
    engine.ports.pending.put(&pending).await?;
    if !send_allowed {
        return Ok(pending);
    }
    let link = send_link(
        engine,
        EmailKind::Verification,
        email,
        pending.full_name.as_deref(),
        &token,
        None,
    )
    .await?;
    engine
        .ports
        .events
        .emit(&Event::VerificationRequested {
            email: email.to_string(),
            link,
        })
        .await;
    Ok(pending)
}

/// Turns a pending row into a verified user. The token is consumed exactly once.
pub async fn verify(engine: &Engine, token: &str) -> FlowResult<User> {
    let now = engine.now();
    let pending = engine
        .ports
        .pending
        .take_by_token_hash(&hash_secret(token))
        .await?
        .ok_or(FlowError::VerificationInvalid)?;
    if pending.expires_at <= now {
        return Err(FlowError::VerificationInvalid);
    }
    promote(engine, pending).await
}

/// Makes a user from a consumed pending row. An existing unverified user with that email is
/// marked verified instead (docs/wire.md, "Decision 7 (3)"); a verified one means the link is stale.
pub(crate) async fn promote(engine: &Engine, pending: PendingRegistration) -> FlowResult<User> {
    let now = engine.now();
    if let Some(existing) = engine.ports.users.find_by_email(&pending.email).await? {
        if existing.is_verified {
            return Err(FlowError::AlreadyRegistered);
        }
        let patch = UserPatch {
            is_verified: Some(true),
            ..UserPatch::default()
        };
        let user = engine.ports.users.update(&existing.id, &patch, now).await?;
        engine
            .ports
            .events
            .emit(&Event::UserVerified { user: user.clone() })
            .await;
        return Ok(user);
    }
    create_from_pending(engine, pending, FlowError::AlreadyRegistered).await
}

/// Creates the active, verified account a consumed pending row describes and fires
/// `user_verified`; `taken` is the answer when the address turns out to be taken.
pub(crate) async fn create_from_pending(
    engine: &Engine,
    pending: PendingRegistration,
    taken: FlowError,
) -> FlowResult<User> {
    let mut user = engine.new_user(pending.email, Some(pending.hashed_password));
    user.is_verified = true;
    user.full_name = pending.full_name;
    let user = engine.ports.users.create(&user).await.map_err(conflict_as(taken))?;
    engine
        .ports
        .events
        .emit(&Event::UserVerified { user: user.clone() })
        .await;
    Ok(user)
}

/// Re-sends the verification email for a pending registration. Answers the same whatever the
/// address is; only a pending row (and no user) gets a new link.
pub async fn resend_verification(engine: &Engine, email: Email) -> FlowResult<()> {
    let allowed = mail_allowed(engine, email.as_str()).await?;
    if engine.ports.users.find_by_email(email.as_str()).await?.is_some() || !allowed {
        return Ok(());
    }
    if let Some(pending) = engine.ports.pending.find_by_email(email.as_str()).await? {
        issue_pending(engine, &pending.email, pending.hashed_password, pending.full_name, true).await?;
    }
    Ok(())
}

/// Maps a unique-constraint conflict to a business error and leaves other errors alone.
pub(crate) fn conflict_as(to: FlowError) -> impl FnOnce(StoreError) -> FlowError {
    move |e| match e {
        StoreError::Conflict(_) => to,
        other => FlowError::Store(other),
    }
}
