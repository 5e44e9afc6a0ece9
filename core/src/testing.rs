//! Test support (feature `test-utils`): deterministic time and randomness, recording delivery
//! and event sinks, an all-in-memory [`Ports`], and the shared port contract suite that every
//! storage adapter runs.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::events::Event;
use crate::memory::{MemoryCounter, MemoryStore};
use crate::password::{HashParams, InlineHasher};
use crate::ports::{
    Clock, DeliveryError, EmailMessage, EventSink, Mailer, Ports, Random, Reservation, SessionRecord, SmsMessage,
    SmsSender, StoreError, Stores, Unlinked,
};
use crate::records::{
    CodeCheck, CodeKind, MfaCode, OAuthIdentity, OAuthMode, OAuthState, PendingRegistration, RefreshToken, User,
    UserPatch,
};
use crate::time::{from_micros, plus_seconds, to_micros, Timestamp};

/// A clock that starts at a fixed instant and moves forward 1 ms on every reading, so
/// timestamps are deterministic and strictly increasing.
pub struct TestClock {
    micros: Mutex<i64>,
}

impl TestClock {
    /// Starts at 2026-01-01T12:00:00Z.
    pub fn new() -> Self {
        Self::starting_at(from_micros(1_767_268_800_000_000))
    }

    /// Starts at `t`.
    pub fn starting_at(t: Timestamp) -> Self {
        Self {
            micros: Mutex::new(to_micros(t)),
        }
    }

    /// Jumps forward.
    pub fn advance_seconds(&self, seconds: i64) {
        *self.micros.lock().unwrap() += seconds * 1_000_000;
    }
}

impl Default for TestClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        let mut m = self.micros.lock().unwrap();
        *m += 1_000;
        from_micros(*m)
    }
}

/// splitmix64: reproducible, not secure, for tests only.
pub struct SeededRandom {
    state: Mutex<u64>,
}

impl SeededRandom {
    /// A generator with this seed.
    pub fn new(seed: u64) -> Self {
        Self {
            state: Mutex::new(seed),
        }
    }
}

impl Random for SeededRandom {
    fn fill(&self, buf: &mut [u8]) {
        let mut s = self.state.lock().unwrap();
        for chunk in buf.chunks_mut(8) {
            *s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = *s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
        }
    }
}

/// Keeps every email it is asked to send.
#[derive(Default)]
pub struct RecordingMailer {
    /// The messages, oldest first.
    pub sent: Mutex<Vec<EmailMessage>>,
}

impl RecordingMailer {
    /// The `?token=` value of the last link sent to `to` whose path contains `path`.
    pub fn last_token(&self, to: &str, path: &str) -> Option<String> {
        let sent = self.sent.lock().unwrap();
        sent.iter().rev().filter(|m| m.to == to).find_map(|m| {
            m.text.lines().find_map(|l| {
                let l = l.trim();
                (l.starts_with("http") && l.contains(path))
                    .then(|| {
                        l.split("?token=")
                            .nth(1)
                            .map(|t| t.split('&').next().unwrap_or(t).to_string())
                    })
                    .flatten()
            })
        })
    }
}

#[async_trait]
impl Mailer for RecordingMailer {
    async fn send(&self, message: &EmailMessage) -> Result<(), DeliveryError> {
        self.sent.lock().unwrap().push(message.clone());
        Ok(())
    }
}

/// Keeps every SMS.
#[derive(Default)]
pub struct RecordingSms {
    /// The messages, oldest first.
    pub sent: Mutex<Vec<SmsMessage>>,
}

#[async_trait]
impl SmsSender for RecordingSms {
    async fn send(&self, message: &SmsMessage) -> Result<(), DeliveryError> {
        self.sent.lock().unwrap().push(message.clone());
        Ok(())
    }
}

/// Keeps every event.
#[derive(Default)]
pub struct RecordingEvents {
    /// The events, oldest first.
    pub seen: Mutex<Vec<Event>>,
}

impl RecordingEvents {
    /// The names of the events seen so far.
    pub fn names(&self) -> Vec<&'static str> {
        self.seen.lock().unwrap().iter().map(Event::name).collect()
    }
}

#[async_trait]
impl EventSink for RecordingEvents {
    async fn emit(&self, event: &Event) {
        self.seen.lock().unwrap().push(event.clone());
    }
}

/// A network that answers nothing: every request fails, as offline.
pub struct Offline;

#[async_trait]
impl crate::ports::HttpClient for Offline {
    async fn send(
        &self,
        _: crate::ports::OutboundRequest,
    ) -> Result<crate::ports::InboundResponse, crate::ports::NetError> {
        Err(crate::ports::NetError("offline (test ports)".into()))
    }
}

/// An OAuth provider without a network: its authorization URL is
/// `https://provider.test/authorize?state=…&nonce=…`, and a callback finishes as whoever
/// [`ScriptedProvider::answer`] last named (or with the error given).
pub struct ScriptedProvider {
    name: String,
    next: Mutex<Result<crate::oauth::ProviderIdentity, crate::oauth::ProviderError>>,
    /// The nonce of each authorization URL made, so a test can check it came back.
    pub nonces: Mutex<Vec<String>>,
    /// What [`crate::oauth::OAuthProvider::auto_link_verified_emails`] answers.
    pub auto_link: std::sync::atomic::AtomicBool,
}

impl ScriptedProvider {
    /// A provider called `name` that refuses until told whom to answer.
    pub fn new(name: &str) -> Arc<Self> {
        Arc::new(Self {
            name: name.into(),
            next: Mutex::new(Err(crate::oauth::ProviderError::Unavailable("nothing scripted".into()))),
            nonces: Mutex::new(Vec::new()),
            auto_link: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The next callbacks finish as this.
    pub fn answer(&self, outcome: Result<crate::oauth::ProviderIdentity, crate::oauth::ProviderError>) {
        *self.next.lock().unwrap() = outcome;
    }
}

#[async_trait]
impl crate::oauth::OAuthProvider for ScriptedProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn display_name(&self) -> &str {
        &self.name
    }

    fn auto_link_verified_emails(&self) -> bool {
        self.auto_link.load(std::sync::atomic::Ordering::Relaxed)
    }

    async fn authorization_url(
        &self,
        req: &crate::oauth::AuthorizationRequest<'_>,
    ) -> Result<String, crate::oauth::ProviderError> {
        self.nonces.lock().unwrap().push(req.nonce.to_string());
        Ok(format!(
            "https://provider.test/authorize?state={}&nonce={}&code_challenge={}",
            req.state, req.nonce, req.code_challenge
        ))
    }

    async fn complete(
        &self,
        _code: &str,
        _verifier: &str,
        _nonce: &str,
        _now: Timestamp,
    ) -> Result<crate::oauth::ProviderIdentity, crate::oauth::ProviderError> {
        self.next.lock().unwrap().clone()
    }
}

/// Argon2 parameters cheap enough for unit tests.
pub const CHEAP_HASH: HashParams = HashParams {
    memory_kib: 64,
    iterations: 1,
    parallelism: 1,
};

/// In-memory ports with handles to the recorders.
pub struct TestPorts {
    /// The ports to build an engine from.
    pub ports: Ports,
    /// The shared store.
    pub store: MemoryStore,
    /// Sent emails.
    pub mailer: Arc<RecordingMailer>,
    /// Sent SMS.
    pub sms: Arc<RecordingSms>,
    /// Fired events.
    pub events: Arc<RecordingEvents>,
    /// The clock.
    pub clock: Arc<TestClock>,
}

/// Everything in memory, deterministic, with cheap Argon2.
pub fn test_ports() -> TestPorts {
    let store = MemoryStore::new();
    let mailer = Arc::new(RecordingMailer::default());
    let sms = Arc::new(RecordingSms::default());
    let events = Arc::new(RecordingEvents::default());
    let clock = Arc::new(TestClock::new());
    let random: Arc<dyn Random> = Arc::new(SeededRandom::new(42));
    let ports = Ports::new(
        Stores::from_one(store.clone(), Arc::new(MemoryCounter::default())),
        mailer.clone(),
        sms.clone(),
        Arc::new(InlineHasher::new(CHEAP_HASH, random.clone())),
        events.clone(),
        Arc::new(Offline),
        clock.clone(),
        random,
    );
    TestPorts {
        ports,
        store,
        mailer,
        sms,
        events,
        clock,
    }
}

fn user(id: &str, email: &str, now: Timestamp) -> User {
    User::new(
        id.to_string(),
        email.to_string(),
        Some("$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaA".into()),
        now,
    )
}

fn pending(id: &str, email: &str, token_hash: &str, now: Timestamp) -> PendingRegistration {
    PendingRegistration {
        id: id.into(),
        email: email.into(),
        hashed_password: "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaA".into(),
        full_name: Some("Pen Ding".into()),
        token_hash: token_hash.into(),
        created_at: now,
        expires_at: plus_seconds(now, 3600),
    }
}

/// The port contract suite: every storage adapter must pass it unchanged. `parallelism` is how
/// many concurrent callers the race checks use.
pub async fn contract(stores: Stores, parallelism: usize) {
    contract_at(stores, parallelism, from_micros(1_767_268_800_123_000)).await;
}

/// [`contract`] around a chosen instant: backends that expire rows on their own clock (Mongo
/// TTL indexes) need one near the real time. It must be millisecond-aligned, the precision
/// every backend keeps.
pub async fn contract_at(stores: Stores, parallelism: usize, now: Timestamp) {
    for case in CONTRACT_CASES {
        contract_case(case, &stores, parallelism, now).await;
    }
}

/// The named cases of the port contract, in the order [`contract_at`] runs them (the sweep
/// last: it deletes what the others left expired).
pub const CONTRACT_CASES: [&str; 12] = [
    "users",
    "listing",
    "pending",
    "revocations",
    "sessions",
    "attempts",
    "mfa_codes",
    "oauth",
    "refresh",
    "push",
    "counter",
    "sweeper",
];

/// Runs one named case of the port contract; a failure names the case and the port it
/// covers, then the assertion that failed.
pub async fn contract_case(case: &str, stores: &Stores, parallelism: usize, now: Timestamp) {
    let run = async {
        match case {
            "users" => users_contract(stores, now).await,
            "listing" => listing_contract(stores, now).await,
            "pending" => pending_contract(stores, now, parallelism).await,
            "revocations" => revocation_contract(stores, now, parallelism).await,
            "sessions" => session_contract(stores, now).await,
            "attempts" => attempts_contract(stores, now, parallelism).await,
            "mfa_codes" => mfa_contract(stores, now, parallelism).await,
            "oauth" => oauth_contract(stores, now, parallelism).await,
            "refresh" => refresh_contract(stores, now, parallelism).await,
            "push" => push_contract(stores, now).await,
            "counter" => counter_contract(stores, now, parallelism).await,
            "sweeper" => sweeper_contract(stores, now).await,
            other => panic!("no port contract case {other:?}"),
        }
    };
    if let Err(panic) = futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(run)).await {
        let why = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        panic!("port contract case `{case}` failed: {why}");
    }
}

/// Runs last: it deletes whatever the other cases left that has expired.
async fn sweeper_contract(s: &Stores, now: Timestamp) {
    let email = "sweep@example.com";
    let window_start = plus_seconds(now, -900);
    let old = plus_seconds(now, -2000);
    assert!(matches!(
        s.attempts.try_reserve(email, None, old, old, 100).await.unwrap(),
        Reservation::Reserved { .. }
    ));
    assert!(matches!(
        s.attempts.try_reserve(email, None, now, old, 100).await.unwrap(),
        Reservation::Reserved { .. }
    ));
    let mut stale = pending(
        "00000000000000000000000000000091",
        "stale@example.com",
        "sweep-stale",
        now,
    );
    stale.expires_at = plus_seconds(now, -1);
    s.pending.put(&stale).await.unwrap();
    s.pending
        .put(&pending(
            "00000000000000000000000000000092",
            "fresh@example.com",
            "sweep-fresh",
            now,
        ))
        .await
        .unwrap();
    assert!(s
        .revocations
        .revoke("sweep-old-jti", plus_seconds(now, -1))
        .await
        .unwrap());
    assert!(s
        .revocations
        .revoke("sweep-new-jti", plus_seconds(now, 3600))
        .await
        .unwrap());
    let mut expired = code("sweep-u1", CodeKind::LoginMfa, "h", now, 5);
    expired.expires_at = plus_seconds(now, -1);
    s.mfa_codes.put(&expired).await.unwrap();
    s.mfa_codes
        .put(&code("sweep-u2", CodeKind::LoginMfa, "h", now, 5))
        .await
        .unwrap();

    let mut old_state = oauth_state("sweep-state-old", now);
    old_state.expires_at = plus_seconds(now, -1);
    s.oauth.put_state(&old_state).await.unwrap();
    s.oauth.put_state(&oauth_state("sweep-state-new", now)).await.unwrap();

    s.sweeper.purge_expired(now, window_start).await.unwrap();

    // What expired is gone; what is still in force stays.
    assert!(
        matches!(
            s.attempts.try_reserve(email, None, now, old, 100).await.unwrap(),
            Reservation::Reserved { failures: 2, .. }
        ),
        "the failure inside the window survives, the one before it is gone"
    );
    assert!(s.pending.find_by_email("stale@example.com").await.unwrap().is_none());
    assert!(s.pending.find_by_email("fresh@example.com").await.unwrap().is_some());
    assert!(!s.revocations.is_revoked("sweep-old-jti").await.unwrap());
    assert!(s.revocations.is_revoked("sweep-new-jti").await.unwrap());
    assert_eq!(
        s.mfa_codes
            .check("sweep-u1", CodeKind::LoginMfa, "h", now)
            .await
            .unwrap(),
        CodeCheck::Missing
    );
    assert!(matches!(
        s.mfa_codes
            .check("sweep-u2", CodeKind::LoginMfa, "x", now)
            .await
            .unwrap(),
        CodeCheck::Wrong { .. }
    ));
    assert_eq!(s.oauth.take_waiting_state("sweep-state-old").await.unwrap(), None);
    assert!(s.oauth.take_waiting_state("sweep-state-new").await.unwrap().is_some());
    let again = s.sweeper.purge_expired(now, window_start).await.unwrap();
    assert_eq!(again.total(), 0, "a second sweep finds nothing: {again:?}");
}

async fn users_contract(s: &Stores, now: Timestamp) {
    let u = s
        .users
        .create(&user("0123456789abcdef0123456789abcdef", "ann@example.com", now))
        .await
        .unwrap();
    assert_eq!(
        s.users.get(&u.id).await.unwrap().as_ref(),
        Some(&u),
        "get returns what create stored"
    );
    assert_eq!(
        s.users.find_by_email("ANN@example.com").await.unwrap().map(|x| x.id),
        Some(u.id.clone()),
        "email lookups ignore case"
    );
    assert_eq!(s.users.get("nope").await.unwrap(), None);
    assert_eq!(s.users.find_by_email("nobody@example.com").await.unwrap(), None);
    let dup = user("fedcba9876543210fedcba9876543210", "Ann@Example.com", now);
    assert_eq!(
        s.users.create(&dup).await.map(|_| ()),
        Err(StoreError::Conflict("email".into())),
        "uniqueness ignores case"
    );

    let later = plus_seconds(now, 5);
    let patch = UserPatch {
        full_name: Some(Some("Ann Example".into())),
        tokens_invalidated_after: Some(later),
        last_login: Some(later),
        is_verified: Some(true),
        ..UserPatch::default()
    };
    let after = s.users.update(&u.id, &patch, later).await.unwrap();
    assert_eq!(after.full_name.as_deref(), Some("Ann Example"));
    assert_eq!(after.tokens_invalidated_after, Some(later));
    assert_eq!(after.updated_at, later);
    assert!(after.is_verified);
    assert_eq!(
        s.users.get(&u.id).await.unwrap(),
        Some(after.clone()),
        "update returns the stored record"
    );
    let cleared = s
        .users
        .update(
            &u.id,
            &UserPatch {
                full_name: Some(None),
                hashed_password: Some(None),
                ..UserPatch::default()
            },
            later,
        )
        .await
        .unwrap();
    assert_eq!((cleared.full_name, cleared.hashed_password), (None, None));
    assert_eq!(s.users.update("nope", &patch, later).await, Err(StoreError::NotFound));

    let bob = s
        .users
        .create(&user("11111111111111111111111111111111", "bob@example.com", now))
        .await
        .unwrap();
    let clash = UserPatch {
        email: Some("ann@example.com".into()),
        ..UserPatch::default()
    };
    assert_eq!(
        s.users.update(&bob.id, &clash, later).await,
        Err(StoreError::Conflict("email".into()))
    );
    assert_eq!(
        s.users.get(&bob.id).await.unwrap().unwrap().email,
        "bob@example.com",
        "a refused update changes nothing"
    );

    // Delete cascades to the pending row and lockout rows of that email.
    s.pending
        .put(&pending(
            "22222222222222222222222222222222",
            "bob@example.com",
            "h-bob",
            now,
        ))
        .await
        .unwrap();
    s.attempts
        .try_reserve("bob@example.com", None, now, plus_seconds(now, -60), 5)
        .await
        .unwrap();
    assert!(s.users.delete(&bob).await.unwrap());
    assert!(!s.users.delete(&bob).await.unwrap(), "a second delete finds nothing");
    assert_eq!(s.users.get(&bob.id).await.unwrap(), None);
    assert_eq!(s.pending.find_by_email("bob@example.com").await.unwrap(), None);
    match s
        .attempts
        .try_reserve("bob@example.com", None, now, plus_seconds(now, -60), 5)
        .await
        .unwrap()
    {
        Reservation::Reserved { failures, .. } => assert_eq!(failures, 1, "delete cleared the lockout rows"),
        Reservation::Locked => panic!("not locked"),
    }
    s.attempts.clear("bob@example.com").await.unwrap();
    s.users.ping().await.unwrap();
    // One lower-cased form for every backend: Unicode letters fold (SQL's lower() does not),
    // and no more than that (a case-insensitive regex folded `ſ` into `s`).
    let accented = s
        .users
        .create(&user("0123456789abcdef0123456789abcd01", "Ärger.Sam@example.com", now))
        .await
        .unwrap();
    assert_eq!(
        s.users
            .find_by_email("ärger.sam@example.com")
            .await
            .unwrap()
            .map(|u| u.id),
        Some(accented.id.clone()),
        "non-ASCII letters compare without case"
    );
    assert_eq!(
        s.users.find_by_email("ärger.\u{17f}am@example.com").await.unwrap(),
        None,
        "a long s is another letter, not another spelling of s"
    );
    assert_eq!(
        s.users
            .create(&user("0123456789abcdef0123456789abcd02", "ÄRGER.SAM@example.com", now))
            .await,
        Err(StoreError::Conflict("email".into())),
        "uniqueness ignores non-ASCII case too"
    );
}

/// Roles, the admin list and the counts. Other cases leave rows behind, so counts are compared
/// before and after, and the listed users are made newer than anything else.
async fn listing_contract(s: &Stores, now: Timestamp) {
    let before = s.users.counts().await.unwrap();
    let live_before = s.pending.count_live(now).await.unwrap();
    let mut made = Vec::new();
    for i in 0..5 {
        // Two share a creation time: the order between them must still be stable.
        let created = plus_seconds(now, 1_000_000 + [0, 1, 1, 2, 3][i]);
        let mut u = user(
            &format!("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa{i:02}"),
            &format!("listed{i}@example.com"),
            created,
        );
        u.is_active = i != 0;
        u.is_verified = i >= 3;
        u.is_superuser = i == 4;
        u.role = if i == 2 { "editor".into() } else { "user".into() };
        made.push(s.users.create(&u).await.unwrap());
    }
    assert_eq!(
        s.users.get(&made[2].id).await.unwrap().map(|u| u.role),
        Some("editor".to_string()),
        "the role is stored"
    );
    let promoted = s
        .users
        .update(
            &made[2].id,
            &UserPatch {
                role: Some("admin:billing".into()),
                ..UserPatch::default()
            },
            now,
        )
        .await
        .unwrap();
    assert_eq!(promoted.role, "admin:billing", "the role can be changed");
    let after = s.users.counts().await.unwrap();
    assert_eq!(
        s.users.total().await.unwrap(),
        after.total,
        "the plain count agrees with the counts by flag"
    );
    assert_eq!(
        (
            after.total - before.total,
            after.active - before.active,
            after.verified - before.verified,
            after.superusers - before.superusers,
            after.active_superusers - before.active_superusers
        ),
        (5, 4, 2, 1, 1),
        "counts by flag"
    );
    let ids = |page: Vec<User>| page.into_iter().map(|u| u.id).collect::<Vec<_>>();
    let all = ids(s.users.list(0, 5).await.unwrap());
    assert_eq!(all.len(), 5);
    assert_eq!(all[0], made[4].id, "newest first");
    assert_eq!(all[1], made[3].id);
    assert_eq!(all[4], made[0].id, "oldest of these last");
    let mut tied = [made[1].id.clone(), made[2].id.clone()];
    tied.sort();
    tied.reverse();
    assert_eq!(all[2..4], tied[..], "ties go by id, descending");
    let mut paged = ids(s.users.list(0, 2).await.unwrap());
    paged.extend(ids(s.users.list(2, 2).await.unwrap()));
    paged.extend(ids(s.users.list(4, 1).await.unwrap()));
    assert_eq!(paged, all, "pages neither repeat nor skip");
    assert!(
        s.users.list(u64::MAX / 2, 10).await.unwrap().is_empty(),
        "past the end: empty"
    );
    assert_eq!(s.users.list(0, 0).await.unwrap(), Vec::new());

    s.pending
        .put(&pending(
            "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb01",
            "live@example.com",
            "h-live",
            now,
        ))
        .await
        .unwrap();
    let mut stale = pending("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb02", "stale@example.com", "h-stale", now);
    stale.expires_at = now;
    s.pending.put(&stale).await.unwrap();
    assert_eq!(
        s.pending.count_live(now).await.unwrap() - live_before,
        1,
        "a row expiring now is not live"
    );
    s.pending.take_by_email("live@example.com").await.unwrap();
    s.pending.take_by_email("stale@example.com").await.unwrap();
    for u in &made {
        s.users.delete(u).await.unwrap();
    }
}

/// A pending row without its id, which backends may assign themselves (Mongo's ObjectId).
fn without_id(p: Option<PendingRegistration>) -> Option<PendingRegistration> {
    p.map(|p| PendingRegistration { id: String::new(), ..p })
}

async fn pending_contract(s: &Stores, now: Timestamp, parallelism: usize) {
    let p = pending("33333333333333333333333333333333", "pen@example.com", "h1", now);
    s.pending.put(&p).await.unwrap();
    assert_eq!(
        without_id(s.pending.find_by_email("PEN@example.com").await.unwrap()),
        without_id(Some(p.clone()))
    );
    // A second put for the same email replaces the row and kills the old token.
    let p2 = pending(
        "44444444444444444444444444444444",
        "pen@example.com",
        "h2",
        plus_seconds(now, 1),
    );
    s.pending.put(&p2).await.unwrap();
    assert_eq!(s.pending.take_by_token_hash("h1").await.unwrap(), None);
    assert_eq!(
        without_id(s.pending.find_by_email("pen@example.com").await.unwrap()),
        without_id(Some(p2.clone()))
    );
    // take is atomic: one winner among parallel takers.
    let takes = futures_join((0..parallelism).map(|_| {
        let pending = s.pending.clone();
        async move { pending.take_by_token_hash("h2").await.unwrap() }
    }))
    .await;
    assert_eq!(
        takes.iter().filter(|t| t.is_some()).count(),
        1,
        "a token is taken exactly once"
    );
    assert_eq!(s.pending.find_by_email("pen@example.com").await.unwrap(), None);
    s.pending.put(&p).await.unwrap();
    assert_eq!(
        without_id(s.pending.take_by_email("pen@example.com").await.unwrap()),
        without_id(Some(p))
    );
    assert_eq!(s.pending.take_by_email("pen@example.com").await.unwrap(), None);
}

async fn revocation_contract(s: &Stores, now: Timestamp, parallelism: usize) {
    assert!(!s.revocations.is_revoked("j1").await.unwrap());
    assert!(s.revocations.revoke("j1", plus_seconds(now, 60)).await.unwrap());
    assert!(
        !s.revocations.revoke("j1", plus_seconds(now, 60)).await.unwrap(),
        "revoke is idempotent"
    );
    assert!(s.revocations.is_revoked("j1").await.unwrap());
    let wins = futures_join((0..parallelism).map(|_| {
        let r = s.revocations.clone();
        async move { r.revoke("j-race", plus_seconds(now, 60)).await.unwrap() }
    }))
    .await;
    assert_eq!(
        wins.iter().filter(|w| **w).count(),
        1,
        "exactly one caller claims a jti"
    );
}

/// The session read answers exactly what `users.get` and `revocations.is_revoked` answer,
/// in each of the four combinations, and sees a revocation at once.
async fn session_contract(s: &Stores, now: Timestamp) {
    let mut u = user("00000000000000000000000000000051", "session@example.com", now);
    u.is_active = false;
    let u = s.users.create(&u).await.unwrap();
    let stored = s.users.get(&u.id).await.unwrap();
    assert!(stored.is_some());
    let both = |user: Option<User>, revoked: bool| SessionRecord { user, revoked };
    assert_eq!(
        s.sessions.lookup(&u.id, "js-1").await.unwrap(),
        both(stored.clone(), false),
        "a live token of an existing (here inactive) user"
    );
    assert!(s.revocations.revoke("js-1", plus_seconds(now, 60)).await.unwrap());
    assert_eq!(
        s.sessions.lookup(&u.id, "js-1").await.unwrap(),
        both(stored, true),
        "a revocation is seen by the next lookup"
    );
    assert_eq!(s.sessions.lookup("nope", "js-1").await.unwrap(), both(None, true));
    assert_eq!(s.sessions.lookup("nope", "js-2").await.unwrap(), both(None, false));
    assert!(s.users.delete(&u).await.unwrap());
}

fn oauth_state(id: &str, now: Timestamp) -> OAuthState {
    OAuthState {
        id: id.into(),
        provider: "google".into(),
        code_verifier: "v".repeat(86),
        nonce: "n".repeat(22),
        redirect_to: "/account/me".into(),
        mode: OAuthMode::Signin,
        linking_user_id: None,
        created_at: now,
        expires_at: plus_seconds(now, 300),
        result_token: None,
        result_was_new: false,
    }
}

/// Links keep both unique keys, list oldest first and die with their account; unlinking
/// never removes an account's last link when asked not to, even under a race; a round trip
/// is taken once, and a completed one only once it is completed.
async fn oauth_contract(s: &Stores, now: Timestamp, parallelism: usize) {
    let owner = s
        .users
        .create(&user("00000000000000000000000000000061", "linked@example.com", now))
        .await
        .unwrap();
    let other = "00000000000000000000000000000062";
    let ids = std::sync::atomic::AtomicU32::new(70);
    let link = |user_id: &str, provider: &str, subject: &str, at: Timestamp| OAuthIdentity {
        id: format!("{:0>32}", ids.fetch_add(1, std::sync::atomic::Ordering::Relaxed)),
        user_id: user_id.into(),
        provider: provider.into(),
        subject_id: subject.into(),
        email: Some("linked@example.com".into()),
        linked_at: at,
        last_used_at: None,
    };
    let google = s.oauth.link(&link(&owner.id, "google", "sub-1", now)).await.unwrap();
    assert_eq!(s.oauth.identity("google", "sub-1").await.unwrap(), Some(google.clone()));
    assert_eq!(s.oauth.identity("google", "sub-2").await.unwrap(), None);
    assert_eq!(s.oauth.identity("corp", "sub-1").await.unwrap(), None);
    assert_eq!(
        s.oauth.link(&link(other, "google", "sub-1", now)).await,
        Err(StoreError::Conflict("provider_subject".into())),
        "a subject links to one account"
    );
    assert_eq!(
        s.oauth.link(&link(&owner.id, "google", "sub-9", now)).await,
        Err(StoreError::Conflict("user_provider".into())),
        "an account links to a provider once"
    );
    let corp = s
        .oauth
        .link(&link(&owner.id, "corp", "sub-1", plus_seconds(now, 1)))
        .await
        .unwrap();
    assert_eq!(
        s.oauth.identities_of(&owner.id).await.unwrap(),
        vec![google.clone(), corp.clone()]
    );
    assert_eq!(s.oauth.identities_of(other).await.unwrap(), vec![]);
    s.oauth.touch(&google.id, plus_seconds(now, 5)).await.unwrap();
    assert_eq!(
        s.oauth
            .identity("google", "sub-1")
            .await
            .unwrap()
            .and_then(|i| i.last_used_at),
        Some(plus_seconds(now, 5))
    );
    assert_eq!(
        s.oauth.unlink(&owner.id, "github", true).await.unwrap(),
        Unlinked::NotLinked
    );
    // Two links, both unlinked at once by a password-less account: one may go, never both.
    let (a, b) = futures_util::future::join(
        s.oauth.unlink(&owner.id, "google", true),
        s.oauth.unlink(&owner.id, "corp", true),
    )
    .await;
    let removed = [a.unwrap(), b.unwrap()]
        .iter()
        .filter(|u| **u == Unlinked::Removed)
        .count();
    let left = s.oauth.identities_of(&owner.id).await.unwrap();
    assert!(removed == 1 && left.len() == 1, "{removed} removed, {left:?} left");
    let last = &left[0].provider;
    assert_eq!(
        s.oauth.unlink(&owner.id, last, true).await.unwrap(),
        Unlinked::LastMethod
    );
    assert_eq!(s.oauth.unlink(&owner.id, last, false).await.unwrap(), Unlinked::Removed);
    s.oauth.link(&link(&owner.id, "google", "sub-1", now)).await.unwrap();
    assert!(s.users.delete(&owner).await.unwrap());
    assert_eq!(
        s.oauth.identity("google", "sub-1").await.unwrap(),
        None,
        "links die with their account"
    );

    // Round trips.
    let waiting = oauth_state("contract-state-1", now);
    s.oauth.put_state(&waiting).await.unwrap();
    assert_eq!(
        s.oauth.take_completed_state(&waiting.id).await.unwrap(),
        None,
        "a round trip whose callback has not completed is not handed out"
    );
    let takes = futures_join((0..parallelism).map(|_| {
        let oauth = s.oauth.clone();
        let id = waiting.id.clone();
        async move { oauth.take_waiting_state(&id).await.unwrap() }
    }))
    .await;
    let taken: Vec<_> = takes.into_iter().flatten().collect();
    assert_eq!(
        taken,
        vec![waiting.clone()],
        "the callback's claim is won once, and the row is intact"
    );
    let done = OAuthState {
        mode: OAuthMode::Link,
        linking_user_id: Some(other.into()),
        result_token: Some("result-token".into()),
        result_was_new: true,
        ..waiting
    };
    s.oauth.put_state(&done).await.unwrap();
    assert_eq!(
        s.oauth.take_waiting_state(&done.id).await.unwrap(),
        None,
        "a completed round trip is not claimed by a callback again"
    );
    let takes = futures_join((0..parallelism).map(|_| {
        let oauth = s.oauth.clone();
        let id = done.id.clone();
        async move { oauth.take_completed_state(&id).await.unwrap() }
    }))
    .await;
    let taken: Vec<_> = takes.into_iter().flatten().collect();
    assert_eq!(taken, vec![done.clone()], "an exchange is won once");
    assert_eq!(s.oauth.take_completed_state(&done.id).await.unwrap(), None);
}

/// Subscriptions are per account and endpoint, listed oldest first; subscribing an endpoint
/// again renews it in place; past the limit the oldest others go, never the one just saved;
/// they die with their account.
async fn push_contract(s: &Stores, now: Timestamp) {
    use crate::records::PushSubscription;
    let owner = s
        .users
        .create(&user("00000000000000000000000000000091", "push@example.com", now))
        .await
        .unwrap();
    let other = s
        .users
        .create(&user("00000000000000000000000000000092", "push-other@example.com", now))
        .await
        .unwrap();
    let sub = |id: u32, user_id: &str, n: u32, keys: &str, at: i64| PushSubscription {
        id: format!("{id:0>32}"),
        user_id: user_id.to_string(),
        endpoint: format!("https://push.example/{n}"),
        p256dh: format!("p256dh-{keys}"),
        auth: format!("auth-{keys}"),
        created_at: plus_seconds(now, at),
    };
    let endpoints = |list: Vec<PushSubscription>| -> Vec<String> { list.into_iter().map(|s| s.endpoint).collect() };
    for n in 0..3 {
        s.push
            .subscribe(&sub(9100 + n, &owner.id, n, "a", n as i64), 3)
            .await
            .unwrap();
    }
    // The same browser for another account is that account's own subscription.
    s.push.subscribe(&sub(9120, &other.id, 0, "b", 0), 3).await.unwrap();
    let ep = |n: u32| format!("https://push.example/{n}");
    assert_eq!(
        endpoints(s.push.subscriptions(&owner.id).await.unwrap()),
        [ep(0), ep(1), ep(2)],
        "oldest first"
    );
    // Subscribing an endpoint again takes the new keys and time, and keeps its id.
    s.push.subscribe(&sub(9150, &owner.id, 0, "c", 10), 3).await.unwrap();
    let list = s.push.subscriptions(&owner.id).await.unwrap();
    assert_eq!(endpoints(list.clone()), [ep(1), ep(2), ep(0)]);
    assert_eq!(list[2].id, format!("{:0>32}", 9100));
    assert_eq!((list[2].p256dh.as_str(), list[2].auth.as_str()), ("p256dh-c", "auth-c"));
    // Past the limit the oldest goes.
    s.push.subscribe(&sub(9103, &owner.id, 3, "a", 20), 3).await.unwrap();
    assert_eq!(
        endpoints(s.push.subscriptions(&owner.id).await.unwrap()),
        [ep(2), ep(0), ep(3)]
    );
    // The one just saved stays even when another clock made it look oldest.
    s.push.subscribe(&sub(9104, &owner.id, 4, "a", -5), 3).await.unwrap();
    assert_eq!(
        endpoints(s.push.subscriptions(&owner.id).await.unwrap()),
        [ep(4), ep(0), ep(3)]
    );
    assert!(s.push.unsubscribe(&owner.id, &ep(4)).await.unwrap());
    assert!(!s.push.unsubscribe(&owner.id, &ep(4)).await.unwrap(), "already gone");
    assert!(!s.push.unsubscribe(&owner.id, &ep(2)).await.unwrap(), "trimmed");
    assert!(!s.push.unsubscribe(&owner.id, &ep(9)).await.unwrap());
    assert!(
        !s.push.unsubscribe(&other.id, &ep(3)).await.unwrap(),
        "another account's"
    );
    assert_eq!(endpoints(s.push.subscriptions(&other.id).await.unwrap()), [ep(0)]);
    // Deleting the account deletes its subscriptions, and only its.
    assert!(s.users.delete(&owner).await.unwrap());
    assert!(s.push.subscriptions(&owner.id).await.unwrap().is_empty());
    assert_eq!(s.push.subscriptions(&other.id).await.unwrap().len(), 1);
}

/// A rotation spends its token once: of parallel rotations exactly one wins and the rest see
/// reuse; an expired token is expired, an unknown one unknown; killing a family marks every
/// token in it, answers their sessions, and stops any later rotation; tokens die with their
/// account.
async fn refresh_contract(s: &Stores, now: Timestamp, parallelism: usize) {
    use crate::ports::{NextRefresh, Rotation};
    let owner = s
        .users
        .create(&user("00000000000000000000000000000081", "refresh@example.com", now))
        .await
        .unwrap();
    let first = RefreshToken {
        id: "00000000000000000000000000000082".into(),
        user_id: owner.id.clone(),
        family_id: "00000000000000000000000000000083".into(),
        token_hash: "h-first".into(),
        access_jti: "jti-first".into(),
        created_at: now,
        expires_at: plus_seconds(now, 3600),
        used_at: None,
        revoked: false,
    };
    s.refresh.put(&first).await.unwrap();
    assert_eq!(
        s.refresh.family_of_session("jti-first").await.unwrap().as_deref(),
        Some(first.family_id.as_str())
    );
    assert_eq!(s.refresh.family_of_session("jti-none").await.unwrap(), None);
    let next = |n: usize| NextRefresh {
        id: format!("{:0>32}", 900 + n),
        token_hash: format!("h-next-{n}"),
        access_jti: format!("jti-next-{n}"),
        expires_at: plus_seconds(now, 7200),
    };
    let later = plus_seconds(now, 10);
    let outcomes = futures_join((0..parallelism).map(|n| {
        let refresh = s.refresh.clone();
        let next = next(n);
        async move { refresh.rotate("h-first", &next, later).await.unwrap() }
    }))
    .await;
    let winners: Vec<_> = outcomes
        .iter()
        .filter_map(|o| match o {
            Rotation::Rotated { previous, next } => Some((previous, next)),
            _ => None,
        })
        .collect();
    assert_eq!(winners.len(), 1, "exactly one rotation wins: {outcomes:?}");
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, Rotation::Rotated { .. } | Rotation::Reused(_))),
        "the others see the token spent: {outcomes:?}"
    );
    let (previous, successor) = winners[0];
    assert_eq!((previous.id.as_str(), previous.created_at), (first.id.as_str(), now));
    assert_eq!(successor.family_id, first.family_id);
    assert_eq!(successor.user_id, owner.id);
    assert!(!successor.revoked && successor.used_at.is_none());
    assert_eq!(
        s.refresh.rotate("h-nope", &next(99), later).await.unwrap(),
        Rotation::Unknown
    );
    // Killing the family answers each token's session and stops the successor.
    let mut members: Vec<String> = s
        .refresh
        .revoke_family(&first.family_id)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.access_jti)
        .collect();
    members.sort();
    assert_eq!(members, vec!["jti-first".to_string(), successor.access_jti.clone()]);
    assert!(matches!(
        s.refresh.rotate(&successor.token_hash, &next(98), later).await.unwrap(),
        Rotation::Reused(_)
    ));
    // Expiry.
    let old = RefreshToken {
        id: "00000000000000000000000000000084".into(),
        family_id: "00000000000000000000000000000085".into(),
        token_hash: "h-old".into(),
        access_jti: "jti-old".into(),
        expires_at: plus_seconds(now, 5),
        ..first.clone()
    };
    s.refresh.put(&old).await.unwrap();
    assert_eq!(
        s.refresh.rotate("h-old", &next(97), later).await.unwrap(),
        Rotation::Expired
    );
    assert!(s.users.delete(&owner).await.unwrap());
    assert_eq!(
        s.refresh.rotate("h-old", &next(96), now).await.unwrap(),
        Rotation::Unknown,
        "tokens die with their account"
    );
}

async fn attempts_contract(s: &Stores, now: Timestamp, parallelism: usize) {
    let since = plus_seconds(now, -900);
    // Old failures outside the window do not count.
    s.attempts
        .try_reserve(
            "eve@example.com",
            Some("10.0.0.1"),
            plus_seconds(now, -1000),
            plus_seconds(now, -2000),
            5,
        )
        .await
        .unwrap();
    let mut seen = Vec::new();
    for _ in 0..3 {
        match s
            .attempts
            .try_reserve("eve@example.com", None, now, since, 3)
            .await
            .unwrap()
        {
            Reservation::Reserved { failures, .. } => seen.push(failures),
            Reservation::Locked => seen.push(0),
        }
    }
    assert_eq!(seen, vec![1, 2, 3]);
    assert_eq!(
        s.attempts
            .try_reserve("eve@example.com", None, now, since, 3)
            .await
            .unwrap(),
        Reservation::Locked
    );
    s.attempts.clear("EVE@example.com").await.unwrap();
    let Reservation::Reserved { id, failures: 1 } = s
        .attempts
        .try_reserve("eve@example.com", None, now, since, 3)
        .await
        .unwrap()
    else {
        panic!("clear removes every failure");
    };
    s.attempts.release(id).await.unwrap();
    assert!(
        matches!(
            s.attempts
                .try_reserve("eve@example.com", None, now, since, 3)
                .await
                .unwrap(),
            Reservation::Reserved { failures: 1, .. }
        ),
        "release removes the reserved row"
    );
    s.attempts.clear("eve@example.com").await.unwrap();
    // Parallel reservations never exceed the threshold.
    let outcomes = futures_join((0..parallelism).map(|_| {
        let a = s.attempts.clone();
        async move { a.try_reserve("race@example.com", None, now, since, 5).await.unwrap() }
    }))
    .await;
    let reserved = outcomes
        .iter()
        .filter(|o| matches!(o, Reservation::Reserved { .. }))
        .count();
    assert_eq!(reserved, 5.min(parallelism), "exactly threshold reservations succeed");
    s.attempts.clear("race@example.com").await.unwrap();
}

fn code(user_id: &str, kind: CodeKind, hash: &str, now: Timestamp, max_attempts: i64) -> MfaCode {
    MfaCode {
        user_id: user_id.into(),
        kind,
        code_hash: hash.into(),
        expires_at: plus_seconds(now, 300),
        attempts: 0,
        max_attempts,
        created_at: now,
    }
}

async fn mfa_contract(s: &Stores, now: Timestamp, parallelism: usize) {
    let c = &s.mfa_codes;
    assert_eq!(
        c.check("u1", CodeKind::LoginMfa, "h", now).await.unwrap(),
        CodeCheck::Missing
    );
    c.put(&code("u1", CodeKind::LoginMfa, "h", now, 3)).await.unwrap();
    c.put(&code("u1", CodeKind::PhoneSetup, "p", now, 3)).await.unwrap();
    assert_eq!(
        c.check("u1", CodeKind::LoginMfa, "x", now).await.unwrap(),
        CodeCheck::Wrong { remaining: 2 }
    );
    assert_eq!(
        c.check("u1", CodeKind::LoginMfa, "x", now).await.unwrap(),
        CodeCheck::Wrong { remaining: 1 }
    );
    assert_eq!(
        c.check("u1", CodeKind::LoginMfa, "x", now).await.unwrap(),
        CodeCheck::Locked,
        "the last wrong guess locks"
    );
    assert_eq!(
        c.check("u1", CodeKind::LoginMfa, "h", now).await.unwrap(),
        CodeCheck::Missing,
        "a locked code is deleted"
    );
    assert_eq!(
        c.check("u1", CodeKind::PhoneSetup, "p", now).await.unwrap(),
        CodeCheck::Ok,
        "kinds are separate"
    );
    assert_eq!(
        c.check("u1", CodeKind::PhoneSetup, "p", now).await.unwrap(),
        CodeCheck::Missing,
        "a right code is used up"
    );
    // Re-issue replaces; expiry is checked before the hash and deletes the row.
    c.put(&code("u2", CodeKind::LoginMfa, "old", now, 5)).await.unwrap();
    c.put(&code("u2", CodeKind::LoginMfa, "new", now, 5)).await.unwrap();
    assert_eq!(
        c.check("u2", CodeKind::LoginMfa, "old", now).await.unwrap(),
        CodeCheck::Wrong { remaining: 4 }
    );
    assert_eq!(
        c.check("u2", CodeKind::LoginMfa, "new", plus_seconds(now, 301))
            .await
            .unwrap(),
        CodeCheck::Expired
    );
    assert_eq!(
        c.check("u2", CodeKind::LoginMfa, "new", now).await.unwrap(),
        CodeCheck::Missing
    );
    // delete_for_user
    c.put(&code("u3", CodeKind::LoginMfa, "h", now, 5)).await.unwrap();
    c.delete_for_user("u3").await.unwrap();
    assert_eq!(
        c.check("u3", CodeKind::LoginMfa, "h", now).await.unwrap(),
        CodeCheck::Missing
    );
    // Parallel wrong guesses are each counted once: with max 5, exactly 4 Wrong and the rest Locked/Missing.
    c.put(&code("u4", CodeKind::LoginMfa, "right", now, 5)).await.unwrap();
    let outcomes = futures_join((0..parallelism.max(6)).map(|_| {
        let c = c.clone();
        async move { c.check("u4", CodeKind::LoginMfa, "wrong", now).await.unwrap() }
    }))
    .await;
    let wrong = outcomes.iter().filter(|o| matches!(o, CodeCheck::Wrong { .. })).count();
    let locked = outcomes.iter().filter(|o| **o == CodeCheck::Locked).count();
    assert_eq!((wrong, locked), (4, 1), "{outcomes:?}");
    // Parallel right guesses: exactly one Ok.
    c.put(&code("u5", CodeKind::LoginMfa, "right", now, 5)).await.unwrap();
    let outcomes = futures_join((0..parallelism).map(|_| {
        let c = c.clone();
        async move { c.check("u5", CodeKind::LoginMfa, "right", now).await.unwrap() }
    }))
    .await;
    assert_eq!(outcomes.iter().filter(|o| **o == CodeCheck::Ok).count(), 1);
}

async fn counter_contract(s: &Stores, now: Timestamp, parallelism: usize) {
    let exp = plus_seconds(now, 60);
    assert_eq!(s.counter.increment("k1", now, exp).await.unwrap(), 1);
    assert_eq!(s.counter.increment("k1", now, exp).await.unwrap(), 2);
    assert_eq!(s.counter.increment("k2", now, exp).await.unwrap(), 1);
    let mut got = futures_join((0..parallelism).map(|_| {
        let c = s.counter.clone();
        async move { c.increment("k-race", now, exp).await.unwrap() }
    }))
    .await;
    got.sort_unstable();
    assert_eq!(
        got,
        (1..=parallelism as u64).collect::<Vec<_>>(),
        "every increment is counted once"
    );
}

/// Awaits every future concurrently.
pub async fn futures_join<F: std::future::Future>(futs: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    futures_util::future::join_all(futs).await
}

/// The in-memory stores, for running [`contract`] against the reference implementation.
pub fn memory_stores() -> Stores {
    Stores::from_one(MemoryStore::new(), Arc::new(MemoryCounter::default()))
}

/// The answer to one in-process request.
#[derive(Debug)]
pub struct Answer {
    /// The status.
    pub status: http::StatusCode,
    /// The headers.
    pub headers: http::HeaderMap,
    /// The body as text.
    pub text: String,
    /// The body as JSON (`Null` when it is empty or not JSON).
    pub json: serde_json::Value,
}

/// The shared in-process HTTP client of the core's and the native crate's tests: one request
/// through `app`, with an optional bearer token and JSON body. The client IP is put where a
/// runtime puts it, so rate limits and lockout rows see one.
pub async fn oneshot(
    app: &axum::Router,
    method: http::Method,
    path: &str,
    token: Option<&str>,
    body: Option<&serde_json::Value>,
) -> Answer {
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, "testserver");
    if let Some(token) = token {
        req = req.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let body = match body {
        Some(v) => {
            req = req.header(http::header::CONTENT_TYPE, "application/json");
            axum::body::Body::from(v.to_string())
        }
        None => axum::body::Body::empty(),
    };
    oneshot_request(app, req.body(body).expect("a valid request")).await
}

/// [`oneshot`] for a request built by hand (odd headers, raw bodies); a client IP is added
/// when the request has none.
pub async fn oneshot_request(app: &axum::Router, mut req: http::Request<axum::body::Body>) -> Answer {
    use tower::ServiceExt;
    if req.extensions().get::<crate::http::ClientIp>().is_none() {
        req.extensions_mut().insert(crate::http::ClientIp("203.0.113.7".into()));
    }
    let resp = app.clone().oneshot(req).await.expect("the router answers");
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .expect("the body reads");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    Answer {
        status,
        headers,
        text,
        json,
    }
}
