//! Untrusted text made safe to store and to print on a terminal: ANSI escape sequences and
//! control characters removed, tabs turned into spaces, bidi overrides dropped.

/// Removes escape sequences (CSI, OSC/DCS/SOS/PM/APC strings, two-character escapes, C1
/// CSI) and every other control character.
#[must_use]
pub fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                Some('[') => skip_csi(&mut chars),
                Some(']' | 'P' | 'X' | '^' | '_') => skip_string(&mut chars),
                _ => {}
            },
            '\u{9b}' => skip_csi(&mut chars),
            '\u{90}' | '\u{9d}' | '\u{98}' | '\u{9e}' | '\u{9f}' => skip_string(&mut chars),
            '\t' => out.push(' '),
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => {}
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// CSI: parameter and intermediate bytes (0x20–0x3F), then one final byte (0x40–0x7E).
fn skip_csi(chars: &mut core::iter::Peekable<core::str::Chars<'_>>) {
    while let Some(&c) = chars.peek() {
        if ('\u{20}'..='\u{3f}').contains(&c) {
            chars.next();
        } else {
            if ('\u{40}'..='\u{7e}').contains(&c) {
                chars.next();
            }
            return;
        }
    }
}

/// A control string, ended by BEL, ESC \ or ST (U+009C).
fn skip_string(chars: &mut core::iter::Peekable<core::str::Chars<'_>>) {
    while let Some(c) = chars.next() {
        match c {
            '\u{7}' | '\u{9c}' => return,
            '\u{1b}' => {
                if chars.peek() == Some(&'\\') {
                    chars.next();
                }
                return;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn strips_escapes_and_controls() {
        assert_eq!(clean("plain text"), "plain text");
        assert_eq!(clean("\u{1b}[31mred\u{1b}[0m"), "red");
        assert_eq!(clean("a\u{1b}]0;title\u{7}b"), "ab");
        assert_eq!(
            clean("a\u{1b}]8;;http://x\u{1b}\\link\u{1b}]8;;\u{1b}\\b"),
            "alinkb"
        );
        assert_eq!(
            clean("bell\u{7} cr\r lf\n nul\0 del\u{7f}"),
            "bell cr lf nul del"
        );
        assert_eq!(clean("tab\there"), "tab here");
        assert_eq!(clean("\u{9b}2Jx"), "x");
        assert_eq!(clean("rtl\u{202e}txt"), "rtltxt");
        assert_eq!(clean("héllo ✓ 日本"), "héllo ✓ 日本");
        assert_eq!(clean("dangling \u{1b}"), "dangling ");
    }
}
