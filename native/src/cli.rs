//! The operator commands of the `regstack` binary beyond `serve` (docs/cli.md). Each prints
//! one line per step, marked ✔, ⚠ or ✘, and returns the process exit code.

pub mod config_file;
pub mod dns;
pub mod doctor;
pub mod init;
pub mod local_ui;
pub mod migrate;
pub mod oauth_setup;
pub mod progress;
pub mod ses_setup;
pub mod theme;
pub mod validate;

use std::path::{Path, PathBuf};

/// Where a command's files go: the directory `--config` names, or the one holding the file
/// it names (default: here).
pub fn config_dir(config: Option<&Path>) -> PathBuf {
    match config {
        None => PathBuf::from("."),
        Some(p) if p.is_file() || p.extension().is_some_and(|e| e == "toml") => p
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
        Some(p) => p.to_path_buf(),
    }
}

/// The text of `path`, or nothing when there is no such file yet.
pub fn read_or_empty(path: &Path) -> std::io::Result<String> {
    match std::fs::read_to_string(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        other => other,
    }
}

/// Puts `text` at `path` through a new file beside it and a rename, so readers see the old
/// file or the new one, whole. A `private` file is readable by its owner only; any other
/// keeps the mode of the file it replaces (0644 when new). A symbolic link is followed, so
/// the file it names changes and the link stays.
pub fn replace_file(path: &Path, text: &str, private: bool) -> std::io::Result<()> {
    let path = match std::fs::canonicalize(path) {
        Ok(real) => real,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => path.to_path_buf(),
        Err(e) => return Err(e),
    };
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("regstack");
    // A fresh name per call: two saves at once never share (or delete) each other's file.
    let mut nonce = [0u8; 8];
    getrandom::fill(&mut nonce).map_err(|e| std::io::Error::other(e.to_string()))?;
    let aside = path.with_file_name(format!(".{name}.{}.tmp", regstack_core::hex::encode(&nonce)));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let kept = std::fs::metadata(&path).ok().map(|m| m.permissions().mode() & 0o777);
        options.mode(if private { 0o600 } else { kept.unwrap_or(0o644) });
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(&aside)?;
    let written = std::io::Write::write_all(&mut file, text.as_bytes()).and_then(|()| file.sync_all());
    drop(file);
    match written.and_then(|()| std::fs::rename(&aside, &path)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = std::fs::remove_file(&aside);
            Err(e)
        }
    }
}

/// A finished step.
pub fn pass(name: &str, detail: impl std::fmt::Display) {
    println!("\u{2714} {name}: {detail}");
}

/// An advisory: worth acting on, never a failure.
pub fn warn(name: &str, detail: impl std::fmt::Display) {
    println!("\u{26a0} {name}: {detail}");
}

/// A failed step.
pub fn fail(name: &str, detail: impl std::fmt::Display) {
    println!("\u{2718} {name}: {detail}");
}
