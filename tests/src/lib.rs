//! The black-box HTTP conformance harness for regstack.
//!
//! [`Server::start`] spawns the real `regstack serve` binary in a fresh temporary directory
//! (so no stray `regstack.toml` is read), on a free loopback port, with a fresh database and a
//! fixed JWT secret, and waits for `GET /healthz`. The server's stdout is read continuously in
//! the background; [`Server::wait_for_link`] consumes it line by line until a link of the
//! wanted kind shows up, exactly like `regstack validate` does (docs/wire.md, "Console output"); SMS codes are
//! scraped the same way by [`Server::wait_for_sms_code`].
//!
//! Every request helper returns a [`Resp`] (status, headers, raw text and parsed JSON) whose
//! `assert_*` methods compare against the contract's exact bodies and print the whole exchange
//! when they fail.
//!
//! Environment hooks:
//! - `REGSTACK_BIN`: the binary to run (default: `regstack` next to the test executable's
//!   `deps/` directory, i.e. `<target>/debug/regstack`).
//! - `REGSTACK_TEST_DATABASE_URL`: a database URL template for other backends; `{dir}` is
//!   replaced by the server's temporary directory and `{id}` by a unique identifier made of
//!   lower-case letters, digits and `_`. Default: `sqlite+aiosqlite:///{dir}/regstack.db`.
//! - `REGSTACK_TEST_DATABASE_SETUP`: a shell command run (with the same `{dir}` and `{id}`
//!   replacements) before each new server starts, e.g. `createdb … {id}` for Postgres.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::sync::Mutex;

pub use serde_json::{json, Value};

/// The JWT secret every test server uses (stable across restarts of one server).
pub const JWT_SECRET: &str = "conformance-suite-jwt-secret-0123456789-abcdefghij";

/// The API prefix the server mounts its router at (the default `api_prefix`).
pub const API_PREFIX: &str = "/api/auth";

/// A password that satisfies the 8–128 character rule.
pub const PASSWORD: &str = "correct horse battery staple";

/// How long [`Server::wait_for_link`] waits for a link before failing.
pub const LINK_TIMEOUT: Duration = Duration::from_secs(10);

/// How long [`Server::start`] waits for `/healthz` before failing.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);

pub mod browser;
mod client;
mod inspect;
pub mod mail;
pub mod msg;
mod oidc;
mod scrape;
mod server;
mod unique;

pub use client::*;
pub use inspect::*;
pub use oidc::*;
pub use scrape::*;
pub use server::*;
pub use unique::*;
