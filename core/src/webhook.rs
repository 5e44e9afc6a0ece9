//! Signed outbound webhooks (docs/events.md): every event, as JSON, POSTed to `webhook_url`.
//!
//! The edge runs no host code, so this is how events leave it; natively it sits beside the
//! in-process hooks. Each delivery carries a timestamp and an HMAC-SHA256 over
//! `"{timestamp}.{body}"` made with `webhook_secret`; [`verify`] is the receiver's check
//! (constant-time, with a freshness window). A delivery that fails for a reason worth
//! retrying (a network error, a timeout, 408, 425, 429 or 5xx) is retried with backoff under
//! the same delivery id, so a receiver can drop duplicates. The id and the event's name are in
//! the signed body; the headers that repeat them are a convenience, not to be trusted. Redirects are never followed: a
//! redirect is the receiver's answer, not a new destination.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::Sha256;

use crate::events::Event;
use crate::ports::{Clock, EventSink, HttpClient, HttpMethod, OutboundRequest, Random, Spawner, Timer};
use crate::time::to_isoformat;

// Their own names: an origin that also takes forward-auth identity headers
// (`x-regstack-timestamp`, `x-regstack-signature`) must never confuse the two.

/// Unix seconds when the delivery was signed (each attempt signs afresh).
pub const TIMESTAMP: &str = "x-regstack-webhook-timestamp";
/// `v1=` and the lower-case hex HMAC-SHA256 of `"{timestamp}.{body}"`.
pub const SIGNATURE: &str = "x-regstack-webhook-signature";
/// The event's name (a copy of the body's `event`, which is the signed one).
pub const EVENT: &str = "x-regstack-webhook-event";
/// The delivery's id, the same on every attempt (a copy of the body's `id`, which is the
/// signed one).
pub const DELIVERY: &str = "x-regstack-webhook-id";
/// How far a delivery's timestamp may be from the receiver's clock by default.
pub const DEFAULT_TOLERANCE_SECONDS: i64 = 300;

/// The signature header's value for `body` signed at `timestamp` (Unix seconds).
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    format!(
        "v1={}",
        crate::hex::encode(&mac(secret, timestamp, body).finalize().into_bytes())
    )
}

fn mac(secret: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Why a delivery was refused by [`verify`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The timestamp or signature header is missing or malformed.
    #[error("the webhook's timestamp or signature header is missing or malformed")]
    Malformed,
    /// The timestamp is further from now than the tolerance.
    #[error("the webhook's timestamp is outside the tolerance")]
    Stale,
    /// No signature matches.
    #[error("the webhook's signature does not match")]
    BadSignature,
}

/// A receiver's check of one delivery: the two header values as received, the raw body, and
/// the receiver's clock (Unix seconds). Compares in constant time. Several `v1=` values,
/// comma-separated, are accepted while a sender rotates secrets.
pub fn verify(
    secret: &str,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
    tolerance_seconds: i64,
) -> Result<(), VerifyError> {
    let ts: i64 = timestamp
        .and_then(|t| t.trim().parse().ok())
        .ok_or(VerifyError::Malformed)?;
    let signature = signature.ok_or(VerifyError::Malformed)?;
    // abs_diff: the header is the sender's word, and any i64 must not overflow.
    if now.abs_diff(ts) > tolerance_seconds.max(0) as u64 {
        return Err(VerifyError::Stale);
    }
    let mut any = false;
    // A few values while a secret rotates; more is not a signature but a workload.
    for candidate in signature.split(',').map(str::trim).take(4) {
        let Some(bytes) = candidate
            .strip_prefix("v1=")
            .and_then(crate::hex::decode)
            .filter(|b| b.len() == 32)
        else {
            continue;
        };
        any = true;
        if mac(secret, ts, body).verify_slice(&bytes).is_ok() {
            return Ok(());
        }
    }
    Err(if any {
        VerifyError::BadSignature
    } else {
        VerifyError::Malformed
    })
}

/// The JSON of one delivery: `id`, `event`, `occurred_at` (ISO 8601, UTC) and `data` with the
/// event's arguments (docs/wire.md, "Events"); users as `UserPublic`. Links appear as
/// `url_without_token`; the live `url` only with `include_links`, since whoever can read the
/// receiver's logs could otherwise use the token.
pub fn payload(event: &Event, id: &str, occurred_at: crate::time::Timestamp, include_links: bool) -> Value {
    let mut data = Map::new();
    if let Some(user) = event.user() {
        data.insert("user".into(), user.public());
    }
    match event {
        Event::VerificationRequested { email, link } => {
            data.insert("email".into(), json!(email));
            insert_link(&mut data, link, include_links);
        }
        Event::PasswordResetRequested { link, .. } => insert_link(&mut data, link, include_links),
        Event::EmailChangeRequested { new_email, link, .. } => {
            data.insert("new_email".into(), json!(new_email));
            insert_link(&mut data, link, include_links);
        }
        Event::EmailChanged { previous_email, .. } => {
            data.insert("previous_email".into(), json!(previous_email));
        }
        Event::PhoneSetupStarted { phone, .. } => {
            data.insert("phone".into(), json!(phone));
        }
        Event::OAuthSigninStarted { provider, mode, .. } => {
            data.insert("provider".into(), json!(provider));
            data.insert("mode".into(), json!(mode.as_str()));
        }
        Event::OAuthSigninCompleted {
            provider,
            mode,
            was_new,
            mfa_required,
            ..
        } => {
            data.insert("provider".into(), json!(provider));
            data.insert("mode".into(), json!(mode.as_str()));
            data.insert("was_new".into(), json!(was_new));
            data.insert("mfa_required".into(), json!(mfa_required));
        }
        Event::OAuthAccountLinked { provider, .. } | Event::OAuthAccountUnlinked { provider, .. } => {
            data.insert("provider".into(), json!(provider));
        }
        _ => {}
    }
    json!({
        "id": id,
        "event": event.name(),
        "occurred_at": to_isoformat(occurred_at),
        "data": data,
    })
}

fn insert_link(data: &mut Map<String, Value>, link: &crate::events::Link, include_links: bool) {
    data.insert("url_without_token".into(), json!(link.url_without_token));
    if include_links {
        data.insert("url".into(), json!(link.url));
    }
}

/// One event on its way: its id (the same on every attempt), name and body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The delivery id.
    pub id: String,
    /// The event's name.
    pub event: &'static str,
    /// The JSON body, signed as it is.
    pub body: Vec<u8>,
}

/// How often and how patiently a delivery is tried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all, the first included.
    pub attempts: u32,
    /// The wait before the second try; each later wait doubles, up to `max_delay`.
    pub first_delay: Duration,
    /// The longest wait between tries.
    pub max_delay: Duration,
    /// How long one try may take.
    pub timeout: Duration,
}

impl RetryPolicy {
    /// Natively: 6 tries over about a minute (1, 2, 4, 8, 16 s between them), 10 s each.
    pub const NATIVE: RetryPolicy = RetryPolicy {
        attempts: 6,
        first_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(30),
        timeout: Duration::from_secs(10),
    };
    /// At the edge, inside `waitUntil`'s 30 s: 3 tries (1 and 2 s between them), 5 s each.
    pub const EDGE: RetryPolicy = RetryPolicy {
        attempts: 3,
        first_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(2),
        timeout: Duration::from_secs(5),
    };

    /// The wait before try `n` (0-based; none before the first).
    pub fn delay_before(&self, n: u32) -> Duration {
        if n == 0 {
            return Duration::ZERO;
        }
        let factor = 1u32.checked_shl(n - 1).unwrap_or(u32::MAX);
        self.first_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// Whether an answer is worth another try: the receiver is busy or broken, not refusing.
pub fn worth_retrying(status: u16) -> bool {
    matches!(status, 408 | 425 | 429) || (500..=599).contains(&status)
}

/// Where and how deliveries go.
#[derive(Clone)]
pub struct Target {
    /// `webhook_url`.
    pub url: String,
    /// `webhook_secret`.
    pub secret: String,
    /// `webhook_include_links`.
    pub include_links: bool,
    /// Tries and waits.
    pub policy: RetryPolicy,
}

impl Target {
    /// The target `config` names (`webhook_url` and `webhook_secret`), tried with `policy`;
    /// `None` when webhooks are off.
    pub fn from_config(config: &crate::config::Config, policy: RetryPolicy) -> Option<Self> {
        Some(Self {
            url: config.webhook_url.clone()?,
            secret: config.webhook_secret.clone()?,
            include_links: config.webhook_include_links,
            policy,
        })
    }
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("url", &self.url)
            .field("secret", &"[redacted]")
            .finish_non_exhaustive()
    }
}

/// What a runtime lends the sender: the network, waiting, and the clock.
#[derive(Clone)]
pub struct Network {
    /// Outbound HTTP (never following redirects).
    pub http: Arc<dyn HttpClient>,
    /// Waiting between tries.
    pub timer: Arc<dyn Timer>,
    /// The signing timestamp.
    pub clock: Arc<dyn Clock>,
}

/// Tries one delivery until it is accepted (any 2xx), refused for good (another status), or
/// out of tries. Answers the last status, or the last network error.
pub async fn deliver(target: &Target, net: &Network, delivery: &Delivery) -> Result<u16, String> {
    let mut last = Err("not tried".to_string());
    for n in 0..target.policy.attempts.max(1) {
        let wait = target.policy.delay_before(n);
        if !wait.is_zero() {
            net.timer.sleep(wait).await;
        }
        let timestamp = net.clock.now().timestamp();
        let request = OutboundRequest {
            method: HttpMethod::Post,
            url: target.url.clone(),
            headers: vec![
                ("content-type".into(), "application/json".into()),
                (TIMESTAMP.into(), timestamp.to_string()),
                (SIGNATURE.into(), signature(&target.secret, timestamp, &delivery.body)),
                (EVENT.into(), delivery.event.into()),
                (DELIVERY.into(), delivery.id.clone()),
            ],
            body: delivery.body.clone(),
            timeout: target.policy.timeout,
            max_response_bytes: 0,
        };
        match net.http.send(request).await.map(|r| r.status) {
            Ok(status) if (200..300).contains(&status) => return Ok(status),
            Ok(status) if !worth_retrying(status) => return Ok(status),
            Ok(status) => last = Ok(status),
            Err(e) => last = Err(e.0),
        }
    }
    last
}

/// Deliveries waiting for a sender, oldest first, at most `limit`: when full, the oldest is
/// dropped to make room (a receiver that is down loses nothing while there is room, and the
/// newest events are the ones worth keeping).
#[derive(Debug)]
pub struct Backlog {
    queue: Mutex<VecDeque<Delivery>>,
    limit: usize,
}

impl Backlog {
    /// An empty backlog holding at most `limit` deliveries.
    pub fn new(limit: usize) -> Self {
        Self {
            queue: Mutex::new(VecDeque::new()),
            limit: limit.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Delivery>> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds `d`; answers the delivery dropped to make room, if any.
    pub fn push(&self, d: Delivery) -> Option<Delivery> {
        let mut q = self.lock();
        let dropped = if q.len() >= self.limit { q.pop_front() } else { None };
        q.push_back(d);
        dropped
    }

    /// The oldest waiting delivery.
    pub fn pop(&self) -> Option<Delivery> {
        self.lock().pop_front()
    }

    /// How many are waiting.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Where a runtime keeps deliveries until it sends them: natively a [`Backlog`] drained by a
/// few worker tasks, at the edge the `waitUntil` queue of the request.
pub trait Outbox: Send + Sync {
    /// Takes `delivery` for sending (or logs that it had to drop one).
    fn push(&self, delivery: Delivery);
}

/// The [`EventSink`] that turns each event into a [`Delivery`] and hands it to an [`Outbox`].
/// Emitting never waits for the network.
pub struct WebhookSink {
    include_links: bool,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
    outbox: Arc<dyn Outbox>,
}

impl WebhookSink {
    /// Deliveries for `outbox`; `include_links` is `webhook_include_links`.
    pub fn new(include_links: bool, clock: Arc<dyn Clock>, random: Arc<dyn Random>, outbox: Arc<dyn Outbox>) -> Self {
        Self {
            include_links,
            clock,
            random,
            outbox,
        }
    }

    /// The delivery for `event`, with a fresh id.
    pub fn delivery(&self, event: &Event) -> Delivery {
        let mut id = [0u8; 16];
        self.random.fill(&mut id);
        let id = crate::hex::encode(&id);
        let body = payload(event, &id, self.clock.now(), self.include_links);
        Delivery {
            id,
            event: event.name(),
            body: serde_json::to_vec(&body).expect("a JSON value serialises"),
        }
    }
}

#[async_trait]
impl EventSink for WebhookSink {
    async fn emit(&self, event: &Event) {
        self.outbox.push(self.delivery(event));
    }
}

/// The edge's [`Outbox`]: each delivery becomes a job on the request's after-response queue
/// ([`Spawner`]) that runs [`deliver`] with [`RetryPolicy::EDGE`].
pub struct SpawnedOutbox {
    target: Target,
    net: Network,
    spawner: Arc<dyn Spawner>,
}

impl SpawnedOutbox {
    /// Deliveries to `target` over `net`, run by `spawner`.
    pub fn new(target: Target, net: Network, spawner: Arc<dyn Spawner>) -> Self {
        Self { target, net, spawner }
    }
}

impl Outbox for SpawnedOutbox {
    fn push(&self, delivery: Delivery) {
        let (target, net) = (self.target.clone(), self.net.clone());
        let (id, name) = (delivery.id.clone(), delivery.event);
        let job = Box::pin(async move {
            let outcome = deliver(&target, &net, &delivery).await;
            report(&delivery, outcome);
        });
        if !self.spawner.spawn(job) {
            tracing::error!(target: "regstack.webhook", event = name, delivery = %id, "webhook queue full; event dropped");
        }
    }
}

/// Logs how a delivery ended (never its body: it may name a user).
pub fn report(delivery: &Delivery, outcome: Result<u16, String>) {
    match outcome {
        Ok(status) if (200..300).contains(&status) => {
            tracing::debug!(target: "regstack.webhook", event = delivery.event, delivery = %delivery.id, status, "webhook delivered");
        }
        Ok(status) => {
            tracing::error!(target: "regstack.webhook", event = delivery.event, delivery = %delivery.id, status, "webhook refused or failed; giving up");
        }
        Err(error) => {
            tracing::error!(target: "regstack.webhook", event = delivery.event, delivery = %delivery.id, %error, "webhook undeliverable; giving up");
        }
    }
}

/// Whether `url` may receive webhooks: `https`, or `http` to this machine (`localhost`, a
/// loopback address), for development and tests. No userinfo (a client would turn it into
/// credentials), and no whitespace, control characters or backslashes, which URL parsers read
/// in ways a check like this one might not.
pub fn allowed_url(url: &str) -> bool {
    if url.chars().any(|c| c.is_whitespace() || c.is_control() || c == '\\') {
        return false;
    }
    let (https, rest) = match (url.strip_prefix("https://"), url.strip_prefix("http://")) {
        (Some(rest), _) => (true, rest),
        (None, Some(rest)) => (false, rest),
        (None, None) => return false,
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') {
        return false;
    }
    https || crate::config::is_loopback_authority(authority)
}

/// The [`EventSink`] that hands each event to several sinks in turn.
pub struct Fanout(pub Vec<Arc<dyn EventSink>>);

#[async_trait]
impl EventSink for Fanout {
    async fn emit(&self, event: &Event) {
        for sink in &self.0 {
            sink.emit(event).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "webhook-secret-0123456789-abcdefghijkl";

    #[regstack_macros::dual_test]
    fn signatures_verify_within_the_window_only() {
        let body = br#"{"event":"user_registered"}"#;
        let sig = signature(SECRET, 1_000, body);
        assert!(sig.starts_with("v1=") && sig.len() == 3 + 64);
        assert_eq!(verify(SECRET, Some("1000"), Some(&sig), body, 1_000, 300), Ok(()));
        assert_eq!(verify(SECRET, Some("1000"), Some(&sig), body, 1_300, 300), Ok(()));
        assert_eq!(
            verify(SECRET, Some("1000"), Some(&sig), body, 1_301, 300),
            Err(VerifyError::Stale)
        );
        assert_eq!(
            verify(SECRET, Some("1000"), Some(&sig), b"{}", 1_000, 300),
            Err(VerifyError::BadSignature)
        );
        assert_eq!(
            verify(
                "another-secret-entirely-0123456789",
                Some("1000"),
                Some(&sig),
                body,
                1_000,
                300
            ),
            Err(VerifyError::BadSignature)
        );
        assert_eq!(
            verify(SECRET, Some("1001"), Some(&sig), body, 1_000, 300),
            Err(VerifyError::BadSignature),
            "the timestamp is signed"
        );
        let rotated = format!("v1={}, {sig}", "00".repeat(32));
        assert_eq!(verify(SECRET, Some("1000"), Some(&rotated), body, 1_000, 300), Ok(()));
        assert_eq!(
            verify(SECRET, Some(&i64::MIN.to_string()), Some(&sig), body, 1_000, 300),
            Err(VerifyError::Stale),
            "no overflow on a hostile timestamp"
        );
        for (ts, s) in [
            (None, Some(sig.as_str())),
            (Some("x"), Some(sig.as_str())),
            (Some("1000"), None),
            (Some("1000"), Some("v2=ab")),
        ] {
            assert_eq!(
                verify(SECRET, ts, s, body, 1_000, 300),
                Err(VerifyError::Malformed),
                "{ts:?} {s:?}"
            );
        }
    }

    #[regstack_macros::dual_test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy::NATIVE;
        let waits: Vec<u64> = (0..p.attempts).map(|n| p.delay_before(n).as_secs()).collect();
        assert_eq!(waits, vec![0, 1, 2, 4, 8, 16]);
        assert_eq!(p.delay_before(40), p.max_delay);
        assert!(worth_retrying(500) && worth_retrying(429) && worth_retrying(408));
        assert!(!worth_retrying(400) && !worth_retrying(301) && !worth_retrying(404));
    }

    #[regstack_macros::dual_test]
    fn the_backlog_drops_the_oldest_when_full() {
        let b = Backlog::new(2);
        let d = |id: &str| Delivery {
            id: id.into(),
            event: "user_registered",
            body: Vec::new(),
        };
        assert_eq!(b.push(d("a")), None);
        assert_eq!(b.push(d("b")), None);
        assert_eq!(b.push(d("c")).map(|x| x.id), Some("a".to_string()));
        assert_eq!(
            (b.pop().map(|x| x.id), b.pop().map(|x| x.id), b.pop()),
            (Some("b".into()), Some("c".into()), None)
        );
    }

    #[regstack_macros::dual_test]
    fn only_https_or_loopback_receives() {
        for ok in [
            "https://hooks.example.com/regstack",
            "http://127.0.0.1:9000/hook",
            "http://localhost/hook",
            "http://[::1]:8080/x",
        ] {
            assert!(allowed_url(ok), "{ok}");
        }
        for bad in [
            "http://hooks.example.com/",
            "http://127.0.0.1.evil.example/",
            "http://localhost.evil.example/",
            "http://user@evil.example/",
            "ftp://127.0.0.1/",
            "https://",
            "127.0.0.1:9000",
        ] {
            assert!(!allowed_url(bad), "{bad}");
        }
        for sneaky in [
            "http://evil.example\\@localhost/",
            "http://evil.example@127.0.0.1/",
            "https://user:pass@hooks.example.com/",
            "http://127.0.0.1 /",
        ] {
            assert!(!allowed_url(sneaky), "{sneaky}");
        }
    }

    #[regstack_macros::dual_test]
    fn payloads_carry_the_arguments_and_hide_live_links() {
        let user = crate::records::User::new("u1".into(), "a@example.com".into(), None, crate::time::from_micros(0));
        let link = crate::events::Link {
            url: "https://x/verify?token=SECRET".into(),
            url_without_token: "https://x/verify?token=[REDACTED]".into(),
        };
        let e = Event::EmailChangeRequested {
            user,
            new_email: "b@example.com".into(),
            link,
        };
        let p = payload(&e, "d1", crate::time::from_micros(0), false);
        assert_eq!(p["event"], "email_change_requested");
        assert_eq!(p["data"]["user"]["email"], "a@example.com");
        assert_eq!(p["data"]["new_email"], "b@example.com");
        assert_eq!(p["data"]["url_without_token"], "https://x/verify?token=[REDACTED]");
        assert!(p["data"]["url"].is_null());
        assert!(!p.to_string().contains("SECRET"));
        let p = payload(&e, "d1", crate::time::from_micros(0), true);
        assert_eq!(p["data"]["url"], "https://x/verify?token=SECRET");
    }
}
