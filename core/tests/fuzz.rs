//! Bounded-time fuzzing of every parser that takes untrusted input (docs/security.md,
//! "Fuzzing"): JWT decoding for each purpose, the JSON body of every route, path
//! canonicalisation, identity-header and relay-signature verification, rate-limit specs and
//! config loading.
//!
//! Each target first replays its regression corpus (inputs that once crashed or misbehaved),
//! then feeds random inputs for `REGSTACK_FUZZ_SECONDS` seconds (default 2). The property is
//! always the same: the parser answers (an error is fine) and never panics; for the routes,
//! the answer is never a 5xx. A failure prints the input that broke it, to be added to the
//! corpus once fixed.
#![cfg(not(target_arch = "wasm32"))]
// The harness, not the core, reads its time budget and the wall clock: it runs on the test
// host, outside the core's no-I/O rule.
#![allow(clippy::disallowed_methods)]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, Method, Request};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};
use regstack_core::config::{self, Config, Sources};
use regstack_core::http::ClientIp;
use regstack_core::jwt::{JwtCodec, Purpose};
use regstack_core::rate_limit::RateLimit;
use regstack_core::render::Renderer;
use regstack_core::routes::{Access, Endpoint};
use regstack_core::testing::{oneshot, oneshot_request, test_ports};
use regstack_core::time::from_micros;
use regstack_core::{forward_auth, relay, Engine};
use serde_json::{json, Value};

const SECRET: &str = "0123456789abcdef0123456789abcdef";

/// A well-formed HS256 token whose signature is 3 bytes: it panicked inside a JWT library's
/// signature conversion and dropped the connection (native) or the isolate (edge).
const SHORT_SIGNATURE: &str = "eyJhbGciOiJIUzI1NiJ9.e30.AAAA";

fn budget() -> Duration {
    let seconds = std::env::var("REGSTACK_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(2.0);
    Duration::from_secs_f64(seconds)
}

/// Runs `check` on every corpus entry, then on random values of `strategy` until the budget is
/// spent; a panic fails the test with the input that caused it.
fn fuzz<S: Strategy>(name: &str, corpus: Vec<S::Value>, strategy: S, check: impl Fn(&S::Value))
where
    S::Value: std::fmt::Debug,
{
    let run = |input: &S::Value| {
        if catch_unwind(AssertUnwindSafe(|| check(input))).is_err() {
            panic!("fuzz target {name} panicked on {input:?}");
        }
    };
    corpus.iter().for_each(run);
    let mut runner = TestRunner::new(RunnerConfig::default());
    let deadline = Instant::now() + budget();
    let mut cases = 0u64;
    while Instant::now() < deadline {
        let tree = strategy.new_tree(&mut runner).expect("strategy generates");
        run(&tree.current());
        cases += 1;
    }
    eprintln!("fuzz {name}: {} corpus entries and {cases} random inputs", corpus.len());
}

/// Token-shaped strings: three (sometimes two or four) base64url parts of random bytes or
/// random JSON, plus the odd non-base64 character.
fn token_like() -> impl Strategy<Value = String> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    let part = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..80).prop_map(|b| URL_SAFE_NO_PAD.encode(b)),
        json_value().prop_map(|v| URL_SAFE_NO_PAD.encode(v.to_string())),
        Just(URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256"}"#)),
        Just(URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#)),
        "[ -~]{0,40}",
    ];
    prop_oneof![
        proptest::collection::vec(part.clone(), 3..=3).prop_map(|p| p.join(".")),
        proptest::collection::vec(part, 1..6).prop_map(|p| p.join(".")),
        any::<String>(),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null)),
        Just(json!(1e308)),
        Just(json!(u64::MAX)),
        any::<String>().prop_map(Value::from),
        "[a-z@.+ ]{0,30}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(field_name(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Mostly the field names the routes know, so the fuzzer gets past "unknown key".
fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("email".to_string()),
        Just("password".to_string()),
        Just("full_name".to_string()),
        Just("token".to_string()),
        Just("new_password".to_string()),
        Just("current_password".to_string()),
        Just("new_email".to_string()),
        Just("code".to_string()),
        Just("mfa_pending_token".to_string()),
        Just("pending_token".to_string()),
        Just("phone_number".to_string()),
        "[a-z_]{0,12}",
    ]
}

#[test]
fn jwt_decode_answers_for_any_string() {
    let codecs = [
        JwtCodec::new(SECRET, regstack_core::jwt::JwtAlgorithm::Hs256, None),
        JwtCodec::new(SECRET, regstack_core::jwt::JwtAlgorithm::Hs384, Some("app".into())),
        JwtCodec::new(SECRET, regstack_core::jwt::JwtAlgorithm::Hs512, None),
    ];
    let now = from_micros(1_767_268_800_000_000);
    let corpus = vec![
        SHORT_SIGNATURE.to_string(),
        "eyJhbGciOiJIUzM4NCJ9.e30.AAAA".into(),
        "eyJhbGciOiJIUzUxMiJ9.e30.".into(),
        "eyJhbGciOiJub25lIn0.e30.".into(),
        "..".into(),
        "a.b.c.d".into(),
        String::new(),
    ];
    fuzz("jwt_decode", corpus, token_like(), |token| {
        for codec in &codecs {
            for purpose in Purpose::ALL {
                assert!(
                    codec.decode(token, purpose, now).is_err(),
                    "an unsigned token was accepted"
                );
            }
        }
    });
}

#[test]
fn identity_and_relay_verification_answer_for_any_input() {
    type Headers = (
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let header = || proptest::option::of(prop_oneof![any::<String>(), "[0-9a-f]{0,70}", "-?[0-9]{0,20}"]);
    let strategy = (
        (header(), header(), header(), header(), header()),
        proptest::collection::vec(any::<u8>(), 0..200),
    );
    let corpus: Vec<(Headers, Vec<u8>)> = vec![
        (
            (
                Some("u".into()),
                Some("zz".into()),
                Some("1".into()),
                Some("-9223372036854775808".into()),
                Some("0".repeat(64)),
            ),
            vec![],
        ),
        (
            (
                None,
                None,
                Some("99999999999999999999".into()),
                Some("a".into()),
                Some("+1".into()),
            ),
            b"{}".to_vec(),
        ),
    ];
    fuzz(
        "identity_and_relay",
        corpus,
        strategy,
        |((id, email, superuser, timestamp, signature), body)| {
            let values = [id, email, superuser, timestamp, signature];
            let _ = forward_auth::verify(
                SECRET,
                |name| {
                    forward_auth::HEADERS
                        .iter()
                        .position(|h| *h == name)
                        .and_then(|i| values[i].as_deref())
                },
                1_767_268_800,
            );
            let _ = relay::open(
                SECRET,
                values[3].as_deref(),
                values[0].as_deref(),
                values[4].as_deref(),
                body,
                1_767_268_800,
            );
        },
    );
}

#[test]
fn path_canonicalisation_answers_for_any_path() {
    let patterns = vec!["/app/*".to_string(), "/admin".to_string()];
    let strategy = prop_oneof![any::<String>(), "[/%.;a-zA-Z0-9\\\\\\x00 ]{0,60}"];
    let corpus = vec![
        "%".to_string(),
        "%%%".into(),
        "%2".into(),
        "/%252e%252e/app".into(),
        "/app/\0x".into(),
        "/../../..".into(),
        "/é%C3".into(),
    ];
    fuzz("canonical_path", corpus, strategy, |path| {
        let canonical = forward_auth::canonical_path(path);
        assert!(
            canonical.starts_with('/'),
            "canonical form {canonical:?} is not absolute"
        );
        let _ = forward_auth::is_protected(&patterns, path);
    });
}

#[test]
fn rate_limit_specs_and_config_answer_for_any_text() {
    let spec = prop_oneof![
        any::<String>(),
        "[0-9]{0,25}(/| per )[0-9]{0,22} ?(second|minute|hour|day)s?"
    ];
    let corpus = vec![
        "18446744073709551615/18446744073709551615 days".to_string(),
        "1/0 second".into(),
        "0/minute".into(),
        ";;".into(),
    ];
    fuzz("rate_limit_spec", corpus, spec, |s| {
        if let Ok(limits) = RateLimit::parse_all(s) {
            let now = from_micros(i64::MAX / 2);
            for l in limits {
                let _ = (l.key("login", "::1", now), l.retry_after(now), l.to_string());
            }
        }
    });
    let env_value = prop_oneof![
        any::<String>(),
        "-?[0-9]{0,30}",
        Just("[]".to_string()),
        Just("{}".to_string())
    ];
    let field = prop_oneof![
        Just("JWT_TTL_SECONDS"),
        Just("LOGIN_RATE_LIMIT"),
        Just("SMS_CODE_RATE_LIMIT"),
        Just("LOGIN_LOCKOUT_WINDOW_SECONDS"),
        Just("PASSWORD_HASH_MEMORY_KIB"),
        Just("ORIGIN_PROTECTED_PATHS"),
        Just("EMAIL__SMTP_PORT"),
        Just("RELAY_URL"),
        Just("DATABASE_URL"),
        Just("EXTRA_TEMPLATE_DIRS"),
    ];
    let strategy = (any::<String>(), proptest::collection::vec((field, env_value), 0..4));
    let corpus = vec![(
        "login_lockout_window_seconds = 9223372036854775807\njwt_ttl_seconds = -1".to_string(),
        vec![("SMS_CODE_TTL_SECONDS", "99999999999999999999".to_string())],
    )];
    fuzz("config_load", corpus, strategy, |(toml, env)| {
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (format!("REGSTACK_{k}"), v.clone())).collect();
        if let Ok(loaded) = config::load(Sources {
            toml: Some(toml),
            env: &env,
            ..Default::default()
        }) {
            let _ = loaded.config.validate();
        }
    });
}

/// Random JSON (and random bytes) to every route, signed in where the route needs it: the
/// answer is always a 4xx or 2xx with a JSON body, never a 5xx or a panic.
#[test]
fn every_route_answers_any_body_without_a_5xx() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut config = Config {
        jwt_secret: SECRET.into(),
        require_verification: false,
        enable_sms_2fa: true,
        relay_secret: Some("relay-secret-for-the-fuzz-target-0123456789".into()),
        password_hash_memory_kib: 64,
        password_hash_iterations: 1,
        ..Config::default()
    };
    config.sms_code_rate_limit = None;
    config.email_rate_limit = None;
    let (app, session) = rt.block_on(async {
        let t = test_ports();
        let engine = Engine::new(config, t.ports.clone(), Renderer::new(Default::default()))
            .await
            .unwrap();
        let app = regstack_core::http::router(Arc::new(engine));
        let body = json!({"email": "fuzz@example.com", "password": "correct horse"});
        oneshot(&app, Method::POST, "/register", None, Some(&body)).await;
        let login = oneshot(&app, Method::POST, "/login", None, Some(&body)).await.json;
        (app, login["access_token"].as_str().unwrap().to_string())
    });
    let endpoints: Vec<Endpoint> = Endpoint::ALL
        .iter()
        .copied()
        // Signing out would end the session the other targets need (it takes no body). The
        // routes that check `current_password` lock the account after a few random guesses
        // and then answer 429 before reading further; their bodies are still parsed and
        // validated first, which is what this target is about.
        .filter(|e| !matches!(e, Endpoint::Logout))
        .collect();
    let strategy = (
        0..endpoints.len(),
        prop_oneof![
            json_value().prop_map(|v| v.to_string().into_bytes()),
            proptest::collection::vec(any::<u8>(), 0..64),
        ],
        any::<bool>(),
    );
    let corpus = vec![
        (0, b"{\"email\":\"a@b.co\",\"password\":\"x\\u0000yyyyyyyy\"}".to_vec(), true),
        (0, b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]".to_vec(), true),
        (3, b"{\"email\":\"fuzz@example.com\",\"password\":1e999}".to_vec(), false),
    ];
    fuzz("route_bodies", corpus, strategy, |(index, body, as_json)| {
        let endpoint = endpoints[*index % endpoints.len()];
        let route = endpoint.route();
        let mut req = Request::builder()
            .method(route.method.clone())
            .uri(route.path.replace("{provider}", "google"));
        if *as_json {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        if route.access != Access::Public {
            req = req.header(header::AUTHORIZATION, format!("Bearer {session}"));
        }
        let mut req = req.body(Body::from(body.clone())).unwrap();
        req.extensions_mut().insert(ClientIp("203.0.113.9".into()));
        let answer = rt.block_on(oneshot_request(&app, req));
        assert!(
            answer.status.is_success() || answer.status.is_client_error(),
            "{endpoint:?} answered {}: {}",
            answer.status,
            answer.text
        );
        assert!(
            serde_json::from_str::<Value>(&answer.text).is_ok(),
            "{endpoint:?} answered a body that is not JSON"
        );
    });
}
