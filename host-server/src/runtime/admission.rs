//! Admission: which connections the server takes and keeps before they log in. It owns the
//! connection counts (in all, per IP), the anonymous share with its eviction, and the
//! shutdown flag new connections are refused under; [`ConnGuard`] counts one connection while
//! it lives. Addresses are masked the one way every per-address limit masks them
//! ([`Prefixes`], auth/source.rs). See docs/DESIGN.md, "Server: connections and runtime".

use core::net::IpAddr;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chatbox_core::proto::ServerMsg;

use crate::auth::source::{Net, Prefixes};
use crate::chat::ConnId;
use crate::chat::mailbox::{Mailbox, Outbound};
use crate::chat::records;
use crate::config::Config;
use crate::logs::Logs;
use crate::metrics::Metrics;

/// The connection limits and counts of one node.
#[derive(Debug)]
pub(crate) struct Admission {
    max_connections: usize,
    max_per_ip: usize,
    max_anonymous: usize,
    logs: Logs,
    metrics: Metrics,
    next_conn: AtomicU64,
    active: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    anonymous: Mutex<Anonymous>,
    shutting_down: AtomicBool,
}

/// Connections that have not logged in (from accept to `LoginOk`), capped at
/// [`Config::max_anonymous`].
#[derive(Debug)]
struct Anonymous {
    prefixes: Prefixes,
    conns: HashMap<ConnId, AnonConn>,
    /// Not yet evicted, per address and per aggregate.
    per_key: HashMap<Net, usize>,
    per_prefix: HashMap<Net, usize>,
    /// Not yet evicted, in all.
    live: usize,
}

#[derive(Debug)]
struct AnonConn {
    key: Net,
    prefix: Net,
    mailbox: Arc<Mailbox>,
    evicted: bool,
}

fn dec<K: core::hash::Hash + Eq>(m: &mut HashMap<K, usize>, k: K) {
    if let Some(n) = m.get_mut(&k) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            m.remove(&k);
        }
    }
}

impl Anonymous {
    fn new(prefixes: Prefixes) -> Anonymous {
        Anonymous {
            prefixes,
            conns: HashMap::new(),
            per_key: HashMap::new(),
            per_prefix: HashMap::new(),
            live: 0,
        }
    }

    fn enter(&mut self, id: ConnId, ip: IpAddr, mailbox: Arc<Mailbox>) {
        let origin = self.prefixes.origin(ip);
        let (key, prefix) = (origin.addr, origin.aggregate);
        *self.per_key.entry(key).or_insert(0) += 1;
        *self.per_prefix.entry(prefix).or_insert(0) += 1;
        self.live += 1;
        self.conns.insert(
            id,
            AnonConn {
                key,
                prefix,
                mailbox,
                evicted: false,
            },
        );
    }

    fn uncount(&mut self, key: Net, prefix: Net) {
        dec(&mut self.per_key, key);
        dec(&mut self.per_prefix, prefix);
        self.live = self.live.saturating_sub(1);
    }

    fn leave(&mut self, id: ConnId) {
        if let Some(c) = self.conns.remove(&id)
            && !c.evicted
        {
            self.uncount(c.key, c.prefix);
        }
    }

    /// The connection to evict: in the aggregate holding the most anonymous connections, the
    /// address holding the most, its oldest connection (ids grow with time). Ties go to the
    /// oldest connection among the tied, so a newcomer is never the one evicted for a tie.
    fn victim(&self) -> Option<ConnId> {
        let top_prefix = self.per_prefix.values().copied().max()?;
        let live = || {
            self.conns.iter().filter(move |(_, c)| {
                !c.evicted && self.per_prefix.get(&c.prefix) == Some(&top_prefix)
            })
        };
        let top_key = live()
            .filter_map(|(_, c)| self.per_key.get(&c.key).copied())
            .max()?;
        live()
            .filter(|(_, c)| self.per_key.get(&c.key) == Some(&top_key))
            .map(|(id, _)| *id)
            .min()
    }

    fn evict(&mut self, id: ConnId, rec: &Arc<[u8]>) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        if c.evicted {
            return;
        }
        c.evicted = true;
        c.mailbox.offer(&Outbound::Evict(rec.clone()));
        let (key, prefix) = (c.key, c.prefix);
        self.uncount(key, prefix);
    }
}

/// Counts a connection while it lives.
#[derive(Debug)]
pub(crate) struct ConnGuard {
    admission: Arc<Admission>,
    ip: IpAddr,
    id: ConnId,
    /// Over a limit: answer `ServerFull` after the handshake, then close.
    pub(crate) refuse: bool,
    /// Whether the connection had logged in (which `chatbox_connections` state it leaves).
    pub(crate) authenticated: bool,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let a = &self.admission;
        a.metrics.conn_closed(self.authenticated);
        a.active.fetch_sub(1, Ordering::SeqCst);
        self.logged_in();
        if let Ok(mut m) = a.per_ip.lock() {
            dec(&mut m, self.ip);
        }
    }
}

impl ConnGuard {
    /// The connection logged in: it no longer counts as anonymous.
    pub(crate) fn logged_in(&self) {
        if let Ok(mut a) = self.admission.anonymous.lock() {
            a.leave(self.id);
        }
    }

    /// This connection's id.
    pub(crate) fn id(&self) -> ConnId {
        self.id
    }

    /// Whether shutdown has begun (what a refused connection is told).
    pub(crate) fn shutting_down(&self) -> bool {
        self.admission.shutting_down()
    }
}

impl Admission {
    pub(crate) fn new(config: &Config, logs: Logs, metrics: Metrics) -> Admission {
        let prefixes = Prefixes::of(config);
        Admission {
            max_connections: config.max_connections,
            max_per_ip: config.max_per_ip,
            max_anonymous: config.max_anonymous(),
            logs,
            metrics,
            next_conn: AtomicU64::new(0),
            active: AtomicUsize::new(0),
            per_ip: Mutex::new(HashMap::new()),
            anonymous: Mutex::new(Anonymous::new(prefixes)),
            shutting_down: AtomicBool::new(false),
        }
    }

    /// Whether a connection just accepted gets even a handshake: not while shutting down, nor
    /// when far over the connection limit.
    pub(crate) fn worth_a_handshake(&self) -> bool {
        !self.shutting_down()
            && self.active.load(Ordering::SeqCst) < self.max_connections.saturating_mul(2)
    }

    /// Counts a new connection (a fresh id) from `ip`. It starts anonymous: at the anonymous
    /// cap another anonymous connection is evicted for it (see [`Anonymous::victim`]), so a
    /// flood can hold the anonymous share only by arriving faster than honest clients log in,
    /// and even then loses its own oldest connections first.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr, mailbox: Arc<Mailbox>) -> ConnGuard {
        let id = self.next_conn.fetch_add(1, Ordering::SeqCst) + 1;
        let total = self.active.fetch_add(1, Ordering::SeqCst) + 1;
        let from_ip = self
            .per_ip
            .lock()
            .map(|mut m| {
                let n = m.entry(ip).or_insert(0);
                *n += 1;
                *n
            })
            .unwrap_or(usize::MAX);
        self.metrics.conn_opened();
        let refuse =
            total > self.max_connections || from_ip > self.max_per_ip || self.shutting_down();
        // A refused connection only gets `ServerFull` and goes: it takes no anonymous slot
        // (and so evicts nobody).
        if !refuse && let Ok(mut a) = self.anonymous.lock() {
            let cap = self.max_anonymous;
            let victim = if a.live >= cap { a.victim() } else { None };
            if let Some(v) = victim {
                let bye = records::shared(&ServerMsg::Bye {
                    reason: "too many connections waiting to log in; try again",
                });
                a.evict(v, &bye);
            }
            a.enter(id, ip, mailbox);
            drop(a);
            // A flood must not flood info.log: one line per 10 s, with a count of the rest.
            if victim.is_some() {
                self.logs.info_coalesced(
                    "anonymous connection evicted",
                    format!(
                        "a connection not logged in evicted: {cap} (the anonymous cap) were waiting"
                    ),
                );
            }
        }
        ConnGuard {
            admission: self.clone(),
            ip,
            id,
            refuse,
            authenticated: false,
        }
    }

    /// Connections counted now.
    pub(crate) fn active(&self) -> usize {
        self.active.load(Ordering::SeqCst)
    }

    /// Whether shutdown has begun.
    pub(crate) fn shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// Shutdown begins: every connection from now on is refused.
    pub(crate) fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::{Anonymous, Mailbox, Prefixes};
    use crate::config::Config;
    use core::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|_| unreachable!())
    }

    #[test]
    fn addresses_group_by_v4_address_and_v6_64_prefixes_by_v4_24_and_v6_48() {
        let p = Prefixes::of(&Config::new());
        let address_key = |s: &str| p.origin(ip(s)).addr.ip();
        let prefix_key = |s: &str| p.origin(ip(s)).aggregate.ip();
        assert_eq!(address_key("10.1.2.3"), ip("10.1.2.3"));
        assert_eq!(address_key("::ffff:10.1.2.3"), ip("10.1.2.3"));
        assert_eq!(
            address_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd"),
            ip("2001:db8:1:2::")
        );
        assert_eq!(prefix_key("10.1.2.3"), ip("10.1.2.0"));
        assert_eq!(prefix_key("2001:db8:1:2:3::4"), ip("2001:db8:1::"));
        assert_ne!(
            address_key("2001:db8:1:2::1"),
            address_key("2001:db8:1:3::1")
        );
    }

    #[test]
    fn the_victim_is_the_oldest_of_the_biggest_holder_never_a_newcomer_on_a_tie() {
        let mut a = Anonymous::new(Prefixes::of(&Config::new()));
        let mb = || Mailbox::new(4);
        // Prefix 10.0.0.0/24: .1 holds 3 (ids 1-3), .2 holds 1 (id 4); 10.0.1.0/24: .9 holds 1.
        for id in 1..=3 {
            a.enter(id, ip("10.0.0.1"), mb());
        }
        a.enter(4, ip("10.0.0.2"), mb());
        a.enter(5, ip("10.0.1.9"), mb());
        assert_eq!(a.victim(), Some(1));
        let bye: std::sync::Arc<[u8]> = std::sync::Arc::from(&b"bye"[..]);
        a.evict(1, &bye);
        assert_eq!((a.live, a.victim()), (4, Some(2)));
        a.evict(2, &bye);
        a.evict(3, &bye);
        // 10.0.0.0/24 holds 1, 10.0.1.0/24 holds 1: a tie; the oldest of the tied goes.
        assert_eq!(a.victim(), Some(4));
        a.leave(4);
        a.leave(1);
        assert_eq!((a.live, a.victim()), (1, Some(5)));
        // An IPv6 flood from one /48 over many /64s counts as one prefix.
        for i in 0..5u64 {
            a.enter(10 + i, ip(&format!("2001:db8:7:{i}::1")), mb());
        }
        a.enter(20, ip("2001:db8:9::1"), mb());
        assert_eq!(a.victim(), Some(10));
    }
}
