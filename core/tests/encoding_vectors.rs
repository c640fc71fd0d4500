//! RFC 4648 §10 vectors, hand-typing rules for Base32, and round-trip properties.

// A test crate: a panic is how a test reports failure.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use chatbox_core::buffer::BufferTooSmall;
use chatbox_core::encoding::{
    EncodingError, b64_decode, b64_encode, base32_decode, base32_encode, base32_encoded_len,
    base32_grouped, base64_decode, base64_encode,
};
use proptest::prelude::*;
use serde_json::Value;

fn data() -> Value {
    serde_json::from_str(include_str!("data/rfc4648.json")).unwrap()
}

fn field<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap()
}

fn strings(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn rfc4648_base32_vectors_unpadded() {
    let data = data();
    let vectors = data["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 7);
    for v in vectors {
        let input = field(v, "input").as_bytes();
        let padded = field(v, "base32");
        let unpadded = padded.trim_end_matches('=');
        let mut buf = [0u8; 32];
        assert_eq!(base32_encode(input, &mut buf).unwrap(), unpadded);
        assert_eq!(base32_encoded_len(input.len()), unpadded.len());
        let mut out = [0u8; 16];
        assert_eq!(base32_decode(unpadded, &mut out).unwrap(), input);
        assert_eq!(base32_decode(padded, &mut out).unwrap(), input, "{padded}");
        let lower = unpadded.to_ascii_lowercase();
        assert_eq!(base32_decode(&lower, &mut out).unwrap(), input);
    }
}

#[test]
fn rfc4648_base64_vectors() {
    let data = data();
    for v in data["vectors"].as_array().unwrap() {
        let input = field(v, "input").as_bytes();
        let padded = field(v, "base64");
        let unpadded = padded.trim_end_matches('=');
        let mut buf = [0u8; 16];
        assert_eq!(base64_encode(input, &mut buf).unwrap(), padded);
        assert_eq!(b64_encode(input, &mut buf).unwrap(), unpadded);
        let mut out = [0u8; 16];
        assert_eq!(base64_decode(padded, &mut out).unwrap(), input);
        assert_eq!(b64_decode(unpadded, &mut out).unwrap(), input);
    }
}

#[test]
fn base32_hand_typed_secret_is_normalised() {
    let mut out = [0u8; 16];
    let want = b"Hello!\xde\xad\xbe\xef";
    for typed in [
        "JBSWY3DPEHPK3PXP",
        "jbsw y3dp ehpk 3pxp",
        "JBSW-Y3DP-EHPK-3PXP",
        " jBsW Y3dP-ehpk 3PXP ",
    ] {
        assert_eq!(base32_decode(typed, &mut out).unwrap(), want, "{typed:?}");
    }
}

#[test]
fn invalid_inputs_are_rejected() {
    let data = data();
    let mut out = [0u8; 64];
    for bad in strings(&data, "base32_invalid") {
        assert_eq!(
            base32_decode(&bad, &mut out),
            Err(EncodingError::InvalidInput),
            "base32 {bad:?}"
        );
    }
    for bad in strings(&data, "base64_invalid") {
        assert_eq!(
            base64_decode(&bad, &mut out),
            Err(EncodingError::InvalidInput),
            "base64 {bad:?}"
        );
    }
    for bad in strings(&data, "b64_invalid") {
        assert_eq!(
            b64_decode(&bad, &mut out),
            Err(EncodingError::InvalidInput),
            "b64 {bad:?}"
        );
    }
}

#[test]
fn grouped_display() {
    let mut out = [0u8; 64];
    assert_eq!(
        base32_grouped("JBSWY3DPEHPK3PXP", &mut out).unwrap(),
        "JBSW Y3DP EHPK 3PXP"
    );
    assert_eq!(base32_grouped("JBSWY3", &mut out).unwrap(), "JBSW Y3");
    assert_eq!(base32_grouped("JBSW", &mut out).unwrap(), "JBSW");
    assert_eq!(base32_grouped("", &mut out).unwrap(), "");
    assert_eq!(
        base32_grouped("JBSW Y3", &mut out),
        Err(EncodingError::InvalidInput)
    );
    assert_eq!(
        base32_grouped("JBSWY3DPE", &mut [0u8; 10]),
        Err(EncodingError::InsufficientSize(BufferTooSmall {
            required: 11
        }))
    );
}

proptest! {
    #[test]
    fn base32_round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
        let mut enc = [0u8; 128];
        let text = base32_encode(&bytes, &mut enc).unwrap();
        prop_assert_eq!(text.len(), base32_encoded_len(bytes.len()));
        let mut grouped = [0u8; 160];
        let grouped = base32_grouped(text, &mut grouped).unwrap();
        let mut dec = [0u8; 80];
        prop_assert_eq!(base32_decode(text, &mut dec).unwrap(), &bytes[..]);
        prop_assert_eq!(base32_decode(grouped, &mut dec).unwrap(), &bytes[..]);
    }

    #[test]
    fn base64_round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
        let mut enc = [0u8; 128];
        let mut dec = [0u8; 80];
        let text = base64_encode(&bytes, &mut enc).unwrap();
        prop_assert_eq!(base64_decode(text, &mut dec).unwrap(), &bytes[..]);
        let text = b64_encode(&bytes, &mut enc).unwrap();
        prop_assert_eq!(b64_decode(text, &mut dec).unwrap(), &bytes[..]);
    }

    #[test]
    fn decoders_never_panic(s in "\\PC{0,40}") {
        let mut out = [0u8; 8];
        let _ = base32_decode(&s, &mut out);
        let _ = base64_decode(&s, &mut out);
        let _ = b64_decode(&s, &mut out);
        let _ = base32_grouped(&s, &mut out);
    }
}
