//! Framing: every message on the stream is `len: u16 big-endian || len bytes`, with
//! `1 ≤ len ≤ 16 400` ([`MAX_FRAME_LEN`]). Anything else is a protocol error.
//!
//! [`decode`] is incremental: it never buffers, it looks at what the host has so far and says
//! how much more it needs.

use crate::buffer::{BufferTooSmall, prefix_mut};
use core::fmt;

/// Bytes of the length prefix.
pub const HEADER_LEN: usize = 2;
/// Largest frame body: 16 384 bytes of plaintext plus the 16-byte tag.
pub const MAX_FRAME_LEN: usize = 16_400;
/// Largest plaintext a transport record may carry.
pub const MAX_PLAINTEXT_LEN: usize = 16_384;
/// Largest frame on the wire, prefix included.
pub const MAX_WIRE_LEN: usize = HEADER_LEN + MAX_FRAME_LEN;

/// Framing errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum FrameError {
    /// A length prefix of zero.
    Empty,
    /// A length prefix (or a body to encode) above [`MAX_FRAME_LEN`].
    TooLong {
        /// The length that was announced or asked for.
        len: usize,
    },
    /// The output buffer is too small.
    InsufficientSize(BufferTooSmall),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("empty frame"),
            Self::TooLong { len } => write!(f, "frame of {len} bytes exceeds {MAX_FRAME_LEN}"),
            Self::InsufficientSize(e) => e.fmt(f),
        }
    }
}

impl core::error::Error for FrameError {}

impl From<BufferTooSmall> for FrameError {
    fn from(e: BufferTooSmall) -> Self {
        Self::InsufficientSize(e)
    }
}

/// What [`decode`] found at the start of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Decoded<'a> {
    /// Not a whole frame yet; at least `needed` more bytes must arrive.
    Incomplete {
        /// How many more bytes are needed, at least.
        needed: usize,
    },
    /// A whole frame: its body, and how many bytes of the buffer it used (prefix included).
    Frame(&'a [u8], usize),
}

/// Reads the length prefix at the start of `buf`, if it is there and valid.
pub fn peek_len(buf: &[u8]) -> Result<Option<usize>, FrameError> {
    match buf {
        [hi, lo, ..] => {
            let len = usize::from(u16::from_be_bytes([*hi, *lo]));
            if len == 0 {
                Err(FrameError::Empty)
            } else if len > MAX_FRAME_LEN {
                Err(FrameError::TooLong { len })
            } else {
                Ok(Some(len))
            }
        }
        _ => Ok(None),
    }
}

/// Decodes the frame at the start of `buf`.
pub fn decode(buf: &[u8]) -> Result<Decoded<'_>, FrameError> {
    let Some(len) = peek_len(buf)? else {
        return Ok(Decoded::Incomplete {
            needed: HEADER_LEN - buf.len(),
        });
    };
    let total = HEADER_LEN + len;
    match buf.get(HEADER_LEN..total) {
        Some(body) => Ok(Decoded::Frame(body, total)),
        None => Ok(Decoded::Incomplete {
            needed: total - buf.len(),
        }),
    }
}

/// Writes `u16be(len) || body` into `out`, returns the bytes written.
pub fn encode(body: &[u8], out: &mut [u8]) -> Result<usize, FrameError> {
    let header = header(body.len())?;
    let total = HEADER_LEN + body.len();
    let dst = prefix_mut(out, total)?;
    let (h, b) = dst.split_at_mut(HEADER_LEN);
    h.copy_from_slice(&header);
    b.copy_from_slice(body);
    Ok(total)
}

/// The length prefix for a body of `len` bytes.
pub fn header(len: usize) -> Result<[u8; HEADER_LEN], FrameError> {
    if len == 0 {
        return Err(FrameError::Empty);
    }
    let l = u16::try_from(len).map_err(|_| FrameError::TooLong { len })?;
    if len > MAX_FRAME_LEN {
        return Err(FrameError::TooLong { len });
    }
    Ok(l.to_be_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_incremental() {
        let mut out = [0u8; 16];
        let n = encode(b"hello", &mut out).unwrap();
        assert_eq!(&out[..n], b"\x00\x05hello");
        for cut in 0..n {
            match decode(&out[..cut]).unwrap() {
                Decoded::Incomplete { needed } => assert!(needed >= 1 && cut + needed <= n),
                Decoded::Frame(..) => panic!("frame from {cut} bytes"),
            }
        }
        assert_eq!(decode(&out[..n]).unwrap(), Decoded::Frame(b"hello", n));
    }

    #[test]
    fn limits() {
        assert_eq!(decode(&[0, 0]), Err(FrameError::Empty));
        assert_eq!(
            decode(&[0x40, 0x11]),
            Err(FrameError::TooLong { len: 16_401 })
        );
        assert!(matches!(
            decode(&[0x40, 0x10]),
            Ok(Decoded::Incomplete { needed: 16_400 })
        ));
        assert_eq!(header(0), Err(FrameError::Empty));
        assert_eq!(header(16_401), Err(FrameError::TooLong { len: 16_401 }));
        assert_eq!(header(70_000), Err(FrameError::TooLong { len: 70_000 }));
        let mut small = [0u8; 3];
        assert_eq!(
            encode(b"abc", &mut small),
            Err(FrameError::InsufficientSize(BufferTooSmall { required: 5 }))
        );
    }
}
