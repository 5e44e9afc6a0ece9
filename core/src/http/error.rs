//! `ApiError`: the one place that knows status codes and the wire bodies.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::flows::{AuthFailure, FlowError};
use crate::ports::StoreError;
use crate::records::{CodeCheck, CodeKind};

/// An error on its way to the client.
#[derive(Debug)]
pub enum ApiError {
    /// `{"detail": "<text>"}` with a status and optional headers.
    Detail {
        /// Status code.
        status: StatusCode,
        /// The human string.
        detail: String,
        /// Extra headers (`WWW-Authenticate`, `Retry-After`).
        headers: Vec<(header::HeaderName, String)>,
    },
    /// 422 with pydantic's list of errors.
    Validation(Vec<Value>),
}

impl ApiError {
    /// A plain `{"detail": ...}` error.
    pub fn detail(status: StatusCode, detail: impl Into<String>) -> Self {
        ApiError::Detail {
            status,
            detail: detail.into(),
            headers: Vec::new(),
        }
    }

    fn with_header(self, name: header::HeaderName, value: String) -> Self {
        match self {
            ApiError::Detail {
                status,
                detail,
                mut headers,
            } => {
                headers.push((name, value));
                ApiError::Detail {
                    status,
                    detail,
                    headers,
                }
            }
            other => other,
        }
    }

    /// 404 `Not Found`.
    pub fn not_found() -> Self {
        Self::detail(StatusCode::NOT_FOUND, "Not Found")
    }

    /// The message a client would read, for callers outside HTTP (the CLI): the `detail`
    /// text, or the validation messages joined.
    pub fn detail_text(&self) -> String {
        match self {
            ApiError::Detail { detail, .. } => detail.clone(),
            ApiError::Validation(errors) => errors
                .iter()
                .filter_map(|e| e["msg"].as_str())
                .collect::<Vec<_>>()
                .join("; "),
        }
    }
}

fn bad_request(detail: &str) -> ApiError {
    ApiError::detail(StatusCode::BAD_REQUEST, detail)
}

impl From<FlowError> for ApiError {
    fn from(e: FlowError) -> Self {
        use FlowError::*;
        match e {
            Auth(AuthFailure::Missing) => ApiError::detail(StatusCode::UNAUTHORIZED, "Authentication required.")
                .with_header(header::WWW_AUTHENTICATE, "Bearer".into()),
            Auth(AuthFailure::Invalid) => ApiError::detail(StatusCode::UNAUTHORIZED, "Invalid or expired token.")
                .with_header(header::WWW_AUTHENTICATE, "Bearer".into()),
            Auth(AuthFailure::Revoked) => ApiError::detail(StatusCode::UNAUTHORIZED, "Token has been revoked."),
            Auth(AuthFailure::Inactive) => ApiError::detail(StatusCode::UNAUTHORIZED, "User no longer active."),
            Auth(AuthFailure::Invalidated) => ApiError::detail(
                StatusCode::UNAUTHORIZED,
                "Session was invalidated; please sign in again.",
            ),
            NotAdmin => ApiError::detail(StatusCode::FORBIDDEN, "Administrator privileges required."),
            UserNotFound => ApiError::detail(StatusCode::NOT_FOUND, "User not found."),
            AlreadyVerified => bad_request("User is already verified."),
            NoPasswordToVerify => bad_request(
                "User has no password (OAuth-only). Verify them directly via the user record instead of resending verification email.",
            ),
            NoPendingRegistration(email) => {
                ApiError::detail(StatusCode::NOT_FOUND, format!("No pending registration for {email}."))
            }
            UserExists(email) => ApiError::detail(StatusCode::CONFLICT, format!("A user with email {email} already exists.")),
            LastSuperuser => ApiError::detail(
                StatusCode::CONFLICT,
                "This is the only active superuser. Make another user a superuser first.",
            ),
            InvalidEmail(reason) => bad_request(&format!("The email address is not valid: {reason}")),
            PasswordLength => bad_request("The password must be 8 to 128 characters."),
            OAuthProviderUnknown(name) => ApiError::detail(
                StatusCode::NOT_FOUND,
                format!("OAuth provider '{name}' is not configured."),
            ),
            OAuthRedirectRefused => bad_request("redirect_to must be same-origin."),
            OAuthProviderUnavailable => ApiError::detail(
                StatusCode::SERVICE_UNAVAILABLE,
                "The sign-in provider cannot be reached. Try again shortly.",
            )
            .with_header(header::RETRY_AFTER, "5".into()),
            OAuthNotLinked => ApiError::detail(StatusCode::NOT_FOUND, "That provider is not linked to your account."),
            OAuthLastMethod => bad_request(
                "Cannot unlink your only sign-in method. Set a password (use forgot-password) or link another provider first.",
            ),
            OAuthStateNotFound => ApiError::detail(StatusCode::NOT_FOUND, "OAuth state not found or already consumed."),
            OAuthStateExpired => bad_request("OAuth state has expired."),
            RefreshInvalid => ApiError::detail(StatusCode::UNAUTHORIZED, "Invalid or expired refresh token."),
            PushSubscriptionNotFound => {
                ApiError::detail(StatusCode::NOT_FOUND, "No push subscription for that endpoint.")
            }
            Turnstile(crate::turnstile::Refusal::Missing) => bad_request(
                "Turnstile verification is required: send the widget's token as cf-turnstile-response.",
            ),
            Turnstile(crate::turnstile::Refusal::Failed) => {
                bad_request("Turnstile verification failed. Complete the challenge again.")
            }
            Turnstile(crate::turnstile::Refusal::Unavailable) => ApiError::detail(
                StatusCode::SERVICE_UNAVAILABLE,
                "Turnstile verification is unavailable. Try again shortly.",
            )
            .with_header(header::RETRY_AFTER, "5".into()),
            RelayRefused => ApiError::detail(StatusCode::UNAUTHORIZED, "Relay request refused."),
            RegistrationDisabled => ApiError::detail(StatusCode::FORBIDDEN, "Registration is disabled."),
            EmailTaken => ApiError::detail(StatusCode::CONFLICT, "An account with that email already exists."),
            VerificationInvalid => bad_request("Verification link is invalid or has expired. Request a new one."),
            AlreadyRegistered => bad_request("This email is already registered. Please sign in."),
            Locked { retry_after } => ApiError::detail(
                StatusCode::TOO_MANY_REQUESTS,
                format!("Too many failed attempts. Try again in {retry_after} seconds."),
            )
            .with_header(header::RETRY_AFTER, retry_after.to_string()),
            BadCredentials { remaining } => ApiError::detail(
                StatusCode::UNAUTHORIZED,
                match remaining {
                    Some(n) => format!("Invalid email or password. {n} attempt(s) remaining."),
                    None => "Invalid email or password.".to_string(),
                },
            ),
            AccountDisabled => ApiError::detail(StatusCode::FORBIDDEN, "Account is disabled."),
            NotVerified => ApiError::detail(StatusCode::FORBIDDEN, "Email address has not been verified."),
            PhoneInvalid => bad_request("Phone number must be in E.164 format (e.g. +14155552671)."),
            PhoneSessionInvalid => bad_request("Phone-setup session is invalid or has expired. Start setup again."),
            MfaSessionInvalid => bad_request("Sign-in session is invalid or has expired. Start over from sign-in."),
            Code(kind, outcome) => bad_request(&code_message(kind, outcome)),
            NoPassword => bad_request(
                "No password set on this account. Use forgot-password to set one before changing account details.",
            ),
            WrongCurrentPassword => bad_request("Current password is incorrect."),
            SamePassword => bad_request("New password must differ from the current password."),
            SameEmail => bad_request("New email is the same as the current email."),
            EmailChangeInvalid => bad_request("Email-change link is invalid or has expired. Request a new one."),
            TokenUserInactive => bad_request("Token does not match an active account."),
            EmailInUse => ApiError::detail(StatusCode::CONFLICT, "That email address is already in use."),
            AccountDeletionDisabled => ApiError::detail(
                StatusCode::NOT_FOUND,
                "Account deletion is disabled for this application.",
            ),
            PasswordResetDisabled => ApiError::detail(
                StatusCode::NOT_FOUND,
                "Password reset is disabled for this application.",
            ),
            ResetInvalid => bad_request("Reset link is invalid or has expired. Request a new one."),
            ResetUserInactive => bad_request("Reset link does not match an active account."),
            RateLimited { limit, retry_after } => {
                ApiError::detail(StatusCode::TOO_MANY_REQUESTS, format!("Rate limit exceeded: {limit}"))
                    .with_header(header::RETRY_AFTER, retry_after.to_string())
            }
            Store(StoreError::Unavailable(reason)) => {
                tracing::error!(target: "regstack.store", %reason, "storage unavailable");
                ApiError::detail(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The account service is temporarily unavailable. Try again shortly.",
                )
                .with_header(header::RETRY_AFTER, "5".into())
            }
            Store(other) => internal(&other),
            Password(crate::password::PasswordError::Busy) => ApiError::detail(
                StatusCode::SERVICE_UNAVAILABLE,
                "The account service is busy. Try again shortly.",
            )
            .with_header(header::RETRY_AFTER, "1".into()),
            Password(e) => internal(&e),
            Render(e) => internal(&e),
        }
    }
}

/// The 400 texts of an SMS code outcome; the em-dashes are U+2014, as in the original.
fn code_message(kind: CodeKind, outcome: CodeCheck) -> String {
    use CodeKind::{LoginMfa, PhoneSetup};
    match (kind, outcome) {
        (LoginMfa, CodeCheck::Missing) => "No pending sign-in code \u{2014} start the login flow again.".into(),
        (PhoneSetup, CodeCheck::Missing) => "No pending verification code \u{2014} request a new one.".into(),
        (LoginMfa, CodeCheck::Expired) => "Sign-in code has expired. Try logging in again.".into(),
        (PhoneSetup, CodeCheck::Expired) => "Verification code has expired. Request a new one.".into(),
        (LoginMfa, CodeCheck::Locked) => "Too many wrong attempts \u{2014} start the login flow again.".into(),
        (PhoneSetup, CodeCheck::Locked) => "Too many wrong attempts \u{2014} request a new code.".into(),
        (_, CodeCheck::Wrong { remaining }) => format!("Wrong code; {remaining} attempts remaining."),
        // `check_code` never turns an accepted code into an error.
        (_, CodeCheck::Ok) => "Internal Server Error".into(),
    }
}

fn internal(e: &dyn std::error::Error) -> ApiError {
    tracing::error!(target: "regstack.http", error = %e, "internal error");
    ApiError::detail(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
}

/// What a 422 shows instead of a secret it would otherwise echo back.
pub const REDACTED: &str = "[redacted]";

/// 422 bodies echo the input that failed, as pydantic does, except secrets: a field whose name
/// contains `password` shows [`REDACTED`], inside objects too, and a raw body that mentions a
/// password (a form post) is not echoed at all. Responses end up in logs, proxies and bug
/// reports; passwords must not.
fn redact_input(error: &mut Value) {
    let names_a_password = |v: &Value| v.as_str().is_some_and(|k| k.to_ascii_lowercase().contains("password"));
    let at_password = error
        .get("loc")
        .and_then(Value::as_array)
        .and_then(|loc| loc.last())
        .is_some_and(names_a_password);
    let Some(input) = error.get_mut("input") else {
        return;
    };
    // A "missing" error's input is the enclosing object, which is redacted key by key.
    if at_password && !input.is_object() {
        *input = Value::from(REDACTED);
    } else {
        redact_value(input);
    }
}

fn redact_value(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                if key.to_ascii_lowercase().contains("password") {
                    *value = Value::from(REDACTED);
                } else {
                    redact_value(value);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_value),
        Value::String(text) if text.to_ascii_lowercase().contains("password") => *v = Value::from(REDACTED),
        _ => {}
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Detail {
                status,
                detail,
                headers,
            } => {
                let mut resp = (status, axum::Json(json!({ "detail": detail }))).into_response();
                for (name, value) in headers {
                    if let Ok(v) = HeaderValue::from_str(&value) {
                        resp.headers_mut().insert(name, v);
                    }
                }
                resp
            }
            ApiError::Validation(mut errors) => {
                errors.iter_mut().for_each(redact_input);
                (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    axum::Json(json!({ "detail": errors })),
                )
                    .into_response()
            }
        }
    }
}
