//! Delivery backends: the console mailer and the null SMS sender (docs/wire.md, "Decision 5", shared with the
//! edge), the provider backends behind their features, and the tokio spawner that the core's
//! `Deferred` wrapper runs sends on, off the request path.

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "smtp")]
pub mod smtp;
#[cfg(feature = "twilio")]
pub mod twilio;

use std::sync::Arc;

pub use regstack_core::console::{ConsoleMailer, NullSms};
use regstack_core::ports::{Job, Spawner};
use tokio::sync::Semaphore;

/// Runs sends as tokio tasks, at most `limit` waiting or in flight (`delivery_queue_limit`),
/// so a slow provider under a flood cannot grow memory without end.
pub struct TokioSpawner {
    slots: Arc<Semaphore>,
}

impl TokioSpawner {
    /// A spawner with room for `limit` sends.
    pub fn new(limit: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(limit.max(1))),
        }
    }
}

impl Spawner for TokioSpawner {
    fn spawn(&self, job: Job) -> bool {
        let Ok(slot) = self.slots.clone().try_acquire_owned() else {
            return false;
        };
        tokio::spawn(async move {
            let _slot = slot;
            job.await;
        });
        true
    }
}
