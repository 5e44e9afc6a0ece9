//! The axum Router built from the routing table, served unchanged by both runtimes.
//!
//! Runtimes nest [`router`] under `api_prefix`, put a [`ClientIp`] and a [`BodyLimit`] in each
//! request's extensions, and add their own tower layers around it.

pub mod body;
pub mod error;
pub mod handlers;
pub mod pages;

use std::sync::Arc;

use axum::extract::{OriginalUri, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Router;

pub use body::BodyLimit;
pub use error::ApiError;

use crate::engine::Engine;
use crate::flows::limits::check_rate;
use crate::flows::session::authenticate;
use crate::flows::FlowError;
use crate::routes::{Access, Endpoint};

/// The client's address as the runtime determined it (socket peer, the right-most
/// `X-Forwarded-For` entry behind a proxy, or `CF-Connecting-IP` at the edge).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientIp(pub String);

fn handler(endpoint: Endpoint) -> MethodRouter<Arc<Engine>> {
    let route = endpoint.route();
    let filter = MethodFilter::try_from(route.method).expect("table methods are standard");
    match endpoint {
        Endpoint::Register => on(filter, handlers::register),
        Endpoint::Verify => on(filter, handlers::verify),
        Endpoint::ResendVerification => on(filter, handlers::resend_verification),
        Endpoint::Login => on(filter, handlers::login),
        Endpoint::Logout => on(filter, handlers::logout),
        Endpoint::GetMe => on(filter, handlers::me),
        Endpoint::PatchMe => on(filter, handlers::patch_me),
        Endpoint::ChangePassword => on(filter, handlers::change_password),
        Endpoint::ChangeEmail => on(filter, handlers::change_email),
        Endpoint::ConfirmEmailChange => on(filter, handlers::confirm_email_change),
        Endpoint::DeleteAccount => on(filter, handlers::delete_account),
        Endpoint::ForgotPassword => on(filter, handlers::forgot_password),
        Endpoint::ResetPassword => on(filter, handlers::reset_password),
        Endpoint::LoginMfaConfirm => on(filter, handlers::login_mfa_confirm),
        Endpoint::PhoneStart => on(filter, handlers::phone_start),
        Endpoint::PhoneConfirm => on(filter, handlers::phone_confirm),
        Endpoint::PhoneDisable => on(filter, handlers::phone_disable),
        Endpoint::Relay => on(filter, handlers::relay),
        Endpoint::OpenApi => on(filter, handlers::openapi),
        Endpoint::AdminStats => on(filter, handlers::admin_stats),
        Endpoint::PushVapidPublicKey => on(filter, handlers::push_vapid_public_key),
        Endpoint::PushSubscribe => on(filter, handlers::push_subscribe),
        Endpoint::PushSubscriptions => on(filter, handlers::push_subscriptions),
        Endpoint::PushUnsubscribe => on(filter, handlers::push_unsubscribe),
        Endpoint::AdminListUsers => on(filter, handlers::admin_list_users),
        Endpoint::AdminGetUser => on(filter, handlers::admin_get_user),
        Endpoint::AdminPatchUser => on(filter, handlers::admin_patch_user),
        Endpoint::AdminDeleteUser => on(filter, handlers::admin_delete_user),
        Endpoint::AdminResendVerification => on(filter, handlers::admin_resend_verification),
        Endpoint::AdminPromotePending => on(filter, handlers::admin_promote_pending),
        Endpoint::OAuthProviders => on(filter, handlers::oauth_providers),
        Endpoint::OAuthStart => on(filter, handlers::oauth_start),
        Endpoint::OAuthLinkStart => on(filter, handlers::oauth_link_start),
        Endpoint::OAuthUnlink => on(filter, handlers::oauth_unlink),
        Endpoint::OAuthCallback => on(filter, handlers::oauth_callback),
        Endpoint::OAuthExchange => on(filter, handlers::oauth_exchange),
        Endpoint::TokenRefresh => on(filter, handlers::token_refresh),
    }
}

/// The JSON API of one engine, unprefixed: every mounted endpoint of the table, its guards,
/// and the contract's 404, 405 and trailing-slash answers.
pub fn router(engine: Arc<Engine>) -> Router {
    let mut router: Router<Arc<Engine>> = Router::new();
    let mut paths: Vec<&'static str> = Vec::new();
    for endpoint in Endpoint::mounted(&engine.config) {
        let path = endpoint.route().path;
        let guarded = handler(endpoint).route_layer(middleware::from_fn_with_state((engine.clone(), endpoint), guard));
        router = router.route(path, guarded);
        paths.push(path);
    }
    router
        .fallback(move |uri: OriginalUri, req: Request| fallback(paths.clone(), uri, req))
        .layer(middleware::map_response(method_not_allowed))
        .with_state(engine)
}

/// Rate limit, then authentication, as the table says; both before the body is read.
async fn guard(State((engine, endpoint)): State<(Arc<Engine>, Endpoint)>, mut req: Request, next: Next) -> Response {
    let route = endpoint.route();
    if let Some(class) = route.rate {
        let client = req
            .extensions()
            .get::<ClientIp>()
            .map(|c| c.0.clone())
            .unwrap_or_else(|| "unknown".into());
        if let Err(e) = check_rate(&engine, class, &client).await {
            return ApiError::from(e).into_response();
        }
    }
    if route.access != Access::Public {
        let header = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        match authenticate(&engine, header).await {
            Ok(session) if route.access == Access::Admin && !session.user.is_superuser => {
                return ApiError::from(FlowError::NotAdmin).into_response();
            }
            Ok(session) => {
                req.extensions_mut().insert(session);
            }
            Err(e) => return ApiError::from(e).into_response(),
        }
    }
    next.run(req).await
}

/// The session the route guard authenticated, moved out of the request rather than cloned (a clone
/// would copy the user's every field on each authenticated request).
pub struct SignedIn(pub crate::flows::session::Session);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for SignedIn {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .remove::<crate::flows::session::Session>()
            .map(SignedIn)
            .ok_or_else(|| {
                // Only a route the table marks public could get here, and none asks for one.
                tracing::error!(target: "regstack.http", "a handler asked for the session of a route without one");
                ApiError::detail(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
            })
    }
}

/// Unknown paths: 307 to the slash-less path when that is a route, else 404.
async fn fallback(paths: Vec<&'static str>, OriginalUri(original): OriginalUri, req: Request) -> Response {
    let inner = req.uri().path();
    let slashless = inner.trim_end_matches('/');
    if inner.len() > 1 && inner.ends_with('/') && paths.iter().any(|p| matches_template(p, slashless)) {
        // A relative Location: the client stays on the scheme and host it used, so a password
        // sent over https is never re-sent in clear text or to whatever `Host` claimed. Leading
        // slashes are collapsed, so the target can never read as `//other-host/...`.
        let full = format!("/{}", original.path().trim_end_matches('/').trim_start_matches('/'));
        let query = original.query().map(|q| format!("?{q}")).unwrap_or_default();
        let location = format!("{full}{query}");
        let mut resp = StatusCode::TEMPORARY_REDIRECT.into_response();
        if let Ok(v) = HeaderValue::from_str(&location) {
            resp.headers_mut().insert(header::LOCATION, v);
        }
        return resp;
    }
    ApiError::not_found().into_response()
}

/// Whether `path` is an instance of the table path `template` (`{name}` matches one
/// non-empty segment).
fn matches_template(template: &str, path: &str) -> bool {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| t == p || (t.starts_with('{') && t.ends_with('}') && !p.is_empty()))
}

/// axum answers a wrong method with an empty 405; the contract wants a JSON body.
pub(crate) async fn method_not_allowed(resp: Response) -> Response {
    if resp.status() != StatusCode::METHOD_NOT_ALLOWED || resp.headers().contains_key(header::CONTENT_TYPE) {
        return resp;
    }
    let allow = resp.headers().get(header::ALLOW).cloned();
    let mut out = ApiError::detail(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed").into_response();
    if let Some(allow) = allow {
        out.headers_mut().insert(header::ALLOW, allow);
    }
    out
}

/// The health probes every runtime serves at its root: `GET /healthz` (the process answers)
/// and `GET /readyz` (the user store answers too, else 503).
pub fn probes(engine: Arc<Engine>) -> Router {
    Router::new()
        .route(
            "/healthz",
            axum::routing::get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
        )
        .route(
            "/readyz",
            axum::routing::get(|State(engine): State<Arc<Engine>>| async move {
                match engine.ports.users.ping().await {
                    Ok(()) => (StatusCode::OK, axum::Json(serde_json::json!({"status": "ready"}))).into_response(),
                    Err(_) => (
                        StatusCode::SERVICE_UNAVAILABLE,
                        axum::Json(serde_json::json!({"status": "database unavailable"})),
                    )
                        .into_response(),
                }
            }),
        )
        .with_state(engine)
}
