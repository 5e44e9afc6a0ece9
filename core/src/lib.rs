//! # regstack-core
//!
//! The portable core of regstack: the configuration model, Argon2id, per-purpose JWTs,
//! one-time tokens, lockout and rate-limit maths, the account flows, the routing table and
//! the axum Router built from it.
//!
//! It performs no I/O: storage, delivery, counters, time and randomness arrive through the
//! [`ports`]. The same crate builds for `wasm32-unknown-unknown` (the edge worker) and natively
//! (the tokio server), and both serve [`http::router`].
//!
//! Module map:
//! - the model: [`config`] (typed settings and their loading), [`records`] (users, pending
//!   registrations, codes), [`email`], [`ids`], [`time`];
//! - secrets and their checks: [`password`] (Argon2), [`jwt`], [`token`] (one-time tokens,
//!   SMS codes), [`hex`], [`lockout`] and [`rate_limit`] (the maths of both);
//! - what happens: [`flows`] (one module per route group), [`events`], [`render`]
//!   (templates), [`relay`] (signed hand-over of messages to a sending server), [`webhook`]
//!   (signed outbound events),
//!   [`forward_auth`] (the edge's policy for an origin app);
//! - the outside: [`ports`] (every trait a runtime implements), [`memory`], [`sqlite`] (the
//!   SQL both SQLite runtimes bind), [`console`] (log-only delivery), [`delivery`] (sending after the response);
//! - the wire: [`routes`] (the routing table and each endpoint's typed contract), [`openapi`]
//!   (the document built from it), [`http`] (the axum Router and `ApiError`),
//!   [`engine`] (one instance's state).
//!
//! Features:
//! - `test-utils`: a deterministic clock and randomness, recording mailers and sinks, and the
//!   shared port contract suite that every storage adapter runs.

pub mod config;
pub mod console;
pub mod delivery;
pub mod email;
pub mod engine;
pub mod events;
pub mod flows;
pub mod forward_auth;
pub mod hex;
pub mod http;
pub mod ids;
pub mod jwt;
pub mod lockout;
pub mod memory;
pub mod oauth;
pub mod openapi;
pub mod pages;
pub mod password;
pub mod ports;
pub mod push;
pub mod rate_limit;
pub mod records;
pub mod relay;
pub mod render;
pub mod routes;
pub mod sqlite;
pub mod theme;
pub mod time;
pub mod token;
pub mod transcript;
pub mod turnstile;
pub mod webhook;

#[cfg(any(test, feature = "test-utils"))]
pub mod testing;

pub use config::Config;
pub use engine::Engine;
pub use ports::Ports;
