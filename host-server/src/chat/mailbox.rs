//! A connection's outbound queue: what the chat state delivers to one connection (see
//! docs/DESIGN.md, "The message path"). A record is encoded once and the same `Arc<[u8]>` is
//! queued for every recipient. A recipient whose queue is full is cut off rather than slowing
//! everyone down or growing memory.
//!
//! The mailbox also holds the connection's [`Outlet`] (its session's sending half and its
//! socket). The chat state queues records under its lock without waking anyone; once the lock
//! is released, the delivering task [`Mailbox::drain`]s each recipient: it seals and writes
//! the queued records itself when the socket takes them and nothing else is waiting. Only
//! what cannot go at once (the socket is full, a close, not established yet) wakes the
//! connection's task, which then writes within the write timeout and takes the queue from
//! there. Everything is sealed and written under this mailbox's lock, in queue order.

use core::future::poll_fn;
use core::task::{Poll, Waker};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use super::flush::Flusher;
use crate::outlet::{BATCH, Outlet, OutletError, Wrote};

/// What the chat state queues for a connection.
#[derive(Debug, Clone)]
pub(crate) enum Outbound {
    /// One record's plaintext.
    Record(Arc<[u8]>),
    /// Send this record, then close the connection.
    Close(Arc<[u8]>),
    /// Evicted while not logged in (too many anonymous connections): send this record and
    /// close, unless the connection logged in meanwhile (then ignored).
    Evict(Arc<[u8]>),
}

/// A connection's outbound queue and kill switch in one small allocation: at most `cap`
/// records; nothing is allocated while it is empty. Pushing onto a full queue closes it (slow
/// reader): the connection sees that at once, even in the middle of a write.
#[derive(Debug)]
pub(crate) struct Mailbox {
    cap: usize,
    inner: Mutex<MailboxInner>,
}

#[derive(Debug, Default)]
struct MailboxInner {
    queue: Queue,
    closed: bool,
    recv_waker: Option<Waker>,
    close_waker: Option<Waker>,
    /// The connection's writing end, while it lives.
    outlet: Option<Outlet>,
    /// A delivering task's write failed: the connection closes with it.
    failed: Option<OutletError>,
}

/// What [`Mailbox::push`] did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Queued, and the connection's task woken for it.
    Queued,
    /// Queued for the deliverer to [`Mailbox::drain`] once it released the chat state.
    Drain,
    AlreadyClosed,
    /// The queue was full: now closed.
    Overflowed,
}

/// What the connection's own task is to do next.
#[derive(Debug)]
pub(crate) enum Next {
    /// Something queued (a record no delivering task could write, a close, an eviction).
    Out(Outbound),
    /// Sealed bytes wait for the socket: write them within the write timeout.
    Flush,
    /// A delivering task's write failed.
    Failed(OutletError),
}

impl Outbound {
    /// The record's plaintext, if this is a plain record.
    fn record(&self) -> Option<&[u8]> {
        match self {
            Outbound::Record(r) => Some(r),
            _ => None,
        }
    }
}

/// The queue, its first item inline: the usual case (one record queued by the chat state,
/// then drained by the deliverer) allocates nothing, and an idle connection holds no memory
/// for it beyond the slot.
#[derive(Debug, Default)]
struct Queue {
    /// `None` only when the whole queue is empty.
    front: Option<Outbound>,
    rest: VecDeque<Outbound>,
}

impl Queue {
    fn len(&self) -> usize {
        usize::from(self.front.is_some()) + self.rest.len()
    }

    fn is_empty(&self) -> bool {
        self.front.is_none()
    }

    fn push_back(&mut self, x: Outbound) {
        if self.front.is_none() {
            self.front = Some(x);
        } else {
            self.rest.push_back(x);
        }
    }

    fn pop_front(&mut self) -> Option<Outbound> {
        let x = self.front.take();
        self.front = self.rest.pop_front();
        if self.rest.is_empty() && self.rest.capacity() > 0 {
            // Idle connections hold no queue memory.
            self.rest = VecDeque::new();
        }
        x
    }

    fn iter(&self) -> impl Iterator<Item = &Outbound> {
        self.front.iter().chain(self.rest.iter())
    }
}

/// Whether a write's outcome needs the connection's task: bytes the socket did not take, or a
/// failure (kept in `failed` for the task to close with).
fn needs_task(r: Result<Wrote, OutletError>, failed: &mut Option<OutletError>) -> bool {
    match r {
        Ok(Wrote::All) => false,
        Ok(Wrote::Partly) => true,
        Err(e) => {
            *failed = Some(e);
            true
        }
    }
}

/// How many plain records at the front of `queue` make one batch (at least one, if the front
/// is a record).
fn records_in_batch(queue: &Queue) -> usize {
    let mut size = 0;
    queue
        .iter()
        .take_while(|o| {
            let fits = size < BATCH;
            if let Outbound::Record(r) = o {
                size += r.len();
            }
            fits && matches!(o, Outbound::Record(_))
        })
        .count()
}

impl Mailbox {
    /// An empty mailbox holding at most `cap` records.
    #[must_use]
    pub(crate) fn new(cap: usize) -> Arc<Mailbox> {
        Arc::new(Mailbox {
            cap: cap.max(1),
            inner: Mutex::new(MailboxInner::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, MailboxInner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues `msg` (closing the mailbox if it is full, as for any record).
    pub(crate) fn offer(&self, msg: &Outbound) {
        let _ = self.push(msg);
    }

    pub(crate) fn push(&self, msg: &Outbound) -> Pushed {
        self.push_as(msg, false)
    }

    /// [`Mailbox::push`] for the chat state: a record for an established connection is not
    /// woken for but left to [`Mailbox::drain`] (`Pushed::Drain`), which the deliverer calls
    /// once it released the state.
    pub(crate) fn push_deferred(&self, msg: &Outbound) -> Pushed {
        self.push_as(msg, true)
    }

    fn push_as(&self, msg: &Outbound, deferred: bool) -> Pushed {
        let mut m = self.lock();
        if m.closed {
            return Pushed::AlreadyClosed;
        }
        if m.queue.len() >= self.cap {
            m.closed = true;
            m.queue = Queue::default();
            let (a, b) = (m.recv_waker.take(), m.close_waker.take());
            drop(m);
            a.into_iter().chain(b).for_each(Waker::wake);
            return Pushed::Overflowed;
        }
        m.queue.push_back(msg.clone());
        let established = m.outlet.as_ref().is_some_and(Outlet::established);
        if deferred && established && matches!(msg, Outbound::Record(_)) {
            return Pushed::Drain;
        }
        let w = m.recv_waker.take();
        drop(m);
        if let Some(w) = w {
            w.wake();
        }
        Pushed::Queued
    }

    /// From a delivering task, after it released the chat state: seals the queued records
    /// and writes them now if the connection can take them (established, its task not at
    /// work, a record at the front) — or, if it was written to in this tick already, leaves
    /// them sealed for the `flusher`'s next tick. Wakes the connection's task for whatever it
    /// cannot do (a close at the front, bytes the socket did not take, more than one batch, a
    /// failure).
    pub(crate) fn drain(this: &Arc<Mailbox>, flusher: &Flusher) {
        let epoch = flusher.epoch();
        let mut m = this.lock();
        let MailboxInner {
            queue,
            closed,
            outlet,
            failed,
            recv_waker,
            ..
        } = &mut *m;
        if *closed || queue.is_empty() {
            return;
        }
        let mut schedule = false;
        let wake = match outlet {
            // Its task is at work: it takes the queue when done.
            Some(o) if o.in_use() => false,
            Some(o) if o.established() => {
                let n = records_in_batch(queue);
                let r = if o.has_unsent() || o.wrote_in(epoch) {
                    // Written to in this tick: these go with the next tick's write (nothing
                    // waits for the socket yet).
                    let mut r = Ok(Wrote::All);
                    for _ in 0..n {
                        if let Some(Outbound::Record(rec)) = queue.pop_front()
                            && let Err(e) = o.seal(&rec)
                        {
                            r = Err(e);
                            break;
                        }
                    }
                    if r.is_ok() && o.unsent_len() >= BATCH {
                        r = o.write_now();
                    } else if r.is_ok() && !o.scheduled {
                        o.scheduled = true;
                        schedule = true;
                    }
                    r
                } else {
                    let r = o.send_now(queue.iter().take(n).filter_map(Outbound::record));
                    o.written_in(epoch);
                    for _ in 0..n {
                        queue.pop_front();
                    }
                    r
                };
                needs_task(r, failed) || !queue.is_empty()
            }
            _ => true,
        };
        let w = if wake { recv_waker.take() } else { None };
        drop(m);
        if schedule {
            flusher.schedule(this.clone());
        }
        if let Some(w) = w {
            w.wake();
        }
    }

    /// From the flusher, a tick later: writes the records [`Mailbox::drain`] deferred, unless
    /// the connection's task is at work (it writes them with its own).
    pub(crate) fn flush_deferred(&self, epoch: u32) {
        let mut m = self.lock();
        let MailboxInner {
            outlet,
            failed,
            recv_waker,
            closed,
            ..
        } = &mut *m;
        let Some(o) = outlet else { return };
        o.scheduled = false;
        if *closed || o.in_use() || !o.has_unsent() {
            return;
        }
        o.written_in(epoch);
        let wake = needs_task(o.write_now(), failed);
        let w = if wake { recv_waker.take() } else { None };
        drop(m);
        if let Some(w) = w {
            w.wake();
        }
    }

    /// The connection's writing end, from its start (before the handshake).
    pub(crate) fn attach_outlet(&self, outlet: Outlet) {
        self.lock().outlet = Some(outlet);
    }

    /// Runs `f` on the connection's writing end, under the lock (`None` once shut).
    pub(crate) fn with_outlet<T>(&self, f: impl FnOnce(&mut Outlet) -> T) -> Option<T> {
        self.lock().outlet.as_mut().map(f)
    }

    /// For the connection's own task: seals `first` and then the records queued behind it
    /// (one batch) after what is unsent; returns the control item that stopped it, if any.
    pub(crate) fn seal_with_queued(&self, first: &[u8]) -> Result<Option<Outbound>, OutletError> {
        let mut m = self.lock();
        let MailboxInner { queue, outlet, .. } = &mut *m;
        let Some(o) = outlet else {
            return Ok(None);
        };
        o.seal(first)?;
        let mut size = first.len();
        while size < BATCH {
            match queue.pop_front() {
                Some(Outbound::Record(r)) => {
                    size += r.len();
                    o.seal(&r)?;
                }
                Some(other) => return Ok(Some(other)),
                None => break,
            }
        }
        Ok(None)
    }

    /// The connection ended: nothing is queued or written any more; the socket and the
    /// session's sending half are let go.
    pub(crate) fn shut(&self) {
        let mut m = self.lock();
        m.closed = true;
        m.queue = Queue::default();
        m.outlet = None;
        m.failed = None;
    }

    /// What the connection's task is to do next; `None` once the mailbox was closed (slow
    /// reader).
    pub(crate) async fn next(&self) -> Option<Next> {
        poll_fn(|cx| {
            let mut m = self.lock();
            let r = Self::take_next(&mut m);
            if r.is_none() && !m.closed {
                m.recv_waker = Some(cx.waker().clone());
                return Poll::Pending;
            }
            Poll::Ready(r)
        })
        .await
    }

    /// [`Mailbox::next`] without waiting: `None` if there is nothing to do (or closed).
    pub(crate) fn try_next(&self) -> Option<Next> {
        Self::take_next(&mut self.lock())
    }

    fn take_next(m: &mut MailboxInner) -> Option<Next> {
        if m.closed {
            return None;
        }
        if let Some(e) = m.failed.take() {
            return Some(Next::Failed(e));
        }
        if m.outlet.as_ref().is_some_and(Outlet::has_unsent) {
            return Some(Next::Flush);
        }
        m.queue.pop_front().map(Next::Out)
    }

    /// Records waiting (what tests look at).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().queue.len()
    }

    /// A queued record, without waiting; `None` if empty or closed (what tests look at).
    #[cfg(test)]
    pub(crate) fn try_recv(&self) -> Option<Outbound> {
        let mut m = self.lock();
        if m.closed {
            return None;
        }
        m.queue.pop_front()
    }

    /// Resolves once the mailbox is closed (the connection is being cut off).
    pub(crate) async fn closed(&self) {
        poll_fn(|cx| {
            let mut m = self.lock();
            if m.closed {
                return Poll::Ready(());
            }
            m.close_waker = Some(cx.waker().clone());
            Poll::Pending
        })
        .await;
    }
}
