//! A user's browser subscriptions for sign-in alerts (docs/web-push.md). The alerts
//! themselves are `crate::push`'s.

use crate::engine::Engine;
use crate::flows::session::Session;
use crate::flows::{FlowError, FlowResult};
use crate::records::PushSubscription;

/// Saves the caller's browser subscription, already checked by [`crate::push::check_subscription`]
/// (keys in canonical base64url). The same endpoint again replaces its keys; past
/// `push_subscription_limit` the oldest goes.
pub async fn subscribe(
    engine: &Engine,
    session: &Session,
    endpoint: String,
    p256dh: String,
    auth: String,
) -> FlowResult<PushSubscription> {
    let subscription = PushSubscription {
        id: engine.new_id(),
        user_id: session.user.id.clone(),
        endpoint,
        p256dh,
        auth,
        created_at: engine.now(),
    };
    engine
        .ports
        .push
        .subscribe(&subscription, engine.config.push_subscription_limit)
        .await?;
    // An endpoint subscribed before keeps its row's id; answer what is stored.
    let stored = engine.ports.push.subscriptions(&session.user.id).await?;
    Ok(stored
        .into_iter()
        .find(|s| s.endpoint == subscription.endpoint)
        .unwrap_or(subscription))
}

/// The caller's subscriptions, oldest first.
pub async fn list(engine: &Engine, session: &Session) -> FlowResult<Vec<PushSubscription>> {
    Ok(engine.ports.push.subscriptions(&session.user.id).await?)
}

/// Removes the caller's subscription at `endpoint`.
pub async fn unsubscribe(engine: &Engine, session: &Session, endpoint: &str) -> FlowResult<()> {
    if engine.ports.push.unsubscribe(&session.user.id, endpoint).await? {
        Ok(())
    } else {
        Err(FlowError::PushSubscriptionNotFound)
    }
}
