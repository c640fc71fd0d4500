//! The accept loop: every new socket is counted by admission and handed to the connection
//! task the caller gives (lib.rs wires in `conn::run`), so the runtime knows nothing of what a
//! connection does. See docs/DESIGN.md, "Server: connections and runtime".

use core::future::Future;
use core::net::SocketAddr;
use core::time::Duration;
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Weak};

use smol::{Async, Executor};

use super::admission::{Admission, ConnGuard};
use crate::chat::mailbox::Mailbox;
use crate::logs::Logs;

/// Accepts until the executor goes; each admitted socket runs `serve` on its own task.
pub(crate) async fn run<F, Fut>(
    admission: Arc<Admission>,
    logs: Logs,
    outbound_queue: usize,
    listener: Async<TcpListener>,
    ex: Weak<Executor<'static>>,
    serve: F,
) where
    F: Fn(Async<TcpStream>, SocketAddr, ConnGuard, Arc<Mailbox>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                logs.info(format!("accept failed: {e}"));
                smol::Timer::after(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Shutting down, or far over the limit: not even a handshake.
        if !admission.worth_a_handshake() {
            continue;
        }
        let mailbox = Mailbox::new(outbound_queue);
        let guard = admission.admit(peer.ip(), mailbox.clone());
        let Some(ex) = ex.upgrade() else { return };
        ex.spawn(serve(stream, peer, guard, mailbox)).detach();
    }
}
