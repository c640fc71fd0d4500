//! Chat: rooms, private messages, moderation. Handlers decide and queue their replies in
//! [`Replies`]; fan-out to others goes through the [`bus`] to the [`hub`] of every node.

pub mod bus;
pub mod commands;
pub mod hub;
pub mod records;
pub mod sanitize;

use std::sync::Arc;

use chatbox_core::proto::{ErrorCode, ServerMsg};

use hub::ConnId;

/// The room every user joins at login.
pub const LOBBY: &str = "#lobby";
/// Messages of history sent on join.
pub const JOIN_HISTORY: u32 = 50;
/// Most messages one History request returns.
pub const MAX_HISTORY: u32 = 200;

/// The logged-in user of a connection.
#[derive(Debug, Clone)]
pub struct Me {
    /// Connection number.
    pub id: ConnId,
    /// User name.
    pub user: String,
    /// `user` or `op` at login. Informational: operator rights are read from the database
    /// each time they are used, so an administrator's change holds at once.
    pub role: String,
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
