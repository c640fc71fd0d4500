//! Messages from server to client (tags `0x80`–`0xFF`), and the structs they carry.

use super::lists::{List, ListItem, StrList};
use super::{ErrorCode, MessageKind, PresenceKind};

/// A list of chat messages (history batches).
pub type MessageList<'a> = List<'a, ChatMessage<'a>>;
/// A list of sessions (`SessionList`).
pub type SessionEntryList<'a> = List<'a, SessionEntry<'a>>;

wire_struct! {
    /// One stored chat message, live or from history.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct ChatMessage<'a> {
        /// Server-assigned id, increasing.
        pub id: u64,
        /// When it was stored, Unix milliseconds.
        pub time_ms: u64,
        /// Room (`#name`), or for private messages the recipient.
        pub target: &'a str,
        /// Sender.
        pub from: &'a str,
        /// Kind of line.
        pub kind: MessageKind,
        /// Text (sanitised by the server).
        pub text: &'a str,
    }
}

wire_struct! {
    /// One live session of the user, in a `SessionList`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct SessionEntry<'a> {
        /// Opaque id for `RevokeSession` (printable ASCII, no spaces, at most 64 bytes).
        pub id: &'a str,
        /// The node holding it (`--node-id`).
        pub node: &'a str,
        /// The client's address (`ip:port`).
        pub address: &'a str,
        /// When it logged in, Unix milliseconds.
        pub since_ms: u64,
        /// Whether it is the session asking.
        pub current: bool,
    }
}

impl<'a> ListItem<'a> for ChatMessage<'a> {}
impl<'a> ListItem<'a> for SessionEntry<'a> {}

messages! {
    /// A message the server sends.
    #[derive(Debug, Clone, Copy, PartialEq)]
    #[non_exhaustive]
    pub enum ServerMsg<'a>: ServerTag {
        /// `0x81`: registration accepted so far; enrol this TOTP URI, then confirm a code.
        RegisterStarted = 0x81 "register_started" {
            /// The `otpauth://totp/…` URI (contains the secret: show it, never log it).
            uri: &'a str,
        },
        /// `0x82`: registration complete; single-use scratch codes, shown once.
        Registered = 0x82 "registered" {
            /// Ten 8-digit scratch codes.
            scratch_codes: StrList<'a>,
        },
        /// `0x83`: logged in.
        LoginOk = 0x83 "login_ok" {
            /// Canonical user name.
            user: &'a str,
            /// Message of the day.
            motd: &'a str,
        },
        /// `0x84`: something failed.
        Error = 0x84 "error" {
            /// Numeric code; see [`ErrorCode`].
            code: u16,
            /// Human-readable text.
            text: &'a str,
        },
        /// `0x85`: a chat message (rooms and private), delivered after it was stored.
        Message = 0x85 "message" (m: ChatMessage<'a>),
        /// `0x86`: someone joined, left, went away, … in a room (`room` empty = server-wide).
        Presence = 0x86 "presence" {
            /// Room, or empty.
            room: &'a str,
            /// User concerned.
            user: &'a str,
            /// What happened.
            kind: PresenceKind,
            /// Reason / away message / new topic.
            text: &'a str,
        },
        /// `0x87`: members of a room; long lists come in several, the last with `done`.
        Names = 0x87 "names" {
            /// Room.
            room: &'a str,
            /// Whether this is the last batch.
            done: bool,
            /// User names (away users carry no mark here; see `Whois`).
            users: StrList<'a>,
        },
        /// `0x88`: stored messages, oldest first; several batches, the last with `done`.
        History = 0x88 "history" {
            /// Room or private peer.
            target: &'a str,
            /// Whether this is the last batch.
            done: bool,
            /// The messages.
            messages: MessageList<'a>,
        },
        /// `0x89`: a line of server information (help, command results).
        Info = 0x89 "info" {
            /// The text.
            text: &'a str,
        },
        /// `0x8A`: a room's topic.
        Topic = 0x8A "topic" {
            /// Room.
            room: &'a str,
            /// Topic (may be empty).
            topic: &'a str,
            /// Who set it.
            set_by: &'a str,
            /// When, Unix milliseconds (0 = never set).
            time_ms: u64,
        },
        /// `0x8B`: one room in a `/list` answer; the list ends with `Info`.
        RoomEntry = 0x8B "room_entry" {
            /// Room.
            room: &'a str,
            /// Members online in it.
            members: u32,
            /// Its topic.
            topic: &'a str,
        },
        /// `0x8C`: about a user.
        Whois = 0x8C "whois" {
            /// User.
            user: &'a str,
            /// `user` or `op`.
            role: &'a str,
            /// Whether connected.
            online: bool,
            /// Away message, empty if not away.
            away: &'a str,
            /// Registration time, Unix milliseconds.
            registered_ms: u64,
            /// Rooms the user is in.
            rooms: StrList<'a>,
        },
        /// `0x8D`: the server is closing this connection (shutdown, kick, ban).
        Bye = 0x8D "bye" {
            /// Why.
            reason: &'a str,
        },
        /// `0x8E`: the rate limit this connection is held to (a token bucket over every message
        /// but `Ping` and `Bye`), sent right after `LoginOk`. A client paces what it sends to stay
        /// under it.
        RateLimit = 0x8E "rate_limit" {
            /// Messages per second refilled into the bucket, in thousandths (20 000 = 20/s).
            milli_per_sec: u32,
            /// The bucket's size: messages that may be sent at once.
            burst: u32,
        },
        /// `0xA0`: answer to `Ping`.
        Pong = 0xA0 "pong" {
            /// The `Ping`'s token.
            token: u64,
        },
        /// `0xA1`: answer to `AskPolicy`.
        RegistrationPolicy = 0xA1 "registration_policy" {
            /// Whether `Register` without an invite is refused (`--registration invite`).
            invite_required: bool,
        },
        /// `0xA2`: the password was changed; `closed` other sessions were closed.
        PasswordChanged = 0xA2 "password_changed" {
            /// How many other sessions of the user were closed.
            closed: u32,
        },
        /// `0xA3`: re-enrolment accepted so far; enrol this new TOTP URI, then `ConfirmReenrol`.
        /// The old secret stays valid until then.
        ReenrolStarted = 0xA3 "reenrol_started" {
            /// The new `otpauth://totp/…` URI (contains the secret: show it, never log it).
            uri: &'a str,
        },
        /// `0xA4`: re-enrolment complete: the new secret replaces the old, new scratch codes
        /// replace the old ones, and `closed` other sessions were closed.
        Reenrolled = 0xA4 "reenrolled" {
            /// How many other sessions of the user were closed.
            closed: u32,
            /// Ten new 8-digit scratch codes.
            scratch_codes: StrList<'a>,
        },
        /// `0xA5`: the user's live sessions; long lists come in several, the last with `done`.
        SessionList = 0xA5 "session_list" {
            /// Whether this is the last batch.
            done: bool,
            /// The sessions.
            sessions: SessionEntryList<'a>,
        },
        /// `0xA6`: answer to `RevokeSession` / `RevokeOtherSessions`.
        SessionsRevoked = 0xA6 "sessions_revoked" {
            /// How many sessions were closed.
            count: u32,
        },
    }
}

impl<'a> ServerMsg<'a> {
    /// An `Error` for a known code.
    #[must_use]
    pub fn error(code: ErrorCode, text: &'a str) -> Self {
        Self::Error {
            code: code as u16,
            text,
        }
    }
}
