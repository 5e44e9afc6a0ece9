//! Every store on D1, over the schema of `migrations/sqlite` (applied by wrangler).
//!
//! D1 has no interactive transactions, so each check-then-write step is either one statement
//! (D1 runs statements one at a time, so a conditional `INSERT … SELECT … WHERE` or a
//! `DELETE … RETURNING` is atomic), a batch (which D1 runs as one transaction), or an
//! optimistic read followed by a write conditioned on what was read, retried when another
//! request got there first.

use async_trait::async_trait;
use regstack_core::flows::phone::judge;
use regstack_core::ports::{
    AttemptStore, MfaCodeStore, PendingStore, Reservation, RevocationStore, StoreError, UserStore,
};
use regstack_core::records::{CodeCheck, CodeKind, MfaCode, PendingRegistration, User, UserPatch};
use regstack_core::time::{from_sql_text, to_sql_text, Timestamp};
use serde_json::{Map, Value};
use worker::wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement, Env};

use crate::js::js;

/// The D1 binding's name in `wrangler.toml`.
pub const BINDING: &str = "DB";

/// A bound parameter. Integers travel as JS numbers (D1 refuses BigInt); every integer stored
/// here (ids, attempt counts) is far below 2^53.
#[derive(Clone, Debug)]
enum P {
    Text(Option<String>),
    Int(i64),
    Bool(bool),
}

fn text(s: &str) -> P {
    P::Text(Some(s.to_string()))
}

fn opt_text(s: Option<&str>) -> P {
    P::Text(s.map(str::to_string))
}

fn time(t: Timestamp) -> P {
    P::Text(Some(to_sql_text(t)))
}

impl P {
    fn js(&self) -> JsValue {
        match self {
            P::Text(Some(s)) => JsValue::from_str(s),
            P::Text(None) => JsValue::NULL,
            P::Int(i) => JsValue::from_f64(*i as f64),
            P::Bool(b) => JsValue::from_f64(if *b { 1.0 } else { 0.0 }),
        }
    }
}

type Row = Map<String, Value>;

/// Every store on the Worker's D1 binding.
#[derive(Clone)]
pub struct D1Store {
    env: Env,
}

fn map_err(e: worker::Error) -> StoreError {
    let message = e.to_string();
    if let Some(at) = message.find("UNIQUE constraint failed: ") {
        let column = message[at + "UNIQUE constraint failed: ".len()..]
            .split(|c: char| c == ',' || c.is_whitespace() || c == ':')
            .next()
            .unwrap_or("unique");
        let column = column.rsplit('.').next().unwrap_or(column);
        return StoreError::Conflict(column.to_string());
    }
    if message.contains("no such") || message.contains("syntax error") || message.contains("SQLITE_ERROR") {
        return StoreError::Backend(message);
    }
    // Overload, a reset connection, a storage hiccup: worth retrying later, so a 503.
    StoreError::Unavailable(message)
}

fn col<'r>(row: &'r Row, name: &str) -> Result<&'r Value, StoreError> {
    row.get(name)
        .ok_or_else(|| StoreError::Backend(format!("column {name} missing from a D1 row")))
}

fn get_text(row: &Row, name: &str) -> Result<String, StoreError> {
    get_opt_text(row, name)?.ok_or_else(|| StoreError::Backend(format!("column {name} is NULL")))
}

fn get_opt_text(row: &Row, name: &str) -> Result<Option<String>, StoreError> {
    match col(row, name)? {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        other => Err(StoreError::Backend(format!("column {name} is not text: {other}"))),
    }
}

fn get_int(row: &Row, name: &str) -> Result<i64, StoreError> {
    match col(row, name)? {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .ok_or_else(|| StoreError::Backend(format!("column {name} is not an integer"))),
        other => Err(StoreError::Backend(format!("column {name} is not an integer: {other}"))),
    }
}

fn get_bool(row: &Row, name: &str) -> Result<bool, StoreError> {
    match col(row, name)? {
        Value::Bool(b) => Ok(*b),
        _ => Ok(get_int(row, name)? != 0),
    }
}

fn get_time(row: &Row, name: &str) -> Result<Timestamp, StoreError> {
    let t = get_text(row, name)?;
    from_sql_text(&t).ok_or_else(|| StoreError::Backend(format!("unreadable datetime in {name}: {t:?}")))
}

fn get_opt_time(row: &Row, name: &str) -> Result<Option<Timestamp>, StoreError> {
    get_opt_text(row, name)?
        .map(|t| from_sql_text(&t).ok_or_else(|| StoreError::Backend(format!("unreadable datetime in {name}: {t:?}"))))
        .transpose()
}

const USER_COLUMNS: &str = "id, email, hashed_password, is_active, is_verified, is_superuser, full_name, phone_number, is_mfa_enabled, created_at, updated_at, last_login, tokens_invalidated_after";

fn user_from(row: &Row) -> Result<User, StoreError> {
    Ok(User {
        id: get_text(row, "id")?,
        email: get_text(row, "email")?,
        hashed_password: get_opt_text(row, "hashed_password")?,
        is_active: get_bool(row, "is_active")?,
        is_verified: get_bool(row, "is_verified")?,
        is_superuser: get_bool(row, "is_superuser")?,
        full_name: get_opt_text(row, "full_name")?,
        phone_number: get_opt_text(row, "phone_number")?,
        is_mfa_enabled: get_bool(row, "is_mfa_enabled")?,
        created_at: get_time(row, "created_at")?,
        updated_at: get_time(row, "updated_at")?,
        last_login: get_opt_time(row, "last_login")?,
        tokens_invalidated_after: get_opt_time(row, "tokens_invalidated_after")?,
    })
}

const PENDING_COLUMNS: &str = "id, email, hashed_password, full_name, token_hash, created_at, expires_at";

fn pending_from(row: &Row) -> Result<PendingRegistration, StoreError> {
    Ok(PendingRegistration {
        id: get_text(row, "id")?,
        email: get_text(row, "email")?,
        hashed_password: get_text(row, "hashed_password")?,
        full_name: get_opt_text(row, "full_name")?,
        token_hash: get_text(row, "token_hash")?,
        created_at: get_time(row, "created_at")?,
        expires_at: get_time(row, "expires_at")?,
    })
}

impl D1Store {
    /// Stores on the `DB` binding of `env`.
    pub fn new(env: Env) -> Self {
        Self { env }
    }

    fn db(&self) -> Result<D1Database, StoreError> {
        self.env
            .d1(BINDING)
            .map_err(|e| StoreError::Backend(format!("the {BINDING} D1 binding is missing: {e}")))
    }

    fn statement(&self, sql: &str, params: &[P]) -> Result<D1PreparedStatement, StoreError> {
        let values: Vec<JsValue> = params.iter().map(P::js).collect();
        self.db()?.prepare(sql).bind(&values).map_err(map_err)
    }

    async fn rows(&self, sql: &str, params: &[P]) -> Result<Vec<Row>, StoreError> {
        let stmt = self.statement(sql, params)?;
        js(async move {
            let result = stmt.all().await.map_err(map_err)?;
            result.results::<Row>().map_err(map_err)
        })
        .await
    }

    async fn first(&self, sql: &str, params: &[P]) -> Result<Option<Row>, StoreError> {
        Ok(self.rows(sql, params).await?.into_iter().next())
    }

    /// Runs a write and answers how many rows it changed.
    async fn run(&self, sql: &str, params: &[P]) -> Result<usize, StoreError> {
        let stmt = self.statement(sql, params)?;
        js(async move {
            let result = stmt.run().await.map_err(map_err)?;
            Ok(result.meta().map_err(map_err)?.and_then(|m| m.changes).unwrap_or(0))
        })
        .await
    }

    /// Runs statements as one D1 batch: one transaction, all or nothing.
    async fn batch(&self, statements: &[(&str, Vec<P>)]) -> Result<(), StoreError> {
        let prepared = statements
            .iter()
            .map(|(sql, params)| self.statement(sql, params))
            .collect::<Result<Vec<_>, _>>()?;
        let db = self.db()?;
        js(async move { db.batch(prepared).await.map(|_| ()).map_err(map_err) }).await
    }
}

#[async_trait]
impl UserStore for D1Store {
    async fn create(&self, u: &User) -> Result<User, StoreError> {
        // The NOT EXISTS makes uniqueness case-insensitive, in the same statement.
        let changed = self
            .run(
                &format!(
                    "INSERT INTO users ({USER_COLUMNS}) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13 \
                     WHERE NOT EXISTS (SELECT 1 FROM users WHERE lower(email) = lower(?2))"
                ),
                &[
                    text(&u.id),
                    text(&u.email),
                    opt_text(u.hashed_password.as_deref()),
                    P::Bool(u.is_active),
                    P::Bool(u.is_verified),
                    P::Bool(u.is_superuser),
                    opt_text(u.full_name.as_deref()),
                    opt_text(u.phone_number.as_deref()),
                    P::Bool(u.is_mfa_enabled),
                    time(u.created_at),
                    time(u.updated_at),
                    P::Text(u.last_login.map(to_sql_text)),
                    P::Text(u.tokens_invalidated_after.map(to_sql_text)),
                ],
            )
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => StoreError::Conflict("email".into()),
                other => other,
            })?;
        if changed == 0 {
            return Err(StoreError::Conflict("email".into()));
        }
        Ok(u.clone())
    }

    async fn get(&self, id: &str) -> Result<Option<User>, StoreError> {
        let row = self
            .first(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"), &[text(id)])
            .await?;
        row.as_ref().map(user_from).transpose()
    }

    async fn find_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        let row = self
            .first(
                &format!(
                    "SELECT {USER_COLUMNS} FROM users WHERE email = ?1 \
                     UNION ALL SELECT {USER_COLUMNS} FROM users WHERE lower(email) = lower(?1) AND email <> ?1 LIMIT 1"
                ),
                &[text(email)],
            )
            .await?;
        row.as_ref().map(user_from).transpose()
    }

    async fn update(&self, id: &str, patch: &UserPatch, now: Timestamp) -> Result<User, StoreError> {
        let mut sets: Vec<&str> = vec!["updated_at = ?"];
        let mut params: Vec<P> = vec![time(now)];
        if let Some(v) = &patch.email {
            sets.push("email = ?");
            params.push(text(v));
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
                params.push(P::Bool(v));
            }
        }
        if let Some(v) = &patch.full_name {
            sets.push("full_name = ?");
            params.push(opt_text(v.as_deref()));
        }
        if let Some(v) = &patch.phone_number {
            sets.push("phone_number = ?");
            params.push(opt_text(v.as_deref()));
        }
        if let Some(v) = patch.last_login {
            sets.push("last_login = ?");
            params.push(time(v));
        }
        if let Some(v) = patch.tokens_invalidated_after {
            sets.push("tokens_invalidated_after = ?");
            params.push(time(v));
        }
        let mut sql = format!("UPDATE users SET {} WHERE id = ?", sets.join(", "));
        params.push(text(id));
        if let Some(email) = &patch.email {
            // Refuse an address another user holds in any case, in the same statement.
            sql.push_str(" AND NOT EXISTS (SELECT 1 FROM users WHERE lower(email) = lower(?) AND id <> ?)");
            params.push(text(email));
            params.push(text(id));
        }
        sql.push_str(&format!(" RETURNING {USER_COLUMNS}"));
        match self.first(&sql, &params).await? {
            Some(row) => user_from(&row),
            None if patch.email.is_some() && self.get(id).await?.is_some() => Err(StoreError::Conflict("email".into())),
            None => Err(StoreError::NotFound),
        }
    }

    async fn delete(&self, user: &User) -> Result<bool, StoreError> {
        let existed = self.get(&user.id).await?.is_some();
        let id = || vec![text(&user.id)];
        let email = || vec![text(&user.email)];
        self.batch(&[
            ("DELETE FROM users WHERE id = ?1", id()),
            ("DELETE FROM oauth_identities WHERE user_id = ?1", id()),
            ("DELETE FROM mfa_codes WHERE user_id = ?1", id()),
            (
                "DELETE FROM pending_registrations WHERE lower(email) = lower(?1)",
                email(),
            ),
            ("DELETE FROM login_attempts WHERE lower(email) = lower(?1)", email()),
        ])
        .await?;
        Ok(existed)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.first("SELECT 1 AS one", &[]).await.map(|_| ())
    }
}

#[async_trait]
impl PendingStore for D1Store {
    async fn put(&self, p: &PendingRegistration) -> Result<(), StoreError> {
        self.batch(&[
            (
                "DELETE FROM pending_registrations WHERE lower(email) = lower(?1)",
                vec![text(&p.email)],
            ),
            (
                "INSERT INTO pending_registrations (id, email, hashed_password, full_name, token_hash, created_at, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                vec![
                    text(&p.id),
                    text(&p.email),
                    text(&p.hashed_password),
                    opt_text(p.full_name.as_deref()),
                    text(&p.token_hash),
                    time(p.created_at),
                    time(p.expires_at),
                ],
            ),
        ])
        .await
    }

    async fn take_by_token_hash(&self, token_hash: &str) -> Result<Option<PendingRegistration>, StoreError> {
        let row = self
            .first(
                &format!("DELETE FROM pending_registrations WHERE token_hash = ?1 RETURNING {PENDING_COLUMNS}"),
                &[text(token_hash)],
            )
            .await?;
        row.as_ref().map(pending_from).transpose()
    }

    async fn find_by_email(&self, email: &str) -> Result<Option<PendingRegistration>, StoreError> {
        let row = self
            .first(
                &format!("SELECT {PENDING_COLUMNS} FROM pending_registrations WHERE lower(email) = lower(?1) LIMIT 1"),
                &[text(email)],
            )
            .await?;
        row.as_ref().map(pending_from).transpose()
    }

    async fn take_by_email(&self, email: &str) -> Result<Option<PendingRegistration>, StoreError> {
        let row = self
            .first(
                &format!(
                    "DELETE FROM pending_registrations WHERE lower(email) = lower(?1) RETURNING {PENDING_COLUMNS}"
                ),
                &[text(email)],
            )
            .await?;
        row.as_ref().map(pending_from).transpose()
    }
}

#[async_trait]
impl RevocationStore for D1Store {
    async fn revoke(&self, jti: &str, exp: Timestamp) -> Result<bool, StoreError> {
        let changed = self
            .run(
                "INSERT INTO token_blacklist (jti, exp) VALUES (?1, ?2) ON CONFLICT (jti) DO NOTHING",
                &[text(jti), time(exp)],
            )
            .await?;
        Ok(changed == 1)
    }

    async fn is_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        Ok(self
            .first("SELECT 1 AS hit FROM token_blacklist WHERE jti = ?1", &[text(jti)])
            .await?
            .is_some())
    }
}

#[async_trait]
impl AttemptStore for D1Store {
    async fn try_reserve(
        &self,
        email: &str,
        ip: Option<&str>,
        now: Timestamp,
        since: Timestamp,
        threshold: u64,
    ) -> Result<Reservation, StoreError> {
        let row = self
            .first(
                "INSERT INTO login_attempts (email, \"when\", ip) SELECT ?1, ?2, ?3 \
                 WHERE (SELECT COUNT(*) FROM login_attempts WHERE email = ?1 AND \"when\" >= ?4) < ?5 RETURNING id",
                &[
                    text(email),
                    time(now),
                    opt_text(ip),
                    time(since),
                    P::Int(threshold as i64),
                ],
            )
            .await?;
        let Some(row) = row else {
            return Ok(Reservation::Locked);
        };
        let id = get_int(&row, "id")?;
        // Rows with a smaller id were there when this one went in; later ones do not count.
        let counted = self
            .first(
                "SELECT COUNT(*) AS n FROM login_attempts WHERE email = ?1 AND \"when\" >= ?2 AND id <= ?3",
                &[text(email), time(since), P::Int(id)],
            )
            .await?;
        let failures = counted.as_ref().map(|r| get_int(r, "n")).transpose()?.unwrap_or(1);
        Ok(Reservation::Reserved {
            id,
            failures: failures.max(1) as u64,
        })
    }

    async fn release(&self, id: i64) -> Result<(), StoreError> {
        self.run("DELETE FROM login_attempts WHERE id = ?1", &[P::Int(id)])
            .await
            .map(|_| ())
    }

    async fn clear(&self, email: &str) -> Result<(), StoreError> {
        self.run(
            "DELETE FROM login_attempts WHERE lower(email) = lower(?1)",
            &[text(email)],
        )
        .await
        .map(|_| ())
    }
}

#[async_trait]
impl MfaCodeStore for D1Store {
    async fn put(&self, c: &MfaCode) -> Result<(), StoreError> {
        self.run(
            "INSERT INTO mfa_codes (user_id, kind, code_hash, expires_at, attempts, max_attempts, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (user_id, kind) DO UPDATE SET code_hash = excluded.code_hash, \
             expires_at = excluded.expires_at, attempts = excluded.attempts, max_attempts = excluded.max_attempts, \
             created_at = excluded.created_at",
            &[
                text(&c.user_id),
                text(c.kind.as_str()),
                text(&c.code_hash),
                time(c.expires_at),
                P::Int(c.attempts),
                P::Int(c.max_attempts),
                time(c.created_at),
            ],
        )
        .await
        .map(|_| ())
    }

    async fn check(
        &self,
        user_id: &str,
        kind: CodeKind,
        code_hash: &str,
        now: Timestamp,
    ) -> Result<CodeCheck, StoreError> {
        // Read, judge, then write only if the row is still exactly what was judged (same id,
        // same attempt count); otherwise another guess landed in between, so judge again.
        // Every guess is counted once and at most one can consume the code.
        for _ in 0..32 {
            let Some(row) = self
                .first(
                    "SELECT id, code_hash, expires_at, attempts, max_attempts, created_at FROM mfa_codes \
                     WHERE user_id = ?1 AND kind = ?2",
                    &[text(user_id), text(kind.as_str())],
                )
                .await?
            else {
                return Ok(CodeCheck::Missing);
            };
            let id = get_int(&row, "id")?;
            let attempts = get_int(&row, "attempts")?;
            let stored = MfaCode {
                user_id: user_id.to_string(),
                kind,
                code_hash: get_text(&row, "code_hash")?,
                expires_at: get_time(&row, "expires_at")?,
                attempts: attempts as _,
                max_attempts: get_int(&row, "max_attempts")? as _,
                created_at: get_time(&row, "created_at")?,
            };
            let outcome = judge(&stored, code_hash, now);
            let sql = match outcome {
                CodeCheck::Wrong { .. } => {
                    "UPDATE mfa_codes SET attempts = attempts + 1 WHERE id = ?1 AND attempts = ?2"
                }
                _ => "DELETE FROM mfa_codes WHERE id = ?1 AND attempts = ?2",
            };
            if self.run(sql, &[P::Int(id), P::Int(attempts)]).await? == 1 {
                return Ok(outcome);
            }
        }
        Err(StoreError::Unavailable(
            "the code is being checked too often at once".into(),
        ))
    }

    async fn delete_for_user(&self, user_id: &str) -> Result<(), StoreError> {
        self.run("DELETE FROM mfa_codes WHERE user_id = ?1", &[text(user_id)])
            .await
            .map(|_| ())
    }
}
