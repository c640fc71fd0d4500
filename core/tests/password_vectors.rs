//! RFC 7914 §11 PBKDF2-HMAC-SHA256 vectors, PHC strings from an independent implementation,
//! strict parsing and the password policy.

// A test crate: a panic is how a test reports failure.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use chatbox_core::buffer::BufferTooSmall;
use chatbox_core::password::{
    DEFAULT_ITERATIONS, HASH_LEN, MAX_ITERATIONS, MAX_PHC_LEN, MIN_ITERATIONS, PasswordError,
    PhcHash, SALT_LEN, check_password_policy, dummy_verify, hash_password, pbkdf2_sha256,
    verify_password,
};
use proptest::prelude::*;
use serde_json::Value;

fn data() -> Value {
    serde_json::from_str(include_str!("data/password.json")).unwrap()
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap()
}

fn iterations(v: &Value) -> u32 {
    u32::try_from(v["iterations"].as_u64().unwrap()).unwrap()
}

fn error_named(name: &str) -> PasswordError {
    match name {
        "Malformed" => PasswordError::Malformed,
        "TooFewIterations" => PasswordError::TooFewIterations,
        "TooManyIterations" => PasswordError::TooManyIterations,
        other => panic!("unknown error {other}"),
    }
}

#[test]
fn rfc7914_pbkdf2_hmac_sha256() {
    let data = data();
    let vectors = data["rfc7914_section11_pbkdf2_hmac_sha256"]
        .as_array()
        .unwrap();
    assert_eq!(vectors.len(), 2);
    for v in vectors {
        let want = hex::decode(s(v, "dk_hex")).unwrap();
        let mut dk = vec![0u8; want.len()];
        let (p, salt) = (s(v, "password").as_bytes(), s(v, "salt").as_bytes());
        pbkdf2_sha256(p, salt, iterations(v), &mut dk).unwrap();
        assert_eq!(dk, want);
    }
    let mut dk = [0u8; 32];
    assert_eq!(
        pbkdf2_sha256(b"p", b"s", 0, &mut dk),
        Err(PasswordError::TooFewIterations)
    );
}

#[test]
fn phc_strings_match_an_independent_implementation() {
    let data = data();
    for v in data["phc_known"].as_array().unwrap() {
        let password = hex::decode(s(v, "password_hex")).unwrap();
        let salt: [u8; SALT_LEN] = hex::decode(s(v, "salt_hex")).unwrap().try_into().unwrap();
        let want = s(v, "phc");
        let mut out = [0u8; MAX_PHC_LEN];
        assert_eq!(
            hash_password(&password, &salt, iterations(v), &mut out).unwrap(),
            want
        );
        assert_eq!(verify_password(&password, want), Ok(true));
        assert_eq!(verify_password(b"wrong password", want), Ok(false));
        let phc = PhcHash::parse(want).unwrap();
        assert_eq!(phc.iterations(), iterations(v));
        assert_eq!(phc.salt(), salt);
        assert_eq!(phc.hash().len(), HASH_LEN);
    }
    for v in data["phc_other_salt_lengths"].as_array().unwrap() {
        let phc = PhcHash::parse(s(v, "phc")).unwrap();
        assert_eq!(phc.salt().len() as u64, v["salt_len"].as_u64().unwrap());
        assert_eq!(verify_password(b"password", s(v, "phc")), Ok(true));
        assert_eq!(verify_password(b"Password", s(v, "phc")), Ok(false));
    }
}

#[test]
fn round_trip_at_default_iterations() {
    let salt = [0x42u8; SALT_LEN];
    let mut out = [0u8; MAX_PHC_LEN];
    let phc = hash_password(b"hunter2hunter2", &salt, DEFAULT_ITERATIONS, &mut out).unwrap();
    assert!(phc.starts_with("$pbkdf2-sha256$i=600000,l=32$QkJCQkJCQkJCQkJCQkJCQg$"));
    assert_eq!(verify_password(b"hunter2hunter2", phc), Ok(true));
    assert_eq!(verify_password(b"hunter2hunter3", phc), Ok(false));
    assert_eq!(verify_password(b"", phc), Ok(false));
}

#[test]
fn hash_password_checks_bounds_and_buffer() {
    let salt = [1u8; SALT_LEN];
    let mut out = [0u8; MAX_PHC_LEN];
    let few = hash_password(b"password", &salt, MIN_ITERATIONS - 1, &mut out);
    assert_eq!(few, Err(PasswordError::TooFewIterations));
    let many = hash_password(b"password", &salt, MAX_ITERATIONS + 1, &mut out);
    assert_eq!(many, Err(PasswordError::TooManyIterations));
    let len = hash_password(b"password", &salt, MIN_ITERATIONS, &mut out)
        .unwrap()
        .len();
    let mut short = vec![0u8; len - 1];
    assert_eq!(
        hash_password(b"password", &salt, MIN_ITERATIONS, &mut short),
        Err(PasswordError::InsufficientSize(BufferTooSmall {
            required: len
        }))
    );
}

#[test]
fn parse_rejects_malformed_strings() {
    let data = data();
    let table = data["phc_invalid"].as_array().unwrap();
    assert!(table.len() >= 30);
    for v in table {
        let phc = s(v, "phc");
        let want = error_named(s(v, "error"));
        assert_eq!(PhcHash::parse(phc).map(|_| ()), Err(want), "{phc:?}");
        assert_eq!(verify_password(b"password", phc), Err(want), "{phc:?}");
    }
}

#[test]
fn password_policy() {
    assert_eq!(
        check_password_policy(b"1234567"),
        Err(PasswordError::TooShort)
    );
    assert_eq!(check_password_policy(b"12345678"), Ok(()));
    assert_eq!(check_password_policy(&[b'a'; 128]), Ok(()));
    assert_eq!(
        check_password_policy(&[b'a'; 129]),
        Err(PasswordError::TooLong)
    );
    assert_eq!(check_password_policy("pässwörd".as_bytes()), Ok(()));
    assert_eq!(
        check_password_policy(b"password\xff"),
        Err(PasswordError::InvalidUtf8)
    );
    assert_eq!(
        check_password_policy(b"\xc3password"),
        Err(PasswordError::InvalidUtf8)
    );
}

#[test]
fn dummy_verify_runs_for_any_input() {
    dummy_verify(b"whoever", MIN_ITERATIONS);
    dummy_verify(b"", 0);
    let debug = format!(
        "{:?}",
        PhcHash::parse(s(&data()["phc_known"][0], "phc")).unwrap()
    );
    assert!(!debug.contains("hash:"), "{debug}");
}

proptest! {
    #[test]
    fn parse_never_panics(text in "\\PC{0,160}") {
        let _ = PhcHash::parse(&text);
    }

    #[test]
    fn parse_never_panics_near_valid(
        params in "[il0-9=,+-]{0,16}",
        salt in "[A-Za-z0-9+/=]{0,90}",
        hash in "[A-Za-z0-9+/=]{0,50}",
    ) {
        let text = format!("$pbkdf2-sha256${params}${salt}${hash}");
        if let Ok(phc) = PhcHash::parse(&text) {
            prop_assert!((MIN_ITERATIONS..=MAX_ITERATIONS).contains(&phc.iterations()));
            prop_assert!((8..=64).contains(&phc.salt().len()));
        }
    }
}
