//! The checks behind the cargo-fuzz targets of `chatbox-core`.
//!
//! Every target in `fuzz_targets/` is one line that calls a function here, so the same checks
//! run on stable under `cargo test` (see `tests/corpus.rs`): over the committed corpora and over
//! the reproducers of past findings in `regressions/<target>/`.
//!
//! What a target asserts: no panic on any input (core must return errors), plus the properties
//! written next to each check (round trips equal, canonical re-encodings, forged records never
//! authenticate, a dead session stays dead, ...). A failed assertion is a finding.

pub mod encoding;
pub mod frame;
pub mod handshake;
pub mod link;
pub mod names;
pub mod otp;
pub mod password;
pub mod proto;
pub mod qr;
pub mod session;
pub mod support;

/// A target's check: panics on a finding.
pub type Check = fn(&[u8]);

/// Every target: its name (also its corpus directory) and its check.
pub const TARGETS: &[(&str, Check)] = &[
    ("frame_decode", frame::decode),
    ("frame_roundtrip", frame::roundtrip),
    ("handshake_responder", handshake::responder),
    ("handshake_initiator", handshake::initiator),
    ("session_open", session::open),
    ("session_roundtrip", session::roundtrip),
    ("proto_client", proto::client),
    ("proto_server", proto::server),
    ("proto_roundtrip", proto::roundtrip),
    ("phc_parse", password::phc_parse),
    ("encoding", encoding::check),
    ("otp", otp::check),
    ("names", names::check),
    ("qr", qr::check),
    ("link", link::check),
];

/// The check of the target called `name`.
#[must_use]
pub fn target(name: &str) -> Option<Check> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}
