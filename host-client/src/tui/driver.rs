//! The chat screen's driver over [`ChatLink`]: it races the connection, the keyboard, a
//! background login and the link's timer, hands what happens to the link and to the screen
//! state ([`App`]), writes what the link lets go, and logs in again in the background after a
//! lost connection. The terminal itself (raw mode, drawing, the key thread) is the parent
//! module's; this loop only calls `draw`.

use std::time::Instant;

use chatbox_core::proto::ClientMsg;
use crossterm::event::Event as TermEvent;
use smol::future::FutureExt as _;

use super::Reconnect;
use super::app::{Action, App, Ask, AskKind, Level, Link, local_hh_mm};
use crate::account::LoggedIn;
use crate::commands::{Parsed, SecretCommand, parse, secret_command};
use crate::conn::{Conn, random_u64};
use crate::error::ClientError;
use crate::event::ServerEvent;
use crate::failover::{Code, Progress, RECONNECT_WINDOW, Rounds, login_any};
use crate::link::{ChatLink, Line, OFFLINE_QUEUE_LIMIT, OUTBOX_LIMIT, Record, Verdict};
use crate::otp_source::OtpSource;
use crate::renewal::Renewal;

/// What woke the loop.
enum Wake {
    Net(Result<ServerEvent, ClientError>),
    Key(Option<TermEvent>),
    Tick,
    /// The background login finished.
    LoggedIn(Box<LoginResult>),
    /// The background login is trying an address or waiting for a code.
    Progress(Progress),
}

/// A background login's outcome, with the code source handed back.
type LoginResult = (
    Result<(LoggedIn, usize), ClientError>,
    Option<OtpSource>,
    bool,
);

/// The connection side of the chat screen: the link, and what only this driver has (the
/// socket, the background login, the credentials for logging in again).
struct Remote {
    again: Reconnect,
    conn: Option<Conn>,
    link: ChatLink,
    /// The server said `Bye`: the end of the connection is no reason to reconnect by itself.
    bye: bool,
    /// A login running in the background.
    login: Option<smol::Task<LoginResult>>,
    progress_tx: smol::channel::Sender<Progress>,
    progress_rx: smol::channel::Receiver<Progress>,
    /// Credentials a `/passwd` or `/reenrol` will change.
    renewal: Renewal,
}

impl Remote {
    /// Starts logging in again in the background: with `code` if given, else computed.
    fn start_login(&mut self, code: Option<String>) {
        let target = self.again.target.clone();
        let n = target.servers.len().max(1);
        let start = (self.again.at + 1) % n;
        let tx = self.progress_tx.clone();
        let secret = if code.is_none() {
            self.again.secret.take()
        } else {
            None
        };
        self.login = Some(smol::spawn(async move {
            let mut progress = move |p: Progress| {
                let _ = tx.try_send(p);
            };
            match (code, secret) {
                (Some(code), _) => {
                    let r = login_any(
                        &target,
                        Code::Given(&code),
                        start,
                        Rounds::Once,
                        &mut progress,
                    )
                    .await;
                    (r, None, false)
                }
                (None, Some(mut s)) => {
                    let r = login_any(
                        &target,
                        Code::Computed(&mut s),
                        start,
                        Rounds::Within(RECONNECT_WINDOW),
                        &mut progress,
                    )
                    .await;
                    (r, Some(s), true)
                }
                (None, None) => (
                    Err(ClientError::Usage("a one-time code is needed".into())),
                    None,
                    false,
                ),
            }
        }));
    }

    /// The connection broke with `e`.
    fn lost(&mut self, app: &mut App, e: &ClientError) {
        self.conn = None;
        self.link.connection_lost();
        let reason = e.to_string();
        if !self.bye && self.again.secret.is_some() && self.login.is_none() {
            app.reconnecting(super::now_ms(), &reason);
            self.start_login(None);
        } else {
            app.connection_lost(super::now_ms(), &reason);
        }
    }

    /// Writes what the link wants written (pings, rejoins, lookups).
    async fn flush(&mut self) -> Result<(), ClientError> {
        let Some(c) = self.conn.as_mut() else {
            return Ok(());
        };
        while let Some(t) = self.link.poll_transmit(Instant::now()) {
            c.send(&t.msg()).await?;
        }
        Ok(())
    }

    /// Sends the queued lines the link lets go, and what it wants written with them.
    async fn send_queued(&mut self, app: &mut App) -> Result<(), ClientError> {
        self.flush().await?;
        while let Some(line) = self.link.next_line(Instant::now()) {
            self.send_line(app, line).await?;
            self.flush().await?;
        }
        // Asking for a line may have started a history lookup.
        self.flush().await
    }

    /// Sends one queued line, kept by the link until acknowledged.
    async fn send_line(&mut self, app: &mut App, line: Line) -> Result<(), ClientError> {
        let msg = match parse(&line.text, line.room.as_deref()) {
            Ok(Parsed::Send(msg)) => msg,
            Ok(Parsed::Nothing | Parsed::Quit) => return Ok(()),
            Err(e) => {
                app.system(super::now_ms(), Level::Error, &e.to_string());
                return Ok(());
            }
        };
        let Some(c) = self.conn.as_mut() else {
            return Ok(());
        };
        let sent = c.send(&msg).await;
        if let Err(ClientError::Usage(e)) = &sent {
            // Too long to encode: nothing was sent, the session goes on.
            app.system(super::now_ms(), Level::Error, e);
            return Ok(());
        }
        app.rooms.on_sent(&msg);
        self.link.line_sent(line.clone(), &msg, Instant::now());
        sent
    }

    /// What the link reports, on the screen; a lost connection.
    fn records(&mut self, app: &mut App) {
        while let Some(record) = self.link.poll_record() {
            match record {
                Record::PutOff { .. } => app.system(
                    super::now_ms(),
                    Level::Info,
                    "the server said to slow down; sending the line again shortly",
                ),
                Record::StoredBefore { count } => app.system(
                    super::now_ms(),
                    Level::Info,
                    &format!(
                        "{count} line(s) sent before the connection was lost had been stored; \
                         not sending them again"
                    ),
                ),
                Record::Lost { reason } => {
                    self.lost(app, &ClientError::ConnectionLost(reason));
                }
                Record::Done => {}
            }
        }
    }

    /// A server event: the link first (acknowledgements, pace, lookups), then the screen.
    fn on_event(&mut self, app: &mut App, event: &ServerEvent) {
        if self.link.handle_event(event, Instant::now()) == Verdict::Hide {
            return;
        }
        if let ServerEvent::Bye { .. } = event {
            self.bye = true;
        }
        // Logging in again needs the new password; computed codes (CHATBOX_TOTP_SECRET) come
        // from the new secret once a re-enrolment is confirmed.
        self.renewal.on_event(
            event,
            &mut self.again.target.password,
            &mut self.again.secret,
            false,
        );
        app.on_event(event, super::now_ms());
    }

    /// Logged in again: the screen shows it, the link rejoins the rooms, and the queue
    /// (unacknowledged lines first) goes out paced.
    fn resume(&mut self, app: &mut App, logged_in: LoggedIn, at: usize) {
        let LoggedIn {
            conn,
            user,
            motd,
            early,
        } = logged_in;
        self.again.at = at;
        self.bye = false;
        self.link.set_current(app.rooms.current());
        app.reconnected(self.again.target.servers.get(at), conn.fingerprint());
        app.system(
            super::now_ms(),
            Level::Info,
            &format!("reconnected to {}", self.again.target.servers.get(at)),
        );
        show_login(app, &user, motd, &early);
        self.link.reconnected(&user, &early, Instant::now());
        app.rooms = self.link.rooms().clone();
        self.conn = Some(conn);
        let queued = self.link.outbox().queued();
        if queued > 0 {
            app.system(
                super::now_ms(),
                Level::Info,
                &format!("sending {queued} queued line(s)"),
            );
        }
    }
}

/// A login on the screen: `LoginOk`, then the events that came with it.
fn show_login(app: &mut App, user: &str, motd: String, early: &[ServerEvent]) {
    let user = user.to_owned();
    app.on_event(&ServerEvent::LoginOk { user, motd }, super::now_ms());
    for e in early {
        app.on_event(e, super::now_ms());
    }
}

/// Runs the session until the user quits; `draw` puts the screen state on the terminal.
pub(super) async fn chat_loop(
    draw: &mut dyn FnMut(&mut App) -> Result<(), ClientError>,
    keys: &smol::channel::Receiver<TermEvent>,
    logged_in: LoggedIn,
    again: Reconnect,
) -> Result<(), ClientError> {
    let LoggedIn {
        conn,
        user,
        motd,
        early,
    } = logged_in;
    let mut app = App::new(&user, conn.server(), conn.fingerprint(), local_hh_mm);
    app.auto_login = again.secret.is_some();
    show_login(&mut app, &user, motd, &early);
    let (progress_tx, progress_rx) = smol::channel::unbounded();
    let mut remote = Remote {
        again,
        conn: Some(conn),
        link: ChatLink::new(&user, &early, random_u64()?, Instant::now()),
        bye: false,
        login: None,
        progress_tx,
        progress_rx,
        renewal: Renewal::default(),
    };
    loop {
        // Queued lines go out, paced, once online.
        if remote.conn.is_some()
            && let Err(e) = remote.send_queued(&mut app).await
        {
            remote.lost(&mut app, &e);
        }
        remote.records(&mut app);
        if let Some(c) = &remote.conn {
            app.epochs = c.epochs();
        }
        draw(&mut app)?;
        let wake_at = remote.link.poll_timeout();
        let Remote {
            conn,
            login,
            progress_rx,
            ..
        } = &mut remote;
        let wake = async {
            match conn.as_mut() {
                Some(c) => Wake::Net(c.recv().await),
                None => core::future::pending().await,
            }
        }
        .or(async { Wake::Key(keys.recv().await.ok()) })
        .or(async {
            match login.as_mut() {
                Some(task) => Wake::LoggedIn(Box::new(task.await)),
                None => core::future::pending().await,
            }
        })
        .or(async {
            match progress_rx.recv().await {
                Ok(p) => Wake::Progress(p),
                Err(_) => core::future::pending().await,
            }
        })
        .or(async {
            smol::Timer::at(wake_at).await;
            Wake::Tick
        })
        .await;
        match wake {
            Wake::Net(Ok(event)) => remote.on_event(&mut app, &event),
            Wake::Net(Err(e)) => remote.lost(&mut app, &e),
            Wake::Progress(Progress::Trying(addr)) => {
                app.system(
                    super::now_ms(),
                    Level::Info,
                    &format!("reconnecting to {addr}…"),
                );
            }
            Wake::Progress(Progress::WaitingForCode(d)) => app.system(
                super::now_ms(),
                Level::Info,
                &format!(
                    "waiting {:.0} s for the next one-time code step",
                    d.as_secs_f64()
                ),
            ),
            Wake::LoggedIn(done) => {
                let (result, secret, computed) = *done;
                remote.login = None;
                if secret.is_some() {
                    remote.again.secret = secret;
                }
                match result {
                    Ok((logged_in, at)) => remote.resume(&mut app, logged_in, at),
                    // A wrong key is never retried; nor a refused computed code.
                    Err(e @ ClientError::Trust(_)) => return Err(e),
                    Err(e @ ClientError::Refused { .. }) if computed && !e.is_busy() => {
                        return Err(e);
                    }
                    Err(e) => app.connection_lost(super::now_ms(), &e.to_string()),
                }
            }
            Wake::Tick => remote.link.handle_timeout(Instant::now()),
            Wake::Key(None) => return Err(ClientError::Io("terminal input ended".into())),
            Wake::Key(Some(TermEvent::Key(key))) => match app.on_key(key) {
                Action::None => {}
                Action::Quit => {
                    if let Some(c) = remote.conn.as_mut() {
                        let _ = c.send(&ClientMsg::Bye).await;
                    }
                    return Ok(());
                }
                Action::Submit(line) => {
                    if submit(&mut app, &mut remote, line).await {
                        return Ok(());
                    }
                }
            },
            Wake::Key(Some(_)) => {} // resize, focus, paste: just redraw
        }
    }
}

/// Sends a secret-carrying message at once (never queued, never sent again after a reconnect:
/// its code would be spent anyway).
async fn send_secret(app: &mut App, remote: &mut Remote, msg: &ClientMsg<'_>) {
    let online = app.link == Link::Online;
    let Some(c) = remote.conn.as_mut().filter(|_| online) else {
        app.system(
            super::now_ms(),
            Level::Error,
            "not connected: try again once logged in",
        );
        return;
    };
    if let Err(e) = c.send(msg).await {
        remote.lost(app, &e);
        return;
    }
    // A ping of its own right after it, so that the server's answer to it (an error, say) is
    // never taken for the answer to a chat line sent around it.
    remote.link.sent_outside(Instant::now());
    if let Err(e) = remote.flush().await {
        remote.lost(app, &e);
    }
}

/// An answer for a secret prompt; once all are in, the message goes out.
async fn answer_secret(app: &mut App, remote: &mut Remote, text: String) {
    let Some(mut ask) = app.ask.take() else {
        return;
    };
    if !ask.answer(text) {
        app.ask = Some(ask);
        return;
    }
    let [password, code, rest @ ..] = ask.answers.as_slice() else {
        return;
    };
    match (ask.kind, rest) {
        (AskKind::Passwd, [new, again]) => {
            if new != again {
                app.system(
                    super::now_ms(),
                    Level::Error,
                    "the new passwords differ; nothing changed",
                );
                return;
            }
            if let Err(e) = chatbox_core::password::check_password_policy(new.as_bytes()) {
                app.system(
                    super::now_ms(),
                    Level::Error,
                    &format!("{e}; nothing changed"),
                );
                return;
            }
            remote.renewal.password_sent(new.clone());
            let msg = ClientMsg::ChangePassword {
                password,
                otp: code.trim(),
                new_password: new,
            };
            send_secret(app, remote, &msg).await;
        }
        (AskKind::Reenrol, []) => {
            let msg = ClientMsg::Reenrol {
                password,
                otp: code.trim(),
            };
            send_secret(app, remote, &msg).await;
        }
        _ => {}
    }
}

/// Enter on the input line; returns true when the user asked to quit.
async fn submit(app: &mut App, remote: &mut Remote, text: String) -> bool {
    if app.ask.is_some() {
        answer_secret(app, remote, text).await;
        return false;
    }
    if let Link::Lost(_) = app.link {
        // The line is a new one-time code (or, with the secret, just "try again").
        if remote.login.is_some() {
            return false;
        }
        let code = text.trim().to_owned();
        if code.is_empty() && remote.again.secret.is_none() {
            return false;
        }
        app.link = Link::Reconnecting(String::new());
        app.system(super::now_ms(), Level::Info, "reconnecting…");
        remote.start_login((!code.is_empty()).then_some(code));
        return false;
    }
    match secret_command(&text) {
        Some(Err(e)) => {
            app.system(super::now_ms(), Level::Error, &e.to_string());
            return false;
        }
        Some(Ok(SecretCommand::Passwd { .. })) => {
            app.ask = Some(Ask::new(AskKind::Passwd));
            return false;
        }
        Some(Ok(SecretCommand::Reenrol { .. })) => {
            app.ask = Some(Ask::new(AskKind::Reenrol));
            return false;
        }
        Some(Ok(SecretCommand::ConfirmReenrol { code })) => {
            send_secret(app, remote, &ClientMsg::ConfirmReenrol { code }).await;
            return false;
        }
        None => {}
    }
    let room = app.rooms.current().map(str::to_owned);
    match parse(&text, room.as_deref()) {
        Ok(Parsed::Nothing) => false,
        Ok(Parsed::Quit) => {
            if let Some(c) = remote.conn.as_mut() {
                let _ = c.send(&ClientMsg::Bye).await;
            }
            true
        }
        Err(e) => {
            app.system(super::now_ms(), Level::Error, &e.to_string());
            false
        }
        Ok(Parsed::Send(msg)) => {
            // Every line is queued and goes out at the server's pace (the loop sends it at
            // once when the pace allows), behind what is queued already.
            let online = remote.conn.is_some() && app.link == Link::Online;
            // The room change shows at once, as when the line is sent.
            app.rooms.on_sent(&msg);
            let line = Line { text, room };
            let limit = if online {
                OUTBOX_LIMIT
            } else {
                OFFLINE_QUEUE_LIMIT
            };
            if remote.link.queue(line, limit).is_err() {
                app.system(
                    super::now_ms(),
                    Level::Error,
                    &format!("not sent: {limit} lines are already waiting to be sent"),
                );
            } else if !online {
                app.system(
                    super::now_ms(),
                    Level::Info,
                    &format!("queued ({} waiting)", remote.link.outbox().queued()),
                );
            }
            false
        }
    }
}
