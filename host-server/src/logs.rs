//! The four log files, written by one thread so that logging never blocks a connection.
//!
//! Callers push lines into a bounded channel; if it is ever full the line is dropped and
//! counted (the count is written to `info.log` when the logger stops). `chat.log` lines carry
//! an HMAC chain anchored outside the log ([`chain`]). Every file is created 0600 in a 0700
//! directory ([`crate::private`]).
//!
//! Lines that an attacker can make the server repeat at will (refused logins, refused bus
//! events) go through [`Logs::info_coalesced`] / [`Logs::credentials_coalesced`]: the first of
//! a kind is written in full, the rest within [`COALESCE_EVERY`] become one line with a count.
//!
//! [`Logs::reopen`] (SIGHUP, logrotate's `postrotate`) reopens the four files by name; the chat
//! chain continues into the new `chat.log`, which starts with a chained `-- chain continues
//! from …` line. A file that cannot be (re)opened never stops the server: its failure is
//! reported, and a later reopen recovers it.

pub mod chain;

use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use chain::{ANCHOR_EVERY, CONTINUES, chain_tag, tag_b64};
pub use chain::{Anchor, AnchorCheck, Verdict, anchor_name, verify_chat_logs};

use crate::private;
use crate::time::{fmt_utc, now_ms};

const QUEUE: usize = 16 * 1024;
/// How long the writer lets lines gather when they come faster than one at a time.
const LINGER: Duration = Duration::from_millis(5);
/// Window within which repeated lines of one kind are counted instead of written.
pub const COALESCE_EVERY: Duration = Duration::from_secs(10);
/// Kinds tracked at once; beyond, further kinds share one catch-all count.
const COALESCE_KINDS: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum File4 {
    Sql,
    Info,
    Credentials,
    Chat,
}

enum Cmd {
    Line(File4, String),
    Coalesced(File4, String, String),
    Chat(String),
    Flush(mpsc::Sender<()>),
    Reopen(mpsc::Sender<Vec<String>>),
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

/// Repeated lines of one kind become one line with a count: the first is written, the others
/// within the window are counted, and when the window ends with a count a summary is written
/// (`… and N more like this in the last 10 s`). Shared by every caller that logs what an
/// attacker can repeat (refused logins, refused bus events).
#[derive(Debug)]
pub struct Coalescer {
    every: Duration,
    kinds: HashMap<String, Slot>,
}

#[derive(Debug)]
struct Slot {
    since: Instant,
    more: u64,
    last: String,
}

impl Coalescer {
    /// Coalescing over windows of `every`.
    #[must_use]
    pub fn new(every: Duration) -> Coalescer {
        Coalescer {
            every,
            kinds: HashMap::new(),
        }
    }

    /// A line of kind `kind` at `now`: `Some(line)` to write now, `None` if it was counted.
    pub fn note(&mut self, kind: &str, line: String, now: Instant) -> Option<String> {
        let key = if self.kinds.len() >= COALESCE_KINDS && !self.kinds.contains_key(kind) {
            "other repeated lines"
        } else {
            kind
        };
        match self.kinds.get_mut(key) {
            Some(slot) if now.duration_since(slot.since) < self.every => {
                slot.more = slot.more.saturating_add(1);
                slot.last = line;
                None
            }
            Some(slot) => {
                // The window ended: this line opens the next one (with what the last held).
                let more = core::mem::take(&mut slot.more);
                slot.since = now;
                Some(if more == 0 {
                    line
                } else {
                    format!("{line} (and {more} more like this since the last report)")
                })
            }
            None => {
                self.kinds.insert(
                    key.to_owned(),
                    Slot {
                        since: now,
                        more: 0,
                        last: String::new(),
                    },
                );
                Some(line)
            }
        }
    }

    /// Summaries of the windows that ended by `now` with lines counted; kinds quiet for a whole
    /// window are forgotten (their next line is written in full).
    pub fn due(&mut self, now: Instant) -> Vec<String> {
        let every = self.every;
        let mut out = Vec::new();
        self.kinds.retain(|kind, slot| {
            if now.duration_since(slot.since) < every {
                return true;
            }
            if slot.more == 0 {
                return false;
            }
            out.push(format!(
                "{kind}: {} more like this in the last {} s (the last: {})",
                slot.more,
                every.as_secs(),
                slot.last
            ));
            slot.more = 0;
            slot.since = now;
            true
        });
        out
    }

    /// Summaries of every count still pending (at shutdown).
    pub fn drain(&mut self) -> Vec<String> {
        let far = Instant::now() + self.every;
        self.due(far)
    }

    /// When [`Coalescer::due`] next has something to do.
    #[must_use]
    pub fn next_due(&self) -> Option<Instant> {
        self.kinds.values().map(|s| s.since + self.every).min()
    }
}

/// One log file. A file that cannot be opened or written (disk full, read-only, directory
/// gone) never stops the server: the failure is reported once (in `info.log`, or on stderr if
/// `info.log` is the broken one) and again when the file recovers.
struct Sink {
    name: &'static str,
    w: Option<BufWriter<File>>,
    failing: bool,
}

impl Sink {
    fn open(dir: &Path, name: &'static str) -> (Sink, Option<String>) {
        match private::open_append(&dir.join(name)) {
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

    fn ino(&self) -> Option<u64> {
        self.w
            .as_ref()
            .and_then(|w| w.get_ref().metadata().ok())
            .filter(std::fs::Metadata::is_file)
            .map(|m| m.ino())
    }
}

/// The chain's state in the writer.
struct Chain {
    key: [u8; 32],
    prev: [u8; 32],
    /// Lines in the current file.
    lines: u64,
    /// Chat lines not written because `chat.log` could not be opened.
    lost: u64,
    anchor_path: Option<PathBuf>,
    /// Lines written since the last anchor.
    dirty: bool,
    last_anchor: Instant,
    anchor_failing: bool,
}

struct Writer {
    dir: PathBuf,
    sql: Sink,
    info: Sink,
    credentials: Sink,
    chat: Sink,
    chain: Chain,
    coalesce: Coalescer,
}

/// Makes one log line safe: no line breaks or other control characters.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

impl Writer {
    fn chat_line(&mut self, line: &str) -> io::Result<()> {
        if self.chat.w.is_none() {
            // Not written: the chain does not advance, and the loss is said in the next file.
            self.chain.lost = self.chain.lost.saturating_add(1);
            return Ok(());
        }
        let tag = chain_tag(&self.chain.key, &self.chain.prev, line);
        self.chat.line(format_args!("{line}\t{}", tag_b64(&tag)))?;
        self.chain.prev = tag;
        self.chain.lines += 1;
        self.chain.dirty = true;
        Ok(())
    }

    /// The first line of a new file after a rotation or a gap.
    fn continues_line(&mut self) {
        let lost = core::mem::take(&mut self.chain.lost);
        let mut text = format!(
            "{}{CONTINUES}{}",
            fmt_utc(now_ms()),
            tag_b64(&self.chain.prev)
        );
        if lost > 0 {
            text.push_str(&format!(
                " ({lost} chat lines were lost while chat.log could not be written)"
            ));
        }
        let r = self.chat_line(&text);
        self.note(File4::Chat, r);
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

    /// Syncs `chat.log` and then records its end in the anchor: the anchor never covers a line
    /// that is not on disk.
    fn anchor(&mut self) {
        if !self.chain.dirty {
            return;
        }
        // Whatever happens below, the next attempt is not due before `ANCHOR_EVERY`.
        self.chain.last_anchor = Instant::now();
        let (Some(path), false, Some(w)) = (
            self.chain.anchor_path.clone(),
            self.chat.failing,
            self.chat.w.as_mut(),
        ) else {
            // No anchor kept, or lines that did not reach the disk: nothing to record.
            self.chain.dirty = false;
            return;
        };
        let r = w.flush().and_then(|()| {
            let f = w.get_ref();
            let m = f.metadata()?;
            if !m.is_file() {
                return Ok(());
            }
            f.sync_data()?;
            Anchor {
                lines: self.chain.lines,
                bytes: m.len(),
                tag: self.chain.prev,
                ino: m.ino(),
            }
            .write(&path)
        });
        self.chain.last_anchor = Instant::now();
        match r {
            Ok(()) => {
                self.chain.dirty = false;
                if self.chain.anchor_failing {
                    self.chain.anchor_failing = false;
                    self.report("chat log anchor written again");
                }
            }
            Err(e) if !self.chain.anchor_failing => {
                self.chain.anchor_failing = true;
                self.report(&format!(
                    "cannot write the chat log anchor {}: {e}",
                    path.display()
                ));
            }
            Err(_) => {}
        }
    }

    fn write_coalesced(&mut self, which: File4, kind: &str, text: String) {
        if let Some(line) = self
            .coalesce
            .note(&format!("{which:?}:{kind}"), text, Instant::now())
        {
            self.write_line(which, &line);
        }
    }

    fn write_line(&mut self, which: File4, text: &str) {
        let stamp = fmt_utc(now_ms());
        let r = self.sink(which).line(format_args!("{stamp} {text}"));
        if r.is_err() {
            self.note(which, r);
        }
    }

    fn coalesce_summaries(&mut self, lines: Vec<String>) {
        for line in lines {
            // The key is "File:kind"; the summary goes to that file.
            let (which, text) = match line.split_once(':') {
                Some(("Credentials", rest)) => (File4::Credentials, rest),
                Some(("Sql", rest)) => (File4::Sql, rest),
                Some(("Info", rest)) => (File4::Info, rest),
                _ => (File4::Info, line.as_str()),
            };
            let text = text.to_owned();
            self.write_line(which, &text);
        }
    }

    /// Periodic work: summaries of coalesced lines, the anchor when due.
    fn tick(&mut self) {
        let due = self.coalesce.due(Instant::now());
        self.coalesce_summaries(due);
        if self.chain.dirty && self.chain.last_anchor.elapsed() >= ANCHOR_EVERY {
            self.flush();
            self.anchor();
        }
    }

    /// When the thread must wake up without a line.
    fn deadline(&self) -> Option<Instant> {
        let anchor = self
            .chain
            .dirty
            .then(|| self.chain.last_anchor + ANCHOR_EVERY);
        [anchor, self.coalesce.next_due()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Reopens the four files by name (after a rotation). Returns what went wrong, if anything.
    fn reopen(&mut self) -> Vec<String> {
        self.flush();
        self.anchor();
        let mut problems = Vec::new();
        let old_chat = self.chat.ino();
        for which in [File4::Info, File4::Sql, File4::Credentials, File4::Chat] {
            let dir = self.dir.clone();
            let name = self.sink(which).name;
            let (new, err) = Sink::open(&dir, name);
            let sink = self.sink(which);
            let was_failing = sink.failing;
            *sink = new;
            if let Some(e) = err {
                problems.push(e);
            } else if was_failing {
                problems.push(format!("log file {name} writable again"));
            }
        }
        let new_chat = self.chat.ino();
        if new_chat.is_some() && new_chat != old_chat {
            // A new file: the chain goes on in it, saying so first.
            self.chain.lines = chain::count_lines(&self.dir.join("chat.log"));
            self.continues_line();
            self.chain.dirty = true;
            self.flush();
            self.anchor();
        }
        for p in &problems {
            self.report(p);
        }
        let stamp = fmt_utc(now_ms());
        let _ = self.info.line(format_args!("{stamp} log files reopened"));
        problems
    }

    fn handle(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Line(which, text) => self.write_line(which, &text),
            Cmd::Coalesced(which, kind, text) => self.write_coalesced(which, &kind, text),
            Cmd::Chat(text) => {
                let stamp = fmt_utc(now_ms());
                let r = self.chat_line(&format!("{stamp} {text}"));
                if r.is_err() {
                    self.note(File4::Chat, r);
                }
            }
            Cmd::Flush(done) => {
                self.flush();
                self.anchor();
                let _ = done.send(());
            }
            Cmd::Reopen(done) => {
                let problems = self.reopen();
                let _ = done.send(problems);
            }
        }
    }

    fn finish(&mut self) {
        let pending = self.coalesce.drain();
        self.coalesce_summaries(pending);
        self.flush();
        self.anchor();
    }
}

impl Logs {
    /// Opens (creating) the four files in `dir` and starts the logging thread, without an
    /// anchor for the chat log.
    pub fn open(dir: &Path, log_key: [u8; 32]) -> io::Result<Logs> {
        Logs::open_anchored(dir, log_key, None)
    }

    /// Opens the four files in `dir` (created 0700, files 0600) and starts the logging thread;
    /// the chat chain is checked against and anchored in `anchor` (see [`chain`]). A log that
    /// is shorter than its anchor, or not the anchored file, is reported (`info.log` and
    /// stderr) and the chain continues from the anchor.
    pub fn open_anchored(dir: &Path, log_key: [u8; 32], anchor: Option<&Path>) -> io::Result<Logs> {
        // A log directory that cannot be created (read-only parent, no space) does not stop the
        // server: each file below then fails to open and is reported on stderr.
        let dir_err = private::create_dir(dir)
            .err()
            .map(|e| format!("cannot create log directory {}: {e}", dir.display()));
        let chat_path = dir.join("chat.log");
        let mut notes = Vec::new();
        let saved = match anchor.map(Anchor::read).transpose() {
            Ok(a) => a.flatten(),
            Err(e) => {
                notes.push(format!(
                    "chat log anchor unreadable ({e}); starting a new one"
                ));
                None
            }
        };
        let resume = chain::resume(&chat_path, saved.as_ref());
        notes.extend(resume.notes.iter().cloned());
        let (mut chat, chat_err) = Sink::open(dir, "chat.log");
        let mut partial_err = None;
        if resume.partial
            && let Some(w) = chat.w.as_mut()
            && let Err(e) = w.write_all(b"\n")
        {
            partial_err = Some(format!("cannot end the partial last line of chat.log: {e}"));
        }
        let (info, info_err) = Sink::open(dir, "info.log");
        let (sql, sql_err) = Sink::open(dir, "sql.log");
        let (credentials, cred_err) = Sink::open(dir, "credentials.log");
        let mut writer = Writer {
            dir: dir.to_owned(),
            sql,
            info,
            credentials,
            chat,
            chain: Chain {
                key: log_key,
                prev: resume.prev,
                lines: resume.lines + u64::from(resume.partial),
                lost: 0,
                anchor_path: anchor.map(Path::to_owned),
                // A first anchor is written at once; an existing one is left as it is until
                // the next line (after a cut, it keeps saying so at every start until then,
                // and the next line, chained from the anchor, keeps the gap visible).
                dirty: anchor.is_some() && (saved.is_none() || resume.continues),
                last_anchor: Instant::now(),
                anchor_failing: false,
            },
            coalesce: Coalescer::new(COALESCE_EVERY),
        };
        for e in [dir_err, partial_err, info_err, chat_err, sql_err, cred_err]
            .into_iter()
            .flatten()
            .chain(notes)
        {
            writer.report(&e);
        }
        if resume.continues {
            writer.continues_line();
        }
        writer.flush();
        writer.anchor();
        let (tx, rx) = mpsc::sync_channel::<Cmd>(QUEUE);
        let thread = std::thread::Builder::new()
            .name("chatbox-log".into())
            .spawn(move || {
                loop {
                    let first = match writer.deadline() {
                        None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                        Some(at) => rx.recv_timeout(at.saturating_duration_since(Instant::now())),
                    };
                    let mut handled = 0_usize;
                    match first {
                        Ok(cmd) => {
                            writer.handle(cmd);
                            handled += 1;
                        }
                        Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                    while let Ok(cmd) = rx.try_recv() {
                        writer.handle(cmd);
                        handled += 1;
                    }
                    writer.flush();
                    writer.tick();
                    // Under load (more than one line came at once), let the next lines gather
                    // for a moment instead of waking for each one: a chat message's line is on
                    // disk a few milliseconds later, for one wake-up and one write per batch.
                    // A line after a quiet spell is written at once.
                    if handled > 1 {
                        std::thread::sleep(LINGER);
                    }
                }
                writer.finish();
            })?;
        let logs = Logs {
            inner: Arc::new(Inner {
                tx: Mutex::new(Some(tx)),
                dropped: AtomicU64::new(0),
                thread: Mutex::new(Some(thread)),
            }),
        };
        if resume.partial {
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

    /// A line in `info.log` that an attacker can make the server repeat: lines of one `kind`
    /// within [`COALESCE_EVERY`] become one line with a count (see [`Coalescer`]).
    pub fn info_coalesced(&self, kind: &str, text: impl AsRef<str>) {
        self.push(Cmd::Coalesced(
            File4::Info,
            one_line(kind),
            one_line(text.as_ref()),
        ));
    }

    /// A line in `sql.log`.
    pub fn sql(&self, text: impl AsRef<str>) {
        self.push(Cmd::Line(File4::Sql, one_line(text.as_ref())));
    }

    /// A line in `sql.log` that a flood repeats, coalesced per `kind` like
    /// [`Logs::info_coalesced`].
    pub fn sql_coalesced(&self, kind: &str, text: impl AsRef<str>) {
        self.push(Cmd::Coalesced(
            File4::Sql,
            one_line(kind),
            one_line(text.as_ref()),
        ));
    }

    /// A line in `credentials.log`.
    pub fn credentials(&self, text: impl AsRef<str>) {
        self.push(Cmd::Line(File4::Credentials, one_line(text.as_ref())));
    }

    /// A line in `credentials.log` that an attacker can make the server repeat (refused
    /// logins), coalesced per `kind` like [`Logs::info_coalesced`].
    pub fn credentials_coalesced(&self, kind: &str, text: impl AsRef<str>) {
        self.push(Cmd::Coalesced(
            File4::Credentials,
            one_line(kind),
            one_line(text.as_ref()),
        ));
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

    /// Waits until everything logged so far is written, flushed and anchored.
    pub fn flush(&self) {
        let (tx, rx) = mpsc::channel();
        let sender = self.inner.tx.lock().ok().and_then(|g| g.clone());
        if let Some(s) = sender
            && s.send(Cmd::Flush(tx)).is_ok()
        {
            let _ = rx.recv_timeout(Duration::from_secs(5));
        }
    }

    /// Reopens the four files by name (SIGHUP after logrotate moved them); waits for it.
    /// Returns the problems (each also reported on stderr and in `info.log` when it works):
    /// empty when every file is open again.
    pub fn reopen(&self) -> Vec<String> {
        let (tx, rx) = mpsc::channel();
        let sender = self.inner.tx.lock().ok().and_then(|g| g.clone());
        match sender {
            Some(s) if s.send(Cmd::Reopen(tx)).is_ok() => rx
                .recv_timeout(Duration::from_secs(5))
                .unwrap_or_else(|_| vec!["log reopen timed out".to_owned()]),
            _ => vec!["logging has stopped".to_owned()],
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_lines_are_coalesced_with_a_count_and_summarised_when_the_window_ends() {
        let mut c = Coalescer::new(COALESCE_EVERY);
        let t0 = Instant::now();
        assert_eq!(
            c.note("refused", "refused 1".into(), t0).as_deref(),
            Some("refused 1")
        );
        for i in 2..=1001 {
            assert_eq!(c.note("refused", format!("refused {i}"), t0), None);
        }
        // Another kind is not swallowed by the first.
        assert_eq!(c.note("other", "x".into(), t0).as_deref(), Some("x"));
        assert!(c.due(t0 + Duration::from_secs(1)).is_empty());
        let later = t0 + COALESCE_EVERY;
        assert_eq!(
            c.due(later),
            vec!["refused: 1000 more like this in the last 10 s (the last: refused 1001)"]
        );
        // Quiet for a whole window: forgotten, the next one is written in full.
        assert!(c.due(later + COALESCE_EVERY).is_empty());
        assert_eq!(
            c.note("refused", "again".into(), later + COALESCE_EVERY)
                .as_deref(),
            Some("again")
        );
    }
}
