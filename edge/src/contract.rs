//! The core's port contract suite, run inside the worker against the real bindings (D1 and
//! the Durable Object counter), which exist nowhere else. Built only with the
//! `contract-suite` feature; a failed expectation panics, which aborts the request, so the
//! caller sees `ok` only when every check passed.

use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use regstack_core::ports::{Clock, Stores};
use worker::Env;

use crate::counter::DurableCounter;
use crate::store::D1Store;
use crate::system::WorkerClock;

/// Where the suite answers.
pub const PATH: &str = "/__regstack/contract";

/// Runs the suite on a fresh D1 database and answers `ok`.
pub async fn run(env: Env) -> Response {
    std::panic::set_hook(Box::new(|info| worker::console_error!("contract suite: {info}")));
    let stores = Stores::from_one(
        regstack_core::sqlite::SqlStore(D1Store::new(env.clone())),
        Arc::new(DurableCounter::new(env)),
    );
    // Around the real time: the counter's alarms fire on the platform clock.
    regstack_core::testing::contract_at(stores, 8, WorkerClock.now()).await;
    "ok".into_response()
}
