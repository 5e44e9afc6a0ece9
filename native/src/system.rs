//! The operating system's clock and randomness.

use regstack_core::ports::{Clock, Random};
use regstack_core::time::Timestamp;

/// `SystemTime::now`.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        regstack_core::time::from_micros(since.as_micros() as i64)
    }
}

/// The OS CSPRNG.
pub struct OsRandom;

impl Random for OsRandom {
    fn fill(&self, buf: &mut [u8]) {
        // Without OS randomness no secret can be made safely; stopping is the only safe answer.
        getrandom::fill(buf).expect("the operating system's random source failed");
    }
}
