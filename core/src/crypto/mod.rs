//! Cryptographic building blocks: SHA-256, HMAC-SHA256, the Noise HKDF, the
//! AES-256-CTR + HMAC-SHA256 encrypt-then-MAC record cipher, and X25519.
//!
//! Everything here wraps RustCrypto / dalek primitives; this module only fixes how they are
//! combined (docs/DESIGN.md §2). All key material is wiped on drop.

pub mod cipher;
pub mod dh;
pub mod hash;
pub mod hkdf;

use crate::buffer::BufferTooSmall;
use core::fmt;

/// Errors from the cryptographic layer. Deliberately opaque: a failed tag check says nothing
/// about why it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum CryptoError {
    /// The authentication tag did not verify (tampered, replayed, reordered or truncated data,
    /// or the wrong key).
    BadTag,
    /// Input shorter than the 16-byte tag.
    TooShort,
    /// The caller's output buffer is too small; `required` bytes are needed.
    InsufficientSize(BufferTooSmall),
    /// The peer's X25519 public key is of low order (the shared secret would be all zeros).
    WeakPublicKey,
    /// The nonce counter is exhausted; the key must not be used again.
    NonceExhausted,
}

impl fmt::Display for CryptoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadTag => f.write_str("authentication failed"),
            Self::TooShort => f.write_str("ciphertext shorter than its tag"),
            Self::InsufficientSize(e) => e.fmt(f),
            Self::WeakPublicKey => f.write_str("peer public key has low order"),
            Self::NonceExhausted => f.write_str("nonce counter exhausted"),
        }
    }
}

impl core::error::Error for CryptoError {}

impl From<BufferTooSmall> for CryptoError {
    fn from(e: BufferTooSmall) -> Self {
        Self::InsufficientSize(e)
    }
}
