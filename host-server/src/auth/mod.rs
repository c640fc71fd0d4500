//! Accounts: registration with TOTP confirmation, login with password + code, throttling.
//!
//! These functions decide; the connection task sends what they return.

pub mod account;
pub mod failures;
pub mod invite;
pub mod login;
pub mod pool;
pub mod register;
pub mod source;
pub mod throttle;

use chatbox_core::proto::ErrorCode;

/// A refusal to send as `Error{code, text}`, closing the connection if `close`.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// Error code.
    pub code: ErrorCode,
    /// Text for the user (never secret, never more specific than it should be).
    pub text: String,
    /// Whether the server then closes the connection.
    pub close: bool,
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
