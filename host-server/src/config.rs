//! Server settings: everything the command line (or a test) can change.

use core::net::{Ipv4Addr, SocketAddr};
use core::time::Duration;
use std::path::{Path, PathBuf};

use crate::store::{Database, valid_node_id};

/// The server's settings. [`Config::new`] gives the production defaults, [`Config::for_tests`]
/// a fast set-up on an ephemeral port.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on (`127.0.0.1:6001` by default).
    pub listen: SocketAddr,
    /// Directory of `server.key` (and of `chatbox.db` unless `database` says otherwise).
    pub data_dir: PathBuf,
    /// Where the data lives; `None`: `chatbox.db` in `data_dir` (see [`Config::database`]).
    pub database: Option<Database>,
    /// This node's id in a shared database (its `ONLINE` rows and lease).
    pub node_id: String,
    /// The cluster bus (`redis://…`); `None`: this node is alone.
    pub bus: Option<String>,
    /// How long a node's lease lasts without renewal (renewed every third of it); other nodes
    /// clean up after a node whose lease expired.
    pub lease: Duration,
    /// Directory of `sql.log`, `info.log`, `credentials.log`, `chat.log`.
    pub log_dir: PathBuf,
    /// PBKDF2 iterations for new password hashes (at least 10 000).
    pub pbkdf2_iterations: u32,
    /// Issuer shown by authenticator apps.
    pub issuer: String,
    /// Message of the day sent in `LoginOk` (an operator's `SetMotd` overrides it).
    pub motd: String,
    /// Most simultaneous connections.
    pub max_connections: usize,
    /// Most simultaneous connections from one IP address.
    pub max_per_ip: usize,
    /// Time allowed for the Noise handshake.
    pub handshake_timeout: Duration,
    /// Time an anonymous connection may stay without logging in (the overall cap, whatever it
    /// does meanwhile).
    pub login_timeout: Duration,
    /// Time a connection that has not logged in may stay without logging in or starting a
    /// registration (counted from its handshake, and again after a completed registration).
    pub anonymous_timeout: Duration,
    /// Most connections not logged in at once, as a share of `max_connections` in percent
    /// (1-100). At the cap, a new connection evicts the oldest anonymous connection of the
    /// address (IPv4 /32, IPv6 /64) holding the most, within the prefix (IPv4 /24, IPv6 /48)
    /// holding the most.
    pub anonymous_share: u8,
    /// Time allowed between `RegisterStarted` and the confirmation code (at most 60 s); then
    /// the pending name is released and the connection closed.
    pub register_timeout: Duration,
    /// Unconfirmed registrations one address (IPv4 /32, IPv6 /64) may hold at once.
    pub max_pending_per_ip: usize,
    /// How often the server looks for administrators' changes (role, lock, delete, reset-otp)
    /// in the database and applies them to its live sessions.
    pub admin_poll: Duration,
    /// A logged-in connection silent for longer is closed.
    pub idle_timeout: Duration,
    /// A write to a client that takes longer closes the connection.
    pub write_timeout: Duration,
    /// Token bucket: messages per second refilled.
    pub rate_per_sec: f64,
    /// Token bucket: burst size.
    pub rate_burst: f64,
    /// Rate-limit warnings before the connection is closed.
    pub rate_violations: u32,
    /// Login attempts per minute from one address (failed, or answered `Busy`) before further
    /// attempts are refused.
    pub ip_failures_per_min: u32,
    /// Consecutive wrong codes after the right password (TOTP brute force) that lock an
    /// account; wrong passwords never count toward it.
    pub lock_after: u32,
    /// How long a lock lasts.
    pub lock_duration: Duration,
    /// Base of the delay before answering a failed login: doubled per failure level (the most
    /// of the address's failures, the (name, address) pair's and the name's / 8), ≤ 2 s.
    pub failure_delay: Duration,
    /// Wrong confirmation codes allowed during a registration.
    pub register_tries: u32,
    /// Capacity of each connection's outbound queue, in records.
    pub outbound_queue: usize,
    /// Executor threads running the connections' tasks (0 = one per core, the default). One
    /// thread keeps the server on one core (bench/run's pinned variant).
    pub threads: usize,
    /// Password hashing threads (0 = one per core).
    pub hash_workers: usize,
    /// Password hashing jobs waiting at most (0 = twice the workers).
    pub hash_queue: usize,
    /// Where to serve `/metrics` and `/healthz`; `None`: no metrics (the default).
    pub metrics: Option<SocketAddr>,
    /// Password hashing jobs waiting per address at most (0 = the whole queue: one address
    /// alone may fill it, and gives places back as other addresses arrive).
    pub hash_queue_per_address: usize,
    /// Places in the hashing pool reserved for logins of a user from an address it logged in
    /// from before (0 = one per worker).
    pub hash_reserved: usize,
    /// Prefix length of one IPv4 "address" for the login limits (32: one host).
    pub address_prefix_v4: u8,
    /// Prefix length of one IPv6 "address" for the login limits (64: one subnet).
    pub address_prefix_v6: u8,
    /// Prefix length of an IPv4 network sharing the hashing queue fairly with the others.
    pub aggregate_prefix_v4: u8,
    /// Prefix length of an IPv6 network sharing the hashing queue fairly with the others.
    pub aggregate_prefix_v6: u8,
    /// Keys kept at most in each in-memory failure count (per address, per (name, address),
    /// per name).
    pub failure_keys: usize,
    /// (user, address) pairs of successful logins remembered at most.
    pub remember_logins: usize,
    /// Rooms one user may be in at once, over all its connections (`#lobby` included).
    pub max_rooms_per_user: usize,
    /// Private messages stored for an offline recipient from one sender, until the recipient
    /// has been online again.
    pub max_offline_per_sender: u32,
    /// Who may register: `open` (anyone) or `invite` (a valid invite needed).
    pub registration: crate::invite::Registration,
    /// `HOST:PORT` users connect to, for the first-run invite's link (None: the listen address).
    pub public_address: Option<(String, u16)>,
}

impl Config {
    /// Production defaults, relative to the working directory.
    #[must_use]
    pub fn new() -> Config {
        let listen = SocketAddr::from((Ipv4Addr::LOCALHOST, 6001));
        Config {
            listen,
            data_dir: PathBuf::from("data"),
            database: None,
            node_id: default_node_id(&listen),
            bus: None,
            lease: Duration::from_secs(10),
            log_dir: PathBuf::from("log"),
            pbkdf2_iterations: chatbox_core::password::DEFAULT_ITERATIONS,
            issuer: "ChatBox".to_owned(),
            motd: "Welcome to ChatBox. Type /help for the commands.".to_owned(),
            max_connections: 1024,
            max_per_ip: 32,
            handshake_timeout: Duration::from_secs(10),
            login_timeout: Duration::from_secs(120),
            anonymous_timeout: Duration::from_secs(20),
            anonymous_share: 25,
            register_timeout: Duration::from_secs(60),
            max_pending_per_ip: 3,
            admin_poll: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(300),
            write_timeout: Duration::from_secs(10),
            rate_per_sec: 20.0,
            rate_burst: 40.0,
            rate_violations: 5,
            ip_failures_per_min: 5,
            lock_after: 10,
            lock_duration: Duration::from_secs(15 * 60),
            failure_delay: Duration::from_millis(100),
            register_tries: 5,
            outbound_queue: 512,
            threads: 0,
            hash_workers: 0,
            hash_queue: 0,
            metrics: None,
            hash_queue_per_address: 0,
            hash_reserved: 0,
            address_prefix_v4: 32,
            address_prefix_v6: 64,
            aggregate_prefix_v4: 24,
            aggregate_prefix_v6: 48,
            failure_keys: 100_000,
            remember_logins: 10_000,
            max_rooms_per_user: 32,
            max_offline_per_sender: 100,
            registration: crate::invite::Registration::Open,
            public_address: None,
        }
    }

    /// A fast set-up for tests: `127.0.0.1:0`, `dir/data`, `dir/log`, 10 000 iterations, no
    /// failure delay, no separate anonymous cap (100 %) and 32 pending registrations per
    /// address (tests of those limits set their own).
    #[must_use]
    pub fn for_tests(dir: &Path) -> Config {
        Config {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            data_dir: dir.join("data"),
            log_dir: dir.join("log"),
            pbkdf2_iterations: chatbox_core::password::MIN_ITERATIONS,
            failure_delay: Duration::ZERO,
            anonymous_share: 100,
            max_pending_per_ip: 32,
            threads: 0,
            ..Config::new()
        }
    }

    /// The database to open: `database`, or `chatbox.db` in `data_dir`.
    #[must_use]
    pub fn database(&self) -> Database {
        self.database
            .clone()
            .unwrap_or_else(|| Database::default_in(&self.data_dir))
    }

    /// Most connections not logged in at once: `anonymous_share` % of `max_connections`, at
    /// least 1.
    #[must_use]
    pub fn max_anonymous(&self) -> usize {
        let share = usize::from(self.anonymous_share.clamp(1, 100));
        (self.max_connections.saturating_mul(share) / 100).max(1)
    }

    /// How many executor threads the server runs: `threads`, or one per core (2 if unknown).
    #[must_use]
    pub fn executor_threads(&self) -> usize {
        if self.threads > 0 {
            self.threads
        } else {
            std::thread::available_parallelism().map_or(2, usize::from)
        }
    }

    pub(crate) fn workers(&self) -> usize {
        if self.hash_workers > 0 {
            self.hash_workers
        } else {
            std::thread::available_parallelism().map_or(2, usize::from)
        }
    }

    pub(crate) fn pool_limits(&self) -> crate::auth::pool::Limits {
        let workers = self.workers();
        let queue = if self.hash_queue > 0 {
            self.hash_queue
        } else {
            workers * 2
        };
        crate::auth::pool::Limits {
            workers,
            queue,
            per_address: if self.hash_queue_per_address > 0 {
                self.hash_queue_per_address
            } else {
                queue
            },
            reserved: if self.hash_reserved > 0 {
                self.hash_reserved
            } else {
                workers
            },
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::new()
    }
}

/// The default node id: the host name (or `node`) and the listen port, e.g. `host:6001`
/// (`host:0-PID` for port 0).
#[must_use]
pub fn default_node_id(listen: &SocketAddr) -> String {
    let host = ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|f| std::fs::read_to_string(f).ok())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let host: String = host
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        .take(48)
        .collect();
    let host = if host.is_empty() {
        "node"
    } else {
        host.as_str()
    };
    // Port 0 (any free port) says nothing about the node: the process id keeps it apart.
    let id = match listen.port() {
        0 => format!("{host}:0-{}", std::process::id()),
        port => format!("{host}:{port}"),
    };
    if valid_node_id(&id) {
        id
    } else {
        format!("node:{}", listen.port())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn default_node_id_is_valid_and_names_the_port() {
        let id =
            super::default_node_id(&"127.0.0.1:6001".parse().unwrap_or_else(|_| unreachable!()));
        assert!(crate::store::valid_node_id(&id), "{id}");
        assert!(id.ends_with(":6001"), "{id}");
    }
}
