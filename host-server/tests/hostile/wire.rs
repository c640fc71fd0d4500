//! Hostile clients, on the wire: random bytes, bad frame lengths, bit flips, dropped,
//! reordered, replayed and foreign records, a man in the middle with its own key. The fixture
//! (an honest pair in #lobby, stored-rows snapshots) is in fixture.rs.

use core::net::{Ipv4Addr, SocketAddr};
use core::time::Duration;
use std::io::{Read, Write};
use std::net::TcpListener;

use crate::fixture::*;
use chatbox_core::frame::MAX_WIRE_LEN;
use chatbox_core::noise::{StaticKeypair, fingerprint};
use chatbox_core::proto::{ClientMsg, ServerMsg};
use chatbox_core::session::{Input, Session};
use chatbox_server::test_util::*;

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
    let mut rec = c.sealed(&ClientMsg::Ping { token: 1 });
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
            rec_len = c.sealed(&register).len();
        }
    }
    for &bit in &bits {
        let mut c = Client::connect(room.addr());
        let mut rec = c.sealed(&register);
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
    let _r1 = c.sealed(&say("dropped-1"));
    let r2 = c.sealed(&say("dropped-2"));
    c.stream.write_all(&r2).unwrap();
    assert_closed(&mut c, "dropped record");
    // Reordered: second then first.
    let mut c = login_with(room.addr(), "alice", &room.alice.scratch[0]);
    let r1 = c.sealed(&say("reordered-1"));
    let r2 = c.sealed(&say("reordered-2"));
    c.stream.write_all(&r2).unwrap();
    c.stream.write_all(&r1).unwrap();
    assert_closed(&mut c, "reordered records");
    // Replayed later: three good records, then the first again.
    let mut c = login_with(room.addr(), "alice", &room.alice.scratch[1]);
    let r1 = c.sealed(&ClientMsg::Ping { token: 1 });
    c.stream.write_all(&r1).unwrap();
    c.recv_until("pong 1", |m| matches!(m, ServerMsg::Pong { token: 1 }));
    c.ping(2);
    c.ping(3);
    c.stream.write_all(&r1).unwrap();
    assert_closed(&mut c, "record replayed later");
    // Foreign: a record sealed for another session (another handshake) is refused.
    let mut a = Client::connect(room.addr());
    let mut b = Client::connect(room.addr());
    let ra = a.sealed(&ClientMsg::Ping { token: 5 });
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
