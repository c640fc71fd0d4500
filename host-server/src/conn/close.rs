//! Why a connection ended: one typed reason, written to info.log through its `Display`, whose
//! spellings are relied on by operators' log checks (keep them byte for byte).

use core::fmt;

use chatbox_core::proto::{ErrorCode, ProtoError};
use chatbox_core::session::SessionError;

/// Why a connection ended (info.log: `connection N closed from ADDR (…): REASON`).
#[derive(Debug)]
pub(crate) enum CloseReason {
    /// The peer closed its side.
    PeerClosed,
    /// Reading the socket failed.
    Read(std::io::Error),
    /// Writing the socket failed.
    Write(std::io::Error),
    /// The write did not finish within the write timeout.
    WriteTimeout,
    /// The outbound queue overflowed: cut off as a slow reader.
    SlowReader,
    /// Bytes that are not the protocol.
    Protocol(SessionError),
    /// The handshake's answer could not be produced.
    Handshake(SessionError),
    /// A full frame's worth of bytes without a frame.
    ReadBufferFull,
    /// A record could not be sealed.
    Seal(SessionError),
    /// A message could not be encoded.
    Encode(ProtoError),
    /// The server closed it (a kick, an administrator, a revoked session, shutdown).
    ByServer,
    /// Evicted to make room for another connection not logged in.
    Evicted,
    /// The handshake did not finish in time.
    HandshakeTimeout,
    /// The registration was not confirmed in time.
    RegistrationTimeout,
    /// Idle, or not logged in in time.
    Timeout,
    /// The client said `Bye`.
    ClientBye,
    /// Over a connection limit (or shutting down): refused after the handshake.
    Refused,
    /// Over the rate limit too often.
    RateLimit,
    /// Closed after answering an error that ends the connection.
    AfterError(ErrorCode),
    /// An administrator's change raced the login: closed with this `Bye` reason.
    RacedLogin(&'static str),
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::PeerClosed => f.write_str("peer closed the connection"),
            CloseReason::Read(e) => write!(f, "read error: {e}"),
            CloseReason::Write(e) => write!(f, "write error: {e}"),
            CloseReason::WriteTimeout => f.write_str("write timeout (slow reader)"),
            CloseReason::SlowReader => {
                f.write_str("disconnected: outbound queue full (slow reader)")
            }
            CloseReason::Protocol(e) => write!(f, "protocol error: {e}"),
            CloseReason::Handshake(e) => write!(f, "handshake: {e}"),
            CloseReason::ReadBufferFull => f.write_str("read buffer full"),
            CloseReason::Seal(e) => write!(f, "seal failed: {e}"),
            CloseReason::Encode(e) => write!(f, "encode failed: {e}"),
            CloseReason::ByServer => f.write_str("closed by the server"),
            CloseReason::Evicted => f.write_str("evicted: too many connections not logged in"),
            CloseReason::HandshakeTimeout => f.write_str("handshake timeout"),
            CloseReason::RegistrationTimeout => f.write_str("registration not confirmed in time"),
            CloseReason::Timeout => f.write_str("timeout"),
            CloseReason::ClientBye => f.write_str("client said bye"),
            CloseReason::Refused => f.write_str("refused: connection limit"),
            CloseReason::RateLimit => f.write_str("rate limit exceeded"),
            CloseReason::AfterError(code) => write!(f, "closed after error {}", code.name()),
            CloseReason::RacedLogin(bye) => write!(f, "{bye} (during login)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::CloseReason;
    use chatbox_core::proto::ErrorCode;

    #[test]
    fn reasons_keep_their_info_log_spellings() {
        let io = || std::io::Error::new(std::io::ErrorKind::BrokenPipe, "gone");
        for (r, want) in [
            (CloseReason::PeerClosed, "peer closed the connection"),
            (CloseReason::Read(io()), "read error: gone"),
            (CloseReason::Write(io()), "write error: gone"),
            (CloseReason::WriteTimeout, "write timeout (slow reader)"),
            (
                CloseReason::SlowReader,
                "disconnected: outbound queue full (slow reader)",
            ),
            (CloseReason::ReadBufferFull, "read buffer full"),
            (CloseReason::ByServer, "closed by the server"),
            (
                CloseReason::Evicted,
                "evicted: too many connections not logged in",
            ),
            (CloseReason::HandshakeTimeout, "handshake timeout"),
            (
                CloseReason::RegistrationTimeout,
                "registration not confirmed in time",
            ),
            (CloseReason::Timeout, "timeout"),
            (CloseReason::ClientBye, "client said bye"),
            (CloseReason::Refused, "refused: connection limit"),
            (CloseReason::RateLimit, "rate limit exceeded"),
            (
                CloseReason::AfterError(ErrorCode::InvalidCredentials),
                "closed after error invalid_credentials",
            ),
            (
                CloseReason::RacedLogin("account locked"),
                "account locked (during login)",
            ),
        ] {
            assert_eq!(r.to_string(), want);
        }
    }
}
