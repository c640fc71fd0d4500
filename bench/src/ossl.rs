//! The same record format as `chatbox_core::session::Ratchet`, on OpenSSL's AES-256-CTR and
//! HMAC-SHA256, with contexts allocated once and re-keyed for every record.
#![allow(unsafe_code)] // FFI to HMAC_CTX (the safe `openssl` crate cannot re-key an HMAC in place)

use openssl::cipher::Cipher;
use openssl::cipher_ctx::CipherCtx;
use openssl_sys as ffi;

/// An `HMAC_CTX` owned for the benchmark's lifetime.
#[derive(Debug)]
pub struct Hmac(*mut ffi::HMAC_CTX);

impl Hmac {
    /// Allocates the context once.
    pub fn new() -> Self {
        // SAFETY: HMAC_CTX_new has no preconditions; a null result is checked.
        let ctx = unsafe { ffi::HMAC_CTX_new() };
        assert!(!ctx.is_null(), "HMAC_CTX_new failed");
        Self(ctx)
    }

    /// Keys the context with `key` (`None`: reset to the current key's state, which keeps the
    /// precomputed pads — OpenSSL's keyed-state reuse).
    pub fn init(&mut self, key: Option<&[u8; 32]>) {
        let (ptr, len) = match key {
            Some(k) => (k.as_ptr().cast(), 32),
            None => (core::ptr::null(), 0),
        };
        // SAFETY: self.0 is a live HMAC_CTX; key points to 32 readable bytes or is null.
        let ok = unsafe {
            ffi::HMAC_Init_ex(self.0, ptr, len, ffi::EVP_sha256(), core::ptr::null_mut())
        };
        assert_eq!(ok, 1, "HMAC_Init_ex failed");
    }

    /// Absorbs data.
    pub fn update(&mut self, data: &[u8]) {
        // SAFETY: data is a valid slice; self.0 is initialised by `init`.
        let ok = unsafe { ffi::HMAC_Update(self.0, data.as_ptr(), data.len()) };
        assert_eq!(ok, 1, "HMAC_Update failed");
    }

    /// Finishes and returns the MAC.
    pub fn finish(&mut self) -> [u8; 32] {
        let mut out = [0u8; 32];
        let mut len = 0u32;
        // SAFETY: out has room for a SHA-256 MAC.
        let ok = unsafe { ffi::HMAC_Final(self.0, out.as_mut_ptr(), &mut len) };
        assert!(ok == 1 && len == 32, "HMAC_Final failed");
        out
    }
}

impl Default for Hmac {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Hmac {
    fn drop(&mut self) {
        // SAFETY: allocated by HMAC_CTX_new, freed once.
        unsafe { ffi::HMAC_CTX_free(self.0) }
    }
}

/// One direction of the ChatBox ratchet on OpenSSL.
pub struct OsslRatchet {
    ck: [u8; 32],
    n: u64,
    ck_mac: Hmac,
    temp_mac: Hmac,
    tag_mac: Hmac,
    cipher: CipherCtx,
}

impl core::fmt::Debug for OsslRatchet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("OsslRatchet")
            .field("n", &self.n)
            .finish_non_exhaustive()
    }
}

impl OsslRatchet {
    /// From a chain key.
    pub fn new(ck: [u8; 32]) -> Self {
        let mut cipher = CipherCtx::new().expect("cipher ctx");
        cipher
            .encrypt_init(Some(Cipher::aes_256_ctr()), None, None)
            .expect("init");
        Self {
            ck,
            n: 0,
            ck_mac: Hmac::new(),
            temp_mac: Hmac::new(),
            tag_mac: Hmac::new(),
            cipher,
        }
    }

    fn hkdf3(&mut self) -> ([u8; 32], [u8; 32], [u8; 32]) {
        self.ck_mac.init(Some(&self.ck));
        let temp = self.ck_mac.finish();
        self.temp_mac.init(Some(&temp));
        self.temp_mac.update(&[1]);
        let a = self.temp_mac.finish();
        self.temp_mac.init(None);
        self.temp_mac.update(&a);
        self.temp_mac.update(&[2]);
        let b = self.temp_mac.finish();
        self.temp_mac.init(None);
        self.temp_mac.update(&b);
        self.temp_mac.update(&[3]);
        let c = self.temp_mac.finish();
        (a, b, c)
    }

    /// Seals `body[..len-16]` in place, tag into the last 16 bytes (same format as core).
    pub fn seal_body(&mut self, body: &mut [u8]) {
        let (next, ek, mk) = self.hkdf3();
        let ct_len = body.len() - 16;
        let mut iv = [0u8; 16];
        iv[..8].copy_from_slice(&self.n.to_be_bytes());
        let (ct, tag_out) = body.split_at_mut(ct_len);
        ctr(&mut self.cipher, &ek, &iv, ct);
        let tag = mac(&mut self.tag_mac, Some(&mk), body_len(ct_len), ct);
        tag_out.copy_from_slice(&tag[..16]);
        self.ck = next;
        self.n += 1;
    }

    /// Opens in place; false if the tag does not verify.
    pub fn open_body(&mut self, body: &mut [u8]) -> bool {
        let (next, ek, mk) = self.hkdf3();
        let ct_len = body.len() - 16;
        let (ct, tag) = body.split_at_mut(ct_len);
        let want = mac(&mut self.tag_mac, Some(&mk), body_len(ct_len), ct);
        if !openssl::memcmp::eq(&want[..16], tag) {
            return false;
        }
        let mut iv = [0u8; 16];
        iv[..8].copy_from_slice(&self.n.to_be_bytes());
        ctr(&mut self.cipher, &ek, &iv, ct);
        self.ck = next;
        self.n += 1;
        true
    }
}

fn body_len(ct_len: usize) -> [u8; 2] {
    u16::try_from(ct_len + 16)
        .expect("record fits u16")
        .to_be_bytes()
}

fn ctr(cipher: &mut CipherCtx, key: &[u8; 32], iv: &[u8; 16], buf: &mut [u8]) {
    cipher
        .encrypt_init(None, Some(key), Some(iv))
        .expect("rekey");
    cipher.cipher_update_inplace(buf, buf.len()).expect("ctr");
}

fn mac(h: &mut Hmac, key: Option<&[u8; 32]>, ad: [u8; 2], ct: &[u8]) -> [u8; 32] {
    h.init(key);
    h.update(&ad);
    h.update(ct);
    h.update(&2u64.to_be_bytes());
    h.update(&(ct.len() as u64).to_be_bytes());
    h.finish()
}

/// Plain AES-256-CTR + HMAC-SHA256 with fixed keys (no ratchet), OpenSSL at its best: the
/// cipher and MAC contexts keep their keys; only the IV changes per record.
pub struct OsslPlain {
    n: u64,
    mac: Hmac,
    cipher: CipherCtx,
}

impl core::fmt::Debug for OsslPlain {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("OsslPlain")
            .field("n", &self.n)
            .finish_non_exhaustive()
    }
}

impl OsslPlain {
    /// Keys both contexts once.
    pub fn new(ek: &[u8; 32], mk: &[u8; 32]) -> Self {
        let mut cipher = CipherCtx::new().expect("cipher ctx");
        cipher
            .encrypt_init(Some(Cipher::aes_256_ctr()), Some(ek), Some(&[0; 16]))
            .expect("init");
        let mut mac = Hmac::new();
        mac.init(Some(mk));
        Self { n: 0, mac, cipher }
    }

    /// Seals in place with the next nonce.
    pub fn seal_body(&mut self, body: &mut [u8]) {
        let ct_len = body.len() - 16;
        let mut iv = [0u8; 16];
        iv[..8].copy_from_slice(&self.n.to_be_bytes());
        let (ct, tag_out) = body.split_at_mut(ct_len);
        self.cipher.encrypt_init(None, None, Some(&iv)).expect("iv");
        self.cipher.cipher_update_inplace(ct, ct_len).expect("ctr");
        let tag = mac(&mut self.mac, None, body_len(ct_len), ct);
        tag_out.copy_from_slice(&tag[..16]);
        self.n += 1;
    }
}

#[cfg(test)]
mod tests {
    use chatbox_core::session::Ratchet;

    use super::*;

    /// The OpenSSL baseline produces exactly ChatBox's records, and each side opens the
    /// other's: the benchmark compares the same work.
    #[test]
    fn openssl_ratchet_matches_core_byte_for_byte() {
        let mut ours = Ratchet::new([42; 32]);
        let mut theirs = OsslRatchet::new([42; 32]);
        let mut rx_ours = Ratchet::new([42; 32]);
        let mut rx_theirs = OsslRatchet::new([42; 32]);
        for size in [0usize, 1, 64, 1000, 16_384] {
            let pt: Vec<u8> = (0..size).map(|i| i as u8).collect();
            let mut a = pt.clone();
            a.extend_from_slice(&[0; 16]);
            let mut b = a.clone();
            ours.seal_body(&mut a).unwrap();
            theirs.seal_body(&mut b);
            assert_eq!(a, b, "size {size}");
            assert!(rx_theirs.open_body(&mut a));
            assert_eq!(rx_ours.open_body(&mut b).unwrap(), size);
            assert_eq!(&a[..size], &pt[..]);
            assert_eq!(&b[..size], &pt[..]);
        }
        let mut bad = vec![0u8; 40];
        assert!(!rx_theirs.open_body(&mut bad));
    }
}
