//! Drawing the chat screen: a pure function of [`App`] into a ratatui [`Buffer`].
//!
//! ```text
//!  ChatBox · #lobby — topic                                      (title)
//!  12:01 --> bob joined #lobby                                   (messages, scrollable)
//!  12:02 <bob> hello
//!  alice │ #lobby · 2 online │ key epoch ↑3 ↓9 │ SHA256:AbCd… │ 127.0.0.1:6001   (status)
//!  [#lobby] typed text_                                          (input)
//! ```

use chatbox_core::proto::MessageKind;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use unicode_width::UnicodeWidthChar as _;

use super::app::{App, Body, Entry, Level, Link};

/// Colours for user names, chosen by a stable hash of the name.
const PALETTE: [Color; 12] = [
    Color::Green,
    Color::Yellow,
    Color::Blue,
    Color::Magenta,
    Color::Cyan,
    Color::LightGreen,
    Color::LightYellow,
    Color::LightBlue,
    Color::LightMagenta,
    Color::LightCyan,
    Color::Indexed(208),
    Color::Indexed(141),
];

/// The colour of a user name: FNV-1a of its bytes, so it is the same in every run and client.
#[must_use]
pub fn user_color(name: &str) -> Color {
    let mut h: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    let i = usize::try_from(h).unwrap_or(0) % PALETTE.len();
    PALETTE.get(i).copied().unwrap_or(Color::White)
}

/// The screen's areas.
#[derive(Debug, Clone, Copy)]
pub struct Areas {
    /// Top line: room and topic, or the disconnection notice.
    pub title: Rect,
    /// Message pane.
    pub messages: Rect,
    /// Status bar.
    pub status: Rect,
    /// Input line.
    pub input: Rect,
}

/// Splits the screen.
#[must_use]
pub fn areas(area: Rect) -> Areas {
    let [title, messages, status, input] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    Areas {
        title,
        messages,
        status,
        input,
    }
}

/// `SHA256:` and the first 8 Base64 characters.
#[must_use]
pub fn short_fingerprint(fp: &str) -> String {
    match fp.strip_prefix("SHA256:") {
        Some(b64) if b64.len() > 8 => format!("SHA256:{}…", b64.get(..8).unwrap_or(b64)),
        _ => fp.to_owned(),
    }
}

fn entry_spans(entry: &Entry, current_room: Option<&str>) -> Vec<Span<'static>> {
    let dim = Style::default().fg(Color::DarkGray);
    let mut spans = vec![Span::styled(format!("{} ", entry.time), dim)];
    match &entry.body {
        Body::Chat {
            kind,
            target,
            from,
            text,
        } => {
            let name = Style::default()
                .fg(user_color(from))
                .add_modifier(Modifier::BOLD);
            let elsewhere = target.starts_with('#') && Some(target.as_str()) != current_room;
            if elsewhere && *kind != MessageKind::Private {
                spans.push(Span::styled(format!("[{target}] "), dim));
            }
            match kind {
                MessageKind::Action => {
                    spans.push(Span::raw("* "));
                    spans.push(Span::styled(from.clone(), name));
                    spans.push(Span::styled(
                        format!(" {text}"),
                        Style::default().add_modifier(Modifier::ITALIC),
                    ));
                }
                MessageKind::Private => {
                    let bracket = Style::default().fg(Color::LightMagenta);
                    spans.push(Span::styled("[", bracket));
                    spans.push(Span::styled(from.clone(), name));
                    spans.push(Span::styled(" → ", bracket));
                    spans.push(Span::styled(
                        target.clone(),
                        Style::default().fg(user_color(target)),
                    ));
                    spans.push(Span::styled("] ", bracket));
                    spans.push(Span::raw(text.clone()));
                }
                MessageKind::Notice => {
                    let notice = Style::default().fg(Color::Yellow);
                    spans.push(Span::styled(format!("-{from}- {text}"), notice));
                }
                _ => {
                    spans.push(Span::raw("<"));
                    spans.push(Span::styled(from.clone(), name));
                    spans.push(Span::raw("> "));
                    spans.push(Span::raw(text.clone()));
                }
            }
        }
        Body::System { level, text } => {
            let (prefix, style) = match level {
                Level::Info => ("-!- ", Style::default().fg(Color::Gray)),
                Level::Presence => (
                    "",
                    Style::default().fg(Color::Cyan).add_modifier(Modifier::DIM),
                ),
                Level::Error => (
                    "!!! ",
                    Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
                ),
            };
            spans.push(Span::styled(format!("{prefix}{text}"), style));
        }
    }
    spans
}

/// Breaks styled spans into rows at most `width` columns wide.
fn wrap(spans: Vec<Span<'static>>, width: usize) -> Vec<Vec<Span<'static>>> {
    let width = width.max(1);
    let mut rows = vec![Vec::new()];
    let mut used = 0;
    for span in spans {
        let mut piece = String::new();
        for c in span.content.chars() {
            let w = c.width().unwrap_or(0);
            if used + w > width && used > 0 {
                if let Some(row) = rows.last_mut() {
                    row.push(Span::styled(core::mem::take(&mut piece), span.style));
                }
                rows.push(Vec::new());
                used = 0;
            }
            piece.push(c);
            used += w;
        }
        if let Some(row) = rows.last_mut() {
            row.push(Span::styled(piece, span.style));
        }
    }
    rows
}

/// All message rows for a pane `width` columns wide.
#[must_use]
pub fn message_rows(app: &App, width: u16) -> Vec<Line<'static>> {
    let current = app.rooms.current();
    app.entries()
        .iter()
        .flat_map(|e| wrap(entry_spans(e, current), usize::from(width)))
        .map(Line::from)
        .collect()
}

/// The prompt before the input line.
fn prompt(app: &App) -> String {
    if let Some(ask) = &app.ask {
        return format!("{} (not shown; Esc cancels)> ", ask.prompt());
    }
    match (&app.link, app.rooms.current()) {
        (Link::Lost(_), _) if app.auto_login => "Enter to retry> ".to_owned(),
        (Link::Lost(_), _) => "code> ".to_owned(),
        (Link::Online | Link::Reconnecting(_), Some(room)) => format!("[{room}] "),
        (Link::Online | Link::Reconnecting(_), None) => "[no room] ".to_owned(),
    }
}

fn str_width(s: &str) -> usize {
    s.chars().map(|c| c.width().unwrap_or(0)).sum()
}

/// The input line's visible text and where the cursor is in it (columns from the left).
fn input_view(app: &App, width: usize) -> (String, usize) {
    let prompt = prompt(app);
    // A password or code being asked for is never drawn, not even masked (its length stays
    // private too): the cursor stays after the prompt.
    let hidden = app.ask.is_some();
    let typed_before = if hidden {
        String::new()
    } else {
        app.editor.before_cursor()
    };
    let before = str_width(&prompt) + str_width(&typed_before);
    let skip = (before + 1).saturating_sub(width);
    let full = if hidden {
        prompt.clone()
    } else {
        format!("{prompt}{}", app.editor.text())
    };
    let mut shown = String::new();
    let mut col = 0;
    let mut skipped = 0;
    for c in full.chars() {
        let w = c.width().unwrap_or(0);
        if skipped < skip {
            skipped += w;
            continue;
        }
        if col + w > width {
            break;
        }
        shown.push(c);
        col += w;
    }
    (shown, before.saturating_sub(skipped))
}

/// Where the terminal cursor goes (on the input line).
#[must_use]
pub fn cursor(app: &App, area: Rect) -> Position {
    let input = areas(area).input;
    let (_, col) = input_view(app, usize::from(input.width));
    let col = u16::try_from(col).unwrap_or(u16::MAX);
    Position::new(input.x + col.min(input.width.saturating_sub(1)), input.y)
}

/// The status bar's text.
#[must_use]
pub fn status_text(app: &App) -> String {
    let room = app.rooms.current().unwrap_or("no room");
    let mut s = format!(" {} │ {room} · {} online", app.user, app.members_here());
    if app.away {
        s.push_str(" │ away");
    }
    if app.scroll() > 0 {
        s.push_str(&format!(" │ scrolled ↑{}", app.scroll()));
    }
    match app.link {
        Link::Lost(_) => s.push_str(" │ DISCONNECTED"),
        Link::Reconnecting(_) => s.push_str(" │ RECONNECTING"),
        Link::Online => {}
    }
    s.push_str(&format!(
        " │ key epoch ↑{} ↓{} │ {} │ {}",
        app.epochs.0,
        app.epochs.1,
        short_fingerprint(&app.fingerprint),
        app.server,
    ));
    s
}

/// Draws the whole screen into `buf`.
pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let a = areas(area);
    let width = |r: Rect| usize::from(r.width);

    let (title, title_style) = match &app.link {
        Link::Online => {
            let room = app.rooms.current().unwrap_or("no room");
            let t = match app.topic().filter(|t| !t.is_empty()) {
                Some(topic) => format!(" ChatBox · {room} — {topic}"),
                None => format!(" ChatBox · {room}"),
            };
            (
                t,
                Style::default()
                    .fg(Color::White)
                    .bg(Color::Blue)
                    .add_modifier(Modifier::BOLD),
            )
        }
        Link::Reconnecting(reason) => (
            format!(
                " Connection lost: {reason} — reconnecting; lines typed now are sent after, Esc to quit"
            ),
            Style::default()
                .fg(Color::Black)
                .bg(Color::Yellow)
                .add_modifier(Modifier::BOLD),
        ),
        Link::Lost(reason) if app.auto_login => (
            format!(" Connection lost: {reason} — Enter to try again, Esc to quit"),
            Style::default()
                .fg(Color::White)
                .bg(Color::Red)
                .add_modifier(Modifier::BOLD),
        ),
        Link::Lost(reason) => (
            format!(
                " Connection lost: {reason} — enter a new one-time code to reconnect, Esc to quit"
            ),
            Style::default()
                .fg(Color::White)
                .bg(Color::Red)
                .add_modifier(Modifier::BOLD),
        ),
    };
    buf.set_style(a.title, title_style);
    buf.set_stringn(a.title.x, a.title.y, &title, width(a.title), title_style);

    let rows = message_rows(app, a.messages.width);
    let height = usize::from(a.messages.height);
    let scroll = app.scroll().min(rows.len().saturating_sub(height));
    let end = rows.len() - scroll;
    let start = end.saturating_sub(height);
    for (i, row) in rows.get(start..end).unwrap_or_default().iter().enumerate() {
        let y = a.messages.y + u16::try_from(i).unwrap_or(u16::MAX);
        buf.set_line(a.messages.x, y, row, a.messages.width);
    }

    let status_style = Style::default().fg(Color::Black).bg(Color::Cyan);
    buf.set_style(a.status, status_style);
    buf.set_stringn(
        a.status.x,
        a.status.y,
        status_text(app),
        width(a.status),
        status_style,
    );

    let (shown, _) = input_view(app, width(a.input));
    buf.set_stringn(
        a.input.x,
        a.input.y,
        shown,
        width(a.input),
        Style::default(),
    );
}
