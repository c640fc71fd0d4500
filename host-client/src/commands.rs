//! Turning what the user types into protocol messages, for the chat screen and the plain mode.
//!
//! A line that does not start with `/` is said in the current room; `//text` says `/text`.
//! Commands (names are case-insensitive) mirror the server's `/help`:
//!
//! | command | message |
//! |---|---|
//! | `/join #room` | `Join` |
//! | `/part [#room] [reason]` | `Part` (current room by default) |
//! | `/msg user text` | `Private` |
//! | `/me text` | `Action` in the current room |
//! | `/names [#room]` | `Names` |
//! | `/whois user` | `Whois` |
//! | `/away [text]`, `/back` | `Away` (empty text = back) |
//! | `/list` | `ListRooms` |
//! | `/topic [#room] [text]` | `Topic` (no text: ask) |
//! | `/history [#room or user]` | `History` (newest 50) |
//! | `/help` | `Help` |
//! | `/kick [#room] user [reason]` | `Kick` |
//! | `/ban user [duration] [reason]` | `Ban` (duration `300`, `90s`, `10m`, `2h`, `7d`; none = permanent) |
//! | `/unban user` | `Unban` |
//! | `/mute user [duration] [reason]` | `Mute` |
//! | `/unmute user` | `Unmute` |
//! | `/motd text` | `SetMotd` |
//! | `/sessions` | `Sessions` (your own live sessions) |
//! | `/sessions revoke ID` | `RevokeSession` |
//! | `/sessions revoke others` | `RevokeOtherSessions` |
//! | `/quit [reason]` | end the session (`Bye`) |
//!
//! `/passwd` and `/reenrol` carry secrets and are handled by the chat screen and the plain
//! mode themselves (see [`secret_command`]).

use core::fmt;

use chatbox_core::proto::{ClientMsg, PresenceKind};

use crate::event::ServerEvent;

/// How many history messages `/history` asks for.
pub const HISTORY_LIMIT: u16 = 50;

/// What a typed line means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// Send this message.
    Send(ClientMsg<'a>),
    /// Leave: send `Bye` and close.
    Quit,
    /// An empty line: nothing to do.
    Nothing,
}

/// Why a line could not be turned into a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    /// `/something` this client does not know.
    Unknown(String),
    /// Wrong arguments; holds the usage line.
    Usage(&'static str),
    /// The line needs a current room and there is none.
    NoRoom,
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown(cmd) => write!(f, "unknown command /{cmd} (try /help)"),
            Self::Usage(usage) => write!(f, "usage: {usage}"),
            Self::NoRoom => f.write_str("you are not in a room: /join #room first"),
        }
    }
}

impl core::error::Error for CommandError {}

/// The first word and the rest, both trimmed.
fn word(s: &str) -> (&str, &str) {
    let s = s.trim();
    match s.split_once(char::is_whitespace) {
        Some((w, rest)) => (w, rest.trim()),
        None => (s, ""),
    }
}

/// A room argument if the first word is one (`#…`), else `current`.
fn room_or<'a>(
    args: &'a str,
    current: Option<&'a str>,
) -> Result<(&'a str, &'a str), CommandError> {
    let (first, rest) = word(args);
    if first.starts_with('#') {
        Ok((first, rest))
    } else {
        current
            .map(|r| (r, args.trim()))
            .ok_or(CommandError::NoRoom)
    }
}

/// A duration: plain seconds or a number with `s`, `m`, `h` or `d`.
#[must_use]
pub fn parse_duration(s: &str) -> Option<u32> {
    let (digits, unit) = match s.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (s.get(..i)?, c.to_ascii_lowercase()),
        _ => (s, 's'),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u32 = digits.parse().ok()?;
    let mult = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// `user [duration] [reason]` for /ban and /mute.
fn user_duration_reason(args: &str) -> Option<(&str, u32, &str)> {
    let (user, rest) = word(args);
    if user.is_empty() {
        return None;
    }
    let (maybe_dur, after) = word(rest);
    match parse_duration(maybe_dur) {
        Some(secs) => Some((user, secs, after)),
        None => Some((user, 0, rest)),
    }
}

/// Parses one typed line. `room` is the current room, if any.
pub fn parse<'a>(line: &'a str, room: Option<&'a str>) -> Result<Parsed<'a>, CommandError> {
    let line = line.trim_end_matches(['\r', '\n']);
    // Nothing visible (spaces, zero-width characters…): nothing to send; the server would
    // refuse it as empty.
    if chatbox_core::text::is_blank(line) {
        return Ok(Parsed::Nothing);
    }
    let Some(command) = line.strip_prefix('/').filter(|c| !c.starts_with('/')) else {
        // Plain text, or `//text` meaning the literal `/text`.
        let text = line.strip_prefix('/').unwrap_or(line);
        let room = room.ok_or(CommandError::NoRoom)?;
        return Ok(Parsed::Send(ClientMsg::Say { room, text }));
    };
    let (name, args) = word(command);
    let need = |ok: bool, usage: &'static str| {
        if ok {
            Ok(())
        } else {
            Err(CommandError::Usage(usage))
        }
    };
    let msg = match name.to_ascii_lowercase().as_str() {
        "join" | "j" => {
            let (room, _) = word(args);
            need(room.starts_with('#') && room.len() > 1, "/join #room")?;
            ClientMsg::Join { room }
        }
        "part" | "leave" => {
            let (room, reason) = room_or(args, room)?;
            ClientMsg::Part { room, reason }
        }
        "msg" | "query" | "m" => {
            let (to, text) = word(args);
            need(!to.is_empty() && !text.is_empty(), "/msg user text")?;
            ClientMsg::Private { to, text }
        }
        "me" => {
            need(!args.is_empty(), "/me text")?;
            let target = room.ok_or(CommandError::NoRoom)?;
            ClientMsg::Action { target, text: args }
        }
        "names" | "who" => {
            let (room, _) = room_or(args, room)?;
            ClientMsg::Names { room }
        }
        "whois" => {
            let (user, _) = word(args);
            need(!user.is_empty(), "/whois user")?;
            ClientMsg::Whois { user }
        }
        "away" => ClientMsg::Away { text: args },
        "back" => ClientMsg::Away { text: "" },
        "list" => ClientMsg::ListRooms,
        "topic" => {
            let (room, text) = room_or(args, room)?;
            let topic = (!text.is_empty()).then_some(text);
            ClientMsg::Topic { room, topic }
        }
        "history" => {
            let (target, _) = word(args);
            let target = if target.is_empty() {
                room.ok_or(CommandError::NoRoom)?
            } else {
                target
            };
            ClientMsg::History {
                target,
                before_id: 0,
                limit: HISTORY_LIMIT,
            }
        }
        "help" => ClientMsg::Help,
        "kick" => {
            let (room, rest) = room_or(args, room)?;
            let (user, reason) = word(rest);
            need(!user.is_empty(), "/kick [#room] user [reason]")?;
            ClientMsg::Kick { room, user, reason }
        }
        "ban" => {
            let (user, seconds, reason) = user_duration_reason(args)
                .ok_or(CommandError::Usage("/ban user [duration] [reason]"))?;
            ClientMsg::Ban {
                user,
                seconds,
                reason,
            }
        }
        "mute" => {
            let (user, seconds, reason) = user_duration_reason(args)
                .ok_or(CommandError::Usage("/mute user [duration] [reason]"))?;
            ClientMsg::Mute {
                user,
                seconds,
                reason,
            }
        }
        "unban" => {
            let (user, _) = word(args);
            need(!user.is_empty(), "/unban user")?;
            ClientMsg::Unban { user }
        }
        "unmute" => {
            let (user, _) = word(args);
            need(!user.is_empty(), "/unmute user")?;
            ClientMsg::Unmute { user }
        }
        "motd" => {
            need(!args.is_empty(), "/motd text")?;
            ClientMsg::SetMotd { text: args }
        }
        "sessions" => {
            let (sub, rest) = word(args);
            let usage = "/sessions [revoke ID|revoke others]";
            match sub.to_ascii_lowercase().as_str() {
                "" => ClientMsg::Sessions,
                "revoke" => {
                    let (id, extra) = word(rest);
                    need(!id.is_empty() && extra.is_empty(), usage)?;
                    if id.eq_ignore_ascii_case("others") {
                        ClientMsg::RevokeOtherSessions
                    } else {
                        ClientMsg::RevokeSession { id }
                    }
                }
                _ => return Err(CommandError::Usage(usage)),
            }
        }
        "passwd" | "password" | "reenrol" | "reenroll" => {
            return Err(CommandError::Usage(
                "/passwd and /reenrol are handled by the chat screen or the plain mode",
            ));
        }
        "quit" | "exit" | "bye" => return Ok(Parsed::Quit),
        _ => return Err(CommandError::Unknown(name.to_owned())),
    };
    Ok(Parsed::Send(msg))
}

/// A command that carries secrets, handled by the chat screen or plain mode before [`parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretCommand<'a> {
    /// `/passwd [CODE]`: change the password.
    Passwd {
        /// The code given on the line (plain mode), if any.
        code: Option<&'a str>,
    },
    /// `/reenrol [CODE]`: start re-enrolling the second factor.
    Reenrol {
        /// The code given on the line (plain mode), if any.
        code: Option<&'a str>,
    },
    /// `/reenrol confirm CODE`: finish it with a code from the new secret.
    ConfirmReenrol {
        /// The code from the new secret.
        code: &'a str,
    },
}

/// Recognises `/passwd [CODE]`, `/reenrol [CODE]` and `/reenrol confirm CODE`.
#[must_use]
pub fn secret_command(line: &str) -> Option<Result<SecretCommand<'_>, CommandError>> {
    let command = line
        .trim()
        .strip_prefix('/')
        .filter(|c| !c.starts_with('/'))?;
    let (name, args) = word(command);
    let (first, rest) = word(args);
    let code = (!first.is_empty()).then_some(first);
    match name.to_ascii_lowercase().as_str() {
        "passwd" | "password" => Some(if rest.is_empty() {
            Ok(SecretCommand::Passwd { code })
        } else {
            Err(CommandError::Usage("/passwd [CODE]"))
        }),
        "reenrol" | "reenroll" if first.eq_ignore_ascii_case("confirm") => {
            let (code, extra) = word(rest);
            Some(if code.is_empty() || !extra.is_empty() {
                Err(CommandError::Usage("/reenrol confirm CODE"))
            } else {
                Ok(SecretCommand::ConfirmReenrol { code })
            })
        }
        "reenrol" | "reenroll" => Some(if rest.is_empty() {
            Ok(SecretCommand::Reenrol { code })
        } else {
            Err(CommandError::Usage(
                "/reenrol [CODE] or /reenrol confirm CODE",
            ))
        }),
        _ => None,
    }
}

/// Which rooms we are in and which one plain lines go to.
///
/// Updated when messages are sent (so `/join #dev` followed by a line says it in `#dev`, as the
/// server handles a connection's messages in order) and from the server's presence events
/// (auto-join at login, kicks).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rooms {
    joined: Vec<String>,
    current: Option<String>,
}

impl Rooms {
    /// In `room` (the server's auto-join room after login), or in none.
    #[must_use]
    pub fn new(room: Option<&str>) -> Self {
        let joined: Vec<String> = room.map(str::to_owned).into_iter().collect();
        Self {
            current: joined.first().cloned(),
            joined,
        }
    }

    /// The room plain lines go to.
    #[must_use]
    pub fn current(&self) -> Option<&str> {
        self.current.as_deref()
    }

    /// Rooms joined, in joining order.
    #[must_use]
    pub fn joined(&self) -> &[String] {
        &self.joined
    }

    /// Makes `room` current (it must be joined).
    pub fn switch_to(&mut self, room: &str) -> bool {
        if self.joined.iter().any(|r| r == room) {
            self.current = Some(room.to_owned());
            true
        } else {
            false
        }
    }

    fn add(&mut self, room: &str, make_current: bool) {
        if !self.joined.iter().any(|r| r == room) {
            self.joined.push(room.to_owned());
        }
        if make_current || self.current.is_none() {
            self.current = Some(room.to_owned());
        }
    }

    fn remove(&mut self, room: &str) {
        self.joined.retain(|r| r != room);
        if self.current.as_deref() == Some(room) {
            self.current = self.joined.last().cloned();
        }
    }

    /// Notes a message we sent.
    pub fn on_sent(&mut self, msg: &ClientMsg<'_>) {
        match msg {
            ClientMsg::Join { room } => self.add(room, true),
            ClientMsg::Part { room, .. } => self.remove(room),
            _ => {}
        }
    }

    /// Notes a server event; `me` is our user name.
    pub fn on_event(&mut self, event: &ServerEvent, me: &str) {
        if let ServerEvent::Presence {
            room, user, kind, ..
        } = event
            && user == me
            && !room.is_empty()
        {
            match kind {
                PresenceKind::Join => self.add(room, false),
                PresenceKind::Part | PresenceKind::Kicked | PresenceKind::Banned => {
                    self.remove(room);
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &str) -> ClientMsg<'_> {
        match parse(line, Some("#lobby")) {
            Ok(Parsed::Send(m)) => m,
            other => panic!("{line:?} gave {other:?}"),
        }
    }

    #[test]
    fn table_of_lines() {
        use ClientMsg as M;
        let cases: Vec<(&str, ClientMsg<'_>)> = vec![
            (
                "hello world",
                M::Say {
                    room: "#lobby",
                    text: "hello world",
                },
            ),
            (
                "  spaced  ",
                M::Say {
                    room: "#lobby",
                    text: "  spaced  ",
                },
            ),
            (
                "//not a command",
                M::Say {
                    room: "#lobby",
                    text: "/not a command",
                },
            ),
            ("/join #dev", M::Join { room: "#dev" }),
            ("/JOIN #dev", M::Join { room: "#dev" }),
            (
                "/part",
                M::Part {
                    room: "#lobby",
                    reason: "",
                },
            ),
            (
                "/part #dev bye all",
                M::Part {
                    room: "#dev",
                    reason: "bye all",
                },
            ),
            (
                "/part see you",
                M::Part {
                    room: "#lobby",
                    reason: "see you",
                },
            ),
            (
                "/msg bob hi there",
                M::Private {
                    to: "bob",
                    text: "hi there",
                },
            ),
            (
                "/me waves",
                M::Action {
                    target: "#lobby",
                    text: "waves",
                },
            ),
            ("/names", M::Names { room: "#lobby" }),
            ("/names #dev", M::Names { room: "#dev" }),
            ("/whois bob", M::Whois { user: "bob" }),
            ("/away lunch", M::Away { text: "lunch" }),
            ("/away", M::Away { text: "" }),
            ("/back", M::Away { text: "" }),
            ("/list", M::ListRooms),
            (
                "/topic",
                M::Topic {
                    room: "#lobby",
                    topic: None,
                },
            ),
            (
                "/topic new topic",
                M::Topic {
                    room: "#lobby",
                    topic: Some("new topic"),
                },
            ),
            (
                "/topic #dev rust",
                M::Topic {
                    room: "#dev",
                    topic: Some("rust"),
                },
            ),
            (
                "/history",
                M::History {
                    target: "#lobby",
                    before_id: 0,
                    limit: 50,
                },
            ),
            (
                "/history bob",
                M::History {
                    target: "bob",
                    before_id: 0,
                    limit: 50,
                },
            ),
            ("/help", M::Help),
            (
                "/kick bob spam",
                M::Kick {
                    room: "#lobby",
                    user: "bob",
                    reason: "spam",
                },
            ),
            (
                "/kick #dev bob",
                M::Kick {
                    room: "#dev",
                    user: "bob",
                    reason: "",
                },
            ),
            (
                "/ban bob",
                M::Ban {
                    user: "bob",
                    seconds: 0,
                    reason: "",
                },
            ),
            (
                "/ban bob 600 flood",
                M::Ban {
                    user: "bob",
                    seconds: 600,
                    reason: "flood",
                },
            ),
            (
                "/ban bob 2h",
                M::Ban {
                    user: "bob",
                    seconds: 7200,
                    reason: "",
                },
            ),
            (
                "/ban bob being rude",
                M::Ban {
                    user: "bob",
                    seconds: 0,
                    reason: "being rude",
                },
            ),
            ("/unban bob", M::Unban { user: "bob" }),
            (
                "/mute bob 10m",
                M::Mute {
                    user: "bob",
                    seconds: 600,
                    reason: "",
                },
            ),
            ("/unmute bob", M::Unmute { user: "bob" }),
            (
                "/motd Welcome all",
                M::SetMotd {
                    text: "Welcome all",
                },
            ),
        ];
        for (line, want) in cases {
            assert_eq!(ok(line), want, "line {line:?}");
        }
    }

    #[test]
    fn quit_nothing_and_errors() {
        assert_eq!(parse("/quit", None), Ok(Parsed::Quit));
        assert_eq!(parse("/quit bye now", None), Ok(Parsed::Quit));
        assert_eq!(parse("", None), Ok(Parsed::Nothing));
        assert_eq!(parse("   \r\n", None), Ok(Parsed::Nothing));
        let err = |line| parse(line, Some("#lobby")).unwrap_err();
        assert_eq!(
            err("/frobnicate x"),
            CommandError::Unknown("frobnicate".into())
        );
        assert_eq!(err("/join"), CommandError::Usage("/join #room"));
        assert_eq!(err("/join dev"), CommandError::Usage("/join #room"));
        assert_eq!(err("/msg bob"), CommandError::Usage("/msg user text"));
        assert_eq!(err("/me"), CommandError::Usage("/me text"));
        assert_eq!(err("/whois"), CommandError::Usage("/whois user"));
        assert_eq!(
            err("/ban"),
            CommandError::Usage("/ban user [duration] [reason]")
        );
        assert_eq!(err("/motd"), CommandError::Usage("/motd text"));
        assert_eq!(parse("hello", None), Err(CommandError::NoRoom));
        assert_eq!(parse("/me x", None), Err(CommandError::NoRoom));
        assert_eq!(parse("/part", None), Err(CommandError::NoRoom));
        assert!(err("/nope").to_string().contains("/help"));
    }

    #[test]
    fn sessions_and_secret_commands() {
        let ok = |line| parse(line, Some("#lobby")).unwrap();
        assert_eq!(ok("/sessions"), Parsed::Send(ClientMsg::Sessions));
        assert_eq!(
            ok("/sessions revoke s-12"),
            Parsed::Send(ClientMsg::RevokeSession { id: "s-12" })
        );
        assert_eq!(
            ok("/SESSIONS Revoke Others"),
            Parsed::Send(ClientMsg::RevokeOtherSessions)
        );
        let usage = CommandError::Usage("/sessions [revoke ID|revoke others]");
        assert_eq!(parse("/sessions revoke", None), Err(usage.clone()));
        assert_eq!(parse("/sessions revoke a b", None), Err(usage.clone()));
        assert_eq!(parse("/sessions kill a", None), Err(usage));
        // Secrets never reach `parse`'s messages.
        assert!(matches!(
            parse("/passwd 123456", None),
            Err(CommandError::Usage(_))
        ));

        assert_eq!(
            secret_command("/passwd"),
            Some(Ok(SecretCommand::Passwd { code: None }))
        );
        assert_eq!(
            secret_command(" /passwd 123456 "),
            Some(Ok(SecretCommand::Passwd {
                code: Some("123456")
            }))
        );
        assert_eq!(
            secret_command("/reenrol 654321"),
            Some(Ok(SecretCommand::Reenrol {
                code: Some("654321")
            }))
        );
        assert_eq!(
            secret_command("/reenrol confirm 111222"),
            Some(Ok(SecretCommand::ConfirmReenrol { code: "111222" }))
        );
        assert!(matches!(secret_command("/reenrol confirm"), Some(Err(_))));
        assert!(matches!(secret_command("/passwd a b"), Some(Err(_))));
        assert_eq!(secret_command("//passwd"), None);
        assert_eq!(secret_command("passwd"), None);
        assert_eq!(secret_command("/sessions"), None);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("45"), Some(45));
        assert_eq!(parse_duration("90s"), Some(90));
        assert_eq!(parse_duration("10m"), Some(600));
        assert_eq!(parse_duration("2H"), Some(7200));
        assert_eq!(parse_duration("7d"), Some(604_800));
        assert_eq!(parse_duration("x"), None);
        assert_eq!(parse_duration("5w"), None);
        assert_eq!(parse_duration(""), None);
        assert_eq!(parse_duration("99999999d"), None);
    }

    #[test]
    fn rooms_follow_sends_and_presence() {
        let mut rooms = Rooms::new(Some("#lobby"));
        rooms.on_sent(&ClientMsg::Join { room: "#dev" });
        assert_eq!(rooms.current(), Some("#dev"));
        rooms.on_sent(&ClientMsg::Part {
            room: "#dev",
            reason: "",
        });
        assert_eq!(rooms.current(), Some("#lobby"));
        let kicked = ServerEvent::Presence {
            room: "#lobby".into(),
            user: "me".into(),
            kind: PresenceKind::Kicked,
            text: String::new(),
        };
        rooms.on_event(&kicked, "me");
        assert_eq!(rooms.current(), None);
        let join = ServerEvent::Presence {
            room: "#lobby".into(),
            user: "me".into(),
            kind: PresenceKind::Join,
            text: String::new(),
        };
        rooms.on_event(&join, "someone-else");
        assert_eq!(rooms.current(), None);
        rooms.on_event(&join, "me");
        assert_eq!(rooms.current(), Some("#lobby"));
        assert!(!rooms.switch_to("#nope"));
    }
}
