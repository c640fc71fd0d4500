//! SHA-256 and HMAC-SHA256.

use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};

/// Output length of SHA-256 and HMAC-SHA256, in bytes.
pub const HASH_LEN: usize = 32;

/// HMAC-SHA256 with its key already absorbed (inner and outer pad states precomputed).
///
/// Cloning a keyed state is much cheaper than keying HMAC again, which is what makes the
/// three-output HKDF of every record cheap.
#[derive(Clone)]
pub struct HmacSha256(hmac::Hmac<Sha256>);

impl HmacSha256 {
    /// Keys a new HMAC-SHA256 state. Any key length is accepted (HMAC hashes long keys).
    #[must_use]
    pub fn new(key: &[u8]) -> Self {
        // `Hmac` accepts keys of every length; the error branch cannot happen, but is handled
        // without panicking by falling back to an empty key (never reached).
        match hmac::Hmac::<Sha256>::new_from_slice(key) {
            Ok(mac) => Self(mac),
            Err(_) => Self(hmac::Hmac::<Sha256>::new(&Default::default())),
        }
    }

    /// Absorbs `data`.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// Returns the MAC of everything absorbed.
    #[must_use]
    pub fn finalize(self) -> [u8; HASH_LEN] {
        self.0.finalize().into_bytes().into()
    }

    /// MAC of the concatenation of `parts`, leaving `self` untouched for reuse.
    #[must_use]
    pub fn mac_parts(&self, parts: &[&[u8]]) -> [u8; HASH_LEN] {
        self.clone().finish_parts(parts)
    }

    /// MAC of the concatenation of `parts`, consuming the state (no copy when the keyed state
    /// is used once).
    #[must_use]
    pub fn finish_parts(mut self, parts: &[&[u8]]) -> [u8; HASH_LEN] {
        for part in parts {
            self.update(part);
        }
        self.finalize()
    }
}

impl core::fmt::Debug for HmacSha256 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("HmacSha256(..)")
    }
}

/// SHA-256 of `data`.
#[must_use]
pub fn sha256(data: &[u8]) -> [u8; HASH_LEN] {
    Sha256::digest(data).into()
}

/// SHA-256 of the concatenation of `parts`.
#[must_use]
pub fn sha256_parts(parts: &[&[u8]]) -> [u8; HASH_LEN] {
    let mut h = Sha256::new();
    for part in parts {
        h.update(part);
    }
    h.finalize().into()
}

/// HMAC-SHA256 of the concatenation of `parts` under `key`.
#[must_use]
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; HASH_LEN] {
    HmacSha256::new(key).finish_parts(parts)
}
