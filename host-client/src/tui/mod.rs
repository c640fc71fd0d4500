//! The chat screen (ratatui + crossterm).
//!
//! [`app`] holds the state, [`view`] draws it, [`editor`] is the input line, `driver` is the
//! loop; this module owns the terminal (raw mode, alternate screen, restored on every way out
//! including panics) and reads keys on a thread.
//!
//! The chat session itself (outbox, pace, rooms, acknowledgements, keepalive, resume) is a
//! [`crate::link::ChatLink`]; the driver races the connection, the keyboard, a background login
//! and the link's timer. Lines typed are queued in the link and go out at the pace the server's
//! announced rate limit allows, each followed by a `Ping`; they are kept until their `Pong`
//! acknowledges them, and one the server put off (`rate_limited`) is sent again. When the
//! connection breaks (not after a `Bye`), with `CHATBOX_TOTP_SECRET` set the screen logs in
//! again by itself in the background (the next address first, rounds for up to 30 s), rejoins
//! the rooms and sends the unacknowledged and queued lines again; lines typed meanwhile are
//! queued (at most [`crate::link::OFFLINE_QUEUE_LIMIT`]). Without the secret the input line
//! takes a new one-time code.

pub mod app;
mod driver;
pub mod editor;
pub mod view;

use core::sync::atomic::{AtomicBool, Ordering};
use core::time::Duration;
use std::io::{self, Stdout};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crossterm::event::{self as term_event, Event as TermEvent};
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

use self::app::App;
use crate::account::LoggedIn;
use crate::error::ClientError;
use crate::failover::Target;
use crate::otp_source::OtpSource;

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

/// What is needed to log in again after the connection is lost.
#[derive(Debug)]
pub struct Reconnect {
    /// Addresses, key check, user and password.
    pub target: Target,
    /// Computes codes (`CHATBOX_TOTP_SECRET`); without it the user types a new code.
    pub secret: Option<OtpSource>,
    /// Index of the address of the current connection.
    pub at: usize,
}

/// Runs the chat screen on a logged-in connection until the user quits.
pub fn run(logged_in: LoggedIn, again: Reconnect) -> Result<(), ClientError> {
    let mut guard = TerminalGuard::new()
        .map_err(|e| ClientError::Io(format!("cannot set up the terminal: {e}")))?;
    let stop = Arc::new(AtomicBool::new(false));
    let keys = key_events(Arc::clone(&stop));
    let terminal = &mut guard.terminal;
    let result = smol::block_on(driver::chat_loop(
        &mut |app: &mut App| draw(terminal, app),
        &keys,
        logged_in,
        again,
    ));
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
