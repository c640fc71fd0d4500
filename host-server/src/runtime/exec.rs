//! The executor threads' loop. See docs/DESIGN.md, "Server: connections and runtime".
//!
//! `Executor::run` goes back to `block_on` (which is where a thread polls the reactor) only
//! every 200 tasks. A busy connection task seals and writes a whole room's fan-out, so that is
//! tens of milliseconds, and meanwhile async-io's fall-back thread takes the reactor: every
//! I/O event then wakes that thread, and every task it wakes is a cross-thread wake-up. This
//! loop goes back to `block_on` after every task, so the executor threads keep the reactor
//! themselves. (Measured with one executor thread at 3 msg/s per client: the fall-back thread
//! used 0.13 cores with `Executor::run`, 0.04 with a poll after every 16 tasks, and under 0.01
//! with a poll after every task.)

use core::future::Future;
use core::pin::pin;
use core::task::Poll;

use smol::Executor;
use smol::channel::Receiver;
use smol::future;

/// Runs `ex`'s tasks on this thread until `stop` is closed.
pub(crate) fn drive(ex: &Executor<'static>, stop: &Receiver<()>) {
    smol::block_on(async {
        while !stop.is_closed() {
            if ex.try_tick() {
                // Back to block_on: it polls the reactor without blocking, then resumes here.
                future::yield_now().await;
                continue;
            }
            // Nothing ready: wait for a task or the stop (block_on polls the reactor, blocking).
            let mut stopped = pin!(stop.recv());
            let mut tick = pin!(ex.tick());
            future::poll_fn(|cx| {
                if stopped.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(());
                }
                tick.as_mut().poll(cx)
            })
            .await;
        }
    });
}
