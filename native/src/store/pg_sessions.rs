//! Session checks on PostgreSQL, gathered into shared round trips (docs/performance.md, "The
//! session check").
//!
//! Every authenticated request reads its token's user and whether the token is revoked. Through
//! the pool each of those reads costs three round trips: sqlx tests a connection before handing
//! it out and again when it comes back. Here a few long-lived connections, taken from a pool
//! regstack opened itself (a host's pool may be shared, so it is left alone), serve the checks
//! instead: each worker takes every check waiting at that moment and answers them all with one
//! statement over arrays. Under load the checks that arrive while one statement is in flight
//! ride on the next, so the database sees far fewer statements than requests; an idle server
//! answers a lone check at once.
//!
//! Exactness: a check's statement starts after the check arrived, so it sees every revocation
//! committed before the request came in, from any instance. Nothing is cached.
//!
//! When there is no worker, no connection within 100 ms, the queue is full, or the statement
//! fails or has not answered within the pool's acquire timeout, the check answers `None` and
//! the caller asks the pool, which answers or reports the error exactly as for any other read.
//! A connection goes back to the pool after a failure, 10 s idle, or 60 s held, so the pool's
//! test on return and its `max_lifetime` still reach it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use regstack_core::ports::SessionRecord;
use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres, Row};
use tokio::sync::{mpsc, oneshot};

/// Checks one statement answers at most.
const MOST_IN_ONE: usize = 128;
/// Checks waiting at most; past it a check goes to the pool.
const QUEUE: usize = 1024;
/// A worker idle this long gives its connection back to the pool.
const IDLE: Duration = Duration::from_secs(10);
/// How long a worker waits for a connection before its checks go to the pool.
const ACQUIRE: Duration = Duration::from_millis(100);
/// A worker gives its connection back after this long however busy it is, so the pool's own
/// care (its test on return, `max_lifetime`) still reaches it.
const HOLD: Duration = Duration::from_secs(60);

struct Check {
    user_id: String,
    jti: String,
    reply: oneshot::Sender<Option<SessionRecord>>,
}

/// The workers of one pool, started at the first check on the runtime that makes it (and
/// again if that runtime has gone).
#[derive(Debug)]
pub(crate) struct SessionChecks {
    pool: PgPool,
    workers: usize,
    queue: Mutex<Option<mpsc::Sender<Check>>>,
    counts: Arc<Counts>,
}

/// What the workers have done so far.
#[derive(Debug, Default)]
struct Counts {
    statements: AtomicU64,
    answered: AtomicU64,
}

/// How many session checks the gathered statements answered, and in how many statements
/// ([`crate::store::postgres::PgStore::session_check_counts`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionCheckCounts {
    /// Statements run.
    pub statements: u64,
    /// Checks they answered (the rest went to the pool).
    pub answered: u64,
}

impl SessionChecks {
    /// Up to two workers, each holding one connection, and only while they leave the pool
    /// three quarters of its size: a pool of fewer than four connections has none, and so
    /// does a pool the host owns (`owned` false), which other code may share.
    pub(crate) fn new(pool: PgPool, owned: bool) -> Self {
        let workers = if owned {
            (pool.options().get_max_connections() as usize / 4).min(2)
        } else {
            0
        };
        Self {
            pool,
            workers,
            queue: Mutex::new(None),
            counts: Arc::default(),
        }
    }

    pub(crate) fn counts(&self) -> SessionCheckCounts {
        SessionCheckCounts {
            statements: self.counts.statements.load(Ordering::Relaxed),
            answered: self.counts.answered.load(Ordering::Relaxed),
        }
    }

    /// The user of `user_id` and whether `jti` is revoked, or `None` for "ask the pool".
    pub(crate) async fn check(&self, user_id: &str, jti: &str) -> Option<SessionRecord> {
        let queue = self.queue()?;
        let (reply, answer) = oneshot::channel();
        queue
            .try_send(Check {
                user_id: user_id.to_string(),
                jti: jti.to_string(),
                reply,
            })
            .ok()?;
        // However the worker fares, the request goes on to the pool within this.
        let limit = self.pool.options().get_acquire_timeout();
        tokio::time::timeout(limit, answer).await.ok()?.ok().flatten()
    }

    fn queue(&self) -> Option<mpsc::Sender<Check>> {
        if self.workers == 0 {
            return None;
        }
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(q) = queue.as_ref().filter(|q| !q.is_closed()) {
            return Some(q.clone());
        }
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        for _ in 0..self.workers {
            runtime.spawn(work(self.pool.clone(), rx.clone(), self.counts.clone()));
        }
        *queue = Some(tx.clone());
        Some(tx)
    }
}

/// One worker: takes every check waiting, answers them with one statement, repeats. It ends
/// when the queue's sender is dropped with its store.
async fn work(pool: PgPool, queue: Arc<tokio::sync::Mutex<mpsc::Receiver<Check>>>, counts: Arc<Counts>) {
    let mut conn: Option<(PoolConnection<Postgres>, tokio::time::Instant)> = None;
    let limit = pool.options().get_acquire_timeout();
    loop {
        let mut batch = Vec::new();
        let waited = tokio::time::timeout(IDLE, async {
            let mut queue = queue.lock().await;
            let first = queue.recv().await?;
            batch.push(first);
            while batch.len() < MOST_IN_ONE {
                match queue.try_recv() {
                    Ok(check) => batch.push(check),
                    Err(_) => break,
                }
            }
            Some(())
        })
        .await;
        match waited {
            Ok(Some(())) => {}
            Ok(None) => return,
            Err(_) => {
                conn = None;
                continue;
            }
        }
        // A request that gave up (a closed connection, a timeout) needs no answer.
        batch.retain(|c| !c.reply.is_closed());
        if batch.is_empty() {
            continue;
        }
        if pool.is_closed() || conn.as_ref().is_some_and(|(_, since)| since.elapsed() >= HOLD) {
            conn = None;
        }
        if conn.is_none() && !pool.is_closed() {
            // A short wait: a pool busy with other work answers these checks itself, and a
            // worker that waited its turn takes their load off it from then on.
            conn = tokio::time::timeout(ACQUIRE, pool.acquire())
                .await
                .ok()
                .and_then(Result::ok)
                .map(|c| (c, tokio::time::Instant::now()));
        }
        let answers = match conn.as_mut() {
            Some((c, _)) => match tokio::time::timeout(limit, answer(c, &batch)).await {
                Ok(answers) => answers,
                Err(_) => {
                    // No answer in time (a database or network that stopped answering): the
                    // connection is closed rather than given back with a statement in flight.
                    c.close_on_drop();
                    None
                }
            },
            None => None,
        };
        // A failed statement may have left the connection unusable: give it back (the pool
        // tests it on return and closes it if so) and take another next time.
        if answers.is_none() {
            conn = None;
        }
        if let Some(answers) = &answers {
            counts.statements.fetch_add(1, Ordering::Relaxed);
            let answered = answers.iter().filter(|a| a.is_some()).count();
            counts.answered.fetch_add(answered as u64, Ordering::Relaxed);
        }
        let mut answers = answers.unwrap_or_default();
        answers.resize_with(batch.len(), || None);
        for (check, record) in batch.into_iter().zip(answers) {
            let _ = check.reply.send(record);
        }
    }
}

/// The checks' records in order, `None` for one whose row did not decode; `None` overall when
/// the statement failed.
async fn answer(conn: &mut PoolConnection<Postgres>, batch: &[Check]) -> Option<Vec<Option<SessionRecord>>> {
    let ids: Vec<&str> = batch.iter().map(|c| c.user_id.as_str()).collect();
    let jtis: Vec<&str> = batch.iter().map(|c| c.jti.as_str()).collect();
    let rows = sqlx::query(&BATCH_SQL)
        .bind(&ids)
        .bind(&jtis)
        .fetch_all(&mut **conn)
        .await
        .ok()?;
    let mut records: Vec<Option<SessionRecord>> = Vec::with_capacity(batch.len());
    records.resize_with(batch.len(), || None);
    for row in &rows {
        let Some(slot) = row
            .try_get::<i64, _>("n")
            .ok()
            .and_then(|n| usize::try_from(n - 1).ok())
            .and_then(|i| records.get_mut(i))
        else {
            continue;
        };
        *slot = super::postgres::session_from(row).ok();
    }
    Some(records)
}

/// The session check of every `(user id, jti)` pair, each row numbered by its pair's place.
static BATCH_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT checks.n, {}, EXISTS (SELECT 1 FROM token_blacklist WHERE token_blacklist.jti = checks.jti) AS revoked \
         FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS checks(user_id, jti, n) \
         LEFT JOIN users ON users.id = checks.user_id",
        super::postgres::USER_COLUMNS
            .split(", ")
            .map(|c| format!("users.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
});
