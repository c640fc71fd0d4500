//! Both handshake roles fed untrusted bytes.

use chatbox_core::buffer::BufferTooSmall;
use arbitrary::Unstructured;
use chatbox_core::noise::{HandshakeError, MAX_PAYLOAD_LEN, MESSAGE1_LEN, PROTOCOL_VERSION};
use chatbox_core::session::{Event, Input, Session, SessionError};

use crate::support::{self, HANDSHAKE_BUF, SERVER_PAYLOAD};

/// Feeds `wire` to `session` frame by frame until it wants more bytes or fails. Calls
/// `on_handshake` after each handshake frame. Returns the error, if one ended the session.
fn drive(
    session: &mut Session,
    wire: &mut [u8],
    mut on_handshake: impl FnMut(&mut Session, &[u8]),
) -> Option<SessionError> {
    let mut off = 0;
    loop {
        let (result, body) = {
            let rest = &mut wire[off..];
            let body = rest.get(2..).map(<[u8]>::to_vec).unwrap_or_default();
            (
                session.handle_input(rest).map(|i| match i {
                    Input::Incomplete { needed } => (0, Some(needed), false),
                    Input::Handshake { consumed } => (consumed, None, false),
                    Input::Record { consumed, .. } => (consumed, None, true),
                }),
                body,
            )
        };
        match result {
            Ok((_, Some(needed), _)) => {
                assert!(needed >= 1);
                return None;
            }
            Ok((consumed, None, record)) => {
                assert!(!record, "a made-up record authenticated");
                assert!(consumed > 2);
                on_handshake(session, &body[..consumed - 2]);
                off += consumed;
            }
            Err(e) => {
                assert!(!matches!(e, SessionError::InsufficientSize(_)));
                assert_eq!(session.error(), Some(e));
                assert!(!session.is_established());
                // Dead stays dead.
                assert_eq!(session.handle_input(&mut [0, 1, 0]), Err(e));
                assert_eq!(session.poll_transmit(&mut [0u8; HANDSHAKE_BUF]), Err(e));
                assert_eq!(session.seal(b"x", &mut [0u8; 64]), Err(e));
                return Some(e);
            }
        }
    }
}

/// The server side: `data` is what a client sent. A handshake frame is accepted only if it is
/// exactly `e (32) || 0x01`; then message 2 must come out (or a weak-key error), never twice.
pub fn responder(data: &[u8]) {
    let mut server = support::fresh_server();
    let mut wire = data.to_vec();
    let mut hellos = 0;
    drive(&mut server, &mut wire, |s, body| {
        hellos += 1;
        assert_eq!(hellos, 1, "a second message 1 was accepted");
        assert_eq!(body.len(), MESSAGE1_LEN);
        assert_eq!(body[MESSAGE1_LEN - 1], PROTOCOL_VERSION);
        assert_eq!(s.poll_event(), None);
        assert!(!s.is_established());
        // Too small a buffer leaves the session intact.
        let required = 2 + 96 + SERVER_PAYLOAD.len();
        assert_eq!(
            s.poll_transmit(&mut [0u8; 40]),
            Err(SessionError::InsufficientSize(BufferTooSmall { required }))
        );
        let mut out = [0u8; HANDSHAKE_BUF];
        match s.poll_transmit(&mut out) {
            Ok(n) => {
                assert_eq!(n, required);
                assert_eq!(out[..2], ((n - 2) as u16).to_be_bytes());
                assert_eq!(s.poll_event(), Some(Event::Established));
                assert!(s.is_established());
                assert_eq!(s.poll_transmit(&mut out), Ok(0));
                assert_eq!(s.epochs(), (0, 0));
            }
            Err(SessionError::Handshake(HandshakeError::Crypto(_))) => {
                // A low-order ephemeral key from the client.
                assert!(!s.is_established());
            }
            Err(e) => panic!("message 2 failed: {e:?}"),
        }
    });
}

/// The client side. First byte even: the rest is raw bytes from a "server" after message 1;
/// only a genuine message 2 may be accepted.
/// First byte odd: a genuine message 2 carrying a fuzz-chosen payload, then fuzz-chosen
/// changes to its body (byte flips, truncation, extension); the client must accept it exactly
/// when it is unchanged, and then report the server's key and payload.
pub fn initiator(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut client = support::fresh_client();
    if mode & 1 == 0 {
        let mut wire = rest.to_vec();
        let mut replies = 0;
        drive(&mut client, &mut wire, |c, body| {
            replies += 1;
            // Only the server's genuine reply (for the payload it carries) is accepted.
            let genuine = support::server_reply(c.handshake_payload());
            assert_eq!(body, &genuine[2..], "a made-up message 2 was accepted");
            assert_eq!(c.remote_static(), Some(&support::server_static().public()));
        });
        assert!(replies <= 1);
        return;
    }

    let mut u = Unstructured::new(rest);
    let Ok(payload_len) = u.int_in_range(0..=MAX_PAYLOAD_LEN) else {
        return;
    };
    let Ok(payload) = u.bytes(payload_len.min(u.len())) else {
        return;
    };
    let payload = payload.to_vec();
    let genuine = support::server_reply(&payload);
    let mut body = genuine[2..].to_vec();
    // An exhausted `Unstructured` keeps answering `Ok(min)`: stop when it is empty.
    while !u.is_empty() {
        let Ok(op) = u.int_in_range(0..=3u8) else {
            break;
        };
        match op {
            0 | 1 => {
                let (Ok(pos), Ok(x)) = (u.arbitrary::<u16>(), u.int_in_range(1..=255u8)) else {
                    break;
                };
                if !body.is_empty() {
                    let pos = usize::from(pos) % body.len();
                    body[pos] ^= x;
                }
            }
            2 => {
                let Ok(keep) = u.arbitrary::<u16>() else {
                    break;
                };
                body.truncate(usize::from(keep) % (body.len() + 1));
            }
            _ => {
                let Ok(extra) = u.bytes(u.len().min(64)) else {
                    break;
                };
                body.extend_from_slice(extra);
            }
        }
    }
    if body.is_empty() {
        return;
    }
    let mut wire = Vec::with_capacity(body.len() + 2);
    wire.extend_from_slice(&(body.len() as u16).to_be_bytes());
    wire.extend_from_slice(&body);
    let unchanged = wire == genuine;
    let mut accepted = false;
    let err = drive(&mut client, &mut wire, |c, _| {
        accepted = true;
        assert_eq!(c.poll_event(), Some(Event::Established));
        assert!(c.is_established());
        assert_eq!(c.remote_static(), Some(&support::server_static().public()));
        assert_eq!(c.handshake_payload(), payload.as_slice());
        assert_eq!(c.poll_transmit(&mut [0u8; 64]), Ok(0));
    });
    assert_eq!(
        accepted, unchanged,
        "tampered message 2 accepted, or genuine refused"
    );
    assert_eq!(err.is_some(), !unchanged);
}
