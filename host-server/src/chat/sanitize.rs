//! Untrusted text made safe to store and to print on a terminal: every text a user or an
//! operator supplies (messages, topics, part/kick/ban/mute reasons, away texts, the MOTD) goes
//! through [`clean`] before it is stored or sent. What is removed, and why, is
//! `chatbox_core::text`'s contract; the client applies the same function to what it shows.

use chatbox_core::text;

/// `text` without escape sequences, control characters, line/paragraph separators and
/// invisible (format, default-ignorable) characters; tabs become spaces.
#[must_use]
pub(crate) fn clean(raw: &str) -> String {
    text::clean(raw).collect()
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn strips_escapes_controls_and_hidden_characters() {
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
        assert_eq!(
            clean("one\u{2028}say #lobby bob forged\u{2029}\u{85}x"),
            "onesay #lobby bob forgedx"
        );
        assert_eq!(clean("\u{200b}\u{feff}\u{2060}"), "");
    }
}
