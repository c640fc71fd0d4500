//! Login attempts per IP address (the per-account failure count lives in the database).
//!
//! An attempt is counted when it *begins* ([`IpThrottle::begin`]) and refunded only if it
//! succeeds (or the server could not judge it): counting after the password check would let
//! many parallel attempts from one address all pass a check made before any of them failed.
//!
//! Alone, the counts live in this process (a sliding minute). In a cluster they live in Redis
//! (a fixed minute per address, counted by one atomic script), so spreading attempts over the
//! nodes does not multiply them; if Redis cannot be reached the node falls back to its own
//! counts rather than letting attempts through uncounted.

use core::net::IpAddr;
use core::time::Duration;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Instant;

const WINDOW: Duration = Duration::from_secs(60);

/// Counts an attempt unless the address has used them up: `1` counted, `0` refused.
const BEGIN_LUA: &str = "local n = redis.call('INCR', KEYS[1]) \
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end \
if n > tonumber(ARGV[2]) then redis.call('DECR', KEYS[1]) return 0 end \
return 1";
/// Gives an attempt back (never below zero, never on an expired key).
const REFUND_LUA: &str = "local v = tonumber(redis.call('GET', KEYS[1]) or '0') \
if v > 0 then redis.call('DECR', KEYS[1]) end \
return 1";

/// Login attempts per IP within the last minute.
#[derive(Debug)]
pub(crate) struct IpThrottle {
    limit: u32,
    attempts: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
    redis: Option<redis::aio::MultiplexedConnection>,
}

/// A counted attempt, until [`IpThrottle::refund`]ed.
#[derive(Debug)]
#[must_use = "an attempt that succeeded must be refunded"]
pub(crate) struct Attempt {
    ip: IpAddr,
    at: Instant,
    shared: bool,
}

fn key(ip: IpAddr) -> String {
    format!("chatbox:login-attempts:{ip}")
}

impl IpThrottle {
    /// At most `limit` failed attempts per minute per IP, counted in this process.
    #[must_use]
    pub(crate) fn new(limit: u32) -> IpThrottle {
        IpThrottle {
            limit,
            attempts: Mutex::new(HashMap::new()),
            redis: None,
        }
    }

    /// The same, counted in Redis for every node of the cluster.
    #[must_use]
    pub(crate) fn shared(limit: u32, redis: redis::aio::MultiplexedConnection) -> IpThrottle {
        IpThrottle {
            redis: Some(redis),
            ..IpThrottle::new(limit)
        }
    }

    /// Counts an attempt from `ip`; `None` if the address has used up its attempts.
    pub(crate) async fn begin(&self, ip: IpAddr) -> Option<Attempt> {
        if let Some(conn) = &self.redis {
            let window = u64::try_from(WINDOW.as_millis()).unwrap_or(u64::MAX);
            let r = redis::cmd("EVAL")
                .arg(BEGIN_LUA)
                .arg(1)
                .arg(key(ip))
                .arg(window)
                .arg(self.limit)
                .query_async::<i64>(&mut conn.clone())
                .await;
            if let Ok(n) = r {
                return (n == 1).then(|| Attempt {
                    ip,
                    at: Instant::now(),
                    shared: true,
                });
            }
        }
        self.begin_local(ip)
    }

    fn begin_local(&self, ip: IpAddr) -> Option<Attempt> {
        let Ok(mut map) = self.attempts.lock() else {
            return None;
        };
        let now = Instant::now();
        if map.len() > 100_000 {
            // Bound the memory an address-spraying attacker can use.
            map.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < WINDOW));
        }
        let q = map.entry(ip).or_default();
        while q.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
            q.pop_front();
        }
        if q.len() >= usize::try_from(self.limit).unwrap_or(usize::MAX) {
            return None;
        }
        q.push_back(now);
        Some(Attempt {
            ip,
            at: now,
            shared: false,
        })
    }

    /// The attempt succeeded (or was not judged): it no longer counts.
    pub(crate) async fn refund(&self, a: Attempt) {
        if a.shared {
            if let Some(conn) = &self.redis {
                let _ = redis::cmd("EVAL")
                    .arg(REFUND_LUA)
                    .arg(1)
                    .arg(key(a.ip))
                    .query_async::<i64>(&mut conn.clone())
                    .await;
            }
            return;
        }
        if let Ok(mut map) = self.attempts.lock()
            && let Some(q) = map.get_mut(&a.ip)
        {
            if let Some(pos) = q.iter().position(|t| *t == a.at) {
                q.remove(pos);
            }
            if q.is_empty() {
                map.remove(&a.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_are_counted_when_they_begin_and_refunds_give_them_back() {
        smol::block_on(async {
            let t = IpThrottle::new(3);
            let ip: IpAddr = [10, 0, 0, 1].into();
            let other: IpAddr = [10, 0, 0, 2].into();
            // Three attempts in flight at once: the fourth is refused before any failed.
            let a = t.begin(ip).await.unwrap();
            let b = t.begin(ip).await.unwrap();
            let c = t.begin(ip).await.unwrap();
            assert!(t.begin(ip).await.is_none());
            assert!(t.begin(other).await.is_some(), "other addresses unaffected");
            // One succeeded: its slot comes back, the failures still count.
            t.refund(b).await;
            let d = t.begin(ip).await.unwrap();
            assert!(t.begin(ip).await.is_none());
            drop((a, c, d));
        });
    }
}
