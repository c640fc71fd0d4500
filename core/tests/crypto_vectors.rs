//! Published vectors for the primitives under the protocol, kept as data in
//! tests/data/crypto_vectors.json: FIPS 180-2 SHA-256, RFC 4231 HMAC-SHA256,
//! NIST SP 800-38A F.5.5 CTR-AES256, RFC 7748 X25519.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)] // helpers of a test crate: a panic is a failing test

use chatbox_core::crypto::CryptoError;
use chatbox_core::crypto::cipher::aes256_ctr;
use chatbox_core::crypto::dh::{self, Keypair, x25519};
use chatbox_core::crypto::hash::{HmacSha256, hmac_sha256, sha256, sha256_parts};
use serde_json::Value;

fn data() -> Value {
    serde_json::from_str(include_str!("data/crypto_vectors.json")).unwrap()
}

fn hx(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

fn h32(v: &Value) -> [u8; 32] {
    hx(v).try_into().unwrap()
}

#[test]
fn sha256_fips_examples() {
    for case in data()["sha256"].as_array().unwrap() {
        let input = hx(&case["data"]);
        assert_eq!(sha256(&input).to_vec(), hx(&case["digest"]));
        let (a, b) = input.split_at(input.len() / 2);
        assert_eq!(sha256_parts(&[a, b]).to_vec(), hx(&case["digest"]));
    }
}

#[test]
fn hmac_sha256_rfc4231() {
    let cases = data()["hmac_sha256"].as_array().unwrap().clone();
    assert_eq!(cases.len(), 7);
    for case in cases {
        let key = hx(&case["key"]);
        let msg = hx(&case["data"]);
        let want = hx(&case["mac"]);
        let got = hmac_sha256(&key, &[&msg]);
        // Case 5 is truncated to 128 bits.
        assert_eq!(&got[..want.len()], &want[..], "case {}", case["case"]);
        // A keyed state reused for a second message gives the same answer.
        let keyed = HmacSha256::new(&key);
        assert_eq!(keyed.mac_parts(&[&msg]), got);
        assert_eq!(
            keyed.mac_parts(&[&msg[..msg.len() / 2], &msg[msg.len() / 2..]]),
            got
        );
    }
}

#[test]
fn aes256_ctr_sp800_38a_f55() {
    let v = &data()["aes256_ctr"];
    let key = h32(&v["key"]);
    let counter: [u8; 16] = hx(&v["counter"]).try_into().unwrap();
    let mut buf = hx(&v["plaintext"]);
    aes256_ctr(&key, &counter, &mut buf);
    assert_eq!(buf, hx(&v["ciphertext"]));
    aes256_ctr(&key, &counter, &mut buf);
    assert_eq!(buf, hx(&v["plaintext"]));
}

#[test]
fn x25519_rfc7748_function() {
    let d = data();
    for case in d["x25519"].as_array().unwrap() {
        assert_eq!(
            x25519(h32(&case["scalar"]), h32(&case["u"])).to_vec(),
            hx(&case["output"])
        );
    }
    let mut k = [0u8; 32];
    k[0] = 9;
    let mut u = k;
    for i in 1..=1000 {
        let r = x25519(k, u);
        u = k;
        k = r;
        if i == 1 {
            assert_eq!(k.to_vec(), hx(&d["x25519_iterated"]["after_1"]));
        }
    }
    assert_eq!(k.to_vec(), hx(&d["x25519_iterated"]["after_1000"]));
}

#[test]
fn x25519_rfc7748_diffie_hellman() {
    let v = &data()["x25519_dh"];
    let alice = Keypair::from_secret(h32(&v["alice_private"]));
    let bob = Keypair::from_secret(h32(&v["bob_private"]));
    assert_eq!(alice.public().to_vec(), hx(&v["alice_public"]));
    assert_eq!(bob.public().to_vec(), hx(&v["bob_public"]));
    assert_eq!(alice.dh(bob.public()).unwrap().0.to_vec(), hx(&v["shared"]));
    assert_eq!(bob.dh(alice.public()).unwrap().0.to_vec(), hx(&v["shared"]));
    // Low-order points are refused instead of producing an all-zero secret.
    let mut one = [0u8; 32];
    one[0] = 1;
    for bad in [[0u8; 32], one] {
        assert_eq!(
            dh::dh(&h32(&v["alice_private"]), &bad).unwrap_err(),
            CryptoError::WeakPublicKey
        );
    }
}
