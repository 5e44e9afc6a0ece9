//! The black-box HTTP conformance harness for regstack.
//!
//! [`Server::start`] spawns the real `regstack serve` binary in a fresh temporary directory
//! (so no stray `regstack.toml` is read), on a free loopback port, with a fresh database and a
//! fixed JWT secret, and waits for `GET /healthz`. The server's stdout is read continuously in
//! the background; [`Server::wait_for_link`] consumes it line by line until a link of the
//! wanted kind shows up, exactly like `regstack validate` does (docs/wire.md, "Console output"); SMS codes are
//! scraped the same way by [`Server::wait_for_sms_code`].
//!
//! Every request helper returns a [`Resp`] (status, headers, raw text and parsed JSON) whose
//! `assert_*` methods compare against the contract's exact bodies and print the whole exchange
//! when they fail.
//!
//! Environment hooks:
//! - `REGSTACK_BIN`: the binary to run (default: `regstack` next to the test executable's
//!   `deps/` directory, i.e. `<target>/debug/regstack`).
//! - `REGSTACK_TEST_DATABASE_URL`: a database URL template for other backends; `{dir}` is
//!   replaced by the server's temporary directory and `{id}` by a unique identifier made of
//!   lower-case letters, digits and `_`. Default: `sqlite+aiosqlite:///{dir}/regstack.db`.
//! - `REGSTACK_TEST_DATABASE_SETUP`: a shell command run (with the same `{dir}` and `{id}`
//!   replacements) before each new server starts, e.g. `createdb … {id}` for Postgres.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::sync::Mutex;

pub use serde_json::{json, Value};

/// The JWT secret every test server uses (stable across restarts of one server).
pub const JWT_SECRET: &str = "conformance-suite-jwt-secret-0123456789-abcdefghij";

/// The API prefix the server mounts its router at (the default `api_prefix`).
pub const API_PREFIX: &str = "/api/auth";

/// A password that satisfies the 8–128 character rule.
pub const PASSWORD: &str = "correct horse battery staple";

/// How long [`Server::wait_for_link`] waits for a link before failing.
pub const LINK_TIMEOUT: Duration = Duration::from_secs(10);

/// How long [`Server::start`] waits for `/healthz` before failing.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// The exact messages of docs/wire.md ("Routes", "Conventions"), shared by the scenario files.
pub mod msg {
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
    pub const CHANGE_EMAIL_ACK: &str =
        "If the address is available, a confirmation link has been sent. Check your email.";
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
    pub const FORGOT_ACK: &str =
        "If the address matches an active account, a reset link has been sent. Check your email.";
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
}

/// The kinds of link the console mailer prints (docs/wire.md, "Console output").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkKind {
    /// A registration verification link (`/verify`).
    Verify,
    /// A password-reset link (`/reset-password`).
    ResetPassword,
    /// An email-change confirmation link (`/confirm-email-change`).
    ConfirmEmailChange,
}

impl LinkKind {
    /// The path fragment a link of this kind contains.
    pub fn path(self) -> &'static str {
        match self {
            LinkKind::Verify => "/verify",
            LinkKind::ResetPassword => "/reset-password",
            LinkKind::ConfirmEmailChange => "/confirm-email-change",
        }
    }
}

/// The kinds of SMS the null SMS backend prints (docs/wire.md, "SMS codes", "Console output").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmsKind {
    /// The phone-setup code sent by `POST /phone/start` (`… verification code: 123456. …`).
    PhoneSetup,
    /// The sign-in code sent by the MFA branch of `POST /login` (`… sign-in code: 123456. …`).
    LoginMfa,
}

impl SmsKind {
    /// The phrase the validate scraper looks for in front of the code.
    pub fn phrase(self) -> &'static str {
        match self {
            SmsKind::PhoneSetup => "verification code:",
            SmsKind::LoginMfa => "sign-in code:",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Unique values

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A random 64-bit value (std's per-process random SipHash keys, mixed with a counter).
pub fn random_u64() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

/// A fresh lower-case address on `example.com`, unique across tests and runs.
pub fn unique_email(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{tag}-{n}-{:012x}@example.com", random_u64() & 0xffff_ffff_ffff)
}

/// A fresh identifier of lower-case hex digits, for database names and the like.
pub fn unique_id() -> String {
    format!("{:016x}", random_u64())
}

// ---------------------------------------------------------------------------------------------
// Link scraping (the regex of docs/wire.md, "Console output", hand-written)

fn is_url_char(c: char) -> bool {
    !(c.is_whitespace() || c == '>' || c == '\'' || c == '"')
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "._-+/=%".contains(c)
}

/// Every non-overlapping match of `https?://[^\s>'"]+?\?token=[A-Za-z0-9._\-+/=%]+` in `line`,
/// left to right, with the same (lazy) semantics as the Python `validate` scraper.
pub fn find_links(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < line.len() {
        if let Some(end) = match_link_at(line, i) {
            out.push(line[i..end].to_string());
            i = end;
        } else {
            i += line[i..].chars().next().map_or(1, char::len_utf8);
        }
    }
    out
}

fn match_link_at(line: &str, start: usize) -> Option<usize> {
    let rest = &line[start..];
    let after_scheme = if rest.starts_with("https://") {
        start + 8
    } else if rest.starts_with("http://") {
        start + 7
    } else {
        return None;
    };
    // `[^\s>'"]+?` then `\?token=` then `[token chars]+`.
    let mut pos = after_scheme;
    let mut consumed_one = false;
    loop {
        let tail = &line[pos..];
        if consumed_one && tail.starts_with("?token=") {
            let token_start = pos + "?token=".len();
            let token_len: usize = line[token_start..]
                .chars()
                .take_while(|c| is_token_char(*c))
                .map(char::len_utf8)
                .sum();
            if token_len > 0 {
                return Some(token_start + token_len);
            }
        }
        let c = tail.chars().next()?;
        if !is_url_char(c) {
            return None;
        }
        pos += c.len_utf8();
        consumed_one = true;
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The (percent-decoded) `token` query parameter of a scraped link.
pub fn token_of(url: &str) -> String {
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    let query = query.split('#').next().unwrap_or("");
    for pair in query.split('&') {
        if let Some(v) = pair.strip_prefix("token=") {
            return percent_decode(v);
        }
    }
    panic!("link {url:?} has no token query parameter")
}

/// The code of the first match of `<phrase>\s*(\d{4,10})` in `line` (the regexes of docs/wire.md, "Console output"
/// `verification code:\s*(\d{4,10})` and `sign-in code:\s*(\d{4,10})`, hand-written with the
/// same greedy semantics: up to ten digits are taken, and fewer than four do not match).
pub fn find_sms_code(line: &str, kind: SmsKind) -> Option<String> {
    let phrase = kind.phrase();
    let mut from = 0;
    while let Some(at) = line[from..].find(phrase) {
        let after = from + at + phrase.len();
        let rest = line[after..].trim_start_matches(char::is_whitespace);
        let digits: String = rest.chars().take_while(char::is_ascii_digit).take(10).collect();
        if digits.len() >= 4 {
            return Some(digits);
        }
        from = after;
    }
    None
}

/// The recipient of a null-SMS line: the text after `To: ` up to the next ` |` (or the end).
pub fn sms_recipient(line: &str) -> Option<String> {
    let (_, rest) = line.split_once("To: ")?;
    let to = rest.split(" |").next().unwrap_or(rest).trim();
    Some(to.to_string())
}

/// The marker every line of the null SMS backend carries (docs/wire.md, "Console output").
pub const NULL_SMS_MARKER: &str = "[regstack/null-sms]";

// ---------------------------------------------------------------------------------------------
// Mail received by the test SMTP server

/// Reading what the test SMTP server (aiosmtpd with a Maildir, started by `scripts/test`)
/// received.
pub mod mail {
    use std::path::{Path, PathBuf};
    use std::time::{Duration, Instant};

    /// The SMTP port and Maildir from `REGSTACK_TEST_SMTP_PORT` and `REGSTACK_TEST_MAILDIR`.
    pub fn sink() -> (u16, PathBuf) {
        let port = std::env::var("REGSTACK_TEST_SMTP_PORT")
            .expect("REGSTACK_TEST_SMTP_PORT must name the test SMTP server (scripts/test starts one)");
        let dir = std::env::var("REGSTACK_TEST_MAILDIR").expect("REGSTACK_TEST_MAILDIR must name its Maildir");
        (port.parse().expect("a port number"), PathBuf::from(dir))
    }

    /// Waits up to 15 s for a message to `to` in the Maildir and returns its raw text.
    pub async fn wait_for_mail(maildir: &Path, to: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(entries) = std::fs::read_dir(maildir.join("new")) {
                for e in entries.flatten() {
                    let raw = std::fs::read_to_string(e.path()).unwrap_or_default();
                    if raw.lines().any(|l| l.eq_ignore_ascii_case(&format!("To: {to}"))) {
                        return raw;
                    }
                }
            }
            assert!(Instant::now() < deadline, "no mail to {to} arrived");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Undoes quoted-printable soft line breaks and `=XX` escapes.
    pub fn unquote(qp: &str) -> String {
        let joined = qp.replace("=\r\n", "").replace("=\n", "");
        let bytes = joined.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'=' && i + 2 < bytes.len() {
                if let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16) {
                    out.push(b);
                    i += 3;
                    continue;
                }
            }
            out.push(bytes[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

// ---------------------------------------------------------------------------------------------
// Small codecs used by assertions

/// Decodes unpadded (or padded) base64url.
pub fn base64url_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in s.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        } as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// The decoded header and payload of a compact JWS (signature not checked).
pub fn jwt_parts(token: &str) -> (Value, Value) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "not a compact JWS: {token:?}");
    let decode = |p: &str| -> Value {
        let bytes = base64url_decode(p).unwrap_or_else(|| panic!("bad base64url in JWT segment {p:?}"));
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("JWT segment is not JSON ({e}): {p:?}"))
    };
    (decode(parts[0]), decode(parts[1]))
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.ffffff](Z|+00:00)` into Unix seconds; `None` for anything else.
pub fn parse_utc(s: &str) -> Option<f64> {
    let body = s.strip_suffix('Z').or_else(|| s.strip_suffix("+00:00"))?;
    let (date, time) = body.split_once('T')?;
    let d: Vec<&str> = date.split('-').collect();
    if d.len() != 3 || d[0].len() != 4 || d[1].len() != 2 || d[2].len() != 2 {
        return None;
    }
    let (hms, frac) = match time.split_once('.') {
        Some((hms, frac)) => (hms, Some(frac)),
        None => (time, None),
    };
    let t: Vec<&str> = hms.split(':').collect();
    if t.len() != 3 || t.iter().any(|p| p.len() != 2) {
        return None;
    }
    let num = |p: &str| -> Option<i64> {
        if p.bytes().all(|b| b.is_ascii_digit()) {
            p.parse().ok()
        } else {
            None
        }
    };
    let days = days_from_civil(num(d[0])?, num(d[1])?, num(d[2])?);
    let secs = days * 86_400 + num(t[0])? * 3600 + num(t[1])? * 60 + num(t[2])?;
    let frac = match frac {
        Some(f) if !f.is_empty() && f.len() <= 6 => num(f)? as f64 / 10f64.powi(f.len() as i32),
        Some(_) => return None,
        None => 0.0,
    };
    Some(secs as f64 + frac)
}

/// True for pydantic's JSON datetime form used in `UserPublic`: UTC with `Z`, microseconds as
/// six digits or omitted (`2026-11-22T06:15:05.944750Z`).
pub fn is_pydantic_utc(s: &str) -> bool {
    s.ends_with('Z') && frac_ok(s.trim_end_matches('Z')) && parse_utc(s).is_some()
}

/// True for Python's `isoformat()` of an aware UTC datetime (`2026-11-23T06:15:05.226286+00:00`).
pub fn is_isoformat_utc(s: &str) -> bool {
    s.ends_with("+00:00") && frac_ok(s.trim_end_matches("+00:00")) && parse_utc(s).is_some()
}

fn frac_ok(body: &str) -> bool {
    match body.split_once('.') {
        Some((_, f)) => f.len() == 6,
        None => true,
    }
}

/// Seconds since the Unix epoch, now.
pub fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The twelve keys of `UserPublic` (docs/wire.md, "Response shapes"), in order.
pub const USER_PUBLIC_KEYS: [&str; 12] = [
    "id",
    "email",
    "is_active",
    "is_verified",
    "is_superuser",
    "full_name",
    "phone_number",
    "is_mfa_enabled",
    "created_at",
    "updated_at",
    "last_login",
    "tokens_invalidated_after",
];

/// Asserts `v` is a well-formed `UserPublic`: exactly the twelve keys, the right JSON types,
/// an id that is 32 hex (SQL) or 24 hex (Mongo), and pydantic-style UTC datetimes.
#[track_caller]
pub fn assert_user_public(v: &Value) {
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("UserPublic is not an object: {v}"));
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut want = USER_PUBLIC_KEYS.to_vec();
    want.sort_unstable();
    assert_eq!(keys, want, "UserPublic keys differ: {v}");
    assert!(
        !obj.keys().any(|k| k.contains("password")),
        "UserPublic leaks a password field: {v}"
    );
    let id = obj["id"].as_str().unwrap_or_else(|| panic!("id is not a string: {v}"));
    assert!(
        (id.len() == 32 || id.len() == 24) && id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
        "id {id:?} is neither a 32-char uuid hex nor a 24-char ObjectId"
    );
    assert!(obj["email"].is_string(), "email: {v}");
    for k in ["is_active", "is_verified", "is_superuser", "is_mfa_enabled"] {
        assert!(obj[k].is_boolean(), "{k} is not a bool: {v}");
    }
    for k in ["full_name", "phone_number"] {
        assert!(obj[k].is_null() || obj[k].is_string(), "{k} is not string|null: {v}");
    }
    for k in ["created_at", "updated_at"] {
        let s = obj[k].as_str().unwrap_or_else(|| panic!("{k} is not a string: {v}"));
        assert!(
            is_pydantic_utc(s),
            "{k} = {s:?} is not a pydantic UTC datetime ending in Z"
        );
    }
    for k in ["last_login", "tokens_invalidated_after"] {
        match &obj[k] {
            Value::Null => {}
            Value::String(s) => assert!(
                is_pydantic_utc(s),
                "{k} = {s:?} is not a pydantic UTC datetime ending in Z"
            ),
            other => panic!("{k} is not string|null: {other}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Responses

/// One HTTP exchange, fully read.
pub struct Resp {
    /// The request method.
    pub method: String,
    /// The request URL.
    pub url: String,
    /// The response status.
    pub status: u16,
    /// The response headers.
    pub headers: HeaderMap,
    /// The raw body, lossily decoded.
    pub text: String,
    /// The body parsed as JSON, or `Value::Null` when it is not JSON.
    pub json: Value,
}

impl fmt::Display for Resp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} -> {}", self.method, self.url, self.status)?;
        for (k, v) in &self.headers {
            write!(f, "\n  {k}: {}", String::from_utf8_lossy(v.as_bytes()))?;
        }
        write!(f, "\n  body: {}", self.text)
    }
}

impl fmt::Debug for Resp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Resp {
    /// A header's value as text, if present.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    }

    /// `json["detail"]`.
    pub fn detail(&self) -> &Value {
        &self.json["detail"]
    }

    /// `json[key]` as a string (panics with the exchange if absent).
    #[track_caller]
    pub fn str(&self, key: &str) -> String {
        match self.json[key].as_str() {
            Some(s) => s.to_string(),
            None => panic!("response has no string {key:?}:\n{self}"),
        }
    }

    /// Asserts the status.
    #[track_caller]
    pub fn assert_status(&self, status: u16) -> &Self {
        assert_eq!(self.status, status, "unexpected status:\n{self}");
        self
    }

    /// Asserts the status and that the body is exactly `expected`.
    #[track_caller]
    pub fn assert_json(&self, status: u16, expected: &Value) -> &Self {
        self.assert_status(status);
        assert_eq!(&self.json, expected, "unexpected body:\n{self}");
        self
    }

    /// Asserts the status and that the body is exactly `{"detail": detail}`.
    #[track_caller]
    pub fn assert_detail(&self, status: u16, detail: &str) -> &Self {
        self.assert_json(status, &json!({ "detail": detail }))
    }

    /// Asserts the status and that the body is exactly `{"message": message}`.
    #[track_caller]
    pub fn assert_message(&self, status: u16, message: &str) -> &Self {
        self.assert_json(status, &json!({ "message": message }))
    }

    /// Asserts a 422 validation body (a list of pydantic errors, each with `type`, `loc`,
    /// `msg`, `input`) and returns the first entry with this `type` and `loc`.
    #[track_caller]
    pub fn assert_validation(&self, ty: &str, loc: &[&str]) -> Value {
        self.assert_status(422);
        let list = self
            .detail()
            .as_array()
            .unwrap_or_else(|| panic!("422 detail is not a list:\n{self}"));
        assert!(!list.is_empty(), "422 detail is an empty list:\n{self}");
        for e in list {
            let obj = e
                .as_object()
                .unwrap_or_else(|| panic!("422 entry is not an object:\n{self}"));
            for k in ["type", "loc", "msg", "input"] {
                assert!(obj.contains_key(k), "422 entry lacks {k:?}:\n{self}");
            }
            assert!(obj["msg"].is_string(), "422 msg is not a string:\n{self}");
        }
        let want_loc: Vec<Value> = loc.iter().map(|s| json!(s)).collect();
        list.iter()
            .find(|e| e["type"] == ty && e["loc"].as_array() == Some(&want_loc))
            .cloned()
            .unwrap_or_else(|| panic!("no 422 entry with type {ty:?} and loc {loc:?}:\n{self}"))
    }

    /// Asserts the `WWW-Authenticate` header is exactly `Bearer`.
    #[track_caller]
    pub fn assert_www_authenticate(&self) -> &Self {
        assert_eq!(
            self.header("www-authenticate").as_deref(),
            Some("Bearer"),
            "WWW-Authenticate:\n{self}"
        );
        self
    }

    /// Asserts there is no `WWW-Authenticate` header.
    #[track_caller]
    pub fn assert_no_www_authenticate(&self) -> &Self {
        assert!(
            self.header("www-authenticate").is_none(),
            "unexpected WWW-Authenticate:\n{self}"
        );
        self
    }
}

// ---------------------------------------------------------------------------------------------
// The HTTP client side

/// A cheap, clonable handle to one server's API (what parallel tasks use).
#[derive(Clone)]
pub struct Api {
    /// The HTTP client (no redirects followed, 30 s timeout).
    pub client: reqwest::Client,
    root: String,
    log: Log,
}

impl Api {
    fn new(root: String, log: Log) -> Self {
        // Idle connections are dropped after 2 s: `wrangler dev` answers through Node, which
        // closes keep-alive connections idle for 5 s, and a request sent on one just as it
        // closes fails with an incomplete message. Reusing only fresher ones avoids the race.
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .pool_idle_timeout(Duration::from_secs(2))
            .build()
            .expect("building the HTTP client");
        Api { client, root, log }
    }

    /// The server root, `http://127.0.0.1:PORT`.
    pub fn root_url(&self) -> &str {
        &self.root
    }

    /// The API root, `http://127.0.0.1:PORT/api/auth`.
    pub fn base_url(&self) -> String {
        format!("{}{API_PREFIX}", self.root)
    }

    /// An API URL: `base_url() + path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{API_PREFIX}{path}", self.root)
    }

    /// Sends a request and reads the whole response; a transport error fails the test and
    /// prints the server's recent output.
    pub async fn send(&self, rb: RequestBuilder) -> Resp {
        match self.try_send(rb).await {
            Ok(r) => r,
            Err(e) => panic!(
                "request failed: {e:?}\n--- server output (tail) ---\n{}",
                self.log.tail(60)
            ),
        }
    }

    /// Like [`Api::send`] but returns transport errors.
    pub async fn try_send(&self, rb: RequestBuilder) -> Result<Resp, reqwest::Error> {
        let req = rb.build()?;
        let method = req.method().to_string();
        let url = req.url().to_string();
        let resp = self.client.execute(req).await?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Resp {
            method,
            url,
            status,
            headers,
            text,
            json,
        })
    }

    /// A request builder for an API path.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// `GET` of a path at the server root (e.g. `/healthz`).
    pub async fn get_root(&self, path: &str) -> Resp {
        self.send(self.client.get(format!("{}{path}", self.root))).await
    }

    /// `GET` an API path without auth.
    pub async fn get(&self, path: &str) -> Resp {
        self.send(self.request(Method::GET, path)).await
    }

    /// `GET` an API path with a bearer token.
    pub async fn get_auth(&self, path: &str, token: &str) -> Resp {
        self.send(self.request(Method::GET, path).bearer_auth(token)).await
    }

    /// `POST` a JSON body without auth.
    pub async fn post_json(&self, path: &str, body: &Value) -> Resp {
        self.send(self.request(Method::POST, path).json(body)).await
    }

    /// Fires one `POST path` per body, released together from a barrier, and returns the
    /// responses in the order of `bodies`.
    pub async fn post_json_at_once(&self, path: &str, bodies: Vec<Value>) -> Vec<Resp> {
        let barrier = Arc::new(tokio::sync::Barrier::new(bodies.len()));
        let handles: Vec<_> = bodies
            .into_iter()
            .map(|body| {
                let (api, barrier, path) = (self.clone(), barrier.clone(), path.to_string());
                tokio::spawn(async move {
                    barrier.wait().await;
                    api.post_json(&path, &body).await
                })
            })
            .collect();
        let mut out = Vec::with_capacity(handles.len());
        for h in handles {
            out.push(h.await.expect("request task panicked"));
        }
        out
    }

    /// `POST` a JSON body with a bearer token.
    pub async fn post_json_auth(&self, path: &str, token: &str, body: &Value) -> Resp {
        self.send(self.request(Method::POST, path).bearer_auth(token).json(body))
            .await
    }

    /// `POST` with a bearer token and no body.
    pub async fn post_auth(&self, path: &str, token: &str) -> Resp {
        self.send(self.request(Method::POST, path).bearer_auth(token)).await
    }

    /// `POST` raw bytes with an optional content type and an optional bearer token.
    pub async fn post_raw(&self, path: &str, content_type: Option<&str>, body: Vec<u8>, token: Option<&str>) -> Resp {
        let mut rb = self.request(Method::POST, path).body(body);
        if let Some(ct) = content_type {
            rb = rb.header("content-type", ct);
        }
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        self.send(rb).await
    }

    /// `PATCH` a JSON body with a bearer token.
    pub async fn patch_json_auth(&self, path: &str, token: &str, body: &Value) -> Resp {
        self.send(self.request(Method::PATCH, path).bearer_auth(token).json(body))
            .await
    }

    /// `DELETE` with a bearer token and a JSON body.
    pub async fn delete_json_auth(&self, path: &str, token: &str, body: &Value) -> Resp {
        self.send(self.request(Method::DELETE, path).bearer_auth(token).json(body))
            .await
    }

    /// `DELETE` with a bearer token and no body.
    pub async fn delete_auth(&self, path: &str, token: &str) -> Resp {
        self.send(self.request(Method::DELETE, path).bearer_auth(token)).await
    }

    /// `POST /login`.
    pub async fn login(&self, email: &str, password: &str) -> Resp {
        self.post_json("/login", &json!({ "email": email, "password": password }))
            .await
    }

    /// `POST /login`, asserting a 200 `TokenResponse`; returns the access token.
    pub async fn login_ok(&self, email: &str, password: &str) -> String {
        let r = self.login(email, password).await;
        r.assert_status(200);
        r.str("access_token")
    }

    /// `GET /me`, asserting 200; returns the `UserPublic`.
    pub async fn me(&self, token: &str) -> Value {
        let r = self.get_auth("/me", token).await;
        r.assert_status(200);
        assert_user_public(&r.json);
        r.json
    }
}

// ---------------------------------------------------------------------------------------------
// The server process

/// Everything the server printed (stdout and stderr), for failure messages.
#[derive(Clone, Default)]
struct Log(Arc<StdMutex<Vec<String>>>);

impl Log {
    fn push(&self, line: String) {
        let mut v = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if v.len() >= 5000 {
            v.drain(..1000);
        }
        v.push(line);
    }

    fn tail(&self, n: usize) -> String {
        let v = self.0.lock().unwrap_or_else(|e| e.into_inner());
        v[v.len().saturating_sub(n)..].join("\n")
    }
}

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let path = std::env::temp_dir().join(format!("regstack-conformance-{}-{}", std::process::id(), unique_id()));
        std::fs::create_dir_all(&path).expect("creating the test's temporary directory");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Where the `regstack` binary is: `$REGSTACK_BIN`, else `<target>/debug/regstack` found from
/// the test executable (`<target>/debug/deps/<test>-<hash>`).
pub fn binary_path() -> PathBuf {
    if let Some(p) = std::env::var_os("REGSTACK_BIN") {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "REGSTACK_BIN={} does not exist", p.display());
        return p;
    }
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test executable lives in <target>/<profile>/deps");
    let bin = dir.join(format!("regstack{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "the regstack binary was not found at {}; run `cargo build -p regstack --bin regstack` first \
         (with the same CARGO_TARGET_DIR), or set REGSTACK_BIN",
        bin.display()
    );
    bin
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("binding an ephemeral port");
    l.local_addr().expect("local_addr").port()
}

fn spawn_reader<R: AsyncRead + Unpin + Send + 'static>(
    r: R,
    tag: &'static str,
    log: Log,
    tx: Option<UnboundedSender<String>>,
) {
    tokio::spawn(async move {
        let mut reader = BufReader::new(r);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf).trim_end_matches(['\r', '\n']).to_string();
                    log.push(format!("{tag}| {line}"));
                    if let Some(tx) = &tx {
                        let _ = tx.send(line);
                    }
                }
            }
        }
    });
}

struct Running {
    child: Child,
    port: u16,
    lines: UnboundedReceiver<String>,
    log: Log,
}

/// A running `regstack serve`, killed on drop. Derefs to [`Api`] for the request helpers.
pub struct Server {
    api: Api,
    running: Running,
    lines: Mutex<UnboundedReceiver<String>>,
    env: Vec<(String, String)>,
    database_url: String,
    dir: TempDir,
    native: bool,
}

impl std::ops::Deref for Server {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Server {
    /// Starts a server on a fresh database with the suite's defaults plus `extra_env`.
    pub async fn start(extra_env: &[(&str, &str)]) -> Server {
        Self::start_on(extra_env, false).await
    }

    /// Starts `regstack serve` even when the suite drives the edge (for scenarios that need
    /// both, such as relayed delivery).
    pub async fn start_native(extra_env: &[(&str, &str)]) -> Server {
        Self::start_on(extra_env, true).await
    }

    async fn start_on(extra_env: &[(&str, &str)], native: bool) -> Server {
        let dir = TempDir::new();
        let template = std::env::var("REGSTACK_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "sqlite+aiosqlite:///{dir}/regstack.db".to_string());
        let id = format!("rs_{}", unique_id());
        let database_url = template.replace("{dir}", &dir.0.to_string_lossy()).replace("{id}", &id);
        if let Ok(setup) = std::env::var("REGSTACK_TEST_DATABASE_SETUP") {
            let setup = setup.replace("{dir}", &dir.0.to_string_lossy()).replace("{id}", &id);
            let status = Command::new("sh")
                .args(["-c", &setup])
                .status()
                .await
                .expect("running the database setup");
            assert!(status.success(), "database setup `{setup}` failed: {status}");
        }
        let env: Vec<(String, String)> = extra_env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut running = launch(&dir.0, &database_url, &env, native).await;
        let (_, dummy) = unbounded_channel();
        let lines = std::mem::replace(&mut running.lines, dummy);
        let api = Api::new(format!("http://127.0.0.1:{}", running.port), running.log.clone());
        Server {
            api,
            running,
            lines: Mutex::new(lines),
            env,
            database_url,
            dir,
            native,
        }
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.running.port
    }

    /// A clonable handle for parallel tasks.
    pub fn api(&self) -> Api {
        self.api.clone()
    }

    /// The database URL this server uses.
    pub fn database_url(&self) -> &str {
        &self.database_url
    }

    /// The last `n` lines the server printed (stdout and stderr).
    pub fn output_tail(&self, n: usize) -> String {
        self.running.log.tail(n)
    }

    /// Stops the server (SIGTERM, then SIGKILL after 10 s) and starts a new process on the
    /// same directory, database and JWT secret, with the same extra environment.
    pub async fn restart(&mut self) {
        let env = self.env.clone();
        self.restart_with_env(env).await;
    }

    /// Like [`Server::restart`] but with a different extra environment.
    pub async fn restart_with_env(&mut self, env: Vec<(String, String)>) {
        stop(&mut self.running.child).await;
        self.env = env;
        let mut running = launch(&self.dir.0, &self.database_url, &self.env, self.native).await;
        let (_, dummy) = unbounded_channel();
        let lines = std::mem::replace(&mut running.lines, dummy);
        self.api = Api::new(format!("http://127.0.0.1:{}", running.port), running.log.clone());
        self.running = running;
        self.lines = Mutex::new(lines);
    }

    /// Consumes stdout lines until one holds a link of `kind` (the first link on a line is the
    /// one considered, as `validate` does) and returns that link. Fails after [`LINK_TIMEOUT`].
    pub async fn wait_for_link(&self, kind: LinkKind) -> String {
        let mut rx = self.lines.lock().await;
        let deadline = Instant::now() + LINK_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, rx.recv()).await {
                Ok(Some(line)) => {
                    if let Some(link) = find_links(&line).into_iter().next() {
                        if link.contains(kind.path()) {
                            return link;
                        }
                    }
                }
                Ok(None) => panic!(
                    "server output ended while waiting for a {kind:?} link\n--- server output (tail) ---\n{}",
                    self.output_tail(60)
                ),
                Err(_) => panic!(
                    "no {kind:?} link within {LINK_TIMEOUT:?}\n--- server output (tail) ---\n{}",
                    self.output_tail(60)
                ),
            }
        }
    }

    /// [`Server::wait_for_link`], returning the link's token.
    pub async fn wait_for_token(&self, kind: LinkKind) -> String {
        token_of(&self.wait_for_link(kind).await)
    }

    /// Consumes stdout for `window` and fails if a link of `kind` appears.
    pub async fn expect_no_link(&self, kind: LinkKind, window: Duration) {
        let mut rx = self.lines.lock().await;
        let deadline = Instant::now() + window;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            match tokio::time::timeout(left, rx.recv()).await {
                Ok(Some(line)) => {
                    if let Some(link) = find_links(&line).into_iter().next() {
                        assert!(!link.contains(kind.path()), "unexpected {kind:?} link printed: {link}");
                    }
                }
                Ok(None) | Err(_) => return,
            }
        }
    }

    /// Consumes stdout lines until one satisfies `pred` and returns it; `what` names the line
    /// in the failure message. Fails after [`LINK_TIMEOUT`].
    pub async fn wait_for_line(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let mut rx = self.lines.lock().await;
        let deadline = Instant::now() + LINK_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, rx.recv()).await {
                Ok(Some(line)) if pred(&line) => return line,
                Ok(Some(_)) => {}
                Ok(None) => panic!(
                    "server output ended while waiting for {what}\n--- server output (tail) ---\n{}",
                    self.output_tail(60)
                ),
                Err(_) => panic!(
                    "no {what} within {LINK_TIMEOUT:?}\n--- server output (tail) ---\n{}",
                    self.output_tail(60)
                ),
            }
        }
    }

    /// Consumes stdout lines until one holds a code of `kind` (the regex of docs/wire.md, "Console output"; the SMS is sent
    /// on a background task just after the response) and returns `(to, code)`, `to` being the
    /// line's `To:` field (empty if the line has none). Fails after [`LINK_TIMEOUT`].
    pub async fn wait_for_sms_code(&self, kind: SmsKind) -> (String, String) {
        let line = self
            .wait_for_line(&format!("{kind:?} SMS code ({:?})", kind.phrase()), |l| {
                find_sms_code(l, kind).is_some()
            })
            .await;
        let code = find_sms_code(&line, kind).unwrap_or_default();
        (sms_recipient(&line).unwrap_or_default(), code)
    }

    /// Consumes stdout for `window` and fails if an SMS is printed: a null-SMS line or a code
    /// of either kind.
    pub async fn expect_no_sms(&self, window: Duration) {
        let mut rx = self.lines.lock().await;
        let deadline = Instant::now() + window;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            match tokio::time::timeout(left, rx.recv()).await {
                Ok(Some(line)) => {
                    let code = find_sms_code(&line, SmsKind::PhoneSetup).or(find_sms_code(&line, SmsKind::LoginMfa));
                    assert!(
                        !line.contains(NULL_SMS_MARKER) && code.is_none(),
                        "unexpected SMS printed: {line}"
                    );
                }
                Ok(None) | Err(_) => return,
            }
        }
    }

    /// Registers `email`; with verification on, scrapes the link and verifies it. Returns the
    /// `UserPublic` of the new user.
    pub async fn register_verified(&self, email: &str, password: &str) -> Value {
        let r = self
            .post_json("/register", &json!({ "email": email, "password": password }))
            .await;
        r.assert_status(201);
        if r.json["status"] == "pending_verification" {
            let token = self.wait_for_token(LinkKind::Verify).await;
            let v = self.post_json("/verify", &json!({ "token": token })).await;
            v.assert_status(200);
            assert_user_public(&v.json);
            v.json
        } else {
            assert_user_public(&r.json);
            r.json
        }
    }

    /// Asks to move the signed-in user to `new_email` (with [`PASSWORD`]) and returns the
    /// confirmation token mailed to the new address.
    pub async fn change_email_token(&self, session: &str, new_email: &str) -> String {
        self.post_json_auth(
            "/change-email",
            session,
            &json!({"new_email": new_email, "current_password": PASSWORD}),
        )
        .await
        .assert_message(202, msg::CHANGE_EMAIL_ACK);
        self.wait_for_token(LinkKind::ConfirmEmailChange).await
    }

    /// Registers (and verifies) a fresh user and signs in: `(email, token)`.
    pub async fn new_session(&self, tag: &str) -> (String, String) {
        let email = unique_email(tag);
        self.register_verified(&email, PASSWORD).await;
        let token = self.login_ok(&email, PASSWORD).await;
        (email, token)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(pid) = self.running.child.id() {
            signal_group(pid, "-KILL");
        }
        let _ = self.running.child.start_kill();
    }
}

/// Sends `signal` to the process group led by `pid`; true if it was delivered.
fn signal_group(pid: u32, signal: &str) -> bool {
    std::process::Command::new("kill")
        .args([signal, "--", &format!("-{pid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

async fn stop(child: &mut Child) {
    let mut terminated = false;
    let pid = child.id();
    if let Some(pid) = pid {
        terminated = signal_group(pid, "-TERM");
    }
    if terminated
        && tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .is_ok()
    {
        return;
    }
    if let Some(pid) = pid {
        signal_group(pid, "-KILL");
    }
    let _ = child.start_kill();
    let _ = child.wait().await;
}

/// The edge mode: with `REGSTACK_TEST_EDGE` set to the repository root, every server is the
/// edge worker under that checkout's `wrangler dev` (built beforehand), on its own copy of
/// `REGSTACK_TEST_EDGE_STATE` (local D1 and Durable Object storage with the migrations
/// applied), configured through the same `REGSTACK_*` names as vars.
struct Edge {
    root: PathBuf,
    state_template: PathBuf,
}

fn edge() -> Option<Edge> {
    let root = PathBuf::from(std::env::var_os("REGSTACK_TEST_EDGE")?);
    let state_template = PathBuf::from(
        std::env::var_os("REGSTACK_TEST_EDGE_STATE").expect("REGSTACK_TEST_EDGE_STATE must name the migrated D1 state"),
    );
    Some(Edge { root, state_template })
}

/// True when the suite drives the edge worker rather than `regstack serve`.
pub fn on_edge() -> bool {
    std::env::var_os("REGSTACK_TEST_EDGE").is_some()
}

fn edge_command(edge: &Edge, dir: &Path, port: u16, env: &[(&str, &str)]) -> Command {
    let state = dir.join("edge-state");
    if !state.exists() {
        let copied = std::process::Command::new("cp")
            .arg("-a")
            .arg(&edge.state_template)
            .arg(&state)
            .status()
            .expect("copying the edge state");
        assert!(copied.success(), "copying {} failed", edge.state_template.display());
    }
    let vars: String = env.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    let env_file = dir.join("edge.env");
    std::fs::write(&env_file, vars).expect("writing the worker's vars");
    let bin_dir = edge.root.join("node_modules/.bin");
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let mut cmd = Command::new(bin_dir.join("wrangler"));
    cmd.arg("dev")
        .arg("--config")
        .arg(edge.root.join("wrangler.toml"))
        .args(["--local", "--ip", "127.0.0.1", "--port", &port.to_string()])
        .args(["--inspector-port", &free_port().to_string()])
        .arg("--persist-to")
        .arg(&state)
        .arg("--env-file")
        .arg(&env_file)
        .arg("--show-interactive-dev-session=false")
        // Serves /__scheduled, which fires the Cron Trigger (the sweep) on demand.
        .arg("--test-scheduled")
        .env("PATH", path)
        .env("WRANGLER_SEND_METRICS", "false")
        // wrangler runs the build command from its working directory.
        .current_dir(&edge.root);
    cmd
}

async fn launch(dir: &Path, database_url: &str, extra_env: &[(String, String)], native: bool) -> Running {
    let edge = if native { None } else { edge() };
    let bin = if edge.is_none() { binary_path() } else { PathBuf::new() };
    let probe = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("building the probe client");
    let mut last_failure = String::new();
    for _attempt in 0..5 {
        let port = free_port();
        let base_url = format!("http://127.0.0.1:{port}");
        let defaults = [
            ("REGSTACK_DATABASE_URL", database_url),
            ("REGSTACK_JWT_SECRET", JWT_SECRET),
            ("REGSTACK_BASE_URL", &base_url),
            ("REGSTACK_EMAIL__LOG_BODIES", "true"),
            ("REGSTACK_SMS__LOG_BODIES", "true"),
            ("REGSTACK_PASSWORD_HASH_MEMORY_KIB", "1024"),
            ("REGSTACK_PASSWORD_HASH_ITERATIONS", "1"),
            ("RUST_LOG", "info"),
        ];
        let mut env: Vec<(&str, &str)> = defaults.to_vec();
        env.extend(extra_env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let mut cmd = match &edge {
            Some(edge) => edge_command(edge, dir, port, &env),
            None => {
                let mut cmd = Command::new(&bin);
                cmd.args(["serve", "--host", "127.0.0.1", "--port", &port.to_string()]);
                cmd
            }
        };
        if edge.is_none() {
            cmd.current_dir(dir);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so stopping it also stops what it started (workerd).
            .process_group(0)
            .kill_on_drop(true);
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy().into_owned();
            if k.to_ascii_uppercase().starts_with("REGSTACK_") || k == "RUST_LOG" {
                cmd.env_remove(&k);
            }
        }
        if edge.is_none() {
            for (k, v) in &env {
                cmd.env(k, v);
            }
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {}: {e}", bin.display()));
        let log = Log::default();
        let (tx, rx) = unbounded_channel();
        spawn_reader(child.stdout.take().expect("stdout"), "out", log.clone(), Some(tx));
        spawn_reader(child.stderr.take().expect("stderr"), "err", log.clone(), None);

        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                tokio::time::sleep(Duration::from_millis(200)).await;
                last_failure = format!("the server exited early ({status}) on port {port}:\n{}", log.tail(80));
                break;
            }
            if let Ok(r) = probe.get(format!("{base_url}/healthz")).send().await {
                if r.status().as_u16() == 200 {
                    return Running {
                        child,
                        port,
                        lines: rx,
                        log,
                    };
                }
            }
            if Instant::now() >= deadline {
                let _ = child.start_kill();
                let _ = child.wait().await;
                tokio::time::sleep(Duration::from_millis(100)).await;
                panic!(
                    "regstack did not answer GET /healthz with 200 within {READY_TIMEOUT:?} on port {port}\n\
                     --- server output ---\n{}",
                    log.tail(200)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    panic!("regstack failed to start 5 times; last failure: {last_failure}")
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn scrapes_links_like_validate() {
        let l = "  http://127.0.0.1:8765/account/verify?token=i1NfsqzlHp6J-Ho5g7jdYGasL-MQZk-6ekSXgsyosrs";
        assert_eq!(find_links(l), vec![l.trim().to_string()]);
        assert_eq!(token_of(l.trim()), "i1NfsqzlHp6J-Ho5g7jdYGasL-MQZk-6ekSXgsyosrs");
        let l = "<a href=\"https://x.example/reset-password?token=a.b.c\">x</a> http://y/?token=";
        assert_eq!(
            find_links(l),
            vec!["https://x.example/reset-password?token=a.b.c".to_string()]
        );
        assert!(find_links("no links http:// here ?token=abc").is_empty());
        assert_eq!(
            find_links("http://h/p?x=1?token=abc"),
            vec!["http://h/p?x=1?token=abc".to_string()]
        );
        assert_eq!(token_of("http://h/confirm-email-change?token=a%2Bb&x=1"), "a+b");
    }

    #[test]
    fn scrapes_sms_codes_like_validate() {
        let setup = "2026-01-01T00:00:00.000000Z  INFO regstack.sms.null: [regstack/null-sms] To: +15555550123 | \
                     From: (unset) | Body: RegStack verification code: 910602. Expires in 5 minutes.";
        let login = "2026-01-01T00:00:00.000000Z  INFO regstack.sms.null: [regstack/null-sms] To: +15555550123 | \
                     From: (unset) | Body: RegStack sign-in code: 870037. Expires in 5 minutes. If you didn't try \
                     to sign in, ignore this message.";
        assert_eq!(find_sms_code(setup, SmsKind::PhoneSetup).as_deref(), Some("910602"));
        assert_eq!(find_sms_code(setup, SmsKind::LoginMfa), None);
        assert_eq!(find_sms_code(login, SmsKind::LoginMfa).as_deref(), Some("870037"));
        assert_eq!(find_sms_code(login, SmsKind::PhoneSetup), None);
        assert_eq!(sms_recipient(setup).as_deref(), Some("+15555550123"));
        assert_eq!(sms_recipient(login).as_deref(), Some("+15555550123"));
        // `\s*` allows no or several spaces; `\d{4,10}` is greedy and needs four digits.
        assert_eq!(
            find_sms_code("sign-in code:0123", SmsKind::LoginMfa).as_deref(),
            Some("0123")
        );
        assert_eq!(
            find_sms_code("verification code: \t 123456789012", SmsKind::PhoneSetup).as_deref(),
            Some("1234567890")
        );
        assert_eq!(
            find_sms_code("sign-in code: 123. sign-in code: 4567", SmsKind::LoginMfa).as_deref(),
            Some("4567")
        );
        assert_eq!(find_sms_code("sign-in code: 123", SmsKind::LoginMfa), None);
        let suppressed =
            "INFO regstack.sms.null: [regstack/null-sms] To: +15555550123 | From: (unset) | (body suppressed)";
        assert_eq!(find_sms_code(suppressed, SmsKind::PhoneSetup), None);
        assert_eq!(find_sms_code(suppressed, SmsKind::LoginMfa), None);
        assert_eq!(sms_recipient(suppressed).as_deref(), Some("+15555550123"));
    }

    #[test]
    fn parses_datetimes() {
        assert_eq!(parse_utc("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(
            parse_utc("2026-01-01T12:00:00.123456Z").map(|s| (s * 1e6).round() as i64),
            Some(1_767_268_800_123_456)
        );
        assert!(is_pydantic_utc("2026-11-22T06:15:05.944750Z"));
        assert!(is_pydantic_utc("2026-11-22T06:15:05Z"));
        assert!(!is_pydantic_utc("2026-11-22T06:15:05.944Z"));
        assert!(!is_pydantic_utc("2026-11-22T06:15:05.944750+00:00"));
        assert!(is_isoformat_utc("2026-11-23T06:15:05.226286+00:00"));
        assert!(!is_isoformat_utc("2026-11-23T06:15:05.226286Z"));
    }

    #[test]
    fn decodes_base64url() {
        assert_eq!(base64url_decode("eyJhbGciOiJIUzI1NiJ9").unwrap(), br#"{"alg":"HS256"}"#);
        assert_eq!(base64url_decode("_-8").unwrap(), vec![0xff, 0xef]);
    }
}
