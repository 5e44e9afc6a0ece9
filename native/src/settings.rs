//! Finding and reading the config sources of docs/wire.md, "Sources and precedence" from the file system and the
//! environment; the merge itself is the core's.

use std::path::{Path, PathBuf};

use regstack_core::config::{self, ConfigError, Loaded, Sources};
use serde_json::Value;

/// Where the TOML file is: `--config` (a file, or a directory holding `regstack.toml`), else
/// `$REGSTACK_CONFIG`, else `./regstack.toml`. Only an explicit `--config` must exist (see
/// [`load`]); the others are optional.
pub fn toml_path(explicit: Option<&Path>) -> Option<PathBuf> {
    let candidate = match explicit {
        Some(p) if p.is_dir() => p.join("regstack.toml"),
        Some(p) => p.to_path_buf(),
        None => match std::env::var_os("REGSTACK_CONFIG") {
            Some(p) => PathBuf::from(p),
            None => PathBuf::from("regstack.toml"),
        },
    };
    candidate.is_file().then_some(candidate)
}

/// A config problem, with the file it came from when there is one.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A file exists but cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// `--config` names no file.
    #[error("no config file at {0} (--config takes regstack.toml or the directory holding it)")]
    Missing(PathBuf),
    /// The merged config is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// Loads config from `regstack.toml`, `./regstack.secrets.env`, the process environment and
/// `overrides` (highest last), and logs a warning per ignored key.
pub fn load(explicit: Option<&Path>, overrides: &[(String, Value)]) -> Result<Loaded, SettingsError> {
    let read = |path: &Path| {
        std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
            path: path.to_path_buf(),
            source,
        })
    };
    if let Some(p) = explicit {
        if toml_path(Some(p)).is_none() {
            return Err(SettingsError::Missing(if p.is_dir() {
                p.join("regstack.toml")
            } else {
                p.to_path_buf()
            }));
        }
    }
    let toml = toml_path(explicit).map(|p| read(&p)).transpose()?;
    let secrets_path = Path::new("regstack.secrets.env");
    let secrets = secrets_path.is_file().then(|| read(secrets_path)).transpose()?;
    let env: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| k.len() > 9 && k[..9].eq_ignore_ascii_case("regstack_"))
        .collect();
    let loaded = config::load(Sources {
        toml: toml.as_deref(),
        secrets_env: secrets.as_deref(),
        env: &env,
        overrides,
    })?;
    for w in &loaded.warnings {
        tracing::warn!(target: "regstack.config", "{w}");
    }
    Ok(loaded)
}
