//! QR symbols decode back to their text with an independent decoder (rqrr), at every error
//! correction level and across lengths; capacities match the QR standard's table for version 15.

// A test crate: a panic is how a test reports failure.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use chatbox_core::otp::{Algorithm, SECRET_LEN, otpauth_uri};
use chatbox_core::qr::{Ecc, MAX_VERSION, QrCode, QrError};

const QUIET: u32 = 4;
const PIXELS_PER_MODULE: usize = 4;
const LEVELS: [Ecc; 4] = [Ecc::Low, Ecc::Medium, Ecc::Quartile, Ecc::High];

/// ISO/IEC 18004 Table 7: byte-mode capacity of a version 15 symbol, per level.
const V15_BYTE_CAPACITY: [(Ecc, usize); 4] = [
    (Ecc::Low, 520),
    (Ecc::Medium, 412),
    (Ecc::Quartile, 292),
    (Ecc::High, 220),
];

/// Renders through `rows()` (checked against `module()`) into a greyscale bitmap and decodes it.
fn decode(code: &QrCode) -> String {
    let side = code.size() + 2 * QUIET;
    let rows: Vec<Vec<bool>> = code.rows(QUIET).map(|row| row.collect()).collect();
    assert_eq!(rows.len(), side as usize);
    for (j, row) in rows.iter().enumerate() {
        assert_eq!(row.len(), side as usize);
        for (i, &dark) in row.iter().enumerate() {
            let (x, y) = (i as i32 - QUIET as i32, j as i32 - QUIET as i32);
            assert_eq!(dark, code.module(x, y), "({x}, {y})");
        }
    }
    let px = side as usize * PIXELS_PER_MODULE;
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(px, px, |x, y| {
        if rows[y / PIXELS_PER_MODULE][x / PIXELS_PER_MODULE] {
            0
        } else {
            255
        }
    });
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "exactly one symbol found");
    grids[0].decode().expect("symbol decodes").1
}

fn text_of_len(len: usize) -> String {
    let alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-:/?&=%";
    alphabet.chars().cycle().take(len).collect()
}

#[test]
fn otpauth_uri_round_trips() {
    let secret = [0xa5u8; SECRET_LEN];
    let long = "x".repeat(32);
    for (issuer, account) in [("ChatBox", "alice"), (long.as_str(), long.as_str())] {
        let mut buf = [0u8; 512];
        let uri = otpauth_uri(&mut buf, issuer, account, &secret, Algorithm::Sha1, 6, 30).unwrap();
        let code = QrCode::encode_text(uri, Ecc::Medium).unwrap();
        assert!(code.version() <= MAX_VERSION);
        assert_eq!(code.size(), 17 + 4 * u32::from(code.version()));
        assert_eq!(decode(&code), uri);
    }
}

#[test]
fn several_lengths_and_levels_round_trip() {
    for len in [1usize, 7, 25, 60, 120, 200] {
        let text = text_of_len(len);
        for ecc in LEVELS {
            let code = QrCode::encode_text(&text, ecc).unwrap();
            assert_eq!(decode(&code), text, "len {len} {ecc:?}");
        }
    }
    let digits = "0123456789".repeat(30);
    assert_eq!(
        decode(&QrCode::encode_text(&digits, Ecc::High).unwrap()),
        digits
    );
    let upper = "HELLO WORLD $%*+-./:".repeat(10);
    assert_eq!(
        decode(&QrCode::encode_text(&upper, Ecc::Low).unwrap()),
        upper
    );
}

#[test]
fn capacity_limit_is_version_15() {
    for (ecc, capacity) in V15_BYTE_CAPACITY {
        let fits = "a".repeat(capacity);
        let code = QrCode::encode_text(&fits, ecc).unwrap();
        assert_eq!(code.version(), MAX_VERSION);
        assert_eq!(decode(&code), fits);
        let over = "a".repeat(capacity + 1);
        assert_eq!(
            QrCode::encode_text(&over, ecc),
            Err(QrError::TooLong),
            "{ecc:?}"
        );
    }
    assert_eq!(
        QrCode::encode_text(&"a".repeat(5000), Ecc::Low),
        Err(QrError::TooLong)
    );
    assert_eq!(
        QrCode::encode_text("", Ecc::Low),
        Err(QrError::InvalidInput)
    );
}

#[test]
fn outside_the_symbol_is_light() {
    let code = QrCode::encode_text("ChatBox", Ecc::Medium).unwrap();
    let size = code.size() as i32;
    // Finder pattern corners are dark; just outside them is light.
    assert!(code.module(0, 0) && code.module(size - 1, 0) && code.module(0, size - 1));
    for (x, y) in [
        (-1, 0),
        (0, -1),
        (size, 0),
        (0, size),
        (i32::MIN, i32::MAX),
        (-4, -4),
    ] {
        assert!(!code.module(x, y), "({x}, {y})");
    }
    assert_eq!(code.rows(0).count(), code.size() as usize);
    assert_eq!(code.rows(u32::MAX).count(), code.size() as usize + 128);
}
