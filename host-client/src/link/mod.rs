//! The chat session between one logged-in connection (and the ones after it) and a front end:
//! [`ChatLink`], sans-IO (docs/DESIGN.md §7).
//!
//! The link holds what the session needs to survive the connection: the [`Outbox`] (lines sent
//! and not acknowledged, lines waiting, the pings that acknowledge them), the [`Pacer`] (the
//! rate limit announced in `RateLimit`), the rooms (as typed lines see them, and as the
//! acknowledged lines left them — those are joined again after a reconnect), the keepalive
//! and its deadline, and the history lookup of lines of unknown fate after a reconnect. It does
//! no input or output, reads no clock and starts no thread: the driver (plain mode,
//! `plain_chat`; the chat screen, `tui`) owns the socket, the terminal and the timers, and
//!
//! - hands in what happens: [`ChatLink::handle_event`] for each server event (its [`Verdict`]
//!   says whether the front end shows it), [`ChatLink::handle_timeout`] when
//!   [`ChatLink::poll_timeout`] is reached, [`ChatLink::connection_lost`] and
//!   [`ChatLink::reconnected`], lines typed with [`ChatLink::queue`];
//! - takes out what to do: [`ChatLink::next_line`] (a queued line, when the pace allows; the
//!   driver turns it into a message, notes it with [`ChatLink::line_sent`] and writes it),
//!   [`ChatLink::poll_transmit`] (pings, rejoins, lookups, to write in order), and
//!   [`ChatLink::poll_record`] (what to tell the user or do: [`Record`]).
//!
//! Every time is an [`Instant`] passed in, so the tests in `tests.rs` run whole sessions —
//! acknowledgements, pacing, put-off lines, lost connections, lookups — in process.

pub mod lookup;
pub mod outbox;
pub mod pace;
#[cfg(test)]
mod tests;

use core::time::Duration;
use std::collections::VecDeque;
use std::time::Instant;

use chatbox_core::proto::{ClientMsg, PresenceKind};

use self::lookup::{LOOKUP_LIMIT, Lookup, Step};
pub use self::outbox::{Line, OFFLINE_QUEUE_LIMIT, OUTBOX_LIMIT, Outbox, PingKind};
pub use self::pace::{Limit, Pacer};
use crate::commands::{Parsed, Rooms, parse};
use crate::event::ServerEvent;

/// Interval between keepalive pings.
pub const KEEPALIVE: Duration = Duration::from_secs(30);

/// How long the server has to answer a `Ping` (the final one after the end of input included)
/// before the connection counts as lost.
pub const ACK_TIMEOUT: Duration = Duration::from_secs(30);

/// The room the server puts everyone in at login.
pub const DEFAULT_ROOM: &str = "#lobby";

/// A message the link wants written, in this order, besides the lines themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transmit {
    /// An acknowledging, keepalive, final or lookup ping.
    Ping {
        /// Echoed in the `Pong`.
        token: u64,
    },
    /// Back into a room after a reconnect.
    Join {
        /// The room.
        room: String,
    },
    /// Out of the login's room after a reconnect, if it had been left.
    Part {
        /// The room.
        room: String,
    },
    /// One page of a lookup.
    History {
        /// Room or user.
        target: String,
        /// Older than this (0 = newest).
        before_id: u64,
        /// Page size.
        limit: u16,
    },
}

impl Transmit {
    /// The message to write.
    #[must_use]
    pub fn msg(&self) -> ClientMsg<'_> {
        match self {
            Transmit::Ping { token } => ClientMsg::Ping { token: *token },
            Transmit::Join { room } => ClientMsg::Join { room },
            Transmit::Part { room } => ClientMsg::Part { room, reason: "" },
            Transmit::History {
                target,
                before_id,
                limit,
            } => ClientMsg::History {
                target,
                before_id: *before_id,
                limit: *limit,
            },
        }
    }
}

/// Whether the front end shows a server event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Show it as usual.
    Show,
    /// The link's business alone (an acknowledging `Pong`, a put-off line's error, a lookup's
    /// answer, `RateLimit`).
    Hide,
}

/// What the driver tells the user or does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// The server put a line off (`rate_limited`, `busy`, with its text): it goes out again.
    PutOff {
        /// The server's text.
        reason: String,
    },
    /// A lookup found lines of the lost connection stored: they are not sent again.
    StoredBefore {
        /// How many.
        count: usize,
    },
    /// The server did not answer a ping in time: the connection counts as lost (the link
    /// has noted it; the driver closes the socket and logs in again).
    Lost {
        /// Why.
        reason: String,
    },
    /// The final ping is answered and every line handled: the session is over.
    Done,
}

/// The chat session; see the module documentation.
#[derive(Debug)]
pub struct ChatLink {
    user: String,
    /// Rooms as the lines typed so far see them.
    rooms: Rooms,
    /// Rooms as the acknowledged lines left them (joined again after a reconnect).
    acked_rooms: Rooms,
    outbox: Outbox,
    pacer: Pacer,
    /// A logged-in connection is there.
    online: bool,
    next_ping: Instant,
    /// The last line the pace held back may go at this time.
    paced_until: Option<Instant>,
    /// State of the ping token generator.
    tokens: u64,
    lookup: Option<Lookup>,
    transmit: VecDeque<Transmit>,
    records: VecDeque<Record>,
    input_open: bool,
    final_token: Option<u64>,
}

impl ChatLink {
    /// A session logged in as `user`, with the events that came with the login; `seed`
    /// starts the ping tokens (random, from the driver).
    #[must_use]
    pub fn new(user: &str, early: &[ServerEvent], seed: u64, now: Instant) -> ChatLink {
        let mut link = ChatLink {
            user: user.to_owned(),
            rooms: Rooms::new(Some(DEFAULT_ROOM)),
            acked_rooms: Rooms::default(),
            outbox: Outbox::default(),
            pacer: Pacer::for_limit(Limit::DEFAULT, now),
            online: true,
            next_ping: now + KEEPALIVE,
            paced_until: None,
            tokens: seed,
            lookup: None,
            transmit: VecDeque::new(),
            records: VecDeque::new(),
            input_open: true,
            final_token: None,
        };
        link.logged_in(early, now);
        link.acked_rooms = link.rooms.clone();
        link
    }

    /// The user logged in.
    #[must_use]
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Rooms as the lines typed so far see them.
    #[must_use]
    pub fn rooms(&self) -> &Rooms {
        &self.rooms
    }

    /// The front end made `room` current (a line typed now goes there; after a reconnect it is
    /// current again).
    pub fn set_current(&mut self, room: Option<&str>) {
        if let Some(room) = room {
            self.rooms.switch_to(room);
        }
    }

    /// The lines held.
    #[must_use]
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// A logged-in connection is there.
    #[must_use]
    pub fn is_online(&self) -> bool {
        self.online
    }

    /// Whether to read more input now: it is open, nothing waits to be sent, and the outbox has
    /// room.
    #[must_use]
    pub fn wants_input(&self) -> bool {
        self.input_open && self.outbox.queued() == 0 && !self.outbox.is_full()
    }

    /// Whether input is still read (not at its end, no `/quit`).
    #[must_use]
    pub fn input_open(&self) -> bool {
        self.input_open
    }

    /// The end of input (or `/quit`): once every line is handled, a final ping, then
    /// [`Record::Done`].
    pub fn input_closed(&mut self) {
        self.input_open = false;
    }

    /// A line typed now, parsed with the current room (a `/join` or `/part` changes it at once,
    /// for the lines typed after it).
    pub fn typed(&mut self, text: String) -> Line {
        let room = self.rooms.current().map(str::to_owned);
        if let Ok(Parsed::Send(msg)) = parse(&text, room.as_deref()) {
            self.rooms.on_sent(&msg);
        }
        Line { text, room }
    }

    /// Queues a line, behind what waits already; gives it back if `limit` lines wait.
    pub fn queue(&mut self, line: Line, limit: usize) -> Result<(), Line> {
        self.outbox.queue(line, limit)
    }

    /// The next line to send, if one waits, the connection is up, and the pace allows (else
    /// [`ChatLink::poll_timeout`] says when to ask again). Nothing goes while a put-off line is
    /// in flight (it keeps its place) or a lookup runs; a line of unknown fate at the head
    /// starts the lookup of its target (behind the lines before it: the server handles them
    /// first, so a room they join can be read).
    pub fn next_line(&mut self, now: Instant) -> Option<Line> {
        self.paced_until = None;
        if !self.online
            || self.lookup.is_some()
            || self.outbox.queued() == 0
            || self.outbox.put_off_in_flight()
        {
            return None;
        }
        if self.outbox.head_check().is_some() {
            self.start_lookup(now);
            return None;
        }
        match self.pacer.take(now) {
            Ok(()) => self.outbox.take_queued(),
            Err(wait) => {
                self.paced_until = Some(now + wait);
                None
            }
        }
    }

    /// The driver is writing `line` as `msg` (note it before the write: if the write fails, the
    /// line is unacknowledged and so sent again after the reconnect).
    pub fn line_sent(&mut self, line: Line, msg: &ClientMsg<'_>, now: Instant) {
        // Applied again at sending time: after a reconnect the rooms were rebuilt.
        self.rooms.on_sent(msg);
        self.outbox.sent(line, msg);
        if self.outbox.wants_ack_ping() {
            self.ping(PingKind::Ack, now);
        }
    }

    /// A line taken from the queue could not be encoded (too long): refused for good.
    pub fn refused_locally(&mut self) {
        self.outbox.refused_locally();
    }

    /// The driver wrote a message outside the queue (a secret-carrying one): a ping of its own
    /// follows, so that the server's answer to it is never taken for a line's.
    pub fn sent_outside(&mut self, now: Instant) {
        self.ping(PingKind::Ack, now);
    }

    /// The next message to write (pings, rejoins, lookups), in order; the final ping once the
    /// input is closed and nothing waits.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        if !self.online {
            return None;
        }
        if self.transmit.is_empty()
            && !self.input_open
            && self.outbox.queued() == 0
            && self.lookup.is_none()
            && self.final_token.is_none()
        {
            self.final_token = Some(self.ping(PingKind::Final, now));
        }
        self.transmit.pop_front()
    }

    /// The next thing to tell the user or do.
    pub fn poll_record(&mut self) -> Option<Record> {
        self.records.pop_front()
    }

    /// When to call [`ChatLink::handle_timeout`] (or [`ChatLink::next_line`], for a paced
    /// line): the keepalive, a ping's answer due, the pace.
    #[must_use]
    pub fn poll_timeout(&self) -> Instant {
        let mut at = self.next_ping;
        if self.online {
            for t in [self.ack_due(), self.paced_until].into_iter().flatten() {
                at = at.min(t);
            }
        }
        at
    }

    fn ack_due(&self) -> Option<Instant> {
        let ping = self.outbox.oldest_ping();
        let lookup = self.lookup.as_ref().map(|l| l.sent);
        [ping, lookup]
            .into_iter()
            .flatten()
            .min()
            .map(|t| t + ACK_TIMEOUT)
    }

    /// Time passed: a ping unanswered too long loses the connection ([`Record::Lost`]); the
    /// keepalive pings.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.online && self.ack_due().is_some_and(|t| now >= t) {
            let reason = if self.final_token.is_some() {
                "the server did not acknowledge the last messages in time"
            } else {
                "the server did not answer a ping in time"
            };
            self.connection_lost();
            self.records.push_back(Record::Lost {
                reason: reason.to_owned(),
            });
            return;
        }
        if now >= self.next_ping {
            self.next_ping = now + KEEPALIVE;
            if self.online {
                self.ping(PingKind::Keepalive, now);
            }
        }
    }

    /// One event from the server: acknowledgements, the pace, the rooms, a lookup's answers.
    pub fn handle_event(&mut self, event: &ServerEvent, now: Instant) -> Verdict {
        if self.rate_limit(event, now) {
            return Verdict::Hide;
        }
        if let Some(l) = self.lookup.as_mut()
            && l.is_reading()
        {
            match event {
                ServerEvent::History {
                    target, messages, ..
                } if *target == l.target => {
                    l.add(messages);
                    return Verdict::Hide;
                }
                // A target this user may not read (a room not joined): nothing found there.
                ServerEvent::Error { .. } => return Verdict::Hide,
                _ => {}
            }
        }
        if self.outbox.observe(event, &self.user) {
            // Put off, not refused: the line goes out again, later.
            let reason = match event {
                ServerEvent::Error { text, .. } => text.clone(),
                _ => String::new(),
            };
            self.records.push_back(Record::PutOff { reason });
            return Verdict::Hide;
        }
        self.rooms.on_event(event, &self.user);
        if let ServerEvent::Presence {
            kind: PresenceKind::Kicked | PresenceKind::Banned,
            ..
        } = event
        {
            self.acked_rooms.on_event(event, &self.user);
        }
        let ServerEvent::Pong { token } = *event else {
            return Verdict::Show;
        };
        if self.lookup.as_ref().is_some_and(|l| l.is_own(token)) {
            self.lookup_pong(token, now);
            return Verdict::Hide;
        }
        let Some(acked) = self.outbox.on_pong(token) else {
            return Verdict::Show;
        };
        if acked.retry > 0 {
            self.pacer.back_off(now);
        }
        for line in &acked.lines {
            if let Ok(Parsed::Send(msg)) = parse(&line.text, line.room.as_deref()) {
                self.acked_rooms.on_sent(&msg);
            }
        }
        if acked.kind == PingKind::Final {
            if !self.input_open && self.outbox.is_settled() {
                self.records.push_back(Record::Done);
            } else {
                // A line came back to be sent again (put off) after the final ping went out:
                // another final ping follows once the queue is empty.
                self.final_token = None;
            }
        }
        if self.outbox.wants_ack_ping() {
            self.ping(PingKind::Ack, now);
        }
        if acked.kind == PingKind::Ack {
            Verdict::Hide
        } else {
            Verdict::Show
        }
    }

    /// The connection is gone (a read or write failed, the server closed it): pings in flight
    /// mean nothing any more, unacknowledged lines go back to the queue.
    pub fn connection_lost(&mut self) {
        self.online = false;
        self.outbox.connection_lost();
        self.final_token = None;
        self.lookup = None;
        self.transmit.clear();
        self.paced_until = None;
    }

    /// Logged in again as `user`, with the login's events: the rooms start afresh from them,
    /// the rooms of the acknowledged lines are joined again ([`Transmit::Join`], and
    /// [`Transmit::Part`] of the login's room if it had been left), the current room stays
    /// current, and the queue (unacknowledged lines first) goes out paced.
    pub fn reconnected(&mut self, user: &str, early: &[ServerEvent], now: Instant) {
        user.clone_into(&mut self.user);
        self.online = true;
        self.transmit.clear();
        let typed_current = self.rooms.current().map(str::to_owned);
        let before = core::mem::take(&mut self.acked_rooms);
        self.pacer = Pacer::for_limit(Limit::DEFAULT, now);
        self.logged_in(early, now);
        let joins = self.rejoin(&before);
        self.pacer.spend(joins, now);
        self.acked_rooms = self.rooms.clone();
        if let Some(room) = typed_current {
            self.rooms.switch_to(&room);
        }
        self.next_ping = now + KEEPALIVE;
        self.paced_until = None;
    }

    /// The rooms as a login leaves them (the server's auto-join, then its events).
    fn logged_in(&mut self, early: &[ServerEvent], now: Instant) {
        self.rooms = Rooms::new(Some(DEFAULT_ROOM));
        for event in early {
            self.rooms.on_event(event, &self.user);
            if !self.rate_limit(event, now) {
                // Message ids (nothing is in flight: no line is answered here).
                let _ = self.outbox.observe(event, &self.user);
            }
        }
    }

    /// A `RateLimit`: the pace follows it (true if `event` is one).
    fn rate_limit(&mut self, event: &ServerEvent, now: Instant) -> bool {
        let ServerEvent::RateLimit {
            milli_per_sec,
            burst,
        } = *event
        else {
            return false;
        };
        self.pacer
            .set_limit(Limit::announced(milli_per_sec, burst), now);
        true
    }

    /// Back into the rooms of `before` (the login put us in the default room only), out of the
    /// default room if we had left it, and `before`'s current room current again. Returns how
    /// many messages this sends (they count against the server's rate limit).
    fn rejoin(&mut self, before: &Rooms) -> u32 {
        let mut sent = 0;
        for room in before.joined() {
            if !self.rooms.joined().iter().any(|r| r == room) {
                self.rooms.on_sent(&ClientMsg::Join { room });
                self.transmit
                    .push_back(Transmit::Join { room: room.clone() });
                sent += 1;
            }
        }
        let was_in_lobby = before.joined().iter().any(|r| r == DEFAULT_ROOM);
        if !was_in_lobby && self.rooms.joined().iter().any(|r| r == DEFAULT_ROOM) {
            self.rooms.on_sent(&ClientMsg::Part {
                room: DEFAULT_ROOM,
                reason: "",
            });
            self.transmit.push_back(Transmit::Part {
                room: DEFAULT_ROOM.to_owned(),
            });
            sent += 1;
        }
        if let Some(current) = before.current() {
            self.rooms.switch_to(current);
        }
        sent
    }

    /// Looks up the target of the line at the head of the queue (see [`lookup`]).
    fn start_lookup(&mut self, now: Instant) {
        let Some(check) = self.outbox.head_check() else {
            return;
        };
        let target = check.echo.target.clone();
        let after_id = self.outbox.oldest_check(&target).unwrap_or(check.after_id);
        let sync = self.token();
        let token = self.token();
        self.transmit.push_back(Transmit::Ping { token: sync });
        self.transmit.push_back(Transmit::History {
            target: target.clone(),
            before_id: 0,
            limit: LOOKUP_LIMIT,
        });
        self.transmit.push_back(Transmit::Ping { token });
        self.pacer.spend(1, now);
        self.lookup = Some(Lookup::new(target, after_id, sync, token, now));
    }

    /// A `Pong` of the lookup's: the next page, or the lines found dropped.
    fn lookup_pong(&mut self, token: u64, now: Instant) {
        let next = self.token();
        let Some(l) = self.lookup.as_mut() else {
            return;
        };
        if l.synced(token) {
            return;
        }
        match l.page_done() {
            Step::Page(before_id) => {
                l.next_page(next, now);
                let target = l.target.clone();
                self.transmit.push_back(Transmit::History {
                    target,
                    before_id,
                    limit: LOOKUP_LIMIT,
                });
                self.transmit.push_back(Transmit::Ping { token: next });
                self.pacer.spend(1, now);
            }
            Step::Done(found) => {
                let target = l.target.clone();
                self.lookup = None;
                let count = self.outbox.resolve(&target, &found, &self.user);
                if count > 0 {
                    self.records.push_back(Record::StoredBefore { count });
                }
            }
        }
    }

    fn ping(&mut self, kind: PingKind, now: Instant) -> u64 {
        let token = self.token();
        self.outbox.ping_sent(token, kind, now);
        self.transmit.push_back(Transmit::Ping { token });
        token
    }

    /// The next ping token (splitmix64 over the seed: distinct, unpredictable enough for an
    /// echo).
    fn token(&mut self) -> u64 {
        self.tokens = self.tokens.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.tokens;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}
