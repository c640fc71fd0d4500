//! Start-up, the accept loop, shared state and graceful shutdown.

use core::net::{IpAddr, SocketAddr};
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use core::time::Duration;
use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::Instant;

use chatbox_core::password::{DEFAULT_ITERATIONS, MAX_ITERATIONS, MIN_ITERATIONS};
use chatbox_core::proto::ServerMsg;
use smol::channel::{self, Sender};
use smol::{Async, Executor};

use crate::auth::pool::HashPool;
use crate::auth::throttle::IpThrottle;
use crate::chat::bus::{Bus, EventKind, RedisBus, RedisTasks};
use crate::chat::hub::Hub;
use crate::chat::records;
use crate::config::Config;
use crate::keys::ServerKeys;
use crate::logs::Logs;
use crate::metrics::{self, Metrics};
use crate::store::{Database, Store};

/// State every connection task shares.
#[derive(Debug)]
pub struct Shared {
    /// Settings.
    pub config: Config,
    /// Server key and derived keys.
    pub keys: ServerKeys,
    /// Log files.
    pub logs: Logs,
    /// Database.
    pub store: Store,
    /// Rooms and fan-out on this node.
    pub hub: Hub,
    /// How events reach the hubs of every node.
    pub bus: Bus,
    /// This node's id in a cluster (`local` alone).
    pub node: String,
    /// Password hashing pool.
    pub pool: HashPool,
    /// Failed logins per IP.
    pub ip_throttle: IpThrottle,
    /// Mutes in force: user → until (ms, 0 = until unmuted).
    pub mutes: Mutex<HashMap<String, u64>>,
    /// Current MOTD.
    pub motd: Mutex<String>,
    /// Prometheus metrics (a no-op without `--metrics`).
    pub metrics: Metrics,
    next_conn: AtomicU64,
    active: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    shutting_down: AtomicBool,
}

/// Counts a connection while it lives.
#[derive(Debug)]
pub struct ConnGuard {
    shared: Arc<Shared>,
    ip: IpAddr,
    /// Over a limit: answer `ServerFull` after the handshake, then close.
    pub refuse: bool,
    /// Whether the connection had logged in (which `chatbox_connections` state it leaves).
    pub authenticated: bool,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.shared.metrics.conn_closed(self.authenticated);
        self.shared.active.fetch_sub(1, Ordering::SeqCst);
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

impl Shared {
    fn admit(self: &Arc<Self>, ip: IpAddr) -> ConnGuard {
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
        ConnGuard {
            shared: self.clone(),
            ip,
            refuse: total > self.config.max_connections
                || from_ip > self.config.max_per_ip
                || self.shutting_down.load(Ordering::SeqCst),
            authenticated: false,
        }
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
        shared.hub.close_all(&records::shared(&ServerMsg::Bye {
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
        let guard = shared.admit(peer.ip());
        let id = shared.next_conn.fetch_add(1, Ordering::SeqCst) + 1;
        let Some(ex) = ex.upgrade() else { return };
        ex.spawn(crate::conn::run(shared.clone(), stream, peer, id, guard))
            .detach();
    }
}

/// The bus and login throttle: local alone; Redis (both shared) in a cluster.
fn open_bus(
    config: &Config,
    keys: &ServerKeys,
) -> io::Result<(Bus, Option<RedisTasks>, IpThrottle)> {
    let limit = config.ip_failures_per_min;
    let Some(url) = &config.bus else {
        return Ok((Bus::Local, None, IpThrottle::new(limit)));
    };
    if !matches!(config.database(), Database::Postgres(_)) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "--bus needs a database every node shares (--database postgres://…)",
        ));
    }
    let (bus, tasks) = RedisBus::connect(url, keys).map_err(io::Error::other)?;
    let throttle = IpThrottle::shared(limit, tasks.connection());
    Ok((Bus::Redis(bus), Some(tasks), throttle))
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
                let snap = shared.hub.local_snapshot();
                shared.bus.publish(&shared, EventKind::Snapshot(snap));
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
                    shared.bus.publish(&shared, EventKind::NodeDown { node });
                }
            }
            Err(e) => shared.logs.info(format!("cluster: reaping failed: {e}")),
        }
        if last_sync.elapsed() >= RESYNC {
            last_sync = Instant::now();
            let snap = shared.hub.local_snapshot();
            shared.bus.publish(&shared, EventKind::Snapshot(snap));
        }
    }
}

/// After other nodes reaped this one while it was alive (a renewal came too late): writes the
/// `ONLINE` rows of its connections again and marks their users online.
async fn restore_online(shared: &Shared) {
    let conns = shared.hub.listed();
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
        if !shared.hub.contains(id)
            && let Err(e) = shared.store.online_remove(&ip_port).await
        {
            shared.logs.info(format!("database error: {e}"));
        }
    }
}

/// Binds, opens storage and logs, and runs the server on its own threads; returns at once.
pub fn start(config: Config) -> io::Result<ServerHandle> {
    if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&config.pbkdf2_iterations) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("--pbkdf2-iterations must be within {MIN_ITERATIONS}..={MAX_ITERATIONS}"),
        ));
    }
    std::fs::create_dir_all(&config.data_dir)?;
    let keys = ServerKeys::load_or_create(&config.data_dir)?;
    let logs = Logs::open(&config.log_dir, keys.log_key())?;
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
    let (bus, bus_tasks, ip_throttle) = match open_bus(&config, &keys) {
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
    let workers = config.workers();
    let queue = if config.hash_queue > 0 {
        config.hash_queue
    } else {
        workers * 2
    };
    let pool = HashPool::new(workers, queue)?;
    let fingerprint = keys.fingerprint();
    let public_key = keys.static_key.public();
    let motd = startup.motd.unwrap_or_else(|| config.motd.clone());
    let shared = Arc::new(Shared {
        ip_throttle,
        hub: Hub::new(startup.topics),
        bus,
        node: config.node_id.clone(),
        mutes: Mutex::new(startup.mutes.into_iter().collect()),
        motd: Mutex::new(motd),
        metrics,
        config,
        keys,
        logs,
        store,
        pool,
        next_conn: AtomicU64::new(0),
        active: AtomicUsize::new(0),
        per_ip: Mutex::new(HashMap::new()),
        shutting_down: AtomicBool::new(false),
    });
    shared.hub.set_metrics(shared.metrics.clone());
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
    let bus_ready = bus_tasks.map(|tasks| {
        let (ready, ready_rx) = channel::bounded::<()>(1);
        executor
            .spawn(RedisTasks::subscriber(
                tasks.client(),
                shared.clone(),
                ready,
            ))
            .detach();
        executor.spawn(tasks.publisher(shared.clone())).detach();
        executor.spawn(lease_loop(shared.clone())).detach();
        ready_rx
    });
    let threads_n = std::thread::available_parallelism().map_or(2, usize::from);
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
    Ok(ServerHandle {
        local_addr,
        metrics_addr,
        fingerprint,
        public_key,
        shared,
        executor: Some(executor),
        stop,
        threads,
    })
}
