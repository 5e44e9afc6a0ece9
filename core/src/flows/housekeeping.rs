//! Sweeping expired rows (docs/security.md, "Housekeeping"): login failures older than the
//! lockout window, and pending registrations, revocations, SMS codes and OAuth states past
//! their expiry. Natively `regstack serve` runs it every `purge_interval_seconds`, the edge
//! worker on its Cron Trigger, and a host calls it when it likes.

use crate::engine::Engine;
use crate::ports::Purged;

use super::FlowResult;

/// Deletes what can no longer matter and says how much went, logging the counts.
pub async fn purge_expired(engine: &Engine) -> FlowResult<Purged> {
    let now = engine.now();
    // Failures older than the window no longer count toward any lockout.
    let attempts_before = engine.lockout.window_start(now);
    let purged = engine.ports.sweeper.purge_expired(now, attempts_before).await?;
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
