//! Signed outbound webhooks, natively (docs/events.md): `crate::net` for the POSTs (rustls,
//! never following a redirect), tokio for the waits, and a bounded [`Backlog`] drained by a few
//! worker tasks, so a receiver that is slow or down never holds a request and loses nothing
//! while the backlog has room.
//!
//! Origins written in Rust check deliveries with [`verify_request`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use regstack_core::ports::Timer;
use regstack_core::webhook::{deliver, report, Backlog, Delivery, Network, Outbox, Target};
use tokio::sync::Notify;

pub use regstack_core::webhook::{
    verify, VerifyError, DEFAULT_TOLERANCE_SECONDS, DELIVERY, EVENT, SIGNATURE, TIMESTAMP,
};

/// Checks a delivery as an axum handler received it: the timestamp and signature headers,
/// the raw body, against `secret` and this machine's clock, with
/// [`DEFAULT_TOLERANCE_SECONDS`]. Read the body as bytes: re-serialised JSON would not match.
pub fn verify_request(secret: &str, headers: &axum::http::HeaderMap, body: &[u8]) -> Result<(), VerifyError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    verify(
        secret,
        header(TIMESTAMP),
        header(SIGNATURE),
        body,
        now,
        DEFAULT_TOLERANCE_SECONDS,
    )
}

/// Waiting with tokio.
pub struct TokioTimer;

#[async_trait]
impl Timer for TokioTimer {
    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

/// The native [`Outbox`]: deliveries wait in a [`Backlog`] (the oldest dropped, and logged,
/// when it is full) and `workers` tasks send them, each retrying with backoff.
pub struct BacklogOutbox {
    backlog: Arc<Backlog>,
    wake: Arc<Notify>,
    closed: Arc<std::sync::atomic::AtomicBool>,
}

impl BacklogOutbox {
    /// Starts `workers` sender tasks on the current tokio runtime.
    pub fn start(target: Target, net: Network, limit: usize, workers: usize) -> Self {
        let backlog = Arc::new(Backlog::new(limit));
        let wake = Arc::new(Notify::new());
        let closed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        for _ in 0..workers.max(1) {
            let (backlog, wake, closed) = (backlog.clone(), wake.clone(), closed.clone());
            let (target, net) = (target.clone(), net.clone());
            tokio::spawn(async move {
                loop {
                    // Interest is registered before the checks, so a push or a close that
                    // lands between them still wakes this worker.
                    let notified = wake.notified();
                    tokio::pin!(notified);
                    notified.as_mut().enable();
                    while let Some(delivery) = backlog.pop() {
                        let outcome = deliver(&target, &net, &delivery).await;
                        report(&delivery, outcome);
                    }
                    if closed.load(std::sync::atomic::Ordering::Acquire) {
                        return;
                    }
                    notified.await;
                }
            });
        }
        Self { backlog, wake, closed }
    }
}

impl Drop for BacklogOutbox {
    /// The instance is gone: the workers send what is waiting, then stop.
    fn drop(&mut self) {
        self.closed.store(true, std::sync::atomic::Ordering::Release);
        self.wake.notify_waiters();
    }
}

impl Outbox for BacklogOutbox {
    fn push(&self, delivery: Delivery) {
        if let Some(dropped) = self.backlog.push(delivery) {
            tracing::error!(
                target: "regstack.webhook",
                event = dropped.event,
                delivery = %dropped.id,
                "webhook backlog full; dropped the oldest event"
            );
        }
        self.wake.notify_one();
    }
}
