//! Host hooks (docs/wire.md, "Events"): handlers registered per instance and per event name.
//!
//! Each handler runs on its own task, started when the event fires and never awaited by the
//! request: a slow hook cannot delay an answer, and a failing or panicking one is logged and
//! changes nothing. Hooks in flight are bounded (`delivery_queue_limit`); past the bound a
//! hook is skipped and the skip is logged, so a flood cannot pile up tasks without limit.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use regstack_core::events::Event;
use regstack_core::ports::EventSink;
use tokio::sync::Semaphore;

type Handler = Arc<dyn Fn(Event) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// The hook registry of one regstack instance.
#[derive(Clone)]
pub struct Hooks {
    handlers: Arc<RwLock<HashMap<String, Vec<Handler>>>>,
    in_flight: Arc<Semaphore>,
}

impl Default for Hooks {
    fn default() -> Self {
        Self::new(1000)
    }
}

impl Hooks {
    /// An empty registry running at most `limit` hooks at once.
    pub fn new(limit: usize) -> Self {
        Self {
            handlers: Arc::default(),
            in_flight: Arc::new(Semaphore::new(limit.max(1))),
        }
    }

    /// Registers `handler` for the event called `name` (e.g. `"user_registered"`).
    pub fn on<F, Fut>(&self, name: &str, handler: F)
    where
        F: Fn(Event) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |e| Box::pin(handler(e)));
        self.handlers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(name.to_string())
            .or_default()
            .push(handler);
    }
}

#[async_trait]
impl EventSink for Hooks {
    async fn emit(&self, event: &Event) {
        tracing::debug!(target: "regstack.events", event = event.name(), user_id = event.user().map(|u| u.id.as_str()), "event");
        let handlers: Vec<Handler> = self
            .handlers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(event.name())
            .cloned()
            .unwrap_or_default();
        for handler in handlers {
            let Ok(slot) = self.in_flight.clone().try_acquire_owned() else {
                tracing::error!(target: "regstack.events", event = event.name(), "too many hooks running; this one skipped");
                continue;
            };
            let name = event.name();
            let task = tokio::spawn(handler(event.clone()));
            // A second task watches the first, so a panic is logged without anyone waiting.
            tokio::spawn(async move {
                let _slot = slot;
                // Cancelled at shutdown is not a failure; a panic is.
                if let Err(e) = task.await {
                    if e.is_panic() {
                        tracing::error!(target: "regstack.events", event = name, error = %e, "hook panicked; ignored");
                    }
                }
            });
        }
    }
}
