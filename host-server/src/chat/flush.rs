//! Deferred writes (docs/DESIGN.md, "The message path"). A recipient whose socket was written
//! to in the current tick gets its next records sealed into its outlet and written at the next
//! tick, all in one `write`. Under load a busy recipient thus costs one system call per tick
//! instead of one per record — what the IRC servers get from their event loop — while a record
//! for a recipient that was quiet goes out at once. The tick runs only while something waits.

use core::sync::atomic::{AtomicU32, Ordering};
use core::time::Duration;
use std::sync::{Arc, Mutex};

use smol::Timer;
use smol::channel::{Receiver, Sender, bounded};

use super::mailbox::Mailbox;

/// How long a deferred record waits at most (plus the timer's granularity).
pub(crate) const TICK: Duration = Duration::from_millis(2);

/// The node's deferred writes: the mailboxes with records sealed for the next tick.
#[derive(Debug)]
pub(crate) struct Flusher {
    /// Counts ticks: an outlet written to in the current one defers its next records.
    epoch: AtomicU32,
    due: Mutex<Vec<Arc<Mailbox>>>,
    wake: Sender<()>,
    woken: Receiver<()>,
}

impl Flusher {
    pub(crate) fn new() -> Arc<Flusher> {
        let (wake, woken) = bounded(1);
        Arc::new(Flusher {
            epoch: AtomicU32::new(1),
            due: Mutex::new(Vec::new()),
            wake,
            woken,
        })
    }

    /// The current tick.
    pub(crate) fn epoch(&self) -> u32 {
        self.epoch.load(Ordering::Relaxed)
    }

    /// `m` has records sealed for the next tick (called once until that tick wrote them).
    pub(crate) fn schedule(&self, m: Arc<Mailbox>) {
        let first = {
            let mut due = self
                .due
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            due.push(m);
            due.len() == 1
        };
        if first {
            // Full: a wake-up is already pending.
            let _ = self.wake.try_send(());
        }
    }

    /// Writes what was deferred, a tick after the first record of a round was; runs as long
    /// as the executor does.
    pub(crate) async fn run(self: Arc<Flusher>) {
        loop {
            if self.woken.recv().await.is_err() {
                return;
            }
            Timer::after(TICK).await;
            let epoch = self.epoch.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
            let due = core::mem::take(
                &mut *self
                    .due
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            );
            for m in &due {
                m.flush_deferred(epoch);
            }
        }
    }
}
