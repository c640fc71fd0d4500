//! Chat: rooms, private messages, moderation (see docs/DESIGN.md, "Server: chat and bus").
//!
//! [`Chat`] is the service the connections talk to: `enter` after a login, `handle` for each
//! message of a logged-in user, `leave` when a connection ends. Commands ([`cmd`]) decide on
//! the [`state::ChatState`] and the database, queue their own answers in [`Replies`] and reach
//! everyone else one way only: effects published on the [`bus`](crate::bus), which applies
//! them to the state of every node.

pub(crate) mod cmd;
pub(crate) mod flush;
pub(crate) mod mailbox;
pub(crate) mod records;
pub(crate) mod sanitize;
pub(crate) mod service;
pub(crate) mod state;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use chatbox_core::proto::{ErrorCode, ServerMsg};

pub(crate) use service::Chat;
pub(crate) use state::SessionInfo;

/// A connection's number.
pub(crate) type ConnId = u64;

/// The room every user joins at login.
pub(crate) const LOBBY: &str = "#lobby";
/// Messages of history sent on join.
pub(crate) const JOIN_HISTORY: u32 = 50;
/// Most messages one History request returns.
pub(crate) const MAX_HISTORY: u32 = 200;

/// A user's role (`user` or `op` in the database and on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// An ordinary user.
    User,
    /// An operator: may kick, ban, mute and set the MOTD.
    Op,
}

impl Role {
    /// The role a database row names: `op` is an operator, anything else a user.
    #[must_use]
    pub(crate) fn from_db(s: &str) -> Role {
        if s == "op" { Role::Op } else { Role::User }
    }

    /// The spelling in the database and on the wire.
    #[must_use]
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Op => "op",
        }
    }
}

/// The logged-in user of a connection.
#[derive(Debug, Clone)]
pub(crate) struct Me {
    /// Connection number.
    pub(crate) id: ConnId,
    /// User name.
    pub(crate) user: String,
    /// Peer address, for logs.
    pub(crate) ip_port: String,
}

/// Records for the connection itself, in order, and whether to close it after them.
#[derive(Debug, Default)]
pub(crate) struct Replies {
    /// Plaintexts of the records to send.
    pub(crate) records: Vec<Arc<[u8]>>,
    /// Close the connection after sending them.
    pub(crate) close: bool,
}

impl Replies {
    /// Queues a message.
    pub(crate) fn msg(&mut self, m: &ServerMsg<'_>) {
        self.records.push(records::shared(m));
    }

    /// Queues an already encoded record.
    pub(crate) fn record(&mut self, r: Arc<[u8]>) {
        self.records.push(r);
    }

    /// Queues encoded records.
    pub(crate) fn all(&mut self, rs: Vec<Vec<u8>>) {
        self.records.extend(rs.into_iter().map(Arc::from));
    }

    /// Queues an error.
    pub(crate) fn error(&mut self, code: ErrorCode, text: &str) {
        self.msg(&ServerMsg::error(code, text));
    }

    /// Queues an information line.
    pub(crate) fn info(&mut self, text: &str) {
        self.msg(&ServerMsg::Info { text });
    }
}
