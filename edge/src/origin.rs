//! Forward-auth of the origin app: every path outside the API prefix is
//! proxied to `origin_url`. What happens to the request (where it goes, which headers are
//! stripped or set, whether a session is needed) is `regstack_core::forward_auth`'s decision;
//! this file applies it and makes the fetch.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use regstack_core::engine::Engine;
use regstack_core::forward_auth::{self, Target};
use regstack_core::http::{ApiError, ClientIp};
use worker::RequestRedirect;

use crate::js::js;

/// The fallback of the edge app: the contract's 404 without an origin, else the proxy.
pub async fn forward(State(engine): State<Arc<Engine>>, req: Request) -> Response {
    let (mut parts, body) = req.into_parts();
    let Target::Origin { url, protected } = forward_auth::target(&engine.config, parts.uri.path(), parts.uri.query())
    else {
        return ApiError::not_found().into_response();
    };
    let client_ip = parts.extensions.get::<ClientIp>().map(|ip| ip.0.clone());
    let scheme = parts.uri.scheme_str().map(str::to_string);
    forward_auth::strip_client_headers(&mut parts.headers, client_ip.as_deref(), scheme.as_deref());
    if let Err(e) = forward_auth::vouch(&engine, &mut parts.headers, protected).await {
        return ApiError::from(e).into_response();
    }
    let Ok(uri) = url.parse() else {
        return ApiError::not_found().into_response();
    };
    parts.uri = uri;
    // The origin's redirects go back to the client as they are.
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
