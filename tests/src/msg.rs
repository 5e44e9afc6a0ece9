//! The exact messages of docs/wire.md ("Routes", "Conventions"), shared by the scenario files.

/// `401` with no or a non-Bearer `Authorization` header.
pub const AUTH_REQUIRED: &str = "Authentication required.";
/// `401` for an undecodable, expired or wrong-purpose token.
pub const INVALID_TOKEN: &str = "Invalid or expired token.";
/// `401` for a blacklisted `jti` (after logout).
pub const REVOKED: &str = "Token has been revoked.";
/// `401` when the user is gone or inactive.
pub const USER_INACTIVE: &str = "User no longer active.";
/// `401` when `iat <= tokens_invalidated_after`.
pub const SESSION_INVALIDATED: &str = "Session was invalidated; please sign in again.";
/// `401` for a failed login, before any "N attempt(s) remaining." suffix.
pub const BAD_LOGIN: &str = "Invalid email or password.";

/// `401` for a failed login with `n` attempts left before the lockout.
pub fn bad_login_remaining(n: u32) -> String {
    format!("{BAD_LOGIN} {n} attempt(s) remaining.")
}
/// `429` while an email is locked out, with the default 900 s window.
pub const LOCKED_900: &str = "Too many failed attempts. Try again in 900 seconds.";
/// `403` on `/register` with `allow_registration=false`.
pub const REGISTRATION_DISABLED: &str = "Registration is disabled.";
/// `409` on `/register` when a user exists.
pub const EMAIL_EXISTS: &str = "An account with that email already exists.";
/// `400` on `/verify` with an unknown or expired token.
pub const BAD_VERIFY_LINK: &str = "Verification link is invalid or has expired. Request a new one.";
/// `202` on `/resend-verification`, always.
pub const RESEND_ACK: &str = "If a pending registration exists, a new email has been sent.";
/// `200` on `/logout`.
pub const LOGGED_OUT: &str = "Logged out.";
/// `200` on `/change-password`.
pub const PASSWORD_CHANGED: &str = "Password changed. Existing sessions have been signed out.";
/// `400` when `current_password` is wrong.
pub const WRONG_CURRENT_PASSWORD: &str = "Current password is incorrect.";
/// `400` on `/change-password` when the new password equals the current one.
pub const SAME_PASSWORD: &str = "New password must differ from the current password.";
/// `202` on `/change-email`, whether or not the address is available.
pub const CHANGE_EMAIL_ACK: &str = "If the address is available, a confirmation link has been sent. Check your email.";
/// `400` on `/change-email` when the new address equals the current one.
pub const SAME_EMAIL: &str = "New email is the same as the current email.";
/// `400` on `/confirm-email-change` with a bad or used token.
pub const BAD_EMAIL_CHANGE_LINK: &str = "Email-change link is invalid or has expired. Request a new one.";
/// `409` on `/confirm-email-change` when the address was taken in the meantime.
pub const EMAIL_IN_USE: &str = "That email address is already in use.";
/// `200` on `DELETE /account`.
pub const ACCOUNT_DELETED: &str = "Account deleted.";
/// `404` on `DELETE /account` with `enable_account_deletion=false`.
pub const DELETION_DISABLED: &str = "Account deletion is disabled for this application.";
/// `202` on `/forgot-password`, always.
pub const FORGOT_ACK: &str = "If the address matches an active account, a reset link has been sent. Check your email.";
/// `200` on `/reset-password`.
pub const PASSWORD_RESET: &str = "Password has been reset. Please sign in.";
/// `400` on `/reset-password` with a bad or used token.
pub const BAD_RESET_LINK: &str = "Reset link is invalid or has expired. Request a new one.";
/// `400` on `/phone/start` for a number that is not E.164 (checked before the password).
pub const PHONE_NOT_E164: &str = "Phone number must be in E.164 format (e.g. +14155552671).";
/// `200` on `DELETE /phone`.
pub const SMS_2FA_DISABLED: &str = "SMS 2FA disabled.";
/// `400` on `/phone/confirm` with a bad, expired or wrong-purpose pending token.
pub const BAD_PHONE_SETUP_SESSION: &str = "Phone-setup session is invalid or has expired. Start setup again.";
/// `400` on `/login/mfa-confirm` with a bad, expired or wrong-purpose pending token.
pub const BAD_SIGN_IN_SESSION: &str = "Sign-in session is invalid or has expired. Start over from sign-in.";
/// `400` on `/phone/confirm` when no code is pending (the em-dash is U+2014).
pub const NO_PHONE_CODE: &str = "No pending verification code \u{2014} request a new one.";
/// `400` on `/login/mfa-confirm` when no code is pending.
pub const NO_SIGN_IN_CODE: &str = "No pending sign-in code \u{2014} start the login flow again.";
/// `400` on `/phone/confirm` when the attempts are used up.
pub const PHONE_CODE_LOCKED: &str = "Too many wrong attempts \u{2014} request a new code.";
/// `400` on `/login/mfa-confirm` when the attempts are used up.
pub const SIGN_IN_CODE_LOCKED: &str = "Too many wrong attempts \u{2014} start the login flow again.";
/// `400` on `/phone/confirm` with an expired code.
pub const PHONE_CODE_EXPIRED: &str = "Verification code has expired. Request a new one.";
/// `400` on `/login/mfa-confirm` with an expired code.
pub const SIGN_IN_CODE_EXPIRED: &str = "Sign-in code has expired. Try logging in again.";
/// `400` on both confirm routes when the pending token's user is gone or inactive.
pub const NO_ACTIVE_ACCOUNT: &str = "Token does not match an active account.";

/// `400` on both confirm routes for a wrong code with `n` attempts left.
pub fn wrong_code(n: u32) -> String {
    format!("Wrong code; {n} attempts remaining.")
}

/// The body of an unknown path.
pub const NOT_FOUND: &str = "Not Found";
/// The body of a wrong method.
pub const METHOD_NOT_ALLOWED: &str = "Method Not Allowed";

/// 403 for an authenticated caller who is not a superuser.
pub const ADMIN_REQUIRED: &str = "Administrator privileges required.";
/// 409 when a change would leave no active superuser.
pub const LAST_SUPERUSER: &str = "This is the only active superuser. Make another user a superuser first.";
