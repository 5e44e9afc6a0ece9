//! Sweeping expired rows (docs/security.md, "Housekeeping"): login failures older than the
//! lockout window, and pending registrations, revocations, SMS codes and OAuth states past
//! their expiry. Natively `regstack serve` runs it every `purge_interval_seconds`, the edge
//! worker on its Cron Trigger, and a host calls it when it likes.

use crate::engine::Engine;
use crate::ports::Purged;

use super::FlowResult;

/// How far instances' clocks may disagree without a swept revocation coming back to life.
pub const CLOCK_MARGIN_SECONDS: i64 = 300;

/// Deletes what can no longer matter and says how much went, logging the counts.
pub async fn purge_expired(engine: &Engine) -> FlowResult<Purged> {
    let now = engine.now();
    // Failures older than the window no longer count toward any lockout.
    let attempts_before = engine.lockout.window_start(now);
    // Expiries get a margin, so an instance whose clock runs behind never meets a token whose
    // revocation another instance has already swept.
    let expired_before = crate::time::plus_seconds(now, -CLOCK_MARGIN_SECONDS);
    let purged = engine
        .ports
        .sweeper
        .purge_expired(expired_before, attempts_before)
        .await?;
    if purged.total() == 0 {
        tracing::debug!(target: "regstack.housekeeping", "no expired rows to purge");
        return Ok(purged);
    }
    tracing::info!(
        target: "regstack.housekeeping",
        attempts = purged.attempts,
        pending = purged.pending,
        revocations = purged.revocations,
        codes = purged.codes,
        oauth_states = purged.oauth_states,
        "purged {} expired rows",
        purged.total()
    );
    Ok(purged)
}
