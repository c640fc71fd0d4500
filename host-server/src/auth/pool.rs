//! A bounded pool for password hashing, off the async executor.
//!
//! About one thread per core and a short queue; when both are full the caller is told
//! [`PoolError::Busy`] at once (the server answers `Error(Busy)`) instead of queueing without
//! bound while a login flood eats the CPU.

use std::sync::Mutex;
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::thread::JoinHandle;

use smol::channel;

type Task = Box<dyn FnOnce() + Send>;

/// Why a job did not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolError {
    /// Every worker is busy and the queue is full.
    Busy,
    /// The pool has stopped.
    Closed,
}

/// The hashing pool.
#[derive(Debug)]
pub struct HashPool {
    tx: Mutex<Option<SyncSender<Task>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl HashPool {
    /// `workers` threads and a queue of `queue` jobs.
    pub fn new(workers: usize, queue: usize) -> std::io::Result<HashPool> {
        let (tx, rx) = mpsc::sync_channel::<Task>(queue);
        let rx = std::sync::Arc::new(Mutex::new(rx));
        let mut threads = Vec::new();
        for i in 0..workers.max(1) {
            let rx = rx.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("chatbox-hash-{i}"))
                    .spawn(move || {
                        loop {
                            let task = match rx.lock() {
                                Ok(guard) => guard.recv(),
                                Err(_) => return,
                            };
                            match task {
                                Ok(task) => task(),
                                Err(_) => return,
                            }
                        }
                    })?,
            );
        }
        Ok(HashPool {
            tx: Mutex::new(Some(tx)),
            threads: Mutex::new(threads),
        })
    }

    /// Runs `f` on a worker and waits for its result without blocking the executor.
    pub async fn run<T, F>(&self, f: F) -> Result<T, PoolError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (rtx, rrx) = channel::bounded::<T>(1);
        let task: Task = Box::new(move || {
            let _ = rtx.try_send(f());
        });
        {
            let guard = self.tx.lock().map_err(|_| PoolError::Closed)?;
            let tx = guard.as_ref().ok_or(PoolError::Closed)?;
            match tx.try_send(task) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => return Err(PoolError::Busy),
                Err(TrySendError::Disconnected(_)) => return Err(PoolError::Closed),
            }
        }
        rrx.recv().await.map_err(|_| PoolError::Closed)
    }

    /// Stops the workers after the queued jobs.
    pub fn close(&self) {
        if let Ok(mut g) = self.tx.lock() {
            g.take();
        }
        if let Ok(mut threads) = self.threads.lock() {
            for t in threads.drain(..) {
                let _ = t.join();
            }
        }
    }
}
