//! Deterministic two-peer simulation of the sans-IO session: a client and a server state
//! machine wired by in-memory links with a virtual clock, random segmentation and random
//! delays (seeded, so every run is the same). Covers a full handshake, thousands of records
//! both ways, and every tampering case ending in its documented error.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)] // helpers of a test crate: a panic is a failing test

use chatbox_core::buffer::BufferTooSmall;
use chatbox_core::frame::{FrameError, MAX_PLAINTEXT_LEN};
use chatbox_core::noise::{HandshakeError, StaticKeypair};
use chatbox_core::session::{Event, Input, Session, SessionError};

/// xorshift64*: deterministic randomness for keys, sizes, splits and delays.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn key(&mut self) -> [u8; 32] {
        let mut k = [0u8; 32];
        for c in k.chunks_mut(8) {
            c.copy_from_slice(&self.next().to_le_bytes());
        }
        k
    }
}

/// One direction of the link: bytes become readable at a virtual time, in random pieces.
#[derive(Default)]
struct Link {
    in_flight: Vec<(u64, Vec<u8>)>,
}
impl Link {
    fn send(&mut self, now: u64, rng: &mut Rng, bytes: &[u8]) {
        // Split into random segments; delays only grow, so the stream stays in order (TCP).
        let last = self.in_flight.last().map_or(now, |(t, _)| *t);
        let mut t = last.max(now);
        let mut rest = bytes;
        while !rest.is_empty() {
            let n = (1 + rng.below(rest.len() as u64)) as usize;
            t += rng.below(3);
            self.in_flight.push((t, rest[..n].to_vec()));
            rest = &rest[n..];
        }
    }
    fn deliver(&mut self, now: u64, into: &mut Vec<u8>) {
        let ready = self.in_flight.iter().take_while(|(t, _)| *t <= now).count();
        for (_, seg) in self.in_flight.drain(..ready) {
            into.extend_from_slice(&seg);
        }
    }
}

struct Peer {
    session: Session,
    inbox: Vec<u8>,
    received: Vec<Vec<u8>>,
    established: bool,
}
impl Peer {
    fn new(session: Session) -> Self {
        Self {
            session,
            inbox: Vec::new(),
            received: Vec::new(),
            established: false,
        }
    }
    /// Feeds everything buffered; returns the first error.
    fn pump(&mut self) -> Result<(), SessionError> {
        loop {
            let (consumed, record) = match self.session.handle_input(&mut self.inbox)? {
                Input::Incomplete { .. } => return Ok(()),
                Input::Handshake { consumed } => (consumed, None),
                Input::Record {
                    consumed,
                    plaintext,
                } => (consumed, Some(plaintext.to_vec())),
            };
            self.received.extend(record);
            self.inbox.drain(..consumed);
            while let Some(ev) = self.session.poll_event() {
                assert_eq!(ev, Event::Established);
                self.established = true;
            }
        }
    }
    fn transmit(&mut self, now: u64, rng: &mut Rng, link: &mut Link) {
        let mut out = [0u8; 512];
        let n = self.session.poll_transmit(&mut out).unwrap();
        if n > 0 {
            link.send(now, rng, &out[..n]);
        }
        while let Some(ev) = self.session.poll_event() {
            assert_eq!(ev, Event::Established);
            self.established = true;
        }
    }
}

struct World {
    now: u64,
    rng: Rng,
    server_key: StaticKeypair,
    client: Peer,
    server: Peer,
    c2s: Link,
    s2c: Link,
}

impl World {
    fn new(seed: u64) -> Self {
        let mut rng = Rng(seed | 1);
        let server_key = StaticKeypair::from_secret(rng.key());
        let client = Peer::new(Session::client(rng.key()));
        let server = Peer::new(Session::server(&server_key, rng.key(), b"\x01sim").unwrap());
        Self {
            now: 0,
            rng,
            server_key,
            client,
            server,
            c2s: Link::default(),
            s2c: Link::default(),
        }
    }

    /// Advances the virtual clock one tick, moving bytes and driving both peers.
    fn tick(&mut self) -> (Result<(), SessionError>, Result<(), SessionError>) {
        self.now += 1;
        self.client.transmit(self.now, &mut self.rng, &mut self.c2s);
        self.c2s.deliver(self.now, &mut self.server.inbox);
        let s = self.server.pump();
        self.server.transmit(self.now, &mut self.rng, &mut self.s2c);
        self.s2c.deliver(self.now, &mut self.client.inbox);
        let c = self.client.pump();
        (c, s)
    }

    fn handshake(&mut self) {
        for _ in 0..100 {
            let (c, s) = self.tick();
            c.unwrap();
            s.unwrap();
            if self.client.established && self.server.established {
                assert_eq!(
                    self.client.session.remote_static(),
                    Some(&self.server_key.public())
                );
                assert_eq!(self.client.session.handshake_payload(), b"\x01sim");
                assert_eq!(
                    self.client.session.handshake_hash(),
                    self.server.session.handshake_hash()
                );
                return;
            }
        }
        panic!("handshake did not finish in 100 ticks");
    }

    fn settle(&mut self) {
        while !(self.c2s.in_flight.is_empty() && self.s2c.in_flight.is_empty()) {
            assert!(self.now < 10_000_000, "links never drained");
            let (c, s) = self.tick();
            c.unwrap();
            s.unwrap();
        }
        let (c, s) = self.tick();
        c.unwrap();
        s.unwrap();
    }
}

fn sealed(session: &mut Session, pt: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; pt.len() + 18];
    let n = session.seal(pt, &mut out).unwrap();
    out.truncate(n);
    out
}

fn payload(rng: &mut Rng, i: usize) -> Vec<u8> {
    let len = match i % 7 {
        0 => 0,
        1 => MAX_PLAINTEXT_LEN,
        _ => rng.below(2048) as usize,
    };
    (0..len).map(|j| (i * 31 + j) as u8).collect()
}

#[test]
fn thousands_of_records_both_ways_with_random_segmentation() {
    for seed in [1, 2, 0xdead_beef] {
        let mut w = World::new(seed);
        w.handshake();
        let mut sent_c = Vec::new();
        let mut sent_s = Vec::new();
        for i in 0..2_500 {
            let pc = payload(&mut w.rng, i);
            let frame = sealed(&mut w.client.session, &pc);
            w.c2s.send(w.now, &mut w.rng, &frame);
            sent_c.push(pc);
            let ps = payload(&mut w.rng, i + 1);
            let frame = sealed(&mut w.server.session, &ps);
            w.s2c.send(w.now, &mut w.rng, &frame);
            sent_s.push(ps);
            if i % 50 == 0 {
                let (c, s) = w.tick();
                c.unwrap();
                s.unwrap();
            }
        }
        w.settle();
        assert_eq!(w.server.received.len(), sent_c.len(), "seed {seed}");
        assert_eq!(w.client.received.len(), sent_s.len(), "seed {seed}");
        assert!(
            w.server.received == sent_c,
            "seed {seed}: client records differ"
        );
        assert!(
            w.client.received == sent_s,
            "seed {seed}: server records differ"
        );
        assert_eq!(w.client.session.epochs(), (2_500, 2_500));
        assert_eq!(w.server.session.epochs(), (2_500, 2_500));
    }
}

/// Builds an established pair and three client records `r0, r1, r2` not yet delivered.
fn three_records() -> (World, [Vec<u8>; 3]) {
    let mut w = World::new(7);
    w.handshake();
    let r = [b"zero".as_slice(), b"one", b"two"].map(|p| sealed(&mut w.client.session, p));
    (w, r)
}

fn feed(server: &mut Session, bytes: &[u8]) -> Result<Option<Vec<u8>>, SessionError> {
    let mut buf = bytes.to_vec();
    match server.handle_input(&mut buf)? {
        Input::Record { plaintext, .. } => Ok(Some(plaintext.to_vec())),
        _ => Ok(None),
    }
}

#[test]
fn every_bit_flip_is_rejected() {
    let record_len = three_records().1[0].len();
    for bit in 16..record_len * 8 {
        let (mut w, r) = three_records();
        let mut bad = r[0].clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        assert_eq!(
            feed(&mut w.server.session, &bad),
            Err(SessionError::BadRecord),
            "bit {bit}"
        );
        // Dead afterwards: even the genuine record is refused with the same error.
        assert_eq!(
            feed(&mut w.server.session, &r[0]),
            Err(SessionError::BadRecord)
        );
        assert_eq!(w.server.session.error(), Some(SessionError::BadRecord));
    }
}

#[test]
fn flips_in_the_length_prefix_are_rejected() {
    for bit in 0..16 {
        let (mut w, r) = three_records();
        let mut bad = r[0].clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        let got = feed(&mut w.server.session, &bad);
        // A shorter length opens a cut record (bad tag), a longer one waits for bytes that
        // never come or exceeds the limit: never the plaintext.
        assert!(
            matches!(
                got,
                Err(SessionError::BadRecord) | Err(SessionError::Frame(_)) | Ok(None)
            ),
            "bit {bit}: {got:?}"
        );
    }
}

#[test]
fn drop_replay_reorder_truncation() {
    // Dropped record: the next one fails.
    let (mut w, r) = three_records();
    assert_eq!(
        feed(&mut w.server.session, &r[1]),
        Err(SessionError::BadRecord)
    );

    // Replayed record.
    let (mut w, r) = three_records();
    assert_eq!(
        feed(&mut w.server.session, &r[0]),
        Ok(Some(b"zero".to_vec()))
    );
    assert_eq!(
        feed(&mut w.server.session, &r[0]),
        Err(SessionError::BadRecord)
    );

    // Reordered records.
    let (mut w, r) = three_records();
    assert_eq!(
        feed(&mut w.server.session, &r[0]),
        Ok(Some(b"zero".to_vec()))
    );
    assert_eq!(
        feed(&mut w.server.session, &r[2]),
        Err(SessionError::BadRecord)
    );

    // Truncated record with a consistent length prefix.
    let (mut w, r) = three_records();
    let mut cut = r[0][..r[0].len() - 1].to_vec();
    cut[1] -= 1;
    assert_eq!(
        feed(&mut w.server.session, &cut),
        Err(SessionError::BadRecord)
    );

    // Truncated stream: waits, consumes nothing, then works when the rest arrives.
    let (mut w, r) = three_records();
    let mut partial = r[0][..5].to_vec();
    assert!(matches!(
        w.server.session.handle_input(&mut partial),
        Ok(Input::Incomplete { needed }) if needed == r[0].len() - 5
    ));
    assert_eq!(
        feed(&mut w.server.session, &r[0]),
        Ok(Some(b"zero".to_vec()))
    );

    // A record shorter than its tag.
    let (mut w, _) = three_records();
    assert_eq!(
        feed(&mut w.server.session, &[0, 3, 1, 2, 3]),
        Err(SessionError::BadRecord)
    );
}

#[test]
fn oversize_and_empty_frames() {
    let (mut w, _) = three_records();
    let mut fresh = World::new(3);
    fresh.handshake();
    assert_eq!(
        feed(&mut w.server.session, &[0x40, 0x11]),
        Err(SessionError::Frame(FrameError::TooLong { len: 16_401 }))
    );
    let (mut w, _) = three_records();
    assert_eq!(
        feed(&mut w.server.session, &[0, 0]),
        Err(SessionError::Frame(FrameError::Empty))
    );
    let big = vec![0u8; MAX_PLAINTEXT_LEN + 1];
    let mut out = vec![0u8; big.len() + 18];
    assert_eq!(
        fresh.client.session.seal(&big, &mut out),
        Err(SessionError::PlaintextTooLong)
    );
    // Still usable after refusing to seal.
    let ok = sealed(&mut fresh.client.session, b"fine");
    assert_eq!(
        feed(&mut fresh.server.session, &ok),
        Ok(Some(b"fine".to_vec()))
    );
}

#[test]
fn records_cannot_cross_directions_or_sessions() {
    // A client record reflected back at the client.
    let (mut w, r) = three_records();
    assert_eq!(
        feed(&mut w.client.session, &r[0]),
        Err(SessionError::BadRecord)
    );
    // A record from another session with other keys.
    let (_, r) = three_records();
    let mut other = World::new(8);
    other.handshake();
    assert_eq!(
        feed(&mut other.server.session, &r[0]),
        Err(SessionError::BadRecord)
    );
}

#[test]
fn handshake_tampering() {
    let mut rng = Rng(99);
    let server_key = StaticKeypair::from_secret(rng.key());
    let mut out = [0u8; 512];

    // Wrong version byte and wrong lengths in message 1.
    let mut client = Session::client(rng.key());
    let n = client.poll_transmit(&mut out).unwrap();
    let mut m1 = out[..n].to_vec();
    m1[n - 1] = 2;
    let mut server = Session::server(&server_key, rng.key(), b"").unwrap();
    assert_eq!(
        feed(&mut server, &m1),
        Err(SessionError::Handshake(HandshakeError::UnsupportedVersion))
    );
    let mut server = Session::server(&server_key, rng.key(), b"").unwrap();
    assert_eq!(
        feed(&mut server, &[0, 3, 1, 2, 3]),
        Err(SessionError::Handshake(HandshakeError::BadLength))
    );

    // Every bit flip in message 2's body fails the client's handshake (or its key check).
    let ce = rng.key();
    let se = rng.key();
    let mut base_client = Session::client(ce);
    let n1 = base_client.poll_transmit(&mut out).unwrap();
    let m1 = out[..n1].to_vec();
    let mut server = Session::server(&server_key, se, b"\x01payload").unwrap();
    feed(&mut server, &m1).unwrap();
    let n2 = server.poll_transmit(&mut out).unwrap();
    let m2 = out[..n2].to_vec();
    for bit in 16..n2 * 8 {
        let mut client = Session::client(ce);
        client.poll_transmit(&mut out).unwrap();
        let mut bad = m2.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        let got = feed(&mut client, &bad);
        let ok_but_wrong_key = got.is_ok() && client.remote_static() != Some(&server_key.public());
        assert!(
            matches!(got, Err(SessionError::Handshake(_))) || ok_but_wrong_key,
            "bit {bit}: {got:?}"
        );
        assert!(!(got.is_ok() && client.remote_static() == Some(&server_key.public())));
    }
    // Records before the handshake, and a second message 1, are refused.
    let mut server = Session::server(&server_key, rng.key(), b"").unwrap();
    let mut buf = [0u8; 64];
    assert_eq!(
        server.seal(b"x", &mut buf),
        Err(SessionError::NotEstablished)
    );
    feed(&mut server, &m1).unwrap();
    assert_eq!(feed(&mut server, &m1), Err(SessionError::UnexpectedMessage));
}

#[test]
fn low_order_ephemeral_is_refused() {
    let mut rng = Rng(5);
    let server_key = StaticKeypair::from_secret(rng.key());
    let mut server = Session::server(&server_key, rng.key(), b"").unwrap();
    // e = 0 (a low-order point) with the right version byte.
    let mut m1 = vec![0, 33];
    m1.extend_from_slice(&[0u8; 32]);
    m1.push(1);
    feed(&mut server, &m1).unwrap();
    let mut out = [0u8; 512];
    assert!(matches!(
        server.poll_transmit(&mut out),
        Err(SessionError::Handshake(HandshakeError::Crypto(_)))
    ));
}

#[test]
fn insufficient_output_buffers_keep_the_session() {
    let mut rng = Rng(11);
    let server_key = StaticKeypair::from_secret(rng.key());
    let mut client = Session::client(rng.key());
    let mut tiny = [0u8; 10];
    assert_eq!(
        client.poll_transmit(&mut tiny),
        Err(SessionError::InsufficientSize(BufferTooSmall {
            required: 35
        }))
    );
    let mut out = [0u8; 512];
    let n = client.poll_transmit(&mut out).unwrap();
    assert_eq!(n, 35);
    let mut server = Session::server(&server_key, rng.key(), b"abc").unwrap();
    feed(&mut server, &out[..n]).unwrap();
    assert_eq!(
        server.poll_transmit(&mut tiny),
        Err(SessionError::InsufficientSize(BufferTooSmall {
            required: 2 + 96 + 3
        }))
    );
    let n = server.poll_transmit(&mut out).unwrap();
    feed(&mut client, &out[..n]).unwrap();
    assert!(client.is_established() && server.is_established());
    assert_eq!(
        client.seal(b"hello", &mut tiny),
        Err(SessionError::InsufficientSize(BufferTooSmall {
            required: 23
        }))
    );
    let frame = sealed(&mut client, b"hello");
    assert_eq!(feed(&mut server, &frame), Ok(Some(b"hello".to_vec())));
}

#[test]
fn a_taken_sender_continues_the_ratchet_and_the_session_keeps_opening() {
    let mut w = World::new(23);
    assert!(
        w.server.session.take_sender().is_none(),
        "before the handshake"
    );
    w.handshake();
    // Two records from the session, then the sending half is taken out and seals the rest.
    let mut frames = vec![
        sealed(&mut w.server.session, b"one"),
        sealed(&mut w.server.session, b"two"),
    ];
    let mut sender = w.server.session.take_sender().unwrap();
    assert!(w.server.session.take_sender().is_none(), "taken once");
    assert_eq!(sender.epoch(), 2);
    let mut out = [0u8; 64];
    assert_eq!(
        w.server.session.seal(b"x", &mut out),
        Err(SessionError::SenderTaken)
    );
    // A caller's error leaves the sender usable.
    assert_eq!(
        sender.seal(b"hello", &mut [0u8; 4]),
        Err(SessionError::InsufficientSize(BufferTooSmall {
            required: 23
        }))
    );
    for p in [b"three".as_slice(), b"", b"five"] {
        let n = sender.seal(p, &mut out).unwrap();
        frames.push(out[..n].to_vec());
    }
    assert_eq!(sender.epoch(), 5);
    for (i, f) in frames.iter().enumerate() {
        assert_eq!(
            feed(&mut w.client.session, f),
            Ok(Some(
                [b"one".as_slice(), b"two", b"three", b"", b"five"][i].to_vec()
            )),
            "record {i}"
        );
    }
    // The receiving direction is untouched: the server still opens the client's records.
    let c = sealed(&mut w.client.session, b"still here");
    assert_eq!(
        feed(&mut w.server.session, &c),
        Ok(Some(b"still here".to_vec()))
    );
    assert_eq!(w.server.session.epochs(), (0, 1));
    // A record sealed twice from one position cannot exist: replaying one is refused.
    assert_eq!(
        feed(&mut w.client.session, &frames[4]),
        Err(SessionError::BadRecord)
    );
}

#[test]
fn an_established_session_split_into_its_halves_keeps_both_ratchets() {
    let mut w = World::new(29);
    // Not established: no receiver.
    let server = Session::server(&w.server_key, w.rng.key(), b"x").unwrap();
    assert!(server.into_receiver().is_none());
    w.handshake();
    let early = sealed(&mut w.client.session, b"before the split");
    assert_eq!(
        feed(&mut w.server.session, &early),
        Ok(Some(b"before the split".to_vec()))
    );
    let mut sender = w.server.session.take_sender().unwrap();
    let session = core::mem::replace(&mut w.server.session, Session::client(w.rng.key()));
    let mut receiver = session.into_receiver().unwrap();
    assert_eq!(receiver.epoch(), 1);
    // Two records in one buffer, then half a record: opened in order, then Incomplete.
    let mut buf = sealed(&mut w.client.session, b"one");
    buf.extend(sealed(&mut w.client.session, b"two"));
    let third = sealed(&mut w.client.session, b"three");
    buf.extend(&third[..5]);
    for want in [b"one".as_slice(), b"two"] {
        let consumed = match receiver.handle_input(&mut buf).unwrap() {
            Input::Record {
                consumed,
                plaintext,
            } => {
                assert_eq!(plaintext, want);
                consumed
            }
            other => panic!("expected a record, got {other:?}"),
        };
        buf.drain(..consumed);
    }
    assert!(matches!(
        receiver.handle_input(&mut buf),
        Ok(Input::Incomplete { .. })
    ));
    // The sender still speaks to the client.
    let mut out = [0u8; 64];
    let n = sender.seal(b"reply", &mut out).unwrap();
    assert_eq!(
        feed(&mut w.client.session, &out[..n]),
        Ok(Some(b"reply".to_vec()))
    );
    // A tampered record ends the receiver, for good.
    let mut bad = third.clone();
    bad[7] ^= 1;
    assert_eq!(
        receiver.handle_input(&mut bad),
        Err(SessionError::BadRecord)
    );
    let mut good = third;
    assert_eq!(
        receiver.handle_input(&mut good),
        Err(SessionError::BadRecord)
    );
}
