//! `chatbox-server`: serve (default), `user …` administration, `verify-log`, `backup`,
//! `config check`.

use core::net::SocketAddr;
use core::time::Duration;
use std::ffi::OsString;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use chatbox_server::admin::{self, Action};
use chatbox_server::invite::{self, CreateOpts, InviteAction, Registration};
use chatbox_server::logs::{Anchor, AnchorCheck, Verdict, anchor_name, verify_chat_logs};
use chatbox_server::settings::{self, FileValues};
use chatbox_server::store::{Database, valid_node_id};
use chatbox_server::{Config, keys::ServerKeys};
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "chatbox-server",
    version,
    about = "ChatBox server",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    serve: ServeArgs,
}

// Parsed once at start: the size of the `serve` flags does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the server (the default).
    Serve(Box<ServeArgs>),
    /// Account administration on the database.
    User {
        #[command(subcommand)]
        action: UserCmd,
        /// Data directory (chatbox.db, server.key).
        #[arg(long, env = "CHATBOX_DATA_DIR", default_value = "data", global = true)]
        data_dir: PathBuf,
        /// Database: postgres://USER@HOST/DB, sqlite://PATH or a file path [default: DATA_DIR/chatbox.db].
        #[arg(long, env = "CHATBOX_DATABASE", hide_env_values = true, global = true)]
        database: Option<String>,
        /// Issuer in otpauth URIs (reset-otp).
        #[arg(long, default_value = "ChatBox", global = true)]
        issuer: String,
    },
    /// Configuration file: check it and print every setting with where it came from.
    Config {
        #[command(subcommand)]
        action: ConfigCmd,
    },
    /// Consistent copy of the SQLite database (safe while the server runs), mode 0600, checked.
    Backup {
        /// The new file to write (never overwritten if it exists).
        out: PathBuf,
        /// Data directory (chatbox.db).
        #[arg(long, env = "CHATBOX_DATA_DIR", default_value = "data")]
        data_dir: PathBuf,
        /// Database: sqlite://PATH or a file path [default: DATA_DIR/chatbox.db] (PostgreSQL: use pg_dump).
        #[arg(long, env = "CHATBOX_DATABASE", hide_env_values = true)]
        database: Option<String>,
    },
    /// Invites on the database (server running or not): create, list, revoke.
    Invite {
        #[command(subcommand)]
        action: InviteCmd,
        /// The server's TOML configuration file: its `data-dir`, `database` and `listen` apply
        /// unless given here or in the environment.
        // Ids of their own: the top level's flattened serve flags of the same names have
        // defaults that would otherwise be propagated into these.
        #[arg(
            long = "config",
            id = "invite_config",
            env = "CHATBOX_CONFIG",
            global = true
        )]
        config: Option<PathBuf>,
        /// Data directory (chatbox.db, server.key) [default: data].
        #[arg(
            long = "data-dir",
            id = "invite_data_dir",
            env = "CHATBOX_DATA_DIR",
            global = true
        )]
        data_dir: Option<PathBuf>,
        /// Database: postgres://USER@HOST/DB, sqlite://PATH or a file path [default: DATA_DIR/chatbox.db].
        #[arg(
            long = "database",
            id = "invite_database",
            env = "CHATBOX_DATABASE",
            hide_env_values = true,
            global = true
        )]
        database: Option<String>,
    },
    /// Check the HMAC chain of chat logs (several files: one chain, oldest first, e.g.
    /// chat.log.1 chat.log) and the end of the last against the anchor in the data directory;
    /// exit 0 only if every line verifies and no anchored line is missing.
    VerifyLog {
        /// The chat log files to check, in chain order (the current chat.log last).
        #[arg(required = true, num_args = 1..)]
        files: Vec<PathBuf>,
        /// Data directory holding server.key (and the anchor chat.anchor).
        #[arg(long, env = "CHATBOX_DATA_DIR", default_value = "data")]
        data_dir: PathBuf,
        /// The node whose anchor to use (chat.NODE.anchor, for nodes on a shared database).
        #[arg(long)]
        node_id: Option<String>,
        /// Check the chain only, not its end (for a copy of an older log).
        #[arg(long)]
        no_anchor: bool,
    },
}

#[derive(Subcommand, Debug)]
enum ConfigCmd {
    /// Validate the configuration (file, environment, these flags) and print the effective
    /// settings with their sources; passwords in URLs masked.
    Check(ServeArgs),
}

#[derive(Subcommand, Debug)]
enum UserCmd {
    /// List accounts.
    List,
    /// Show one account.
    Show { user: String },
    /// Lock an account until unlocked.
    Lock { user: String },
    /// Unlock an account.
    Unlock { user: String },
    /// Delete an account.
    Delete { user: String },
    /// New TOTP secret (prints the otpauth URI once).
    ResetOtp { user: String },
    /// Set the role: op or user.
    Role { user: String, role: String },
}

#[derive(Subcommand, Debug)]
enum InviteCmd {
    /// Create an invite; the last line of stdout is its link.
    Create {
        /// How many registrations it admits.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        uses: u32,
        /// Lifetime: 30m, 12h, 7d, or seconds.
        #[arg(long, default_value = "7d", value_parser = invite::parse_duration)]
        expires: Duration,
        /// Role of the accounts it makes: user or op.
        #[arg(long, default_value = "user", value_parser = ["user", "op"])]
        role: String,
        /// A note for `invite list`.
        #[arg(long, default_value = "")]
        note: String,
        /// HOST:PORT users connect to [default: the listen address].
        #[arg(long, value_parser = invite::parse_server)]
        server: Option<(String, u16)>,
        /// The server's listen address (the link's default address) [default: 127.0.0.1:6001].
        #[arg(long, env = "CHATBOX_LISTEN")]
        listen: Option<SocketAddr>,
        /// Also draw the link as a QR code (above the link).
        #[arg(long)]
        qr: bool,
    },
    /// List invites: id, uses left, expiry, role, note, created (never the token).
    List,
    /// Revoke an invite by id.
    Revoke {
        /// The invite's id (from `invite list`).
        id: i64,
    },
}

#[derive(Args, Debug, Clone)]
struct ServeArgs {
    /// TOML configuration file; its keys are these flags' long names (`max-per-ip = 16`). The
    /// command line and the environment override it.
    #[arg(long, env = "CHATBOX_CONFIG")]
    config: Option<PathBuf>,
    /// Serve Prometheus /metrics and /healthz on this address (a bare port: 127.0.0.1:PORT) [default: off].
    #[arg(long, env = "CHATBOX_METRICS", value_parser = parse_metrics_addr)]
    metrics: Option<SocketAddr>,
    /// Address to listen on.
    #[arg(long, env = "CHATBOX_LISTEN", default_value = "127.0.0.1:6001")]
    listen: SocketAddr,
    /// Data directory (chatbox.db, server.key).
    #[arg(long, env = "CHATBOX_DATA_DIR", default_value = "data")]
    data_dir: PathBuf,
    /// Log directory.
    #[arg(long, env = "CHATBOX_LOG_DIR", default_value = "log")]
    log_dir: PathBuf,
    /// Database: postgres://USER@HOST/DB (shared by several nodes), sqlite://PATH or a file path [default: DATA_DIR/chatbox.db].
    #[arg(long, env = "CHATBOX_DATABASE", hide_env_values = true)]
    database: Option<String>,
    /// This node's id in a shared database: 1-64 of A-Z a-z 0-9 _ . : - [default: HOSTNAME:PORT].
    #[arg(long, env = "CHATBOX_NODE_ID", value_parser = parse_node_id)]
    node_id: Option<String>,
    /// Cluster bus: redis://HOST:PORT (needs a shared --database); nodes must share server.key.
    #[arg(long, env = "CHATBOX_BUS", hide_env_values = true)]
    bus: Option<String>,
    /// Seconds a node's lease lasts; the other nodes clean up after a node silent that long.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(2..=3600))]
    lease_secs: u64,
    /// PBKDF2 iterations for new password hashes (min 10000).
    #[arg(long, env = "CHATBOX_PBKDF2_ITERATIONS", default_value_t = 600_000, value_parser = clap::value_parser!(u32).range(10_000..=10_000_000))]
    pbkdf2_iterations: u32,
    /// Issuer shown by authenticator apps.
    #[arg(long, default_value = "ChatBox")]
    issuer: String,
    /// Message of the day (an operator's /motd overrides it).
    #[arg(long)]
    motd: Option<String>,
    /// Most simultaneous connections.
    #[arg(long, default_value_t = 1024)]
    max_connections: usize,
    /// Most simultaneous connections per IP.
    #[arg(long, default_value_t = 32)]
    max_per_ip: usize,
    /// Messages per second allowed per connection (token bucket refill).
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    /// Burst size of the token bucket.
    #[arg(long, default_value_t = 40.0)]
    burst: f64,
    /// Rate-limit warnings before disconnecting.
    #[arg(long, default_value_t = 5)]
    rate_violations: u32,
    /// Login attempts per minute per address (failed, or answered busy) before refusing.
    #[arg(long, default_value_t = 5)]
    ip_failures_per_min: u32,
    /// Consecutive wrong codes after the right password that lock an account (wrong passwords only slow their sender).
    #[arg(long, default_value_t = 10)]
    lock_after: u32,
    /// Lock duration in seconds.
    #[arg(long, default_value_t = 900)]
    lock_secs: u64,
    /// Base delay in ms before a failed login is answered (doubles with the failures of the
    /// address, of the (name, address) pair, and one eighth of the name's; at most 2 s).
    #[arg(long, default_value_t = 100)]
    failure_delay_ms: u64,
    /// Executor threads serving the connections (0 = one per core).
    #[arg(long, env = "CHATBOX_THREADS", default_value_t = 0, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(0..=1024))]
    threads: usize,
    /// Password hashing threads (0 = one per core).
    #[arg(long, default_value_t = 0)]
    hash_workers: usize,
    /// Password hashing jobs waiting at most (0 = twice the workers).
    #[arg(long, default_value_t = 0)]
    hash_queue: usize,
    /// Password hashing jobs waiting per address at most (0 = the whole queue; other addresses still push them out as they arrive).
    #[arg(long, default_value_t = 0)]
    hash_queue_per_address: usize,
    /// Hashing places reserved for users logging in from an address they logged in from before (0 = one per worker).
    #[arg(long, default_value_t = 0)]
    hash_reserved: usize,
    /// Prefix length that makes one IPv4 address for the login limits.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u8).range(8..=32))]
    address_prefix_v4: u8,
    /// Prefix length that makes one IPv6 address for the login limits.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u8).range(16..=128))]
    address_prefix_v6: u8,
    /// Prefix length of an IPv4 network that shares the hashing queue fairly with the others.
    #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u8).range(0..=32))]
    aggregate_prefix_v4: u8,
    /// Prefix length of an IPv6 network that shares the hashing queue fairly with the others.
    #[arg(long, default_value_t = 48, value_parser = clap::value_parser!(u8).range(0..=128))]
    aggregate_prefix_v6: u8,
    /// Keys kept at most in each in-memory login failure count.
    #[arg(long, default_value_t = 100_000, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    failure_keys: usize,
    /// (user, address) pairs of successful logins remembered at most (they get the reserved hashing share).
    #[arg(long, default_value_t = 10_000)]
    remember_logins: usize,
    /// Seconds an anonymous connection may stay without logging in.
    #[arg(long, default_value_t = 120)]
    login_timeout: u64,
    /// Seconds a connection not logged in may stay without logging in or starting a registration.
    #[arg(long, env = "CHATBOX_ANONYMOUS_TIMEOUT", default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=3600))]
    anonymous_timeout: u64,
    /// Most connections not logged in, in percent of --max-connections (at the cap the oldest of the address holding the most is evicted).
    #[arg(long, env = "CHATBOX_ANONYMOUS_SHARE", default_value_t = 25, value_parser = clap::value_parser!(u8).range(1..=100))]
    anonymous_share: u8,
    /// Seconds allowed to confirm a registration with a code (1-60); then the name is released.
    #[arg(long, env = "CHATBOX_REGISTER_TIMEOUT", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=60))]
    register_timeout: u64,
    /// Unconfirmed registrations one address (IPv4, IPv6 /64) may hold at once.
    #[arg(long, env = "CHATBOX_MAX_PENDING_PER_IP", default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    max_pending_per_ip: u64,
    /// Milliseconds between two looks at the database for administrators' changes (role, lock, delete, reset-otp) to apply to live sessions.
    #[arg(long, env = "CHATBOX_ADMIN_POLL_MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(50..=60_000))]
    admin_poll_ms: u64,
    /// Seconds of silence before a connection is closed.
    #[arg(long, default_value_t = 300)]
    idle_timeout: u64,
    /// Seconds allowed for the handshake.
    #[arg(long, default_value_t = 10)]
    handshake_timeout: u64,
    /// Rooms one user may be in at once, over all its connections (#lobby included).
    #[arg(long, env = "CHATBOX_MAX_ROOMS_PER_USER", default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    max_rooms_per_user: u64,
    /// Private messages kept for an offline user from one sender until that user is online again.
    #[arg(long, env = "CHATBOX_MAX_OFFLINE_PER_SENDER", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    max_offline_per_sender: u32,
    /// Who may register: open (anyone who can reach the server) or invite (a valid invite needed).
    #[arg(long, env = "CHATBOX_REGISTRATION", default_value = "open")]
    registration: Registration,
    /// HOST:PORT users connect to, for the first-run invite's link [default: the listen address].
    #[arg(long, env = "CHATBOX_PUBLIC_ADDRESS", value_parser = invite::parse_server)]
    public_address: Option<(String, u16)>,
}

fn parse_metrics_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    s.parse()
        .map_err(|_| "expected HOST:PORT (e.g. 127.0.0.1:9100) or a port".to_owned())
}

fn parse_node_id(s: &str) -> Result<String, String> {
    if valid_node_id(s) {
        Ok(s.to_owned())
    } else {
        Err("a node id is 1-64 of A-Z a-z 0-9 _ . : -".to_owned())
    }
}

/// `--database`, or the default file in the data directory.
fn database(arg: Option<&str>, data_dir: &std::path::Path) -> Result<Database> {
    match arg {
        Some(s) => Ok(Database::parse(s)?),
        None => Ok(Database::default_in(data_dir)),
    }
}

impl ServeArgs {
    fn config(&self) -> Result<Config> {
        let mut c = Config::new();
        c.listen = self.listen;
        c.data_dir.clone_from(&self.data_dir);
        c.database = Some(database(self.database.as_deref(), &self.data_dir)?);
        c.node_id = self
            .node_id
            .clone()
            .unwrap_or_else(|| chatbox_server::config::default_node_id(&self.listen));
        c.bus.clone_from(&self.bus);
        c.lease = Duration::from_secs(self.lease_secs);
        c.log_dir.clone_from(&self.log_dir);
        c.pbkdf2_iterations = self.pbkdf2_iterations;
        c.issuer.clone_from(&self.issuer);
        if let Some(m) = &self.motd {
            c.motd.clone_from(m);
        }
        c.max_connections = self.max_connections;
        c.max_per_ip = self.max_per_ip;
        c.rate_per_sec = self.rate.max(0.1);
        c.rate_burst = self.burst.max(1.0);
        c.rate_violations = self.rate_violations;
        c.ip_failures_per_min = self.ip_failures_per_min;
        c.lock_after = self.lock_after.max(1);
        c.lock_duration = Duration::from_secs(self.lock_secs);
        c.failure_delay = Duration::from_millis(self.failure_delay_ms);
        c.threads = self.threads;
        c.hash_workers = self.hash_workers;
        c.hash_queue = self.hash_queue;
        c.hash_queue_per_address = self.hash_queue_per_address;
        c.hash_reserved = self.hash_reserved;
        c.address_prefix_v4 = self.address_prefix_v4;
        c.address_prefix_v6 = self.address_prefix_v6;
        c.aggregate_prefix_v4 = self.aggregate_prefix_v4;
        c.aggregate_prefix_v6 = self.aggregate_prefix_v6;
        c.failure_keys = self.failure_keys;
        c.remember_logins = self.remember_logins;
        c.login_timeout = Duration::from_secs(self.login_timeout);
        c.idle_timeout = Duration::from_secs(self.idle_timeout);
        c.anonymous_timeout = Duration::from_secs(self.anonymous_timeout);
        c.anonymous_share = self.anonymous_share;
        c.register_timeout = Duration::from_secs(self.register_timeout);
        c.max_pending_per_ip = usize::try_from(self.max_pending_per_ip).unwrap_or(usize::MAX);
        c.admin_poll = Duration::from_millis(self.admin_poll_ms);
        c.handshake_timeout = Duration::from_secs(self.handshake_timeout);
        c.metrics = self.metrics;
        c.max_rooms_per_user = usize::try_from(self.max_rooms_per_user).unwrap_or(usize::MAX);
        c.max_offline_per_sender = self.max_offline_per_sender;
        c.registration = self.registration;
        c.public_address.clone_from(&self.public_address);
        Ok(c)
    }
}

fn serve(args: &ServeArgs) -> Result<()> {
    let config = args.config()?;
    if config.pbkdf2_iterations < chatbox_core::password::DEFAULT_ITERATIONS {
        eprintln!(
            "warning: {} PBKDF2 iterations is below the recommended {}",
            config.pbkdf2_iterations,
            chatbox_core::password::DEFAULT_ITERATIONS
        );
    }
    let signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ])
    .context("installing signal handlers")?;
    let (config_db, node_id) = (config.database(), config.node_id.clone());
    let server = chatbox_server::start(config).context("starting the server")?;
    println!("ChatBox server listening on {}", server.local_addr());
    println!("server key fingerprint: {}", server.fingerprint());
    println!(
        "data: {}  logs: {}",
        args.data_dir.display(),
        args.log_dir.display()
    );
    println!("database: {}  node: {}", config_db, node_id);
    if let Some(a) = server.metrics_addr() {
        println!("metrics: http://{a}/metrics  health: http://{a}/healthz");
    }
    for n in server.notes() {
        println!("{n}");
    }
    if let Some(link) = server.first_invite() {
        println!("{link}");
    }
    let mut signals = signals;
    for sig in signals.forever() {
        if sig == signal_hook::consts::SIGHUP {
            // logrotate's postrotate: reopen the log files by name; the chat goes on either way.
            let problems = server.reopen_logs();
            if problems.is_empty() {
                println!("SIGHUP: log files reopened");
            } else {
                println!(
                    "SIGHUP: log files reopened with problems: {}",
                    problems.join("; ")
                );
            }
            continue;
        }
        println!("signal {sig}: shutting down");
        break;
    }
    server.shutdown();
    println!("stopped");
    Ok(())
}

/// The matches of the `serve` flags: top level, `serve`, or `config check`.
fn serve_matches(m: &ArgMatches) -> Option<&ArgMatches> {
    match m.subcommand() {
        None => Some(m),
        Some(("serve", s)) => Some(s),
        Some(("config", c)) => c.subcommand_matches("check"),
        Some(_) => None,
    }
}

/// Parses the command line, then the `--config` file (command line > environment > file >
/// default): the file's values are appended as flags for whatever the command line and the
/// environment did not set, and the command line is parsed again.
fn parse() -> Result<(Cli, Option<FileValues>), String> {
    let mut argv: Vec<OsString> = std::env::args_os().collect();
    let first = Cli::command().get_matches_from(&argv);
    let Some(serve_m) = serve_matches(&first) else {
        return Cli::from_arg_matches(&first)
            .map(|c| (c, None))
            .map_err(|e| e.to_string());
    };
    let Some(path) = serve_m.get_one::<PathBuf>("config") else {
        return Cli::from_arg_matches(&first)
            .map(|c| (c, None))
            .map_err(|e| e.to_string());
    };
    let serve_cmd = ServeArgs::augment_args(clap::Command::new("serve"));
    let file = settings::read_file(path, &serve_cmd, serve_m).map_err(|e| e.to_string())?;
    argv.extend(file.extra_args.iter().cloned());
    let m = Cli::command()
        .try_get_matches_from(&argv)
        .map_err(|e| format!("config file {}: {e}", file.path.display()))?;
    Cli::from_arg_matches(&m)
        .map(|c| (c, Some(file)))
        .map_err(|e| e.to_string())
}

/// `config check`: the effective settings, then whether they make a valid configuration.
fn config_check(args: &ServeArgs, file: Option<&FileValues>) -> Result<()> {
    let mut argv: Vec<OsString> = std::env::args_os().collect();
    if let Some(f) = file {
        argv.extend(f.extra_args.iter().cloned());
    }
    let m = Cli::command().try_get_matches_from(&argv)?;
    let serve_m = serve_matches(&m).context("no serve settings")?;
    let serve_cmd = ServeArgs::augment_args(clap::Command::new("serve"));
    // Written, not printed: a closed pipe (`| head`) is an error, not a panic.
    let mut o = std::io::stdout().lock();
    match file {
        Some(f) => writeln!(o, "# configuration file {}", f.path.display()),
        None => writeln!(o, "# no configuration file (--config / CHATBOX_CONFIG)"),
    }?;
    for e in settings::effective(&serve_cmd, serve_m, file) {
        let value = e.value.as_deref().unwrap_or("(unset)");
        writeln!(o, "{:<20} = {:<36} # {}", e.key, value, e.source)?;
    }
    if let Some(f) = file {
        let mut over: Vec<_> = f.overridden.iter().collect();
        over.sort_by_key(|(_, line)| **line);
        for (key, line) in over {
            writeln!(
                o,
                "# {} line {line}: {key} overridden by the command line or environment",
                f.path.display()
            )?;
        }
    }
    let config = args.config()?;
    if let Database::Sqlite(p) = config.database() {
        writeln!(o, "# database file {}", p.display())?;
    }
    writeln!(o, "configuration OK")?;
    Ok(())
}

fn backup(out: &std::path::Path, data_dir: &std::path::Path, db: Option<&str>) -> Result<()> {
    let db = database(db, data_dir)?;
    let s = chatbox_server::backup::backup(&db, out).map_err(anyhow::Error::msg)?;
    println!(
        "backup {} of {}: integrity ok; {} accounts, {} messages, last message id {}",
        out.display(),
        db.redacted(),
        s.accounts,
        s.messages,
        s.last_message_id
    );
    Ok(())
}

fn main() -> ExitCode {
    let (cli, file) = match parse() {
        Ok(x) => x,
        Err(e) => {
            eprintln!("chatbox-server: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match &cli.cmd {
        None => serve(&cli.serve),
        Some(Cmd::Serve(a)) => serve(a),
        Some(Cmd::User {
            action,
            data_dir,
            database: db,
            issuer,
        }) => {
            let action = match action {
                UserCmd::List => Action::List,
                UserCmd::Show { user } => Action::Show(user.clone()),
                UserCmd::Lock { user } => Action::Lock(user.clone()),
                UserCmd::Unlock { user } => Action::Unlock(user.clone()),
                UserCmd::Delete { user } => Action::Delete(user.clone()),
                UserCmd::ResetOtp { user } => Action::ResetOtp(user.clone()),
                UserCmd::Role { user, role } => Action::Role(user.clone(), role.clone()),
            };
            database(db.as_deref(), data_dir).and_then(|db| {
                admin::run_on(data_dir, &db, issuer, &action, &mut std::io::stdout())
            })
        }
        Some(Cmd::Invite {
            action,
            config,
            data_dir,
            database: db,
        }) => invite_command(
            action,
            config.as_deref(),
            data_dir.as_deref(),
            db.as_deref(),
        ),
        Some(Cmd::VerifyLog {
            files,
            data_dir,
            node_id,
            no_anchor,
        }) => {
            let anchor = (!no_anchor).then(|| data_dir.join(anchor_name(node_id.as_deref())));
            return verify_log(files, data_dir, anchor.as_deref());
        }
        Some(Cmd::Config {
            action: ConfigCmd::Check(a),
        }) => config_check(a, file.as_ref()),
        Some(Cmd::Backup {
            out,
            data_dir,
            database: db,
        }) => backup(out, data_dir, db.as_deref()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chatbox-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The serve settings a configuration file gives (with the environment, as `serve` would
/// read them), for the `invite` commands.
fn file_settings(path: &std::path::Path) -> Result<ServeArgs> {
    let serve_cmd = ServeArgs::augment_args(clap::Command::new("serve"));
    let plain = serve_cmd
        .clone()
        .try_get_matches_from(["serve"])
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let file = settings::read_file(path, &serve_cmd, &plain).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut argv = vec![OsString::from("serve")];
    argv.extend(file.extra_args.iter().cloned());
    let m = serve_cmd
        .try_get_matches_from(argv)
        .map_err(|e| anyhow::anyhow!("config file {}: {e}", path.display()))?;
    ServeArgs::from_arg_matches(&m).map_err(|e| anyhow::anyhow!("{e}"))
}

fn invite_command(
    action: &InviteCmd,
    config: Option<&std::path::Path>,
    data_dir: Option<&std::path::Path>,
    db: Option<&str>,
) -> Result<()> {
    let file = config.map(file_settings).transpose()?;
    let data_dir = data_dir.map_or_else(
        || {
            file.as_ref()
                .map_or_else(|| PathBuf::from("data"), |f| f.data_dir.clone())
        },
        std::path::Path::to_path_buf,
    );
    let db = db
        .map(str::to_owned)
        .or_else(|| file.as_ref().and_then(|f| f.database.clone()));
    let action = match action {
        InviteCmd::Create {
            uses,
            expires,
            role,
            note,
            server,
            listen,
            qr,
        } => InviteAction::Create {
            opts: CreateOpts {
                uses: *uses,
                expires: *expires,
                role: role.clone(),
                note: note.clone(),
                server: server.clone().unwrap_or_else(|| {
                    invite::listen_host_port(
                        listen
                            .or_else(|| file.as_ref().map(|f| f.listen))
                            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 6001))),
                    )
                }),
            },
            qr: *qr,
        },
        InviteCmd::List => InviteAction::List,
        InviteCmd::Revoke { id } => InviteAction::Revoke(*id),
    };
    database(db.as_deref(), &data_dir)
        .and_then(|db| invite::run_on(&data_dir, &db, &action, &mut std::io::stdout()))
}

fn verify_log(
    files: &[PathBuf],
    data_dir: &std::path::Path,
    anchor_path: Option<&std::path::Path>,
) -> ExitCode {
    let keys = match ServerKeys::load(data_dir) {
        Ok(k) => k,
        Err(e) => {
            eprintln!(
                "chatbox-server: reading {}/server.key: {e}",
                data_dir.display()
            );
            return ExitCode::from(2);
        }
    };
    let anchor = match anchor_path.map(Anchor::read).transpose() {
        Ok(a) => a.flatten(),
        Err(e) => {
            eprintln!("chatbox-server: {e}");
            return ExitCode::from(2);
        }
    };
    let name = |i: usize| {
        files
            .get(i)
            .map_or_else(String::new, |p| p.display().to_string())
    };
    // One file: its lines are named as before ("line 3"); several: "chat.log line 3".
    let at = |i: usize| {
        if files.len() > 1 {
            format!("{} ", name(i))
        } else {
            String::new()
        }
    };
    match verify_chat_logs(files, &keys.log_key(), anchor.as_ref()) {
        Ok(Verdict::Ok {
            lines,
            continued,
            anchor: check,
        }) => {
            let files_n = if files.len() > 1 {
                format!(" in {} files", files.len())
            } else {
                String::new()
            };
            println!("OK: {lines} lines verified{files_n}");
            if continued {
                println!(
                    "note: {} starts where a rotation left the chain (older files not given)",
                    name(0)
                );
            }
            match check {
                AnchorCheck::AtEnd => println!("the chain ends at its anchor"),
                AnchorCheck::Beyond(n) => println!(
                    "note: {n} lines after the anchor (written in its last 100 ms, or just before a crash)"
                ),
                AnchorCheck::None => println!(
                    "note: no anchor checked (missing trailing lines cannot be noticed without {})",
                    anchor_path.map_or_else(|| "an anchor".to_owned(), |p| p.display().to_string())
                ),
            }
            ExitCode::SUCCESS
        }
        Ok(Verdict::BadLine { file, line }) => {
            let boundary = if line == 1 && file > 0 {
                format!(
                    " (a line is missing at the boundary after {})",
                    name(file - 1)
                )
            } else {
                String::new()
            };
            println!(
                "FAILED: {}line {line} does not verify (edited, removed or reordered lines){boundary}",
                at(file)
            );
            ExitCode::FAILURE
        }
        Ok(Verdict::Truncated { file, line }) => {
            println!(
                "FAILED: {}line {line} is truncated (no end of line)",
                at(file)
            );
            ExitCode::FAILURE
        }
        Ok(Verdict::Missing { file, from, to }) => {
            println!(
                "FAILED: {} lines {from}..{to} are missing at the end (the anchor records {to} lines): the log was cut",
                name(file)
            );
            ExitCode::FAILURE
        }
        Ok(Verdict::NotAnchored { file, line, bytes }) => {
            println!(
                "FAILED: {} has no line {line} ending at byte {bytes} as its anchor records: lines were removed or replaced",
                name(file)
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("chatbox-server: {e}");
            ExitCode::from(2)
        }
    }
}
