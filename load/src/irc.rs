//! IRC line parsing (just what the generator needs).

/// One parsed IRC line.
#[derive(Debug, PartialEq, Eq)]
pub struct Line<'a> {
    /// Nick of the prefix (`nick!user@host` → `nick`), if any.
    pub nick: Option<&'a str>,
    /// Command or numeric.
    pub command: &'a str,
    /// Middle parameters.
    pub params: Vec<&'a str>,
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
    let (head, trailing) = match rest.split_once(" :") {
        Some((h, t)) => (h, Some(t)),
        None => match rest.strip_prefix(':') {
            Some(t) => ("", Some(t)),
            None => (rest, None),
        },
    };
    let mut words = head.split(' ').filter(|w| !w.is_empty());
    let command = words.next()?;
    Some(Line {
        nick,
        command,
        params: words.collect(),
        trailing,
    })
}

/// Splits complete lines off the front of `buf`: calls `f` for each, returns bytes consumed.
pub fn split_lines(buf: &[u8], mut f: impl FnMut(&str)) -> usize {
    let mut start = 0;
    while let Some(pos) = buf
        .get(start..)
        .and_then(|b| b.iter().position(|&c| c == b'\n'))
    {
        let end = start + pos;
        if let Some(raw) = buf.get(start..end) {
            f(&String::from_utf8_lossy(raw));
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
        assert_eq!(l.params, vec!["#r3"]);
        assert_eq!(l.trailing, Some("T123 c12 xxx"));
    }

    #[test]
    fn numerics_and_ping() {
        let l = parse(":irc.local 001 u1 :Welcome to the network").unwrap();
        assert_eq!(l.command, "001");
        assert_eq!(l.params, vec!["u1"]);
        let p = parse("PING :irc.local").unwrap();
        assert_eq!(p.nick, None);
        assert_eq!(p.command, "PING");
        assert_eq!(p.trailing, Some("irc.local"));
        let j = parse(":u1!a@b JOIN #r1").unwrap();
        assert_eq!(
            (j.command, j.params, j.trailing),
            ("JOIN", vec!["#r1"], None)
        );
        let j2 = parse(":u1!a@b JOIN :#r1").unwrap();
        assert_eq!(j2.trailing, Some("#r1"));
        assert!(parse("").is_none());
    }

    #[test]
    fn splitting() {
        let mut got = Vec::new();
        let n = split_lines(b"a b\r\nc d\r\npartial", |l| got.push(l.to_owned()));
        assert_eq!(n, 10);
        assert_eq!(got, vec!["a b\r", "c d\r"]);
    }
}
