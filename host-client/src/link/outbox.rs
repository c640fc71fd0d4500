//! What the user sent and the server has not acknowledged yet, what waits to be sent, the pings
//! that acknowledge, and the pace at which lines go out.
//!
//! The server handles a connection's messages strictly in order, one at a time, and stores a
//! chat message before it handles the next one; so the `Pong` answering a `Ping` acknowledges
//! every line sent before that `Ping`. The client sends one `Ping` after **every** line, so each
//! line has its own acknowledgement, and whatever the server answers between the line's `Pong`
//! and the one before is the answer to that line alone:
//!
//! - an `Error` `rate_limited` or `busy`: the line was not handled; it goes back to the queue
//!   and is sent again (the caller also slows down). Put-off lines go back **in the order they
//!   were sent**, ahead of everything still waiting, and [`Outbox::put_off_in_flight`] tells the
//!   caller to send nothing new until the put-off line's `Pong` is in: only lines already on
//!   their way when the server said "slow down" can overtake it;
//! - any other `Error`: the line was refused for good (too long, not permitted, no such user…);
//!   it is counted in [`Outbox::refused`], which ends a plain-mode run with a non-zero exit;
//! - for a chat line (say, action, private), the sender's copy of the stored message — same
//!   target and the same cleaned text — shows that the line was **stored**, even if the `Pong`
//!   never arrives.
//!
//! When the connection is lost, the unacknowledged lines go back to the front of the queue, in
//! order, to be sent again after the next login — except those known to be done: a chat line
//! whose copy came back is not sent again, and a refused one stays refused. A chat line whose
//! copy did not come back may still have been stored by the node that died: it carries a
//! [`Check`]. Before such a line is sent again (when it reaches the head of the queue, so that
//! a `/join` queued before it has been handled and its room can be read), the caller looks its
//! target's history up and hands it to [`Outbox::resolve`], which drops the lines to that target
//! found there (a message from this user, to that target, with that text, newer than every
//! message id seen before the line was sent, and not the copy of a line sent since). Other lines
//! (`/join`, `/topic`, …) are sent again: doing them twice changes nothing stored twice. So
//! every line is handled once.
//!
//! Nothing here does input or output or reads a clock: [`crate::link::ChatLink`] drives it.

use std::collections::{HashSet, VecDeque};
use std::time::Instant;

use chatbox_core::proto::{ClientMsg, ErrorCode, MessageKind};
use chatbox_core::username;

use crate::event::{ChatLine, ServerEvent};

/// Lines (sent or not) the outbox holds at most before the caller stops taking input.
pub const OUTBOX_LIMIT: usize = 1000;

/// Lines typed on the chat screen while disconnected that are kept to be sent later.
pub const OFFLINE_QUEUE_LIMIT: usize = 100;

/// One line as typed, with the room that was current then (to turn it into the same message
/// when it is sent again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The text typed (a chat line or a `/command`).
    pub text: String,
    /// The current room when it was typed.
    pub room: Option<String>,
}

/// Why a ping was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PingKind {
    /// Only to acknowledge lines (its `Pong` is not shown).
    Ack,
    /// The periodic keepalive.
    Keepalive,
    /// The last one, at the end of input.
    Final,
}

/// The stored message a chat line becomes: its target as the server stores it and its text
/// cleaned as the server cleans it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Echo {
    /// Room, or the recipient (lower-case).
    pub target: String,
    /// `chatbox_core::text::clean` of the text sent.
    pub text: String,
}

impl Echo {
    /// The message `msg` is stored as, if it is a chat line.
    #[must_use]
    pub fn of(msg: &ClientMsg<'_>) -> Option<Echo> {
        let (target, text) = match *msg {
            ClientMsg::Say { room, text } => (room, text),
            ClientMsg::Action { target, text } => (target, text),
            ClientMsg::Private { to, text } => (to, text),
            _ => return None,
        };
        let target = if target.starts_with('#') {
            target.to_owned()
        } else {
            username::normalize(target).ok()?.as_str().to_owned()
        };
        Some(Echo {
            target,
            text: chatbox_core::text::clean(text).collect(),
        })
    }

    fn matches(&self, m: &ChatLine, me: &str) -> bool {
        m.from == me
            && m.target == self.target
            && m.text == self.text
            && matches!(
                m.kind,
                MessageKind::Say | MessageKind::Action | MessageKind::Private
            )
    }
}

/// A chat line that may have been stored by a connection that was lost: look for it in the
/// target's history before sending it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What it would be stored as.
    pub echo: Echo,
    /// The highest message id seen before it was sent: its own id is higher.
    pub after_id: u64,
}

#[derive(Debug, Clone, Copy)]
struct Ping {
    token: u64,
    kind: PingKind,
    /// Lines with a sequence number below this are acknowledged by its `Pong`.
    upto: u64,
    sent: Instant,
}

/// A line sent and not yet acknowledged.
#[derive(Debug, Clone)]
struct Sent {
    seq: u64,
    line: Line,
    echo: Option<Echo>,
    /// Highest message id seen when it was sent.
    after_id: u64,
    /// Its stored copy came back.
    stored: bool,
    /// The error the server answered it with.
    error: Option<u16>,
}

/// A line waiting to be sent.
#[derive(Debug, Clone)]
struct Queued {
    line: Line,
    check: Option<Check>,
    /// For a line put off by the server: its sequence number when it was sent (put-off lines go
    /// back in that order).
    put_off: Option<u64>,
}

/// What a `Pong` acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acked {
    /// Why that ping was sent.
    pub kind: PingKind,
    /// The lines it acknowledged as handled, oldest first.
    pub lines: Vec<Line>,
    /// Lines the server asked to send again later (`rate_limited`, `busy`): back in the queue.
    pub retry: usize,
}

/// Sent-but-unacknowledged lines, lines waiting to be sent, and the pings in flight.
#[derive(Debug, Default)]
pub struct Outbox {
    unacked: VecDeque<Sent>,
    unsent: VecDeque<Queued>,
    pings: VecDeque<Ping>,
    next_seq: u64,
    /// Highest message id seen on any connection.
    last_id: u64,
    /// Lines refused for good.
    refused: usize,
    /// Ids of the stored copies of our lines that a [`Check`] could still take for its own
    /// (newer than the oldest line in doubt or in flight): they are another line's, no proof.
    mine: HashSet<u64>,
}

impl Outbox {
    /// Nothing unacknowledged and nothing waiting.
    #[must_use]
    pub fn is_settled(&self) -> bool {
        self.unacked.is_empty() && self.unsent.is_empty()
    }

    /// Lines sent and not acknowledged.
    #[must_use]
    pub fn unacked(&self) -> usize {
        self.unacked.len()
    }

    /// Lines waiting to be sent.
    #[must_use]
    pub fn queued(&self) -> usize {
        self.unsent.len()
    }

    /// Lines the server refused for good (or the client, for a line too long to encode).
    #[must_use]
    pub fn refused(&self) -> usize {
        self.refused
    }

    /// Counts a line refused before it was sent (it cannot be encoded).
    pub fn refused_locally(&mut self) {
        self.refused += 1;
    }

    /// Whether the outbox holds as many lines as it should (stop taking input).
    #[must_use]
    pub fn is_full(&self) -> bool {
        self.unacked.len() + self.unsent.len() >= OUTBOX_LIMIT
    }

    /// Queues a line to be sent; gives it back if `limit` lines are queued already.
    pub fn queue(&mut self, line: Line, limit: usize) -> Result<(), Line> {
        if self.unsent.len() >= limit {
            return Err(line);
        }
        self.unsent.push_back(Queued {
            line,
            check: None,
            put_off: None,
        });
        Ok(())
    }

    /// The next line waiting to be sent, if any (call [`Outbox::sent`] when it goes out). Call
    /// [`Outbox::resolve`] first when [`Outbox::head_check`] is not `None`.
    pub fn take_queued(&mut self) -> Option<Line> {
        self.unsent.pop_front().map(|q| q.line)
    }

    /// Notes a line handed to the connection as `msg` (before writing it: if the write fails,
    /// the line is unacknowledged and so sent again after the reconnect).
    pub fn sent(&mut self, line: Line, msg: &ClientMsg<'_>) {
        self.unacked.push_back(Sent {
            seq: self.next_seq,
            line,
            echo: Echo::of(msg),
            after_id: self.last_id,
            stored: false,
            error: None,
        });
        self.next_seq += 1;
    }

    /// Whether an acknowledging ping should go out now: a line was sent after the last ping.
    #[must_use]
    pub fn wants_ack_ping(&self) -> bool {
        let acked_upto = self.pings.back().map_or(0, |p| p.upto);
        self.unacked.back().is_some_and(|s| s.seq >= acked_upto)
    }

    /// Notes a ping sent with `token`: it acknowledges everything sent before it.
    pub fn ping_sent(&mut self, token: u64, kind: PingKind, now: Instant) {
        self.pings.push_back(Ping {
            token,
            kind,
            upto: self.next_seq,
            sent: now,
        });
    }

    /// When the oldest ping in flight was sent.
    #[must_use]
    pub fn oldest_ping(&self) -> Option<Instant> {
        self.pings.front().map(|p| p.sent)
    }

    /// The line the server is answering now: the only one between the last `Pong` and the
    /// next ping's.
    fn current(&mut self) -> Option<&mut Sent> {
        let upto = self.pings.front()?.upto;
        let n = self.unacked.iter().take_while(|s| s.seq < upto).count();
        if n == 1 {
            self.unacked.front_mut()
        } else {
            None
        }
    }

    /// Looks at every event from the server (before [`Outbox::on_pong`] for a `Pong`): message
    /// ids, the stored copy of the current line, an error answering it. `me` is the user
    /// logged in. Returns true for an error that asks to send the line again (the caller need
    /// not show it).
    pub fn observe(&mut self, event: &ServerEvent, me: &str) -> bool {
        match event {
            ServerEvent::Message(m) => {
                self.last_id = self.last_id.max(m.id);
                if let Some(cur) = self.current()
                    && !cur.stored
                    && cur.echo.as_ref().is_some_and(|e| e.matches(m, me))
                {
                    cur.stored = true;
                    self.mine.insert(m.id);
                }
                false
            }
            ServerEvent::History { messages, .. } => {
                for m in messages {
                    self.last_id = self.last_id.max(m.id);
                }
                false
            }
            ServerEvent::Error { code, .. } => match self.current() {
                Some(cur) if cur.error.is_none() => {
                    cur.error = Some(*code);
                    is_retry(*code)
                }
                _ => false,
            },
            _ => false,
        }
    }

    /// Handles a `Pong`: `None` if the token is not one of ours in flight.
    pub fn on_pong(&mut self, token: u64) -> Option<Acked> {
        let at = self.pings.iter().position(|p| p.token == token)?;
        let ping = self.pings.get(at).copied()?;
        // Earlier pings were answered before (in order) or belong to nothing any more.
        self.pings.drain(..=at);
        let mut lines = Vec::new();
        let mut retry = Vec::new();
        while self.unacked.front().is_some_and(|s| s.seq < ping.upto) {
            let Some(s) = self.unacked.pop_front() else {
                break;
            };
            match s.error {
                Some(code) if is_retry(code) => retry.push((s.seq, s.line)),
                Some(_) => self.refused += 1,
                None => lines.push(s.line),
            }
        }
        self.prune_mine();
        let n = retry.len();
        for (seq, line) in retry {
            // Behind the lines put off before it, ahead of everything else.
            let at = self
                .unsent
                .iter()
                .take_while(|q| q.put_off.is_some_and(|s| s < seq))
                .count();
            self.unsent.insert(
                at,
                Queued {
                    line,
                    check: None,
                    put_off: Some(seq),
                },
            );
        }
        Some(Acked {
            kind: ping.kind,
            lines,
            retry: n,
        })
    }

    /// The connection is gone: pings in flight mean nothing any more, and the unacknowledged
    /// lines go back to the front of the queue, in order — but for the chat lines whose stored
    /// copy came back and the lines refused for good. A chat line without its copy gets a
    /// [`Check`].
    pub fn connection_lost(&mut self) {
        self.pings.clear();
        while let Some(s) = self.unacked.pop_back() {
            match s.error {
                Some(code) if !is_retry(code) => {
                    self.refused += 1;
                    continue;
                }
                _ => {}
            }
            if s.stored {
                continue;
            }
            let check = match (s.error, s.echo) {
                (None, Some(echo)) => Some(Check {
                    echo,
                    after_id: s.after_id,
                }),
                _ => None,
            };
            self.unsent.push_front(Queued {
                line: s.line,
                check,
                put_off: None,
            });
        }
    }

    /// A line sent and not acknowledged was put off by the server (`rate_limited`, `busy`):
    /// send nothing new until its `Pong` puts it back in the queue, so that it keeps its place.
    #[must_use]
    pub fn put_off_in_flight(&self) -> bool {
        self.unacked.iter().any(|s| s.error.is_some_and(is_retry))
    }

    /// The [`Check`] of the line at the head of the queue, if it has one: look its target up
    /// before sending it.
    #[must_use]
    pub fn head_check(&self) -> Option<&Check> {
        self.unsent.front()?.check.as_ref()
    }

    /// The lowest [`Check::after_id`] of the queued lines to `target` (how far back its history
    /// must be read).
    #[must_use]
    pub fn oldest_check(&self, target: &str) -> Option<u64> {
        self.unsent
            .iter()
            .filter_map(|q| q.check.as_ref())
            .filter(|c| c.echo.target == target)
            .map(|c| c.after_id)
            .min()
    }

    /// With the history of `target` (what the server answered; a target it refused simply has
    /// none): drops the queued lines to `target` that were stored already, and clears their
    /// checks. Returns how many were dropped.
    pub fn resolve(&mut self, target: &str, history: &[ChatLine], me: &str) -> usize {
        let mut used = self.mine.clone();
        let before = self.unsent.len();
        self.unsent.retain_mut(|q| {
            let Some(check) = q.check.take_if(|c| c.echo.target == target) else {
                return true;
            };
            let found = history.iter().find(|m| {
                m.id > check.after_id && !used.contains(&m.id) && check.echo.matches(m, me)
            });
            match found {
                Some(m) => {
                    used.insert(m.id);
                    false
                }
                None => true,
            }
        });
        // The copies found are taken (by the lines dropped), and they were seen: a line sent
        // from now on is newer than all of them.
        self.last_id = history.iter().map(|m| m.id).fold(self.last_id, u64::max);
        self.mine = used;
        self.prune_mine();
        before - self.unsent.len()
    }

    /// Forgets the copies no check can take any more: a check looks at ids above its line's
    /// `after_id`, and a line sent from now on has an `after_id` above every id seen.
    fn prune_mine(&mut self) {
        let in_flight = self.unacked.iter().map(|s| s.after_id);
        let in_doubt = self
            .unsent
            .iter()
            .filter_map(|q| q.check.as_ref().map(|c| c.after_id));
        match in_flight.chain(in_doubt).min() {
            Some(floor) => self.mine.retain(|id| *id > floor),
            None => self.mine.clear(),
        }
    }
}

/// Errors after which a line is sent again: it was not handled, only put off.
fn is_retry(code: u16) -> bool {
    code == ErrorCode::RateLimited as u16 || code == ErrorCode::Busy as u16
}

#[cfg(test)]
mod tests {
    use chatbox_core::proto::ServerMsg;

    use super::*;

    fn line(t: &str) -> Line {
        Line {
            text: t.into(),
            room: Some("#lobby".into()),
        }
    }

    /// Sends `t` as a Say in #lobby (a `/join` when it starts with `/join `).
    fn send(o: &mut Outbox, t: &str) {
        let l = line(t);
        match t.strip_prefix("/join ") {
            Some(room) => o.sent(l.clone(), &ClientMsg::Join { room }),
            None => o.sent(
                l.clone(),
                &ClientMsg::Say {
                    room: "#lobby",
                    text: t,
                },
            ),
        }
    }

    fn texts(v: &[Line]) -> Vec<&str> {
        v.iter().map(|l| l.text.as_str()).collect()
    }

    fn echo(id: u64, from: &str, text: &str) -> ServerEvent {
        ServerEvent::from(&ServerMsg::Message(chatbox_core::proto::ChatMessage {
            id,
            time_ms: 0,
            target: "#lobby",
            from,
            kind: MessageKind::Say,
            text,
        }))
    }

    fn error(code: ErrorCode) -> ServerEvent {
        ServerEvent::Error {
            code: code as u16,
            text: String::new(),
        }
    }

    fn drain(o: &mut Outbox) -> Vec<String> {
        let mut v = Vec::new();
        while let Some(l) = o.take_queued() {
            v.push(l.text);
        }
        v
    }

    #[test]
    fn pongs_acknowledge_what_was_sent_before_their_ping() {
        let now = Instant::now();
        let mut o = Outbox::default();
        assert!(o.is_settled() && !o.wants_ack_ping());
        send(&mut o, "a");
        send(&mut o, "b");
        assert!(o.wants_ack_ping());
        o.ping_sent(1, PingKind::Ack, now);
        assert!(!o.wants_ack_ping(), "nothing sent since the last ping");
        send(&mut o, "c");
        assert!(o.wants_ack_ping(), "one ping per line");
        assert_eq!(o.on_pong(99), None, "not our token");
        let acked = o.on_pong(1).unwrap();
        assert_eq!(acked.kind, PingKind::Ack);
        assert_eq!(texts(&acked.lines), ["a", "b"]);
        assert_eq!(o.unacked(), 1);
        assert!(o.wants_ack_ping());
        o.ping_sent(2, PingKind::Keepalive, now);
        o.ping_sent(3, PingKind::Final, now);
        // A later pong answers the earlier pings too.
        let acked = o.on_pong(3).unwrap();
        assert_eq!(acked.kind, PingKind::Final);
        assert_eq!(texts(&acked.lines), ["c"]);
        assert_eq!(o.on_pong(2), None);
        assert!(o.is_settled());
        assert_eq!(o.oldest_ping(), None);
    }

    #[test]
    fn errors_are_the_current_lines_rate_limited_ones_are_sent_again() {
        let now = Instant::now();
        let mut o = Outbox::default();
        for (i, t) in ["a", "b", "c", "d"].into_iter().enumerate() {
            send(&mut o, t);
            o.ping_sent(i as u64, PingKind::Ack, now);
        }
        // a: fine. b: rate limited. c: too long. d: fine.
        assert!(!o.observe(&echo(1, "me", "a"), "me"));
        assert_eq!(texts(&o.on_pong(0).unwrap().lines), ["a"]);
        assert!(o.observe(&error(ErrorCode::RateLimited), "me"));
        let b = o.on_pong(1).unwrap();
        assert!(b.lines.is_empty() && b.retry == 1);
        assert!(!o.observe(&error(ErrorCode::TooLong), "me"));
        assert!(o.on_pong(2).unwrap().lines.is_empty());
        assert_eq!(o.refused(), 1);
        assert_eq!(texts(&o.on_pong(3).unwrap().lines), ["d"]);
        assert_eq!(drain(&mut o), ["b"]);
        // An error while no single line is being answered belongs to no line.
        send(&mut o, "e");
        send(&mut o, "f");
        o.ping_sent(9, PingKind::Ack, now);
        assert!(!o.observe(&error(ErrorCode::RateLimited), "me"));
        assert_eq!(o.on_pong(9).unwrap().lines.len(), 2);
    }

    #[test]
    fn a_lost_connection_resends_only_what_may_not_have_been_handled() {
        let now = Instant::now();
        let mut o = Outbox::default();
        o.observe(&echo(10, "bob", "older"), "me");
        for (i, t) in ["stored", "refused", "/join #x", "unknown", "unknown"]
            .into_iter()
            .enumerate()
        {
            send(&mut o, t);
            o.ping_sent(i as u64, PingKind::Ack, now);
        }
        // The copy of "stored" comes back, "refused" is refused; then the link breaks.
        o.observe(&echo(11, "me", "stored"), "me");
        o.observe(&echo(12, "bob", "unknown"), "me"); // someone else's: not ours
        assert_eq!(texts(&o.on_pong(0).unwrap().lines), ["stored"]);
        o.observe(&error(ErrorCode::NotPermitted), "me");
        o.queue(line("typed offline"), 10).unwrap();
        o.connection_lost();
        assert_eq!(o.refused(), 1);
        assert_eq!(o.oldest_ping(), None);
        assert_eq!(o.on_pong(3), None, "pings of the old connection are void");
        assert_eq!(
            o.head_check().map(|c| c.echo.target.as_str()),
            None,
            "a /join first"
        );
        assert_eq!(o.oldest_check("#lobby"), Some(10));
        assert_eq!(o.oldest_check("#x"), None);
        // History after the new login: the first "unknown" was stored (id 13, after 12), the
        // second was not; the old copy by bob and older ids do not count.
        let history = [echo(12, "bob", "unknown"), echo(13, "me", "unknown")];
        let history: Vec<ChatLine> = history
            .iter()
            .map(|e| match e {
                ServerEvent::Message(m) => m.clone(),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(
            o.resolve("#other", &history, "me"),
            0,
            "another target's history"
        );
        assert_eq!(o.oldest_check("#lobby"), Some(10));
        assert_eq!(o.resolve("#lobby", &history, "me"), 1);
        assert_eq!(o.oldest_check("#lobby"), None);
        assert_eq!(drain(&mut o), ["/join #x", "unknown", "typed offline"]);
    }

    #[test]
    fn a_line_stored_before_the_last_id_seen_is_not_taken_for_a_new_one() {
        let now = Instant::now();
        let mut o = Outbox::default();
        o.observe(&echo(5, "me", "same"), "me");
        send(&mut o, "same");
        o.ping_sent(1, PingKind::Ack, now);
        o.connection_lost();
        let old = match echo(5, "me", "same") {
            ServerEvent::Message(m) => m,
            _ => unreachable!(),
        };
        assert_eq!(o.resolve("#lobby", &[old], "me"), 0);
        assert_eq!(drain(&mut o), ["same"]);
    }

    #[test]
    fn echo_targets_and_texts_are_what_the_server_stores() {
        let e = Echo::of(&ClientMsg::Private {
            to: "Bob",
            text: "hi\u{200b}\u{1b}[31m!",
        })
        .unwrap();
        assert_eq!(e.target, "bob");
        assert_eq!(e.text, "hi!");
        assert!(Echo::of(&ClientMsg::Join { room: "#x" }).is_none());
    }

    #[test]
    fn queue_is_bounded() {
        let mut o = Outbox::default();
        o.queue(line("1"), 2).unwrap();
        o.queue(line("2"), 2).unwrap();
        assert_eq!(o.queue(line("3"), 2), Err(line("3")));
        assert_eq!(o.queued(), 2);
        for i in 0..OUTBOX_LIMIT {
            send(&mut o, &i.to_string());
        }
        assert!(o.is_full());
    }
}
