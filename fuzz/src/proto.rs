//! `core::proto`: both decoders on arbitrary bytes, and encode → decode from built messages.

use arbitrary::{Result, Unstructured};
use chatbox_core::proto::{
    ChatMessage, ClientMsg, MessageKind, MessageList, PresenceKind, ProtoError, ServerMsg, StrList,
};

fn encode_exact(
    len: usize,
    encode: impl Fn(&mut [u8]) -> core::result::Result<usize, ProtoError>,
) -> Vec<u8> {
    let mut out = vec![0u8; len];
    assert_eq!(encode(&mut out), Ok(len), "re-encoding has another length");
    // One byte short is refused, not truncated.
    if len > 0 {
        assert!(matches!(
            encode(&mut out[..len - 1]),
            Err(ProtoError::InsufficientSize(_))
        ));
    }
    out
}

/// `ClientMsg::decode` on arbitrary bytes. A message that decodes re-encodes to exactly the
/// same bytes (one encoding per message), and no strict prefix of it decodes.
pub fn client(data: &[u8]) {
    let Ok(msg) = ClientMsg::decode(data) else {
        return;
    };
    assert_eq!(msg.tag(), data[0]);
    assert!(msg.tag() < 0x80);
    assert!(!msg.name().is_empty());
    let _ = format!("{msg:?}");
    let again = encode_exact(data.len(), |out| msg.encode(out));
    assert_eq!(again, data);
    assert_eq!(
        ClientMsg::decode(&data[..data.len() - 1]).err(),
        Some(ProtoError::Truncated)
    );
}

fn check_lists(msg: &ServerMsg<'_>) {
    let check_str = |l: &StrList<'_>| assert_eq!(l.iter().count(), l.len());
    match msg {
        ServerMsg::Registered { scratch_codes } => check_str(scratch_codes),
        ServerMsg::Names { users, .. } => check_str(users),
        ServerMsg::Whois { rooms, .. } => check_str(rooms),
        ServerMsg::History { messages, .. } => {
            assert_eq!(messages.iter().count(), messages.len());
        }
        _ => {}
    }
}

/// `ServerMsg::decode` on arbitrary bytes; as [`client`], plus every decoded list yields as
/// many items as it says.
pub fn server(data: &[u8]) {
    let Ok(msg) = ServerMsg::decode(data) else {
        return;
    };
    assert_eq!(msg.tag(), data[0]);
    assert!(msg.tag() >= 0x80);
    check_lists(&msg);
    let _ = format!("{msg:?}");
    let again = encode_exact(data.len(), |out| msg.encode(out));
    assert_eq!(again, data);
    assert_eq!(
        ServerMsg::decode(&data[..data.len() - 1]).err(),
        Some(ProtoError::Truncated)
    );
}

fn build_client<'a>(u: &mut Unstructured<'a>) -> Result<ClientMsg<'a>> {
    let s = |u: &mut Unstructured<'a>| u.arbitrary::<&'a str>();
    Ok(match u.int_in_range(0..=22u8)? {
        0 => ClientMsg::Register {
            user: s(u)?,
            password: s(u)?,
        },
        1 => ClientMsg::ConfirmTotp { code: s(u)? },
        2 => ClientMsg::Login {
            user: s(u)?,
            password: s(u)?,
            otp: s(u)?,
        },
        3 => ClientMsg::Say {
            room: s(u)?,
            text: s(u)?,
        },
        4 => ClientMsg::Action {
            target: s(u)?,
            text: s(u)?,
        },
        5 => ClientMsg::Private {
            to: s(u)?,
            text: s(u)?,
        },
        6 => ClientMsg::Join { room: s(u)? },
        7 => ClientMsg::Part {
            room: s(u)?,
            reason: s(u)?,
        },
        8 => ClientMsg::Names { room: s(u)? },
        9 => ClientMsg::Whois { user: s(u)? },
        10 => ClientMsg::Away { text: s(u)? },
        11 => ClientMsg::ListRooms,
        12 => ClientMsg::Topic {
            room: s(u)?,
            topic: if u.arbitrary()? { Some(s(u)?) } else { None },
        },
        13 => ClientMsg::History {
            target: s(u)?,
            before_id: u.arbitrary()?,
            limit: u.arbitrary()?,
        },
        14 => ClientMsg::Help,
        15 => ClientMsg::Ping {
            token: u.arbitrary()?,
        },
        16 => ClientMsg::Bye,
        17 => ClientMsg::Kick {
            room: s(u)?,
            user: s(u)?,
            reason: s(u)?,
        },
        18 => ClientMsg::Ban {
            user: s(u)?,
            seconds: u.arbitrary()?,
            reason: s(u)?,
        },
        19 => ClientMsg::Unban { user: s(u)? },
        20 => ClientMsg::Mute {
            user: s(u)?,
            seconds: u.arbitrary()?,
            reason: s(u)?,
        },
        21 => ClientMsg::Unmute { user: s(u)? },
        _ => ClientMsg::SetMotd { text: s(u)? },
    })
}

fn message_kind(u: &mut Unstructured<'_>) -> Result<MessageKind> {
    Ok(match u.int_in_range(0..=3u8)? {
        0 => MessageKind::Say,
        1 => MessageKind::Action,
        2 => MessageKind::Private,
        _ => MessageKind::Notice,
    })
}

fn presence_kind(u: &mut Unstructured<'_>) -> Result<PresenceKind> {
    use PresenceKind::*;
    Ok(*u.choose(&[Join, Part, Quit, Away, Back, Kicked, Banned, Muted, Topic])?)
}

fn chat_message<'a>(u: &mut Unstructured<'a>) -> Result<ChatMessage<'a>> {
    Ok(ChatMessage {
        id: u.arbitrary()?,
        time_ms: u.arbitrary()?,
        target: u.arbitrary()?,
        from: u.arbitrary()?,
        kind: message_kind(u)?,
        text: u.arbitrary()?,
    })
}

/// Owned storage the built `ServerMsg` borrows its lists from.
#[derive(Default)]
struct Lists<'a> {
    strs: Vec<&'a str>,
    messages: Vec<ChatMessage<'a>>,
}

fn fill_lists<'a>(u: &mut Unstructured<'a>, lists: &mut Lists<'a>) -> Result<()> {
    let n = u.int_in_range(0..=12u8)?;
    for _ in 0..n {
        lists.strs.push(u.arbitrary()?);
    }
    let n = u.int_in_range(0..=6u8)?;
    for _ in 0..n {
        lists.messages.push(chat_message(u)?);
    }
    Ok(())
}

fn build_server<'a, 'b>(u: &mut Unstructured<'a>, lists: &'b Lists<'a>) -> Result<ServerMsg<'b>>
where
    'a: 'b,
{
    let strs = StrList::Items(&lists.strs);
    let messages = MessageList::Items(&lists.messages);
    Ok(match u.int_in_range(0..=14u8)? {
        0 => ServerMsg::RegisterStarted {
            uri: u.arbitrary()?,
        },
        1 => ServerMsg::Registered {
            scratch_codes: strs,
        },
        2 => ServerMsg::LoginOk {
            user: u.arbitrary()?,
            motd: u.arbitrary()?,
        },
        3 => ServerMsg::Error {
            code: u.arbitrary()?,
            text: u.arbitrary()?,
        },
        4 => ServerMsg::Message(chat_message(u)?),
        5 => ServerMsg::Presence {
            room: u.arbitrary()?,
            user: u.arbitrary()?,
            kind: presence_kind(u)?,
            text: u.arbitrary()?,
        },
        6 => ServerMsg::Names {
            room: u.arbitrary()?,
            done: u.arbitrary()?,
            users: strs,
        },
        7 => ServerMsg::History {
            target: u.arbitrary()?,
            done: u.arbitrary()?,
            messages,
        },
        8 => ServerMsg::Info {
            text: u.arbitrary()?,
        },
        9 => ServerMsg::Topic {
            room: u.arbitrary()?,
            topic: u.arbitrary()?,
            set_by: u.arbitrary()?,
            time_ms: u.arbitrary()?,
        },
        10 => ServerMsg::RoomEntry {
            room: u.arbitrary()?,
            members: u.arbitrary()?,
            topic: u.arbitrary()?,
        },
        11 => ServerMsg::Whois {
            user: u.arbitrary()?,
            role: u.arbitrary()?,
            online: u.arbitrary()?,
            away: u.arbitrary()?,
            registered_ms: u.arbitrary()?,
            rooms: strs,
        },
        12 => ServerMsg::Bye {
            reason: u.arbitrary()?,
        },
        13 => ServerMsg::RateLimit {
            milli_per_sec: u.arbitrary()?,
            burst: u.arbitrary()?,
        },
        _ => ServerMsg::Pong {
            token: u.arbitrary()?,
        },
    })
}

/// Encode → decode for messages built from the input (first byte: client or server side).
/// Decoding gives back an equal message, re-encoding gives the same bytes, and encoding into
/// any shorter buffer is refused.
pub fn roundtrip(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(server_side) = u.arbitrary::<bool>() else {
        return;
    };
    let mut buf = vec![0u8; 2 * data.len() + 1024];
    if server_side {
        let mut lists = Lists::default();
        if fill_lists(&mut u, &mut lists).is_err() {
            return;
        }
        let Ok(msg) = build_server(&mut u, &lists) else {
            return;
        };
        let n = msg.encode(&mut buf).expect("encode");
        let bytes = &buf[..n];
        let decoded = ServerMsg::decode(bytes).expect("decode what was encoded");
        assert_eq!(decoded, msg);
        check_lists(&decoded);
        let again = encode_exact(n, |out| decoded.encode(out));
        assert_eq!(again, bytes);
    } else {
        let Ok(msg) = build_client(&mut u) else {
            return;
        };
        let n = msg.encode(&mut buf).expect("encode");
        let bytes = &buf[..n];
        let decoded = ClientMsg::decode(bytes).expect("decode what was encoded");
        assert_eq!(decoded, msg);
        let again = encode_exact(n, |out| decoded.encode(out));
        assert_eq!(again, bytes);
    }
}
