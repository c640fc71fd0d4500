//! Application messages: one message per transport record, a tag byte then fields.
//!
//! Strings are `u16be len || UTF-8` and validated on decode; integers are big-endian; lists are
//! `u16be count || items`. Client messages have tags below `0x80`, server messages `0x80` and
//! above. Fixed for liveness checks by any implementation: `Ping = 0x20 || u64be token`,
//! answered by `Pong = 0xA0 || u64be token`. Every message's bytes are in `docs/PROTOCOL.md`.
//!
//! Encoding writes into a caller buffer (encode straight into the record buffer after the frame
//! header and seal in place); decoding borrows from the received plaintext, copying nothing.

mod client;
pub mod codec;
mod lists;
mod server;

pub use client::ClientMsg;
pub use lists::{List, ListItem, MessageList, SessionEntryList, StrList};
pub use server::{ChatMessage, MessageKind, PresenceKind, ServerMsg, SessionEntry};

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

/// Error codes carried by `ServerMsg::Error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
#[repr(u16)]
pub enum ErrorCode {
    /// Only Register, Login and Ping are allowed before login.
    NotAuthenticated = 1,
    /// The user name is taken (the server then closes the connection).
    AlreadyRegistered = 2,
    /// Login failed; deliberately says nothing more (the server then closes the connection).
    InvalidCredentials = 3,
    /// The server is overloaded (password hashing queue full); try again later.
    Busy = 4,
    /// The user name breaks the naming rules.
    InvalidUsername = 5,
    /// The password breaks the password policy.
    InvalidPassword = 6,
    /// The confirmation code was wrong.
    InvalidCode = 7,
    /// Too many messages: slow down (repeated, the server disconnects).
    RateLimited = 8,
    /// Text or name too long.
    TooLong = 9,
    /// No such room.
    NoSuchRoom = 10,
    /// No such user, or not online.
    NoSuchUser = 11,
    /// Operator rights are needed.
    NotPermitted = 12,
    /// The user is muted.
    Muted = 13,
    /// The user is banned.
    Banned = 14,
    /// The message could not be decoded.
    Malformed = 15,
    /// Already logged in, or a registration is already in progress.
    BadState = 16,
    /// A server fault; nothing was stored.
    Internal = 17,
    /// Not a member of that room.
    NotInRoom = 18,
    /// Too many connections.
    ServerFull = 19,
    /// Invalid room name.
    InvalidRoom = 20,
    /// The user is in as many rooms as the server allows; part one first.
    TooManyRooms = 21,
    /// The recipient is offline and holds as many messages from this sender as the server
    /// keeps; nothing was stored. Try again once they have been online.
    OfflineLimit = 22,
    /// The invite is missing (on an invite-only server), garbled, unknown, expired, used up or
    /// revoked: one answer for all; counted against the address's failure budget; the server
    /// then closes the connection.
    InviteInvalid = 30,
    /// No such session of yours (`RevokeSession`), or it is the asking session.
    NoSuchSession = 31,
}

impl ErrorCode {
    /// The code for a number; unknown numbers map to `None`.
    #[must_use]
    pub fn from_u16(v: u16) -> Option<Self> {
        use ErrorCode::*;
        Some(match v {
            1 => NotAuthenticated,
            2 => AlreadyRegistered,
            3 => InvalidCredentials,
            4 => Busy,
            5 => InvalidUsername,
            6 => InvalidPassword,
            7 => InvalidCode,
            8 => RateLimited,
            9 => TooLong,
            10 => NoSuchRoom,
            11 => NoSuchUser,
            12 => NotPermitted,
            13 => Muted,
            14 => Banned,
            15 => Malformed,
            16 => BadState,
            17 => Internal,
            18 => NotInRoom,
            19 => ServerFull,
            20 => InvalidRoom,
            21 => TooManyRooms,
            22 => OfflineLimit,
            30 => InviteInvalid,
            31 => NoSuchSession,
            _ => return None,
        })
    }

    /// A stable lower-case name (`not_authenticated`, …) for logs and scripts.
    #[must_use]
    pub fn name(self) -> &'static str {
        use ErrorCode::*;
        match self {
            NotAuthenticated => "not_authenticated",
            AlreadyRegistered => "already_registered",
            InvalidCredentials => "invalid_credentials",
            Busy => "busy",
            InvalidUsername => "invalid_username",
            InvalidPassword => "invalid_password",
            InvalidCode => "invalid_code",
            RateLimited => "rate_limited",
            TooLong => "too_long",
            NoSuchRoom => "no_such_room",
            NoSuchUser => "no_such_user",
            NotPermitted => "not_permitted",
            Muted => "muted",
            Banned => "banned",
            Malformed => "malformed",
            BadState => "bad_state",
            Internal => "internal",
            NotInRoom => "not_in_room",
            ServerFull => "server_full",
            InvalidRoom => "invalid_room",
            TooManyRooms => "too_many_rooms",
            OfflineLimit => "offline_limit",
            InviteInvalid => "invite_invalid",
            NoSuchSession => "no_such_session",
        }
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
