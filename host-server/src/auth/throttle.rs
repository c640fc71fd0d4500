//! Failed-login throttling per IP address (the per-account count lives in the database).

use core::net::IpAddr;
use core::time::Duration;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Instant;

const WINDOW: Duration = Duration::from_secs(60);

/// Failures per IP within the last minute.
#[derive(Debug)]
pub struct IpThrottle {
    limit: u32,
    failures: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

impl IpThrottle {
    /// At most `limit` failures per minute per IP.
    #[must_use]
    pub fn new(limit: u32) -> IpThrottle {
        IpThrottle {
            limit,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `ip` has used up its failures for the current window.
    #[must_use]
    pub fn blocked(&self, ip: IpAddr) -> bool {
        let Ok(mut map) = self.failures.lock() else {
            return true;
        };
        let now = Instant::now();
        let Some(q) = map.get_mut(&ip) else {
            return false;
        };
        while q.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
            q.pop_front();
        }
        if q.is_empty() {
            map.remove(&ip);
            return false;
        }
        q.len() >= usize::try_from(self.limit).unwrap_or(usize::MAX)
    }

    /// Counts a failure from `ip`.
    pub fn record_failure(&self, ip: IpAddr) {
        if let Ok(mut map) = self.failures.lock() {
            if map.len() > 100_000 {
                // Bound the memory an address-spraying attacker can use.
                let now = Instant::now();
                map.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < WINDOW));
            }
            let q = map.entry(ip).or_default();
            q.push_back(Instant::now());
            let cap = usize::try_from(self.limit)
                .unwrap_or(usize::MAX)
                .saturating_add(1);
            while q.len() > cap {
                q.pop_front();
            }
        }
    }
}
