//! Text people typed (messages, topics, reasons, away texts, the MOTD) made safe to store and to
//! show: one line, nothing invisible, nothing that moves the cursor or reorders the line.
//!
//! The server cleans every such text before it stores or sends it, and the client cleans what
//! it receives again before showing it; both use [`clean`], so they agree on what is dropped.
//! Whether a text is empty is judged **after** cleaning ([`is_blank`]).
//!
//! What is removed, and why:
//!
//! - **Escape sequences**: CSI (`ESC [` … final byte, and the 8-bit `U+009B`), the control
//!   strings OSC/DCS/SOS/PM/APC (`ESC ]`, `ESC P`, `ESC X`, `ESC ^`, `ESC _` and their 8-bit
//!   forms, up to BEL, ST or `ESC \`), and two-character escapes (`ESC` intermediates final):
//!   the whole sequence, so that no stray parameters are left behind.
//! - **Every control character** (general category Cc: C0, DEL, C1 — NEL `U+0085` included).
//!   A tab becomes a space so that words stay apart.
//! - **Line and paragraph separators** (Zl `U+2028`, Zp `U+2029`): a consumer that splits lines
//!   the Unicode way would otherwise read one message as several lines, i.e. forged events.
//! - **Every format character** (general category Cf): zero-width space, joiners and marks
//!   (`U+200B`–`U+200F`), bidi embeddings, overrides and isolates (`U+202A`–`U+202E`,
//!   `U+2066`–`U+2069`) and the Arabic letter mark `U+061C`, word joiner and invisible operators
//!   (`U+2060`–`U+2064`), the deprecated format controls (`U+206A`–`U+206F`), the BOM /
//!   zero-width no-break space `U+FEFF`, the Mongolian vowel separator `U+180E`, interlinear
//!   annotation (`U+FFF9`–`U+FFFB`), tags (`U+E0001`, `U+E0020`–`U+E007F`, which can smuggle a
//!   whole hidden ASCII text), the soft hyphen, and the rest of Cf. They are invisible or change
//!   how *other* characters are shown, so they can hide text, make a message look empty, or make
//!   a line read in another order than it is stored.
//! - **The other default-ignorable code points** (Unicode's `Default_Ignorable_Code_Point`):
//!   combining grapheme joiner `U+034F`, the Hangul fillers (`U+115F`, `U+1160`, `U+3164`,
//!   `U+FFA0`, which show as nothing and are used for blank names and messages), Khmer inherent
//!   vowels `U+17B4`–`U+17B5`, `U+FFF0`–`U+FFF8` and the rest of `U+E0000`–`U+E0FFF`.
//! - **Variation selectors** (`U+FE00`–`U+FE0F`, `U+E0100`–`U+E01EF`, Mongolian `U+180B`–`U+180D`,
//!   `U+180F`) except **one** directly after a visible character: that one picks emoji or text
//!   presentation (`❤️` is `U+2764 U+FE0F`); a run of them, or one with nothing to modify, only
//!   carries hidden data.
//!
//! The price: zero-width joiner sequences fall apart into their parts (👨‍👩‍👧 shows as three
//! faces), ZWNJ no longer shapes Persian and Indic words, tag sequences (subdivision flags) show
//! as the plain black flag, and the Arabic number signs (visible format characters) are dropped.
//! Nothing visible is added or changed otherwise; spaces of every width (Zs) are kept.

use core::str::Chars;

/// Whether `c` is always removed from user text: a control character, a line or paragraph
/// separator, a format character, or another default-ignorable code point (see the module
/// documentation). Variation selectors are not included: [`clean`] keeps one after a visible
/// character ([`is_variation_selector`]).
#[must_use]
pub fn is_hidden_or_separator(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            // Zl, Zp.
            '\u{2028}' | '\u{2029}'
            // Cf.
            | '\u{00AD}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08E2}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            // Other default-ignorable code points (the tags U+E0001, U+E0020..U+E007F are Cf).
            | '\u{034F}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{3164}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFF8}'
            | '\u{E0000}'..='\u{E00FF}'
            | '\u{E01F0}'..='\u{E0FFF}'
        )
}

/// Whether `c` is a variation selector (it changes how the character before it is shown).
#[must_use]
pub fn is_variation_selector(c: char) -> bool {
    matches!(
        c,
        '\u{FE00}'..='\u{FE0F}' | '\u{E0100}'..='\u{E01EF}' | '\u{180B}'..='\u{180D}' | '\u{180F}'
    )
}

/// Where the scanner is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Text,
    /// After ESC (and perhaps intermediates 0x20..=0x2F).
    Escape,
    /// Inside a CSI sequence: parameters and intermediates until a final byte 0x40..=0x7E.
    Csi,
    /// Inside an OSC/DCS/SOS/PM/APC string: until BEL, ST (U+009C) or `ESC \`.
    String,
    /// ESC inside a string (perhaps the start of `ESC \`).
    StringEscape,
}

/// The characters of a text that survive cleaning; made by [`clean`].
#[derive(Debug, Clone)]
pub struct Clean<'a> {
    chars: Chars<'a>,
    state: State,
    /// The last character yielded was visible, so one variation selector may follow.
    after_visible: bool,
    /// A character read but not yet handled as text (it ended a sequence without being part
    /// of it).
    pending: Option<char>,
}

/// `text` without escape sequences, controls, separators and invisible characters (see the
/// module documentation), tabs turned into spaces. Collect it into a string, or compare it
/// character by character.
#[must_use]
pub fn clean(text: &str) -> Clean<'_> {
    Clean {
        chars: text.chars(),
        state: State::Text,
        after_visible: false,
        pending: None,
    }
}

/// Whether `text` shows nothing once cleaned (empty, or only spaces).
#[must_use]
pub fn is_blank(text: &str) -> bool {
    clean(text).all(char::is_whitespace)
}

impl Clean<'_> {
    /// Handles one character in the text state: `Some` if it is kept.
    fn text_char(&mut self, c: char) -> Option<char> {
        match c {
            '\u{1b}' => self.state = State::Escape,
            '\u{9b}' => self.state = State::Csi,
            '\u{90}' | '\u{98}' | '\u{9d}' | '\u{9e}' | '\u{9f}' => self.state = State::String,
            '\t' => {
                self.after_visible = false;
                return Some(' ');
            }
            c if is_hidden_or_separator(c) => {}
            c if is_variation_selector(c) => {
                if self.after_visible {
                    self.after_visible = false;
                    return Some(c);
                }
            }
            c => {
                self.after_visible = !c.is_whitespace();
                return Some(c);
            }
        }
        None
    }
}

impl Iterator for Clean<'_> {
    type Item = char;

    fn next(&mut self) -> Option<char> {
        loop {
            let c = match self.pending.take() {
                Some(c) => c,
                None => self.chars.next()?,
            };
            match self.state {
                State::Text => {
                    if let Some(out) = self.text_char(c) {
                        return Some(out);
                    }
                }
                State::Escape => match c {
                    '[' => self.state = State::Csi,
                    ']' | 'P' | 'X' | '^' | '_' => self.state = State::String,
                    // Intermediates: the escape goes on.
                    '\u{20}'..='\u{2f}' => {}
                    // The final character of a two-character escape: dropped with it.
                    '\u{30}'..='\u{7e}' => self.state = State::Text,
                    // Anything else ends the escape and is text again.
                    c => {
                        self.state = State::Text;
                        self.pending = Some(c);
                    }
                },
                State::Csi => match c {
                    '\u{20}'..='\u{3f}' => {}
                    '\u{40}'..='\u{7e}' => self.state = State::Text,
                    // A control or any other character aborts the sequence (as terminals do)
                    // and is handled as text: ESC starts a new escape, others are dropped or
                    // kept as usual.
                    c => {
                        self.state = State::Text;
                        self.pending = Some(c);
                    }
                },
                State::String => match c {
                    '\u{7}' | '\u{9c}' => self.state = State::Text,
                    '\u{1b}' => self.state = State::StringEscape,
                    _ => {}
                },
                State::StringEscape => match c {
                    '\\' => self.state = State::Text,
                    '\u{1b}' => {}
                    _ => self.state = State::String,
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate alloc;
    use alloc::string::String;

    use super::*;

    fn cleaned(s: &str) -> String {
        clean(s).collect()
    }

    #[test]
    fn escapes_and_controls() {
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
            ("\u{9b}2Jx", "x"),
            ("line1\nline2\r\n", "line1line2"),
            ("tab\there", "tab here"),
            ("bell\u{7}del\u{7f}nul\u{0}", "belldelnul"),
            ("\u{1b}(Bcharset", "charset"),
            ("\u{1b}7save\u{1b}8", "save"),
            ("trailing escape \u{1b}", "trailing escape "),
            ("unterminated \u{1b}[31", "unterminated "),
            ("csi \u{1b}[3日本", "csi 日本"),
            ("esc \u{1b}日本", "esc 日本"),
            ("nel\u{85}x", "nelx"),
        ];
        for (input, want) in cases {
            assert_eq!(cleaned(input), want, "input {input:?}");
        }
    }

    #[test]
    fn separators_format_and_ignorable_characters_are_removed() {
        let hidden = [
            '\u{2028}',
            '\u{2029}',
            '\u{85}',
            '\u{200B}',
            '\u{200C}',
            '\u{200D}',
            '\u{200E}',
            '\u{200F}',
            '\u{2060}',
            '\u{2061}',
            '\u{2062}',
            '\u{2063}',
            '\u{2064}',
            '\u{FEFF}',
            '\u{202A}',
            '\u{202B}',
            '\u{202C}',
            '\u{202D}',
            '\u{202E}',
            '\u{2066}',
            '\u{2067}',
            '\u{2068}',
            '\u{2069}',
            '\u{061C}',
            '\u{180E}',
            '\u{206A}',
            '\u{206F}',
            '\u{FFF9}',
            '\u{FFFB}',
            '\u{E0001}',
            '\u{E0041}',
            '\u{E007F}',
            '\u{AD}',
            '\u{034F}',
            '\u{3164}',
            '\u{115F}',
            '\u{FFA0}',
            '\u{1D173}',
        ];
        for c in hidden {
            assert!(is_hidden_or_separator(c), "{:04X}", u32::from(c));
            let s: String = ['a', c, 'b'].iter().collect();
            assert_eq!(cleaned(&s), "ab", "U+{:04X}", u32::from(c));
            let only: String = core::iter::repeat_n(c, 5).collect();
            assert!(is_blank(&only), "U+{:04X}", u32::from(c));
        }
        // Visible text and spaces of other widths stay.
        for c in [
            'a', ' ', '\u{A0}', '\u{3000}', 'é', '日', '✓', '😀', '\u{E000}',
        ] {
            assert!(!is_hidden_or_separator(c), "{:04X}", u32::from(c));
        }
        assert!(is_blank(""));
        assert!(is_blank(" \u{200B}\t\u{FEFF} "));
        assert!(!is_blank("\u{200B}x"));
    }

    #[test]
    fn one_variation_selector_after_a_visible_character_is_kept() {
        assert_eq!(cleaned("I \u{2764}\u{FE0F} it"), "I \u{2764}\u{FE0F} it");
        assert_eq!(
            cleaned("\u{2764}\u{FE0F}\u{FE0E}\u{E0100}x"),
            "\u{2764}\u{FE0F}x"
        );
        assert_eq!(cleaned("\u{FE0F}start"), "start");
        assert_eq!(cleaned("a \u{FE0F}"), "a ");
        assert_eq!(cleaned("a\u{200B}\u{FE0F}"), "a\u{FE0F}");
        assert!(is_blank("\u{FE0F}\u{FE0F}"));
    }

    #[test]
    fn output_never_holds_a_hidden_character_or_an_escape() {
        let specials = [
            '\u{1b}', '\u{9b}', '\u{9d}', '\u{9c}', '\u{7}', '[', ']', '\\', 'P', 'm', '1', ';',
            ' ', 'a', '\u{2028}', '\u{200B}', '\u{FE0F}', '\u{202E}', '\n', '日',
        ];
        for a in specials {
            for b in specials {
                for c in specials {
                    let s: String = ['x', a, b, c, 'y'].iter().collect();
                    let out = cleaned(&s);
                    assert!(!out.chars().any(is_hidden_or_separator), "{s:?} -> {out:?}");
                    let mut prev_vs = true;
                    for ch in out.chars() {
                        let vs = is_variation_selector(ch);
                        assert!(!(vs && prev_vs), "{s:?} -> {out:?}");
                        prev_vs = vs || ch.is_whitespace();
                    }
                }
            }
        }
    }
}
