//! Counting against limits: the per-IP limits the routing table asks for before a handler
//! runs (docs/wire.md, "Decision 8"), and the per-recipient and per-account limits of what
//! regstack sends (docs/security.md).

use crate::engine::Engine;
use crate::rate_limit::RateClass;

use super::{FlowError, FlowResult};

/// Counts one request from `client` against every limit of `class`; the first limit that is
/// exceeded refuses it.
pub async fn check_rate(engine: &Engine, class: RateClass, client: &str) -> FlowResult<()> {
    let Some(limits) = engine.rate_limits.get(&class) else {
        return Ok(());
    };
    count_against(engine, limits, class.key(), client).await
}

/// Counts one event for `subject` (a client IP, an account, a recipient) in `scope` against
/// every limit in `limits`, in the same atomic counters as the per-IP limits, so the count
/// holds across instances and at the edge. The first limit exceeded refuses it.
pub(crate) async fn count_against(
    engine: &Engine,
    limits: &[crate::rate_limit::RateLimit],
    scope: &str,
    subject: &str,
) -> FlowResult<()> {
    let now = engine.now();
    for limit in limits {
        let key = limit.key(scope, subject, now);
        let count = engine.ports.counter.increment(&key, now, limit.window_end(now)).await?;
        if count > limit.count {
            return Err(FlowError::RateLimited {
                limit: *limit,
                retry_after: limit.retry_after(now),
            });
        }
    }
    Ok(())
}
