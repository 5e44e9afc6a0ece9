//! `POST /login`, `POST /logout`.

use crate::email::key as lockout_key;
use crate::email::Email;
use crate::engine::Engine;
use crate::events::Event;
use crate::flows::guess::Guess;
use crate::flows::session::Session;
use crate::jwt::Purpose;
use crate::push::SignInMethod;
use crate::records::{User, UserPatch};
use crate::token::new_jti;

use super::{FlowError, FlowResult};

/// What `/login` answers.
#[derive(Debug)]
pub enum LoginOutcome {
    /// A session.
    Session(Box<LoggedIn>),
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
    /// A refresh token beside the session (`enable_refresh_tokens`).
    pub refresh_token: Option<String>,
    /// The session's `jti`.
    pub jti: String,
    /// The session's `iat`.
    pub issued_at: crate::time::Timestamp,
}

/// Signs in with email and password (docs/wire.md, "Login, MFA, logout", the seven steps, in order). The lockout
/// slot is reserved atomically before the password is checked, so parallel guesses cannot
/// exceed the threshold.
pub async fn login(engine: &Engine, email: Email, password: &str, ip: Option<&str>) -> FlowResult<LoginOutcome> {
    // Looked up before the slot is reserved, so a store failure here costs no guess, and so
    // the lockout counts against the account found, not the spelling submitted: however a
    // backend folds case (Mongo's case-insensitive match folds `ſ` to `s`), every spelling
    // that reaches one account shares its one counter.
    let user = engine.ports.users.find_by_email(email.as_str()).await?;
    let key = user.as_ref().map_or(email.as_str(), |u| u.email.as_str());
    let guess = Guess::reserve(engine, key, ip).await?;
    let bad = |guess: &Guess| FlowError::BadCredentials {
        remaining: guess.remaining(engine),
    };

    let stored = user.as_ref().and_then(|u| u.hashed_password.clone());
    // An unknown email or a password-less account still costs one Argon2 verification.
    let checked = stored.as_deref().unwrap_or(&engine.decoy_hash);
    let verified = match engine.ports.hasher.verify(password, checked).await {
        Ok(v) => v,
        Err(e) => {
            // Shed before any check ran: this was no guess.
            guess.right(engine).await?;
            return Err(e.into());
        }
    };
    let (used, floor) = raise_floor(engine, checked);
    let (Some(user), Some(_), true) = (user, stored.as_ref(), verified.ok) else {
        pad_failure(engine, password, used, floor).await;
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
    let logged_in = finish_login(engine, &user, patch, SignInMethod::Password).await?;
    Ok(LoginOutcome::Session(Box::new(logged_in)))
}

/// Makes a failed login cost the same Argon2 work whatever hash it was checked against:
/// an adopted regstack 0.9.3 hash (m=65536, t=3) takes about five times the configured
/// default, so without this the time of a failure told adopted accounts from unknown
/// addresses. The floor is the costliest of `password_verify_floor`, the configured
/// parameters and every stored hash met since start-up; a cheaper failure verifies a padding
/// hash for the difference (docs/security.md, "Timing").
async fn pad_failure(engine: &Engine, password: &str, used: u64, floor: u64) {
    // Below 8 KiB Argon2 has nothing cheaper to offer; the difference is noise.
    if floor.saturating_sub(used) >= 8 {
        let padding = crate::password::padding_hash(floor - used, engine.config.password_hash_memory_kib);
        let _ = engine.ports.hasher.verify(password, &padding).await;
    }
}

/// The work of the hash just checked, and the floor after raising it to that work (right or
/// wrong password: any stored hash met tells what failures must cost).
fn raise_floor(engine: &Engine, checked: &str) -> (u64, u64) {
    use std::sync::atomic::Ordering;
    // A hash the hasher refuses to check cost nothing, and must not set what failures cost.
    let used = if crate::password::checkable(checked, engine.config.password_hash_max_memory_kib) {
        crate::password::work_of(checked).unwrap_or(0)
    } else {
        0
    };
    let before = engine.verify_floor.fetch_max(used, Ordering::AcqRel);
    if used > before {
        tracing::warn!(
            target: "regstack.password",
            "a stored hash costs more to check than password_verify_floor; failed logins are padded to it \
             from now on. Set password_verify_floor to that hash's parameters (regstack 0.9.3: \
             \"m=65536,t=3,p=4\") so they are from start-up too."
        );
    }
    (used, before.max(used))
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
pub(crate) async fn finish_login(
    engine: &Engine,
    user: &User,
    patch: UserPatch,
    method: SignInMethod,
) -> FlowResult<LoggedIn> {
    let mut logged_in = issue_session(engine, user, patch).await?;
    let issued_at = logged_in.issued_at;
    logged_in.refresh_token = super::refresh::issue(engine, &logged_in.user.id, &logged_in.jti, issued_at).await?;
    engine.ports.attempts.clear(&lockout_key(&user.email)).await?;
    engine
        .ports
        .events
        .emit(&Event::UserLoggedIn {
            user: logged_in.user.clone(),
        })
        .await;
    crate::push::alert_sign_in(engine, &logged_in.user, method, None).await;
    Ok(logged_in)
}

/// Mints a session for `user`, records `last_login = iat` (plus any extra `patch`).
pub(crate) async fn issue_session(engine: &Engine, user: &User, mut patch: UserPatch) -> FlowResult<LoggedIn> {
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
        refresh_token: None,
        jti,
        issued_at: claims.iat,
    })
}

/// Revokes the caller's token until it would have expired anyway.
pub async fn logout(engine: &Engine, session: &Session) -> FlowResult<()> {
    engine
        .ports
        .revocations
        .revoke(&session.claims.jti, session.claims.expires_at())
        .await?;
    super::refresh::end_family_of(engine, &session.claims.jti).await?;
    engine
        .ports
        .events
        .emit(&Event::UserLoggedOut {
            user: session.user.clone(),
        })
        .await;
    Ok(())
}
