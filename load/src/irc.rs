//! IRC line parsing (just what the generator needs).

/// One parsed IRC line.
#[derive(Debug, PartialEq, Eq)]
pub struct Line<'a> {
    /// Nick of the prefix (`nick!user@host` → `nick`), if any.
    pub nick: Option<&'a str>,
    /// Command or numeric.
    pub command: &'a str,
    /// Middle parameters, as on the line (see [`Line::params`]).
    middle: &'a str,
    /// Trailing parameter (after ` :`), if any.
    pub trailing: Option<&'a str>,
}

/// Parses one line (without its CR LF).
#[must_use]
pub fn parse(line: &str) -> Option<Line<'_>> {
    let line = line.trim_end_matches(['\r', '\n']);
    let (nick, rest) = if let Some(r) = line.strip_prefix(':') {
        let (prefix, rest) = r.split_once(' ')?;
        let nick = prefix.split(['!', '@']).next().unwrap_or(prefix);
        (Some(nick), rest)
    } else {
        (None, line)
    };
    let (head, trailing) = match split_trailing(rest) {
        Some((h, t)) => (h, Some(t)),
        None => match rest.strip_prefix(':') {
            Some(t) => ("", Some(t)),
            None => (rest, None),
        },
    };
    // No allocation per line: the middle parameters stay one slice, split on demand.
    let head = head.trim_start_matches(' ');
    let (command, middle) = head.split_once(' ').unwrap_or((head, ""));
    if command.is_empty() {
        return None;
    }
    Some(Line {
        nick,
        command,
        middle,
        trailing,
    })
}

impl<'a> Line<'a> {
    /// The middle parameters (words between the command and the trailing parameter).
    pub fn params(&self) -> impl Iterator<Item = &'a str> + use<'a> {
        self.middle.split(' ').filter(|w| !w.is_empty())
    }
}

/// `rest.split_once(" :")`, searching for the one byte `:` (memchr) rather than the
/// two-byte pattern (a substring searcher set up per line).
fn split_trailing(rest: &str) -> Option<(&str, &str)> {
    let mut from = 0;
    while let Some(p) = rest.get(from..).and_then(|r| r.find(':')) {
        let at = from + p;
        if at > 0 && rest.as_bytes().get(at - 1) == Some(&b' ') {
            return Some((rest.get(..at - 1)?, rest.get(at + 1..)?));
        }
        from = at + 1;
    }
    None
}

/// Splits complete lines off the front of `buf`: calls `f` for each, returns bytes consumed.
pub fn split_lines(buf: &[u8], mut f: impl FnMut(&str)) -> usize {
    // The complete lines are checked as UTF-8 once, together, and split with memchr; only
    // if that fails is each line looked at (and made lossy) on its own.
    let Some(last) = buf.iter().rposition(|&c| c == b'\n') else {
        return 0;
    };
    if let Some(text) = buf.get(..last).and_then(|b| core::str::from_utf8(b).ok()) {
        for line in text.split('\n') {
            f(line);
        }
        return last + 1;
    }
    let mut start = 0;
    while let Some(pos) = buf
        .get(start..)
        .and_then(|b| b.iter().position(|&c| c == b'\n'))
    {
        let end = start + pos;
        if let Some(raw) = buf.get(start..end) {
            // Valid UTF-8 (every line the generator counts) is checked once and borrowed.
            match core::str::from_utf8(raw) {
                Ok(line) => f(line),
                Err(_) => f(&String::from_utf8_lossy(raw)),
            }
        }
        start = end + 1;
    }
    start
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn privmsg() {
        let l = parse(":u00012!~u00012@127.0.0.1 PRIVMSG #r3 :T123 c12 xxx\r").unwrap();
        assert_eq!(l.nick, Some("u00012"));
        assert_eq!(l.command, "PRIVMSG");
        assert_eq!(l.params().collect::<Vec<_>>(), vec!["#r3"]);
        assert_eq!(l.trailing, Some("T123 c12 xxx"));
    }

    #[test]
    fn numerics_and_ping() {
        let l = parse(":irc.local 001 u1 :Welcome to the network").unwrap();
        assert_eq!(l.command, "001");
        assert_eq!(l.params().collect::<Vec<_>>(), vec!["u1"]);
        let p = parse("PING :irc.local").unwrap();
        assert_eq!(p.nick, None);
        assert_eq!(p.command, "PING");
        assert_eq!(p.trailing, Some("irc.local"));
        let j = parse(":u1!a@b JOIN #r1").unwrap();
        assert_eq!(
            (j.command, j.params().collect::<Vec<_>>(), j.trailing),
            ("JOIN", vec!["#r1"], None)
        );
        let m = parse(":s  353  u1 =  #r1 :a b").unwrap();
        assert_eq!(m.command, "353");
        assert_eq!(m.params().collect::<Vec<_>>(), vec!["u1", "=", "#r1"]);
        let j2 = parse(":u1!a@b JOIN :#r1").unwrap();
        assert_eq!(j2.trailing, Some("#r1"));
        assert!(parse("").is_none());
        let t = parse(":n!u@h PRIVMSG #r :a :b c").unwrap();
        assert_eq!(t.trailing, Some("a :b c"));
        let c = parse(":n!u@h NOTICE a:b #r :t").unwrap();
        assert_eq!(c.params().collect::<Vec<_>>(), vec!["a:b", "#r"]);
        assert_eq!(c.trailing, Some("t"));
        assert_eq!(split_trailing("x:y z"), None);
        assert!(parse(":only-a-prefix ").is_none());
    }

    #[test]
    fn splitting() {
        let mut got = Vec::new();
        let n = split_lines(b"a b\r\nc d\r\npartial", |l| got.push(l.to_owned()));
        assert_eq!(n, 10);
        assert_eq!(got, vec!["a b\r", "c d\r"]);
        let mut mixed = Vec::new();
        let n = split_lines(b"ok\n\nb\xffd\nlast\npart", |l| mixed.push(l.to_owned()));
        assert_eq!(n, 13);
        assert_eq!(mixed, vec!["ok", "", "b\u{fffd}d", "last"]);
        assert_eq!(split_lines(b"no line yet", |_| panic!("no line")), 0);
        let mut lossy = Vec::new();
        assert_eq!(split_lines(b"a\xffb\n", |l| lossy.push(l.to_owned())), 4);
        assert_eq!(lossy, vec!["a\u{fffd}b"]);
    }
}
