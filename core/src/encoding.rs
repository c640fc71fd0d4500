//! Base32 and Base64 into caller-owned buffers.
//!
//! Thin wrappers over `data-encoding` (Base32) and `base64ct` (Base64, constant time) that add
//! what ChatBox needs on top:
//!
//! - Base32 is RFC 4648 upper case **without padding**, as used for TOTP secrets in otpauth URIs.
//!   Decoding is forgiving in the ways that matter for a secret typed by hand (any case, spaces,
//!   dashes, trailing `=`) and strict otherwise.
//! - [`base32_grouped`] formats a secret in groups of four for display.
//! - Base64 comes padded ([`base64_encode`]) and unpadded ([`b64_encode`], PHC strings and
//!   `SHA256:` server-key fingerprints).
//!
//! Every function writes into `out` and returns the written prefix, or
//! [`EncodingError::InsufficientSize`] with the exact size it needs.

use crate::buffer::{BufferTooSmall, prefix_mut};
use base64ct::{Base64, Base64Unpadded, Encoding as _};
use data_encoding::{BASE32_NOPAD, BASE32_NOPAD_NOCASE};

/// Errors from this module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum EncodingError {
    /// The output buffer is too small.
    InsufficientSize(BufferTooSmall),
    /// The input contains a character outside the alphabet, has an impossible length, bad
    /// padding or non-zero trailing bits.
    InvalidInput,
}

impl core::fmt::Display for EncodingError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::InsufficientSize(BufferTooSmall { required }) => {
                write!(f, "output buffer too small: {required} bytes required")
            }
            Self::InvalidInput => f.write_str("invalid encoded input"),
        }
    }
}

impl core::error::Error for EncodingError {}

impl From<BufferTooSmall> for EncodingError {
    fn from(e: BufferTooSmall) -> Self {
        Self::InsufficientSize(e)
    }
}

/// Length of the unpadded Base32 encoding of `input_len` bytes (saturates at `usize::MAX`).
pub fn base32_encoded_len(input_len: usize) -> usize {
    // ceil(8n / 5), computed without overflowing 8n.
    let whole = (input_len / 5).saturating_mul(8);
    let tail = match input_len % 5 {
        0 => 0,
        1 => 2,
        2 => 4,
        3 => 5,
        _ => 7,
    };
    whole.saturating_add(tail)
}

/// Encodes `input` as upper-case RFC 4648 Base32 without padding.
pub fn base32_encode<'a>(input: &[u8], out: &'a mut [u8]) -> Result<&'a str, EncodingError> {
    let required = base32_encoded_len(input.len());
    let out = prefix_mut(out, required)?;
    BASE32_NOPAD.encode_mut(input, out);
    core::str::from_utf8(out).map_err(|_| EncodingError::InvalidInput)
}

/// One Base32 digit, decided by the hand-typing rules: `Some(true)` keep, `Some(false)` skip.
fn base32_char_kind(c: u8) -> Option<bool> {
    match c {
        b'A'..=b'Z' | b'a'..=b'z' | b'2'..=b'7' => Some(true),
        b' ' | b'-' => Some(false),
        _ => None,
    }
}

/// Counts the Base32 digits of `input`, checking that it holds only digits, spaces, dashes and
/// trailing `=` padding.
fn base32_digit_count(input: &str) -> Result<usize, EncodingError> {
    let mut count = 0usize;
    let mut in_padding = false;
    for c in input.bytes() {
        match (c, base32_char_kind(c)) {
            (b'=', _) => in_padding = true,
            (_, Some(true)) if !in_padding => count = count.saturating_add(1),
            (_, Some(false)) => {}
            _ => return Err(EncodingError::InvalidInput),
        }
    }
    Ok(count)
}

/// Decoded length of `digits` Base32 digits, or `None` for an impossible length (1, 3 or 6 mod 8).
fn base32_decoded_len(digits: usize) -> Option<usize> {
    let tail = match digits % 8 {
        0 => 0,
        2 => 1,
        4 => 2,
        5 => 3,
        7 => 4,
        _ => return None,
    };
    (digits / 8).checked_mul(5)?.checked_add(tail)
}

/// Decodes RFC 4648 Base32 typed by a person.
///
/// Accepts upper and lower case, ignores spaces and `-`, and accepts trailing `=` padding.
/// Rejects any other character, a digit after padding, impossible lengths and non-zero trailing
/// bits.
pub fn base32_decode<'a>(input: &str, out: &'a mut [u8]) -> Result<&'a [u8], EncodingError> {
    let digits = base32_digit_count(input)?;
    let required = base32_decoded_len(digits).ok_or(EncodingError::InvalidInput)?;
    let out = prefix_mut(out, required)?;

    // Decode one 8-digit block (5 bytes) at a time from a cleaned copy of the input.
    let mut block = [0u8; 8];
    let mut filled = 0usize;
    let mut written = 0usize;
    let kept = input
        .bytes()
        .take_while(|&c| c != b'=')
        .filter(|&c| base32_char_kind(c) == Some(true));
    for c in kept {
        let slot = block.get_mut(filled).ok_or(EncodingError::InvalidInput)?;
        *slot = c;
        filled += 1;
        if filled == block.len() {
            written = decode_block(&block, out, written)?;
            filled = 0;
        }
    }
    let rest = block.get(..filled).ok_or(EncodingError::InvalidInput)?;
    if !rest.is_empty() {
        written = decode_block(rest, out, written)?;
    }
    out.get(..written).ok_or(EncodingError::InvalidInput)
}

/// Decodes up to 8 Base32 digits into `out[at..]`, returning the new write position.
fn decode_block(digits: &[u8], out: &mut [u8], at: usize) -> Result<usize, EncodingError> {
    let len = BASE32_NOPAD_NOCASE
        .decode_len(digits.len())
        .map_err(|_| EncodingError::InvalidInput)?;
    let end = at.checked_add(len).ok_or(EncodingError::InvalidInput)?;
    let dst = out.get_mut(at..end).ok_or(EncodingError::InvalidInput)?;
    let n = BASE32_NOPAD_NOCASE
        .decode_mut(digits, dst)
        .map_err(|_| EncodingError::InvalidInput)?;
    at.checked_add(n).ok_or(EncodingError::InvalidInput)
}

/// Formats Base32 text for display in space-separated groups of four: `"JBSW Y3DP EHPK 3PXP"`.
///
/// `input_b32` must consist of Base32 digits only (as produced by [`base32_encode`]).
pub fn base32_grouped<'a>(input_b32: &str, out: &'a mut [u8]) -> Result<&'a str, EncodingError> {
    let n = input_b32.len();
    if input_b32.bytes().any(|c| base32_char_kind(c) != Some(true)) {
        return Err(EncodingError::InvalidInput);
    }
    let required = n.saturating_add(n.saturating_sub(1) / 4);
    let out = prefix_mut(out, required)?;
    let mut slots = out.iter_mut();
    for (i, c) in input_b32.bytes().enumerate() {
        if i > 0
            && i % 4 == 0
            && let Some(slot) = slots.next()
        {
            *slot = b' ';
        }
        if let Some(slot) = slots.next() {
            *slot = c;
        }
    }
    core::str::from_utf8(out).map_err(|_| EncodingError::InvalidInput)
}

/// Length of the Base64 encoding of `input_len` bytes, padded or not (saturating).
fn base64_encoded_len(input_len: usize, padded: bool) -> usize {
    let whole = (input_len / 3).saturating_mul(4);
    let tail = match (input_len % 3, padded) {
        (0, _) => 0,
        (_, true) => 4,
        (1, false) => 2,
        _ => 3,
    };
    whole.saturating_add(tail)
}

/// Decoded length of `digits` Base64 digits (padding excluded).
fn base64_decoded_len(digits: usize) -> usize {
    (digits / 4)
        .saturating_mul(3)
        .saturating_add((digits % 4) * 3 / 4)
}

/// Encodes `input` as standard padded Base64 (RFC 4648 §4).
pub fn base64_encode<'a>(input: &[u8], out: &'a mut [u8]) -> Result<&'a str, EncodingError> {
    let required = base64_encoded_len(input.len(), true);
    let out = prefix_mut(out, required)?;
    Base64::encode(input, out)
        .map_err(|_| EncodingError::InsufficientSize(BufferTooSmall { required }))
}

/// Decodes standard padded Base64 (RFC 4648 §4); padding is required and must be canonical.
pub fn base64_decode<'a>(input: &str, out: &'a mut [u8]) -> Result<&'a [u8], EncodingError> {
    let bytes = input.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return Err(EncodingError::InvalidInput);
    }
    let pad = bytes
        .iter()
        .rev()
        .take(2)
        .take_while(|&&c| c == b'=')
        .count();
    let required = base64_decoded_len(bytes.len().saturating_sub(pad));
    if out.len() < required {
        return Err(EncodingError::InsufficientSize(BufferTooSmall { required }));
    }
    Base64::decode(bytes, out).map_err(|_| EncodingError::InvalidInput)
}

/// Encodes `input` as standard Base64 without padding (PHC strings, key fingerprints).
pub fn b64_encode<'a>(input: &[u8], out: &'a mut [u8]) -> Result<&'a str, EncodingError> {
    let required = base64_encoded_len(input.len(), false);
    let out = prefix_mut(out, required)?;
    Base64Unpadded::encode(input, out)
        .map_err(|_| EncodingError::InsufficientSize(BufferTooSmall { required }))
}

/// Decodes standard Base64 without padding; `=` and non-canonical trailing bits are rejected.
pub fn b64_decode<'a>(input: &str, out: &'a mut [u8]) -> Result<&'a [u8], EncodingError> {
    if input.len() % 4 == 1 {
        return Err(EncodingError::InvalidInput);
    }
    let required = base64_decoded_len(input.len());
    if out.len() < required {
        return Err(EncodingError::InsufficientSize(BufferTooSmall { required }));
    }
    Base64Unpadded::decode(input.as_bytes(), out).map_err(|_| EncodingError::InvalidInput)
}

/// A `fmt::Write` into a caller's byte slice for building ASCII/UTF-8 text (URIs, PHC strings).
/// It keeps counting past the end of the slice, so [`SliceWriter::finish`] can report the exact
/// size needed.
pub(crate) struct SliceWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> SliceWriter<'a> {
    /// A writer at the start of `buf`.
    pub(crate) fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, len: 0 }
    }

    /// Appends raw bytes (the caller keeps the text valid UTF-8).
    pub(crate) fn write_bytes(&mut self, bytes: &[u8]) -> core::fmt::Result {
        let end = self.len.saturating_add(bytes.len());
        if let Some(dst) = self.buf.get_mut(self.len..end) {
            dst.copy_from_slice(bytes);
        }
        self.len = end;
        Ok(())
    }

    /// The text written, or `Err(required)` if it did not fit.
    pub(crate) fn finish(self) -> Result<&'a str, usize> {
        let required = self.len;
        self.buf
            .get(..required)
            .and_then(|text| core::str::from_utf8(text).ok())
            .ok_or(required)
    }
}

impl core::fmt::Write for SliceWriter<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.write_bytes(s.as_bytes())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn insufficient_size_reports_exact_requirement() {
        let mut small = [0u8; 3];
        assert_eq!(
            base32_encode(b"foobar", &mut small),
            Err(EncodingError::InsufficientSize(BufferTooSmall {
                required: 10
            }))
        );
        assert_eq!(
            base64_encode(b"foobar", &mut small),
            Err(EncodingError::InsufficientSize(BufferTooSmall {
                required: 8
            }))
        );
        assert_eq!(
            base32_decode("MZXW6YTBOI", &mut small),
            Err(EncodingError::InsufficientSize(BufferTooSmall {
                required: 6
            }))
        );
        assert_eq!(
            b64_decode("Zm9vYmFy", &mut small),
            Err(EncodingError::InsufficientSize(BufferTooSmall {
                required: 6
            }))
        );
    }

    #[test]
    fn lengths_match_the_formulas() {
        let expected = [0usize, 2, 4, 5, 7, 8, 10];
        for (n, want) in expected.iter().enumerate() {
            assert_eq!(base32_encoded_len(n), *want);
        }
        assert_eq!(base32_encoded_len(usize::MAX), usize::MAX);
    }
}
