//! The Redis side of the cluster bus: connecting, the publisher task (sealed events pipelined
//! in order) and the subscriber task (every node's events opened, decoded and handed to
//! [`Bus::receive`]). See docs/DESIGN.md, "Server: chat and bus".

use core::time::Duration;
use std::sync::{Arc, Mutex};

use smol::channel::{self, Receiver, Sender};
use smol::stream::StreamExt as _;

use super::Bus;
use super::effect::Event;
use super::seal::{Opener, Sealer};
use crate::keys::ServerKeys;
use crate::logs::Logs;
use crate::metrics::{Direction, Metrics};

/// The Redis channel every node publishes on and listens to.
pub(crate) const CHANNEL: &str = "chatbox:events";
/// Events waiting to be published at most; beyond that they are dropped (and logged).
const PUBLISH_QUEUE: usize = 65_536;
/// Events sent in one pipeline at most.
const PUBLISH_BATCH: usize = 256;

/// The cluster link on Redis: one publisher task (order kept, events pipelined in batches) and
/// one subscriber task that applies what every node published.
#[derive(Debug)]
pub(crate) struct RedisLink {
    queue: Sender<Vec<u8>>,
    sealer: Mutex<Sealer>,
    dropped: core::sync::atomic::AtomicU64,
}

/// What the subscriber and publisher tasks need, made by [`RedisBus::connect`].
#[derive(Debug)]
pub(crate) struct RedisTasks {
    client: redis::Client,
    conn: redis::aio::MultiplexedConnection,
    rx: Receiver<Vec<u8>>,
}

fn redacted(url: &str) -> String {
    // redis://user:password@host → redis://user:***@host
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s + 3 => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

impl RedisLink {
    /// Connects to Redis (publisher connection) and checks it answers.
    pub(crate) fn connect(url: &str, keys: &ServerKeys) -> Result<(RedisLink, RedisTasks), String> {
        let shown = redacted(url);
        let client = redis::Client::open(url).map_err(|e| format!("bus {shown}: {e}"))?;
        let conn = smol::block_on(async {
            let connect = client.get_multiplexed_async_connection();
            let timeout = async {
                smol::Timer::after(Duration::from_secs(5)).await;
                Err(redis::RedisError::from((
                    redis::ErrorKind::Io,
                    "timed out after 5 s",
                )))
            };
            let mut c = smol::future::or(connect, timeout).await?;
            redis::cmd("PING").query_async::<String>(&mut c).await?;
            Ok::<_, redis::RedisError>(c)
        })
        .map_err(|e| format!("bus {shown}: {e}"))?;
        let (tx, rx) = channel::bounded(PUBLISH_QUEUE);
        let sealer = Sealer::new(keys).map_err(|e| e.to_string())?;
        Ok((
            RedisLink {
                queue: tx,
                sealer: Mutex::new(sealer),
                dropped: core::sync::atomic::AtomicU64::new(0),
            },
            RedisTasks { client, conn, rx },
        ))
    }

    /// Seals `ev` and queues it for the publisher task (dropped, and logged, if full).
    pub(super) fn send(&self, ev: &Event, logs: &Logs, metrics: &Metrics) {
        let sealed = match self.sealer.lock() {
            Ok(mut s) => s.seal(&ev.encode()),
            Err(_) => return,
        };
        if self.queue.try_send(sealed).is_ok() {
            metrics.bus(Direction::Out);
        } else {
            let n = self
                .dropped
                .fetch_add(1, core::sync::atomic::Ordering::Relaxed);
            if n.is_power_of_two() {
                logs.info(format!(
                    "cluster: bus publish queue full or closed, {} events dropped",
                    n + 1
                ));
            }
        }
    }
}

impl RedisTasks {
    /// Publishes queued events in order, a pipeline per batch; retries a failed batch until
    /// Redis answers again.
    pub(crate) async fn publisher(mut self, bus: Bus) {
        let rx = self.rx.clone();
        while let Ok(first) = rx.recv().await {
            let mut batch = vec![first];
            while batch.len() < PUBLISH_BATCH {
                match rx.try_recv() {
                    Ok(b) => batch.push(b),
                    Err(_) => break,
                }
            }
            let mut pipe = redis::pipe();
            for b in &batch {
                pipe.cmd("PUBLISH").arg(CHANNEL).arg(&b[..]).ignore();
            }
            let mut delay = Duration::from_millis(50);
            loop {
                match pipe.query_async::<()>(&mut self.conn).await {
                    Ok(()) => break,
                    Err(e) => {
                        bus.logs()
                            .info(format!("cluster: publishing to the bus failed: {e}"));
                        if bus.closing() {
                            return;
                        }
                        smol::Timer::after(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(2));
                    }
                }
            }
        }
    }

    /// Subscribes (again after a failure) and applies every event; says who is here and hello
    /// after each subscription so the other nodes send their snapshots.
    pub(crate) async fn subscriber(
        client: redis::Client,
        bus: Bus,
        keys: Arc<ServerKeys>,
        ready: Sender<()>,
    ) {
        let logs = bus.logs().clone();
        let mut opener = Opener::default();
        let mut delay = Duration::from_millis(50);
        loop {
            match client.get_async_pubsub().await {
                Ok(mut ps) => match ps.subscribe(CHANNEL).await {
                    Ok(()) => {
                        delay = Duration::from_millis(50);
                        let _ = ready.try_send(());
                        // Who is here (replacing what others remember of an earlier run of
                        // this node), then ask the others who is there: one batch.
                        bus.announce(true);
                        let mut stream = ps.on_message();
                        while let Some(msg) = stream.next().await {
                            match opener.open(&keys, msg.get_payload_bytes()) {
                                Ok(plain) => match Event::decode(&plain) {
                                    Some(ev) => {
                                        bus.metrics().bus(Direction::In);
                                        bus.receive(&ev);
                                    }
                                    None => logs.info("cluster: undecodable bus event"),
                                },
                                // Forged, replayed, or another cluster's on the same Redis:
                                // at most one line per 10 s, with a count of the rest.
                                Err(e) => logs.info_coalesced(
                                    "cluster: bus message refused",
                                    format!("cluster: bus message refused: {e:?}"),
                                ),
                            }
                        }
                        logs.info("cluster: bus subscription ended");
                    }
                    Err(e) => logs.info(format!("cluster: subscribe failed: {e}")),
                },
                Err(e) => logs.info(format!("cluster: bus connection failed: {e}")),
            }
            if bus.closing() {
                return;
            }
            smol::Timer::after(delay).await;
            delay = (delay * 2).min(Duration::from_secs(2));
        }
    }

    /// A connection for state the nodes share (login throttle).
    #[must_use]
    pub(crate) fn connection(&self) -> redis::aio::MultiplexedConnection {
        self.conn.clone()
    }

    /// The client the subscriber connects with.
    #[must_use]
    pub(crate) fn client(&self) -> redis::Client {
        self.client.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn redis_urls_are_shown_without_password() {
        assert_eq!(
            redacted("redis://u:secret@127.0.0.1:6379/0"),
            "redis://u:***@127.0.0.1:6379/0"
        );
        assert_eq!(redacted("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(redacted("redis://:pw@h"), "redis://:***@h");
    }
}
