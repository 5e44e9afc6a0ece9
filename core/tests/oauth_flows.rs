//! The OAuth flows on the in-memory stores with a provider that needs no network: the events
//! each step fires, the exchange's expiry (which needs a clock to move), accounts that are
//! disabled or gone, and what the callback stores. The dance against a real OpenID Connect
//! provider is the conformance suite's (`tests/tests/conformance/oauth.rs`).

use std::sync::Arc;

use regstack_core::config::Config;
use regstack_core::flows::oauth::{self, CallbackQuery};
use regstack_core::flows::session::authenticate;
use regstack_core::flows::FlowError;
use regstack_core::oauth::{ProviderError, ProviderIdentity};
use regstack_core::records::UserPatch;
use regstack_core::render::Renderer;
use regstack_core::testing::{test_ports, ScriptedProvider, TestPorts};
use regstack_core::Engine;

async fn engine(config: Config) -> (Arc<Engine>, TestPorts, Arc<ScriptedProvider>) {
    let t = test_ports();
    let provider = ScriptedProvider::new("corp");
    let config = Config {
        jwt_secret: "0123456789abcdef0123456789abcdef".into(),
        enable_oauth: true,
        ..config
    };
    let engine = Engine::with_oauth_providers(
        config,
        t.ports.clone(),
        Renderer::new(Default::default()),
        vec![provider.clone()],
    )
    .await
    .unwrap();
    (Arc::new(engine), t, provider)
}

fn person(subject: &str, email: Option<&str>, verified: bool) -> Result<ProviderIdentity, ProviderError> {
    Ok(ProviderIdentity {
        subject: subject.into(),
        email: email.map(str::to_string),
        email_verified: verified,
        full_name: Some("Pat".into()),
    })
}

/// Starts a sign-in and finishes its callback; the location the browser is sent to.
/// The `state` of a round trip's authorization URL.
fn state_of(started: &oauth::Started) -> String {
    let tail = started.url.split("state=").nth(1).expect("a state");
    tail.split('&').next().unwrap_or_default().to_string()
}

async fn round_trip(engine: &Engine, user: Option<&regstack_core::records::User>) -> String {
    let started = oauth::start(engine, "corp", None, user).await.unwrap();
    let state = state_of(&started);
    let q = CallbackQuery {
        code: Some("code"),
        state: Some(&state),
        error: None,
        binding: Some(&started.cookie.1),
    };
    oauth::callback(engine, "corp", q).await.location
}

/// The exchange, from the browser of the callback (its binding cookie sent).
async fn exchange(engine: &Engine, id: &str) -> Result<oauth::Exchanged, FlowError> {
    let cookie = oauth::binding(&engine.config, id).1;
    oauth::exchange(engine, id, Some(&cookie)).await
}

fn id_of(location: &str) -> String {
    location
        .split_once("/oauth-complete?id=")
        .unwrap_or_else(|| panic!("not completed: {location}"))
        .1
        .to_string()
}

#[regstack_macros::dual_test]
async fn a_new_account_fires_its_events_and_its_session_is_a_real_one() {
    let (engine, t, provider) = engine(Config::default()).await;
    provider.answer(person("s-1", Some("Pat@Example.com"), true));
    let location = round_trip(&engine, None).await;
    assert!(location.starts_with("/account/oauth-complete?id="), "{location}");
    assert_eq!(
        t.events.names(),
        vec!["oauth_signin_started", "user_registered", "oauth_signin_completed"]
    );
    let done = exchange(&engine, &id_of(&location)).await.unwrap();
    assert!(done.was_new_account && !done.mfa_required);
    let session = authenticate(&engine, Some(&format!("Bearer {}", done.token)))
        .await
        .unwrap();
    assert_eq!(
        session.user.email, "pat@example.com",
        "stored as regstack stores addresses"
    );
    assert_eq!(session.user.full_name.as_deref(), Some("Pat"));
    assert!(session.user.hashed_password.is_none());
    assert!(session.user.last_login.is_some());
    // The nonce the provider was asked to return is the state's own.
    assert_eq!(provider.nonces.lock().unwrap().len(), 1);
}

#[regstack_macros::dual_test]
async fn a_completed_round_trip_expires_after_completion_ttl() {
    let (engine, t, provider) = engine(Config::default()).await;
    provider.answer(person("s-2", Some("late@example.com"), true));
    let id = id_of(&round_trip(&engine, None).await);
    // Only the browser of the callback collects: without its cookie, or with another id's,
    // nothing, and the round trip stays.
    assert!(matches!(
        oauth::exchange(&engine, &id, None).await,
        Err(FlowError::OAuthStateNotFound)
    ));
    let other = oauth::binding(&engine.config, "some-other-id").1;
    assert!(matches!(
        oauth::exchange(&engine, &id, Some(&other)).await,
        Err(FlowError::OAuthStateNotFound)
    ));
    t.clock.advance_seconds(31);
    assert!(matches!(
        exchange(&engine, &id).await,
        Err(FlowError::OAuthStateExpired)
    ));
    assert!(
        matches!(exchange(&engine, &id).await, Err(FlowError::OAuthStateNotFound)),
        "taken, even though it had expired"
    );
}

#[regstack_macros::dual_test]
async fn a_waiting_round_trip_expires_after_state_ttl() {
    let (engine, t, provider) = engine(Config::default()).await;
    provider.answer(person("s-3", Some("slow@example.com"), true));
    let started = oauth::start(&engine, "corp", Some("/back"), None).await.unwrap();
    let state = state_of(&started);
    t.clock.advance_seconds(301);
    let q = CallbackQuery {
        code: Some("c"),
        state: Some(&state),
        error: None,
        binding: Some(&started.cookie.1),
    };
    assert_eq!(
        oauth::callback(&engine, "corp", q).await.location,
        "/account/login?error=state_expired"
    );
}

#[regstack_macros::dual_test]
async fn disabled_and_vanished_accounts_are_refused() {
    let (engine, _t, provider) = engine(Config {
        ui_prefix: "/auth-ui".into(),
        ..Config::default()
    })
    .await;
    provider.answer(person("s-4", Some("gone@example.com"), true));
    let id = id_of(&round_trip(&engine, None).await);
    let done = exchange(&engine, &id).await.unwrap();
    let user = authenticate(&engine, Some(&format!("Bearer {}", done.token)))
        .await
        .unwrap()
        .user;
    let off = UserPatch {
        is_active: Some(false),
        ..UserPatch::default()
    };
    engine.ports.users.update(&user.id, &off, engine.now()).await.unwrap();
    assert_eq!(
        round_trip(&engine, None).await,
        "/auth-ui/login?error=user_inactive",
        "ui_prefix decides where the browser goes"
    );
    // A link whose account is gone (deleted by another program) does not sign anyone in.
    engine.ports.users.delete(&user).await.unwrap();
    let link = regstack_core::records::OAuthIdentity {
        id: engine.new_id(),
        user_id: user.id.clone(),
        provider: "corp".into(),
        subject_id: "s-4".into(),
        email: None,
        linked_at: engine.now(),
        last_used_at: None,
    };
    engine.ports.oauth.link(&link).await.unwrap();
    assert_eq!(round_trip(&engine, None).await, "/auth-ui/login?error=user_inactive");
    provider.answer(Err(ProviderError::Unavailable("down".into())));
    assert_eq!(round_trip(&engine, None).await, "/auth-ui/login?error=oauth_failed");
}

#[regstack_macros::dual_test]
async fn auto_link_never_reaches_a_disabled_account() {
    let (engine, _t, provider) = engine(Config::default()).await;
    provider.auto_link.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut user = engine.new_user("off@example.com".into(), None);
    user.is_active = false;
    user.is_verified = true;
    let user = engine.ports.users.create(&user).await.unwrap();
    provider.answer(person("s-6", Some("off@example.com"), true));
    assert_eq!(round_trip(&engine, None).await, "/account/login?error=user_inactive");
    assert_eq!(
        engine.ports.oauth.identities_of(&user.id).await.unwrap(),
        vec![],
        "nothing was linked"
    );
}

#[regstack_macros::dual_test]
async fn linking_and_unlinking_fire_their_events() {
    let (engine, t, provider) = engine(Config {
        require_verification: false,
        ..Config::default()
    })
    .await;
    let user = engine.new_user(
        "owner@example.com".into(),
        Some("$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaA".into()),
    );
    let user = engine.ports.users.create(&user).await.unwrap();
    provider.answer(person("s-5", None, false));
    let id = id_of(&round_trip(&engine, Some(&user)).await);
    let done = exchange(&engine, &id).await.unwrap();
    assert!(!done.was_new_account);
    assert_eq!(
        t.events.names(),
        vec!["oauth_signin_started", "oauth_signin_completed", "oauth_account_linked"]
    );
    let session = authenticate(&engine, Some(&format!("Bearer {}", done.token)))
        .await
        .unwrap();
    assert_eq!(session.user.id, user.id);
    let list = oauth::providers(&engine, &session).await.unwrap();
    assert_eq!(list.available, ["corp"]);
    assert_eq!(list.linked[0].subject_id, "s-5");
    assert!(list.linked[0].last_used_at.is_some());
    oauth::unlink(&engine, &session, "corp").await.unwrap();
    assert_eq!(t.events.names().last(), Some(&"oauth_account_unlinked"));
    assert!(matches!(
        oauth::unlink(&engine, &session, "corp").await,
        Err(FlowError::OAuthNotLinked)
    ));
    assert!(matches!(
        oauth::start(&engine, "nope", None, None).await,
        Err(FlowError::OAuthProviderUnknown(_))
    ));
    assert!(matches!(
        oauth::start(&engine, "corp", Some("https://evil.example/"), None).await,
        Err(FlowError::OAuthRedirectRefused)
    ));
}

#[regstack_macros::dual_test]
async fn auto_link_needs_both_sides_to_vouch_for_the_address() {
    let (engine, _t, provider) = engine(Config::default()).await;
    provider.auto_link.store(true, std::sync::atomic::Ordering::Relaxed);
    // An account that never confirmed its address (an adopted row, say) is not linked to,
    // even by a provider that verified the address.
    let unconfirmed = engine.new_user("early@example.com".into(), None);
    let unconfirmed = engine.ports.users.create(&unconfirmed).await.unwrap();
    provider.answer(person("s-7", Some("early@example.com"), true));
    assert_eq!(round_trip(&engine, None).await, "/account/login?error=email_in_use");
    assert_eq!(engine.ports.oauth.identities_of(&unconfirmed.id).await.unwrap(), vec![]);
    // A confirmed account is, when the provider verified the address.
    let mut confirmed = engine.new_user("owner2@example.com".into(), None);
    confirmed.is_verified = true;
    let confirmed = engine.ports.users.create(&confirmed).await.unwrap();
    provider.answer(person("s-8", Some("owner2@example.com"), false));
    assert_eq!(round_trip(&engine, None).await, "/account/login?error=email_in_use");
    provider.answer(person("s-8", Some("owner2@example.com"), true));
    let done = exchange(&engine, &id_of(&round_trip(&engine, None).await))
        .await
        .unwrap();
    assert!(!done.was_new_account);
    assert_eq!(engine.ports.oauth.identities_of(&confirmed.id).await.unwrap().len(), 1);
    // Without the provider's trust, never.
    provider.auto_link.store(false, std::sync::atomic::Ordering::Relaxed);
    provider.answer(person("s-9", Some("owner2@example.com"), true));
    assert_eq!(round_trip(&engine, None).await, "/account/login?error=email_in_use");
}
