//! Fixed keys and a deterministic, established client/server session pair.

use std::sync::OnceLock;

use chatbox_core::noise::StaticKeypair;
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

/// A fresh server session with the fixed keys and `payload` (≤ 256 bytes).
pub fn server(payload: &[u8]) -> Session {
    Session::server(server_static(), SERVER_EPHEMERAL, payload).expect("payload ≤ 256 bytes")
}

/// Message 1 (a whole frame) from a fresh client with the fixed ephemeral key, and the client.
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

/// The genuine message 2 (a whole frame) carrying `payload`, answering [`client_hello`].
pub fn server_reply(payload: &[u8]) -> Vec<u8> {
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
/// `poll_transmit`, with every event and key checked.
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
