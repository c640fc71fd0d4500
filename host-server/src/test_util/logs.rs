//! Reading the server's log files in tests.

use std::path::Path;

/// The four log files of `dir` concatenated (missing ones as empty).
pub fn read_all_logs(dir: &Path) -> String {
    let mut all = String::new();
    for name in ["sql.log", "info.log", "credentials.log", "chat.log"] {
        all.push_str(&std::fs::read_to_string(dir.join(name)).unwrap_or_default());
    }
    all
}

/// How many events containing `needle` a log records, counting coalesced lines by their
/// count: `KIND: N more like this in the last 10 s (the last: LINE)` stands for N events and
/// `LINE (and N more like this since the last report)` for 1 + N.
pub fn count_events(log: &str, needle: &str) -> usize {
    log.lines()
        .map(|l| {
            if let Some((head, rest)) = l.split_once(" more like this in the last ") {
                let n = head
                    .rsplit(' ')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                let last = rest.split_once("(the last: ").map_or("", |(_, t)| t);
                if last.contains(needle) { n } else { 0 }
            } else if let Some((line, more)) = l.split_once(" (and ") {
                let n: usize = more
                    .split(' ')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                if line.contains(needle) { 1 + n } else { 0 }
            } else {
                usize::from(l.contains(needle))
            }
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::count_events;

    #[test]
    fn counts_plain_and_coalesced_lines() {
        let log = "a login failed x\n\
                   b login failed y (and 3 more like this since the last report)\n\
                   auth: 5 more like this in the last 10 s (the last: c login failed z)\n\
                   auth: 7 more like this in the last 10 s (the last: something else)\n\
                   unrelated\n";
        assert_eq!(count_events(log, "login failed"), 1 + 4 + 5);
        assert_eq!(count_events(log, "nothing"), 0);
    }
}
