//! Messages from client to server (tags `0x01`–`0x7F`).

messages! {
    /// A message the client sends. Decoding borrows from the plaintext.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    #[non_exhaustive]
    pub enum ClientMsg<'a>: ClientTag {
        /// `0x01`: start registering `user` with `password`.
        Register = 0x01 "register" {
            /// Requested user name.
            user: &'a str,
            /// Password (8–128 bytes).
            password: &'a str,
        },
        /// `0x02`: confirm a registration with a current TOTP code.
        ConfirmTotp = 0x02 "confirm_totp" {
            /// The 6-digit code.
            code: &'a str,
        },
        /// `0x03`: log in with password and one-time code (TOTP or scratch code).
        Login = 0x03 "login" {
            /// User name.
            user: &'a str,
            /// Password.
            password: &'a str,
            /// TOTP code or single-use scratch code.
            otp: &'a str,
        },
        /// `0x10`: say `text` in `room`.
        Say = 0x10 "say" {
            /// Room (`#name`).
            room: &'a str,
            /// Message text.
            text: &'a str,
        },
        /// `0x11`: `/me text` in a room (`#name`) or to a user.
        Action = 0x11 "action" {
            /// Room or user.
            target: &'a str,
            /// Action text.
            text: &'a str,
        },
        /// `0x12`: private message.
        Private = 0x12 "private" {
            /// Recipient user name.
            to: &'a str,
            /// Message text.
            text: &'a str,
        },
        /// `0x13`: join (creating if needed) a room.
        Join = 0x13 "join" {
            /// Room (`#name`).
            room: &'a str,
        },
        /// `0x14`: leave a room.
        Part = 0x14 "part" {
            /// Room.
            room: &'a str,
            /// Reason, may be empty.
            reason: &'a str,
        },
        /// `0x15`: who is in a room.
        Names = 0x15 "names" {
            /// Room.
            room: &'a str,
        },
        /// `0x16`: about a user.
        Whois = 0x16 "whois" {
            /// User name.
            user: &'a str,
        },
        /// `0x17`: set an away message; empty means back.
        Away = 0x17 "away" {
            /// Away message.
            text: &'a str,
        },
        /// `0x18`: list rooms.
        ListRooms = 0x18 "list",
        /// `0x19`: read (`topic` = None) or set a room's topic.
        Topic = 0x19 "topic" {
            /// Room.
            room: &'a str,
            /// New topic, or None to ask.
            topic: Option<&'a str>,
        },
        /// `0x1A`: older messages of a room (or private conversation with a user).
        History = 0x1A "history" {
            /// Room or user.
            target: &'a str,
            /// Only messages with a smaller id; 0 for the newest.
            before_id: u64,
            /// At most this many (the server caps it).
            limit: u16,
        },
        /// `0x1B`: the list of commands.
        Help = 0x1B "help",
        /// `0x20`: liveness probe; answered by `Pong` with the same token, logged in or not.
        Ping = 0x20 "ping" {
            /// Echoed token.
            token: u64,
        },
        /// `0x21`: closing politely.
        Bye = 0x21 "bye",
        /// `0x22`: start registering with an invite (required by `invite` servers; an `open` server
        /// accepts it too and ignores nothing: the invite must still be valid).
        RegisterInvite = 0x22 "register_invite" {
            /// Requested user name.
            user: &'a str,
            /// Password (8–128 bytes).
            password: &'a str,
            /// The invite token (43 URL-safe Base64 characters), see [`crate::link`].
            invite: &'a str,
        },
        /// `0x23`: ask whether registering needs an invite; answered by `RegistrationPolicy`.
        /// Allowed before login.
        AskPolicy = 0x23 "ask_policy",
        /// `0x24`: (logged in) change the password; closes the user's other sessions.
        ChangePassword = 0x24 "change_password" {
            /// Current password.
            password: &'a str,
            /// A current TOTP code (or a scratch code).
            otp: &'a str,
            /// New password (8–128 bytes).
            new_password: &'a str,
        },
        /// `0x25`: (logged in) start re-enrolling the second factor; answered by `ReenrolStarted`.
        Reenrol = 0x25 "reenrol" {
            /// Current password.
            password: &'a str,
            /// A current TOTP code (or a scratch code) from the old secret.
            otp: &'a str,
        },
        /// `0x26`: (logged in) confirm the re-enrolment with a code from the new secret.
        ConfirmReenrol = 0x26 "confirm_reenrol" {
            /// The 6-digit code from the new secret.
            code: &'a str,
        },
        /// `0x27`: (logged in) list the user's own live sessions; answered by `SessionList`.
        Sessions = 0x27 "sessions",
        /// `0x28`: (logged in) close one of the user's own sessions (not this one).
        RevokeSession = 0x28 "revoke_session" {
            /// The session id from `SessionList`.
            id: &'a str,
        },
        /// `0x29`: (logged in) close every other session of the user.
        RevokeOtherSessions = 0x29 "revoke_other_sessions",
        /// `0x30`: (operator) remove a user from a room.
        Kick = 0x30 "kick" {
            /// Room.
            room: &'a str,
            /// User.
            user: &'a str,
            /// Reason.
            reason: &'a str,
        },
        /// `0x31`: (operator) ban a user from the server; `seconds` = 0 is permanent.
        Ban = 0x31 "ban" {
            /// User.
            user: &'a str,
            /// Duration in seconds, 0 = permanent.
            seconds: u32,
            /// Reason.
            reason: &'a str,
        },
        /// `0x32`: (operator) lift a ban.
        Unban = 0x32 "unban" {
            /// User.
            user: &'a str,
        },
        /// `0x33`: (operator) silence a user; `seconds` = 0 is until unmuted.
        Mute = 0x33 "mute" {
            /// User.
            user: &'a str,
            /// Duration in seconds, 0 = until unmuted.
            seconds: u32,
            /// Reason.
            reason: &'a str,
        },
        /// `0x34`: (operator) lift a mute.
        Unmute = 0x34 "unmute" {
            /// User.
            user: &'a str,
        },
        /// `0x35`: (operator) set the message of the day.
        SetMotd = 0x35 "set_motd" {
            /// New MOTD.
            text: &'a str,
        },
    }
}
