//! Connections: one task per socket. [`driver`] moves bytes (socket, buffers, timers, the
//! mailbox) and seals replies; `requests` says what each decoded request does; [`state`] is
//! the sans-IO part (phase, token bucket, what each
//! phase may send, deadlines), unit-tested in process; [`close`] says why a connection ended.
//! A connection gets the services it uses ([`Env`]): accounts for everything before the login
//! and for self-service, chat for everything after. See docs/DESIGN.md, "Server: connections
//! and runtime".

pub(crate) mod close;
pub(crate) mod driver;
mod requests;
mod sessions;
pub(crate) mod state;

use core::time::Duration;
use std::sync::Arc;

use crate::auth::Accounts;
use crate::chat::Chat;
use crate::config::Config;
use crate::invite::Registration;
use crate::keys::ServerKeys;
use crate::logs::Logs;
use crate::metrics::Metrics;
use crate::store::Store;

pub(crate) use driver::run;

/// What every connection uses.
#[derive(Debug)]
pub(crate) struct Env {
    /// Timeouts and rate limit.
    pub(crate) limits: state::Limits,
    /// A write taking longer closes the connection.
    pub(crate) write_timeout: Duration,
    /// Who may register (`AskPolicy`).
    pub(crate) registration: Registration,
    /// The static key the handshake proves.
    pub(crate) keys: Arc<ServerKeys>,
    /// Log files.
    pub(crate) logs: Logs,
    /// Counters.
    pub(crate) metrics: Metrics,
    /// Database (this connection's `ONLINE` row).
    pub(crate) store: Arc<Store>,
    /// This node's id (which sessions are this node's).
    pub(crate) node: String,
    /// Login, registration, self-service.
    pub(crate) accounts: Arc<Accounts>,
    /// Rooms, presence, commands.
    pub(crate) chat: Arc<Chat>,
}

impl Env {
    /// The connection settings of `config` with the services given.
    pub(crate) fn new(
        config: &Config,
        keys: Arc<ServerKeys>,
        logs: Logs,
        metrics: Metrics,
        store: Arc<Store>,
        accounts: Arc<Accounts>,
        chat: Arc<Chat>,
    ) -> Env {
        Env {
            limits: state::Limits::of(config),
            write_timeout: config.write_timeout,
            registration: config.registration,
            keys,
            logs,
            metrics,
            store,
            node: config.node_id.clone(),
            accounts,
            chat,
        }
    }
}
