//! # regstack
//!
//! Production-grade user accounts for axum apps: register, verify email, log in, log out,
//! change password or email, reset a forgotten password, delete an account — wire-compatible
//! with the Python regstack 0.9.3, on embedded SQLite by default.
//!
//! ```no_run
//! use axum::{routing::get, Extension, Router};
//! use regstack::{CurrentUser, RegStack};
//!
//! # async fn run() -> anyhow::Result<()> {
//! let config = regstack::settings::load(None, &[])?.config;
//! let rs = RegStack::new(config).await?;
//! let app = Router::new()
//!     .route("/hello", get(|CurrentUser(user): CurrentUser| async move { format!("hi {}", user.email) }))
//!     .nest(&rs.config().api_prefix.clone(), rs.router())
//!     .layer(Extension(rs.clone()));
//! # let _ = app; Ok(()) }
//! ```
//!
//! Cargo features (the extras; the default build is small and runs SQLite):
//! - `sqlite` (default): embedded SQLite storage;
//! - `postgres`, `mongo`: PostgreSQL and MongoDB storage, chosen by `database_url`;
//! - `smtp`, `ses`: email over SMTP or Amazon SES v2;
//! - `sns`, `twilio`: SMS through Amazon SNS or Twilio;
//! - `aws`: what `ses` and `sns` share (not meant to be chosen alone).
//!
//! The modules: [`serve`] (the `regstack serve` app), [`store`] (the storage backends),
//! [`delivery`] (mail and SMS backends and the bounded background sender), [`extract`] (auth
//! extractors for host routes), [`hooks`] (host event handlers), [`hasher`] (Argon2 on a
//! bounded blocking pool), [`system`] (the OS clock and randomness), [`settings`] (reading
//! the config files and environment), [`webhook`] (signed outbound events and their verifier).

pub mod delivery;
pub mod extract;
pub mod hasher;
pub mod hooks;
pub mod net;
pub mod serve;
pub mod settings;
pub mod store;
pub mod system;
pub mod webhook;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
pub use extract::{Admin, CurrentUser, EdgeUser, ForwardAuth, OptionalEdgeUser, OptionalUser, ShortSecret};
use regstack_core::config::SmsBackend;
use regstack_core::events::Event;
use regstack_core::http::{BodyLimit, ClientIp};
use regstack_core::password::HashParams;
use regstack_core::ports::{Mailer, Ports, SmsSender, Spawner};
use regstack_core::render::Renderer;
pub use regstack_core::{Config, Engine};

use crate::delivery::{NullSms, TokioSpawner};
use crate::hasher::PooledHasher;
use crate::hooks::Hooks;
use crate::system::{OsRandom, SystemClock};
use regstack_core::delivery::Deferred;

/// Why an instance cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Storage cannot be opened.
    #[error(transparent)]
    Store(#[from] store::StoreOpenError),
    /// The config or the hasher parameters are unusable.
    #[error(transparent)]
    Engine(#[from] regstack_core::engine::EngineError),
    /// A delivery backend this build cannot provide.
    #[error("{0}")]
    Delivery(String),
    /// A template directory cannot be read.
    #[error("cannot read template directory {0}: {1}")]
    Templates(String, std::io::Error),
    /// A template file is not UTF-8 text.
    #[error("template {0} is not UTF-8 text")]
    TemplateEncoding(String),
    /// A static directory cannot be read.
    #[error("cannot read static directory {0}: {1}")]
    StaticDir(String, std::io::Error),
    /// A file in `extra_static_dirs` cannot be served.
    #[error(transparent)]
    StaticFile(#[from] regstack_core::pages::StaticFileError),
}

/// One regstack instance: cheap to clone, independent of every other instance.
#[derive(Clone)]
pub struct RegStack {
    engine: Arc<Engine>,
    hooks: Hooks,
    mailer: Arc<delivery::Swappable<dyn Mailer>>,
    sms: Arc<delivery::Swappable<dyn SmsSender>>,
}

/// Where the stores come from: `database_url`, or a pool or database the host already owns.
enum StoreSource {
    Config,
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::SqlitePool),
    #[cfg(feature = "postgres")]
    Postgres(sqlx::PgPool),
    #[cfg(feature = "mongo")]
    Mongo(mongodb::Database),
}

impl std::fmt::Debug for RegStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegStack")
            .field("app_name", &self.engine.config.app_name)
            .finish_non_exhaustive()
    }
}

/// Options beyond the config: the host's own delivery backends and template directories.
pub struct Builder {
    config: Config,
    mailer: Option<Arc<dyn Mailer>>,
    sms: Option<Arc<dyn SmsSender>>,
    template_dirs: Vec<String>,
    stores: StoreSource,
    migrate: bool,
    oauth_providers: Vec<Arc<dyn regstack_core::oauth::OAuthProvider>>,
}

impl Builder {
    /// Offers sign-in through the host's own OAuth provider beside the configured ones
    /// (docs/oauth.md, "Your own provider"); it counts when `enable_oauth` is on.
    pub fn oauth_provider(mut self, provider: Arc<dyn regstack_core::oauth::OAuthProvider>) -> Self {
        self.oauth_providers.push(provider);
        self
    }

    /// Sends email through the host's own [`Mailer`] instead of `email.backend`.
    pub fn mailer(mut self, mailer: Arc<dyn Mailer>) -> Self {
        self.mailer = Some(mailer);
        self
    }

    /// Sends SMS through the host's own [`SmsSender`] instead of `sms.backend`.
    pub fn sms_sender(mut self, sms: Arc<dyn SmsSender>) -> Self {
        self.sms = Some(sms);
        self
    }

    /// Stores on the host's own SQLite pool (migrated at build) instead of `database_url`.
    #[cfg(feature = "sqlite")]
    pub fn sqlite_pool(mut self, pool: sqlx::SqlitePool) -> Self {
        self.stores = StoreSource::Sqlite(pool);
        self
    }

    /// Stores on the host's own PostgreSQL pool (migrated at build) instead of `database_url`.
    #[cfg(feature = "postgres")]
    pub fn pg_pool(mut self, pool: sqlx::PgPool) -> Self {
        self.stores = StoreSource::Postgres(pool);
        self
    }

    /// Stores in the host's own MongoDB database (indexes installed at build) instead of
    /// `database_url`; the collection names come from the config.
    #[cfg(feature = "mongo")]
    pub fn mongo_database(mut self, db: mongodb::Database) -> Self {
        self.stores = StoreSource::Mongo(db);
        self
    }

    /// Leaves migrations to the operator (`regstack serve --no-migrate`): the database named
    /// by `database_url` is opened as it is, and a SQL schema behind this build's head stops
    /// the start with a message to run `regstack migrate`.
    pub fn without_migrating(mut self) -> Self {
        self.migrate = false;
        self
    }

    /// Searches `dir` for template overrides before `extra_template_dirs` and the bundled ones.
    pub fn template_dir(mut self, dir: impl Into<String>) -> Self {
        self.template_dirs.push(dir.into());
        self
    }

    /// Opens storage, builds the engine, and returns the instance.
    pub async fn build(self) -> Result<RegStack, StartError> {
        let config = self.config;
        let stores = match self.stores {
            StoreSource::Config if self.migrate => store::open(&config).await?,
            StoreSource::Config => store::open_checked(&config).await?,
            #[cfg(feature = "sqlite")]
            StoreSource::Sqlite(pool) => store::on_sqlite(pool).await?,
            #[cfg(feature = "postgres")]
            StoreSource::Postgres(pool) => store::on_postgres(pool).await?,
            #[cfg(feature = "mongo")]
            StoreSource::Mongo(db) => store::on_mongo(&config, db).await?,
        };
        let random: Arc<dyn regstack_core::ports::Random> = Arc::new(OsRandom);
        let mailer: Arc<dyn Mailer> = match self.mailer {
            Some(m) => m,
            None => delivery::mailer_from_config(&config)
                .await
                .map_err(StartError::Delivery)?,
        };
        let sms: Arc<dyn SmsSender> = match self.sms {
            Some(s) => s,
            None => match config.sms.backend {
                SmsBackend::Null => Arc::new(NullSms {
                    from_number: config.sms.from_number.clone(),
                    log_bodies: config.sms.log_bodies,
                }),
                #[cfg(feature = "twilio")]
                SmsBackend::Twilio => {
                    Arc::new(delivery::twilio::TwilioSms::from_config(&config.sms).map_err(StartError::Delivery)?)
                }
                #[cfg(feature = "sns")]
                SmsBackend::Sns => Arc::new(
                    delivery::aws::SnsSms::from_config(&config.sms)
                        .await
                        .map_err(StartError::Delivery)?,
                ),
                #[allow(unreachable_patterns)]
                other => {
                    return Err(StartError::Delivery(format!(
                        "sms.backend = \"{}\" is not available in this build",
                        other.as_str()
                    )))
                }
            },
        };
        let renderer = renderer(&config, &self.template_dirs)?;
        let hooks = Hooks::new(config.delivery_queue_limit);
        let mut events: Arc<dyn regstack_core::ports::EventSink> = Arc::new(hooks.clone());
        let http: Arc<dyn regstack_core::ports::HttpClient> =
            Arc::new(net::ReqwestClient::new().map_err(StartError::Delivery)?);
        use regstack_core::webhook::{RetryPolicy, Target};
        if let Some(target) = Target::from_config(&config, RetryPolicy::NATIVE) {
            let net = regstack_core::webhook::Network {
                http: http.clone(),
                timer: Arc::new(webhook::TokioTimer),
                clock: Arc::new(SystemClock),
            };
            let outbox = webhook::BacklogOutbox::start(target, net, config.webhook_queue_limit, 4);
            let sink = regstack_core::webhook::WebhookSink::new(
                config.webhook_include_links,
                Arc::new(SystemClock),
                random.clone(),
                Arc::new(outbox),
            );
            events = Arc::new(regstack_core::webhook::Fanout(vec![events, Arc::new(sink)]));
        }
        // One queue per channel: a backlog of emails must never crowd out sign-in codes.
        let mail_queue: Arc<dyn Spawner> = Arc::new(TokioSpawner::new(config.delivery_queue_limit));
        let sms_queue: Arc<dyn Spawner> = Arc::new(TokioSpawner::new(config.delivery_queue_limit));
        let hasher = Arc::new(PooledHasher::new(
            HashParams::from_config(&config),
            random.clone(),
            config.password_hash_concurrency,
            config.password_hash_queue_limit,
            config.password_hash_max_memory_kib,
        ));
        // Swappable, so a host can change providers on a running instance.
        let mailer = Arc::new(delivery::Swappable::<dyn Mailer>::new(mailer));
        let sms = Arc::new(delivery::Swappable::<dyn SmsSender>::new(sms));
        let mut ports = Ports::new(
            stores,
            Arc::new(Deferred::<dyn Mailer>::new(mailer.clone(), mail_queue)),
            Arc::new(Deferred::<dyn SmsSender>::new(sms.clone(), sms_queue)),
            hasher,
            events,
            http,
            Arc::new(SystemClock),
            random,
        );
        // Sign-in alerts get a queue of their own, as each delivery channel does.
        ports.background = Arc::new(TokioSpawner::new(config.delivery_queue_limit));
        let engine = Engine::with_oauth_providers(config, ports, renderer, self.oauth_providers).await?;
        Ok(RegStack {
            engine: Arc::new(engine),
            hooks,
            mailer,
            sms,
        })
    }
}

/// Reads every file below each directory, keyed by its path relative to that directory
/// (`email/verification.txt`); earlier directories win.
/// The largest template file read.
const TEMPLATE_MAX_BYTES: u64 = 1024 * 1024;

/// The renderer for `config`: the templates of `template_dirs`, then of
/// `extra_template_dirs`, over the bundled ones, and the static files of `extra_static_dirs`
/// over the bundled ones.
pub fn renderer(config: &Config, template_dirs: &[String]) -> Result<Renderer, StartError> {
    let mut dirs = template_dirs.to_vec();
    dirs.extend(config.extra_template_dirs.iter().cloned());
    let templates = read_dirs(&dirs, TEMPLATE_MAX_BYTES)
        .map_err(|(dir, e)| StartError::Templates(dir, e))?
        .into_iter()
        .map(|(name, body)| {
            String::from_utf8(body)
                .map(|text| (name.clone(), text))
                .map_err(|_| StartError::TemplateEncoding(name))
        })
        .collect::<Result<HashMap<_, _>, _>>()?;
    let static_files = read_dirs(
        &config.extra_static_dirs,
        regstack_core::pages::STATIC_FILE_MAX_BYTES as u64,
    )
    .map_err(|(dir, e)| StartError::StaticDir(dir, e))?;
    Ok(Renderer::new(templates).with_static_files(regstack_core::pages::StaticFiles::with_overrides(static_files)?))
}

/// Files by path, with their contents.
type Files = Vec<(String, Vec<u8>)>;

/// Every file under each of `dirs`, by its `/`-separated path below that directory; where two
/// directories hold the same path, the first wins. Dot-files are skipped. Symbolic links are
/// followed, each directory at most once, so a link cannot make the walk loop. A file over
/// `max_bytes` is an error rather than a silent omission. The error names the directory.
fn read_dirs(dirs: &[String], max_bytes: u64) -> Result<Files, (String, std::io::Error)> {
    struct Walk {
        max_bytes: u64,
        names: std::collections::HashSet<String>,
        visited: std::collections::HashSet<std::path::PathBuf>,
        out: Files,
    }
    fn walk(w: &mut Walk, root: &Path, dir: &Path) -> std::io::Result<()> {
        if !w.visited.insert(std::fs::canonicalize(dir)?) {
            return Ok(());
        }
        let mut entries = std::fs::read_dir(dir)?.collect::<Result<Vec<_>, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let path = entry.path();
            let meta = std::fs::metadata(&path)?;
            if meta.is_dir() {
                walk(w, root, &path)?;
                continue;
            }
            if !meta.is_file() {
                continue;
            }
            let Ok(rel) = path.strip_prefix(root) else { continue };
            let name = rel.to_string_lossy().replace('\\', "/");
            if meta.len() > w.max_bytes {
                return Err(std::io::Error::other(format!("{name} is over {} bytes", w.max_bytes)));
            }
            if w.names.insert(name.clone()) {
                w.out.push((name, std::fs::read(&path)?));
            }
        }
        Ok(())
    }
    let mut w = Walk {
        max_bytes,
        names: Default::default(),
        visited: Default::default(),
        out: Vec::new(),
    };
    for dir in dirs {
        // Each listed directory is walked whole, even if an earlier one reached it by a link.
        w.visited.clear();
        walk(&mut w, Path::new(dir), Path::new(dir)).map_err(|e| (dir.clone(), e))?;
    }
    Ok(w.out)
}

impl RegStack {
    /// An instance with the config's backends.
    pub async fn new(config: Config) -> Result<Self, StartError> {
        Self::builder(config).build().await
    }

    /// An instance with host-provided parts.
    pub fn builder(config: Config) -> Builder {
        Builder {
            config,
            mailer: None,
            sms: None,
            template_dirs: Vec::new(),
            oauth_providers: Vec::new(),
            stores: StoreSource::Config,
            migrate: true,
        }
    }

    /// The validated config in force.
    pub fn config(&self) -> &Config {
        &self.engine.config
    }

    /// The engine, for calling flows directly.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Registers a hook for the event called `name` (docs/wire.md, "Events").
    pub fn on<F, Fut>(&self, name: &str, handler: F)
    where
        F: Fn(Event) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        self.hooks.on(name, handler);
    }

    /// The JSON API, unprefixed: nest it under `api_prefix`. Serve the app with
    /// `into_make_service_with_connect_info::<SocketAddr>()` so rate limits see client IPs.
    ///
    /// A panic in a handler is caught here and answered with a logged 500 (see
    /// [`panic_guard`]), so one bad request can never drop a connection or take others down.
    pub fn router(&self) -> Router {
        regstack_core::http::router(self.engine.clone())
            .layer(middleware::from_fn_with_state(self.engine.clone(), client_context))
            .layer(panic_guard())
    }

    /// The account pages under `ui_prefix` and their files under `static_prefix`, when
    /// `enable_ui_router` is on (an empty router otherwise): merge it at the root of the app
    /// the API is nested in (docs/pages.md).
    pub fn pages(&self) -> Router {
        regstack_core::http::pages::pages(self.engine.clone()).layer(panic_guard())
    }

    /// Deletes expired rows from every table that has an expiry (login failures older than
    /// the lockout window included) and answers what went. `regstack serve` runs it every
    /// `purge_interval_seconds`; a host that embeds the router calls it on its own schedule.
    pub async fn purge_expired(&self) -> Result<regstack_core::ports::Purged, regstack_core::ports::StoreError> {
        match regstack_core::flows::housekeeping::purge_expired(&self.engine).await {
            Ok(purged) => Ok(purged),
            Err(regstack_core::flows::FlowError::Store(e)) => Err(e),
            Err(other) => Err(regstack_core::ports::StoreError::Backend(other.to_string())),
        }
    }

    /// Sends email through `mailer` from now on (sends already queued keep their mailer).
    pub fn set_mailer(&self, mailer: Arc<dyn Mailer>) {
        self.mailer.replace(mailer);
    }

    /// Sends SMS through `sms` from now on (sends already queued keep their sender).
    pub fn set_sms_sender(&self, sms: Arc<dyn SmsSender>) {
        self.sms.replace(sms);
    }

    /// Makes `email` a superuser: creates the account (active, verified, with `password`) when
    /// none has the address, else sets the flag on the existing one and keeps its password.
    /// Idempotent; the answer says which it did. What `regstack create-admin` runs.
    pub async fn bootstrap_admin(
        &self,
        email: &str,
        password: &str,
    ) -> Result<
        (regstack_core::flows::admin::Bootstrapped, regstack_core::records::User),
        regstack_core::flows::FlowError,
    > {
        regstack_core::flows::admin::bootstrap_admin(&self.engine, email, password).await
    }

    /// Turns the pending registration for `email` into an active, verified user without its
    /// emailed link (as `POST {api_prefix}/admin/pending/{email}/promote` does); fires
    /// `user_verified`.
    pub async fn promote_pending(
        &self,
        email: &str,
    ) -> Result<regstack_core::records::User, regstack_core::flows::FlowError> {
        regstack_core::flows::admin::promote_pending(&self.engine, email).await
    }

    /// Whether the database answers.
    pub async fn ready(&self) -> bool {
        self.engine.ports.users.ping().await.is_ok()
    }
}

/// The last line of defence: a handler that panics answers 500
/// `{"detail": "Internal server error."}` and the panic is logged at ERROR (`regstack.http`);
/// the connection and every other request carry on. Wrap host routes in it too if they
/// should behave the same.
pub fn panic_guard() -> tower_http::catch_panic::CatchPanicLayer<fn(Box<dyn std::any::Any + Send>) -> Response> {
    tower_http::catch_panic::CatchPanicLayer::custom(answer_panic as fn(Box<dyn std::any::Any + Send>) -> Response)
}

fn answer_panic(payload: Box<dyn std::any::Any + Send>) -> Response {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic payload".into());
    tracing::error!(target: "regstack.http", panic = %what, "a request handler panicked; answered 500");
    regstack_core::http::ApiError::detail(axum::http::StatusCode::INTERNAL_SERVER_ERROR, "Internal server error.")
        .into_response()
}

/// Puts the client IP (socket peer, or the right-most `X-Forwarded-For` entry when
/// `behind_proxy`) and the body limit into the request for the core's Router.
async fn client_context(State(engine): State<Arc<Engine>>, mut req: Request, next: Next) -> Response {
    let forwarded = engine
        .config
        .behind_proxy
        .then(|| req.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok()))
        .flatten()
        .and_then(|v| v.rsplit(',').next())
        .map(|ip| ip.trim().to_string())
        .filter(|ip| !ip.is_empty());
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    if let Some(ip) = forwarded.or(peer) {
        req.extensions_mut().insert(ClientIp(ip));
    }
    req.extensions_mut()
        .insert(BodyLimit(engine.config.max_request_body_bytes));
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt;

    #[tokio::test]
    async fn a_panicking_handler_answers_500_and_the_service_keeps_serving() {
        let app = Router::new()
            .route(
                "/boom",
                get(|| async {
                    if true {
                        panic!("deliberate test panic");
                    }
                    "unreachable"
                }),
            )
            .route("/fine", get(|| async { "ok" }))
            .layer(super::panic_guard());
        let resp = app
            .clone()
            .oneshot(Request::get("/boom").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(resp.into_body(), 1024).await.unwrap();
        assert_eq!(&body[..], br#"{"detail":"Internal server error."}"#);
        let resp = app
            .oneshot(Request::get("/fine").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }

    /// Each channel has its own send queue: a backlog of emails that fills the email queue
    /// never crowds out a sign-in code.
    #[tokio::test]
    async fn an_email_backlog_leaves_sms_alone() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;

        use async_trait::async_trait;
        use regstack_core::ports::{DeliveryError, EmailMessage, Mailer, SmsMessage, SmsSender};

        use crate::RegStack;

        /// Never finishes a send.
        struct Stuck;
        #[async_trait]
        impl Mailer for Stuck {
            async fn send(&self, _: &EmailMessage) -> Result<(), DeliveryError> {
                std::future::pending().await
            }
        }
        struct Counted(Arc<AtomicUsize>);
        #[async_trait]
        impl SmsSender for Counted {
            async fn send(&self, _: &SmsMessage) -> Result<(), DeliveryError> {
                self.0.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        }

        let config = regstack_core::config::Config {
            database_url: "sqlite+aiosqlite:///:memory:".into(),
            delivery_queue_limit: 1,
            password_hash_memory_kib: 64,
            password_hash_iterations: 1,
            ..Default::default()
        };
        let sent = Arc::new(AtomicUsize::new(0));
        let rs = RegStack::builder(config)
            .mailer(Arc::new(Stuck))
            .sms_sender(Arc::new(Counted(sent.clone())))
            .build()
            .await
            .unwrap();
        let ports = &rs.engine().ports;
        let email = EmailMessage {
            to: "a@example.com".into(),
            from: "R <r@example.com>".into(),
            subject: "s".into(),
            text: "t".into(),
            html: "h".into(),
        };
        ports.mailer.send(&email).await.expect("the first email is queued");
        assert!(ports.mailer.send(&email).await.is_err(), "the email queue is full");
        let sms = SmsMessage {
            to: "+15555550100".into(),
            body: "code".into(),
        };
        ports.sms.send(&sms).await.expect("SMS has its own queue");
        for _ in 0..100 {
            if sent.load(Ordering::SeqCst) == 1 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("the SMS was not sent while the email queue was full");
    }
}
