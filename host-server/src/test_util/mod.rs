//! Test support shared by the server's, the client's and the load generator's tests (feature
//! `test-util`; never in a release build): a temp-dir server fixture ([`TestServer`]), a
//! blocking protocol client ([`Client`]) that drives `chatbox_core`'s session and messages
//! directly, accounts made over the protocol ([`register`], [`login`]) and log-reading helpers.
//!
//! Built only on the crate's public API ([`crate::start`], [`crate::Config::for_tests`],
//! [`crate::invite`], [`crate::store`]) and `chatbox_core`, so it survives refactors of the
//! server's insides. Every wait has a deadline; failures panic with what was awaited, which is
//! what a test wants (docs/DESIGN.md, testing).

// Test support: a failed set-up step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod account;
mod client;
mod logs;
mod server;

pub use account::{
    Account, PASSWORD, avoid_step_edge, code_at_offset, login, login_with, now_secs, race_invite,
    register, secret_of, start_invite, wrong_code,
};
pub use client::{Client, Rec, RecvError, random32, tcp_from};
pub use logs::{count_events, read_all_logs};
pub use server::TestServer;

/// How long a test waits for one thing (a reply, a log line, a closed connection).
pub const TIMEOUT: core::time::Duration = core::time::Duration::from_secs(10);
