//! The admin flows that black-box scenarios cannot reach on a fresh database (an unverified
//! account, a pending row beside an existing user, an expired row) and the host's own ways
//! in, on the in-memory stores.

use std::sync::Arc;

use regstack_core::config::Config;
use regstack_core::flows::admin::{self, AdminPatch, Bootstrapped};
use regstack_core::flows::session::authenticate;
use regstack_core::flows::FlowError;
use regstack_core::records::{PendingRegistration, User};
use regstack_core::render::Renderer;
use regstack_core::testing::{test_ports, TestPorts};
use regstack_core::time::plus_seconds;
use regstack_core::Engine;

async fn engine(config: Config) -> (Arc<Engine>, TestPorts) {
    let t = test_ports();
    let config = Config {
        jwt_secret: "0123456789abcdef0123456789abcdef".into(),
        enable_admin_router: true,
        ..config
    };
    let engine = Engine::new(config, t.ports.clone(), Renderer::new(Default::default()))
        .await
        .unwrap();
    (Arc::new(engine), t)
}

async fn unverified(engine: &Engine, email: &str, password: Option<&str>) -> User {
    let hash = match password {
        Some(p) => Some(engine.ports.hasher.hash(p).await.unwrap()),
        None => None,
    };
    let user = engine.new_user(email.into(), hash);
    engine.ports.users.create(&user).await.unwrap()
}

#[regstack_macros::dual_test]
async fn resend_verification_mails_a_link_that_verifies_the_account() {
    let (engine, t) = engine(Config::default()).await;
    let user = unverified(&engine, "late@example.com", Some("correct horse")).await;
    admin::resend_verification(&engine, &user.id).await.unwrap();
    let token = t.mailer.last_token("late@example.com", "/verify").expect("a link");
    assert_eq!(t.events.names(), vec!["verification_requested"]);
    let verified = regstack_core::flows::register::verify(&engine, &token).await.unwrap();
    assert_eq!((verified.id, verified.is_verified), (user.id.clone(), true));
    assert!(matches!(
        admin::resend_verification(&engine, &user.id).await,
        Err(FlowError::AlreadyVerified)
    ));
    let oauth_only = unverified(&engine, "oauth@example.com", None).await;
    assert!(matches!(
        admin::resend_verification(&engine, &oauth_only.id).await,
        Err(FlowError::NoPasswordToVerify)
    ));
    assert!(matches!(
        admin::resend_verification(&engine, "nobody").await,
        Err(FlowError::UserNotFound)
    ));
}

#[regstack_macros::dual_test]
async fn resend_verification_honours_the_recipients_email_limit() {
    let (engine, t) = engine(Config {
        email_rate_limit: Some("1/hour".into()),
        ..Config::default()
    })
    .await;
    let user = unverified(&engine, "capped@example.com", Some("correct horse")).await;
    admin::resend_verification(&engine, &user.id).await.unwrap();
    assert!(matches!(
        admin::resend_verification(&engine, &user.id).await,
        Err(FlowError::RateLimited { .. })
    ));
    assert_eq!(t.mailer.sent.lock().unwrap().len(), 1, "no second email past the limit");
}

fn pending(engine: &Engine, email: &str, ttl: i64) -> PendingRegistration {
    let now = engine.now();
    PendingRegistration {
        id: engine.new_id(),
        email: email.into(),
        hashed_password: "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaA".into(),
        full_name: Some("Pen Ding".into()),
        token_hash: format!("h-{email}"),
        created_at: now,
        expires_at: plus_seconds(now, ttl),
    }
}

#[regstack_macros::dual_test]
async fn promote_pending_refuses_expired_rows_and_taken_addresses() {
    let (engine, t) = engine(Config {
        default_user_role: "member".into(),
        ..Config::default()
    })
    .await;
    engine
        .ports
        .pending
        .put(&pending(&engine, "new@example.com", 3600))
        .await
        .unwrap();
    let user = admin::promote_pending(&engine, "NEW@example.com").await.unwrap();
    assert_eq!(
        (
            user.is_verified,
            user.is_active,
            user.full_name.as_deref(),
            user.role.as_str()
        ),
        (true, true, Some("Pen Ding"), "member"),
        "a promoted account gets the default role"
    );
    assert_eq!(t.events.names(), vec!["user_verified"]);

    engine
        .ports
        .pending
        .put(&pending(&engine, "old@example.com", 0))
        .await
        .unwrap();
    assert!(matches!(
        admin::promote_pending(&engine, "old@example.com").await,
        Err(FlowError::NoPendingRegistration(e)) if e == "old@example.com"
    ));
    assert_eq!(
        engine.ports.pending.find_by_email("old@example.com").await.unwrap(),
        None,
        "the expired row is deleted"
    );

    unverified(&engine, "both@example.com", Some("correct horse")).await;
    engine
        .ports
        .pending
        .put(&pending(&engine, "both@example.com", 3600))
        .await
        .unwrap();
    assert!(matches!(
        admin::promote_pending(&engine, "both@example.com").await,
        Err(FlowError::UserExists(e)) if e == "both@example.com"
    ));
    assert!(
        engine
            .ports
            .pending
            .find_by_email("both@example.com")
            .await
            .unwrap()
            .is_some(),
        "a refused promotion leaves the row"
    );
}

#[regstack_macros::dual_test]
async fn bootstrap_admin_creates_promotes_and_says_which() {
    let (engine, _t) = engine(Config::default()).await;
    let (did, admin_user) = admin::bootstrap_admin(&engine, "Boss@Example.com", "correct horse")
        .await
        .unwrap();
    assert_eq!(did, Bootstrapped::Created);
    assert!(admin_user.is_superuser && admin_user.is_active && admin_user.is_verified);
    assert_eq!(admin_user.email, "boss@example.com");
    let (did, _) = admin::bootstrap_admin(&engine, "boss@example.com", "").await.unwrap();
    assert_eq!(did, Bootstrapped::AlreadyAdmin);

    let member = unverified(&engine, "member@example.com", Some("member password")).await;
    engine
        .ports
        .users
        .update(
            &member.id,
            &regstack_core::records::UserPatch {
                is_active: Some(false),
                ..Default::default()
            },
            engine.now(),
        )
        .await
        .unwrap();
    let (did, promoted) = admin::bootstrap_admin(&engine, "member@example.com", "ignored password")
        .await
        .unwrap();
    assert_eq!(did, Bootstrapped::Promoted);
    assert!(promoted.is_superuser);
    assert_eq!(promoted.hashed_password, member.hashed_password, "the password is kept");
    assert!(!promoted.is_active, "a disabled account stays disabled");

    assert!(matches!(
        admin::bootstrap_admin(&engine, "short@example.com", "short").await,
        Err(FlowError::PasswordLength)
    ));
    assert!(matches!(
        admin::bootstrap_admin(&engine, "not an address", "long enough").await,
        Err(FlowError::InvalidEmail(_))
    ));
}

#[regstack_macros::dual_test]
async fn disabling_ends_sessions_and_the_last_superuser_keeps_the_flag() {
    let (engine, _t) = engine(Config::default()).await;
    let (_, boss) = admin::bootstrap_admin(&engine, "boss@example.com", "correct horse")
        .await
        .unwrap();
    let (token, _) = engine.jwt.mint(
        regstack_core::jwt::Purpose::Session,
        &boss.id,
        None,
        "jti-boss",
        engine.now(),
        engine.config.jwt_ttl_seconds,
    );
    let session = authenticate(&engine, Some(&format!("Bearer {token}"))).await.unwrap();
    let demote = AdminPatch {
        is_superuser: Some(false),
        ..AdminPatch::default()
    };
    assert!(matches!(
        admin::update_user(&engine, &boss.id, demote.clone()).await,
        Err(FlowError::LastSuperuser)
    ));
    let disable = AdminPatch {
        is_active: Some(false),
        ..AdminPatch::default()
    };
    assert!(matches!(
        admin::update_user(&engine, &boss.id, disable.clone()).await,
        Err(FlowError::LastSuperuser)
    ));
    assert!(matches!(
        admin::delete_user(&engine, &boss.id).await,
        Err(FlowError::LastSuperuser)
    ));
    // A second administrator who is disabled does not count: nobody could sign in.
    let (_, other) = admin::bootstrap_admin(&engine, "other@example.com", "correct horse")
        .await
        .unwrap();
    admin::update_user(&engine, &other.id, disable.clone()).await.unwrap();
    assert!(matches!(
        admin::update_user(&engine, &boss.id, demote.clone()).await,
        Err(FlowError::LastSuperuser)
    ));
    let enable = AdminPatch {
        is_active: Some(true),
        ..AdminPatch::default()
    };
    admin::update_user(&engine, &other.id, enable).await.unwrap();
    let after = admin::update_user(&engine, &boss.id, disable).await.unwrap();
    assert!(!after.is_active);
    assert!(
        after
            .tokens_invalidated_after
            .is_some_and(|cut| cut >= session.claims.iat),
        "the cutoff moved past the session: {after:?}"
    );
    assert!(
        authenticate(&engine, Some(&format!("Bearer {token}"))).await.is_err(),
        "the session died with the account"
    );
}
