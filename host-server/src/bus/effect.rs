//! What one node tells the others: an [`Event`] is a batch of [`Effect`]s from one origin
//! node, applied together and in order by [`ChatState::apply`](crate::chat::state::ChatState)
//! on every node (see docs/DESIGN.md, "Server: chat and bus").
//!
//! Two kinds of effect: a *state* effect changes what a node knows (membership, presence,
//! topics, away, mutes, MOTD); a *delivery* effect queues a record for connections. The
//! publisher applies the state effects of its batch at once and skips them in its own echo;
//! deliveries follow the bus's order on every node, the publisher's included, so every member
//! sees a room's messages in one order.

use std::sync::Arc;

use crate::chat::ConnId;
use crate::chat::state::RemoteConn;
use crate::store::TopicRow;

/// A batch of effects from one node, applied together.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    /// Node id of the publisher.
    pub(crate) origin: String,
    /// What happened, in order.
    pub(crate) effects: Vec<Effect>,
}

/// One effect.
#[derive(Debug, Clone)]
pub(crate) enum Effect {
    /// A record for every member of a room (except one connection of the origin node).
    Room {
        /// Room.
        room: String,
        /// Connection of the origin node left out (the sender, who gets its own copy).
        except: Option<ConnId>,
        /// Encoded `ServerMsg`.
        rec: Arc<[u8]>,
    },
    /// A record for every connection of a user (except one connection of the origin node).
    User {
        /// User.
        user: String,
        /// Connection of the origin node left out.
        except: Option<ConnId>,
        /// Encoded `ServerMsg`.
        rec: Arc<[u8]>,
    },
    /// Send a record to every connection of a user, then close them (ban).
    Disconnect {
        /// User.
        user: String,
        /// Encoded `Bye`.
        rec: Arc<[u8]>,
    },
    /// A user removed from a room by an operator (every connection of theirs, every node).
    Kick {
        /// Room.
        room: String,
        /// User.
        user: String,
    },
    /// A room's topic changed (already stored).
    Topic(TopicRow),
    /// A user's away message (empty: back).
    Away {
        /// User.
        user: String,
        /// Text.
        text: String,
    },
    /// A mute set (`Some(until_ms)`, 0 = until lifted) or lifted (`None`).
    Mute {
        /// User.
        user: String,
        /// Until when.
        until_ms: Option<u64>,
    },
    /// The MOTD changed (already stored).
    Motd(String),
    /// A connection of the origin node logged in.
    Login {
        /// Its number on the origin node.
        conn: ConnId,
        /// Its user.
        user: String,
        /// Its client's `ip:port`.
        address: String,
        /// When it logged in, Unix ms.
        since_ms: u64,
    },
    /// Close sessions of `user` with `rec` (a `Bye`): the one `only` names (node, connection),
    /// or, with `only` None, all but the one `except` names (a self-service change keeps the
    /// session that made it).
    CloseSessions {
        /// Whose sessions.
        user: String,
        /// Just this one.
        only: Option<(String, ConnId)>,
        /// All but this one.
        except: Option<(String, ConnId)>,
        /// The record sent before closing.
        rec: Arc<[u8]>,
    },
    /// A connection of the origin node joined a room.
    Join {
        /// Its number.
        conn: ConnId,
        /// Room.
        room: String,
    },
    /// A connection of the origin node left a room.
    Part {
        /// Its number.
        conn: ConnId,
        /// Room.
        room: String,
    },
    /// A connection of the origin node closed.
    Gone {
        /// Its number.
        conn: ConnId,
    },
    /// The origin node started: every other node answers with a snapshot.
    Hello,
    /// The origin node's logged-in connections.
    Snapshot(Vec<RemoteConn>),
    /// A node's lease expired: forget its connections (and tell the rooms they were in that
    /// they quit).
    NodeDown {
        /// The dead node.
        node: String,
    },
}

impl Effect {
    /// Whether this effect only queues records (applied in the bus's order on every node)
    /// rather than changing what a node knows (applied by the publisher at once).
    #[must_use]
    pub(crate) fn is_delivery(&self) -> bool {
        matches!(
            self,
            Effect::Room { .. }
                | Effect::User { .. }
                | Effect::Disconnect { .. }
                | Effect::CloseSessions { .. }
        )
    }
}
