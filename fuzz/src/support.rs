//! Fixed keys and a deterministic, established client/server session pair.
//!
//! The handshake is deterministic (fixed secrets), so every execution used to redo the same
//! X25519 work (six scalar multiplications for a pair) to reach the same states. The states are
//! now built once per process, with every check, and each execution starts from a clone
//! ([`fresh_pair`], [`fresh_server`], [`fresh_client`]); genuine replies are computed from a
//! cloned responder and remembered per payload ([`server_reply`]). What the targets feed and
//! assert is unchanged; they are 7–25 times faster. `Session` and `Responder` are `Clone` only
//! with `cfg(fuzzing)` (cargo-fuzz sets it; `.cargo/config.toml` here sets it for `cargo test`):
//! in the product a copied ratchet would reuse record keys.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::OnceLock;

use chatbox_core::frame;
use chatbox_core::noise::{Responder, StaticKeypair};
use chatbox_core::session::{Event, Input, Session};

/// The server's static secret (any 32 bytes are a valid X25519 secret).
pub const SERVER_STATIC_SECRET: [u8; 32] = [0x5a; 32];
/// The client's ephemeral secret.
pub const CLIENT_EPHEMERAL: [u8; 32] = [0xc1; 32];
/// The server's ephemeral secret.
pub const SERVER_EPHEMERAL: [u8; 32] = [0x5e; 32];
/// What the server says about itself in message 2.
pub const SERVER_PAYLOAD: &[u8] = b"chatbox-fuzz/1";
/// Enough for any handshake frame: prefix + 96 + 256.
pub const HANDSHAKE_BUF: usize = 2 + 96 + 256;

/// The server key pair, computed once per process.
pub fn server_static() -> &'static StaticKeypair {
    static KEY: OnceLock<StaticKeypair> = OnceLock::new();
    KEY.get_or_init(|| StaticKeypair::from_secret(SERVER_STATIC_SECRET))
}

/// A fresh server session with the fixed keys and `payload` (≤ 256 bytes), built from scratch.
pub fn server(payload: &[u8]) -> Session {
    Session::server(server_static(), SERVER_EPHEMERAL, payload).expect("payload ≤ 256 bytes")
}

/// Message 1 (a whole frame) from a fresh client with the fixed ephemeral key, and the client;
/// built from scratch.
pub fn client_hello() -> (Session, Vec<u8>) {
    let mut client = Session::client(CLIENT_EPHEMERAL);
    let mut buf = [0u8; HANDSHAKE_BUF];
    let n = client.poll_transmit(&mut buf).expect("message 1");
    assert_eq!(n, 2 + 33);
    assert_eq!(
        client.poll_transmit(&mut buf),
        Ok(0),
        "message 1 sent twice"
    );
    (client, buf[..n].to_vec())
}

/// The genuine message 2 (a whole frame) carrying `payload`, answering [`client_hello`], built
/// from scratch through two `Session`s.
pub fn server_reply_from_scratch(payload: &[u8]) -> Vec<u8> {
    let (_, mut hello) = client_hello();
    let mut server = server(payload);
    let consumed = hello.len();
    assert_eq!(
        server.handle_input(&mut hello),
        Ok(Input::Handshake { consumed })
    );
    let mut buf = [0u8; HANDSHAKE_BUF];
    let n = server.poll_transmit(&mut buf).expect("message 2");
    assert_eq!(n, 2 + 96 + payload.len());
    buf[..n].to_vec()
}

/// An established `(client, server)` pair: the whole handshake through `handle_input` and
/// `poll_transmit`, with every event and key checked; built from scratch.
pub fn established_pair() -> (Session, Session) {
    let (mut client, mut hello) = client_hello();
    let mut server = server(SERVER_PAYLOAD);
    let n = hello.len();
    assert_eq!(
        server.handle_input(&mut hello),
        Ok(Input::Handshake { consumed: n })
    );
    assert_eq!(server.poll_event(), None);
    let mut buf = [0u8; HANDSHAKE_BUF];
    let n = server.poll_transmit(&mut buf).expect("message 2");
    assert_eq!(server.poll_event(), Some(Event::Established));
    assert_eq!(
        client.handle_input(&mut buf[..n]),
        Ok(Input::Handshake { consumed: n })
    );
    assert_eq!(client.poll_event(), Some(Event::Established));
    assert!(client.is_established() && server.is_established());
    assert_eq!(client.handshake_hash(), server.handshake_hash());
    assert_eq!(client.remote_static(), Some(&server_static().public()));
    assert_eq!(client.handshake_payload(), SERVER_PAYLOAD);
    (client, server)
}

/// States built once per process (with every check of the functions above).
struct Templates {
    /// [`established_pair`].
    pair: (Session, Session),
    /// `server(SERVER_PAYLOAD)`, before message 1.
    server: Session,
    /// The client of [`client_hello`], after message 1.
    client: Session,
    /// The responder after reading the genuine message 1, before writing message 2.
    responder: Responder,
}

fn templates() -> &'static Templates {
    static T: OnceLock<Templates> = OnceLock::new();
    T.get_or_init(|| {
        let (client, hello) = client_hello();
        let mut responder = Responder::new(server_static(), SERVER_EPHEMERAL);
        responder
            .read_message1(&hello[frame::HEADER_LEN..])
            .expect("genuine message 1");
        let t = Templates {
            pair: established_pair(),
            server: server(SERVER_PAYLOAD),
            client,
            responder,
        };
        // The shortcut in `server_reply` answers what two fresh sessions answer.
        for payload in [&b""[..], SERVER_PAYLOAD, &[0xa5; 256]] {
            assert_eq!(
                reply_from(&t.responder, payload),
                server_reply_from_scratch(payload)
            );
        }
        t
    })
}

/// An established `(client, server)` pair as [`established_pair`] returns it: a clone of
/// one built (and checked) once per process.
#[must_use]
pub fn fresh_pair() -> (Session, Session) {
    let (client, server) = &templates().pair;
    (client.clone(), server.clone())
}

/// `server(SERVER_PAYLOAD)` before message 1: a clone of one built once per process.
#[must_use]
pub fn fresh_server() -> Session {
    templates().server.clone()
}

/// The client of [`client_hello`], having sent message 1: a clone of one built once per
/// process.
#[must_use]
pub fn fresh_client() -> Session {
    templates().client.clone()
}

fn reply_from(responder: &Responder, payload: &[u8]) -> Vec<u8> {
    let mut body = [0u8; HANDSHAKE_BUF - frame::HEADER_LEN];
    let (n, _) = responder
        .clone()
        .write_message2(payload, &mut body)
        .expect("message 2");
    assert_eq!(n, 96 + payload.len());
    let mut out = vec![0u8; frame::HEADER_LEN + n];
    assert_eq!(frame::encode(&body[..n], &mut out), Ok(out.len()));
    out
}

/// The genuine message 2 (a whole frame) carrying `payload` (≤ 256 bytes), answering
/// [`client_hello`]: the same bytes as [`server_reply_from_scratch`] (checked once per process),
/// from a cloned responder that has read message 1, remembered per payload (a pure
/// function of it; the memo is bounded and never changes an answer).
#[must_use]
pub fn server_reply(payload: &[u8]) -> Vec<u8> {
    thread_local! {
        static MEMO: RefCell<HashMap<Vec<u8>, Vec<u8>>> = RefCell::new(HashMap::new());
    }
    MEMO.with_borrow_mut(|memo| {
        if let Some(reply) = memo.get(payload) {
            return reply.clone();
        }
        let reply = reply_from(&templates().responder, payload);
        if memo.len() >= 4096 {
            memo.clear();
        }
        memo.insert(payload.to_vec(), reply.clone());
        reply
    })
}

#[cfg(test)]
mod tests {
    use chatbox_core::session::{Input, Session};

    use super::*;

    fn seal(s: &mut Session, text: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; text.len() + chatbox_core::session::RECORD_OVERHEAD];
        let n = s.seal(text, &mut out).expect("seal");
        out.truncate(n);
        out
    }

    /// Clones act exactly like freshly built states, and using or dropping one changes
    /// neither the template nor the next clone.
    #[test]
    fn clones_are_independent() {
        let (mut c0, mut s0) = established_pair();
        let r0: Vec<_> = (0..3u8).map(|i| seal(&mut c0, &[i; 40])).collect();
        let t0: Vec<_> = (0..3u8).map(|i| seal(&mut s0, &[i; 7])).collect();
        for _ in 0..3 {
            let (mut c, mut s) = fresh_pair();
            assert_eq!(c.handshake_hash(), c0.handshake_hash());
            let r: Vec<_> = (0..3u8).map(|i| seal(&mut c, &[i; 40])).collect();
            assert_eq!(r, r0);
            let t: Vec<_> = (0..3u8).map(|i| seal(&mut s, &[i; 7])).collect();
            assert_eq!(t, t0);
            for rec in &r {
                let mut wire = rec.clone();
                assert!(matches!(
                    s.handle_input(&mut wire),
                    Ok(Input::Record { .. })
                ));
            }
            assert_eq!(s.epochs(), (3, 3));
            // Kill one clone: the next one is still alive.
            assert!(s.handle_input(&mut [0, 1, 0]).is_err());
        }
        let (_, hello) = client_hello();
        let mut server = fresh_server();
        let mut wire = hello.clone();
        assert!(server.handle_input(&mut wire).is_ok());
        let mut buf = [0u8; HANDSHAKE_BUF];
        let n = server.poll_transmit(&mut buf).expect("message 2");
        assert_eq!(&buf[..n], server_reply_from_scratch(SERVER_PAYLOAD));
        for payload in [&b"x"[..], b"chatbox-server 0.1", &[7u8; 200]] {
            assert_eq!(server_reply(payload), server_reply_from_scratch(payload));
            assert_eq!(server_reply(payload), server_reply_from_scratch(payload));
            let mut client = fresh_client();
            let mut reply = server_reply(payload);
            let n = reply.len();
            assert_eq!(
                client.handle_input(&mut reply),
                Ok(Input::Handshake { consumed: n })
            );
            assert_eq!(client.handshake_payload(), payload);
        }
    }
}
