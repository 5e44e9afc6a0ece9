//! Key reads on the calling thread: the session check's one-row lookup, answered by a small
//! set of read-only connections without sqlx's hop to a worker thread and back
//! (docs/performance.md, "The session check").
//!
//! Why this is fit to run inline: in WAL mode a reader does not wait for a writer, the read is
//! one index probe (after a write elsewhere, a few pages come from the OS's file cache
//! again), and each connection has a zero busy timeout. When every connection is in use, or
//! the read fails in any way (busy, a checkpoint or recovery in progress, I/O trouble, a cell
//! this path does not convert), the caller asks the sqlx pool instead, which answers or
//! reports the error exactly as for any other read.
//!
//! Exactness: each read is its own autocommit transaction, so it sees every write committed
//! before it started, from this process or any other. Nothing is cached but prepared
//! statements.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use regstack_core::sqlite::{Statement, Value};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use serde_json::{Map, Value as Json};

/// Query-only connections to one database file.
#[derive(Debug)]
pub(crate) struct InlineReader {
    connections: Vec<Mutex<Connection>>,
    next: AtomicUsize,
}

impl InlineReader {
    /// `count` connections to the file at `path`, each refusing writes (`query_only`).
    pub(crate) fn open(path: &Path, count: usize) -> rusqlite::Result<Self> {
        let connections = (0..count.max(1))
            .map(|_| {
                let c = Connection::open_with_flags(
                    path,
                    OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                c.pragma_update(None, "query_only", true)?;
                c.busy_timeout(Duration::ZERO)?;
                Ok(Mutex::new(c))
            })
            .collect::<rusqlite::Result<_>>()?;
        Ok(Self {
            connections,
            next: AtomicUsize::new(0),
        })
    }

    /// The rows of `st`, or `None` when no connection is free or the read failed: the caller
    /// then asks the pool.
    pub(crate) fn rows(&self, st: &Statement) -> Option<Vec<Map<String, Json>>> {
        let n = self.connections.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let conn = (0..n).find_map(|i| self.connections[(start + i) % n].try_lock().ok())?;
        read(&conn, st).ok()
    }
}

fn read(conn: &Connection, st: &Statement) -> rusqlite::Result<Vec<Map<String, Json>>> {
    let mut stmt = conn.prepare_cached(&st.sql)?;
    for (i, v) in st.params.iter().enumerate() {
        match v {
            Value::Text(t) => stmt.raw_bind_parameter(i + 1, t.as_deref())?,
            Value::Int(x) => stmt.raw_bind_parameter(i + 1, x)?,
            Value::Bool(b) => stmt.raw_bind_parameter(i + 1, b)?,
        }
    }
    let mut rows = stmt.raw_query();
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let columns = row.as_ref();
        let mut map = Map::with_capacity(columns.column_count());
        for i in 0..columns.column_count() {
            let name = columns.column_name(i)?;
            // The same JSON as the sqlx path's rows: SQLite's storage class decides. What that
            // path refuses (a BLOB, text that is not UTF-8) fails here too, so the pool answers.
            let value = match row.get_ref(i)? {
                ValueRef::Null => Json::Null,
                ValueRef::Integer(x) => Json::from(x),
                ValueRef::Real(x) => Json::from(x),
                ValueRef::Text(t) => Json::from(std::str::from_utf8(t).map_err(rusqlite::Error::Utf8Error)?),
                ValueRef::Blob(_) => {
                    return Err(rusqlite::Error::InvalidColumnType(
                        i,
                        name.to_string(),
                        rusqlite::types::Type::Blob,
                    ))
                }
            };
            map.insert(name.to_string(), value);
        }
        out.push(map);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use regstack_core::sqlite::{Statement, Value};
    use serde_json::json;

    use super::InlineReader;

    /// The inline path itself answers (no pool to fall back on here), with the JSON the sqlx
    /// path gives: integers, text, NULL.
    #[test]
    fn reads_a_row_by_key_on_the_calling_thread() {
        let dir = std::env::temp_dir().join(format!("regstack-inline-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("inline.db");
        let _ = std::fs::remove_file(&path);
        let setup = rusqlite::Connection::open(&path).unwrap();
        setup
            .execute_batch(
                "CREATE TABLE t (id TEXT PRIMARY KEY, n INTEGER, note TEXT); INSERT INTO t VALUES ('a', 7, NULL);",
            )
            .unwrap();
        let reader = InlineReader::open(&path, 1).unwrap();
        let st = Statement {
            sql: "SELECT id, n, note FROM t WHERE id = ?1".into(),
            params: vec![Value::Text(Some("a".into()))],
        };
        let rows = reader.rows(&st).expect("answered inline");
        assert_eq!(
            serde_json::Value::Object(rows[0].clone()),
            json!({"id": "a", "n": 7, "note": null})
        );
        // A write through the query-only connection is refused, and reported as no answer.
        let write = Statement {
            sql: "DELETE FROM t".into(),
            params: vec![],
        };
        assert!(reader.rows(&write).is_none());
    }
}
