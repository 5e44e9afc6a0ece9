//! Thin handlers: validate the body, call one flow, shape the answer.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{json, Value};

use super::body::{query_ints, take, Fields, JsonBody};
use super::error::ApiError;
use super::{ClientIp, SignedIn};
use crate::engine::Engine;
use crate::flows::admin::{self, AdminPatch};
use crate::flows::login::LoginOutcome;
use crate::flows::push as push_flow;
use crate::flows::register::Registered;
use crate::flows::{account, email_change, login as login_flow, oauth, password, phone, register as register_flow};
use crate::turnstile::{self, Guarded};

type Reply = Result<Response, ApiError>;

fn ok(status: StatusCode, body: impl serde::Serialize) -> Reply {
    Ok((status, Json(body)).into_response())
}

fn message(status: StatusCode, text: &str) -> Reply {
    ok(status, json!({ "message": text }))
}

/// The Turnstile token of a guardable route (docs/turnstile.md): the body's
/// `cf-turnstile-response`, else the header of that name. The field is known on all three
/// routes once `turnstile_enabled` is on, so a form that always renders the widget is never
/// refused for it; with Turnstile off, the 0.9.3 model is unchanged and it is an extra.
fn turnstile_token(engine: &Engine, guarded: Guarded, f: &mut Fields, headers: &HeaderMap) -> Option<String> {
    if !engine.config.turnstile_enabled {
        return None;
    }
    // A blank field (a widget that has not finished) does not hide the header.
    let from_body = f
        .nullable_string(turnstile::FIELD, Some(turnstile::TOKEN_MAX_CHARS))
        .flatten()
        .filter(|t| !t.trim().is_empty());
    if !guarded.required(&engine.config) {
        return None;
    }
    from_body.or_else(|| {
        headers
            .get(turnstile::FIELD)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    })
}

fn client_ip(ip: Option<Extension<ClientIp>>) -> Option<String> {
    ip.map(|Extension(ClientIp(ip))| ip)
}

/// `POST /register`
pub async fn register(
    State(engine): State<Arc<Engine>>,
    ip: Option<Extension<ClientIp>>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Reply {
    let mut f = Fields::new(body)?;
    let email = f.email("email");
    let pw = f.string("password", 8, Some(128));
    let full_name = f.nullable_string("full_name", Some(200));
    let captcha = turnstile_token(&engine, Guarded::Register, &mut f, &headers);
    f.finish()?;
    turnstile::check(&engine, Guarded::Register, captcha.as_deref(), client_ip(ip).as_deref()).await?;
    match register_flow::register(&engine, take(email)?, &take(pw)?, full_name.flatten()).await? {
        Registered::User(user) => ok(StatusCode::CREATED, user.public()),
        Registered::Pending(pending) => ok(StatusCode::CREATED, pending.response()),
    }
}

/// `POST /verify`
pub async fn verify(State(engine): State<Arc<Engine>>, JsonBody(body): JsonBody) -> Reply {
    let mut f = Fields::new(body)?;
    let token = f.string("token", 0, None);
    f.finish()?;
    let user = register_flow::verify(&engine, &take(token)?).await?;
    ok(StatusCode::OK, user.public())
}

/// `POST /resend-verification`
pub async fn resend_verification(State(engine): State<Arc<Engine>>, JsonBody(body): JsonBody) -> Reply {
    let mut f = Fields::new(body)?;
    let email = f.email("email");
    f.finish()?;
    register_flow::resend_verification(&engine, take(email)?).await?;
    message(
        StatusCode::ACCEPTED,
        "If a pending registration exists, a new email has been sent.",
    )
}

/// `POST /login`
pub async fn login(
    State(engine): State<Arc<Engine>>,
    ip: Option<Extension<ClientIp>>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Reply {
    let mut f = Fields::new(body)?;
    let email = f.email("email");
    let pw = f.string("password", 8, Some(128));
    let captcha = turnstile_token(&engine, Guarded::Login, &mut f, &headers);
    f.finish()?;
    let ip = client_ip(ip);
    turnstile::check(&engine, Guarded::Login, captcha.as_deref(), ip.as_deref()).await?;
    match login_flow::login(&engine, take(email)?, &take(pw)?, ip.as_deref()).await? {
        LoginOutcome::Session(done) => session_answer(&engine, &done),
        LoginOutcome::MfaRequired {
            mfa_pending_token,
            expires_in,
        } => ok(
            StatusCode::OK,
            json!({ "status": "mfa_required", "mfa_pending_token": mfa_pending_token, "expires_in": expires_in, "delivery": "sms" }),
        ),
    }
}

fn token_response(done: &login_flow::LoggedIn) -> Value {
    json!({ "access_token": done.access_token, "token_type": "bearer", "expires_in": done.expires_in })
}

/// The name of the cookie that carries the refresh token (`refresh_token_cookie`).
const REFRESH_COOKIE: &str = "regstack_refresh";

/// Adds a refresh token to a session answer: in the body, or with `refresh_token_cookie`
/// only in an `HttpOnly; Secure; SameSite=Strict` cookie scoped to the refresh route, out of
/// reach of page scripts (docs/refresh-tokens.md).
fn with_refresh(engine: &Engine, mut body: Value, refresh: Option<&str>) -> Reply {
    let Some(raw) = refresh else {
        return ok(StatusCode::OK, body);
    };
    if !engine.config.refresh_token_cookie {
        body["refresh_token"] = json!(raw);
        return ok(StatusCode::OK, body);
    }
    let max_age = engine.config.refresh_token_expire_days * 86_400;
    let resp = ok(StatusCode::OK, body)?;
    Ok(with_refresh_cookie(resp, engine, raw, max_age))
}

fn with_refresh_cookie(mut resp: Response, engine: &Engine, value: &str, max_age: i64) -> Response {
    let path = format!("{}/token/refresh", engine.config.api_prefix.trim_end_matches('/'));
    let cookie = format!("{REFRESH_COOKIE}={value}; Max-Age={max_age}; Path={path}; HttpOnly; Secure; SameSite=Strict");
    if let Ok(v) = axum::http::HeaderValue::from_str(&cookie) {
        resp.headers_mut().append(axum::http::header::SET_COOKIE, v);
    }
    resp
}

fn session_answer(engine: &Engine, done: &login_flow::LoggedIn) -> Reply {
    with_refresh(engine, token_response(done), done.refresh_token.as_deref())
}

/// `POST /token/refresh`: the token from the body, else from the cookie; the body may be
/// empty when the cookie carries it.
pub async fn token_refresh(
    State(engine): State<Arc<Engine>>,
    headers: axum::http::HeaderMap,
    JsonBody(body): JsonBody,
) -> Reply {
    let from_body = match body {
        super::body::Body::Missing => None,
        body => {
            let mut f = Fields::new(body)?;
            let token = f.nullable_string("refresh_token", Some(512));
            f.finish()?;
            token.flatten()
        }
    };
    let raw = from_body
        .or_else(|| cookie(&headers, REFRESH_COOKIE).map(str::to_string))
        .ok_or(crate::flows::FlowError::RefreshInvalid)?;
    let done = crate::flows::refresh::refresh(&engine, &raw).await?;
    let body = json!({ "access_token": done.access_token, "token_type": "bearer", "expires_in": done.expires_in });
    with_refresh(&engine, body, Some(&done.refresh_token))
}

/// `POST /login/mfa-confirm`
pub async fn login_mfa_confirm(State(engine): State<Arc<Engine>>, JsonBody(body): JsonBody) -> Reply {
    let mut f = Fields::new(body)?;
    let token = f.string("mfa_pending_token", 0, None);
    let code = f.string("code", 4, Some(10));
    f.finish()?;
    let done = phone::confirm_login(&engine, &take(token)?, &take(code)?).await?;
    session_answer(&engine, &done)
}

/// `POST /phone/start`
pub async fn phone_start(
    State(engine): State<Arc<Engine>>,
    SignedIn(session): SignedIn,
    JsonBody(body): JsonBody,
) -> Reply {
    let mut f = Fields::new(body)?;
    let number = f.string("phone_number", 4, Some(20));
    let current = f.string("current_password", 0, None);
    f.finish()?;
    let (pending_token, expires_in) = phone::start_setup(&engine, &session, &take(number)?, &take(current)?).await?;
    ok(
        StatusCode::ACCEPTED,
        json!({ "status": "code_sent", "pending_token": pending_token, "expires_in": expires_in }),
    )
}

/// `POST /phone/confirm`
pub async fn phone_confirm(State(engine): State<Arc<Engine>>, JsonBody(body): JsonBody) -> Reply {
    let mut f = Fields::new(body)?;
    let token = f.string("pending_token", 0, None);
    let code = f.string("code", 4, Some(10));
    f.finish()?;
    let user = phone::confirm_setup(&engine, &take(token)?, &take(code)?).await?;
    ok(StatusCode::OK, user.public())
}

/// `DELETE /phone`
pub async fn phone_disable(
    State(engine): State<Arc<Engine>>,
    SignedIn(session): SignedIn,
    JsonBody(body): JsonBody,
) -> Reply {
    let mut f = Fields::new(body)?;
    let current = f.string("current_password", 0, None);
    f.finish()?;
    phone::disable(&engine, &session, &take(current)?).await?;
    message(StatusCode::OK, "SMS 2FA disabled.")
}

/// `POST /logout`
pub async fn logout(State(engine): State<Arc<Engine>>, SignedIn(session): SignedIn) -> Reply {
    login_flow::logout(&engine, &session).await?;
    let resp = message(StatusCode::OK, "Logged out.")?;
    Ok(
        if engine.config.enable_refresh_tokens && engine.config.refresh_token_cookie {
            with_refresh_cookie(resp, &engine, "", 0)
        } else {
            resp
        },
    )
}

/// `GET /me`
pub async fn me(SignedIn(session): SignedIn) -> Reply {
    ok(StatusCode::OK, session.user.wire())
}

/// `PATCH /me`
pub async fn patch_me(
    State(engine): State<Arc<Engine>>,
    SignedIn(session): SignedIn,
    JsonBody(body): JsonBody,
) -> Reply {
    let mut f = Fields::new(body)?;
    let full_name = f.nullable_string("full_name", Some(200));
    f.finish()?;
    let user = account::update_profile(&engine, &session, full_name).await?;
    ok(StatusCode::OK, user.public())
}

/// `POST /change-password`
pub async fn change_password(
    State(engine): State<Arc<Engine>>,
    SignedIn(session): SignedIn,
    ip: Option<Extension<ClientIp>>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Reply {
    let mut f = Fields::new(body)?;
    let current = f.string("current_password", 0, None);
    let new = f.string("new_password", 8, Some(128));
    let captcha = turnstile_token(&engine, Guarded::ChangePassword, &mut f, &headers);
    f.finish()?;
    let ip = client_ip(ip);
    turnstile::check(&engine, Guarded::ChangePassword, captcha.as_deref(), ip.as_deref()).await?;
    account::change_password(&engine, &session, &take(current)?, &take(new)?).await?;
    message(
        StatusCode::OK,
        "Password changed. Existing sessions have been signed out.",
    )
}

/// `POST /change-email`
pub async fn change_email(
    State(engine): State<Arc<Engine>>,
    SignedIn(session): SignedIn,
    JsonBody(body): JsonBody,
) -> Reply {
    let mut f = Fields::new(body)?;
    let new_email = f.email("new_email");
    let current = f.string("current_password", 0, None);
    f.finish()?;
    email_change::request_change(&engine, &session, take(new_email)?, &take(current)?).await?;
    message(
        StatusCode::ACCEPTED,
        "If the address is available, a confirmation link has been sent. Check your email.",
    )
}

/// `POST /confirm-email-change`
pub async fn confirm_email_change(State(engine): State<Arc<Engine>>, JsonBody(body): JsonBody) -> Reply {
    let mut f = Fields::new(body)?;
    let token = f.string("token", 0, None);
    f.finish()?;
    let user = email_change::confirm_change(&engine, &take(token)?).await?;
    ok(StatusCode::OK, user.public())
}

/// `DELETE /account`
pub async fn delete_account(
    State(engine): State<Arc<Engine>>,
    SignedIn(session): SignedIn,
    JsonBody(body): JsonBody,
) -> Reply {
    let mut f = Fields::new(body)?;
    let current = f.string("current_password", 0, None);
    f.finish()?;
    account::delete_account(&engine, &session, &take(current)?).await?;
    message(StatusCode::OK, "Account deleted.")
}

/// `POST /forgot-password`
pub async fn forgot_password(State(engine): State<Arc<Engine>>, JsonBody(body): JsonBody) -> Reply {
    let mut f = Fields::new(body)?;
    let email = f.email("email");
    f.finish()?;
    password::forgot(&engine, take(email)?).await?;
    message(
        StatusCode::ACCEPTED,
        "If the address matches an active account, a reset link has been sent. Check your email.",
    )
}

/// `POST /reset-password`
pub async fn reset_password(State(engine): State<Arc<Engine>>, JsonBody(body): JsonBody) -> Reply {
    let mut f = Fields::new(body)?;
    let token = f.string("token", 0, None);
    let new = f.string("new_password", 8, Some(128));
    f.finish()?;
    password::reset(&engine, &take(token)?, &take(new)?).await?;
    message(StatusCode::OK, "Password has been reset. Please sign in.")
}

/// `POST /relay`
pub async fn relay(State(engine): State<Arc<Engine>>, req: axum::extract::Request) -> Reply {
    // The signature covers raw bytes, so the body is read as bytes, under the same
    // `max_request_body_bytes` as every JSON body.
    let limit = req
        .extensions()
        .get::<super::BodyLimit>()
        .map_or(engine.config.max_request_body_bytes, |l| l.0);
    let (parts, body) = req.into_parts();
    let headers = parts.headers;
    let body = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::detail(StatusCode::PAYLOAD_TOO_LARGE, "Request body is too large."))?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    crate::flows::relay::deliver(
        &engine,
        header(crate::relay::TIMESTAMP),
        header(crate::relay::NONCE),
        header(crate::relay::SIGNATURE),
        &body,
    )
    .await?;
    message(StatusCode::ACCEPTED, "Accepted for delivery.")
}

/// `GET /openapi.json`: this instance's OpenAPI 3.1 document (only what is mounted).
pub async fn openapi(State(engine): State<Arc<Engine>>) -> Reply {
    ok(StatusCode::OK, crate::openapi::document(&engine.config))
}

/// A path parameter; one that is not valid UTF-8 after percent-decoding names nothing.
type PathParam = Result<axum::extract::Path<String>, axum::extract::rejection::PathRejection>;

/// What a path parameter that cannot be read is answered as: the route's own 404.
enum Missing {
    User,
    Pending,
    Provider,
}

fn path_param(p: PathParam, missing: Missing) -> Result<String, ApiError> {
    // NUL names nothing any backend can store (PostgreSQL refuses it outright).
    match p {
        Ok(axum::extract::Path(v)) if !v.contains('\0') => Ok(v),
        _ => Err(match missing {
            Missing::User => crate::flows::FlowError::UserNotFound.into(),
            Missing::Pending => ApiError::not_found(),
            Missing::Provider => crate::flows::FlowError::OAuthProviderUnknown(String::new()).into(),
        }),
    }
}

/// `GET /admin/stats`
pub async fn admin_stats(State(engine): State<Arc<Engine>>) -> Reply {
    let s = admin::stats(&engine).await?;
    ok(
        StatusCode::OK,
        json!({
            "total_users": s.users.total,
            "active_users": s.users.active,
            "verified_users": s.users.verified,
            "superusers": s.users.superusers,
            "pending_registrations": s.pending_registrations,
        }),
    )
}

/// `GET /admin/users?skip=&limit=`
pub async fn admin_list_users(
    State(engine): State<Arc<Engine>>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Reply {
    let values = query_ints(query.as_deref(), crate::routes::PAGE)?;
    let (skip, limit) = (values[0], values[1]);
    let page = admin::list_users(&engine, skip, limit).await?;
    ok(
        StatusCode::OK,
        json!({
            "items": page.items.iter().map(crate::records::User::public).collect::<Vec<_>>(),
            "total": page.total,
            "skip": page.skip,
            "limit": page.limit,
        }),
    )
}

/// `GET /admin/users/{user_id}`
pub async fn admin_get_user(State(engine): State<Arc<Engine>>, id: PathParam) -> Reply {
    let id = path_param(id, Missing::User)?;
    ok(StatusCode::OK, admin::get_user(&engine, &id).await?.public())
}

/// `PATCH /admin/users/{user_id}`
pub async fn admin_patch_user(State(engine): State<Arc<Engine>>, id: PathParam, JsonBody(body): JsonBody) -> Reply {
    let id = path_param(id, Missing::User)?;
    let mut f = Fields::new(body)?;
    let is_active = f.nullable_bool("is_active");
    let is_superuser = f.nullable_bool("is_superuser");
    let full_name = f.nullable_string("full_name", Some(200)).flatten();
    let role = f.nullable_role("role");
    f.finish()?;
    let change = AdminPatch {
        is_active,
        is_superuser,
        full_name,
        role,
    };
    ok(StatusCode::OK, admin::update_user(&engine, &id, change).await?.public())
}

/// `DELETE /admin/users/{user_id}`
pub async fn admin_delete_user(State(engine): State<Arc<Engine>>, id: PathParam) -> Reply {
    let id = path_param(id, Missing::User)?;
    let user = admin::delete_user(&engine, &id).await?;
    message(StatusCode::OK, &format!("User {} deleted.", user.email))
}

/// `POST /admin/users/{user_id}/resend-verification`
pub async fn admin_resend_verification(State(engine): State<Arc<Engine>>, id: PathParam) -> Reply {
    let id = path_param(id, Missing::User)?;
    let user = admin::resend_verification(&engine, &id).await?;
    message(
        StatusCode::ACCEPTED,
        &format!("Verification email sent to {}.", user.email),
    )
}

/// `POST /admin/pending/{email}/promote`
pub async fn admin_promote_pending(State(engine): State<Arc<Engine>>, email: PathParam) -> Reply {
    let email = path_param(email, Missing::Pending)?;
    ok(
        StatusCode::CREATED,
        admin::promote_pending(&engine, &email).await?.public(),
    )
}

/// The last value of each named query parameter (pydantic reads the last of repeats).
fn query_values<const N: usize>(raw: Option<&str>, names: [&str; N]) -> [Option<String>; N] {
    let mut out: [Option<String>; N] = std::array::from_fn(|_| None);
    for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        if let Some(i) = names.iter().position(|n| *n == k) {
            out[i] = Some(v.into_owned());
        }
    }
    out
}

fn redirect(location: &str) -> Result<Response, ApiError> {
    let mut resp = StatusCode::FOUND.into_response();
    let value = axum::http::HeaderValue::from_str(location)
        .map_err(|_| ApiError::detail(StatusCode::BAD_REQUEST, "redirect_to must be same-origin."))?;
    resp.headers_mut().insert(axum::http::header::LOCATION, value);
    Ok(resp)
}

/// Sets (or, with `max_age` 0, clears) a round trip's binding cookie (docs/oauth.md, "The
/// round trip"): HttpOnly, `SameSite=Lax` so the provider's redirect back still carries it,
/// `Secure` when `base_url` is https, and gone when the round trip would expire anyway.
fn with_binding(mut resp: Response, engine: &Engine, (name, value): &(String, String), max_age: i64) -> Response {
    let secure = if oauth::binding_is_secure(&engine.config) {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!("{name}={value}; Max-Age={max_age}; Path=/; HttpOnly; SameSite=Lax{secure}");
    if let Ok(v) = axum::http::HeaderValue::from_str(&cookie) {
        resp.headers_mut().append(axum::http::header::SET_COOKIE, v);
    }
    resp
}

/// The value of cookie `name` in a request's `Cookie` headers.
fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then_some(v)
        })
}

/// `GET /push/vapid-public-key`
pub async fn push_vapid_public_key(State(engine): State<Arc<Engine>>) -> Reply {
    // Mounted only with `enable_web_push`, when the engine always holds a pair.
    let key = engine.vapid.as_ref().map(|k| k.public_key()).unwrap_or_default();
    ok(StatusCode::OK, json!({ "public_key": key }))
}

/// `POST /push/subscriptions`
pub async fn push_subscribe(
    State(engine): State<Arc<Engine>>,
    SignedIn(session): SignedIn,
    JsonBody(body): JsonBody,
) -> Reply {
    let mut f = Fields::new(body)?;
    let endpoint = f.string("endpoint", 1, Some(crate::push::ENDPOINT_MAX_CHARS));
    let p256dh = f.string("p256dh", 1, Some(100));
    let auth = f.string("auth", 1, Some(50));
    let mut keys = None;
    if let (Some(endpoint), Some(p256dh), Some(auth)) = (&endpoint, &p256dh, &auth) {
        match crate::push::check_subscription(endpoint, p256dh, auth, &engine.config.push_service_origins) {
            Ok(canonical) => keys = Some(canonical),
            Err(refused) => f.refuse(refused.field, refused.reason),
        }
    }
    f.finish()?;
    let (p256dh, auth) = take(keys)?;
    let saved = push_flow::subscribe(&engine, &session, take(endpoint)?, p256dh, auth).await?;
    ok(StatusCode::CREATED, saved.public())
}

/// `GET /push/subscriptions`
pub async fn push_subscriptions(State(engine): State<Arc<Engine>>, SignedIn(session): SignedIn) -> Reply {
    let items: Vec<Value> = push_flow::list(&engine, &session)
        .await?
        .iter()
        .map(|s| s.public())
        .collect();
    ok(StatusCode::OK, json!({ "items": items }))
}

/// `DELETE /push/subscriptions`
pub async fn push_unsubscribe(
    State(engine): State<Arc<Engine>>,
    SignedIn(session): SignedIn,
    JsonBody(body): JsonBody,
) -> Reply {
    let mut f = Fields::new(body)?;
    let endpoint = f.string("endpoint", 1, Some(crate::push::ENDPOINT_MAX_CHARS));
    f.finish()?;
    push_flow::unsubscribe(&engine, &session, &take(endpoint)?).await?;
    message(StatusCode::OK, "Push subscription removed.")
}

/// `GET /oauth/providers`
pub async fn oauth_providers(State(engine): State<Arc<Engine>>, SignedIn(session): SignedIn) -> Reply {
    let list = oauth::providers(&engine, &session).await?;
    ok(
        StatusCode::OK,
        json!({
            "available": list.available,
            "linked": list.linked.iter().map(crate::records::OAuthIdentity::public).collect::<Vec<_>>(),
        }),
    )
}

/// `GET /oauth/{provider}/start?redirect_to=`: 302 to the provider.
pub async fn oauth_start(
    State(engine): State<Arc<Engine>>,
    provider: PathParam,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Reply {
    let provider = path_param(provider, Missing::Provider)?;
    let [redirect_to] = query_values(query.as_deref(), ["redirect_to"]);
    let started = oauth::start(&engine, &provider, redirect_to.as_deref(), None).await?;
    let ttl = engine.config.oauth.state_ttl_seconds;
    Ok(with_binding(redirect(&started.url)?, &engine, &started.cookie, ttl))
}

/// `POST /oauth/{provider}/link/start?redirect_to=`
pub async fn oauth_link_start(
    State(engine): State<Arc<Engine>>,
    SignedIn(session): SignedIn,
    provider: PathParam,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Reply {
    let provider = path_param(provider, Missing::Provider)?;
    let [redirect_to] = query_values(query.as_deref(), ["redirect_to"]);
    let started = oauth::start(&engine, &provider, redirect_to.as_deref(), Some(&session.user)).await?;
    let ttl = engine.config.oauth.state_ttl_seconds;
    let resp = ok(StatusCode::OK, json!({ "authorization_url": started.url }))?;
    Ok(with_binding(resp, &engine, &started.cookie, ttl))
}

/// `DELETE /oauth/{provider}/link`
pub async fn oauth_unlink(
    State(engine): State<Arc<Engine>>,
    SignedIn(session): SignedIn,
    provider: PathParam,
) -> Reply {
    let provider = path_param(provider, Missing::Provider).map_err(|_| crate::flows::FlowError::OAuthNotLinked)?;
    oauth::unlink(&engine, &session, &provider).await?;
    message(StatusCode::OK, &format!("Unlinked {provider}."))
}

/// `GET /oauth/{provider}/callback?code=&state=&error=`: always a 302, to the UI.
pub async fn oauth_callback(
    State(engine): State<Arc<Engine>>,
    provider: PathParam,
    headers: axum::http::HeaderMap,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Reply {
    let [code, state, error] = query_values(query.as_deref(), ["code", "state", "error"]);
    let provider = path_param(provider, Missing::Provider).unwrap_or_default();
    let bound = state.as_deref().map(|s| oauth::binding(&engine.config, s));
    let q = oauth::CallbackQuery {
        code: code.as_deref(),
        state: state.as_deref(),
        error: error.as_deref(),
        binding: bound.as_ref().and_then(|(name, _)| cookie(&headers, name)),
    };
    let outcome = oauth::callback(&engine, &provider, q).await;
    let mut resp = redirect(&outcome.location)?;
    // The start's cookie has done its work, whatever the outcome; a completed round trip
    // binds its exchange id to this browser the same way.
    if let Some(b) = &bound {
        resp = with_binding(resp, &engine, b, 0);
    }
    if let Some(id) = &outcome.completed {
        let c = &engine.config;
        let ttl = c.oauth.completion_ttl_seconds.max(c.mfa_pending_token_ttl_seconds);
        resp = with_binding(resp, &engine, &oauth::binding(c, id), ttl);
    }
    Ok(resp)
}

/// `POST /oauth/exchange`
pub async fn oauth_exchange(
    State(engine): State<Arc<Engine>>,
    headers: axum::http::HeaderMap,
    JsonBody(body): JsonBody,
) -> Reply {
    let mut f = Fields::new(body)?;
    let id = f.string("id", 8, Some(128));
    f.finish()?;
    let id = take(id)?;
    let bound = oauth::binding(&engine.config, &id);
    let done = oauth::exchange(&engine, &id, cookie(&headers, &bound.0)).await?;
    let refresh = done.refresh_token.clone();
    let (access_token, pending) = if done.mfa_required {
        (String::new(), Some(done.token))
    } else {
        (done.token, None)
    };
    let resp = with_refresh(
        &engine,
        json!({
            "access_token": access_token,
            "redirect_to": done.redirect_to,
            "was_new_account": done.was_new_account,
            "token_type": "bearer",
            "expires_in": done.expires_in,
            "mfa_required": done.mfa_required,
            "mfa_pending_token": pending,
        }),
        refresh.as_deref(),
    )?;
    // The exchange id is spent: its binding cookie goes.
    Ok(with_binding(resp, &engine, &bound, 0))
}
