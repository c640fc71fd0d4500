//! One task per socket: bytes in → `Session::handle_input` → `ClientMsg::decode` → auth or
//! chat → replies sealed with this connection's session → bytes out.
//!
//! Messages of a connection are handled strictly in order, one at a time, so a `Pong` leaves
//! only after everything received before its `Ping` was processed. Records the hub queued for
//! this connection (other users' messages) are sealed and written between requests.
//!
//! Memory: an idle connection owns no I/O buffer. The task waits for readability, reads into a
//! thread-local scratch buffer and keeps only the bytes of an incomplete frame; the write
//! buffer exists only while records are being sealed and written. Message handling (large
//! futures: login, commands) is boxed so the task's own future stays small while it waits.

use core::cell::RefCell;
use core::net::SocketAddr;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Instant;

use chatbox_core::frame::{HEADER_LEN, MAX_PLAINTEXT_LEN, MAX_WIRE_LEN};
use chatbox_core::proto::{
    ClientMsg, ErrorCode, ServerMsg, SessionEntry, SessionEntryList, StrList,
};
use chatbox_core::session::{Event, Input, RECORD_OVERHEAD, Session};
use smol::future::FutureExt as _;
use smol::io::AsyncWriteExt as _;
use smol::{Async, Timer};

use crate::auth::{Refusal, account, invite, login, register};
use crate::chat::mailbox::{Mailbox, Outbound};
use crate::chat::{ConnId, Me, Replies};
use crate::keys::random;
use crate::metrics::LoginResult;
use crate::server::{ConnGuard, Shared};

/// Why an evicted connection ended (info.log).
const EVICTED: &str = "evicted: too many connections not logged in";

const SERVER_HELLO: &[u8] = concat!("ChatBox server ", env!("CARGO_PKG_VERSION")).as_bytes();

/// Why a connection ended (for info.log).
type Reason = String;

thread_local! {
    /// Reads land here first; only an incomplete frame is copied into the connection.
    static READ_SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; MAX_WIRE_LEN]);
    /// Replies are encoded here, then sealed into the connection's write buffer.
    static ENCODE_SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; MAX_PLAINTEXT_LEN]);
}

enum Ev {
    Readable(std::io::Result<()>),
    Read(std::io::Result<usize>),
    Out(Option<Outbound>),
    Timeout,
}

enum Flow {
    Continue,
    Close(Reason),
}

struct Conn {
    shared: Arc<Shared>,
    id: ConnId,
    peer: SocketAddr,
    ip_port: String,
    stream: Async<TcpStream>,
    session: Session,
    /// Received bytes not yet handled (an incomplete frame); empty and unallocated when idle.
    rbuf: Vec<u8>,
    /// Sealed records waiting to be written; unallocated between writes.
    wbuf: Vec<u8>,
    /// The last read filled all the room there was: more is probably waiting, read again at
    /// once (after queued records) instead of waiting for readability.
    read_hot: bool,
    /// The deadline timer, kept armed across events (re-armed only when the deadline moves).
    timer: Timer,
    timer_at: Option<Instant>,
    /// Records the hub queued for this connection (closed: cut off as a slow reader).
    rx: Arc<Mailbox>,
    me: Option<Me>,
    pending: Option<register::Pending>,
    /// The TOTP step this session's login used.
    login_step: Option<u64>,
    /// A second-factor re-enrolment waiting for its code.
    reenrol: Option<account::Reenrol>,
    started: Instant,
    last_rx: Instant,
    tokens: f64,
    refilled: Instant,
    violations: u32,
    in_online: bool,
    refuse: bool,
    /// When the anonymous timeout started: the handshake's end, again after a completed
    /// registration.
    anon_since: Instant,
    /// Counts this connection (as anonymous until it logs in) while it lives.
    guard: ConnGuard,
}

/// Runs one connection to its end, then cleans up after it.
pub async fn run(
    shared: Arc<Shared>,
    stream: Async<TcpStream>,
    peer: SocketAddr,
    id: ConnId,
    guard: ConnGuard,
    rx: Arc<Mailbox>,
) {
    let ip_port = peer.to_string();
    // Anyone can open connections at will: one line per address and 10 s, with a count.
    shared.logs.info_coalesced(
        &format!("connection opened from {}", peer.ip()),
        format!("connection {id} opened from {ip_port}"),
    );
    let _ = stream.get_ref().set_nodelay(true);
    let session = match random::<32>().map_err(|e| e.to_string()).and_then(|eph| {
        Session::server(&shared.keys.static_key, eph, SERVER_HELLO).map_err(|e| e.to_string())
    }) {
        Ok(s) => s,
        Err(e) => {
            shared
                .logs
                .info(format!("connection {id}: cannot start session: {e}"));
            return;
        }
    };
    shared.chat.attach(id, rx.clone());
    let now = Instant::now();
    let mut conn = Conn {
        tokens: shared.config.rate_burst,
        shared: shared.clone(),
        id,
        peer,
        ip_port: ip_port.clone(),
        stream,
        session,
        rbuf: Vec::new(),
        wbuf: Vec::new(),
        read_hot: false,
        timer: Timer::never(),
        timer_at: None,
        rx,
        me: None,
        pending: None,
        login_step: None,
        reenrol: None,
        started: now,
        last_rx: now,
        refilled: now,
        violations: 0,
        in_online: false,
        refuse: guard.refuse,
        anon_since: now,
        guard,
    };
    let reason = conn.drive().await;
    // Boxed: the clean-up's futures are not part of every connection's task while it lives.
    Box::pin(finish(shared, conn, reason)).await;
}

/// After the connection ended: pending registration, rooms, ONLINE row, info.log.
async fn finish(shared: Arc<Shared>, mut conn: Conn, reason: Reason) {
    let (id, ip_port) = (conn.id, conn.ip_port.clone());
    if let Some(p) = conn.pending.take() {
        match shared.store.delete_pending(&p.user).await {
            Ok(true) => shared.logs.credentials(format!(
                "registration discarded (not confirmed) user={} from={ip_port}{}",
                p.user,
                p.invite_id
                    .map(|i| format!(" invite={i} (use given back)"))
                    .unwrap_or_default()
            )),
            Ok(false) => {}
            Err(e) => shared.logs.info(format!("database error: {e}")),
        }
    }
    shared.chat.leave(id).await;
    if conn.in_online
        && let Err(e) = shared.store.online_remove(&ip_port).await
    {
        shared.logs.info(format!("database error: {e}"));
    }
    match conn.me.as_ref() {
        Some(me) => shared.logs.info(format!(
            "connection {id} closed from {ip_port} ({}): {reason}",
            me.user
        )),
        // Refused and anonymous: what a flood repeats, coalesced per address and reason.
        None => {
            let host = ip_port
                .rsplit_once(':')
                .map_or(ip_port.as_str(), |(h, _)| h);
            shared.logs.info_coalesced(
                &format!("anonymous connection closed from {host}: {reason}"),
                format!("connection {id} closed from {ip_port} (anonymous): {reason}"),
            );
        }
    }
    conn.guard.authenticated = conn.me.is_some();
    drop(conn);
}

impl Conn {
    fn deadline(&self) -> Instant {
        let c = &self.shared.config;
        if !self.session.is_established() {
            self.started + c.handshake_timeout
        } else if self.me.is_none() {
            let own = match &self.pending {
                Some(p) => p.started + c.register_timeout,
                None => self.anon_since + c.anonymous_timeout,
            };
            (self.started + c.login_timeout)
                .min(self.last_rx + c.idle_timeout)
                .min(own)
        } else {
            self.last_rx + c.idle_timeout
        }
    }

    async fn next_event(&mut self) -> Ev {
        if self.read_hot {
            // Let other tasks on this thread run between two full buffers.
            smol::future::yield_now().await;
            // Same order as the waits below: queued records first, then the socket.
            if let Some(o) = self.rx.try_recv() {
                return Ev::Out(Some(o));
            }
            match self.read_in() {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => self.read_hot = false,
                r => return Ev::Read(r),
            }
        }
        let deadline = self.deadline();
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
        let out = async { Ev::Out(rx.recv().await) };
        let timer = async {
            timer.await;
            Ev::Timeout
        };
        out.or(read).or(timer).await
    }

    async fn drive(&mut self) -> Reason {
        loop {
            let ev = match self.next_event().await {
                Ev::Readable(Ok(())) => Ev::Read(self.read_in()),
                ev => ev,
            };
            match ev {
                Ev::Read(Ok(0)) => return "peer closed the connection".into(),
                Ev::Read(Ok(_)) => match Box::pin(self.process_input()).await {
                    Ok(Flow::Continue) => {}
                    Ok(Flow::Close(r)) | Err(r) => return r,
                },
                Ev::Read(Err(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                    ) => {}
                Ev::Read(Err(e)) | Ev::Readable(Err(e)) => return format!("read error: {e}"),
                Ev::Readable(Ok(())) => {} // mapped to a read above
                Ev::Out(Some(Outbound::Record(r))) => {
                    // Room for this record and whatever else is queued (batched below).
                    let per = r.len() + RECORD_OVERHEAD;
                    self.wbuf
                        .reserve((per * (1 + self.rx.len())).min(64 * 1024 + per));
                    if let Err(e) = self.queue_plain(&r) {
                        return e;
                    }
                    // Batch whatever else is queued into the same write.
                    while self.wbuf.len() < 64 * 1024 {
                        match self.rx.try_recv() {
                            Some(Outbound::Record(r)) => {
                                if let Err(e) = self.queue_plain(&r) {
                                    return e;
                                }
                            }
                            Some(Outbound::Close(r)) => {
                                let _ = self.queue_plain(&r);
                                let _ = self.flush().await;
                                return "closed by the server".into();
                            }
                            Some(Outbound::Evict(r)) => {
                                if self.me.is_none() {
                                    let _ = self.queue_plain(&r);
                                    let _ = self.flush().await;
                                    return EVICTED.into();
                                }
                            }
                            None => break,
                        }
                    }
                    if let Err(e) = self.flush().await {
                        return e;
                    }
                }
                Ev::Out(Some(Outbound::Close(r))) => {
                    if self.session.is_established() {
                        let _ = self.queue_plain(&r);
                        let _ = self.flush().await;
                    }
                    return "closed by the server".into();
                }
                // Logged in meanwhile: no longer anonymous, the eviction does not apply.
                Ev::Out(Some(Outbound::Evict(_))) if self.me.is_some() => {}
                Ev::Out(Some(Outbound::Evict(r))) => {
                    if self.session.is_established() {
                        let _ = self.queue_plain(&r);
                        let _ = self.flush().await;
                    }
                    return EVICTED.into();
                }
                Ev::Out(None) => {
                    return "disconnected: outbound queue full (slow reader)".into();
                }
                Ev::Timeout => {
                    if !self.session.is_established() {
                        return "handshake timeout".into();
                    }
                    let c = &self.shared.config;
                    let registering = self.me.is_none()
                        && self
                            .pending
                            .as_ref()
                            .is_some_and(|p| Instant::now() >= p.started + c.register_timeout);
                    let reason = if registering {
                        "registration not confirmed in time"
                    } else {
                        "timeout"
                    };
                    let _ = self.send(&ServerMsg::Bye { reason }).await;
                    return if registering {
                        "registration not confirmed in time".into()
                    } else {
                        "timeout".into()
                    };
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
    async fn process_input(&mut self) -> Result<Flow, Reason> {
        loop {
            let (consumed, record) = match self.session.handle_input(&mut self.rbuf) {
                Err(e) => return Ok(Flow::Close(format!("protocol error: {e}"))),
                Ok(Input::Incomplete { .. }) => break,
                Ok(Input::Handshake { consumed }) => (consumed, None),
                Ok(Input::Record {
                    consumed,
                    plaintext,
                }) => (consumed, Some(plaintext.to_vec())),
            };
            self.rbuf.drain(..consumed.min(self.rbuf.len()));
            if let Some(pt) = record {
                self.last_rx = Instant::now();
                if let Flow::Close(r) = self.on_record(&pt).await? {
                    return Ok(Flow::Close(r));
                }
            } else if let Flow::Close(r) = self.on_handshake().await? {
                return Ok(Flow::Close(r));
            }
        }
        if self.rbuf.len() >= MAX_WIRE_LEN {
            return Ok(Flow::Close("read buffer full".into()));
        }
        if self.rbuf.is_empty() {
            // Idle: hold no buffer.
            self.rbuf = Vec::new();
        }
        Ok(Flow::Continue)
    }

    async fn on_handshake(&mut self) -> Result<Flow, Reason> {
        let mut out = [0u8; 512];
        let n = self
            .session
            .poll_transmit(&mut out)
            .map_err(|e| format!("handshake: {e}"))?;
        self.wbuf
            .extend_from_slice(out.get(..n).unwrap_or_default());
        self.flush().await?;
        if self.session.poll_event() == Some(Event::Established) {
            self.anon_since = Instant::now();
            if self.refuse {
                let text = if self.shared.shutting_down() {
                    "server shutting down"
                } else {
                    "too many connections, try again later"
                };
                let _ = self
                    .send(&ServerMsg::error(ErrorCode::ServerFull, text))
                    .await;
                return Ok(Flow::Close("refused: connection limit".into()));
            }
            match self
                .shared
                .store
                .online_insert(&format!("Client{}", self.id), &self.ip_port)
                .await
            {
                Ok(()) => {
                    self.in_online = true;
                    self.shared.chat.set_listed(self.id, &self.ip_port);
                }
                Err(e) => self.shared.logs.info(format!("database error: {e}")),
            }
        }
        Ok(Flow::Continue)
    }

    fn take_token(&mut self) -> bool {
        let c = &self.shared.config;
        let now = Instant::now();
        let dt = now.duration_since(self.refilled).as_secs_f64();
        self.refilled = now;
        self.tokens = (self.tokens + dt * c.rate_per_sec).min(c.rate_burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    async fn on_record(&mut self, pt: &[u8]) -> Result<Flow, Reason> {
        match ClientMsg::decode(pt) {
            Ok(msg) => Box::pin(self.dispatch(&msg)).await,
            Err(e) => {
                self.shared
                    .logs
                    .info(format!("connection {}: undecodable message: {e}", self.id));
                self.send(&ServerMsg::error(ErrorCode::Malformed, "malformed message"))
                    .await
                    .map(|()| Flow::Continue)
            }
        }
    }

    async fn refuse(&mut self, r: Refusal) -> Result<Flow, Reason> {
        self.send(&ServerMsg::error(r.code, &r.text)).await?;
        Ok(if r.close {
            Flow::Close(format!("closed after error {}", r.code.name()))
        } else {
            Flow::Continue
        })
    }

    async fn dispatch(&mut self, msg: &ClientMsg<'_>) -> Result<Flow, Reason> {
        if !matches!(msg, ClientMsg::Ping { .. } | ClientMsg::Bye) && !self.take_token() {
            self.violations += 1;
            if self.violations > self.shared.config.rate_violations {
                let _ = self
                    .send(&ServerMsg::Bye {
                        reason: "rate limit exceeded",
                    })
                    .await;
                return Ok(Flow::Close("rate limit exceeded".into()));
            }
            self.send(&ServerMsg::error(
                ErrorCode::RateLimited,
                "too many messages, slow down",
            ))
            .await?;
            return Ok(Flow::Continue);
        }
        let shared = self.shared.clone();
        match *msg {
            ClientMsg::Ping { token } => {
                self.send(&ServerMsg::Pong { token }).await?;
                Ok(Flow::Continue)
            }
            ClientMsg::Bye => Ok(Flow::Close("client said bye".into())),
            ClientMsg::Register { user, password } => {
                Box::pin(self.register(user, password, None)).await
            }
            ClientMsg::RegisterInvite {
                user,
                password,
                invite,
            } => Box::pin(self.register(user, password, Some(invite))).await,
            ClientMsg::AskPolicy => {
                let invite_required =
                    shared.config.registration == crate::invite::Registration::Invite;
                self.send(&ServerMsg::RegistrationPolicy { invite_required })
                    .await?;
                Ok(Flow::Continue)
            }
            ClientMsg::ConfirmTotp { code } => {
                let Some(pending) = self.pending.as_mut() else {
                    return self
                        .refuse(Refusal::keep(
                            ErrorCode::BadState,
                            "no registration in progress",
                        ))
                        .await;
                };
                match register::confirm(&shared, pending, code, &self.ip_port).await {
                    Ok(codes) => {
                        shared.metrics.registration();
                        self.pending = None;
                        // The same connection may log in next: a fresh anonymous period.
                        self.anon_since = Instant::now();
                        let list: Vec<&str> = codes.iter().map(|c| c.as_str()).collect();
                        self.send(&ServerMsg::Registered {
                            scratch_codes: StrList::Items(&list),
                        })
                        .await?;
                        Ok(Flow::Continue)
                    }
                    Err(r) => self.refuse(r).await,
                }
            }
            ClientMsg::Login {
                user,
                password,
                otp,
            } => {
                if self.me.is_some() || self.pending.is_some() {
                    return self
                        .refuse(Refusal::keep(
                            ErrorCode::BadState,
                            "already logged in or registering",
                        ))
                        .await;
                }
                let began = crate::time::now_ms();
                match login::login(&shared, user, password, otp, self.peer.ip(), &self.ip_port)
                    .await
                {
                    Ok(li) => {
                        shared.metrics.login(LoginResult::Ok);
                        shared.metrics.conn_authenticated();
                        self.login_step = li.step;
                        let since_ms = crate::time::now_ms();
                        let me = Me {
                            id: self.id,
                            user: li.user,
                            ip_port: self.ip_port.clone(),
                        };
                        shared.chat.sign_in(&me, since_ms);
                        self.guard.logged_in();
                        // An administrator's change that raced this login (see there).
                        if let Some(reason) =
                            crate::server::admin_raced_login(&shared, &me.user, began).await
                        {
                            let _ = self.send(&ServerMsg::Bye { reason }).await;
                            return Ok(Flow::Close(format!("{reason} (during login)")));
                        }
                        let mut out = Replies::default();
                        shared.chat.enter(&me, &mut out).await;
                        self.me = Some(me);
                        self.send_replies(out).await
                    }
                    Err(r) => {
                        shared.metrics.login(if r.code == ErrorCode::Busy {
                            LoginResult::Busy
                        } else {
                            LoginResult::Failed
                        });
                        self.refuse(r).await
                    }
                }
            }
            ClientMsg::ChangePassword { .. }
            | ClientMsg::Reenrol { .. }
            | ClientMsg::ConfirmReenrol { .. }
            | ClientMsg::Sessions
            | ClientMsg::RevokeSession { .. }
            | ClientMsg::RevokeOtherSessions
                if self.me.is_some() =>
            {
                Box::pin(self.self_service(msg)).await
            }
            _ => {
                let Some(me) = self.me.clone() else {
                    return self
                        .refuse(Refusal::keep(
                            ErrorCode::NotAuthenticated,
                            "log in first (only Register, RegisterInvite, ConfirmTotp, Login, AskPolicy, Ping and Bye are allowed)",
                        ))
                        .await;
                };
                let mut out = Replies::default();
                shared.chat.handle(&me, msg, &mut out).await;
                self.send_replies(out).await
            }
        }
    }

    /// `Register` (`invite` None) or `RegisterInvite`: the policy and the invite first (so a
    /// refused invite reveals nothing about names), then the registration.
    async fn register(
        &mut self,
        user: &str,
        password: &str,
        invite: Option<&str>,
    ) -> Result<Flow, Reason> {
        if self.me.is_some() || self.pending.is_some() {
            return self
                .refuse(Refusal::keep(
                    ErrorCode::BadState,
                    "already logged in or registering",
                ))
                .await;
        }
        let shared = self.shared.clone();
        let admit = match invite::admit(&shared, invite, user, self.peer.ip(), &self.ip_port).await
        {
            Ok(a) => a,
            Err(r) => return self.refuse(r).await,
        };
        match register::start(
            &shared,
            user,
            password,
            self.peer.ip(),
            &self.ip_port,
            admit.as_ref(),
        )
        .await
        {
            Ok((uri, pending)) => {
                self.pending = Some(pending);
                self.send(&ServerMsg::RegisterStarted { uri: &uri }).await?;
                Ok(Flow::Continue)
            }
            Err(r) => self.refuse(r).await,
        }
    }

    /// Account self-service (logged in).
    async fn self_service(&mut self, msg: &ClientMsg<'_>) -> Result<Flow, Reason> {
        let shared = self.shared.clone();
        let Some(me) = self.me.clone() else {
            return Ok(Flow::Continue);
        };
        let who = account::Who {
            user: &me.user,
            conn: self.id,
            ip: self.peer.ip(),
            ip_port: &self.ip_port,
            login_step: self.login_step,
        };
        match *msg {
            ClientMsg::ChangePassword {
                password,
                otp,
                new_password,
            } => match account::change_password(&shared, who, password, otp, new_password).await {
                Ok(closed) => {
                    self.send(&ServerMsg::PasswordChanged { closed }).await?;
                    Ok(Flow::Continue)
                }
                Err(r) => self.refuse(r).await,
            },
            ClientMsg::Reenrol { password, otp } => {
                match account::reenrol_start(&shared, who, password, otp).await {
                    Ok((uri, r)) => {
                        self.reenrol = Some(r);
                        self.send(&ServerMsg::ReenrolStarted { uri: &uri }).await?;
                        Ok(Flow::Continue)
                    }
                    Err(r) => self.refuse(r).await,
                }
            }
            ClientMsg::ConfirmReenrol { code } => {
                let Some(mut r) = self.reenrol.take() else {
                    return self
                        .refuse(Refusal::keep(
                            ErrorCode::BadState,
                            "no re-enrolment in progress",
                        ))
                        .await;
                };
                match account::reenrol_confirm(&shared, who, &mut r, code).await {
                    Ok((closed, codes)) => {
                        let list: Vec<&str> = codes.iter().map(|c| c.as_str()).collect();
                        self.send(&ServerMsg::Reenrolled {
                            closed,
                            scratch_codes: StrList::Items(&list),
                        })
                        .await?;
                        Ok(Flow::Continue)
                    }
                    Err((refusal, drop)) => {
                        if !drop {
                            self.reenrol = Some(r);
                        }
                        self.refuse(refusal).await
                    }
                }
            }
            ClientMsg::Sessions => {
                let all = shared.chat.sessions(&me.user);
                let ids: Vec<String> = all.iter().map(account::session_id).collect();
                let entries: Vec<SessionEntry<'_>> = all
                    .iter()
                    .zip(&ids)
                    .map(|(s, id)| SessionEntry {
                        id,
                        node: &s.node,
                        address: &s.address,
                        since_ms: s.since_ms,
                        current: s.node == shared.node && s.conn == self.id,
                    })
                    .collect();
                let mut chunks = entries.chunks(64).peekable();
                if chunks.peek().is_none() {
                    self.queue_msg(&ServerMsg::SessionList {
                        done: true,
                        sessions: SessionEntryList::Items(&[]),
                    })?;
                }
                while let Some(c) = chunks.next() {
                    self.queue_msg(&ServerMsg::SessionList {
                        done: chunks.peek().is_none(),
                        sessions: SessionEntryList::Items(c),
                    })?;
                }
                self.flush().await?;
                Ok(Flow::Continue)
            }
            ClientMsg::RevokeSession { id } => match account::revoke(&shared, who, Some(id)) {
                Ok(count) => {
                    self.send(&ServerMsg::SessionsRevoked { count }).await?;
                    Ok(Flow::Continue)
                }
                Err(r) => self.refuse(r).await,
            },
            ClientMsg::RevokeOtherSessions => match account::revoke(&shared, who, None) {
                Ok(count) => {
                    self.send(&ServerMsg::SessionsRevoked { count }).await?;
                    Ok(Flow::Continue)
                }
                Err(r) => self.refuse(r).await,
            },
            _ => Ok(Flow::Continue),
        }
    }

    async fn send_replies(&mut self, out: Replies) -> Result<Flow, Reason> {
        for r in &out.records {
            self.queue_plain(r)?;
        }
        self.flush().await?;
        Ok(if out.close {
            Flow::Close("closed by the server".into())
        } else {
            Flow::Continue
        })
    }

    /// Seals one record (plaintext already encoded) onto the write buffer.
    fn queue_plain(&mut self, pt: &[u8]) -> Result<(), Reason> {
        let start = self.wbuf.len();
        self.wbuf.resize(start + pt.len() + RECORD_OVERHEAD, 0);
        let rec = self.wbuf.get_mut(start..).unwrap_or_default();
        if let Some(dst) = rec.get_mut(HEADER_LEN..HEADER_LEN + pt.len()) {
            dst.copy_from_slice(pt);
        }
        match self.session.seal_in_place(rec, pt.len()) {
            Ok(n) => {
                self.wbuf.truncate(start + n);
                Ok(())
            }
            Err(e) => {
                self.wbuf.truncate(start);
                Err(format!("seal failed: {e}"))
            }
        }
    }

    /// Encodes a message (in a thread-local scratch buffer) and seals it onto the write buffer.
    fn queue_msg(&mut self, msg: &ServerMsg<'_>) -> Result<(), Reason> {
        ENCODE_SCRATCH.with_borrow_mut(|scratch| match msg.encode(scratch) {
            Ok(n) => self.queue_plain(scratch.get(..n).unwrap_or_default()),
            Err(e) => Err(format!("encode failed: {e}")),
        })
    }

    async fn send(&mut self, msg: &ServerMsg<'_>) -> Result<(), Reason> {
        self.queue_msg(msg)?;
        self.flush().await
    }

    /// Writes the write buffer out, within the write timeout.
    async fn flush(&mut self) -> Result<(), Reason> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        // Fast path: the socket almost always takes everything at once; no timer, no waiting.
        let mut done = 0;
        while let Some(rest) = self.wbuf.get(done..).filter(|r| !r.is_empty()) {
            match (&mut self.stream.get_ref()).write(rest) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    self.wbuf = Vec::new();
                    return Err(format!("write error: {e}"));
                }
            }
        }
        if done >= self.wbuf.len() {
            self.wbuf = Vec::new();
            return Ok(());
        }
        self.wbuf.drain(..done);
        let timeout = self.shared.config.write_timeout;
        let metrics = &self.shared.metrics;
        let Conn {
            stream, wbuf, rx, ..
        } = self;
        let write = async {
            stream
                .write_all(wbuf)
                .await
                .map_err(|e| format!("write error: {e}"))
        };
        let killed = async {
            rx.closed().await;
            Err("disconnected: outbound queue full (slow reader)".to_owned())
        };
        let timer = async {
            Timer::after(timeout).await;
            metrics.slow_reader();
            Err("write timeout (slow reader)".to_owned())
        };
        let r = write.or(killed).or(timer).await;
        // Idle connections hold no write buffer.
        self.wbuf = Vec::new();
        r
    }
}
