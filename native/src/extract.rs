//! Extractors for a host's own routes, applying the same auth rules as the API (docs/wire.md, "Conventions").
//!
//! They find the instance in the request extensions: add `.layer(Extension(regstack.clone()))`
//! to the host router. An origin app behind the edge worker uses [`EdgeUser`] instead, which
//! verifies the identity headers the worker signs.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use regstack_core::flows::session::authenticate;
use regstack_core::flows::{AuthFailure, FlowError};
use regstack_core::forward_auth::{self, ForwardedIdentity};
use regstack_core::http::ApiError;
use regstack_core::records::User;

use crate::RegStack;

fn instance(parts: &Parts) -> Result<RegStack, ApiError> {
    parts.extensions.get::<RegStack>().cloned().ok_or_else(|| {
        tracing::error!(target: "regstack.http", "auth extractor used without `.layer(Extension(regstack))` on the router");
        ApiError::detail(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
    })
}

async fn user(parts: &Parts) -> Result<User, ApiError> {
    let rs = instance(parts)?;
    let header = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    Ok(authenticate(rs.engine(), header).await?.user)
}

/// The signed-in user; 401 in the contract's shape otherwise.
#[derive(Debug, Clone)]
pub struct CurrentUser(pub User);

impl<S: Send + Sync> FromRequestParts<S> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        user(parts).await.map(CurrentUser)
    }
}

/// The signed-in user, or `None` on any auth failure.
#[derive(Debug, Clone)]
pub struct OptionalUser(pub Option<User>);

impl<S: Send + Sync> FromRequestParts<S> for OptionalUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        instance(parts)?;
        Ok(OptionalUser(user(parts).await.ok()))
    }
}

/// A signed-in superuser; 401, or 403 `Administrator privileges required.`
#[derive(Debug, Clone)]
pub struct Admin(pub User);

impl<S: Send + Sync> FromRequestParts<S> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let u = user(parts).await?;
        if !u.is_superuser {
            return Err(FlowError::NotAdmin.into());
        }
        Ok(Admin(u))
    }
}

/// The secret an origin app behind the edge worker verifies identity headers with (the edge's
/// `origin_auth_secret`). Add it with `.layer(Extension(ForwardAuth::new(secret)?))`.
#[derive(Clone)]
pub struct ForwardAuth {
    secret: std::sync::Arc<str>,
}

impl ForwardAuth {
    /// Verification with `secret`, which must equal the edge's `origin_auth_secret` and so
    /// holds the edge's minimum of 32 characters.
    pub fn new(secret: impl Into<String>) -> Result<Self, ShortSecret> {
        let secret = secret.into();
        if secret.chars().count() < 32 {
            return Err(ShortSecret);
        }
        Ok(Self { secret: secret.into() })
    }
}

/// [`ForwardAuth::new`] was given fewer than 32 characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the forward-auth secret must be at least 32 characters, like the edge's origin_auth_secret")]
pub struct ShortSecret;

impl std::fmt::Debug for ForwardAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ForwardAuth(..)")
    }
}

fn forwarded(parts: &Parts) -> Result<Option<ForwardedIdentity>, ApiError> {
    let auth = parts.extensions.get::<ForwardAuth>().cloned().ok_or_else(|| {
        tracing::error!(target: "regstack.http", "EdgeUser used without `.layer(Extension(ForwardAuth::new(secret)?))`");
        ApiError::detail(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
    })?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    forward_auth::verify(
        &auth.secret,
        |name| parts.headers.get(name).and_then(|v| v.to_str().ok()),
        now,
    )
    .map_err(|e| {
        tracing::warn!(target: "regstack.http", reason = %e, "refused forwarded identity headers");
        FlowError::Auth(AuthFailure::Invalid).into()
    })
}

/// The user the edge worker authenticated and vouched for with signed identity headers; 401
/// in the contract's shape when the headers are absent, forged or stale. An origin app behind
/// the edge uses this instead of trusting any header itself.
#[derive(Debug, Clone)]
pub struct EdgeUser(pub ForwardedIdentity);

impl<S: Send + Sync> FromRequestParts<S> for EdgeUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        forwarded(parts)?
            .map(EdgeUser)
            .ok_or_else(|| FlowError::Auth(AuthFailure::Missing).into())
    }
}

/// Like [`EdgeUser`] for pages anyone may see: `None` without identity headers, 401 when
/// headers are present but do not verify.
#[derive(Debug, Clone)]
pub struct OptionalEdgeUser(pub Option<ForwardedIdentity>);

impl<S: Send + Sync> FromRequestParts<S> for OptionalEdgeUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        forwarded(parts).map(OptionalEdgeUser)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forward_auth_secret_needs_the_edge_minimum() {
        assert_eq!(ForwardAuth::new("x".repeat(31)).unwrap_err(), ShortSecret);
        assert_eq!(ForwardAuth::new("é".repeat(31)).unwrap_err(), ShortSecret);
        assert!(ForwardAuth::new("x".repeat(32)).is_ok());
    }
}
