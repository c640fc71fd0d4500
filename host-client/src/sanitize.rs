//! Making untrusted text (names, messages, topics, reasons from the server) safe to print.
//!
//! The server already strips control characters, but the client does not rely on it: a hostile
//! or buggy server must not be able to move the cursor, change colours, set the window title,
//! or break the one-event-per-line format of the plain mode. [`sanitize`] removes
//! - ANSI/ECMA-48 escape sequences: CSI (`ESC [` … final byte), OSC/DCS/APC/PM/SOS strings
//!   (up to BEL or `ESC \`), and two-byte `ESC x` sequences; the 8-bit C1 forms too;
//! - every other control character (C0, DEL, C1), tabs and newlines included (a tab becomes a
//!   space so words stay apart);
//! - Unicode line and paragraph separators (U+2028, U+2029, and NEL among the controls), which
//!   a consumer splitting lines the Unicode way would read as a new (forged) event line;
//! - format and other default-ignorable characters — zero-width spaces and joiners, bidi
//!   embeddings, overrides and isolates (which can make a line display in a different order
//!   than it reads), the BOM, tags — and runs of variation selectors, which hide text or make a
//!   message look empty. `chatbox_core::text` says exactly which characters and why.

/// Returns `text` without escape sequences, control characters, line and paragraph
/// separators, and invisible (format, default-ignorable) characters: `chatbox_core::text::clean`,
/// the function the server applies before storing and sending, applied again here.
#[must_use]
pub fn sanitize(text: &str) -> String {
    chatbox_core::text::clean(text).collect()
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
            (
                "one\u{2028}say #lobby eve forged",
                "onesay #lobby eve forged",
            ),
            ("para\u{2029}graph nel\u{85}x", "paragraph nelx"),
            (
                "zero\u{200b}width\u{200c}\u{200d}\u{2060}\u{feff}",
                "zerowidth",
            ),
            (
                "\u{202a}\u{202b}\u{202d}bidi\u{202c}\u{2066}\u{2067}\u{2068}\u{2069}",
                "bidi",
            ),
            (
                "alm\u{61c} mvs\u{180e} tags\u{e0001}\u{e0068}\u{e0069}\u{e007f}",
                "alm mvs tags",
            ),
            (
                "\u{2764}\u{fe0f} kept, \u{fe0f}\u{fe0f} not",
                "\u{2764}\u{fe0f} kept,  not",
            ),
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
