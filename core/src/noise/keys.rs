//! The server's long-term X25519 key and its printable fingerprint.

use base64ct::{Base64Unpadded, Encoding};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::crypto::dh::{KEY_LEN, Keypair};
use crate::crypto::hash::sha256;

/// Length of a fingerprint string: `SHA256:` + 43 Base64 characters.
pub const FINGERPRINT_LEN: usize = 7 + 43;

/// The responder's static key pair (the server key). The secret is wiped on drop.
#[derive(Clone, Debug, Zeroize, ZeroizeOnDrop)]
pub struct StaticKeypair(Keypair);

impl StaticKeypair {
    /// From 32 secret bytes (the host reads them from its key file or its RNG).
    #[must_use]
    pub fn from_secret(secret: [u8; KEY_LEN]) -> Self {
        Self(Keypair::from_secret(secret))
    }

    /// The public key clients pin.
    #[must_use]
    pub fn public(&self) -> [u8; KEY_LEN] {
        *self.0.public()
    }

    /// The fingerprint of the public key.
    #[must_use]
    pub fn fingerprint(&self) -> heapless::String<FINGERPRINT_LEN> {
        fingerprint(&self.public())
    }

    pub(crate) fn keypair(&self) -> &Keypair {
        &self.0
    }
}

/// `SHA256:` + unpadded standard Base64 of SHA-256(`public`), as ssh prints host keys.
#[must_use]
pub fn fingerprint(public: &[u8; KEY_LEN]) -> heapless::String<FINGERPRINT_LEN> {
    let digest = sha256(public);
    let mut b64 = [0u8; 43];
    let mut s = heapless::String::new();
    // 32 bytes always encode to exactly 43 characters, and the prefix plus 43 fit: neither
    // branch can fail, but nothing here panics if they did.
    if let Ok(enc) = Base64Unpadded::encode(&digest, &mut b64) {
        let _ = s.push_str("SHA256:");
        let _ = s.push_str(enc);
    }
    s
}
