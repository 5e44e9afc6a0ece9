//! Login lockout (docs/wire.md, "Lockout"): a per-email sliding window of failures.
//!
//! The arithmetic lives here; the atomic "count and reserve a slot" step lives behind
//! [`crate::ports::AttemptStore::try_reserve`], so parallel wrong passwords cannot slip past
//! the threshold.

use crate::time::{plus_seconds, Timestamp};

/// The lockout policy from config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lockout {
    /// Failures in the window that lock the account (`login_lockout_threshold`).
    pub threshold: u64,
    /// The sliding window, in seconds (`login_lockout_window_seconds`).
    pub window_seconds: i64,
    /// `rate_limit_disabled`: no rows, no 429, no "N remaining".
    pub disabled: bool,
}

impl Lockout {
    /// Failures at or after this instant count.
    pub fn window_start(&self, now: Timestamp) -> Timestamp {
        plus_seconds(now, -self.window_seconds)
    }

    /// The ` N attempt(s) remaining.` suffix owed after a failure that brought the count in
    /// the window to `failures`; `None` when lockout is off or nothing remains.
    pub fn remaining(&self, failures: u64) -> Option<u64> {
        if self.disabled {
            return None;
        }
        match self.threshold.saturating_sub(failures) {
            0 => None,
            n => Some(n),
        }
    }

    /// `Retry-After` for a locked account: the window, fixed (not the time left).
    pub fn retry_after(&self) -> i64 {
        self.window_seconds
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[regstack_macros::dual_test]
    fn remaining_counts_down_then_disappears() {
        let l = Lockout {
            threshold: 5,
            window_seconds: 900,
            disabled: false,
        };
        let seq: Vec<_> = (1..=6).map(|n| l.remaining(n)).collect();
        assert_eq!(seq, vec![Some(4), Some(3), Some(2), Some(1), None, None]);
        let off = Lockout { disabled: true, ..l };
        assert_eq!(off.remaining(1), None);
        assert_eq!(l.retry_after(), 900);
    }
}
