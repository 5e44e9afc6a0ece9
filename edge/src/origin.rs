//! Forward-auth of the origin app: every path outside the api, ui and static prefixes is
//! proxied to `origin_url`.
//!
//! Client-sent `x-regstack-*` headers are always removed. A path matching
//! `origin_protected_paths` needs a valid session (checked exactly as `/me` checks it,
//! revocation and bulk sign-out included) and is refused with the contract's 401 otherwise.
//! When the caller's session is valid, on any path, the origin receives the user's id, email
//! and superuser flag, signed with `origin_auth_secret` (see `regstack_core::identity`), in
//! place of the bearer token: a session JWT that works against the API has no business in the
//! origin's logs. An `Authorization` header that is not a valid session passes through.
//!
//! The origin also gets the forwarding headers from the edge alone: the client's
//! `Forwarded`, `X-Forwarded-*`, `X-Real-IP` and the like are replaced by `X-Forwarded-For`
//! (the `CF-Connecting-IP`), `X-Forwarded-Host` and `X-Forwarded-Proto` as the edge saw them.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::header::{AUTHORIZATION, HOST};
use http::{HeaderName, HeaderValue, StatusCode};
use regstack_core::engine::Engine;
use regstack_core::flows::session::authenticate;
use regstack_core::http::{ApiError, ClientIp};
use regstack_core::identity::{self, ForwardedIdentity};
use worker::RequestRedirect;

use crate::js::js;

/// The fallback of the edge app: the contract's 404 without an origin, else the proxy.
pub async fn forward(State(engine): State<Arc<Engine>>, req: Request) -> Response {
    let Some(origin) = engine.config.origin_url.clone() else {
        return ApiError::not_found().into_response();
    };
    let (mut parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let own = |prefix: &str| path == prefix || path.starts_with(&format!("{prefix}/"));
    if own(&engine.config.ui_prefix) || own(&engine.config.static_prefix) {
        return ApiError::not_found().into_response();
    }
    let spoofed: Vec<HeaderName> = parts
        .headers
        .keys()
        .filter(|name| only_the_edge_sets(name.as_str()))
        .cloned()
        .collect();
    for name in spoofed {
        parts.headers.remove(&name);
    }
    let client_host = parts.headers.get(HOST).cloned();
    let client_ip = parts.extensions.get::<ClientIp>().map(|ip| ip.0.clone());
    if let Some(ip) = client_ip.and_then(|ip| HeaderValue::from_str(&ip).ok()) {
        parts.headers.insert("x-forwarded-for", ip);
    }
    if let Some(host) = client_host {
        parts.headers.insert("x-forwarded-host", host);
    }
    if let Some(scheme) = parts.uri.scheme_str().and_then(|s| HeaderValue::from_str(s).ok()) {
        parts.headers.insert("x-forwarded-proto", scheme);
    }
    let protected = identity::is_protected(&engine.config.origin_protected_paths, &path);
    let authorization = parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if protected || authorization.is_some() {
        match authenticate(&engine, authorization.as_deref()).await {
            Ok(session) => {
                let secret = engine.config.origin_auth_secret.as_deref().unwrap_or_default();
                let vouched = ForwardedIdentity {
                    user_id: session.user.id.clone(),
                    email: session.user.email.clone(),
                    is_superuser: session.user.is_superuser,
                };
                let now = engine.now().timestamp();
                for (name, value) in identity::sign(secret, &vouched, now) {
                    if let Ok(value) = HeaderValue::from_str(&value) {
                        parts.headers.insert(name, value);
                    }
                }
                parts.headers.remove(AUTHORIZATION);
            }
            Err(e) if protected => return ApiError::from(e).into_response(),
            // An unprotected path still reaches the origin, just without an identity.
            Err(_) => {}
        }
    }
    let query = parts.uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    let target = format!("{}{path}{query}", origin.trim_end_matches('/'));
    let Ok(uri) = target.parse() else {
        return ApiError::not_found().into_response();
    };
    parts.uri = uri;
    // fetch sets the origin's own Host; the origin's redirects go back to the client as they are.
    parts.headers.remove(HOST);
    parts.extensions.insert(RequestRedirect::Manual);
    let upstream = http::Request::from_parts(parts, body);
    let answered = js(async move {
        let req = worker::Request::try_from(upstream)?;
        let resp = worker::Fetch::Request(req).send().await?;
        Ok::<_, worker::Error>(http::Response::<Body>::from(resp))
    })
    .await;
    match answered {
        Ok(resp) => resp,
        Err(e) => {
            tracing::error!(target: "regstack.origin", error = %e, "the origin did not answer");
            ApiError::detail(StatusCode::BAD_GATEWAY, "The origin application did not answer.").into_response()
        }
    }
}

/// Headers a client may not send to the origin: regstack's identity headers, and those by
/// which a proxy tells the origin who the client is or what URL it asked for. Only the edge
/// may say either.
fn only_the_edge_sets(name: &str) -> bool {
    name.starts_with(identity::PREFIX)
        || name.starts_with("x-forwarded-")
        || matches!(
            name,
            "forwarded" | "x-real-ip" | "true-client-ip" | "x-client-ip" | "x-original-url" | "x-rewrite-url"
        )
}
