//! Hostile clients against the real server over 127.0.0.1. Every attack checks three things:
//! the attacker gets the expected outcome, an honest pair of users in #lobby keeps chatting,
//! and the stored data (REGISTERED and MESSAGES rows, read-only from the SQLite file) did not
//! change. docs/SECURITY-TESTS.md has the table attack → outcome → test.
//!
//! chat.rs and auth.rs already cover the first layer (a zero/oversized frame before the
//! handshake, one bad MAC, an immediate replay, SQL metacharacters at registration, sequential
//! code reuse, one lockout, two connections per IP); these go further.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/binserver.rs"]
mod binserver;
use chatbox_server::test_util as common;

use core::net::{Ipv4Addr, SocketAddr};
use core::time::Duration;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Instant;

use chatbox_core::frame::MAX_WIRE_LEN;
use chatbox_core::noise::{StaticKeypair, fingerprint};
use chatbox_core::proto::{ClientMsg, ErrorCode, ServerMsg};
use chatbox_core::session::{Input, Session};
use chatbox_server::Config;
use common::*;
use rusqlite::OpenFlags;
use rusqlite::types::Value;

// ---------------------------------------------------------------------------------------------
// Fixture: a server with short timeouts and an honest pair chatting in #lobby.

fn quick(c: &mut Config) {
    c.handshake_timeout = Duration::from_millis(600);
    c.login_timeout = Duration::from_millis(2500);
    c.idle_timeout = Duration::from_secs(30);
    c.write_timeout = Duration::from_secs(1);
}

struct Room {
    s: TestServer,
    alice: Account,
    ca: Client,
    cb: Client,
    said: u32,
}

impl Room {
    fn new() -> Room {
        Room::with(|_| {})
    }

    fn with(f: impl FnOnce(&mut Config)) -> Room {
        let s = TestServer::start_with(|c| {
            quick(c);
            f(c);
        });
        let alice = register(s.addr(), "alice");
        let bob = register(s.addr(), "bob");
        let ca = login(s.addr(), &alice, 0);
        let cb = login(s.addr(), &bob, 0);
        let mut room = Room {
            s,
            alice,
            ca,
            cb,
            said: 0,
        };
        room.honest();
        room
    }

    fn addr(&self) -> SocketAddr {
        self.s.addr()
    }

    /// Alice says a line; her echo (the acknowledgement) and Bob's copy arrive; Bob answers
    /// privately and Alice gets it. Texts start with `honest-` so snapshots can tell them apart.
    fn honest(&mut self) {
        self.said += 1;
        let text = format!("honest-{}", self.said);
        self.ca.send(&ClientMsg::Say {
            room: "#lobby",
            text: &text,
        });
        for c in [&mut self.ca, &mut self.cb] {
            c.recv_until(
                "honest line",
                |m| matches!(m, ServerMsg::Message(cm) if cm.text == text),
            );
        }
        let reply = format!("honest-reply-{}", self.said);
        self.cb.send(&ClientMsg::Private {
            to: "alice",
            text: &reply,
        });
        self.ca.recv_until(
            "honest reply",
            |m| matches!(m, ServerMsg::Message(cm) if cm.text == reply),
        );
        // Keep both idle timers fresh.
        self.cb.ping(u64::from(self.said));
    }

    fn snapshot(&self) -> Snapshot {
        snapshot(&self.s.data_dir().join("chatbox.db"))
    }
}

impl Drop for Room {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let info = self.s.log("info.log");
            let tail: Vec<&str> = info.lines().rev().take(25).collect();
            eprintln!("--- info.log (last lines, newest first) ---");
            for l in tail {
                eprintln!("{l}");
            }
        }
    }
}

/// REGISTERED rows (the columns a login does not touch) and MESSAGES rows (all columns)
/// except the honest pair's.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    registered: Vec<String>,
    messages: Vec<String>,
}

fn rows(c: &rusqlite::Connection, sql: &str) -> Vec<String> {
    let mut st = c.prepare(sql).unwrap();
    let n = st.column_count();
    st.query_map([], |r| {
        let mut line = String::new();
        for i in 0..n {
            let v: Value = r.get(i)?;
            line.push_str(&format!("{v:?}|"));
        }
        Ok(line)
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

fn snapshot(db: &std::path::Path) -> Snapshot {
    let c = rusqlite::Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .unwrap();
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    Snapshot {
        // Not ip_port_last, online, totp_last_step: an honest login changes those.
        registered: rows(
            &c,
            "SELECT User, password, statut, totp_sealed, role, failures, locked_until, created,
             pending_reg FROM REGISTERED ORDER BY User",
        ),
        messages: rows(
            &c,
            "SELECT * FROM MESSAGES WHERE text NOT LIKE 'honest-%' ORDER BY id",
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Raw-socket helpers.

fn raw_connect(addr: SocketAddr) -> TcpStream {
    let t = TcpStream::connect(addr).unwrap();
    t.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    t
}

/// Waits until the peer closes (EOF or reset); returns how long it took, or None after `max`.
fn closed_within(t: &mut TcpStream, max: Duration) -> Option<Duration> {
    let start = Instant::now();
    t.set_read_timeout(Some(max)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match t.read(&mut buf) {
            Ok(0) => return Some(start.elapsed()),
            Ok(_) => {
                if start.elapsed() > max {
                    return None;
                }
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return None;
            }
            Err(_) => return Some(start.elapsed()),
        }
    }
}

fn assert_closed(c: &mut Client, what: &str) {
    assert!(
        closed_within(&mut c.stream, Duration::from_secs(5)).is_some(),
        "{what}: the server kept the connection"
    );
}

/// Deterministic pseudo-random bytes (xorshift), so a failure can be replayed.
fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[3]
        })
        .collect()
}

fn sealed(c: &mut Client, msg: &ClientMsg<'_>) -> Vec<u8> {
    let mut pt = vec![0u8; 20_000];
    let n = msg.encode(&mut pt).unwrap();
    let mut out = vec![0u8; n + 64];
    let len = c.session.seal(&pt[..n], &mut out).unwrap();
    out.truncate(len);
    out
}

// ---------------------------------------------------------------------------------------------
// Framing and records.

#[test]
fn random_bytes_before_and_after_the_handshake() {
    let mut room = Room::new();
    let before = room.snapshot();
    for seed in 1..=12u64 {
        let len = [1, 2, 3, 33, 35, 100, 4096, 20_000][usize::try_from(seed).unwrap() % 8];
        // Before: raw noise instead of message 1.
        let mut t = raw_connect(room.addr());
        let _ = t.write_all(&noise(seed, len));
        assert!(
            closed_within(&mut t, Duration::from_secs(3)).is_some(),
            "seed {seed} len {len}: pre-handshake noise not closed"
        );
        // After: a good handshake, then noise instead of a record.
        let mut c = Client::connect(room.addr());
        let _ = c.stream.write_all(&noise(seed ^ 0xdead, len));
        assert_closed(
            &mut c,
            &format!("post-handshake noise seed {seed} len {len}"),
        );
    }
    assert_eq!(room.snapshot(), before);
    room.honest();
}

#[test]
fn zero_huge_and_truncated_lengths_after_the_handshake() {
    let mut room = Room::new();
    let before = room.snapshot();
    for (what, bytes) in [
        ("zero length", vec![0u8, 0]),
        ("16401", vec![0x40, 0x11, 0, 0, 0]),
        ("65535", vec![0xff, 0xff, 0, 0]),
        ("below the tag size", vec![0, 3, 1, 2, 3]),
    ] {
        let mut c = Client::connect(room.addr());
        c.stream.write_all(&bytes).unwrap();
        assert_closed(&mut c, what);
    }
    // Truncated: the header promises 100 bytes, 40 come, then EOF from the client side...
    let mut c = Client::connect(room.addr());
    c.stream.write_all(&[0, 100]).unwrap();
    c.stream.write_all(&[7u8; 40]).unwrap();
    c.stream.shutdown(std::net::Shutdown::Write).unwrap();
    assert_closed(&mut c, "truncated then EOF");
    // ...or the rest never comes: closed at the login timeout, not held forever.
    let mut c = Client::connect(room.addr());
    c.stream.write_all(&[0, 100, 1, 2, 3]).unwrap();
    let took = closed_within(&mut c.stream, Duration::from_secs(5)).expect("truncated held");
    assert!(took < Duration::from_secs(4), "{took:?}");
    // A record truncated by the length header (one byte short of its real size): MAC fails.
    let mut c = Client::connect(room.addr());
    let mut rec = sealed(&mut c, &ClientMsg::Ping { token: 1 });
    let l = u16::from_be_bytes([rec[0], rec[1]]) - 1;
    rec[..2].copy_from_slice(&l.to_be_bytes());
    c.stream.write_all(&rec).unwrap();
    assert_closed(&mut c, "length one short");
    assert_eq!(room.snapshot(), before);
    room.honest();
}

#[test]
fn bit_flips_anywhere_in_a_record_end_the_session() {
    let mut room = Room::new();
    let before = room.snapshot();
    let register = ClientMsg::Register {
        user: "flipped",
        password: PASSWORD,
    };
    // Enough filler that any flipped length (≤ 16 400) completes the frame at once.
    let filler = vec![0u8; 16_500];
    let mut rec_len = 0;
    let mut bits = Vec::new();
    // All 8 bits of the first 6 bytes (length header, first ciphertext bytes), then one bit
    // of every byte (rotating position) through the ciphertext and the tag.
    for bit in 0.. {
        if rec_len > 0 && bit >= rec_len * 8 {
            break;
        }
        if bit < 48 || bit % 8 == (bit / 8) % 8 {
            bits.push(bit);
        }
        if rec_len == 0 {
            let mut c = Client::connect(room.addr());
            rec_len = sealed(&mut c, &register).len();
        }
    }
    for &bit in &bits {
        let mut c = Client::connect(room.addr());
        let mut rec = sealed(&mut c, &register);
        rec[bit / 8] ^= 1 << (bit % 8);
        c.stream.write_all(&rec).unwrap();
        let _ = c.stream.write_all(&filler);
        // The server must close without ever answering (a RegisterStarted would mean the
        // flipped record was accepted).
        let mut buf = [0u8; 64];
        c.stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        match c.stream.read(&mut buf) {
            Ok(0) | Err(_) => {}
            Ok(n) => panic!("bit {bit} of {rec_len} flipped: the server answered {n} bytes"),
        }
    }
    assert!(bits.len() > 60, "{} bits tried", bits.len());
    assert_eq!(
        room.snapshot(),
        before,
        "a flipped record changed the database"
    );
    room.honest();
}

#[test]
fn dropped_reordered_replayed_and_foreign_records_end_the_session() {
    let mut room = Room::new();
    let before = room.snapshot();
    let say = |t: &'static str| ClientMsg::Say {
        room: "#lobby",
        text: t,
    };
    // Dropped: the first record never arrives, the second does.
    let mut c = login(room.addr(), &room.alice, 1);
    let _r1 = sealed(&mut c, &say("dropped-1"));
    let r2 = sealed(&mut c, &say("dropped-2"));
    c.stream.write_all(&r2).unwrap();
    assert_closed(&mut c, "dropped record");
    // Reordered: second then first.
    let mut c = login_with(room.addr(), "alice", &room.alice.scratch[0]);
    let r1 = sealed(&mut c, &say("reordered-1"));
    let r2 = sealed(&mut c, &say("reordered-2"));
    c.stream.write_all(&r2).unwrap();
    c.stream.write_all(&r1).unwrap();
    assert_closed(&mut c, "reordered records");
    // Replayed later: three good records, then the first again.
    let mut c = login_with(room.addr(), "alice", &room.alice.scratch[1]);
    let r1 = sealed(&mut c, &ClientMsg::Ping { token: 1 });
    c.stream.write_all(&r1).unwrap();
    c.recv_until("pong 1", |m| matches!(m, ServerMsg::Pong { token: 1 }));
    c.ping(2);
    c.ping(3);
    c.stream.write_all(&r1).unwrap();
    assert_closed(&mut c, "record replayed later");
    // Foreign: a record sealed for another session (another handshake) is refused.
    let mut a = Client::connect(room.addr());
    let mut b = Client::connect(room.addr());
    let ra = sealed(&mut a, &ClientMsg::Ping { token: 5 });
    b.stream.write_all(&ra).unwrap();
    assert_closed(&mut b, "record from another session");
    a.stream.write_all(&ra).unwrap();
    a.recv_until("own pong", |m| matches!(m, ServerMsg::Pong { token: 5 }));
    // A handshake message replayed into an established session.
    let mut c = Client::connect(room.addr());
    let mut hello = vec![0u8; 64];
    let n = Session::client(random32())
        .poll_transmit(&mut hello)
        .unwrap();
    c.stream.write_all(&hello[..n]).unwrap();
    assert_closed(&mut c, "second handshake message");
    let after = room.snapshot();
    // Nothing from the attacking sessions was stored; REGISTERED changed only by the logins
    // (last step, last address, online) — compare the messages strictly.
    assert_eq!(after.messages, before.messages);
    assert_eq!(after.registered.len(), before.registered.len());
    room.honest();
}

// ---------------------------------------------------------------------------------------------
// A man in the middle relaying with its own key.

/// Accepts one client, terminates its handshake with `mitm_key`, opens its own session to the
/// real server, and relays plaintext records both ways until either side closes.
fn spawn_mitm(server: SocketAddr) -> (SocketAddr, [u8; 32]) {
    let mitm_key = StaticKeypair::from_secret(random32());
    let public = mitm_key.public();
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let Ok((mut victim, _)) = listener.accept() else {
            return;
        };
        victim
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut up = Client::connect(server);
        let mut s = Session::server(&mitm_key, random32(), b"ChatBox server (not really)").unwrap();
        let mut buf = vec![0u8; MAX_WIRE_LEN * 2];
        let mut len = 0;
        let mut out = vec![0u8; MAX_WIRE_LEN + 64];
        loop {
            let Ok(n) = victim.read(&mut buf[len..]) else {
                return;
            };
            if n == 0 {
                return;
            }
            len += n;
            loop {
                let (consumed, pt) = match s.handle_input(&mut buf[..len]) {
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
                match pt {
                    None => {
                        let n = s.poll_transmit(&mut out).unwrap();
                        victim.write_all(&out[..n]).unwrap();
                    }
                    Some(pt) => {
                        // Relay up, then relay every answer down (the MITM reads all of it).
                        up.send_plain(&pt);
                        while let Ok(r) = up.try_recv(Duration::from_millis(300)) {
                            let n = s.seal(&r.0, &mut out).unwrap();
                            if victim.write_all(&out[..n]).is_err() {
                                return;
                            }
                        }
                    }
                }
            }
        }
    });
    (addr, public)
}

#[test]
fn mitm_with_its_own_key_is_detected_by_the_pinned_key() {
    let mut room = Room::new();
    let before = room.snapshot();
    let real = room.s.handle.as_ref().unwrap().public_key();
    let real_fp = room.s.handle.as_ref().unwrap().fingerprint();
    let (mitm_addr, mitm_pub) = spawn_mitm(room.addr());
    let mut victim = Client::connect(mitm_addr);
    // The relay works (that is the danger): a Ping goes through to the real server.
    victim.ping(31337);
    // But the key the victim's session authenticated is the MITM's, not the pinned one.
    let seen = *victim.session.remote_static().unwrap();
    assert_eq!(seen, mitm_pub);
    assert_ne!(seen, real, "MITM key equals the server key");
    let seen_fp = fingerprint(&seen);
    assert_ne!(seen_fp.as_str(), real_fp, "fingerprints must differ");
    assert_eq!(fingerprint(&real).as_str(), real_fp);
    assert!(seen_fp.starts_with("SHA256:") && seen_fp.len() == real_fp.len());
    // A client that checks the pin stops here; nothing was sent on the victim's behalf.
    drop(victim);
    // Directly, the pinned key matches.
    let c = Client::connect(room.addr());
    assert_eq!(c.session.remote_static(), Some(&real));
    assert_eq!(room.snapshot(), before);
    room.honest();
}

// ---------------------------------------------------------------------------------------------
// Malformed content inside good records.

fn str_field(s: &[u8]) -> Vec<u8> {
    let mut v = u16::try_from(s.len()).unwrap().to_be_bytes().to_vec();
    v.extend_from_slice(s);
    v
}

#[test]
fn malformed_fields_and_invalid_utf8_get_malformed_and_store_nothing() {
    let mut room = Room::new();
    let before = room.snapshot();
    let bad = b"\xff\xfe\xc0\xafok";
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut reg = vec![0x01];
    reg.extend(str_field(bad));
    reg.extend(str_field(PASSWORD.as_bytes()));
    cases.push(("Register, bad UTF-8 user", reg));
    let mut reg = vec![0x01];
    reg.extend(str_field(b"mallory"));
    reg.extend(str_field(b"\xed\xa0\x80surrogate pw"));
    cases.push(("Register, surrogate in password", reg));
    let mut li = vec![0x03];
    li.extend(str_field(b"alice"));
    li.extend(str_field(bad));
    li.extend(str_field(b"123456"));
    cases.push(("Login, bad UTF-8 password", li));
    cases.push(("unknown tag", vec![0x7e, 0, 0]));
    cases.push(("server tag from a client", vec![0x85, 0, 0]));
    cases.push(("empty record body", vec![]));
    cases.push((
        "string longer than the record",
        vec![0x13, 0xff, 0xff, b'#'],
    ));
    cases.push(("truncated u64", vec![0x20, 0, 0, 0]));
    cases.push(("trailing bytes", vec![0x20, 0, 0, 0, 0, 0, 0, 0, 1, 0]));
    cases.push(("topic flag out of range", {
        let mut v = vec![0x19];
        v.extend(str_field(b"#lobby"));
        v.push(7);
        v
    }));
    // Anonymous and logged in alike: Malformed, connection kept, nothing stored.
    let mut anon = Client::connect(room.addr());
    let mut user = login(room.addr(), &room.alice, 1);
    let mut say = vec![0x10];
    say.extend(str_field(b"#lobby"));
    say.extend(str_field(bad));
    cases.push(("Say, bad UTF-8 text", say));
    let mut pm = vec![0x12];
    pm.extend(str_field(b"bob"));
    pm.extend(str_field(b"over\xf5\x80\x80\x80long"));
    cases.push(("Private, invalid 4-byte sequence", pm));
    for (what, pt) in &cases {
        for c in [&mut anon, &mut user] {
            c.send_plain(pt);
            let r = c.recv_until(what, |m| matches!(m, ServerMsg::Error { .. }));
            assert_eq!(r.error_code(), Some(ErrorCode::Malformed as u16), "{what}");
        }
    }
    anon.ping(1);
    user.ping(2);
    // The failed "Login" with bad UTF-8 never counted as a failure for alice.
    let after = room.snapshot();
    assert_eq!(after.messages, before.messages);
    let failures: i64 = room
        .s
        .db()
        .query_row(
            "SELECT failures FROM REGISTERED WHERE User='alice'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(failures, 0);
    room.honest();
}

#[test]
fn ansi_escapes_and_control_characters_in_names_and_text() {
    let mut room = Room::new();
    let evil = "\u{1b}[2J\u{1b}]0;owned\u{7}\u{9b}31m";
    let mut anon = Client::connect(room.addr());
    for name in [
        "\u{1b}[31malice",
        "alice\u{1b}[0m",
        "al\rice",
        "al\u{0}ice",
        "al\u{202e}ice",
        "alice\n",
    ] {
        anon.send(&ClientMsg::Register {
            user: name,
            password: PASSWORD,
        });
        anon.expect_error(ErrorCode::InvalidUsername);
    }
    // A login with an escape-laden name: generic refusal, and the log line is one clean line.
    let mut l = Client::connect(room.addr());
    l.send(&ClientMsg::Login {
        user: "\u{1b}[2Jroot\nlogin established user=root",
        password: PASSWORD,
        otp: "123456",
    });
    l.expect_error(ErrorCode::InvalidCredentials);
    room.s.wait_for("failure logged", |s| {
        s.log("credentials.log")
            .contains("reason=invalid user name")
    });
    let creds = room.s.log("credentials.log");
    assert!(!creds.contains('\u{1b}'), "escape in credentials.log");
    assert!(
        !creds.contains("login established user=root"),
        "log injection"
    );
    // Rooms with escapes are refused; escapes in every text field are stripped for Bob.
    room.ca.send(&ClientMsg::Join { room: "#\u{1b}[2J" });
    room.ca.expect_error(ErrorCode::InvalidRoom);
    room.ca.send(&ClientMsg::Action {
        target: "#lobby",
        text: &format!("waves{evil}"),
    });
    let r = room
        .cb
        .recv_until("action", |m| matches!(m, ServerMsg::Message(_)));
    let ServerMsg::Message(m) = r.msg() else {
        unreachable!()
    };
    assert_eq!(m.text, "waves");
    room.ca.send(&ClientMsg::Private {
        to: "bob",
        text: &format!("psst{evil}\u{7}\u{8}\u{7f}"),
    });
    let r = room
        .cb
        .recv_until("pm", |m| matches!(m, ServerMsg::Message(_)));
    let ServerMsg::Message(m) = r.msg() else {
        unreachable!()
    };
    assert_eq!(m.text, "psst");
    room.ca.send(&ClientMsg::Topic {
        room: "#lobby",
        topic: Some(&format!("top{evil}ic")),
    });
    let r = room
        .cb
        .recv_until("topic", |m| matches!(m, ServerMsg::Topic { .. }));
    let ServerMsg::Topic { topic, .. } = r.msg() else {
        unreachable!()
    };
    assert!(
        !topic.chars().any(char::is_control),
        "control char in topic {topic:?}"
    );
    room.ca.send(&ClientMsg::Away {
        text: &format!("gone{evil}"),
    });
    room.cb.send(&ClientMsg::Whois { user: "alice" });
    let r = room
        .cb
        .recv_until("whois", |m| matches!(m, ServerMsg::Whois { .. }));
    let ServerMsg::Whois { away, .. } = r.msg() else {
        unreachable!()
    };
    assert!(
        !away.chars().any(char::is_control),
        "control char in away {away:?}"
    );
    room.ca.send(&ClientMsg::Away { text: "" });
    // Nothing stored carries a control character; the chat log has one line per message.
    let texts = rows(&room.s.db(), "SELECT text FROM MESSAGES");
    for t in &texts {
        assert!(!t.contains('\u{1b}') && !t.contains('\u{7}'), "{t}");
    }
    room.honest();
    room.s.wait_for("chat log lines", |s| {
        s.log("chat.log").lines().count() >= texts.len()
    });
    assert!(!room.s.log("chat.log").contains('\u{1b}'));
}

/// Every character `chatbox_core::text` promises to remove: line/paragraph separators and NEL,
/// zero-width and format characters, bidi controls, tags and a default-ignorable filler.
/// (Variation selectors are kept once after a visible character; a text of nothing but them is
/// checked as empty below.)
const HIDDEN: &[char] = &[
    '\u{2028}',
    '\u{2029}',
    '\u{85}',
    '\u{200B}',
    '\u{200C}',
    '\u{200D}',
    '\u{200E}',
    '\u{200F}',
    '\u{2060}',
    '\u{2061}',
    '\u{2062}',
    '\u{2063}',
    '\u{2064}',
    '\u{FEFF}',
    '\u{202A}',
    '\u{202B}',
    '\u{202C}',
    '\u{202D}',
    '\u{202E}',
    '\u{2066}',
    '\u{2067}',
    '\u{2068}',
    '\u{2069}',
    '\u{061C}',
    '\u{180E}',
    '\u{206A}',
    '\u{206F}',
    '\u{FFF9}',
    '\u{FFFB}',
    '\u{E0001}',
    '\u{E0041}',
    '\u{E007F}',
    '\u{3164}',
];

fn has_hidden(s: &str) -> bool {
    s.chars()
        .any(|c| HIDDEN.contains(&c) || chatbox_core::text::is_hidden_or_separator(c))
}

#[test]
fn unicode_separators_and_invisible_characters_in_every_text() {
    let mut room = Room::new();
    let h: String = HIDDEN.iter().collect();
    // A line that, split at U+2028 the Unicode way, would read as a second, forged event.
    let forged = format!("one{h}say #lobby eve forged");
    let olga = register(room.addr(), "olga");
    chatbox_server::admin::run(
        &room.s.data_dir(),
        "ChatBox",
        &chatbox_server::admin::Action::Role("olga".into(), "op".into()),
        &mut Vec::new(),
    )
    .unwrap();
    let mut co = login(room.addr(), &olga, 0);
    let message = |c: &mut Client, what: &str| -> String {
        let r = c.recv_until(what, |m| matches!(m, ServerMsg::Message(_)));
        let ServerMsg::Message(m) = r.msg() else {
            unreachable!()
        };
        m.text.to_owned()
    };
    room.ca.send(&ClientMsg::Say {
        room: "#lobby",
        text: &forged,
    });
    assert_eq!(message(&mut room.cb, "say"), "onesay #lobby eve forged");
    room.ca.send(&ClientMsg::Action {
        target: "#lobby",
        text: &format!("wa{h}ves"),
    });
    assert_eq!(message(&mut room.cb, "action"), "waves");
    room.ca.send(&ClientMsg::Private {
        to: "bob",
        text: &format!("{h}ps{h}st{h}"),
    });
    assert_eq!(message(&mut room.cb, "private"), "psst");
    // Only invisible characters (and spaces): refused like an empty message, in every kind.
    for text in [
        h.as_str(),
        "\u{200B}",
        " \u{FEFF} \u{2028} ",
        "\u{FE0F}\u{FE0F}",
    ] {
        room.ca.send(&ClientMsg::Say {
            room: "#lobby",
            text,
        });
        room.ca.expect_error(ErrorCode::Malformed);
        room.ca.send(&ClientMsg::Action {
            target: "#lobby",
            text,
        });
        room.ca.expect_error(ErrorCode::Malformed);
        room.ca.send(&ClientMsg::Private { to: "bob", text });
        room.ca.expect_error(ErrorCode::Malformed);
    }
    // Topic, away (an invisible-only away text is "back"), part and kick reasons.
    room.ca.send(&ClientMsg::Topic {
        room: "#lobby",
        topic: Some(&format!("top{h}ic")),
    });
    let r = room
        .cb
        .recv_until("topic", |m| matches!(m, ServerMsg::Topic { .. }));
    let ServerMsg::Topic { topic, .. } = r.msg() else {
        unreachable!()
    };
    assert_eq!(topic, "topic");
    let presence = |c: &mut Client, what: &str| -> (u8, String) {
        let r = c.recv_until(what, |m| {
            matches!(
                m,
                ServerMsg::Presence {
                    user: "alice" | "bob",
                    ..
                }
            )
        });
        let ServerMsg::Presence { kind, text, .. } = r.msg() else {
            unreachable!()
        };
        (kind as u8, text.to_owned())
    };
    room.ca.send(&ClientMsg::Away {
        text: &format!("gone{h}"),
    });
    assert_eq!(presence(&mut room.cb, "away"), (3, "gone".to_owned()));
    room.ca.send(&ClientMsg::Away { text: &h });
    assert_eq!(presence(&mut room.cb, "back"), (4, String::new()));
    room.ca.send(&ClientMsg::Join { room: "#side" });
    // Alice is in before Bob joins: otherwise Bob may see her join before her part.
    room.ca.recv_until("alice joined", |m| {
        matches!(m, ServerMsg::History { done: true, .. })
    });
    room.cb.send(&ClientMsg::Join { room: "#side" });
    room.cb.recv_until("joined", |m| {
        matches!(m, ServerMsg::History { done: true, .. })
    });
    room.ca.send(&ClientMsg::Part {
        room: "#side",
        reason: &format!("bye{h}now"),
    });
    assert_eq!(presence(&mut room.cb, "part"), (1, "byenow".to_owned()));
    co.send(&ClientMsg::Kick {
        room: "#side",
        user: "bob",
        reason: &format!("{h}out{h}"),
    });
    assert_eq!(presence(&mut room.cb, "kicked"), (5, "out".to_owned()));
    // MOTD: cleaned before it is stored and before the next login sees it.
    co.send(&ClientMsg::SetMotd {
        text: &format!("mo{h}td"),
    });
    co.recv_until("motd set", |m| matches!(m, ServerMsg::Info { .. }));
    let mut again = Client::connect(room.addr());
    again.send(&ClientMsg::Login {
        user: "olga",
        password: PASSWORD,
        otp: &olga.scratch[0],
    });
    let r = again.recv_until("login", |m| matches!(m, ServerMsg::LoginOk { .. }));
    let ServerMsg::LoginOk { motd, .. } = r.msg() else {
        unreachable!()
    };
    assert_eq!(motd, "motd");
    // Nothing stored or logged holds one of them.
    let db = room.s.db();
    let stored = [
        rows(&db, "SELECT text FROM MESSAGES"),
        rows(&db, "SELECT topic FROM TOPICS"),
        rows(&db, "SELECT value FROM SETTINGS"),
    ]
    .concat();
    assert!(
        stored
            .iter()
            .any(|t| t.contains("onesay #lobby eve forged"))
    );
    assert!(stored.iter().any(|t| t.contains("motd")));
    for t in &stored {
        assert!(!has_hidden(t), "stored {t:?}");
    }
    room.honest();
    room.s
        .wait_for("chat log lines", |s| s.log("chat.log").contains("psst"));
    let log = room.s.log("chat.log");
    for line in log.lines() {
        // `text<TAB>tag`: the tab is the log's own separator.
        let text = line.rsplit_once('\t').map_or(line, |(t, _)| t);
        assert!(!has_hidden(text), "chat.log line {line:?}");
    }
    assert_eq!(
        log.lines().filter(|l| l.contains("forged")).count(),
        1,
        "one chat.log line for the forged message"
    );
}

#[test]
fn sql_metacharacters_and_unicode_lookalike_user_names() {
    let mut room = Room::new();
    let before = room.snapshot();
    let names = [
        "alice'--",
        "alice\" OR \"1\"=\"1",
        "a'; DELETE FROM MESSAGES; --",
        "alice%",
        "_lice",
        "\u{430}lice",   // Cyrillic а
        "\u{ff41}lice",  // fullwidth ａ
        "alice\u{200b}", // zero-width space
        "alic\u{0435}",  // Cyrillic е
        "ALİCE",         // dotted capital I
        "alice\u{301}",  // combining accent
        "аlice",
    ];
    let mut c = Client::connect(room.addr());
    for name in names {
        c.send(&ClientMsg::Register {
            user: name,
            password: PASSWORD,
        });
        let r = c.recv_until(name, |m| matches!(m, ServerMsg::Error { .. }));
        assert_eq!(
            r.error_code(),
            Some(ErrorCode::InvalidUsername as u16),
            "{name:?}"
        );
    }
    // As message targets and whois: no such user (never a match on alice via LIKE or folding).
    for name in names {
        room.cb.send(&ClientMsg::Whois { user: name });
        let r = room.cb.recv_until(name, |m| {
            matches!(m, ServerMsg::Error { .. } | ServerMsg::Whois { .. })
        });
        assert!(
            matches!(r.msg(), ServerMsg::Error { .. }),
            "{name:?} -> {r:?}"
        );
        room.cb.send(&ClientMsg::Private {
            to: name,
            text: "hi",
        });
        let r = room.cb.recv_until(name, |m| {
            matches!(m, ServerMsg::Error { .. } | ServerMsg::Message(_))
        });
        assert_eq!(
            r.error_code(),
            Some(ErrorCode::NoSuchUser as u16),
            "{name:?}"
        );
    }
    // As login names with alice's real password and code: refused, alice's failure count
    // untouched (the look-alike is not alice).
    for name in ["\u{430}lice", "alice'--", "ALİCE"] {
        let mut l = Client::connect(room.addr());
        l.send(&ClientMsg::Login {
            user: name,
            password: PASSWORD,
            otp: &code_at_offset(&room.alice.secret, 1),
        });
        l.expect_error(ErrorCode::InvalidCredentials);
        l.expect_closed();
    }
    // Upper case is the same account (normalised), not a new one.
    c.ping(1);
    let mut c = Client::connect(room.addr());
    c.send(&ClientMsg::Register {
        user: "ALICE",
        password: PASSWORD,
    });
    c.expect_error(ErrorCode::AlreadyRegistered);
    c.expect_closed();
    assert_eq!(room.snapshot(), before);
    let tables = rows(
        &room.s.db(),
        "SELECT name FROM sqlite_master WHERE type='table' ORDER BY name",
    );
    assert!(tables.iter().any(|t| t.contains("MESSAGES")));
    assert!(tables.iter().any(|t| t.contains("REGISTERED")));
    room.honest();
}

// ---------------------------------------------------------------------------------------------
// Accounts.

#[test]
fn registering_an_existing_pending_or_racing_name() {
    let mut room = Room::new();
    let before = room.snapshot();
    // Existing (confirmed) name: refused and closed; alice's row untouched.
    let mut c = Client::connect(room.addr());
    c.send(&ClientMsg::Register {
        user: "alice",
        password: "a new password for alice",
    });
    c.expect_error(ErrorCode::AlreadyRegistered);
    c.expect_closed();
    assert_eq!(room.snapshot(), before);
    // Pending on another connection: refused too (no squatting over someone's registration).
    let mut p = Client::connect(room.addr());
    p.send(&ClientMsg::Register {
        user: "carol",
        password: PASSWORD,
    });
    assert!(matches!(p.recv().msg(), ServerMsg::RegisterStarted { .. }));
    let mut q = Client::connect(room.addr());
    q.send(&ClientMsg::Register {
        user: "carol",
        password: "the squatter's password",
    });
    q.expect_error(ErrorCode::AlreadyRegistered);
    q.expect_closed();
    drop(p);
    // Racing: eight connections register the same new name at once; exactly one starts.
    let addr = room.addr();
    let results: Vec<bool> = (0..8)
        .map(|_| {
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                c.send(&ClientMsg::Register {
                    user: "dave",
                    password: PASSWORD,
                });
                let r = c.recv();
                let ok = matches!(r.msg(), ServerMsg::RegisterStarted { .. });
                if ok {
                    // Hold it until the others have answered.
                    std::thread::sleep(Duration::from_millis(500));
                } else {
                    // Taken, or the hashing pool was full (Busy): never a second start.
                    let code = r.error_code();
                    assert!(
                        code == Some(ErrorCode::AlreadyRegistered as u16)
                            || code == Some(ErrorCode::Busy as u16),
                        "{r:?}"
                    );
                }
                ok
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    assert_eq!(
        results.iter().filter(|&&ok| ok).count(),
        1,
        "racing registrations: {results:?}"
    );
    // All of them gone again (unconfirmed), alice unchanged.
    room.s.wait_for("pending rows discarded", |s| {
        snapshot(&s.data_dir().join("chatbox.db")) == before
    });
    room.honest();
}

fn attempt(addr: SocketAddr, user: &str, password: &str, otp: &str) -> (Option<u16>, Duration) {
    let mut c = Client::connect(addr);
    let t = Instant::now();
    c.send(&ClientMsg::Login {
        user,
        password,
        otp,
    });
    let r = c.recv();
    let took = t.elapsed();
    (r.error_code(), took)
}

fn wrong_code(secret: &[u8]) -> String {
    let used: Vec<String> = (-1..=1).map(|o| code_at_offset(secret, o)).collect();
    (0..)
        .map(|i| format!("{:06}", 100_000 + i * 7919))
        .find(|c| !used.contains(c))
        .unwrap()
}

fn attempt_from(
    addr: SocketAddr,
    from: [u8; 4],
    user: &str,
    password: &str,
    otp: &str,
) -> (Option<u16>, Duration) {
    let mut c = Client::connect_from(addr, from.into());
    let t = Instant::now();
    c.send(&ClientMsg::Login {
        user,
        password,
        otp,
    });
    let r = c.recv();
    let took = t.elapsed();
    (r.error_code(), took)
}

fn lock_state(room: &Room, user: &str) -> (i64, i64) {
    room.s
        .db()
        .query_row(
            "SELECT failures, locked_until FROM REGISTERED WHERE User = ?1",
            [user],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
}

#[test]
fn brute_force_on_password_and_on_otp_is_slowed_then_locked() {
    let mut room = Room::with(|c| {
        c.lock_after = 4;
        c.failure_delay = Duration::from_millis(40);
        c.lock_duration = Duration::from_millis(2500);
    });
    let addr = room.addr();
    // Each mode from its own address, so that the per-address delay starts afresh.
    for (mode, from) in [
        ("password", [127, 0, 0, 20]),
        ("unknown", [127, 0, 0, 21]),
        ("otp", [127, 0, 0, 22]),
    ] {
        let user = format!("victim-{mode}");
        let acc = (mode != "unknown").then(|| register(addr, &user));
        let before = room.snapshot();
        let mut times = Vec::new();
        for _ in 0..4 {
            let (pw, otp) = match (&acc, mode) {
                (Some(acc), "otp") => (PASSWORD.to_owned(), wrong_code(&acc.secret)),
                (Some(acc), _) => (
                    "guessed password".to_owned(),
                    code_at_offset(&acc.secret, 0),
                ),
                (None, _) => ("guessed password".to_owned(), "123456".to_owned()),
            };
            let (code, took) = attempt_from(addr, from, &user, &pw, &otp);
            assert_eq!(code, Some(ErrorCode::InvalidCredentials as u16));
            times.push(took);
        }
        // The delay grows: 40, 80, 160, 320 ms, for a wrong password on a real account, on an
        // unknown name and for a wrong code alike.
        assert!(
            times[3] >= Duration::from_millis(300) && times[3] > times[0] * 3,
            "{mode}: delays {times:?}"
        );
        let Some(acc) = acc else {
            room.honest();
            continue;
        };
        let from_ip = format!("{}.{}.{}.{}", from[0], from[1], from[2], from[3]);
        if mode == "password" {
            // Wrong passwords, `lock_after` of them, locked nothing and counted nothing on the
            // account: the owner logs in, even from the guesser's address.
            assert_eq!(lock_state(&room, &user), (0, 0), "{mode}");
            let after = room.snapshot();
            assert_eq!(after, before, "a wrong password changed stored data");
            let mut c = Client::connect_from(addr, from.into());
            c.send(&ClientMsg::Login {
                user: &user,
                password: PASSWORD,
                otp: &code_at_offset(&acc.secret, 0),
            });
            assert!(matches!(c.recv().msg(), ServerMsg::LoginOk { .. }));
            room.s.wait_events(
                "credentials.log",
                &format!("login failed user={user} from={from_ip}"),
                4,
            );
            room.honest();
            continue;
        }
        // OTP brute force (the right password, wrong codes): locked after `lock_after`; the
        // right password and code are refused now, and the row says so.
        let (code, _) = attempt_from(addr, from, &user, PASSWORD, &code_at_offset(&acc.secret, 0));
        assert_eq!(code, Some(ErrorCode::InvalidCredentials as u16), "{mode}");
        let (failures, locked) = lock_state(&room, &user);
        assert!(
            locked > 0 && failures == 4,
            "{mode}: not locked ({failures}, {locked})"
        );
        room.s.wait_for("lock logged", |s| {
            let log = s.log("credentials.log");
            log.contains(&format!("login failed user={user} from={from_ip}"))
                && log.contains("(account now locked)")
                && log.contains("reason=account locked")
        });
        // Only the victim's row changed.
        let after = room.snapshot();
        assert_eq!(after.messages, before.messages);
        let others = |s: &Snapshot| -> Vec<String> {
            s.registered
                .iter()
                .filter(|r| !r.contains(&user))
                .cloned()
                .collect()
        };
        assert_eq!(others(&after), others(&before));
        room.honest();
        // The lock expires; then the right credentials work and reset the count.
        std::thread::sleep(Duration::from_millis(2600));
        let _c = login(addr, &acc, 0);
        assert_eq!(lock_state(&room, &user).0, 0);
    }
    room.honest();
}

#[test]
fn brute_force_across_accounts_is_throttled_per_address() {
    // Credential stuffing: one guess per account, many accounts, one address.
    let mut room = Room::with(|c| c.ip_failures_per_min = 3);
    let carol = register(room.addr(), "carol");
    let before = room.snapshot();
    let addr = room.addr();
    for user in ["alice", "bob", "nobody"] {
        let (code, _) = attempt(addr, user, "hunter2hunter2", "000000");
        assert_eq!(code, Some(ErrorCode::InvalidCredentials as u16), "{user}");
    }
    // Now even carol's real credentials are refused from that address (the check comes
    // before any password work), and her code is not consumed.
    let (code, _) = attempt(addr, "carol", PASSWORD, &code_at_offset(&carol.secret, 0));
    assert_eq!(code, Some(ErrorCode::InvalidCredentials as u16));
    room.s.wait_for("throttle logged", |s| {
        s.log("credentials.log")
            .contains("login refused user=carol from=127.0.0.1")
            && s.log("credentials.log")
                .contains("too many failures from this address")
    });
    let after = room.snapshot();
    assert_eq!(after.messages, before.messages);
    // The guessed accounts were not locked by one failure each, and carol's row is as it was.
    let row = |s: &Snapshot, u: &str| {
        s.registered
            .iter()
            .find(|r| r.starts_with(&format!("Text(\"{u}\")")))
            .cloned()
    };
    assert_eq!(row(&after, "carol"), row(&before, "carol"));
    // Users already logged in from that address keep chatting.
    room.honest();
}

#[test]
fn otp_reuse_within_the_window_even_concurrently() {
    let mut room = Room::new();
    let acc = register(room.addr(), "erin");
    let addr = room.addr();
    // Sequential: the current code once; then the previous step (older) is refused too.
    let _c = login(addr, &acc, 0);
    let (code, _) = attempt(addr, "erin", PASSWORD, &code_at_offset(&acc.secret, 0));
    assert_eq!(code, Some(ErrorCode::InvalidCredentials as u16), "reuse");
    let (code, _) = attempt(addr, "erin", PASSWORD, &code_at_offset(&acc.secret, -1));
    assert_eq!(
        code,
        Some(ErrorCode::InvalidCredentials as u16),
        "older step"
    );
    // Concurrent: eight logins with the same fresh code (+1) at once; one may win, no more.
    let code = code_at_offset(&acc.secret, 1);
    let wins: usize = (0..8)
        .map(|_| {
            let code = code.clone();
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                c.send(&ClientMsg::Login {
                    user: "erin",
                    password: PASSWORD,
                    otp: &code,
                });
                let r = c.recv();
                usize::from(matches!(r.msg(), ServerMsg::LoginOk { .. }))
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .sum();
    assert_eq!(wins, 1, "one TOTP code logged in {wins} sessions at once");
    room.honest();
}

#[test]
fn scratch_code_reuse_even_concurrently_and_across_accounts() {
    let mut room = Room::new();
    let acc = register(room.addr(), "frank");
    let addr = room.addr();
    // Another user's scratch code does not work for frank.
    let (code, _) = attempt(addr, "frank", PASSWORD, &room.alice.scratch[9]);
    assert_eq!(code, Some(ErrorCode::InvalidCredentials as u16));
    // Concurrent use of one scratch code: exactly one session.
    let sc = acc.scratch[0].clone();
    let wins: usize = (0..8)
        .map(|_| {
            let sc = sc.clone();
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                c.send(&ClientMsg::Login {
                    user: "frank",
                    password: PASSWORD,
                    otp: &sc,
                });
                usize::from(matches!(c.recv().msg(), ServerMsg::LoginOk { .. }))
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .sum();
    assert_eq!(wins, 1, "one scratch code opened {wins} sessions");
    let (code, _) = attempt(addr, "frank", PASSWORD, &sc);
    assert_eq!(code, Some(ErrorCode::InvalidCredentials as u16), "reuse");
    let left: i64 = room
        .s
        .db()
        .query_row(
            "SELECT COUNT(*) FROM SCRATCH WHERE User='frank' AND used=0",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(left, 9);
    // Alice's code 9 is still good for alice.
    let _a = login_with(addr, "alice", &room.alice.scratch[9]);
    room.honest();
}

#[test]
fn anonymous_may_do_nothing_but_authenticate() {
    let mut room = Room::new();
    let before = room.snapshot();
    let mut c = Client::connect(room.addr());
    let msgs = [
        ClientMsg::Say {
            room: "#lobby",
            text: "hi",
        },
        ClientMsg::Action {
            target: "#lobby",
            text: "hi",
        },
        ClientMsg::Private {
            to: "alice",
            text: "hi",
        },
        ClientMsg::Join { room: "#secret" },
        ClientMsg::Part {
            room: "#lobby",
            reason: "",
        },
        ClientMsg::Names { room: "#lobby" },
        ClientMsg::Whois { user: "alice" },
        ClientMsg::Away { text: "x" },
        ClientMsg::ListRooms,
        ClientMsg::Topic {
            room: "#lobby",
            topic: Some("pwned"),
        },
        ClientMsg::History {
            target: "#lobby",
            before_id: 0,
            limit: 50,
        },
        ClientMsg::History {
            target: "alice",
            before_id: 0,
            limit: 50,
        },
        ClientMsg::Help,
        ClientMsg::Kick {
            room: "#lobby",
            user: "alice",
            reason: "",
        },
        ClientMsg::Ban {
            user: "alice",
            seconds: 0,
            reason: "",
        },
        ClientMsg::Unban { user: "alice" },
        ClientMsg::Mute {
            user: "alice",
            seconds: 0,
            reason: "",
        },
        ClientMsg::Unmute { user: "alice" },
        ClientMsg::SetMotd { text: "pwned" },
    ];
    for m in &msgs {
        c.send(m);
        let r = c.recv_until("error", |m| !matches!(m, ServerMsg::Pong { .. }));
        assert_eq!(
            r.error_code(),
            Some(ErrorCode::NotAuthenticated as u16),
            "{m:?} -> {r:?}"
        );
    }
    // During a registration (pending, not confirmed) it is still anonymous.
    c.send(&ClientMsg::Register {
        user: "mallory",
        password: PASSWORD,
    });
    assert!(matches!(c.recv().msg(), ServerMsg::RegisterStarted { .. }));
    c.send(&msgs[0]);
    c.expect_error(ErrorCode::NotAuthenticated);
    // A login attempt while registering is refused (bad state), still anonymous.
    c.send(&ClientMsg::Login {
        user: "alice",
        password: PASSWORD,
        otp: &code_at_offset(&room.alice.secret, 1),
    });
    c.expect_error(ErrorCode::BadState);
    c.send(&msgs[0]);
    c.expect_error(ErrorCode::NotAuthenticated);
    drop(c);
    // Bob saw nothing of it.
    room.honest();
    room.s.wait_for("pending discarded", |s| {
        snapshot(&s.data_dir().join("chatbox.db")).registered == before.registered
    });
    assert_eq!(room.snapshot().messages, before.messages);
}

#[test]
fn oversized_messages_and_fields() {
    let mut room = Room::new();
    let before = room.snapshot();
    let mut c = login(room.addr(), &room.alice, 1);
    let big = "x".repeat(16_000);
    let long_name = "a".repeat(33);
    let long_room = format!("#{}", "r".repeat(40));
    let cases: Vec<(ClientMsg<'_>, &[ErrorCode])> = vec![
        (
            ClientMsg::Say {
                room: "#lobby",
                text: &big,
            },
            &[ErrorCode::TooLong],
        ),
        (
            ClientMsg::Action {
                target: "#lobby",
                text: &big[..1025],
            },
            &[ErrorCode::TooLong],
        ),
        (
            ClientMsg::Private {
                to: "bob",
                text: &big[..1025],
            },
            &[ErrorCode::TooLong],
        ),
        (
            ClientMsg::Private {
                to: &long_name,
                text: "hi",
            },
            &[ErrorCode::TooLong, ErrorCode::NoSuchUser],
        ),
        (
            ClientMsg::Join { room: &long_room },
            &[ErrorCode::InvalidRoom, ErrorCode::TooLong],
        ),
        (
            ClientMsg::Topic {
                room: "#lobby",
                topic: Some(&big),
            },
            &[ErrorCode::TooLong],
        ),
        (ClientMsg::Away { text: &big }, &[ErrorCode::TooLong]),
        (
            ClientMsg::Part {
                room: "#lobby",
                reason: &big,
            },
            &[ErrorCode::TooLong],
        ),
        (
            ClientMsg::Whois { user: &big[..200] },
            &[ErrorCode::TooLong, ErrorCode::NoSuchUser],
        ),
        (
            ClientMsg::History {
                target: "#lobby",
                before_id: 0,
                limit: u16::MAX,
            },
            &[],
        ),
    ];
    for (i, (m, want)) in cases.iter().enumerate() {
        c.send(m);
        let r = c.recv_until(&format!("answer to case {i}"), |m| {
            matches!(
                m,
                ServerMsg::Error { .. } | ServerMsg::History { done: true, .. }
            )
        });
        if want.is_empty() {
            assert!(matches!(r.msg(), ServerMsg::History { .. }), "{r:?}");
        } else {
            let code = r.error_code();
            assert!(
                want.iter().any(|w| Some(*w as u16) == code),
                "{:?}: got {r:?}",
                core::mem::discriminant(m)
            );
        }
    }
    c.ping(5);
    // Registration with a 16 KB name or a 129-byte password.
    let mut a = Client::connect(room.addr());
    a.send(&ClientMsg::Register {
        user: &big,
        password: PASSWORD,
    });
    a.expect_error(ErrorCode::InvalidUsername);
    a.send(&ClientMsg::Register {
        user: "henry",
        password: &big[..129],
    });
    a.expect_error(ErrorCode::InvalidPassword);
    // A 16 KB password at login: refused like any wrong password (no oversized hashing).
    a.send(&ClientMsg::Login {
        user: "alice",
        password: &big,
        otp: "123456",
    });
    a.expect_error(ErrorCode::InvalidCredentials);
    // The largest plaintext a record may carry, with a text far over the limit.
    let mut d = login_with(room.addr(), "alice", &room.alice.scratch[0]);
    let huge = "y".repeat(16_384 - 1 - 2 - 6 - 2);
    d.send(&ClientMsg::Say {
        room: "#lobby",
        text: &huge,
    });
    d.expect_error(ErrorCode::TooLong);
    d.ping(6);
    // One byte more than a frame may hold: cut off.
    let mut e = Client::connect(room.addr());
    let mut frame = 16_401u16.to_be_bytes().to_vec();
    frame.extend(vec![0u8; 16_401]);
    let _ = e.stream.write_all(&frame);
    assert_closed(&mut e, "16401-byte frame");
    let after = room.snapshot();
    assert_eq!(after.messages, before.messages);
    room.honest();
}

// ---------------------------------------------------------------------------------------------
// Floods.

#[test]
fn message_floods_are_rate_limited_logged_in_or_not() {
    let mut room = Room::with(|c| {
        c.rate_per_sec = 5.0;
        c.rate_burst = 10.0;
        c.rate_violations = 3;
    });
    let before = room.snapshot();
    // Logged in: a burst of 200 lines, never reading; some stored, then cut off.
    let mut f = login(room.addr(), &room.alice, 1);
    for i in 0..200 {
        f.send(&ClientMsg::Say {
            room: "#lobby",
            text: &format!("flood {i}"),
        });
    }
    f.recv_until(
        "rate bye",
        |m| matches!(m, ServerMsg::Bye { reason } if reason.contains("rate")),
    );
    f.expect_closed();
    let stored: i64 = room
        .s
        .db()
        .query_row(
            "SELECT COUNT(*) FROM MESSAGES WHERE text LIKE 'flood %'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        (1..=12).contains(&stored),
        "{stored} flood lines stored with a burst of 10"
    );
    // Bob received them as messages, then the honest pair goes on (Bob drains first).
    room.honest();
    // Anonymous: requests are rate limited too (registration spam).
    let mut a = Client::connect(room.addr());
    for _ in 0..100 {
        a.send(&ClientMsg::Register {
            user: "1bad",
            password: PASSWORD,
        });
    }
    a.recv_until(
        "rate bye",
        |m| matches!(m, ServerMsg::Bye { reason } if reason.contains("rate")),
    );
    a.expect_closed();
    let after = room.snapshot();
    assert_eq!(after.registered, before.registered);
    room.honest();
}

#[test]
fn ping_flood_without_reading_is_cut_off_at_the_write_timeout() {
    let mut room = Room::new();
    let before = room.snapshot();
    let mut c = Client::connect(room.addr());
    // Pings are exempt from the rate limit, but the answers must go somewhere: a client that
    // never reads fills its socket and is cut at the write timeout (1 s here), not buffered
    // for without bound.
    let mut chunk = Vec::new();
    for i in 0..4000 {
        chunk.extend(sealed(&mut c, &ClientMsg::Ping { token: i }));
    }
    c.stream
        .set_write_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let start = Instant::now();
    let mut last_honest = start;
    let mut failed = false;
    while start.elapsed() < Duration::from_secs(12) {
        // Each chunk needs fresh records: the session's counter moves on.
        if c.stream.write_all(&chunk).is_err() {
            failed = true;
            break;
        }
        chunk.clear();
        for i in 0..4000 {
            chunk.extend(sealed(&mut c, &ClientMsg::Ping { token: i }));
        }
        // The honest pair keeps chatting meanwhile, at a pace within its own rate limit (the
        // flood loop turns faster than 20 lines/s once the server answers pings quickly).
        if last_honest.elapsed() >= Duration::from_millis(200) {
            room.honest();
            last_honest = Instant::now();
        }
    }
    assert!(
        failed,
        "the server kept reading a flood it could not answer"
    );
    room.s.wait_for("write timeout logged", |s| {
        let info = s.log("info.log");
        info.contains("write timeout") || info.contains("slow reader")
    });
    assert_eq!(room.snapshot(), before);
    room.honest();
}

#[test]
fn connection_floods_past_per_ip_and_global_limits() {
    // Per address: max_per_ip = 6 with the honest pair already holding 2 of them.
    let mut room = Room::with(|c| {
        c.max_per_ip = 6;
        c.max_connections = 6;
        c.handshake_timeout = Duration::from_millis(800);
    });
    let before = room.snapshot();
    let addr = room.addr();
    let mut kept = Vec::new();
    let mut full = 0;
    for _ in 0..8 {
        let mut c = Client::connect(addr);
        c.send(&ClientMsg::Ping { token: 1 });
        let r = c.recv();
        if r.error_code() == Some(ErrorCode::ServerFull as u16) {
            c.expect_closed();
            full += 1;
        } else {
            kept.push(c);
        }
    }
    assert_eq!((kept.len(), full), (4, 4), "4 slots were left");
    // Past twice the global limit: silent sockets hold slots until the handshake timeout;
    // beyond 2 × max_connections the server drops newcomers without even a handshake.
    let mut silent: Vec<TcpStream> = (0..6).map(|_| raw_connect(addr)).collect();
    std::thread::sleep(Duration::from_millis(100));
    let mut dropped = raw_connect(addr);
    let mut hello = [0u8; 64];
    let n = Session::client(random32())
        .poll_transmit(&mut hello)
        .unwrap();
    let _ = dropped.write_all(&hello[..n]);
    let mut first = [0u8; 2];
    let got = dropped.read(&mut first);
    assert!(
        matches!(got, Ok(0) | Err(_)),
        "a connection past twice the limit got a handshake: {got:?}"
    );
    // The honest pair keeps chatting through it.
    room.honest();
    // Silent sockets are closed at the handshake timeout…
    for (i, t) in silent.iter_mut().enumerate() {
        assert!(
            closed_within(t, Duration::from_secs(3)).is_some(),
            "silent socket {i} kept"
        );
    }
    drop(kept);
    // …and the counters came back: new connections are served again.
    std::thread::sleep(Duration::from_millis(200));
    for n in 0..4 {
        let mut c = Client::connect(addr);
        c.ping(n);
    }
    assert_eq!(room.snapshot(), before);
    room.honest();
}

// ---------------------------------------------------------------------------------------------
// Slowloris and fd leaks, on the real binary (its own /proc/<pid>/fd).

fn bin_register(addr: SocketAddr, user: &str) -> Account {
    register(addr, user)
}

#[test]
fn slowloris_is_closed_at_the_timeouts_without_fd_leaks() {
    let dir = tempfile::tempdir().unwrap();
    let mut srv = binserver::BinServer::start(
        &dir.path().join("data"),
        &dir.path().join("log"),
        &[
            "--handshake-timeout",
            "1",
            "--login-timeout",
            "2",
            "--idle-timeout",
            "3",
            "--max-per-ip",
            "200",
        ],
    );
    let addr = srv.addr;
    let alice = bin_register(addr, "alice");
    let bob = bin_register(addr, "bob");
    let mut ca = login(addr, &alice, 0);
    let mut cb = login(addr, &bob, 0);
    std::thread::sleep(Duration::from_millis(300));
    let baseline = srv.fds();
    let db = dir.path().join("data").join("chatbox.db");
    let before = snapshot(&db);
    // Three kinds of slow clients, each trickling one byte every 150 ms:
    // 15 that never finish message 1, 10 handshaken but never logging in (a partial record),
    // and 3 logged in that send a partial record and nothing else.
    // Each trickles a frame header announcing a long frame, then one byte per tick.
    let mut slow: Vec<(&str, TcpStream, Duration)> = Vec::new();
    for _ in 0..15 {
        let mut t = raw_connect(addr);
        t.write_all(&[0]).unwrap();
        slow.push(("handshake", t, Duration::from_secs(1)));
    }
    for _ in 0..10 {
        let mut c = Client::connect(addr);
        c.stream.write_all(&[0x10]).unwrap();
        slow.push(("login", c.stream, Duration::from_secs(2)));
    }
    let mut scratch = alice.scratch.iter();
    for _ in 0..3 {
        let mut c = login_with(addr, "alice", scratch.next().unwrap());
        c.stream.write_all(&[0x10]).unwrap();
        slow.push(("idle", c.stream, Duration::from_secs(3)));
    }
    let peak = srv.fds();
    assert!(peak >= baseline + 28, "fds {baseline} -> {peak}");
    let start = Instant::now();
    let mut closed_at: Vec<Option<Duration>> = vec![None; slow.len()];
    let mut honest_n = 0u64;
    while closed_at.iter().any(Option::is_none) && start.elapsed() < Duration::from_secs(7) {
        for (i, (_, t, _)) in slow.iter_mut().enumerate() {
            if closed_at[i].is_some() {
                continue;
            }
            t.set_nonblocking(true).unwrap();
            let mut b = [0u8; 1024];
            let gone = match t.read(&mut b) {
                Ok(0) => true,
                Ok(_) => false,
                Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
            };
            // Second byte: 33 (handshake) or anything (the 0x10xx record length), then filler.
            if gone || t.write_all(&[33]).is_err() {
                closed_at[i] = Some(start.elapsed());
            }
        }
        // The honest pair chats on (and keeps its idle timers fresh).
        honest_n += 1;
        let text = format!("honest-{honest_n}");
        ca.send(&ClientMsg::Say {
            room: "#lobby",
            text: &text,
        });
        cb.recv_until(
            "honest",
            |m| matches!(m, ServerMsg::Message(cm) if cm.text == text),
        );
        cb.ping(honest_n);
        std::thread::sleep(Duration::from_millis(150));
    }
    for (i, (kind, _, limit)) in slow.iter().enumerate() {
        let at = closed_at[i].unwrap_or_else(|| panic!("{kind} slowloris {i} never closed"));
        assert!(
            at >= limit.saturating_sub(Duration::from_millis(400))
                && at <= *limit + Duration::from_millis(1500),
            "{kind} slowloris {i} closed at {at:?} (timeout {limit:?})"
        );
    }
    drop(slow);
    let end = srv.wait_fds_at_most(baseline, Duration::from_secs(3));
    assert!(end <= baseline, "fd leak: {baseline} before, {end} after");
    let after = snapshot(&db);
    assert_eq!(after.messages, before.messages);
    ca.ping(1);
    assert_eq!(srv.terminate(), Some(0));
}
