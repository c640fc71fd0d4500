//! Room membership and fan-out on this node, plus a replica of the logged-in connections of the
//! other nodes of a cluster (kept up to date by the [bus](super::bus)), so that `/names`,
//! `/list`, `/whois` and private messages see users on every node.
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
    /// Evicted while not logged in (too many anonymous connections): send this record and
    /// close, unless the connection logged in meanwhile (then ignored).
    Evict(Arc<[u8]>),
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

    /// Queues `msg` (closing the mailbox if it is full, as for any record).
    pub(crate) fn offer(&self, msg: &Outbound) {
        let _ = self.push(msg);
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
    /// Its `ip_port` once it has a row in `ONLINE`.
    listed: Option<String>,
    /// Its client's `ip:port` and login time (ms), once logged in.
    session: Option<(String, u64)>,
}

/// One live session of a user, on any node (for `/sessions`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// Node holding it.
    pub node: String,
    /// Its connection number there.
    pub conn: ConnId,
    /// Client `ip:port`.
    pub address: String,
    /// Login time, Unix ms.
    pub since_ms: u64,
}

/// A logged-in connection of another node, as the bus reported it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteConn {
    /// Its connection number on that node.
    pub id: ConnId,
    /// Its user.
    pub user: String,
    /// Rooms it is in.
    pub rooms: BTreeSet<String>,
    /// Its client's `ip:port`.
    pub address: String,
    /// When it logged in, Unix ms.
    pub since_ms: u64,
}

#[derive(Debug, Default)]
struct State {
    conns: HashMap<ConnId, Entry>,
    rooms: BTreeMap<String, BTreeSet<ConnId>>,
    topics: HashMap<String, TopicRow>,
    away: HashMap<String, String>,
    slow_disconnects: u64,
    metrics: crate::metrics::Metrics,
    /// Other nodes' logged-in connections: node → connection → what it is.
    remote: HashMap<String, HashMap<ConnId, RemoteConn>>,
}

/// The hub.
#[derive(Debug, Default)]
pub struct Hub {
    state: Mutex<State>,
}

/// What [`Hub::join_limited`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Join {
    /// Joined now.
    Joined,
    /// Already in the room (or not a logged-in connection): nothing changed.
    Already,
    /// Refused: the user is already in this many rooms, the limit.
    TooMany(usize),
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
        match e.mailbox.push(msg) {
            Pushed::Overflowed => {
                self.slow_disconnects += 1;
                self.metrics.slow_reader();
            }
            Pushed::Queued => self.metrics.delivery(),
            Pushed::AlreadyClosed => {}
        }
    }

    fn user_conns(&self, user: &str) -> Vec<ConnId> {
        self.conns
            .iter()
            .filter(|(_, e)| e.user.as_deref() == Some(user))
            .map(|(id, _)| *id)
            .collect()
    }

    fn remote_conns(&self) -> impl Iterator<Item = &RemoteConn> {
        self.remote.values().flat_map(HashMap::values)
    }

    fn online_anywhere(&self, user: &str) -> bool {
        !self.user_conns(user).is_empty() || self.remote_conns().any(|c| c.user == user)
    }

    /// Users in `room` on every node.
    fn room_users(&self, room: &str) -> BTreeSet<&str> {
        let local = self.rooms.get(room).into_iter().flat_map(|m| {
            m.iter()
                .filter_map(|id| self.conns.get(id).and_then(|e| e.user.as_deref()))
        });
        let remote = self
            .remote_conns()
            .filter(|c| c.rooms.contains(room))
            .map(|c| c.user.as_str());
        local.chain(remote).collect()
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

    /// Counts deliveries and slow-reader cuts in `metrics` from now on.
    pub fn set_metrics(&self, metrics: crate::metrics::Metrics) {
        self.lock().metrics = metrics;
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
                listed: None,
                session: None,
            },
        );
    }

    /// Notes that a connection has its row in `ONLINE` under `ip_port`.
    pub fn set_listed(&self, id: ConnId, ip_port: &str) {
        if let Some(e) = self.lock().conns.get_mut(&id) {
            e.listed = Some(ip_port.to_owned());
        }
    }

    /// Whether a connection is still here.
    #[must_use]
    pub fn contains(&self, id: ConnId) -> bool {
        self.lock().conns.contains_key(&id)
    }

    /// This node's connections that have a row in `ONLINE`: id, `ip_port` and user (`None`
    /// while anonymous), in no particular order; to write the rows again after a reap.
    #[must_use]
    pub fn listed(&self) -> Vec<(ConnId, String, Option<String>)> {
        let s = self.lock();
        s.conns
            .iter()
            .filter_map(|(id, e)| Some((*id, e.listed.clone()?, e.user.clone())))
            .collect()
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
        let still_online = e.user.as_deref().is_some_and(|u| s.online_anywhere(u));
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

    /// Adds a connection to a room unless its user would then be in more than `max` rooms
    /// (counted over all its connections on every node).
    pub fn join_limited(&self, id: ConnId, room: &str, max: usize) -> Join {
        let mut s = self.lock();
        let Some(user) = s.conns.get(&id).and_then(|e| e.user.clone()) else {
            return Join::Already;
        };
        let mut rooms: BTreeSet<&str> = BTreeSet::new();
        for c in s.user_conns(&user) {
            if let Some(e) = s.conns.get(&c) {
                rooms.extend(e.rooms.iter().map(String::as_str));
            }
        }
        for c in s.remote_conns().filter(|c| c.user == user) {
            rooms.extend(c.rooms.iter().map(String::as_str));
        }
        if !rooms.contains(room) && rooms.len() >= max {
            return Join::TooMany(rooms.len());
        }
        drop(rooms);
        let Some(e) = s.conns.get_mut(&id) else {
            return Join::Already;
        };
        if !e.rooms.insert(room.to_owned()) {
            return Join::Already;
        }
        s.rooms.entry(room.to_owned()).or_default().insert(id);
        Join::Joined
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
        let users = s.room_users(room);
        if users.is_empty() && !s.rooms.contains_key(room) {
            return None;
        }
        Some(users.into_iter().map(str::to_owned).collect())
    }

    /// Every non-empty room: `(name, users, topic)`.
    #[must_use]
    pub fn list(&self) -> Vec<(String, u32, String)> {
        let s = self.lock();
        let names: BTreeSet<&str> = s
            .rooms
            .keys()
            .map(String::as_str)
            .chain(
                s.remote_conns()
                    .flat_map(|c| c.rooms.iter().map(String::as_str)),
            )
            .collect();
        names
            .into_iter()
            .map(|name| {
                let users = s.room_users(name);
                let topic = s
                    .topics
                    .get(name)
                    .map(|t| t.topic.clone())
                    .unwrap_or_default();
                (
                    name.to_owned(),
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

    /// Whether `user` has a logged-in connection on any node.
    #[must_use]
    pub fn online(&self, user: &str) -> bool {
        self.lock().online_anywhere(user)
    }

    /// Rooms any connection of `user` is in, on any node.
    #[must_use]
    pub fn user_rooms(&self, user: &str) -> Vec<String> {
        let s = self.lock();
        let mut rooms = BTreeSet::new();
        for id in s.user_conns(user) {
            if let Some(e) = s.conns.get(&id) {
                rooms.extend(e.rooms.iter().cloned());
            }
        }
        for c in s.remote_conns().filter(|c| c.user == user) {
            rooms.extend(c.rooms.iter().cloned());
        }
        rooms.into_iter().collect()
    }

    /// Whether `user` is in `room` on any node.
    #[must_use]
    pub fn user_in_room(&self, room: &str, user: &str) -> bool {
        self.lock().room_users(room).contains(user)
    }

    /// This node's logged-in connections, for a snapshot another node asked for.
    #[must_use]
    pub fn local_snapshot(&self) -> Vec<RemoteConn> {
        let s = self.lock();
        let mut out: Vec<RemoteConn> = s
            .conns
            .iter()
            .filter_map(|(id, e)| {
                let (address, since_ms) = e.session.clone().unwrap_or_default();
                Some(RemoteConn {
                    id: *id,
                    user: e.user.clone()?,
                    rooms: e.rooms.clone(),
                    address,
                    since_ms,
                })
            })
            .collect();
        out.sort_by_key(|c| c.id);
        out
    }

    /// Another node's connection logged in.
    pub fn remote_login(&self, node: &str, id: ConnId, user: &str, address: &str, since_ms: u64) {
        let mut s = self.lock();
        s.remote.entry(node.to_owned()).or_default().insert(
            id,
            RemoteConn {
                id,
                user: user.to_owned(),
                rooms: BTreeSet::new(),
                address: address.to_owned(),
                since_ms,
            },
        );
    }

    /// Notes a logged-in connection's client address and login time (for `/sessions`).
    pub fn set_session(&self, id: ConnId, address: &str, since_ms: u64) {
        if let Some(e) = self.lock().conns.get_mut(&id) {
            e.session = Some((address.to_owned(), since_ms));
        }
    }

    /// Every live session of `user` on every node known here (`node` is this node's id),
    /// oldest first.
    #[must_use]
    pub fn sessions(&self, node: &str, user: &str) -> Vec<SessionInfo> {
        let s = self.lock();
        let mut v: Vec<SessionInfo> = s
            .conns
            .iter()
            .filter(|(_, e)| e.user.as_deref() == Some(user))
            .map(|(id, e)| {
                let (address, since_ms) = e.session.clone().unwrap_or_default();
                SessionInfo {
                    node: node.to_owned(),
                    conn: *id,
                    address,
                    since_ms,
                }
            })
            .collect();
        for (n, conns) in &s.remote {
            for c in conns.values().filter(|c| c.user == user) {
                v.push(SessionInfo {
                    node: n.clone(),
                    conn: c.id,
                    address: c.address.clone(),
                    since_ms: c.since_ms,
                });
            }
        }
        v.sort_by(|a, b| (a.since_ms, &a.node, a.conn).cmp(&(b.since_ms, &b.node, b.conn)));
        v
    }

    /// Sends `rec` to this node's connection `id` if it is `user`'s, then closes it.
    pub fn close_session(&self, id: ConnId, user: &str, rec: &Arc<[u8]>) -> bool {
        let mut s = self.lock();
        let mine = s
            .conns
            .get(&id)
            .is_some_and(|e| e.user.as_deref() == Some(user));
        if mine {
            s.deliver(id, &Outbound::Close(rec.clone()));
        }
        mine
    }

    /// Sends `rec` to every connection of `user` here but `except`, then closes them.
    pub fn close_sessions_except(
        &self,
        user: &str,
        except: Option<ConnId>,
        rec: &Arc<[u8]>,
    ) -> usize {
        let mut s = self.lock();
        let ids: Vec<ConnId> = s
            .user_conns(user)
            .into_iter()
            .filter(|id| Some(*id) != except)
            .collect();
        let msg = Outbound::Close(rec.clone());
        for id in &ids {
            s.deliver(*id, &msg);
        }
        ids.len()
    }

    /// Another node's connection joined (`true`) or left (`false`) a room.
    pub fn remote_membership(&self, node: &str, id: ConnId, room: &str, joined: bool) {
        let mut s = self.lock();
        if let Some(c) = s.remote.get_mut(node).and_then(|m| m.get_mut(&id)) {
            if joined {
                c.rooms.insert(room.to_owned());
            } else {
                c.rooms.remove(room);
            }
        }
    }

    /// Another node's connection closed; `true` if its user is now offline everywhere.
    pub fn remote_gone(&self, node: &str, id: ConnId) -> bool {
        let mut s = self.lock();
        let Some(c) = s.remote.get_mut(node).and_then(|m| m.remove(&id)) else {
            return false;
        };
        let offline = !s.online_anywhere(&c.user);
        if offline {
            s.away.remove(&c.user);
        }
        offline
    }

    /// Replaces what is known of another node's connections (its answer to a hello).
    pub fn remote_snapshot(&self, node: &str, conns: Vec<RemoteConn>) {
        let mut s = self.lock();
        s.remote.insert(
            node.to_owned(),
            conns.into_iter().map(|c| (c.id, c)).collect(),
        );
    }

    /// Forgets a node that died; returns its connections whose users are now offline
    /// everywhere (their rooms get a `Quit`).
    pub fn remote_node_down(&self, node: &str) -> Vec<RemoteConn> {
        let mut s = self.lock();
        let Some(conns) = s.remote.remove(node) else {
            return Vec::new();
        };
        let mut gone: Vec<RemoteConn> = Vec::new();
        for c in conns.into_values() {
            if s.online_anywhere(&c.user) {
                continue;
            }
            s.away.remove(&c.user);
            match gone.iter_mut().find(|g| g.user == c.user) {
                Some(g) => g.rooms.extend(c.rooms),
                None => gone.push(c),
            }
        }
        gone
    }

    /// Nodes whose connections are known here.
    #[must_use]
    pub fn remote_nodes(&self) -> Vec<String> {
        let mut v: Vec<String> = self.lock().remote.keys().cloned().collect();
        v.sort();
        v
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

    /// Removes every connection of `user` from `room`, on this node and in the replica of the
    /// others; `true` if any was in it.
    pub fn kick(&self, room: &str, user: &str) -> bool {
        let ids = self.lock().user_conns(user);
        let mut any = false;
        for id in ids {
            any |= self.part(id, room);
        }
        let mut s = self.lock();
        for m in s.remote.values_mut() {
            for c in m.values_mut().filter(|c| c.user == user) {
                any |= c.rooms.remove(room);
            }
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
