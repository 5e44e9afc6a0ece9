//! Refresh tokens (docs/refresh-tokens.md): issued beside a session when
//! `enable_refresh_tokens` is on, rotated on every use, and killed with their whole family
//! when a spent one comes back (reuse), at logout (that family), and whenever the account's
//! sessions end (a password change or reset, a sign-out everywhere, an admin disable, account
//! deletion).

use crate::engine::Engine;
use crate::jwt::Purpose;
use crate::ports::{NextRefresh, Rotation};
use crate::records::RefreshToken;
use crate::time::plus_seconds;
use crate::token::{hash_secret, new_jti, new_url_token};

use super::session::issued_before_cutoff;
use super::{FlowError, FlowResult};

/// A rotation's answer.
#[derive(Debug)]
pub struct Refreshed {
    /// The new session.
    pub access_token: String,
    /// Its lifetime in seconds.
    pub expires_in: i64,
    /// The new refresh token (the one presented is spent).
    pub refresh_token: String,
}

fn lifetime(engine: &Engine) -> i64 {
    engine.config.refresh_token_expire_days * 86_400
}

/// Starts a family for a sign-in whose session has `access_jti` and was issued at
/// `issued_at` (the family is as old as its session, so a bulk sign-out after the session
/// ends the family too); the raw token (only its SHA-256 is stored). `None` unless refresh
/// tokens are on.
pub(crate) async fn issue(
    engine: &Engine,
    user_id: &str,
    access_jti: &str,
    issued_at: crate::time::Timestamp,
) -> FlowResult<Option<String>> {
    if !engine.config.enable_refresh_tokens {
        return Ok(None);
    }
    let raw = new_url_token(engine.ports.random.as_ref());
    let token = RefreshToken {
        id: engine.new_id(),
        user_id: user_id.to_string(),
        family_id: engine.new_id(),
        token_hash: hash_secret(&raw),
        access_jti: access_jti.to_string(),
        created_at: issued_at,
        expires_at: plus_seconds(issued_at, lifetime(engine)),
        used_at: None,
        revoked: false,
    };
    engine.ports.refresh.put(&token).await?;
    Ok(Some(raw))
}

/// Trades a refresh token for a new session and a new refresh token of the same family.
/// Any refusal is [`FlowError::RefreshInvalid`]; a spent token kills its family first.
pub async fn refresh(engine: &Engine, raw: &str) -> FlowResult<Refreshed> {
    let now = engine.now();
    let jti = new_jti(engine.ports.random.as_ref());
    let next_raw = new_url_token(engine.ports.random.as_ref());
    let next = NextRefresh {
        id: engine.new_id(),
        token_hash: hash_secret(&next_raw),
        access_jti: jti.clone(),
        expires_at: plus_seconds(now, lifetime(engine)),
    };
    let (previous, next) = match engine.ports.refresh.rotate(&hash_secret(raw), &next, now).await? {
        Rotation::Rotated { previous, next } => (previous, next),
        Rotation::Reused(spent) => {
            tracing::warn!(
                target: "regstack.refresh",
                user_id = %spent.user_id,
                "a spent refresh token was presented again; its family is revoked"
            );
            kill_family(engine, &spent.family_id).await?;
            return Err(FlowError::RefreshInvalid);
        }
        Rotation::Expired | Rotation::Unknown => return Err(FlowError::RefreshInvalid),
    };
    let user = engine.ports.users.get(&previous.user_id).await?;
    let Some(user) = user.filter(|u| u.is_active && !issued_before_cutoff(u, previous.created_at)) else {
        // The account's sessions have ended since this family began.
        kill_family(engine, &previous.family_id).await?;
        return Err(FlowError::RefreshInvalid);
    };
    let ttl = engine.config.jwt_ttl_seconds;
    let (access_token, claims) = engine.jwt.mint(Purpose::Session, &user.id, None, &jti, now, ttl);
    if next.revoked {
        // The family was killed while this rotation ran: what it hands out is dead too.
        engine.ports.revocations.revoke(&jti, claims.expires_at()).await?;
    }
    Ok(Refreshed {
        access_token,
        expires_in: ttl,
        refresh_token: next_raw,
    })
}

/// Kills a family: its refresh tokens, and the sessions minted beside them that may still be
/// live (older ones have expired; they need no blacklist row).
pub(crate) async fn kill_family(engine: &Engine, family_id: &str) -> FlowResult<()> {
    let ttl = engine.config.jwt_ttl_seconds;
    let now = engine.now();
    for member in engine.ports.refresh.revoke_family(family_id).await? {
        let until = plus_seconds(member.issued_at, ttl + 1);
        if until > now {
            engine.ports.revocations.revoke(&member.access_jti, until).await?;
        }
    }
    Ok(())
}

/// At logout: the family of the session that signs out, if it has one.
pub(crate) async fn end_family_of(engine: &Engine, access_jti: &str) -> FlowResult<()> {
    if !engine.config.enable_refresh_tokens {
        return Ok(());
    }
    if let Some(family) = engine.ports.refresh.family_of_session(access_jti).await? {
        kill_family(engine, &family).await?;
    }
    Ok(())
}
