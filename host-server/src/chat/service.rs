//! The chat service (see docs/DESIGN.md, "Server: chat and bus"): what a connection, the
//! account commands and the server's cluster and shutdown code ask of the chat. It holds the
//! bus (and through it this node's [`ChatState`]), the store, the logs and the metrics, and
//! the few settings the commands use — nothing else of the server.

use std::sync::Arc;

use chatbox_core::proto::{ClientMsg, PresenceKind, ServerMsg};

use super::mailbox::Mailbox;
use super::state::{ChatState, SessionInfo};
use super::{ConnId, LOBBY, Me, Replies, cmd, records};
use crate::bus::{Bus, Effect, Link};
use crate::logs::Logs;
use crate::metrics::Metrics;
use crate::store::{Startup, Store};

/// The settings the commands use.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    /// Rooms one user may be in over all its connections (`--max-rooms-per-user`).
    pub(crate) max_rooms_per_user: usize,
    /// Messages one sender may leave for one offline user (`--max-offline-per-sender`).
    pub(crate) max_offline_per_sender: u32,
    /// The token bucket announced after login (`--rate`, `--burst`).
    pub(crate) rate_per_sec: f64,
    pub(crate) rate_burst: f64,
}

impl Limits {
    pub(crate) fn from_config(c: &crate::Config) -> Limits {
        Limits {
            max_rooms_per_user: c.max_rooms_per_user,
            max_offline_per_sender: c.max_offline_per_sender,
            rate_per_sec: c.rate_per_sec,
            rate_burst: c.rate_burst,
        }
    }
}

/// The chat of one node.
#[derive(Debug)]
pub(crate) struct Chat {
    pub(crate) bus: Bus,
    pub(crate) store: Arc<Store>,
    pub(crate) logs: Logs,
    pub(crate) metrics: Metrics,
    pub(crate) limits: Limits,
}

impl Chat {
    /// The chat of node `config.node_id`, starting from what the store loaded (`startup`;
    /// topics and the MOTD are cleaned like any text typed now), `config.motd` when no
    /// operator set one.
    pub(crate) fn new(
        config: &crate::Config,
        startup: Startup,
        store: Arc<Store>,
        logs: Logs,
        metrics: Metrics,
        link: Link,
    ) -> Chat {
        let node = config.node_id.as_str();
        let limits = Limits::from_config(config);
        let motd = super::sanitize::clean(&startup.motd.unwrap_or_else(|| config.motd.clone()));
        let mut topics = startup.topics;
        for t in &mut topics {
            t.topic = super::sanitize::clean(&t.topic);
        }
        let state = ChatState::new(node, topics, startup.mutes, motd, metrics.clone());
        let bus = Bus::new(
            Arc::new(std::sync::Mutex::new(state)),
            node,
            logs.clone(),
            metrics.clone(),
            link,
        );
        Chat {
            bus,
            store,
            logs,
            metrics,
            limits,
        }
    }

    /// The bus, for the Redis tasks.
    pub(crate) fn bus(&self) -> Bus {
        self.bus.clone()
    }

    /// Registers a new connection's outbound queue.
    pub(crate) fn attach(&self, id: ConnId, mailbox: Arc<Mailbox>) {
        self.bus.lock().attach(id, mailbox);
    }

    /// Notes that a connection has its row in `ONLINE`.
    pub(crate) fn set_listed(&self, id: ConnId, ip_port: &str) {
        self.bus.lock().set_listed(id, ip_port);
    }

    /// A connection logged in (every node learns it). Call before checking what may have
    /// raced the login, then [`Chat::enter`].
    pub(crate) fn sign_in(&self, me: &Me, since_ms: u64) {
        self.bus.publish(vec![Effect::Login {
            conn: me.id,
            user: me.user.clone(),
            address: me.ip_port.clone(),
            since_ms,
        }]);
    }

    /// After a successful login: `LoginOk` with the MOTD, `RateLimit`, then #lobby.
    pub(crate) async fn enter(&self, me: &Me, out: &mut Replies) {
        let motd = self.bus.lock().motd().to_owned();
        out.msg(&ServerMsg::LoginOk {
            user: &me.user,
            motd: &motd,
        });
        out.msg(&cmd::rate_limit(&self.limits));
        cmd::rooms::join(self, me, LOBBY, out).await;
    }

    /// One message of a logged-in user (auth messages and Ping/Bye are the caller's).
    pub(crate) async fn handle(&self, me: &Me, msg: &ClientMsg<'_>, out: &mut Replies) {
        cmd::handle(self, me, msg, out).await;
    }

    /// A connection went away: the other nodes forget it; `Quit` to its rooms and offline if
    /// it was the user's last connection anywhere.
    pub(crate) async fn leave(&self, id: ConnId) {
        let offline = {
            let mut s = self.bus.lock();
            let Some(d) = s.departure(id) else { return };
            let gone = vec![Effect::Gone { conn: id }];
            let Some(user) = d.user else {
                // Never logged in: no other node knows it.
                self.bus.apply_here(&mut s, gone);
                return;
            };
            let mut effects = gone;
            if !d.still_online {
                effects.extend(d.rooms.iter().map(|room| Effect::Room {
                    room: room.clone(),
                    except: None,
                    rec: records::shared(&ServerMsg::Presence {
                        room,
                        user: &user,
                        kind: PresenceKind::Quit,
                        text: "",
                    }),
                }));
            }
            self.bus.publish_in(&mut s, effects);
            (!d.still_online).then_some(user)
        };
        if let Some(user) = offline
            && let Err(e) = self.store.set_offline(&user).await
        {
            self.logs.info(format!("database error: {e}"));
        }
    }

    /// Every live session of `user` on every node known here, oldest first.
    pub(crate) fn sessions(&self, user: &str) -> Vec<SessionInfo> {
        self.bus.lock().sessions(user)
    }

    /// Closes sessions of `user` on every node with `rec` (a `Bye`): only the session `only`
    /// (node, connection) if given, else all of them but `except` (for account self-service).
    pub(crate) fn close_sessions(
        &self,
        user: &str,
        only: Option<(String, ConnId)>,
        except: Option<(String, ConnId)>,
        rec: Arc<[u8]>,
    ) {
        self.bus.publish(vec![Effect::CloseSessions {
            user: user.to_owned(),
            only,
            except,
            rec,
        }]);
    }

    /// Sends `rec` to every connection of `user` on this node, then closes them; how many.
    pub(crate) fn disconnect_here(&self, user: &str, rec: Arc<[u8]>) -> usize {
        let mut s = self.bus.lock();
        let effects = vec![Effect::Disconnect {
            user: user.to_owned(),
            rec,
        }];
        self.bus.apply_here(&mut s, effects).closed
    }

    /// Queues `rec` for every connection of `user` on this node.
    pub(crate) fn tell_here(&self, user: &str, rec: Arc<[u8]>) {
        let mut s = self.bus.lock();
        let effects = vec![Effect::User {
            user: user.to_owned(),
            except: None,
            rec,
        }];
        self.bus.apply_here(&mut s, effects);
    }

    /// Tells the other nodes who is here (after a reap, and now and then).
    pub(crate) fn announce(&self) {
        self.bus.announce(false);
    }

    /// A node's lease expired: every node forgets its users.
    pub(crate) fn node_down(&self, node: String) {
        self.bus.publish(vec![Effect::NodeDown { node }]);
    }

    /// This node's connections with a row in `ONLINE` (id, `ip_port`, user).
    pub(crate) fn listed(&self) -> Vec<(ConnId, String, Option<String>)> {
        self.bus.lock().listed()
    }

    /// Whether a connection is still here.
    pub(crate) fn contains(&self, id: ConnId) -> bool {
        self.bus.lock().contains(id)
    }

    /// Shutdown: `rec` to every connection, then they close; the Redis tasks stop retrying.
    pub(crate) fn close_all(&self, rec: &Arc<[u8]>) {
        self.bus.close();
        self.bus.lock().close_all(rec);
    }
}
