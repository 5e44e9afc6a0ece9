//! Outbound webhooks at the edge (docs/events.md): `crate::net`'s `fetch` for the POSTs,
//! and waits on `setTimeout`. Deliveries run after the
//! response, under `waitUntil`, through the core's `SpawnedOutbox`.

use std::time::Duration;

use async_trait::async_trait;
use regstack_core::ports::Timer;
use worker::Delay;

use crate::js::js;

/// Waits with `setTimeout`.
pub struct WorkerTimer;

#[async_trait]
impl Timer for WorkerTimer {
    async fn sleep(&self, duration: Duration) {
        js(Delay::from(duration)).await;
    }
}
