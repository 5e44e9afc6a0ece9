//! Sign-in with OAuth providers (docs/oauth.md): start a round trip, finish it at the
//! callback, hand its session out once at the exchange; list, link and unlink providers.
//!
//! A round trip's row is claimed atomically by its callback (taken, then put back with the
//! result) and taken for good by the exchange, so a replayed `state` or a second exchange of
//! one id gets nothing.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::engine::Engine;
use crate::events::Event;
use crate::flows::session::Session;
use crate::jwt::Purpose;
use crate::oauth::{same_origin_redirect, sanitize_for_log, AuthorizationRequest, ProviderError, ProviderIdentity};
use crate::ports::{StoreError, Unlinked};
use crate::records::{OAuthIdentity, OAuthMode, OAuthState, User, UserPatch};
use crate::time::plus_seconds;

use super::{FlowError, FlowResult};

/// What `GET /oauth/providers` answers.
#[derive(Debug)]
pub struct ProviderList {
    /// Every provider's name.
    pub available: Vec<String>,
    /// The caller's links, oldest first.
    pub linked: Vec<OAuthIdentity>,
}

/// The providers and the caller's links.
pub async fn providers(engine: &Engine, session: &Session) -> FlowResult<ProviderList> {
    Ok(ProviderList {
        available: engine.oauth.names(),
        linked: engine.ports.oauth.identities_of(&session.user.id).await?,
    })
}

fn random_token(engine: &Engine, bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    engine.ports.random.fill(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

/// A round trip begun: where to send the browser, and the cookie ([`binding`]) the browser
/// must bring back to the callback.
#[derive(Debug)]
pub struct Started {
    /// The provider's authorization URL.
    pub url: String,
    /// The binding cookie's name and value.
    pub cookie: (String, String),
}

/// Starts a round trip: checks the provider and `redirect_to`, stores the state row (PKCE
/// verifier, nonce) and answers the provider's authorization URL. `user` is the caller of a
/// link; `None` signs in.
pub async fn start(
    engine: &Engine,
    provider: &str,
    redirect_to: Option<&str>,
    user: Option<&User>,
) -> FlowResult<Started> {
    let p = engine
        .oauth
        .get(provider)
        .ok_or_else(|| FlowError::OAuthProviderUnknown(provider.to_string()))?;
    let redirect_to = same_origin_redirect(&engine.config, redirect_to).ok_or(FlowError::OAuthRedirectRefused)?;
    let now = engine.now();
    let state = OAuthState {
        id: random_token(engine, 32),
        provider: provider.to_string(),
        code_verifier: random_token(engine, 64),
        nonce: random_token(engine, 16),
        redirect_to,
        mode: if user.is_some() {
            OAuthMode::Link
        } else {
            OAuthMode::Signin
        },
        linking_user_id: user.map(|u| u.id.clone()),
        created_at: now,
        expires_at: plus_seconds(now, engine.config.oauth.state_ttl_seconds),
        result_token: None,
        result_was_new: false,
    };
    let challenge = crate::oauth::pkce_challenge(&state.code_verifier);
    let url = p
        .authorization_url(&AuthorizationRequest {
            state: &state.id,
            code_challenge: &challenge,
            nonce: &state.nonce,
            now,
        })
        .await
        .map_err(|e| {
            let why = sanitize_for_log(&e.to_string());
            tracing::warn!(target: "regstack.oauth", provider, error = %why, "cannot start a sign-in");
            FlowError::OAuthProviderUnavailable
        })?;
    engine.ports.oauth.put_state(&state).await?;
    engine
        .ports
        .events
        .emit(&Event::OAuthSigninStarted {
            provider: provider.to_string(),
            mode: state.mode,
            user: user.cloned(),
        })
        .await;
    Ok(Started {
        url,
        cookie: binding(&engine.config, &state.id),
    })
}

/// Removes the caller's link to `provider`, unless it is the only way they can sign in.
pub async fn unlink(engine: &Engine, session: &Session, provider: &str) -> FlowResult<()> {
    let user = &session.user;
    let keep_one = user.hashed_password.is_none();
    match engine.ports.oauth.unlink(&user.id, provider, keep_one).await? {
        Unlinked::Removed => {}
        Unlinked::NotLinked => return Err(FlowError::OAuthNotLinked),
        Unlinked::LastMethod => return Err(FlowError::OAuthLastMethod),
    }
    engine
        .ports
        .events
        .emit(&Event::OAuthAccountUnlinked {
            user: user.clone(),
            provider: provider.to_string(),
        })
        .await;
    Ok(())
}

/// The short codes a failed callback sends the browser to the login page with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum CallbackError {
    OauthFailed,
    MissingCodeOrState,
    UnknownProvider,
    BadState,
    StateExpired,
    TokenExchangeFailed,
    IdTokenFailed,
    EmailInUse,
    IdentityInUse,
    AlreadyLinked,
    UserInactive,
    RegistrationDisabled,
}

impl CallbackError {
    /// The code in `?error=`.
    pub fn code(self) -> &'static str {
        match self {
            CallbackError::OauthFailed => "oauth_failed",
            CallbackError::MissingCodeOrState => "missing_code_or_state",
            CallbackError::UnknownProvider => "unknown_provider",
            CallbackError::BadState => "bad_state",
            CallbackError::StateExpired => "state_expired",
            CallbackError::TokenExchangeFailed => "token_exchange_failed",
            CallbackError::IdTokenFailed => "id_token_failed",
            CallbackError::EmailInUse => "email_in_use",
            CallbackError::IdentityInUse => "identity_in_use",
            CallbackError::AlreadyLinked => "already_linked",
            CallbackError::UserInactive => "user_inactive",
            CallbackError::RegistrationDisabled => "registration_disabled",
        }
    }
}

/// The cookie that binds a round trip to one browser: its name and value, both derived from
/// an id (the `state` from start to callback, then the exchange id from callback to
/// exchange). The value is the id's SHA-256, so the cookie is useless without the id, and
/// the id without the cookie. Over https the name carries the `__Host-` prefix, so no
/// sibling subdomain or plain-http page can plant one.
pub fn binding(config: &crate::config::Config, id: &str) -> (String, String) {
    let hash = crate::hex::encode(&Sha256::digest(id.as_bytes()));
    let prefix = if binding_is_secure(config) { "__Host-" } else { "" };
    (format!("{prefix}regstack_oauth_{}", &hash[..16]), hash)
}

/// Whether binding cookies are `Secure` (and `__Host-`): `base_url` is https.
pub fn binding_is_secure(config: &crate::config::Config) -> bool {
    config
        .base_url
        .get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
}

/// What a callback answers: where the browser goes, and the id of the completed round trip
/// (whose binding cookie the answer sets), if it completed.
#[derive(Debug)]
pub struct CallbackOutcome {
    /// The relative URL to redirect to.
    pub location: String,
    /// The exchange id, when the round trip completed.
    pub completed: Option<String>,
}

/// The query of a callback.
#[derive(Clone, Copy, Debug, Default)]
pub struct CallbackQuery<'a> {
    /// The authorization code.
    pub code: Option<&'a str>,
    /// The round trip's id.
    pub state: Option<&'a str>,
    /// The provider's error, when it refused.
    pub error: Option<&'a str>,
    /// The value of the browser's binding cookie for this `state` ([`binding`]), if sent.
    pub binding: Option<&'a str>,
}

/// Finishes a round trip at the callback: the relative URL to send the browser to, which is
/// `<ui_prefix>/oauth-complete?id=<state>` or `<ui_prefix>/login?error=<code>`. Never an error
/// answer: a storage failure is logged and reported as `oauth_failed`.
pub async fn callback(engine: &Engine, provider: &str, q: CallbackQuery<'_>) -> CallbackOutcome {
    let ui = engine.config.ui_prefix.trim_end_matches('/');
    match finish(engine, provider, q).await {
        Ok(id) => CallbackOutcome {
            location: format!("{ui}/oauth-complete?id={id}"),
            completed: Some(id),
        },
        Err(e) => CallbackOutcome {
            location: format!("{ui}/login?error={}", e.code()),
            completed: None,
        },
    }
}

async fn finish(engine: &Engine, provider: &str, q: CallbackQuery<'_>) -> Result<String, CallbackError> {
    let failed = |e: FlowError| {
        tracing::error!(target: "regstack.oauth", provider, error = %e, "the callback failed");
        CallbackError::OauthFailed
    };
    if let Some(error) = q.error.filter(|e| !e.is_empty()) {
        tracing::info!(target: "regstack.oauth", provider, error = %sanitize_for_log(error), "the provider refused");
        return Err(CallbackError::OauthFailed);
    }
    let (Some(code), Some(state_id)) = (q.code.filter(|c| !c.is_empty()), q.state.filter(|s| !s.is_empty())) else {
        return Err(CallbackError::MissingCodeOrState);
    };
    let p = engine.oauth.get(provider).ok_or(CallbackError::UnknownProvider)?;
    // Only the browser that started the round trip carries its binding: a callback URL handed
    // to someone else signs nobody in (login CSRF), and leaves the round trip untouched.
    if !q
        .binding
        .is_some_and(|b| crate::token::secrets_equal(b, &binding(&engine.config, state_id).1))
    {
        return Err(CallbackError::BadState);
    }
    // Claimed once: a replayed state finds nothing.
    let mut state = match engine.ports.oauth.take_waiting_state(state_id).await {
        Ok(Some(s)) if s.provider == provider => s,
        Ok(_) => return Err(CallbackError::BadState),
        Err(e) => return Err(failed(e.into())),
    };
    let now = engine.now();
    if state.expires_at < now {
        return Err(CallbackError::StateExpired);
    }
    let identity = p
        .complete(code, &state.code_verifier, &state.nonce, now)
        .await
        .map_err(|e| {
            // The text can quote the provider's own words: one clean line, at most 200 characters.
            let why = sanitize_for_log(&e.to_string());
            tracing::warn!(target: "regstack.oauth", provider, error = %why, "the provider's answer was refused");
            match e {
                ProviderError::TokenExchange(_) => CallbackError::TokenExchangeFailed,
                ProviderError::IdToken(_) => CallbackError::IdTokenFailed,
                ProviderError::Unavailable(_) => CallbackError::OauthFailed,
            }
        })?;
    let auto_link = p.auto_link_verified_emails();
    let (user, was_new) = resolve_user(engine, provider, auto_link, &identity, &state).await?;
    if let Ok(Some(link)) = engine.ports.oauth.identity(provider, &identity.subject).await {
        if let Err(e) = engine.ports.oauth.touch(&link.id, engine.now()).await {
            tracing::warn!(target: "regstack.oauth", error = %e, "recording the link's use failed");
        }
    }
    let mfa_phone = user.phone_number.as_deref().filter(|_| {
        engine.config.oauth.enforce_mfa_on_oauth_signin && state.mode == OAuthMode::Signin && user.is_mfa_enabled
    });
    let mfa_required = mfa_phone.is_some();
    let (token, lifetime) = match mfa_phone {
        Some(phone) => {
            let (token, ttl) = super::phone::begin_login(engine, &user, phone).await.map_err(failed)?;
            (token, ttl)
        }
        None => {
            let session = super::login::issue_session(engine, &user, UserPatch::default())
                .await
                .map_err(failed)?;
            (session.access_token, engine.config.oauth.completion_ttl_seconds)
        }
    };
    state.result_token = Some(token);
    state.result_was_new = was_new;
    state.expires_at = plus_seconds(engine.now(), lifetime);
    // The result waits under a new id that only this browser learns: the `state` travelled
    // through the provider and whoever started the round trip knows it, so it must not be
    // able to collect the session (an attacker could otherwise start a round trip, send the
    // victim through it, and poll the exchange with the `state`).
    state.id = random_token(engine, 32);
    engine
        .ports
        .oauth
        .put_state(&state)
        .await
        .map_err(|e| failed(e.into()))?;
    let events = &engine.ports.events;
    events
        .emit(&Event::OAuthSigninCompleted {
            user: user.clone(),
            provider: provider.to_string(),
            mode: state.mode,
            was_new,
            mfa_required,
        })
        .await;
    if state.mode == OAuthMode::Signin && !mfa_required {
        // With a second factor the alert waits for the code (docs/web-push.md).
        crate::push::alert_sign_in(engine, &user, crate::push::SignInMethod::OAuth, Some(provider)).await;
    }
    if state.mode == OAuthMode::Link && !was_new {
        events
            .emit(&Event::OAuthAccountLinked {
                user,
                provider: provider.to_string(),
            })
            .await;
    }
    Ok(state.id)
}

/// The account a verified identity signs in to (docs/oauth.md, "Which account"), and
/// whether it was made now. `auto_link`: the provider's addresses may link to existing
/// accounts.
async fn resolve_user(
    engine: &Engine,
    provider: &str,
    auto_link: bool,
    who: &ProviderIdentity,
    state: &OAuthState,
) -> Result<(User, bool), CallbackError> {
    let store_failed = |e: StoreError| {
        tracing::error!(target: "regstack.oauth", provider, error = %e, "storage failed during the callback");
        CallbackError::OauthFailed
    };
    let active = |user: Option<User>| user.filter(|u| u.is_active).ok_or(CallbackError::UserInactive);
    let users = &engine.ports.users;
    // An address the provider gave, as regstack stores addresses; one that does not parse
    // cannot match an account and is not stored anywhere.
    let email = who
        .email
        .as_deref()
        .and_then(|e| crate::email::Email::parse(e).ok())
        .map(|e| e.as_str().to_string());
    let new_link = |user_id: &str| OAuthIdentity {
        id: engine.new_id(),
        user_id: user_id.to_string(),
        provider: provider.to_string(),
        subject_id: who.subject.clone(),
        email: email.clone(),
        linked_at: engine.now(),
        last_used_at: None,
    };
    let link_to = |user: User| async move {
        match engine.ports.oauth.link(&new_link(&user.id)).await {
            Ok(_) => Ok(user),
            Err(StoreError::Conflict(_)) => Err(CallbackError::IdentityInUse),
            Err(e) => Err(store_failed(e)),
        }
    };
    let existing = engine
        .ports
        .oauth
        .identity(provider, &who.subject)
        .await
        .map_err(store_failed)?;
    if let Some(link) = existing {
        if state.mode == OAuthMode::Link {
            return Err(if state.linking_user_id.as_deref() == Some(link.user_id.as_str()) {
                CallbackError::AlreadyLinked
            } else {
                CallbackError::IdentityInUse
            });
        }
        let user = active(users.get(&link.user_id).await.map_err(store_failed)?)?;
        return Ok((user, false));
    }
    if state.mode == OAuthMode::Link {
        let id = state.linking_user_id.as_deref().unwrap_or_default();
        let user = active(users.get(id).await.map_err(store_failed)?)?;
        // A password change or a sign-out everywhere after the link began ends it too.
        if crate::flows::session::issued_before_cutoff(&user, state.created_at) {
            return Err(CallbackError::BadState);
        }
        return Ok((link_to(user).await?, false));
    }
    if let Some(address) = &email {
        if let Some(user) = users.find_by_email(address).await.map_err(store_failed)? {
            // Both sides must vouch for the address, the provider (`email_verified`) and this
            // account (it confirmed the address), or whoever registered the address first
            // would be handed its owner's sign-ins.
            // Without `require_verification` an account's `is_verified` proves nothing.
            let confirmed = engine.config.require_verification && user.is_verified;
            if !(auto_link && who.email_verified && confirmed) {
                return Err(CallbackError::EmailInUse);
            }
            let user = active(Some(user))?;
            return Ok((link_to(user).await?, false));
        }
    }
    if !engine.config.allow_registration {
        return Err(CallbackError::RegistrationDisabled);
    }
    // An address the provider does not vouch for is not claimed: the account gets a
    // placeholder, so the address's owner can still register it.
    let verified_email = email.clone().filter(|_| who.email_verified);
    let verified = verified_email.is_some();
    let address = verified_email.unwrap_or_else(|| placeholder_email(provider, &who.subject));
    let mut user = engine.new_user(address, None);
    user.is_verified = verified;
    user.full_name = who.full_name.clone();
    let user = match users.create(&user).await {
        Ok(u) => u,
        Err(StoreError::Conflict(_)) => return Err(CallbackError::EmailInUse),
        Err(e) => return Err(store_failed(e)),
    };
    if let Err(e) = engine.ports.oauth.link(&new_link(&user.id)).await {
        // Another callback linked this subject first: the account made here would have no
        // way in, so it goes again.
        let _ = users.delete(&user).await;
        return Err(match e {
            StoreError::Conflict(_) => CallbackError::IdentityInUse,
            e => store_failed(e),
        });
    }
    engine
        .ports
        .events
        .emit(&Event::UserRegistered { user: user.clone() })
        .await;
    Ok((user, true))
}

/// The address of an account whose provider gave none it vouches for:
/// `google-<sub>@oauth.invalid` for Google's numeric subjects (regstack 0.9.3's form), else
/// `<provider>.<31 hex of SHA-256(provider, sub)>@oauth.invalid`. It never delivers, it is
/// well-formed (a local part of at most 64 characters), and two subjects never share one:
/// `.` cannot appear in a provider's name, and the hash keeps case apart.
pub fn placeholder_email(provider: &str, subject: &str) -> String {
    if provider == "google" && !subject.is_empty() && subject.len() <= 50 && subject.bytes().all(|b| b.is_ascii_digit())
    {
        return format!("google-{subject}@oauth.invalid");
    }
    let mut h = Sha256::new();
    h.update(provider.as_bytes());
    h.update([0]);
    h.update(subject.as_bytes());
    let hash = crate::hex::encode(&h.finalize());
    format!("{provider}.{}@oauth.invalid", &hash[..31])
}

/// A completed round trip handed out by `POST /oauth/exchange`.
#[derive(Debug)]
pub struct Exchanged {
    /// The session token, or the `login_mfa` token when `mfa_required`.
    pub token: String,
    /// Where the browser goes.
    pub redirect_to: String,
    /// Whether the callback made the account.
    pub was_new_account: bool,
    /// The SMS second factor comes next.
    pub mfa_required: bool,
    /// The token's lifetime in seconds.
    pub expires_in: i64,
    /// A refresh token beside the session (`enable_refresh_tokens`; never with MFA).
    pub refresh_token: Option<String>,
}

/// Hands out a completed round trip's token, once. A row still waiting for its callback is
/// left alone (docs/wire.md, "Decision 7 (9)").
///
/// `binding_cookie` is the browser's binding cookie for `id`: only the browser of the
/// callback can collect the session, so an id handed to someone else (to sign them in to the
/// sender's account) collects nothing, and the row is left alone.
pub async fn exchange(engine: &Engine, id: &str, binding_cookie: Option<&str>) -> FlowResult<Exchanged> {
    if !binding_cookie.is_some_and(|b| crate::token::secrets_equal(b, &binding(&engine.config, id).1)) {
        return Err(FlowError::OAuthStateNotFound);
    }
    let state = engine
        .ports
        .oauth
        .take_completed_state(id)
        .await?
        .ok_or(FlowError::OAuthStateNotFound)?;
    if state.expires_at < engine.now() {
        return Err(FlowError::OAuthStateExpired);
    }
    let token = state.result_token.unwrap_or_default();
    // Minted here and read from our own row, so its `purpose` claim is read as it is; the
    // row's expiry, not the token's, decides whether it may still be handed out.
    let mfa_required = crate::jwt::purpose_claim(&token).as_deref() == Some(Purpose::LoginMfa.as_str());
    // The family starts when the session is handed out, so the refresh token never waits
    // in a row; the session's own claims say whose it is.
    let refresh_token = match (mfa_required, engine.jwt.decode(&token, Purpose::Session, engine.now())) {
        (false, Ok(claims)) => super::refresh::issue(engine, &claims.sub, &claims.jti, claims.iat).await?,
        _ => None,
    };
    Ok(Exchanged {
        token,
        redirect_to: state.redirect_to,
        was_new_account: state.result_was_new,
        mfa_required,
        expires_in: if mfa_required {
            engine.config.mfa_pending_token_ttl_seconds
        } else {
            engine.config.jwt_ttl_seconds
        },
        refresh_token,
    })
}

#[cfg(test)]
mod tests {
    use super::placeholder_email;

    #[regstack_macros::dual_test]
    fn placeholder_addresses_are_always_well_formed() {
        assert_eq!(
            placeholder_email("google", "1234567890"),
            "google-1234567890@oauth.invalid"
        );
        let odd = placeholder_email("corp", "a b@c\"d");
        assert!(odd.starts_with("corp.") && odd.ends_with("@oauth.invalid") && !odd.contains(' '));
        let long = placeholder_email(&"p".repeat(32), "x");
        assert_eq!(long.split('@').next().unwrap().len(), 64, "{long}");
        // Distinct subjects, distinct addresses: case, and a `-` that could shift between the
        // provider's name and the subject.
        assert_ne!(placeholder_email("corp", "AbC"), placeholder_email("corp", "abc"));
        assert_ne!(placeholder_email("corp", "x-1"), placeholder_email("corp-x", "1"));
        assert_ne!(placeholder_email("google", "AbC"), placeholder_email("google", "abc"));
    }
}
