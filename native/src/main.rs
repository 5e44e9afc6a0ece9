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
