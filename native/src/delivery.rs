//! Delivery backends: the console mailer and the null SMS sender (docs/wire.md, "Decision 5", shared with the
//! edge), the provider backends behind their features, and the tokio spawner that the core's
//! `Deferred` wrapper runs sends on, off the request path.

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "smtp")]
pub mod smtp;
#[cfg(feature = "twilio")]
pub mod twilio;

use std::sync::{Arc, RwLock};

use async_trait::async_trait;
pub use regstack_core::console::{ConsoleMailer, NullSms};
use regstack_core::ports::{DeliveryError, EmailMessage, Job, Mailer, SmsMessage, SmsSender, Spawner};
use tokio::sync::Semaphore;

/// The mailer `email.backend` names, as `regstack serve` and `regstack doctor` build it.
pub async fn mailer_from_config(config: &regstack_core::config::Config) -> Result<Arc<dyn Mailer>, String> {
    use regstack_core::config::EmailBackend;
    Ok(match config.email.backend {
        EmailBackend::Console => Arc::new(ConsoleMailer {
            log_bodies: config.email.log_bodies,
        }),
        #[cfg(feature = "smtp")]
        EmailBackend::Smtp => Arc::new(smtp::SmtpMailer::from_config(&config.email)?),
        #[cfg(feature = "ses")]
        EmailBackend::Ses => Arc::new(aws::SesMailer::from_config(&config.email).await?),
        #[allow(unreachable_patterns)]
        other => {
            return Err(format!(
                "email.backend = \"{}\" is not available in this build",
                other.as_str()
            ))
        }
    })
}

/// One line on the email backend for `regstack doctor`, without secrets.
pub fn describe_email(config: &regstack_core::config::Config) -> String {
    use regstack_core::config::EmailBackend;
    let e = &config.email;
    match e.backend {
        EmailBackend::Console if e.log_bodies => "console, bodies logged (development only)".to_string(),
        EmailBackend::Console => "console (messages are logged without their bodies, not sent)".to_string(),
        EmailBackend::Smtp => format!(
            "smtp via {}:{}, from {}",
            e.smtp_host.as_deref().unwrap_or("(no host)"),
            e.smtp_port,
            e.from_address
        ),
        EmailBackend::Ses => format!("ses in {}, from {}", e.ses_region, e.from_address),
        other => format!("{}, from {}", other.as_str(), e.from_address),
    }
}

/// A mailer or SMS sender that the host can replace on a running instance
/// (`RegStack::set_mailer`, `RegStack::set_sms_sender`); each send uses whichever is current.
pub struct Swappable<T: ?Sized>(RwLock<Arc<T>>);

impl<T: ?Sized> Swappable<T> {
    /// Starts with `inner`.
    pub fn new(inner: Arc<T>) -> Self {
        Self(RwLock::new(inner))
    }

    /// Replaces the current one.
    pub fn replace(&self, inner: Arc<T>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = inner;
    }

    fn current(&self) -> Arc<T> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[async_trait]
impl Mailer for Swappable<dyn Mailer> {
    async fn send(&self, message: &EmailMessage) -> Result<(), DeliveryError> {
        self.current().send(message).await
    }
}

#[async_trait]
impl SmsSender for Swappable<dyn SmsSender> {
    async fn send(&self, message: &SmsMessage) -> Result<(), DeliveryError> {
        self.current().send(message).await
    }
}

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
