//! The four log files, written by one thread so that logging never blocks a connection.
//!
//! Callers push lines into a bounded channel; if it is ever full the line is dropped and
//! counted (the count is written to `info.log` when the logger stops). `chat.log` lines end
//! with a tab and `Base64(HMAC-SHA256(log key, previous tag || line))`; the chain starts from 32
//! zero bytes and continues across restarts from the last line's tag.

use core::sync::atomic::{AtomicU64, Ordering};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use chatbox_core::crypto::hash::hmac_sha256;
use chatbox_core::encoding::{base64_decode, base64_encode};

use crate::time::{fmt_utc, now_ms};

const QUEUE: usize = 16 * 1024;
const TAG_B64_LEN: usize = 44;

#[derive(Debug, Clone, Copy)]
enum File4 {
    Sql,
    Info,
    Credentials,
    Chat,
}

enum Cmd {
    Line(File4, String),
    Chat(String),
    Flush(mpsc::Sender<()>),
}

/// Handle to the logging thread; cheap to clone.
#[derive(Clone, Debug)]
pub struct Logs {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    tx: Mutex<Option<SyncSender<Cmd>>>,
    dropped: AtomicU64,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// One log file. A file that cannot be opened or written (disk full, read-only) never stops
/// the server: the failure is reported once (in `info.log`, or on stderr if `info.log` is the
/// broken one) and again when the file recovers.
struct Sink {
    name: &'static str,
    w: Option<BufWriter<File>>,
    failing: bool,
}

impl Sink {
    fn open(dir: &Path, name: &'static str) -> (Sink, Option<String>) {
        match open_append(&dir.join(name)) {
            Ok(f) => (
                Sink {
                    name,
                    w: Some(BufWriter::new(f)),
                    failing: false,
                },
                None,
            ),
            Err(e) => (
                Sink {
                    name,
                    w: None,
                    failing: true,
                },
                Some(format!(
                    "cannot open log file {name}: {e}; serving on without it"
                )),
            ),
        }
    }

    fn line(&mut self, args: core::fmt::Arguments<'_>) -> io::Result<()> {
        match self.w.as_mut() {
            Some(w) => {
                w.write_fmt(args)?;
                w.write_all(b"\n")
            }
            None => Ok(()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.w.as_mut().map_or(Ok(()), Write::flush)
    }
}

struct Writer {
    sql: Sink,
    info: Sink,
    credentials: Sink,
    chat: Sink,
    prev_tag: [u8; 32],
    log_key: [u8; 32],
}

/// Private from the first byte (0600 whatever the umask), as the data files are.
fn open_append(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// Makes one log line safe: no line breaks or other control characters.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The tag that continues the chain after `prev` with `line` (without its tab and tag).
fn chain_tag(key: &[u8; 32], prev: &[u8; 32], line: &str) -> [u8; 32] {
    hmac_sha256(key, &[prev, line.as_bytes()])
}

/// Reads the last complete line's tag of an existing chat log (zeros for a new one); appends a
/// newline if the file ends in a partial line, so new lines start clean.
fn resume_chain(path: &Path) -> io::Result<([u8; 32], bool)> {
    let Ok(mut f) = File::open(path) else {
        return Ok(([0; 32], false));
    };
    let meta = f.metadata()?;
    if !meta.is_file() {
        // A device or pipe (e.g. /dev/full): nothing to resume, and reading it may not end.
        return Ok(([0; 32], false));
    }
    let len = meta.len();
    let start = len.saturating_sub(8192);
    f.seek(SeekFrom::Start(start))?;
    let mut tail = Vec::new();
    f.read_to_end(&mut tail)?;
    let partial = !tail.is_empty() && !tail.ends_with(b"\n");
    let complete = match tail.iter().rposition(|&b| b == b'\n') {
        Some(i) => tail.get(..i).unwrap_or_default(),
        None => &[],
    };
    let last = complete.rsplit(|&b| b == b'\n').next().unwrap_or_default();
    let mut prev = [0u8; 32];
    if let Some(tab) = last.iter().rposition(|&b| b == b'\t') {
        let tag = core::str::from_utf8(last.get(tab + 1..).unwrap_or_default()).unwrap_or("");
        let mut out = [0u8; 33];
        if let Ok(t) = base64_decode(tag, &mut out)
            && let Ok(t) = <[u8; 32]>::try_from(t)
        {
            prev = t;
        }
    }
    Ok((prev, partial))
}

impl Writer {
    fn chat_line(&mut self, line: &str) -> io::Result<()> {
        let tag = chain_tag(&self.log_key, &self.prev_tag, line);
        let mut b64 = [0u8; TAG_B64_LEN];
        let enc = base64_encode(&tag, &mut b64).map_err(|e| io::Error::other(e.to_string()))?;
        self.chat.line(format_args!("{line}\t{enc}"))?;
        self.prev_tag = tag;
        Ok(())
    }

    fn sink(&mut self, which: File4) -> &mut Sink {
        match which {
            File4::Sql => &mut self.sql,
            File4::Info => &mut self.info,
            File4::Credentials => &mut self.credentials,
            File4::Chat => &mut self.chat,
        }
    }

    /// Tracks a file's health: reports the first failure and the recovery, not every line.
    fn note(&mut self, which: File4, result: io::Result<()>) {
        let sink = self.sink(which);
        let msg = match (result, sink.failing) {
            (Err(e), false) => {
                sink.failing = true;
                format!(
                    "log write failed for {}: {e}; serving on (lines for it are lost until it recovers)",
                    sink.name
                )
            }
            (Ok(()), true) if sink.w.is_some() => {
                sink.failing = false;
                format!("log file {} writable again", sink.name)
            }
            _ => return,
        };
        self.report(&msg);
    }

    /// A problem with the logs themselves: stderr, and `info.log` unless that is the broken one.
    fn report(&mut self, msg: &str) {
        eprintln!("chatbox-server: {msg}");
        if !self.info.failing {
            let stamp = fmt_utc(now_ms());
            let r = self
                .info
                .line(format_args!("{stamp} {msg}"))
                .and_then(|()| self.info.flush());
            if r.is_err() {
                self.note(File4::Info, r);
            }
        }
    }

    fn flush(&mut self) {
        for which in [File4::Sql, File4::Info, File4::Credentials, File4::Chat] {
            let r = self.sink(which).flush();
            self.note(which, r);
        }
    }

    fn handle(&mut self, cmd: Cmd) {
        let stamp = fmt_utc(now_ms());
        match cmd {
            Cmd::Line(which, text) => {
                let r = self.sink(which).line(format_args!("{stamp} {text}"));
                if r.is_err() {
                    self.note(which, r);
                }
            }
            Cmd::Chat(text) => {
                let r = self.chat_line(&format!("{stamp} {text}"));
                if r.is_err() {
                    self.note(File4::Chat, r);
                }
            }
            Cmd::Flush(done) => {
                self.flush();
                let _ = done.send(());
            }
        }
    }
}

impl Logs {
    /// Opens (creating) the four files in `dir` and starts the logging thread.
    pub fn open(dir: &Path, log_key: [u8; 32]) -> io::Result<Logs> {
        // A log directory that cannot be created (read-only parent, no space) does not stop the
        // server: each file below then fails to open and is reported on stderr.
        let dir_err = fs::create_dir_all(dir)
            .err()
            .map(|e| format!("cannot create log directory {}: {e}", dir.display()));
        let chat_path = dir.join("chat.log");
        let (prev_tag, partial) = resume_chain(&chat_path).unwrap_or(([0; 32], false));
        let (mut chat, chat_err) = Sink::open(dir, "chat.log");
        let mut partial_err = None;
        if partial
            && let Some(w) = chat.w.as_mut()
            && let Err(e) = w.write_all(b"\n")
        {
            partial_err = Some(format!("cannot end the partial last line of chat.log: {e}"));
        }
        let (info, info_err) = Sink::open(dir, "info.log");
        let (sql, sql_err) = Sink::open(dir, "sql.log");
        let (credentials, cred_err) = Sink::open(dir, "credentials.log");
        let mut writer = Writer {
            sql,
            info,
            credentials,
            chat,
            prev_tag,
            log_key,
        };
        for e in [dir_err, partial_err, info_err, chat_err, sql_err, cred_err]
            .into_iter()
            .flatten()
        {
            writer.report(&e);
        }
        let (tx, rx) = mpsc::sync_channel::<Cmd>(QUEUE);
        let thread = std::thread::Builder::new()
            .name("chatbox-log".into())
            .spawn(move || {
                while let Ok(cmd) = rx.recv() {
                    writer.handle(cmd);
                    while let Ok(cmd) = rx.try_recv() {
                        writer.handle(cmd);
                    }
                    writer.flush();
                }
                writer.flush();
            })?;
        let logs = Logs {
            inner: Arc::new(Inner {
                tx: Mutex::new(Some(tx)),
                dropped: AtomicU64::new(0),
                thread: Mutex::new(Some(thread)),
            }),
        };
        if partial {
            logs.info("chat.log ended in a partial line; verify-log will report it");
        }
        Ok(logs)
    }

    fn push(&self, cmd: Cmd) {
        let Ok(guard) = self.inner.tx.lock() else {
            return;
        };
        if let Some(tx) = guard.as_ref() {
            match tx.try_send(cmd) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    self.inner.dropped.fetch_add(1, Ordering::Relaxed);
                }
                Err(TrySendError::Disconnected(_)) => {}
            }
        }
    }

    /// A line in `info.log`.
    pub fn info(&self, text: impl AsRef<str>) {
        self.push(Cmd::Line(File4::Info, one_line(text.as_ref())));
    }

    /// A line in `sql.log`.
    pub fn sql(&self, text: impl AsRef<str>) {
        self.push(Cmd::Line(File4::Sql, one_line(text.as_ref())));
    }

    /// A line in `credentials.log`.
    pub fn credentials(&self, text: impl AsRef<str>) {
        self.push(Cmd::Line(File4::Credentials, one_line(text.as_ref())));
    }

    /// A line in `chat.log` (the time stamp and HMAC tag are added).
    pub fn chat(&self, text: impl AsRef<str>) {
        self.push(Cmd::Chat(one_line(text.as_ref())));
    }

    /// Lines dropped because the queue was full.
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }

    /// Waits until everything logged so far is written and flushed.
    pub fn flush(&self) {
        let (tx, rx) = mpsc::channel();
        let sender = self.inner.tx.lock().ok().and_then(|g| g.clone());
        if let Some(s) = sender
            && s.send(Cmd::Flush(tx)).is_ok()
        {
            let _ = rx.recv_timeout(core::time::Duration::from_secs(5));
        }
    }

    /// Flushes and stops the thread; later lines are ignored.
    pub fn close(&self) {
        let dropped = self.dropped();
        if dropped > 0 {
            self.info(format!("{dropped} log lines dropped (queue full)"));
        }
        if let Ok(mut g) = self.inner.tx.lock() {
            g.take();
        }
        if let Some(t) = self.inner.thread.lock().ok().and_then(|mut g| g.take()) {
            let _ = t.join();
        }
    }
}

/// Result of checking a chat log.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every line verified.
    Ok {
        /// Lines checked.
        lines: usize,
    },
    /// Line `line` (1-based) failed: tampered, reordered, removed before it, or malformed.
    BadLine {
        /// 1-based line number.
        line: usize,
    },
    /// The file ends in a partial line (no newline) after `line` good ones.
    Truncated {
        /// 1-based number of the partial line.
        line: usize,
    },
}

/// Checks the HMAC chain of a chat log with `log_key`.
pub fn verify_chat_log(path: &Path, log_key: &[u8; 32]) -> io::Result<Verdict> {
    let data = fs::read(path)?;
    let mut prev = [0u8; 32];
    let mut count = 0usize;
    let mut rest: &[u8] = &data;
    while !rest.is_empty() {
        let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
            return Ok(Verdict::Truncated { line: count + 1 });
        };
        let (line, tail) = rest.split_at(nl);
        rest = tail.get(1..).unwrap_or_default();
        count += 1;
        let bad = Verdict::BadLine { line: count };
        let Ok(line) = core::str::from_utf8(line) else {
            return Ok(bad);
        };
        let Some((body, tag)) = line.rsplit_once('\t') else {
            return Ok(bad);
        };
        let mut out = [0u8; 33];
        let Ok(tag) = base64_decode(tag, &mut out) else {
            return Ok(bad);
        };
        let expected = chain_tag(log_key, &prev, body);
        if !subtle_eq(&expected, tag) {
            return Ok(bad);
        }
        prev = expected;
    }
    Ok(Verdict::Ok { lines: count })
}

/// Constant-time enough comparison (the verifier is offline; this just avoids early exit).
fn subtle_eq(a: &[u8; 32], b: &[u8]) -> bool {
    b.len() == 32 && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
