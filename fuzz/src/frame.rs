//! `core::frame`: the incremental decoder on arbitrary bytes, and encode → decode.

use chatbox_core::buffer::BufferTooSmall;
use arbitrary::Unstructured;
use chatbox_core::frame::{
    self, Decoded, FrameError, HEADER_LEN, MAX_FRAME_LEN, MAX_WIRE_LEN, decode as decode_frame,
};

/// Decodes `data` as a stream of frames. Frames must be exactly what the prefix says, re-encode
/// to the same bytes, and their every prefix is `Incomplete` with the right `needed`; errors
/// only for a zero or too large prefix.
pub fn decode(data: &[u8]) {
    let mut rest = data;
    loop {
        let peeked = frame::peek_len(rest);
        match decode_frame(rest) {
            Ok(Decoded::Incomplete { needed }) => {
                assert!(needed >= 1);
                assert!(rest.len() + needed <= MAX_WIRE_LEN);
                match peeked {
                    Ok(None) => assert_eq!(rest.len() + needed, HEADER_LEN),
                    Ok(Some(len)) => assert_eq!(rest.len() + needed, HEADER_LEN + len),
                    Err(e) => panic!("peek_len failed ({e}) where decode did not"),
                }
                return;
            }
            Ok(Decoded::Frame(body, consumed)) => {
                assert_eq!(peeked, Ok(Some(body.len())));
                assert_eq!(consumed, HEADER_LEN + body.len());
                assert!((1..=MAX_FRAME_LEN).contains(&body.len()));
                assert_eq!(body, &rest[HEADER_LEN..consumed]);
                let mut out = vec![0u8; consumed];
                assert_eq!(frame::encode(body, &mut out), Ok(consumed));
                assert_eq!(out, &rest[..consumed]);
                // A few prefixes: incomplete, and say exactly what is missing.
                for cut in [0, 1, HEADER_LEN, consumed / 2, consumed - 1] {
                    match decode_frame(&rest[..cut]) {
                        Ok(Decoded::Incomplete { needed }) => {
                            let want = if cut < HEADER_LEN {
                                HEADER_LEN
                            } else {
                                consumed
                            };
                            assert_eq!(cut + needed, want, "cut at {cut}");
                        }
                        other => panic!("prefix of {cut} bytes decoded as {other:?}"),
                    }
                }
                rest = &rest[consumed..];
            }
            Err(e) => {
                assert_eq!(peeked, Err(e));
                let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                match e {
                    FrameError::Empty => assert_eq!(len, 0),
                    FrameError::TooLong { len: l } => {
                        assert_eq!(l, len);
                        assert!(len > MAX_FRAME_LEN);
                    }
                    other => panic!("decode returned {other:?}"),
                }
                return;
            }
        }
    }
}

/// Encodes a body of fuzz-chosen length (0 to 70 000) into a buffer of fuzz-chosen size, then
/// decodes it back, with junk after it.
pub fn roundtrip(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(len) = u.int_in_range(0..=70_000u32) else {
        return;
    };
    let len = len as usize;
    let slack: i16 = u.arbitrary().unwrap_or(0);
    let fill: u8 = u.arbitrary().unwrap_or(0);
    let junk = u.take_rest();
    let body = body(junk, fill, len);
    let total = HEADER_LEN + len;
    let out_len = total.saturating_add_signed(isize::from(slack) % 64);
    let mut out = vec![0u8; out_len + junk.len()];

    let header = frame::header(len);
    match frame::encode(&body, &mut out[..out_len]) {
        Ok(n) => {
            assert_eq!(n, total);
            assert!((1..=MAX_FRAME_LEN).contains(&len));
            assert_eq!(header.map(|h| h.to_vec()), Ok(out[..HEADER_LEN].to_vec()));
            out[n..n + junk.len()].copy_from_slice(junk);
            assert_eq!(
                decode_frame(&out[..n + junk.len()]),
                Ok(Decoded::Frame(&body, n))
            );
            assert_eq!(
                decode_frame(&out[..n - 1]),
                Ok(Decoded::Incomplete { needed: 1 })
            );
        }
        Err(FrameError::Empty) => {
            assert_eq!(len, 0);
            assert_eq!(header, Err(FrameError::Empty));
        }
        Err(FrameError::TooLong { len: l }) => {
            assert_eq!(l, len);
            assert!(len > MAX_FRAME_LEN);
            assert_eq!(header, Err(FrameError::TooLong { len }));
        }
        Err(FrameError::InsufficientSize(BufferTooSmall { required })) => {
            assert_eq!(required, total);
            assert!(out_len < total);
            assert!(header.is_ok());
        }
        Err(other) => panic!("encode returned {other:?}"),
    }
}

/// `len` bytes: `junk` repeated, each byte XOR `fill` (zeros if `junk` is empty). Built by
/// doubling with `extend_from_within` (a few `memcpy`s) rather than byte by byte: with coverage
/// instrumentation the per-byte loop was most of the target's time.
fn body(junk: &[u8], fill: u8, len: usize) -> Vec<u8> {
    let mut body = Vec::with_capacity(len);
    if junk.is_empty() {
        body.resize(len, 0);
        return body;
    }
    body.extend(junk.iter().take(len).map(|b| b ^ fill));
    // `body.len()` stays a multiple of the period `junk.len()` until the last, partial copy.
    while body.len() < len {
        let n = body.len().min(len - body.len());
        body.extend_from_within(..n);
    }
    body
}

#[cfg(test)]
mod tests {
    /// The doubling builder gives the bytes of the obvious definition.
    #[test]
    fn body_matches_its_definition() {
        for junk in [
            &b""[..],
            b"a",
            b"xyz",
            &[0x5a; 64],
            &(0..=255).collect::<Vec<u8>>(),
        ] {
            for fill in [0u8, 0xa5] {
                for len in [0, 1, 2, 3, 63, 64, 65, 255, 256, 257, 1000, 70_000] {
                    let want: Vec<u8> = (0..len)
                        .map(|i| junk.get(i % junk.len().max(1)).copied().unwrap_or(fill) ^ fill)
                        .collect();
                    assert_eq!(super::body(junk, fill, len), want, "{junk:?} {fill} {len}");
                }
            }
        }
    }
}
