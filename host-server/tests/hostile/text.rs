//! Hostile clients, on content inside good records: malformed fields and invalid UTF-8, ANSI
//! escapes and control characters, Unicode separators and invisible characters, SQL
//! metacharacters and look-alike names, oversized messages and fields. The fixture is in
//! fixture.rs.

use std::io::Write;

use crate::fixture::*;
use chatbox_core::proto::{ClientMsg, ErrorCode, ServerMsg};
use chatbox_server::test_util::*;

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
        .scalar("SELECT failures FROM REGISTERED WHERE User='alice'");
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
