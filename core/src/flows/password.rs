//! `POST /forgot-password`, `POST /reset-password`.

use crate::email::Email;
use crate::engine::Engine;
use crate::events::Event;
use crate::flows::account::set_password_hash;
use crate::flows::session::issued_before_cutoff;
use crate::jwt::Purpose;
use crate::render::EmailKind;
use crate::token::new_jti;

use super::{claim_once, mail_allowed, send_link, FlowError, FlowResult};

/// Emails a reset link to an active account (OAuth-only ones included: reset doubles as "set
/// a first password"). Answers the same for every address.
pub async fn forgot(engine: &Engine, email: Email) -> FlowResult<()> {
    if !engine.config.enable_password_reset {
        return Err(FlowError::PasswordResetDisabled);
    }
    let allowed = mail_allowed(engine, email.as_str()).await?;
    let Some(user) = engine.ports.users.find_by_email(email.as_str()).await? else {
        return Ok(());
    };
    if !user.is_active || !allowed {
        return Ok(());
    }
    let now = engine.now();
    let jti = new_jti(engine.ports.random.as_ref());
    let (token, _) = engine.jwt.mint(
        Purpose::PasswordReset,
        &user.id,
        None,
        &jti,
        now,
        engine.config.password_reset_token_ttl_seconds,
    );
    let link = send_link(
        engine,
        EmailKind::PasswordReset,
        &user.email,
        user.full_name.as_deref(),
        &token,
        None,
    )
    .await?;
    engine
        .ports
        .events
        .emit(&Event::PasswordResetRequested { user, link })
        .await;
    Ok(())
}

/// Sets a new password from a reset link. The link works once: its `jti` is claimed
/// atomically, so of N parallel uses exactly one succeeds.
pub async fn reset(engine: &Engine, token: &str, new_password: &str) -> FlowResult<()> {
    if !engine.config.enable_password_reset {
        return Err(FlowError::PasswordResetDisabled);
    }
    let now = engine.now();
    let claims = engine
        .jwt
        .decode(token, Purpose::PasswordReset, now)
        .map_err(|_| FlowError::ResetInvalid)?;
    if engine.ports.revocations.is_revoked(&claims.jti).await? {
        return Err(FlowError::ResetInvalid);
    }
    let user = match engine.ports.users.get(&claims.sub).await? {
        Some(u) if u.is_active => u,
        _ => return Err(FlowError::ResetUserInactive),
    };
    // A link from before a password change or another reset is dead (the cutoff moved).
    if issued_before_cutoff(&user, claims.iat) {
        return Err(FlowError::ResetInvalid);
    }
    // Hash before claiming: a request cancelled while it waits for a hashing slot must not
    // have used up the link. The claim and the write then follow without a slow step between.
    let hashed = engine.ports.hasher.hash(new_password).await?;
    if !claim_once(engine, &claims).await? {
        return Err(FlowError::ResetInvalid);
    }
    let user = set_password_hash(engine, &user, hashed).await?;
    engine.ports.events.emit(&Event::PasswordResetCompleted { user }).await;
    Ok(())
}
