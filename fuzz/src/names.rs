//! `core::username::normalize` and `core::proto::is_valid_room` against reference rules.

use chatbox_core::proto::{MAX_ROOM_LEN, is_valid_room};
use chatbox_core::username::{MAX_LEN, UsernameError, normalize};

fn name_char(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')
}

/// The user name rules, written the obvious way.
fn reference_username(name: &str) -> Option<String> {
    let lower = name.to_ascii_lowercase();
    let b = lower.as_bytes();
    let ok = (1..=MAX_LEN).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b.iter().all(|&c| name_char(c));
    ok.then_some(lower)
}

/// The room rules, written the obvious way.
fn reference_room(name: &str) -> bool {
    let b = name.as_bytes();
    (2..=MAX_ROOM_LEN).contains(&b.len()) && b[0] == b'#' && b[1..].iter().all(|&c| name_char(c))
}

/// Arbitrary text (lossy UTF-8) through both checks, compared with the references; a
/// normalized name normalizes to itself.
pub fn check(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for s in [&*text, text.trim(), text.split('\n').next().unwrap_or("")] {
        match normalize(s) {
            Ok(n) => {
                assert_eq!(Some(n.as_str().to_owned()), reference_username(s));
                assert_eq!(normalize(&n).as_deref(), Ok(n.as_str()));
            }
            Err(e) => {
                assert_eq!(reference_username(s), None, "refused {s:?}");
                if e == UsernameError::BadLength {
                    assert!(s.is_empty() || s.len() > MAX_LEN);
                }
            }
        }
        assert_eq!(is_valid_room(s), reference_room(s), "room {s:?}");
    }
}
