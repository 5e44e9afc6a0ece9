//! The stores in SQLite's dialect, written once for both drivers that run `migrations/sqlite`:
//! the native sqlx store and the edge's D1 store.
//!
//! Each function returns a [`Statement`] (the text, with numbered parameters, and the values to
//! bind) and each reader turns a driver's row, seen through [`Row`], into a record. The drivers
//! only execute, so both bind exactly the same text. What a statement's atomicity rests on is
//! said where it matters: a conditional `INSERT … SELECT … WHERE` and a `DELETE … RETURNING`
//! are single statements, which SQLite (and D1) run one at a time.

use serde_json::{Map, Value as Json};

use crate::email::key as email_key;
use crate::ports::StoreError;
use crate::records::{
    CodeCheck, CodeKind, MfaCode, OAuthIdentity, OAuthMode, OAuthState, PendingRegistration, PushSubscription,
    RefreshToken, User, UserPatch,
};
use crate::time::{from_sql_text, to_sql_text, Timestamp};

/// A value to bind. Booleans are stored as 0 and 1, datetimes as [`to_sql_text`].
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Text, or NULL.
    Text(Option<String>),
    /// An integer (every one stored here is far below 2^53, so D1 can carry it as a number).
    Int(i64),
    /// A flag.
    Bool(bool),
}

fn text(s: &str) -> Value {
    Value::Text(Some(s.to_string()))
}

fn opt_text(s: Option<&str>) -> Value {
    Value::Text(s.map(str::to_string))
}

fn time(t: Timestamp) -> Value {
    Value::Text(Some(to_sql_text(t)))
}

fn opt_time(t: Option<Timestamp>) -> Value {
    Value::Text(t.map(to_sql_text))
}

/// One statement and its parameters, in order.
#[derive(Clone, Debug, PartialEq)]
pub struct Statement {
    /// The SQL text.
    pub sql: String,
    /// The values for its parameters.
    pub params: Vec<Value>,
}

impl Statement {
    fn new(sql: impl Into<String>, params: Vec<Value>) -> Self {
        Self {
            sql: sql.into(),
            params,
        }
    }
}

/// A result row as a driver returns it.
pub trait Row {
    /// A text column, `None` for NULL.
    fn text(&self, column: &str) -> Result<Option<String>, StoreError>;
    /// An integer column.
    fn int(&self, column: &str) -> Result<i64, StoreError>;
    /// A 0/1 column.
    fn flag(&self, column: &str) -> Result<bool, StoreError>;
}

fn required(row: &impl Row, column: &str) -> Result<String, StoreError> {
    row.text(column)?
        .ok_or_else(|| StoreError::Backend(format!("column {column} is NULL")))
}

fn parse_time(column: &str, t: String) -> Result<Timestamp, StoreError> {
    from_sql_text(&t).ok_or_else(|| StoreError::Backend(format!("unreadable datetime in {column}: {t:?}")))
}

fn read_time(row: &impl Row, column: &str) -> Result<Timestamp, StoreError> {
    parse_time(column, required(row, column)?)
}

fn read_opt_time(row: &impl Row, column: &str) -> Result<Option<Timestamp>, StoreError> {
    row.text(column)?.map(|t| parse_time(column, t)).transpose()
}

/// A row as D1 hands it over: a JSON object keyed by column.
impl Row for Map<String, Json> {
    fn text(&self, column: &str) -> Result<Option<String>, StoreError> {
        match json_column(self, column)? {
            Json::Null => Ok(None),
            Json::String(s) => Ok(Some(s.clone())),
            other => Err(StoreError::Backend(format!("column {column} is not text: {other}"))),
        }
    }

    fn int(&self, column: &str) -> Result<i64, StoreError> {
        match json_column(self, column)? {
            Json::Number(n) => n
                .as_i64()
                .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
                .ok_or_else(|| StoreError::Backend(format!("column {column} is not an integer: {n}"))),
            other => Err(StoreError::Backend(format!(
                "column {column} is not an integer: {other}"
            ))),
        }
    }

    fn flag(&self, column: &str) -> Result<bool, StoreError> {
        match json_column(self, column)? {
            Json::Bool(b) => Ok(*b),
            _ => Ok(self.int(column)? != 0),
        }
    }
}

fn json_column<'r>(row: &'r Map<String, Json>, column: &str) -> Result<&'r Json, StoreError> {
    row.get(column)
        .ok_or_else(|| StoreError::Backend(format!("column {column} missing from a row")))
}

/// The `users` columns every user statement selects, in [`user_from`]'s terms.
pub const USER_COLUMNS: &str = "id, email, hashed_password, is_active, is_verified, is_superuser, full_name, \
     phone_number, is_mfa_enabled, created_at, updated_at, last_login, tokens_invalidated_after, role";

/// The `pending_registrations` columns, in [`pending_from`]'s terms.
pub const PENDING_COLUMNS: &str = "id, email, hashed_password, full_name, token_hash, created_at, expires_at";

/// A user from a row of [`USER_COLUMNS`].
pub fn user_from(row: &impl Row) -> Result<User, StoreError> {
    Ok(User {
        id: required(row, "id")?,
        email: required(row, "email")?,
        hashed_password: row.text("hashed_password")?,
        is_active: row.flag("is_active")?,
        is_verified: row.flag("is_verified")?,
        is_superuser: row.flag("is_superuser")?,
        full_name: row.text("full_name")?,
        phone_number: row.text("phone_number")?,
        is_mfa_enabled: row.flag("is_mfa_enabled")?,
        created_at: read_time(row, "created_at")?,
        updated_at: read_time(row, "updated_at")?,
        last_login: read_opt_time(row, "last_login")?,
        tokens_invalidated_after: read_opt_time(row, "tokens_invalidated_after")?,
        role: row
            .text("role")?
            .unwrap_or_else(|| crate::records::DEFAULT_ROLE.to_string()),
    })
}

/// A pending registration from a row of [`PENDING_COLUMNS`].
pub fn pending_from(row: &impl Row) -> Result<PendingRegistration, StoreError> {
    Ok(PendingRegistration {
        id: required(row, "id")?,
        email: required(row, "email")?,
        hashed_password: required(row, "hashed_password")?,
        full_name: row.text("full_name")?,
        token_hash: required(row, "token_hash")?,
        created_at: read_time(row, "created_at")?,
        expires_at: read_time(row, "expires_at")?,
    })
}

/// A cheap statement that proves the database answers.
pub fn ping() -> Statement {
    Statement::new("SELECT 1 AS one", vec![])
}

/// `email` in any case, against a row's `email_key` (or, for a row no key was written for
/// yet, against `lower(email)`): placeholder `key` holds the key, `raw` the address.
fn matches_email(key: &str, raw: &str) -> String {
    format!("(email_key = {key} OR (email_key IS NULL AND lower(email) = lower({raw})))")
}

/// Inserts `u` unless any user holds its address in any case (the `NOT EXISTS` makes
/// uniqueness case-insensitive even against adopted mixed-case rows). No row changed means
/// the address is taken.
pub fn create_user(u: &User) -> Statement {
    Statement::new(
        format!(
            "INSERT INTO users ({USER_COLUMNS}, email_key) \
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15 \
             WHERE NOT EXISTS (SELECT 1 FROM users WHERE {})",
            matches_email("?15", "?2")
        ),
        vec![
            text(&u.id),
            text(&u.email),
            opt_text(u.hashed_password.as_deref()),
            Value::Bool(u.is_active),
            Value::Bool(u.is_verified),
            Value::Bool(u.is_superuser),
            opt_text(u.full_name.as_deref()),
            opt_text(u.phone_number.as_deref()),
            Value::Bool(u.is_mfa_enabled),
            time(u.created_at),
            time(u.updated_at),
            opt_time(u.last_login),
            opt_time(u.tokens_invalidated_after),
            text(&u.role),
            text(&email_key(&u.email)),
        ],
    )
}

/// The user with this id.
pub fn user_by_id(id: &str) -> Statement {
    Statement::new(
        format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"),
        vec![text(id)],
    )
}

/// The user with this address: the exact match first (it uses the unique index), then a
/// case-insensitive one for adopted rows.
pub fn user_by_email(email: &str) -> Statement {
    Statement::new(
        format!(
            "SELECT {USER_COLUMNS} FROM users WHERE email = ?1 \
             UNION ALL SELECT {USER_COLUMNS} FROM users WHERE {} AND email <> ?1 LIMIT 1",
            matches_email("?2", "?1")
        ),
        vec![text(email), text(&email_key(email))],
    )
}

/// Applies `patch` and returns the updated row. A new address is refused in the same
/// statement when another user holds it in any case, so no row back means either no such
/// user or a taken address (the driver tells them apart with [`user_by_id`]).
pub fn update_user(id: &str, patch: &UserPatch, now: Timestamp) -> Statement {
    let mut sets = vec!["updated_at = ?"];
    let mut params = vec![time(now)];
    if let Some(v) = &patch.email {
        sets.push("email = ?");
        params.push(text(v));
        sets.push("email_key = ?");
        params.push(text(&email_key(v)));
    }
    if let Some(v) = &patch.hashed_password {
        sets.push("hashed_password = ?");
        params.push(opt_text(v.as_deref()));
    }
    for (set, v) in [
        ("is_active = ?", patch.is_active),
        ("is_verified = ?", patch.is_verified),
        ("is_superuser = ?", patch.is_superuser),
        ("is_mfa_enabled = ?", patch.is_mfa_enabled),
    ] {
        if let Some(v) = v {
            sets.push(set);
            params.push(Value::Bool(v));
        }
    }
    if let Some(v) = &patch.role {
        sets.push("role = ?");
        params.push(text(v));
    }
    for (set, v) in [
        ("full_name = ?", &patch.full_name),
        ("phone_number = ?", &patch.phone_number),
    ] {
        if let Some(v) = v {
            sets.push(set);
            params.push(opt_text(v.as_deref()));
        }
    }
    for (set, v) in [
        ("last_login = ?", patch.last_login),
        ("tokens_invalidated_after = ?", patch.tokens_invalidated_after),
    ] {
        if let Some(v) = v {
            sets.push(set);
            params.push(time(v));
        }
    }
    let mut sql = format!("UPDATE users SET {} WHERE id = ?", sets.join(", "));
    params.push(text(id));
    if let Some(email) = &patch.email {
        sql.push_str(&format!(
            " AND NOT EXISTS (SELECT 1 FROM users WHERE {} AND id <> ?)",
            matches_email("?", "?")
        ));
        params.push(text(&email_key(email)));
        params.push(text(email));
        params.push(text(id));
    }
    sql.push_str(&format!(" RETURNING {USER_COLUMNS}"));
    Statement::new(sql, params)
}

/// A page of users, newest first (the `ix_users_created_at` index serves the order). Both
/// numbers are capped at 2^53 - 1, which D1 carries exactly as a JavaScript number.
pub fn list_users(skip: u64, limit: u64) -> Statement {
    let int = |n: u64| Value::Int(n.min((1 << 53) - 1) as i64);
    Statement::new(
        format!("SELECT {USER_COLUMNS} FROM users ORDER BY created_at DESC, id DESC LIMIT ?1 OFFSET ?2"),
        vec![int(limit), int(skip)],
    )
}

/// The user counts, in columns `total`, `active`, `verified` and `superusers`.
pub fn user_counts() -> Statement {
    Statement::new(
        "SELECT COUNT(*) AS total, COALESCE(SUM(is_active), 0) AS active, COALESCE(SUM(is_verified), 0) AS verified, \
         COALESCE(SUM(is_superuser), 0) AS superusers, \
         COALESCE(SUM(CASE WHEN is_superuser AND is_active THEN 1 ELSE 0 END), 0) AS active_superusers FROM users",
        vec![],
    )
}

/// How many users there are (column `n`).
pub fn user_total() -> Statement {
    Statement::new("SELECT COUNT(*) AS n FROM users", vec![])
}

/// How many pending registrations are live at `now` (column `n`), through the expiry index.
pub fn count_live_pending(now: Timestamp) -> Statement {
    Statement::new(
        "SELECT COUNT(*) AS n FROM pending_registrations WHERE expires_at > ?1",
        vec![time(now)],
    )
}

/// Deletes a user and everything keyed to them, to run as one transaction. The first
/// statement deletes the `users` row, so its change count says whether the user existed.
pub fn delete_user(user: &User) -> Vec<Statement> {
    let id = || vec![text(&user.id)];
    let email = || vec![text(&user.email), text(&email_key(&user.email))];
    vec![
        Statement::new("DELETE FROM users WHERE id = ?1", id()),
        Statement::new("DELETE FROM oauth_identities WHERE user_id = ?1", id()),
        Statement::new("DELETE FROM refresh_tokens WHERE user_id = ?1", id()),
        Statement::new("DELETE FROM push_subscriptions WHERE user_id = ?1", id()),
        Statement::new("DELETE FROM mfa_codes WHERE user_id = ?1", id()),
        Statement::new(
            format!("DELETE FROM pending_registrations WHERE {}", matches_email("?2", "?1")),
            email(),
        ),
        // The core keys failures by the lower-cased address; 0.9.3 wrote them as submitted.
        Statement::new(
            "DELETE FROM login_attempts WHERE email = ?2 OR lower(email) = lower(?1)",
            email(),
        ),
    ]
}

/// Replaces any pending registration for the address with `p`, to run as one transaction.
pub fn put_pending(p: &PendingRegistration) -> Vec<Statement> {
    vec![
        Statement::new(
            format!("DELETE FROM pending_registrations WHERE {}", matches_email("?2", "?1")),
            vec![text(&p.email), text(&email_key(&p.email))],
        ),
        Statement::new(
            format!(
                "INSERT INTO pending_registrations ({PENDING_COLUMNS}, email_key) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
            ),
            vec![
                text(&p.id),
                text(&p.email),
                text(&p.hashed_password),
                opt_text(p.full_name.as_deref()),
                text(&p.token_hash),
                time(p.created_at),
                time(p.expires_at),
                text(&email_key(&p.email)),
            ],
        ),
    ]
}

/// Takes (deletes and returns) the registration with this token hash: one statement, so two
/// requests with one token cannot both get the row.
pub fn take_pending_by_token(token_hash: &str) -> Statement {
    Statement::new(
        format!("DELETE FROM pending_registrations WHERE token_hash = ?1 RETURNING {PENDING_COLUMNS}"),
        vec![text(token_hash)],
    )
}

/// The pending registration for an address, in any case.
pub fn pending_by_email(email: &str) -> Statement {
    Statement::new(
        format!(
            "SELECT {PENDING_COLUMNS} FROM pending_registrations WHERE {} LIMIT 1",
            matches_email("?2", "?1")
        ),
        vec![text(email), text(&email_key(email))],
    )
}

/// Takes the pending registration for an address, in any case.
pub fn take_pending_by_email(email: &str) -> Statement {
    Statement::new(
        format!(
            "DELETE FROM pending_registrations WHERE {} RETURNING {PENDING_COLUMNS}",
            matches_email("?2", "?1")
        ),
        vec![text(email), text(&email_key(email))],
    )
}

/// Records a revoked token id; one row changed means this call revoked it first.
pub fn revoke(jti: &str, exp: Timestamp) -> Statement {
    Statement::new(
        "INSERT INTO token_blacklist (jti, exp) VALUES (?1, ?2) ON CONFLICT (jti) DO NOTHING",
        vec![text(jti), time(exp)],
    )
}

/// A row if the token id is revoked.
pub fn revoked(jti: &str) -> Statement {
    Statement::new("SELECT 1 AS hit FROM token_blacklist WHERE jti = ?1", vec![text(jti)])
}

/// The session check's read in one statement: one row always, with the user's columns (all
/// NULL when there is no such user) and `revoked`.
pub fn session_lookup(user_id: &str, jti: &str) -> Statement {
    Statement::new(
        format!(
            "SELECT {USER_COLUMNS}, EXISTS (SELECT 1 FROM token_blacklist WHERE jti = ?2) AS revoked \
             FROM (SELECT 1 AS one) LEFT JOIN users ON users.id = ?1"
        ),
        vec![text(user_id), text(jti)],
    )
}

/// The [`SessionRecord`](crate::ports::SessionRecord) in a row of [`session_lookup`]. A
/// revoked token is refused whatever its user row holds, so that row is not allowed to turn
/// the refusal into an error.
pub fn session_from(row: &impl Row) -> Result<crate::ports::SessionRecord, StoreError> {
    let user = match row.text("id")? {
        None => Ok(None),
        Some(_) => user_from(row).map(Some),
    };
    crate::ports::SessionRecord::read(user, row.flag("revoked")?)
}

/// Records a failed-login slot unless `threshold` failures since `since` are already there,
/// in one statement; returns the new row's `id`, or no row when the address is locked.
pub fn reserve_attempt(email: &str, ip: Option<&str>, now: Timestamp, since: Timestamp, threshold: u64) -> Statement {
    Statement::new(
        "INSERT INTO login_attempts (email, \"when\", ip) SELECT ?1, ?2, ?3 \
         WHERE (SELECT COUNT(*) FROM login_attempts WHERE email = ?1 AND \"when\" >= ?4) < ?5 RETURNING id",
        vec![
            text(email),
            time(now),
            opt_text(ip),
            time(since),
            Value::Int(i64::try_from(threshold).unwrap_or(i64::MAX)),
        ],
    )
}

/// The failures counted with reservation `id` (column `n`): rows with a smaller id were there
/// when it went in; later ones do not count.
pub fn attempts_through(email: &str, since: Timestamp, id: i64) -> Statement {
    Statement::new(
        "SELECT COUNT(*) AS n FROM login_attempts WHERE email = ?1 AND \"when\" >= ?2 AND id <= ?3",
        vec![text(email), time(since), Value::Int(id)],
    )
}

/// Gives a reservation back.
pub fn release_attempt(id: i64) -> Statement {
    Statement::new("DELETE FROM login_attempts WHERE id = ?1", vec![Value::Int(id)])
}

/// Forgets an address's failures, in any case.
pub fn clear_attempts(email: &str) -> Statement {
    Statement::new(
        "DELETE FROM login_attempts WHERE lower(email) = lower(?1)",
        vec![text(email)],
    )
}

/// The sweep (see [`crate::ports::Sweeper`]), one DELETE per table, in the order of
/// [`crate::ports::Purged`]'s fields. Each uses its table's expiry index.
pub fn purge_expired(now: Timestamp, attempts_before: Timestamp) -> [Statement; 6] {
    [
        Statement::new(
            "DELETE FROM login_attempts WHERE \"when\" < ?1",
            vec![time(attempts_before)],
        ),
        Statement::new(
            "DELETE FROM pending_registrations WHERE expires_at <= ?1",
            vec![time(now)],
        ),
        Statement::new("DELETE FROM token_blacklist WHERE exp <= ?1", vec![time(now)]),
        Statement::new("DELETE FROM mfa_codes WHERE expires_at <= ?1", vec![time(now)]),
        Statement::new("DELETE FROM oauth_states WHERE expires_at <= ?1", vec![time(now)]),
        Statement::new("DELETE FROM refresh_tokens WHERE expires_at <= ?1", vec![time(now)]),
    ]
}

/// The change counts of [`purge_expired`]'s statements, as a [`crate::ports::Purged`].
pub fn purged(changes: &[u64]) -> crate::ports::Purged {
    let at = |i: usize| changes.get(i).copied().unwrap_or(0);
    crate::ports::Purged {
        attempts: at(0),
        pending: at(1),
        revocations: at(2),
        codes: at(3),
        oauth_states: at(4),
        refresh_tokens: at(5),
    }
}

/// The tables whose rows carry an `email_key`.
pub const KEYED_TABLES: [&str; 2] = ["users", "pending_registrations"];

/// Up to 500 rows of `table` without an `email_key` (written by another program, or non-ASCII
/// addresses the migration left to regstack): cheap, through the key's index, for a sweep
/// that runs beside live traffic.
pub fn unkeyed_rows(table: &str) -> Statement {
    Statement::new(
        format!("SELECT id, email FROM {table} WHERE email_key IS NULL LIMIT 500"),
        vec![],
    )
}

/// Every row of `table` whose key may be missing or wrong: no key, a non-ASCII address
/// (`lower()` cannot check its key), or an ASCII address whose key is not its `lower()` (an
/// address another program changed). A full scan, for start-up.
pub fn stale_keyed_rows(table: &str) -> Statement {
    Statement::new(
        format!(
            "SELECT id, email FROM {table} WHERE email_key IS NULL OR email GLOB '*[^ -~]*' \
             OR email_key <> lower(email)"
        ),
        vec![],
    )
}

/// Writes a row's `email_key`, only while its address is still `email` (a change in between
/// wins) and only when the key differs.
pub fn set_email_key(table: &str, id: &str, email: &str) -> Statement {
    Statement::new(
        format!(
            "UPDATE {table} SET email_key = ?2 WHERE id = ?1 AND email = ?3 \
             AND (email_key IS NULL OR email_key <> ?2)"
        ),
        vec![text(id), text(&email_key(email)), text(email)],
    )
}

/// Stores a code, replacing the user's previous one of the same kind.
pub fn put_code(c: &MfaCode) -> Statement {
    Statement::new(
        "INSERT INTO mfa_codes (user_id, kind, code_hash, expires_at, attempts, max_attempts, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (user_id, kind) DO UPDATE SET code_hash = excluded.code_hash, \
         expires_at = excluded.expires_at, attempts = excluded.attempts, max_attempts = excluded.max_attempts, \
         created_at = excluded.created_at",
        vec![
            text(&c.user_id),
            text(c.kind.as_str()),
            text(&c.code_hash),
            time(c.expires_at),
            Value::Int(c.attempts),
            Value::Int(c.max_attempts),
            time(c.created_at),
        ],
    )
}

/// The user's pending code of this kind, read by [`code_from`].
pub fn code_of(user_id: &str, kind: CodeKind) -> Statement {
    Statement::new(
        "SELECT id, code_hash, expires_at, attempts, max_attempts, created_at FROM mfa_codes \
         WHERE user_id = ?1 AND kind = ?2",
        vec![text(user_id), text(kind.as_str())],
    )
}

/// A stored code, with its row id, from a row of [`code_of`].
pub fn code_from(row: &impl Row, user_id: &str, kind: CodeKind) -> Result<(i64, MfaCode), StoreError> {
    let code = MfaCode {
        user_id: user_id.to_string(),
        kind,
        code_hash: required(row, "code_hash")?,
        expires_at: read_time(row, "expires_at")?,
        attempts: row.int("attempts")?,
        max_attempts: row.int("max_attempts")?,
        created_at: read_time(row, "created_at")?,
    };
    Ok((row.int("id")?, code))
}

/// Writes the outcome of judging `code` (row `id`): a wrong guess is counted, anything else
/// consumes the code. It changes a row only if the row still holds the code judged with the
/// attempt count judged, so a driver without a lock can retry when another guess landed in
/// between. (A new code reuses the row with `attempts = 0`; the hash tells it apart.)
pub fn record_check(outcome: CodeCheck, id: i64, code: &MfaCode) -> Statement {
    let sql = match outcome {
        CodeCheck::Wrong { .. } => {
            "UPDATE mfa_codes SET attempts = attempts + 1 WHERE id = ?1 AND attempts = ?2 AND code_hash = ?3"
        }
        _ => "DELETE FROM mfa_codes WHERE id = ?1 AND attempts = ?2 AND code_hash = ?3",
    };
    Statement::new(
        sql,
        vec![Value::Int(id), Value::Int(code.attempts), text(&code.code_hash)],
    )
}

/// Deletes every code of a user.
pub fn delete_codes(user_id: &str) -> Statement {
    Statement::new("DELETE FROM mfa_codes WHERE user_id = ?1", vec![text(user_id)])
}

/// The `oauth_identities` columns, in [`identity_from`]'s terms.
pub const IDENTITY_COLUMNS: &str = "id, user_id, provider, subject_id, email, linked_at, last_used_at";

/// The `oauth_states` columns, in [`state_from`]'s terms.
pub const STATE_COLUMNS: &str = "id, provider, code_verifier, nonce, redirect_to, mode, linking_user_id, created_at, \
     expires_at, result_token, result_was_new";

/// A link from a row of [`IDENTITY_COLUMNS`].
pub fn identity_from(row: &impl Row) -> Result<OAuthIdentity, StoreError> {
    Ok(OAuthIdentity {
        id: required(row, "id")?,
        user_id: required(row, "user_id")?,
        provider: required(row, "provider")?,
        subject_id: required(row, "subject_id")?,
        email: row.text("email")?,
        linked_at: read_time(row, "linked_at")?,
        last_used_at: read_opt_time(row, "last_used_at")?,
    })
}

/// A round trip from a row of [`STATE_COLUMNS`].
pub fn state_from(row: &impl Row) -> Result<OAuthState, StoreError> {
    let mode = required(row, "mode")?;
    Ok(OAuthState {
        id: required(row, "id")?,
        provider: required(row, "provider")?,
        code_verifier: required(row, "code_verifier")?,
        nonce: required(row, "nonce")?,
        redirect_to: required(row, "redirect_to")?,
        mode: OAuthMode::parse(&mode).ok_or_else(|| StoreError::Backend(format!("unknown oauth mode {mode:?}")))?,
        linking_user_id: row.text("linking_user_id")?,
        created_at: read_time(row, "created_at")?,
        expires_at: read_time(row, "expires_at")?,
        result_token: row.text("result_token")?,
        result_was_new: row.flag("result_was_new")?,
    })
}

/// The link of a provider's subject.
pub fn identity_by_subject(provider: &str, subject: &str) -> Statement {
    Statement::new(
        format!("SELECT {IDENTITY_COLUMNS} FROM oauth_identities WHERE provider = ?1 AND subject_id = ?2"),
        vec![text(provider), text(subject)],
    )
}

/// An account's links, oldest first.
pub fn identities_of(user_id: &str) -> Statement {
    Statement::new(
        format!("SELECT {IDENTITY_COLUMNS} FROM oauth_identities WHERE user_id = ?1 ORDER BY linked_at, id"),
        vec![text(user_id)],
    )
}

/// Inserts a link unless either unique key is taken (no row changed then).
pub fn insert_identity(i: &OAuthIdentity) -> Statement {
    Statement::new(
        format!(
            "INSERT INTO oauth_identities ({IDENTITY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING"
        ),
        vec![
            text(&i.id),
            text(&i.user_id),
            text(&i.provider),
            text(&i.subject_id),
            opt_text(i.email.as_deref()),
            time(i.linked_at),
            opt_time(i.last_used_at),
        ],
    )
}

/// Deletes an account's link to a provider; with `keep_one`, only when the account has
/// another link, decided in the same statement.
pub fn delete_identity(user_id: &str, provider: &str, keep_one: bool) -> Statement {
    Statement::new(
        "DELETE FROM oauth_identities WHERE user_id = ?1 AND provider = ?2 \
         AND (?3 = 0 OR (SELECT COUNT(*) FROM oauth_identities WHERE user_id = ?1) > 1)",
        vec![text(user_id), text(provider), Value::Bool(keep_one)],
    )
}

/// Whether an account has a link to a provider (column `hit`).
pub fn has_identity(user_id: &str, provider: &str) -> Statement {
    Statement::new(
        "SELECT 1 AS hit FROM oauth_identities WHERE user_id = ?1 AND provider = ?2",
        vec![text(user_id), text(provider)],
    )
}

/// Records a sign-in through a link.
pub fn touch_identity(id: &str, now: Timestamp) -> Statement {
    Statement::new(
        "UPDATE oauth_identities SET last_used_at = ?2 WHERE id = ?1",
        vec![text(id), time(now)],
    )
}

/// Stores a round trip, replacing a row with its id.
pub fn put_state(s: &OAuthState) -> Statement {
    Statement::new(
        format!(
            "INSERT OR REPLACE INTO oauth_states ({STATE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
        ),
        vec![
            text(&s.id),
            text(&s.provider),
            text(&s.code_verifier),
            text(&s.nonce),
            text(&s.redirect_to),
            text(s.mode.as_str()),
            opt_text(s.linking_user_id.as_deref()),
            time(s.created_at),
            time(s.expires_at),
            opt_text(s.result_token.as_deref()),
            Value::Bool(s.result_was_new),
        ],
    )
}

/// Takes a round trip: one statement, so one caller gets it. With `completed`, only a row
/// whose callback finished; without, only one still waiting for it.
pub fn take_state(id: &str, completed: bool) -> Statement {
    let only = if completed {
        " AND result_token IS NOT NULL"
    } else {
        " AND result_token IS NULL"
    };
    Statement::new(
        format!("DELETE FROM oauth_states WHERE id = ?1{only} RETURNING {STATE_COLUMNS}"),
        vec![text(id)],
    )
}

/// The `refresh_tokens` columns, in [`refresh_from`]'s terms.
pub const REFRESH_COLUMNS: &str =
    "id, user_id, family_id, token_hash, access_jti, created_at, expires_at, used_at, revoked";

/// A refresh token from a row of [`REFRESH_COLUMNS`].
pub fn refresh_from(row: &impl Row) -> Result<RefreshToken, StoreError> {
    Ok(RefreshToken {
        id: required(row, "id")?,
        user_id: required(row, "user_id")?,
        family_id: required(row, "family_id")?,
        token_hash: required(row, "token_hash")?,
        access_jti: required(row, "access_jti")?,
        created_at: read_time(row, "created_at")?,
        expires_at: read_time(row, "expires_at")?,
        used_at: read_opt_time(row, "used_at")?,
        revoked: row.flag("revoked")?,
    })
}

/// Stores a refresh token.
pub fn put_refresh(t: &RefreshToken) -> Statement {
    Statement::new(
        format!("INSERT INTO refresh_tokens ({REFRESH_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
        vec![
            text(&t.id),
            text(&t.user_id),
            text(&t.family_id),
            text(&t.token_hash),
            text(&t.access_jti),
            time(t.created_at),
            time(t.expires_at),
            opt_time(t.used_at),
            Value::Bool(t.revoked),
        ],
    )
}

/// A rotation, to run as one transaction: the successor is written only while the token it
/// replaces is live (inheriting its account and family), then that token is spent. The
/// first statement writes, so SQLite takes its write lock before reading; a second rotation
/// of the same token finds it spent and writes nothing.
pub fn rotate_refresh(token_hash: &str, next: &crate::ports::NextRefresh, now: Timestamp) -> Vec<Statement> {
    let live = "token_hash = ?1 AND used_at IS NULL AND revoked = 0 AND expires_at > ?2";
    vec![
        Statement::new(
            format!(
                "INSERT INTO refresh_tokens ({REFRESH_COLUMNS}) SELECT ?3, user_id, family_id, ?4, ?5, ?2, ?6, NULL, 0 \
                 FROM refresh_tokens WHERE {live}"
            ),
            vec![
                text(token_hash),
                time(now),
                text(&next.id),
                text(&next.token_hash),
                text(&next.access_jti),
                time(next.expires_at),
            ],
        ),
        Statement::new(
            format!("UPDATE refresh_tokens SET used_at = ?2 WHERE {live}"),
            vec![text(token_hash), time(now)],
        ),
    ]
}

/// A refresh token by its hash.
pub fn refresh_by_hash(token_hash: &str) -> Statement {
    Statement::new(
        format!("SELECT {REFRESH_COLUMNS} FROM refresh_tokens WHERE token_hash = ?1"),
        vec![text(token_hash)],
    )
}

/// A refresh token by its id.
pub fn refresh_by_id(id: &str) -> Statement {
    Statement::new(
        format!("SELECT {REFRESH_COLUMNS} FROM refresh_tokens WHERE id = ?1"),
        vec![text(id)],
    )
}

/// Kills a family; answers each token's session and expiry.
pub fn revoke_family(family_id: &str) -> Statement {
    Statement::new(
        "UPDATE refresh_tokens SET revoked = 1 WHERE family_id = ?1 RETURNING access_jti, created_at",
        vec![text(family_id)],
    )
}

/// The family of the token minted beside a session (column `family_id`).
pub fn family_of_session(access_jti: &str) -> Statement {
    Statement::new(
        "SELECT family_id FROM refresh_tokens WHERE access_jti = ?1 LIMIT 1",
        vec![text(access_jti)],
    )
}

/// The `push_subscriptions` columns, in [`push_from`]'s terms.
pub const PUSH_COLUMNS: &str = "id, user_id, endpoint, p256dh, auth, created_at";

/// A push subscription from a row of [`PUSH_COLUMNS`].
pub fn push_from(row: &impl Row) -> Result<PushSubscription, StoreError> {
    Ok(PushSubscription {
        id: required(row, "id")?,
        user_id: required(row, "user_id")?,
        endpoint: required(row, "endpoint")?,
        p256dh: required(row, "p256dh")?,
        auth: required(row, "auth")?,
        created_at: read_time(row, "created_at")?,
    })
}

/// Saves a subscription (the user's one at the same endpoint takes the new keys and time),
/// then drops the user's oldest past `limit`, never the one just saved (whatever the clocks
/// say); to run as one transaction.
pub fn put_push(s: &PushSubscription, limit: usize) -> Vec<Statement> {
    vec![
        Statement::new(
            format!(
                "INSERT INTO push_subscriptions ({PUSH_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                 ON CONFLICT (user_id, endpoint) DO UPDATE SET p256dh = excluded.p256dh, auth = excluded.auth, \
                 created_at = excluded.created_at"
            ),
            vec![
                text(&s.id),
                text(&s.user_id),
                text(&s.endpoint),
                text(&s.p256dh),
                text(&s.auth),
                time(s.created_at),
            ],
        ),
        Statement::new(
            "DELETE FROM push_subscriptions WHERE user_id = ?1 AND endpoint <> ?3 AND id NOT IN (SELECT id \
             FROM push_subscriptions WHERE user_id = ?1 AND endpoint <> ?3 ORDER BY created_at DESC, id DESC LIMIT ?2)",
            vec![
                text(&s.user_id),
                Value::Int(i64::try_from(limit.saturating_sub(1)).unwrap_or(i64::MAX)),
                text(&s.endpoint),
            ],
        ),
    ]
}

/// A user's subscriptions, oldest first.
pub fn push_of(user_id: &str) -> Statement {
    Statement::new(
        format!("SELECT {PUSH_COLUMNS} FROM push_subscriptions WHERE user_id = ?1 ORDER BY created_at, id"),
        vec![text(user_id)],
    )
}

/// Deletes a user's subscription at an endpoint.
pub fn delete_push(user_id: &str, endpoint: &str) -> Statement {
    Statement::new(
        "DELETE FROM push_subscriptions WHERE user_id = ?1 AND endpoint = ?2",
        vec![text(user_id), text(endpoint)],
    )
}

/// What a SQLite driver does for the stores: run the shared statements. The native sqlx pool
/// and the edge's D1 binding implement it; every store decision around the statements is
/// written once, in [`SqlStore`].
#[async_trait::async_trait]
pub trait Executor: Send + Sync {
    /// Every row `st` answers, column by column.
    async fn rows(&self, st: Statement) -> Result<Vec<Map<String, Json>>, StoreError>;
    /// The rows of a read by primary key (one index probe, a row or two): the session check
    /// and [`UserStore::get`](crate::ports::UserStore::get). A driver with a cheaper path for
    /// such reads overrides it; by default it is [`Executor::rows`].
    async fn rows_by_key(&self, st: Statement) -> Result<Vec<Map<String, Json>>, StoreError> {
        self.rows(st).await
    }
    /// Runs a write; how many rows it changed.
    async fn run(&self, st: Statement) -> Result<u64, StoreError>;
    /// Runs statements as one transaction; how many rows each changed.
    async fn batch(&self, statements: Vec<Statement>) -> Result<Vec<u64>, StoreError>;

    /// Judges one guess at a code and records it, atomically. The default reads, judges, and
    /// writes only if the row is still exactly what was judged (same id, same attempt count,
    /// same code), judging again when another guess landed in between: every guess is counted
    /// once and at most one consumes the code. A driver with interactive transactions may
    /// lock instead.
    async fn check_code(
        &self,
        user_id: &str,
        kind: CodeKind,
        code_hash: &str,
        now: Timestamp,
    ) -> Result<CodeCheck, StoreError> {
        for _ in 0..32 {
            let Some(row) = self.rows(code_of(user_id, kind)).await?.into_iter().next() else {
                return Ok(CodeCheck::Missing);
            };
            let (id, stored) = code_from(&row, user_id, kind)?;
            let outcome = stored.judge(code_hash, now);
            if self.run(record_check(outcome, id, &stored)).await? == 1 {
                return Ok(outcome);
            }
        }
        Err(StoreError::Unavailable(
            "the code is being checked too often at once".into(),
        ))
    }
}

/// Every storage port over one [`Executor`]: the SQLite dialect's store decisions (what a
/// changed-row count means, which conflict is the email's, how a reservation is counted).
#[derive(Clone, Debug)]
pub struct SqlStore<E>(pub E);

impl<E: Executor> SqlStore<E> {
    async fn first(&self, st: Statement) -> Result<Option<Map<String, Json>>, StoreError> {
        Ok(self.0.rows(st).await?.into_iter().next())
    }

    async fn pending(&self, st: Statement) -> Result<Option<PendingRegistration>, StoreError> {
        self.first(st).await?.as_ref().map(pending_from).transpose()
    }

    /// Up to 500 rows a table without an `email_key`, keyed in one batch per table.
    async fn key_emails(&self) -> Result<(), StoreError> {
        for table in KEYED_TABLES {
            let mut updates = Vec::new();
            for row in self.0.rows(unkeyed_rows(table)).await? {
                if let (Some(id), Some(email)) = (row.text("id")?, row.text("email")?) {
                    updates.push(set_email_key(table, &id, &email));
                }
            }
            if !updates.is_empty() {
                self.0.batch(updates).await?;
            }
        }
        Ok(())
    }
}

/// A unique violation on `users` is the email's (the id is random and never collides).
fn email_conflict(e: StoreError) -> StoreError {
    match e {
        StoreError::Conflict(_) => StoreError::Conflict("email".into()),
        other => other,
    }
}

#[async_trait::async_trait]
impl<E: Executor> crate::ports::UserStore for SqlStore<E> {
    async fn create(&self, u: &User) -> Result<User, StoreError> {
        if self.0.run(create_user(u)).await.map_err(email_conflict)? == 0 {
            return Err(StoreError::Conflict("email".into()));
        }
        Ok(u.clone())
    }

    async fn get(&self, id: &str) -> Result<Option<User>, StoreError> {
        self.0
            .rows_by_key(user_by_id(id))
            .await?
            .first()
            .map(user_from)
            .transpose()
    }

    async fn find_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        self.first(user_by_email(email))
            .await?
            .as_ref()
            .map(user_from)
            .transpose()
    }

    async fn update(&self, id: &str, patch: &UserPatch, now: Timestamp) -> Result<User, StoreError> {
        match self.first(update_user(id, patch, now)).await.map_err(email_conflict)? {
            Some(row) => user_from(&row),
            None if patch.email.is_some() && self.get(id).await?.is_some() => Err(StoreError::Conflict("email".into())),
            None => Err(StoreError::NotFound),
        }
    }

    async fn delete(&self, user: &User) -> Result<bool, StoreError> {
        let changed = self.0.batch(delete_user(user)).await?;
        Ok(changed.first().is_some_and(|&n| n > 0))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.0.rows(ping()).await.map(|_| ())
    }

    async fn list(&self, skip: u64, limit: u64) -> Result<Vec<User>, StoreError> {
        self.0
            .rows(list_users(skip, limit))
            .await?
            .iter()
            .map(user_from)
            .collect()
    }

    async fn total(&self) -> Result<u64, StoreError> {
        let row = self.first(user_total()).await?;
        Ok(row
            .map(|r| r.int("n"))
            .transpose()?
            .map_or(0, |n| u64::try_from(n).unwrap_or(0)))
    }

    async fn counts(&self) -> Result<crate::ports::UserCounts, StoreError> {
        let row = self
            .first(user_counts())
            .await?
            .ok_or_else(|| StoreError::Backend("COUNT answered no row".into()))?;
        let n = |c: &str| row.int(c).map(|v| u64::try_from(v).unwrap_or(0));
        Ok(crate::ports::UserCounts {
            total: n("total")?,
            active: n("active")?,
            verified: n("verified")?,
            superusers: n("superusers")?,
            active_superusers: n("active_superusers")?,
        })
    }
}

#[async_trait::async_trait]
impl<E: Executor> crate::ports::PendingStore for SqlStore<E> {
    async fn put(&self, p: &PendingRegistration) -> Result<(), StoreError> {
        self.0.batch(put_pending(p)).await.map(|_| ())
    }

    async fn take_by_token_hash(&self, token_hash: &str) -> Result<Option<PendingRegistration>, StoreError> {
        self.pending(take_pending_by_token(token_hash)).await
    }

    async fn find_by_email(&self, email: &str) -> Result<Option<PendingRegistration>, StoreError> {
        self.pending(pending_by_email(email)).await
    }

    async fn take_by_email(&self, email: &str) -> Result<Option<PendingRegistration>, StoreError> {
        self.pending(take_pending_by_email(email)).await
    }

    async fn count_live(&self, now: Timestamp) -> Result<u64, StoreError> {
        let row = self.first(count_live_pending(now)).await?;
        Ok(row
            .map(|r| r.int("n"))
            .transpose()?
            .map_or(0, |n| u64::try_from(n).unwrap_or(0)))
    }
}

#[async_trait::async_trait]
impl<E: Executor> crate::ports::RevocationStore for SqlStore<E> {
    async fn revoke(&self, jti: &str, exp: Timestamp) -> Result<bool, StoreError> {
        Ok(self.0.run(revoke(jti, exp)).await? == 1)
    }

    async fn is_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        Ok(self.first(revoked(jti)).await?.is_some())
    }
}

#[async_trait::async_trait]
impl<E: Executor> crate::ports::SessionLookup for SqlStore<E> {
    async fn lookup(&self, user_id: &str, jti: &str) -> Result<crate::ports::SessionRecord, StoreError> {
        match self.0.rows_by_key(session_lookup(user_id, jti)).await?.first() {
            Some(row) => session_from(row),
            None => Err(StoreError::Backend("the session lookup answered no row".into())),
        }
    }
}

#[async_trait::async_trait]
impl<E: Executor> crate::ports::AttemptStore for SqlStore<E> {
    async fn try_reserve(
        &self,
        email: &str,
        ip: Option<&str>,
        now: Timestamp,
        since: Timestamp,
        threshold: u64,
    ) -> Result<crate::ports::Reservation, StoreError> {
        let Some(row) = self.first(reserve_attempt(email, ip, now, since, threshold)).await? else {
            return Ok(crate::ports::Reservation::Locked);
        };
        let id = row.int("id")?;
        let counted = self.first(attempts_through(email, since, id)).await?;
        let failures = counted.as_ref().map(|r| r.int("n")).transpose()?.unwrap_or(1);
        Ok(crate::ports::Reservation::Reserved {
            id,
            failures: failures.max(1) as u64,
        })
    }

    async fn release(&self, id: i64) -> Result<(), StoreError> {
        self.0.run(release_attempt(id)).await.map(|_| ())
    }

    async fn clear(&self, email: &str) -> Result<(), StoreError> {
        self.0.run(clear_attempts(email)).await.map(|_| ())
    }
}

#[async_trait::async_trait]
impl<E: Executor> crate::ports::MfaCodeStore for SqlStore<E> {
    async fn put(&self, c: &MfaCode) -> Result<(), StoreError> {
        self.0.run(put_code(c)).await.map(|_| ())
    }

    async fn check(
        &self,
        user_id: &str,
        kind: CodeKind,
        code_hash: &str,
        now: Timestamp,
    ) -> Result<CodeCheck, StoreError> {
        self.0.check_code(user_id, kind, code_hash, now).await
    }

    async fn delete_for_user(&self, user_id: &str) -> Result<(), StoreError> {
        self.0.run(delete_codes(user_id)).await.map(|_| ())
    }
}

#[async_trait::async_trait]
impl<E: Executor> crate::ports::OAuthStore for SqlStore<E> {
    async fn identity(&self, provider: &str, subject: &str) -> Result<Option<OAuthIdentity>, StoreError> {
        self.first(identity_by_subject(provider, subject))
            .await?
            .as_ref()
            .map(identity_from)
            .transpose()
    }

    async fn identities_of(&self, user_id: &str) -> Result<Vec<OAuthIdentity>, StoreError> {
        self.0
            .rows(identities_of(user_id))
            .await?
            .iter()
            .map(identity_from)
            .collect()
    }

    async fn link(&self, identity: &OAuthIdentity) -> Result<OAuthIdentity, StoreError> {
        if self.0.run(insert_identity(identity)).await? == 1 {
            return Ok(identity.clone());
        }
        let taken = self
            .first(identity_by_subject(&identity.provider, &identity.subject_id))
            .await?;
        Err(StoreError::Conflict(
            if taken.is_some() {
                "provider_subject"
            } else {
                "user_provider"
            }
            .into(),
        ))
    }

    async fn unlink(
        &self,
        user_id: &str,
        provider: &str,
        keep_one: bool,
    ) -> Result<crate::ports::Unlinked, StoreError> {
        use crate::ports::Unlinked;
        if self.0.run(delete_identity(user_id, provider, keep_one)).await? > 0 {
            return Ok(Unlinked::Removed);
        }
        Ok(match self.first(has_identity(user_id, provider)).await? {
            Some(_) => Unlinked::LastMethod,
            None => Unlinked::NotLinked,
        })
    }

    async fn touch(&self, identity_id: &str, now: Timestamp) -> Result<(), StoreError> {
        self.0.run(touch_identity(identity_id, now)).await.map(|_| ())
    }

    async fn put_state(&self, state: &OAuthState) -> Result<(), StoreError> {
        self.0.run(put_state(state)).await.map(|_| ())
    }

    async fn take_waiting_state(&self, id: &str) -> Result<Option<OAuthState>, StoreError> {
        self.first(take_state(id, false))
            .await?
            .as_ref()
            .map(state_from)
            .transpose()
    }

    async fn take_completed_state(&self, id: &str) -> Result<Option<OAuthState>, StoreError> {
        self.first(take_state(id, true))
            .await?
            .as_ref()
            .map(state_from)
            .transpose()
    }
}

#[async_trait::async_trait]
impl<E: Executor> crate::ports::PushSubscriptionStore for SqlStore<E> {
    async fn subscribe(&self, subscription: &PushSubscription, limit: usize) -> Result<(), StoreError> {
        self.0.batch(put_push(subscription, limit)).await.map(|_| ())
    }

    async fn subscriptions(&self, user_id: &str) -> Result<Vec<PushSubscription>, StoreError> {
        self.0.rows(push_of(user_id)).await?.iter().map(push_from).collect()
    }

    async fn unsubscribe(&self, user_id: &str, endpoint: &str) -> Result<bool, StoreError> {
        Ok(self.0.run(delete_push(user_id, endpoint)).await? > 0)
    }
}

#[async_trait::async_trait]
impl<E: Executor> crate::ports::RefreshTokenStore for SqlStore<E> {
    async fn put(&self, token: &RefreshToken) -> Result<(), StoreError> {
        self.0.run(put_refresh(token)).await.map(|_| ())
    }

    async fn rotate(
        &self,
        token_hash: &str,
        next: &crate::ports::NextRefresh,
        now: Timestamp,
    ) -> Result<crate::ports::Rotation, StoreError> {
        use crate::ports::Rotation;
        let changed = self.0.batch(rotate_refresh(token_hash, next, now)).await?;
        let previous = self
            .first(refresh_by_hash(token_hash))
            .await?
            .as_ref()
            .map(refresh_from)
            .transpose()?;
        let Some(previous) = previous else {
            return Ok(Rotation::Unknown);
        };
        if changed.first() == Some(&1) {
            let next = self
                .first(refresh_by_id(&next.id))
                .await?
                .as_ref()
                .map(refresh_from)
                .transpose()?;
            let next = next.ok_or_else(|| StoreError::Backend("the rotated token vanished".into()))?;
            return Ok(Rotation::Rotated { previous, next });
        }
        Ok(Rotation::refused(previous))
    }

    async fn revoke_family(&self, family_id: &str) -> Result<Vec<crate::ports::FamilyMember>, StoreError> {
        self.0
            .rows(revoke_family(family_id))
            .await?
            .iter()
            .map(|r| {
                Ok(crate::ports::FamilyMember {
                    access_jti: required(r, "access_jti")?,
                    issued_at: read_time(r, "created_at")?,
                })
            })
            .collect()
    }

    async fn family_of_session(&self, access_jti: &str) -> Result<Option<String>, StoreError> {
        match self.first(family_of_session(access_jti)).await? {
            Some(r) => Ok(Some(required(&r, "family_id")?)),
            None => Ok(None),
        }
    }
}

#[async_trait::async_trait]
impl<E: Executor> crate::ports::Sweeper for SqlStore<E> {
    /// The purge first, as one batch; then it finishes keying addresses SQL could not key
    /// (the edge has no start-up step). A keying failure is logged: the next sweep tries again.
    async fn purge_expired(
        &self,
        now: Timestamp,
        attempts_before: Timestamp,
    ) -> Result<crate::ports::Purged, StoreError> {
        let changes = self.0.batch(purge_expired(now, attempts_before).to_vec()).await?;
        if let Err(e) = self.key_emails().await {
            tracing::warn!(target: "regstack.housekeeping", error = %e, "keying addresses failed; the next sweep tries again");
        }
        Ok(purged(&changes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::from_micros;

    fn placeholders(sql: &str) -> usize {
        sql.matches('?').count()
    }

    /// The distinct parameter numbers of `?N` placeholders, which must be exactly 1..=n.
    fn numbered(sql: &str) -> usize {
        let mut numbers: Vec<usize> = sql
            .split('?')
            .skip(1)
            .map(|rest| rest.chars().take_while(char::is_ascii_digit).collect::<String>())
            .map(|digits| digits.parse().expect("only numbered placeholders"))
            .collect();
        numbers.sort_unstable();
        numbers.dedup();
        assert_eq!(numbers, (1..=numbers.len()).collect::<Vec<_>>(), "{sql}");
        numbers.len()
    }

    fn sample_user() -> User {
        let t = from_micros(1_767_268_800_123_456);
        User {
            id: "u1".into(),
            email: "a@example.com".into(),
            hashed_password: Some("$argon2id$…".into()),
            is_active: true,
            is_verified: false,
            is_superuser: false,
            full_name: None,
            phone_number: Some("+15555550123".into()),
            is_mfa_enabled: false,
            created_at: t,
            updated_at: t,
            last_login: None,
            tokens_invalidated_after: Some(t),
            role: "editor".into(),
        }
    }

    #[regstack_macros::dual_test]
    fn numbered_statements_bind_one_value_per_number() {
        let u = sample_user();
        let t = u.created_at;
        let code = MfaCode {
            user_id: "u1".into(),
            kind: CodeKind::LoginMfa,
            code_hash: "h".into(),
            expires_at: t,
            attempts: 0,
            max_attempts: 5,
            created_at: t,
        };
        let mut all = vec![
            create_user(&u),
            user_by_id("u1"),
            user_by_email("a@example.com"),
            take_pending_by_token("h"),
            pending_by_email("e"),
            take_pending_by_email("e"),
            revoke("j", t),
            revoked("j"),
            reserve_attempt("e", None, t, t, 5),
            attempts_through("e", t, 3),
            release_attempt(3),
            clear_attempts("e"),
            put_code(&code),
            code_of("u1", CodeKind::LoginMfa),
            record_check(CodeCheck::Missing, 1, &code),
            delete_codes("u1"),
            unkeyed_rows("users"),
            stale_keyed_rows("users"),
            set_email_key("users", "u1", "Ä@example.com"),
        ];
        all.extend(delete_user(&u));
        all.extend(purge_expired(t, t));
        for s in all {
            assert_eq!(numbered(&s.sql), s.params.len(), "{}", s.sql);
        }
    }

    #[regstack_macros::dual_test]
    fn an_update_binds_each_change_then_the_id() {
        let now = from_micros(1_767_268_800_000_000);
        let plain = update_user(
            "u1",
            &UserPatch {
                full_name: Some(None),
                is_verified: Some(true),
                ..UserPatch::default()
            },
            now,
        );
        assert_eq!(placeholders(&plain.sql), plain.params.len());
        assert!(plain
            .sql
            .starts_with("UPDATE users SET updated_at = ?, is_verified = ?, full_name = ? WHERE id = ?"));
        assert_eq!(
            plain.params,
            vec![time(now), Value::Bool(true), Value::Text(None), text("u1")]
        );
        assert!(!plain.sql.contains("NOT EXISTS"));

        let email = update_user(
            "u1",
            &UserPatch {
                email: Some("b@example.com".into()),
                ..UserPatch::default()
            },
            now,
        );
        assert_eq!(placeholders(&email.sql), email.params.len());
        assert!(email.sql.contains("NOT EXISTS"));
        assert_eq!(
            email.params[1..],
            [
                text("b@example.com"),
                text("b@example.com"),
                text("u1"),
                text("b@example.com"),
                text("b@example.com"),
                text("u1")
            ]
        );
        // The key is the Unicode lower-case form, which SQL's lower() cannot compute.
        let unicode = update_user(
            "u1",
            &UserPatch {
                email: Some("Ärger@example.com".into()),
                ..UserPatch::default()
            },
            now,
        );
        assert_eq!(unicode.params[2], text("ärger@example.com"));
    }

    #[regstack_macros::dual_test]
    fn json_rows_read_back_into_records() {
        let u = sample_user();
        let create = create_user(&u);
        let mut row = Map::new();
        for (column, value) in USER_COLUMNS.split(", ").zip(&create.params) {
            let json = match value {
                Value::Text(Some(s)) => Json::String(s.clone()),
                Value::Text(None) => Json::Null,
                Value::Int(i) => Json::from(*i),
                Value::Bool(b) => Json::from(u8::from(*b)),
            };
            row.insert(column.to_string(), json);
        }
        assert_eq!(user_from(&row).unwrap(), u);

        row.insert("is_active".into(), Json::from(1.5));
        assert!(matches!(user_from(&row), Err(StoreError::Backend(_))));
        row.insert("is_active".into(), Json::from(1));
        row.insert("created_at".into(), Json::from("yesterday"));
        assert!(matches!(user_from(&row), Err(StoreError::Backend(_))));
        row.remove("created_at");
        assert!(matches!(user_from(&row), Err(StoreError::Backend(_))));
    }
}
