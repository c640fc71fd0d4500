//! The client's errors and the exit codes they map to.

use std::fmt;

use chatbox_core::proto::ErrorCode;

use crate::event::error_name;
use crate::known_servers::TrustError;

/// Exit codes, as documented in `--help`.
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// Bad usage, or a local problem (terminal, files, input ended early).
    pub const USAGE: u8 = 1;
    /// The server could not be reached, the handshake failed, or the connection was lost.
    pub const CONNECTION: u8 = 2;
    /// The server's key is not the one trusted for it.
    pub const KEY_MISMATCH: u8 = 3;
    /// Registration or login refused (name taken, bad password or code, invalid name…).
    pub const AUTH: u8 = 4;
    /// The server is busy or full; try again later.
    pub const BUSY: u8 = 5;
    /// `chat --plain`: the session ran to the end of input, but some lines were refused for
    /// good (by the server: too long, not permitted, no such user or room…; or by the client:
    /// too long to send at all). Every other line was delivered.
    pub const REFUSED: u8 = 6;
}

/// Everything that ends a client run early.
#[derive(Debug)]
pub enum ClientError {
    /// Bad arguments or input.
    Usage(String),
    /// A local I/O problem (terminal, stdin, files).
    Io(String),
    /// TCP connect failed or timed out.
    Unreachable {
        /// `host:port`.
        server: String,
        /// Why.
        reason: String,
    },
    /// The Noise handshake failed or timed out.
    Handshake(String),
    /// The established connection ended or broke.
    ConnectionLost(String),
    /// The server key is not trusted, or `known_servers` could not be used.
    Trust(TrustError),
    /// The server refused (an `Error` message during registration or login).
    Refused {
        /// Numeric code.
        code: u16,
        /// The server's text (sanitised).
        text: String,
    },
    /// The invite was refused before anything was sent: garbled, or missing for a server that
    /// registers by invite only (exit 4, like the server's `invite_invalid`).
    BadInvite(String),
    /// None of several addresses could be used (or reconnecting gave up).
    NoServer {
        /// What failed, e.g. `cannot reach any server`.
        context: String,
        /// Each address tried and why it failed (the latest failure), in list order.
        tried: Vec<(String, String)>,
        /// Every address answered busy or full.
        busy: bool,
    },
    /// `chat --plain` reached the end of input with `count` lines refused for good (each
    /// already reported on its own `error` line or on stderr).
    LinesRefused {
        /// How many.
        count: usize,
    },
}

impl ClientError {
    /// The process exit code for this error.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) | Self::Io(_) => exit::USAGE,
            Self::Unreachable { .. } | Self::Handshake(_) | Self::ConnectionLost(_) => {
                exit::CONNECTION
            }
            Self::NoServer { busy: true, .. } => exit::BUSY,
            Self::NoServer { busy: false, .. } => exit::CONNECTION,
            Self::Trust(TrustError::Mismatch { .. } | TrustError::LinkMismatch { .. }) => {
                exit::KEY_MISMATCH
            }
            Self::Trust(TrustError::Io(..)) => exit::USAGE,
            Self::BadInvite(_) => exit::AUTH,
            Self::Refused { code, .. } => match ErrorCode::from_u16(*code) {
                Some(ErrorCode::Busy | ErrorCode::ServerFull) => exit::BUSY,
                _ => exit::AUTH,
            },
            Self::LinesRefused { .. } => exit::REFUSED,
        }
    }

    /// Whether the server answered busy or full (worth trying another node or later).
    #[must_use]
    pub fn is_busy(&self) -> bool {
        self.is_refusal(ErrorCode::Busy) || self.is_refusal(ErrorCode::ServerFull)
    }

    /// Whether the server refused with this code.
    #[must_use]
    pub fn is_refusal(&self, code: ErrorCode) -> bool {
        matches!(self, Self::Refused { code: c, .. } if *c == code as u16)
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Usage(s) => f.write_str(s),
            Self::Io(s) => f.write_str(s),
            Self::Unreachable { server, reason } => {
                write!(f, "cannot reach server {server}: {reason}")
            }
            Self::Handshake(s) => write!(f, "secure handshake failed: {s}"),
            Self::ConnectionLost(s) => write!(f, "connection lost: {s}"),
            Self::Trust(e) => e.fmt(f),
            Self::BadInvite(s) => f.write_str(s),
            Self::NoServer { context, tried, .. } => {
                f.write_str(context)?;
                for (i, (addr, reason)) in tried.iter().enumerate() {
                    let sep = if i == 0 { ": " } else { "; " };
                    write!(f, "{sep}{addr}: {reason}")?;
                }
                Ok(())
            }
            Self::LinesRefused { count } => write!(
                f,
                "{count} line(s) refused for good (see the error lines); the others were delivered"
            ),
            Self::Refused { code, text } => {
                let name = error_name(*code);
                if text.is_empty() {
                    write!(f, "server refused: {name}")
                } else {
                    write!(f, "server refused: {text} ({name})")
                }
            }
        }
    }
}

impl core::error::Error for ClientError {}

impl From<TrustError> for ClientError {
    fn from(e: TrustError) -> Self {
        Self::Trust(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        let refused = |code: ErrorCode| ClientError::Refused {
            code: code as u16,
            text: String::new(),
        };
        let mismatch = ClientError::Trust(TrustError::Mismatch {
            server: "h:1".into(),
            expected: "a".into(),
            got: "b".into(),
            source: None,
        });
        let cases = [
            (ClientError::Usage("x".into()), exit::USAGE),
            (ClientError::Io("x".into()), exit::USAGE),
            (
                ClientError::Unreachable {
                    server: "h:1".into(),
                    reason: "refused".into(),
                },
                exit::CONNECTION,
            ),
            (ClientError::Handshake("x".into()), exit::CONNECTION),
            (ClientError::ConnectionLost("x".into()), exit::CONNECTION),
            (mismatch, exit::KEY_MISMATCH),
            (refused(ErrorCode::InvalidCredentials), exit::AUTH),
            (refused(ErrorCode::AlreadyRegistered), exit::AUTH),
            (refused(ErrorCode::InvalidCode), exit::AUTH),
            (refused(ErrorCode::Busy), exit::BUSY),
            (refused(ErrorCode::InviteInvalid), exit::AUTH),
            (ClientError::BadInvite("garbled".into()), exit::AUTH),
            (refused(ErrorCode::ServerFull), exit::BUSY),
            (ClientError::LinesRefused { count: 1 }, exit::REFUSED),
            (
                ClientError::NoServer {
                    context: "cannot reach any server".into(),
                    tried: vec![("a:1".into(), "refused".into())],
                    busy: false,
                },
                exit::CONNECTION,
            ),
            (
                ClientError::NoServer {
                    context: "cannot reach any server".into(),
                    tried: vec![("a:1".into(), "busy".into())],
                    busy: true,
                },
                exit::BUSY,
            ),
        ];
        for (err, code) in cases {
            assert_eq!(err.exit_code(), code, "{err}");
            assert!(!err.to_string().contains('\n'), "{err}");
        }
        let e = refused(ErrorCode::AlreadyRegistered);
        assert!(e.is_refusal(ErrorCode::AlreadyRegistered));
        assert!(e.to_string().contains("already_registered"));
    }
}
