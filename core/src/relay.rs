//! Relayed delivery: the edge worker hands a rendered email or SMS to a `regstack serve` that
//! sends it with its own backends (SMTP, SES, SNS, Twilio), since those cannot run in a Worker.
//!
//! The worker POSTs the message as JSON with a timestamp, a random nonce and an HMAC-SHA256
//! over all three made with `relay_secret`. The server checks the signature in constant time,
//! refuses a timestamp more than [`MAX_AGE_SECONDS`] from its clock, and records each nonce as
//! used (in the revocation store, until it could no longer pass the clock check), so a
//! captured request cannot be replayed.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::ports::{EmailMessage, SmsMessage};

/// Unix seconds when the worker signed.
pub const TIMESTAMP: &str = "x-regstack-relay-timestamp";
/// A random single-use value.
pub const NONCE: &str = "x-regstack-relay-nonce";
/// Lower-case hex HMAC-SHA256 of timestamp, nonce and body.
pub const SIGNATURE: &str = "x-regstack-relay-signature";
/// How far a relay request's timestamp may be from the server's clock.
pub const MAX_AGE_SECONDS: i64 = 300;

/// What a relay request carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Relayed {
    /// An email, rendered.
    Email {
        /// Recipient.
        to: String,
        /// The From header.
        from: String,
        /// Subject line.
        subject: String,
        /// Plain-text part.
        text: String,
        /// HTML part.
        html: String,
    },
    /// An SMS.
    Sms {
        /// E.164 recipient.
        to: String,
        /// Text.
        body: String,
    },
}

impl From<&EmailMessage> for Relayed {
    fn from(m: &EmailMessage) -> Self {
        Relayed::Email {
            to: m.to.clone(),
            from: m.from.clone(),
            subject: m.subject.clone(),
            text: m.text.clone(),
            html: m.html.clone(),
        }
    }
}

impl From<&SmsMessage> for Relayed {
    fn from(m: &SmsMessage) -> Self {
        Relayed::Sms {
            to: m.to.clone(),
            body: m.body.clone(),
        }
    }
}

/// Why a relay request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RelayError {
    /// A header is missing or does not parse, or the body is not a message.
    #[error("malformed relay request")]
    Malformed,
    /// The signature does not match.
    #[error("relay signature does not match")]
    BadSignature,
    /// The timestamp is too far from now.
    #[error("relay request is stale")]
    Stale,
    /// The nonce was used before.
    #[error("relay request was replayed")]
    Replayed,
}

fn mac(secret: &str, timestamp: i64, nonce: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    let timestamp = timestamp.to_string();
    for part in [
        "regstack-relay-v1".as_bytes(),
        timestamp.as_bytes(),
        nonce.as_bytes(),
        body,
    ] {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part);
    }
    mac
}

/// The shortest nonce accepted (the edge sends 32 hex digits).
pub const MIN_NONCE_LEN: usize = 16;
/// The longest nonce accepted: it is remembered as `relay:<nonce>` in the revocation store,
/// whose key column is 64 characters on Postgres.
pub const MAX_NONCE_LEN: usize = 58;

/// The signature header value for `body` sent at `timestamp` with `nonce`.
pub fn seal(secret: &str, timestamp: i64, nonce: &str, body: &[u8]) -> String {
    crate::hex::encode(&mac(secret, timestamp, nonce, body).finalize().into_bytes())
}

/// Checks signature and age (not the nonce: that needs the store) and parses the message.
pub fn open(
    secret: &str,
    timestamp: Option<&str>,
    nonce: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<Relayed, RelayError> {
    let (Some(timestamp), Some(nonce), Some(signature)) = (timestamp, nonce, signature) else {
        return Err(RelayError::Malformed);
    };
    let timestamp: i64 = timestamp.parse().map_err(|_| RelayError::Malformed)?;
    let signature = crate::hex::decode(signature).ok_or(RelayError::Malformed)?;
    if !(MIN_NONCE_LEN..=MAX_NONCE_LEN).contains(&nonce.len()) {
        return Err(RelayError::Malformed);
    }
    mac(secret, timestamp, nonce, body)
        .verify_slice(&signature)
        .map_err(|_| RelayError::BadSignature)?;
    if (now - timestamp).abs() > MAX_AGE_SECONDS {
        return Err(RelayError::Stale);
    }
    serde_json::from_slice(body).map_err(|_| RelayError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "relay-secret-0123456789-abcdefghijklmnop";

    fn sms() -> Vec<u8> {
        serde_json::to_vec(&Relayed::Sms {
            to: "+15555550123".into(),
            body: "code: 123456".into(),
        })
        .unwrap()
    }

    #[test]
    fn a_sealed_request_opens_within_the_window_only() {
        let body = sms();
        let nonce = "0123456789abcdef0123";
        let sig = seal(SECRET, 1_000, nonce, &body);
        let open_at = |now| open(SECRET, Some("1000"), Some(nonce), Some(&sig), &body, now);
        assert!(matches!(open_at(1_000), Ok(Relayed::Sms { .. })));
        assert!(open_at(1_300).is_ok());
        assert_eq!(open_at(1_301), Err(RelayError::Stale));
        assert_eq!(open_at(699), Err(RelayError::Stale));
    }

    #[test]
    fn tampering_and_missing_parts_are_refused() {
        let body = sms();
        let nonce = "0123456789abcdef0123";
        let sig = seal(SECRET, 1_000, nonce, &body);
        let mut other = body.clone();
        other[10] ^= 1;
        assert_eq!(
            open(SECRET, Some("1000"), Some(nonce), Some(&sig), &other, 1_000),
            Err(RelayError::BadSignature)
        );
        assert_eq!(
            open(SECRET, Some("1001"), Some(nonce), Some(&sig), &body, 1_000),
            Err(RelayError::BadSignature)
        );
        assert_eq!(
            open(
                SECRET,
                Some("1000"),
                Some("0123456789abcdef0124"),
                Some(&sig),
                &body,
                1_000
            ),
            Err(RelayError::BadSignature)
        );
        assert_eq!(
            open(SECRET, None, Some(nonce), Some(&sig), &body, 1_000),
            Err(RelayError::Malformed)
        );
        assert_eq!(
            open(SECRET, Some("1000"), Some(nonce), None, &body, 1_000),
            Err(RelayError::Malformed)
        );
    }

    #[test]
    fn a_nonce_must_fit_the_revocation_store() {
        let body = sms();
        for (len, fits) in [(15, false), (16, true), (58, true), (59, false)] {
            let nonce = "n".repeat(len);
            let sig = seal(SECRET, 1_000, &nonce, &body);
            let opened = open(SECRET, Some("1000"), Some(&nonce), Some(&sig), &body, 1_000);
            assert_eq!(opened.is_ok(), fits, "{len}: {opened:?}");
            assert!(fits || opened == Err(RelayError::Malformed));
            assert!(!fits || format!("relay:{nonce}").len() <= 64);
        }
    }
}
