//! The chat log's HMAC chain: tags, the anchor kept outside the log, and the verifier.
//!
//! Every line of `chat.log` ends with a tab and `Base64(HMAC-SHA256(log key, previous tag ||
//! line))`; the chain starts from 32 zero bytes and continues across restarts and across
//! rotated files. A file opened after a rotation (SIGHUP) starts with a chained line
//! `… -- chain continues from <previous tag>`, so a verifier given only the newer files can
//! start there, and one given every file sees a line missing at a boundary.
//!
//! The anchor (`chat.anchor` in the data directory, next to `server.key`) records where the
//! chain ended the last time the writer synced: the current file's line count and byte length,
//! the last tag and the file's inode. The writer updates it at most every
//! [`ANCHOR_EVERY`], only after `chat.log` itself was synced to disk, so after a crash (even a
//! power loss) the log is never shorter than its anchor: lines written after the last anchor may
//! be lost by a crash, which is not tampering; lines the anchor covers that are gone are.

use core::time::Duration;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use chatbox_core::crypto::hash::hmac_sha256;
use chatbox_core::encoding::{base64_decode, base64_encode};

use crate::private;

/// Base64 length of a tag.
pub(crate) const TAG_B64_LEN: usize = 44;
/// Longest time between a synced chat line and the anchor that covers it.
pub const ANCHOR_EVERY: Duration = Duration::from_millis(100);
/// What the first line of a file opened after a rotation says (then the previous tag).
pub(crate) const CONTINUES: &str = " -- chain continues from ";
const ANCHOR_MAGIC: &str = "chatbox-chat-anchor v1";

/// The tag that continues the chain after `prev` with `line` (without its tab and tag).
pub(crate) fn chain_tag(key: &[u8; 32], prev: &[u8; 32], line: &str) -> [u8; 32] {
    hmac_sha256(key, &[prev, line.as_bytes()])
}

/// A tag in Base64.
pub(crate) fn tag_b64(tag: &[u8; 32]) -> String {
    let mut b64 = [0u8; TAG_B64_LEN];
    base64_encode(tag, &mut b64).map_or_else(|_| String::new(), str::to_owned)
}

fn parse_tag(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 33];
    base64_decode(s, &mut out)
        .ok()
        .and_then(|t| <[u8; 32]>::try_from(t).ok())
}

/// Where the chain ended when the writer last synced `chat.log`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    /// Lines in the current file up to the anchored one.
    pub lines: u64,
    /// Bytes of the current file up to the end of the anchored line.
    pub bytes: u64,
    /// The anchored line's tag (the previous file's last tag if `lines` is 0).
    pub tag: [u8; 32],
    /// Inode of the anchored file (a different file at the same path was rotated or replaced).
    pub ino: u64,
}

impl Anchor {
    fn to_line(&self) -> String {
        format!(
            "{ANCHOR_MAGIC} lines={} bytes={} ino={} tag={}\n",
            self.lines,
            self.bytes,
            self.ino,
            tag_b64(&self.tag)
        )
    }

    fn parse(text: &str) -> Option<Anchor> {
        let rest = text.trim_end().strip_prefix(ANCHOR_MAGIC)?;
        let mut a = Anchor {
            lines: 0,
            bytes: 0,
            tag: [0; 32],
            ino: 0,
        };
        let mut seen = 0;
        for field in rest.split_whitespace() {
            let (k, v) = field.split_once('=')?;
            match k {
                "lines" => a.lines = v.parse().ok()?,
                "bytes" => a.bytes = v.parse().ok()?,
                "ino" => a.ino = v.parse().ok()?,
                "tag" => a.tag = parse_tag(v)?,
                _ => return None,
            }
            seen += 1;
        }
        (seen == 4).then_some(a)
    }

    /// Reads an anchor file; `Ok(None)` if there is none.
    pub fn read(path: &Path) -> io::Result<Option<Anchor>> {
        match fs::read_to_string(path) {
            Ok(text) => Anchor::parse(&text).map(Some).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: not a chat log anchor", path.display()),
                )
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Replaces the anchor file atomically (a private temporary file renamed over it).
    pub(crate) fn write(&self, path: &Path) -> io::Result<()> {
        let tmp = path.with_extension("anchor.tmp");
        let _ = fs::remove_file(&tmp);
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(private::FILE_MODE)
            .open(&tmp)?;
        f.write_all(self.to_line().as_bytes())?;
        drop(f);
        fs::rename(&tmp, path)
    }
}

/// The file name of the anchor of a node's chat log in the data directory: `chat.anchor`, or
/// `chat.<node id>.anchor` when several nodes may share the data directory (a cluster).
#[must_use]
pub fn anchor_name(node: Option<&str>) -> String {
    match node {
        Some(n) => format!("chat.{n}.anchor"),
        None => "chat.anchor".to_owned(),
    }
}

/// How the writer resumes an existing `chat.log`.
#[derive(Debug)]
pub(crate) struct Resume {
    pub prev: [u8; 32],
    pub lines: u64,
    /// The file ends in a partial line (a newline must be written before new lines).
    pub partial: bool,
    /// A line to chain first (the file is not the anchored one): `-- chain continues …`.
    pub continues: bool,
    /// What to report (info.log and stderr).
    pub notes: Vec<String>,
}

fn last_tag(complete: &[u8]) -> Option<[u8; 32]> {
    let last = complete.rsplit(|&b| b == b'\n').find(|l| !l.is_empty())?;
    let tab = last.iter().rposition(|&b| b == b'\t')?;
    parse_tag(core::str::from_utf8(last.get(tab + 1..)?).ok()?)
}

/// Reads `path` and decides where the chain continues, checking it against `anchor`.
pub(crate) fn resume(path: &Path, anchor: Option<&Anchor>) -> Resume {
    let mut r = Resume {
        prev: [0; 32],
        lines: 0,
        partial: false,
        continues: false,
        notes: Vec::new(),
    };
    let file = File::open(path).and_then(|f| {
        let m = f.metadata()?;
        Ok((f, m))
    });
    let (data, ino) = match file {
        // A device or pipe (e.g. /dev/full): nothing to resume, and reading it may not end.
        Ok((_, m)) if !m.is_file() => return r,
        Ok((mut f, m)) => {
            let mut data = Vec::new();
            if let Err(e) = f
                .seek(SeekFrom::Start(0))
                .and_then(|_| f.read_to_end(&mut data))
            {
                r.notes
                    .push(format!("cannot read chat.log to resume its chain: {e}"));
            }
            (data, Some(m.ino()))
        }
        Err(_) => (Vec::new(), None),
    };
    r.partial = !data.is_empty() && !data.ends_with(b"\n");
    let complete_len = data.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let complete = data.get(..complete_len).unwrap_or_default();
    r.lines = complete.iter().filter(|&&c| c == b'\n').count() as u64;
    r.prev = last_tag(complete).unwrap_or([0; 32]);
    let Some(a) = anchor else {
        return r;
    };
    if ino != Some(a.ino) {
        // Rotated without a SIGHUP before this start, replaced, or deleted: the chain goes on
        // from the anchor, and the new file says so in its first line.
        r.notes.push(format!(
            "chat.log is not the file its anchor describes ({} lines, {} bytes, inode {}): it was \
             rotated, replaced or deleted while the server was stopped; the chain continues from \
             the anchor (verify the previous file together with this one)",
            a.lines, a.bytes, a.ino
        ));
        if data.is_empty() {
            r.prev = a.tag;
            r.continues = true;
        }
        return r;
    }
    let at = usize::try_from(a.bytes).unwrap_or(usize::MAX);
    if data.len() < at {
        r.notes.push(format!(
            "chat.log was shortened: it has {} bytes and {} lines, its anchor {} bytes and {} \
             lines (lines {}..{} are missing); the chain continues from the anchor, so \
             verify-log keeps reporting the gap",
            data.len(),
            r.lines,
            a.bytes,
            a.lines,
            r.lines + 1,
            a.lines.max(r.lines + 1)
        ));
        r.prev = a.tag;
        return r;
    }
    let upto = data.get(..at).unwrap_or_default();
    let matches = if at == 0 {
        true
    } else {
        upto.ends_with(b"\n") && last_tag(upto) == Some(a.tag)
    };
    if !matches {
        r.notes.push(format!(
            "chat.log does not match its anchor at byte {} (line {}): it was edited; verify-log \
             will report it",
            a.bytes, a.lines
        ));
    }
    r
}

/// Counts the lines of a file (0 if unreadable or not a regular file).
pub(crate) fn count_lines(path: &Path) -> u64 {
    match fs::metadata(path) {
        Ok(m) if m.is_file() => fs::read(path)
            .map(|d| d.iter().filter(|&&c| c == b'\n').count() as u64)
            .unwrap_or(0),
        _ => 0,
    }
}

/// How the end of the chain compares with its anchor.
#[derive(Debug, PartialEq, Eq)]
pub enum AnchorCheck {
    /// No anchor was given: trailing lines removed cannot be noticed.
    None,
    /// The chain ends at the anchor.
    AtEnd,
    /// The chain goes on past the anchor by this many lines (written after the last anchor
    /// update: in the last [`ANCHOR_EVERY`], or just before a crash).
    Beyond(u64),
}

/// Result of checking one or more chat log files as one chain.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every line verified.
    Ok {
        /// Lines checked in all files.
        lines: usize,
        /// The first file starts at a rotation point (`-- chain continues from …`), not at the
        /// chain's beginning.
        continued: bool,
        /// The end against the anchor.
        anchor: AnchorCheck,
    },
    /// Line `line` (1-based) of file `file` (index into the files given) failed: tampered,
    /// reordered, removed before it (also at the end of the previous file), or malformed.
    BadLine {
        /// Index of the file.
        file: usize,
        /// 1-based line number in that file.
        line: usize,
    },
    /// File `file` ends in a partial line (no newline): line `line`.
    Truncated {
        /// Index of the file.
        file: usize,
        /// 1-based number of the partial line.
        line: usize,
    },
    /// The last file lacks lines its anchor covers: lines `from..=to` are missing at its end.
    Missing {
        /// Index of the file (the last one).
        file: usize,
        /// First missing line (1-based).
        from: u64,
        /// Last missing line.
        to: u64,
    },
    /// The last file has no line ending where its anchor says (at byte `bytes`, line `line`):
    /// lines were removed and others put in their place.
    NotAnchored {
        /// Index of the file.
        file: usize,
        /// The anchored line.
        line: u64,
        /// The anchored length.
        bytes: u64,
    },
}

/// Checks `files` as one HMAC chain in the order given, and the last one's end against
/// `anchor` if given.
pub fn verify_chat_logs(
    files: &[PathBuf],
    log_key: &[u8; 32],
    anchor: Option<&Anchor>,
) -> io::Result<Verdict> {
    let mut prev = [0u8; 32];
    let mut total = 0usize;
    let mut continued = false;
    // An anchor at byte 0 (a fresh file) holds for any file; otherwise a line must end there.
    let mut anchored = anchor.is_some_and(|a| a.bytes == 0);
    let mut last_lines = 0u64;
    let last = files.len().saturating_sub(1);
    for (fi, path) in files.iter().enumerate() {
        let data = fs::read(path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        let mut count = 0usize;
        let mut offset = 0usize;
        let mut rest: &[u8] = &data;
        while !rest.is_empty() {
            let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
                return Ok(Verdict::Truncated {
                    file: fi,
                    line: count + 1,
                });
            };
            let (line, tail) = rest.split_at(nl);
            rest = tail.get(1..).unwrap_or_default();
            offset += nl + 1;
            count += 1;
            let bad = Verdict::BadLine {
                file: fi,
                line: count,
            };
            let Ok(line) = core::str::from_utf8(line) else {
                return Ok(bad);
            };
            let Some((body, tag)) = line.rsplit_once('\t') else {
                return Ok(bad);
            };
            let Some(tag) = parse_tag(tag) else {
                return Ok(bad);
            };
            // The first file may start where a rotation left the chain.
            if fi == 0
                && count == 1
                && let Some(from) = body
                    .split_once(CONTINUES)
                    .and_then(|(_, r)| parse_tag(r.split_whitespace().next().unwrap_or_default()))
                && subtle_eq(&chain_tag(log_key, &from, body), &tag)
            {
                prev = from;
                continued = true;
            }
            let expected = chain_tag(log_key, &prev, body);
            if !subtle_eq(&expected, &tag) {
                return Ok(bad);
            }
            prev = expected;
            if fi == last
                && let Some(a) = anchor
                && offset as u64 == a.bytes
            {
                anchored = a.tag == prev;
            }
        }
        total += count;
        last_lines = count as u64;
        if fi == last
            && let Some(a) = anchor
        {
            let len = data.len() as u64;
            if len < a.bytes || last_lines < a.lines {
                return Ok(Verdict::Missing {
                    file: fi,
                    from: last_lines + 1,
                    to: a.lines.max(last_lines + 1),
                });
            }
            if !anchored {
                return Ok(Verdict::NotAnchored {
                    file: fi,
                    line: a.lines,
                    bytes: a.bytes,
                });
            }
        }
    }
    let anchor = match anchor {
        None => AnchorCheck::None,
        Some(a) if last_lines == a.lines => AnchorCheck::AtEnd,
        Some(a) => AnchorCheck::Beyond(last_lines - a.lines),
    };
    Ok(Verdict::Ok {
        lines: total,
        continued,
        anchor,
    })
}

/// Comparison without early exit (the verifier is offline; this just avoids timing games).
fn subtle_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::Logs;

    const KEY: [u8; 32] = [9; 32];

    fn temp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("chatbox-chain-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn anchor_lines_round_trip_and_bad_ones_are_refused() {
        let a = Anchor {
            lines: 7,
            bytes: 700,
            tag: [3; 32],
            ino: 12,
        };
        assert_eq!(Anchor::parse(&a.to_line()), Some(a));
        assert_eq!(
            Anchor::parse("chatbox-chat-anchor v1 lines=1 bytes=2"),
            None
        );
        assert_eq!(Anchor::parse("something else"), None);
    }

    #[test]
    fn the_end_is_checked_against_the_anchor() {
        let dir = temp("end");
        let anchor = dir.join("chat.anchor");
        let logs = Logs::open_anchored(&dir, KEY, Some(&anchor)).unwrap_or_else(|e| panic!("{e}"));
        for i in 0..5 {
            logs.chat(format!("line {i}"));
        }
        logs.close();
        let log = dir.join("chat.log");
        let a = Anchor::read(&anchor).ok().flatten();
        assert_eq!(a.as_ref().map(|a| a.lines), Some(5));
        let files = [log.clone()];
        let v = verify_chat_logs(&files, &KEY, a.as_ref()).ok();
        assert!(
            matches!(
                v,
                Some(Verdict::Ok {
                    lines: 5,
                    anchor: AnchorCheck::AtEnd,
                    ..
                })
            ),
            "{v:?}"
        );
        // A line written after the last anchor (a crash before the next one): fine, noted.
        let text = fs::read_to_string(&log).unwrap_or_default();
        let last = text
            .lines()
            .last()
            .and_then(|l| l.rsplit_once('\t'))
            .map(|(_, t)| t);
        let prev = last.and_then(parse_tag).unwrap_or([0; 32]);
        let body = "2026-01-01T00:00:00.000Z after";
        let extra = format!("{text}{body}\t{}\n", tag_b64(&chain_tag(&KEY, &prev, body)));
        let _ = fs::write(&log, &extra);
        let v = verify_chat_logs(&files, &KEY, a.as_ref()).ok();
        assert!(
            matches!(
                v,
                Some(Verdict::Ok {
                    lines: 6,
                    anchor: AnchorCheck::Beyond(1),
                    ..
                })
            ),
            "{v:?}"
        );
        // The last two anchored lines cut: named.
        let cut: String = text.lines().take(3).map(|l| format!("{l}\n")).collect();
        let _ = fs::write(&log, cut);
        let v = verify_chat_logs(&files, &KEY, a.as_ref()).ok();
        assert_eq!(
            v,
            Some(Verdict::Missing {
                file: 0,
                from: 4,
                to: 5
            })
        );
        // Without the anchor the cut cannot be seen (what the anchor is for).
        let v = verify_chat_logs(&files, &KEY, None).ok();
        assert!(
            matches!(
                v,
                Some(Verdict::Ok {
                    lines: 3,
                    anchor: AnchorCheck::None,
                    ..
                })
            ),
            "{v:?}"
        );
        let _ = fs::remove_dir_all(&dir);
    }
}
