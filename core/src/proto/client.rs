//! Messages from client to server (tags `0x01`–`0x7F`).

use super::ProtoError;
use super::codec::{Reader, Writer};

/// A message the client sends. Decoding borrows from the plaintext.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientMsg<'a> {
    /// `0x01`: start registering `user` with `password`.
    Register {
        /// Requested user name.
        user: &'a str,
        /// Password (8–128 bytes).
        password: &'a str,
    },
    /// `0x02`: confirm a registration with a current TOTP code.
    ConfirmTotp {
        /// The 6-digit code.
        code: &'a str,
    },
    /// `0x03`: log in with password and one-time code (TOTP or scratch code).
    Login {
        /// User name.
        user: &'a str,
        /// Password.
        password: &'a str,
        /// TOTP code or single-use scratch code.
        otp: &'a str,
    },
    /// `0x10`: say `text` in `room`.
    Say {
        /// Room (`#name`).
        room: &'a str,
        /// Message text.
        text: &'a str,
    },
    /// `0x11`: `/me text` in a room (`#name`) or to a user.
    Action {
        /// Room or user.
        target: &'a str,
        /// Action text.
        text: &'a str,
    },
    /// `0x12`: private message.
    Private {
        /// Recipient user name.
        to: &'a str,
        /// Message text.
        text: &'a str,
    },
    /// `0x13`: join (creating if needed) a room.
    Join {
        /// Room (`#name`).
        room: &'a str,
    },
    /// `0x14`: leave a room.
    Part {
        /// Room.
        room: &'a str,
        /// Reason, may be empty.
        reason: &'a str,
    },
    /// `0x15`: who is in a room.
    Names {
        /// Room.
        room: &'a str,
    },
    /// `0x16`: about a user.
    Whois {
        /// User name.
        user: &'a str,
    },
    /// `0x17`: set an away message; empty means back.
    Away {
        /// Away message.
        text: &'a str,
    },
    /// `0x18`: list rooms.
    ListRooms,
    /// `0x19`: read (`topic` = None) or set a room's topic.
    Topic {
        /// Room.
        room: &'a str,
        /// New topic, or None to ask.
        topic: Option<&'a str>,
    },
    /// `0x1A`: older messages of a room (or private conversation with a user).
    History {
        /// Room or user.
        target: &'a str,
        /// Only messages with a smaller id; 0 for the newest.
        before_id: u64,
        /// At most this many (the server caps it).
        limit: u16,
    },
    /// `0x1B`: the list of commands.
    Help,
    /// `0x20`: liveness probe; answered by `Pong` with the same token, logged in or not.
    Ping {
        /// Echoed token.
        token: u64,
    },
    /// `0x21`: closing politely.
    Bye,
    /// `0x22`: start registering with an invite (required by `invite` servers; an `open` server
    /// accepts it too and ignores nothing: the invite must still be valid).
    RegisterInvite {
        /// Requested user name.
        user: &'a str,
        /// Password (8–128 bytes).
        password: &'a str,
        /// The invite token (43 URL-safe Base64 characters), see [`crate::link`].
        invite: &'a str,
    },
    /// `0x23`: ask whether registering needs an invite; answered by `RegistrationPolicy`.
    /// Allowed before login.
    AskPolicy,
    /// `0x24`: (logged in) change the password; closes the user's other sessions.
    ChangePassword {
        /// Current password.
        password: &'a str,
        /// A current TOTP code (or a scratch code).
        otp: &'a str,
        /// New password (8–128 bytes).
        new_password: &'a str,
    },
    /// `0x25`: (logged in) start re-enrolling the second factor; answered by `ReenrolStarted`.
    Reenrol {
        /// Current password.
        password: &'a str,
        /// A current TOTP code (or a scratch code) from the old secret.
        otp: &'a str,
    },
    /// `0x26`: (logged in) confirm the re-enrolment with a code from the new secret.
    ConfirmReenrol {
        /// The 6-digit code from the new secret.
        code: &'a str,
    },
    /// `0x27`: (logged in) list the user's own live sessions; answered by `SessionList`.
    Sessions,
    /// `0x28`: (logged in) close one of the user's own sessions (not this one).
    RevokeSession {
        /// The session id from `SessionList`.
        id: &'a str,
    },
    /// `0x29`: (logged in) close every other session of the user.
    RevokeOtherSessions,
    /// `0x30`: (operator) remove a user from a room.
    Kick {
        /// Room.
        room: &'a str,
        /// User.
        user: &'a str,
        /// Reason.
        reason: &'a str,
    },
    /// `0x31`: (operator) ban a user from the server; `seconds` = 0 is permanent.
    Ban {
        /// User.
        user: &'a str,
        /// Duration in seconds, 0 = permanent.
        seconds: u32,
        /// Reason.
        reason: &'a str,
    },
    /// `0x32`: (operator) lift a ban.
    Unban {
        /// User.
        user: &'a str,
    },
    /// `0x33`: (operator) silence a user; `seconds` = 0 is until unmuted.
    Mute {
        /// User.
        user: &'a str,
        /// Duration in seconds, 0 = until unmuted.
        seconds: u32,
        /// Reason.
        reason: &'a str,
    },
    /// `0x34`: (operator) lift a mute.
    Unmute {
        /// User.
        user: &'a str,
    },
    /// `0x35`: (operator) set the message of the day.
    SetMotd {
        /// New MOTD.
        text: &'a str,
    },
}

impl<'a> ClientMsg<'a> {
    /// The tag byte.
    #[must_use]
    pub fn tag(&self) -> u8 {
        match self {
            Self::Register { .. } => 0x01,
            Self::ConfirmTotp { .. } => 0x02,
            Self::Login { .. } => 0x03,
            Self::Say { .. } => 0x10,
            Self::Action { .. } => 0x11,
            Self::Private { .. } => 0x12,
            Self::Join { .. } => 0x13,
            Self::Part { .. } => 0x14,
            Self::Names { .. } => 0x15,
            Self::Whois { .. } => 0x16,
            Self::Away { .. } => 0x17,
            Self::ListRooms => 0x18,
            Self::Topic { .. } => 0x19,
            Self::History { .. } => 0x1A,
            Self::Help => 0x1B,
            Self::Ping { .. } => 0x20,
            Self::Bye => 0x21,
            Self::RegisterInvite { .. } => 0x22,
            Self::AskPolicy => 0x23,
            Self::ChangePassword { .. } => 0x24,
            Self::Reenrol { .. } => 0x25,
            Self::ConfirmReenrol { .. } => 0x26,
            Self::Sessions => 0x27,
            Self::RevokeSession { .. } => 0x28,
            Self::RevokeOtherSessions => 0x29,
            Self::Kick { .. } => 0x30,
            Self::Ban { .. } => 0x31,
            Self::Unban { .. } => 0x32,
            Self::Mute { .. } => 0x33,
            Self::Unmute { .. } => 0x34,
            Self::SetMotd { .. } => 0x35,
        }
    }

    /// A stable name of the message kind, for logs (never the fields: they may be secret).
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::Register { .. } => "register",
            Self::ConfirmTotp { .. } => "confirm_totp",
            Self::Login { .. } => "login",
            Self::Say { .. } => "say",
            Self::Action { .. } => "action",
            Self::Private { .. } => "private",
            Self::Join { .. } => "join",
            Self::Part { .. } => "part",
            Self::Names { .. } => "names",
            Self::Whois { .. } => "whois",
            Self::Away { .. } => "away",
            Self::ListRooms => "list",
            Self::Topic { .. } => "topic",
            Self::History { .. } => "history",
            Self::Help => "help",
            Self::Ping { .. } => "ping",
            Self::Bye => "bye",
            Self::RegisterInvite { .. } => "register_invite",
            Self::AskPolicy => "ask_policy",
            Self::ChangePassword { .. } => "change_password",
            Self::Reenrol { .. } => "reenrol",
            Self::ConfirmReenrol { .. } => "confirm_reenrol",
            Self::Sessions => "sessions",
            Self::RevokeSession { .. } => "revoke_session",
            Self::RevokeOtherSessions => "revoke_other_sessions",
            Self::Kick { .. } => "kick",
            Self::Ban { .. } => "ban",
            Self::Unban { .. } => "unban",
            Self::Mute { .. } => "mute",
            Self::Unmute { .. } => "unmute",
            Self::SetMotd { .. } => "set_motd",
        }
    }

    /// Encodes into `out`; returns the length.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, ProtoError> {
        let mut w = Writer::new(out);
        w.u8(self.tag())?;
        match *self {
            Self::Register { user, password } => {
                w.str(user)?;
                w.str(password)?;
            }
            Self::ConfirmTotp { code } | Self::ConfirmReenrol { code } => w.str(code)?,
            Self::RegisterInvite {
                user,
                password,
                invite,
            } => {
                w.str(user)?;
                w.str(password)?;
                w.str(invite)?;
            }
            Self::ChangePassword {
                password,
                otp,
                new_password,
            } => {
                w.str(password)?;
                w.str(otp)?;
                w.str(new_password)?;
            }
            Self::Reenrol { password, otp } => {
                w.str(password)?;
                w.str(otp)?;
            }
            Self::RevokeSession { id } => w.str(id)?,
            Self::Login {
                user,
                password,
                otp,
            } => {
                w.str(user)?;
                w.str(password)?;
                w.str(otp)?;
            }
            Self::Say { room: a, text: b }
            | Self::Action { target: a, text: b }
            | Self::Private { to: a, text: b }
            | Self::Part { room: a, reason: b } => {
                w.str(a)?;
                w.str(b)?;
            }
            Self::Join { room: a }
            | Self::Names { room: a }
            | Self::Whois { user: a }
            | Self::Away { text: a }
            | Self::Unban { user: a }
            | Self::Unmute { user: a }
            | Self::SetMotd { text: a } => w.str(a)?,
            Self::ListRooms
            | Self::Help
            | Self::Bye
            | Self::AskPolicy
            | Self::Sessions
            | Self::RevokeOtherSessions => {}
            Self::Topic { room, topic } => {
                w.str(room)?;
                match topic {
                    Some(t) => {
                        w.u8(1)?;
                        w.str(t)?;
                    }
                    None => w.u8(0)?,
                }
            }
            Self::History {
                target,
                before_id,
                limit,
            } => {
                w.str(target)?;
                w.u64(before_id)?;
                w.u16(limit)?;
            }
            Self::Ping { token } => w.u64(token)?,
            Self::Kick { room, user, reason } => {
                w.str(room)?;
                w.str(user)?;
                w.str(reason)?;
            }
            Self::Ban {
                user,
                seconds,
                reason,
            }
            | Self::Mute {
                user,
                seconds,
                reason,
            } => {
                w.str(user)?;
                w.u32(seconds)?;
                w.str(reason)?;
            }
        }
        Ok(w.len())
    }

    /// Decodes one whole message; trailing bytes are an error.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, ProtoError> {
        let mut r = Reader::new(bytes);
        let tag = r.u8()?;
        let msg = match tag {
            0x01 => Self::Register {
                user: r.str()?,
                password: r.str()?,
            },
            0x02 => Self::ConfirmTotp { code: r.str()? },
            0x03 => Self::Login {
                user: r.str()?,
                password: r.str()?,
                otp: r.str()?,
            },
            0x10 => Self::Say {
                room: r.str()?,
                text: r.str()?,
            },
            0x11 => Self::Action {
                target: r.str()?,
                text: r.str()?,
            },
            0x12 => Self::Private {
                to: r.str()?,
                text: r.str()?,
            },
            0x13 => Self::Join { room: r.str()? },
            0x14 => Self::Part {
                room: r.str()?,
                reason: r.str()?,
            },
            0x15 => Self::Names { room: r.str()? },
            0x16 => Self::Whois { user: r.str()? },
            0x17 => Self::Away { text: r.str()? },
            0x18 => Self::ListRooms,
            0x19 => {
                let room = r.str()?;
                let topic = match r.u8()? {
                    0 => None,
                    1 => Some(r.str()?),
                    _ => return Err(ProtoError::BadValue),
                };
                Self::Topic { room, topic }
            }
            0x1A => Self::History {
                target: r.str()?,
                before_id: r.u64()?,
                limit: r.u16()?,
            },
            0x1B => Self::Help,
            0x20 => Self::Ping { token: r.u64()? },
            0x21 => Self::Bye,
            0x22 => Self::RegisterInvite {
                user: r.str()?,
                password: r.str()?,
                invite: r.str()?,
            },
            0x23 => Self::AskPolicy,
            0x24 => Self::ChangePassword {
                password: r.str()?,
                otp: r.str()?,
                new_password: r.str()?,
            },
            0x25 => Self::Reenrol {
                password: r.str()?,
                otp: r.str()?,
            },
            0x26 => Self::ConfirmReenrol { code: r.str()? },
            0x27 => Self::Sessions,
            0x28 => Self::RevokeSession { id: r.str()? },
            0x29 => Self::RevokeOtherSessions,
            0x30 => Self::Kick {
                room: r.str()?,
                user: r.str()?,
                reason: r.str()?,
            },
            0x31 => Self::Ban {
                user: r.str()?,
                seconds: r.u32()?,
                reason: r.str()?,
            },
            0x32 => Self::Unban { user: r.str()? },
            0x33 => Self::Mute {
                user: r.str()?,
                seconds: r.u32()?,
                reason: r.str()?,
            },
            0x34 => Self::Unmute { user: r.str()? },
            0x35 => Self::SetMotd { text: r.str()? },
            other => return Err(ProtoError::UnknownTag(other)),
        };
        r.finish()?;
        Ok(msg)
    }
}
