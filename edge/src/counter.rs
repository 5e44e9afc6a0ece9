//! Exact counters for the per-IP rate limits, in a Durable Object.
//!
//! Each key gets its own object (`id_from_name(key)`), and an object handles one event at a
//! time. The increment is one synchronous SQL statement on the object's own SQLite storage,
//! so parallel requests for one key are counted exactly; different keys never wait on each
//! other. An alarm at the end of the window deletes the row, so idle keys cost nothing.

use async_trait::async_trait;
use regstack_core::ports::{Counter, StoreError};
use regstack_core::time::{to_micros, Timestamp};
use serde::{Deserialize, Serialize};
use worker::wasm_bindgen::JsValue;
use worker::{Env, Method, Request, RequestInit};

use crate::js::js;

/// The Durable Object binding's name in `wrangler.toml`.
pub const BINDING: &str = "COUNTERS";

/// The object's table: one row per key while its window is open.
const CREATE_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS counters (key TEXT PRIMARY KEY, n INTEGER NOT NULL, expires_at INTEGER NOT NULL)";

/// Counts one hit at `?2` (µs) for key `?1`: a window that has ended starts again at 1 with
/// the new end `?3`; an open one counts up and keeps its end. One statement, so nothing can
/// interleave with it.
const INCREMENT: &str = "INSERT INTO counters (key, n, expires_at) VALUES (?1, 1, ?3) \
     ON CONFLICT (key) DO UPDATE SET \
       n = CASE WHEN counters.expires_at <= ?2 THEN 1 ELSE counters.n + 1 END, \
       expires_at = CASE WHEN counters.expires_at <= ?2 THEN excluded.expires_at ELSE counters.expires_at END \
     RETURNING n AS count";

#[derive(Serialize, Deserialize)]
struct Increment {
    key: String,
    now: i64,
    expires_at: i64,
}

#[derive(Serialize, Deserialize)]
struct Count {
    count: u64,
}

pub use object::RateCounter;

// The JS glue that `#[durable_object]` generates carries no docs.
#[allow(missing_docs)]
mod object {
    use regstack_core::time::from_micros;
    use worker::{durable_object, DurableObject, Env, Request, Response, State};

    use super::{Count, Increment, CREATE_TABLE, INCREMENT};

    /// The Durable Object class that holds the counters (`RateCounter` in `wrangler.toml`).
    #[durable_object]
    pub struct RateCounter {
        state: State,
    }

    impl DurableObject for RateCounter {
        fn new(state: State, _env: Env) -> Self {
            state
                .storage()
                .sql()
                .exec(CREATE_TABLE, None)
                .expect("creating the counters table");
            Self { state }
        }

        async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
            let Increment { key, now, expires_at } = req.json().await?;
            // One statement, no await inside: nothing can interleave with it.
            let row: Count = self
                .state
                .storage()
                .sql()
                .exec(
                    INCREMENT,
                    vec![key.into(), (now as f64).into(), (expires_at as f64).into()],
                )?
                .one()?;
            // A window has just started (the first hit, or the first after one ended): wake up
            // after it to forget the key. Later hits only check that an alarm is set (a read),
            // in case setting it failed at the first.
            if row.count == 1 || self.state.storage().get_alarm().await?.is_none() {
                self.state
                    .storage()
                    .set_alarm(from_micros(expires_at + 1_000_000))
                    .await?;
            }
            Response::from_json(&row)
        }

        async fn alarm(&self) -> worker::Result<Response> {
            self.state.storage().sql().exec("DELETE FROM counters", None)?;
            Response::ok("")
        }
    }
}

/// The [`Counter`] port over the `COUNTERS` namespace.
pub struct DurableCounter {
    env: Env,
}

impl DurableCounter {
    /// Counters on the `COUNTERS` binding of `env`.
    pub fn new(env: Env) -> Self {
        Self { env }
    }
}

fn unavailable(e: worker::Error) -> StoreError {
    StoreError::Unavailable(format!("rate-limit counter: {e}"))
}

#[async_trait]
impl Counter for DurableCounter {
    async fn increment(&self, key: &str, now: Timestamp, expires_at: Timestamp) -> Result<u64, StoreError> {
        let body = serde_json::to_string(&Increment {
            key: key.to_string(),
            now: to_micros(now),
            expires_at: to_micros(expires_at),
        })
        .map_err(|e| StoreError::Backend(e.to_string()))?;
        let stub = self
            .env
            .durable_object(BINDING)
            .and_then(|ns| ns.id_from_name(key)?.get_stub())
            .map_err(unavailable)?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post).with_body(Some(JsValue::from_str(&body)));
        let req = Request::new_with_init("https://counter/increment", &init).map_err(unavailable)?;
        js(async move {
            let mut resp = stub.fetch_with_request(req).await.map_err(unavailable)?;
            if resp.status_code() != 200 {
                return Err(StoreError::Unavailable(format!(
                    "rate-limit counter answered {}",
                    resp.status_code()
                )));
            }
            let count: Count = resp.json().await.map_err(unavailable)?;
            Ok(count.count)
        })
        .await
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    //! The object's statements on SQLite, the engine Durable Object storage runs.

    use super::{CREATE_TABLE, INCREMENT};

    fn hit(db: &rusqlite::Connection, key: &str, now: i64, expires_at: i64) -> (i64, i64) {
        let n = db
            .query_row(INCREMENT, rusqlite::params![key, now, expires_at], |row| row.get(0))
            .expect("incrementing");
        let end = db
            .query_row("SELECT expires_at FROM counters WHERE key = ?1", [key], |row| {
                row.get(0)
            })
            .expect("reading the window");
        (n, end)
    }

    fn object() -> rusqlite::Connection {
        let db = rusqlite::Connection::open_in_memory().expect("opening SQLite");
        db.execute(CREATE_TABLE, []).expect("creating the table");
        // The object runs it on every start: it must be idempotent.
        db.execute(CREATE_TABLE, []).expect("creating the table again");
        db
    }

    #[test]
    fn hits_in_one_window_count_up_and_keep_its_end() {
        let db = object();
        assert_eq!(hit(&db, "ip:login", 0, 100), (1, 100));
        assert_eq!(hit(&db, "ip:login", 10, 110), (2, 100));
        assert_eq!(hit(&db, "ip:login", 99, 199), (3, 100));
    }

    #[test]
    fn the_first_hit_after_a_window_ends_starts_a_new_one() {
        let db = object();
        hit(&db, "k", 0, 100);
        hit(&db, "k", 50, 150);
        // The end itself belongs to the next window, as in the core's own counters.
        assert_eq!(hit(&db, "k", 100, 200), (1, 200));
        assert_eq!(hit(&db, "k", 150, 250), (2, 200));
    }

    #[test]
    fn keys_count_apart() {
        let db = object();
        hit(&db, "a", 0, 100);
        hit(&db, "a", 1, 101);
        assert_eq!(hit(&db, "b", 2, 102), (1, 102));
        assert_eq!(hit(&db, "a", 3, 103), (3, 100));
    }
}
