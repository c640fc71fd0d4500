//! # chatbox-core
//!
//! The ChatBox protocol, once, for every target: the server, the terminal client, and embedded
//! clients or gateways. `#![no_std]`, no allocation, no clock, no sockets: hosts move bytes, keep
//! time and supply randomness; this crate does everything that is protocol.
//!
//! | module | what it holds |
//! |---|---|
//! | [`buffer`] | the one output-buffer-too-small error every encoder reports |
//! | [`frame`] | `u16` big-endian length-prefixed framing with an incremental decoder |
//! | [`crypto`] | SHA-256, HMAC-SHA256, Noise HKDF, AES-256-CTR + HMAC-SHA256 encrypt-then-MAC, X25519 |
//! | [`noise`] | Noise `NX` handshake (`ChatBox_NX_25519_AES256CTR-HMAC_SHA256`) |
//! | [`session`] | sans-IO session state machine: handshake, then the per-record symmetric ratchet |
//! | [`proto`] | application messages: encode into caller buffers, zero-copy validated decode |
//! | [`link`] | `chatbox://` invite links (server key pin + invite token), percent-coding |
//! | [`otp`] | HOTP (RFC 4226) / TOTP (RFC 6238), otpauth URIs |
//! | [`password`] | PBKDF2-HMAC-SHA256 PHC strings |
//! | [`encoding`] | Base32 / Base64 helpers |
//! | [`qr`] | QR code matrices for otpauth URIs |
//! | [`text`] | user text made safe to store and show: escapes, controls, separators, invisible characters removed |
//! | [`username`] | the user-name rules |
//!
//! The wire format is documented byte by byte in `docs/PROTOCOL.md`.
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

#[cfg(any(test, feature = "std"))]
extern crate std;

pub mod buffer;
pub mod crypto;
pub mod encoding;
pub mod frame;
pub mod link;
pub mod noise;
pub mod otp;
pub mod password;
pub mod proto;
pub mod qr;
pub mod session;
pub mod text;
pub mod username;
