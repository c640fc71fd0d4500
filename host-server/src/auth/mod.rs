//! Accounts: registration with TOTP confirmation, login with password + code, throttling,
//! self-service. [`Accounts`] is the service: it owns what deciding takes (store, hashing
//! pool, keys, logs, the failure throttle, unconfirmed registrations per address) and knows
//! nothing of connections or chat. These functions decide; the connection task sends what
//! they return (docs/DESIGN.md, "Server: connections and runtime").

pub(crate) mod account;
pub(crate) mod failures;
pub(crate) mod invite;
pub(crate) mod login;
pub(crate) mod pool;
pub(crate) mod register;
pub(crate) mod source;
pub(crate) mod throttle;

use std::sync::Arc;

use chatbox_core::proto::ErrorCode;

use crate::config::Config;
use crate::keys::ServerKeys;
use crate::logs::Logs;
use crate::store::Store;

/// The accounts service: everything login, registration, confirmation and self-service use.
#[derive(Debug)]
pub(crate) struct Accounts {
    /// Settings (limits, delays, iterations, issuer, registration policy, prefixes).
    pub(crate) config: Arc<Config>,
    /// Database.
    pub(crate) store: Arc<Store>,
    /// Password hashing pool.
    pub(crate) pool: pool::HashPool,
    /// Server key and derived keys.
    pub(crate) keys: Arc<ServerKeys>,
    /// Log files.
    pub(crate) logs: Logs,
    /// Failed logins per address (shared by the nodes of a cluster).
    pub(crate) throttle: throttle::IpThrottle,
    /// Recent login failures (the answer delay) and successes (the reserved hashing share).
    pub(crate) attempts: failures::Attempts,
    /// Unconfirmed registrations per address.
    pub(crate) pending: Arc<register::PendingLimit>,
}

/// A refusal to send as `Error{code, text}`, closing the connection if `close`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// Error code.
    pub(crate) code: ErrorCode,
    /// Text for the user (never secret, never more specific than it should be).
    pub(crate) text: String,
    /// Whether the server then closes the connection.
    pub(crate) close: bool,
}

impl Refusal {
    pub(crate) fn keep(code: ErrorCode, text: impl Into<String>) -> Refusal {
        Refusal {
            code,
            text: text.into(),
            close: false,
        }
    }

    pub(crate) fn close(code: ErrorCode, text: impl Into<String>) -> Refusal {
        Refusal {
            code,
            text: text.into(),
            close: true,
        }
    }

    pub(crate) fn busy() -> Refusal {
        Refusal::keep(ErrorCode::Busy, "server busy, try again in a moment")
    }

    pub(crate) fn internal() -> Refusal {
        Refusal::keep(ErrorCode::Internal, "server error, nothing was changed")
    }
}
