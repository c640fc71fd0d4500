//! Noise `CipherState` and `SymmetricState` (spec rev 34 §5.1, §5.2).

use crate::buffer::BufferTooSmall;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::crypto::CryptoError;
use crate::crypto::cipher::{TAG_LEN, decrypt, encrypt};
use crate::crypto::hash::{HASH_LEN, sha256, sha256_parts};
use crate::crypto::hkdf::hkdf2;

/// A key (maybe empty) and its nonce counter. Never encrypts twice with the same `(k, n)`.
#[derive(Default, Zeroize, ZeroizeOnDrop)]
#[cfg_attr(fuzzing, derive(Clone))]
pub struct CipherState {
    k: Option<[u8; HASH_LEN]>,
    n: u64,
}

impl core::fmt::Debug for CipherState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CipherState")
            .field("has_key", &self.k.is_some())
            .field("n", &self.n)
            .finish()
    }
}

impl CipherState {
    /// Sets a new key and resets the nonce.
    pub fn initialize_key(&mut self, k: [u8; HASH_LEN]) {
        self.zeroize();
        self.k = Some(k);
        self.n = 0;
    }

    /// Whether a key is set.
    #[must_use]
    pub fn has_key(&self) -> bool {
        self.k.is_some()
    }

    fn next_nonce(&mut self) -> Result<u64, CryptoError> {
        let n = self.n;
        // Noise reserves 2^64-1; refuse it rather than wrap.
        self.n = n
            .checked_add(1)
            .filter(|&m| m != u64::MAX)
            .ok_or(CryptoError::NonceExhausted)?;
        Ok(n)
    }

    /// `EncryptWithAd`: with no key, copies `plaintext` to `out`.
    pub fn encrypt_with_ad(
        &mut self,
        ad: &[u8],
        plaintext: &[u8],
        out: &mut [u8],
    ) -> Result<usize, CryptoError> {
        match self.k {
            Some(k) => {
                let required = plaintext.len() + TAG_LEN;
                if out.len() < required {
                    return Err(CryptoError::InsufficientSize(BufferTooSmall { required }));
                }
                let n = self.next_nonce()?;
                encrypt(&k, n, ad, plaintext, out)
            }
            None => copy(plaintext, out),
        }
    }

    /// `DecryptWithAd`: with no key, copies `ciphertext` to `out`. The nonce advances only on
    /// success.
    pub fn decrypt_with_ad(
        &mut self,
        ad: &[u8],
        ciphertext: &[u8],
        out: &mut [u8],
    ) -> Result<usize, CryptoError> {
        match self.k {
            Some(k) => {
                let len = decrypt(&k, self.n, ad, ciphertext, out)?;
                self.next_nonce()?;
                Ok(len)
            }
            None => copy(ciphertext, out),
        }
    }
}

fn copy(input: &[u8], out: &mut [u8]) -> Result<usize, CryptoError> {
    let dst = out
        .get_mut(..input.len())
        .ok_or(CryptoError::InsufficientSize(BufferTooSmall {
            required: input.len(),
        }))?;
    dst.copy_from_slice(input);
    Ok(input.len())
}

/// Chaining key, handshake hash and the current `CipherState`.
#[derive(Zeroize, ZeroizeOnDrop)]
#[cfg_attr(fuzzing, derive(Clone))]
pub struct SymmetricState {
    ck: [u8; HASH_LEN],
    h: [u8; HASH_LEN],
    cipher: CipherState,
}

impl core::fmt::Debug for SymmetricState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SymmetricState")
            .field("h", &self.h)
            .finish_non_exhaustive()
    }
}

impl SymmetricState {
    /// `InitializeSymmetric(protocol_name)`: names longer than 32 bytes are hashed.
    #[must_use]
    pub fn new(protocol_name: &[u8]) -> Self {
        let mut h = [0u8; HASH_LEN];
        match h.get_mut(..protocol_name.len()) {
            Some(dst) => dst.copy_from_slice(protocol_name),
            None => h = sha256(protocol_name),
        }
        Self {
            ck: h,
            h,
            cipher: CipherState::default(),
        }
    }

    /// `MixKey(ikm)`.
    pub fn mix_key(&mut self, ikm: &[u8]) {
        let (ck, k) = hkdf2(&self.ck, ikm);
        self.ck = ck;
        self.cipher.initialize_key(k);
    }

    /// `MixHash(data)`.
    pub fn mix_hash(&mut self, data: &[u8]) {
        self.h = sha256_parts(&[&self.h, data]);
    }

    /// The handshake hash `h`.
    #[must_use]
    pub fn handshake_hash(&self) -> [u8; HASH_LEN] {
        self.h
    }

    /// `EncryptAndHash(plaintext)` into `out`.
    pub fn encrypt_and_hash(
        &mut self,
        plaintext: &[u8],
        out: &mut [u8],
    ) -> Result<usize, CryptoError> {
        let h = self.h;
        let len = self.cipher.encrypt_with_ad(&h, plaintext, out)?;
        self.mix_hash(out.get(..len).unwrap_or_default());
        Ok(len)
    }

    /// `DecryptAndHash(ciphertext)` into `out`.
    pub fn decrypt_and_hash(
        &mut self,
        ciphertext: &[u8],
        out: &mut [u8],
    ) -> Result<usize, CryptoError> {
        let h = self.h;
        let len = self.cipher.decrypt_with_ad(&h, ciphertext, out)?;
        self.mix_hash(ciphertext);
        Ok(len)
    }

    /// `Split()`: the initiator→responder key first.
    #[must_use]
    pub fn split(&self) -> ([u8; HASH_LEN], [u8; HASH_LEN]) {
        hkdf2(&self.ck, &[])
    }
}
