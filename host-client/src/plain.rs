//! Scriptable mode, for scripts, bots and tests (docs/DESIGN.md §7).
//!
//! - `register --user U`: the otpauth URI alone on a line of stdout, the confirmation code read
//!   from one line of stdin, then the scratch codes one per line on stdout. Prompts, the QR code
//!   (when stderr is a terminal) and diagnostics go to stderr.
//! - `chat --user U --otp CODE --plain`: each stdin line is sent (`/commands` as in
//!   [`crate::commands`], other lines said in the current room, `#lobby` after login); each
//!   event is printed as one line (see [`format_event`]). At end of input a `Ping` is sent and its
//!   `Pong` awaited (the server handles a connection's messages in order, so everything sent
//!   before has been processed), then `Bye`, and the exit status is 0. The session itself, with
//!   acknowledgements and reconnecting (`reconnecting to ADDR`, `reconnected to ADDR`), is
//!   `plain_chat` driving a `link::ChatLink`; this module only formats.

use std::collections::HashMap;
use std::io::{self, BufRead as _, IsTerminal as _, Write as _};

use chatbox_core::proto::{ClientMsg, ErrorCode};

use crate::account::{register_confirm, register_start_with};
use crate::error::ClientError;
use crate::event::{ServerEvent, SessionInfo, error_name, kind_word, presence_word, utc_rfc3339};
use crate::invite::{self, Destination};
use crate::menu::read_password;
use crate::qr_view::{self, QrStyle};
use crate::servers::connect_any;

/// Prints one line on stdout and flushes it.
pub fn out_line(line: &str) -> Result<(), ClientError> {
    let mut out = io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|e| ClientError::Io(format!("cannot write to stdout: {e}")))
}

/// `register --user U [--invite …]` in scriptable form (at the first address that answers).
///
/// Without an invite and without `CHATBOX_PASSWORD`, the server is asked first whether it
/// registers by invite only, so nobody types a password for nothing: then exit 4 at once. An
/// invite the server refuses (`invite_invalid`) ends with exit 4 before any code is read.
pub fn register(dest: &Destination, user: &str, qr_style: QrStyle) -> Result<(), ClientError> {
    let servers = &dest.servers;
    let trust = &dest.trust;
    let password_in_env = std::env::var_os("CHATBOX_PASSWORD").is_some();
    if dest.invite.is_none()
        && !password_in_env
        && smol::block_on(invite::probe_policy(servers, trust))?
    {
        return Err(invite::invite_needed(servers));
    }
    let password = read_password("Password (not shown): ")?;
    smol::block_on(async {
        let (mut conn, _) = connect_any(servers, trust).await?;
        crate::conn::note_trust(&conn);
        let uri =
            match register_start_with(&mut conn, user, &password, dest.invite.as_deref()).await {
                Ok(uri) => uri,
                Err(e) if dest.invite.is_none() && e.is_refusal(ErrorCode::InviteInvalid) => {
                    return Err(invite::invite_needed(servers));
                }
                Err(e) => return Err(e),
            };
        out_line(&uri)?;
        if io::stderr().is_terminal()
            && let Ok(lines) = qr_view::render_text(&uri, qr_style)
        {
            for line in lines {
                eprintln!("{line}");
            }
        }
        eprintln!("Enter the current 6-digit code from your authenticator app:");
        let mut code = String::new();
        let n = smol::unblock(move || io::stdin().lock().read_line(&mut code).map(|n| (n, code)))
            .await
            .map_err(|e| ClientError::Io(format!("cannot read the code from stdin: {e}")))?;
        let (n, code) = n;
        if n == 0 {
            return Err(ClientError::Usage(
                "stdin ended before a confirmation code was given".into(),
            ));
        }
        let codes = register_confirm(&mut conn, code.trim()).await?;
        eprintln!(
            "Registered {user}. Scratch codes (each works once in place of a code; store them safely):"
        );
        for c in &codes {
            out_line(c)?;
        }
        let _ = conn.send(&ClientMsg::Bye).await;
        Ok(())
    })
}

/// `session <id> <node> <address> <since> <this|other>`; `since` in UTC, RFC 3339.
#[must_use]
pub fn session_line(s: &SessionInfo) -> String {
    format!(
        "session {} {} {} {} {}",
        s.id,
        s.node,
        s.address,
        utc_rfc3339(s.since_ms),
        if s.current { "this" } else { "other" }
    )
}

/// `names` batches collected until the last one.
#[derive(Debug, Default)]
pub struct NamesBatches(HashMap<String, Vec<String>>);

/// The plain-mode lines for one event (none, one, or one per history message).
pub fn format_event(event: &ServerEvent, names: &mut NamesBatches) -> Vec<String> {
    let or_star = |s: &str| {
        if s.is_empty() {
            "*".to_owned()
        } else {
            s.to_owned()
        }
    };
    let line = match event {
        ServerEvent::LoginOk { user, motd } => {
            let mut v = vec![format!("login {user}")];
            if !motd.is_empty() {
                v.push(format!("motd {motd}"));
            }
            return v;
        }
        ServerEvent::Message(m) => format!(
            "{} {} {} {}",
            kind_word(m.kind),
            or_star(&m.target),
            or_star(&m.from),
            m.text
        ),
        ServerEvent::Presence {
            room,
            user,
            kind,
            text,
        } => format!(
            "presence {} {} {} {text}",
            or_star(room),
            user,
            presence_word(*kind)
        ),
        ServerEvent::Names { room, done, users } => {
            let acc = names.0.entry(room.clone()).or_default();
            acc.extend(users.iter().cloned());
            if !*done {
                return Vec::new();
            }
            let all = names.0.remove(room).unwrap_or_default();
            format!("names {room} {}", all.join(" "))
        }
        ServerEvent::Topic { room, topic, .. } => format!("topic {room} {topic}"),
        ServerEvent::History {
            target, messages, ..
        } => {
            return messages
                .iter()
                .map(|m| {
                    let line = format!(
                        "history {target} {} {} {} {}",
                        m.id,
                        or_star(&m.from),
                        kind_word(m.kind),
                        m.text
                    );
                    line.trim_end().to_owned()
                })
                .collect();
        }
        ServerEvent::RoomEntry {
            room,
            members,
            topic,
        } => format!("room {room} {members} {topic}"),
        ServerEvent::Whois {
            user,
            role,
            online,
            away,
            rooms,
            ..
        } => format!(
            "whois {user} role={role} online={} away={away} rooms={}",
            if *online { "yes" } else { "no" },
            rooms.join(",")
        ),
        ServerEvent::Info { text } => format!("info {text}"),
        ServerEvent::Error { code, text } => format!("error {} {text}", error_name(*code)),
        ServerEvent::Pong { token } => format!("pong {token}"),
        ServerEvent::Bye { reason } => format!("bye {reason}"),
        ServerEvent::RegisterStarted { .. } => "info registration started".to_owned(),
        ServerEvent::Registered { .. } => "info registered".to_owned(),
        ServerEvent::RegistrationPolicy { invite_required } => format!(
            "info registration {}",
            if *invite_required { "invite" } else { "open" }
        ),
        ServerEvent::PasswordChanged { closed } => format!("passwd {closed}"),
        ServerEvent::ReenrolStarted { uri } => format!("reenrol {uri}"),
        ServerEvent::Reenrolled {
            closed,
            scratch_codes,
        } => {
            let mut v = vec![format!("reenrolled {closed}")];
            v.extend(scratch_codes.iter().map(|c| format!("scratch {c}")));
            return v;
        }
        ServerEvent::SessionList { done, sessions } => {
            let mut v: Vec<String> = sessions.iter().map(session_line).collect();
            if *done {
                v.push("sessions end".to_owned());
            }
            return v;
        }
        ServerEvent::SessionsRevoked { count } => format!("revoked {count}"),
        ServerEvent::Unknown { tag } => format!("info unknown message 0x{tag:02x}"),
        ServerEvent::Invalid { tag, what } => format!(
            "error malformed the server sent an invalid {what} (message 0x{tag:02x} ignored)"
        ),
        // Used for pacing, not shown.
        ServerEvent::RateLimit { .. } => return Vec::new(),
    };
    vec![line.trim_end().to_owned()]
}

#[cfg(test)]
mod tests {
    use chatbox_core::proto::{
        ChatMessage, MessageKind, MessageList, PresenceKind, ServerMsg, SessionEntry,
        SessionEntryList, StrList,
    };

    use super::*;

    fn lines(msg: ServerMsg<'_>, names: &mut NamesBatches) -> Vec<String> {
        format_event(&ServerEvent::from(&msg), names)
    }

    #[test]
    fn formats() {
        let mut n = NamesBatches::default();
        let m = |kind, target, from, text| {
            ServerMsg::Message(ChatMessage {
                id: 7,
                time_ms: 0,
                target,
                from,
                kind,
                text,
            })
        };
        let cases: Vec<(ServerMsg<'_>, Vec<&str>)> = vec![
            (
                ServerMsg::LoginOk {
                    user: "alice",
                    motd: "Hi\nthere",
                },
                vec!["login alice", "motd Hithere"],
            ),
            (
                ServerMsg::LoginOk {
                    user: "alice",
                    motd: "",
                },
                vec!["login alice"],
            ),
            (
                m(MessageKind::Say, "#lobby", "bob", "hello \u{1b}[31mall"),
                vec!["say #lobby bob hello all"],
            ),
            (
                m(
                    MessageKind::Say,
                    "#lobby",
                    "bob",
                    "hi\u{2028}say #lobby eve forged\u{2029}\u{85}\u{200b}!",
                ),
                vec!["say #lobby bob hisay #lobby eve forged!"],
            ),
            (
                m(
                    MessageKind::Say,
                    "#lobby",
                    "bob",
                    "\u{202e}\u{2066}abc\u{feff}",
                ),
                vec!["say #lobby bob abc"],
            ),
            (
                m(MessageKind::Action, "#lobby", "bob", "waves"),
                vec!["action #lobby bob waves"],
            ),
            (
                m(MessageKind::Private, "alice", "bob", "psst"),
                vec!["private alice bob psst"],
            ),
            (
                m(MessageKind::Notice, "#lobby", "server", "note"),
                vec!["notice #lobby server note"],
            ),
            (
                ServerMsg::Presence {
                    room: "#lobby",
                    user: "bob",
                    kind: PresenceKind::Join,
                    text: "",
                },
                vec!["presence #lobby bob join"],
            ),
            (
                ServerMsg::Presence {
                    room: "",
                    user: "bob",
                    kind: PresenceKind::Away,
                    text: "lunch",
                },
                vec!["presence * bob away lunch"],
            ),
            (
                ServerMsg::Topic {
                    room: "#lobby",
                    topic: "Welcome",
                    set_by: "op",
                    time_ms: 1,
                },
                vec!["topic #lobby Welcome"],
            ),
            (
                ServerMsg::RoomEntry {
                    room: "#dev",
                    members: 3,
                    topic: "rust",
                },
                vec!["room #dev 3 rust"],
            ),
            (
                ServerMsg::Whois {
                    user: "bob",
                    role: "op",
                    online: true,
                    away: "",
                    registered_ms: 0,
                    rooms: StrList::Items(&["#a", "#b"]),
                },
                vec!["whois bob role=op online=yes away= rooms=#a,#b"],
            ),
            (ServerMsg::Info { text: "done" }, vec!["info done"]),
            (
                ServerMsg::Error {
                    code: 11,
                    text: "no such user",
                },
                vec!["error no_such_user no such user"],
            ),
            (
                ServerMsg::Error {
                    code: 999,
                    text: "x",
                },
                vec!["error code_999 x"],
            ),
            (ServerMsg::Pong { token: 42 }, vec!["pong 42"]),
            (ServerMsg::Bye { reason: "shutdown" }, vec!["bye shutdown"]),
        ];
        for (msg, want) in cases {
            assert_eq!(lines(msg, &mut n), want, "{msg:?}");
        }
    }

    #[test]
    fn self_service_lines() {
        let mut n = NamesBatches::default();
        let entries = [
            SessionEntry {
                id: "s1",
                node: "n1",
                address: "127.0.0.1:5000",
                since_ms: 1_764_626_400_000,
                current: true,
            },
            SessionEntry {
                id: "s 2",
                node: "",
                address: "::1\u{1b}[2J",
                since_ms: 0,
                current: false,
            },
        ];
        let cases: Vec<(ServerMsg<'_>, Vec<&str>)> = vec![
            (ServerMsg::PasswordChanged { closed: 2 }, vec!["passwd 2"]),
            (
                ServerMsg::ReenrolStarted {
                    uri: "otpauth://totp/ChatBox:a?secret=ABC",
                },
                vec!["reenrol otpauth://totp/ChatBox:a?secret=ABC"],
            ),
            (
                ServerMsg::Reenrolled {
                    closed: 1,
                    scratch_codes: StrList::Items(&["11112222", "33334444"]),
                },
                vec!["reenrolled 1", "scratch 11112222", "scratch 33334444"],
            ),
            (
                ServerMsg::SessionList {
                    done: true,
                    sessions: SessionEntryList::Items(&entries),
                },
                vec![
                    "session s1 n1 127.0.0.1:5000 2025-12-01T22:00:00Z this",
                    "session s_2 * ::1 1970-01-01T00:00:00Z other",
                    "sessions end",
                ],
            ),
            (
                ServerMsg::SessionList {
                    done: false,
                    sessions: SessionEntryList::Items(&entries[..1]),
                },
                vec!["session s1 n1 127.0.0.1:5000 2025-12-01T22:00:00Z this"],
            ),
            (ServerMsg::SessionsRevoked { count: 3 }, vec!["revoked 3"]),
            (
                ServerMsg::RegistrationPolicy {
                    invite_required: true,
                },
                vec!["info registration invite"],
            ),
        ];
        for (msg, want) in cases {
            assert_eq!(lines(msg, &mut n), want, "{msg:?}");
        }
    }

    #[test]
    fn bad_names_from_the_server_are_error_lines() {
        let mut n = NamesBatches::default();
        let m = |target, from| {
            ServerMsg::Message(ChatMessage {
                id: 1,
                time_ms: 0,
                target,
                from,
                kind: MessageKind::Say,
                text: "hi",
            })
        };
        let bad = [
            m("#lobby", "bob evil"),
            m("#lobby", "Bob"),
            m("#lobby", "b\u{430}b"),
            m("#lo bby", "bob"),
            m("lobby", "bob"),
            m("#lobby", "bob\u{200b}"),
            ServerMsg::LoginOk {
                user: "alice say #lobby bob",
                motd: "",
            },
            ServerMsg::Presence {
                room: "#lobby",
                user: "eve join",
                kind: PresenceKind::Join,
                text: "",
            },
            ServerMsg::Presence {
                room: "lobby",
                user: "eve",
                kind: PresenceKind::Join,
                text: "",
            },
            ServerMsg::Names {
                room: "#lobby",
                done: true,
                users: StrList::Items(&["ok", "not ok"]),
            },
            ServerMsg::Topic {
                room: "#a b",
                topic: "t",
                set_by: "",
                time_ms: 0,
            },
            ServerMsg::RoomEntry {
                room: "#x y",
                members: 1,
                topic: "",
            },
            ServerMsg::Whois {
                user: "bob",
                role: "op online=yes",
                online: true,
                away: "",
                registered_ms: 0,
                rooms: StrList::Items(&[]),
            },
            ServerMsg::History {
                target: "#lobby",
                done: true,
                messages: MessageList::Items(&[ChatMessage {
                    id: 1,
                    time_ms: 0,
                    target: "#lobby",
                    from: "x 1 y say",
                    kind: MessageKind::Say,
                    text: "forged",
                }]),
            },
        ];
        for msg in bad {
            let out = lines(msg, &mut n);
            assert_eq!(out.len(), 1, "{msg:?}");
            assert!(
                out[0].starts_with("error malformed the server sent an invalid "),
                "{msg:?} -> {out:?}"
            );
        }
        // Empty sender (a server notice) and an unset topic's empty setter are fine.
        assert_eq!(lines(m("#lobby", ""), &mut n), ["say #lobby * hi"]);
    }

    #[test]
    fn names_batches_and_history() {
        let mut n = NamesBatches::default();
        let first = ServerMsg::Names {
            room: "#lobby",
            done: false,
            users: StrList::Items(&["a", "b"]),
        };
        assert!(lines(first, &mut n).is_empty());
        let last = ServerMsg::Names {
            room: "#lobby",
            done: true,
            users: StrList::Items(&["c"]),
        };
        assert_eq!(lines(last, &mut n), vec!["names #lobby a b c"]);
        let msgs = [
            ChatMessage {
                id: 1,
                time_ms: 0,
                target: "#lobby",
                from: "a",
                kind: MessageKind::Say,
                text: "one",
            },
            ChatMessage {
                id: 2,
                time_ms: 0,
                target: "#lobby",
                from: "b",
                kind: MessageKind::Action,
                text: "two",
            },
        ];
        let h = ServerMsg::History {
            target: "#lobby",
            done: true,
            messages: MessageList::Items(&msgs),
        };
        assert_eq!(
            lines(h, &mut n),
            vec![
                "history #lobby 1 a say one",
                "history #lobby 2 b action two"
            ]
        );
    }
}
