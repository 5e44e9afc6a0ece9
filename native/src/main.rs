//! The `regstack` binary: `serve` and the operator commands.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

mod cli;

/// regstack: user accounts you run yourself.
#[derive(Parser)]
#[command(name = "regstack", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the JSON API (and /healthz, /readyz), migrating the database first.
    #[command(
        after_help = "Examples:\n  regstack serve\n  regstack serve --host 0.0.0.0 --port 8080 --config /etc/app\n  regstack serve --no-migrate   # after `regstack migrate` ran as its own step"
    )]
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Port to listen on.
        #[arg(long, default_value_t = 8000)]
        port: u16,
        /// regstack.toml, or a directory holding one.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Do not migrate; refuse to start if the SQL schema is behind (run `regstack migrate`).
        #[arg(long)]
        no_migrate: bool,
    },
    /// Bring the SQL schema to a revision (default: head), adopting a regstack 0.9.3 database.
    #[command(
        after_help = "Examples:\n  regstack migrate\n  regstack migrate --target 0004 --config /etc/app/regstack.toml\n  regstack migrate --target +1"
    )]
    Migrate {
        /// Where to stop: head, a revision such as 0004, or +N revisions past the current one.
        #[arg(long, default_value = "head")]
        target: regstack::store::Target,
        /// regstack.toml, or a directory holding one.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Check the config, the database and the email backend; exit 1 if a check fails.
    #[command(
        after_help = "Examples:\n  regstack doctor\n  regstack doctor --config /etc/app\n  regstack doctor --check-dns\n  regstack doctor --send-test-email you@example.com"
    )]
    Doctor {
        /// regstack.toml, or a directory holding one.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Also check the sender domain's MX, SPF and DMARC records (needs DNS; 3 s timeout).
        #[arg(long)]
        check_dns: bool,
        /// With --check-dns: ask this DNS server (IP:PORT) instead of the system's resolvers.
        #[arg(long, value_name = "IP:PORT", requires = "check_dns")]
        dns_server: Option<std::net::SocketAddr>,
        /// Also send one real email to this address through the configured backend.
        #[arg(long, value_name = "TO")]
        send_test_email: Option<String>,
    },
    /// Probe a running deployment end to end with a throwaway account; exit 1 if a check fails.
    #[command(
        after_help = "Examples:\n  regstack validate --url http://127.0.0.1:8000/api/auth --log-source file:/var/log/regstack.log\n  regstack validate --url https://staging.example.com/api/auth \\\n      --log-source ssh:deploy@staging.example.com:/var/log/regstack.log --phone +15555550123\n  regstack validate --url … --log-source 'cmd:journalctl -fu regstack' --json --skip oauth,sms\n\nThe deployment must print emails and SMS (email.backend = \"console\" with email.log_bodies,\nsms.backend = \"null\" with sms.log_bodies). Exit codes: 0 all passed, 1 a check failed,\n2 a bad flag or log source."
    )]
    Validate {
        #[command(flatten)]
        options: cli::validate::Options,
    },
    /// Ask about the app and write regstack.toml and regstack.secrets.env (mode 600).
    #[command(
        after_help = "Examples:\n  regstack init\n  regstack init --config /etc/app --force\n  regstack init --if-missing   # in an entrypoint: write once, then do nothing"
    )]
    Init {
        /// regstack.toml to write, or the directory to write it into (default: here).
        #[arg(long, conflicts_with = "target")]
        config: Option<PathBuf>,
        /// Deprecated: use --config. The directory to write into.
        #[arg(long, value_name = "DIR")]
        target: Option<PathBuf>,
        /// Overwrite existing files without asking.
        #[arg(long, conflicts_with = "if_missing")]
        force: bool,
        /// Do nothing, successfully, when either file already exists.
        #[arg(long)]
        if_missing: bool,
    },
    /// Create a superuser, or make an existing user one (idempotent; keeps their password).
    #[command(
        after_help = "Examples:\n  regstack create-admin --email admin@app.example.com\n  regstack create-admin --email admin@app.example.com --config /etc/app"
    )]
    CreateAdmin {
        /// The administrator's email address.
        #[arg(long)]
        email: String,
        /// The password for a new account; prompted for (twice) when left out.
        #[arg(long)]
        password: Option<String>,
        /// regstack.toml, or a directory holding one.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// VAPID keys for Web Push sign-in alerts.
    Vapid {
        #[command(subcommand)]
        action: VapidAction,
    },
    /// The account pages' theme.
    Theme {
        #[command(subcommand)]
        action: ThemeAction,
    },
    /// Sign-in with Google.
    Oauth {
        #[command(subcommand)]
        action: OauthAction,
    },
    /// Email through Amazon SES.
    Ses {
        #[command(subcommand)]
        action: SesAction,
    },
}

/// The flags every local wizard takes.
#[derive(clap::Args)]
struct WizardFlags {
    /// regstack.toml or its directory, where the files are written (default: here).
    #[arg(long, conflicts_with = "target")]
    config: Option<PathBuf>,
    /// Deprecated: use --config.
    #[arg(long, value_name = "DIR")]
    target: Option<PathBuf>,
    /// The wizard's port on 127.0.0.1 (default: any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// No browser: take the answers from the flags, write the files and print a JSON summary.
    #[arg(long)]
    headless: bool,
    /// Like --headless, but write nothing (exit 2 when an answer is refused).
    #[arg(long)]
    dry_run: bool,
    /// Deprecated: use --headless.
    #[arg(long)]
    print_only: bool,
    /// Print the wizard's URL without starting a browser.
    #[arg(long)]
    no_browser: bool,
}

impl WizardFlags {
    /// The config path, warning about deprecated spellings.
    fn config(&self) -> Option<&std::path::Path> {
        if self.target.is_some() {
            eprintln!("\u{26a0} --target is deprecated and will go: use --config");
        }
        if self.print_only {
            eprintln!("\u{26a0} --print-only is deprecated and will go: use --headless");
        }
        self.config.as_deref().or(self.target.as_deref())
    }

    fn headless(&self) -> bool {
        self.headless || self.dry_run || self.print_only
    }
}

/// `--X` / `--no-X` as "on", "off" or "as the file has it".
fn either(on: bool, off: bool) -> Option<bool> {
    match (on, off) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    }
}

/// A secret from its flag, else from the environment variable the server reads it from
/// (which keeps it out of the process list).
fn secret_from(flag: Option<String>, env: &str) -> Option<String> {
    flag.or_else(|| std::env::var(env).ok().filter(|v| !v.is_empty()))
}

#[derive(Subcommand)]
enum OauthAction {
    /// Configure sign-in with Google: a guided page, or --headless from flags.
    #[command(
        after_help = "Examples:\n  regstack oauth setup\n  regstack oauth setup --config /etc/app\n  REGSTACK_OAUTH__GOOGLE_CLIENT_SECRET=\"$SECRET\" regstack oauth setup --headless \\\n      --client-id 1234-abc.apps.googleusercontent.com --auto-link\n  regstack oauth setup --dry-run --client-id …   # print the diff, write nothing\n\nThe secret goes to regstack.secrets.env, never to regstack.toml. Left out, --client-secret is read\nfrom $REGSTACK_OAUTH__GOOGLE_CLIENT_SECRET. Exit codes: 0 done, 1 a file or the port failed,\n2 an answer was refused."
    )]
    Setup {
        #[command(flatten)]
        wizard: WizardFlags,
        /// Where the host mounts the API, for the redirect URI shown (default: the config's, else /api/auth).
        #[arg(long)]
        api_prefix: Option<String>,
        /// The Google client id (headless).
        #[arg(long)]
        client_id: Option<String>,
        /// The Google client secret (headless).
        #[arg(long)]
        client_secret: Option<String>,
        /// base_url to write, which the redirect URI is built from (headless).
        #[arg(long)]
        base_url: Option<String>,
        /// Link a Google sign-in to an account with the same verified address.
        #[arg(long, overrides_with = "no_auto_link")]
        auto_link: bool,
        /// Never link by address.
        #[arg(long)]
        no_auto_link: bool,
        /// Ask for the SMS code after a Google sign-in.
        #[arg(long, overrides_with = "no_mfa")]
        mfa: bool,
        /// Do not ask for the SMS code after a Google sign-in.
        #[arg(long)]
        no_mfa: bool,
    },
}

#[derive(Subcommand)]
enum SesAction {
    /// Configure email through Amazon SES: a guided page that checks with SES, or --headless.
    #[command(
        after_help = "Examples:\n  regstack ses setup\n  regstack ses setup --headless --region eu-west-1 --from-address noreply@app.example.com \\\n      --credential-source chain\n  REGSTACK_EMAIL__SES_SECRET_ACCESS_KEY=… regstack ses setup --headless --region eu-west-1 \\\n      --from-address noreply@app.example.com --access-key-id AKIA…\n\nHeadless runs ask nothing of AWS. The secret key goes to regstack.secrets.env, never to\nregstack.toml; with --access-key-id and no --secret-access-key, it is read from\n$REGSTACK_EMAIL__SES_SECRET_ACCESS_KEY. Without a credential flag the file's credentials stay.\nExit codes: 0 done, 1 a file or the port failed, 2 an answer was refused."
    )]
    Setup {
        #[command(flatten)]
        wizard: WizardFlags,
        /// The SES region (headless).
        #[arg(long)]
        region: Option<String>,
        /// The sender address, [email] from_address (headless).
        #[arg(long)]
        from_address: Option<String>,
        /// Where SES credentials come from (default: what --profile or --access-key-id imply,
        /// else the file's credentials are left as they are).
        #[arg(long, value_enum)]
        credential_source: Option<cli::ses_setup::CredentialSource>,
        /// With --credential-source profile: the profile's name.
        #[arg(long)]
        profile: Option<String>,
        /// With --credential-source explicit: the access key id.
        #[arg(long)]
        access_key_id: Option<String>,
        /// With --credential-source explicit: the secret access key.
        #[arg(long)]
        secret_access_key: Option<String>,
    },
}

#[derive(Subcommand)]
enum ThemeAction {
    /// Design regstack-theme.css in the browser, with the real pages as the preview.
    #[command(
        after_help = "Examples:\n  regstack theme design\n  regstack theme design --config /var/www/static\n  regstack theme design --headless --var --rs-accent=#0f766e --var dark:--rs-accent=#2dd4bf\n  regstack theme design --dry-run --var --rs-radius=10px   # check and print, write nothing\n\nOnly the managed --rs-* values in the file's :root block and its\n@media (prefers-color-scheme: dark) block change; everything else in it is kept.\nExit codes: 0 done, 1 a file or the port failed, 2 a value or flag was refused."
    )]
    Design {
        #[command(flatten)]
        wizard: WizardFlags,
        /// The theme file's name, in the --config directory.
        #[arg(long, default_value = "regstack-theme.css")]
        filename: String,
        /// NAME=VALUE, repeatable; dark:NAME=VALUE sets the dark scheme's value (with --headless).
        #[arg(long = "var", value_name = "NAME=VALUE", allow_hyphen_values = true)]
        vars: Vec<String>,
    },
}

#[derive(Subcommand)]
enum VapidAction {
    /// Print a new key pair as REGSTACK_ lines for regstack.secrets.env or a secret manager.
    #[command(
        after_help = "Examples:\n  regstack vapid generate >> regstack.secrets.env\n  regstack vapid generate --subject mailto:ops@example.com"
    )]
    Generate {
        /// The contact push services may use (a mailto: address or an https URL).
        #[arg(long, default_value = "mailto:admin@example.com")]
        subject: String,
    },
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout)
        .with_ansi(false)
        .init();
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result = match cli.command {
        Command::Serve {
            host,
            port,
            config,
            no_migrate,
        } => serve(host, port, config, no_migrate).await,
        Command::Init {
            config,
            target,
            force,
            if_missing,
        } => {
            if target.is_some() {
                eprintln!("\u{26a0} --target is deprecated and will go: use --config");
            }
            return cli::init::run(config.or(target).as_deref(), force, if_missing);
        }
        Command::Migrate { target, config } => return cli::migrate::run(config.as_deref(), target).await,
        Command::Doctor {
            config,
            check_dns,
            dns_server,
            send_test_email,
        } => {
            let extras = cli::doctor::Extras {
                send_test_email: send_test_email.as_deref(),
                check_dns,
                dns_server,
            };
            return cli::doctor::run(config.as_deref(), extras).await;
        }
        Command::CreateAdmin {
            email,
            password,
            config,
        } => create_admin(email, password, config).await,
        Command::Theme {
            action: ThemeAction::Design { wizard, filename, vars },
        } => {
            return cli::theme::run(cli::theme::Options {
                config: wizard.config(),
                filename: &filename,
                port: wizard.port,
                headless: wizard.headless(),
                dry_run: wizard.dry_run,
                vars: &vars,
                open_browser: !wizard.no_browser,
            })
            .await;
        }
        Command::Oauth {
            action:
                OauthAction::Setup {
                    wizard,
                    api_prefix,
                    client_id,
                    client_secret,
                    base_url,
                    auto_link,
                    no_auto_link,
                    mfa,
                    no_mfa,
                },
        } => {
            let given = client_id.is_some()
                || client_secret.is_some()
                || base_url.is_some()
                || auto_link
                || no_auto_link
                || mfa
                || no_mfa;
            let answers = given.then(|| cli::oauth_setup::Answers {
                client_id: client_id.unwrap_or_default(),
                client_secret: secret_from(client_secret, cli::oauth_setup::SECRET_NAME).unwrap_or_default(),
                base_url,
                auto_link: either(auto_link, no_auto_link),
                mfa: either(mfa, no_mfa),
            });
            return cli::oauth_setup::run(cli::oauth_setup::Options {
                config: wizard.config(),
                api_prefix: api_prefix.as_deref(),
                port: wizard.port,
                headless: wizard.headless(),
                dry_run: wizard.dry_run,
                answers,
                open_browser: !wizard.no_browser,
            })
            .await;
        }
        Command::Ses {
            action:
                SesAction::Setup {
                    wizard,
                    region,
                    from_address,
                    credential_source,
                    profile,
                    access_key_id,
                    secret_access_key,
                },
        } => {
            let given = region.is_some()
                || from_address.is_some()
                || credential_source.is_some()
                || profile.is_some()
                || access_key_id.is_some()
                || secret_access_key.is_some();
            // The environment's secret key answers only for an access key that was given.
            let secret_access_key = match access_key_id {
                Some(_) => secret_from(secret_access_key, cli::ses_setup::SECRET_NAME),
                None => secret_access_key,
            };
            let answers = given.then(|| cli::ses_setup::Answers {
                region: region.unwrap_or_default(),
                from_address: from_address.unwrap_or_default(),
                credential_source,
                profile,
                access_key_id,
                secret_access_key,
            });
            return cli::ses_setup::run(cli::ses_setup::Options {
                config: wizard.config(),
                port: wizard.port,
                headless: wizard.headless(),
                dry_run: wizard.dry_run,
                answers,
                open_browser: !wizard.no_browser,
            })
            .await;
        }
        Command::Validate { options } => return cli::validate::run(options).await,
        Command::Vapid {
            action: VapidAction::Generate { subject },
        } => {
            vapid_generate(&subject);
            Ok(())
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(target: "regstack", "{e:#}");
            eprintln!("regstack: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Seed 004's formats: padded base64url of the raw public point and of the PKCS#8 DER.
fn vapid_generate(subject: &str) {
    let keys = regstack_core::push::VapidKeys::generate(&regstack::system::OsRandom);
    let (public, private) = keys.to_seed_format();
    println!("REGSTACK_VAPID_PUBLIC_KEY={public}");
    println!("REGSTACK_VAPID_PRIVATE_KEY={private}");
    println!("REGSTACK_VAPID_SUBJECT={subject}");
}

async fn serve(host: String, port: u16, config: Option<PathBuf>, no_migrate: bool) -> anyhow::Result<()> {
    let loaded = regstack::settings::load(config.as_deref(), &[])?;
    let builder = regstack::RegStack::builder(loaded.config);
    let rs = if no_migrate {
        builder.without_migrating()
    } else {
        builder
    }
    .build()
    .await?;
    regstack::serve::run(rs, &host, port).await
}

async fn create_admin(email: String, password: Option<String>, config: Option<PathBuf>) -> anyhow::Result<()> {
    use regstack_core::flows::admin::Bootstrapped;
    let loaded = regstack::settings::load(config.as_deref(), &[])?;
    let rs = regstack::RegStack::new(loaded.config).await?;
    let password = match password {
        Some(p) => p,
        // Only a new account needs one; an existing user keeps theirs.
        None if rs
            .engine()
            .ports
            .users
            .find_by_email(&email.to_lowercase())
            .await?
            .is_some() =>
        {
            String::new()
        }
        None => {
            let first = rpassword::prompt_password("Password: ")?;
            let again = rpassword::prompt_password("Repeat password: ")?;
            anyhow::ensure!(first == again, "the passwords do not match");
            first
        }
    };
    match cli::progress::shown("creating the account", rs.bootstrap_admin(&email, &password)).await {
        Ok((Bootstrapped::Created, user)) => println!("\u{2714} Created superuser {} (id {}).", user.email, user.id),
        Ok((Bootstrapped::Promoted, user)) => {
            println!(
                "\u{2714} Promoted existing user {} to superuser; their password is unchanged.",
                user.email
            );
            cannot_sign_in_yet(&rs, &user);
        }
        Ok((Bootstrapped::AlreadyAdmin, user)) => {
            println!("\u{2714} {} is already a superuser; nothing changed.", user.email);
            cannot_sign_in_yet(&rs, &user);
        }
        Err(e) => anyhow::bail!("\u{2718} {}", regstack_core::http::ApiError::from(e).detail_text()),
    }
    Ok(())
}

/// Says when a promoted account still cannot sign in: promotion sets only the flag.
fn cannot_sign_in_yet(rs: &regstack::RegStack, user: &regstack_core::records::User) {
    if !user.is_active {
        println!("\u{26a0} The account is disabled: it cannot sign in until an admin enables it.");
    }
    if !user.is_verified && rs.config().require_verification {
        println!("\u{26a0} The address is not verified: it cannot sign in until it is.");
    }
}
