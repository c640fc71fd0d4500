//! What the user sent and the server has not acknowledged yet, what waits to be sent, and the
//! pings that acknowledge.
//!
//! The server handles a connection's messages strictly in order, one at a time, and stores a
//! chat message before it handles the next one; so the `Pong` answering a `Ping` acknowledges
//! every line sent before that `Ping`. The client keeps one acknowledging ping in flight while
//! lines are unacknowledged (and every keepalive or final ping acknowledges too).
//!
//! When the connection is lost, the unacknowledged lines go back to the front of the queue and
//! are sent again after the next login, before anything typed later. A line the lost node had
//! already handled (its `Pong` did not arrive) is then handled twice: delivery is **at least
//! once** for those lines, exactly once for lines sent after the reconnect.
//!
//! [`Pacer`] spaces out the re-sent and queued lines so that a burst after a reconnect stays
//! within the server's rate limit.

use core::time::Duration;
use std::collections::VecDeque;
use std::time::Instant;

/// Lines (sent or not) the outbox holds at most before the caller stops taking input.
pub const OUTBOX_LIMIT: usize = 1000;

/// Lines typed on the chat screen while disconnected that are kept to be sent later.
pub const OFFLINE_QUEUE_LIMIT: usize = 100;

/// Lines sent at once after a reconnect before pacing starts.
pub const REPLAY_BURST: u32 = 20;

/// Queued lines per second after the burst (the server's default limit is 20/s, burst 40).
pub const REPLAY_PER_SEC: u32 = 10;

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

#[derive(Debug, Clone, Copy)]
struct Ping {
    token: u64,
    kind: PingKind,
    /// Lines with a sequence number below this are acknowledged by its `Pong`.
    upto: u64,
    sent: Instant,
}

/// What a `Pong` acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acked {
    /// Why that ping was sent.
    pub kind: PingKind,
    /// The lines it acknowledged, oldest first.
    pub lines: Vec<Line>,
}

/// Sent-but-unacknowledged lines, lines waiting to be sent, and the pings in flight.
#[derive(Debug, Default)]
pub struct Outbox {
    unacked: VecDeque<(u64, Line)>,
    unsent: VecDeque<Line>,
    pings: VecDeque<Ping>,
    next_seq: u64,
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

    /// Whether the outbox holds as many lines as it should (stop taking input).
    #[must_use]
    pub fn is_full(&self) -> bool {
        self.unacked.len() + self.unsent.len() >= OUTBOX_LIMIT
    }

    /// Queues a line to be sent later; gives it back if `limit` lines are queued already.
    pub fn queue(&mut self, line: Line, limit: usize) -> Result<(), Line> {
        if self.unsent.len() >= limit {
            return Err(line);
        }
        self.unsent.push_back(line);
        Ok(())
    }

    /// The next line waiting to be sent, if any (call [`Outbox::sent`] when it goes out).
    pub fn take_queued(&mut self) -> Option<Line> {
        self.unsent.pop_front()
    }

    /// Notes a line handed to the connection (before writing it: if the write fails, the
    /// line is unacknowledged and so sent again after the reconnect).
    pub fn sent(&mut self, line: Line) {
        self.unacked.push_back((self.next_seq, line));
        self.next_seq += 1;
    }

    /// Whether an acknowledging ping should go out now: lines are unacknowledged and no ping
    /// is in flight.
    #[must_use]
    pub fn wants_ack_ping(&self) -> bool {
        !self.unacked.is_empty() && self.pings.is_empty()
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

    /// Handles a `Pong`: `None` if the token is not one of ours in flight.
    pub fn on_pong(&mut self, token: u64) -> Option<Acked> {
        let at = self.pings.iter().position(|p| p.token == token)?;
        let ping = self.pings.get(at).copied()?;
        // Earlier pings were answered before (in order) or belong to nothing any more.
        self.pings.drain(..=at);
        let mut lines = Vec::new();
        while self
            .unacked
            .front()
            .is_some_and(|(seq, _)| *seq < ping.upto)
        {
            if let Some((_, line)) = self.unacked.pop_front() {
                lines.push(line);
            }
        }
        Some(Acked {
            kind: ping.kind,
            lines,
        })
    }

    /// The connection is gone: pings in flight mean nothing any more, and the unacknowledged
    /// lines go back to the front of the queue, in order.
    pub fn connection_lost(&mut self) {
        self.pings.clear();
        while let Some((_, line)) = self.unacked.pop_back() {
            self.unsent.push_front(line);
        }
    }
}

/// A token bucket for lines sent from the queue.
#[derive(Debug, Clone)]
pub struct Pacer {
    tokens: f64,
    burst: f64,
    per_sec: f64,
    at: Instant,
}

impl Pacer {
    /// Full, with `burst` tokens and `per_sec` refill.
    #[must_use]
    pub fn new(burst: u32, per_sec: u32, now: Instant) -> Pacer {
        Pacer {
            tokens: f64::from(burst),
            burst: f64::from(burst),
            per_sec: f64::from(per_sec).max(0.001),
            at: now,
        }
    }

    /// The replay pacer: [`REPLAY_BURST`], [`REPLAY_PER_SEC`].
    #[must_use]
    pub fn replay(now: Instant) -> Pacer {
        Pacer::new(REPLAY_BURST, REPLAY_PER_SEC, now)
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + dt * self.per_sec).min(self.burst);
        self.at = now;
    }

    /// Takes a token, or says how long until one is there.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.per_sec))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(t: &str) -> Line {
        Line {
            text: t.into(),
            room: Some("#lobby".into()),
        }
    }

    fn texts(v: &[Line]) -> Vec<&str> {
        v.iter().map(|l| l.text.as_str()).collect()
    }

    #[test]
    fn pongs_acknowledge_what_was_sent_before_their_ping() {
        let now = Instant::now();
        let mut o = Outbox::default();
        assert!(o.is_settled() && !o.wants_ack_ping());
        o.sent(line("a"));
        o.sent(line("b"));
        assert!(o.wants_ack_ping());
        o.ping_sent(1, PingKind::Ack, now);
        assert!(!o.wants_ack_ping(), "one ack ping in flight at a time");
        o.sent(line("c"));
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
    fn a_lost_connection_puts_unacknowledged_lines_first_in_the_queue() {
        let now = Instant::now();
        let mut o = Outbox::default();
        o.sent(line("a"));
        o.ping_sent(1, PingKind::Ack, now);
        o.sent(line("b"));
        o.queue(line("typed offline"), 10).unwrap();
        o.connection_lost();
        assert_eq!(o.oldest_ping(), None);
        assert_eq!(o.on_pong(1), None, "pings of the old connection are void");
        assert_eq!(o.unacked(), 0);
        let mut order = Vec::new();
        while let Some(l) = o.take_queued() {
            order.push(l.text.clone());
            o.sent(l);
        }
        assert_eq!(order, ["a", "b", "typed offline"]);
        o.ping_sent(2, PingKind::Final, now);
        assert_eq!(o.on_pong(2).unwrap().lines.len(), 3);
        assert!(o.is_settled());
    }

    #[test]
    fn queue_is_bounded() {
        let mut o = Outbox::default();
        o.queue(line("1"), 2).unwrap();
        o.queue(line("2"), 2).unwrap();
        assert_eq!(o.queue(line("3"), 2), Err(line("3")));
        assert_eq!(o.queued(), 2);
        for i in 0..OUTBOX_LIMIT {
            o.sent(line(&i.to_string()));
        }
        assert!(o.is_full());
    }

    #[test]
    fn pacer_allows_a_burst_then_a_rate() {
        let t = Instant::now();
        let mut p = Pacer::new(2, 10, t);
        assert!(p.take(t).is_ok());
        assert!(p.take(t).is_ok());
        let wait = p.take(t).unwrap_err();
        assert!(wait > Duration::from_millis(90) && wait <= Duration::from_millis(100));
        assert!(p.take(t + Duration::from_millis(100)).is_ok());
        assert!(p.take(t + Duration::from_millis(150)).is_err());
        // Never more than the burst.
        let later = t + Duration::from_secs(60);
        assert!(p.take(later).is_ok() && p.take(later).is_ok() && p.take(later).is_err());
    }
}
