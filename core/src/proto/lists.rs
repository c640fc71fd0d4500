//! Lists inside messages: `u16be count || items`. A decoded list borrows its validated bytes
//! (every item was checked once at decode time); a list to encode borrows the host's slice.

use super::ProtoError;
use super::codec::{Field, Reader, Writer};

/// An item that can stand in a [`List`]: a [`Field`] that is cheap to copy and compare. The
/// message structs (`ChatMessage`, `SessionEntry`) implement it where they are defined, so this
/// module depends on the codec only.
pub trait ListItem<'a>: Field<'a> + Copy + PartialEq + 'a {}

impl<'a> ListItem<'a> for &'a str {}

/// A list of items, either decoded from the wire or supplied for encoding.
#[derive(Debug, Clone, Copy)]
pub enum List<'a, T> {
    /// Decoded from the wire: `count` validated items in `bytes`.
    Encoded {
        /// Number of items.
        count: u16,
        /// Their encoding.
        bytes: &'a [u8],
    },
    /// Supplied by the host for encoding.
    Items(&'a [T]),
}

/// A list of strings (names, scratch codes, rooms).
pub type StrList<'a> = List<'a, &'a str>;

impl<'a, T: ListItem<'a>> List<'a, T> {
    /// Number of items.
    #[must_use]
    pub fn len(&self) -> usize {
        match self {
            Self::Encoded { count, .. } => usize::from(*count),
            Self::Items(items) => items.len(),
        }
    }

    /// Whether the list is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The items, in order.
    pub fn iter(&self) -> impl Iterator<Item = T> + 'a {
        let (encoded, items): (Option<(u16, &'a [u8])>, &'a [T]) = match *self {
            Self::Encoded { count, bytes } => (Some((count, bytes)), &[]),
            Self::Items(items) => (None, items),
        };
        let mut reader = encoded.map(|(c, b)| (c, Reader::new(b)));
        let decoded = core::iter::from_fn(move || {
            let (left, r) = reader.as_mut()?;
            *left = left.checked_sub(1)?;
            T::decode_field(r).ok()
        });
        decoded.chain(items.iter().copied())
    }
}

/// `u16be count || items`; decoding checks every item once and keeps their bytes.
impl<'a, T: ListItem<'a>> Field<'a> for List<'a, T> {
    fn encoded_len(&self) -> usize {
        2 + match self {
            Self::Encoded { bytes, .. } => bytes.len(),
            Self::Items(items) => items.iter().map(Field::encoded_len).sum(),
        }
    }

    fn encode_field(&self, w: &mut Writer<'_>) -> Result<(), ProtoError> {
        let count = u16::try_from(self.len()).map_err(|_| ProtoError::TooLong)?;
        w.u16(count)?;
        self.iter().try_for_each(|item| item.encode_field(w))
    }

    fn decode_field(r: &mut Reader<'a>) -> Result<Self, ProtoError> {
        let count = r.u16()?;
        let start = r.rest();
        for _ in 0..count {
            T::decode_field(r)?;
        }
        let used = start.len() - r.rest().len();
        Ok(Self::Encoded {
            count,
            bytes: start.get(..used).unwrap_or_default(),
        })
    }
}

impl<'a, T: ListItem<'a>> PartialEq for List<'a, T> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}
