//! The engine: a validated config, the ports, and what is derived from them once at start-up
//! (JWT keys, parsed rate limits, the lockout policy, the renderer, the timing decoy hash).
//! Flows take `&Engine`; both runtimes build exactly one per regstack instance.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::Config;
use crate::jwt::JwtCodec;
use crate::lockout::Lockout;
use crate::password::PasswordError;
use crate::ports::Ports;
use crate::rate_limit::RateLimit;
use crate::render::Renderer;
use crate::routes::RateClass;

/// Why an engine cannot be built from a config.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The config is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The hasher cannot hash with the configured parameters.
    #[error(transparent)]
    Password(#[from] PasswordError),
    /// A page template (a host override, usually) does not render.
    #[error(transparent)]
    Render(#[from] crate::render::RenderError),
}

/// The configured providers (Google, `[oauth.providers.*]`) and the host's, when
/// `enable_oauth` is on; the names of the host's are noted in the config, so the routing
/// table sees that there are providers to mount for.
fn oauth_providers(
    config: &mut Config,
    ports: &Ports,
    extra: Vec<Arc<dyn crate::oauth::OAuthProvider>>,
) -> Result<crate::oauth::Providers, crate::config::ConfigError> {
    let mut providers = crate::oauth::Providers::default();
    if !config.enable_oauth {
        return Ok(providers);
    }
    let refuse = |message: String| crate::config::ConfigError::Invalid {
        field: "oauth".into(),
        message,
    };
    #[cfg(feature = "oauth")]
    {
        use crate::oauth::oidc::OidcProvider;
        if let Some(google) = OidcProvider::google(config, ports.http.clone()) {
            providers.register(Arc::new(google)).map_err(refuse)?;
        }
        for (name, p) in &config.oauth.providers {
            let provider = OidcProvider::discovered(config, name, p, ports.http.clone());
            providers.register(Arc::new(provider)).map_err(refuse)?;
        }
    }
    #[cfg(not(feature = "oauth"))]
    {
        let _ = ports;
        if config.oauth.google_client_id.is_some() || !config.oauth.providers.is_empty() {
            return Err(refuse(
                "this build has no OpenID Connect client: build with the `oauth` feature".into(),
            ));
        }
    }
    for p in extra {
        config.oauth.host_providers.push(p.name().to_string());
        providers.register(p).map_err(refuse)?;
    }
    Ok(providers)
}

/// The configured VAPID pair, or a pair made for this process with seed 004's warning; `None`
/// with Web Push off. The config's validation has already parsed a configured pair.
fn vapid_keys(config: &Config, ports: &Ports) -> Result<Option<crate::push::VapidKeys>, EngineError> {
    if !config.enable_web_push {
        return Ok(None);
    }
    if config.vapid_subject.trim() == crate::config::Config::default().vapid_subject {
        tracing::warn!(
            target: "regstack.config",
            "vapid_subject is seed 004's example, mailto:admin@example.com: set it to an address of yours, \
             where push services can reach you about your alerts"
        );
    }
    // Blank is unset, as the config's validation reads it.
    let set = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
    match (set(&config.vapid_public_key), set(&config.vapid_private_key)) {
        (Some(public), Some(private)) => crate::push::VapidKeys::from_base64(&public, &private)
            .map(Some)
            .map_err(|message| {
                crate::config::ConfigError::Invalid {
                    field: "vapid_private_key".into(),
                    message,
                }
                .into()
            }),
        _ => {
            tracing::warn!(target: "regstack.config", "{}", crate::push::GENERATED_WARNING);
            Ok(Some(crate::push::VapidKeys::generate(ports.random.as_ref())))
        }
    }
}

/// One regstack instance's state.
pub struct Engine {
    /// The config, after validation (and with a generated `jwt_secret` if none was given).
    pub config: Arc<Config>,
    /// The ports.
    pub ports: Ports,
    /// Per-purpose JWT keys.
    pub jwt: JwtCodec,
    /// The lockout policy.
    pub lockout: Lockout,
    /// Email and SMS templates.
    pub renderer: Renderer,
    /// The per-IP limits of each rate class that has one.
    pub rate_limits: HashMap<RateClass, Vec<RateLimit>>,
    /// SMS codes per account and per phone number (`sms_code_rate_limit`); empty: no limit.
    pub sms_limits: Vec<RateLimit>,
    /// Emails per recipient address (`email_rate_limit`); empty: no limit.
    pub email_limits: Vec<RateLimit>,
    /// A hash of a random password, verified when no real hash exists so an unknown email
    /// costs the same Argon2 work as a known one.
    pub decoy_hash: String,
    /// The key SMS codes are hashed under at rest (`HMAC-SHA256(jwt_secret, "sms_code")`).
    pub code_key: [u8; 32],
    /// The Argon2 work (KiB-passes) every failed login is padded to: the configured
    /// `password_verify_floor`, the configured parameters, and the costliest stored hash met
    /// since start-up, whichever is most.
    pub verify_floor: std::sync::atomic::AtomicU64,
    /// True when `jwt_secret` was generated for this process.
    pub ephemeral_secret: bool,
    /// The OAuth providers (empty unless `enable_oauth`).
    pub oauth: crate::oauth::Providers,
    /// The VAPID pair that signs sign-in alerts (`None` unless `enable_web_push`).
    pub vapid: Option<crate::push::VapidKeys>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("app_name", &self.config.app_name)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Validates `config`, fills in a random `jwt_secret` if none is set (docs/wire.md, "Decision 6"), derives
    /// the keys and limits, and prepares the decoy hash.
    pub async fn new(config: Config, ports: Ports, renderer: Renderer) -> Result<Self, EngineError> {
        Self::with_oauth_providers(config, ports, renderer, Vec::new()).await
    }

    /// [`Engine::new`] with OAuth providers of the host's own beside the configured ones
    /// (docs/oauth.md, "Your own provider"). They count only when `enable_oauth` is on.
    pub async fn with_oauth_providers(
        mut config: Config,
        mut ports: Ports,
        renderer: Renderer,
        extra: Vec<std::sync::Arc<dyn crate::oauth::OAuthProvider>>,
    ) -> Result<Self, EngineError> {
        config.validate()?;
        if config.access_token_expire_hours != 0 {
            // One lifetime from here on: everything that mints or reports it reads this.
            config.jwt_ttl_seconds = config.access_token_expire_hours * 3600;
            // Said once, as seconds, so the config in force validates as it stands.
            config.access_token_expire_hours = 0;
        }
        let oauth = oauth_providers(&mut config, &ports, extra)?;
        // Hashes in flight: the ones running (`password_hash_concurrency`) plus the queue.
        ports.hasher = Arc::new(crate::password::LoadShedding::new(
            ports.hasher,
            config.password_hash_concurrency + config.password_hash_queue_limit,
        ));
        if config.email.log_bodies || config.sms.log_bodies {
            tracing::warn!(
                target: "regstack.config",
                "log_bodies is on: verification links, reset links and SMS codes are written to the log. \
                 Development only; never in production."
            );
        }
        let ephemeral_secret = config.jwt_secret.is_empty();
        if ephemeral_secret {
            config.jwt_secret = crate::token::new_jwt_secret(ports.random.as_ref());
            tracing::warn!(
                target: "regstack.config",
                "jwt_secret is not set: a random key was generated at startup. All active sessions will be \
                 invalidated on every restart. Always set a stable key in production (REGSTACK_JWT_SECRET, at \
                 least 32 characters)."
            );
        }
        let vapid = vapid_keys(&config, &ports)?;
        if config.enable_ui_router {
            renderer.check_pages(&config, &oauth.labels())?;
        }
        let verify_floor_config = config
            .password_verify_floor
            .as_deref()
            .and_then(crate::password::work_of_params)
            .unwrap_or(0);
        let code_key = crate::jwt::derive(&config.jwt_secret, "sms_code");
        let jwt = JwtCodec::new(&config.jwt_secret, config.jwt_algorithm, config.jwt_audience.clone());
        let lockout = Lockout {
            threshold: config.login_lockout_threshold as u64,
            window_seconds: config.login_lockout_window_seconds,
            disabled: config.rate_limit_disabled,
        };
        let mut rate_limits = HashMap::new();
        for class in RateClass::ALL {
            if let Some(spec) = config.rate_limit(class) {
                let limits = RateLimit::parse_all(spec).map_err(|e| crate::config::ConfigError::Invalid {
                    field: class.config_field().into(),
                    message: e.to_string(),
                })?;
                rate_limits.insert(class, limits);
            }
        }
        let optional = |field: &str, spec: &Option<String>| -> Result<Vec<RateLimit>, crate::config::ConfigError> {
            match spec.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
                None => Ok(Vec::new()),
                Some(spec) => RateLimit::parse_all(spec).map_err(|e| crate::config::ConfigError::Invalid {
                    field: field.into(),
                    message: e.to_string(),
                }),
            }
        };
        let sms_limits = optional("sms_code_rate_limit", &config.sms_code_rate_limit)?;
        let email_limits = optional("email_rate_limit", &config.email_rate_limit)?;
        let (mut salt, mut output) = ([0u8; 16], [0u8; 32]);
        ports.random.fill(&mut salt);
        ports.random.fill(&mut output);
        // The hasher's own parameters, so checking the decoy costs what checking its hashes
        // costs; a hasher that cannot say hashes a random password once instead.
        let decoy_hash = match ports.hasher.params() {
            Some(params) => crate::password::decoy_hash(params, &salt, &output)?,
            None => ports.hasher.hash(&crate::hex::encode(&output)).await?,
        };
        Ok(Self {
            config: Arc::new(config),
            ports,
            jwt,
            lockout,
            renderer,
            rate_limits,
            sms_limits,
            email_limits,
            verify_floor: std::sync::atomic::AtomicU64::new(
                crate::password::work_of(&decoy_hash)
                    .unwrap_or(0)
                    .max(verify_floor_config),
            ),
            decoy_hash,
            code_key,
            ephemeral_secret,
            oauth,
            vapid,
        })
    }

    /// Now, from the clock port, truncated to the microsecond every store keeps.
    pub fn now(&self) -> crate::time::Timestamp {
        crate::time::truncate_micros(self.ports.clock.now())
    }

    /// A new account for `email`, made now, with a fresh id and the configured
    /// `default_user_role`; the caller sets the flags.
    pub fn new_user(&self, email: String, hashed_password: Option<String>) -> crate::records::User {
        let mut user = crate::records::User::new(self.new_id(), email, hashed_password, self.now());
        user.role = self.config.default_user_role.clone();
        user
    }

    /// A fresh 32-hex uuid4.
    pub fn new_id(&self) -> String {
        let mut b = [0u8; 16];
        self.ports.random.fill(&mut b);
        crate::ids::UserId::uuid4_hex(b).0
    }
}
