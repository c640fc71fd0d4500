//! `chatbox-load`: a load generator for ChatBox (real protocol) and IRC servers.
//!
//! Provisions N accounts over the real protocol (ChatBox: Register → ConfirmTotp with the
//! previous TOTP step → Login with the current one; IRC: NICK/USER), parts `#lobby`, puts them in
//! rooms, then sends at a per-client rate with send times spread evenly over each period
//! (client `i` of `N` sends at phase `i/N`). Every payload carries its send time stamp (µs since
//! the generator started; the generator is one process, so one clock); a receiver computes the
//! delivery latency. The sender's own echo (ChatBox sends one, IRC does not) is not counted as
//! a delivery. Server RSS and CPU seconds come from `/proc/<pid>`, the generator's own CPU
//! seconds from `/proc/<its pid>/stat` the same way (it shares the machine: each row gives both
//! processes' cores and CPU µs per delivery).
//!
//! Scenarios: `a` (fixed rate), `b` (rates stepped up until p99 passes the limit), `c` (idle
//! logged-in connections, RSS per connection).
//!
//! Several nodes (ChatBox only): `--server A,B` spreads the clients round robin (client `i` on
//! address `i mod n`). Accounts are registered over the protocol through the first address and
//! each client then logs in on its own node (`--register-via first`, the default: the nodes
//! must share one database), or registered and logged in on one connection to the client's own
//! node (`--register-via own`). With one address both are the same single connection. The
//! result rows say how many clients were ready on each node (`per_node=ADDR=N,…`); `--pid`
//! takes every node's process id and sums RSS and CPU.

mod irc;
mod live;
mod stats;

use core::net::SocketAddr;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use core::time::Duration;
use std::net::TcpStream;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, anyhow, bail};
use chatbox_core::frame::MAX_WIRE_LEN;
use chatbox_core::otp::{OtpauthUri, Totp};
use chatbox_core::proto::{ClientMsg, ErrorCode, ServerMsg};
use chatbox_core::session::{Input, Session};
use clap::{Parser, ValueEnum};
use live::{Kind, Live};
use smol::io::{AsyncReadExt as _, AsyncWriteExt as _};
use smol::lock::{Semaphore, SemaphoreGuard};
use smol::{Async, Executor, Timer};

use crate::stats::{ProcSample, Samples};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Proto {
    /// ChatBox, the real encrypted protocol.
    Chatbox,
    /// Plain IRC: NICK/USER/JOIN/PRIVMSG.
    Irc,
}

/// Where ChatBox accounts are registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum RegisterVia {
    /// Through the first address; each client then logs in on its own node.
    First,
    /// On the client's own node, on the connection it then uses.
    Own,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// Fixed per-client rate for `--duration` seconds.
    A,
    /// Per-client rate stepped through `--rates`; stops after the first step over the p99 limit.
    B,
    /// Idle logged-in connections: server RSS per connection.
    C,
}

/// ChatBox / IRC load generator.
#[derive(Debug, Parser)]
#[command(name = "chatbox-load", version, about)]
struct Cli {
    /// Protocol to speak.
    #[arg(long, value_enum, default_value = "chatbox")]
    proto: Proto,
    /// Scenario.
    #[arg(long, value_enum, default_value = "a")]
    scenario: Scenario,
    /// Server address(es), 127.x only. Several (comma-separated or repeated) spread the
    /// ChatBox clients round robin; IRC takes one. `--addr` is the old name.
    #[arg(
        long = "server",
        alias = "addr",
        value_name = "HOST:PORT[,HOST:PORT...]",
        value_delimiter = ',',
        action = clap::ArgAction::Append,
        default_value = "127.0.0.1:6001"
    )]
    servers: Vec<SocketAddr>,
    /// Where ChatBox accounts are registered (with several addresses).
    #[arg(long, value_enum, default_value = "first")]
    register_via: RegisterVia,
    /// Server process id(s), for RSS and CPU readings (several: summed).
    #[arg(long, value_delimiter = ',')]
    pid: Vec<u32>,
    /// Label of the server in the result rows.
    #[arg(long, default_value = "server")]
    label: String,
    /// Number of clients.
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    /// Number of rooms (clients are spread evenly).
    #[arg(long, default_value_t = 10)]
    rooms: usize,
    /// Messages per second per client (scenario a).
    #[arg(long, default_value_t = 1.0)]
    rate: f64,
    /// Per-client rates to step through (scenario b).
    #[arg(long, value_delimiter = ',', default_value = "1,2,3,4,5,6,8,10")]
    rates: Vec<f64>,
    /// Measured seconds (scenario a).
    #[arg(long, default_value_t = 20.0)]
    duration: f64,
    /// Measured seconds per step (scenario b).
    #[arg(long, default_value_t = 6.0)]
    step_secs: f64,
    /// Seconds at a new rate before measuring.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// p99 limit in ms for scenario b.
    #[arg(long, default_value_t = 50.0)]
    p99_limit_ms: f64,
    /// Payload size in bytes.
    #[arg(long, default_value_t = 100)]
    payload: usize,
    /// Generator threads (1 or 2).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    threads: u8,
    /// Connections being set up at once.
    #[arg(long, default_value_t = 16)]
    setup_concurrency: usize,
    /// Password of the ChatBox accounts.
    #[arg(long, default_value = "load-test-password")]
    password: String,
    /// Prefix of account names / nicks (`<prefix><index>`).
    #[arg(long, default_value = "l")]
    prefix: String,
    /// Give up on set-up after this many seconds.
    #[arg(long, default_value_t = 240.0)]
    setup_timeout: f64,
}

/// What every client task shares.
#[derive(Debug)]
struct Ctx {
    proto: Proto,
    servers: Vec<SocketAddr>,
    register_via: RegisterVia,
    clients: usize,
    rooms: usize,
    payload: usize,
    password: String,
    prefix: String,
    idle: bool,
    t0: Instant,
    /// Per-client rate × 1000 (0: do not send).
    rate_milli: AtomicU64,
    stop: AtomicBool,
    measuring: AtomicBool,
    ready: AtomicUsize,
    /// Clients ready per address.
    ready_on: Vec<AtomicUsize>,
    /// Refused logins tried again during set-up.
    login_retries: AtomicUsize,
    failed: AtomicUsize,
    lost: AtomicUsize,
    sent: AtomicU64,
    delivered: AtomicU64,
    echoes: AtomicU64,
    /// Reads that returned bytes while measuring: each takes at least one of the server's
    /// writes, so reads per delivery is a lower bound on the server's writes per delivery.
    reads: AtomicU64,
    refused: AtomicU64,
    samples: Mutex<Samples>,
    setup: Semaphore,
    first_error: Mutex<Option<String>>,
    /// Set-up connections go to event loop `i mod feed.len()` ([`live::run`]).
    feed: Vec<Sender<(usize, Live)>>,
    /// The loops' ends of `feed`, taken when the loops start.
    feed_rx: Mutex<Vec<Receiver<(usize, Live)>>>,
}

impl Ctx {
    /// The shared state of a run of `cli` (`idle`: scenario C, nobody joins a room).
    fn new(cli: &Cli, idle: bool) -> Ctx {
        let (feed, feed_rx) = (0..cli.threads.max(1))
            .map(|_| std::sync::mpsc::channel())
            .unzip();
        Ctx {
            proto: cli.proto,
            servers: cli.servers.clone(),
            register_via: cli.register_via,
            clients: cli.clients,
            rooms: cli.rooms,
            payload: cli.payload,
            password: cli.password.clone(),
            prefix: cli.prefix.clone(),
            idle,
            t0: Instant::now(),
            rate_milli: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            measuring: AtomicBool::new(false),
            ready: AtomicUsize::new(0),
            ready_on: cli.servers.iter().map(|_| AtomicUsize::new(0)).collect(),
            login_retries: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            lost: AtomicUsize::new(0),
            sent: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            echoes: AtomicU64::new(0),
            reads: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            samples: Mutex::new(Samples::default()),
            setup: Semaphore::new(cli.setup_concurrency.max(1)),
            first_error: Mutex::new(None),
            feed,
            feed_rx: Mutex::new(feed_rx),
        }
    }

    /// Hands client `i`'s set-up connection to its event loop.
    fn hand_off(&self, i: usize, live: Live) {
        let n = self.feed.len().max(1);
        if let Some(f) = self.feed.get(i % n) {
            // A loop that has ended (stop) drops what comes after.
            let _ = f.send((i, live));
        }
    }

    fn now_us(&self) -> u64 {
        u64::try_from(self.t0.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    fn rate(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let r = self.rate_milli.load(Ordering::Relaxed) as f64 / 1000.0;
        r
    }

    fn set_rate(&self, r: f64) {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        self.rate_milli
            .store((r * 1000.0).round() as u64, Ordering::Relaxed);
    }

    fn room_of(&self, i: usize) -> String {
        format!("#room{}", i % self.rooms.max(1))
    }

    fn name_of(&self, i: usize) -> String {
        format!("{}{i:05}", self.prefix)
    }

    /// Index of client `i`'s address (round robin).
    fn node_of(&self, i: usize) -> usize {
        i % self.servers.len().max(1)
    }

    fn addr(&self, node: usize) -> Result<SocketAddr> {
        self.servers
            .get(node)
            .copied()
            .ok_or_else(|| anyhow!("no address {node}"))
    }

    /// `ADDR=N,…`: clients ready on each address.
    fn per_node(&self) -> String {
        self.servers
            .iter()
            .zip(&self.ready_on)
            .map(|(a, n)| format!("{a}={}", n.load(Ordering::SeqCst)))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn record(&self, lat: &mut Vec<u64>) {
        if lat.is_empty() {
            return;
        }
        if self.measuring.load(Ordering::Relaxed) {
            self.delivered
                .fetch_add(lat.len() as u64, Ordering::Relaxed);
            if let Ok(mut s) = self.samples.lock() {
                for l in lat.iter() {
                    s.push(*l);
                }
            }
        }
        lat.clear();
    }
}

/// The next send time (µs since `t0`) after `now_us` for a client at `phase` ∈ [0, 1).
fn next_slot(now_us: u64, rate: f64, phase: f64) -> u64 {
    let period = 1e6 / rate;
    let off = phase * period;
    #[allow(clippy::cast_precision_loss)]
    let k = ((now_us as f64 - off) / period).floor() + 1.0;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let at = |k: f64| (off + k * period).max(0.0) as u64;
    // Rounding can put slot k at or just below `now_us` (asked at a slot's own time): the
    // next one is then slot k + 1, not `now_us` again.
    let t = at(k);
    if t > now_us { t } else { at(k + 1.0) }
}

// ---------------------------------------------------------------- ChatBox

struct CbConn {
    stream: Async<TcpStream>,
    session: Session,
    buf: Vec<u8>,
    len: usize,
    out: Vec<u8>,
    user: String,
    room: String,
}

fn random32() -> Result<[u8; 32]> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| anyhow!("getrandom: {e}"))?;
    Ok(b)
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The code of `totp` for the current step + `offset`.
fn totp_code(totp: &Totp, offset: i64) -> Result<String> {
    let step = totp
        .step(now_secs())
        .checked_add_signed(offset)
        .ok_or_else(|| anyhow!("step"))?;
    Ok(totp
        .generate_at_step(step)
        .map_err(|e| anyhow!("totp: {e:?}"))?
        .as_str()
        .to_owned())
}

/// The TOTP an otpauth URI describes (secret, algorithm, digits, period), read by core's parser.
fn totp_of(uri: &str) -> Result<Totp> {
    OtpauthUri::parse(uri)
        .and_then(|u| u.totp())
        .map_err(|e| anyhow!("the server's otpauth URI: {e}"))
}

/// What a set-up step waits for.
enum Want {
    Started(String),
    Registered,
    LoggedIn,
    HistoryDone,
    Busy,
}

impl CbConn {
    async fn connect(addr: SocketAddr, user: String, room: String) -> Result<CbConn> {
        let stream = Async::<TcpStream>::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.get_ref().set_nodelay(true)?;
        let mut c = CbConn {
            stream,
            session: Session::client(random32()?),
            buf: vec![0; MAX_WIRE_LEN * 2],
            len: 0,
            out: Vec::with_capacity(512),
            user,
            room,
        };
        let mut hello = [0u8; 128];
        let n = c
            .session
            .poll_transmit(&mut hello)
            .map_err(|e| anyhow!("handshake: {e}"))?;
        c.stream
            .write_all(hello.get(..n).unwrap_or_default())
            .await?;
        loop {
            c.fill().await?;
            let CbConn {
                session, buf, len, ..
            } = &mut c;
            match session
                .handle_input(buf.get_mut(..*len).unwrap_or_default())
                .map_err(|e| anyhow!("handshake: {e}"))?
            {
                Input::Incomplete { .. } => {}
                Input::Handshake { consumed } => {
                    buf.copy_within(consumed..*len, 0);
                    *len -= consumed;
                    break;
                }
                Input::Record { .. } => bail!("record before the handshake ended"),
            }
        }
        if !c.session.is_established() {
            bail!("handshake did not complete");
        }
        Ok(c)
    }

    async fn fill(&mut self) -> Result<()> {
        let space = self.buf.get_mut(self.len..).unwrap_or_default();
        if space.is_empty() {
            bail!("receive buffer full");
        }
        let n = self.stream.read(space).await?;
        if n == 0 {
            bail!("server closed the connection");
        }
        self.len += n;
        Ok(())
    }

    async fn send(&mut self, msg: &ClientMsg<'_>) -> Result<()> {
        let mut pt = [0u8; 2048];
        let n = msg.encode(&mut pt).map_err(|e| anyhow!("encode: {e:?}"))?;
        self.out.resize(n + 64, 0);
        let w = self
            .session
            .seal(pt.get(..n).unwrap_or_default(), &mut self.out)
            .map_err(|e| anyhow!("seal: {e}"))?;
        self.stream
            .write_all(self.out.get(..w).unwrap_or_default())
            .await?;
        Ok(())
    }

    /// Calls `f` on each complete record; stops early when `f` returns `Some`.
    fn drain<T>(
        &mut self,
        f: impl FnMut(&ServerMsg<'_>) -> Result<Option<T>>,
    ) -> Result<Option<T>> {
        drain_records(&mut self.session, &mut self.buf, &mut self.len, f)
    }

    /// The connection for the load phase.
    fn into_live(self) -> Result<Live> {
        let stream = self.stream.into_inner()?;
        let kind = Kind::Chatbox {
            session: Box::new(self.session),
            user: self.user,
            room: self.room,
        };
        Live::new(stream, self.buf, self.len, kind)
    }

    fn shrink(&mut self) {
        self.buf = Vec::new();
        self.out = Vec::new();
    }

    async fn wait_for(
        &mut self,
        mut f: impl FnMut(&ServerMsg<'_>) -> Result<Option<Want>>,
    ) -> Result<Want> {
        loop {
            if let Some(w) = self.drain(&mut f)? {
                return Ok(w);
            }
            self.fill().await?;
        }
    }

    /// `permit` bounds the connect/register/login phase; it is released before joining.
    async fn setup(ctx: &Ctx, i: usize, permit: SemaphoreGuard<'_>) -> Result<CbConn> {
        let user = ctx.name_of(i);
        let node = ctx.node_of(i);
        let register_node = match ctx.register_via {
            RegisterVia::First => 0,
            RegisterVia::Own => node,
        };
        let addr = ctx.addr(node)?;
        let (first, secret) = if register_node == node {
            let mut c = CbConn::connect(addr, user.clone(), ctx.room_of(i)).await?;
            let secret = c.register(&ctx.password).await?;
            (Some(c), secret)
        } else {
            let at = ctx.addr(register_node)?;
            let mut r = CbConn::connect(at, user.clone(), String::new()).await?;
            let secret = r
                .register(&ctx.password)
                .await
                .with_context(|| format!("registering at {at}"))?;
            let _ = r.send(&ClientMsg::Bye).await;
            (None, secret)
        };
        let mut c = CbConn::login_retrying(ctx, first, addr, &user, &ctx.room_of(i), &secret)
            .await
            .with_context(|| format!("logging in at {addr}"))?;
        c.wait_for(|m| history_done(m, "#lobby")).await?;
        drop(permit);
        c.send(&ClientMsg::Part {
            room: "#lobby",
            reason: "",
        })
        .await?;
        if !ctx.idle {
            let room = c.room.clone();
            c.send(&ClientMsg::Join { room: &room }).await?;
            c.wait_for(|m| history_done(m, &room)).await?;
        }
        Ok(c)
    }

    /// Register → ConfirmTotp (previous step); returns the account's TOTP.
    async fn register(&mut self, pw: &str) -> Result<Totp> {
        let user = self.user.clone();
        let uri = loop {
            self.send(&ClientMsg::Register {
                user: &user,
                password: pw,
            })
            .await?;
            match self.wait_for(reply_of).await? {
                Want::Started(uri) => break uri,
                Want::Busy => {
                    Timer::after(Duration::from_millis(20)).await;
                }
                _ => bail!("unexpected reply to Register"),
            }
        };
        let secret = totp_of(&uri)?;
        // The previous step confirms the registration; the current one logs in (the server
        // accepts −1..+1 and refuses a step spent before).
        let mut tries = 0;
        loop {
            let code = totp_code(&secret, -1)?;
            self.send(&ClientMsg::ConfirmTotp { code: &code }).await?;
            match self.wait_for(reply_of).await {
                Ok(Want::Registered) => return Ok(secret),
                Ok(_) => bail!("unexpected reply to ConfirmTotp"),
                // The 30 s step turned over between computing and checking: the code is now
                // two steps old. Another try with the new step (the server allows five).
                Err(e) if tries < 2 && is_server_error(&e, ErrorCode::InvalidCode) => tries += 1,
                Err(e) => return Err(e),
            }
        }
    }

    /// Logs in (on `first` if given, else on a new connection to `addr`). A refused login is
    /// tried again on a new connection a few times: the server counts a login against its
    /// address's failure budget from the moment it begins, so many concurrent logins from the
    /// generator's one address can be refused although nothing is wrong.
    async fn login_retrying(
        ctx: &Ctx,
        first: Option<CbConn>,
        addr: SocketAddr,
        user: &str,
        room: &str,
        secret: &Totp,
    ) -> Result<CbConn> {
        let mut next = first;
        let mut tries = 0u32;
        loop {
            let mut c = match next.take() {
                Some(c) => c,
                None => CbConn::connect(addr, user.to_owned(), room.to_owned()).await?,
            };
            match c.login(&ctx.password, secret).await {
                Ok(()) => return Ok(c),
                Err(e)
                    if tries < LOGIN_TRIES
                        && is_server_error(&e, ErrorCode::InvalidCredentials) =>
                {
                    tries += 1;
                    ctx.login_retries.fetch_add(1, Ordering::Relaxed);
                    let jitter = u64::from(random32()?[0]);
                    Timer::after(Duration::from_millis(100 * u64::from(tries) + jitter)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Login with the current step's code.
    async fn login(&mut self, pw: &str, secret: &Totp) -> Result<()> {
        let user = self.user.clone();
        loop {
            let code = totp_code(secret, 0)?;
            self.send(&ClientMsg::Login {
                user: &user,
                password: pw,
                otp: &code,
            })
            .await?;
            match self.wait_for(reply_of).await? {
                Want::LoggedIn => return Ok(()),
                Want::Busy => {
                    Timer::after(Duration::from_millis(20)).await;
                }
                _ => bail!("unexpected reply to Login"),
            }
        }
    }
}

/// Refused logins tried again during set-up (see [`CbConn::login_retrying`]).
const LOGIN_TRIES: u32 = 8;

/// Opens every complete record in `buf[..len]` in place with `session` (authenticated and
/// decrypted by core), decodes it and calls `f`; stops early when `f` returns `Some`. What
/// was handled is removed from the front of `buf` once, after the last record (not after
/// each: a read of many records is not moved once per record).
fn drain_records<T>(
    session: &mut Session,
    buf: &mut [u8],
    len: &mut usize,
    mut f: impl FnMut(&ServerMsg<'_>) -> Result<Option<T>>,
) -> Result<Option<T>> {
    let mut start = 0;
    let r = loop {
        let rest = buf.get_mut(start..*len).unwrap_or_default();
        if rest.is_empty() {
            break Ok(None);
        }
        match session.handle_input(rest) {
            Err(e) => break Err(anyhow!("bad record from the server: {e}")),
            Ok(Input::Incomplete { .. }) => break Ok(None),
            Ok(Input::Handshake { .. }) => break Err(anyhow!("unexpected handshake message")),
            Ok(Input::Record {
                consumed,
                plaintext,
            }) => {
                start += consumed;
                let got = ServerMsg::decode(plaintext)
                    .map_err(|e| anyhow!("undecodable server message: {e:?}"))
                    .and_then(|m| f(&m));
                match got {
                    Ok(None) => {}
                    other => break other,
                }
            }
        }
    };
    buf.copy_within(start..*len, 0);
    *len -= start;
    r
}

/// Whether `e` is the server's `Error` with `code` (as [`reply_of`] words it).
fn is_server_error(e: &anyhow::Error, code: ErrorCode) -> bool {
    e.to_string()
        .starts_with(&format!("server error {}:", code as u16))
}

fn reply_of(m: &ServerMsg<'_>) -> Result<Option<Want>> {
    Ok(Some(match *m {
        ServerMsg::RegisterStarted { uri } => Want::Started(uri.to_owned()),
        ServerMsg::Registered { .. } => Want::Registered,
        ServerMsg::LoginOk { .. } => Want::LoggedIn,
        ServerMsg::Error { code, .. } if code == ErrorCode::Busy as u16 => Want::Busy,
        ServerMsg::Error { code, text } => bail!("server error {code}: {text}"),
        ServerMsg::Bye { reason } => bail!("server said bye: {reason}"),
        _ => return Ok(None),
    }))
}

fn history_done(m: &ServerMsg<'_>, room: &str) -> Result<Option<Want>> {
    match *m {
        ServerMsg::History { target, done, .. } if done && target == room => {
            Ok(Some(Want::HistoryDone))
        }
        ServerMsg::Error { code, text } => bail!("server error {code}: {text}"),
        ServerMsg::Bye { reason } => bail!("server said bye: {reason}"),
        _ => Ok(None),
    }
}

// ---------------------------------------------------------------- IRC

struct IrcConn {
    stream: Async<TcpStream>,
    buf: Vec<u8>,
    len: usize,
    out: Vec<u8>,
    room: String,
}

impl IrcConn {
    async fn fill(&mut self) -> Result<()> {
        let space = self.buf.get_mut(self.len..).unwrap_or_default();
        if space.is_empty() {
            bail!("line too long");
        }
        let n = self.stream.read(space).await?;
        if n == 0 {
            bail!("server closed the connection");
        }
        self.len += n;
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        if !self.out.is_empty() {
            self.stream.write_all(&self.out).await?;
            self.out.clear();
        }
        Ok(())
    }

    /// The connection for the load phase.
    fn into_live(self) -> Result<Live> {
        let stream = self.stream.into_inner()?;
        Live::new(stream, self.buf, self.len, Kind::Irc { room: self.room })
    }

    fn shrink(&mut self) {
        self.buf = Vec::new();
        self.out = Vec::new();
    }

    /// Reads lines until one whose command is `want`; answers PINGs on the way.
    async fn wait_for(&mut self, want: &str) -> Result<()> {
        loop {
            let mut found = false;
            let mut err = None;
            let out = &mut self.out;
            let used = irc::split_lines(self.buf.get(..self.len).unwrap_or_default(), |l| {
                if found || err.is_some() {
                    return;
                }
                if let Some(p) = irc::parse(l) {
                    match p.command {
                        c if c == want => found = true,
                        "PING" => pong(out, &p),
                        "ERROR" | "432" | "433" | "465" | "471" | "473" | "474" => {
                            err = Some(l.to_owned());
                        }
                        _ => {}
                    }
                }
            });
            self.buf.copy_within(used..self.len, 0);
            self.len -= used;
            if let Some(e) = err {
                bail!("IRC server: {e}");
            }
            self.flush().await?;
            if found {
                return Ok(());
            }
            self.fill().await?;
        }
    }

    /// `permit` bounds the connect/registration phase (some servers have a short listen
    /// backlog); it is released before the JOIN (which some servers answer only after a
    /// penalty delay).
    async fn setup(ctx: &Ctx, i: usize, permit: SemaphoreGuard<'_>) -> Result<IrcConn> {
        let addr = ctx.addr(0)?;
        let stream = Async::<TcpStream>::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.get_ref().set_nodelay(true)?;
        let mut c = IrcConn {
            stream,
            buf: vec![0; 64 * 1024],
            len: 0,
            out: Vec::with_capacity(512),
            room: ctx.room_of(i),
        };
        let nick = ctx.name_of(i);
        c.out
            .extend_from_slice(format!("NICK {nick}\r\nUSER {nick} 0 * :load\r\n").as_bytes());
        c.flush().await?;
        c.wait_for("001").await?;
        drop(permit);
        if !ctx.idle {
            c.out
                .extend_from_slice(format!("JOIN {}\r\n", c.room).as_bytes());
            c.flush().await?;
            c.wait_for("366").await?;
        }
        Ok(c)
    }
}

fn pong(out: &mut Vec<u8>, p: &irc::Line<'_>) {
    let arg = p.trailing.or_else(|| p.params().next()).unwrap_or("");
    out.extend_from_slice(b"PONG :");
    out.extend_from_slice(arg.as_bytes());
    out.extend_from_slice(b"\r\n");
}

// ---------------------------------------------------------------- driving

async fn client(ctx: Arc<Ctx>, i: usize) {
    let set_up = async {
        let permit = ctx.setup.acquire().await;
        match ctx.proto {
            Proto::Chatbox => CbConn::setup(&ctx, i, permit)
                .await
                .map(|c| Either::Cb(Box::new(c))),
            Proto::Irc => IrcConn::setup(&ctx, i, permit).await.map(Either::Irc),
        }
    };
    let conn = match set_up.await {
        Ok(c) => c,
        Err(e) => {
            note_error(&ctx, &format!("client {i} set-up: {e:#}"));
            ctx.failed.fetch_add(1, Ordering::SeqCst);
            return;
        }
    };
    ctx.ready.fetch_add(1, Ordering::SeqCst);
    if let Some(n) = ctx.ready_on.get(ctx.node_of(i)) {
        n.fetch_add(1, Ordering::SeqCst);
    }
    if ctx.idle {
        // Scenario C: held, not read, with its buffers dropped.
        let _held = match conn {
            Either::Cb(mut c) => {
                c.shrink();
                Either::Cb(c)
            }
            Either::Irc(mut c) => {
                c.shrink();
                Either::Irc(c)
            }
        };
        while !ctx.stop.load(Ordering::Relaxed) {
            Timer::after(Duration::from_millis(200)).await;
        }
        return;
    }
    let live = match conn {
        Either::Cb(c) => c.into_live(),
        Either::Irc(c) => c.into_live(),
    };
    match live {
        Ok(l) => ctx.hand_off(i, l),
        Err(e) => {
            note_error(&ctx, &format!("client {i}: {e:#}"));
            ctx.lost.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// The event loops' threads; stopping the run and joining them on drop.
struct Loops {
    ctx: Arc<Ctx>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Loops {
    fn start(ctx: &Arc<Ctx>) -> Result<Loops> {
        let rxs = ctx
            .feed_rx
            .lock()
            .map(|mut r| core::mem::take(&mut *r))
            .map_err(|_| anyhow!("feed lock"))?;
        let mut threads = Vec::new();
        for (n, rx) in rxs.into_iter().enumerate() {
            let c = ctx.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("load-loop-{n}"))
                    .spawn(move || live::run(&c, &rx))?,
            );
        }
        Ok(Loops {
            ctx: ctx.clone(),
            threads,
        })
    }
}

impl Drop for Loops {
    fn drop(&mut self) {
        self.ctx.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

enum Either {
    Cb(Box<CbConn>),
    Irc(IrcConn),
}

fn note_error(ctx: &Ctx, e: &str) {
    if let Ok(mut f) = ctx.first_error.lock()
        && f.is_none()
    {
        eprintln!("chatbox-load: {e}");
        *f = Some(e.to_owned());
    }
}

/// RSS and CPU of every process in `pids`, summed (`None` if there are none or one fails).
fn proc_now(pids: &[u32], ticks: f64) -> Option<ProcSample> {
    if pids.is_empty() {
        return None;
    }
    let mut sum = ProcSample {
        rss_kib: 0,
        cpu_secs: 0.0,
    };
    for p in pids {
        let s = stats::read_proc(*p, ticks).ok()?;
        sum.rss_kib += s.rss_kib;
        sum.cpu_secs += s.cpu_secs;
    }
    Some(sum)
}

struct Window {
    secs: f64,
    p0: Option<ProcSample>,
    /// The generator's own reading at the start.
    g0: Option<ProcSample>,
    started: Instant,
}

/// The generator's own RSS and CPU (`/proc/<its pid>`).
fn self_now(ticks: f64) -> Option<ProcSample> {
    stats::read_proc(std::process::id(), ticks).ok()
}

fn begin(ctx: &Ctx, pid: &[u32], ticks: f64) -> Window {
    ctx.sent.store(0, Ordering::SeqCst);
    ctx.delivered.store(0, Ordering::SeqCst);
    ctx.reads.store(0, Ordering::SeqCst);
    if let Ok(mut s) = ctx.samples.lock() {
        *s = Samples::default();
    }
    let w = Window {
        secs: 0.0,
        p0: proc_now(pid, ticks),
        g0: self_now(ticks),
        started: Instant::now(),
    };
    ctx.measuring.store(true, Ordering::SeqCst);
    w
}

/// Ends a window and prints its row; returns (deliveries/s, p99 ms, delivered ≥ 90 % of
/// expected).
fn end(cli: &Cli, ctx: &Ctx, mut w: Window, rate: f64, ticks: f64) -> (f64, f64, bool) {
    ctx.measuring.store(false, Ordering::SeqCst);
    w.secs = w.started.elapsed().as_secs_f64();
    let p1 = proc_now(&cli.pid, ticks);
    let g1 = self_now(ticks);
    let mut samples = ctx
        .samples
        .lock()
        .map(|mut s| core::mem::take(&mut *s))
        .unwrap_or_default();
    let sum = samples.summary();
    #[allow(clippy::cast_precision_loss)]
    let (delivered, sent) = (
        ctx.delivered.load(Ordering::SeqCst) as f64,
        ctx.sent.load(Ordering::SeqCst) as f64,
    );
    let ready = ctx.ready.load(Ordering::SeqCst);
    let lost = ctx.lost.load(Ordering::SeqCst);
    #[allow(clippy::cast_precision_loss)]
    let room = (ready as f64 / cli.rooms.max(1) as f64).max(1.0);
    #[allow(clippy::cast_precision_loss)]
    let expected = ready.saturating_sub(lost) as f64 * rate * (room - 1.0);
    let dps = delivered / w.secs;
    let (cpu, rss) = match (w.p0, p1) {
        (Some(a), Some(b)) => (
            format!("{:.2}", (b.cpu_secs - a.cpu_secs) / w.secs),
            format!("{:.1}", b.rss_kib as f64 / 1024.0),
        ),
        _ => ("-".into(), "-".into()),
    };
    let server_us = stats::cpu_us_per(w.p0, p1, delivered);
    let gen_us = stats::cpu_us_per(w.g0, g1, delivered);
    #[allow(clippy::cast_precision_loss)]
    let reads = ctx.reads.load(Ordering::SeqCst) as f64;
    let reads_per = if delivered > 0.0 {
        format!("{:.3}", reads / delivered)
    } else {
        "-".into()
    };
    let gen_cpu = match (w.g0, g1) {
        (Some(a), Some(b)) => format!("{:.2}", (b.cpu_secs - a.cpu_secs) / w.secs),
        _ => "-".into(),
    };
    let sc = match cli.scenario {
        Scenario::A => "A",
        Scenario::B => "B",
        Scenario::C => "C",
    };
    println!(
        "ROW {sc} label={} clients={ready} lost={lost} rate={rate} secs={:.1} sent_per_s={:.0} deliveries_per_s={dps:.0} expected_per_s={expected:.0} p50={:.2} p99={:.2} p999={:.2} max={:.2} samples={} server_cpu_per_s={cpu} server_rss_mib={rss} refused={} nodes={} per_node={} server_us_per_delivery={server_us} gen_cpu_per_s={gen_cpu} gen_us_per_delivery={gen_us} gen_reads_per_delivery={reads_per}",
        cli.label,
        w.secs,
        sent / w.secs,
        sum.p50,
        sum.p99,
        sum.p999,
        sum.max,
        sum.count,
        ctx.refused.load(Ordering::SeqCst),
        ctx.servers.len(),
        ctx.per_node(),
    );
    (dps, sum.p99, delivered >= 0.9 * expected * w.secs)
}

async fn orchestrate(cli: Cli, ex: Arc<Executor<'static>>) -> Result<()> {
    if let Some(a) = cli.servers.iter().find(|a| !a.ip().is_loopback()) {
        bail!("load tests only talk to 127.x addresses (not {a})");
    }
    if cli.servers.is_empty() {
        bail!("--server needs at least one address");
    }
    if cli.proto == Proto::Irc && cli.servers.len() > 1 {
        bail!("--proto irc takes one --server address");
    }
    let ticks = stats::clock_ticks();
    let idle = cli.scenario == Scenario::C;
    let ctx = Arc::new(Ctx::new(&cli, idle));
    let _loops = Loops::start(&ctx)?;
    let base = proc_now(&cli.pid, ticks);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(cli.clients);
    for i in 0..cli.clients {
        tasks.push(ex.spawn(client(ctx.clone(), i)));
    }
    let limit = Duration::from_secs_f64(cli.setup_timeout);
    loop {
        let done = ctx.ready.load(Ordering::SeqCst) + ctx.failed.load(Ordering::SeqCst);
        if done >= cli.clients {
            break;
        }
        if started.elapsed() > limit {
            ctx.stop.store(true, Ordering::SeqCst);
            bail!(
                "set-up took longer than {limit:?} ({done} of {} done)",
                cli.clients
            );
        }
        Timer::after(Duration::from_millis(100)).await;
    }
    let setup_secs = started.elapsed().as_secs_f64();
    let ready = ctx.ready.load(Ordering::SeqCst);
    eprintln!(
        "chatbox-load: {ready} of {} clients ready in {setup_secs:.1} s ({} failed, {} refused logins tried again; per node {})",
        cli.clients,
        ctx.failed.load(Ordering::SeqCst),
        ctx.login_retries.load(Ordering::SeqCst),
        ctx.per_node()
    );
    if ready == 0 {
        bail!("no client could connect");
    }
    match cli.scenario {
        Scenario::A => {
            ctx.set_rate(cli.rate);
            Timer::after(Duration::from_secs_f64(cli.warmup)).await;
            let w = begin(&ctx, &cli.pid, ticks);
            Timer::after(Duration::from_secs_f64(cli.duration)).await;
            end(&cli, &ctx, w, cli.rate, ticks);
        }
        Scenario::B => {
            let mut best: Option<(f64, f64)> = None;
            let mut reached_limit = false;
            for &rate in &cli.rates {
                ctx.set_rate(rate);
                Timer::after(Duration::from_secs_f64(cli.warmup)).await;
                let w = begin(&ctx, &cli.pid, ticks);
                Timer::after(Duration::from_secs_f64(cli.step_secs)).await;
                let (dps, p99, kept_up) = end(&cli, &ctx, w, rate, ticks);
                if p99 < cli.p99_limit_ms && kept_up && ctx.lost.load(Ordering::SeqCst) == 0 {
                    if best.is_none_or(|(d, _)| dps > d) {
                        best = Some((dps, rate));
                    }
                } else {
                    reached_limit = true;
                    break;
                }
            }
            let (cap, at) = best.unwrap_or((0.0, 0.0));
            // reached_limit=0: every step passed, the capacity is at least this.
            println!(
                "ROW Bcap label={} capacity_per_s={cap:.0} at_rate={at} p99_limit_ms={} reached_limit={} nodes={} per_node={}",
                cli.label,
                cli.p99_limit_ms,
                u8::from(reached_limit),
                ctx.servers.len(),
                ctx.per_node()
            );
        }
        Scenario::C => {
            Timer::after(Duration::from_secs(2)).await;
            let now = proc_now(&cli.pid, ticks);
            let (b, n) = match (base, now) {
                (Some(b), Some(n)) => (b.rss_kib, n.rss_kib),
                _ => (0, 0),
            };
            #[allow(clippy::cast_precision_loss)]
            let per = n.saturating_sub(b) as f64 / ready.max(1) as f64;
            println!(
                "ROW C label={} conns={ready} rss_base_kib={b} rss_kib={n} per_conn_kib={per:.2} setup_s={setup_secs:.1} nodes={} per_node={}",
                cli.label,
                ctx.servers.len(),
                ctx.per_node()
            );
        }
    }
    ctx.stop.store(true, Ordering::SeqCst);
    ctx.set_rate(0.0);
    // Tasks notice within 200 ms; the process exits after, closing every socket.
    Timer::after(Duration::from_millis(300)).await;
    drop(tasks);
    Ok(())
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let ex = Arc::new(Executor::new());
    let (stop_tx, stop_rx) = smol::channel::bounded::<()>(1);
    let mut helpers = Vec::new();
    for _ in 1..cli.threads {
        let ex = ex.clone();
        let rx = stop_rx.clone();
        helpers.push(std::thread::spawn(move || {
            let _ = smol::block_on(ex.run(rx.recv()));
        }));
    }
    let r = smol::block_on(ex.run(orchestrate(cli, ex.clone())));
    drop(stop_tx);
    for h in helpers {
        let _ = h.join();
    }
    match r {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chatbox-load: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chatbox_server::test_util::TestServer;

    /// The command line of three clients in `rooms` rooms on `server`, accounts `PREFIX…`.
    fn three_clients(server: &TestServer, rooms: u32, prefix: &str) -> Cli {
        let rooms = rooms.to_string();
        Cli::parse_from([
            "chatbox-load",
            "--server",
            &server.address,
            "--clients",
            "3",
            "--rooms",
            &rooms,
            "--prefix",
            prefix,
        ])
    }

    /// The set-up path (connect, handshake, Register, ConfirmTotp with the URI's TOTP, Login,
    /// lobby history, Part, Join) against an in-process server: every client ends up in its
    /// room with a stored account.
    #[test]
    fn setup_registers_logs_in_and_joins_each_client_on_a_real_server() {
        let server = TestServer::start();
        let cli = three_clients(&server, 2, "ld");
        let ctx = Ctx::new(&cli, false);
        let conns = smol::block_on(async {
            let mut conns = Vec::new();
            for i in 0..cli.clients {
                let permit = ctx.setup.acquire().await;
                conns.push(CbConn::setup(&ctx, i, permit).await.expect("set-up"));
            }
            conns
        });
        let rooms: Vec<&str> = conns.iter().map(|c| c.room.as_str()).collect();
        assert_eq!(rooms, ["#room0", "#room1", "#room0"]);
        let users: Vec<String> = server
            .db()
            .prepare("SELECT User FROM REGISTERED WHERE pending_reg = 0 ORDER BY User")
            .expect("query")
            .query_map([], |r| r.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        assert_eq!(users, ["ld00000", "ld00001", "ld00002"]);
    }

    /// The load phase end to end: three clients set up in one room are handed to an event
    /// loop, send at 2 msg/s, and every delivery they receive is opened, decoded and counted
    /// (their own echoes apart); nobody is lost.
    #[test]
    fn event_loop_sends_and_counts_deliveries_on_a_real_server() {
        let server = TestServer::start();
        let cli = three_clients(&server, 1, "ev");
        let ctx = Arc::new(Ctx::new(&cli, false));
        let loops = Loops::start(&ctx).expect("loops");
        smol::block_on(async {
            for i in 0..cli.clients {
                client(ctx.clone(), i).await;
            }
        });
        assert_eq!(ctx.ready.load(Ordering::SeqCst), 3, "{:?}", ctx.first_error);
        ctx.measuring.store(true, Ordering::SeqCst);
        ctx.set_rate(2.0);
        // Not a timing test: it waits (up to a generous bound) for a count to be reached.
        let until = Instant::now() + Duration::from_secs(60);
        while ctx.delivered.load(Ordering::SeqCst) < 12 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50));
        }
        drop(loops);
        let delivered = ctx.delivered.load(Ordering::SeqCst);
        assert!(
            delivered >= 12,
            "{delivered} deliveries, {:?}",
            ctx.first_error
        );
        assert!(ctx.sent.load(Ordering::SeqCst) >= 6);
        assert!(ctx.echoes.load(Ordering::SeqCst) > 0);
        // The reads that brought those deliveries were counted.
        assert!(ctx.reads.load(Ordering::SeqCst) > 0);
        assert_eq!(ctx.lost.load(Ordering::SeqCst), 0, "{:?}", ctx.first_error);
        let samples = ctx
            .samples
            .lock()
            .map(|mut s| s.summary())
            .expect("samples");
        assert_eq!(samples.count as u64, delivered);
    }

    /// An IRC connection in the load phase: lines split across reads are put back together,
    /// PRIVMSG stamps become latencies, a PING is answered, other lines are skipped.
    #[test]
    fn irc_live_connection_reads_lines_across_reads_and_answers_pings() {
        use std::io::{Read as _, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let ours = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (mut theirs, _) = listener.accept().expect("accept");
        let cli = Cli::parse_from(["chatbox-load", "--proto", "irc"]);
        let ctx = Ctx::new(&cli, false);
        let mut live = Live::new(
            ours,
            vec![0; 4096],
            0,
            Kind::Irc {
                room: "#room0".into(),
            },
        )
        .expect("live");
        let mut lat = Vec::new();
        let mut feed = |bytes: &[u8], lat: &mut Vec<u64>, now: u64| {
            theirs.write_all(bytes).expect("write");
            let until = Instant::now() + Duration::from_secs(10);
            while !live.read_once_for_test() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(5));
            }
            live.process(&ctx, now, lat).expect("process");
            live.flush().expect("flush");
        };
        feed(
            b":a!a@h PRIVMSG #room0 :T100 c1 xx\r\n:a!a@h PRIVMSG #ro",
            &mut lat,
            1_000,
        );
        assert_eq!(lat, [900]);
        feed(
            b"om0 :T250 c2 xx\r\nPING :irc.x\r\n:s 366 u #room0 :End\r\n",
            &mut lat,
            2_000,
        );
        assert_eq!(lat, [900, 1_750]);
        let mut pong = [0u8; 64];
        let n = theirs.read(&mut pong).expect("pong");
        assert_eq!(pong.get(..n), Some(&b"PONG :irc.x\r\n"[..]));
        live.queue_say("T5 c0 x").expect("say");
        assert!(live.flush().expect("flush"));
        let n = theirs.read(&mut pong).expect("privmsg");
        assert_eq!(pong.get(..n), Some(&b"PRIVMSG #room0 :T5 c0 x\r\n"[..]));
    }

    #[test]
    fn slots_are_spread_and_ahead() {
        // 1 msg/s at phase 0.25: slots at 0.25 s, 1.25 s, …
        assert_eq!(next_slot(0, 1.0, 0.25), 250_000);
        assert_eq!(next_slot(250_000, 1.0, 0.25), 1_250_000);
        assert_eq!(next_slot(1_000_000, 1.0, 0.25), 1_250_000);
        // 4 msg/s at phase 0.5: period 250 ms, offset 125 ms.
        assert_eq!(next_slot(130_000, 4.0, 0.5), 375_000);
        for now in [0u64, 999, 123_456, 9_999_999] {
            assert!(next_slot(now, 3.0, 0.7) > now);
        }
        // At a slot's own time (as the event loop asks right after sending it) the next one is
        // a period on, also where the float arithmetic rounds the slot to just below `now`.
        for i in 0..1000u32 {
            let phase = f64::from(i) / 1000.0;
            for rate in [1.0, 1.5, 2.0, 3.0, 7.0] {
                let mut now = 0;
                for _ in 0..20 {
                    let next = next_slot(now, rate, phase);
                    assert!(next > now, "rate {rate} phase {phase}: {next} after {now}");
                    assert!(next - now <= (1e6 / rate) as u64 + 1);
                    now = next;
                }
            }
        }
    }
}
