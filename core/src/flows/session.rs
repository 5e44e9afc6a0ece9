//! Bearer authentication: the session check the routing table asks for before a handler runs
//! (docs/wire.md, "Auth failures").

use crate::engine::Engine;
use crate::jwt::{Claims, Purpose};
use crate::records::User;

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
    let record = engine.ports.sessions.lookup(&claims.sub, &claims.jti).await?;
    if record.revoked {
        return Err(FlowError::Auth(AuthFailure::Revoked));
    }
    let user = match record.user {
        Some(u) if u.is_active => u,
        _ => return Err(FlowError::Auth(AuthFailure::Inactive)),
    };
    if issued_before_cutoff(&user, claims.iat) {
        return Err(FlowError::Auth(AuthFailure::Invalidated));
    }
    Ok(Session { user, claims })
}
