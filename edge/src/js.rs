//! The one place JavaScript promises are awaited.
//!
//! The core's ports and axum want `Send` futures; the futures of D1, Durable Object stubs and
//! `fetch` hold `JsFuture`s, which are not `Send`. A Worker isolate runs on one thread, so the
//! claim is true in practice; every await of JS work in this crate goes through [`js`] so that
//! claim is made in exactly one file.

use std::future::Future;

use worker::send::SendFuture;

/// Runs a future that awaits JS promises where a `Send` future is required.
pub fn js<F: Future>(future: F) -> SendFuture<F> {
    SendFuture::new(future)
}
