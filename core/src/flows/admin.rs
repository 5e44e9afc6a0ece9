//! The admin API (docs/wire.md, "Admin"): superuser-only operations on any account, and the
//! host's own ways in ([`bootstrap_admin`], [`promote_pending`]) that need no session.

use crate::engine::Engine;
use crate::events::Event;
use crate::ports::UserCounts;
use crate::records::{User, UserPatch};

use super::register::{create_from_pending, issue_pending};
use super::{count_mail_to, FlowError, FlowResult};

/// `GET /admin/stats`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stats {
    /// The users, by flag.
    pub users: UserCounts,
    /// Pending registrations that have not expired.
    pub pending_registrations: u64,
}

/// Counts of users and of live pending registrations.
pub async fn stats(engine: &Engine) -> FlowResult<Stats> {
    let users = engine.ports.users.counts().await?;
    let pending_registrations = engine.ports.pending.count_live(engine.now()).await?;
    Ok(Stats {
        users,
        pending_registrations,
    })
}

/// One page of `GET /admin/users`.
#[derive(Clone, Debug, PartialEq)]
pub struct UserPage {
    /// The users, newest first.
    pub items: Vec<User>,
    /// Every user.
    pub total: u64,
    /// Users skipped before this page.
    pub skip: u64,
    /// The page size asked for.
    pub limit: u64,
}

/// The bounds of `limit` (docs/wire.md, "Admin").
pub const PAGE_LIMIT_MAX: u64 = 200;

/// Users newest first, `limit` at a time after `skip` (validated by the handler).
pub async fn list_users(engine: &Engine, skip: u64, limit: u64) -> FlowResult<UserPage> {
    let total = engine.ports.users.total().await?;
    // Past the end there is nothing to read (and no offset too large for a driver to carry).
    let items = if skip >= total {
        Vec::new()
    } else {
        engine.ports.users.list(skip, limit.min(PAGE_LIMIT_MAX)).await?
    };
    Ok(UserPage {
        items,
        total,
        skip,
        limit,
    })
}

/// The user with this id, or [`FlowError::UserNotFound`].
pub async fn get_user(engine: &Engine, id: &str) -> FlowResult<User> {
    engine.ports.users.get(id).await?.ok_or(FlowError::UserNotFound)
}

/// What an admin may change on an account; `None` leaves a field alone (an admin cannot clear
/// a name, as in regstack 0.9.3).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AdminPatch {
    /// `false` disables the account and ends its sessions.
    pub is_active: Option<bool>,
    /// Administrator flag.
    pub is_superuser: Option<bool>,
    /// Display name.
    pub full_name: Option<String>,
    /// Role (see `default_user_role`).
    pub role: Option<String>,
}

/// Refuses to remove the last administrator who can sign in (an active superuser): the
/// instance could then only be recovered from outside. The caller passed the admin guard, so
/// this can only be the caller acting on their own account.
async fn keep_an_administrator(engine: &Engine, target: &User) -> FlowResult<()> {
    if target.is_superuser && target.is_active && engine.ports.users.counts().await?.active_superusers <= 1 {
        return Err(FlowError::LastSuperuser);
    }
    Ok(())
}

/// Applies an admin's change. Disabling an account also moves its revocation cutoff, so every
/// token it holds dies on its next request. The last active superuser can neither drop the
/// flag nor be disabled ([`FlowError::LastSuperuser`]).
pub async fn update_user(engine: &Engine, id: &str, change: AdminPatch) -> FlowResult<User> {
    let target = get_user(engine, id).await?;
    let now = engine.now();
    if change.is_superuser == Some(false) || change.is_active == Some(false) {
        keep_an_administrator(engine, &target).await?;
    }
    let patch = UserPatch {
        is_active: change.is_active,
        is_superuser: change.is_superuser,
        full_name: change.full_name.map(Some),
        role: change.role,
        tokens_invalidated_after: (change.is_active == Some(false)).then_some(now),
        ..UserPatch::default()
    };
    match engine.ports.users.update(&target.id, &patch, now).await {
        Ok(user) => Ok(user),
        Err(crate::ports::StoreError::NotFound) => Err(FlowError::UserNotFound),
        Err(e) => Err(e.into()),
    }
}

/// Deletes an account with the same cascade as `DELETE /account`; returns it as it was. The
/// last active superuser cannot be deleted this way.
pub async fn delete_user(engine: &Engine, id: &str) -> FlowResult<User> {
    let user = get_user(engine, id).await?;
    keep_an_administrator(engine, &user).await?;
    if !engine.ports.users.delete(&user).await? {
        return Err(FlowError::UserNotFound);
    }
    engine
        .ports
        .events
        .emit(&Event::UserDeleted { user: user.clone() })
        .await;
    Ok(user)
}

/// Emails a new verification link to an unverified account, through a pending row made from
/// its data (the link marks the existing user verified; docs/wire.md, "Decision 7 (3)"). The
/// recipient's `email_rate_limit` applies to admins too: past it the answer is 429, not a
/// claim that mail went out.
pub async fn resend_verification(engine: &Engine, id: &str) -> FlowResult<User> {
    let user = get_user(engine, id).await?;
    if user.is_verified {
        return Err(FlowError::AlreadyVerified);
    }
    let Some(hashed_password) = user.hashed_password.clone() else {
        return Err(FlowError::NoPasswordToVerify);
    };
    count_mail_to(engine, &user.email).await?;
    issue_pending(engine, &user.email, hashed_password, user.full_name.clone(), true).await?;
    Ok(user)
}

/// Turns the pending registration for `email` into an active, verified account without its
/// link (`POST /admin/pending/{email}/promote`, and hosts' own tooling). An expired row is
/// deleted and counts as missing; a user with the address already is a conflict.
pub async fn promote_pending(engine: &Engine, email: &str) -> FlowResult<User> {
    let missing = || FlowError::NoPendingRegistration(email.to_string());
    let now = engine.now();
    let pending = engine.ports.pending.find_by_email(email).await?.ok_or_else(missing)?;
    if pending.expires_at <= now {
        // By its token: a registration that replaced it meanwhile stays.
        engine.ports.pending.take_by_token_hash(&pending.token_hash).await?;
        return Err(missing());
    }
    if engine.ports.users.find_by_email(&pending.email).await?.is_some() {
        return Err(FlowError::UserExists(email.to_string()));
    }
    // Taken atomically: of two promotions racing, one gets the row.
    let pending = engine
        .ports
        .pending
        .take_by_email(&pending.email)
        .await?
        .ok_or_else(missing)?;
    create_from_pending(engine, pending, FlowError::UserExists(email.to_string())).await
}

/// What [`bootstrap_admin`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bootstrapped {
    /// A new superuser account was made.
    Created,
    /// An existing account became a superuser (its password was left alone).
    Promoted,
    /// The account was a superuser already; nothing changed.
    AlreadyAdmin,
}

/// Makes `email` an administrator: creates an active, verified superuser with `password` when
/// no account has the address, else sets the existing account's superuser flag and leaves the
/// rest alone (its password, and whether it is active: a disabled account stays disabled).
/// Idempotent; says truthfully which it did (docs/wire.md, "Decision 7 (13)"). For
/// `regstack create-admin` and host code; it needs no session.
pub async fn bootstrap_admin(engine: &Engine, email: &str, password: &str) -> FlowResult<(Bootstrapped, User)> {
    match bootstrap_once(engine, email, password).await {
        // Created by someone else in between: promote that one instead (once).
        Err(FlowError::Store(crate::ports::StoreError::Conflict(_))) => bootstrap_once(engine, email, password).await,
        other => other,
    }
}

async fn bootstrap_once(engine: &Engine, email: &str, password: &str) -> FlowResult<(Bootstrapped, User)> {
    let email = crate::email::Email::parse(email).map_err(|e| FlowError::InvalidEmail(e.0.to_string()))?;
    if let Some(existing) = engine.ports.users.find_by_email(email.as_str()).await? {
        if existing.is_superuser {
            return Ok((Bootstrapped::AlreadyAdmin, existing));
        }
        let patch = UserPatch {
            is_superuser: Some(true),
            ..UserPatch::default()
        };
        let user = engine.ports.users.update(&existing.id, &patch, engine.now()).await?;
        return Ok((Bootstrapped::Promoted, user));
    }
    if password.chars().count() < 8 || password.chars().count() > 128 {
        return Err(FlowError::PasswordLength);
    }
    let hashed = engine.ports.hasher.hash(password).await?;
    let mut user = engine.new_user(email.into_string(), Some(hashed));
    user.is_verified = true;
    user.is_superuser = true;
    Ok((Bootstrapped::Created, engine.ports.users.create(&user).await?))
}
