//! AES-256-CTR + HMAC-SHA256, encrypt-then-MAC (docs/DESIGN.md §2, "Cipher").
//!
//! ```text
//! iv  = u64be(n) || 0u64
//! ct  = AES-256-CTR(ek, iv, pt)
//! tag = HMAC-SHA256(mk, ad || ct || u64be(len(ad)) || u64be(len(ct)))[..16]
//! ```
//! The handshake's `ENCRYPT(k, n, ad, pt)` first derives `(ek, mk) = HKDF(k, "", 2)`
//! ([`RecordKeys::derive`]); the transport ratchet derives `ek`, `mk` itself
//! ([`RecordKeys::from_parts`]). Opening checks the tag in constant time before any decryption.

use crate::buffer::{BufferTooSmall, prefix_mut};
use aes::Aes256;
use ctr::cipher::{KeyIvInit, StreamCipher};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::CryptoError;
use super::hash::{HASH_LEN, HmacSha256};
use super::hkdf::hkdf2;

/// Length of the truncated authentication tag.
pub const TAG_LEN: usize = 16;

type Aes256Ctr = ctr::Ctr128BE<Aes256>;

/// The encryption key and MAC key of one record (or one handshake `ENCRYPT`). Wiped on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct RecordKeys {
    ek: [u8; HASH_LEN],
    mk: [u8; HASH_LEN],
}

impl core::fmt::Debug for RecordKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("RecordKeys(..)")
    }
}

impl RecordKeys {
    /// `(ek, mk) = HKDF(k, "", 2)`, as the handshake's `ENCRYPT(k, …)` does.
    #[must_use]
    pub fn derive(k: &[u8; HASH_LEN]) -> Self {
        let (ek, mk) = hkdf2(k, &[]);
        Self { ek, mk }
    }

    /// Uses `ek` and `mk` as they are (the transport ratchet derived them).
    #[must_use]
    pub fn from_parts(ek: [u8; HASH_LEN], mk: [u8; HASH_LEN]) -> Self {
        Self { ek, mk }
    }

    fn keystream(&self, n: u64, buf: &mut [u8]) {
        let mut iv = [0u8; 16];
        if let Some(head) = iv.get_mut(..8) {
            head.copy_from_slice(&n.to_be_bytes());
        }
        aes256_ctr(&self.ek, &iv, buf);
    }

    fn tag(&self, ad: &[u8], ct: &[u8]) -> [u8; TAG_LEN] {
        let ad_len = (ad.len() as u64).to_be_bytes();
        let ct_len = (ct.len() as u64).to_be_bytes();
        let mut full = HmacSha256::new(&self.mk).finish_parts(&[ad, ct, &ad_len, &ct_len]);
        let mut tag = [0u8; TAG_LEN];
        for (t, f) in tag.iter_mut().zip(full.iter()) {
            *t = *f;
        }
        full.zeroize();
        tag
    }

    /// Encrypts `buf` in place with nonce `n` and returns the tag over `ad` and the ciphertext.
    #[must_use]
    pub fn seal_in_place(&self, n: u64, ad: &[u8], buf: &mut [u8]) -> [u8; TAG_LEN] {
        self.keystream(n, buf);
        self.tag(ad, buf)
    }

    /// Checks `tag` over `ad` and the ciphertext in `buf` in constant time, then decrypts `buf`
    /// in place. On a bad tag `buf` is left as it was and [`CryptoError::BadTag`] is returned.
    pub fn open_in_place(
        &self,
        n: u64,
        ad: &[u8],
        buf: &mut [u8],
        tag: &[u8],
    ) -> Result<(), CryptoError> {
        let expected = self.tag(ad, buf);
        if tag.len() != TAG_LEN || !bool::from(expected.ct_eq(tag)) {
            return Err(CryptoError::BadTag);
        }
        self.keystream(n, buf);
        Ok(())
    }
}

/// AES-256 in CTR mode with a 128-bit big-endian counter block starting at `counter`, applied
/// in place (encryption and decryption are the same operation).
pub fn aes256_ctr(key: &[u8; HASH_LEN], counter: &[u8; 16], buf: &mut [u8]) {
    let mut cipher = Aes256Ctr::new(key.into(), counter.into());
    cipher.apply_keystream(buf);
}

/// Noise `ENCRYPT(k, n, ad, pt)`: writes `ct || tag` into `out` and returns its length.
pub fn encrypt(
    k: &[u8; HASH_LEN],
    n: u64,
    ad: &[u8],
    plaintext: &[u8],
    out: &mut [u8],
) -> Result<usize, CryptoError> {
    let required = plaintext.len() + TAG_LEN;
    let (body, rest) = out
        .get_mut(..required)
        .map(|o| o.split_at_mut(plaintext.len()))
        .ok_or(CryptoError::InsufficientSize(BufferTooSmall { required }))?;
    body.copy_from_slice(plaintext);
    let tag = RecordKeys::derive(k).seal_in_place(n, ad, body);
    rest.copy_from_slice(&tag);
    Ok(required)
}

/// Noise `DECRYPT(k, n, ad, ct || tag)`: writes the plaintext into `out`, returns its length.
pub fn decrypt(
    k: &[u8; HASH_LEN],
    n: u64,
    ad: &[u8],
    ciphertext: &[u8],
    out: &mut [u8],
) -> Result<usize, CryptoError> {
    let ct_len = ciphertext
        .len()
        .checked_sub(TAG_LEN)
        .ok_or(CryptoError::TooShort)?;
    let (ct, tag) = ciphertext.split_at(ct_len);
    let body = prefix_mut(out, ct_len)?;
    body.copy_from_slice(ct);
    if let Err(e) = RecordKeys::derive(k).open_in_place(n, ad, body, tag) {
        body.zeroize();
        return Err(e);
    }
    Ok(ct_len)
}
