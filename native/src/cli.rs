//! The operator commands of the `regstack` binary beyond `serve` (docs/cli.md). Each prints
//! one line per step, marked ✔, ⚠ or ✘, and returns the process exit code.

pub mod dns;
pub mod doctor;
pub mod init;
pub mod migrate;

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
