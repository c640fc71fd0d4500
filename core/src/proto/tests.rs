#![allow(clippy::std_instead_of_alloc)] // test code uses std freely
use std::format;
use std::string::String;
use std::vec::Vec;

use super::*;
use crate::buffer::BufferTooSmall;
use core::fmt;

fn round_trip_client(m: ClientMsg<'_>) {
    let mut buf = [0u8; 512];
    let n = m.encode(&mut buf).unwrap();
    assert_eq!(n, m.encoded_len(), "{m:?}");
    assert_eq!(buf[0], m.tag());
    assert_eq!(m.name(), m.kind().name());
    let back = ClientMsg::decode(&buf[..n]).unwrap();
    assert_eq!(back, m);
    assert_eq!(back.encoded_len(), n);
    // Every strict prefix is refused, never panics; a trailing byte is refused.
    for cut in 0..n {
        assert!(
            ClientMsg::decode(&buf[..cut]).is_err(),
            "{m:?} cut at {cut}"
        );
    }
    buf[n] = 0;
    assert_eq!(
        ClientMsg::decode(&buf[..n + 1]),
        Err(ProtoError::TrailingBytes)
    );
}

fn round_trip_server(m: ServerMsg<'_>) {
    let mut buf = [0u8; 2048];
    let n = m.encode(&mut buf).unwrap();
    assert_eq!(n, m.encoded_len(), "{m:?}");
    assert_eq!(buf[0], m.tag());
    assert_eq!(m.name(), m.kind().name());
    let back = ServerMsg::decode(&buf[..n]).unwrap();
    assert_eq!(back, m);
    // A decoded message (lists borrowed as bytes) sizes the same as the one built from items.
    assert_eq!(back.encoded_len(), n);
    for cut in 0..n {
        assert!(
            ServerMsg::decode(&buf[..cut]).is_err(),
            "{m:?} cut at {cut}"
        );
    }
}

/// Calls `f` with one sample of every client message (some twice, with other field values).
fn client_samples(mut f: impl FnMut(ClientMsg<'_>)) {
    let all = [
        ClientMsg::Register {
            user: "alice",
            password: "correct horse",
        },
        ClientMsg::ConfirmTotp { code: "012345" },
        ClientMsg::Login {
            user: "alice",
            password: "pw",
            otp: "000001",
        },
        ClientMsg::Say {
            room: "#lobby",
            text: "héllo",
        },
        ClientMsg::Action {
            target: "#lobby",
            text: "waves",
        },
        ClientMsg::Private {
            to: "bob",
            text: "psst",
        },
        ClientMsg::Join { room: "#rust" },
        ClientMsg::Part {
            room: "#rust",
            reason: "",
        },
        ClientMsg::Names { room: "#lobby" },
        ClientMsg::Whois { user: "bob" },
        ClientMsg::Away { text: "lunch" },
        ClientMsg::ListRooms,
        ClientMsg::Topic {
            room: "#lobby",
            topic: None,
        },
        ClientMsg::Topic {
            room: "#lobby",
            topic: Some("welcome"),
        },
        ClientMsg::History {
            target: "#lobby",
            before_id: 99,
            limit: 50,
        },
        ClientMsg::Help,
        ClientMsg::Ping { token: 7 },
        ClientMsg::Bye,
        ClientMsg::Kick {
            room: "#lobby",
            user: "eve",
            reason: "spam",
        },
        ClientMsg::Ban {
            user: "eve",
            seconds: 3600,
            reason: "spam",
        },
        ClientMsg::Unban { user: "eve" },
        ClientMsg::Mute {
            user: "eve",
            seconds: 0,
            reason: "",
        },
        ClientMsg::Unmute { user: "eve" },
        ClientMsg::SetMotd { text: "hi" },
        ClientMsg::RegisterInvite {
            user: "alice",
            password: "correct horse",
            invite: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
        },
        ClientMsg::AskPolicy,
        ClientMsg::ChangePassword {
            password: "old password",
            otp: "123456",
            new_password: "new password",
        },
        ClientMsg::Reenrol {
            password: "pw",
            otp: "123456",
        },
        ClientMsg::ConfirmReenrol { code: "654321" },
        ClientMsg::Sessions,
        ClientMsg::RevokeSession { id: "n1.7" },
        ClientMsg::RevokeOtherSessions,
    ];
    for m in all {
        f(m);
    }
}

#[test]
fn client_messages_round_trip() {
    client_samples(round_trip_client);
}

#[test]
fn fixed_ping_pong_bytes() {
    let mut buf = [0u8; 16];
    let n = ClientMsg::Ping {
        token: 0x0102_0304_0506_0708,
    }
    .encode(&mut buf)
    .unwrap();
    assert_eq!(&buf[..n], &[0x20, 1, 2, 3, 4, 5, 6, 7, 8]);
    let n = ServerMsg::Pong { token: 1 }.encode(&mut buf).unwrap();
    assert_eq!(&buf[..n], &[0xA0, 0, 0, 0, 0, 0, 0, 0, 1]);
}

/// docs/PROTOCOL.md's example: 20 messages per second, burst 40.
#[test]
fn fixed_rate_limit_bytes() {
    let mut buf = [0u8; 16];
    let m = ServerMsg::RateLimit {
        milli_per_sec: 20_000,
        burst: 40,
    };
    let n = m.encode(&mut buf).unwrap();
    assert_eq!(&buf[..n], &[0x8E, 0, 0, 0x4E, 0x20, 0, 0, 0, 0x28]);
    assert_eq!(ServerMsg::decode(&buf[..n]).unwrap(), m);
    assert!(ServerMsg::decode(&buf[..n - 1]).is_err(), "truncated");
    let mut long = buf;
    long[n] = 0;
    assert!(ServerMsg::decode(&long[..=n]).is_err(), "trailing byte");
}

/// Known-answer bytes of every message added for issue 14 (also listed in docs/PROTOCOL.md).
#[test]
fn issue14_message_bytes() {
    fn client(m: ClientMsg<'_>) -> Vec<u8> {
        let mut buf = [0u8; 256];
        let n = m.encode(&mut buf).unwrap();
        buf[..n].to_vec()
    }
    fn server(m: ServerMsg<'_>) -> Vec<u8> {
        let mut buf = [0u8; 256];
        let n = m.encode(&mut buf).unwrap();
        buf[..n].to_vec()
    }
    let hex = |v: Vec<u8>| v.iter().map(|b| format!("{b:02x}")).collect::<String>();
    assert_eq!(
        hex(client(ClientMsg::RegisterInvite {
            user: "al",
            password: "pw",
            invite: "t"
        })),
        "220002616c00027077000174"
    );
    assert_eq!(hex(client(ClientMsg::AskPolicy)), "23");
    assert_eq!(
        hex(client(ClientMsg::ChangePassword {
            password: "a",
            otp: "1",
            new_password: "b"
        })),
        "240001610001310001 62".replace(' ', "")
    );
    assert_eq!(
        hex(client(ClientMsg::Reenrol {
            password: "a",
            otp: "1"
        })),
        "25000161000131"
    );
    assert_eq!(
        hex(client(ClientMsg::ConfirmReenrol { code: "12" })),
        "2600023132"
    );
    assert_eq!(hex(client(ClientMsg::Sessions)), "27");
    assert_eq!(
        hex(client(ClientMsg::RevokeSession { id: "n1.7" })),
        "2800046e312e37"
    );
    assert_eq!(hex(client(ClientMsg::RevokeOtherSessions)), "29");
    assert_eq!(
        hex(server(ServerMsg::RegistrationPolicy {
            invite_required: true
        })),
        "a101"
    );
    assert_eq!(
        hex(server(ServerMsg::PasswordChanged { closed: 2 })),
        "a200000002"
    );
    assert_eq!(
        hex(server(ServerMsg::ReenrolStarted { uri: "u" })),
        "a3000175"
    );
    assert_eq!(
        hex(server(ServerMsg::Reenrolled {
            closed: 1,
            scratch_codes: StrList::Items(&["1"])
        })),
        "a400000001000100013 1".replace(' ', "")
    );
    assert_eq!(
        hex(server(ServerMsg::SessionList {
            done: true,
            sessions: SessionEntryList::Items(&[SessionEntry {
                id: "i",
                node: "n",
                address: "a",
                since_ms: 5,
                current: true,
            }]),
        })),
        "a501000100016900016e00016100000000000000050 1".replace(' ', "")
    );
    assert_eq!(
        hex(server(ServerMsg::SessionsRevoked { count: 3 })),
        "a600000003"
    );
    assert_eq!(
        hex(server(ServerMsg::error(
            ErrorCode::InviteInvalid,
            "invite_invalid"
        ))),
        "84001e000e696e766974655f696e76616c6964"
    );
    assert_eq!(ErrorCode::from_u16(30), Some(ErrorCode::InviteInvalid));
    assert_eq!(ErrorCode::InviteInvalid.name(), "invite_invalid");
    assert_eq!(ErrorCode::from_u16(31), Some(ErrorCode::NoSuchSession));
    assert_eq!(ErrorCode::NoSuchSession.name(), "no_such_session");
    // A bad flag in the new messages is refused.
    assert_eq!(ServerMsg::decode(&[0xA1, 2]), Err(ProtoError::BadValue));
}

/// Calls `f` with one sample of every server message (some twice, with other field values).
fn server_samples(mut f: impl FnMut(ServerMsg<'_>)) {
    let codes = ["12345678", "87654321"];
    let users = ["alice", "bob", "carol"];
    let msg = ChatMessage {
        id: 42,
        time_ms: 1_700_000_000_000,
        target: "#lobby",
        from: "alice",
        kind: MessageKind::Say,
        text: "hi all",
    };
    let history = [
        msg,
        ChatMessage {
            id: 43,
            kind: MessageKind::Action,
            ..msg
        },
    ];
    let all = [
        ServerMsg::RegisterStarted {
            uri: "otpauth://totp/ChatBox:alice?secret=ABC",
        },
        ServerMsg::Registered {
            scratch_codes: StrList::Items(&codes),
        },
        ServerMsg::LoginOk {
            user: "alice",
            motd: "be nice",
        },
        ServerMsg::error(ErrorCode::InvalidCredentials, "invalid credentials"),
        ServerMsg::Message(msg),
        ServerMsg::Presence {
            room: "#lobby",
            user: "bob",
            kind: PresenceKind::Join,
            text: "",
        },
        ServerMsg::Names {
            room: "#lobby",
            done: true,
            users: StrList::Items(&users),
        },
        ServerMsg::History {
            target: "#lobby",
            done: false,
            messages: MessageList::Items(&history),
        },
        ServerMsg::Info { text: "/help" },
        ServerMsg::Topic {
            room: "#lobby",
            topic: "t",
            set_by: "alice",
            time_ms: 5,
        },
        ServerMsg::RoomEntry {
            room: "#lobby",
            members: 3,
            topic: "",
        },
        ServerMsg::Whois {
            user: "bob",
            role: "op",
            online: true,
            away: "",
            registered_ms: 9,
            rooms: StrList::Items(&["#lobby"]),
        },
        ServerMsg::Bye { reason: "shutdown" },
        ServerMsg::RateLimit {
            milli_per_sec: 20_000,
            burst: 40,
        },
        ServerMsg::Pong { token: 3 },
        ServerMsg::RegistrationPolicy {
            invite_required: true,
        },
        ServerMsg::PasswordChanged { closed: 2 },
        ServerMsg::ReenrolStarted {
            uri: "otpauth://totp/ChatBox:alice?secret=XYZ",
        },
        ServerMsg::Reenrolled {
            closed: 1,
            scratch_codes: StrList::Items(&codes),
        },
        ServerMsg::SessionList {
            done: true,
            sessions: SessionEntryList::Items(&[
                SessionEntry {
                    id: "n1.7",
                    node: "n1",
                    address: "127.0.0.1:5000",
                    since_ms: 11,
                    current: true,
                },
                SessionEntry {
                    id: "n2.9",
                    node: "n2",
                    address: "[::1]:6000",
                    since_ms: 12,
                    current: false,
                },
            ]),
        },
        ServerMsg::SessionsRevoked { count: 4 },
    ];
    for m in all {
        f(m);
    }
}

#[test]
fn server_messages_round_trip() {
    server_samples(round_trip_server);
}

#[test]
fn decoded_lists_iterate() {
    let users = ["alice", "bob"];
    let mut buf = [0u8; 128];
    let n = ServerMsg::Names {
        room: "#a",
        done: true,
        users: StrList::Items(&users),
    }
    .encode(&mut buf)
    .unwrap();
    let ServerMsg::Names { users: got, .. } = ServerMsg::decode(&buf[..n]).unwrap() else {
        panic!("not names");
    };
    assert!(matches!(got, StrList::Encoded { count: 2, .. }));
    assert_eq!(got.iter().collect::<Vec<_>>(), users);
}

#[test]
fn rejects_bad_input() {
    assert_eq!(ClientMsg::decode(&[]), Err(ProtoError::Truncated));
    assert_eq!(
        ClientMsg::decode(&[0x7f]),
        Err(ProtoError::UnknownTag(0x7f))
    );
    assert_eq!(
        ServerMsg::decode(&[0x01]),
        Err(ProtoError::UnknownTag(0x01))
    );
    // Invalid UTF-8 in a string field.
    assert_eq!(
        ClientMsg::decode(&[0x13, 0, 2, 0xff, 0xfe]),
        Err(ProtoError::InvalidUtf8)
    );
    // A length running past the end.
    assert_eq!(
        ClientMsg::decode(&[0x13, 0xff, 0xff, b'a']),
        Err(ProtoError::Truncated)
    );
    // Unknown enum and flag values.
    assert_eq!(
        ClientMsg::decode(&[0x19, 0, 1, b'#', 2]),
        Err(ProtoError::BadValue)
    );
    // A list whose count promises more than is there.
    assert_eq!(
        ServerMsg::decode(&[0x82, 0, 3, 0, 1, b'1']),
        Err(ProtoError::Truncated)
    );
    let mut small = [0u8; 4];
    assert!(matches!(
        ClientMsg::Join { room: "#lobby" }.encode(&mut small),
        Err(ProtoError::InsufficientSize(_))
    ));
}

#[test]
fn room_names() {
    for ok in ["#lobby", "#a", "#rust-lang", "#a.b_c"] {
        assert!(is_valid_room(ok), "{ok}");
    }
    for bad in [
        "lobby",
        "#",
        "#Lobby",
        "#a b",
        "#\u{1b}",
        &*format!("#{}", "a".repeat(32)),
    ] {
        assert!(!is_valid_room(bad), "{bad}");
    }
}

#[test]
fn error_codes_are_stable() {
    for v in 0..64u16 {
        if let Some(c) = ErrorCode::from_u16(v) {
            assert_eq!(c as u16, v);
            assert!(!c.name().is_empty());
        }
    }
    assert_eq!(ErrorCode::from_u16(3), Some(ErrorCode::InvalidCredentials));
    assert_eq!(ErrorCode::from_u16(0), None);
    // Known answers for the growth limits (issue 13.11).
    assert_eq!(
        ErrorCode::from_u16(21).map(ErrorCode::name),
        Some("too_many_rooms")
    );
    assert_eq!(
        ErrorCode::from_u16(22).map(ErrorCode::name),
        Some("offline_limit")
    );
}

/// Checks one fieldless wire table: every row round-trips through its number and its name,
/// names are unique and lower-case, and every number outside the table is refused.
fn check_table<T, R>(all: &[T], wire: fn(T) -> R, from_wire: fn(R) -> Option<T>, numbers: &[R])
where
    T: Copy + PartialEq + fmt::Debug + TryFrom<R, Error = ProtoError> + Into<R>,
    R: Copy + PartialEq + fmt::Debug,
{
    for (i, &v) in all.iter().enumerate() {
        assert_eq!(from_wire(wire(v)), Some(v));
        assert_eq!(T::try_from(wire(v)), Ok(v));
        assert_eq!(v.into(), wire(v));
        assert!(all[..i].iter().all(|&u| wire(u) != wire(v)), "{v:?} twice");
    }
    for &n in numbers {
        let known = all.iter().any(|&v| wire(v) == n);
        assert_eq!(from_wire(n).is_some(), known, "{n:?}");
        if !known {
            assert_eq!(T::try_from(n), Err(ProtoError::BadValue));
        }
    }
}

fn check_names<T: Copy + PartialEq + fmt::Debug>(
    all: &[T],
    name: fn(T) -> &'static str,
    from_name: fn(&str) -> Option<T>,
) {
    for (i, &v) in all.iter().enumerate() {
        let n = name(v);
        assert!(
            !n.is_empty() && n.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{n}"
        );
        assert_eq!(from_name(n), Some(v));
        assert!(all[..i].iter().all(|&u| name(u) != n), "{n} twice");
    }
    assert_eq!(from_name("no_such_name"), None);
}

#[test]
fn wire_tables_round_trip_every_row() {
    let bytes: Vec<u8> = (0..=255).collect();
    check_table(
        ClientTag::ALL,
        ClientTag::to_wire,
        ClientTag::from_wire,
        &bytes,
    );
    check_table(
        ServerTag::ALL,
        ServerTag::to_wire,
        ServerTag::from_wire,
        &bytes,
    );
    check_table(
        MessageKind::ALL,
        MessageKind::to_wire,
        MessageKind::from_wire,
        &bytes,
    );
    check_table(
        PresenceKind::ALL,
        PresenceKind::to_wire,
        PresenceKind::from_wire,
        &bytes,
    );
    let codes: Vec<u16> = (0..=1024).chain([u16::MAX]).collect();
    check_table(
        ErrorCode::ALL,
        ErrorCode::to_wire,
        ErrorCode::from_wire,
        &codes,
    );
    check_names(ClientTag::ALL, ClientTag::name, ClientTag::from_name);
    check_names(ServerTag::ALL, ServerTag::name, ServerTag::from_name);
    check_names(MessageKind::ALL, MessageKind::name, MessageKind::from_name);
    check_names(
        PresenceKind::ALL,
        PresenceKind::name,
        PresenceKind::from_name,
    );
    check_names(ErrorCode::ALL, ErrorCode::name, ErrorCode::from_name);
    // Table sizes and ranges: client tags below 0x80, server tags from 0x80.
    assert_eq!(ClientTag::ALL.len(), 31);
    assert_eq!(ServerTag::ALL.len(), 21);
    assert_eq!(ErrorCode::ALL.len(), 24);
    assert_eq!(MessageKind::ALL.len(), 4);
    assert_eq!(PresenceKind::ALL.len(), 9);
    assert!(ClientTag::ALL.iter().all(|t| t.to_wire() < 0x80));
    assert!(ServerTag::ALL.iter().all(|t| t.to_wire() >= 0x80));
    // Known answers: the names the logs and scripts already print.
    assert_eq!(ClientMsg::ListRooms.name(), "list");
    assert_eq!(ClientTag::SetMotd.name(), "set_motd");
    assert_eq!(MessageKind::Action.name(), "action");
    assert_eq!(PresenceKind::Kicked.name(), "kicked");
    assert_eq!(PresenceKind::from_wire(8), Some(PresenceKind::Topic));
    assert_eq!(ServerTag::Pong.to_wire(), 0xA0);
    assert_eq!(ClientTag::Ping.to_wire(), 0x20);
}

#[test]
fn every_tag_decodes_from_its_table_and_unknown_tags_are_refused() {
    let mut client_seen = Vec::new();
    client_samples(|m| {
        let mut buf = [0u8; 512];
        let n = m.encode(&mut buf).unwrap();
        assert_eq!(ClientMsg::decode(&buf[..n]).unwrap().kind(), m.kind());
        client_seen.push(m.kind());
    });
    let mut server_seen = Vec::new();
    server_samples(|m| {
        let mut buf = [0u8; 2048];
        let n = m.encode(&mut buf).unwrap();
        assert_eq!(ServerMsg::decode(&buf[..n]).unwrap().kind(), m.kind());
        server_seen.push(m.kind());
    });
    // The samples cover every row of both tables, so every arm of encode and decode ran.
    assert!(ClientTag::ALL.iter().all(|t| client_seen.contains(t)));
    assert!(ServerTag::ALL.iter().all(|t| server_seen.contains(t)));
    for t in 0..=255u8 {
        let one = [t];
        let c = ClientMsg::decode(&one);
        if ClientTag::from_wire(t).is_none() {
            assert_eq!(c, Err(ProtoError::UnknownTag(t)));
        } else {
            assert_ne!(c, Err(ProtoError::UnknownTag(t)));
        }
        let s = ServerMsg::decode(&one);
        if ServerTag::from_wire(t).is_none() {
            assert_eq!(s, Err(ProtoError::UnknownTag(t)));
        } else {
            assert_ne!(s, Err(ProtoError::UnknownTag(t)));
        }
    }
}

#[test]
fn encoded_len_matches_maximal_lists() {
    use crate::frame::MAX_PLAINTEXT_LEN;
    let mut buf = std::vec![0u8; 4 * MAX_PLAINTEXT_LEN];
    let mut check = |m: ServerMsg<'_>| {
        let n = m.encode(&mut buf).unwrap();
        assert_eq!(m.encoded_len(), n, "{:?}", m.kind());
        let back = ServerMsg::decode(&buf[..n]).unwrap();
        assert_eq!(back.encoded_len(), n);
        // One byte short is refused, naming the size needed.
        assert_eq!(
            m.encode(&mut std::vec![0u8; n - 1]),
            Err(ProtoError::InsufficientSize(BufferTooSmall { required: n }))
        );
        n
    };
    // As many 32-byte names as fit one record, and more: the length is exact either way.
    let name = "u".repeat(32);
    let many: Vec<&str> = core::iter::repeat_n(name.as_str(), 600).collect();
    let n = check(ServerMsg::Names {
        room: "#lobby",
        done: true,
        users: StrList::Items(&many),
    });
    assert_eq!(n, 1 + 2 + 6 + 1 + 2 + 600 * 34);
    check(ServerMsg::Whois {
        user: "alice",
        role: "op",
        online: true,
        away: "",
        registered_ms: 1,
        rooms: StrList::Items(&many[..64]),
    });
    check(ServerMsg::Registered {
        scratch_codes: StrList::Items(&many[..10]),
    });
    check(ServerMsg::Reenrolled {
        closed: 3,
        scratch_codes: StrList::Items(&many[..10]),
    });
    let text = "x".repeat(MAX_TEXT_LEN);
    let line = ChatMessage {
        id: u64::MAX,
        time_ms: u64::MAX,
        target: "#lobby",
        from: "alice",
        kind: MessageKind::Notice,
        text: &text,
    };
    let lines = std::vec![line; 40];
    let n = check(ServerMsg::History {
        target: "#lobby",
        done: false,
        messages: MessageList::Items(&lines),
    });
    assert_eq!(n, 1 + 8 + 1 + 2 + 40 * line.encoded_len());
    assert_eq!(line.encoded_len(), 8 + 8 + 8 + 7 + 1 + 2 + text.len());
    check(ServerMsg::Message(line));
    let address = "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535";
    let id = "i".repeat(64);
    let session = SessionEntry {
        id: &id,
        node: "node-1",
        address,
        since_ms: 1,
        current: true,
    };
    let sessions = std::vec![session; 100];
    check(ServerMsg::SessionList {
        done: true,
        sessions: SessionEntryList::Items(&sessions),
    });
    // The empty list of each kind.
    check(ServerMsg::Names {
        room: "#x",
        done: true,
        users: StrList::Items(&[]),
    });
    check(ServerMsg::History {
        target: "#x",
        done: true,
        messages: MessageList::Items(&[]),
    });
    // And every sample, list or not.
    server_samples(|m| {
        check(m);
    });
}
