//! `chat --plain`: stdin lines in, one line per event out, and reconnecting when the
//! connection is lost.
//!
//! Each stdin line is parsed with the room current at that moment and queued; lines go out at
//! the pace the server's rate limit allows ([`Pacer`], from the `RateLimit` the server sends at
//! login), each followed by a `Ping`, and the [`Outbox`] keeps a line until its `Pong`
//! acknowledges it. A line the server answers with `rate_limited` (or `busy`) is sent again; a
//! line it refuses otherwise (too long, not permitted, no such user…), or one too long for the
//! client to send at all, is refused for good (a mistyped `/command` is only reported). At end
//! of input a final `Ping` is sent; once it is answered everything was handled, `Bye` is sent
//! and the exit status is 0 — or 6 ([`crate::error::exit::REFUSED`]) if any line was refused
//! for good.
//!
//! When the connection breaks (reset, end of stream without `Bye`, no answer to a ping for
//! [`FINAL_ACK_TIMEOUT`]) and `CHATBOX_TOTP_SECRET` is set, the client prints
//! `reconnecting to ADDR` for each address it tries (the next one in the list first, wrapping
//! around), logs in with a fresh code, prints `reconnected to ADDR` and the login's events,
//! joins the rooms it was in again, and sends the unacknowledged lines again before reading
//! more input — except those known to be handled (see [`crate::outbox`]: a chat line whose
//! stored copy came back, or that the target's history shows was stored, is not sent twice).
//! It gives up after [`RECONNECT_WINDOW`] (exit 2). Without the secret it exits 2 at once,
//! saying so. A `Bye` from the server (shutdown, kick, ban) is never a reason to
//! reconnect; a refused login is final (exit 4).

use std::collections::VecDeque;
use std::io::{self, BufRead as _};
use std::time::Instant;

use chatbox_core::proto::{ClientMsg, PresenceKind};
use smol::future::FutureExt as _;

use crate::account::LoggedIn;
use crate::commands::{Parsed, Rooms, SecretCommand, parse, secret_command};
use crate::conn::{Conn, random_u64};
use crate::error::ClientError;
use crate::event::ServerEvent;
use crate::failover::{
    Code, Progress, RECONNECT_WINDOW, Rounds, Target, first_login, login_any, rejoin, settle,
};
use crate::otp_source::{OtpSource, SECRET_ENV};
use crate::outbox::{Limit, Line, OUTBOX_LIMIT, Outbox, Pacer, PingKind};
use crate::plain::{
    DEFAULT_ROOM, FINAL_ACK_TIMEOUT, KEEPALIVE, NamesBatches, format_event, out_line,
};
use crate::qr_view;

/// More reconnects than this within [`RECONNECT_WINDOW`] × 2 and the client gives up (a node
/// that accepts logins and drops them at once).
pub const MAX_RECONNECTS: usize = 5;

/// Stdin lines read ahead of the connection.
const STDIN_AHEAD: usize = 64;

/// Why the loop stopped.
enum Stop {
    /// The connection broke: reconnect if possible.
    Lost(ClientError),
    /// Nothing more to do but exit with this.
    Fatal(ClientError),
}

impl From<ClientError> for Stop {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::ConnectionLost(_)
            | ClientError::Handshake(_)
            | ClientError::Unreachable { .. } => Stop::Lost(e),
            other => Stop::Fatal(other),
        }
    }
}

enum Flow {
    Continue,
    Done,
}

/// What woke the loop.
enum Wake {
    Net(Result<ServerEvent, ClientError>),
    Line(Option<String>),
    Tick,
}

/// Reads stdin lines on a thread; `None` at end of input (or on a read error). The channel is
/// bounded: while the client is reconnecting the thread waits, and so does the writer.
fn stdin_lines() -> smol::channel::Receiver<Option<String>> {
    let (tx, rx) = smol::channel::bounded(STDIN_AHEAD);
    std::thread::spawn(move || {
        let stdin = io::stdin();
        for line in stdin.lock().lines() {
            match line {
                Ok(l) => {
                    if tx.send_blocking(Some(l)).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    eprintln!("chatbox-client: cannot read stdin: {e}");
                    break;
                }
            }
        }
        let _ = tx.send_blocking(None);
    });
    rx
}

/// `chat --plain`: logs in at the first address that works (with `otp`, else a code computed
/// from `secret`), then relays stdin lines and prints events until stdin ends.
pub fn chat(
    target: Target,
    otp: Option<&str>,
    mut secret: Option<OtpSource>,
) -> Result<(), ClientError> {
    smol::block_on(async {
        if otp.is_none() && secret.is_none() {
            return Err(ClientError::Usage(format!(
                "chat --plain needs --otp CODE (or {SECRET_ENV})"
            )));
        }
        let (logged_in, at) = first_login(&target, otp, secret.as_mut()).await?;
        let mut chat = PlainChat::new(target, secret, logged_in, at)?;
        chat.run(&stdin_lines()).await
    })
}

/// The state of a plain-mode session.
struct PlainChat {
    target: Target,
    secret: Option<OtpSource>,
    conn: Conn,
    /// Index of the current address in the list.
    at: usize,
    user: String,
    /// Rooms as the lines typed so far see them (for parsing).
    rooms: Rooms,
    /// Rooms as the acknowledged lines left them (what to join again after a reconnect).
    acked_rooms: Rooms,
    outbox: Outbox,
    pacer: Pacer,
    names: NamesBatches,
    input_open: bool,
    final_token: Option<u64>,
    next_ping: Instant,
    reconnects: VecDeque<Instant>,
    /// The new password of a `/passwd` sent, until the server confirms it.
    pending_password: Option<String>,
    /// The new TOTP secret of a re-enrolment started, until it is confirmed.
    pending_secret: Option<OtpSource>,
}

/// What a secret-carrying command needs beyond the session's password.
struct Secrets {
    code: String,
    new_password: Option<String>,
}

impl PlainChat {
    fn new(
        target: Target,
        secret: Option<OtpSource>,
        logged_in: LoggedIn,
        at: usize,
    ) -> Result<PlainChat, ClientError> {
        let mut chat = PlainChat {
            target,
            secret,
            conn: logged_in.conn,
            at,
            user: String::new(),
            rooms: Rooms::new(Some(DEFAULT_ROOM)),
            acked_rooms: Rooms::new(Some(DEFAULT_ROOM)),
            outbox: Outbox::default(),
            pacer: Pacer::for_limit(Limit::DEFAULT, Instant::now()),
            names: NamesBatches::default(),
            input_open: true,
            final_token: None,
            next_ping: Instant::now() + KEEPALIVE,
            reconnects: VecDeque::new(),
            pending_password: None,
            pending_secret: None,
        };
        chat.show_login(logged_in.user, logged_in.motd, &logged_in.early)?;
        chat.acked_rooms = chat.rooms.clone();
        Ok(chat)
    }

    /// Prints a login's events and starts the room state afresh from them.
    fn show_login(
        &mut self,
        user: String,
        motd: String,
        early: &[ServerEvent],
    ) -> Result<(), ClientError> {
        let login_ok = ServerEvent::LoginOk { user, motd };
        for line in format_event(&login_ok, &mut self.names) {
            out_line(&line)?;
        }
        if let ServerEvent::LoginOk { user, .. } = login_ok {
            self.user = user;
        }
        self.rooms = Rooms::new(Some(DEFAULT_ROOM));
        for event in early {
            self.rooms.on_event(event, &self.user);
            for line in format_event(event, &mut self.names) {
                out_line(&line)?;
            }
        }
        Ok(())
    }

    async fn run(
        &mut self,
        lines: &smol::channel::Receiver<Option<String>>,
    ) -> Result<(), ClientError> {
        loop {
            match self.turn(lines).await {
                Ok(Flow::Continue) => {}
                Ok(Flow::Done) => {
                    let _ = self.conn.send(&ClientMsg::Bye).await;
                    return match self.outbox.refused() {
                        0 => Ok(()),
                        count => Err(ClientError::LinesRefused { count }),
                    };
                }
                Err(Stop::Fatal(e)) => return Err(e),
                Err(Stop::Lost(e)) => self.recover(e).await?,
            }
        }
    }

    /// One turn of the loop: send what is queued, then wait for one thing to happen.
    async fn turn(
        &mut self,
        lines: &smol::channel::Receiver<Option<String>>,
    ) -> Result<Flow, Stop> {
        let mut paced_until = None;
        while self.outbox.queued() > 0 {
            let now = Instant::now();
            match self.pacer.take(now) {
                Ok(()) => {
                    if let Some(line) = self.outbox.take_queued() {
                        self.send_line(line).await?;
                    }
                }
                Err(wait) => {
                    paced_until = Some(now + wait);
                    break;
                }
            }
        }
        if !self.input_open && self.outbox.queued() == 0 && self.final_token.is_none() {
            self.final_token = Some(self.ping(PingKind::Final).await?);
        }
        let pong_due = self.outbox.oldest_ping().map(|t| t + FINAL_ACK_TIMEOUT);
        let wake_at = [Some(self.next_ping), pong_due, paced_until]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(self.next_ping);
        let take_input = self.input_open && self.outbox.queued() == 0 && !self.outbox.is_full();
        let wake = async { Wake::Net(self.conn.recv().await) }
            .or(async {
                if take_input {
                    Wake::Line(lines.recv().await.ok().flatten())
                } else {
                    core::future::pending().await
                }
            })
            .or(async {
                smol::Timer::at(wake_at).await;
                Wake::Tick
            })
            .await;
        match wake {
            Wake::Net(Ok(event)) => self.on_event(event).await,
            Wake::Net(Err(e)) => Err(Stop::from(e)),
            Wake::Line(Some(text)) => {
                // Parsed with the room current now; sent when the pace allows.
                let room = self.rooms.current().map(str::to_owned);
                if let Ok(Parsed::Send(msg)) = parse(&text, room.as_deref()) {
                    self.rooms.on_sent(&msg);
                }
                if let Err(line) = self.outbox.queue(Line { text, room }, OUTBOX_LIMIT) {
                    // Cannot happen: input is taken only while the queue is empty.
                    eprintln!("chatbox-client: not sent (queue full): {}", line.text);
                    self.outbox.refused_locally();
                }
                Ok(Flow::Continue)
            }
            Wake::Line(None) => {
                self.input_open = false;
                Ok(Flow::Continue)
            }
            Wake::Tick => {
                let now = Instant::now();
                if pong_due.is_some_and(|t| now >= t) {
                    return Err(Stop::Lost(ClientError::ConnectionLost(
                        if self.final_token.is_some() {
                            "the server did not acknowledge the last messages in time"
                        } else {
                            "the server did not answer a ping in time"
                        }
                        .into(),
                    )));
                }
                if now >= self.next_ping {
                    self.next_ping = now + KEEPALIVE;
                    self.ping(PingKind::Keepalive).await?;
                }
                Ok(Flow::Continue)
            }
        }
    }

    /// Sends a `Ping` that acknowledges everything sent before it; returns its token.
    async fn ping(&mut self, kind: PingKind) -> Result<u64, Stop> {
        let token = random_u64()?;
        self.outbox.ping_sent(token, kind, Instant::now());
        self.conn.send(&ClientMsg::Ping { token }).await?;
        Ok(token)
    }

    /// The message for `/passwd [CODE]`, `/reenrol [CODE]` or `/reenrol confirm CODE`: the
    /// current password is the session's, the new one `CHATBOX_NEW_PASSWORD`, a missing code is
    /// computed from `CHATBOX_TOTP_SECRET`. `None` (said on stderr) when it cannot be sent.
    async fn secret_fields(&mut self, cmd: SecretCommand<'_>) -> Result<Option<Secrets>, Stop> {
        let code = match cmd {
            SecretCommand::Passwd { code } | SecretCommand::Reenrol { code } => code,
            SecretCommand::ConfirmReenrol { code } => Some(code),
        };
        let code = match (code, self.secret.as_mut()) {
            (Some(c), _) => c.to_owned(),
            (None, Some(s)) => crate::passwd::computed_code(s).await?,
            (None, None) => {
                eprintln!("chatbox-client: give a one-time code: /passwd CODE or /reenrol CODE");
                return Ok(None);
            }
        };
        let new_password = if matches!(cmd, SecretCommand::Passwd { .. }) {
            match crate::passwd::new_password_from_env() {
                Ok(p) => Some(p),
                Err(e) => {
                    eprintln!("chatbox-client: /passwd: {e}");
                    return Ok(None);
                }
            }
        } else {
            None
        };
        Ok(Some(Secrets { code, new_password }))
    }

    /// Parses and sends one line (typed now, or queued); tracks it until acknowledged.
    async fn send_line(&mut self, line: Line) -> Result<(), Stop> {
        let (text, room) = (line.text.clone(), line.room.clone());
        let secrets;
        let password = self.target.password.clone();
        let secret = secret_command(&text).is_some();
        let parsed = match secret_command(&text) {
            Some(Err(e)) => Err(e),
            Some(Ok(cmd)) => {
                let Some(s) = self.secret_fields(cmd).await? else {
                    return Ok(());
                };
                secrets = s;
                let code = secrets.code.as_str();
                Ok(Parsed::Send(match (cmd, secrets.new_password.as_deref()) {
                    (SecretCommand::Passwd { .. }, Some(new_password)) => {
                        self.pending_password = Some(new_password.to_owned());
                        ClientMsg::ChangePassword {
                            password: &password,
                            otp: code,
                            new_password,
                        }
                    }
                    (SecretCommand::ConfirmReenrol { .. }, _) => ClientMsg::ConfirmReenrol { code },
                    _ => ClientMsg::Reenrol {
                        password: &password,
                        otp: code,
                    },
                }))
            }
            None => parse(&text, room.as_deref()),
        };
        let msg = match parsed {
            Ok(Parsed::Send(msg)) => msg,
            Ok(Parsed::Nothing) => return Ok(()),
            Ok(Parsed::Quit) => {
                self.input_open = false;
                return Ok(());
            }
            Err(e) if secret => {
                eprintln!("chatbox-client: {e}");
                return Ok(());
            }
            Err(e) => {
                // A mistyped command: reported, not a refusal (nothing was meant to be sent).
                eprintln!("chatbox-client: {}: {e}", line.text);
                return Ok(());
            }
        };
        let sent = self.conn.send(&msg).await;
        if let Err(ClientError::Usage(e)) = &sent {
            // Too long to encode: nothing was sent, the session goes on.
            eprintln!("chatbox-client: {e}");
            self.outbox.refused_locally();
            return Ok(());
        }
        // Sent, or perhaps sent (the connection broke): kept until acknowledged either way.
        // (The room change is applied again: after a reconnect the rooms were rebuilt.)
        self.rooms.on_sent(&msg);
        self.outbox.sent(line, &msg);
        sent?;
        if self.outbox.wants_ack_ping() {
            self.ping(PingKind::Ack).await?;
        }
        Ok(())
    }

    async fn on_event(&mut self, event: ServerEvent) -> Result<Flow, Stop> {
        if let ServerEvent::RateLimit {
            milli_per_sec,
            burst,
        } = event
        {
            self.pacer
                .set_limit(Limit::announced(milli_per_sec, burst), Instant::now());
            return Ok(Flow::Continue);
        }
        if self.outbox.observe(&event, &self.user) {
            // Put off, not refused: the line goes out again, later.
            if let ServerEvent::Error { text, .. } = &event {
                eprintln!(
                    "chatbox-client: the server said to slow down ({text}); sending the line again"
                );
            }
            return Ok(Flow::Continue);
        }
        self.rooms.on_event(&event, &self.user);
        if let ServerEvent::Presence {
            kind: PresenceKind::Kicked | PresenceKind::Banned,
            ..
        } = &event
        {
            self.acked_rooms.on_event(&event, &self.user);
        }
        match &event {
            ServerEvent::PasswordChanged { .. } => {
                // Logging in again (after a lost connection) needs the new password.
                if let Some(p) = self.pending_password.take() {
                    self.target.password = p;
                }
            }
            ServerEvent::ReenrolStarted { uri } => {
                self.pending_secret =
                    qr_view::otpauth_secret(uri).and_then(|b32| OtpSource::from_base32(b32).ok());
            }
            ServerEvent::Reenrolled { .. } => {
                // Codes computed from now on come from the new secret (the environment's
                // CHATBOX_TOTP_SECRET is the old one).
                if let Some(mut s) = self.pending_secret.take() {
                    if let Some(old) = &self.secret
                        && let Some(step) = old.last_step()
                    {
                        s.mark_sent(step);
                    }
                    self.secret = Some(s);
                }
            }
            _ => {}
        }
        let acked = match &event {
            ServerEvent::Pong { token } => self.outbox.on_pong(*token),
            _ => None,
        };
        let internal = acked.as_ref().is_some_and(|a| a.kind == PingKind::Ack);
        if !internal {
            for line in format_event(&event, &mut self.names) {
                out_line(&line)?;
            }
        }
        if let ServerEvent::Bye { reason } = event {
            return Err(Stop::Fatal(ClientError::ConnectionLost(format!(
                "the server closed the session: {reason}"
            ))));
        }
        let Some(acked) = acked else {
            return Ok(Flow::Continue);
        };
        if acked.retry > 0 {
            self.pacer.back_off(Instant::now());
        }
        for line in &acked.lines {
            if let Ok(Parsed::Send(msg)) = parse(&line.text, line.room.as_deref()) {
                self.acked_rooms.on_sent(&msg);
            }
        }
        if acked.kind == PingKind::Final {
            if !self.input_open && self.outbox.is_settled() {
                return Ok(Flow::Done);
            }
            // A line came back to be sent again (rate_limited) after the final ping went out:
            // another final ping follows once the queue is empty.
            self.final_token = None;
        }
        if self.outbox.wants_ack_ping() {
            self.ping(PingKind::Ack).await?;
        }
        Ok(Flow::Continue)
    }

    /// The connection broke: log in again somewhere and pick up where we were, or explain
    /// why not.
    async fn recover(&mut self, mut cause: ClientError) -> Result<(), ClientError> {
        loop {
            let reason = match &cause {
                ClientError::ConnectionLost(r) => r.clone(),
                other => other.to_string(),
            };
            if self.secret.is_none() {
                return Err(ClientError::ConnectionLost(format!(
                    "{reason}; not logging in again: {SECRET_ENV} is not set"
                )));
            }
            let now = Instant::now();
            while self
                .reconnects
                .front()
                .is_some_and(|t| now.duration_since(*t) > RECONNECT_WINDOW * 2)
            {
                self.reconnects.pop_front();
            }
            if self.reconnects.len() >= MAX_RECONNECTS {
                return Err(ClientError::ConnectionLost(format!(
                    "{reason}; giving up after {MAX_RECONNECTS} reconnects in {} s",
                    (RECONNECT_WINDOW * 2).as_secs()
                )));
            }
            self.reconnects.push_back(now);
            eprintln!(
                "chatbox-client: connection to {} lost: {reason}",
                self.target.servers.get(self.at)
            );
            self.outbox.connection_lost();
            self.final_token = None;
            self.names = NamesBatches::default();
            let logged_in = self.log_in_again().await?;
            match self.resume(logged_in).await {
                Ok(()) => return Ok(()),
                Err(Stop::Lost(e)) => cause = e,
                Err(Stop::Fatal(e)) => return Err(e),
            }
        }
    }

    /// Rounds over the addresses, the one after the lost node first.
    async fn log_in_again(&mut self) -> Result<LoggedIn, ClientError> {
        let Some(secret) = self.secret.as_mut() else {
            return Err(ClientError::ConnectionLost(format!(
                "not logging in again: {SECRET_ENV} is not set"
            )));
        };
        let start = (self.at + 1) % self.target.servers.len().max(1);
        let mut progress = |p: Progress| match p {
            Progress::Trying(addr) => {
                let _ = out_line(&format!("reconnecting to {addr}"));
            }
            Progress::WaitingForCode(d) => eprintln!(
                "chatbox-client: waiting {:.1} s for the next one-time code step",
                d.as_secs_f64()
            ),
        };
        let (logged_in, at) = login_any(
            &self.target,
            Code::Computed(secret),
            start,
            Rounds::Within(RECONNECT_WINDOW),
            &mut progress,
        )
        .await?;
        self.at = at;
        out_line(&format!("reconnected to {}", self.target.servers.get(at)))?;
        Ok(logged_in)
    }

    /// After a new login: print it, join the rooms again; the queue (unacknowledged lines
    /// first) is sent by the loop, paced.
    async fn resume(&mut self, logged_in: LoggedIn) -> Result<(), Stop> {
        let LoggedIn {
            conn,
            user,
            motd,
            early,
        } = logged_in;
        self.conn = conn;
        let typed_current = self.rooms.current().map(str::to_owned);
        let before = self.acked_rooms.clone();
        self.show_login(user, motd, &early)?;
        let joins = rejoin(&mut self.conn, &mut self.rooms, &before).await?;
        self.acked_rooms = self.rooms.clone();
        if let Some(room) = typed_current {
            self.rooms.switch_to(&room);
        }
        let now = Instant::now();
        self.pacer = Pacer::for_limit(Limit::DEFAULT, now);
        self.next_ping = now + KEEPALIVE;
        let (events, lookups) = settle(&mut self.conn, &mut self.outbox, &self.user).await?;
        self.pacer.spend(joins + lookups, Instant::now());
        for event in events {
            self.on_event(event).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broken_links_are_recoverable_and_the_rest_is_not() {
        let lost = |e| matches!(Stop::from(e), Stop::Lost(_));
        assert!(lost(ClientError::ConnectionLost("x".into())));
        assert!(lost(ClientError::Handshake("x".into())));
        assert!(!lost(ClientError::Usage("x".into())));
        assert!(!lost(ClientError::Io("x".into())));
        assert!(!lost(ClientError::Refused {
            code: 1,
            text: String::new()
        }));
    }
}
