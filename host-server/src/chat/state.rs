//! The chat state of one node (see docs/DESIGN.md, "Server: chat and bus"): this node's
//! connections (their mailboxes, users, rooms), a replica of the logged-in connections of the
//! other nodes of a cluster (so that `/names`, `/list`, `/whois` and private messages see
//! users on every node), room topics, away messages, mutes in force and the MOTD.
//!
//! Sans-IO: no socket, no clock, no database. [`ChatState::apply`] is the only thing that
//! changes it (and queues records in the recipients' mailboxes); everything else is a
//! question. The one exception is the connection registry: [`ChatState::attach`] registers a
//! new connection's mailbox and [`ChatState::set_listed`] notes its `ONLINE` row — neither is
//! seen by any command or any other node until the connection logs in (an [`Effect::Login`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use chatbox_core::proto::{PresenceKind, ServerMsg};

use super::ConnId;
use super::mailbox::{Mailbox, Outbound, Pushed};
use super::records;
use crate::bus::effect::{Effect, Event};
use crate::store::TopicRow;

/// One connection of this node. Kept small: every idle connection holds one (88 bytes, in a
/// table about 1.6 times as long as the connections), and nothing it points to is allocated
/// until it is needed.
#[derive(Debug)]
struct Entry {
    mailbox: Arc<Mailbox>,
    /// Its user, once logged in.
    user: Option<Box<str>>,
    rooms: RoomSet,
    /// Its client's `ip:port`: the key of its `ONLINE` row (once `listed`) and its session's
    /// address (once logged in). One string for both: the driver gives the connection's own
    /// `ip_port` to [`ChatState::set_listed`] and to the login.
    address: Option<Box<str>>,
    /// Whether it has a row in `ONLINE` (under `address`).
    listed: bool,
    /// Login time (Unix ms), once logged in.
    since_ms: Option<u64>,
}

/// The rooms one connection is in, sorted: a vector, since a connection is in a few rooms.
/// Unlike a `BTreeSet` (which keeps its emptied ~280-byte leaf after the last `remove`, as
/// every idle connection that left #lobby did) it holds no allocation while empty.
#[derive(Debug, Default)]
struct RoomSet(Vec<Box<str>>);

impl RoomSet {
    fn find(&self, room: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|r| (**r).cmp(room))
    }

    /// Adds `room`; false if it was there.
    fn insert(&mut self, room: &str) -> bool {
        match self.find(room) {
            Ok(_) => false,
            Err(i) => {
                self.0.insert(i, room.into());
                true
            }
        }
    }

    /// Removes `room`; false if it was not there.
    fn remove(&mut self, room: &str) -> bool {
        let Ok(i) = self.find(room) else {
            return false;
        };
        self.0.remove(i);
        if self.0.is_empty() {
            self.0 = Vec::new();
        }
        true
    }

    fn contains(&self, room: &str) -> bool {
        self.find(room).is_ok()
    }

    /// The rooms, in order.
    fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|r| &**r)
    }
}

/// One live session of a user, on any node (for `/sessions`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SessionInfo {
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
pub(crate) struct RemoteConn {
    /// Its connection number on that node.
    pub(crate) id: ConnId,
    /// Its user.
    pub(crate) user: String,
    /// Rooms it is in.
    pub(crate) rooms: BTreeSet<String>,
    /// Its client's `ip:port`.
    pub(crate) address: String,
    /// When it logged in, Unix ms.
    pub(crate) since_ms: u64,
}

/// What remains of a connection of this node that left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Departed {
    /// Its user, if it had logged in.
    pub(crate) user: Option<String>,
    /// Rooms it was in.
    pub(crate) rooms: Vec<String>,
    /// Whether the user still has other connections (on any node).
    pub(crate) still_online: bool,
}

/// Which effects of an event [`ChatState::apply`] runs (the replication rule, see
/// [`crate::bus`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Everything: alone, or an event of another node.
    All,
    /// The state effects: the publisher, at once.
    State,
    /// The deliveries: the publisher's own echo, in the bus's order.
    Deliveries,
}

/// What applying an event did beyond changing the state: what the caller still has to do.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Applied {
    /// Connections told to close here (`Disconnect`, `CloseSessions`).
    pub(crate) closed: usize,
    /// This node's connection that left (`Gone` of this node).
    pub(crate) departed: Option<Departed>,
    /// Another node wants this node's snapshot (`Hello`, or it declared this node down).
    pub(crate) announce: bool,
    /// Another node declared this one down (it stalled past its lease).
    pub(crate) declared_down: bool,
    /// A node went down: which, and how many of its users are now offline everywhere (only
    /// when some are).
    pub(crate) node_down: Option<(String, usize)>,
}

/// The chat state of one node.
#[derive(Debug)]
pub(crate) struct ChatState {
    node: String,
    conns: HashMap<ConnId, Entry>,
    rooms: BTreeMap<String, BTreeSet<ConnId>>,
    topics: HashMap<String, TopicRow>,
    away: HashMap<String, String>,
    /// Mutes in force: user → until (ms, 0 = until unmuted).
    mutes: HashMap<String, u64>,
    motd: String,
    metrics: crate::metrics::Metrics,
    /// Other nodes' logged-in connections: node → connection → what it is.
    remote: HashMap<String, HashMap<ConnId, RemoteConn>>,
    /// Mailboxes given records to [`Mailbox::drain`] once the state is released (the bus's
    /// lock guard does it): the deliverer seals and writes them, nobody is woken.
    touched: Vec<Arc<Mailbox>>,
}

fn quit_record(room: &str, user: &str) -> Arc<[u8]> {
    records::shared(&ServerMsg::Presence {
        room,
        user,
        kind: PresenceKind::Quit,
        text: "",
    })
}

impl Entry {
    /// Its client's `ip:port` and login time (ms); empty and 0 if not logged in.
    fn session(&self) -> (String, u64) {
        match self.since_ms {
            Some(t) => (self.address.as_deref().unwrap_or_default().to_owned(), t),
            None => (String::new(), 0),
        }
    }
}

impl ChatState {
    /// The state of node `node` at start: the stored topics, mutes and MOTD.
    pub(crate) fn new(
        node: &str,
        topics: Vec<TopicRow>,
        mutes: Vec<(String, u64)>,
        motd: String,
        metrics: crate::metrics::Metrics,
    ) -> ChatState {
        ChatState {
            node: node.to_owned(),
            conns: HashMap::new(),
            rooms: BTreeMap::new(),
            topics: topics.into_iter().map(|t| (t.room.clone(), t)).collect(),
            away: HashMap::new(),
            mutes: mutes.into_iter().collect(),
            motd,
            metrics,
            remote: HashMap::new(),
            touched: Vec::new(),
        }
    }

    /// The mailboxes to drain now that the state is released (see `touched`), swapped for
    /// `spare` (an emptied list with room, so that a fan-out does not grow a new one).
    pub(crate) fn take_touched(&mut self, spare: Vec<Arc<Mailbox>>) -> Vec<Arc<Mailbox>> {
        core::mem::replace(&mut self.touched, spare)
    }

    // ------------------------------------------------------------------------------------
    // The connection registry.

    /// Registers a new connection's outbound queue (anonymous: no user, no room).
    pub(crate) fn attach(&mut self, id: ConnId, mailbox: Arc<Mailbox>) {
        self.conns.insert(
            id,
            Entry {
                mailbox,
                user: None,
                rooms: RoomSet::default(),
                address: None,
                listed: false,
                since_ms: None,
            },
        );
    }

    /// Notes that a connection has its row in `ONLINE` under `ip_port`.
    pub(crate) fn set_listed(&mut self, id: ConnId, ip_port: &str) {
        if let Some(e) = self.conns.get_mut(&id) {
            if e.address.as_deref() != Some(ip_port) {
                e.address = Some(ip_port.into());
            }
            e.listed = true;
        }
    }

    // ------------------------------------------------------------------------------------
    // The one way to change the state.

    /// Applies the effects of `ev` that `scope` selects, in order.
    pub(crate) fn apply(&mut self, ev: &Event, scope: Scope) -> Applied {
        let mine = ev.origin == self.node;
        let mut out = Applied::default();
        for e in &ev.effects {
            let run = match scope {
                Scope::All => true,
                Scope::State => !e.is_delivery(),
                Scope::Deliveries => e.is_delivery(),
            };
            if run {
                self.apply_one(&ev.origin, mine, e, &mut out);
            }
        }
        out
    }

    fn apply_one(&mut self, origin: &str, mine: bool, e: &Effect, out: &mut Applied) {
        match e {
            Effect::Room { room, except, rec } => {
                self.deliver_room(room, rec, except.filter(|_| mine));
            }
            Effect::User { user, except, rec } => {
                self.deliver_user(user, rec, except.filter(|_| mine));
            }
            Effect::Disconnect { user, rec } => {
                out.closed += self.close_where(rec, |_, e| e.user.as_deref() == Some(user));
            }
            Effect::CloseSessions {
                user,
                only,
                except,
                rec,
            } => {
                let here = |t: &Option<(String, ConnId)>| {
                    t.as_ref().filter(|(n, _)| *n == self.node).map(|(_, c)| *c)
                };
                let is_user = |e: &Entry| e.user.as_deref() == Some(user.as_str());
                out.closed += match only {
                    Some(_) => match here(only) {
                        Some(c) => self.close_where(rec, |id, e| id == c && is_user(e)),
                        None => 0,
                    },
                    None => {
                        let keep = here(except);
                        self.close_where(rec, |id, e| Some(id) != keep && is_user(e))
                    }
                };
            }
            Effect::Kick { room, user } => self.kick(room, user),
            Effect::Topic(t) => {
                self.topics.insert(t.room.clone(), t.clone());
            }
            Effect::Away { user, text } => {
                if text.is_empty() {
                    self.away.remove(user);
                } else {
                    self.away.insert(user.clone(), text.clone());
                }
            }
            Effect::Mute { user, until_ms } => {
                match until_ms {
                    Some(u) => self.mutes.insert(user.clone(), *u),
                    None => self.mutes.remove(user),
                };
            }
            Effect::Motd(text) => text.clone_into(&mut self.motd),
            Effect::Login {
                conn,
                user,
                address,
                since_ms,
            } => {
                if mine {
                    if let Some(e) = self.conns.get_mut(conn) {
                        e.user = Some(user.as_str().into());
                        // The row in `ONLINE` keeps its key (the same address, see `Entry`).
                        if !e.listed {
                            e.address = Some(address.as_str().into());
                        }
                        e.since_ms = Some(*since_ms);
                    }
                } else {
                    self.remote.entry(origin.to_owned()).or_default().insert(
                        *conn,
                        RemoteConn {
                            id: *conn,
                            user: user.clone(),
                            rooms: BTreeSet::new(),
                            address: address.clone(),
                            since_ms: *since_ms,
                        },
                    );
                }
            }
            Effect::Join { conn, room } => {
                if mine {
                    self.join(*conn, room);
                } else {
                    self.remote_membership(origin, *conn, room, true);
                }
            }
            Effect::Part { conn, room } => {
                if mine {
                    self.part(*conn, room);
                } else {
                    self.remote_membership(origin, *conn, room, false);
                }
            }
            Effect::Gone { conn } => {
                if mine {
                    out.departed = self.remove(*conn);
                } else {
                    self.remote_gone(origin, *conn);
                }
            }
            Effect::Hello => out.announce |= !mine,
            Effect::Snapshot(conns) => {
                if !mine {
                    self.remote.insert(
                        origin.to_owned(),
                        conns.iter().map(|c| (c.id, c.clone())).collect(),
                    );
                }
            }
            Effect::NodeDown { node } => {
                if *node == self.node {
                    // Reaped by another node (this one stalled past its lease): tell the
                    // others again who is here.
                    if !mine {
                        out.declared_down = true;
                        out.announce = true;
                    }
                    return;
                }
                let gone = self.remote_node_down(node);
                if !gone.is_empty() {
                    out.node_down = Some((node.clone(), gone.len()));
                }
                // Every node tells its own members, so each member hears it once.
                for c in gone {
                    for room in &c.rooms {
                        self.deliver_room(room, &quit_record(room, &c.user), None);
                    }
                }
            }
        }
    }

    fn deliver(&mut self, id: ConnId, msg: &Outbound) {
        let Some(e) = self.conns.get(&id) else { return };
        // Slow reader: a full mailbox closes itself; cut it off rather than buffer without
        // bound.
        match e.mailbox.push_deferred(msg) {
            Pushed::Overflowed => self.metrics.slow_reader(),
            Pushed::Queued => self.metrics.delivery(),
            Pushed::Drain => {
                self.metrics.delivery();
                self.touched.push(e.mailbox.clone());
            }
            Pushed::AlreadyClosed => {}
        }
    }

    /// Sends `rec` to every connection `pick` selects, then closes them; how many.
    fn close_where(&mut self, rec: &Arc<[u8]>, pick: impl Fn(ConnId, &Entry) -> bool) -> usize {
        let mut ids: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(id, e)| pick(**id, e))
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        let msg = Outbound::Close(rec.clone());
        for id in &ids {
            self.deliver(*id, &msg);
        }
        ids.len()
    }

    fn deliver_room(&mut self, room: &str, rec: &Arc<[u8]>, except: Option<ConnId>) {
        let ids: Vec<ConnId> = self
            .rooms
            .get(room)
            .map(|m| m.iter().copied().filter(|id| Some(*id) != except).collect())
            .unwrap_or_default();
        let msg = Outbound::Record(rec.clone());
        for id in ids {
            self.deliver(id, &msg);
        }
    }

    fn deliver_user(&mut self, user: &str, rec: &Arc<[u8]>, except: Option<ConnId>) {
        let msg = Outbound::Record(rec.clone());
        for id in self.user_conns(user) {
            if Some(id) != except {
                self.deliver(id, &msg);
            }
        }
    }

    fn join(&mut self, id: ConnId, room: &str) {
        let Some(e) = self.conns.get_mut(&id) else {
            return;
        };
        if e.rooms.insert(room) {
            self.rooms.entry(room.to_owned()).or_default().insert(id);
        }
    }

    fn part(&mut self, id: ConnId, room: &str) -> bool {
        let Some(e) = self.conns.get_mut(&id) else {
            return false;
        };
        if !e.rooms.remove(room) {
            return false;
        }
        if let Some(m) = self.rooms.get_mut(room) {
            m.remove(&id);
            if m.is_empty() {
                self.rooms.remove(room);
            }
        }
        true
    }

    /// Removes every connection of `user` from `room`, on this node and in the replica of the
    /// others.
    fn kick(&mut self, room: &str, user: &str) {
        for id in self.user_conns(user) {
            self.part(id, room);
        }
        for m in self.remote.values_mut() {
            for c in m.values_mut().filter(|c| c.user == user) {
                c.rooms.remove(room);
            }
        }
    }

    fn remove(&mut self, id: ConnId) -> Option<Departed> {
        let e = self.conns.remove(&id)?;
        for r in e.rooms.iter() {
            if let Some(m) = self.rooms.get_mut(r) {
                m.remove(&id);
                if m.is_empty() {
                    self.rooms.remove(r);
                }
            }
        }
        let still_online = e.user.as_deref().is_some_and(|u| self.online(u));
        if let Some(u) = e.user.as_deref()
            && !still_online
        {
            self.away.remove(u);
        }
        Some(Departed {
            user: e.user.map(str::into_string),
            rooms: e.rooms.0.into_iter().map(str::into_string).collect(),
            still_online,
        })
    }

    fn remote_membership(&mut self, node: &str, id: ConnId, room: &str, joined: bool) {
        if let Some(c) = self.remote.get_mut(node).and_then(|m| m.get_mut(&id)) {
            if joined {
                c.rooms.insert(room.to_owned());
            } else {
                c.rooms.remove(room);
            }
        }
    }

    fn remote_gone(&mut self, node: &str, id: ConnId) {
        let Some(c) = self.remote.get_mut(node).and_then(|m| m.remove(&id)) else {
            return;
        };
        if !self.online(&c.user) {
            self.away.remove(&c.user);
        }
    }

    /// Forgets a node that died; returns its connections whose users are now offline
    /// everywhere, one per user with all their rooms.
    fn remote_node_down(&mut self, node: &str) -> Vec<RemoteConn> {
        let Some(conns) = self.remote.remove(node) else {
            return Vec::new();
        };
        let mut gone: Vec<RemoteConn> = Vec::new();
        let mut conns: Vec<RemoteConn> = conns.into_values().collect();
        conns.sort_by_key(|c| c.id);
        for c in conns {
            if self.online(&c.user) {
                continue;
            }
            self.away.remove(&c.user);
            match gone.iter_mut().find(|g| g.user == c.user) {
                Some(g) => g.rooms.extend(c.rooms),
                None => gone.push(c),
            }
        }
        gone
    }

    // ------------------------------------------------------------------------------------
    // Questions.

    fn user_conns(&self, user: &str) -> Vec<ConnId> {
        let mut v: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, e)| e.user.as_deref() == Some(user))
            .map(|(id, _)| *id)
            .collect();
        v.sort_unstable();
        v
    }

    fn remote_conns(&self) -> impl Iterator<Item = &RemoteConn> {
        self.remote.values().flat_map(HashMap::values)
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

    /// Whether a connection is still here.
    pub(crate) fn contains(&self, id: ConnId) -> bool {
        self.conns.contains_key(&id)
    }

    /// The user a connection of this node logged in as.
    pub(crate) fn user_of(&self, id: ConnId) -> Option<&str> {
        self.conns.get(&id).and_then(|e| e.user.as_deref())
    }

    /// This node's connections that have a row in `ONLINE`: id, `ip_port` and user (`None`
    /// while anonymous), in no particular order; to write the rows again after a reap.
    pub(crate) fn listed(&self) -> Vec<(ConnId, String, Option<String>)> {
        self.conns
            .iter()
            .filter(|(_, e)| e.listed)
            .filter_map(|(id, e)| {
                let address = e.address.as_deref()?.to_owned();
                Some((*id, address, e.user.as_deref().map(str::to_owned)))
            })
            .collect()
    }

    /// What removing connection `id` would leave (its `Gone`), without removing it.
    pub(crate) fn departure(&self, id: ConnId) -> Option<Departed> {
        let e = self.conns.get(&id)?;
        let still_online = e.user.as_deref().is_some_and(|u| {
            self.conns
                .iter()
                .any(|(c, x)| *c != id && x.user.as_deref() == Some(u))
                || self.remote_conns().any(|c| c.user == u)
        });
        Some(Departed {
            user: e.user.as_deref().map(str::to_owned),
            rooms: e.rooms.iter().map(str::to_owned).collect(),
            still_online,
        })
    }

    /// Whether a connection is in a room.
    pub(crate) fn in_room(&self, id: ConnId, room: &str) -> bool {
        self.conns.get(&id).is_some_and(|e| e.rooms.contains(room))
    }

    /// Rooms `user` is in over all its connections on every node.
    pub(crate) fn user_rooms(&self, user: &str) -> Vec<String> {
        let mut rooms: BTreeSet<&str> = BTreeSet::new();
        for id in self.user_conns(user) {
            if let Some(e) = self.conns.get(&id) {
                rooms.extend(e.rooms.iter());
            }
        }
        for c in self.remote_conns().filter(|c| c.user == user) {
            rooms.extend(c.rooms.iter().map(String::as_str));
        }
        rooms.into_iter().map(str::to_owned).collect()
    }

    /// The users in a room, sorted, each once; `None` if the room is empty.
    pub(crate) fn names(&self, room: &str) -> Option<Vec<String>> {
        let users = self.room_users(room);
        if users.is_empty() && !self.rooms.contains_key(room) {
            return None;
        }
        Some(users.into_iter().map(str::to_owned).collect())
    }

    /// Every non-empty room: `(name, users, topic)`.
    pub(crate) fn list(&self) -> Vec<(String, u32, String)> {
        let names: BTreeSet<&str> = self
            .rooms
            .keys()
            .map(String::as_str)
            .chain(
                self.remote_conns()
                    .flat_map(|c| c.rooms.iter().map(String::as_str)),
            )
            .collect();
        names
            .into_iter()
            .map(|name| {
                let users = self.room_users(name);
                let topic = self
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
    pub(crate) fn topic(&self, room: &str) -> Option<&TopicRow> {
        self.topics.get(room)
    }

    /// Whether `user` has a logged-in connection on any node.
    pub(crate) fn online(&self, user: &str) -> bool {
        self.conns.values().any(|e| e.user.as_deref() == Some(user))
            || self.remote_conns().any(|c| c.user == user)
    }

    /// Whether `user` is in `room` on any node.
    pub(crate) fn user_in_room(&self, room: &str, user: &str) -> bool {
        self.room_users(room).contains(user)
    }

    /// The away message of `user` (empty if present).
    pub(crate) fn away(&self, user: &str) -> &str {
        self.away.get(user).map_or("", String::as_str)
    }

    /// Whether `user` is muted at `now_ms`.
    pub(crate) fn muted(&self, user: &str, now_ms: u64) -> bool {
        self.mutes
            .get(user)
            .is_some_and(|until| *until == 0 || *until > now_ms)
    }

    /// The MOTD.
    pub(crate) fn motd(&self) -> &str {
        &self.motd
    }

    /// This node's logged-in connections, for a snapshot another node asked for.
    pub(crate) fn local_snapshot(&self) -> Vec<RemoteConn> {
        let mut out: Vec<RemoteConn> = self
            .conns
            .iter()
            .filter_map(|(id, e)| {
                let (address, since_ms) = e.session();
                Some(RemoteConn {
                    id: *id,
                    user: e.user.as_deref()?.to_owned(),
                    rooms: e.rooms.iter().map(str::to_owned).collect(),
                    address,
                    since_ms,
                })
            })
            .collect();
        out.sort_by_key(|c| c.id);
        out
    }

    /// Every live session of `user` on every node known here, oldest first.
    pub(crate) fn sessions(&self, user: &str) -> Vec<SessionInfo> {
        let mut v: Vec<SessionInfo> = self
            .conns
            .iter()
            .filter(|(_, e)| e.user.as_deref() == Some(user))
            .map(|(id, e)| {
                let (address, since_ms) = e.session();
                SessionInfo {
                    node: self.node.clone(),
                    conn: *id,
                    address,
                    since_ms,
                }
            })
            .collect();
        for (n, conns) in &self.remote {
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

    /// Sends `rec` to every connection, then closes them (server shutdown). Not a change of
    /// the chat state: each connection's own `Gone` follows when its task ends.
    pub(crate) fn close_all(&mut self, rec: &Arc<[u8]>) -> usize {
        self.close_where(rec, |_, _| true)
    }
}

#[cfg(test)]
mod tests {
    use super::RoomSet;

    #[test]
    fn a_room_set_is_sorted_holds_each_room_once_and_frees_itself_when_emptied() {
        let mut r = RoomSet::default();
        assert!(r.insert("#b"));
        assert!(r.insert("#a"));
        assert!(!r.insert("#b"), "already there");
        assert_eq!(r.iter().collect::<Vec<_>>(), ["#a", "#b"]);
        assert!(r.contains("#a") && !r.contains("#c"));
        assert!(!r.remove("#c"));
        assert!(r.remove("#a") && r.remove("#b"));
        assert!(!r.contains("#b"));
        // What every idle connection that left #lobby is left with: no allocation.
        assert_eq!(r.0.capacity(), 0);
    }
}
