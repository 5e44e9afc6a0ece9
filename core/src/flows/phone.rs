//! `POST /phone/start`, `POST /phone/confirm`, `DELETE /phone`, `POST /login/mfa-confirm`,
//! and the SMS branch of `POST /login` (docs/wire.md, "Phone and SMS 2FA", "SMS codes").

use crate::engine::Engine;
use crate::events::Event;
use crate::flows::account::check_current_password;
use crate::flows::guess::Guess;
use crate::flows::limits::count_against;
use crate::flows::login::{finish_login, LoggedIn};
use crate::flows::session::{issued_before_cutoff, Session};
use crate::jwt::Purpose;
use crate::ports::SmsMessage;
use crate::push::SignInMethod;
use crate::records::{CodeCheck, CodeKind, MfaCode, User, UserPatch};
use crate::time::plus_seconds;
use crate::token::{keyed_hash, new_jti, new_sms_code};

use super::{send_notice, FlowError, FlowResult};
use crate::render::Notice;

/// What is stored for a code: an HMAC under the server's code key (not a plain hash, which
/// a leaked table would give up to a million offline guesses) of its digits, and for phone
/// setup of the digits and the number they were texted to. The setup token carries its
/// number, so a code texted to one number cannot confirm a token for another (starting
/// setup for A, then for B, and confirming A's token with B's code would otherwise set A
/// without ever reaching it).
fn code_hash(engine: &Engine, kind: CodeKind, code: &str, phone: &str) -> String {
    match kind {
        CodeKind::LoginMfa => keyed_hash(&engine.code_key, code),
        CodeKind::PhoneSetup => keyed_hash(&engine.code_key, &format!("{code}\n{phone}")),
    }
}

/// Issues a fresh code of `kind` for `user`, replacing any pending one, and texts it to `to`.
/// Codes are limited per account and per number (`sms_code_rate_limit`): past either, 429
/// with `Retry-After` and nothing is sent, so neither a password holder nor a session can
/// mint codes without end or run up an SMS bill.
async fn send_code(engine: &Engine, user: &User, kind: CodeKind, to: &str) -> FlowResult<()> {
    // Only setup codes go to a number the caller chose; sign-in codes go to the account's
    // verified number, so counting those per number would let anyone who texts a victim's
    // number from their own account block the victim's sign-in.
    if kind == CodeKind::PhoneSetup {
        count_against(engine, &engine.sms_limits, "sms_number", to).await?;
    }
    count_against(engine, &engine.sms_limits, "sms_account", &user.id).await?;
    let config = &engine.config;
    let code = new_sms_code(engine.ports.random.as_ref(), config.sms_code_length);
    let now = engine.now();
    engine
        .ports
        .mfa_codes
        .put(&MfaCode {
            user_id: user.id.clone(),
            kind,
            code_hash: code_hash(engine, kind, &code, to),
            expires_at: plus_seconds(now, config.sms_code_ttl_seconds),
            attempts: 0,
            max_attempts: config.sms_code_max_attempts,
            created_at: now,
        })
        .await?;
    let body = engine.renderer.sms(kind, config, &code)?;
    if let Err(e) = engine
        .ports
        .sms
        .send(&SmsMessage {
            to: to.to_string(),
            body,
        })
        .await
    {
        tracing::error!(target: "regstack.sms", kind = kind.as_str(), error = %e, "sms delivery failed");
    }
    Ok(())
}

/// Checks `code` for `kind`; `phone` is the number a setup code must have been texted to
/// (unused for sign-in codes). A guess at a code counts toward the account's lockout like a
/// wrong password, so fresh codes from fresh logins cannot be guessed without end; a guess
/// that could not have matched (no code, or an expired one) is given back.
async fn check_code(
    engine: &Engine,
    user: Option<&User>,
    user_id: &str,
    kind: CodeKind,
    code: &str,
    phone: &str,
) -> FlowResult<()> {
    let guess = match user {
        Some(user) => Some(Guess::reserve(engine, &user.email, None).await?),
        None => None,
    };
    let outcome = match engine
        .ports
        .mfa_codes
        .check(user_id, kind, &code_hash(engine, kind, code, phone), engine.now())
        .await
    {
        Ok(outcome) => outcome,
        Err(e) => {
            // The store failed before judging the guess: it was no guess.
            if let Some(guess) = guess {
                guess.right(engine).await?;
            }
            return Err(e.into());
        }
    };
    if matches!(outcome, CodeCheck::Ok | CodeCheck::Missing | CodeCheck::Expired) {
        if let Some(guess) = guess {
            guess.right(engine).await?;
        }
    }
    match outcome {
        CodeCheck::Ok => Ok(()),
        refused => Err(FlowError::Code(kind, refused)),
    }
}

/// The token's user if it still may use the token: it exists and the token was not minted
/// before the user's bulk cutoff (a password reset ends pending phone and sign-in steps too).
async fn token_user(engine: &Engine, claims: &crate::jwt::Claims, refused: FlowError) -> FlowResult<Option<User>> {
    let user = engine.ports.users.get(&claims.sub).await?;
    if user.as_ref().is_some_and(|u| issued_before_cutoff(u, claims.iat)) {
        return Err(refused);
    }
    Ok(user)
}

/// `E.164`: `^\+[1-9]\d{1,14}$`.
pub fn is_e164(phone: &str) -> bool {
    let Some(digits) = phone.strip_prefix('+') else {
        return false;
    };
    (2..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0')
}

/// Begins phone setup: checks the number (first) and the password, texts a code to the new
/// number, and returns the `phone_setup` token that binds the number.
pub async fn start_setup(
    engine: &Engine,
    session: &Session,
    phone: &str,
    current_password: &str,
) -> FlowResult<(String, i64)> {
    if !is_e164(phone) {
        return Err(FlowError::PhoneInvalid);
    }
    check_current_password(engine, &session.user, current_password).await?;
    send_code(engine, &session.user, CodeKind::PhoneSetup, phone).await?;
    let ttl = engine.config.mfa_pending_token_ttl_seconds;
    let jti = new_jti(engine.ports.random.as_ref());
    let (token, _) = engine.jwt.mint(
        Purpose::PhoneSetup,
        &session.user.id,
        Some(phone),
        &jti,
        engine.now(),
        ttl,
    );
    engine
        .ports
        .events
        .emit(&Event::PhoneSetupStarted {
            user: session.user.clone(),
            phone: phone.to_string(),
        })
        .await;
    Ok((token, ttl))
}

/// Confirms phone setup with the texted code; the number from the token is written only now.
pub async fn confirm_setup(engine: &Engine, pending_token: &str, code: &str) -> FlowResult<User> {
    let claims = engine
        .jwt
        .decode(pending_token, Purpose::PhoneSetup, engine.now())
        .map_err(|_| FlowError::PhoneSessionInvalid)?;
    let phone = claims.extra.clone().ok_or(FlowError::PhoneSessionInvalid)?;
    let owner = token_user(engine, &claims, FlowError::PhoneSessionInvalid).await?;
    check_code(engine, owner.as_ref(), &claims.sub, CodeKind::PhoneSetup, code, &phone).await?;
    let user = active_user(engine, &claims.sub).await?;
    let moved_from = user
        .phone_number
        .clone()
        .filter(|old| user.is_mfa_enabled && *old != phone);
    let patch = UserPatch {
        phone_number: Some(Some(phone.clone())),
        is_mfa_enabled: Some(true),
        ..UserPatch::default()
    };
    let user = engine.ports.users.update(&user.id, &patch, engine.now()).await?;
    if moved_from.is_some() {
        send_notice(
            engine,
            Notice::SecondFactorMoved { phone },
            &user.email,
            user.full_name.as_deref(),
        )
        .await?;
    }
    engine
        .ports
        .events
        .emit(&Event::MfaEnabled { user: user.clone() })
        .await;
    Ok(user)
}

/// Turns the SMS second factor off.
pub async fn disable(engine: &Engine, session: &Session, current_password: &str) -> FlowResult<()> {
    check_current_password(engine, &session.user, current_password).await?;
    let patch = UserPatch {
        phone_number: Some(None),
        is_mfa_enabled: Some(false),
        ..UserPatch::default()
    };
    let user = engine
        .ports
        .users
        .update(&session.user.id, &patch, engine.now())
        .await?;
    engine.ports.mfa_codes.delete_for_user(&user.id).await?;
    if session.user.is_mfa_enabled {
        send_notice(
            engine,
            Notice::SecondFactorDisabled,
            &user.email,
            user.full_name.as_deref(),
        )
        .await?;
    }
    engine
        .ports
        .events
        .emit(&Event::PhoneSetupDisabled { user: user.clone() })
        .await;
    engine.ports.events.emit(&Event::MfaDisabled { user }).await;
    Ok(())
}

/// The MFA branch of login: texts a sign-in code and returns the `login_mfa` token.
pub(crate) async fn begin_login(engine: &Engine, user: &User, phone: &str) -> FlowResult<(String, i64)> {
    send_code(engine, user, CodeKind::LoginMfa, phone).await?;
    let ttl = engine.config.mfa_pending_token_ttl_seconds;
    let jti = new_jti(engine.ports.random.as_ref());
    let (token, _) = engine
        .jwt
        .mint(Purpose::LoginMfa, &user.id, None, &jti, engine.now(), ttl);
    engine
        .ports
        .events
        .emit(&Event::MfaLoginStarted { user: user.clone() })
        .await;
    Ok((token, ttl))
}

/// Completes an MFA login with the texted code.
pub async fn confirm_login(engine: &Engine, pending_token: &str, code: &str) -> FlowResult<LoggedIn> {
    let claims = engine
        .jwt
        .decode(pending_token, Purpose::LoginMfa, engine.now())
        .map_err(|_| FlowError::MfaSessionInvalid)?;
    let owner = token_user(engine, &claims, FlowError::MfaSessionInvalid).await?;
    check_code(engine, owner.as_ref(), &claims.sub, CodeKind::LoginMfa, code, "").await?;
    let user = active_user(engine, &claims.sub).await?;
    let logged_in = finish_login(engine, &user, UserPatch::default(), SignInMethod::SmsCode).await?;
    Ok(logged_in)
}

async fn active_user(engine: &Engine, id: &str) -> FlowResult<User> {
    match engine.ports.users.get(id).await? {
        Some(u) if u.is_active => Ok(u),
        _ => Err(FlowError::TokenUserInactive),
    }
}
