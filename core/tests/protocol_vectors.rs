//! Known-answer vectors from an independent implementation of docs/DESIGN.md §2
//! (tests/data/chatbox-protocol.json): HKDF, the cipher, both handshake messages, the split
//! keys and the first transport records both ways must match byte for byte.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)] // helpers of a test crate: a panic is a failing test

use chatbox_core::crypto::cipher;
use chatbox_core::crypto::hkdf::hkdf3;
use chatbox_core::noise::{
    Initiator, PROLOGUE, PROTOCOL_NAME, Responder, StaticKeypair, fingerprint,
};
use chatbox_core::session::{Input, Ratchet, Session};
use serde_json::Value;

const VECTORS: &str = include_str!("data/chatbox-protocol.json");

fn v() -> Value {
    serde_json::from_str(VECTORS).unwrap()
}

fn hx(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

fn h32(v: &Value) -> [u8; 32] {
    hx(v).try_into().unwrap()
}

#[test]
fn names() {
    let v = v();
    assert_eq!(v["protocol_name"], PROTOCOL_NAME);
    assert_eq!(v["prologue"].as_str().unwrap().as_bytes(), PROLOGUE);
}

#[test]
fn hkdf_three_outputs() {
    let v = &v()["hkdf"];
    let (a, b, c) = hkdf3(&h32(&v["chaining_key"]), &hx(&v["ikm"]));
    let out = &v["outputs"];
    assert_eq!(a.to_vec(), hx(&out[0]));
    assert_eq!(b.to_vec(), hx(&out[1]));
    assert_eq!(c.to_vec(), hx(&out[2]));
}

#[test]
fn cipher_encrypt_and_decrypt() {
    let v = &v()["cipher_encrypt"];
    let k = h32(&v["k"]);
    let n = v["n"].as_u64().unwrap();
    let ad = hx(&v["ad"]);
    let pt = hx(&v["plaintext"]);
    let mut out = [0u8; 64];
    let len = cipher::encrypt(&k, n, &ad, &pt, &mut out).unwrap();
    assert_eq!(out[..len].to_vec(), hx(&v["output"]));
    let mut back = [0u8; 64];
    let plen = cipher::decrypt(&k, n, &ad, &out[..len], &mut back).unwrap();
    assert_eq!(&back[..plen], &pt[..]);
    // Every single-bit flip of the output, a wrong nonce and a wrong AD are rejected.
    for bit in 0..len * 8 {
        let mut bad = out;
        bad[bit / 8] ^= 1 << (bit % 8);
        assert!(cipher::decrypt(&k, n, &ad, &bad[..len], &mut back).is_err());
    }
    // The nonce only feeds the CTR IV; it is not under the MAC (docs/DESIGN.md §2, "Cipher"). Opening with
    // another nonce therefore yields garbage, never the plaintext. The protocol never uses one
    // key with two nonces: every record has its own keys, and each handshake key encrypts once.
    let other = cipher::decrypt(&k, n + 1, &ad, &out[..len], &mut back).unwrap();
    assert_ne!(&back[..other], &pt[..]);
    assert!(cipher::decrypt(&k, n, b"other", &out[..len], &mut back).is_err());
}

#[test]
fn handshake_messages_split_and_hash() {
    let v = v();
    let hs = &v["handshake"];
    let server = StaticKeypair::from_secret(h32(&hs["server_static_private"]));
    assert_eq!(server.public().to_vec(), hx(&hs["server_static_public"]));
    assert_eq!(
        server.fingerprint().as_str(),
        hs["fingerprint"].as_str().unwrap()
    );
    assert_eq!(fingerprint(&server.public()), server.fingerprint());

    let mut initiator = Initiator::new(h32(&hs["client_ephemeral_private"]));
    let mut m1 = [0u8; 64];
    let m1_len = initiator.write_message1(&mut m1).unwrap();
    assert_eq!(m1[..m1_len].to_vec(), hx(&hs["message1_body"]));

    let mut responder = Responder::new(&server, h32(&hs["server_ephemeral_private"]));
    responder.read_message1(&m1[..m1_len]).unwrap();
    let payload = hx(&hs["server_payload"]);
    let mut m2 = [0u8; 512];
    let (m2_len, server_keys) = responder.write_message2(&payload, &mut m2).unwrap();
    assert_eq!(m2[..m2_len].to_vec(), hx(&hs["message2_body"]));

    let mut got_payload = [0u8; 256];
    let (rs, plen, client_keys) = initiator
        .read_message2(&m2[..m2_len], &mut got_payload)
        .unwrap();
    assert_eq!(rs, server.public());
    assert_eq!(&got_payload[..plen], &payload[..]);
    for keys in [&server_keys, &client_keys] {
        assert_eq!(keys.handshake_hash.to_vec(), hx(&hs["handshake_hash"]));
        assert_eq!(
            keys.client_to_server.to_vec(),
            hx(&hs["split_client_to_server"])
        );
        assert_eq!(
            keys.server_to_client.to_vec(),
            hx(&hs["split_server_to_client"])
        );
    }
}

#[test]
fn transport_ratchet_records() {
    let v = v();
    let records = v["transport_client_to_server"].as_array().unwrap();
    let mut sender = Ratchet::new(h32(&v["handshake"]["split_client_to_server"]));
    let mut receiver = Ratchet::new(h32(&v["handshake"]["split_client_to_server"]));
    for rec in records {
        assert_eq!(sender.epoch(), rec["n"].as_u64().unwrap());
        assert_eq!(sender.chain_key().to_vec(), hx(&rec["chain_key_before"]));
        let pt = hx(&rec["plaintext"]);
        let mut frame = vec![0u8; 2 + pt.len() + 16];
        frame[..2].copy_from_slice(&((pt.len() + 16) as u16).to_be_bytes());
        frame[2..2 + pt.len()].copy_from_slice(&pt);
        sender.seal_body(&mut frame[2..]).unwrap();
        assert_eq!(frame, hx(&rec["frame"]));
        assert_eq!(sender.chain_key().to_vec(), hx(&rec["chain_key_after"]));
        let len = receiver.open_body(&mut frame[2..]).unwrap();
        assert_eq!(&frame[2..2 + len], &pt[..]);
        assert_eq!(receiver.chain_key(), sender.chain_key());
    }
}

/// The whole exchange through the sans-IO `Session`s, fed with the vector keys: message
/// frames on the wire, then the first records both ways.
#[test]
fn sessions_reproduce_the_wire_bytes() {
    let v = v();
    let hs = &v["handshake"];
    let server_key = StaticKeypair::from_secret(h32(&hs["server_static_private"]));
    let mut client = Session::client(h32(&hs["client_ephemeral_private"]));
    let mut server = Session::server(
        &server_key,
        h32(&hs["server_ephemeral_private"]),
        &hx(&hs["server_payload"]),
    )
    .unwrap();

    let mut wire = [0u8; 512];
    let n = client.poll_transmit(&mut wire).unwrap();
    assert_eq!(wire[2..n].to_vec(), hx(&hs["message1_body"]));
    assert!(matches!(
        server.handle_input(&mut wire[..n]).unwrap(),
        Input::Handshake { consumed } if consumed == n
    ));
    let n = server.poll_transmit(&mut wire).unwrap();
    assert_eq!(wire[2..n].to_vec(), hx(&hs["message2_body"]));
    assert!(server.is_established());
    client.handle_input(&mut wire[..n]).unwrap();
    assert!(client.is_established());
    assert_eq!(client.remote_static(), Some(&server_key.public()));
    assert_eq!(client.handshake_payload(), &hx(&hs["server_payload"])[..]);
    assert_eq!(client.handshake_hash().to_vec(), hx(&hs["handshake_hash"]));

    for rec in v["transport_client_to_server"].as_array().unwrap() {
        let n = client.seal(&hx(&rec["plaintext"]), &mut wire).unwrap();
        assert_eq!(wire[..n].to_vec(), hx(&rec["frame"]));
        match server.handle_input(&mut wire[..n]).unwrap() {
            Input::Record { plaintext, .. } => assert_eq!(plaintext, &hx(&rec["plaintext"])[..]),
            other => panic!("expected a record, got {other:?}"),
        }
    }
    let first = &v["transport_server_to_client_first"];
    let n = server.seal(&hx(&first["plaintext"]), &mut wire).unwrap();
    assert_eq!(wire[..n].to_vec(), hx(&first["frame"]));
}
