//! The black-box conformance suite: every scenario drives a real server over HTTP, whichever
//! runtime and backend `regstack_conformance::Server` starts (see the crate docs). One test
//! binary, so the suite links once and every pass of `scripts/test` selects it with
//! `--test conformance` under the same feature set as the rest of the workspace.

mod account;
mod admin;
mod auth;
mod bad_input;
mod cli;
mod concurrency;
mod delivery;
mod events;
mod forward_auth;
mod hardening;
mod lifecycle;
mod login;
mod oauth;
mod pages;
mod password_reset;
mod push;
mod refresh;
mod register;
mod relay;
mod restart;
mod routing;
mod sms;
mod turnstile;
mod validate;
