//! The development backends of docs/wire.md, "Decision 5", for both runtimes: email and SMS written to the
//! log (stdout natively, `console.log` at the edge) instead of being sent.

use async_trait::async_trait;

use crate::ports::{DeliveryError, EmailMessage, Mailer, SmsMessage, SmsSender};

/// Prints emails to the log. With `log_bodies` the text body follows at INFO, each link alone
/// on its own line, which is what `regstack validate` and operators scrape.
pub struct ConsoleMailer {
    /// Print the body (it holds one-time tokens: development and probing only).
    pub log_bodies: bool,
}

#[async_trait]
impl Mailer for ConsoleMailer {
    async fn send(&self, m: &EmailMessage) -> Result<(), DeliveryError> {
        tracing::info!(
            target: "regstack.email.console",
            "[regstack/console-email] To: {} | From: {} | Subject: {}",
            m.to,
            m.from,
            m.subject
        );
        if self.log_bodies {
            // The body names its recipient too: with sends running side by side, another
            // email's `To:` line can come between this one's and its body.
            tracing::info!(target: "regstack.email.console", "[regstack/console-email] text body (to {}):\n{}", m.to, m.text);
        } else {
            tracing::info!(target: "regstack.email.console", "[regstack/console-email] (body suppressed; set email.log_bodies=true to print it)");
        }
        Ok(())
    }
}

/// Prints SMS to the log instead of sending them.
pub struct NullSms {
    /// The configured sender, shown as `(unset)` when absent.
    pub from_number: Option<String>,
    /// Print the body (it holds the code).
    pub log_bodies: bool,
}

#[async_trait]
impl SmsSender for NullSms {
    async fn send(&self, m: &SmsMessage) -> Result<(), DeliveryError> {
        let from = self.from_number.as_deref().unwrap_or("(unset)");
        if self.log_bodies {
            tracing::info!(target: "regstack.sms.null", "[regstack/null-sms] To: {} | From: {} | Body: {}", m.to, from, m.body);
        } else {
            tracing::info!(target: "regstack.sms.null", "[regstack/null-sms] To: {} | From: {} | (body suppressed)", m.to, from);
        }
        Ok(())
    }
}
