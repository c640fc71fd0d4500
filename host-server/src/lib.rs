//! # chatbox-server
//!
//! The ChatBox server: a Noise `NX` handshake with the server's static key, accounts with
//! password + TOTP, rooms and private messages stored in SQLite, four log files (the chat log
//! chained with HMACs). Every protocol step is `chatbox-core`'s; this crate moves bytes, keeps
//! time and state, and talks to the disk.
//!
//! One message's way: socket → `conn` (driver → sans-IO state) → `Session::handle_input` →
//! `ClientMsg::decode` → `auth` (the accounts service) or `chat` → [`store`] writer
//! (committed) → `bus` → chat state → each recipient's connection → `Session::seal_in_place`
//! → socket. [`start`] is the one place that builds the services and wires them together:
//! the runtime (accept, admission, cluster, shutdown) never sees what a connection does, and
//! a connection gets only the services it uses. See docs/DESIGN.md, "Server: connections and
//! runtime".
//!
//! ```no_run
//! let dir = std::path::Path::new("/tmp/chatbox-example");
//! let server = chatbox_server::start(chatbox_server::Config::for_tests(dir))?;
//! println!("{} {}", server.local_addr(), server.fingerprint());
//! server.shutdown();
//! # Ok::<(), std::io::Error>(())
//! ```

#![warn(unreachable_pub)]

pub mod admin;
mod auth;
pub mod backup;
mod bus;
mod chat;
pub mod config;
mod conn;
pub mod invite;
pub mod keys;
pub mod logs;
mod metrics;
mod outlet;
mod private;
mod runtime;
pub mod settings;
pub mod store;
#[cfg(feature = "test-util")]
pub mod test_util;
pub mod time;

use core::time::Duration;
use std::collections::HashSet;
use std::io;
use std::sync::Arc;

use chatbox_core::password::DEFAULT_ITERATIONS;
use smol::channel;
use smol::{Async, Executor};

use crate::auth::Accounts;
use crate::auth::failures::Attempts;
use crate::auth::pool::HashPool;
use crate::auth::register::PendingLimit;
use crate::auth::source::Prefixes;
use crate::bus::RedisTasks;
use crate::chat::Chat;
use crate::keys::ServerKeys;
use crate::logs::{Logs, anchor_name};
use crate::metrics::Metrics;
use crate::runtime::admin::ADMIN_WINDOW_MS;
use crate::runtime::admission::Admission;
use crate::store::{Database, Store};

pub use config::Config;
pub use runtime::shutdown::ServerHandle;

/// Binds, opens storage and logs, and runs the server on its own threads; returns at once.
pub fn start(config: Config) -> io::Result<ServerHandle> {
    runtime::setup::validate(&config)?;
    let private_notes = runtime::setup::make_private(&config)?;
    let keys = ServerKeys::load_or_create(&config.data_dir)?;
    let anchor = config.data_dir.join(anchor_name(
        matches!(config.database(), Database::Postgres(_)).then_some(config.node_id.as_str()),
    ));
    let logs = Logs::open_anchored(&config.log_dir, keys.log_key(), Some(&anchor))?;
    for note in private_notes {
        eprintln!("chatbox-server: {note}");
        logs.info(note);
    }
    logs.info(format!(
        "chatbox-server {} starting (data dir {}, log dir {})",
        env!("CARGO_PKG_VERSION"),
        config.data_dir.display(),
        config.log_dir.display()
    ));
    if config.pbkdf2_iterations < DEFAULT_ITERATIONS {
        logs.info(format!(
            "warning: {} PBKDF2 iterations is below the recommended {DEFAULT_ITERATIONS}",
            config.pbkdf2_iterations
        ));
    }
    let fail = |logs: &Logs, e: io::Error| {
        logs.info(format!("start failed: {e}"));
        logs.close();
        e
    };
    let metrics = if config.metrics.is_some() {
        Metrics::new(config.bus.is_some())
    } else {
        Metrics::off()
    };
    let opened = Store::open_with_metrics(
        &config.database(),
        &config.node_id,
        logs.clone(),
        metrics.clone(),
    );
    let (store, startup) = match opened {
        Ok(x) => x,
        Err(e) => return Err(fail(&logs, io::Error::other(e.to_string()))),
    };
    // Administrators' changes already written: applied to nobody (no session predates them).
    let since = time::now_ms().saturating_sub(ADMIN_WINDOW_MS);
    let admin_seen: HashSet<i64> = match smol::block_on(store.admin_events(since)) {
        Ok(rows) => rows.into_iter().map(|r| r.id).collect(),
        Err(e) => {
            store.close();
            return Err(fail(&logs, io::Error::other(e.to_string())));
        }
    };
    let (link, bus_tasks, ip_throttle) = match runtime::cluster::open_bus(&config, &keys) {
        Ok(x) => x,
        Err(e) => {
            store.close();
            return Err(fail(&logs, e));
        }
    };
    let listener = match std::net::TcpListener::bind(config.listen) {
        Ok(l) => l,
        Err(e) => {
            store.close();
            return Err(fail(&logs, e));
        }
    };
    let metrics_listener = match config.metrics.map(metrics::bind).transpose() {
        Ok(l) => l,
        Err(e) => {
            store.close();
            return Err(fail(&logs, e));
        }
    };
    let metrics_addr = match &metrics_listener {
        Some(l) => Some(l.get_ref().local_addr()?),
        None => None,
    };
    let local_addr = listener.local_addr()?;
    let listener = Async::new(listener)?;
    let pool = HashPool::new(config.pool_limits())?;
    let attempts = Attempts::new(config.failure_keys, config.remember_logins);
    let fingerprint = keys.fingerprint();
    let public_key = keys.static_key.public();
    let config = Arc::new(config);
    let keys = Arc::new(keys);
    let store = Arc::new(store);
    let chat = Arc::new(Chat::new(
        &config,
        startup,
        store.clone(),
        logs.clone(),
        metrics.clone(),
        link,
    ));
    let admission = Arc::new(Admission::new(&config, logs.clone(), metrics.clone()));
    let accounts = Arc::new(Accounts {
        config: config.clone(),
        store: store.clone(),
        pool,
        keys: keys.clone(),
        logs: logs.clone(),
        throttle: ip_throttle,
        attempts,
        pending: Arc::new(PendingLimit::new(
            config.max_pending_per_ip,
            Prefixes::of(&config),
        )),
    });
    let env = Arc::new(conn::Env::new(
        &config,
        keys.clone(),
        logs.clone(),
        metrics.clone(),
        store.clone(),
        accounts.clone(),
        chat.clone(),
    ));
    logs.info(format!("listening on {local_addr}"));
    if let Some(a) = metrics_addr {
        logs.info(format!("metrics on http://{a}/metrics and /healthz"));
    }
    logs.info(format!("server key fingerprint {fingerprint}"));
    let executor = Arc::new(Executor::new());
    let (stop, stop_rx) = channel::bounded::<()>(1);
    executor
        .spawn(runtime::accept::run(
            admission.clone(),
            logs.clone(),
            config.outbound_queue,
            listener,
            Arc::downgrade(&executor),
            move |stream, peer, guard, mailbox| {
                conn::run(env.clone(), stream, peer, guard, mailbox)
            },
        ))
        .detach();
    if let Some(l) = metrics_listener {
        let admission = admission.clone();
        executor
            .spawn(metrics::serve(
                store.clone(),
                metrics.clone(),
                move || admission.shutting_down(),
                l,
                Arc::downgrade(&executor),
            ))
            .detach();
    }
    executor.spawn(chat.bus().flusher().run()).detach();
    executor
        .spawn(runtime::admin::admin_loop(
            chat.clone(),
            store.clone(),
            logs.clone(),
            admission.clone(),
            config.admin_poll,
            admin_seen,
        ))
        .detach();
    let bus_ready = bus_tasks.map(|tasks| {
        let (ready, ready_rx) = channel::bounded::<()>(1);
        executor
            .spawn(RedisTasks::subscriber(
                tasks.client(),
                chat.bus(),
                keys.clone(),
                ready,
            ))
            .detach();
        executor.spawn(tasks.publisher(chat.bus())).detach();
        executor
            .spawn(runtime::cluster::lease_loop(
                chat.clone(),
                store.clone(),
                logs.clone(),
                admission.clone(),
                config.lease,
            ))
            .detach();
        ready_rx
    });
    let threads_n = config.executor_threads();
    let mut threads = Vec::with_capacity(threads_n);
    for i in 0..threads_n {
        let ex = executor.clone();
        let rx = stop_rx.clone();
        threads.push(
            std::thread::Builder::new()
                .name(format!("chatbox-exec-{i}"))
                .spawn(move || {
                    runtime::exec::drive(&ex, &rx);
                })?,
        );
    }
    if let Some(ready) = bus_ready {
        // The accept loop already runs (spawned above): this wait only delays start()'s
        // return, so a caller that waits for start (tests, the cluster check) gets a node that
        // hears the other nodes' events (or, after 5 s, a log line saying it does not yet).
        // Events published elsewhere before the subscription is live are missed here; the
        // periodic presence snapshot (runtime::cluster::lease_loop) heals that view.
        let heard = smol::block_on(smol::future::or(
            async { ready.recv().await.is_ok() },
            async {
                smol::Timer::after(Duration::from_secs(5)).await;
                false
            },
        ));
        if !heard {
            logs.info("cluster: not subscribed to the bus after 5 s; serving and retrying");
        }
    }
    let (notes, first_invite) = smol::block_on(runtime::setup::admission_notes(
        &config, &store, &keys, &logs, local_addr,
    ));
    Ok(ServerHandle::new(runtime::shutdown::Parts {
        local_addr,
        metrics_addr,
        fingerprint,
        public_key,
        notes,
        first_invite,
        chat,
        store,
        logs,
        accounts,
        admission,
        executor,
        stop,
        threads,
    }))
}
