//! Chat: rooms, private messages, moderation (see docs/DESIGN.md, "Server: chat and bus").
//!
//! [`Chat`] is the service the connections talk to: `enter` after a login, `handle` for each
//! message of a logged-in user, `leave` when a connection ends. Commands ([`cmd`]) decide on
//! the [`state::ChatState`] and the database, queue their own answers in [`Replies`] and reach
//! everyone else one way only: effects published on the [`bus`](crate::bus), which applies
//! them to the state of every node.

pub(crate) mod cmd;
pub mod mailbox;
pub mod records;
pub mod sanitize;
pub(crate) mod service;
pub(crate) mod state;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use chatbox_core::proto::{ErrorCode, ServerMsg};

pub use service::Chat;
pub(crate) use state::SessionInfo;

/// A connection's number.
pub type ConnId = u64;

/// The room every user joins at login.
pub const LOBBY: &str = "#lobby";
/// Messages of history sent on join.
pub const JOIN_HISTORY: u32 = 50;
/// Most messages one History request returns.
pub const MAX_HISTORY: u32 = 200;

/// A user's role (`user` or `op` in the database and on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// An ordinary user.
    User,
    /// An operator: may kick, ban, mute and set the MOTD.
    Op,
}

impl Role {
    /// The role a database row names: `op` is an operator, anything else a user.
    #[must_use]
    pub fn from_db(s: &str) -> Role {
        if s == "op" { Role::Op } else { Role::User }
    }

    /// The spelling in the database and on the wire.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Op => "op",
        }
    }
}

/// The logged-in user of a connection.
#[derive(Debug, Clone)]
pub struct Me {
    /// Connection number.
    pub id: ConnId,
    /// User name.
    pub user: String,
    /// Role at login. Informational: operator rights are read from the database each time
    /// they are used, so an administrator's change holds at once.
    pub role: Role,
    /// Peer address, for logs.
    pub ip_port: String,
}

/// Records for the connection itself, in order, and whether to close it after them.
#[derive(Debug, Default)]
pub struct Replies {
    /// Plaintexts of the records to send.
    pub records: Vec<Arc<[u8]>>,
    /// Close the connection after sending them.
    pub close: bool,
}

impl Replies {
    /// Queues a message.
    pub fn msg(&mut self, m: &ServerMsg<'_>) {
        self.records.push(records::shared(m));
    }

    /// Queues an already encoded record.
    pub fn record(&mut self, r: Arc<[u8]>) {
        self.records.push(r);
    }

    /// Queues encoded records.
    pub fn all(&mut self, rs: Vec<Vec<u8>>) {
        self.records.extend(rs.into_iter().map(Arc::from));
    }

    /// Queues an error.
    pub fn error(&mut self, code: ErrorCode, text: &str) {
        self.msg(&ServerMsg::error(code, text));
    }

    /// Queues an information line.
    pub fn info(&mut self, text: &str) {
        self.msg(&ServerMsg::Info { text });
    }
}
