//! Application messages: one message per transport record, a tag byte then fields.
//!
//! Strings are `u16be len || UTF-8` and validated on decode; integers are big-endian; lists are
//! `u16be count || items`. Client messages have tags below `0x80`, server messages `0x80` and
//! above. Fixed for liveness checks by any implementation: `Ping = 0x20 || u64be token`,
//! answered by `Pong = 0xA0 || u64be token`. Every message's bytes are in `docs/PROTOCOL.md`.
//!
//! Encoding writes into a caller buffer (encode straight into the record buffer after the frame
//! header and seal in place); decoding borrows from the received plaintext, copying nothing.

#[macro_use]
mod table;

mod client;
pub mod codec;
mod kinds;
mod lists;
mod server;

pub use client::{ClientMsg, ClientTag};
pub use kinds::{ErrorCode, MessageKind, PresenceKind};
pub use lists::{List, ListItem, StrList};
pub use server::{ChatMessage, MessageList, ServerMsg, ServerTag, SessionEntry, SessionEntryList};

use crate::buffer::BufferTooSmall;
use core::fmt;

/// Longest chat text accepted, in bytes (server policy; the wire allows more).
pub const MAX_TEXT_LEN: usize = 1024;
/// Longest room name, `#` included.
pub const MAX_ROOM_LEN: usize = 32;

/// Decoding and encoding errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ProtoError {
    /// The message ended before its fields did.
    Truncated,
    /// Bytes were left after the last field.
    TrailingBytes,
    /// A tag byte this version does not know.
    UnknownTag(u8),
    /// A string was not valid UTF-8.
    InvalidUtf8,
    /// A field held a value outside its range (e.g. an unknown kind byte).
    BadValue,
    /// A string or list too long for its length field.
    TooLong,
    /// The output buffer is too small.
    InsufficientSize(BufferTooSmall),
}

impl fmt::Display for ProtoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => f.write_str("message truncated"),
            Self::TrailingBytes => f.write_str("trailing bytes after message"),
            Self::UnknownTag(t) => write!(f, "unknown message tag 0x{t:02x}"),
            Self::InvalidUtf8 => f.write_str("string is not valid UTF-8"),
            Self::BadValue => f.write_str("field value out of range"),
            Self::TooLong => f.write_str("field too long"),
            Self::InsufficientSize(e) => e.fmt(f),
        }
    }
}

impl core::error::Error for ProtoError {}

impl From<BufferTooSmall> for ProtoError {
    fn from(e: BufferTooSmall) -> Self {
        Self::InsufficientSize(e)
    }
}

/// Checks a room name: `#` then 1–31 characters of `[a-z0-9_.-]` (lower case).
#[must_use]
pub fn is_valid_room(name: &str) -> bool {
    let Some(rest) = name.strip_prefix('#') else {
        return false;
    };
    !rest.is_empty()
        && name.len() <= MAX_ROOM_LEN
        && rest
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b))
}

#[cfg(test)]
mod tests;
