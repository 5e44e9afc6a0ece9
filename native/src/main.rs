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
}

#[derive(Subcommand)]
enum ThemeAction {
    /// Design regstack-theme.css in the browser, with the real pages as the preview.
    #[command(
        after_help = "Examples:\n  regstack theme design\n  regstack theme design --config /var/www/static\n  regstack theme design --headless --var --rs-accent=#0f766e --var dark:--rs-accent=#2dd4bf\n  regstack theme design --dry-run --var --rs-radius=10px   # check and print, write nothing\n\nOnly the managed --rs-* values in the file's :root block and its\n@media (prefers-color-scheme: dark) block change; everything else in it is kept.\nExit codes: 0 done, 1 a file or the port failed, 2 a value or flag was refused."
    )]
    Design {
        /// regstack.toml or its directory; the theme file is written beside it (default: here).
        #[arg(long, conflicts_with = "target")]
        config: Option<PathBuf>,
        /// Deprecated: use --config.
        #[arg(long, value_name = "DIR")]
        target: Option<PathBuf>,
        /// The theme file's name.
        #[arg(long, default_value = "regstack-theme.css")]
        filename: String,
        /// The designer's port on 127.0.0.1 (default: any free port).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// No browser: apply the --var values, write the file and print a JSON summary.
        #[arg(long)]
        headless: bool,
        /// Like --headless, but write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Deprecated: use --headless.
        #[arg(long)]
        print_only: bool,
        /// NAME=VALUE, repeatable; dark:NAME=VALUE sets the dark scheme's value.
        #[arg(long = "var", value_name = "NAME=VALUE", allow_hyphen_values = true)]
        vars: Vec<String>,
        /// Print the designer's URL without starting a browser.
        #[arg(long)]
        no_browser: bool,
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
            action:
                ThemeAction::Design {
                    config,
                    target,
                    filename,
                    port,
                    headless,
                    dry_run,
                    print_only,
                    vars,
                    no_browser,
                },
        } => {
            if target.is_some() {
                eprintln!("\u{26a0} --target is deprecated and will go: use --config");
            }
            if print_only {
                eprintln!("\u{26a0} --print-only is deprecated and will go: use --headless");
            }
            let config = config.or(target);
            return cli::theme::run(cli::theme::Options {
                config: config.as_deref(),
                filename: &filename,
                port,
                headless: headless || dry_run || print_only,
                dry_run,
                vars: &vars,
                open_browser: !no_browser,
            })
            .await;
        }
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
    match rs.bootstrap_admin(&email, &password).await {
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
