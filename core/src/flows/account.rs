//! `GET /me`, `PATCH /me`, `POST /change-password`, `DELETE /account`.

use crate::email::key as lockout_key;
use crate::engine::Engine;
use crate::events::Event;
use crate::flows::guess::Guess;
use crate::flows::session::Session;
use crate::records::{User, UserPatch};

use super::{FlowError, FlowResult};

/// Checks `current_password` against the account's hash; an OAuth-only account has none.
/// The check is a guess like a login: it counts toward the account's lockout, so a stolen
/// session cannot try passwords for free, and a locked account answers the lockout's 429.
pub(crate) async fn check_current_password(engine: &Engine, user: &User, current_password: &str) -> FlowResult<String> {
    let Some(hash) = user.hashed_password.clone() else {
        return Err(FlowError::NoPassword);
    };
    let guess = Guess::reserve(engine, &user.email, None).await?;
    let verified = match engine.ports.hasher.verify(current_password, &hash).await {
        Ok(v) => v,
        Err(e) => {
            guess.right(engine).await?;
            return Err(e.into());
        }
    };
    if !verified.ok {
        return Err(FlowError::WrongCurrentPassword);
    }
    guess.right(engine).await?;
    Ok(hash)
}

/// Updates the profile. `full_name: None` leaves it alone; `Some(None)` clears it
/// (docs/wire.md, "Decision 7 (7)").
pub async fn update_profile(engine: &Engine, session: &Session, full_name: Option<Option<String>>) -> FlowResult<User> {
    if full_name.is_none() {
        return Ok(session.user.clone());
    }
    let patch = UserPatch {
        full_name,
        ..UserPatch::default()
    };
    Ok(engine
        .ports
        .users
        .update(&session.user.id, &patch, engine.now())
        .await?)
}

/// Changes the password and signs out every session, the caller's included.
pub async fn change_password(
    engine: &Engine,
    session: &Session,
    current_password: &str,
    new_password: &str,
) -> FlowResult<()> {
    let user = &session.user;
    check_current_password(engine, user, current_password).await?;
    if new_password == current_password {
        return Err(FlowError::SamePassword);
    }
    let hashed = engine.ports.hasher.hash(new_password).await?;
    let user = set_password_hash(engine, user, hashed).await?;
    engine.ports.events.emit(&Event::PasswordChanged { user }).await;
    Ok(())
}

/// Stores a new password hash and ends every session issued before now; clears the lockout.
pub(crate) async fn set_password_hash(engine: &Engine, user: &User, hashed: String) -> FlowResult<User> {
    let now = engine.now();
    let patch = UserPatch {
        hashed_password: Some(Some(hashed)),
        tokens_invalidated_after: Some(now),
        ..UserPatch::default()
    };
    let user = engine.ports.users.update(&user.id, &patch, now).await?;
    engine.ports.attempts.clear(&lockout_key(&user.email)).await?;
    Ok(user)
}

/// Deletes the caller's account and everything hanging off it.
pub async fn delete_account(engine: &Engine, session: &Session, current_password: &str) -> FlowResult<()> {
    if !engine.config.enable_account_deletion {
        return Err(FlowError::AccountDeletionDisabled);
    }
    check_current_password(engine, &session.user, current_password).await?;
    engine.ports.users.delete(&session.user).await?;
    engine
        .ports
        .events
        .emit(&Event::UserDeleted {
            user: session.user.clone(),
        })
        .await;
    Ok(())
}
