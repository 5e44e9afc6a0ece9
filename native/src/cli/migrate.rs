//! `regstack migrate`: brings a SQL database's schema to a revision, printing where it stood
//! before and after (docs/cli.md, "migrate").

use std::path::Path;
use std::process::ExitCode;

use regstack::store::{self, Target};

use super::{fail, pass};

/// Runs the command; exit 0 when the schema reached the target (or had nothing to do), 1 when
/// the config, the database or a migration failed.
pub async fn run(config: Option<&Path>, target: Target) -> ExitCode {
    let loaded = match regstack::settings::load(config, &[]) {
        Ok(l) => l,
        Err(e) => {
            fail("config", e);
            return ExitCode::FAILURE;
        }
    };
    let config = loaded.config;
    match super::progress::shown("migrating", store::migrate(&config, target)).await {
        Ok(None) => {
            pass(
                "migrate",
                "MongoDB has no schema migrations: regstack installs its indexes each time it starts; nothing to do",
            );
            ExitCode::SUCCESS
        }
        Ok(Some(done)) => {
            println!("before: {}", done.before);
            if done.before.alembic.as_deref().is_some_and(|r| r != "0003") {
                pass(
                    "adopt",
                    format!(
                        "regstack 0.9.3's schema moved from Alembic revision {} to 0003",
                        done.before.alembic.as_deref().unwrap_or_default()
                    ),
                );
            }
            if done.applied.is_empty() {
                pass("migrate", format!("already at {}; nothing to do", done.after));
            } else {
                let names: Vec<String> = done.applied.iter().map(|v| format!("{v:04}")).collect();
                pass("migrate", format!("applied {}", names.join(", ")));
            }
            println!("after: {}", done.after);
            ExitCode::SUCCESS
        }
        Err(e) => {
            fail("migrate", e);
            ExitCode::FAILURE
        }
    }
}
