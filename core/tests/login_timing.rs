//! A failed login costs the same Argon2 work whatever hash it was checked against
//! (docs/security.md, "Timing"): an adopted regstack 0.9.3 hash (m=65536, t=3) costs about
//! five times the configured parameters, and without padding the time of a failure told
//! adopted accounts from unknown addresses. Work is counted, not timed: a recording hasher
//! adds up `m · t` of every hash it is asked to verify.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use axum::http::{Method, StatusCode};
use regstack_core::config::Config;
use regstack_core::password::{work_of, PasswordError, Verified};
use regstack_core::ports::PasswordHasher;
use regstack_core::records::User;
use regstack_core::render::Renderer;
use regstack_core::testing::{oneshot, test_ports};
use regstack_core::time::from_micros;
use regstack_core::Engine;
use serde_json::json;

/// The hash regstack 0.9.3 stores: m=65536, t=3, p=4 (its password is not needed here).
const ADOPTED: &str =
    "$argon2id$v=19$m=65536,t=3,p=4$xSFxZoMtkEb/aDsuAm/uCw$fXp5tVXCJA/hvHobeJu5sB8fC4eKlPRTUUjYlvTDsJU";

/// Counts the work of every verification instead of doing it (the outcome is "wrong").
struct CountingHasher {
    inner: Arc<dyn PasswordHasher>,
    work: Arc<AtomicU64>,
}

#[async_trait]
impl PasswordHasher for CountingHasher {
    async fn hash(&self, password: &str) -> Result<String, PasswordError> {
        self.inner.hash(password).await
    }

    async fn verify(&self, _password: &str, phc: &str) -> Result<Verified, PasswordError> {
        self.work.fetch_add(work_of(phc).unwrap_or(0), Ordering::SeqCst);
        Ok(Verified {
            ok: false,
            needs_rehash: false,
        })
    }
}

async fn app(config: Config) -> (axum::Router, Arc<AtomicU64>, regstack_core::memory::MemoryStore) {
    let mut t = test_ports();
    let work = Arc::new(AtomicU64::new(0));
    t.ports.hasher = Arc::new(CountingHasher {
        inner: t.ports.hasher.clone(),
        work: work.clone(),
    });
    let config = Config {
        jwt_secret: "0123456789abcdef0123456789abcdef".into(),
        password_hash_memory_kib: 64,
        password_hash_iterations: 1,
        ..config
    };
    let engine = Engine::new(config, t.ports.clone(), Renderer::new(Default::default()))
        .await
        .unwrap();
    (regstack_core::http::router(Arc::new(engine)), work, t.store)
}

/// The Argon2 work one failed `/login` cost.
async fn failed_login_work(app: &axum::Router, work: &AtomicU64, email: &str) -> u64 {
    let before = work.load(Ordering::SeqCst);
    let body = json!({"email": email, "password": "not-the-password"});
    let a = oneshot(app, Method::POST, "/login", None, Some(&body)).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    work.load(Ordering::SeqCst) - before
}

async fn adopt(store: &regstack_core::memory::MemoryStore) {
    use regstack_core::ports::UserStore;
    let now = from_micros(1_767_268_800_000_000);
    let mut user = User::new(
        "0123456789abcdef0123456789abcdef".into(),
        "adopted@example.com".into(),
        Some(ADOPTED.into()),
        now,
    );
    user.is_verified = true;
    store.create(&user).await.unwrap();
}

async fn failures_cost_the_same_once_the_floor_is_known() {
    let (app, work, store) = app(Config::default()).await;
    adopt(&store).await;
    let adopted = failed_login_work(&app, &work, "adopted@example.com").await;
    assert_eq!(adopted, 65_536 * 3);
    // An unknown address is padded up to what the adopted account's failure cost.
    assert_eq!(failed_login_work(&app, &work, "nobody@example.com").await, adopted);
    assert_eq!(failed_login_work(&app, &work, "adopted@example.com").await, adopted);
}

async fn a_configured_floor_holds_from_start_up() {
    let (app, work, store) = app(Config {
        password_verify_floor: Some("m=65536,t=3,p=4".into()),
        ..Config::default()
    })
    .await;
    adopt(&store).await;
    // The very first failure, before any adopted hash was met, already costs the floor.
    let unknown = failed_login_work(&app, &work, "nobody@example.com").await;
    assert_eq!(unknown, 65_536 * 3);
    assert_eq!(failed_login_work(&app, &work, "adopted@example.com").await, unknown);
}

#[regstack_macros::dual_test]
async fn failed_logins_cost_the_same_work_for_every_account() {
    failures_cost_the_same_once_the_floor_is_known().await;
    a_configured_floor_holds_from_start_up().await;
}
