//! A connection's outbound queue: what the chat state delivers to one connection (see
//! docs/DESIGN.md, "The message path"). A record is encoded once and the same `Arc<[u8]>` is
//! queued for every recipient; each connection task seals it with its own session. A
//! recipient whose queue is full is cut off rather than slowing everyone down or growing
//! memory.

use core::future::poll_fn;
use core::task::{Poll, Waker};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

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
    queue: VecDeque<Outbound>,
    closed: bool,
    recv_waker: Option<Waker>,
    close_waker: Option<Waker>,
}

/// What [`Mailbox::push`] did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    Queued,
    AlreadyClosed,
    /// The queue was full: now closed.
    Overflowed,
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
        let mut m = self.lock();
        if m.closed {
            return Pushed::AlreadyClosed;
        }
        if m.queue.len() >= self.cap {
            m.closed = true;
            m.queue = VecDeque::new();
            let (a, b) = (m.recv_waker.take(), m.close_waker.take());
            drop(m);
            a.into_iter().chain(b).for_each(Waker::wake);
            return Pushed::Overflowed;
        }
        m.queue.push_back(msg.clone());
        let w = m.recv_waker.take();
        drop(m);
        if let Some(w) = w {
            w.wake();
        }
        Pushed::Queued
    }

    /// The next record; `None` once the mailbox was closed (slow reader).
    pub(crate) async fn recv(&self) -> Option<Outbound> {
        poll_fn(|cx| {
            let mut m = self.lock();
            if m.closed {
                return Poll::Ready(None);
            }
            if let Some(x) = m.queue.pop_front() {
                if m.queue.is_empty() {
                    // Idle connections hold no queue memory.
                    m.queue = VecDeque::new();
                }
                return Poll::Ready(Some(x));
            }
            m.recv_waker = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// A queued record, without waiting; `None` if empty or closed.
    pub(crate) fn try_recv(&self) -> Option<Outbound> {
        let mut m = self.lock();
        if m.closed {
            return None;
        }
        let x = m.queue.pop_front();
        if m.queue.is_empty() {
            m.queue = VecDeque::new();
        }
        x
    }

    /// Records waiting.
    pub(crate) fn len(&self) -> usize {
        self.lock().queue.len()
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
