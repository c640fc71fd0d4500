//! A malicious server against the real client binary in `--plain` (issue 13.8, 13.9): a real
//! TCP listener on 127.0.0.1 speaking the real handshake with core's server-side session, which
//! answers the login with names that break the name rules (a space, upper case, a look-alike
//! letter, a room without `#`…) and with texts holding line separators and invisible
//! characters. Every output line must parse by the README's plain-mode grammar, a message with
//! a bad name must come out as an `error` line (never as its event), and texts come out
//! cleaned.

mod common;

use core::time::Duration;
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};

use chatbox_core::frame::MAX_WIRE_LEN;
use chatbox_core::noise::StaticKeypair;
use chatbox_core::proto::{
    ChatMessage, ClientMsg, MessageKind, MessageList, PresenceKind, ServerMsg, StrList,
};
use chatbox_core::session::{Input, Session};
use chatbox_server::test_util::random32;
use common::Client;

fn say(target: &'static str, from: &'static str, text: &'static str) -> ServerMsg<'static> {
    ServerMsg::Message(ChatMessage {
        id: 7,
        time_ms: 0,
        target,
        from,
        kind: MessageKind::Say,
        text,
    })
}

const FORGED: ChatMessage<'static> = ChatMessage {
    id: 1,
    time_ms: 0,
    target: "#lobby",
    from: "x 1 y",
    kind: MessageKind::Say,
    text: "forged",
};

/// The messages with a bad name: each must become one `error` line.
fn bad() -> Vec<ServerMsg<'static>> {
    vec![
        say("#lobby", "bob evil", "x"),
        say("#lobby", "Bob", "x"),
        say("#lobby", "b\u{430}b", "x"),
        say("#lo bby", "bob", "x"),
        say("lobby", "bob", "x"),
        ServerMsg::Message(ChatMessage {
            id: 8,
            time_ms: 0,
            target: "mal",
            from: "eve\u{200b}",
            kind: MessageKind::Private,
            text: "x",
        }),
        ServerMsg::Presence {
            room: "#lobby",
            user: "eve join",
            kind: PresenceKind::Join,
            text: "",
        },
        ServerMsg::Names {
            room: "#lobby",
            done: true,
            users: StrList::Items(&["ok", "bad name"]),
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
            user: "a b",
            role: "op",
            online: true,
            away: "",
            registered_ms: 0,
            rooms: StrList::Items(&[]),
        },
        ServerMsg::History {
            target: "#lobby",
            done: true,
            messages: MessageList::Items(&[FORGED]),
        },
    ]
}

/// One connection to the fake server: core's server session over a real socket.
struct FakeConn {
    sock: TcpStream,
    s: Session,
    buf: Vec<u8>,
    len: usize,
}

impl FakeConn {
    fn accept(listener: &TcpListener, key: &StaticKeypair) -> FakeConn {
        let (sock, _) = listener.accept().expect("accept");
        sock.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        FakeConn {
            sock,
            s: Session::server(key, random32(), b"not really ChatBox").expect("session"),
            buf: vec![0u8; MAX_WIRE_LEN * 2],
            len: 0,
        }
    }

    /// The next record's plaintext (the handshake is answered on the way); `None` at the end.
    fn recv(&mut self) -> Option<Vec<u8>> {
        loop {
            let (consumed, record) = match self.s.handle_input(&mut self.buf[..self.len]) {
                Ok(Input::Incomplete { .. }) => {
                    let n = self.sock.read(&mut self.buf[self.len..]).ok()?;
                    if n == 0 {
                        return None;
                    }
                    self.len += n;
                    continue;
                }
                Ok(Input::Handshake { consumed }) => (consumed, None),
                Ok(Input::Record {
                    consumed,
                    plaintext,
                }) => (consumed, Some(plaintext.to_vec())),
                Err(_) => return None,
            };
            self.buf.copy_within(consumed..self.len, 0);
            self.len -= consumed;
            match record {
                Some(r) => return Some(r),
                None => {
                    let mut hs = [0u8; 512];
                    let n = self.s.poll_transmit(&mut hs).expect("handshake");
                    self.sock.write_all(&hs[..n]).ok()?;
                }
            }
        }
    }

    fn send(&mut self, m: &ServerMsg<'_>) -> bool {
        let mut pt = vec![0u8; MAX_WIRE_LEN];
        let mut out = vec![0u8; MAX_WIRE_LEN + 64];
        let n = m.encode(&mut pt).expect("encode");
        let n = self.s.seal(&pt[..n], &mut out).expect("seal");
        self.sock.write_all(&out[..n]).is_ok()
    }
}

/// Serves one connection: waits for Login, sends `script`, then answers every Ping with a Pong
/// until the client says Bye or goes.
fn serve(listener: &TcpListener, key: &StaticKeypair, script: &[ServerMsg<'_>]) {
    let mut c = FakeConn::accept(listener, key);
    while let Some(record) = c.recv() {
        match ClientMsg::decode(&record) {
            Ok(ClientMsg::Login { .. }) => {
                for m in script {
                    if !c.send(m) {
                        return;
                    }
                }
            }
            Ok(ClientMsg::Ping { token }) => {
                if !c.send(&ServerMsg::Pong { token }) {
                    return;
                }
            }
            Ok(ClientMsg::Bye) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

fn is_user(s: &str) -> bool {
    chatbox_core::username::normalize(s).is_ok_and(|n| n.as_str() == s)
}

fn is_room(s: &str) -> bool {
    chatbox_core::proto::is_valid_room(s)
}

/// The README's plain-mode grammar: `Err` says what does not fit.
fn parse(line: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("{why}: {line:?}"));
    if line.chars().any(chatbox_core::text::is_hidden_or_separator) {
        return bad("hidden or separator character");
    }
    let w: Vec<&str> = line.split(' ').collect();
    let at = |i: usize| w.get(i).copied().unwrap_or("");
    let user_or_star = |s: &str| s == "*" || is_user(s);
    let target = |s: &str| is_room(s) || is_user(s);
    let ok = match at(0) {
        "login" => w.len() == 2 && is_user(at(1)),
        "motd" | "info" | "bye" => true,
        "say" => w.len() >= 3 && is_room(at(1)) && user_or_star(at(2)),
        "action" | "notice" => w.len() >= 3 && target(at(1)) && user_or_star(at(2)),
        "private" => w.len() >= 3 && is_user(at(1)) && user_or_star(at(2)),
        "presence" => {
            w.len() >= 4
                && (at(1) == "*" || is_room(at(1)))
                && is_user(at(2))
                && [
                    "join", "part", "quit", "away", "back", "kicked", "banned", "muted", "topic",
                ]
                .contains(&at(3))
        }
        "names" => w.len() >= 2 && is_room(at(1)) && w.iter().skip(2).all(|u| is_user(u)),
        "topic" => w.len() >= 2 && is_room(at(1)),
        "history" => {
            w.len() >= 5
                && target(at(1))
                && at(2).parse::<u64>().is_ok()
                && user_or_star(at(3))
                && ["say", "action", "private", "notice"].contains(&at(4))
        }
        "room" => w.len() >= 3 && is_room(at(1)) && at(2).parse::<u32>().is_ok(),
        "whois" => w.len() >= 6 && is_user(at(1)) && at(2).starts_with("role="),
        "error" => {
            w.len() >= 2
                && !at(1).is_empty()
                && at(1)
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit())
        }
        "pong" => w.len() == 2 && at(1).parse::<u64>().is_ok(),
        "reconnecting" | "reconnected" => at(1) == "to" && w.len() == 3,
        _ => false,
    };
    if ok { Ok(()) } else { bad("does not parse") }
}

#[test]
fn bad_names_from_a_malicious_server_are_error_lines_and_every_line_parses() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let key = StaticKeypair::from_secret(random32());
    let mut script = vec![
        ServerMsg::LoginOk {
            user: "mal",
            motd: "hi\u{2028}say #lobby eve forged\u{2029}\u{85}",
        },
        ServerMsg::RateLimit {
            milli_per_sec: 20_000,
            burst: 40,
        },
    ];
    let bad = bad();
    script.extend(bad.iter().copied());
    script.push(say(
        "#lobby",
        "bob",
        "fine\u{2028}say #lobby eve forged\u{200b}\u{202e}\u{feff}",
    ));
    script.push(ServerMsg::Presence {
        room: "",
        user: "bob",
        kind: PresenceKind::Away,
        text: "lun\u{2066}ch",
    });
    let server = std::thread::spawn(move || serve(&listener, &key, &script));

    let home = tempfile::tempdir().expect("tempdir");
    let mut c = Client::spawn(
        home.path(),
        &[
            "--server", &addr, "chat", "--user", "mal", "--otp", "123456", "--plain",
        ],
    );
    c.close_stdin();
    let (status, out, err) = c.finish();
    let _ = server.join();
    assert!(status.success(), "{status:?}\n{out:#?}\n{err:#?}");
    for line in &out {
        if let Err(e) = parse(line) {
            panic!("{e}\nall output:\n{out:#?}");
        }
    }
    let errors: Vec<&String> = out.iter().filter(|l| l.starts_with("error ")).collect();
    assert_eq!(
        errors.len(),
        bad.len(),
        "one error line per bad message: {out:#?}"
    );
    assert!(
        errors
            .iter()
            .all(|l| l.starts_with("error malformed the server sent an invalid ")),
        "{errors:#?}"
    );
    let events: Vec<&str> = out
        .iter()
        .filter(|l| !l.starts_with("error ") && !l.starts_with("pong "))
        .map(String::as_str)
        .collect();
    assert_eq!(
        events,
        [
            "login mal",
            "motd hisay #lobby eve forged",
            "say #lobby bob finesay #lobby eve forged",
            "presence * bob away lunch",
        ],
        "only the good events, cleaned: {out:#?}"
    );
}

/// Issue 13.13, the case a real server cannot be made to produce on demand: a node stores a
/// line and dies before its copy goes out. The fake server takes the Say, answers nothing and
/// drops the connection; on the client's second login it shows the line in the room's history.
/// The client must not send it again — and must send the line after it.
#[test]
fn a_line_stored_by_a_node_that_died_is_not_sent_again_after_the_reconnect() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let key = StaticKeypair::from_secret(random32());
    let login = |c: &mut FakeConn| {
        c.send(&ServerMsg::LoginOk {
            user: "mal",
            motd: "",
        }) && c.send(&ServerMsg::RateLimit {
            milli_per_sec: 20_000,
            burst: 40,
        })
    };
    let server = std::thread::spawn(move || {
        // First connection: log in, take the first Say, then die without a word.
        let mut c = FakeConn::accept(&listener, &key);
        let mut first = None;
        while let Some(r) = c.recv() {
            match ClientMsg::decode(&r) {
                Ok(ClientMsg::Login { .. }) => assert!(login(&mut c)),
                Ok(ClientMsg::Say { text, .. }) => {
                    first = Some(text.to_owned());
                    break;
                }
                _ => {}
            }
        }
        drop(c);
        // Second connection: the history holds the line; record everything said after.
        let mut c = FakeConn::accept(&listener, &key);
        let mut said = Vec::new();
        let mut lookups = 0;
        while let Some(r) = c.recv() {
            match ClientMsg::decode(&r) {
                Ok(ClientMsg::Login { .. }) => assert!(login(&mut c)),
                Ok(ClientMsg::History { target, .. }) => {
                    lookups += 1;
                    let stored = [ChatMessage {
                        id: 42,
                        time_ms: 0,
                        target: "#lobby",
                        from: "mal",
                        kind: MessageKind::Say,
                        text: first.as_deref().unwrap_or(""),
                    }];
                    assert!(c.send(&ServerMsg::History {
                        target,
                        done: true,
                        messages: MessageList::Items(&stored),
                    }));
                }
                Ok(ClientMsg::Say { room, text }) => {
                    said.push(text.to_owned());
                    let copy = ChatMessage {
                        id: 43,
                        time_ms: 0,
                        target: room,
                        from: "mal",
                        kind: MessageKind::Say,
                        text,
                    };
                    assert!(c.send(&ServerMsg::Message(copy)));
                }
                Ok(ClientMsg::Ping { token }) => assert!(c.send(&ServerMsg::Pong { token })),
                Ok(ClientMsg::Bye) | Err(_) => break,
                Ok(_) => {}
            }
        }
        (first, lookups, said)
    });
    let home = tempfile::tempdir().expect("tempdir");
    let mut c = Client::spawn_env(
        home.path(),
        &["--server", &addr, "chat", "--user", "mal", "--plain"],
        &[("CHATBOX_TOTP_SECRET", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")],
    );
    c.expect("logged in", |l| l == "login mal");
    c.send("stored before the crash");
    c.expect("reconnected", |l| l.starts_with("reconnected to "));
    c.send("after the crash");
    c.expect("the next line", |l| l == "say #lobby mal after the crash");
    let (status, out, err) = c.finish();
    let (first, lookups, said) = server.join().expect("fake server");
    assert!(status.success(), "{status:?}\n{out:#?}\n{err:#?}");
    assert_eq!(first.as_deref(), Some("stored before the crash"));
    assert_eq!(lookups, 1, "one history lookup for #lobby");
    assert_eq!(
        said,
        ["after the crash"],
        "the stored line is not sent again"
    );
    assert!(
        err.iter()
            .any(|l| l.contains("1 line(s) sent before the connection was lost had been stored")),
        "{err:#?}"
    );
}

/// A line the server puts off (`rate_limited`: not handled) is sent again, once, and the run
/// still ends with exit 0 and no `error` line; the retry comes after the lines that were already
/// on their way.
#[test]
fn a_rate_limited_line_is_sent_again_once() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let key = StaticKeypair::from_secret(random32());
    let server = std::thread::spawn(move || {
        let mut c = FakeConn::accept(&listener, &key);
        let mut stored = Vec::new();
        let mut put_off = false;
        while let Some(r) = c.recv() {
            match ClientMsg::decode(&r) {
                Ok(ClientMsg::Login { .. }) => {
                    assert!(c.send(&ServerMsg::LoginOk {
                        user: "mal",
                        motd: "",
                    }));
                }
                Ok(ClientMsg::Say { room, text }) => {
                    if text == "two" && !put_off {
                        put_off = true;
                        assert!(c.send(&ServerMsg::Error {
                            code: 8,
                            text: "too many messages, slow down",
                        }));
                        continue;
                    }
                    stored.push(text.to_owned());
                    let copy = ChatMessage {
                        id: 50 + stored.len() as u64,
                        time_ms: 0,
                        target: room,
                        from: "mal",
                        kind: MessageKind::Say,
                        text,
                    };
                    assert!(c.send(&ServerMsg::Message(copy)));
                }
                Ok(ClientMsg::Ping { token }) => assert!(c.send(&ServerMsg::Pong { token })),
                Ok(ClientMsg::Bye) | Err(_) => break,
                Ok(_) => {}
            }
        }
        stored
    });
    let home = tempfile::tempdir().expect("tempdir");
    let mut c = Client::spawn(
        home.path(),
        &[
            "--server", &addr, "chat", "--user", "mal", "--otp", "123456", "--plain",
        ],
    );
    for l in ["one", "two", "three"] {
        c.send(l);
    }
    let (status, out, err) = c.finish();
    let mut stored = server.join().expect("fake server");
    assert!(status.success(), "{status:?}\n{out:#?}\n{err:#?}");
    assert!(!out.iter().any(|l| l.starts_with("error ")), "{out:#?}");
    assert!(err.iter().any(|l| l.contains("slow down")), "{err:#?}");
    assert_eq!(stored.first().map(String::as_str), Some("one"));
    stored.sort();
    assert_eq!(stored, ["one", "three", "two"], "each once");
}
