//! Making untrusted text (names, messages, topics, reasons from the server) safe to print.
//!
//! The server already strips control characters, but the client does not rely on it: a hostile
//! or buggy server must not be able to move the cursor, change colours, set the window title,
//! or break the one-event-per-line format of the plain mode. [`sanitize`] removes
//! - ANSI/ECMA-48 escape sequences: CSI (`ESC [` … final byte), OSC/DCS/APC/PM/SOS strings
//!   (up to BEL or `ESC \`), and two-byte `ESC x` sequences; the 8-bit C1 forms too;
//! - every other control character (C0, DEL, C1), tabs and newlines included (a tab becomes a
//!   space so words stay apart);
//! - Unicode bidirectional overrides and isolates, which can make a line display in a different
//!   order than it reads.

/// What a character is to the scanner.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Text,
    /// After ESC.
    Escape,
    /// Inside a CSI sequence: parameters until a final byte 0x40..=0x7E.
    Csi,
    /// Inside an OSC/DCS/APC/PM/SOS string: until BEL, ST (0x9C) or `ESC \`.
    String,
    /// ESC seen inside a string (maybe the start of `ESC \`).
    StringEscape,
}

/// Returns `text` without escape sequences, control characters and bidi controls.
#[must_use]
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut state = State::Text;
    for c in text.chars() {
        state = match state {
            State::Text => match c {
                '\u{1b}' => State::Escape,
                '\u{9b}' => State::Csi,
                '\u{90}' | '\u{98}' | '\u{9d}' | '\u{9e}' | '\u{9f}' => State::String,
                '\t' => {
                    out.push(' ');
                    State::Text
                }
                c if is_unsafe(c) => State::Text,
                c => {
                    out.push(c);
                    State::Text
                }
            },
            State::Escape => match c {
                '[' => State::Csi,
                ']' | 'P' | 'X' | '^' | '_' => State::String,
                // `ESC` followed by intermediates (0x20..=0x2F) then a final byte: drop all.
                '\u{20}'..='\u{2f}' => State::Escape,
                _ => State::Text,
            },
            State::Csi => match c {
                '\u{40}'..='\u{7e}' => State::Text,
                // A control character aborts the sequence (as terminals do) and is dropped.
                '\u{1b}' => State::Escape,
                _ => State::Csi,
            },
            State::String => match c {
                '\u{7}' | '\u{9c}' => State::Text,
                '\u{1b}' => State::StringEscape,
                _ => State::String,
            },
            State::StringEscape => match c {
                '\\' => State::Text,
                '\u{1b}' => State::StringEscape,
                _ => State::String,
            },
        };
    }
    out
}

/// Control characters and invisible direction changers.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::sanitize;

    #[test]
    fn table() {
        let cases = [
            ("hello", "hello"),
            ("héllo wörld ✓ 日本", "héllo wörld ✓ 日本"),
            ("\u{1b}[31mred\u{1b}[0m", "red"),
            ("\u{1b}[2J\u{1b}[Hclear", "clear"),
            ("a\u{1b}]0;evil title\u{7}b", "ab"),
            (
                "a\u{1b}]8;;http://x\u{1b}\\link\u{1b}]8;;\u{1b}\\b",
                "alinkb",
            ),
            ("a\u{1b}Pq#0;2;0;0;0\u{1b}\\b", "ab"),
            ("a\u{9b}1mb", "ab"),
            ("line1\nline2\r\n", "line1line2"),
            ("tab\there", "tab here"),
            ("bell\u{7}del\u{7f}nul\u{0}", "belldelnul"),
            ("\u{1b}(Bcharset", "charset"),
            ("\u{1b}7save\u{1b}8", "save"),
            ("rtl\u{202e}txt.exe", "rtltxt.exe"),
            ("trailing escape \u{1b}", "trailing escape "),
            ("unterminated \u{1b}[31", "unterminated "),
        ];
        for (input, want) in cases {
            assert_eq!(sanitize(input), want, "input {input:?}");
        }
    }

    #[test]
    fn output_has_no_controls_for_any_ascii_pair() {
        for a in 0u8..128 {
            for b in 0u8..128 {
                let s = format!("x{}{}y", a as char, b as char);
                assert!(!sanitize(&s).chars().any(char::is_control), "{s:?}");
            }
        }
    }
}
