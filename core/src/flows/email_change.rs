//! `POST /change-email`, `POST /confirm-email-change`.

use crate::email::key as lockout_key;
use crate::email::Email;
use crate::engine::Engine;
use crate::events::Event;
use crate::flows::account::check_current_password;
use crate::flows::register::conflict_as;
use crate::flows::session::{issued_before_cutoff, Session};
use crate::jwt::Purpose;
use crate::records::{User, UserPatch};
use crate::render::{EmailKind, Notice};
use crate::token::new_jti;

use super::{claim_once, mail_allowed, send_link, send_notice, FlowError, FlowResult};

/// Emails a confirmation link to the new address. Answers the same when the address is taken
/// (nothing is sent then), so this route does not reveal who has an account.
pub async fn request_change(
    engine: &Engine,
    session: &Session,
    new_email: Email,
    current_password: &str,
) -> FlowResult<()> {
    let user = &session.user;
    if crate::email::key(&user.email) == new_email.as_str() {
        return Err(FlowError::SameEmail);
    }
    check_current_password(engine, user, current_password).await?;
    let allowed = mail_allowed(engine, new_email.as_str()).await?;
    if engine.ports.users.find_by_email(new_email.as_str()).await?.is_some() {
        tracing::info!(target: "regstack.account", user_id = %user.id, "email change requested to an address already in use; nothing sent");
        return Ok(());
    }
    if !allowed {
        return Ok(());
    }
    let now = engine.now();
    let jti = new_jti(engine.ports.random.as_ref());
    let ttl = engine.config.email_change_token_ttl_seconds;
    let (token, _) = engine
        .jwt
        .mint(Purpose::EmailChange, &user.id, Some(new_email.as_str()), &jti, now, ttl);
    let link = send_link(
        engine,
        EmailKind::EmailChange,
        new_email.as_str(),
        user.full_name.as_deref(),
        &token,
        Some(new_email.as_str()),
    )
    .await?;
    engine
        .ports
        .events
        .emit(&Event::EmailChangeRequested {
            user: user.clone(),
            new_email: new_email.into_string(),
            link,
        })
        .await;
    Ok(())
}

/// Applies an email change. The token is single-use (docs/wire.md, "Decision 7 (10)"): its `jti` is claimed
/// atomically before the address changes.
pub async fn confirm_change(engine: &Engine, token: &str) -> FlowResult<User> {
    let now = engine.now();
    let claims = engine
        .jwt
        .decode(token, Purpose::EmailChange, now)
        .map_err(|_| FlowError::EmailChangeInvalid)?;
    let new_email = claims.extra.clone().ok_or(FlowError::EmailChangeInvalid)?;
    if engine.ports.revocations.is_revoked(&claims.jti).await? {
        return Err(FlowError::EmailChangeInvalid);
    }
    let user = match engine.ports.users.get(&claims.sub).await? {
        Some(u) if u.is_active => u,
        _ => return Err(FlowError::TokenUserInactive),
    };
    // A link from before a password reset or change is dead, so whoever started a change
    // cannot finish it after the owner took the account back.
    if issued_before_cutoff(&user, claims.iat) {
        return Err(FlowError::EmailChangeInvalid);
    }
    if let Some(other) = engine.ports.users.find_by_email(&new_email).await? {
        if other.id != user.id {
            return Err(FlowError::EmailInUse);
        }
    }
    if !claim_once(engine, &claims).await? {
        return Err(FlowError::EmailChangeInvalid);
    }
    let previous_email = user.email.clone();
    let patch = UserPatch {
        email: Some(new_email),
        tokens_invalidated_after: Some(now),
        ..UserPatch::default()
    };
    let user = engine
        .ports
        .users
        .update(&user.id, &patch, now)
        .await
        .map_err(conflict_as(FlowError::EmailInUse))?;
    engine.ports.attempts.clear(&lockout_key(&previous_email)).await?;
    send_notice(
        engine,
        Notice::EmailChanged {
            new_email: user.email.clone(),
        },
        &previous_email,
        user.full_name.as_deref(),
    )
    .await?;
    engine
        .ports
        .events
        .emit(&Event::EmailChanged {
            user: user.clone(),
            previous_email,
        })
        .await;
    Ok(user)
}
