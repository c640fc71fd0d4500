//! Fan-out across the nodes of a cluster (see docs/DESIGN.md, "Server: chat and bus").
//!
//! Every effect a user has on others — a room or private message, a join, part or quit, a
//! topic, an away message, a kick, ban or mute, the MOTD — is an [`Effect`]; an action ships
//! its effects together as one [`Event`] through [`Bus::publish`]. The bus is built from a
//! handle to this node's [`ChatState`], the node id and the logs; it owns no other state.
//!
//! **The replication rule.** The publisher applies every state effect of its event at once
//! (through [`ChatState::apply`], under the state's lock, so its own next request sees it)
//! and skips them in its own echo. Alone ([`Link::Local`]) the deliveries follow at once too.
//! In a cluster ([`Link::Redis`], `--bus redis://…`) the event goes out on one Redis pub/sub
//! channel that every node subscribes to, this one included, and each node makes the
//! deliveries when the event comes back: Redis orders the channel, so a room's messages reach
//! each member once and every member sees them in one order (README, "Order and once").
//! Everything that arrives from other nodes is applied whole.
//!
//! Presence: a node announces its logged-in connections (login, join, part, gone); at start it
//! says hello and every other node answers with a snapshot; a node whose lease expired in the
//! database is reaped by the others, which publish `NodeDown` so every node forgets its users
//! (and tells the rooms they were in that they quit). What an event asks of the bus beyond
//! the state (answer a hello, log a node down) comes back from `apply` as [`Applied`] and is
//! done here: `apply` never publishes.

pub(crate) mod codec;
pub(crate) mod effect;
pub(crate) mod pubsub;
pub(crate) mod seal;

use core::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

pub(crate) use effect::{Effect, Event};
pub(crate) use pubsub::{RedisLink, RedisTasks};

use crate::chat::flush::Flusher;
use crate::chat::mailbox::Mailbox;
use crate::chat::state::{Applied, ChatState, Scope};
use crate::logs::Logs;
use crate::metrics::Metrics;

/// How events travel.
#[derive(Debug)]
pub(crate) enum Link {
    /// One node: events are applied at once.
    Local,
    /// A cluster: events go through Redis.
    Redis(RedisLink),
}

/// The bus of one node: a cheap handle, shared by the chat service and the Redis tasks.
#[derive(Debug, Clone)]
pub(crate) struct Bus(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    state: Arc<Mutex<ChatState>>,
    node: String,
    logs: Logs,
    metrics: Metrics,
    link: Link,
    closing: AtomicBool,
    /// Deferred writes of this node's deliveries (its task is spawned by `start`).
    flusher: Arc<Flusher>,
}

/// The locked chat state (see [`Bus::lock`]). The fields drop in order: the state's lock is
/// released first, then the mailboxes it queued records in are drained.
#[derive(Debug)]
pub(crate) struct Locked<'a> {
    state: MutexGuard<'a, ChatState>,
    drain: Drain<'a>,
}

/// Mailboxes to drain when dropped.
#[derive(Debug)]
struct Drain<'a> {
    flusher: &'a Flusher,
    touched: Vec<Arc<Mailbox>>,
}

thread_local! {
    /// An emptied list of touched mailboxes, kept for this thread's next fan-out.
    static SPARE: core::cell::Cell<Vec<Arc<Mailbox>>> = const { core::cell::Cell::new(Vec::new()) };
}

/// Lists longer than this are not kept (a burst's list is not held by an idle thread).
const SPARE_MAX: usize = 4096;

impl Drop for Drain<'_> {
    fn drop(&mut self) {
        for m in &self.touched {
            Mailbox::drain(m, self.flusher);
        }
        let mut list = core::mem::take(&mut self.touched);
        if list.capacity() > 0 && list.capacity() <= SPARE_MAX {
            list.clear();
            SPARE.set(list);
        }
    }
}

impl core::ops::Deref for Locked<'_> {
    type Target = ChatState;
    fn deref(&self) -> &ChatState {
        &self.state
    }
}

impl core::ops::DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut ChatState {
        &mut self.state
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        self.drain.touched = self.state.take_touched(SPARE.take());
    }
}

impl Bus {
    /// The bus of node `node` over `state`.
    pub(crate) fn new(
        state: Arc<Mutex<ChatState>>,
        node: &str,
        logs: Logs,
        metrics: Metrics,
        link: Link,
    ) -> Bus {
        Bus(Arc::new(Inner {
            state,
            node: node.to_owned(),
            logs,
            metrics,
            link,
            closing: AtomicBool::new(false),
            flusher: Flusher::new(),
        }))
    }

    /// The chat state, locked. A poisoned lock means a panic elsewhere; the data is still
    /// consistent enough to keep serving (every `apply` of one effect is a single step).
    /// Released, the guard drains the mailboxes the state queued records in: the records are
    /// sealed and written by this task, outside the state's lock ([`Mailbox::drain`]).
    ///
    /// [`Mailbox::drain`]: crate::chat::mailbox::Mailbox::drain
    pub(crate) fn lock(&self) -> Locked<'_> {
        Locked {
            state: self
                .0
                .state
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
            drain: Drain {
                flusher: &self.0.flusher,
                touched: Vec::new(),
            },
        }
    }

    /// The deferred writes' flusher, whose task `start` spawns.
    pub(crate) fn flusher(&self) -> Arc<Flusher> {
        self.0.flusher.clone()
    }

    pub(crate) fn logs(&self) -> &Logs {
        &self.0.logs
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    /// Publishes `effects` as one event (see the rule above).
    pub(crate) fn publish(&self, effects: Vec<Effect>) -> Applied {
        let mut s = self.lock();
        self.publish_in(&mut s, effects)
    }

    /// [`Bus::publish`] with the state already locked: for a command that decides on the state
    /// and must publish before anyone else changes it (a room limit, a last connection).
    pub(crate) fn publish_in(&self, s: &mut ChatState, effects: Vec<Effect>) -> Applied {
        if effects.is_empty() {
            return Applied::default();
        }
        let ev = Event {
            origin: self.0.node.clone(),
            effects,
        };
        let applied = match &self.0.link {
            Link::Local => s.apply(&ev, Scope::All),
            Link::Redis(r) => {
                let a = s.apply(&ev, Scope::State);
                // Sent under the lock: the order on the bus is the order applied here.
                r.send(&ev, &self.0.logs, &self.0.metrics);
                a
            }
        };
        self.after(s, applied)
    }

    /// Applies `effects` on this node only: what no other node needs (a connection that never
    /// logged in leaving, an administrator's change that every node reads for itself).
    pub(crate) fn apply_here(&self, s: &mut ChatState, effects: Vec<Effect>) -> Applied {
        let ev = Event {
            origin: self.0.node.clone(),
            effects,
        };
        let applied = s.apply(&ev, Scope::All);
        self.after(s, applied)
    }

    /// An event from the bus (the subscriber task): its own echo's deliveries, or another
    /// node's event whole.
    pub(crate) fn receive(&self, ev: &Event) -> Applied {
        let scope = if ev.origin == self.0.node {
            Scope::Deliveries
        } else {
            Scope::All
        };
        let mut s = self.lock();
        let applied = s.apply(ev, scope);
        self.after(&mut s, applied)
    }

    /// What an event asked of the bus beyond the state.
    fn after(&self, s: &mut ChatState, mut a: Applied) -> Applied {
        if a.declared_down {
            self.0
                .logs
                .info("cluster: another node declared this one down; re-announcing");
        }
        if let Some((node, n)) = &a.node_down {
            self.0.logs.info(format!(
                "cluster: node {node} is down; {n} of its users now offline"
            ));
        }
        if a.announce {
            a.announce = false;
            let snap = s.local_snapshot();
            self.publish_in(s, vec![Effect::Snapshot(snap)]);
        }
        a
    }

    /// Tells the other nodes who is here (and, with `hello`, asks who is there).
    pub(crate) fn announce(&self, hello: bool) {
        let mut s = self.lock();
        let mut effects = vec![Effect::Snapshot(s.local_snapshot())];
        if hello {
            effects.push(Effect::Hello);
        }
        self.publish_in(&mut s, effects);
    }

    /// From now on the Redis tasks stop retrying (shutdown).
    pub(crate) fn close(&self) {
        self.0.closing.store(true, Ordering::SeqCst);
    }

    /// Whether shutdown has begun.
    pub(crate) fn closing(&self) -> bool {
        self.0.closing.load(Ordering::SeqCst)
    }
}
