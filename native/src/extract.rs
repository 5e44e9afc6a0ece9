//! Extractors for a host's own routes, applying the same auth rules as the API (contract §1.1).
//!
//! They find the instance in the request extensions: add `.layer(Extension(regstack.clone()))`
//! to the host router.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use regstack_core::flows::session::authenticate;
use regstack_core::flows::FlowError;
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
