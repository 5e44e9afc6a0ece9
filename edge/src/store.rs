//! D1 as an [`Executor`] of the shared SQLite statements (`migrations/sqlite`, applied by
//! wrangler): the core's `SqlStore` makes every store port of it, as it does of the native
//! sqlx pool.
//!
//! D1 has no interactive transactions, so each check-then-write step is either one statement
//! (D1 runs statements one at a time, so a conditional `INSERT … SELECT … WHERE` or a
//! `DELETE … RETURNING` is atomic), a batch (which D1 runs as one transaction), or an
//! optimistic read followed by a write conditioned on what was read, retried when another
//! request got there first.

use async_trait::async_trait;
use regstack_core::ports::StoreError;
use regstack_core::sqlite::{Executor, Statement, Value};
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
}

/// D1 runs the shared statements; the store decisions are the core's `SqlStore`. D1 has no
/// interactive transactions, so the code check keeps the default optimistic compare-and-set.
#[async_trait]
impl Executor for D1Store {
    async fn rows(&self, st: Statement) -> Result<Vec<Row>, StoreError> {
        let stmt = self.statement(&st)?;
        js(async move {
            let result = stmt.all().await.map_err(map_err)?;
            result.results::<Row>().map_err(map_err)
        })
        .await
    }

    async fn run(&self, st: Statement) -> Result<u64, StoreError> {
        let stmt = self.statement(&st)?;
        js(async move {
            let result = stmt.run().await.map_err(map_err)?;
            Ok(result.meta().map_err(map_err)?.and_then(|m| m.changes).unwrap_or(0) as u64)
        })
        .await
    }

    /// One D1 batch: one transaction, all or nothing.
    async fn batch(&self, statements: Vec<Statement>) -> Result<Vec<u64>, StoreError> {
        let prepared = statements
            .iter()
            .map(|st| self.statement(st))
            .collect::<Result<Vec<_>, _>>()?;
        let db = self.db()?;
        js(async move {
            let results = db.batch(prepared).await.map_err(map_err)?;
            results
                .iter()
                .map(|r| Ok(r.meta().map_err(map_err)?.and_then(|m| m.changes).unwrap_or(0) as u64))
                .collect()
        })
        .await
    }
}
