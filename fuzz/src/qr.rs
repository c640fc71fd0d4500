//! `core::qr`: QR matrices from arbitrary text (otpauth URIs carry user-chosen labels).

use arbitrary::Unstructured;
use chatbox_core::qr::{Ecc, MAX_QUIET, MAX_VERSION, QrCode, QrError};

/// Encodes arbitrary text; a code has a size matching its version, and its row iterator with
/// a fuzz-chosen quiet zone agrees with `module` everywhere (light outside the symbol).
pub fn check(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let (Ok(ecc), Ok(quiet)) = (
        u.choose(&[Ecc::Low, Ecc::Medium, Ecc::Quartile, Ecc::High])
            .copied(),
        u.arbitrary::<u32>(),
    ) else {
        return;
    };
    let text = String::from_utf8_lossy(u.take_rest());
    match QrCode::encode_text(&text, ecc) {
        Ok(code) => {
            let v = code.version();
            assert!((1..=MAX_VERSION).contains(&v));
            assert_eq!(code.size(), 17 + 4 * u32::from(v));
            let q = quiet.min(MAX_QUIET) as i32;
            let size = code.size() as i32;
            let mut rows = 0;
            for (i, row) in code.rows(quiet).enumerate() {
                let y = row.y();
                assert_eq!(y, i as i32 - q);
                let mut cols = 0;
                for (j, dark) in row.enumerate() {
                    let x = j as i32 - q;
                    assert_eq!(dark, code.module(x, y));
                    if !(0..size).contains(&x) || !(0..size).contains(&y) {
                        assert!(!dark, "dark module outside the symbol");
                    }
                    cols += 1;
                }
                assert_eq!(cols, size + 2 * q);
                rows += 1;
            }
            assert_eq!(rows, size + 2 * q);
            // Finder pattern corners are dark.
            assert!(code.module(0, 0) && code.module(size - 1, 0) && code.module(0, size - 1));
        }
        Err(QrError::InvalidInput) => assert!(text.is_empty()),
        Err(QrError::TooLong) => assert!(!text.is_empty()),
        Err(e) => panic!("encode_text: {e:?}"),
    }
}
