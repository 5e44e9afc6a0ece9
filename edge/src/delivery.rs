//! Delivery at the edge: the console and null backends (through `console.log`), and `relay`,
//! which POSTs each rendered message, signed, to a `regstack serve` that sends it with its
//! own SMTP, SES, SNS or Twilio backend (see `regstack_core::relay`).
//!
//! Sending never holds the response: the core's `Deferred` hands each send to [`AfterResponse`],
//! which queues it, and the fetch handler passes the queue to `waitUntil` once the response is
//! ready, so a route answers in the same time whether or not it sent anything.

use std::cell::RefCell;
use std::sync::Arc;

use async_trait::async_trait;
use regstack_core::ports::{Clock, DeliveryError, EmailMessage, Job, Mailer, Random, SmsMessage, SmsSender, Spawner};
use regstack_core::relay::{self, Relayed};
use worker::wasm_bindgen::JsValue;
use worker::{Headers, Method, Request, RequestInit};

use crate::js::js;

thread_local! {
    static QUEUE: RefCell<Vec<Job>> = const { RefCell::new(Vec::new()) };
}

/// The most sends one isolate holds between a route queueing them and the response handing
/// them to `waitUntil`; past it the core's `Deferred` drops a message and logs it. (A route
/// queues at most two messages plus a sign-in's alerts, at most `push_subscription_limit`,
/// itself at most 100, so this only guards against a bug; once handed over, sends run under
/// the platform's own limits for `waitUntil`. `delivery_queue_limit` is the native bound.)
const QUEUE_LIMIT: usize = 1000;

/// Takes every queued send; the fetch handler passes them to `waitUntil`. The queue belongs to
/// the isolate, not the request: when requests overlap, whichever finishes first hands over
/// the other's sends too, and its `waitUntil` keeps them running just the same.
pub fn take_queued() -> Vec<Job> {
    QUEUE.with(|q| std::mem::take(&mut *q.borrow_mut()))
}

/// The edge's [`Spawner`]: sends wait in the isolate's queue until the response is ready, and
/// then run under `waitUntil`.
pub struct AfterResponse;

impl Spawner for AfterResponse {
    fn spawn(&self, job: Job) -> bool {
        QUEUE.with(|q| {
            let mut q = q.borrow_mut();
            if q.len() >= QUEUE_LIMIT {
                return false;
            }
            q.push(job);
            true
        })
    }
}

/// Sends emails and SMS through a `regstack serve` relay endpoint.
pub struct Relay {
    url: String,
    secret: String,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
}

impl Relay {
    /// A relay to `url` (the server's `…/relay` endpoint) signing with `secret`.
    pub fn new(url: String, secret: String, clock: Arc<dyn Clock>, random: Arc<dyn Random>) -> Self {
        Self {
            url,
            secret,
            clock,
            random,
        }
    }

    async fn post(&self, message: Relayed) -> Result<(), DeliveryError> {
        let body = serde_json::to_vec(&message).map_err(|e| DeliveryError(format!("relay: {e}")))?;
        let mut nonce = [0u8; 16];
        self.random.fill(&mut nonce);
        let nonce: String = regstack_core::hex::encode(&nonce);
        let timestamp = self.clock.now().timestamp();
        let signature = relay::seal(&self.secret, timestamp, &nonce, &body);
        let failed = |e: worker::Error| DeliveryError(format!("relay: {e}"));
        let headers = Headers::new();
        for (name, value) in [
            ("content-type", "application/json"),
            (relay::TIMESTAMP, &timestamp.to_string()),
            (relay::NONCE, &nonce),
            (relay::SIGNATURE, &signature),
        ] {
            headers.set(name, value).map_err(failed)?;
        }
        let mut init = RequestInit::new();
        // A redirect is not followed: the signed message (links, codes) goes to the
        // configured URL or nowhere, and a 3xx answer is a failed send like any non-2xx.
        // (Workers' fetch takes "follow" or "manual"; it has no "error" mode.)
        init.with_method(Method::Post)
            .with_redirect(worker::RequestRedirect::Manual)
            .with_headers(headers)
            .with_body(Some(JsValue::from(worker::js_sys::Uint8Array::from(&body[..]))));
        let req = Request::new_with_init(&self.url, &init).map_err(failed)?;
        js(async move {
            let resp = worker::Fetch::Request(req).send().await.map_err(failed)?;
            match resp.status_code() {
                200..=299 => Ok(()),
                status => Err(DeliveryError(format!("relay answered {status}"))),
            }
        })
        .await
    }
}

#[async_trait]
impl Mailer for Relay {
    async fn send(&self, m: &EmailMessage) -> Result<(), DeliveryError> {
        self.post(Relayed::from(m)).await
    }
}

#[async_trait]
impl SmsSender for Relay {
    async fn send(&self, m: &SmsMessage) -> Result<(), DeliveryError> {
        self.post(Relayed::from(m)).await
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use regstack_core::ports::Spawner;

    use super::{take_queued, AfterResponse, QUEUE_LIMIT};

    #[test]
    fn sends_wait_for_the_response_and_the_queue_is_bounded() {
        assert!(take_queued().is_empty());
        for _ in 0..QUEUE_LIMIT {
            assert!(AfterResponse.spawn(Box::pin(async {})));
        }
        // Full: refused (the core's Deferred logs and drops it), not grown.
        assert!(!AfterResponse.spawn(Box::pin(async {})));
        assert_eq!(take_queued().len(), QUEUE_LIMIT);
        // Handing over empties it, so the next request queues again.
        assert!(take_queued().is_empty());
        assert!(AfterResponse.spawn(Box::pin(async {})));
        assert_eq!(take_queued().len(), 1);
    }
}
