//! What the server remembers about recent login attempts, in memory and bounded: failures per
//! address, per (name, address) and per name, which set the delay before a failure is answered;
//! and the (name, address) pairs that logged in successfully, which get the hashing pool's
//! reserved share.
//!
//! Every key is what the client sent (the name as typed, normalised when it is a valid name)
//! and where it came from, never whether an account exists: an unknown name is counted and
//! delayed exactly like a real one, so the delay says nothing about the account.

use core::hash::{BuildHasher as _, Hash, Hasher as _};
use core::time::Duration;
use std::collections::HashMap;
use std::hash::RandomState;
use std::sync::Mutex;
use std::time::Instant;

use super::source::Net;

/// A failure is forgotten after this long without another one on the same key.
pub(crate) const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// A successful login's (name, address) is remembered this long after its last success.
pub(crate) const KNOWN_FOR: Duration = Duration::from_secs(30 * 24 * 3600);
/// The longest delay before a failure is answered.
pub(crate) const MAX_DELAY: Duration = Duration::from_secs(2);
/// Failures on one name from everywhere count this many times less than failures from one
/// address (the global guard against guessing spread over many addresses).
pub(crate) const NAME_WEIGHT: u32 = 8;

/// A map of at most `cap` keys, each with a count and the time it was last touched; a key
/// untouched for `ttl` counts as absent. When full, expired keys go first, then the oldest half.
#[derive(Debug)]
pub(crate) struct Recent<K> {
    map: HashMap<K, (u32, Instant)>,
    cap: usize,
    ttl: Duration,
}

impl<K: Hash + Eq + Clone> Recent<K> {
    pub(crate) fn new(cap: usize, ttl: Duration) -> Self {
        Recent {
            map: HashMap::new(),
            cap: cap.max(1),
            ttl,
        }
    }

    pub(crate) fn get(&self, k: &K, now: Instant) -> u32 {
        match self.map.get(k) {
            Some((n, t)) if now.saturating_duration_since(*t) < self.ttl => *n,
            _ => 0,
        }
    }

    /// Adds one to `k` (starting again from zero if it had expired); returns the new count.
    pub(crate) fn bump(&mut self, k: &K, now: Instant) -> u32 {
        let n = self.get(k, now).saturating_add(1);
        if !self.map.contains_key(k) {
            self.make_room(now);
        }
        self.map.insert(k.clone(), (n, now));
        n
    }

    fn remove(&mut self, k: &K) {
        self.map.remove(k);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.len()
    }

    fn make_room(&mut self, now: Instant) {
        if self.map.len() < self.cap {
            return;
        }
        let ttl = self.ttl;
        self.map
            .retain(|_, (_, t)| now.saturating_duration_since(*t) < ttl);
        if self.map.len() < self.cap {
            return;
        }
        // Still full of live keys (someone spraying keys): keep the newer half.
        let mut times: Vec<Instant> = self.map.values().map(|(_, t)| *t).collect();
        times.sort_unstable();
        let cut = times[times.len() / 2];
        self.map.retain(|_, (_, t)| *t > cut);
    }
}

#[derive(Debug)]
struct Maps {
    by_addr: Recent<Net>,
    by_pair: Recent<(String, Net)>,
    by_name: Recent<String>,
    /// Known (name, address) pairs by their [`Maps::pair_digest`]: one of these per user who
    /// logged in recently (up to `remember_logins`, 10 000 by default), so 32 bytes a slot
    /// instead of 72 plus the name's allocation.
    known: Recent<u64>,
    /// The digest's secret key, random per process (`RandomState`: SipHash with random keys).
    /// Two pairs share a digest with a chance of about 2⁻⁶⁴, and nobody can aim for it without
    /// the key; if it happened, the other pair would get the reserved hashing share.
    digest_key: RandomState,
}

impl Maps {
    fn pair_digest(&self, name: &str, addr: Net) -> u64 {
        let mut h = self.digest_key.build_hasher();
        name.hash(&mut h);
        addr.hash(&mut h);
        h.finish()
    }
}

/// Recent failures and successes (see the module documentation).
#[derive(Debug)]
pub(crate) struct Attempts {
    maps: Mutex<Maps>,
}

impl Attempts {
    /// At most `cap` keys per failure map and `known` remembered successes.
    #[must_use]
    pub(crate) fn new(cap: usize, known: usize) -> Attempts {
        Attempts {
            maps: Mutex::new(Maps {
                by_addr: Recent::new(cap, FAILURE_WINDOW),
                by_pair: Recent::new(cap, FAILURE_WINDOW),
                by_name: Recent::new(cap, FAILURE_WINDOW),
                known: Recent::new(known, KNOWN_FOR),
                digest_key: RandomState::new(),
            }),
        }
    }

    fn level(m: &Maps, name: &str, addr: Net, now: Instant) -> u32 {
        let pair = (name.to_owned(), addr);
        m.by_addr
            .get(&addr, now)
            .max(m.by_pair.get(&pair, now))
            .max(m.by_name.get(&name.to_owned(), now) / NAME_WEIGHT)
    }

    /// Counts a failure of `name` from `addr` and returns the failure level that sets its
    /// delay: the most of the address's failures, the pair's, and the name's / [`NAME_WEIGHT`].
    pub(crate) fn fail(&self, name: &str, addr: Net) -> u32 {
        let now = Instant::now();
        let Ok(mut m) = self.maps.lock() else {
            return 1;
        };
        m.by_addr.bump(&addr, now);
        m.by_pair.bump(&(name.to_owned(), addr), now);
        m.by_name.bump(&name.to_owned(), now);
        Self::level(&m, name, addr, now).max(1)
    }

    /// The level a failure of `name` from `addr` would have now, without counting one.
    pub(crate) fn level_now(&self, name: &str, addr: Net) -> u32 {
        let now = Instant::now();
        self.maps
            .lock()
            .map_or(1, |m| Self::level(&m, name, addr, now).max(1))
    }

    /// `name` logged in from `addr`: the pair's failures are forgotten and the pair is known.
    pub(crate) fn succeeded(&self, name: &str, addr: Net) {
        let now = Instant::now();
        if let Ok(mut m) = self.maps.lock() {
            m.by_pair.remove(&(name.to_owned(), addr));
            let digest = m.pair_digest(name, addr);
            m.known.bump(&digest, now);
        }
    }

    /// Whether `name` logged in from `addr` recently (on this node).
    pub(crate) fn known(&self, name: &str, addr: Net) -> bool {
        let now = Instant::now();
        self.maps
            .lock()
            .is_ok_and(|m| m.known.get(&m.pair_digest(name, addr), now) > 0)
    }

    /// Keys held (address, pair, name, known): for tests of the bounds.
    #[cfg(test)]
    pub(crate) fn sizes(&self) -> [usize; 4] {
        self.maps.lock().map_or([0; 4], |m| {
            [
                m.by_addr.len(),
                m.by_pair.len(),
                m.by_name.len(),
                m.known.len(),
            ]
        })
    }
}

/// The wait before a failure at `level` is answered: `base` doubled for each level above the
/// first, at most [`MAX_DELAY`] (`base` zero: no wait).
#[must_use]
pub(crate) fn delay(base: Duration, level: u32) -> Duration {
    if base.is_zero() {
        return Duration::ZERO;
    }
    base.saturating_mul(1u32 << level.saturating_sub(1).min(6))
        .min(MAX_DELAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(last: u8) -> Net {
        Net::of([10, 0, 0, last].into(), 32, 64)
    }

    #[test]
    fn the_level_grows_per_address_per_pair_and_slowly_per_name() {
        let a = Attempts::new(1000, 1000);
        assert_eq!(a.level_now("alice", net(1)), 1);
        assert_eq!(a.fail("alice", net(1)), 1);
        assert_eq!(a.fail("alice", net(1)), 2);
        // Another name from the same address: the address's count goes on.
        assert_eq!(a.fail("ghost", net(1)), 3);
        // The same name from elsewhere: the name counts 1/8 of its failures.
        assert_eq!(a.fail("alice", net(2)), 1);
        for i in 3..=8 {
            a.fail("alice", net(i));
        }
        assert_eq!(a.level_now("alice", net(99)), 1);
        a.fail("alice", net(9));
        assert_eq!(a.level_now("alice", net(100)), 1, "9 failures / 8 = 1");
        for i in 10..=16 {
            a.fail("alice", net(i));
        }
        assert_eq!(a.level_now("alice", net(101)), 2, "16 / 8");
        // A success forgets the pair, not the address, and makes the pair known.
        assert!(!a.known("alice", net(1)));
        a.succeeded("alice", net(1));
        assert!(a.known("alice", net(1)));
        assert!(!a.known("alice", net(2)));
        assert_eq!(a.level_now("alice", net(1)), 3, "the address still has 3");
    }

    #[test]
    fn maps_stay_within_their_bound() {
        let a = Attempts::new(64, 16);
        for i in 0..1000u32 {
            let addr = Net::of(core::net::IpAddr::from(i.to_be_bytes()), 32, 64);
            a.fail(&format!("u{i}"), addr);
            a.succeeded(&format!("u{i}"), addr);
        }
        let [by_addr, by_pair, by_name, known] = a.sizes();
        assert!(
            by_addr <= 64 && by_pair <= 64 && by_name <= 64,
            "{:?}",
            a.sizes()
        );
        assert!(known <= 16, "{known}");
        // The newest keys are kept.
        assert!(a.known(
            "u999",
            Net::of(core::net::IpAddr::from(999u32.to_be_bytes()), 32, 64)
        ));
    }

    #[test]
    fn delay_doubles_and_is_capped() {
        let b = Duration::from_millis(100);
        let d: Vec<u128> = (1..=8).map(|l| delay(b, l).as_millis()).collect();
        assert_eq!(d, [100, 200, 400, 800, 1600, 2000, 2000, 2000]);
        assert_eq!(delay(b, 0), b);
        assert_eq!(delay(Duration::ZERO, 5), Duration::ZERO);
    }
}
