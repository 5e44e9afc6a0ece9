//! Delivery backends: the console mailer and the null SMS sender (Decision 5, shared with the
//! edge), the provider backends behind their features, and the background wrapper that takes
//! sending off the request path.

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "smtp")]
pub mod smtp;
#[cfg(feature = "twilio")]
pub mod twilio;

use std::sync::Arc;

use async_trait::async_trait;
pub use regstack_core::console::{ConsoleMailer, NullSms};
use regstack_core::ports::{DeliveryError, EmailMessage, Mailer, SmsMessage, SmsSender};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Sends on a background task, so a route answers in the same time whether or not it sent
/// anything (anti-enumeration), and a slow provider never holds a request. Failures are logged
/// for the operator without the message body. At most `limit` messages wait or are in flight
/// (`delivery_queue_limit`); past that a message is dropped and logged, so a slow provider
/// under a flood cannot grow memory without end.
pub struct Background<M: ?Sized> {
    inner: Arc<M>,
    slots: Arc<Semaphore>,
}

impl<M: ?Sized> Background<M> {
    /// Wraps `inner` with a queue of `limit` messages.
    pub fn new(inner: Arc<M>, limit: usize) -> Self {
        Self {
            inner,
            slots: Arc::new(Semaphore::new(limit.max(1))),
        }
    }

    fn slot(&self, what: &'static str) -> Result<OwnedSemaphorePermit, DeliveryError> {
        self.slots.clone().try_acquire_owned().map_err(|_| {
            tracing::error!(target: "regstack.delivery", kind = what, "send queue full (delivery_queue_limit); message dropped");
            DeliveryError("send queue full".into())
        })
    }
}

#[async_trait]
impl Mailer for Background<dyn Mailer> {
    async fn send(&self, m: &EmailMessage) -> Result<(), DeliveryError> {
        let slot = self.slot("email")?;
        let inner = self.inner.clone();
        let m = m.clone();
        tokio::spawn(async move {
            let _slot = slot;
            if let Err(e) = inner.send(&m).await {
                tracing::error!(target: "regstack.email", to = %m.to, subject = %m.subject, error = %e, "email delivery failed");
            }
        });
        Ok(())
    }
}

#[async_trait]
impl SmsSender for Background<dyn SmsSender> {
    async fn send(&self, m: &SmsMessage) -> Result<(), DeliveryError> {
        let slot = self.slot("sms")?;
        let inner = self.inner.clone();
        let m = m.clone();
        tokio::spawn(async move {
            let _slot = slot;
            if let Err(e) = inner.send(&m).await {
                tracing::error!(target: "regstack.sms", to = %m.to, error = %e, "sms delivery failed");
            }
        });
        Ok(())
    }
}
