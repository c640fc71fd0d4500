//! A running server's handle and its graceful shutdown: refuse new connections, `Bye` to
//! every client, wait (3 s at most) for the connections to end, stop the executor threads,
//! then the hashing pool, this node's rows and lease, the store and the logs, in that order.
//! See docs/DESIGN.md, "Server: connections and runtime".

use core::net::SocketAddr;
use core::time::Duration;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use chatbox_core::proto::ServerMsg;
use smol::Executor;
use smol::channel::Sender;

use super::admission::Admission;
use crate::auth::Accounts;
use crate::chat::{Chat, records};
use crate::logs::Logs;
use crate::store::Store;

/// What [`ServerHandle::new`] takes: everything start-up made that the handle reports or stops.
pub(crate) struct Parts {
    pub(crate) local_addr: SocketAddr,
    pub(crate) metrics_addr: Option<SocketAddr>,
    pub(crate) fingerprint: String,
    pub(crate) public_key: [u8; 32],
    pub(crate) notes: Vec<String>,
    pub(crate) first_invite: Option<String>,
    pub(crate) chat: Arc<Chat>,
    pub(crate) store: Arc<Store>,
    pub(crate) logs: Logs,
    pub(crate) accounts: Arc<Accounts>,
    pub(crate) admission: Arc<Admission>,
    pub(crate) executor: Arc<Executor<'static>>,
    pub(crate) stop: Sender<()>,
    pub(crate) threads: Vec<JoinHandle<()>>,
}

/// A running server.
#[derive(Debug)]
pub struct ServerHandle {
    local_addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    fingerprint: String,
    public_key: [u8; 32],
    notes: Vec<String>,
    first_invite: Option<String>,
    chat: Arc<Chat>,
    store: Arc<Store>,
    logs: Logs,
    accounts: Arc<Accounts>,
    admission: Arc<Admission>,
    executor: Option<Arc<Executor<'static>>>,
    stop: Sender<()>,
    threads: Vec<JoinHandle<()>>,
}

impl ServerHandle {
    /// The handle of a server whose tasks and threads run on `parts`.
    pub(crate) fn new(parts: Parts) -> ServerHandle {
        ServerHandle {
            local_addr: parts.local_addr,
            metrics_addr: parts.metrics_addr,
            fingerprint: parts.fingerprint,
            public_key: parts.public_key,
            notes: parts.notes,
            first_invite: parts.first_invite,
            chat: parts.chat,
            store: parts.store,
            logs: parts.logs,
            accounts: parts.accounts,
            admission: parts.admission,
            executor: Some(parts.executor),
            stop: parts.stop,
            threads: parts.threads,
        }
    }

    /// The address the server listens on.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Where `/metrics` and `/healthz` are served (`--metrics`), if anywhere.
    #[must_use]
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// What the operator must know about admission, for stdout (also in info.log): the
    /// warning that an `open` server on a non-loopback address lets anyone register.
    #[must_use]
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// The first-run operator invite's link (`--registration invite` and no confirmed
    /// account yet): to print on stdout, last.
    #[must_use]
    pub fn first_invite(&self) -> Option<&str> {
        self.first_invite.as_deref()
    }

    /// `SHA256:<base64>` of the static public key.
    #[must_use]
    pub fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    /// The static public key clients pin.
    #[must_use]
    pub fn public_key(&self) -> [u8; 32] {
        self.public_key
    }

    /// Reopens the four log files by name (SIGHUP, after logrotate moved them); returns the
    /// problems, each also reported on stderr (and in `info.log` when it works).
    pub fn reopen_logs(&self) -> Vec<String> {
        self.logs.reopen()
    }

    /// Graceful stop: `Bye` to every client, writer and logs flushed, threads joined.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        let Some(executor) = self.executor.take() else {
            return;
        };
        let (logs, store) = (&self.logs, &self.store);
        self.admission.begin_shutdown();
        logs.info("shutting down: telling clients");
        self.chat.close_all(&records::shared(&ServerMsg::Bye {
            reason: "server shutting down",
        }));
        let deadline = Instant::now() + Duration::from_secs(3);
        while self.admission.active() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.stop.close();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        drop(executor);
        self.accounts.pool.close();
        // Releases this node's rows and lease at once, so other nodes need not wait for it.
        if let Err(e) = smol::block_on(store.leave()) {
            logs.info(format!("database error: {e}"));
        }
        store.close();
        logs.info("server stopped");
        logs.close();
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.stop_now();
    }
}
