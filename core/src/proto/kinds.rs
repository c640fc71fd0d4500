//! The fieldless wire enums: error codes, message kinds and presence kinds, each one table (see
//! [`table`](super::table)), public with their conversions so that hosts never re-implement them.

wire_enum! {
    /// Error codes carried by `ServerMsg::Error` (`u16` on the wire).
    pub enum ErrorCode: u16 {
        /// Before login only `Register`, `RegisterInvite`, `ConfirmTotp`, `Login`, `AskPolicy`,
        /// `Ping` and `Bye` are served; the connection stays.
        NotAuthenticated = 1 => "not_authenticated",
        /// The user name is taken (the server then closes the connection).
        AlreadyRegistered = 2 => "already_registered",
        /// Login failed; deliberately says nothing more (the server then closes the connection).
        InvalidCredentials = 3 => "invalid_credentials",
        /// The server is overloaded (password hashing queue full); try again later.
        Busy = 4 => "busy",
        /// The user name breaks the naming rules.
        InvalidUsername = 5 => "invalid_username",
        /// The password breaks the password policy.
        InvalidPassword = 6 => "invalid_password",
        /// The confirmation code was wrong. Another try is allowed until the registration's
        /// tries are used up; then the registration is cancelled and the server closes the
        /// connection.
        InvalidCode = 7 => "invalid_code",
        /// Too many messages: slow down (repeated, the server disconnects).
        RateLimited = 8 => "rate_limited",
        /// Text or name too long.
        TooLong = 9 => "too_long",
        /// No such room.
        NoSuchRoom = 10 => "no_such_room",
        /// No such user, or not online.
        NoSuchUser = 11 => "no_such_user",
        /// Operator rights are needed.
        NotPermitted = 12 => "not_permitted",
        /// The user is muted.
        Muted = 13 => "muted",
        /// The user is banned (answering `Login`, the server then closes the connection).
        Banned = 14 => "banned",
        /// The message could not be decoded.
        Malformed = 15 => "malformed",
        /// Already logged in, or a registration is already in progress.
        BadState = 16 => "bad_state",
        /// A server fault; nothing was stored.
        Internal = 17 => "internal",
        /// Not a member of that room.
        NotInRoom = 18 => "not_in_room",
        /// Too many connections.
        ServerFull = 19 => "server_full",
        /// Invalid room name.
        InvalidRoom = 20 => "invalid_room",
        /// The user is in as many rooms as the server allows; part one first.
        TooManyRooms = 21 => "too_many_rooms",
        /// The recipient is offline and holds as many messages from this sender as the server
        /// keeps; nothing was stored. Try again once they have been online.
        OfflineLimit = 22 => "offline_limit",
        /// The invite is missing (on an invite-only server), garbled, unknown, expired, used up or
        /// revoked: one answer for all; counted against the address's failure budget; the server
        /// then closes the connection.
        InviteInvalid = 30 => "invite_invalid",
        /// No such session of yours (`RevokeSession`), or it is the asking session.
        NoSuchSession = 31 => "no_such_session",
    }
}

impl ErrorCode {
    /// The code for a number; unknown numbers map to `None` (same as [`from_wire`](Self::from_wire)).
    #[must_use]
    pub const fn from_u16(v: u16) -> Option<Self> {
        Self::from_wire(v)
    }
}

wire_enum! {
    /// What kind of chat line a [`ChatMessage`](super::ChatMessage) is (one byte).
    pub enum MessageKind: u8 {
        /// An ordinary line in a room.
        Say = 0 => "say",
        /// `/me` action.
        Action = 1 => "action",
        /// Private message (`target` is the recipient).
        Private = 2 => "private",
        /// A notice from the server.
        Notice = 3 => "notice",
    }
}

wire_enum! {
    /// What happened to a user, for `Presence` (one byte).
    pub enum PresenceKind: u8 {
        /// Joined the room.
        Join = 0 => "join",
        /// Left the room.
        Part = 1 => "part",
        /// Disconnected.
        Quit = 2 => "quit",
        /// Set an away message (`text`).
        Away = 3 => "away",
        /// Came back.
        Back = 4 => "back",
        /// Was kicked (`text` = reason).
        Kicked = 5 => "kicked",
        /// Was banned (`text` = reason).
        Banned = 6 => "banned",
        /// Was muted (`text` = reason).
        Muted = 7 => "muted",
        /// The topic changed (`text` = new topic).
        Topic = 8 => "topic",
    }
}

enum_field!(MessageKind, PresenceKind);
