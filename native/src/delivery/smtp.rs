//! Email over SMTP with lettre.
//!
//! `smtp_starttls = true` (the default) requires STARTTLS on `smtp_port` (587). With it off,
//! port 465 means implicit TLS and any other port a plain connection, for local relays.
//! Transient failures (4xx replies, dropped connections) are retried with backoff; permanent
//! ones are reported at once. `smtp_ca_file` adds a private CA to the trusted roots.

use std::time::Duration;

use async_trait::async_trait;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use regstack_core::config::EmailConfig;
use regstack_core::ports::{DeliveryError, EmailMessage, Mailer};

/// Sends through one SMTP relay, pooling connections.
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    retries: u32,
}

impl SmtpMailer {
    /// A mailer for the `[email]` settings; fails on a missing host or a bad TLS setup.
    pub fn from_config(email: &EmailConfig) -> Result<Self, String> {
        let host = email
            .smtp_host
            .as_deref()
            .filter(|h| !h.is_empty())
            .ok_or("email.smtp_host is required for the smtp backend")?;
        let tls = || -> Result<TlsParameters, String> {
            let mut params = TlsParameters::builder(host.to_string());
            if let Some(path) = email.smtp_ca_file.as_deref().filter(|p| !p.is_empty()) {
                let pem = std::fs::read(path).map_err(|e| format!("email.smtp_ca_file {path}: {e}"))?;
                let ca = Certificate::from_pem(&pem).map_err(|e| format!("email.smtp_ca_file {path}: {e}"))?;
                params = params.add_root_certificate(ca);
            }
            params.build_rustls().map_err(|e| format!("smtp: {e}"))
        };
        let builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host);
        let builder = if email.smtp_starttls {
            builder.tls(Tls::Required(tls()?))
        } else if email.smtp_port == 465 {
            builder.tls(Tls::Wrapper(tls()?))
        } else {
            builder
        };
        let mut builder = builder.port(email.smtp_port).timeout(Some(Duration::from_secs(15)));
        if let Some(user) = email.smtp_username.as_deref().filter(|u| !u.is_empty()) {
            builder = builder.credentials(Credentials::new(
                user.to_string(),
                email.smtp_password.clone().unwrap_or_default(),
            ));
        }
        Ok(Self {
            transport: builder.build(),
            retries: 3,
        })
    }
}

fn mailbox(s: &str, what: &str) -> Result<Mailbox, DeliveryError> {
    s.parse()
        .map_err(|e| DeliveryError(format!("invalid {what} address: {e}")))
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, m: &EmailMessage) -> Result<(), DeliveryError> {
        let message = Message::builder()
            .from(mailbox(&m.from, "from")?)
            .to(mailbox(&m.to, "to")?)
            .subject(m.subject.clone())
            .multipart(MultiPart::alternative_plain_html(m.text.clone(), m.html.clone()))
            .map_err(|e| DeliveryError(format!("cannot build the message: {e}")))?;
        let mut delay = Duration::from_millis(500);
        for attempt in 1..=self.retries {
            match self.transport.send(message.clone()).await {
                Ok(_) => return Ok(()),
                Err(e) if attempt < self.retries && (e.is_transient() || e.is_timeout() || e.is_client()) => {
                    tracing::warn!(target: "regstack.email.smtp", attempt, error = %e, "smtp send failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                Err(e) => return Err(DeliveryError(format!("smtp: {e}"))),
            }
        }
        Err(DeliveryError("smtp: retries exhausted".into()))
    }
}
