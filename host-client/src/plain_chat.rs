//! `chat --plain`: stdin lines in, one line per event out, and reconnecting when the
//! connection is lost.
//!
//! This is a thin driver over [`ChatLink`] (the session itself: outbox, pace, rooms,
//! acknowledgements, keepalive, resume): it owns the socket, stdin and the timer.
//!
//! Each stdin line is parsed with the room current at that moment and queued; lines go out at
//! the pace the server's rate limit allows (from the `RateLimit` the server sends at login),
//! each followed by a `Ping`, and the link keeps a line until its `Pong` acknowledges it. A
//! line the server answers with `rate_limited` (or `busy`) is sent again; a line it refuses
//! otherwise (too long, not permitted, no such user…), or one too long for the client to send at
//! all, is refused for good (a mistyped `/command` is only reported). At end
//! of input a final `Ping` is sent; once it is answered everything was handled, `Bye` is sent
//! and the exit status is 0 — or 6 ([`crate::error::exit::REFUSED`]) if any line was refused
//! for good.
//!
//! When the connection breaks (reset, end of stream without `Bye`, no answer to a ping for
//! [`crate::link::ACK_TIMEOUT`]) and `CHATBOX_TOTP_SECRET` is set, the client prints
//! `reconnecting to ADDR` for each address it tries (the next one in the list first, wrapping
//! around), logs in with a fresh code, prints `reconnected to ADDR` and the login's events,
//! joins the rooms it was in again, and sends the unacknowledged lines again before reading
//! more input — except those known to be handled (see `link::outbox`: a chat line whose
//! stored copy came back, or that the target's history shows was stored, is not sent twice).
//! It gives up after [`RECONNECT_WINDOW`] (exit 2). Without the secret it exits 2 at once,
//! saying so. A `Bye` from the server (shutdown, kick, ban) is never a reason to
//! reconnect; a refused login is final (exit 4).

use std::collections::VecDeque;
use std::io::{self, BufRead as _};
use std::time::Instant;

use chatbox_core::proto::ClientMsg;
use smol::future::FutureExt as _;

use crate::account::LoggedIn;
use crate::commands::{Parsed, SecretCommand, parse, secret_command};
use crate::conn::{Conn, random_u64};
use crate::error::ClientError;
use crate::event::ServerEvent;
use crate::failover::{Code, Progress, RECONNECT_WINDOW, Rounds, Target, first_login, login_any};
use crate::link::{ChatLink, Line, OUTBOX_LIMIT, Record, Verdict};
use crate::otp_source::{OtpSource, SECRET_ENV};
use crate::plain::{NamesBatches, format_event, out_line};
use crate::renewal::Renewal;

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

/// The state of a plain-mode session: the link, and what only this driver has (the socket,
/// the credentials for logging in again, the `names` batches being printed).
struct PlainChat {
    target: Target,
    secret: Option<OtpSource>,
    conn: Conn,
    /// Index of the current address in the list.
    at: usize,
    link: ChatLink,
    names: NamesBatches,
    reconnects: VecDeque<Instant>,
    /// Credentials a `/passwd` or `/reenrol` will change.
    renewal: Renewal,
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
        let LoggedIn {
            conn,
            user,
            motd,
            early,
        } = logged_in;
        let mut names = NamesBatches::default();
        show_login(&mut names, user.clone(), motd, &early)?;
        Ok(PlainChat {
            target,
            secret,
            conn,
            at,
            link: ChatLink::new(&user, &early, random_u64()?, Instant::now()),
            names,
            reconnects: VecDeque::new(),
            renewal: Renewal::default(),
        })
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
                    return match self.link.outbox().refused() {
                        0 => Ok(()),
                        count => Err(ClientError::LinesRefused { count }),
                    };
                }
                Err(Stop::Fatal(e)) => return Err(e),
                Err(Stop::Lost(e)) => self.recover(e).await?,
            }
        }
    }

    /// One turn of the loop: send what the link lets go, then wait for one thing to happen.
    async fn turn(
        &mut self,
        lines: &smol::channel::Receiver<Option<String>>,
    ) -> Result<Flow, Stop> {
        self.flush().await?;
        while let Some(line) = self.link.next_line(Instant::now()) {
            self.send_line(line).await?;
            self.flush().await?;
        }
        // Asking for a line may have started a history lookup.
        self.flush().await?;
        if let Flow::Done = self.records()? {
            return Ok(Flow::Done);
        }
        let wake_at = self.link.poll_timeout();
        let take_input = self.link.wants_input();
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
            Wake::Net(Ok(event)) => self.on_event(&event)?,
            Wake::Net(Err(e)) => return Err(Stop::from(e)),
            Wake::Line(Some(text)) => {
                // Parsed with the room current now; sent when the pace allows.
                let line = self.link.typed(text);
                if let Err(line) = self.link.queue(line, OUTBOX_LIMIT) {
                    // Cannot happen: input is taken only while the queue is empty.
                    eprintln!("chatbox-client: not sent (queue full): {}", line.text);
                    self.link.refused_locally();
                }
            }
            Wake::Line(None) => self.link.input_closed(),
            Wake::Tick => self.link.handle_timeout(Instant::now()),
        }
        self.records()
    }

    /// Writes what the link wants written (pings, rejoins, lookups).
    async fn flush(&mut self) -> Result<(), Stop> {
        while let Some(t) = self.link.poll_transmit(Instant::now()) {
            self.conn.send(&t.msg()).await?;
        }
        Ok(())
    }

    /// What the link reports: said on stderr, or the end of the session or of the connection.
    fn records(&mut self) -> Result<Flow, Stop> {
        let mut flow = Flow::Continue;
        while let Some(record) = self.link.poll_record() {
            match record {
                Record::PutOff { reason } => eprintln!(
                    "chatbox-client: the server said to slow down ({reason}); sending the line again"
                ),
                Record::StoredBefore { count } => eprintln!(
                    "chatbox-client: {count} line(s) sent before the connection was lost had been \
                     stored; not sending them again"
                ),
                Record::Lost { reason } => {
                    return Err(Stop::Lost(ClientError::ConnectionLost(reason)));
                }
                Record::Done => flow = Flow::Done,
            }
        }
        Ok(flow)
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

    /// Turns one queued line into its message and sends it; the link tracks it until
    /// acknowledged.
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
                        self.renewal.password_sent(new_password.to_owned());
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
                self.link.input_closed();
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
            self.link.refused_locally();
            return Ok(());
        }
        // Sent, or perhaps sent (the connection broke): kept until acknowledged either way.
        self.link.line_sent(line, &msg, Instant::now());
        sent?;
        Ok(())
    }

    /// One event: the link first (acknowledgements, pace, rooms), then stdout.
    fn on_event(&mut self, event: &ServerEvent) -> Result<(), Stop> {
        let verdict = self.link.handle_event(event, Instant::now());
        if verdict == Verdict::Hide {
            return Ok(());
        }
        // Logging in again needs the new password; codes computed after a re-enrolment come
        // from the new secret (the environment's CHATBOX_TOTP_SECRET is the old one).
        self.renewal
            .on_event(event, &mut self.target.password, &mut self.secret, true);
        for line in format_event(event, &mut self.names) {
            out_line(&line)?;
        }
        if let ServerEvent::Bye { reason } = event {
            return Err(Stop::Fatal(ClientError::ConnectionLost(format!(
                "the server closed the session: {reason}"
            ))));
        }
        Ok(())
    }

    /// The connection broke: log in again somewhere and pick up where we were, or explain
    /// why not.
    async fn recover(&mut self, cause: ClientError) -> Result<(), ClientError> {
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
        self.link.connection_lost();
        self.names = NamesBatches::default();
        let LoggedIn {
            conn,
            user,
            motd,
            early,
        } = self.log_in_again().await?;
        // Printed, then the link rejoins and sends the queue (unacknowledged lines first) from
        // the loop, paced; a failure there comes back here as another lost connection.
        self.conn = conn;
        show_login(&mut self.names, user.clone(), motd, &early)?;
        self.link.reconnected(&user, &early, Instant::now());
        Ok(())
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
}

/// Prints a login's events.
fn show_login(
    names: &mut NamesBatches,
    user: String,
    motd: String,
    early: &[ServerEvent],
) -> Result<(), ClientError> {
    for line in format_event(&ServerEvent::LoginOk { user, motd }, names) {
        out_line(&line)?;
    }
    for event in early {
        for line in format_event(event, names) {
            out_line(&line)?;
        }
    }
    Ok(())
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
