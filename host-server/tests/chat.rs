//! Rooms, private messages, ops, history across restarts, limits and hostile input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chatbox_server::test_util as common;

use core::time::Duration;
use std::io::Write;

use chatbox_core::proto::{ClientMsg, ErrorCode, MessageKind, PresenceKind, ServerMsg};
use common::*;

fn message_text(c: &mut Client, what: &str) -> (u64, String, String, String) {
    let r = c.recv_until(what, |m| matches!(m, ServerMsg::Message(_)));
    let ServerMsg::Message(m) = r.msg() else {
        unreachable!()
    };
    (
        m.id,
        m.target.to_owned(),
        m.from.to_owned(),
        m.text.to_owned(),
    )
}

#[test]
fn two_users_chat_in_lobby_and_privately() {
    let s = TestServer::start();
    let a = register(s.addr(), "alice");
    let b = register(s.addr(), "bob");
    let mut ca = login(s.addr(), &a, 0);
    let mut cb = login(s.addr(), &b, 0);
    ca.recv_until("bob joins", |m| {
        matches!(
            m,
            ServerMsg::Presence {
                user: "bob",
                kind: PresenceKind::Join,
                ..
            }
        )
    });
    ca.send(&ClientMsg::Say {
        room: "#lobby",
        text: "hello bob",
    });
    let (id_echo, target, from, text) = message_text(&mut ca, "echo");
    assert_eq!(
        (target.as_str(), from.as_str(), text.as_str()),
        ("#lobby", "alice", "hello bob")
    );
    let (id_b, _, from, text) = message_text(&mut cb, "bob receives");
    assert_eq!(
        (id_b, from.as_str(), text.as_str()),
        (id_echo, "alice", "hello bob")
    );
    cb.send(&ClientMsg::Private {
        to: "alice",
        text: "psst",
    });
    let r = ca.recv_until("private", |m| matches!(m, ServerMsg::Message(_)));
    let ServerMsg::Message(m) = r.msg() else {
        unreachable!()
    };
    assert_eq!(
        (m.kind, m.from, m.target, m.text),
        (MessageKind::Private, "bob", "alice", "psst")
    );
    cb.send(&ClientMsg::Action {
        target: "#lobby",
        text: "waves",
    });
    let r = ca.recv_until("action", |m| matches!(m, ServerMsg::Message(_)));
    let ServerMsg::Message(m) = r.msg() else {
        unreachable!()
    };
    assert_eq!((m.kind, m.text), (MessageKind::Action, "waves"));
    cb.send(&ClientMsg::Private {
        to: "nobody",
        text: "hi",
    });
    cb.expect_error(ErrorCode::NoSuchUser);
    // Private history for the pair.
    ca.send(&ClientMsg::History {
        target: "bob",
        before_id: 0,
        limit: 10,
    });
    let r = ca.recv_until("history", |m| matches!(m, ServerMsg::History { .. }));
    let ServerMsg::History { messages, done, .. } = r.msg() else {
        unreachable!()
    };
    assert!(done);
    assert_eq!(
        messages.iter().map(|m| m.text).collect::<Vec<_>>(),
        ["psst"]
    );
    // Whois.
    ca.send(&ClientMsg::Whois { user: "bob" });
    let r = ca.recv_until("whois", |m| matches!(m, ServerMsg::Whois { .. }));
    let ServerMsg::Whois {
        online,
        rooms,
        role,
        ..
    } = r.msg()
    else {
        unreachable!()
    };
    assert!(online);
    assert_eq!(role, "user");
    assert_eq!(rooms.iter().collect::<Vec<_>>(), ["#lobby"]);
    // Pong only after the messages before it: the echo comes first.
    ca.send(&ClientMsg::Say {
        room: "#lobby",
        text: "one",
    });
    ca.send(&ClientMsg::Ping { token: 99 });
    let first = ca.recv_until("echo or pong", |m| {
        matches!(m, ServerMsg::Message(_) | ServerMsg::Pong { .. })
    });
    assert!(
        matches!(first.msg(), ServerMsg::Message(m) if m.text == "one"),
        "{first:?}"
    );
    ca.recv_until("pong", |m| matches!(m, ServerMsg::Pong { token: 99 }));
    // Help.
    ca.send(&ClientMsg::Help);
    ca.recv_until(
        "help",
        |m| matches!(m, ServerMsg::Info { text } if text.contains("/join")),
    );
}

#[test]
fn rooms_join_part_names_topic_list() {
    let s = TestServer::start();
    let a = register(s.addr(), "alice");
    let b = register(s.addr(), "bob");
    let mut ca = login(s.addr(), &a, 0);
    let mut cb = login(s.addr(), &b, 0);
    ca.send(&ClientMsg::Join { room: "#rust" });
    ca.recv_until("history", |m| {
        matches!(
            m,
            ServerMsg::History {
                target: "#rust",
                done: true,
                ..
            }
        )
    });
    cb.send(&ClientMsg::Join { room: "#rust" });
    cb.recv_until("names", |m| {
        matches!(m, ServerMsg::Names { room: "#rust", .. })
    });
    ca.recv_until("bob joins", |m| {
        matches!(
            m,
            ServerMsg::Presence {
                room: "#rust",
                user: "bob",
                kind: PresenceKind::Join,
                ..
            }
        )
    });
    ca.send(&ClientMsg::Names { room: "#rust" });
    let r = ca.recv_until("names", |m| matches!(m, ServerMsg::Names { .. }));
    let ServerMsg::Names { users, done, .. } = r.msg() else {
        unreachable!()
    };
    assert!(done);
    assert_eq!(users.iter().collect::<Vec<_>>(), ["alice", "bob"]);
    ca.send(&ClientMsg::Topic {
        room: "#rust",
        topic: Some("\u{1b}[1mborrowck\u{1b}[0m"),
    });
    let r = cb.recv_until("topic", |m| matches!(m, ServerMsg::Topic { .. }));
    let ServerMsg::Topic { topic, set_by, .. } = r.msg() else {
        unreachable!()
    };
    assert_eq!((topic, set_by), ("borrowck", "alice"));
    cb.send(&ClientMsg::Topic {
        room: "#rust",
        topic: None,
    });
    cb.recv_until("topic", |m| {
        matches!(
            m,
            ServerMsg::Topic {
                topic: "borrowck",
                ..
            }
        )
    });
    cb.send(&ClientMsg::ListRooms);
    let mut rooms = Vec::new();
    loop {
        let r = cb.recv();
        match r.msg() {
            ServerMsg::RoomEntry { room, members, .. } => rooms.push((room.to_owned(), members)),
            ServerMsg::Info { text } if text.starts_with("end of room list") => break,
            _ => {}
        }
    }
    assert_eq!(rooms, [("#lobby".to_owned(), 2), ("#rust".to_owned(), 2)]);
    cb.send(&ClientMsg::Part {
        room: "#rust",
        reason: "bye",
    });
    ca.recv_until("bob parts", |m| {
        matches!(
            m,
            ServerMsg::Presence {
                user: "bob",
                kind: PresenceKind::Part,
                ..
            }
        )
    });
    cb.send(&ClientMsg::Say {
        room: "#rust",
        text: "still here?",
    });
    cb.expect_error(ErrorCode::NotInRoom);
    cb.send(&ClientMsg::Join { room: "bad room" });
    cb.expect_error(ErrorCode::InvalidRoom);
    cb.send(&ClientMsg::Names { room: "#empty" });
    cb.expect_error(ErrorCode::NoSuchRoom);
}

#[test]
fn history_survives_restart() {
    let mut s = TestServer::start_with(|c| c.rate_burst = 1000.0);
    let a = register(s.addr(), "alice");
    let fp = s.handle.as_ref().unwrap().fingerprint();
    {
        let mut ca = login(s.addr(), &a, 0);
        for i in 0..60 {
            ca.send(&ClientMsg::Say {
                room: "#lobby",
                text: &format!("msg {i}"),
            });
            message_text(&mut ca, "echo");
        }
        ca.send(&ClientMsg::Topic {
            room: "#lobby",
            topic: Some("kept"),
        });
        ca.recv_until("topic", |m| matches!(m, ServerMsg::Topic { .. }));
    }
    s.restart();
    assert_eq!(s.handle.as_ref().unwrap().fingerprint(), fp);
    let mut c = Client::connect(s.addr());
    c.send(&ClientMsg::Login {
        user: "alice",
        password: PASSWORD,
        otp: &a.scratch[0],
    });
    assert!(matches!(c.recv().msg(), ServerMsg::LoginOk { .. }));
    let r = c.recv_until("topic", |m| matches!(m, ServerMsg::Topic { .. }));
    assert!(matches!(r.msg(), ServerMsg::Topic { topic: "kept", .. }));
    let mut texts = Vec::new();
    loop {
        let r = c.recv_until("history", |m| matches!(m, ServerMsg::History { .. }));
        let ServerMsg::History { messages, done, .. } = r.msg() else {
            unreachable!()
        };
        texts.extend(messages.iter().map(|m| m.text.to_owned()));
        if done {
            break;
        }
    }
    assert_eq!(texts.len(), 50);
    assert_eq!(texts.first().unwrap(), "msg 10");
    assert_eq!(texts.last().unwrap(), "msg 59");
    // Older ones on request.
    c.send(&ClientMsg::History {
        target: "#lobby",
        before_id: 0,
        limit: 100,
    });
    let r = c.recv_until("history", |m| matches!(m, ServerMsg::History { .. }));
    let ServerMsg::History { messages, .. } = r.msg() else {
        unreachable!()
    };
    assert_eq!(messages.len(), 60);
}

#[test]
fn operators_kick_ban_mute_persisted() {
    let mut s = TestServer::start();
    let op = register(s.addr(), "olga");
    let b = register(s.addr(), "bob");
    chatbox_server::admin::run(
        &s.data_dir(),
        "ChatBox",
        &chatbox_server::admin::Action::Role("olga".into(), "op".into()),
        &mut Vec::new(),
    )
    .unwrap();
    let mut co = login(s.addr(), &op, 0);
    let mut cb = login(s.addr(), &b, 0);
    // Non-ops may not.
    cb.send(&ClientMsg::Kick {
        room: "#lobby",
        user: "olga",
        reason: "",
    });
    cb.expect_error(ErrorCode::NotPermitted);
    co.send(&ClientMsg::Kick {
        room: "#lobby",
        user: "bob",
        reason: "behave",
    });
    cb.recv_until("kicked", |m| {
        matches!(
            m,
            ServerMsg::Presence {
                user: "bob",
                kind: PresenceKind::Kicked,
                text: "behave",
                ..
            }
        )
    });
    cb.send(&ClientMsg::Say {
        room: "#lobby",
        text: "hey",
    });
    cb.expect_error(ErrorCode::NotInRoom);
    cb.send(&ClientMsg::Join { room: "#lobby" });
    cb.recv_until("rejoined", |m| {
        matches!(m, ServerMsg::History { done: true, .. })
    });
    co.send(&ClientMsg::Mute {
        user: "bob",
        seconds: 0,
        reason: "quiet",
    });
    co.recv_until(
        "muted",
        |m| matches!(m, ServerMsg::Info { text } if text.contains("muted")),
    );
    cb.send(&ClientMsg::Say {
        room: "#lobby",
        text: "hey",
    });
    cb.expect_error(ErrorCode::Muted);
    let n: i64 = s
        .db()
        .query_row("SELECT COUNT(*) FROM MUTES WHERE User='bob'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(n, 1);
    co.send(&ClientMsg::Ban {
        user: "bob",
        seconds: 0,
        reason: "spam",
    });
    cb.recv_until("bye", |m| matches!(m, ServerMsg::Bye { .. }));
    cb.expect_closed();
    drop(co);
    // Persisted across a restart: banned at login.
    s.restart();
    let mut c = Client::connect(s.addr());
    c.send(&ClientMsg::Login {
        user: "bob",
        password: PASSWORD,
        otp: &b.scratch[0],
    });
    c.expect_error(ErrorCode::Banned);
    c.expect_closed();
    let mut co = login_with(s.addr(), "olga", &op.scratch[0]);
    co.send(&ClientMsg::Unban { user: "bob" });
    co.recv_until(
        "unbanned",
        |m| matches!(m, ServerMsg::Info { text } if text.contains("unbanned")),
    );
    // Mute survived the restart too.
    let mut cb = login_with(s.addr(), "bob", &b.scratch[1]);
    cb.send(&ClientMsg::Say {
        room: "#lobby",
        text: "hey",
    });
    cb.expect_error(ErrorCode::Muted);
    co.send(&ClientMsg::Unmute { user: "bob" });
    co.recv_until(
        "unmuted",
        |m| matches!(m, ServerMsg::Info { text } if text.contains("unmuted")),
    );
    cb.send(&ClientMsg::Say {
        room: "#lobby",
        text: "thanks",
    });
    message_text(&mut cb, "echo");
    co.send(&ClientMsg::SetMotd { text: "new motd" });
    co.recv_until(
        "motd",
        |m| matches!(m, ServerMsg::Info { text } if text.contains("MOTD")),
    );
    let mut c = Client::connect(s.addr());
    c.send(&ClientMsg::Login {
        user: "bob",
        password: PASSWORD,
        otp: &b.scratch[2],
    });
    let r = c.recv();
    assert!(
        matches!(
            r.msg(),
            ServerMsg::LoginOk {
                motd: "new motd",
                ..
            }
        ),
        "{r:?}"
    );
}

#[test]
fn text_limits_and_sanitising() {
    let s = TestServer::start();
    let a = register(s.addr(), "alice");
    let b = register(s.addr(), "bob");
    let mut ca = login(s.addr(), &a, 0);
    let mut cb = login(s.addr(), &b, 0);
    ca.send(&ClientMsg::Say {
        room: "#lobby",
        text: &"x".repeat(1025),
    });
    ca.expect_error(ErrorCode::TooLong);
    ca.send(&ClientMsg::Say {
        room: "#lobby",
        text: &"y".repeat(1024),
    });
    let (_, _, _, t) = message_text(&mut ca, "echo");
    assert_eq!(t.len(), 1024);
    ca.send(&ClientMsg::Say {
        room: "#lobby",
        text: "\u{1b}[31mred\u{1b}[0m\u{7}\u{1b}]0;pwned\u{7} text\r\n",
    });
    let (_, _, _, t) = message_text(&mut ca, "echo");
    assert_eq!(t, "red text");
    let (_, _, _, t) = message_text(&mut cb, "first");
    assert_eq!(t.len(), 1024);
    let (id, _, _, t) = message_text(&mut cb, "second");
    assert_eq!(t, "red text");
    let stored: String = s
        .db()
        .query_row(
            "SELECT text FROM MESSAGES WHERE id = ?1",
            [id as i64],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stored, "red text");
    ca.send(&ClientMsg::Say {
        room: "#lobby",
        text: "\u{1b}[2J",
    });
    ca.expect_error(ErrorCode::Malformed);
}

#[test]
fn rate_limit_warns_then_disconnects() {
    let s = TestServer::start_with(|c| {
        c.rate_per_sec = 2.0;
        c.rate_burst = 5.0;
        c.rate_violations = 3;
    });
    let a = register(s.addr(), "alice");
    let mut ca = login(s.addr(), &a, 0);
    for i in 0..20 {
        ca.send(&ClientMsg::Say {
            room: "#lobby",
            text: &format!("{i}"),
        });
    }
    ca.expect_error(ErrorCode::RateLimited);
    ca.recv_until(
        "bye",
        |m| matches!(m, ServerMsg::Bye { reason } if reason.contains("rate")),
    );
    ca.expect_closed();
}

/// The limit is announced right after `LoginOk` (issue 13.13), and it is the one enforced: the
/// burst announced goes through (less the login's token), one more at once does not.
#[test]
fn the_rate_limit_is_announced_right_after_login_ok() {
    let s = TestServer::start_with(|c| {
        // One token per 20 s: none comes back while the test runs, even on a loaded machine.
        c.rate_per_sec = 0.05;
        c.rate_burst = 6.0;
    });
    let a = register(s.addr(), "alice");
    let mut c = Client::connect(s.addr());
    c.send(&ClientMsg::Login {
        user: "alice",
        password: PASSWORD,
        otp: &code_at_offset(&a.secret, 0),
    });
    let r = c.recv();
    assert!(matches!(r.msg(), ServerMsg::LoginOk { .. }), "{r:?}");
    let r = c.recv();
    let ServerMsg::RateLimit {
        milli_per_sec,
        burst,
    } = r.msg()
    else {
        panic!("expected RateLimit right after LoginOk, got {r:?}");
    };
    assert_eq!((milli_per_sec, burst), (50, 6));
    c.recv_until("lobby history", |m| {
        matches!(m, ServerMsg::History { done: true, .. })
    });
    for i in 0..burst - 1 {
        c.send(&ClientMsg::Say {
            room: "#lobby",
            text: &format!("{i}"),
        });
        let (_, _, _, t) = message_text(&mut c, "within the burst");
        assert_eq!(t, i.to_string());
    }
    c.send(&ClientMsg::Say {
        room: "#lobby",
        text: "one too many",
    });
    c.expect_error(ErrorCode::RateLimited);
}

#[test]
fn generous_rate_allows_ten_per_second() {
    let s = TestServer::start();
    let a = register(s.addr(), "alice");
    let mut ca = login(s.addr(), &a, 0);
    for i in 0..30 {
        ca.send(&ClientMsg::Say {
            room: "#lobby",
            text: &format!("{i}"),
        });
        let (_, _, _, t) = message_text(&mut ca, "echo");
        assert_eq!(t, i.to_string());
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn raw(addr: core::net::SocketAddr, bytes: &[u8]) -> bool {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(bytes);
    let mut buf = [0u8; 256];
    // The server closes: read returns 0 or an error (reset), not a timeout.
    loop {
        match std::io::Read::read(&mut s, &mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) => {
                return e.kind() != std::io::ErrorKind::WouldBlock
                    && e.kind() != std::io::ErrorKind::TimedOut;
            }
        }
    }
}

#[test]
fn hostile_input_closes_only_that_connection() {
    let s = TestServer::start();
    let a = register(s.addr(), "alice");
    let mut ca = login(s.addr(), &a, 0);
    // Zero-length frame, oversized frame, garbage handshake, wrong version.
    assert!(raw(s.addr(), &[0, 0]));
    assert!(raw(s.addr(), &[0xff, 0xff, 1, 2, 3]));
    assert!(raw(s.addr(), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    let mut hello = vec![0, 33];
    hello.extend_from_slice(&[9u8; 32]);
    hello.push(2);
    assert!(raw(s.addr(), &hello));
    // Truncated frame then EOF.
    {
        let mut t = std::net::TcpStream::connect(s.addr()).unwrap();
        t.write_all(&[0, 33, 1, 2]).unwrap();
    }
    // Bad MAC after the handshake.
    let mut c = Client::connect(s.addr());
    let mut out = vec![0u8; 128];
    let mut pt = [0u8; 16];
    let n = ClientMsg::Ping { token: 5 }.encode(&mut pt).unwrap();
    let len = c.session.seal(&pt[..n], &mut out).unwrap();
    out[len - 1] ^= 1;
    c.stream.write_all(&out[..len]).unwrap();
    c.expect_closed();
    // Replay: the same sealed record twice.
    let mut c = Client::connect(s.addr());
    let len = c.session.seal(&pt[..n], &mut out).unwrap();
    c.stream.write_all(&out[..len]).unwrap();
    c.stream.write_all(&out[..len]).unwrap();
    assert!(matches!(c.recv().msg(), ServerMsg::Pong { token: 5 }));
    c.expect_closed();
    // Undecodable plaintext (unknown tag, invalid UTF-8) inside a good record: error, kept.
    let mut c = Client::connect(s.addr());
    c.send_plain(&[0x7f]);
    c.expect_error(ErrorCode::Malformed);
    c.send_plain(&[0x13, 0, 2, 0xff, 0xfe]);
    c.expect_error(ErrorCode::Malformed);
    c.ping(3);
    // The logged-in user never noticed.
    ca.ping(42);
    ca.send(&ClientMsg::Say {
        room: "#lobby",
        text: "still fine",
    });
    message_text(&mut ca, "echo");
}

#[test]
fn handshake_timeout_closes_silent_connections() {
    let s = TestServer::start_with(|c| c.handshake_timeout = Duration::from_millis(300));
    assert!(raw(s.addr(), &[]));
}

#[test]
fn shutdown_says_bye_to_clients() {
    let mut s = TestServer::start();
    let a = register(s.addr(), "alice");
    let mut ca = login(s.addr(), &a, 0);
    let mut anon = Client::connect(s.addr());
    anon.ping(1);
    s.stop();
    ca.recv_until("bye", |m| {
        matches!(
            m,
            ServerMsg::Bye {
                reason: "server shutting down"
            }
        )
    });
    anon.recv_until("bye", |m| {
        matches!(
            m,
            ServerMsg::Bye {
                reason: "server shutting down"
            }
        )
    });
    assert!(s.log("info.log").contains("server stopped"));
}

#[test]
fn slow_reader_is_disconnected_not_waited_for() {
    let s = TestServer::start_with(|c| {
        c.outbound_queue = 4;
        c.rate_burst = 1_000_000.0;
        c.rate_per_sec = 1_000_000.0;
        c.metrics = Some(core::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    });
    let a = register(s.addr(), "alice");
    let b = register(s.addr(), "bob");
    let mut ca = login(s.addr(), &a, 0);
    let _cb = login(s.addr(), &b, 0); // never reads again
    let text = "z".repeat(1000);
    let mut sent = 0;
    while !s.log("info.log").contains("slow reader") {
        assert!(sent < 40_000, "slow reader never cut off");
        for _ in 0..200 {
            ca.send(&ClientMsg::Say {
                room: "#lobby",
                text: &text,
            });
        }
        for _ in 0..200 {
            ca.recv_until("echo", |m| matches!(m, ServerMsg::Message(_)));
        }
        sent += 200;
    }
    // Alice is still served.
    ca.ping(1);
    // And the cut shows in the metrics.
    let m = s.handle.as_ref().unwrap().metrics_addr().unwrap();
    let mut http = std::net::TcpStream::connect(m).unwrap();
    http.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut body = String::new();
    std::io::Read::read_to_string(&mut http, &mut body).unwrap();
    assert!(
        body.contains("\nchatbox_slow_reader_disconnects_total 1\n"),
        "{body}"
    );
}

/// A reader that stops reading until its socket and the server's are full, then reads again,
/// gets every message in order and once: the deliveries the sender's task could not write at
/// once wait (in the connection's outlet and its queue) and its own task writes them as the
/// socket drains.
#[test]
fn a_paused_reader_gets_everything_in_order_once_it_reads_again() {
    const N: usize = 3_000;
    let s = TestServer::start_with(|c| {
        c.outbound_queue = N + 100;
        c.rate_burst = 1_000_000.0;
        c.rate_per_sec = 1_000_000.0;
    });
    let a = register(s.addr(), "alice");
    let b = register(s.addr(), "bob");
    let mut ca = login(s.addr(), &a, 0);
    // Bob's window is a few kilobytes: the server's side fills after a few records.
    let mut cb = Client::connect_with_recv_buffer(s.addr(), 4096);
    cb.send(&ClientMsg::Login {
        user: "bob",
        password: PASSWORD,
        otp: &code_at_offset(&b.secret, 0),
    });
    cb.recv_until("login", |m| matches!(m, ServerMsg::LoginOk { .. }));
    cb.recv_until("lobby history", |m| {
        matches!(m, ServerMsg::History { done: true, .. })
    });
    let pad = "p".repeat(900);
    for chunk in 0..N / 100 {
        for i in chunk * 100..(chunk + 1) * 100 {
            ca.send(&ClientMsg::Say {
                room: "#lobby",
                text: &format!("{i:05} {pad}"),
            });
        }
        for _ in 0..100 {
            ca.recv_until("echo", |m| matches!(m, ServerMsg::Message(_)));
        }
    }
    // Everything was accepted (3 MB for bob, far past both sockets' buffers); now bob reads.
    for i in 0..N {
        let (_, target, from, text) = message_text(&mut cb, "alice's message");
        assert_eq!((target.as_str(), from.as_str()), ("#lobby", "alice"));
        assert_eq!(
            text.get(..5),
            Some(format!("{i:05}").as_str()),
            "message {i}"
        );
    }
    cb.ping(7);
    assert!(!s.log("info.log").contains("slow reader"));
}
