//! A bounded, fair pool for password hashing, off the async executor.
//!
//! About one thread per core and a short queue; when the queue is full the caller is told
//! [`PoolError::Busy`] at once (the server answers `Error(Busy)`) instead of queueing without
//! bound while a login flood eats the CPU. The queue is shared fairly by where jobs come from:
//!
//! - workers take jobs round-robin over aggregates (IPv4 /24, IPv6 /48 by default), and within
//!   an aggregate round-robin over addresses (/32, /64), so a flood from many addresses of one
//!   network gets one network's share;
//! - one address holds at most `per_address` queued jobs (the whole queue by default);
//! - a job arriving at a full queue pushes out the newest job of the aggregate (or, inside its
//!   own aggregate, the address) holding the most when that one holds at least two more than
//!   the newcomer's, or else of the queued address that had the most jobs run in the last
//!   minute when that is more than the newcomer had; that job is answered `Busy`;
//! - a reserved lane of `reserved` places, served first, takes only logins of a (user, address)
//!   that logged in successfully before, so a flood from anywhere else cannot take them.

use std::collections::{HashMap, VecDeque};
use std::sync::{Condvar, Mutex};
use std::thread::JoinHandle;

use core::time::Duration;
use std::time::Instant;

use smol::channel;

use super::failures::Recent;
use super::source::{Net, Origin};

/// A queued job: called with `true` on a worker to run it, or with `false` when it was pushed
/// out of the queue (it then answers [`PoolError::Busy`]).
type Job = Box<dyn FnOnce(bool) + Send>;

/// Why a job did not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PoolError {
    /// No room in the queue for this source (or pushed out by a fairer share).
    Busy,
    /// The pool has stopped.
    Closed,
}

/// Where a job comes from, and whether it may use the reserved lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Source {
    /// Address and aggregate.
    pub(crate) origin: Origin,
    /// A login of a (user, address) known from an earlier success.
    pub(crate) reserved: bool,
}

/// The pool's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Hashing threads.
    pub(crate) workers: usize,
    /// Jobs waiting in the shared lanes at most.
    pub(crate) queue: usize,
    /// Jobs waiting per address at most.
    pub(crate) per_address: usize,
    /// Places of the reserved lane.
    pub(crate) reserved: usize,
}

#[derive(Default)]
struct Aggregate {
    /// Each address's jobs in arrival order, with their arrival numbers.
    addrs: HashMap<Net, VecDeque<(u64, Job)>>,
    ring: VecDeque<Net>,
    len: usize,
}

impl Aggregate {
    fn pop(&mut self) -> Option<(Net, Job)> {
        let addr = self.ring.pop_front()?;
        let q = self.addrs.get_mut(&addr)?;
        let job = q.pop_front().map(|(_, j)| (addr, j));
        if q.is_empty() {
            self.addrs.remove(&addr);
        } else {
            self.ring.push_back(addr);
        }
        if job.is_some() {
            self.len -= 1;
        }
        job
    }

    /// The address holding the most jobs (of those, the one with the newest job).
    fn fattest(&self) -> Option<(Net, usize)> {
        self.addrs
            .iter()
            .max_by_key(|(_, q)| (q.len(), q.back().map_or(0, |(seq, _)| *seq)))
            .map(|(a, q)| (*a, q.len()))
    }

    /// The newest job of `addr`.
    fn pop_newest_of(&mut self, addr: Net) -> Option<Job> {
        let q = self.addrs.get_mut(&addr)?;
        let job = q.pop_back().map(|(_, j)| j);
        if q.is_empty() {
            self.addrs.remove(&addr);
            self.ring.retain(|a| *a != addr);
        }
        if job.is_some() {
            self.len -= 1;
        }
        job
    }
}

struct Lanes {
    aggregates: HashMap<Net, Aggregate>,
    ring: VecDeque<Net>,
    queued: usize,
    reserved: VecDeque<Job>,
    closed: bool,
    arrivals: u64,
    /// Jobs run per address in the last [`SERVED_WINDOW`] (bounded).
    served: Recent<Net>,
}

/// How long a job run for an address counts as its share of the pool.
const SERVED_WINDOW: Duration = Duration::from_secs(60);
/// Addresses whose served jobs are remembered at most.
const SERVED_KEYS: usize = 100_000;

impl Lanes {
    fn new() -> Lanes {
        Lanes {
            aggregates: HashMap::new(),
            ring: VecDeque::new(),
            queued: 0,
            reserved: VecDeque::new(),
            closed: false,
            arrivals: 0,
            served: Recent::new(SERVED_KEYS, SERVED_WINDOW),
        }
    }

    fn pop(&mut self) -> Option<Job> {
        if let Some(job) = self.reserved.pop_front() {
            return Some(job);
        }
        while let Some(net) = self.ring.pop_front() {
            let Some(agg) = self.aggregates.get_mut(&net) else {
                continue;
            };
            let job = agg.pop();
            if agg.len == 0 {
                self.aggregates.remove(&net);
            } else {
                self.ring.push_back(net);
            }
            if let Some((addr, job)) = job {
                self.queued -= 1;
                self.served.bump(&addr, Instant::now());
                return Some(job);
            }
        }
        None
    }

    /// Whose job (aggregate, address) makes room for a newcomer from `origin` whose aggregate
    /// holds `mine` jobs and whose address `my_addr`, at a full queue; `None`: nobody's, the
    /// newcomer is the one refused. In this order: the aggregate holding the most, if at least
    /// two more than the newcomer's; in the newcomer's aggregate, the address holding the
    /// most, if at least two more; the queued address served the most in the last minute, if
    /// served more than the newcomer (so a new address gets in ahead of a flood that is being
    /// served all the time, even from the same network).
    fn victim(&self, origin: Origin, mine: usize, my_addr: usize) -> Option<(Net, Net)> {
        let fattest = self
            .aggregates
            .iter()
            .filter(|(n, _)| **n != origin.aggregate)
            .max_by_key(|(_, a)| a.len);
        if let Some((net, agg)) = fattest
            && agg.len >= mine + 2
        {
            return agg.fattest().map(|(a, _)| (*net, a));
        }
        if let Some(agg) = self.aggregates.get(&origin.aggregate)
            && let Some((a, len)) = agg.fattest()
            && len >= my_addr + 2
        {
            return Some((origin.aggregate, a));
        }
        let now = Instant::now();
        let me = self.served.get(&origin.addr, now);
        self.aggregates
            .iter()
            .flat_map(|(net, agg)| {
                agg.addrs.iter().map(move |(a, q)| {
                    let newest = q.back().map_or(0, |(seq, _)| *seq);
                    (*net, *a, newest)
                })
            })
            .map(|(net, a, newest)| (self.served.get(&a, now), newest, net, a))
            .filter(|(served, ..)| *served > me)
            .max_by_key(|(served, newest, ..)| (*served, *newest))
            .map(|(_, _, net, a)| (net, a))
    }

    /// Queues `job`; returns a job pushed out to make room, or gives `job` back if there is
    /// no room for it.
    fn admit(&mut self, limits: &Limits, src: Source, job: Job) -> Result<Option<Job>, Job> {
        if src.reserved && self.reserved.len() < limits.reserved {
            self.reserved.push_back(job);
            return Ok(None);
        }
        let Origin { addr, aggregate } = src.origin;
        let (mine, my_addr) = self.aggregates.get(&aggregate).map_or((0, 0), |a| {
            (a.len, a.addrs.get(&addr).map_or(0, VecDeque::len))
        });
        if my_addr >= limits.per_address {
            return Err(job);
        }
        let mut evicted = None;
        if self.queued >= limits.queue {
            let Some((net, victim)) = self.victim(src.origin, mine, my_addr) else {
                return Err(job);
            };
            let Some(agg) = self.aggregates.get_mut(&net) else {
                return Err(job);
            };
            evicted = agg.pop_newest_of(victim);
            if agg.len == 0 {
                self.aggregates.remove(&net);
                self.ring.retain(|n| *n != net);
            }
            if evicted.is_none() {
                return Err(job);
            }
            self.queued -= 1;
        }
        let agg = self.aggregates.entry(aggregate).or_default();
        if agg.len == 0 {
            self.ring.push_back(aggregate);
        }
        let q = agg.addrs.entry(addr).or_default();
        if q.is_empty() {
            agg.ring.push_back(addr);
        }
        self.arrivals += 1;
        q.push_back((self.arrivals, job));
        agg.len += 1;
        self.queued += 1;
        Ok(evicted)
    }
}

struct State {
    lanes: Mutex<Lanes>,
    ready: Condvar,
}

/// The hashing pool.
pub(crate) struct HashPool {
    state: std::sync::Arc<State>,
    limits: Limits,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl core::fmt::Debug for HashPool {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HashPool")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl HashPool {
    /// A pool with these limits (at least one worker, one queued job, one per address).
    pub(crate) fn new(limits: Limits) -> std::io::Result<HashPool> {
        let limits = Limits {
            workers: limits.workers.max(1),
            queue: limits.queue.max(1),
            per_address: limits.per_address.max(1),
            reserved: limits.reserved,
        };
        let state = std::sync::Arc::new(State {
            lanes: Mutex::new(Lanes::new()),
            ready: Condvar::new(),
        });
        let mut threads = Vec::new();
        for i in 0..limits.workers {
            let state = state.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("chatbox-hash-{i}"))
                    .spawn(move || work(&state))?,
            );
        }
        Ok(HashPool {
            state,
            limits,
            threads: Mutex::new(threads),
        })
    }

    /// Runs `f` on a worker and waits for its result without blocking the executor.
    pub(crate) async fn run<T, F>(&self, src: Source, f: F) -> Result<T, PoolError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (rtx, rrx) = channel::bounded::<Result<T, PoolError>>(1);
        let job: Job = Box::new(move |run| {
            let r = if run { Ok(f()) } else { Err(PoolError::Busy) };
            let _ = rtx.try_send(r);
        });
        let evicted = {
            let mut lanes = self.state.lanes.lock().map_err(|_| PoolError::Closed)?;
            if lanes.closed {
                return Err(PoolError::Closed);
            }
            lanes
                .admit(&self.limits, src, job)
                .map_err(|_| PoolError::Busy)?
        };
        self.state.ready.notify_one();
        if let Some(job) = evicted {
            job(false);
        }
        rrx.recv().await.map_err(|_| PoolError::Closed)?
    }

    /// Stops the workers after the queued jobs.
    pub(crate) fn close(&self) {
        if let Ok(mut lanes) = self.state.lanes.lock() {
            lanes.closed = true;
        }
        self.state.ready.notify_all();
        if let Ok(mut threads) = self.threads.lock() {
            for t in threads.drain(..) {
                let _ = t.join();
            }
        }
    }
}

fn work(state: &State) {
    loop {
        let job = {
            let Ok(mut lanes) = state.lanes.lock() else {
                return;
            };
            loop {
                if let Some(job) = lanes.pop() {
                    break job;
                }
                if lanes.closed {
                    return;
                }
                lanes = match state.ready.wait(lanes) {
                    Ok(l) => l,
                    Err(_) => return,
                };
            }
        };
        job(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::IpAddr;
    use core::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    fn src(a: [u8; 4], reserved: bool) -> Source {
        let ip = IpAddr::from(a);
        Source {
            origin: Origin {
                addr: Net::of(ip, 32, 64),
                aggregate: Net::of(ip, 24, 48),
            },
            reserved,
        }
    }

    /// A pool whose one worker is held by a job until the returned flag is set.
    fn held(limits: Limits) -> (Arc<HashPool>, Arc<AtomicBool>) {
        let pool = Arc::new(HashPool::new(limits).unwrap_or_else(|e| panic!("{e}")));
        let go = hold(&pool);
        (pool, go)
    }

    /// Holds `pool`'s one worker with a job until the returned flag is set.
    fn hold(pool: &Arc<HashPool>) -> Arc<AtomicBool> {
        let go = Arc::new(AtomicBool::new(false));
        let (p, g) = (pool.clone(), go.clone());
        std::thread::spawn(move || {
            smol::block_on(p.run(src([10, 9, 9, 9], false), move || {
                while !g.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }))
        });
        std::thread::sleep(Duration::from_millis(50));
        go
    }

    #[test]
    fn full_queue_pushes_out_the_fattest_network_and_reserved_lane_is_kept() {
        let limits = Limits {
            workers: 1,
            queue: 4,
            per_address: 1,
            reserved: 1,
        };
        let (pool, go) = held(limits);
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        let spawn = |s: Source, tag: &'static str, tasks: &mut Vec<_>| {
            let (p, o) = (pool.clone(), order.clone());
            tasks.push((
                tag,
                std::thread::spawn(move || {
                    smol::block_on(p.run(s, move || {
                        o.lock().map(|mut v| v.push(tag)).ok();
                    }))
                }),
            ));
            std::thread::sleep(Duration::from_millis(20));
        };
        // A flood of one /24 fills the queue (one job per address).
        for (i, tag) in ["f1", "f2", "f3", "f4"].into_iter().enumerate() {
            let last = u8::try_from(i).unwrap_or(0) + 10;
            spawn(src([10, 0, 0, last], false), tag, &mut tasks);
        }
        // Its fifth address: no room (its network already holds the most).
        spawn(src([10, 0, 0, 20], false), "f5", &mut tasks);
        // Another network: pushes out the flood's newest.
        spawn(src([10, 0, 1, 2], false), "other", &mut tasks);
        // A second job from that address: over its per-address share.
        spawn(src([10, 0, 1, 2], false), "other-again", &mut tasks);
        // A known user: the reserved lane, served first.
        spawn(src([10, 0, 0, 2], true), "known", &mut tasks);
        go.store(true, Ordering::SeqCst);
        let results: HashMap<&str, Result<(), PoolError>> = tasks
            .into_iter()
            .map(|(t, h)| (t, h.join().unwrap_or(Err(PoolError::Closed))))
            .collect();
        assert_eq!(results["f5"], Err(PoolError::Busy));
        assert_eq!(results["f4"], Err(PoolError::Busy), "pushed out");
        assert_eq!(results["other-again"], Err(PoolError::Busy));
        for t in ["f1", "f2", "f3", "other", "known"] {
            assert_eq!(results[t], Ok(()), "{t}");
        }
        let order = order.lock().map(|v| v.clone()).unwrap_or_default();
        // Reserved first; then the networks take turns.
        assert_eq!(order, ["known", "f1", "other", "f2", "f3"]);
        pool.close();
    }

    #[test]
    fn a_new_address_pushes_out_one_served_much_more_even_in_its_own_network() {
        let limits = Limits {
            workers: 1,
            queue: 2,
            per_address: 1,
            reserved: 0,
        };
        let pool = Arc::new(HashPool::new(limits).unwrap_or_else(|e| panic!("{e}")));
        // Two addresses of one /24 are served 3 times each.
        for _ in 0..3 {
            for last in [10u8, 11] {
                let r = smol::block_on(pool.run(src([10, 0, 0, last], false), || ()));
                assert_eq!(r, Ok(()));
            }
        }
        let go = hold(&pool);
        let mut tasks = Vec::new();
        for last in [10u8, 11, 12, 13] {
            let p = pool.clone();
            tasks.push(std::thread::spawn(move || {
                smol::block_on(p.run(src([10, 0, 0, last], false), || ()))
            }));
            std::thread::sleep(Duration::from_millis(20));
        }
        go.store(true, Ordering::SeqCst);
        let r: Vec<Result<(), PoolError>> = tasks
            .into_iter()
            .map(|h| h.join().unwrap_or(Err(PoolError::Closed)))
            .collect();
        // .12 (never served) pushes out the newest of the most served (.11), then .13 (never
        // served) pushes out .10 (served 3); a newcomer cannot push out another never served.
        assert_eq!(
            r,
            [Err(PoolError::Busy), Err(PoolError::Busy), Ok(()), Ok(())]
        );
        // Both newcomers were served once now: .14 (never served) pushes out the newest of
        // them (.13); then .12 and .14 are served.
        let (p, g) = (pool.clone(), Arc::new(AtomicBool::new(false)));
        let g2 = g.clone();
        let hold = std::thread::spawn(move || {
            smol::block_on(p.run(src([10, 9, 9, 9], false), move || {
                while !g2.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }))
        });
        std::thread::sleep(Duration::from_millis(50));
        let mut tasks = Vec::new();
        for last in [12u8, 13, 14] {
            let p = pool.clone();
            tasks.push(std::thread::spawn(move || {
                smol::block_on(p.run(src([10, 0, 0, last], false), || ()))
            }));
            std::thread::sleep(Duration::from_millis(20));
        }
        g.store(true, Ordering::SeqCst);
        let r: Vec<Result<(), PoolError>> = tasks
            .into_iter()
            .map(|h| h.join().unwrap_or(Err(PoolError::Closed)))
            .collect();
        assert_eq!(r, [Ok(()), Err(PoolError::Busy), Ok(())]);
        assert_eq!(hold.join().unwrap_or(Err(PoolError::Closed)), Ok(()));
        pool.close();
    }

    #[test]
    fn reserved_lane_full_falls_back_to_the_shared_queue_and_close_drains() {
        let limits = Limits {
            workers: 1,
            queue: 1,
            per_address: 1,
            reserved: 1,
        };
        let (pool, go) = held(limits);
        let mut tasks = Vec::new();
        for last in [2u8, 3, 4] {
            let p = pool.clone();
            tasks.push(std::thread::spawn(move || {
                smol::block_on(p.run(src([10, 0, 5, last], true), || 7))
            }));
            std::thread::sleep(Duration::from_millis(20));
        }
        go.store(true, Ordering::SeqCst);
        let r: Vec<Result<i32, PoolError>> = tasks
            .into_iter()
            .map(|h| h.join().unwrap_or(Err(PoolError::Closed)))
            .collect();
        assert_eq!(r, [Ok(7), Ok(7), Err(PoolError::Busy)]);
        pool.close();
        assert_eq!(
            smol::block_on(pool.run(src([10, 0, 0, 1], false), || 1)),
            Err(PoolError::Closed)
        );
    }
}
