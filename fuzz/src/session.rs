//! Established sessions: made-up records, and seal → open through a client/server pair.

use chatbox_core::buffer::BufferTooSmall;
use arbitrary::Unstructured;
use chatbox_core::frame::MAX_PLAINTEXT_LEN;
use chatbox_core::session::{Input, RECORD_OVERHEAD, Session, SessionError};

use crate::support;

/// `data` (after a selector byte: even = to the server, odd = to the client) is fed as wire
/// bytes to one side of an established pair. No made-up record may authenticate; the first
/// bad frame ends the session for good.
pub fn open(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let (mut client, mut server) = support::fresh_pair();
    let receiver = if which & 1 == 0 {
        &mut server
    } else {
        &mut client
    };
    let mut wire = rest.to_vec();
    match receiver.handle_input(&mut wire) {
        Ok(Input::Incomplete { needed }) => {
            assert!(needed >= 1);
            assert!(receiver.is_established());
            assert_eq!(receiver.epochs(), (0, 0));
        }
        Ok(other) => panic!("made-up bytes accepted: {other:?}"),
        Err(e) => {
            assert!(matches!(
                e,
                SessionError::BadRecord | SessionError::Frame(_)
            ));
            assert_eq!(receiver.error(), Some(e));
            assert!(!receiver.is_established());
            assert_eq!(receiver.handle_input(&mut wire), Err(e));
            assert_eq!(receiver.seal(b"ping", &mut [0u8; 64]), Err(e));
            assert_eq!(receiver.poll_transmit(&mut [0u8; 64]), Err(e));
        }
    }
}

/// One direction of the pair, modelled by content: `genuine` is every record as sealed,
/// back to back; `actual` is the stream as the network carries it (damaged, with records
/// dropped or replayed). The receiver must open record `k` exactly when the frame it reads is
/// byte for byte record `k` at record `k`'s offset, and fail at the first frame that is not.
#[derive(Default)]
struct Pipe {
    /// Every sealed record, in order.
    genuine: Vec<u8>,
    /// `(start, end, plaintext)` of each record in `genuine`.
    records: Vec<(usize, usize, Vec<u8>)>,
    /// The stream as sent, after damage.
    actual: Vec<u8>,
    /// Bytes of `actual` handed to the receiver so far.
    delivered: usize,
    /// Bytes of `actual` the receiver consumed.
    consumed: usize,
    /// Records the receiver opened.
    opened: usize,
}

impl Pipe {
    fn push(&mut self, frame: &[u8], plaintext: Vec<u8>) {
        let start = self.genuine.len();
        self.genuine.extend_from_slice(frame);
        self.actual.extend_from_slice(frame);
        self.records.push((start, self.genuine.len(), plaintext));
    }
}

fn send(from: &mut Session, pipe: &mut Pipe, u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
    let len = if u.ratio(1, 16)? {
        u.int_in_range(0..=MAX_PLAINTEXT_LEN + 64)?
    } else {
        u.int_in_range(0..=64)?
    };
    let fill: u8 = u.arbitrary()?;
    let bytes = u.bytes(len.min(u.len()))?;
    let plaintext: Vec<u8> = (0..len)
        .map(|i| bytes.get(i).copied().unwrap_or(fill))
        .collect();
    let in_place = u.arbitrary::<bool>()?;
    let slack = u.int_in_range(-2i8..=8)?;
    let need = len + RECORD_OVERHEAD;
    let size = need.saturating_add_signed(isize::from(slack));
    let mut out = vec![0u8; size];
    let before = from.epochs();
    let failed = from.error();
    let result = if in_place {
        if let Some(dst) = out.get_mut(2..2 + len) {
            dst.copy_from_slice(&plaintext);
        }
        from.seal_in_place(&mut out, len)
    } else {
        from.seal(&plaintext, &mut out)
    };
    if let Some(e) = failed {
        // A dead session never seals; with sound arguments it repeats its error.
        assert!(result.is_err(), "a failed session sealed");
        if len <= MAX_PLAINTEXT_LEN && size >= need {
            assert_eq!(result, Err(e));
        }
        return Ok(());
    }
    match result {
        Ok(n) => {
            assert!(len <= MAX_PLAINTEXT_LEN);
            assert_eq!(n, need);
            assert_eq!(from.epochs().0, before.0 + 1);
            if len >= 16 {
                assert_ne!(&out[2..18], &plaintext[..16], "plaintext sent in clear");
            }
            pipe.push(&out[..n], plaintext);
        }
        Err(SessionError::PlaintextTooLong) => assert!(len > MAX_PLAINTEXT_LEN),
        Err(SessionError::InsufficientSize(BufferTooSmall { required })) => {
            assert_eq!(required, need);
            assert!(size < need);
            assert!(len <= MAX_PLAINTEXT_LEN || !in_place);
            assert_eq!(from.epochs(), before, "a refused seal moved the ratchet");
        }
        Err(e) => panic!("seal failed: {e:?}"),
    }
    Ok(())
}

fn deliver(to: &mut Session, pipe: &mut Pipe, u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
    let waiting = pipe.actual.len() - pipe.delivered;
    pipe.delivered += if u.arbitrary::<bool>()? {
        waiting
    } else {
        u.int_in_range(0..=waiting)?
    };
    loop {
        let failed = to.error();
        let before = to.epochs();
        let at = pipe.consumed;
        let mut inbox = pipe.actual[at..pipe.delivered].to_vec();
        let result = to.handle_input(&mut inbox);
        if let Some(e) = failed {
            assert_eq!(result, Err(e), "a failed session came back");
            return Ok(());
        }
        match result {
            Ok(Input::Incomplete { needed }) => {
                assert!(needed >= 1);
                return Ok(());
            }
            Ok(Input::Record {
                consumed,
                plaintext,
            }) => {
                let (start, end, want) = pipe
                    .records
                    .get(pipe.opened)
                    .expect("a record nobody sealed");
                assert_eq!(
                    (*start, *end),
                    (at, at + consumed),
                    "a record opened out of place"
                );
                assert_eq!(
                    pipe.actual[at..at + consumed],
                    pipe.genuine[*start..*end],
                    "a tampered, dropped or replayed record authenticated"
                );
                assert_eq!(plaintext, want.as_slice(), "record opened to other bytes");
                assert_eq!(plaintext.len() + RECORD_OVERHEAD, consumed);
                assert_eq!(to.epochs().1, before.1 + 1);
                pipe.opened += 1;
                pipe.consumed += consumed;
            }
            Ok(Input::Handshake { .. }) => panic!("handshake frame after establishment"),
            Err(e) => {
                let got = &pipe.actual[at..pipe.delivered];
                let genuine = pipe.genuine.get(at..pipe.delivered);
                assert_ne!(Some(got), genuine, "an intact record failed: {e:?}");
                assert!(matches!(
                    e,
                    SessionError::BadRecord | SessionError::Frame(_)
                ));
                assert_eq!(to.error(), Some(e));
                return Ok(());
            }
        }
    }
}

/// Damages the undelivered part of `pipe.actual`: flips bits in a byte, drops a record, or
/// replays one at the end.
fn damage(pipe: &mut Pipe, u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
    let from = pipe.delivered;
    match u.int_in_range(0..=2u8)? {
        0 => {
            if from < pipe.actual.len() {
                let i = u.int_in_range(from..=pipe.actual.len() - 1)?;
                pipe.actual[i] ^= u.int_in_range(1..=255u8)?;
            }
        }
        1 => {
            // Drop the bytes of a record, where they are in the actual stream.
            if pipe.records.is_empty() {
                return Ok(());
            }
            let (s, e, _) = *u.choose(&pipe.records)?;
            if s >= from && e <= pipe.actual.len() {
                pipe.actual.drain(s..e);
            }
        }
        _ => {
            if pipe.records.is_empty() {
                return Ok(());
            }
            let (s, e, _) = *u.choose(&pipe.records)?;
            let copy = pipe.genuine[s..e].to_vec();
            pipe.actual.extend_from_slice(&copy);
        }
    }
    Ok(())
}

fn run(u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
    let (mut client, mut server) = support::fresh_pair();
    let mut c2s = Pipe::default();
    let mut s2c = Pipe::default();
    for _ in 0..64 {
        if u.is_empty() {
            break;
        }
        match u.int_in_range(0..=7u8)? {
            0 | 1 => send(&mut client, &mut c2s, u)?,
            2 | 3 => send(&mut server, &mut s2c, u)?,
            4 => deliver(&mut server, &mut c2s, u)?,
            5 => deliver(&mut client, &mut s2c, u)?,
            6 => damage(&mut c2s, u)?,
            _ => damage(&mut s2c, u)?,
        }
    }
    Ok(())
}

/// Seal → open through an established pair, driven by fuzz-chosen operations: records of any
/// length both ways (some too long, some into too small buffers, `seal` and `seal_in_place`),
/// delivered in pieces; bit flips, dropped and replayed records. A record opens exactly when
/// its bytes are the genuine record's at its place in the stream, to what was sealed; the first
/// frame that is not fails, and the session stays dead.
pub fn roundtrip(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let _ = run(&mut u);
}
