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

/// Sends on a background task, so a route answers in the same time whether or not it sent
/// anything (anti-enumeration), and a slow provider never holds a request. Failures are logged
/// for the operator without the message body.
pub struct Background<M: ?Sized>(pub Arc<M>);

#[async_trait]
impl Mailer for Background<dyn Mailer> {
    async fn send(&self, m: &EmailMessage) -> Result<(), DeliveryError> {
        let inner = self.0.clone();
        let m = m.clone();
        tokio::spawn(async move {
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
        let inner = self.0.clone();
        let m = m.clone();
        tokio::spawn(async move {
            if let Err(e) = inner.send(&m).await {
                tracing::error!(target: "regstack.sms", to = %m.to, error = %e, "sms delivery failed");
            }
        });
        Ok(())
    }
}
