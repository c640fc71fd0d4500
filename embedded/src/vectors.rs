//! Known answers from `core/tests/data/chatbox-protocol.json` (docs/DESIGN.md §2), produced by an
//! independent implementation of the protocol, plus the RFC vectors the tests use.
//!
//! The firmware drives a client through these bytes; the on-target tests check both sides.

use crate::hex;

/// The client's ephemeral secret.
pub const CLIENT_EPHEMERAL_SECRET: [u8; 32] =
    hex("a8a8a8a8a8a8a8a8a8a8a8a8a8a8a8a8a8a8a8a8a8a8a8a8a8a8a8a8a8a8a801");
/// The server's ephemeral secret.
pub const SERVER_EPHEMERAL_SECRET: [u8; 32] =
    hex("5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c02");
/// The server's static secret.
pub const SERVER_STATIC_SECRET: [u8; 32] =
    hex("3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e03");
/// The server's static public key.
pub const SERVER_STATIC_PUBLIC: [u8; 32] =
    hex("6ffd633848a3c3a6ff85be8e488fdd990dbe97f0362b5a4aa7117ae7133f6853");
/// The server's fingerprint.
pub const SERVER_FINGERPRINT: &str = "SHA256:FktRsP0G4tiaQtRTwRoEiWl4Pd1CwStrxGU6zll2f/Y";
/// The payload message 2 carries.
pub const SERVER_PAYLOAD: [u8; 20] = hex("0143686174426f78207465737420736572766572");
/// Frame body of handshake message 1 (`e.pub || 0x01`).
pub const MESSAGE1_BODY: [u8; 33] = hex(concat!(
    "dcb933b90f4bcc3d5529eb811be77e3b2dcab476be66eb93246df3cb6c947c4e",
    "01",
));
/// Frame body of handshake message 2.
pub const MESSAGE2_BODY: [u8; 116] = hex(concat!(
    "17d8a7180b9e3420651d6d02698767adc1b1bca2079738ab22f78f485cd7314d",
    "365b19c195cbf05e12bdc7a765f2077462d4a640cc60e54536e2c625f7605d38",
    "9ee6d85f47a6e82e676d506be947dfc98bd5198265aa6ed8a58abfa9eec8e969",
    "21c5cd1f197211dfa60b1d223a50c1c8f5632a11",
));
/// The handshake hash after message 2.
pub const HANDSHAKE_HASH: [u8; 32] =
    hex("28c7c59e2e8d9529d63b97028cf18c53ae6120dd477f5a9faff114334d9b9320");
/// Chain key of the client→server ratchet after Split().
pub const SPLIT_CLIENT_TO_SERVER: [u8; 32] =
    hex("314c1f02b049683a7fa2891f0cb672e7818fbd926fe527e700de2bb666de1ab0");
/// Chain key of the server→client ratchet after Split().
pub const SPLIT_SERVER_TO_CLIENT: [u8; 32] =
    hex("ab4616f2a7084e9fc6cc811d96c14d7891488f9acfc5564a1f054adc4e0fe929");
/// Plaintext of client→server record 0.
pub const C2S_0_PLAINTEXT: [u8; 9] = hex("200000000000000001");
/// Sealed frame (prefix included) of client→server record 0.
pub const C2S_0_FRAME: [u8; 27] = hex("0019c31147873db433181bef8f93b6f6c662b654a48a4da850e475");
/// Plaintext of client→server record 1.
pub const C2S_1_PLAINTEXT: [u8; 19] = hex("68656c6c6f2c2064796e616d6963206b657973");
/// Sealed frame (prefix included) of client→server record 1.
pub const C2S_1_FRAME: [u8; 37] = hex(concat!(
    "0023f22e9cc1f9b72fa6381ad004244b659ca85419a3955c82353e1d09d98db5",
    "95cbe5543b",
));
/// Plaintext of client→server record 2.
pub const C2S_2_PLAINTEXT: [u8; 40] = hex(concat!(
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000",
));
/// Sealed frame (prefix included) of client→server record 2.
pub const C2S_2_FRAME: [u8; 58] = hex(concat!(
    "003840245e101afefc1a221e008762b4c482834fa5580c93311c55b8d3c80a43",
    "a631be9e57abe21abe20fdf7b4ad2cd4ca3d5eae021ebf920f4a",
));
/// Plaintext of the first server→client record (a Pong).
pub const S2C_0_PLAINTEXT: [u8; 9] = hex("a00000000000000001");
/// Sealed frame of the first server→client record.
pub const S2C_0_FRAME: [u8; 27] = hex("00191d281b629645679b32480277e64f361113b22f7988ca1d638f");
/// Noise HKDF known answer: chaining key.
pub const HKDF_CHAINING_KEY: [u8; 32] =
    hex("0000000000000000000000000000000000000000000000000000000000000000");
/// Noise HKDF known answer: input key material.
pub const HKDF_IKM: [u8; 18] = hex("696e707574206b6579206d6174657269616c");
/// Noise HKDF known answer: output 1.
pub const HKDF_OUT1: [u8; 32] =
    hex("d8f0bede4b652933c32a92eccf7723f7eeb4701744c81325dc3f0fa9fda24499");
/// Noise HKDF known answer: output 2.
pub const HKDF_OUT2: [u8; 32] =
    hex("a1154bdb939da1d56072b069aa5f8c1d027e3742a84831e3f42eb187a7112b43");
/// Noise HKDF known answer: output 3.
pub const HKDF_OUT3: [u8; 32] =
    hex("0a5580b02bfa652d34a18a8ce9894bb2dc74b0769ec93894deb015b8541519cf");
/// `ENCRYPT(k, n, ad, pt)` known answer: k.
pub const CIPHER_K: [u8; 32] =
    hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
/// `ENCRYPT(k, n, ad, pt)` known answer: n.
pub const CIPHER_N: u64 = 5;
/// `ENCRYPT(k, n, ad, pt)` known answer: ad.
pub const CIPHER_AD: [u8; 10] = hex("6173736f636961746564");
/// `ENCRYPT(k, n, ad, pt)` known answer: plaintext.
pub const CIPHER_PLAINTEXT: [u8; 15] = hex("706c61696e74657874206279746573");
/// `ENCRYPT(k, n, ad, pt)` known answer: `ct || tag`.
pub const CIPHER_OUTPUT: [u8; 31] =
    hex("d0dc2816fc585588f90ecc5a68725ee608c465f2e86c23c45646a7a38248f2");
