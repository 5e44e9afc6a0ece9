//! Sending off the request path: [`Deferred`] wraps any mailer or SMS sender and hands each send
//! to a [`Spawner`] instead of awaiting it, so a route answers in the same time whether or not
//! it sent anything (nothing in its timing tells whether an account exists), and a slow
//! provider never holds a request. A failed send is logged for the operator without the
//! message body; a full queue drops the message and says so.

use std::sync::Arc;

use async_trait::async_trait;

use crate::ports::{DeliveryError, EmailMessage, Mailer, SmsMessage, SmsSender, Spawner};

/// A mailer or SMS sender whose sends run on `spawner`.
pub struct Deferred<M: ?Sized> {
    inner: Arc<M>,
    spawner: Arc<dyn Spawner>,
}

impl<M: ?Sized> Deferred<M> {
    /// Wraps `inner`, running its sends on `spawner`.
    pub fn new(inner: Arc<M>, spawner: Arc<dyn Spawner>) -> Self {
        Self { inner, spawner }
    }
}

fn queue_full(kind: &'static str) -> DeliveryError {
    tracing::error!(target: "regstack.delivery", kind, "send queue full; message dropped");
    DeliveryError("send queue full".into())
}

#[async_trait]
impl Mailer for Deferred<dyn Mailer> {
    async fn send(&self, m: &EmailMessage) -> Result<(), DeliveryError> {
        let (inner, m) = (self.inner.clone(), m.clone());
        let job = Box::pin(async move {
            if let Err(e) = inner.send(&m).await {
                tracing::error!(target: "regstack.email", to = %m.to, subject = %m.subject, error = %e, "email delivery failed");
            }
        });
        if self.spawner.spawn(job) {
            Ok(())
        } else {
            Err(queue_full("email"))
        }
    }
}

#[async_trait]
impl SmsSender for Deferred<dyn SmsSender> {
    async fn send(&self, m: &SmsMessage) -> Result<(), DeliveryError> {
        let (inner, m) = (self.inner.clone(), m.clone());
        let job = Box::pin(async move {
            if let Err(e) = inner.send(&m).await {
                tracing::error!(target: "regstack.sms", to = %m.to, error = %e, "sms delivery failed");
            }
        });
        if self.spawner.spawn(job) {
            Ok(())
        } else {
            Err(queue_full("sms"))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::ports::Job;

    /// Keeps jobs to run by hand; refuses past `room`.
    struct Held {
        jobs: Mutex<Vec<Job>>,
        room: usize,
    }

    impl Spawner for Held {
        fn spawn(&self, job: Job) -> bool {
            let mut jobs = self.jobs.lock().unwrap();
            if jobs.len() >= self.room {
                return false;
            }
            jobs.push(job);
            true
        }
    }

    struct Failing;

    #[async_trait]
    impl Mailer for Failing {
        async fn send(&self, _: &EmailMessage) -> Result<(), DeliveryError> {
            Err(DeliveryError("provider down".into()))
        }
    }

    fn message() -> EmailMessage {
        EmailMessage {
            to: "a@example.com".into(),
            from: "R <r@example.com>".into(),
            subject: "s".into(),
            text: "t".into(),
            html: "h".into(),
        }
    }

    #[regstack_macros::dual_test]
    fn sends_are_queued_not_awaited_and_a_full_queue_says_so() {
        let held = Arc::new(Held {
            jobs: Mutex::new(Vec::new()),
            room: 1,
        });
        let mailer = Deferred::<dyn Mailer>::new(Arc::new(Failing), held.clone());
        let first = futures_util::FutureExt::now_or_never(mailer.send(&message()));
        assert_eq!(first, Some(Ok(())), "answers at once, before the provider fails");
        let second = futures_util::FutureExt::now_or_never(mailer.send(&message()));
        assert_eq!(second, Some(Err(DeliveryError("send queue full".into()))));
        let job = held.jobs.lock().unwrap().pop().unwrap();
        assert_eq!(
            futures_util::FutureExt::now_or_never(job),
            Some(()),
            "a failed send is logged, not raised"
        );
    }
}
