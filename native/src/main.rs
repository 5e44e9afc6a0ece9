//! The `regstack` binary: `serve` and the operator commands.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// regstack: user accounts you run yourself.
#[derive(Parser)]
#[command(name = "regstack", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the JSON API (and /healthz, /readyz).
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
    },
    /// Create a superuser, or make an existing user one (idempotent; keeps their password).
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
        Command::Serve { host, port, config } => serve(host, port, config).await,
        Command::CreateAdmin {
            email,
            password,
            config,
        } => create_admin(email, password, config).await,
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

async fn serve(host: String, port: u16, config: Option<PathBuf>) -> anyhow::Result<()> {
    let loaded = regstack::settings::load(config.as_deref(), &[])?;
    let rs = regstack::RegStack::new(loaded.config).await?;
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
