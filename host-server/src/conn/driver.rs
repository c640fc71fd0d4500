//! The I/O of one connection: the socket, its buffers, the deadline timer and the mailbox, fed
//! into the sans-IO [`ConnState`] and the services (accounts, chat); replies sealed with this
//! connection's session and flushed within the write timeout.
//!
//! Messages of a connection are handled strictly in order, one at a time, so a `Pong` leaves
//! only after everything received before its `Ping` was processed. Other users' messages are
//! sealed and written by the task that delivers them, through this connection's [`Outlet`]
//! in its mailbox, when the socket takes them at once; what it cannot take wakes this task,
//! which writes within the write timeout and takes the queue from there.
//!
//! Memory: an idle connection owns no I/O buffer. The task waits for readability, reads into a
//! thread-local scratch buffer and keeps only the bytes of an incomplete frame; the outlet's
//! buffer exists only while bytes wait for the socket. Message handling (large futures: login,
//! commands) is boxed so the task's own future stays small while it waits.
//! See docs/DESIGN.md, "Server: connections and runtime".

use core::cell::RefCell;
use core::future::Future;
use core::net::SocketAddr;
use std::io::Read as _;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Instant;

use chatbox_core::frame::{MAX_PLAINTEXT_LEN, MAX_WIRE_LEN};
use chatbox_core::proto::{ClientMsg, ErrorCode, ServerMsg};
use chatbox_core::session::{Event, Input, Receiver, Session, SessionError};
use smol::future::FutureExt as _;
use smol::{Async, Timer};

use super::Env;
use super::close::CloseReason;
use super::state::{ConnState, Timeout};
use crate::auth::{Refusal, register};
use crate::chat::mailbox::{Mailbox, Next, Outbound};
use crate::chat::{ConnId, Replies};
use crate::keys::random;
use crate::outlet::{Outlet, OutletError, Wrote};
use crate::runtime::admission::ConnGuard;

const SERVER_HELLO: &[u8] = concat!("ChatBox server ", env!("CARGO_PKG_VERSION")).as_bytes();

thread_local! {
    /// Reads land here first; only an incomplete frame is copied into the connection.
    static READ_SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; MAX_WIRE_LEN]);
    /// Replies are encoded here, then sealed into the connection's outlet.
    static ENCODE_SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; MAX_PLAINTEXT_LEN]);
}

enum Ev {
    Readable(std::io::Result<()>),
    Read(std::io::Result<usize>),
    Out(Option<Next>),
    Timeout,
}

pub(super) enum Flow {
    /// Keep going.
    Continue,
    /// Close, for this reason.
    Close(CloseReason),
}

pub(super) struct Conn {
    pub(super) env: Arc<Env>,
    pub(super) id: ConnId,
    pub(super) peer: SocketAddr,
    pub(super) ip_port: String,
    pub(super) stream: Arc<Async<TcpStream>>,
    /// The session: whole (boxed) while the handshake runs, then only its receiving half (the
    /// sending half is in the mailbox's outlet).
    pub(super) link: Link,
    /// Phase, token bucket, deadlines: everything decided without I/O.
    pub(super) state: ConnState,
    /// Received bytes not yet handled (an incomplete frame); empty and unallocated when idle.
    pub(super) rbuf: Vec<u8>,
    /// The last read filled all the room there was: more is probably waiting, read again at
    /// once (after queued records) instead of waiting for readability.
    pub(super) read_hot: bool,
    /// The deadline timer, kept armed across events (re-armed only when the deadline moves).
    pub(super) timer: Timer,
    pub(super) timer_at: Option<Instant>,
    /// Records the hub queued for this connection and its outlet (closed: cut off as a slow
    /// reader).
    pub(super) rx: Arc<Mailbox>,
    pub(super) in_online: bool,
    /// Counts this connection (as anonymous until it logs in) while it lives.
    pub(super) guard: ConnGuard,
}

/// A connection's session, by phase. An established connection keeps only the receiving
/// ratchet: the handshake state and the server's payload (464 B) are gone with the box.
pub(super) enum Link {
    Handshake(Box<Session>),
    Open(Receiver),
    /// Transitional (between the two), never observed.
    Gone,
}

impl Link {
    fn handle_input<'a>(&mut self, bytes: &'a mut [u8]) -> Result<Input<'a>, SessionError> {
        match self {
            Link::Handshake(s) => s.handle_input(bytes),
            Link::Open(r) => r.handle_input(bytes),
            Link::Gone => Err(SessionError::UnexpectedMessage),
        }
    }
}

/// Runs one connection to its end, then cleans up after it. The connection is built before
/// the task's future (an `async fn` would hold its arguments twice, for as long as the
/// connection lives), and the clean-up is boxed: neither is part of every idle connection.
pub(crate) fn run(
    env: Arc<Env>,
    stream: Async<TcpStream>,
    peer: SocketAddr,
    guard: ConnGuard,
    rx: Arc<Mailbox>,
) -> impl Future<Output = ()> + Send + 'static {
    let mut conn = open(env, stream, peer, guard, rx);
    async move {
        let Some(c) = conn.as_mut() else { return };
        let reason = c.drive().await;
        // Built outside the await: no `Conn` binding lives across it.
        let done = conn.map(|c| Box::pin(finish(c.env.clone(), c, reason)));
        if let Some(f) = done {
            f.await;
        }
    }
}

/// The connection, before its first event: its session started, its outlet and chat entry
/// in place (`None`, logged, if the session cannot start).
fn open(
    env: Arc<Env>,
    stream: Async<TcpStream>,
    peer: SocketAddr,
    guard: ConnGuard,
    rx: Arc<Mailbox>,
) -> Option<Conn> {
    let id = guard.id();
    let ip_port = peer.to_string();
    // Anyone can open connections at will: one line per address and 10 s, with a count.
    env.logs.info_coalesced(
        &format!("connection opened from {}", peer.ip()),
        format!("connection {id} opened from {ip_port}"),
    );
    let _ = stream.get_ref().set_nodelay(true);
    let cannot = |e: &dyn core::fmt::Display| {
        env.logs
            .info(format!("connection {id}: cannot start session: {e}"));
    };
    let eph = match random::<32>() {
        Ok(k) => k,
        Err(e) => {
            cannot(&e);
            return None;
        }
    };
    let session = match Session::server(&env.keys.static_key, eph, SERVER_HELLO) {
        Ok(s) => Box::new(s),
        Err(e) => {
            cannot(&e);
            return None;
        }
    };
    let stream = Arc::new(stream);
    rx.attach_outlet(Outlet::new(stream.clone()));
    env.chat.attach(id, rx.clone());
    Some(Conn {
        state: ConnState::new(env.limits, Instant::now()),
        env: env.clone(),
        id,
        peer,
        ip_port,
        stream,
        link: Link::Handshake(session),
        rbuf: Vec::new(),
        read_hot: false,
        timer: Timer::never(),
        timer_at: None,
        rx,
        in_online: false,
        guard,
    })
}

/// After the connection ended: pending registration, rooms, ONLINE row, info.log.
async fn finish(env: Arc<Env>, mut conn: Conn, reason: CloseReason) {
    // Nothing is written any more: the socket and the sending half are let go with `conn`.
    conn.rx.shut();
    let (id, ip_port) = (conn.id, conn.ip_port.clone());
    if let Some(p) = conn.state.take_pending() {
        register::discard(&env.accounts, &p, &ip_port).await;
    }
    env.chat.leave(id).await;
    if conn.in_online
        && let Err(e) = env.store.online_remove(&ip_port).await
    {
        env.logs.info(format!("database error: {e}"));
    }
    match conn.state.session() {
        Some(s) => env.logs.info(format!(
            "connection {id} closed from {ip_port} ({}): {reason}",
            s.me.user
        )),
        // Refused and anonymous: what a flood repeats, coalesced per address and reason.
        None => {
            let host = ip_port
                .rsplit_once(':')
                .map_or(ip_port.as_str(), |(h, _)| h);
            env.logs.info_coalesced(
                &format!("anonymous connection closed from {host}: {reason}"),
                format!("connection {id} closed from {ip_port} (anonymous): {reason}"),
            );
        }
    }
    conn.guard.authenticated = conn.state.is_logged_in();
    drop(conn);
}

impl Conn {
    async fn next_event(&mut self) -> Ev {
        if self.read_hot {
            // Let other tasks on this thread run between two full buffers.
            smol::future::yield_now().await;
            // Same order as the waits below: queued records first, then the socket.
            if let Some(o) = self.rx.try_next() {
                return Ev::Out(Some(o));
            }
            match self.read_in() {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => self.read_hot = false,
                r => return Ev::Read(r),
            }
        }
        let deadline = self.state.deadline();
        if self.timer_at != Some(deadline) {
            self.timer.set_at(deadline);
            self.timer_at = Some(deadline);
        }
        let Conn {
            stream, rx, timer, ..
        } = self;
        // `poll_readable` keeps this task's waker registered between events, so waiting again
        // after an outbound record costs no epoll_ctl.
        let read =
            async { Ev::Readable(core::future::poll_fn(|cx| stream.poll_readable(cx)).await) };
        let out = async { Ev::Out(rx.next().await) };
        let timer = async {
            timer.await;
            Ev::Timeout
        };
        out.or(read).or(timer).await
    }

    /// Seals and writes `r` and then closes: what a `Close` or an eviction leaves with.
    async fn last_words(&mut self, r: &[u8]) {
        if matches!(self.link, Link::Open(_)) {
            let _ = self.queue_plain(r);
            let _ = self.flush().await;
        }
    }

    async fn drive(&mut self) -> CloseReason {
        loop {
            let ev = match self.next_event().await {
                Ev::Readable(Ok(())) => Ev::Read(self.read_in()),
                ev => ev,
            };
            match ev {
                Ev::Read(Ok(0)) => return CloseReason::PeerClosed,
                Ev::Read(Ok(_)) => {
                    // Replies to what was read go before what others deliver meanwhile.
                    self.rx.with_outlet(|o| o.set_busy(true));
                    let r = Box::pin(self.process_input()).await;
                    self.rx.with_outlet(|o| o.set_busy(false));
                    match r {
                        Ok(Flow::Continue) => {}
                        Ok(Flow::Close(r)) | Err(r) => return r,
                    }
                }
                Ev::Read(Err(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                    ) => {}
                Ev::Read(Err(e)) | Ev::Readable(Err(e)) => return CloseReason::Read(e),
                Ev::Readable(Ok(())) => {} // mapped to a read above
                Ev::Out(Some(Next::Out(Outbound::Record(r)))) => {
                    // This record and whatever else is queued, in one write.
                    let stopped = match self.rx.seal_with_queued(&r) {
                        Ok(s) => s,
                        Err(e) => return e.into(),
                    };
                    match stopped {
                        Some(Outbound::Close(r)) => {
                            self.last_words(&r).await;
                            return CloseReason::ByServer;
                        }
                        Some(Outbound::Evict(r)) if !self.state.is_logged_in() => {
                            self.last_words(&r).await;
                            return CloseReason::Evicted;
                        }
                        Some(Outbound::Evict(_) | Outbound::Record(_)) | None => {}
                    }
                    if let Err(e) = self.flush().await {
                        return e;
                    }
                }
                Ev::Out(Some(Next::Flush)) => {
                    if let Err(e) = self.flush().await {
                        return e;
                    }
                }
                Ev::Out(Some(Next::Failed(e))) => return e.into(),
                Ev::Out(Some(Next::Out(Outbound::Close(r)))) => {
                    self.last_words(&r).await;
                    return CloseReason::ByServer;
                }
                // Logged in meanwhile: no longer anonymous, the eviction does not apply.
                Ev::Out(Some(Next::Out(Outbound::Evict(_)))) if self.state.is_logged_in() => {}
                Ev::Out(Some(Next::Out(Outbound::Evict(r)))) => {
                    self.last_words(&r).await;
                    return CloseReason::Evicted;
                }
                Ev::Out(None) => return CloseReason::SlowReader,
                Ev::Timeout => {
                    let (bye, reason) = match self.state.timeout(Instant::now()) {
                        Timeout::Handshake => return CloseReason::HandshakeTimeout,
                        Timeout::Registration => (
                            "registration not confirmed in time",
                            CloseReason::RegistrationTimeout,
                        ),
                        Timeout::Other => ("timeout", CloseReason::Timeout),
                    };
                    let _ = self.send(&ServerMsg::Bye { reason: bye }).await;
                    return reason;
                }
            }
        }
    }

    /// Reads what the socket has (at most what fits in one frame's worth of buffer) into the
    /// thread-local scratch buffer and appends it to the connection's pending bytes.
    fn read_in(&mut self) -> std::io::Result<usize> {
        let room = MAX_WIRE_LEN.saturating_sub(self.rbuf.len());
        if room == 0 {
            // Cannot happen: a full buffer is closed by `process_input`.
            return Err(std::io::Error::other("read buffer full"));
        }
        READ_SCRATCH.with_borrow_mut(|scratch| {
            let space = scratch.get_mut(..room).unwrap_or_default();
            let n = (&mut self.stream.get_ref()).read(space)?;
            self.read_hot = n == room;
            self.rbuf
                .extend_from_slice(space.get(..n).unwrap_or_default());
            Ok(n)
        })
    }

    /// Handles every whole frame in the read buffer.
    async fn process_input(&mut self) -> Result<Flow, CloseReason> {
        loop {
            let (consumed, record) = match self.link.handle_input(&mut self.rbuf) {
                Err(e) => return Ok(Flow::Close(CloseReason::Protocol(e))),
                Ok(Input::Incomplete { .. }) => break,
                Ok(Input::Handshake { consumed }) => (consumed, None),
                Ok(Input::Record {
                    consumed,
                    plaintext,
                }) => (consumed, Some(plaintext.to_vec())),
            };
            self.rbuf.drain(..consumed.min(self.rbuf.len()));
            if let Some(pt) = record {
                self.state.received(Instant::now());
                if let Flow::Close(r) = self.on_record(&pt).await? {
                    return Ok(Flow::Close(r));
                }
            } else if let Flow::Close(r) = self.on_handshake().await? {
                return Ok(Flow::Close(r));
            }
        }
        if self.rbuf.len() >= MAX_WIRE_LEN {
            return Ok(Flow::Close(CloseReason::ReadBufferFull));
        }
        if self.rbuf.is_empty() {
            // Idle: hold no buffer.
            self.rbuf = Vec::new();
        }
        Ok(Flow::Continue)
    }

    async fn on_handshake(&mut self) -> Result<Flow, CloseReason> {
        let mut out = [0u8; 512];
        let Link::Handshake(session) = &mut self.link else {
            return Err(CloseReason::Handshake(SessionError::UnexpectedMessage));
        };
        let n = session
            .poll_transmit(&mut out)
            .map_err(CloseReason::Handshake)?;
        let established = session.poll_event() == Some(Event::Established);
        let sender = if established {
            session.take_sender()
        } else {
            None
        };
        let bytes = out.get(..n).unwrap_or_default();
        self.rx.with_outlet(|o| o.push_raw(bytes));
        self.flush().await?;
        if established {
            self.state.established(Instant::now());
            // From now on records are sealed where they are written: in the outlet; the
            // connection keeps only the receiving half.
            if let Some(sender) = sender {
                self.rx.with_outlet(|o| o.establish(sender));
            }
            self.link = match core::mem::replace(&mut self.link, Link::Gone) {
                Link::Handshake(s) => s.into_receiver().map_or(Link::Gone, Link::Open),
                other => other,
            };
            if self.guard.refuse {
                let text = if self.guard.shutting_down() {
                    "server shutting down"
                } else {
                    "too many connections, try again later"
                };
                let _ = self
                    .send(&ServerMsg::error(ErrorCode::ServerFull, text))
                    .await;
                return Ok(Flow::Close(CloseReason::Refused));
            }
            match self
                .env
                .store
                .online_insert(&format!("Client{}", self.id), &self.ip_port)
                .await
            {
                Ok(()) => {
                    self.in_online = true;
                    self.env.chat.set_listed(self.id, &self.ip_port);
                }
                Err(e) => self.env.logs.info(format!("database error: {e}")),
            }
        }
        Ok(Flow::Continue)
    }

    async fn on_record(&mut self, pt: &[u8]) -> Result<Flow, CloseReason> {
        match ClientMsg::decode(pt) {
            Ok(msg) => Box::pin(self.dispatch(&msg)).await,
            Err(e) => {
                self.env
                    .logs
                    .info(format!("connection {}: undecodable message: {e}", self.id));
                self.send(&ServerMsg::error(ErrorCode::Malformed, "malformed message"))
                    .await
                    .map(|()| Flow::Continue)
            }
        }
    }

    pub(super) async fn refuse(&mut self, r: Refusal) -> Result<Flow, CloseReason> {
        self.send(&ServerMsg::error(r.code, &r.text)).await?;
        Ok(if r.close {
            Flow::Close(CloseReason::AfterError(r.code))
        } else {
            Flow::Continue
        })
    }

    pub(super) async fn send_replies(&mut self, out: Replies) -> Result<Flow, CloseReason> {
        for r in &out.records {
            self.queue_plain(r)?;
        }
        self.flush().await?;
        Ok(if out.close {
            Flow::Close(CloseReason::ByServer)
        } else {
            Flow::Continue
        })
    }

    /// Seals one record (plaintext already encoded) onto the outlet, after what is unsent.
    fn queue_plain(&mut self, pt: &[u8]) -> Result<(), CloseReason> {
        match self.rx.with_outlet(|o| o.seal(pt)) {
            Some(r) => r.map_err(CloseReason::from),
            // Shut: the connection is ending anyway.
            None => Err(CloseReason::SlowReader),
        }
    }

    /// Encodes a message (in a thread-local scratch buffer) and seals it onto the write buffer.
    pub(super) fn queue_msg(&mut self, msg: &ServerMsg<'_>) -> Result<(), CloseReason> {
        ENCODE_SCRATCH.with_borrow_mut(|scratch| match msg.encode(scratch) {
            Ok(n) => self.queue_plain(scratch.get(..n).unwrap_or_default()),
            Err(e) => Err(CloseReason::Encode(e)),
        })
    }

    pub(super) async fn send(&mut self, msg: &ServerMsg<'_>) -> Result<(), CloseReason> {
        self.queue_msg(msg)?;
        self.flush().await
    }

    /// Writes what the outlet holds, within the write timeout.
    pub(super) async fn flush(&mut self) -> Result<(), CloseReason> {
        // Fast path: the socket almost always takes everything at once; no timer, no waiting.
        match self.rx.with_outlet(Outlet::write_now) {
            None | Some(Ok(Wrote::All)) => Ok(()),
            Some(Ok(Wrote::Partly)) => Box::pin(self.flush_rest()).await,
            Some(Err(e)) => Err(e.into()),
        }
    }

    /// The slow path of [`Conn::flush`], boxed so that waiting connections' futures do not
    /// carry it: waits for the socket, within the write timeout.
    async fn flush_rest(&mut self) -> Result<(), CloseReason> {
        let timeout = self.env.write_timeout;
        let metrics = &self.env.metrics;
        let Conn { stream, rx, .. } = self;
        let write = async {
            loop {
                stream.writable().await.map_err(CloseReason::Write)?;
                match rx.with_outlet(Outlet::write_now) {
                    None | Some(Ok(Wrote::All)) => return Ok(()),
                    Some(Ok(Wrote::Partly)) => {}
                    Some(Err(e)) => return Err(CloseReason::from(e)),
                }
            }
        };
        let killed = async {
            rx.closed().await;
            Err(CloseReason::SlowReader)
        };
        let timer = async {
            Timer::after(timeout).await;
            metrics.slow_reader();
            Err(CloseReason::WriteTimeout)
        };
        write.or(killed).or(timer).await
    }
}

impl From<OutletError> for CloseReason {
    fn from(e: OutletError) -> CloseReason {
        match e {
            OutletError::Seal(e) => CloseReason::Seal(e),
            OutletError::Write(e) => CloseReason::Write(e),
        }
    }
}
