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
use common::Client;

fn random32() -> [u8; 32] {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).expect("randomness");
    b
}

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

/// Serves one connection: handshake, waits for Login, sends `script`, then answers every Ping
/// with a Pong until the client says Bye or goes.
fn serve(listener: &TcpListener, key: &StaticKeypair, script: &[ServerMsg<'_>]) {
    let (mut sock, _) = listener.accept().expect("accept");
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut s = Session::server(key, random32(), b"not really ChatBox").expect("session");
    let mut buf = vec![0u8; MAX_WIRE_LEN * 2];
    let mut len = 0;
    let mut out = vec![0u8; MAX_WIRE_LEN + 64];
    let mut pt = vec![0u8; MAX_WIRE_LEN];
    let mut send = |s: &mut Session, sock: &mut TcpStream, m: &ServerMsg<'_>| {
        let n = m.encode(&mut pt).expect("encode");
        let n = s.seal(&pt[..n], &mut out).expect("seal");
        sock.write_all(&out[..n]).is_ok()
    };
    loop {
        let Ok(n) = sock.read(&mut buf[len..]) else {
            return;
        };
        if n == 0 {
            return;
        }
        len += n;
        loop {
            let (consumed, record) = match s.handle_input(&mut buf[..len]) {
                Ok(Input::Incomplete { .. }) => break,
                Ok(Input::Handshake { consumed }) => (consumed, None),
                Ok(Input::Record {
                    consumed,
                    plaintext,
                }) => (consumed, Some(plaintext.to_vec())),
                Err(_) => return,
            };
            buf.copy_within(consumed..len, 0);
            len -= consumed;
            let Some(record) = record else {
                let mut hs = [0u8; 512];
                let n = s.poll_transmit(&mut hs).expect("handshake");
                sock.write_all(&hs[..n]).expect("write");
                continue;
            };
            match ClientMsg::decode(&record) {
                Ok(ClientMsg::Login { .. }) => {
                    for m in script {
                        if !send(&mut s, &mut sock, m) {
                            return;
                        }
                    }
                }
                Ok(ClientMsg::Ping { token }) => {
                    if !send(&mut s, &mut sock, &ServerMsg::Pong { token }) {
                        return;
                    }
                }
                Ok(ClientMsg::Bye) | Err(_) => return,
                Ok(_) => {}
            }
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
