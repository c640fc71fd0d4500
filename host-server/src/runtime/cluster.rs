//! The cluster side of the runtime: the bus and the login throttle (local alone, Redis in a
//! cluster), this node's lease (renewed, and its `ONLINE` rows restored after other nodes
//! reaped it), reaping nodes whose lease expired, and the periodic presence resync. See
//! docs/DESIGN.md, "Server: connections and runtime".

use core::time::Duration;
use std::io;
use std::sync::Arc;
use std::time::Instant;

use super::admission::Admission;
use crate::auth::throttle::IpThrottle;
use crate::bus::{Link, RedisLink, RedisTasks};
use crate::chat::Chat;
use crate::config::Config;
use crate::keys::ServerKeys;
use crate::logs::Logs;
use crate::store::{Database, Store};

/// The bus and login throttle: local alone; Redis (both shared) in a cluster.
pub(crate) fn open_bus(
    config: &Config,
    keys: &ServerKeys,
) -> io::Result<(Link, Option<RedisTasks>, IpThrottle)> {
    let limit = config.ip_failures_per_min;
    let Some(url) = &config.bus else {
        return Ok((Link::Local, None, IpThrottle::new(limit)));
    };
    if !matches!(config.database(), Database::Postgres(_)) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "--bus needs a database every node shares (--database postgres://…)",
        ));
    }
    let (link, tasks) = RedisLink::connect(url, keys).map_err(io::Error::other)?;
    let throttle = IpThrottle::shared(limit, tasks.connection());
    Ok((Link::Redis(link), Some(tasks), throttle))
}

/// Renews this node's lease, reaps nodes whose lease expired (their `ONLINE` rows and
/// unconfirmed registrations go; every node forgets their users), and republishes this node's
/// presence now and then so the other nodes' view heals after lost bus messages.
pub(crate) async fn lease_loop(
    chat: Arc<Chat>,
    store: Arc<Store>,
    logs: Logs,
    admission: Arc<Admission>,
    lease: Duration,
) {
    const RESYNC: Duration = Duration::from_secs(10);
    let lease_ms = u64::try_from(lease.as_millis()).unwrap_or(u64::MAX);
    let mut last_sync = Instant::now();
    let mut first = true;
    loop {
        // The first renewal at once: the lease written at start is longer than `lease`.
        if !first {
            smol::Timer::after(lease / 3).await;
        }
        first = false;
        if admission.shutting_down() {
            return;
        }
        let now = crate::time::now_ms();
        match store.heartbeat(now.saturating_add(lease_ms)).await {
            Ok(true) => {}
            Ok(false) => {
                restore_online(&chat, &store, &logs).await;
                last_sync = Instant::now();
                chat.announce();
            }
            Err(e) => logs.info(format!("cluster: lease renewal failed: {e}")),
        }
        match store.reap_nodes(now).await {
            Ok(nodes) => {
                for node in nodes {
                    logs.info(format!(
                        "cluster: node {node} missed its lease; its ONLINE rows were removed"
                    ));
                    chat.node_down(node);
                }
            }
            Err(e) => logs.info(format!("cluster: reaping failed: {e}")),
        }
        if last_sync.elapsed() >= RESYNC {
            last_sync = Instant::now();
            chat.announce();
        }
    }
}

/// After other nodes reaped this one while it was alive (a renewal came too late): writes the
/// `ONLINE` rows of its connections again and marks their users online.
async fn restore_online(chat: &Chat, store: &Store, logs: &Logs) {
    let conns = chat.listed();
    logs.info(format!(
        "cluster: this node's lease had expired and was reaped; restoring {} ONLINE rows",
        conns.len()
    ));
    for (id, ip_port, user) in conns {
        let client_id = user.clone().unwrap_or_else(|| format!("Client{id}"));
        if let Err(e) = store
            .online_restore(&client_id, &ip_port, user.as_deref())
            .await
        {
            logs.info(format!("database error: {e}"));
            continue;
        }
        // Closed meanwhile: its own clean-up may have run before the row came back.
        if !chat.contains(id)
            && let Err(e) = store.online_remove(&ip_port).await
        {
            logs.info(format!("database error: {e}"));
        }
    }
}
