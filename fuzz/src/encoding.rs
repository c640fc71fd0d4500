//! `core::encoding`: Base32 / Base64 decoders on arbitrary text, and encode → decode.

use chatbox_core::buffer::BufferTooSmall;
use arbitrary::Unstructured;
use chatbox_core::encoding::{
    EncodingError, b64_decode, b64_encode, base32_decode, base32_encode, base32_encoded_len,
    base32_grouped, base64_decode, base64_encode,
};

type Decoder = for<'a> fn(&str, &'a mut [u8]) -> Result<&'a [u8], EncodingError>;
type Encoder = for<'a> fn(&[u8], &'a mut [u8]) -> Result<&'a str, EncodingError>;

/// Decodes `text` into a roomy buffer, an exact one, one too small and a fuzz-sized one. The
/// exact buffer must work; `InsufficientSize` must name the size that works.
fn decode_sizes(decode: Decoder, text: &str, odd: usize) -> Option<Vec<u8>> {
    let mut roomy = vec![0u8; text.len() + 8];
    let got = decode(text, &mut roomy).map(<[u8]>::to_vec);
    let mut small = vec![0u8; odd % (text.len() + 8)];
    match (decode(text, &mut small), &got) {
        (Ok(b), Ok(want)) => assert_eq!(b, want.as_slice()),
        (Err(EncodingError::InsufficientSize(BufferTooSmall { required })), Ok(want)) => {
            assert_eq!(required, want.len());
            assert!(small.len() < required);
        }
        (Err(EncodingError::InsufficientSize(BufferTooSmall { required })), Err(_)) => {
            // Sizes are checked before content: a big enough buffer shows the real error.
            let mut exact = vec![0u8; required];
            assert!(!matches!(
                decode(text, &mut exact),
                Err(EncodingError::InsufficientSize(_))
            ));
        }
        (Err(EncodingError::InvalidInput), Err(e)) => assert_eq!(*e, EncodingError::InvalidInput),
        (a, b) => panic!("buffer size changed the answer: {a:?} vs {b:?}"),
    }
    let want = got.ok()?;
    let mut exact = vec![0u8; want.len()];
    assert_eq!(decode(text, &mut exact), Ok(want.as_slice()));
    if !want.is_empty() {
        let mut short = vec![0u8; want.len() - 1];
        assert_eq!(
            decode(text, &mut short),
            Err(EncodingError::InsufficientSize(BufferTooSmall {
                required: want.len()
            }))
        );
    }
    Some(want)
}

fn encode_vec(encode: Encoder, bytes: &[u8], required: usize) -> String {
    let mut out = vec![0u8; required + 3];
    let s = encode(bytes, &mut out).expect("encode").to_owned();
    assert_eq!(s.len(), required);
    if required > 0 {
        let mut short = vec![0u8; required - 1];
        assert_eq!(
            encode(bytes, &mut short),
            Err(EncodingError::InsufficientSize(BufferTooSmall { required }))
        );
    }
    s
}

fn b64_len(n: usize, padded: bool) -> usize {
    if padded {
        n.div_ceil(3) * 4
    } else {
        (n * 4).div_ceil(3)
    }
}

/// The three decoders on arbitrary text: what they accept re-encodes to the input (Base32:
/// up to case, spaces, dashes and trailing `=`).
fn decoders(text: &str, odd: usize) {
    if let Some(bytes) = decode_sizes(base32_decode, text, odd) {
        let cleaned: String = text
            .chars()
            .take_while(|&c| c != '=')
            .filter(|c| !matches!(c, ' ' | '-'))
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let enc = encode_vec(base32_encode, &bytes, base32_encoded_len(bytes.len()));
        assert_eq!(enc, cleaned, "Base32 accepted a non-canonical spelling");
    }
    if let Some(bytes) = decode_sizes(base64_decode, text, odd) {
        assert_eq!(
            encode_vec(base64_encode, &bytes, b64_len(bytes.len(), true)),
            text
        );
    }
    if let Some(bytes) = decode_sizes(b64_decode, text, odd) {
        assert_eq!(
            encode_vec(b64_encode, &bytes, b64_len(bytes.len(), false)),
            text
        );
    }
}

/// Bytes → every encoding → decode: the same bytes back (Base32 also lower case and grouped).
fn round_trips(bytes: &[u8]) {
    let b32 = encode_vec(base32_encode, bytes, base32_encoded_len(bytes.len()));
    let mut out = vec![0u8; bytes.len() + 1];
    assert_eq!(base32_decode(&b32, &mut out), Ok(bytes));
    assert_eq!(
        base32_decode(&b32.to_ascii_lowercase(), &mut out),
        Ok(bytes)
    );
    let mut grouped = vec![0u8; b32.len() * 2 + 1];
    let grouped = base32_grouped(&b32, &mut grouped).expect("grouped");
    assert_eq!(grouped.replace(' ', ""), b32);
    assert_eq!(base32_decode(grouped, &mut out), Ok(bytes));
    let padded = format!("{b32}{}", "=".repeat((8 - b32.len() % 8) % 8));
    assert_eq!(base32_decode(&padded, &mut out), Ok(bytes));

    let b64 = encode_vec(base64_encode, bytes, b64_len(bytes.len(), true));
    assert_eq!(base64_decode(&b64, &mut out), Ok(bytes));
    let b64u = encode_vec(b64_encode, bytes, b64_len(bytes.len(), false));
    assert_eq!(b64u, b64.trim_end_matches('='));
    assert_eq!(b64_decode(&b64u, &mut out), Ok(bytes));
}

/// First byte: even = decode the rest as text, odd = round-trip the rest as bytes.
/// Second byte: a buffer size for the decoders.
pub fn check(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let (Ok(mode), Ok(odd)) = (u.arbitrary::<u8>(), u.arbitrary::<u8>()) else {
        return;
    };
    let rest = u.take_rest();
    if mode & 1 == 0 {
        decoders(&String::from_utf8_lossy(rest), usize::from(odd));
        let mut g = vec![0u8; rest.len() * 2];
        let _ = base32_grouped(&String::from_utf8_lossy(rest), &mut g);
    } else {
        round_trips(rest);
    }
}
