//! User names: 1–32 characters of `[a-z0-9_.-]`, starting with a letter, stored lower-case.

use core::fmt;

/// Longest user name, in bytes.
pub const MAX_LEN: usize = 32;

/// Why a user name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum UsernameError {
    /// Empty, or longer than [`MAX_LEN`].
    BadLength,
    /// Does not start with a letter.
    BadStart,
    /// Contains a character outside `[a-z0-9_.-]` (after lower-casing ASCII).
    BadCharacter,
}

impl fmt::Display for UsernameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::BadLength => "user name must be 1 to 32 characters",
            Self::BadStart => "user name must start with a letter",
            Self::BadCharacter => "user name may only hold a-z, 0-9, '_', '.' and '-'",
        })
    }
}

impl core::error::Error for UsernameError {}

/// Checks `name` and returns it lower-cased.
pub fn normalize(name: &str) -> Result<heapless::String<MAX_LEN>, UsernameError> {
    if name.is_empty() || name.len() > MAX_LEN {
        return Err(UsernameError::BadLength);
    }
    let mut out = heapless::String::new();
    for (i, c) in name.chars().enumerate() {
        let c = c.to_ascii_lowercase();
        let ok = match c {
            'a'..='z' => true,
            '0'..='9' | '_' | '.' | '-' => i > 0,
            _ => false,
        };
        if !ok {
            return Err(if i == 0 && c.is_ascii() {
                UsernameError::BadStart
            } else {
                UsernameError::BadCharacter
            });
        }
        out.push(c).map_err(|_| UsernameError::BadLength)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_lowercases() {
        assert_eq!(normalize("Alice_1.x-y").unwrap().as_str(), "alice_1.x-y");
        assert_eq!(normalize("a").unwrap().as_str(), "a");
        assert!(normalize(&"a".repeat(32)).is_ok());
    }

    #[test]
    fn refuses() {
        let cases = [
            ("", UsernameError::BadLength),
            (&*"a".repeat(33), UsernameError::BadLength),
            ("1abc", UsernameError::BadStart),
            ("_abc", UsernameError::BadStart),
            ("ab c", UsernameError::BadCharacter),
            ("al'; DROP TABLE", UsernameError::BadCharacter),
            ("аdmin", UsernameError::BadCharacter), // Cyrillic a
            ("ad\u{1b}[31m", UsernameError::BadCharacter),
        ];
        for (name, err) in cases {
            assert_eq!(normalize(name), Err(err), "{name:?}");
        }
    }
}
