//! Fan-out across the nodes of a cluster.
//!
//! Every effect a user has on others — a room or private message, a join, part or quit, a
//! topic, an away message, a kick, ban or mute, the MOTD — is an [`Event`] handed to
//! [`Bus::publish`]. Alone (`Bus::Local`, the default) an event is applied to this node at
//! once. In a cluster (`--bus redis://…`) events are published on one Redis pub/sub channel that
//! every node subscribes to, this one included, so every node applies the same events in the
//! same order: a room message reaches each member once, and every member sees a room's
//! messages in one order. State changes (topic, away, mutes, MOTD, kicks, presence) are also
//! applied on the publishing node right away, so its own next request already sees them.
//!
//! Presence: a node announces its logged-in connections (login, join, part, gone); at start it
//! says hello and every other node answers with a snapshot; a node whose lease expired in the
//! database is reaped by the others, which publish `NodeDown` so every node forgets its users
//! (and tells the rooms they were in that they quit).
//!
//! On the wire an event is sealed (AES-256-CTR + HMAC-SHA256 from `chatbox-core`) with a key
//! derived from `server.key` and a random per-process sender id; receivers refuse anything
//! that does not authenticate or replays an old counter, so access to Redis alone gives
//! neither the chat text nor a way to inject messages.

use core::time::Duration;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use chatbox_core::crypto::cipher::{RecordKeys, TAG_LEN};
use chatbox_core::proto::{PresenceKind, ServerMsg};
use smol::channel::{self, Receiver, Sender};
use smol::stream::StreamExt as _;

use super::hub::{ConnId, RemoteConn};
use super::records;
use crate::server::Shared;
use crate::store::TopicRow;

/// The Redis channel every node publishes on and listens to.
pub const CHANNEL: &str = "chatbox:events";
const MAGIC: [u8; 2] = *b"C1";
const SENDER_LEN: usize = 16;
const HEADER_LEN: usize = MAGIC.len() + SENDER_LEN + 8;
/// Events waiting to be published at most; beyond that they are dropped (and logged).
const PUBLISH_QUEUE: usize = 65_536;
/// Events sent in one pipeline at most.
const PUBLISH_BATCH: usize = 256;
/// Senders remembered for replay protection at most.
const MAX_SENDERS: usize = 4096;
/// Longest string or record in an event.
const MAX_FIELD: usize = 1 << 20;

/// What one node tells the others.
#[derive(Debug, Clone)]
pub struct Event {
    /// Node id of the publisher.
    pub origin: String,
    /// What happened.
    pub kind: EventKind,
}

/// The events.
#[derive(Debug, Clone)]
pub enum EventKind {
    /// A record for every member of a room (except one connection of the origin node).
    Room {
        /// Room.
        room: String,
        /// Connection of the origin node left out (the sender, who gets its own copy).
        except: Option<ConnId>,
        /// Encoded `ServerMsg`.
        rec: Arc<[u8]>,
    },
    /// A record for every connection of a user (except one connection of the origin node).
    User {
        /// User.
        user: String,
        /// Connection of the origin node left out.
        except: Option<ConnId>,
        /// Encoded `ServerMsg`.
        rec: Arc<[u8]>,
    },
    /// Send a record to every connection of a user, then close them (ban).
    Disconnect {
        /// User.
        user: String,
        /// Encoded `Bye`.
        rec: Arc<[u8]>,
    },
    /// A user removed from a room by an operator.
    Kick {
        /// Room.
        room: String,
        /// User.
        user: String,
    },
    /// A room's topic changed (already stored).
    Topic(TopicRow),
    /// A user's away message (empty: back).
    Away {
        /// User.
        user: String,
        /// Text.
        text: String,
    },
    /// A mute set (`Some(until_ms)`, 0 = until lifted) or lifted (`None`).
    Mute {
        /// User.
        user: String,
        /// Until when.
        until_ms: Option<u64>,
    },
    /// The MOTD changed (already stored).
    Motd(String),
    /// A connection of the origin node logged in.
    Login {
        /// Its number on the origin node.
        conn: ConnId,
        /// Its user.
        user: String,
        /// Its client's `ip:port`.
        address: String,
        /// When it logged in, Unix ms.
        since_ms: u64,
    },
    /// Close sessions of `user` with `rec` (a `Bye`): the one `only` names (node, connection),
    /// or, with `only` None, all but the one `except` names (a self-service change keeps the
    /// session that made it).
    CloseSessions {
        /// Whose sessions.
        user: String,
        /// Just this one.
        only: Option<(String, ConnId)>,
        /// All but this one.
        except: Option<(String, ConnId)>,
        /// The record sent before closing.
        rec: Arc<[u8]>,
    },
    /// A connection of the origin node joined a room.
    Join {
        /// Its number.
        conn: ConnId,
        /// Room.
        room: String,
    },
    /// A connection of the origin node left a room.
    Part {
        /// Its number.
        conn: ConnId,
        /// Room.
        room: String,
    },
    /// A logged-in connection of the origin node closed.
    Gone {
        /// Its number.
        conn: ConnId,
    },
    /// The origin node started: every other node answers with a snapshot.
    Hello,
    /// The origin node's logged-in connections.
    Snapshot(Vec<RemoteConn>),
    /// A node's lease expired: forget its connections.
    NodeDown {
        /// The dead node.
        node: String,
    },
}

/// How events travel.
#[derive(Debug)]
pub enum Bus {
    /// One node: events are applied at once.
    Local,
    /// A cluster: events go through Redis.
    Redis(RedisBus),
}

impl Bus {
    /// Applies `kind` here (alone) or publishes it to every node (cluster).
    pub fn publish(&self, shared: &Shared, kind: EventKind) {
        let ev = Event {
            origin: shared.node.clone(),
            kind,
        };
        match self {
            Bus::Local => apply(shared, ev),
            Bus::Redis(r) => {
                if is_state(&ev.kind) {
                    apply(shared, ev.clone());
                }
                r.send(shared, &ev);
            }
        }
    }

    /// Whether this node is part of a cluster.
    #[must_use]
    pub fn is_cluster(&self) -> bool {
        matches!(self, Bus::Redis(_))
    }

    /// The Redis connection (cluster), for state shared by the nodes.
    #[must_use]
    pub fn redis(&self) -> Option<&redis::aio::MultiplexedConnection> {
        match self {
            Bus::Local => None,
            Bus::Redis(r) => Some(&r.conn),
        }
    }
}

/// Events that change state rather than deliver a record: applied by the publisher at once
/// (and skipped when they come back from Redis).
fn is_state(kind: &EventKind) -> bool {
    !matches!(
        kind,
        EventKind::Room { .. }
            | EventKind::User { .. }
            | EventKind::Disconnect { .. }
            | EventKind::CloseSessions { .. }
    )
}

fn quit_record(room: &str, user: &str) -> Arc<[u8]> {
    records::shared(&ServerMsg::Presence {
        room,
        user,
        kind: PresenceKind::Quit,
        text: "",
    })
}

/// Applies one event to this node.
pub fn apply(shared: &Shared, ev: Event) {
    let hub = &shared.hub;
    let mine = ev.origin == shared.node;
    match ev.kind {
        EventKind::Room { room, except, rec } => {
            hub.to_room(&room, &rec, except.filter(|_| mine));
        }
        EventKind::User { user, except, rec } => {
            hub.to_user(&user, &rec, except.filter(|_| mine));
        }
        EventKind::Disconnect { user, rec } => {
            hub.disconnect_user(&user, &rec);
        }
        EventKind::Kick { room, user } => {
            hub.kick(&room, &user);
        }
        EventKind::CloseSessions {
            user,
            only,
            except,
            rec,
        } => {
            let here = |t: &Option<(String, ConnId)>| {
                t.as_ref()
                    .filter(|(n, _)| *n == shared.node)
                    .map(|(_, c)| *c)
            };
            match only {
                Some(t) => {
                    if let Some(c) = here(&Some(t)) {
                        hub.close_session(c, &user, &rec);
                    }
                }
                None => {
                    hub.close_sessions_except(&user, here(&except), &rec);
                }
            }
        }
        EventKind::Topic(t) => hub.set_topic(t),
        EventKind::Away { user, text } => hub.set_away(&user, &text),
        EventKind::Mute { user, until_ms } => {
            if let Ok(mut m) = shared.mutes.lock() {
                match until_ms {
                    Some(u) => m.insert(user, u),
                    None => m.remove(&user),
                };
            }
        }
        EventKind::Motd(text) => {
            if let Ok(mut m) = shared.motd.lock() {
                *m = text;
            }
        }
        EventKind::NodeDown { node } => {
            if node == shared.node {
                if !mine {
                    // Reaped by another node (this one stalled past its lease): tell the
                    // others again who is here.
                    shared
                        .logs
                        .info("cluster: another node declared this one down; re-announcing");
                    shared
                        .bus
                        .publish(shared, EventKind::Snapshot(hub.local_snapshot()));
                }
                return;
            }
            let gone = hub.remote_node_down(&node);
            if !gone.is_empty() {
                shared.logs.info(format!(
                    "cluster: node {node} is down; {} of its users now offline",
                    gone.len()
                ));
            }
            // Every node tells its own members, so each member hears it once.
            for c in gone {
                for room in &c.rooms {
                    hub.to_room(room, &quit_record(room, &c.user), None);
                }
            }
        }
        // Presence of this node's own connections lives in the hub already.
        _ if mine => {}
        EventKind::Login {
            conn,
            user,
            address,
            since_ms,
        } => hub.remote_login(&ev.origin, conn, &user, &address, since_ms),
        EventKind::Join { conn, room } => hub.remote_membership(&ev.origin, conn, &room, true),
        EventKind::Part { conn, room } => hub.remote_membership(&ev.origin, conn, &room, false),
        EventKind::Gone { conn } => {
            hub.remote_gone(&ev.origin, conn);
        }
        EventKind::Hello => {
            shared
                .bus
                .publish(shared, EventKind::Snapshot(hub.local_snapshot()));
        }
        EventKind::Snapshot(conns) => hub.remote_snapshot(&ev.origin, conns),
    }
}

// ----------------------------------------------------------------------------------------
// Encoding: a tag byte, then fields (u64 big-endian, strings and records as u32 length +
// bytes).

struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        let n = u32::try_from(b.len()).unwrap_or(u32::MAX);
        self.0.extend_from_slice(&n.to_be_bytes());
        self.0.extend_from_slice(b);
    }
    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
    fn opt_u64(&mut self, v: Option<u64>) {
        match v {
            Some(x) => {
                self.u8(1);
                self.u64(x);
            }
            None => self.u8(0),
        }
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1)?.first().copied()
    }
    fn u64(&mut self) -> Option<u64> {
        let b: [u8; 8] = self.take(8)?.try_into().ok()?;
        Some(u64::from_be_bytes(b))
    }
    fn u32(&mut self) -> Option<u32> {
        let b: [u8; 4] = self.take(4)?.try_into().ok()?;
        Some(u32::from_be_bytes(b))
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.u32()?).ok()?;
        if n > MAX_FIELD {
            return None;
        }
        self.take(n)
    }
    fn string(&mut self) -> Option<String> {
        core::str::from_utf8(self.bytes()?).ok().map(str::to_owned)
    }
    fn rec(&mut self) -> Option<Arc<[u8]>> {
        Some(Arc::from(self.bytes()?))
    }
    fn opt_u64(&mut self) -> Option<Option<u64>> {
        match self.u8()? {
            0 => Some(None),
            1 => Some(Some(self.u64()?)),
            _ => None,
        }
    }
}

impl Event {
    /// The event's bytes (before sealing).
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer(Vec::with_capacity(64));
        w.str(&self.origin);
        match &self.kind {
            EventKind::Room { room, except, rec } => {
                w.u8(1);
                w.str(room);
                w.opt_u64(*except);
                w.bytes(rec);
            }
            EventKind::User { user, except, rec } => {
                w.u8(2);
                w.str(user);
                w.opt_u64(*except);
                w.bytes(rec);
            }
            EventKind::Disconnect { user, rec } => {
                w.u8(3);
                w.str(user);
                w.bytes(rec);
            }
            EventKind::Kick { room, user } => {
                w.u8(4);
                w.str(room);
                w.str(user);
            }
            EventKind::Topic(t) => {
                w.u8(5);
                w.str(&t.room);
                w.str(&t.topic);
                w.str(&t.set_by);
                w.u64(t.time_ms);
            }
            EventKind::Away { user, text } => {
                w.u8(6);
                w.str(user);
                w.str(text);
            }
            EventKind::Mute { user, until_ms } => {
                w.u8(7);
                w.str(user);
                w.opt_u64(*until_ms);
            }
            EventKind::Motd(t) => {
                w.u8(8);
                w.str(t);
            }
            EventKind::Login {
                conn,
                user,
                address,
                since_ms,
            } => {
                w.u8(9);
                w.u64(*conn);
                w.str(user);
                w.str(address);
                w.u64(*since_ms);
            }
            EventKind::CloseSessions {
                user,
                only,
                except,
                rec,
            } => {
                w.u8(16);
                w.str(user);
                for t in [only, except] {
                    match t {
                        Some((n, c)) => {
                            w.u8(1);
                            w.str(n);
                            w.u64(*c);
                        }
                        None => w.u8(0),
                    }
                }
                w.bytes(rec);
            }
            EventKind::Join { conn, room } => {
                w.u8(10);
                w.u64(*conn);
                w.str(room);
            }
            EventKind::Part { conn, room } => {
                w.u8(11);
                w.u64(*conn);
                w.str(room);
            }
            EventKind::Gone { conn } => {
                w.u8(12);
                w.u64(*conn);
            }
            EventKind::Hello => w.u8(13),
            EventKind::Snapshot(conns) => {
                w.u8(14);
                w.u64(conns.len() as u64);
                for c in conns {
                    w.u64(c.id);
                    w.str(&c.user);
                    w.str(&c.address);
                    w.u64(c.since_ms);
                    w.u64(c.rooms.len() as u64);
                    for r in &c.rooms {
                        w.str(r);
                    }
                }
            }
            EventKind::NodeDown { node } => {
                w.u8(15);
                w.str(node);
            }
        }
        w.0
    }

    /// Parses an event; `None` if the bytes are not exactly one event.
    #[must_use]
    pub fn decode(b: &[u8]) -> Option<Event> {
        let mut r = Reader(b);
        let origin = r.string()?;
        let kind = match r.u8()? {
            1 => EventKind::Room {
                room: r.string()?,
                except: r.opt_u64()?,
                rec: r.rec()?,
            },
            2 => EventKind::User {
                user: r.string()?,
                except: r.opt_u64()?,
                rec: r.rec()?,
            },
            3 => EventKind::Disconnect {
                user: r.string()?,
                rec: r.rec()?,
            },
            4 => EventKind::Kick {
                room: r.string()?,
                user: r.string()?,
            },
            5 => EventKind::Topic(TopicRow {
                room: r.string()?,
                topic: r.string()?,
                set_by: r.string()?,
                time_ms: r.u64()?,
            }),
            6 => EventKind::Away {
                user: r.string()?,
                text: r.string()?,
            },
            7 => EventKind::Mute {
                user: r.string()?,
                until_ms: r.opt_u64()?,
            },
            8 => EventKind::Motd(r.string()?),
            9 => EventKind::Login {
                conn: r.u64()?,
                user: r.string()?,
                address: r.string()?,
                since_ms: r.u64()?,
            },
            16 => {
                let user = r.string()?;
                let mut target = || -> Option<Option<(String, ConnId)>> {
                    match r.u8()? {
                        0 => Some(None),
                        1 => Some(Some((r.string()?, r.u64()?))),
                        _ => None,
                    }
                };
                let only = target()?;
                let except = target()?;
                EventKind::CloseSessions {
                    user,
                    only,
                    except,
                    rec: r.rec()?,
                }
            }
            10 => EventKind::Join {
                conn: r.u64()?,
                room: r.string()?,
            },
            11 => EventKind::Part {
                conn: r.u64()?,
                room: r.string()?,
            },
            12 => EventKind::Gone { conn: r.u64()? },
            13 => EventKind::Hello,
            14 => {
                let n = r.u64()?;
                let mut conns = Vec::new();
                for _ in 0..n {
                    let id = r.u64()?;
                    let user = r.string()?;
                    let address = r.string()?;
                    let since_ms = r.u64()?;
                    let k = r.u64()?;
                    let mut rooms = BTreeSet::new();
                    for _ in 0..k {
                        rooms.insert(r.string()?);
                    }
                    conns.push(RemoteConn {
                        id,
                        user,
                        rooms,
                        address,
                        since_ms,
                    });
                }
                EventKind::Snapshot(conns)
            }
            15 => EventKind::NodeDown { node: r.string()? },
            _ => return None,
        };
        r.0.is_empty().then_some(Event { origin, kind })
    }
}

// ----------------------------------------------------------------------------------------
// Sealing: MAGIC ‖ sender id (16) ‖ counter (8, big-endian) ‖ ciphertext ‖ tag (16); the
// header is the associated data, the counter the nonce.

/// Seals events of this process.
#[derive(Debug)]
pub struct Sealer {
    sender: [u8; SENDER_LEN],
    keys: RecordKeys,
    counter: u64,
}

impl Sealer {
    /// A sealer with a fresh random sender id.
    pub fn new(shared_keys: &crate::keys::ServerKeys) -> std::io::Result<Sealer> {
        let sender = crate::keys::random::<SENDER_LEN>()?;
        let keys = RecordKeys::derive(&shared_keys.bus_sender_key(&sender));
        Ok(Sealer {
            sender,
            keys,
            counter: 0,
        })
    }

    /// The sealed form of `plain`.
    pub fn seal(&mut self, plain: &[u8]) -> Vec<u8> {
        self.counter += 1;
        let mut out = Vec::with_capacity(HEADER_LEN + plain.len() + TAG_LEN);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&self.sender);
        out.extend_from_slice(&self.counter.to_be_bytes());
        out.extend_from_slice(plain);
        let (head, body) = out.split_at_mut(HEADER_LEN);
        let tag = self.keys.seal_in_place(self.counter, head, body);
        out.extend_from_slice(&tag);
        out
    }
}

/// Opens events, refusing forgeries and replays.
#[derive(Debug, Default)]
pub struct Opener {
    /// Sender id → its keys and the last counter accepted.
    senders: HashMap<[u8; SENDER_LEN], (RecordKeys, u64)>,
}

/// Why a bus message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenError {
    /// Not a ChatBox bus message.
    Malformed,
    /// The tag did not verify (another cluster's key, or tampered with).
    Forged,
    /// A counter not above the last one of its sender.
    Replayed,
}

impl Opener {
    /// The plaintext of one sealed event.
    pub fn open(
        &mut self,
        keys: &crate::keys::ServerKeys,
        msg: &[u8],
    ) -> Result<Vec<u8>, OpenError> {
        if msg.len() < HEADER_LEN + TAG_LEN || msg.get(..MAGIC.len()) != Some(&MAGIC[..]) {
            return Err(OpenError::Malformed);
        }
        let (head, rest) = msg.split_at(HEADER_LEN);
        let (ct, tag) = rest.split_at(rest.len() - TAG_LEN);
        let sender: [u8; SENDER_LEN] = head
            .get(MAGIC.len()..MAGIC.len() + SENDER_LEN)
            .and_then(|s| s.try_into().ok())
            .ok_or(OpenError::Malformed)?;
        let counter = head
            .get(MAGIC.len() + SENDER_LEN..)
            .and_then(|c| <[u8; 8]>::try_from(c).ok())
            .map(u64::from_be_bytes)
            .ok_or(OpenError::Malformed)?;
        if !self.senders.contains_key(&sender) && self.senders.len() >= MAX_SENDERS {
            // Bound the memory; forgetting senders only makes later replays of theirs fail
            // the counter check less strictly, never lets a forgery through.
            self.senders.clear();
        }
        let entry = self
            .senders
            .entry(sender)
            .or_insert_with(|| (RecordKeys::derive(&keys.bus_sender_key(&sender)), 0));
        let mut body = ct.to_vec();
        entry
            .0
            .open_in_place(counter, head, &mut body, tag)
            .map_err(|_| OpenError::Forged)?;
        if counter <= entry.1 {
            return Err(OpenError::Replayed);
        }
        entry.1 = counter;
        Ok(body)
    }
}

// ----------------------------------------------------------------------------------------
// Redis.

/// The cluster bus on Redis: one publisher task (order kept, events pipelined in batches) and
/// one subscriber task that applies what every node published.
#[derive(Debug)]
pub struct RedisBus {
    queue: Sender<Vec<u8>>,
    conn: redis::aio::MultiplexedConnection,
    sealer: Mutex<Sealer>,
    dropped: core::sync::atomic::AtomicU64,
}

/// What the subscriber and publisher tasks need, made by [`RedisBus::connect`].
#[derive(Debug)]
pub struct RedisTasks {
    client: redis::Client,
    conn: redis::aio::MultiplexedConnection,
    rx: Receiver<Vec<u8>>,
}

fn redacted(url: &str) -> String {
    // redis://user:password@host → redis://user:***@host
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s + 3 => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

impl RedisBus {
    /// Connects to Redis (publisher connection) and checks it answers.
    pub fn connect(
        url: &str,
        keys: &crate::keys::ServerKeys,
    ) -> Result<(RedisBus, RedisTasks), String> {
        let shown = redacted(url);
        let client = redis::Client::open(url).map_err(|e| format!("bus {shown}: {e}"))?;
        let conn = smol::block_on(async {
            let connect = client.get_multiplexed_async_connection();
            let timeout = async {
                smol::Timer::after(Duration::from_secs(5)).await;
                Err(redis::RedisError::from((
                    redis::ErrorKind::Io,
                    "timed out after 5 s",
                )))
            };
            let mut c = smol::future::or(connect, timeout).await?;
            redis::cmd("PING").query_async::<String>(&mut c).await?;
            Ok::<_, redis::RedisError>(c)
        })
        .map_err(|e| format!("bus {shown}: {e}"))?;
        let (tx, rx) = channel::bounded(PUBLISH_QUEUE);
        let sealer = Sealer::new(keys).map_err(|e| e.to_string())?;
        Ok((
            RedisBus {
                queue: tx,
                conn: conn.clone(),
                sealer: Mutex::new(sealer),
                dropped: core::sync::atomic::AtomicU64::new(0),
            },
            RedisTasks { client, conn, rx },
        ))
    }

    fn send(&self, shared: &Shared, ev: &Event) {
        let sealed = match self.sealer.lock() {
            Ok(mut s) => s.seal(&ev.encode()),
            Err(_) => return,
        };
        if self.queue.try_send(sealed).is_ok() {
            shared.metrics.bus(crate::metrics::Direction::Out);
        } else {
            let n = self
                .dropped
                .fetch_add(1, core::sync::atomic::Ordering::Relaxed);
            if n.is_power_of_two() {
                shared.logs.info(format!(
                    "cluster: bus publish queue full or closed, {} events dropped",
                    n + 1
                ));
            }
        }
    }
}

impl RedisTasks {
    /// Publishes queued events in order, a pipeline per batch; retries a failed batch until
    /// Redis answers again.
    pub async fn publisher(mut self, shared: Arc<Shared>) {
        let rx = self.rx.clone();
        while let Ok(first) = rx.recv().await {
            let mut batch = vec![first];
            while batch.len() < PUBLISH_BATCH {
                match rx.try_recv() {
                    Ok(b) => batch.push(b),
                    Err(_) => break,
                }
            }
            let mut pipe = redis::pipe();
            for b in &batch {
                pipe.cmd("PUBLISH").arg(CHANNEL).arg(&b[..]).ignore();
            }
            let mut delay = Duration::from_millis(50);
            loop {
                match pipe.query_async::<()>(&mut self.conn).await {
                    Ok(()) => break,
                    Err(e) => {
                        shared
                            .logs
                            .info(format!("cluster: publishing to the bus failed: {e}"));
                        if shared.shutting_down() {
                            return;
                        }
                        smol::Timer::after(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(2));
                    }
                }
            }
        }
    }

    /// Subscribes (again after a failure) and applies every event; says hello after each
    /// subscription so the other nodes send their snapshots.
    pub async fn subscriber(client: redis::Client, shared: Arc<Shared>, ready: Sender<()>) {
        let mut opener = Opener::default();
        let mut delay = Duration::from_millis(50);
        loop {
            match client.get_async_pubsub().await {
                Ok(mut ps) => match ps.subscribe(CHANNEL).await {
                    Ok(()) => {
                        delay = Duration::from_millis(50);
                        let _ = ready.try_send(());
                        // Who is here (replacing what others remember of an earlier run of
                        // this node), then ask the others who is there.
                        let snap = shared.hub.local_snapshot();
                        shared.bus.publish(&shared, EventKind::Snapshot(snap));
                        shared.bus.publish(&shared, EventKind::Hello);
                        let mut stream = ps.on_message();
                        while let Some(msg) = stream.next().await {
                            match opener.open(&shared.keys, msg.get_payload_bytes()) {
                                Ok(plain) => match Event::decode(&plain) {
                                    Some(ev) => {
                                        shared.metrics.bus(crate::metrics::Direction::In);
                                        let mine = ev.origin == shared.node;
                                        if !(mine && is_state(&ev.kind)) {
                                            apply(&shared, ev);
                                        }
                                    }
                                    None => shared.logs.info("cluster: undecodable bus event"),
                                },
                                // Forged, replayed, or another cluster's on the same Redis:
                                // at most one line per 10 s, with a count of the rest.
                                Err(e) => shared.logs.info_coalesced(
                                    "cluster: bus message refused",
                                    format!("cluster: bus message refused: {e:?}"),
                                ),
                            }
                        }
                        shared.logs.info("cluster: bus subscription ended");
                    }
                    Err(e) => shared.logs.info(format!("cluster: subscribe failed: {e}")),
                },
                Err(e) => shared
                    .logs
                    .info(format!("cluster: bus connection failed: {e}")),
            }
            if shared.shutting_down() {
                return;
            }
            smol::Timer::after(delay).await;
            delay = (delay * 2).min(Duration::from_secs(2));
        }
    }

    /// A connection for state the nodes share (login throttle).
    #[must_use]
    pub fn connection(&self) -> redis::aio::MultiplexedConnection {
        self.conn.clone()
    }

    /// The client the subscriber connects with.
    #[must_use]
    pub fn client(&self) -> redis::Client {
        self.client.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<EventKind> {
        let rec: Arc<[u8]> = Arc::from(&b"\x01\x02record"[..]);
        vec![
            EventKind::Room {
                room: "#a".into(),
                except: Some(7),
                rec: rec.clone(),
            },
            EventKind::User {
                user: "bob".into(),
                except: None,
                rec: rec.clone(),
            },
            EventKind::Disconnect {
                user: "bob".into(),
                rec,
            },
            EventKind::Kick {
                room: "#a".into(),
                user: "bob".into(),
            },
            EventKind::Topic(TopicRow {
                room: "#a".into(),
                topic: "t".into(),
                set_by: "op".into(),
                time_ms: 5,
            }),
            EventKind::Away {
                user: "a".into(),
                text: "lunch".into(),
            },
            EventKind::Mute {
                user: "a".into(),
                until_ms: Some(0),
            },
            EventKind::Mute {
                user: "a".into(),
                until_ms: None,
            },
            EventKind::Motd("hi".into()),
            EventKind::Login {
                conn: 3,
                user: "a".into(),
                address: "127.0.0.1:5".into(),
                since_ms: 9,
            },
            EventKind::CloseSessions {
                user: "a".into(),
                only: Some(("n2".into(), 4)),
                except: None,
                rec: Arc::from(&b"bye"[..]),
            },
            EventKind::CloseSessions {
                user: "a".into(),
                only: None,
                except: Some(("n1".into(), 5)),
                rec: Arc::from(&b"bye"[..]),
            },
            EventKind::Join {
                conn: 3,
                room: "#a".into(),
            },
            EventKind::Part {
                conn: 3,
                room: "#a".into(),
            },
            EventKind::Gone { conn: 3 },
            EventKind::Hello,
            EventKind::Snapshot(vec![RemoteConn {
                id: 1,
                user: "a".into(),
                rooms: ["#a".to_owned(), "#b".to_owned()].into_iter().collect(),
                address: "[::1]:7".into(),
                since_ms: 3,
            }]),
            EventKind::NodeDown { node: "n2".into() },
        ]
    }

    #[test]
    fn every_event_round_trips_and_no_prefix_or_extension_decodes() {
        for kind in samples() {
            let ev = Event {
                origin: "n1".into(),
                kind,
            };
            let b = ev.encode();
            let back = Event::decode(&b).expect("decodes");
            assert_eq!(back.origin, "n1");
            assert_eq!(format!("{back:?}"), format!("{ev:?}"));
            assert_eq!(back.encode(), b);
            for cut in 0..b.len() {
                assert!(Event::decode(&b[..cut]).is_none(), "prefix {cut} of {ev:?}");
            }
            let mut longer = b.clone();
            longer.push(0);
            assert!(Event::decode(&longer).is_none());
        }
    }

    #[test]
    fn sealed_events_open_once_and_refuse_tampering_and_other_keys() {
        let dir = tempfile::tempdir().unwrap();
        let keys = crate::keys::ServerKeys::load_or_create(dir.path()).unwrap();
        let other_dir = tempfile::tempdir().unwrap();
        let other = crate::keys::ServerKeys::load_or_create(other_dir.path()).unwrap();
        let mut sealer = Sealer::new(&keys).unwrap();
        let mut opener = Opener::default();
        let a = sealer.seal(b"first");
        let b = sealer.seal(b"second");
        assert_eq!(opener.open(&keys, &a).unwrap(), b"first");
        assert_eq!(opener.open(&keys, &b).unwrap(), b"second");
        assert_eq!(opener.open(&keys, &a), Err(OpenError::Replayed));
        let c = sealer.seal(b"third");
        for i in 0..c.len() {
            let mut t = c.clone();
            t[i] ^= 0x40;
            assert!(opener.open(&keys, &t).is_err(), "flip at {i} accepted");
        }
        assert_eq!(
            Opener::default().open(&other, &c),
            Err(OpenError::Forged),
            "another cluster's key"
        );
        assert_eq!(opener.open(&keys, &c).unwrap(), b"third");
        assert_eq!(opener.open(&keys, &c[..10]), Err(OpenError::Malformed));
        // The plaintext does not appear in the sealed bytes.
        let secret = sealer.seal(b"attack at dawn");
        assert!(!secret.windows(6).any(|w| w == b"attack"));
    }

    #[test]
    fn redis_urls_are_shown_without_password() {
        assert_eq!(
            redacted("redis://u:secret@127.0.0.1:6379/0"),
            "redis://u:***@127.0.0.1:6379/0"
        );
        assert_eq!(redacted("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(redacted("redis://:pw@h"), "redis://:***@h");
    }
}
