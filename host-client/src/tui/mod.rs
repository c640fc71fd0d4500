//! The chat screen (ratatui + crossterm).
//!
//! [`app`] holds the state, [`view`] draws it, [`editor`] is the input line; this module is the
//! loop: it owns the terminal (raw mode, alternate screen, restored on every way out including
//! panics), reads keys on a thread, and races the connection, the keyboard and the keepalive
//! timer.

pub mod app;
pub mod editor;
pub mod view;

use core::sync::atomic::{AtomicBool, Ordering};
use core::time::Duration;
use std::io::{self, Stdout};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use chatbox_core::proto::ClientMsg;
use crossterm::event::{self as term_event, Event as TermEvent};
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use smol::future::FutureExt as _;

use self::app::{Action, App, Level, Link, local_hh_mm};
use crate::account::{LoggedIn, login};
use crate::commands::{Parsed, parse};
use crate::conn::{Conn, random_u64};
use crate::error::ClientError;
use crate::event::ServerEvent;
use crate::known_servers::Trust;
use crate::plain::{DEFAULT_ROOM, KEEPALIVE};

/// Unix time now, in milliseconds.
#[must_use]
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Puts the terminal back: cooked mode, main screen, cursor shown. Safe to call twice.
pub fn restore_terminal() {
    let _ = disable_raw_mode();
    let _ = execute!(io::stdout(), LeaveAlternateScreen, crossterm::cursor::Show);
}

/// Installs (once) a panic hook that restores the terminal before the panic message prints.
fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore_terminal();
            previous(info);
        }));
    });
}

/// Owns the raw-mode terminal; restores it when dropped (normal exit, error, or unwinding).
struct TerminalGuard {
    terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl TerminalGuard {
    fn new() -> io::Result<Self> {
        install_panic_hook();
        enable_raw_mode()?;
        let entered = execute!(io::stdout(), EnterAlternateScreen)
            .and_then(|()| Terminal::new(CrosstermBackend::new(io::stdout())));
        match entered {
            Ok(terminal) => Ok(Self { terminal }),
            Err(e) => {
                restore_terminal();
                Err(e)
            }
        }
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// Reads terminal events on a thread until `stop` is set.
fn key_events(stop: Arc<AtomicBool>) -> smol::channel::Receiver<TermEvent> {
    let (tx, rx) = smol::channel::unbounded();
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match term_event::poll(Duration::from_millis(100)) {
                Ok(true) => match term_event::read() {
                    Ok(ev) => {
                        if tx.send_blocking(ev).is_err() {
                            return;
                        }
                    }
                    Err(_) => return,
                },
                Ok(false) => {}
                Err(_) => return,
            }
        }
    });
    rx
}

/// What woke the loop.
enum Wake {
    Net(Result<ServerEvent, ClientError>),
    Key(Option<TermEvent>),
    Tick,
}

/// What is needed to log in again after the connection is lost.
#[derive(Debug)]
pub struct Reconnect<'a> {
    /// `host:port`.
    pub server: &'a str,
    /// How to check the server key.
    pub trust: &'a Trust,
    /// The password (the one-time code is asked again).
    pub password: &'a str,
}

/// Runs the chat screen on a logged-in connection until the user quits.
pub fn run(logged_in: LoggedIn, again: &Reconnect<'_>) -> Result<(), ClientError> {
    let mut guard = TerminalGuard::new()
        .map_err(|e| ClientError::Io(format!("cannot set up the terminal: {e}")))?;
    let stop = Arc::new(AtomicBool::new(false));
    let keys = key_events(Arc::clone(&stop));
    let result = smol::block_on(chat_loop(&mut guard.terminal, &keys, logged_in, again));
    stop.store(true, Ordering::Relaxed);
    drop(guard);
    result
}

fn draw(
    terminal: &mut Terminal<CrosstermBackend<Stdout>>,
    app: &mut App,
) -> Result<(), ClientError> {
    let size = terminal
        .size()
        .map_err(|e| ClientError::Io(format!("terminal: {e}")))?;
    let area = ratatui::layout::Rect::new(0, 0, size.width, size.height);
    let pane = view::areas(area).messages;
    app.set_page(usize::from(pane.height));
    let rows = view::message_rows(app, pane.width).len();
    app.clamp_scroll(rows.saturating_sub(usize::from(pane.height)));
    terminal
        .draw(|f| {
            let area = f.area();
            view::render(app, area, f.buffer_mut());
            f.set_cursor_position(view::cursor(app, area));
        })
        .map(|_| ())
        .map_err(|e| ClientError::Io(format!("terminal: {e}")))
}

async fn chat_loop(
    terminal: &mut Terminal<CrosstermBackend<Stdout>>,
    keys: &smol::channel::Receiver<TermEvent>,
    logged_in: LoggedIn,
    again: &Reconnect<'_>,
) -> Result<(), ClientError> {
    let LoggedIn {
        conn,
        user,
        motd,
        early,
    } = logged_in;
    let mut app = App::new(&user, conn.server(), conn.fingerprint(), local_hh_mm);
    let mut conn: Option<Conn> = Some(conn);
    app.on_event(&ServerEvent::LoginOk { user, motd }, now_ms());
    for e in &early {
        app.on_event(e, now_ms());
    }
    let mut next_ping = Instant::now() + KEEPALIVE;
    loop {
        if let Some(c) = &conn {
            app.epochs = c.epochs();
        }
        draw(terminal, &mut app)?;
        let key_wake = async { Wake::Key(keys.recv().await.ok()) };
        let tick = async {
            smol::Timer::at(next_ping).await;
            Wake::Tick
        };
        let wake = match conn.as_mut() {
            Some(c) => {
                async { Wake::Net(c.recv().await) }
                    .or(key_wake)
                    .or(tick)
                    .await
            }
            None => key_wake.or(tick).await,
        };
        match wake {
            Wake::Net(Ok(event)) => app.on_event(&event, now_ms()),
            Wake::Net(Err(e)) => {
                conn = None;
                app.connection_lost(now_ms(), &e.to_string());
            }
            Wake::Tick => {
                next_ping = Instant::now() + KEEPALIVE;
                if let Some(c) = conn.as_mut()
                    && let Err(e) = c
                        .send(&ClientMsg::Ping {
                            token: random_u64()?,
                        })
                        .await
                {
                    conn = None;
                    app.connection_lost(now_ms(), &e.to_string());
                }
            }
            Wake::Key(None) => return Err(ClientError::Io("terminal input ended".into())),
            Wake::Key(Some(TermEvent::Key(key))) => match app.on_key(key) {
                Action::None => {}
                Action::Quit => {
                    if let Some(c) = conn.as_mut() {
                        let _ = c.send(&ClientMsg::Bye).await;
                    }
                    return Ok(());
                }
                Action::Submit(line) => {
                    if app.link == Link::Online {
                        if submit_line(&mut app, &mut conn, &line).await {
                            return Ok(());
                        }
                    } else if !line.trim().is_empty() {
                        app.system(now_ms(), Level::Info, "reconnecting…");
                        draw(terminal, &mut app)?;
                        let rejoin = app.rooms.joined().to_vec();
                        let was_in = app.rooms.current().map(str::to_owned);
                        match login(again.server, again.trust, &app.user, again.password, &line)
                            .await
                        {
                            Ok(l) => {
                                app.reconnected(l.conn.fingerprint());
                                app.on_event(
                                    &ServerEvent::LoginOk {
                                        user: l.user,
                                        motd: l.motd,
                                    },
                                    now_ms(),
                                );
                                for e in &l.early {
                                    app.on_event(e, now_ms());
                                }
                                let mut c = l.conn;
                                // Back into the rooms we were in (the server puts us in #lobby).
                                for room in rejoin.iter().filter(|r| *r != DEFAULT_ROOM) {
                                    let join = ClientMsg::Join { room };
                                    if c.send(&join).await.is_ok() {
                                        app.rooms.on_sent(&join);
                                    }
                                }
                                if let Some(room) = &was_in {
                                    app.rooms.switch_to(room);
                                }
                                conn = Some(c);
                            }
                            Err(e) => app.system(
                                now_ms(),
                                Level::Error,
                                &format!("{e}. Type a new code to try again, or Esc to quit"),
                            ),
                        }
                    }
                }
            },
            Wake::Key(Some(_)) => {} // resize, focus, paste: just redraw
        }
    }
}

/// Sends a typed line; returns true when the user asked to quit.
async fn submit_line(app: &mut App, conn: &mut Option<Conn>, line: &str) -> bool {
    let room = app.rooms.current().map(str::to_owned);
    let parsed = parse(line, room.as_deref());
    let Some(c) = conn.as_mut() else {
        return false;
    };
    match parsed {
        Ok(Parsed::Send(msg)) => {
            match c.send(&msg).await {
                Ok(()) => app.rooms.on_sent(&msg),
                // Too long to encode: nothing was sent, the session goes on.
                Err(ClientError::Usage(e)) => app.system(now_ms(), Level::Error, &e),
                Err(e) => {
                    *conn = None;
                    app.connection_lost(now_ms(), &e.to_string());
                }
            }
            false
        }
        Ok(Parsed::Nothing) => false,
        Ok(Parsed::Quit) => {
            let _ = c.send(&ClientMsg::Bye).await;
            true
        }
        Err(e) => {
            app.system(now_ms(), Level::Error, &e.to_string());
            false
        }
    }
}
