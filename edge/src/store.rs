//! Every store on D1, over the schema of `migrations/sqlite` (applied by wrangler), binding the
//! statements of [`regstack_core::sqlite`] that the native SQLite store binds too.
//!
//! D1 has no interactive transactions, so each check-then-write step is either one statement
//! (D1 runs statements one at a time, so a conditional `INSERT … SELECT … WHERE` or a
//! `DELETE … RETURNING` is atomic), a batch (which D1 runs as one transaction), or an
//! optimistic read followed by a write conditioned on what was read, retried when another
//! request got there first.

use async_trait::async_trait;
use regstack_core::ports::{
    AttemptStore, MfaCodeStore, PendingStore, Purged, Reservation, RevocationStore, StoreError, Sweeper, UserStore,
};
use regstack_core::records::{CodeCheck, CodeKind, MfaCode, PendingRegistration, User, UserPatch};
use regstack_core::sqlite::{self, code_from, pending_from, user_from, Row as _, Statement, Value};
use regstack_core::time::Timestamp;
use serde_json::{Map, Value as Json};
use worker::wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement, Env};

use crate::js::js;

/// The D1 binding's name in `wrangler.toml`.
pub const BINDING: &str = "DB";

/// Integers travel as JS numbers (D1 refuses BigInt), booleans as 0 and 1.
fn js_value(v: &Value) -> JsValue {
    match v {
        Value::Text(Some(s)) => JsValue::from_str(s),
        Value::Text(None) => JsValue::NULL,
        Value::Int(i) => JsValue::from_f64(*i as f64),
        Value::Bool(b) => JsValue::from_f64(if *b { 1.0 } else { 0.0 }),
    }
}

type Row = Map<String, Json>;

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

    fn statement(&self, st: &Statement) -> Result<D1PreparedStatement, StoreError> {
        let values: Vec<JsValue> = st.params.iter().map(js_value).collect();
        self.db()?.prepare(&st.sql).bind(&values).map_err(map_err)
    }

    async fn rows(&self, st: Statement) -> Result<Vec<Row>, StoreError> {
        let stmt = self.statement(&st)?;
        js(async move {
            let result = stmt.all().await.map_err(map_err)?;
            result.results::<Row>().map_err(map_err)
        })
        .await
    }

    async fn first(&self, st: Statement) -> Result<Option<Row>, StoreError> {
        Ok(self.rows(st).await?.into_iter().next())
    }

    /// Runs a write and answers how many rows it changed.
    async fn run(&self, st: Statement) -> Result<usize, StoreError> {
        let stmt = self.statement(&st)?;
        js(async move {
            let result = stmt.run().await.map_err(map_err)?;
            Ok(result.meta().map_err(map_err)?.and_then(|m| m.changes).unwrap_or(0))
        })
        .await
    }

    /// Runs statements as one D1 batch: one transaction, all or nothing. Answers how many rows
    /// each statement changed.
    async fn batch(&self, statements: Vec<Statement>) -> Result<Vec<usize>, StoreError> {
        let prepared = statements
            .iter()
            .map(|st| self.statement(st))
            .collect::<Result<Vec<_>, _>>()?;
        let db = self.db()?;
        js(async move {
            let results = db.batch(prepared).await.map_err(map_err)?;
            results
                .iter()
                .map(|r| Ok(r.meta().map_err(map_err)?.and_then(|m| m.changes).unwrap_or(0)))
                .collect()
        })
        .await
    }
}

#[async_trait]
impl UserStore for D1Store {
    async fn create(&self, u: &User) -> Result<User, StoreError> {
        let changed = self.run(sqlite::create_user(u)).await.map_err(|e| match e {
            StoreError::Conflict(_) => StoreError::Conflict("email".into()),
            other => other,
        })?;
        if changed == 0 {
            return Err(StoreError::Conflict("email".into()));
        }
        Ok(u.clone())
    }

    async fn get(&self, id: &str) -> Result<Option<User>, StoreError> {
        let row = self.first(sqlite::user_by_id(id)).await?;
        row.as_ref().map(user_from).transpose()
    }

    async fn find_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        let row = self.first(sqlite::user_by_email(email)).await?;
        row.as_ref().map(user_from).transpose()
    }

    async fn update(&self, id: &str, patch: &UserPatch, now: Timestamp) -> Result<User, StoreError> {
        match self.first(sqlite::update_user(id, patch, now)).await? {
            Some(row) => user_from(&row),
            None if patch.email.is_some() && self.get(id).await?.is_some() => Err(StoreError::Conflict("email".into())),
            None => Err(StoreError::NotFound),
        }
    }

    async fn delete(&self, user: &User) -> Result<bool, StoreError> {
        let changed = self.batch(sqlite::delete_user(user)).await?;
        Ok(changed.first().is_some_and(|&n| n > 0))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.first(sqlite::ping()).await.map(|_| ())
    }
}

#[async_trait]
impl PendingStore for D1Store {
    async fn put(&self, p: &PendingRegistration) -> Result<(), StoreError> {
        self.batch(sqlite::put_pending(p)).await.map(|_| ())
    }

    async fn take_by_token_hash(&self, token_hash: &str) -> Result<Option<PendingRegistration>, StoreError> {
        let row = self.first(sqlite::take_pending_by_token(token_hash)).await?;
        row.as_ref().map(pending_from).transpose()
    }

    async fn find_by_email(&self, email: &str) -> Result<Option<PendingRegistration>, StoreError> {
        let row = self.first(sqlite::pending_by_email(email)).await?;
        row.as_ref().map(pending_from).transpose()
    }

    async fn take_by_email(&self, email: &str) -> Result<Option<PendingRegistration>, StoreError> {
        let row = self.first(sqlite::take_pending_by_email(email)).await?;
        row.as_ref().map(pending_from).transpose()
    }
}

#[async_trait]
impl RevocationStore for D1Store {
    async fn revoke(&self, jti: &str, exp: Timestamp) -> Result<bool, StoreError> {
        Ok(self.run(sqlite::revoke(jti, exp)).await? == 1)
    }

    async fn is_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        Ok(self.first(sqlite::revoked(jti)).await?.is_some())
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
            .first(sqlite::reserve_attempt(email, ip, now, since, threshold))
            .await?;
        let Some(row) = row else {
            return Ok(Reservation::Locked);
        };
        let id = row.int("id")?;
        let counted = self.first(sqlite::attempts_through(email, since, id)).await?;
        let failures = counted.as_ref().map(|r| r.int("n")).transpose()?.unwrap_or(1);
        Ok(Reservation::Reserved {
            id,
            failures: failures.max(1) as u64,
        })
    }

    async fn release(&self, id: i64) -> Result<(), StoreError> {
        self.run(sqlite::release_attempt(id)).await.map(|_| ())
    }

    async fn clear(&self, email: &str) -> Result<(), StoreError> {
        self.run(sqlite::clear_attempts(email)).await.map(|_| ())
    }
}

#[async_trait]
impl MfaCodeStore for D1Store {
    async fn put(&self, c: &MfaCode) -> Result<(), StoreError> {
        self.run(sqlite::put_code(c)).await.map(|_| ())
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
            let Some(row) = self.first(sqlite::code_of(user_id, kind)).await? else {
                return Ok(CodeCheck::Missing);
            };
            let (id, stored) = code_from(&row, user_id, kind)?;
            let outcome = stored.judge(code_hash, now);
            if self.run(sqlite::record_check(outcome, id, &stored)).await? == 1 {
                return Ok(outcome);
            }
        }
        Err(StoreError::Unavailable(
            "the code is being checked too often at once".into(),
        ))
    }

    async fn delete_for_user(&self, user_id: &str) -> Result<(), StoreError> {
        self.run(sqlite::delete_codes(user_id)).await.map(|_| ())
    }
}

#[async_trait]
impl Sweeper for D1Store {
    /// Also finishes keying addresses: the edge has no start-up step, and SQL cannot lower-case
    /// non-ASCII letters, so the hourly sweep writes the `email_key` of such rows.
    async fn purge_expired(&self, now: Timestamp, attempts_before: Timestamp) -> Result<Purged, StoreError> {
        let changes = self.batch(sqlite::purge_expired(now, attempts_before).to_vec()).await?;
        if let Err(e) = self.key_emails().await {
            tracing::warn!(target: "regstack.housekeeping", error = %e, "keying addresses failed; the next sweep tries again");
        }
        let changes: Vec<u64> = changes.into_iter().map(|n| n as u64).collect();
        Ok(sqlite::purged(&changes))
    }
}

impl D1Store {
    /// Up to 500 rows a table without an `email_key`, keyed in one batch per table.
    async fn key_emails(&self) -> Result<(), StoreError> {
        for table in sqlite::KEYED_TABLES {
            let mut updates = Vec::new();
            for row in self.rows(sqlite::unkeyed_rows(table)).await? {
                if let (Some(id), Some(email)) = (row.text("id")?, row.text("email")?) {
                    updates.push(sqlite::set_email_key(table, &id, &email));
                }
            }
            if !updates.is_empty() {
                self.batch(updates).await?;
            }
        }
        Ok(())
    }
}
