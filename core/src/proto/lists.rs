//! Lists inside messages: `u16be count || items`. Decoded lists borrow the validated bytes;
//! lists to encode borrow the host's slice.

use super::ProtoError;
use super::codec::{Reader, Writer};
use super::server::ChatMessage;

/// A list of strings (names, scratch codes).
#[derive(Debug, Clone, Copy)]
pub enum StrList<'a> {
    /// Decoded from the wire: `count` validated strings in `bytes`.
    Encoded {
        /// Number of strings.
        count: u16,
        /// Their encoding (`u16be len || UTF-8` each).
        bytes: &'a [u8],
    },
    /// Supplied by the host for encoding.
    Items(&'a [&'a str]),
}

impl<'a> StrList<'a> {
    /// Number of strings.
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

    /// The strings, in order.
    pub fn iter(&self) -> impl Iterator<Item = &'a str> + 'a {
        let (encoded, items): (Option<(u16, &'a [u8])>, &'a [&'a str]) = match *self {
            Self::Encoded { count, bytes } => (Some((count, bytes)), &[]),
            Self::Items(items) => (None, items),
        };
        let mut reader = encoded.map(|(c, b)| (c, Reader::new(b)));
        let decoded = core::iter::from_fn(move || {
            let (left, r) = reader.as_mut()?;
            if *left == 0 {
                return None;
            }
            *left -= 1;
            r.str().ok()
        });
        decoded.chain(items.iter().copied())
    }

    pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), ProtoError> {
        let count = u16::try_from(self.len()).map_err(|_| ProtoError::TooLong)?;
        w.u16(count)?;
        for s in self.iter() {
            w.str(s)?;
        }
        Ok(())
    }

    pub(crate) fn decode(r: &mut Reader<'a>) -> Result<Self, ProtoError> {
        let count = r.u16()?;
        let start = r.rest();
        for _ in 0..count {
            r.str()?;
        }
        let used = start.len() - r.rest().len();
        Ok(Self::Encoded {
            count,
            bytes: start.get(..used).unwrap_or_default(),
        })
    }
}

impl PartialEq for StrList<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

/// A list of chat messages (history batches).
#[derive(Debug, Clone, Copy)]
pub enum MessageList<'a> {
    /// Decoded from the wire: `count` validated messages in `bytes`.
    Encoded {
        /// Number of messages.
        count: u16,
        /// Their encoding.
        bytes: &'a [u8],
    },
    /// Supplied by the host for encoding.
    Items(&'a [ChatMessage<'a>]),
}

impl<'a> MessageList<'a> {
    /// Number of messages.
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

    /// The messages, in order.
    pub fn iter(&self) -> impl Iterator<Item = ChatMessage<'a>> + 'a {
        let (encoded, items): (Option<(u16, &'a [u8])>, &'a [ChatMessage<'a>]) = match *self {
            Self::Encoded { count, bytes } => (Some((count, bytes)), &[]),
            Self::Items(items) => (None, items),
        };
        let mut reader = encoded.map(|(c, b)| (c, Reader::new(b)));
        let decoded = core::iter::from_fn(move || {
            let (left, r) = reader.as_mut()?;
            if *left == 0 {
                return None;
            }
            *left -= 1;
            ChatMessage::decode_fields(r).ok()
        });
        decoded.chain(items.iter().copied())
    }

    pub(crate) fn encode(&self, w: &mut Writer<'_>) -> Result<(), ProtoError> {
        let count = u16::try_from(self.len()).map_err(|_| ProtoError::TooLong)?;
        w.u16(count)?;
        for m in self.iter() {
            m.encode_fields(w)?;
        }
        Ok(())
    }

    pub(crate) fn decode(r: &mut Reader<'a>) -> Result<Self, ProtoError> {
        let count = r.u16()?;
        let start = r.rest();
        for _ in 0..count {
            ChatMessage::decode_fields(r)?;
        }
        let used = start.len() - r.rest().len();
        Ok(Self::Encoded {
            count,
            bytes: start.get(..used).unwrap_or_default(),
        })
    }
}

impl PartialEq for MessageList<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}
