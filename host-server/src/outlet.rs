//! The writing end of one connection: its session's sending half and its socket, so that a
//! record is sealed and written by whichever task delivers it — the connection's own (its
//! replies) or the one that published a room message (fan-out without waking every
//! recipient). It lives in the connection's mailbox and is used only under the mailbox's lock,
//! which keeps the byte stream in queue order (docs/DESIGN.md, "The message path").
//!
//! Nothing here waits: a write takes what the socket takes now; the rest stays in `unsent`
//! until the connection's task, woken for it, waits for the socket within the write timeout.
//! A leaf module: it knows core's `Sender` and a socket, nothing of chat or connections.

use core::cell::RefCell;
use std::io::Write as _;
use std::net::TcpStream;
use std::sync::Arc;

use chatbox_core::frame::HEADER_LEN;
use chatbox_core::session::{RECORD_OVERHEAD, Sender, SessionError};
use smol::Async;

/// A batch of records sealed by one delivery stops growing at this size (the rest waits for
/// the next write).
pub(crate) const BATCH: usize = 64 * 1024;

thread_local! {
    /// Records sealed for a direct write; only what the socket did not take is copied into the
    /// connection (`unsent`), so an idle connection holds no write buffer.
    static SEALED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Why the outlet cannot go on (the connection closes with it).
#[derive(Debug)]
pub(crate) enum OutletError {
    /// A record could not be sealed.
    Seal(SessionError),
    /// The socket refused the write.
    Write(std::io::Error),
}

/// What a write left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wrote {
    /// The socket took everything.
    All,
    /// Bytes wait in `unsent`: the connection's task must wait for the socket.
    Partly,
}

/// One connection's sealing writer.
#[derive(Debug)]
pub(crate) struct Outlet {
    /// Set once the handshake completed; before, only handshake bytes are written.
    sender: Option<Sender>,
    stream: Arc<Async<TcpStream>>,
    /// Sealed bytes the socket has not taken yet; unallocated when empty.
    unsent: Vec<u8>,
    /// The connection's task is handling a request: its replies go first, so what others
    /// deliver meanwhile waits in the queue (the task takes it when done).
    busy: bool,
    /// The last write left bytes: the connection's task waits for the socket; others queue.
    blocked: bool,
    /// The tick of the last write (see `chat::flush`): records within the same tick are
    /// deferred to the next.
    wrote_in: u32,
    /// Deferred records are sealed in `unsent` and the flusher will write them.
    pub(crate) scheduled: bool,
}

impl Outlet {
    /// The writing end of `stream`, before its session is established.
    pub(crate) fn new(stream: Arc<Async<TcpStream>>) -> Outlet {
        Outlet {
            sender: None,
            stream,
            unsent: Vec::new(),
            busy: false,
            blocked: false,
            wrote_in: 0,
            scheduled: false,
        }
    }

    /// The session is established: records are sealed with `sender` from now on.
    pub(crate) fn establish(&mut self, sender: Sender) {
        self.sender = Some(sender);
    }

    /// Whether records are sealed (the handshake completed).
    pub(crate) fn established(&self) -> bool {
        self.sender.is_some()
    }

    /// Whether the connection's task is at work (handling a request, or waiting for the
    /// socket): a delivering task leaves records queued, the task takes them when done.
    pub(crate) fn in_use(&self) -> bool {
        self.busy || self.blocked
    }

    /// Whether it was written to in tick `epoch` (its next records wait for the next tick).
    pub(crate) fn wrote_in(&self, epoch: u32) -> bool {
        self.wrote_in == epoch
    }

    /// Bytes sealed and not yet written.
    pub(crate) fn unsent_len(&self) -> usize {
        self.unsent.len()
    }

    /// The connection's task starts (`true`) or finished (`false`) handling a request.
    pub(crate) fn set_busy(&mut self, busy: bool) {
        self.busy = busy;
    }

    /// Whether sealed bytes wait for the socket.
    pub(crate) fn has_unsent(&self) -> bool {
        !self.unsent.is_empty()
    }

    /// Appends bytes that are already a frame (the handshake's answer).
    pub(crate) fn push_raw(&mut self, bytes: &[u8]) {
        self.unsent.extend_from_slice(bytes);
    }

    /// Seals one record's plaintext after what is unsent.
    pub(crate) fn seal(&mut self, pt: &[u8]) -> Result<(), OutletError> {
        let sender = self
            .sender
            .as_mut()
            .ok_or(OutletError::Seal(SessionError::NotEstablished))?;
        if self.unsent.capacity() == 0 {
            // Room for a few records at once: a tick's deferred records, or a reply.
            self.unsent
                .reserve(pt.len().saturating_add(RECORD_OVERHEAD).max(1024));
        }
        seal_onto(sender, &mut self.unsent, pt)
    }

    /// Notes a write in tick `epoch`.
    pub(crate) fn written_in(&mut self, epoch: u32) {
        self.wrote_in = epoch;
    }

    /// Writes what is unsent without waiting.
    pub(crate) fn write_now(&mut self) -> Result<Wrote, OutletError> {
        if self.unsent.is_empty() {
            self.blocked = false;
            return Ok(Wrote::All);
        }
        let done = write_some(&self.stream, &self.unsent)?;
        if done >= self.unsent.len() {
            // Idle connections hold no write buffer.
            self.unsent = Vec::new();
            self.blocked = false;
            Ok(Wrote::All)
        } else {
            self.unsent.drain(..done);
            self.blocked = true;
            Ok(Wrote::Partly)
        }
    }

    /// Seals `records` (at most [`BATCH`] bytes' worth; the caller keeps the rest) into a
    /// thread-local buffer and writes them at once; what the socket does not take is kept in
    /// `unsent`. Only when nothing is unsent.
    pub(crate) fn send_now<'a>(
        &mut self,
        records: impl Iterator<Item = &'a [u8]>,
    ) -> Result<Wrote, OutletError> {
        let Some(sender) = self.sender.as_mut() else {
            return Err(OutletError::Seal(SessionError::NotEstablished));
        };
        SEALED.with_borrow_mut(|buf| {
            buf.clear();
            for pt in records {
                seal_onto(sender, buf, pt)?;
            }
            let done = write_some(&self.stream, buf)?;
            let rest = buf.get(done..).unwrap_or_default();
            let wrote = if rest.is_empty() {
                Wrote::All
            } else {
                self.unsent.extend_from_slice(rest);
                self.blocked = true;
                Wrote::Partly
            };
            // A burst's buffer is not kept by an idle thread.
            if buf.capacity() > 2 * BATCH {
                *buf = Vec::new();
            }
            Ok(wrote)
        })
    }
}

/// Seals `pt` as one record at the end of `buf`.
fn seal_onto(sender: &mut Sender, buf: &mut Vec<u8>, pt: &[u8]) -> Result<(), OutletError> {
    let start = buf.len();
    buf.resize(start + pt.len() + RECORD_OVERHEAD, 0);
    let rec = buf.get_mut(start..).unwrap_or_default();
    if let Some(dst) = rec.get_mut(HEADER_LEN..HEADER_LEN + pt.len()) {
        dst.copy_from_slice(pt);
    }
    match sender.seal_in_place(rec, pt.len()) {
        Ok(n) => {
            buf.truncate(start + n);
            Ok(())
        }
        Err(e) => {
            buf.truncate(start);
            Err(OutletError::Seal(e))
        }
    }
}

/// Writes as much of `bytes` as the socket takes now; how much that was.
fn write_some(stream: &Async<TcpStream>, bytes: &[u8]) -> Result<usize, OutletError> {
    let mut socket: &TcpStream = stream.get_ref();
    let mut done = 0;
    while let Some(rest) = bytes.get(done..).filter(|r| !r.is_empty()) {
        match socket.write(rest) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(OutletError::Write(e)),
        }
    }
    Ok(done)
}
