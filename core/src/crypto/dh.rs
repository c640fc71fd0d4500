//! X25519 (RFC 7748) via `x25519-dalek`. Secrets come from the host as bytes: there is no RNG in
//! core.

use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::CryptoError;

/// Length of X25519 keys and shared secrets.
pub const KEY_LEN: usize = 32;

/// An X25519 key pair; the secret half is wiped on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Keypair {
    secret: [u8; KEY_LEN],
    #[zeroize(skip)]
    public: [u8; KEY_LEN],
}

impl Keypair {
    /// Builds a key pair from 32 secret bytes (clamped as RFC 7748 says).
    #[must_use]
    pub fn from_secret(secret: [u8; KEY_LEN]) -> Self {
        let public = public_key(&secret);
        Self { secret, public }
    }

    /// The public half.
    #[must_use]
    pub fn public(&self) -> &[u8; KEY_LEN] {
        &self.public
    }

    /// X25519 with the peer's public key. Refuses low-order peer keys.
    pub fn dh(&self, their_public: &[u8; KEY_LEN]) -> Result<SharedSecret, CryptoError> {
        dh(&self.secret, their_public)
    }
}

impl core::fmt::Debug for Keypair {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Keypair")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// A DH output; wiped on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct SharedSecret(pub [u8; KEY_LEN]);

impl core::fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SharedSecret(..)")
    }
}

/// The public key for `secret`.
#[must_use]
pub fn public_key(secret: &[u8; KEY_LEN]) -> [u8; KEY_LEN] {
    let s = StaticSecret::from(*secret);
    PublicKey::from(&s).to_bytes()
}

/// X25519(`secret`, `their_public`). Fails with [`CryptoError::WeakPublicKey`] when the result
/// is all zeros (a low-order point was supplied).
pub fn dh(
    secret: &[u8; KEY_LEN],
    their_public: &[u8; KEY_LEN],
) -> Result<SharedSecret, CryptoError> {
    let s = StaticSecret::from(*secret);
    let shared = s.diffie_hellman(&PublicKey::from(*their_public));
    if !shared.was_contributory() {
        return Err(CryptoError::WeakPublicKey);
    }
    Ok(SharedSecret(shared.to_bytes()))
}

/// Raw RFC 7748 `X25519(k, u)` function, for known-answer tests.
#[must_use]
pub fn x25519(k: [u8; KEY_LEN], u: [u8; KEY_LEN]) -> [u8; KEY_LEN] {
    x25519_dalek::x25519(k, u)
}
