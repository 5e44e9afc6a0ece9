//! `POST /relay`: messages an edge worker hands over for sending (see `crate::relay`).

use crate::engine::Engine;
use crate::ports::{EmailMessage, SmsMessage};
use crate::relay::{self, RelayError, Relayed};
use crate::time::plus_seconds;

use super::{FlowError, FlowResult};

fn refused(reason: &dyn std::fmt::Display) -> FlowError {
    tracing::warn!(target: "regstack.relay", reason = %reason, "refused a relay request");
    FlowError::RelayRefused
}

/// Verifies a relay request (signature, age, single-use nonce) and sends what it carries with
/// this instance's own backend. A delivery failure is logged for the operator, as for
/// messages this instance renders itself.
pub async fn deliver(
    engine: &Engine,
    timestamp: Option<&str>,
    nonce: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
) -> FlowResult<()> {
    let secret = engine
        .config
        .relay_secret
        .as_deref()
        .ok_or_else(|| refused(&"relay_secret is not set"))?;
    let now = engine.now();
    let message = relay::open(secret, timestamp, nonce, signature, body, now.timestamp()).map_err(|e| refused(&e))?;
    // The nonce is remembered until its timestamp could no longer pass the age check.
    let nonce = format!("relay:{}", nonce.unwrap_or_default());
    let expires = plus_seconds(now, 2 * relay::MAX_AGE_SECONDS);
    if !engine.ports.revocations.revoke(&nonce, expires).await? {
        return Err(refused(&RelayError::Replayed));
    }
    let sent = match message {
        Relayed::Email {
            to,
            from: _,
            subject,
            text,
            html,
        } => {
            // The sender is this instance's own, whatever the request says: a leaked relay
            // secret must not turn it into a mail server for any From address.
            let m = EmailMessage {
                to,
                from: engine.config.email_from(),
                subject,
                text,
                html,
            };
            engine.ports.mailer.send(&m).await.map_err(|e| (m.to, e))
        }
        Relayed::Sms { to, body } => {
            let m = SmsMessage { to, body };
            engine.ports.sms.send(&m).await.map_err(|e| (m.to, e))
        }
    };
    if let Err((to, e)) = sent {
        tracing::error!(target: "regstack.relay", to = %to, error = %e, "relayed delivery failed");
    }
    Ok(())
}
