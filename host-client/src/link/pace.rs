//! The pace at which lines go out: [`Pacer`] spaces them out to stay within the rate limit the
//! server announces at login ([`Limit`], from `RateLimit` 0x8E), with a margin, so that a script
//! piping lines faster than that is slowed down instead of being refused or cut off
//! (docs/DESIGN.md §7). Time is passed in; nothing here reads a clock.

use core::time::Duration;
use std::time::Instant;

/// The rate limit a server holds a connection to: a token bucket over every message but `Ping`
/// and `Bye` (the Login included), announced in `RateLimit` right after `LoginOk`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    /// Messages per second refilled.
    pub per_sec: f64,
    /// Bucket size.
    pub burst: u32,
}

impl Limit {
    /// What a server that does not announce its limit is assumed to allow (the server's
    /// defaults: `--rate 20 --burst 40`).
    pub const DEFAULT: Limit = Limit {
        per_sec: 20.0,
        burst: 40,
    };

    /// From a `RateLimit` message.
    #[must_use]
    pub fn announced(milli_per_sec: u32, burst: u32) -> Limit {
        Limit {
            per_sec: f64::from(milli_per_sec) / 1000.0,
            burst,
        }
    }
}

/// Of the server's bucket the client uses half, and of its rate 90 %: the other half of the
/// bucket absorbs lines that reach the server closer together than they were sent (the network
/// and the server's own scheduling bunch them), and the lines sent outside the pacer (the
/// joins after a reconnect).
const BURST_SHARE: f64 = 0.5;
const RATE_SHARE: f64 = 0.9;

/// A token bucket for the lines sent.
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
    pub fn new(burst: u32, per_sec: f64, now: Instant) -> Pacer {
        Pacer {
            tokens: f64::from(burst),
            burst: f64::from(burst),
            per_sec: per_sec.max(0.001),
            at: now,
        }
    }

    /// The pace for a server with `limit`: full at login (the server's bucket is full but for
    /// the login itself).
    #[must_use]
    pub fn for_limit(limit: Limit, now: Instant) -> Pacer {
        let burst = (f64::from(limit.burst.saturating_sub(1)) * BURST_SHARE).floor();
        let mut p = Pacer::new(1, limit.per_sec * RATE_SHARE, now);
        p.burst = burst.max(1.0);
        p.tokens = p.burst;
        p
    }

    /// The server announced `limit`: the pace follows it, the tokens spent stay spent.
    pub fn set_limit(&mut self, limit: Limit, now: Instant) {
        self.refill(now);
        let spent = self.burst - self.tokens;
        let fresh = Pacer::for_limit(limit, now);
        self.burst = fresh.burst;
        self.per_sec = fresh.per_sec;
        self.tokens = (self.burst - spent).min(self.burst);
    }

    /// Counts `n` messages sent outside the pacer (they use the same server bucket).
    pub fn spend(&mut self, n: u32, now: Instant) {
        self.refill(now);
        self.tokens -= f64::from(n);
    }

    /// The server said to slow down: nothing more for a second's worth of its rate.
    pub fn back_off(&mut self, now: Instant) {
        self.refill(now);
        self.tokens = self.tokens.min(0.0) - self.per_sec;
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + dt * self.per_sec).min(self.burst);
        self.at = now;
    }

    /// Takes a token, or says how long until one is there.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        self.refill(now);
        // The epsilon: after waiting exactly the time returned, rounding must not leave the
        // bucket a hair short (and the caller waiting zero nanoseconds forever).
        if self.tokens >= 1.0 - 1e-6 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let wait = Duration::from_secs_f64((1.0 - self.tokens) / self.per_sec);
            Err(wait.max(Duration::from_millis(1)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacer_allows_a_burst_then_a_rate() {
        let t = Instant::now();
        let mut p = Pacer::new(2, 10.0, t);
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

    #[test]
    fn the_pace_stays_within_the_servers_limit_with_room_to_spare() {
        let t = Instant::now();
        let limit = Limit::announced(20_000, 40);
        assert_eq!(limit, Limit::DEFAULT);
        let mut p = Pacer::for_limit(limit, t);
        // Send as fast as the pacer lets for 10 s; the server's bucket (40, 20/s, minus the
        // login) must never run below half full.
        let mut server = f64::from(limit.burst) - 1.0;
        let mut now = t;
        let mut last = t;
        let mut sent = 0;
        while now < t + Duration::from_secs(10) {
            match p.take(now) {
                Ok(()) => {
                    server = (server + now.duration_since(last).as_secs_f64() * 20.0).min(40.0);
                    last = now;
                    server -= 1.0;
                    sent += 1;
                    assert!(server >= 19.0, "server bucket {server} after {sent}");
                }
                Err(wait) => now += wait,
            }
        }
        assert!(sent >= 19 + 9 * 18, "only {sent} lines in 10 s");
        // A smaller announced limit takes effect with the tokens already spent.
        p.set_limit(Limit::announced(2_000, 4), now);
        assert!(p.take(now).is_err());
        let mut q = Pacer::for_limit(Limit::announced(2_000, 4), t);
        q.spend(1, t);
        assert!(q.take(t).is_err(), "the joins sent outside the pacer count");
        q.back_off(t + Duration::from_secs(5));
        let wait = q.take(t + Duration::from_secs(5)).unwrap_err();
        assert!(wait >= Duration::from_millis(900), "{wait:?}");
    }
}
