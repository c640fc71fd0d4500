//! Hostile clients against the real server over 127.0.0.1. Every attack checks three things:
//! the attacker gets the expected outcome, an honest pair of users in #lobby keeps chatting,
//! and the stored data (REGISTERED and MESSAGES rows, read-only from the SQLite file) did not
//! change. docs/SECURITY-TESTS.md has the table attack → outcome → test.
//!
//! chat.rs and auth.rs already cover the first layer (a zero/oversized frame before the
//! handshake, one bad MAC, an immediate replay, SQL metacharacters at registration, sequential
//! code reuse, one lockout, two connections per IP); these go further. One test target
//! (`cargo test -p chatbox-server --test hostile`), one module per attack family: [`wire`]
//! (framing, records, a man in the middle), [`text`] (malformed, hostile and oversized content
//! inside good records), [`auth`] (accounts: registration races, brute force, code reuse, what
//! an anonymous connection may do), [`flood`] (message, ping and connection floods, slowloris
//! and fd leaks on the real binary); the shared fixture is [`fixture`].
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../common/binserver.rs"]
mod binserver;

mod auth;
mod fixture;
mod flood;
mod text;
mod wire;
