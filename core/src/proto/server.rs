//! Messages from server to client (tags `0x80`–`0xFF`).

use super::codec::{Reader, Writer};
use super::lists::{MessageList, SessionEntryList, StrList};
use super::{ErrorCode, ProtoError};

/// What kind of chat line a [`ChatMessage`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum MessageKind {
    /// An ordinary line in a room.
    Say = 0,
    /// `/me` action.
    Action = 1,
    /// Private message (`target` is the recipient).
    Private = 2,
    /// A notice from the server.
    Notice = 3,
}

impl MessageKind {
    fn from_u8(v: u8) -> Result<Self, ProtoError> {
        Ok(match v {
            0 => Self::Say,
            1 => Self::Action,
            2 => Self::Private,
            3 => Self::Notice,
            _ => return Err(ProtoError::BadValue),
        })
    }
}

/// What happened to a user, for `Presence`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum PresenceKind {
    /// Joined the room.
    Join = 0,
    /// Left the room.
    Part = 1,
    /// Disconnected.
    Quit = 2,
    /// Set an away message (`text`).
    Away = 3,
    /// Came back.
    Back = 4,
    /// Was kicked (`text` = reason).
    Kicked = 5,
    /// Was banned (`text` = reason).
    Banned = 6,
    /// Was muted (`text` = reason).
    Muted = 7,
    /// The topic changed (`text` = new topic).
    Topic = 8,
}

impl PresenceKind {
    fn from_u8(v: u8) -> Result<Self, ProtoError> {
        Ok(match v {
            0 => Self::Join,
            1 => Self::Part,
            2 => Self::Quit,
            3 => Self::Away,
            4 => Self::Back,
            5 => Self::Kicked,
            6 => Self::Banned,
            7 => Self::Muted,
            8 => Self::Topic,
            _ => return Err(ProtoError::BadValue),
        })
    }
}

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

impl<'a> ChatMessage<'a> {
    /// Bytes this message takes inside a list or a `Message`.
    #[must_use]
    pub fn encoded_len(&self) -> usize {
        8 + 8 + 2 + self.target.len() + 2 + self.from.len() + 1 + 2 + self.text.len()
    }

    pub(crate) fn encode_fields(&self, w: &mut Writer<'_>) -> Result<(), ProtoError> {
        w.u64(self.id)?;
        w.u64(self.time_ms)?;
        w.str(self.target)?;
        w.str(self.from)?;
        w.u8(self.kind as u8)?;
        w.str(self.text)
    }

    pub(crate) fn decode_fields(r: &mut Reader<'a>) -> Result<Self, ProtoError> {
        Ok(Self {
            id: r.u64()?,
            time_ms: r.u64()?,
            target: r.str()?,
            from: r.str()?,
            kind: MessageKind::from_u8(r.u8()?)?,
            text: r.str()?,
        })
    }
}

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

impl<'a> SessionEntry<'a> {
    pub(crate) fn encode_fields(&self, w: &mut Writer<'_>) -> Result<(), ProtoError> {
        w.str(self.id)?;
        w.str(self.node)?;
        w.str(self.address)?;
        w.u64(self.since_ms)?;
        w.u8(u8::from(self.current))
    }

    pub(crate) fn decode_fields(r: &mut Reader<'a>) -> Result<Self, ProtoError> {
        Ok(Self {
            id: r.str()?,
            node: r.str()?,
            address: r.str()?,
            since_ms: r.u64()?,
            current: flag(r)?,
        })
    }
}

/// A message the server sends.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum ServerMsg<'a> {
    /// `0x81`: registration accepted so far; enrol this TOTP URI, then confirm a code.
    RegisterStarted {
        /// The `otpauth://totp/…` URI (contains the secret: show it, never log it).
        uri: &'a str,
    },
    /// `0x82`: registration complete; single-use scratch codes, shown once.
    Registered {
        /// Ten 8-digit scratch codes.
        scratch_codes: StrList<'a>,
    },
    /// `0x83`: logged in.
    LoginOk {
        /// Canonical user name.
        user: &'a str,
        /// Message of the day.
        motd: &'a str,
    },
    /// `0x84`: something failed.
    Error {
        /// Numeric code; see [`ErrorCode`].
        code: u16,
        /// Human-readable text.
        text: &'a str,
    },
    /// `0x85`: a chat message (rooms and private), delivered after it was stored.
    Message(ChatMessage<'a>),
    /// `0x86`: someone joined, left, went away, … in a room (`room` empty = server-wide).
    Presence {
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
    Names {
        /// Room.
        room: &'a str,
        /// Whether this is the last batch.
        done: bool,
        /// User names (away users carry no mark here; see `Whois`).
        users: StrList<'a>,
    },
    /// `0x88`: stored messages, oldest first; several batches, the last with `done`.
    History {
        /// Room or private peer.
        target: &'a str,
        /// Whether this is the last batch.
        done: bool,
        /// The messages.
        messages: MessageList<'a>,
    },
    /// `0x89`: a line of server information (help, command results).
    Info {
        /// The text.
        text: &'a str,
    },
    /// `0x8A`: a room's topic.
    Topic {
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
    RoomEntry {
        /// Room.
        room: &'a str,
        /// Members online in it.
        members: u32,
        /// Its topic.
        topic: &'a str,
    },
    /// `0x8C`: about a user.
    Whois {
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
    Bye {
        /// Why.
        reason: &'a str,
    },
    /// `0x8E`: the rate limit this connection is held to (a token bucket over every message
    /// but `Ping` and `Bye`), sent right after `LoginOk`. A client paces what it sends to stay
    /// under it.
    RateLimit {
        /// Messages per second refilled into the bucket, in thousandths (20 000 = 20/s).
        milli_per_sec: u32,
        /// The bucket's size: messages that may be sent at once.
        burst: u32,
    },
    /// `0xA0`: answer to `Ping`.
    Pong {
        /// The `Ping`'s token.
        token: u64,
    },
    /// `0xA1`: answer to `AskPolicy`.
    RegistrationPolicy {
        /// Whether `Register` without an invite is refused (`--registration invite`).
        invite_required: bool,
    },
    /// `0xA2`: the password was changed; `closed` other sessions were closed.
    PasswordChanged {
        /// How many other sessions of the user were closed.
        closed: u32,
    },
    /// `0xA3`: re-enrolment accepted so far; enrol this new TOTP URI, then `ConfirmReenrol`.
    /// The old secret stays valid until then.
    ReenrolStarted {
        /// The new `otpauth://totp/…` URI (contains the secret: show it, never log it).
        uri: &'a str,
    },
    /// `0xA4`: re-enrolment complete: the new secret replaces the old, new scratch codes
    /// replace the old ones, and `closed` other sessions were closed.
    Reenrolled {
        /// How many other sessions of the user were closed.
        closed: u32,
        /// Ten new 8-digit scratch codes.
        scratch_codes: StrList<'a>,
    },
    /// `0xA5`: the user's live sessions; long lists come in several, the last with `done`.
    SessionList {
        /// Whether this is the last batch.
        done: bool,
        /// The sessions.
        sessions: SessionEntryList<'a>,
    },
    /// `0xA6`: answer to `RevokeSession` / `RevokeOtherSessions`.
    SessionsRevoked {
        /// How many sessions were closed.
        count: u32,
    },
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

    /// The tag byte.
    #[must_use]
    pub fn tag(&self) -> u8 {
        match self {
            Self::RegisterStarted { .. } => 0x81,
            Self::Registered { .. } => 0x82,
            Self::LoginOk { .. } => 0x83,
            Self::Error { .. } => 0x84,
            Self::Message(_) => 0x85,
            Self::Presence { .. } => 0x86,
            Self::Names { .. } => 0x87,
            Self::History { .. } => 0x88,
            Self::Info { .. } => 0x89,
            Self::Topic { .. } => 0x8A,
            Self::RoomEntry { .. } => 0x8B,
            Self::Whois { .. } => 0x8C,
            Self::Bye { .. } => 0x8D,
            Self::RateLimit { .. } => 0x8E,
            Self::Pong { .. } => 0xA0,
            Self::RegistrationPolicy { .. } => 0xA1,
            Self::PasswordChanged { .. } => 0xA2,
            Self::ReenrolStarted { .. } => 0xA3,
            Self::Reenrolled { .. } => 0xA4,
            Self::SessionList { .. } => 0xA5,
            Self::SessionsRevoked { .. } => 0xA6,
        }
    }

    /// Encodes into `out`; returns the length.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, ProtoError> {
        let mut w = Writer::new(out);
        w.u8(self.tag())?;
        match self {
            Self::RegisterStarted { uri } | Self::ReenrolStarted { uri } => w.str(uri)?,
            Self::RegistrationPolicy { invite_required } => w.u8(u8::from(*invite_required))?,
            Self::PasswordChanged { closed: n } | Self::SessionsRevoked { count: n } => {
                w.u32(*n)?
            }
            Self::Reenrolled {
                closed,
                scratch_codes,
            } => {
                w.u32(*closed)?;
                scratch_codes.encode(&mut w)?;
            }
            Self::SessionList { done, sessions } => {
                w.u8(u8::from(*done))?;
                sessions.encode(&mut w)?;
            }
            Self::Registered { scratch_codes } => scratch_codes.encode(&mut w)?,
            Self::LoginOk { user, motd } => {
                w.str(user)?;
                w.str(motd)?;
            }
            Self::Error { code, text } => {
                w.u16(*code)?;
                w.str(text)?;
            }
            Self::Message(m) => m.encode_fields(&mut w)?,
            Self::Presence {
                room,
                user,
                kind,
                text,
            } => {
                w.str(room)?;
                w.str(user)?;
                w.u8(*kind as u8)?;
                w.str(text)?;
            }
            Self::Names { room, done, users } => {
                w.str(room)?;
                w.u8(u8::from(*done))?;
                users.encode(&mut w)?;
            }
            Self::History {
                target,
                done,
                messages,
            } => {
                w.str(target)?;
                w.u8(u8::from(*done))?;
                messages.encode(&mut w)?;
            }
            Self::Info { text } | Self::Bye { reason: text } => w.str(text)?,
            Self::Topic {
                room,
                topic,
                set_by,
                time_ms,
            } => {
                w.str(room)?;
                w.str(topic)?;
                w.str(set_by)?;
                w.u64(*time_ms)?;
            }
            Self::RoomEntry {
                room,
                members,
                topic,
            } => {
                w.str(room)?;
                w.u32(*members)?;
                w.str(topic)?;
            }
            Self::Whois {
                user,
                role,
                online,
                away,
                registered_ms,
                rooms,
            } => {
                w.str(user)?;
                w.str(role)?;
                w.u8(u8::from(*online))?;
                w.str(away)?;
                w.u64(*registered_ms)?;
                rooms.encode(&mut w)?;
            }
            Self::RateLimit {
                milli_per_sec,
                burst,
            } => {
                w.u32(*milli_per_sec)?;
                w.u32(*burst)?;
            }
            Self::Pong { token } => w.u64(*token)?,
        }
        Ok(w.len())
    }

    /// Decodes one whole message; trailing bytes are an error.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, ProtoError> {
        let mut r = Reader::new(bytes);
        let msg = match r.u8()? {
            0x81 => Self::RegisterStarted { uri: r.str()? },
            0x82 => Self::Registered {
                scratch_codes: StrList::decode(&mut r)?,
            },
            0x83 => Self::LoginOk {
                user: r.str()?,
                motd: r.str()?,
            },
            0x84 => Self::Error {
                code: r.u16()?,
                text: r.str()?,
            },
            0x85 => Self::Message(ChatMessage::decode_fields(&mut r)?),
            0x86 => Self::Presence {
                room: r.str()?,
                user: r.str()?,
                kind: PresenceKind::from_u8(r.u8()?)?,
                text: r.str()?,
            },
            0x87 => Self::Names {
                room: r.str()?,
                done: flag(&mut r)?,
                users: StrList::decode(&mut r)?,
            },
            0x88 => Self::History {
                target: r.str()?,
                done: flag(&mut r)?,
                messages: MessageList::decode(&mut r)?,
            },
            0x89 => Self::Info { text: r.str()? },
            0x8A => Self::Topic {
                room: r.str()?,
                topic: r.str()?,
                set_by: r.str()?,
                time_ms: r.u64()?,
            },
            0x8B => Self::RoomEntry {
                room: r.str()?,
                members: r.u32()?,
                topic: r.str()?,
            },
            0x8C => Self::Whois {
                user: r.str()?,
                role: r.str()?,
                online: flag(&mut r)?,
                away: r.str()?,
                registered_ms: r.u64()?,
                rooms: StrList::decode(&mut r)?,
            },
            0x8D => Self::Bye { reason: r.str()? },
            0x8E => Self::RateLimit {
                milli_per_sec: r.u32()?,
                burst: r.u32()?,
            },
            0xA0 => Self::Pong { token: r.u64()? },
            0xA1 => Self::RegistrationPolicy {
                invite_required: flag(&mut r)?,
            },
            0xA2 => Self::PasswordChanged { closed: r.u32()? },
            0xA3 => Self::ReenrolStarted { uri: r.str()? },
            0xA4 => Self::Reenrolled {
                closed: r.u32()?,
                scratch_codes: StrList::decode(&mut r)?,
            },
            0xA5 => Self::SessionList {
                done: flag(&mut r)?,
                sessions: SessionEntryList::decode(&mut r)?,
            },
            0xA6 => Self::SessionsRevoked { count: r.u32()? },
            other => return Err(ProtoError::UnknownTag(other)),
        };
        r.finish()?;
        Ok(msg)
    }
}

pub(crate) fn flag(r: &mut Reader<'_>) -> Result<bool, ProtoError> {
    match r.u8()? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(ProtoError::BadValue),
    }
}
