//! Host hooks (docs/wire.md, "Events"): handlers registered per instance and per event name.
//!
//! Handlers of one event run concurrently, each on its own task, and a panicking or failing
//! handler is logged and swallowed: a hook never changes a route's answer.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use regstack_core::events::Event;
use regstack_core::ports::EventSink;

type Handler = Arc<dyn Fn(Event) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// The hook registry of one regstack instance.
#[derive(Default, Clone)]
pub struct Hooks {
    handlers: Arc<RwLock<HashMap<String, Vec<Handler>>>>,
}

impl Hooks {
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
        let tasks: Vec<_> = handlers.into_iter().map(|h| tokio::spawn(h(event.clone()))).collect();
        for task in tasks {
            if let Err(e) = task.await {
                tracing::error!(target: "regstack.events", event = event.name(), error = %e, "hook failed; ignored");
            }
        }
    }
}
