//! Start-up, the accept loop, shared state and graceful shutdown.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use core::time::Duration;
use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::Instant;

use chatbox_core::password::{DEFAULT_ITERATIONS, MAX_ITERATIONS, MIN_ITERATIONS};
use chatbox_core::proto::ServerMsg;
use smol::channel::{self, Sender};
use smol::{Async, Executor};

use crate::auth::failures::Attempts;
use crate::auth::pool::HashPool;
use crate::auth::throttle::IpThrottle;
use crate::bus::{Link, RedisLink, RedisTasks};
use crate::chat::mailbox::{Mailbox, Outbound};
use crate::chat::{Chat, ConnId, records};
use crate::config::Config;
use crate::keys::ServerKeys;
use crate::logs::{Logs, anchor_name};
use crate::metrics::{self, Metrics};
use crate::private;
use crate::store::{Database, Store};

/// State every connection task shares.
#[derive(Debug)]
pub struct Shared {
    /// Settings.
    pub config: Config,
    /// Server key and derived keys.
    pub keys: Arc<ServerKeys>,
    /// Log files.
    pub logs: Logs,
    /// Database.
    pub store: Arc<Store>,
    /// Rooms, private messages, moderation; the bus to the other nodes.
    pub chat: Chat,
    /// This node's id in a cluster (`local` alone).
    pub node: String,
    /// Password hashing pool.
    pub pool: HashPool,
    /// Failed logins per IP.
    pub ip_throttle: IpThrottle,
    /// Recent login failures (the answer delay) and successes (the reserved hashing share).
    pub attempts: Attempts,
    /// Prometheus metrics (a no-op without `--metrics`).
    pub metrics: Metrics,
    next_conn: AtomicU64,
    active: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    anonymous: Mutex<Anonymous>,
    pending_per_ip: Mutex<HashMap<IpAddr, usize>>,
    shutting_down: AtomicBool,
}

/// The address an attacker must pay for: IPv4 /32, IPv6 /64 (one customer's subnet);
/// IPv4-mapped IPv6 addresses count as IPv4.
#[must_use]
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(a) => IpAddr::V4(a),
        IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(a.to_bits() & !((1u128 << 64) - 1))),
    }
}

/// The prefix a many-address attacker usually holds whole: IPv4 /24, IPv6 /48.
#[must_use]
pub fn prefix_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(a.to_bits() & 0xffff_ff00)),
        IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(a.to_bits() & !((1u128 << 80) - 1))),
    }
}

/// Connections that have not logged in (from accept to `LoginOk`), capped at
/// [`Config::max_anonymous`].
#[derive(Debug, Default)]
struct Anonymous {
    conns: HashMap<ConnId, AnonConn>,
    /// Not yet evicted, per address key and per prefix.
    per_key: HashMap<IpAddr, usize>,
    per_prefix: HashMap<IpAddr, usize>,
    /// Not yet evicted, in all.
    live: usize,
}

#[derive(Debug)]
struct AnonConn {
    key: IpAddr,
    prefix: IpAddr,
    mailbox: Arc<Mailbox>,
    evicted: bool,
}

fn dec(m: &mut HashMap<IpAddr, usize>, k: IpAddr) {
    if let Some(n) = m.get_mut(&k) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            m.remove(&k);
        }
    }
}

impl Anonymous {
    fn enter(&mut self, id: ConnId, ip: IpAddr, mailbox: Arc<Mailbox>) {
        let (key, prefix) = (address_key(ip), prefix_key(ip));
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

    fn uncount(&mut self, key: IpAddr, prefix: IpAddr) {
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

    /// The connection to evict: in the prefix holding the most anonymous connections, the
    /// address holding the most, its oldest connection (ids grow with time). Ties go to the
    /// oldest connection among the tied, so a newcomer is never the one evicted for a tie.
    fn victim(&self) -> Option<ConnId> {
        let top_prefix = self.per_prefix.values().copied().max()?;
        let top_key = self
            .per_key
            .iter()
            .filter(|&(k, _)| self.per_prefix.get(&prefix_key(*k)) == Some(&top_prefix))
            .map(|(_, n)| *n)
            .max()?;
        self.conns
            .iter()
            .filter(|(_, c)| {
                !c.evicted
                    && self.per_prefix.get(&c.prefix) == Some(&top_prefix)
                    && self.per_key.get(&c.key) == Some(&top_key)
            })
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

/// One unconfirmed registration counted against its address; released when dropped.
#[derive(Debug)]
pub struct PendingSlot {
    shared: Arc<Shared>,
    key: IpAddr,
}

impl Drop for PendingSlot {
    fn drop(&mut self) {
        if let Ok(mut m) = self.shared.pending_per_ip.lock() {
            dec(&mut m, self.key);
        }
    }
}

/// Counts a connection while it lives.
#[derive(Debug)]
pub struct ConnGuard {
    shared: Arc<Shared>,
    ip: IpAddr,
    id: ConnId,
    /// Over a limit: answer `ServerFull` after the handshake, then close.
    pub refuse: bool,
    /// Whether the connection had logged in (which `chatbox_connections` state it leaves).
    pub authenticated: bool,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.shared.metrics.conn_closed(self.authenticated);
        self.shared.active.fetch_sub(1, Ordering::SeqCst);
        self.logged_in();
        if let Ok(mut m) = self.shared.per_ip.lock()
            && let Some(n) = m.get_mut(&self.ip)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

impl ConnGuard {
    /// The connection logged in: it no longer counts as anonymous.
    pub fn logged_in(&self) {
        if let Ok(mut a) = self.shared.anonymous.lock() {
            a.leave(self.id);
        }
    }
}

impl Shared {
    /// Counts a new connection. It starts anonymous: at the anonymous cap another anonymous
    /// connection is evicted for it (see [`Anonymous::victim`]), so a flood can hold the
    /// anonymous share only by arriving faster than honest clients log in, and even then
    /// loses its own oldest connections first.
    fn admit(self: &Arc<Self>, ip: IpAddr, id: ConnId, mailbox: Arc<Mailbox>) -> ConnGuard {
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
        let refuse = total > self.config.max_connections
            || from_ip > self.config.max_per_ip
            || self.shutting_down.load(Ordering::SeqCst);
        // A refused connection only gets `ServerFull` and goes: it takes no anonymous slot
        // (and so evicts nobody).
        if !refuse && let Ok(mut a) = self.anonymous.lock() {
            let cap = self.config.max_anonymous();
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
            shared: self.clone(),
            ip,
            id,
            refuse,
            authenticated: false,
        }
    }

    /// Reserves one unconfirmed registration for the address of `ip`; `None` if it already
    /// holds `max_pending_per_ip`.
    pub fn reserve_pending(self: &Arc<Self>, ip: IpAddr) -> Option<PendingSlot> {
        let key = address_key(ip);
        let mut m = self.pending_per_ip.lock().ok()?;
        let n = m.entry(key).or_insert(0);
        if *n >= self.config.max_pending_per_ip {
            if *n == 0 {
                m.remove(&key);
            }
            return None;
        }
        *n += 1;
        Some(PendingSlot {
            shared: self.clone(),
            key,
        })
    }

    /// Whether the address of `ip` may start another registration now.
    pub fn pending_room(&self, ip: IpAddr) -> bool {
        self.pending_per_ip.lock().is_ok_and(|m| {
            m.get(&address_key(ip)).copied().unwrap_or(0) < self.config.max_pending_per_ip
        })
    }

    /// Whether shutdown has begun.
    pub fn shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }
}

/// A running server.
#[derive(Debug)]
pub struct ServerHandle {
    local_addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    fingerprint: String,
    public_key: [u8; 32],
    notes: Vec<String>,
    first_invite: Option<String>,
    shared: Arc<Shared>,
    executor: Option<Arc<Executor<'static>>>,
    stop: Sender<()>,
    threads: Vec<JoinHandle<()>>,
}

impl ServerHandle {
    /// The address the server listens on.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Where `/metrics` and `/healthz` are served (`--metrics`), if anywhere.
    #[must_use]
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// What the operator must know about admission, for stdout (also in info.log): the
    /// warning that an `open` server on a non-loopback address lets anyone register.
    #[must_use]
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// The first-run operator invite's link (`--registration invite` and no confirmed
    /// account yet): to print on stdout, last.
    #[must_use]
    pub fn first_invite(&self) -> Option<&str> {
        self.first_invite.as_deref()
    }

    /// `SHA256:<base64>` of the static public key.
    #[must_use]
    pub fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    /// The static public key clients pin.
    #[must_use]
    pub fn public_key(&self) -> [u8; 32] {
        self.public_key
    }

    /// Reopens the four log files by name (SIGHUP, after logrotate moved them); returns the
    /// problems, each also reported on stderr (and in `info.log` when it works).
    pub fn reopen_logs(&self) -> Vec<String> {
        self.shared.logs.reopen()
    }

    /// Graceful stop: `Bye` to every client, writer and logs flushed, threads joined.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        let Some(executor) = self.executor.take() else {
            return;
        };
        let shared = &self.shared;
        shared.shutting_down.store(true, Ordering::SeqCst);
        shared.logs.info("shutting down: telling clients");
        shared.chat.close_all(&records::shared(&ServerMsg::Bye {
            reason: "server shutting down",
        }));
        let deadline = Instant::now() + Duration::from_secs(3);
        while shared.active.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.stop.close();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        drop(executor);
        shared.pool.close();
        // Releases this node's rows and lease at once, so other nodes need not wait for it.
        if let Err(e) = smol::block_on(shared.store.leave()) {
            shared.logs.info(format!("database error: {e}"));
        }
        shared.store.close();
        shared.logs.info("server stopped");
        shared.logs.close();
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.stop_now();
    }
}

async fn accept_loop(
    shared: Arc<Shared>,
    listener: Async<std::net::TcpListener>,
    ex: Weak<Executor<'static>>,
) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                shared.logs.info(format!("accept failed: {e}"));
                smol::Timer::after(Duration::from_millis(50)).await;
                continue;
            }
        };
        if shared.shutting_down() {
            continue;
        }
        if shared.active.load(Ordering::SeqCst) >= shared.config.max_connections.saturating_mul(2) {
            // Far over the limit: not even a handshake.
            continue;
        }
        let id = shared.next_conn.fetch_add(1, Ordering::SeqCst) + 1;
        let mailbox = Mailbox::new(shared.config.outbound_queue);
        let guard = shared.admit(peer.ip(), id, mailbox.clone());
        let Some(ex) = ex.upgrade() else { return };
        ex.spawn(crate::conn::run(
            shared.clone(),
            stream,
            peer,
            id,
            guard,
            mailbox,
        ))
        .detach();
    }
}

/// The bus and login throttle: local alone; Redis (both shared) in a cluster.
fn open_bus(
    config: &Config,
    keys: &ServerKeys,
) -> io::Result<(Link, Option<RedisTasks>, IpThrottle)> {
    let limit = config.ip_failures_per_min;
    let Some(url) = &config.bus else {
        return Ok((Link::Local, None, IpThrottle::new(limit)));
    };
    if !matches!(config.database(), Database::Postgres(_)) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "--bus needs a database every node shares (--database postgres://…)",
        ));
    }
    let (link, tasks) = RedisLink::connect(url, keys).map_err(io::Error::other)?;
    let throttle = IpThrottle::shared(limit, tasks.connection());
    Ok((Link::Redis(link), Some(tasks), throttle))
}

/// Renews this node's lease, reaps nodes whose lease expired (their `ONLINE` rows and
/// unconfirmed registrations go; every node forgets their users), and republishes this node's
/// presence now and then so the other nodes' view heals after lost bus messages.
async fn lease_loop(shared: Arc<Shared>) {
    const RESYNC: Duration = Duration::from_secs(10);
    let lease = shared.config.lease;
    let lease_ms = u64::try_from(lease.as_millis()).unwrap_or(u64::MAX);
    let mut last_sync = Instant::now();
    let mut first = true;
    loop {
        // The first renewal at once: the lease written at start is longer than `lease`.
        if !first {
            smol::Timer::after(lease / 3).await;
        }
        first = false;
        if shared.shutting_down() {
            return;
        }
        let now = crate::time::now_ms();
        match shared.store.heartbeat(now.saturating_add(lease_ms)).await {
            Ok(true) => {}
            Ok(false) => {
                restore_online(&shared).await;
                last_sync = Instant::now();
                shared.chat.announce();
            }
            Err(e) => shared
                .logs
                .info(format!("cluster: lease renewal failed: {e}")),
        }
        match shared.store.reap_nodes(now).await {
            Ok(nodes) => {
                for node in nodes {
                    shared.logs.info(format!(
                        "cluster: node {node} missed its lease; its ONLINE rows were removed"
                    ));
                    shared.chat.node_down(node);
                }
            }
            Err(e) => shared.logs.info(format!("cluster: reaping failed: {e}")),
        }
        if last_sync.elapsed() >= RESYNC {
            last_sync = Instant::now();
            shared.chat.announce();
        }
    }
}

/// How far back each poll of `ADMIN_EVENTS` looks (ids already applied are remembered), so a
/// change whose id PostgreSQL commits after a larger one is still seen.
const ADMIN_WINDOW_MS: u64 = 10 * 60 * 1000;

/// Applies administrators' changes (rows of `ADMIN_EVENTS`, written by `chatbox-server user
/// …` on the shared database) to this node's live sessions, looking every `admin_poll`.
/// `seen`: the ids already in the window when the node started (nothing of theirs to apply).
async fn admin_loop(shared: Arc<Shared>, mut seen: HashSet<i64>) {
    let mut failing = false;
    loop {
        smol::Timer::after(shared.config.admin_poll).await;
        if shared.shutting_down() {
            return;
        }
        let since = crate::time::now_ms().saturating_sub(ADMIN_WINDOW_MS);
        match shared.store.admin_events(since).await {
            Ok(rows) => {
                if failing {
                    failing = false;
                    shared
                        .logs
                        .info("admin changes: reading ADMIN_EVENTS works again");
                }
                let ids: HashSet<i64> = rows.iter().map(|r| r.id).collect();
                for ev in rows {
                    if seen.insert(ev.id) {
                        apply_admin(&shared, &ev.user, &ev.action);
                    }
                }
                seen.retain(|id| ids.contains(id));
            }
            Err(e) => {
                // Once per outage, not once per poll.
                if !failing {
                    failing = true;
                    shared.logs.info(format!(
                        "admin changes: reading ADMIN_EVENTS failed: {e} (retrying)"
                    ));
                }
            }
        }
    }
}

/// One administrator's change, on this node's sessions of `user`.
fn apply_admin(shared: &Shared, user: &str, action: &str) {
    let bye = match action {
        "lock" => Some("account locked by an administrator"),
        "delete" => Some("account deleted by an administrator"),
        "reset-otp" => Some("second factor reset by an administrator; log in with the new code"),
        _ => None,
    };
    if let Some(reason) = bye {
        let n = shared
            .chat
            .disconnect_here(user, records::shared(&ServerMsg::Bye { reason }));
        shared.logs.info(format!(
            "admin: {action} {user}: {n} session(s) on this node closed"
        ));
    } else if let Some(role) = action.strip_prefix("role:") {
        let text = format!("an administrator changed your role to {role}");
        shared
            .chat
            .tell_here(user, records::shared(&ServerMsg::Info { text: &text }));
        shared
            .logs
            .info(format!("admin: {user} is now {role} (told on this node)"));
    }
}

/// After a login succeeded: whether an administrator's lock, delete or TOTP reset raced it
/// (written while its password was being checked, so the poller may have looked before the
/// session was registered, and the login's own update cleared a fresh lock). Called once the
/// session is in the hub, so a change committed later is the poller's. A raced lock is written
/// again. `began_ms`: when the login started. Returns the `Bye` reason to close with.
pub async fn admin_raced_login(shared: &Shared, user: &str, began_ms: u64) -> Option<&'static str> {
    const LOCKED: &str = "account locked by an administrator";
    const DELETED: &str = "account deleted by an administrator";
    const RESET: &str = "second factor reset by an administrator; log in with the new code";
    let now = crate::time::now_ms();
    match shared.store.account(user).await {
        Ok(None) => return Some(DELETED),
        // Locked meanwhile, by an administrator or by failures.
        Ok(Some(a)) if a.locked_until > now => return Some("account locked"),
        Ok(Some(_)) => {}
        Err(e) => {
            shared.logs.info(format!("database error: {e}"));
            return None;
        }
    }
    // Only changes written after the login began: one written before it was read by the
    // login itself (a lock refuses it, a new secret is what it was checked against).
    let rows = match shared.store.admin_events(began_ms).await {
        Ok(rows) => rows,
        Err(e) => {
            shared.logs.info(format!("database error: {e}"));
            return None;
        }
    };
    let last = rows.iter().rfind(|ev| {
        ev.user == user
            && ev.time_ms >= began_ms
            && matches!(ev.action.as_str(), "lock" | "unlock" | "reset-otp")
    })?;
    match last.action.as_str() {
        "lock" => {
            let until = now.saturating_add(100 * 365 * 86_400_000);
            if let Err(e) = shared.store.set_lock(user, until).await {
                shared.logs.info(format!("database error: {e}"));
            }
            shared.logs.info(format!(
                "admin: lock {user} raced a login; lock written again, session closed"
            ));
            Some(LOCKED)
        }
        "reset-otp" => {
            shared.logs.info(format!(
                "admin: reset-otp {user} raced a login; session closed"
            ));
            Some(RESET)
        }
        _ => None,
    }
}

/// After other nodes reaped this one while it was alive (a renewal came too late): writes the
/// `ONLINE` rows of its connections again and marks their users online.
async fn restore_online(shared: &Shared) {
    let conns = shared.chat.listed();
    shared.logs.info(format!(
        "cluster: this node's lease had expired and was reaped; restoring {} ONLINE rows",
        conns.len()
    ));
    for (id, ip_port, user) in conns {
        let client_id = user.clone().unwrap_or_else(|| format!("Client{id}"));
        if let Err(e) = shared
            .store
            .online_restore(&client_id, &ip_port, user.as_deref())
            .await
        {
            shared.logs.info(format!("database error: {e}"));
            continue;
        }
        // Closed meanwhile: its own clean-up may have run before the row came back.
        if !shared.chat.contains(id)
            && let Err(e) = shared.store.online_remove(&ip_port).await
        {
            shared.logs.info(format!("database error: {e}"));
        }
    }
}

/// Creates the data and log directories 0700 (and the SQLite file 0600, so its `-wal` and
/// `-shm` are too), and tightens what already exists there with group or other access. Returns
/// what it changed (for `info.log`); an error if something stays readable by others.
fn make_private(config: &Config) -> io::Result<Vec<String>> {
    let mut notes = Vec::new();
    private::create_dir(&config.data_dir)?;
    notes.extend(private::tighten_dir(
        &config.data_dir,
        &["chatbox.db", crate::keys::KEY_FILE, "chat"],
    )?);
    if let Database::Sqlite(db) = config.database() {
        if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
            private::create_dir(dir)?;
        }
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut p = db.clone().into_os_string();
            p.push(suffix);
            notes.extend(private::tighten(std::path::Path::new(&p))?);
        }
        private::create_file(&db)?;
    }
    // The log directory may be impossible to create (the server then runs without logs).
    if config.log_dir.exists() {
        notes.extend(private::tighten_dir(
            &config.log_dir,
            &["chat.log", "info.log", "sql.log", "credentials.log"],
        )?);
    }
    notes.dedup();
    Ok(notes)
}

/// Binds, opens storage and logs, and runs the server on its own threads; returns at once.
pub fn start(config: Config) -> io::Result<ServerHandle> {
    if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&config.pbkdf2_iterations) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("--pbkdf2-iterations must be within {MIN_ITERATIONS}..={MAX_ITERATIONS}"),
        ));
    }
    if config.register_timeout.is_zero() || config.register_timeout > Duration::from_secs(60) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "--register-timeout must be within 1..=60 seconds",
        ));
    }
    let private_notes = make_private(&config)?;
    let keys = ServerKeys::load_or_create(&config.data_dir)?;
    let anchor = config.data_dir.join(anchor_name(
        matches!(config.database(), Database::Postgres(_)).then_some(config.node_id.as_str()),
    ));
    let logs = Logs::open_anchored(&config.log_dir, keys.log_key(), Some(&anchor))?;
    for note in private_notes {
        eprintln!("chatbox-server: {note}");
        logs.info(note);
    }
    logs.info(format!(
        "chatbox-server {} starting (data dir {}, log dir {})",
        env!("CARGO_PKG_VERSION"),
        config.data_dir.display(),
        config.log_dir.display()
    ));
    if config.pbkdf2_iterations < DEFAULT_ITERATIONS {
        logs.info(format!(
            "warning: {} PBKDF2 iterations is below the recommended {DEFAULT_ITERATIONS}",
            config.pbkdf2_iterations
        ));
    }
    let fail = |logs: &Logs, e: io::Error| {
        logs.info(format!("start failed: {e}"));
        logs.close();
        e
    };
    let metrics = if config.metrics.is_some() {
        Metrics::new(config.bus.is_some())
    } else {
        Metrics::off()
    };
    let opened = Store::open_with_metrics(
        &config.database(),
        &config.node_id,
        logs.clone(),
        metrics.clone(),
    );
    let (store, startup) = match opened {
        Ok(x) => x,
        Err(e) => return Err(fail(&logs, io::Error::other(e.to_string()))),
    };
    // Administrators' changes already written: applied to nobody (no session predates them).
    let since = crate::time::now_ms().saturating_sub(ADMIN_WINDOW_MS);
    let admin_seen: HashSet<i64> = match smol::block_on(store.admin_events(since)) {
        Ok(rows) => rows.into_iter().map(|r| r.id).collect(),
        Err(e) => {
            store.close();
            return Err(fail(&logs, io::Error::other(e.to_string())));
        }
    };
    let (link, bus_tasks, ip_throttle) = match open_bus(&config, &keys) {
        Ok(x) => x,
        Err(e) => {
            store.close();
            return Err(fail(&logs, e));
        }
    };
    let listener = match std::net::TcpListener::bind(config.listen) {
        Ok(l) => l,
        Err(e) => {
            store.close();
            return Err(fail(&logs, e));
        }
    };
    let metrics_listener = match config.metrics.map(metrics::bind).transpose() {
        Ok(l) => l,
        Err(e) => {
            store.close();
            return Err(fail(&logs, e));
        }
    };
    let metrics_addr = match &metrics_listener {
        Some(l) => Some(l.get_ref().local_addr()?),
        None => None,
    };
    let local_addr = listener.local_addr()?;
    let listener = Async::new(listener)?;
    let pool = HashPool::new(config.pool_limits())?;
    let attempts = Attempts::new(config.failure_keys, config.remember_logins);
    let fingerprint = keys.fingerprint();
    let public_key = keys.static_key.public();
    // `--motd` and what an older version stored are cleaned like any text typed now.
    let store = Arc::new(store);
    let chat = Chat::new(
        &config,
        startup,
        store.clone(),
        logs.clone(),
        metrics.clone(),
        link,
    );
    let shared = Arc::new(Shared {
        ip_throttle,
        attempts,
        chat,
        node: config.node_id.clone(),
        metrics,
        config,
        keys: Arc::new(keys),
        logs,
        store,
        pool,
        next_conn: AtomicU64::new(0),
        active: AtomicUsize::new(0),
        per_ip: Mutex::new(HashMap::new()),
        anonymous: Mutex::new(Anonymous::default()),
        pending_per_ip: Mutex::new(HashMap::new()),
        shutting_down: AtomicBool::new(false),
    });
    shared.logs.info(format!("listening on {local_addr}"));
    if let Some(a) = metrics_addr {
        shared
            .logs
            .info(format!("metrics on http://{a}/metrics and /healthz"));
    }
    shared
        .logs
        .info(format!("server key fingerprint {fingerprint}"));
    let executor = Arc::new(Executor::new());
    let (stop, stop_rx) = channel::bounded::<()>(1);
    executor
        .spawn(accept_loop(
            shared.clone(),
            listener,
            Arc::downgrade(&executor),
        ))
        .detach();
    if let Some(l) = metrics_listener {
        executor
            .spawn(metrics::serve(shared.clone(), l, Arc::downgrade(&executor)))
            .detach();
    }
    executor
        .spawn(admin_loop(shared.clone(), admin_seen))
        .detach();
    let bus_ready = bus_tasks.map(|tasks| {
        let (ready, ready_rx) = channel::bounded::<()>(1);
        executor
            .spawn(RedisTasks::subscriber(
                tasks.client(),
                shared.chat.bus(),
                shared.keys.clone(),
                ready,
            ))
            .detach();
        executor.spawn(tasks.publisher(shared.chat.bus())).detach();
        executor.spawn(lease_loop(shared.clone())).detach();
        ready_rx
    });
    let threads_n = shared.config.executor_threads();
    let mut threads = Vec::with_capacity(threads_n);
    for i in 0..threads_n {
        let ex = executor.clone();
        let rx = stop_rx.clone();
        threads.push(
            std::thread::Builder::new()
                .name(format!("chatbox-exec-{i}"))
                .spawn(move || {
                    let _ = smol::block_on(ex.run(rx.recv()));
                })?,
        );
    }
    if let Some(ready) = bus_ready {
        // Accept only once this node hears the bus (or after 5 s, saying so).
        let heard = smol::block_on(smol::future::or(
            async { ready.recv().await.is_ok() },
            async {
                smol::Timer::after(Duration::from_secs(5)).await;
                false
            },
        ));
        if !heard {
            shared
                .logs
                .info("cluster: not subscribed to the bus after 5 s; serving and retrying");
        }
    }
    let (notes, first_invite) = smol::block_on(admission_notes(&shared, local_addr));
    Ok(ServerHandle {
        local_addr,
        metrics_addr,
        fingerprint,
        public_key,
        notes,
        first_invite,
        shared,
        executor: Some(executor),
        stop,
        threads,
    })
}

/// The admission notes at start: the `open`-on-a-public-address warning, and the first-run
/// operator invite (created when invites are required and no account is confirmed yet).
async fn admission_notes(shared: &Shared, local: SocketAddr) -> (Vec<String>, Option<String>) {
    use crate::invite::{CreateOpts, Registration, create, listen_host_port};
    let mut notes = Vec::new();
    let config = &shared.config;
    if config.registration == Registration::Open && !local.ip().is_loopback() {
        let w = format!(
            "warning: registration is open and the server listens on {local}: anyone who can reach it can register. Start with --registration invite (CHATBOX_REGISTRATION=invite) to require invites (chatbox-server invite create)."
        );
        shared.logs.info(w.clone());
        notes.push(w);
    }
    if config.registration != Registration::Invite {
        return (notes, None);
    }
    match shared.store.confirmed_accounts().await {
        Ok(0) => {}
        Ok(_) => return (notes, None),
        Err(e) => {
            shared.logs.info(format!("first-run invite: {e}"));
            return (notes, None);
        }
    }
    let opts = CreateOpts {
        uses: 1,
        expires: Duration::from_secs(7 * 86_400),
        role: "op".to_owned(),
        note: "first-run operator invite".to_owned(),
        server: config
            .public_address
            .clone()
            .unwrap_or_else(|| listen_host_port(local)),
    };
    match create(&shared.store, &shared.keys, &opts).await {
        Ok((id, link)) => {
            shared.logs.info(format!(
                "no confirmed account and registration by invite: created first-run operator invite {id} (1 use, 7 days; link on stdout)"
            ));
            shared.logs.credentials(format!(
                "invite created invite={id} role=op uses=1 (first run)"
            ));
            notes.push(
                "No account yet: register the first operator with this invite (1 use, 7 days): chatbox-client register --invite LINK --user NAME"
                    .to_owned(),
            );
            (notes, Some(link.to_string()))
        }
        Err(e) => {
            shared.logs.info(format!("first-run invite: {e:#}"));
            (notes, None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Anonymous, Mailbox, address_key, prefix_key};
    use core::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|_| unreachable!())
    }

    #[test]
    fn addresses_group_by_v4_address_and_v6_64_prefixes_by_v4_24_and_v6_48() {
        assert_eq!(address_key(ip("10.1.2.3")), ip("10.1.2.3"));
        assert_eq!(address_key(ip("::ffff:10.1.2.3")), ip("10.1.2.3"));
        assert_eq!(
            address_key(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")),
            ip("2001:db8:1:2::")
        );
        assert_eq!(prefix_key(ip("10.1.2.3")), ip("10.1.2.0"));
        assert_eq!(prefix_key(ip("2001:db8:1:2:3::4")), ip("2001:db8:1::"));
        assert_ne!(
            address_key(ip("2001:db8:1:2::1")),
            address_key(ip("2001:db8:1:3::1"))
        );
    }

    #[test]
    fn the_victim_is_the_oldest_of_the_biggest_holder_never_a_newcomer_on_a_tie() {
        let mut a = Anonymous::default();
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
