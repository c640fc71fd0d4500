//! The input line: editing (Left/Right/Home/End/Backspace/Delete, Ctrl-U, Ctrl-W) and a history
//! of submitted lines (Up/Down), like a shell's.

/// Lines kept in the history.
const HISTORY_MAX: usize = 500;

/// An editable line with a cursor and a history.
#[derive(Debug, Clone, Default)]
pub struct Editor {
    chars: Vec<char>,
    /// Cursor position, in characters (0..=len).
    cursor: usize,
    history: Vec<String>,
    /// Position while browsing the history (`None` = editing a new line).
    browsing: Option<usize>,
    /// The new line put aside while browsing.
    draft: Vec<char>,
}

impl Editor {
    /// The text.
    #[must_use]
    pub fn text(&self) -> String {
        self.chars.iter().collect()
    }

    /// The cursor, in characters from the start.
    #[must_use]
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// The characters before the cursor.
    #[must_use]
    pub fn before_cursor(&self) -> String {
        self.chars.iter().take(self.cursor).collect()
    }

    /// Inserts a character at the cursor. Control characters are ignored.
    pub fn insert(&mut self, c: char) {
        if c.is_control() {
            return;
        }
        self.chars.insert(self.cursor, c);
        self.cursor += 1;
    }

    /// Deletes the character before the cursor.
    pub fn backspace(&mut self) {
        if self.cursor > 0 {
            self.cursor -= 1;
            self.chars.remove(self.cursor);
        }
    }

    /// Deletes the character under the cursor.
    pub fn delete(&mut self) {
        if self.cursor < self.chars.len() {
            self.chars.remove(self.cursor);
        }
    }

    /// Deletes the word before the cursor.
    pub fn delete_word(&mut self) {
        while self.cursor > 0 && self.chars.get(self.cursor - 1) == Some(&' ') {
            self.backspace();
        }
        while self.cursor > 0 && self.chars.get(self.cursor - 1) != Some(&' ') {
            self.backspace();
        }
    }

    /// Clears the line.
    pub fn clear(&mut self) {
        self.chars.clear();
        self.cursor = 0;
        self.browsing = None;
    }

    /// Moves the cursor one character left.
    pub fn left(&mut self) {
        self.cursor = self.cursor.saturating_sub(1);
    }

    /// Moves the cursor one character right.
    pub fn right(&mut self) {
        self.cursor = (self.cursor + 1).min(self.chars.len());
    }

    /// Moves the cursor to the start.
    pub fn home(&mut self) {
        self.cursor = 0;
    }

    /// Moves the cursor to the end.
    pub fn end(&mut self) {
        self.cursor = self.chars.len();
    }

    fn load(&mut self, chars: Vec<char>) {
        self.cursor = chars.len();
        self.chars = chars;
    }

    /// Shows the previous history entry.
    pub fn up(&mut self) {
        let next = match self.browsing {
            None if self.history.is_empty() => return,
            None => {
                self.draft = core::mem::take(&mut self.chars);
                self.history.len() - 1
            }
            Some(0) => return,
            Some(i) => i - 1,
        };
        self.browsing = Some(next);
        let entry = self.history.get(next).map(|s| s.chars().collect());
        self.load(entry.unwrap_or_default());
    }

    /// Shows the next history entry, or the line being written after the last one.
    pub fn down(&mut self) {
        let Some(i) = self.browsing else { return };
        if i + 1 < self.history.len() {
            self.browsing = Some(i + 1);
            let entry = self.history.get(i + 1).map(|s| s.chars().collect());
            self.load(entry.unwrap_or_default());
        } else {
            self.browsing = None;
            let draft = core::mem::take(&mut self.draft);
            self.load(draft);
        }
    }

    /// Takes the line (for Enter); non-empty lines go into the history when `remember`.
    pub fn submit(&mut self, remember: bool) -> String {
        let line = self.text();
        self.clear();
        self.draft.clear();
        if remember && !line.trim().is_empty() && self.history.last() != Some(&line) {
            self.history.push(line.clone());
            if self.history.len() > HISTORY_MAX {
                self.history.remove(0);
            }
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::Editor;

    fn typed(s: &str) -> Editor {
        let mut e = Editor::default();
        s.chars().for_each(|c| e.insert(c));
        e
    }

    #[test]
    fn editing() {
        let mut e = typed("hélo");
        e.left();
        e.left();
        e.insert('l');
        assert_eq!(e.text(), "héllo");
        e.home();
        e.delete();
        e.insert('H');
        e.end();
        e.backspace();
        assert_eq!(e.text(), "Héll");
        assert_eq!(e.before_cursor(), "Héll");
        e.insert('\u{1b}');
        assert_eq!(e.text(), "Héll");
        let mut w = typed("one two  ");
        w.delete_word();
        assert_eq!(w.text(), "one ");
    }

    #[test]
    fn history() {
        let mut e = Editor::default();
        for line in ["first", "second"] {
            line.chars().for_each(|c| e.insert(c));
            assert_eq!(e.submit(true), line);
        }
        "draft".chars().for_each(|c| e.insert(c));
        e.up();
        assert_eq!(e.text(), "second");
        e.up();
        assert_eq!(e.text(), "first");
        e.up();
        assert_eq!(e.text(), "first");
        e.down();
        assert_eq!(e.text(), "second");
        e.down();
        assert_eq!(e.text(), "draft");
        assert_eq!(e.submit(false), "draft");
        e.up();
        assert_eq!(e.text(), "second");
    }
}
