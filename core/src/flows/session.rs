//! Bearer authentication and per-IP rate limits: the checks the routing table asks for before
//! a handler runs (contract §1.1, §5.3, Decision 8).

use crate::engine::Engine;
use crate::jwt::{Claims, Purpose};
use crate::records::User;
use crate::routes::RateClass;

use super::{AuthFailure, FlowError, FlowResult};

/// An authenticated caller.
#[derive(Clone, Debug)]
pub struct Session {
    /// The user, as loaded for this request.
    pub user: User,
    /// The session token's claims.
    pub claims: Claims,
}

/// The token from an `Authorization` header value: scheme `Bearer` (any case), non-empty.
pub fn bearer_token(header: Option<&str>) -> Option<&str> {
    let value = header?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Whether a one-time token issued at `iat` predates the user's bulk cutoff
/// (`tokens_invalidated_after`): a password reset, a password change or an email change ends
/// every token minted before it, not only sessions.
pub fn issued_before_cutoff(user: &User, iat: crate::time::Timestamp) -> bool {
    user.tokens_invalidated_after.is_some_and(|cutoff| iat <= cutoff)
}

/// Checks a session token: decode → revoked → user exists and active → bulk cutoff.
pub async fn authenticate(engine: &Engine, header: Option<&str>) -> FlowResult<Session> {
    let token = bearer_token(header).ok_or(FlowError::Auth(AuthFailure::Missing))?;
    let now = engine.now();
    let claims = engine
        .jwt
        .decode(token, Purpose::Session, now)
        .map_err(|_| FlowError::Auth(AuthFailure::Invalid))?;
    if engine.ports.revocations.is_revoked(&claims.jti).await? {
        return Err(FlowError::Auth(AuthFailure::Revoked));
    }
    let user = match engine.ports.users.get(&claims.sub).await? {
        Some(u) if u.is_active => u,
        _ => return Err(FlowError::Auth(AuthFailure::Inactive)),
    };
    if issued_before_cutoff(&user, claims.iat) {
        return Err(FlowError::Auth(AuthFailure::Invalidated));
    }
    Ok(Session { user, claims })
}

/// Counts one request from `client` against every limit of `class`; the first limit that is
/// exceeded refuses it.
pub async fn check_rate(engine: &Engine, class: RateClass, client: &str) -> FlowResult<()> {
    let Some(limits) = engine.rate_limits.get(&class) else {
        return Ok(());
    };
    count_against(engine, limits, class.key(), client).await
}

/// Counts one event for `subject` (a client IP, an account, a recipient) in `scope` against
/// every limit in `limits`, in the same atomic counters as the per-IP limits, so the count
/// holds across instances and at the edge. The first limit exceeded refuses it.
pub(crate) async fn count_against(
    engine: &Engine,
    limits: &[crate::rate_limit::RateLimit],
    scope: &str,
    subject: &str,
) -> FlowResult<()> {
    let now = engine.now();
    for limit in limits {
        let key = limit.key(scope, subject, now);
        let count = engine.ports.counter.increment(&key, now, limit.window_end(now)).await?;
        if count > limit.count {
            return Err(FlowError::RateLimited {
                limit: *limit,
                retry_after: limit.retry_after(now),
            });
        }
    }
    Ok(())
}
