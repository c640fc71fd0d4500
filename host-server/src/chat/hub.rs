//! Room membership and fan-out, behind one narrow API (a pub/sub backend such as NATS could
//! replace it for several nodes).
//!
//! Each connection registers a bounded outbound queue (a [`Mailbox`]). A record is encoded once
//! and the same `Arc<[u8]>` is queued for every recipient; each connection task seals it with
//! its own session. A recipient whose queue is full is disconnected rather than slowing
//! everyone down or growing memory.

use core::future::poll_fn;
use core::task::{Poll, Waker};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::store::TopicRow;

/// A connection's number.
pub type ConnId = u64;

/// What the hub queues for a connection.
#[derive(Debug, Clone)]
pub enum Outbound {
    /// One record's plaintext.
    Record(Arc<[u8]>),
    /// Send this record, then close the connection.
    Close(Arc<[u8]>),
}

/// A connection's outbound queue and kill switch in one small allocation: at most `cap`
/// records; nothing is allocated while it is empty. Pushing onto a full queue closes it (slow
/// reader): the connection sees that at once, even in the middle of a write.
#[derive(Debug)]
pub struct Mailbox {
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
enum Pushed {
    Queued,
    AlreadyClosed,
    /// The queue was full: now closed.
    Overflowed,
}

impl Mailbox {
    /// An empty mailbox holding at most `cap` records.
    #[must_use]
    pub fn new(cap: usize) -> Arc<Mailbox> {
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

    fn push(&self, msg: &Outbound) -> Pushed {
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
    pub async fn recv(&self) -> Option<Outbound> {
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
    pub fn try_recv(&self) -> Option<Outbound> {
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
    pub fn len(&self) -> usize {
        self.lock().queue.len()
    }

    /// Whether no record is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Resolves once the mailbox is closed (the connection is being cut off).
    pub async fn closed(&self) {
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

#[derive(Debug)]
struct Entry {
    user: Option<String>,
    mailbox: Arc<Mailbox>,
    rooms: BTreeSet<String>,
}

#[derive(Debug, Default)]
struct State {
    conns: HashMap<ConnId, Entry>,
    rooms: BTreeMap<String, BTreeSet<ConnId>>,
    topics: HashMap<String, TopicRow>,
    away: HashMap<String, String>,
    slow_disconnects: u64,
}

/// The hub.
#[derive(Debug, Default)]
pub struct Hub {
    state: Mutex<State>,
}

/// What remains of a connection that left.
#[derive(Debug)]
pub struct Departed {
    /// Its user, if it had logged in.
    pub user: Option<String>,
    /// Rooms it was in.
    pub rooms: Vec<String>,
    /// Whether the user still has other connections.
    pub still_online: bool,
}

impl State {
    fn deliver(&mut self, id: ConnId, msg: &Outbound) {
        let Some(e) = self.conns.get(&id) else { return };
        // Slow reader: a full mailbox closes itself; cut it off rather than buffer without
        // bound.
        if e.mailbox.push(msg) == Pushed::Overflowed {
            self.slow_disconnects += 1;
        }
    }

    fn user_conns(&self, user: &str) -> Vec<ConnId> {
        self.conns
            .iter()
            .filter(|(_, e)| e.user.as_deref() == Some(user))
            .map(|(id, _)| *id)
            .collect()
    }
}

impl Hub {
    /// A hub knowing the stored topics.
    #[must_use]
    pub fn new(topics: Vec<TopicRow>) -> Hub {
        let hub = Hub::default();
        if let Ok(mut s) = hub.state.lock() {
            s.topics = topics.into_iter().map(|t| (t.room.clone(), t)).collect();
        }
        hub
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock means a panic elsewhere; the data is still consistent enough to
        // keep serving (every mutation is a single step).
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers a connection's outbound queue.
    pub fn add(&self, id: ConnId, mailbox: Arc<Mailbox>) {
        self.lock().conns.insert(
            id,
            Entry {
                user: None,
                mailbox,
                rooms: BTreeSet::new(),
            },
        );
    }

    /// Removes a connection.
    pub fn remove(&self, id: ConnId) -> Option<Departed> {
        let mut s = self.lock();
        let e = s.conns.remove(&id)?;
        for r in &e.rooms {
            if let Some(m) = s.rooms.get_mut(r) {
                m.remove(&id);
                if m.is_empty() {
                    s.rooms.remove(r);
                }
            }
        }
        let still_online = e
            .user
            .as_deref()
            .is_some_and(|u| !s.user_conns(u).is_empty());
        if let Some(u) = &e.user
            && !still_online
        {
            s.away.remove(u);
        }
        Some(Departed {
            user: e.user,
            rooms: e.rooms.into_iter().collect(),
            still_online,
        })
    }

    /// Marks a connection as logged in as `user`.
    pub fn set_user(&self, id: ConnId, user: &str) {
        if let Some(e) = self.lock().conns.get_mut(&id) {
            e.user = Some(user.to_owned());
        }
    }

    /// Adds a connection to a room; `true` if it was not in it.
    pub fn join(&self, id: ConnId, room: &str) -> bool {
        let mut s = self.lock();
        let Some(e) = s.conns.get_mut(&id) else {
            return false;
        };
        if !e.rooms.insert(room.to_owned()) {
            return false;
        }
        s.rooms.entry(room.to_owned()).or_default().insert(id);
        true
    }

    /// Removes a connection from a room; `true` if it was in it.
    pub fn part(&self, id: ConnId, room: &str) -> bool {
        let mut s = self.lock();
        let Some(e) = s.conns.get_mut(&id) else {
            return false;
        };
        if !e.rooms.remove(room) {
            return false;
        }
        if let Some(m) = s.rooms.get_mut(room) {
            m.remove(&id);
            if m.is_empty() {
                s.rooms.remove(room);
            }
        }
        true
    }

    /// Whether a connection is in a room.
    #[must_use]
    pub fn in_room(&self, id: ConnId, room: &str) -> bool {
        self.lock()
            .conns
            .get(&id)
            .is_some_and(|e| e.rooms.contains(room))
    }

    /// The users in a room, sorted, each once; `None` if the room is empty.
    #[must_use]
    pub fn names(&self, room: &str) -> Option<Vec<String>> {
        let s = self.lock();
        let members = s.rooms.get(room)?;
        let set: BTreeSet<String> = members
            .iter()
            .filter_map(|id| s.conns.get(id).and_then(|e| e.user.clone()))
            .collect();
        Some(set.into_iter().collect())
    }

    /// Every non-empty room: `(name, users, topic)`.
    #[must_use]
    pub fn list(&self) -> Vec<(String, u32, String)> {
        let s = self.lock();
        s.rooms
            .iter()
            .map(|(name, members)| {
                let users: BTreeSet<&str> = members
                    .iter()
                    .filter_map(|id| s.conns.get(id).and_then(|e| e.user.as_deref()))
                    .collect();
                let topic = s
                    .topics
                    .get(name)
                    .map(|t| t.topic.clone())
                    .unwrap_or_default();
                (
                    name.clone(),
                    u32::try_from(users.len()).unwrap_or(u32::MAX),
                    topic,
                )
            })
            .collect()
    }

    /// A room's topic.
    #[must_use]
    pub fn topic(&self, room: &str) -> Option<TopicRow> {
        self.lock().topics.get(room).cloned()
    }

    /// Sets a room's topic (already stored).
    pub fn set_topic(&self, t: TopicRow) {
        self.lock().topics.insert(t.room.clone(), t);
    }

    /// Whether `user` has a logged-in connection.
    #[must_use]
    pub fn online(&self, user: &str) -> bool {
        !self.lock().user_conns(user).is_empty()
    }

    /// Rooms any connection of `user` is in.
    #[must_use]
    pub fn user_rooms(&self, user: &str) -> Vec<String> {
        let s = self.lock();
        let mut rooms = BTreeSet::new();
        for id in s.user_conns(user) {
            if let Some(e) = s.conns.get(&id) {
                rooms.extend(e.rooms.iter().cloned());
            }
        }
        rooms.into_iter().collect()
    }

    /// Sets (non-empty) or clears the away message of `user`.
    pub fn set_away(&self, user: &str, text: &str) {
        let mut s = self.lock();
        if text.is_empty() {
            s.away.remove(user);
        } else {
            s.away.insert(user.to_owned(), text.to_owned());
        }
    }

    /// The away message of `user` (empty if present).
    #[must_use]
    pub fn away(&self, user: &str) -> String {
        self.lock().away.get(user).cloned().unwrap_or_default()
    }

    /// Queues a record for every member of `room` except `except`.
    pub fn to_room(&self, room: &str, rec: &Arc<[u8]>, except: Option<ConnId>) {
        let mut s = self.lock();
        let ids: Vec<ConnId> = s
            .rooms
            .get(room)
            .map(|m| m.iter().copied().filter(|id| Some(*id) != except).collect())
            .unwrap_or_default();
        let msg = Outbound::Record(rec.clone());
        for id in ids {
            s.deliver(id, &msg);
        }
    }

    /// Queues a record for every connection of `user` except `except`.
    pub fn to_user(&self, user: &str, rec: &Arc<[u8]>, except: Option<ConnId>) {
        let mut s = self.lock();
        let msg = Outbound::Record(rec.clone());
        for id in s.user_conns(user) {
            if Some(id) != except {
                s.deliver(id, &msg);
            }
        }
    }

    /// Removes every connection of `user` from `room`; `true` if any was in it.
    pub fn kick(&self, room: &str, user: &str) -> bool {
        let ids = self.lock().user_conns(user);
        let mut any = false;
        for id in ids {
            any |= self.part(id, room);
        }
        any
    }

    /// Sends `rec` to every connection of `user`, then closes them.
    pub fn disconnect_user(&self, user: &str, rec: &Arc<[u8]>) -> usize {
        let mut s = self.lock();
        let ids = s.user_conns(user);
        let msg = Outbound::Close(rec.clone());
        for id in &ids {
            s.deliver(*id, &msg);
        }
        ids.len()
    }

    /// Sends `rec` to every connection, then closes them (server shutdown).
    pub fn close_all(&self, rec: &Arc<[u8]>) {
        let mut s = self.lock();
        let ids: Vec<ConnId> = s.conns.keys().copied().collect();
        let msg = Outbound::Close(rec.clone());
        for id in ids {
            s.deliver(id, &msg);
        }
    }

    /// Connections cut off because their queue was full.
    #[must_use]
    pub fn slow_disconnects(&self) -> u64 {
        self.lock().slow_disconnects
    }
}
