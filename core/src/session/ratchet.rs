//! The symmetric ratchet of one direction ("dynamic keying", docs/DESIGN.md §2, "Transport").
//!
//! For each record: `(ck', ek, mk) = HKDF(ck, "", 3)`, seal or open with `ek`, `mk`, nonce `n`
//! and `ad = u16be(frame len)`, then `ck = ck'` (the old one is wiped) and `n += 1`. A record
//! key is used once; yesterday's records cannot be opened from today's state.

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::crypto::CryptoError;
use crate::crypto::cipher::{RecordKeys, TAG_LEN};
use crate::crypto::hash::HASH_LEN;
use crate::crypto::hkdf::hkdf3;

/// One direction's chain key and record counter.
#[derive(Zeroize, ZeroizeOnDrop)]
#[cfg_attr(fuzzing, derive(Clone))]
pub struct Ratchet {
    ck: [u8; HASH_LEN],
    n: u64,
}

impl core::fmt::Debug for Ratchet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Ratchet")
            .field("n", &self.n)
            .finish_non_exhaustive()
    }
}

impl Ratchet {
    /// Starts from a chain key produced by `Split()`.
    #[must_use]
    pub fn new(chain_key: [u8; HASH_LEN]) -> Self {
        Self {
            ck: chain_key,
            n: 0,
        }
    }

    /// The number of records this direction has processed (the key epoch).
    #[must_use]
    pub fn epoch(&self) -> u64 {
        self.n
    }

    /// The current chain key (for known-answer tests).
    #[must_use]
    pub fn chain_key(&self) -> &[u8; HASH_LEN] {
        &self.ck
    }

    fn step(&mut self) -> Result<(u64, RecordKeys), CryptoError> {
        let n = self.n;
        let next_n = n.checked_add(1).ok_or(CryptoError::NonceExhausted)?;
        let (next_ck, ek, mk) = hkdf3(&self.ck, &[]);
        self.ck.zeroize();
        self.ck = next_ck;
        self.n = next_n;
        Ok((n, RecordKeys::from_parts(ek, mk)))
    }

    /// Seals `body[..body.len() - 16]` in place and writes the tag into the last 16 bytes.
    /// `body` is the whole frame body; `ad` is its length as `u16be`.
    pub fn seal_body(&mut self, body: &mut [u8]) -> Result<(), CryptoError> {
        let frame_len = u16::try_from(body.len()).map_err(|_| CryptoError::TooShort)?;
        let ct_len = body
            .len()
            .checked_sub(TAG_LEN)
            .ok_or(CryptoError::TooShort)?;
        let (n, keys) = self.step()?;
        let (ct, tag_out) = body.split_at_mut(ct_len);
        let tag = keys.seal_in_place(n, &frame_len.to_be_bytes(), ct);
        tag_out.copy_from_slice(&tag);
        Ok(())
    }

    /// Opens a whole frame body in place; returns the plaintext length. The ratchet advances
    /// only when the record authenticates.
    pub fn open_body(&mut self, body: &mut [u8]) -> Result<usize, CryptoError> {
        let frame_len = u16::try_from(body.len()).map_err(|_| CryptoError::TooShort)?;
        let ct_len = body
            .len()
            .checked_sub(TAG_LEN)
            .ok_or(CryptoError::TooShort)?;
        let (next_ck, ek, mk) = hkdf3(&self.ck, &[]);
        let keys = RecordKeys::from_parts(ek, mk);
        let (ct, tag) = body.split_at_mut(ct_len);
        let opened = keys.open_in_place(self.n, &frame_len.to_be_bytes(), ct, tag);
        let mut next_ck = next_ck;
        if let Err(e) = opened {
            next_ck.zeroize();
            return Err(e);
        }
        self.n = self.n.checked_add(1).ok_or(CryptoError::NonceExhausted)?;
        self.ck.zeroize();
        self.ck = next_ck;
        next_ck.zeroize();
        Ok(ct_len)
    }
}
