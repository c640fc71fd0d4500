//! Owned, sanitised copies of what the server says.
//!
//! `chatbox_core::proto::ServerMsg` borrows the decrypted record, which lives in the
//! connection's receive buffer only until the next read. [`ServerEvent`] copies it out, and
//! every string goes through [`sanitize`] on the way, so nothing the
//! rest of the client shows can carry escape sequences or control characters.
//!
//! Names are not trusted either: every user and room name a message carries must follow the
//! name rules (`chatbox_core::username`, `chatbox_core::proto::is_valid_room`) exactly, or the
//! whole message becomes [`ServerEvent::Invalid`] (shown as an `error` line, never as the
//! event). A name with a space, an upper-case letter or a look-alike character could otherwise
//! shift the fields of a plain-mode line or pass for someone else.

use chatbox_core::proto::{
    ChatMessage, ErrorCode, MessageKind, PresenceKind, ServerMsg, is_valid_room,
};
use chatbox_core::username;

use crate::sanitize::sanitize;

/// One chat message, live or from history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatLine {
    /// Server-assigned id.
    pub id: u64,
    /// When it was stored, Unix milliseconds.
    pub time_ms: u64,
    /// Room, or the recipient of a private message.
    pub target: String,
    /// Sender.
    pub from: String,
    /// Say, action, private or notice.
    pub kind: MessageKind,
    /// The text.
    pub text: String,
}

impl From<&ChatMessage<'_>> for ChatLine {
    fn from(m: &ChatMessage<'_>) -> Self {
        Self {
            id: m.id,
            time_ms: m.time_ms,
            target: sanitize(m.target),
            from: sanitize(m.from),
            kind: m.kind,
            text: sanitize(m.text),
        }
    }
}

/// One live session of the user (from `SessionList`). Every field is one word: sanitised, and
/// blanks replaced by `_` (empty as `*`), so a plain-mode line keeps its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// Id for `/sessions revoke ID`.
    pub id: String,
    /// The node holding it.
    pub node: String,
    /// The client's address.
    pub address: String,
    /// Login time, Unix milliseconds.
    pub since_ms: u64,
    /// Whether it is this session.
    pub current: bool,
}

/// `s` sanitised as one word: blanks become `_`, an empty word `*`.
#[must_use]
pub fn one_word(s: &str) -> String {
    let w: String = sanitize(s)
        .chars()
        .map(|c| if c.is_whitespace() { '_' } else { c })
        .collect();
    if w.is_empty() { "*".to_owned() } else { w }
}

/// A server message, owned and sanitised. Mirrors `ServerMsg`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEvent {
    RegisterStarted {
        uri: String,
    },
    Registered {
        scratch_codes: Vec<String>,
    },
    LoginOk {
        user: String,
        motd: String,
    },
    Error {
        code: u16,
        text: String,
    },
    Message(ChatLine),
    Presence {
        room: String,
        user: String,
        kind: PresenceKind,
        text: String,
    },
    Names {
        room: String,
        done: bool,
        users: Vec<String>,
    },
    History {
        target: String,
        done: bool,
        messages: Vec<ChatLine>,
    },
    Info {
        text: String,
    },
    Topic {
        room: String,
        topic: String,
        set_by: String,
        time_ms: u64,
    },
    RoomEntry {
        room: String,
        members: u32,
        topic: String,
    },
    Whois {
        user: String,
        role: String,
        online: bool,
        away: String,
        registered_ms: u64,
        rooms: Vec<String>,
    },
    Bye {
        reason: String,
    },
    Pong {
        token: u64,
    },
    /// Whether registering needs an invite.
    RegistrationPolicy {
        invite_required: bool,
    },
    /// The password was changed; `closed` other sessions were closed.
    PasswordChanged {
        closed: u32,
    },
    /// Re-enrolment started: enrol this new otpauth URI, then confirm with a code from it.
    ReenrolStarted {
        uri: String,
    },
    /// Re-enrolment complete: new secret, new scratch codes, `closed` other sessions closed.
    Reenrolled {
        closed: u32,
        scratch_codes: Vec<String>,
    },
    /// The user's live sessions (one batch; the last has `done`).
    SessionList {
        done: bool,
        sessions: Vec<SessionInfo>,
    },
    /// `count` sessions were closed.
    SessionsRevoked {
        count: u32,
    },
    /// The rate limit this connection is held to (after `LoginOk`).
    RateLimit {
        milli_per_sec: u32,
        burst: u32,
    },
    /// A message of a kind this client does not know (newer server).
    Unknown {
        tag: u8,
    },
    /// A message carrying a name that breaks the name rules (a hostile or broken server); not
    /// acted upon.
    Invalid {
        /// The message's tag.
        tag: u8,
        /// Which field, e.g. `sender name`.
        what: &'static str,
    },
}

/// A user name exactly as the server must send it: valid and already lower-case.
fn is_user(name: &str) -> bool {
    username::normalize(name).is_ok_and(|n| n.as_str() == name)
}

/// A room (`#…`) or a user.
fn is_target(name: &str) -> bool {
    if name.starts_with('#') {
        is_valid_room(name)
    } else {
        is_user(name)
    }
}

/// The first name in `msg` that breaks the rules, named.
fn bad_name(msg: &ServerMsg<'_>) -> Option<&'static str> {
    let chat = |m: &ChatMessage<'_>| {
        let target_ok = match m.kind {
            MessageKind::Say => is_valid_room(m.target),
            MessageKind::Private => is_user(m.target),
            _ => is_target(m.target),
        };
        if !target_ok {
            Some("message target")
        } else if !(m.from.is_empty() || is_user(m.from)) {
            Some("sender name")
        } else {
            None
        }
    };
    match msg {
        ServerMsg::LoginOk { user, .. } => (!is_user(user)).then_some("user name"),
        ServerMsg::Message(m) => chat(m),
        ServerMsg::Presence { room, user, .. } => {
            if !(room.is_empty() || is_valid_room(room)) {
                Some("room name")
            } else if !is_user(user) {
                Some("user name")
            } else {
                None
            }
        }
        ServerMsg::Names { room, users, .. } => {
            if !is_valid_room(room) {
                Some("room name")
            } else if !users.iter().all(is_user) {
                Some("user name")
            } else {
                None
            }
        }
        ServerMsg::History {
            target, messages, ..
        } => {
            if is_target(target) {
                messages.iter().find_map(|m| chat(&m))
            } else {
                Some("history target")
            }
        }
        ServerMsg::Topic { room, set_by, .. } => {
            if !is_valid_room(room) {
                Some("room name")
            } else if !(set_by.is_empty() || is_user(set_by)) {
                Some("user name")
            } else {
                None
            }
        }
        ServerMsg::RoomEntry { room, .. } => (!is_valid_room(room)).then_some("room name"),
        ServerMsg::Whois {
            user, role, rooms, ..
        } => {
            if !is_user(user) {
                Some("user name")
            } else if !is_user(role) {
                Some("role")
            } else if !rooms.iter().all(is_valid_room) {
                Some("room name")
            } else {
                None
            }
        }
        _ => None,
    }
}

impl From<&ServerMsg<'_>> for ServerEvent {
    fn from(msg: &ServerMsg<'_>) -> Self {
        if let Some(what) = bad_name(msg) {
            return Self::Invalid {
                tag: msg.tag(),
                what,
            };
        }
        let list = |l: &chatbox_core::proto::StrList<'_>| l.iter().map(sanitize).collect();
        match msg {
            ServerMsg::RegisterStarted { uri } => Self::RegisterStarted { uri: sanitize(uri) },
            ServerMsg::Registered { scratch_codes } => Self::Registered {
                scratch_codes: list(scratch_codes),
            },
            ServerMsg::LoginOk { user, motd } => Self::LoginOk {
                user: sanitize(user),
                motd: sanitize(motd),
            },
            ServerMsg::Error { code, text } => Self::Error {
                code: *code,
                text: sanitize(text),
            },
            ServerMsg::Message(m) => Self::Message(ChatLine::from(m)),
            ServerMsg::Presence {
                room,
                user,
                kind,
                text,
            } => Self::Presence {
                room: sanitize(room),
                user: sanitize(user),
                kind: *kind,
                text: sanitize(text),
            },
            ServerMsg::Names { room, done, users } => Self::Names {
                room: sanitize(room),
                done: *done,
                users: list(users),
            },
            ServerMsg::History {
                target,
                done,
                messages,
            } => Self::History {
                target: sanitize(target),
                done: *done,
                messages: messages.iter().map(|m| ChatLine::from(&m)).collect(),
            },
            ServerMsg::Info { text } => Self::Info {
                text: sanitize(text),
            },
            ServerMsg::Topic {
                room,
                topic,
                set_by,
                time_ms,
            } => Self::Topic {
                room: sanitize(room),
                topic: sanitize(topic),
                set_by: sanitize(set_by),
                time_ms: *time_ms,
            },
            ServerMsg::RoomEntry {
                room,
                members,
                topic,
            } => Self::RoomEntry {
                room: sanitize(room),
                members: *members,
                topic: sanitize(topic),
            },
            ServerMsg::Whois {
                user,
                role,
                online,
                away,
                registered_ms,
                rooms,
            } => Self::Whois {
                user: sanitize(user),
                role: sanitize(role),
                online: *online,
                away: sanitize(away),
                registered_ms: *registered_ms,
                rooms: list(rooms),
            },
            ServerMsg::Bye { reason } => Self::Bye {
                reason: sanitize(reason),
            },
            ServerMsg::Pong { token } => Self::Pong { token: *token },
            ServerMsg::RegistrationPolicy { invite_required } => Self::RegistrationPolicy {
                invite_required: *invite_required,
            },
            ServerMsg::PasswordChanged { closed } => Self::PasswordChanged { closed: *closed },
            ServerMsg::ReenrolStarted { uri } => Self::ReenrolStarted { uri: sanitize(uri) },
            ServerMsg::Reenrolled {
                closed,
                scratch_codes,
            } => Self::Reenrolled {
                closed: *closed,
                scratch_codes: list(scratch_codes),
            },
            ServerMsg::SessionList { done, sessions } => Self::SessionList {
                done: *done,
                sessions: sessions
                    .iter()
                    .map(|e| SessionInfo {
                        id: one_word(e.id),
                        node: one_word(e.node),
                        address: one_word(e.address),
                        since_ms: e.since_ms,
                        current: e.current,
                    })
                    .collect(),
            },
            ServerMsg::SessionsRevoked { count } => Self::SessionsRevoked { count: *count },
            ServerMsg::RateLimit {
                milli_per_sec,
                burst,
            } => Self::RateLimit {
                milli_per_sec: *milli_per_sec,
                burst: *burst,
            },
            other => Self::Unknown { tag: other.tag() },
        }
    }
}

/// `ErrorCode::name()` for a numeric code, `code_<n>` for codes this client does not know.
#[must_use]
pub fn error_name(code: u16) -> String {
    ErrorCode::from_u16(code).map_or_else(|| format!("code_{code}"), |c| c.name().to_owned())
}

/// The lower-case word for a presence kind, as the plain mode prints it.
#[must_use]
pub fn presence_word(kind: PresenceKind) -> &'static str {
    kind.name()
}

/// The lower-case word for a message kind.
#[must_use]
pub fn kind_word(kind: MessageKind) -> &'static str {
    kind.name()
}

/// Unix milliseconds as `YYYY-MM-DDTHH:MM:SSZ` (`-` when out of range).
#[must_use]
pub fn utc_rfc3339(ms: u64) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map_or_else(
            || "-".to_owned(),
            |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        )
}
