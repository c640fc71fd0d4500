//! The Noise HKDF (Noise spec rev 34 §4.3) over HMAC-SHA256.
//!
//! `HKDF(ck, ikm, n)`: `temp = HMAC(ck, ikm)`, `out1 = HMAC(temp, 0x01)`,
//! `out_i = HMAC(temp, out_{i-1} || i)`. The keyed `temp` state is computed once and cloned for
//! each output.

use zeroize::Zeroize;

use super::hash::{HASH_LEN, HmacSha256};

/// Derives two 32-byte outputs.
#[must_use]
pub fn hkdf2(chaining_key: &[u8; HASH_LEN], ikm: &[u8]) -> ([u8; HASH_LEN], [u8; HASH_LEN]) {
    let mut out = [[0u8; HASH_LEN]; 2];
    expand(chaining_key, ikm, &mut out);
    let [a, b] = out;
    (a, b)
}

/// Derives three 32-byte outputs.
#[must_use]
pub fn hkdf3(
    chaining_key: &[u8; HASH_LEN],
    ikm: &[u8],
) -> ([u8; HASH_LEN], [u8; HASH_LEN], [u8; HASH_LEN]) {
    let mut out = [[0u8; HASH_LEN]; 3];
    expand(chaining_key, ikm, &mut out);
    let [a, b, c] = out;
    (a, b, c)
}

fn expand(chaining_key: &[u8; HASH_LEN], ikm: &[u8], outputs: &mut [[u8; HASH_LEN]]) {
    let mut temp_key = HmacSha256::new(chaining_key).finish_parts(&[ikm]);
    let temp = HmacSha256::new(&temp_key);
    temp_key.zeroize();
    let mut previous: Option<[u8; HASH_LEN]> = None;
    for (i, out) in outputs.iter_mut().enumerate() {
        // At most 3 outputs: the counter byte always fits.
        let counter = [u8::try_from(i + 1).unwrap_or(u8::MAX)];
        *out = match &previous {
            None => temp.mac_parts(&[&counter]),
            Some(prev) => temp.mac_parts(&[prev, &counter]),
        };
        previous = Some(*out);
    }
    if let Some(mut p) = previous {
        p.zeroize();
    }
}
