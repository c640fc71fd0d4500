//! The chat screen's state, updated by server events and key presses. No terminal here: the
//! screen is drawn from this state by [`super::view`], and the loop in [`super`] does the I/O.

use std::collections::{BTreeSet, HashMap, HashSet};

use chatbox_core::proto::{MessageKind, PresenceKind};
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::editor::Editor;
use crate::commands::Rooms;
use crate::event::{ChatLine, ServerEvent, error_name};
use crate::sanitize::sanitize;

/// Lines kept in the scrollback.
pub const SCROLLBACK: usize = 5000;

/// How a system line looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Server information, command results.
    Info,
    /// Joins, parts, away, topic changes.
    Presence,
    /// Errors.
    Error,
}

/// What one line of the message pane holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// A chat message.
    Chat {
        /// Say, action, private or notice.
        kind: MessageKind,
        /// Room or recipient.
        target: String,
        /// Sender.
        from: String,
        /// Text.
        text: String,
    },
    /// A line from the client or about the server.
    System {
        /// Style.
        level: Level,
        /// Text.
        text: String,
    },
}

/// One line of the message pane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Local `HH:MM`.
    pub time: String,
    /// What it says.
    pub body: Body,
}

/// Whether we are connected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// Logged in.
    Online,
    /// The connection broke and the client is logging in again by itself; lines typed now
    /// are queued and sent once it is back.
    Reconnecting(String),
    /// The connection ended; the input line takes a new one-time code (or, with
    /// `CHATBOX_TOTP_SECRET`, Enter tries again).
    Lost(String),
}

/// What a secret prompt is collecting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AskKind {
    /// `/passwd`: current password, a code, the new password twice.
    Passwd,
    /// `/reenrol`: current password, a code.
    Reenrol,
}

/// Secrets being asked for on the input line, one after the other, never shown or remembered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ask {
    /// What for.
    pub kind: AskKind,
    /// The answers so far.
    pub answers: Vec<String>,
}

impl Ask {
    /// Starts asking for `kind`.
    #[must_use]
    pub fn new(kind: AskKind) -> Ask {
        Ask {
            kind,
            answers: Vec::new(),
        }
    }

    fn prompts(&self) -> &'static [&'static str] {
        match self.kind {
            AskKind::Passwd => &[
                "current password",
                "one-time code",
                "new password",
                "new password again",
            ],
            AskKind::Reenrol => &["current password", "one-time code"],
        }
    }

    /// The prompt for the next answer.
    #[must_use]
    pub fn prompt(&self) -> &'static str {
        self.prompts()
            .get(self.answers.len())
            .copied()
            .unwrap_or("")
    }

    /// Adds an answer; true once every answer is in.
    pub fn answer(&mut self, text: String) -> bool {
        self.answers.push(text);
        self.answers.len() >= self.prompts().len()
    }
}

/// What the loop should do after a key press.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Nothing (redraw).
    None,
    /// The user pressed Enter on this line (a chat line, or a code when the link is lost).
    Submit(String),
    /// Leave.
    Quit,
}

/// Formats Unix milliseconds as local `HH:MM`.
#[must_use]
pub fn local_hh_mm(ms: u64) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.with_timezone(&chrono::Local).format("%H:%M").to_string())
        .unwrap_or_else(|| "--:--".to_owned())
}

/// Formats Unix milliseconds as UTC `HH:MM` (tests).
#[must_use]
pub fn utc_hh_mm(ms: u64) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.format("%H:%M").to_string())
        .unwrap_or_else(|| "--:--".to_owned())
}

/// The chat screen's state.
#[derive(Debug)]
pub struct App {
    /// Our user name.
    pub user: String,
    /// `host:port`.
    pub server: String,
    /// The server key fingerprint.
    pub fingerprint: String,
    /// Key epochs `(send, receive)`.
    pub epochs: (u64, u64),
    /// Joined rooms and the current one.
    pub rooms: Rooms,
    /// Whether we set an away message.
    pub away: bool,
    /// Connection state.
    pub link: Link,
    /// Codes are computed (`CHATBOX_TOTP_SECRET`): logging in again needs no typed code.
    pub auto_login: bool,
    /// The input line.
    pub editor: Editor,
    /// Secrets being asked for (`/passwd`, `/reenrol`): the input line is not shown.
    pub ask: Option<Ask>,
    members: HashMap<String, BTreeSet<String>>,
    names_pending: HashMap<String, Vec<String>>,
    topics: HashMap<String, String>,
    entries: Vec<Entry>,
    /// Ids of chat messages shown, so history resent after a reconnect is not shown twice.
    seen: HashSet<u64>,
    /// Rows scrolled up from the bottom.
    scroll: usize,
    /// Rows of the message pane (set by the loop from the terminal size).
    page: usize,
    time_fmt: fn(u64) -> String,
}

impl App {
    /// A fresh screen for `user` on `server`; `time_fmt` formats Unix ms as `HH:MM`.
    #[must_use]
    pub fn new(user: &str, server: &str, fingerprint: &str, time_fmt: fn(u64) -> String) -> Self {
        Self {
            user: user.to_owned(),
            server: server.to_owned(),
            fingerprint: fingerprint.to_owned(),
            epochs: (0, 0),
            rooms: Rooms::new(Some(crate::link::DEFAULT_ROOM)),
            away: false,
            link: Link::Online,
            auto_login: false,
            editor: Editor::default(),
            ask: None,
            members: HashMap::new(),
            names_pending: HashMap::new(),
            topics: HashMap::new(),
            entries: Vec::new(),
            seen: HashSet::new(),
            scroll: 0,
            page: 10,
            time_fmt,
        }
    }

    /// The message pane's lines, oldest first.
    #[must_use]
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Rows scrolled up from the bottom.
    #[must_use]
    pub fn scroll(&self) -> usize {
        self.scroll
    }

    /// The current room's topic.
    #[must_use]
    pub fn topic(&self) -> Option<&str> {
        self.rooms
            .current()
            .and_then(|r| self.topics.get(r))
            .map(String::as_str)
    }

    /// Users online in the current room.
    #[must_use]
    pub fn members_here(&self) -> usize {
        self.rooms
            .current()
            .and_then(|r| self.members.get(r))
            .map_or(0, BTreeSet::len)
    }

    /// Sets the height of the message pane (PgUp/PgDn move by one page).
    pub fn set_page(&mut self, rows: usize) {
        self.page = rows.max(1);
    }

    fn push(&mut self, time_ms: u64, body: Body) {
        self.entries.push(Entry {
            time: (self.time_fmt)(time_ms),
            body,
        });
        if self.entries.len() > SCROLLBACK {
            self.entries.drain(..self.entries.len() - SCROLLBACK);
        }
    }

    /// Adds a system line at `now_ms`.
    pub fn system(&mut self, now_ms: u64, level: Level, text: &str) {
        self.push(
            now_ms,
            Body::System {
                level,
                text: sanitize(text),
            },
        );
    }

    fn chat(&mut self, m: &ChatLine) {
        if !self.seen.insert(m.id) {
            return;
        }
        self.push(
            m.time_ms,
            Body::Chat {
                kind: m.kind,
                target: sanitize(&m.target),
                from: sanitize(&m.from),
                text: sanitize(&m.text),
            },
        );
    }

    /// Applies a server event received at `now_ms`.
    pub fn on_event(&mut self, event: &ServerEvent, now_ms: u64) {
        self.rooms.on_event(event, &self.user);
        match event {
            ServerEvent::LoginOk { user, motd } => {
                self.user.clone_from(user);
                self.system(now_ms, Level::Info, &format!("logged in as {user}"));
                if !motd.is_empty() {
                    self.system(now_ms, Level::Info, &format!("MOTD: {motd}"));
                }
            }
            ServerEvent::Message(m) => self.chat(m),
            ServerEvent::History { messages, .. } => {
                for m in messages {
                    self.chat(m);
                }
            }
            ServerEvent::Presence {
                room,
                user,
                kind,
                text,
            } => self.presence(now_ms, room, user, *kind, text),
            ServerEvent::Names { room, done, users } => {
                let pending = self.names_pending.entry(room.clone()).or_default();
                pending.extend(users.iter().cloned());
                if *done {
                    let all = self.names_pending.remove(room).unwrap_or_default();
                    let text = format!("in {room}: {}", all.join(" "));
                    self.members.insert(room.clone(), all.into_iter().collect());
                    self.system(now_ms, Level::Info, &text);
                }
            }
            ServerEvent::Topic {
                room,
                topic,
                set_by,
                ..
            } => {
                self.topics.insert(room.clone(), topic.clone());
                let text = match (topic.is_empty(), set_by.is_empty()) {
                    (true, _) => format!("{room} has no topic"),
                    (false, true) => format!("topic of {room}: {topic}"),
                    (false, false) => format!("topic of {room}: {topic} (set by {set_by})"),
                };
                self.system(now_ms, Level::Info, &text);
            }
            ServerEvent::Info { text } => self.system(now_ms, Level::Info, text),
            ServerEvent::RoomEntry {
                room,
                members,
                topic,
            } => self.system(now_ms, Level::Info, &format!("{room} ({members}) {topic}")),
            ServerEvent::Whois {
                user,
                role,
                online,
                away,
                rooms,
                ..
            } => {
                let mut text = format!(
                    "{user}: {role}, {}",
                    if *online { "online" } else { "offline" }
                );
                if !away.is_empty() {
                    text.push_str(&format!(", away: {away}"));
                }
                if !rooms.is_empty() {
                    text.push_str(&format!(", in {}", rooms.join(" ")));
                }
                self.system(now_ms, Level::Info, &text);
            }
            ServerEvent::Error { code, text } => {
                let line = format!("{}: {text}", error_name(*code));
                self.system(now_ms, Level::Error, &line);
            }
            ServerEvent::Invalid { what, .. } => {
                let line = format!("the server sent an invalid {what}; message ignored");
                self.system(now_ms, Level::Error, &line);
            }
            ServerEvent::Bye { reason } => self.system(
                now_ms,
                Level::Error,
                &format!("the server closed the session: {reason}"),
            ),
            ServerEvent::PasswordChanged { closed } => self.system(
                now_ms,
                Level::Info,
                &format!("password changed; {closed} other session(s) closed"),
            ),
            ServerEvent::ReenrolStarted { uri } => {
                self.system(
                    now_ms,
                    Level::Info,
                    "scan this QR code with your authenticator app (the old one stays valid until \
                     you confirm), then type /reenrol confirm CODE with a code from the new entry:",
                );
                if let Ok(lines) = crate::qr_view::render_text(uri, crate::qr_view::QrStyle::Plain)
                {
                    for line in lines {
                        self.system(now_ms, Level::Info, &line);
                    }
                }
                if let Some(secret) = crate::qr_view::otpauth_secret(uri) {
                    let grouped =
                        crate::qr_view::grouped_secret(secret).unwrap_or_else(|| secret.to_owned());
                    self.system(now_ms, Level::Info, &format!("or by hand: {grouped}"));
                }
            }
            ServerEvent::Reenrolled {
                closed,
                scratch_codes,
            } => {
                self.system(
                    now_ms,
                    Level::Info,
                    &format!(
                        "second factor re-enrolled; {closed} other session(s) closed. New scratch \
                         codes (each works once; store them now, they are not shown again):"
                    ),
                );
                for pair in scratch_codes.chunks(2) {
                    self.system(now_ms, Level::Info, &format!("    {}", pair.join("    ")));
                }
            }
            ServerEvent::SessionList { sessions, done } => {
                for s in sessions {
                    let text = format!(
                        "session {}: node {}, from {}, since {}{}",
                        s.id,
                        s.node,
                        s.address,
                        crate::event::utc_rfc3339(s.since_ms),
                        if s.current { " (this one)" } else { "" }
                    );
                    self.system(now_ms, Level::Info, &text);
                }
                if *done {
                    self.system(
                        now_ms,
                        Level::Info,
                        "end of sessions (/sessions revoke ID or /sessions revoke others)",
                    );
                }
            }
            ServerEvent::SessionsRevoked { count } => {
                self.system(now_ms, Level::Info, &format!("{count} session(s) closed"))
            }
            ServerEvent::Pong { .. }
            | ServerEvent::RegisterStarted { .. }
            | ServerEvent::Registered { .. }
            | ServerEvent::RegistrationPolicy { .. }
            | ServerEvent::RateLimit { .. }
            | ServerEvent::Unknown { .. } => {}
        }
    }

    fn presence(&mut self, now_ms: u64, room: &str, user: &str, kind: PresenceKind, text: &str) {
        let members = self.members.entry(room.to_owned()).or_default();
        let paren = |t: &str| {
            if t.is_empty() {
                String::new()
            } else {
                format!(" ({t})")
            }
        };
        let line = match kind {
            PresenceKind::Join => {
                members.insert(user.to_owned());
                format!("--> {user} joined {room}")
            }
            PresenceKind::Part => {
                members.remove(user);
                format!("<-- {user} left {room}{}", paren(text))
            }
            PresenceKind::Quit => {
                for m in self.members.values_mut() {
                    m.remove(user);
                }
                format!("<-- {user} quit{}", paren(text))
            }
            PresenceKind::Kicked => {
                members.remove(user);
                format!("<-- {user} was kicked from {room}{}", paren(text))
            }
            PresenceKind::Banned => {
                for m in self.members.values_mut() {
                    m.remove(user);
                }
                format!("<-- {user} was banned{}", paren(text))
            }
            PresenceKind::Away => {
                if user == self.user {
                    self.away = true;
                }
                format!("-!- {user} is away{}", paren(text))
            }
            PresenceKind::Back => {
                if user == self.user {
                    self.away = false;
                }
                format!("-!- {user} is back")
            }
            PresenceKind::Muted => format!("-!- {user} was muted{}", paren(text)),
            PresenceKind::Topic => {
                self.topics.insert(room.to_owned(), text.to_owned());
                format!("-!- {user} changed the topic of {room} to: {text}")
            }
            _ => format!("-!- {user} {room} {text}"),
        };
        self.system(now_ms, Level::Presence, &line);
    }

    /// The connection ended and will not come back by itself.
    pub fn connection_lost(&mut self, now_ms: u64, reason: &str) {
        let reason = reason.strip_prefix("connection lost: ").unwrap_or(reason);
        self.link = Link::Lost(sanitize(reason));
        self.editor.clear();
        self.members.clear();
        let next = if self.auto_login {
            "Press Enter to try again, or Esc to quit"
        } else {
            "Type a new one-time code and press Enter to reconnect, or Esc to quit"
        };
        self.system(
            now_ms,
            Level::Error,
            &format!("connection lost: {reason}. {next}"),
        );
    }

    /// The connection broke; the client is logging in again by itself.
    pub fn reconnecting(&mut self, now_ms: u64, reason: &str) {
        let reason = reason.strip_prefix("connection lost: ").unwrap_or(reason);
        self.link = Link::Reconnecting(sanitize(reason));
        self.members.clear();
        self.system(
            now_ms,
            Level::Error,
            &format!(
                "connection lost: {reason}. Reconnecting; lines typed now are sent once \
                 reconnected (Esc to quit)"
            ),
        );
    }

    /// Logged in again after a loss, at `server`.
    pub fn reconnected(&mut self, server: &str, fingerprint: &str) {
        self.link = Link::Online;
        server.clone_into(&mut self.server);
        self.fingerprint = fingerprint.to_owned();
        self.rooms = Rooms::new(Some(crate::link::DEFAULT_ROOM));
        self.epochs = (0, 0);
        self.away = false;
    }

    /// Handles one key press.
    pub fn on_key(&mut self, key: KeyEvent) -> Action {
        if key.kind == KeyEventKind::Release {
            return Action::None;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let online = self.link == Link::Online;
        // Chat lines are typed (and remembered) unless the input line takes a code or a secret.
        let chatting = !matches!(self.link, Link::Lost(_)) && self.ask.is_none();
        match key.code {
            KeyCode::Char('c' | 'd') if ctrl => return Action::Quit,
            KeyCode::Esc if self.ask.is_some() => {
                self.ask = None;
                self.editor.submit(false);
                return Action::None;
            }
            KeyCode::Esc if !online => return Action::Quit,
            KeyCode::Char('u') if ctrl => self.editor.clear(),
            KeyCode::Char('w') if ctrl => self.editor.delete_word(),
            KeyCode::Char('a') if ctrl => self.editor.home(),
            KeyCode::Char('e') if ctrl => self.editor.end(),
            KeyCode::Char(_) if ctrl => {}
            KeyCode::Char(c) => self.editor.insert(c),
            KeyCode::Enter => return Action::Submit(self.editor.submit(chatting)),
            KeyCode::Backspace => self.editor.backspace(),
            KeyCode::Delete => self.editor.delete(),
            KeyCode::Left => self.editor.left(),
            KeyCode::Right => self.editor.right(),
            KeyCode::Home => self.editor.home(),
            KeyCode::End => self.editor.end(),
            KeyCode::Up if chatting => self.editor.up(),
            KeyCode::Down if chatting => self.editor.down(),
            KeyCode::PageUp => {
                self.scroll = self
                    .scroll
                    .saturating_add(self.page.saturating_sub(1).max(1))
            }
            KeyCode::PageDown => {
                self.scroll = self
                    .scroll
                    .saturating_sub(self.page.saturating_sub(1).max(1))
            }
            KeyCode::Tab if chatting => self.next_room(),
            _ => {}
        }
        Action::None
    }

    /// Makes the next joined room current (Tab).
    pub fn next_room(&mut self) {
        let joined = self.rooms.joined().to_vec();
        let at = self
            .rooms
            .current()
            .and_then(|c| joined.iter().position(|r| r == c));
        let next = match at {
            Some(i) => joined.get((i + 1) % joined.len().max(1)),
            None => joined.first(),
        };
        if let Some(room) = next {
            self.rooms.switch_to(room);
        }
    }

    /// Caps the scroll offset at `max` rows (the view knows how many rows there are).
    pub fn clamp_scroll(&mut self, max: usize) {
        self.scroll = self.scroll.min(max);
    }
}
