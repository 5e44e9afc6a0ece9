//! `POST /forgot-password`, `POST /reset-password`.

use crate::config::redact_token;
use crate::engine::Engine;
use crate::events::{Event, Link};
use crate::ids::Email;
use crate::jwt::Purpose;
use crate::records::UserPatch;
use crate::render::EmailKind;
use crate::time::from_micros;
use crate::token::new_jti;

use super::{send_email, FlowError, FlowResult};

/// Emails a reset link to an active account (OAuth-only ones included: reset doubles as "set
/// a first password"). Answers the same for every address.
pub async fn forgot(engine: &Engine, email: Email) -> FlowResult<()> {
    if !engine.config.enable_password_reset {
        return Err(FlowError::PasswordResetDisabled);
    }
    let Some(user) = engine.ports.users.find_by_email(email.as_str()).await? else {
        return Ok(());
    };
    if !user.is_active {
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
    let url = engine.config.password_reset_url(&token);
    send_email(
        engine,
        EmailKind::PasswordReset,
        &user.email,
        user.full_name.as_deref(),
        &url,
        None,
    )
    .await?;
    let link = Link {
        url_without_token: redact_token(&url, &token),
        url,
    };
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
    let hashed = engine.ports.hasher.hash(new_password).await?;
    let exp = from_micros(claims.exp.saturating_mul(1_000_000));
    if !engine.ports.revocations.revoke(&claims.jti, exp).await? {
        return Err(FlowError::ResetInvalid);
    }
    let now = engine.now();
    let patch = UserPatch {
        hashed_password: Some(Some(hashed)),
        tokens_invalidated_after: Some(now),
        ..UserPatch::default()
    };
    let user = engine.ports.users.update(&user.id, &patch, now).await?;
    engine.ports.attempts.clear(&user.email).await?;
    engine.ports.events.emit(&Event::PasswordResetCompleted { user }).await;
    Ok(())
}
