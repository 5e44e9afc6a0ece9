//! regstack on Cloudflare Workers.
//!
//! The fetch handler builds the core's [`Engine`] once per isolate from the Worker's vars and
//! secrets (the same `REGSTACK_*` names as the native server, through the core's one config
//! loader), with D1 for storage, a Durable Object for the rate-limit counters, Argon2 inline,
//! the console/null delivery backends printing through `console.log` or the signed relay to a
//! `regstack serve`. Requests are served
//! by the core's Router, unchanged; other paths are forwarded to the origin app with a verified
//! identity (see `origin`).

#[cfg(feature = "contract-suite")]
mod contract;
mod counter;
mod delivery;
mod js;
mod log;
mod net;
mod origin;
mod store;
mod system;
mod webhook;

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use regstack_core::config::{self, EmailBackend, SmsBackend, Sources};
use regstack_core::console::{ConsoleMailer, NullSms};
use regstack_core::engine::Engine;
use regstack_core::events::Event;
use regstack_core::http::{ApiError, BodyLimit, ClientIp};
use regstack_core::password::{HashParams, InlineHasher};
use regstack_core::ports::{Clock, EventSink, Mailer, Ports, Random, SmsSender};
use regstack_core::render::Renderer;
use regstack_core::sqlite::SqlStore;
use tower::ServiceExt;
use worker::{event, Context, Env, HttpRequest};

pub use counter::RateCounter;

use crate::counter::DurableCounter;
use crate::delivery::{AfterResponse, Relay};
use crate::store::D1Store;
use crate::system::{WorkerClock, WorkerRandom};
use regstack_core::delivery::Deferred;

thread_local! {
    /// The app of this isolate, built on its first request. Workers run one thread per
    /// isolate, so this is the isolate's single copy.
    static APP: RefCell<Option<(Router, Arc<Engine>)>> = const { RefCell::new(None) };
    /// The method and path of the request that started last, for the panic hook's log line
    /// (with requests interleaved on the isolate it may name a neighbour; it is a hint).
    static ROUTE: RefCell<String> = const { RefCell::new(String::new()) };
}

/// The last line of defence at the edge. The release build aborts on panic (a wasm trap), so
/// nothing can turn a panic into a response here; what can be done is to say in the log which
/// route panicked and why, before the trap. worker-build's JS shim then answers that request
/// with a 500 and instantiates a fresh module for the next one, so the isolate keeps serving
/// (worker-build's shim does this; no request is known to panic any more, so no test makes
/// one on purpose).
fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // workers-rs's own hook marks the module as failed, which is what makes the shim
        // start a fresh one for the next request: it must still run, after ours.
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let route = ROUTE.with(|r| r.borrow().clone());
            worker::console_error!("regstack panicked serving {route}: {info}");
            previous(info);
        }));
    });
}

/// Reads every `REGSTACK_*` name the config knows (see `config::env_name`), as vars or
/// secrets, from the Worker's env; then the settings of each generic OAuth provider named
/// (`REGSTACK_OAUTH__PROVIDERS__<NAME>__CLIENT_SECRET`, kept in a secret).
fn env_sources(env: &Env) -> Vec<(String, String)> {
    let read = |names: Vec<String>| -> Vec<(String, String)> {
        names
            .into_iter()
            .filter_map(|name| {
                let value = env.var(&name).ok()?.to_string();
                Some((name, value))
            })
            .collect()
    };
    let mut vars = read(config::env_names());
    let per_provider = read(config::provider_env_names(&vars));
    vars.extend(per_provider);
    vars
}

/// Events have no host hooks at the edge: each is logged at INFO (its name and user id, never
/// a link), and sent as a webhook when `webhook_url` is set.
struct EventLog;

#[async_trait]
impl EventSink for EventLog {
    async fn emit(&self, event: &Event) {
        tracing::info!(target: "regstack.events", event = event.name(), user_id = event.user().map(|u| u.id.as_str()), "event");
    }
}

/// Why the worker cannot serve: shown in its log, never to clients.
#[derive(Debug)]
struct Misconfigured(String);

async fn build(env: &Env) -> Result<(Router, Arc<Engine>), Misconfigured> {
    log::init();
    let vars = env_sources(env);
    let loaded = config::load(Sources {
        env: &vars,
        ..Default::default()
    })
    .map_err(|e| Misconfigured(e.to_string()))?;
    for warning in &loaded.warnings {
        tracing::warn!(target: "regstack.config", "{warning}");
    }
    let config = loaded.config;
    if let Some(why) = not_at_the_edge(&config) {
        return Err(Misconfigured(why));
    }
    let random: Arc<dyn Random> = Arc::new(WorkerRandom);
    let clock: Arc<dyn Clock> = Arc::new(WorkerClock);
    let relay = Arc::new(Relay::new(
        config.relay_url.clone().unwrap_or_default(),
        config.relay_secret.clone().unwrap_or_default(),
        clock.clone(),
        random.clone(),
    ));
    let unavailable = |what: &str, other: &str, options: &str| {
        Misconfigured(format!(
            "{what} = \"{other}\" is not available at the edge: use {options}"
        ))
    };
    let mailer: Arc<dyn Mailer> = match config.email.backend {
        EmailBackend::Console => Arc::new(ConsoleMailer {
            log_bodies: config.email.log_bodies,
        }),
        EmailBackend::Relay => Arc::new(Deferred::<dyn Mailer>::new(relay.clone(), Arc::new(AfterResponse))),
        other => return Err(unavailable("email.backend", other.as_str(), "console or relay")),
    };
    let sms: Arc<dyn SmsSender> = match config.sms.backend {
        SmsBackend::Null => Arc::new(NullSms {
            from_number: config.sms.from_number.clone(),
            log_bodies: config.sms.log_bodies,
        }),
        SmsBackend::Relay => Arc::new(Deferred::<dyn SmsSender>::new(relay, Arc::new(AfterResponse))),
        other => return Err(unavailable("sms.backend", other.as_str(), "null or relay")),
    };
    let stores = regstack_core::ports::Stores::from_one(
        SqlStore(D1Store::new(env.clone())),
        Arc::new(DurableCounter::new(env.clone())),
    );
    let hasher = Arc::new(
        InlineHasher::new(HashParams::from_config(&config), random.clone()).capped(config.password_hash_max_memory_kib),
    );
    let mut events: Arc<dyn EventSink> = Arc::new(EventLog);
    use regstack_core::webhook::{RetryPolicy, Target};
    if let Some(target) = Target::from_config(&config, RetryPolicy::EDGE) {
        let net = regstack_core::webhook::Network {
            http: Arc::new(net::FetchClient),
            timer: Arc::new(webhook::WorkerTimer),
            clock: clock.clone(),
        };
        let outbox = regstack_core::webhook::SpawnedOutbox::new(target, net, Arc::new(AfterResponse));
        let sink = regstack_core::webhook::WebhookSink::new(
            config.webhook_include_links,
            clock.clone(),
            random.clone(),
            Arc::new(outbox),
        );
        events = Arc::new(regstack_core::webhook::Fanout(vec![events, Arc::new(sink)]));
    }
    let mut ports = Ports::new(
        stores,
        mailer,
        sms,
        hasher,
        events,
        Arc::new(net::FetchClient),
        clock,
        random,
    );
    // Sign-in alerts go out after the response, like every other send here.
    ports.background = Arc::new(AfterResponse);
    let engine = Arc::new(
        Engine::new(config, ports, bundled_renderer()?)
            .await
            .map_err(|e| Misconfigured(e.to_string()))?,
    );
    Ok((app(engine.clone()), engine))
}

/// The template and static-file overrides bundled when the worker was built
/// (`REGSTACK_EDGE_TEMPLATE_DIRS`, `REGSTACK_EDGE_STATIC_DIRS`; see edge/build.rs).
mod overrides {
    include!(concat!(env!("OUT_DIR"), "/overrides.rs"));
}

/// A renderer with the bundled overrides over the bundled templates and files, checked as
/// native checks a host's directories.
fn bundled_renderer() -> Result<Renderer, Misconfigured> {
    let templates: HashMap<String, String> = overrides::TEMPLATES
        .iter()
        .map(|(name, body)| (name.to_string(), body.to_string()))
        .collect();
    let files = overrides::STATIC_FILES
        .iter()
        .map(|(path, body)| (path.to_string(), body.to_vec()))
        .collect();
    let files = regstack_core::pages::StaticFiles::with_overrides(files).map_err(|e| Misconfigured(e.to_string()))?;
    Ok(Renderer::new(templates).with_static_files(files))
}

/// This isolate's app and engine, built on first use.
async fn instance(env: &Env) -> Result<(Router, Arc<Engine>), Misconfigured> {
    if let Some(cached) = APP.with(|app| app.borrow().clone()) {
        return Ok(cached);
    }
    let built = build(env).await?;
    APP.with(|slot| *slot.borrow_mut() = Some(built.clone()));
    Ok(built)
}

/// The probes, the API under `api_prefix`, the pages and their files (with
/// `enable_ui_router`), and everything else forwarded to the origin (or the contract's 404
/// when there is none).
fn app(engine: Arc<Engine>) -> Router {
    let origin = engine.clone();
    regstack_core::http::probes(engine.clone())
        .nest(&engine.config.api_prefix, regstack_core::http::router(engine.clone()))
        .merge(regstack_core::http::pages::pages(engine.clone()))
        .fallback(move |req: Request| origin::forward(State(origin.clone()), req))
        .layer(middleware::from_fn_with_state(engine, client_context))
}

/// The client IP is the one Cloudflare saw (`CF-Connecting-IP`); no other header is trusted.
async fn client_context(State(engine): State<Arc<Engine>>, mut req: Request, next: Next) -> Response {
    if let Some(ip) = cloudflare_client_ip(req.headers()) {
        req.extensions_mut().insert(ClientIp(ip));
    }
    req.extensions_mut()
        .insert(BodyLimit(engine.config.max_request_body_bytes));
    next.run(req).await
}

/// Settings a Worker cannot honour, refused rather than silently ignored: it has no file
/// system to read overrides from, so they are bundled when it is built.
fn not_at_the_edge(config: &regstack_core::config::Config) -> Option<String> {
    for (key, set) in [
        ("extra_template_dirs", !config.extra_template_dirs.is_empty()),
        ("extra_static_dirs", !config.extra_static_dirs.is_empty()),
    ] {
        if set {
            return Some(format!(
                "{key} cannot be read at the edge (a Worker has no file system): unset it here, and build \
                 the worker with REGSTACK_EDGE_{} naming the directories to bundle",
                key.trim_start_matches("extra_").to_ascii_uppercase()
            ));
        }
    }
    let unset = |v: &Option<String>| v.as_deref().is_none_or(|s| s.trim().is_empty());
    // Each isolate would make its own pair, and a browser refuses alerts signed by a key other
    // than the one it subscribed with, so alerts would fail silently (docs/web-push.md).
    (config.enable_web_push && (unset(&config.vapid_public_key) || unset(&config.vapid_private_key))).then(|| {
        "enable_web_push needs vapid_public_key and vapid_private_key at the edge, where isolates cannot \
         share a generated pair: set them as secrets (`regstack vapid generate` prints a pair)"
            .to_string()
    })
}

/// The address in `CF-Connecting-IP`, which Cloudflare sets and a client cannot forge; the
/// headers a client can set (`X-Forwarded-For`, `X-Real-IP`) are never read.
fn cloudflare_client_ip(headers: &http::HeaderMap) -> Option<String> {
    headers
        .get("cf-connecting-ip")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|ip| !ip.is_empty())
        .map(str::to_string)
}

#[event(fetch)]
async fn fetch(req: HttpRequest, env: Env, ctx: Context) -> worker::Result<Response> {
    #[cfg(feature = "contract-suite")]
    if req.uri().path() == contract::PATH {
        return Ok(contract::run(env).await);
    }
    install_panic_hook();
    ROUTE.with(|r| *r.borrow_mut() = format!("{} {}", req.method(), req.uri().path()));
    let app = match instance(&env).await {
        Ok((app, _)) => app,
        Err(Misconfigured(why)) => {
            worker::console_error!("regstack cannot start: {why}");
            return Ok(ApiError::detail(
                http::StatusCode::SERVICE_UNAVAILABLE,
                "regstack is misconfigured; see the worker log",
            )
            .into_response());
        }
    };
    let resp = app.oneshot(req.map(axum::body::Body::new)).await?;
    note_memory_growth();
    // Relayed sends run after the response, kept alive by waitUntil.
    let queued = delivery::take_queued();
    if !queued.is_empty() {
        // Together, not one after another: a webhook receiver that times out must not use
        // up waitUntil's time before a relayed email gets its turn.
        ctx.wait_until(async move {
            futures_util::future::join_all(queued).await;
        });
    }
    Ok(resp)
}

/// Logs the isolate's linear memory each time it has grown (it never shrinks), so an operator
/// sees how near it comes to the isolate's 128 MB (docs/performance.md, "Memory").
fn note_memory_growth() {
    #[cfg(target_arch = "wasm32")]
    {
        thread_local!(static SEEN: std::cell::Cell<usize> = const { std::cell::Cell::new(0) });
        let pages = core::arch::wasm32::memory_size::<0>();
        SEEN.with(|seen| {
            if pages > seen.get() {
                seen.set(pages);
                tracing::info!(target: "regstack.memory", "wasm linear memory: {} MiB", pages * 64 / 1024);
            }
        });
    }
}

/// The Cron Trigger (`[triggers]` in wrangler.toml): sweeps expired rows from D1 so no table
/// grows without bound (the rate-limit counters expire by their own alarms).
#[event(scheduled)]
async fn scheduled(event: worker::ScheduledEvent, env: Env, _ctx: worker::ScheduleContext) {
    install_panic_hook();
    ROUTE.with(|r| *r.borrow_mut() = format!("scheduled {}", event.cron()));
    match instance(&env).await {
        Ok((_, engine)) => {
            if let Err(e) = regstack_core::flows::housekeeping::purge_expired(&engine).await {
                worker::console_error!("regstack: sweeping expired rows failed: {e}");
            }
        }
        Err(Misconfigured(why)) => worker::console_error!("regstack cannot start: {why}"),
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use http::HeaderMap;

    use super::cloudflare_client_ip;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (http::HeaderName::from_static(k), v.parse().unwrap()))
            .collect()
    }

    #[test]
    fn override_directories_are_refused_not_ignored() {
        let mut c = regstack_core::config::Config::default();
        assert_eq!(super::not_at_the_edge(&c), None);
        c.extra_static_dirs = vec!["/srv/static".into()];
        let why = super::not_at_the_edge(&c).unwrap();
        assert!(why.starts_with("extra_static_dirs cannot"), "{why}");
        assert!(why.contains("REGSTACK_EDGE_STATIC_DIRS"), "{why}");
        c.extra_template_dirs = vec!["/srv/templates".into()];
        assert!(super::not_at_the_edge(&c).is_some_and(|why| why.contains("REGSTACK_EDGE_TEMPLATE_DIRS")));
    }

    #[test]
    fn the_client_ip_is_cloudflares_alone() {
        assert_eq!(
            cloudflare_client_ip(&headers(&[("cf-connecting-ip", " 203.0.113.9 ")])).as_deref(),
            Some("203.0.113.9")
        );
        let spoofed = headers(&[("x-forwarded-for", "198.51.100.1"), ("x-real-ip", "198.51.100.2")]);
        assert_eq!(cloudflare_client_ip(&spoofed), None);
        assert_eq!(cloudflare_client_ip(&headers(&[("cf-connecting-ip", "  ")])), None);
    }
}
