//! The Noise `NX` handshake of ChatBox (Noise spec rev 34):
//! `Noise_NX` with X25519, SHA-256 and, in place of an AEAD, the AES-256-CTR + HMAC-SHA256
//! cipher of [`crate::crypto::cipher`].
//!
//! ```text
//! -> e                      message 1: e.pub (32) || 0x01 (protocol version, plaintext)
//! <- e, ee, s, es           message 2: e.pub (32) || enc(s) (48) || enc(payload) (len + 16)
//! ```

mod handshake;
mod keys;
mod symmetric;

pub use handshake::{Initiator, Responder, TransportKeys};
pub use keys::{FINGERPRINT_LEN, StaticKeypair, fingerprint};
pub use symmetric::{CipherState, SymmetricState};

use crate::buffer::BufferTooSmall;
use core::fmt;

use crate::crypto::CryptoError;

/// The Noise protocol name.
pub const PROTOCOL_NAME: &str = "ChatBox_NX_25519_AES256CTR-HMAC_SHA256";
/// The prologue mixed into the handshake hash.
pub const PROLOGUE: &[u8] = b"ChatBox/1";
/// Protocol version carried in message 1.
pub const PROTOCOL_VERSION: u8 = 1;
/// Length of message 1's body.
pub const MESSAGE1_LEN: usize = 33;
/// Largest handshake payload the responder may send in message 2.
pub const MAX_PAYLOAD_LEN: usize = 256;
/// Length of message 2's body without payload: `e (32) || enc(s) (48) || tag (16)`.
pub const MESSAGE2_OVERHEAD: usize = 32 + 48 + 16;

/// Handshake errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum HandshakeError {
    /// Message 1 named a protocol version other than [`PROTOCOL_VERSION`].
    UnsupportedVersion,
    /// A handshake message had the wrong length.
    BadLength,
    /// Decryption or key agreement failed (tampered message, wrong key, low-order point).
    Crypto(CryptoError),
    /// The payload is larger than [`MAX_PAYLOAD_LEN`].
    PayloadTooLong,
    /// The output buffer is too small.
    InsufficientSize(BufferTooSmall),
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnsupportedVersion => f.write_str("unsupported protocol version"),
            Self::BadLength => f.write_str("handshake message has the wrong length"),
            Self::Crypto(e) => write!(f, "handshake failed: {e}"),
            Self::PayloadTooLong => f.write_str("handshake payload too long"),
            Self::InsufficientSize(e) => e.fmt(f),
        }
    }
}

impl core::error::Error for HandshakeError {}

impl From<BufferTooSmall> for HandshakeError {
    fn from(e: BufferTooSmall) -> Self {
        Self::InsufficientSize(e)
    }
}

impl From<CryptoError> for HandshakeError {
    fn from(e: CryptoError) -> Self {
        match e {
            CryptoError::InsufficientSize(e) => Self::InsufficientSize(e),
            other => Self::Crypto(other),
        }
    }
}
