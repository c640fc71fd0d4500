//! `core::qr`: QR matrices from arbitrary text (otpauth URIs carry user-chosen labels).

use arbitrary::Unstructured;
use chatbox_core::qr::{Ecc, MAX_QUIET, MAX_VERSION, QrCode, QrError};

/// Longest text the fuzz target encodes, in bytes. The product only puts otpauth URIs in QR
/// codes, and the server writes them into 512-byte buffers (`otpauth_uri` into
/// `[0u8; 512]` in host-server `auth/register.rs` and `admin.rs`; it fails rather than write
/// more), so every URI it can produce is at most this long. 512 bytes still reach every version
/// up to [`MAX_VERSION`] (byte mode at [`Ecc::Low`] needs version 15) and `TooLong` (any other
/// level). Longer inputs are skipped: they only made executions slow. Longer texts (numeric and
/// alphanumeric ones up to the version 15 capacity, and past it) are covered by the unit test
/// `tests::every_version_and_mode`, which runs [`check_text`] at every version boundary.
pub const MAX_TEXT: usize = 512;

/// Encodes arbitrary text (at most [`MAX_TEXT`] bytes after lossy UTF-8 conversion) at a
/// fuzz-chosen level, and checks it with a fuzz-chosen quiet zone: any of `0..=MAX_QUIET`, or a
/// larger value (clamped by `rows`).
pub fn check(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let (Ok(ecc), Ok(quiet)) = (
        u.choose(&[Ecc::Low, Ecc::Medium, Ecc::Quartile, Ecc::High])
            .copied(),
        u.int_in_range(0..=MAX_QUIET + 1),
    ) else {
        return;
    };
    let quiet = if quiet > MAX_QUIET {
        u.int_in_range(MAX_QUIET + 1..=u32::MAX).unwrap_or(u32::MAX)
    } else {
        quiet
    };
    let text = String::from_utf8_lossy(u.take_rest());
    if text.len() > MAX_TEXT {
        return;
    }
    check_text(&text, ecc, quiet);
}

/// A code has a size matching its version, and its row iterator with the quiet zone `quiet`
/// agrees with `module` everywhere (light outside the symbol); errors only for empty text
/// (`InvalidInput`) or text that does not fit (`TooLong`). Returns the version, if it encoded.
pub fn check_text(text: &str, ecc: Ecc, quiet: u32) -> Option<u8> {
    match QrCode::encode_text(text, ecc) {
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
            Some(v)
        }
        Err(QrError::InvalidInput) => {
            assert!(text.is_empty());
            None
        }
        Err(QrError::TooLong) => {
            assert!(!text.is_empty());
            None
        }
        Err(e) => panic!("encode_text: {e:?}"),
    }
}

#[cfg(test)]
mod tests {
    use chatbox_core::otp::{Algorithm, otpauth_uri};

    use super::*;

    const LEVELS: [Ecc; 4] = [Ecc::Low, Ecc::Medium, Ecc::Quartile, Ecc::High];

    /// Numeric, alphanumeric and byte text of growing length at every level: every version
    /// from 1 to [`MAX_VERSION`] is produced in each mode at each level, versions never go down,
    /// the text stops fitting at some length and never fits again, and [`check_text`] passes on
    /// both sides of every version boundary (with quiet zones 0, 4, 64 and a clamped one). This
    /// covers what the fuzz target's [`MAX_TEXT`] cap leaves out (texts up to 1 300 digits).
    #[test]
    fn every_version_and_mode() {
        let modes: [(&str, &str); 3] = [
            ("numeric", "0123456789"),
            (
                "alphanumeric",
                "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 $%*+-./:",
            ),
            (
                "byte",
                "otpauth://totp/ChatBox:alice?secret=JBSWY3DPEHPK3PXP&é",
            ),
        ];
        for (mode, alphabet) in modes {
            for ecc in LEVELS {
                let mut seen = [false; MAX_VERSION as usize + 1];
                let mut text = String::new();
                let mut last: Option<u8> = Some(1);
                let mut chars = alphabet.chars().cycle();
                let mut too_long = false;
                while !too_long {
                    let before = text.clone();
                    text.push(chars.next().unwrap());
                    let v = QrCode::encode_text(&text, ecc).ok().map(|c| c.version());
                    if v != last {
                        // A boundary: both sides, fully.
                        for q in [0, 4, MAX_QUIET, u32::MAX] {
                            assert_eq!(check_text(&before, ecc, q), last, "{mode} {ecc:?}");
                            assert_eq!(check_text(&text, ecc, q), v, "{mode} {ecc:?}");
                        }
                    }
                    match (last, v) {
                        (Some(a), Some(b)) => assert!(b >= a, "{mode} {ecc:?}: {a} -> {b}"),
                        (Some(_), None) => too_long = true,
                        (None, _) => unreachable!(),
                    }
                    if let Some(v) = v {
                        seen[usize::from(v)] = true;
                    }
                    last = v;
                }
                assert!(
                    seen[1..].iter().all(|s| *s),
                    "{mode} {ecc:?}: versions seen {seen:?}"
                );
                // Past the end it never fits again.
                for extra in [1, 100, 1000] {
                    let longer: String = text.chars().chain(chars.clone().take(extra)).collect();
                    assert_eq!(check_text(&longer, ecc, 4), None);
                }
            }
        }
        assert_eq!(check_text("", Ecc::Medium, 4), None);
    }

    /// Typical and the longest otpauth URIs the server can write (its buffer is 512 bytes) go
    /// through the fuzz entry point: the cap is at least their length.
    #[test]
    fn longest_otpauth_uris_are_fuzzed() {
        let mut uris = Vec::new();
        let mut buf = [0u8; 512];
        for (issuer, account) in [("ChatBox", "alice"), ("ChatBox", "a".repeat(32).as_str())] {
            let uri = otpauth_uri(&mut buf, issuer, account, &[7; 20], Algorithm::Sha1, 6, 30);
            uris.push(uri.unwrap().to_owned());
        }
        // `#` is percent-encoded (3 bytes) and the issuer appears twice: the URI grows by 6
        // bytes per character until it no longer fits in 512.
        let mut issuer = String::from("#");
        let mut longest = String::new();
        while let Ok(uri) = otpauth_uri(&mut buf, &issuer, "a", &[7; 20], Algorithm::Sha1, 6, 30) {
            longest = uri.to_owned();
            issuer.push('#');
        }
        assert!(
            longest.len() > 512 - 6 && longest.len() <= MAX_TEXT,
            "{}",
            longest.len()
        );
        uris.push(longest.clone());
        for uri in &uris {
            for ecc in 0..4u8 {
                let mut input = vec![ecc, 4];
                input.extend_from_slice(uri.as_bytes());
                check(&input);
            }
        }
        // The longest fits only at the lowest level, near the largest version.
        assert!(check_text(&longest, Ecc::Low, 4).is_some_and(|v| v >= 14));
        assert_eq!(check_text(&longest, Ecc::Medium, 4), None);
    }
}
