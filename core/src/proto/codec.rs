//! Field codec: big-endian integers and `u16be len || UTF-8` strings, every length checked, and
//! the [`Field`] trait through which the message tables encode, decode and size every field.

use super::ProtoError;
use crate::buffer::BufferTooSmall;

/// Writes fields into a caller-owned buffer.
#[derive(Debug)]
pub struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    /// A writer at the start of `buf`.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes written so far.
    #[must_use]
    pub fn len(&self) -> usize {
        self.pos
    }

    /// Whether nothing was written.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.pos == 0
    }

    /// Raw bytes.
    pub fn bytes(&mut self, data: &[u8]) -> Result<(), ProtoError> {
        let end = self.pos + data.len();
        let dst = self
            .buf
            .get_mut(self.pos..end)
            .ok_or(ProtoError::InsufficientSize(BufferTooSmall {
                required: end,
            }))?;
        dst.copy_from_slice(data);
        self.pos = end;
        Ok(())
    }

    /// One byte.
    pub fn u8(&mut self, v: u8) -> Result<(), ProtoError> {
        self.bytes(&[v])
    }

    /// `u16` big-endian.
    pub fn u16(&mut self, v: u16) -> Result<(), ProtoError> {
        self.bytes(&v.to_be_bytes())
    }

    /// `u32` big-endian.
    pub fn u32(&mut self, v: u32) -> Result<(), ProtoError> {
        self.bytes(&v.to_be_bytes())
    }

    /// `u64` big-endian.
    pub fn u64(&mut self, v: u64) -> Result<(), ProtoError> {
        self.bytes(&v.to_be_bytes())
    }

    /// `u16be len || UTF-8`.
    pub fn str(&mut self, s: &str) -> Result<(), ProtoError> {
        let len = u16::try_from(s.len()).map_err(|_| ProtoError::TooLong)?;
        self.u16(len)?;
        self.bytes(s.as_bytes())
    }
}

/// Reads fields from a received message, checking every length.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    #[must_use]
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Raw bytes.
    pub fn bytes(&mut self, len: usize) -> Result<&'a [u8], ProtoError> {
        let end = self.pos.checked_add(len).ok_or(ProtoError::Truncated)?;
        let out = self.buf.get(self.pos..end).ok_or(ProtoError::Truncated)?;
        self.pos = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ProtoError> {
        self.bytes(N)?.try_into().map_err(|_| ProtoError::Truncated)
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, ProtoError> {
        Ok(u8::from_be_bytes(self.array()?))
    }

    /// `u16` big-endian.
    pub fn u16(&mut self) -> Result<u16, ProtoError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    /// `u32` big-endian.
    pub fn u32(&mut self) -> Result<u32, ProtoError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// `u64` big-endian.
    pub fn u64(&mut self) -> Result<u64, ProtoError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// `u16be len || UTF-8`, validated.
    pub fn str(&mut self) -> Result<&'a str, ProtoError> {
        let len = usize::from(self.u16()?);
        core::str::from_utf8(self.bytes(len)?).map_err(|_| ProtoError::InvalidUtf8)
    }

    /// Everything not read yet.
    #[must_use]
    pub fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    /// Fails unless every byte was read.
    pub fn finish(&self) -> Result<(), ProtoError> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(ProtoError::TrailingBytes)
        }
    }
}

/// A value with a wire encoding: a field of a message, or an item of a list. The message tables
/// (`ClientMsg`, `ServerMsg`) are lists of fields, so encoding, decoding and
/// [`encoded_len`](Field::encoded_len) follow from them and cannot drift apart.
pub trait Field<'a>: Sized {
    /// Bytes the encoding takes.
    fn encoded_len(&self) -> usize;
    /// Writes the encoding.
    fn encode_field(&self, w: &mut Writer<'_>) -> Result<(), ProtoError>;
    /// Reads one value, checking it.
    fn decode_field(r: &mut Reader<'a>) -> Result<Self, ProtoError>;
}

/// `u16be len || UTF-8`.
impl<'a> Field<'a> for &'a str {
    fn encoded_len(&self) -> usize {
        2 + self.len()
    }
    fn encode_field(&self, w: &mut Writer<'_>) -> Result<(), ProtoError> {
        w.str(self)
    }
    fn decode_field(r: &mut Reader<'a>) -> Result<Self, ProtoError> {
        r.str()
    }
}

/// One byte, `0` or `1`; any other byte is [`ProtoError::BadValue`].
impl Field<'_> for bool {
    fn encoded_len(&self) -> usize {
        1
    }
    fn encode_field(&self, w: &mut Writer<'_>) -> Result<(), ProtoError> {
        w.u8(u8::from(*self))
    }
    fn decode_field(r: &mut Reader<'_>) -> Result<Self, ProtoError> {
        match r.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(ProtoError::BadValue),
        }
    }
}

/// A presence flag (as for `bool`), then the string if present.
impl<'a> Field<'a> for Option<&'a str> {
    fn encoded_len(&self) -> usize {
        1 + self.map_or(0, |s| s.encoded_len())
    }
    fn encode_field(&self, w: &mut Writer<'_>) -> Result<(), ProtoError> {
        self.is_some().encode_field(w)?;
        self.map_or(Ok(()), |s| w.str(s))
    }
    fn decode_field(r: &mut Reader<'a>) -> Result<Self, ProtoError> {
        Ok(if bool::decode_field(r)? {
            Some(r.str()?)
        } else {
            None
        })
    }
}

macro_rules! int_field {
    ($($t:ident),*) => {$(
        /// Big-endian.
        impl Field<'_> for $t {
            fn encoded_len(&self) -> usize {
                core::mem::size_of::<$t>()
            }
            fn encode_field(&self, w: &mut Writer<'_>) -> Result<(), ProtoError> {
                w.$t(*self)
            }
            fn decode_field(r: &mut Reader<'_>) -> Result<Self, ProtoError> {
                r.$t()
            }
        }
    )*};
}
int_field!(u8, u16, u32, u64);
