//! The Worker's clock and randomness.

use regstack_core::ports::{Clock, Random};
use regstack_core::time::Timestamp;

/// `Date.now()`: millisecond precision. In production it only advances across I/O, which is
/// all a request needs (expiry and rate windows are seconds long).
pub struct WorkerClock;

impl Clock for WorkerClock {
    fn now(&self) -> Timestamp {
        let millis = worker::Date::now().as_millis() as i64;
        regstack_core::time::from_micros(millis * 1000)
    }
}

/// `crypto.getRandomValues`, through getrandom's `wasm_js` backend.
pub struct WorkerRandom;

impl Random for WorkerRandom {
    fn fill(&self, buf: &mut [u8]) {
        // Without a CSPRNG no secret can be made safely; stopping is the only safe answer.
        getrandom::fill(buf).expect("crypto.getRandomValues failed");
    }
}
