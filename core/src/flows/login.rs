//! `POST /login`, `POST /logout`.

use crate::engine::Engine;
use crate::events::Event;
use crate::flows::guess::Guess;
use crate::flows::session::Session;
use crate::ids::Email;
use crate::jwt::Purpose;
use crate::records::{User, UserPatch};
use crate::token::new_jti;

use super::{FlowError, FlowResult};

/// What `/login` answers.
#[derive(Debug)]
pub enum LoginOutcome {
    /// A session.
    Session(LoggedIn),
    /// A second factor is needed: an SMS code was sent.
    MfaRequired {
        /// The `login_mfa` token for `/login/mfa-confirm`.
        mfa_pending_token: String,
        /// Its lifetime in seconds.
        expires_in: i64,
    },
}

/// A successful login.
#[derive(Debug)]
pub struct LoggedIn {
    /// The session JWT.
    pub access_token: String,
    /// Its lifetime in seconds.
    pub expires_in: i64,
    /// The user after `last_login` was set.
    pub user: User,
}

/// Signs in with email and password (contract §1.3, the seven steps, in order). The lockout
/// slot is reserved atomically before the password is checked, so parallel guesses cannot
/// exceed the threshold.
pub async fn login(engine: &Engine, email: Email, password: &str, ip: Option<&str>) -> FlowResult<LoginOutcome> {
    // Looked up before the slot is reserved, so a store failure here costs no guess.
    let user = engine.ports.users.find_by_email(email.as_str()).await?;
    let guess = Guess::reserve(engine, email.as_str(), ip).await?;
    let bad = |guess: &Guess| FlowError::BadCredentials {
        remaining: guess.remaining(engine),
    };

    let stored = user.as_ref().and_then(|u| u.hashed_password.clone());
    // An unknown email or a password-less account still costs one Argon2 verification.
    let verified = match engine
        .ports
        .hasher
        .verify(password, stored.as_deref().unwrap_or(&engine.decoy_hash))
        .await
    {
        Ok(v) => v,
        Err(e) => {
            // Shed before any check ran: this was no guess.
            guess.right(engine).await?;
            return Err(e.into());
        }
    };
    let (Some(user), Some(_), true) = (user, stored, verified.ok) else {
        return Err(bad(&guess));
    };
    if !user.is_active {
        return Err(FlowError::AccountDisabled);
    }
    if engine.config.require_verification && !user.is_verified {
        return Err(FlowError::NotVerified);
    }
    if let (true, Some(phone)) = (user.is_mfa_enabled, user.phone_number.as_deref()) {
        // A correct password is not a failure, but the lockout is only cleared once the second
        // factor is done; wrong codes then count toward it like wrong passwords.
        guess.right(engine).await?;
        // The plaintext is gone by the time the code is confirmed, so an old hash is upgraded
        // now: the password was right, and the stored hash still only opens the first factor.
        if verified.needs_rehash {
            let patch = rehash_patch(engine, password).await;
            if patch.hashed_password.is_some() {
                engine.ports.users.update(&user.id, &patch, engine.now()).await?;
            }
        }
        let (mfa_pending_token, expires_in) = super::phone::begin_login(engine, &user, phone).await?;
        return Ok(LoginOutcome::MfaRequired {
            mfa_pending_token,
            expires_in,
        });
    }
    let patch = if verified.needs_rehash {
        rehash_patch(engine, password).await
    } else {
        UserPatch::default()
    };
    let logged_in = finish_login(engine, &user, patch).await?;
    Ok(LoginOutcome::Session(logged_in))
}

/// A patch that stores a hash of `password` with the configured parameters, when
/// `password_rehash_on_login` is on; empty if it is off or hashing failed (the old hash stays).
async fn rehash_patch(engine: &Engine, password: &str) -> UserPatch {
    let mut patch = UserPatch::default();
    if engine.config.password_rehash_on_login {
        match engine.ports.hasher.hash(password).await {
            Ok(h) => patch.hashed_password = Some(Some(h)),
            Err(e) => {
                tracing::warn!(target: "regstack.password", error = %e, "rehash on login failed; keeping the old hash")
            }
        }
    }
    patch
}

/// Completes a sign-in: a session, `last_login`, the lockout cleared (the store compares
/// emails case-insensitively, so this also clears the submitted spelling), `user_logged_in`.
pub(crate) async fn finish_login(engine: &Engine, user: &User, patch: UserPatch) -> FlowResult<LoggedIn> {
    let logged_in = issue_session(engine, user, patch).await?;
    engine.ports.attempts.clear(&user.email).await?;
    engine
        .ports
        .events
        .emit(&Event::UserLoggedIn {
            user: logged_in.user.clone(),
        })
        .await;
    Ok(logged_in)
}

/// Mints a session for `user`, records `last_login = iat` (plus any extra `patch`).
async fn issue_session(engine: &Engine, user: &User, mut patch: UserPatch) -> FlowResult<LoggedIn> {
    let now = engine.now();
    let ttl = engine.config.jwt_ttl_seconds;
    let jti = new_jti(engine.ports.random.as_ref());
    let (access_token, claims) = engine.jwt.mint(Purpose::Session, &user.id, None, &jti, now, ttl);
    patch.last_login = Some(claims.iat);
    let user = engine.ports.users.update(&user.id, &patch, now).await?;
    Ok(LoggedIn {
        access_token,
        expires_in: ttl,
        user,
    })
}

/// Revokes the caller's token until it would have expired anyway.
pub async fn logout(engine: &Engine, session: &Session) -> FlowResult<()> {
    engine
        .ports
        .revocations
        .revoke(&session.claims.jti, session.claims.expires_at())
        .await?;
    engine
        .ports
        .events
        .emit(&Event::UserLoggedOut {
            user: session.user.clone(),
        })
        .await;
    Ok(())
}
