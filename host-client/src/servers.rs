//! The list of server addresses (`--server A,B` or `--server A --server B`) and connecting to
//! the first one that answers.
//!
//! Every node of one cluster has the same server key, so trust on first use works per address
//! as before: each `host:port` gets its own line in `known_servers`, all with the same
//! fingerprint.

use core::fmt;
use core::time::Duration;

use chatbox_core::proto::ErrorCode;

use crate::conn::{CONNECT_TIMEOUT, Conn};
use crate::error::ClientError;
use crate::known_servers::Trust;

/// TCP connect timeout per address when there are several to try.
pub const FAILOVER_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Handshake timeout per address when there are several to try.
pub const FAILOVER_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Server addresses in the order given, without duplicates; never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerList(Vec<String>);

impl ServerList {
    /// Parses `host:port` items; each item may itself be a comma-separated list.
    pub fn parse<S: AsRef<str>>(items: &[S]) -> Result<ServerList, ClientError> {
        let mut list: Vec<String> = Vec::new();
        for item in items {
            for addr in item.as_ref().split(',') {
                let addr = addr.trim();
                if addr.is_empty() {
                    continue;
                }
                check_addr(addr)?;
                if !list.iter().any(|a| a == addr) {
                    list.push(addr.to_owned());
                }
            }
        }
        if list.is_empty() {
            return Err(ClientError::Usage(
                "--server needs at least one HOST:PORT".into(),
            ));
        }
        Ok(ServerList(list))
    }

    /// How many addresses.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Never true (kept for clippy's `len_without_is_empty`).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The addresses, in order.
    #[must_use]
    pub fn addrs(&self) -> &[String] {
        &self.0
    }

    /// Address `i` (modulo the length).
    #[must_use]
    pub fn get(&self, i: usize) -> &str {
        self.0
            .get(i % self.0.len().max(1))
            .map_or("", String::as_str)
    }

    /// Indices of every address once, starting at `start` and wrapping around.
    pub fn round_from(&self, start: usize) -> impl Iterator<Item = usize> + use<> {
        let n = self.0.len().max(1);
        (0..n).map(move |k| (start + k) % n)
    }

    /// `(TCP connect, handshake)` time limits per address: the single-server defaults for one
    /// address, short ones when there are others to try.
    #[must_use]
    pub fn timeouts(&self) -> (Duration, Duration) {
        if self.0.len() > 1 {
            (FAILOVER_CONNECT_TIMEOUT, FAILOVER_HANDSHAKE_TIMEOUT)
        } else {
            (CONNECT_TIMEOUT, CONNECT_TIMEOUT)
        }
    }
}

impl fmt::Display for ServerList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(","))
    }
}

fn check_addr(addr: &str) -> Result<(), ClientError> {
    let bad = || {
        ClientError::Usage(format!(
            "--server {addr:?} is not HOST:PORT (several: HOST:PORT,HOST:PORT)"
        ))
    };
    let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
    if host.is_empty() || host.chars().any(char::is_whitespace) || port.parse::<u16>().is_err() {
        return Err(bad());
    }
    Ok(())
}

/// Whether an error of one address should stop the search rather than move to the next
/// address: a server key that does not match (possible impersonation), a refused login (wrong
/// password or code, banned…) and local problems. Busy, full and internal errors of a node are
/// worth trying elsewhere.
#[must_use]
pub fn is_fatal(e: &ClientError) -> bool {
    !matches!(
        e,
        ClientError::Unreachable { .. }
            | ClientError::Handshake(_)
            | ClientError::ConnectionLost(_)
            | ClientError::NoServer { .. }
    ) && !e.is_busy()
        && !e.is_refusal(ErrorCode::Internal)
}

/// What each address said, for the error when none could be used.
#[derive(Debug, Default)]
pub struct Failures(Vec<(String, ClientError)>);

impl Failures {
    /// Notes that `addr` failed with `e` (only the latest failure per address is kept).
    pub fn push(&mut self, addr: &str, e: ClientError) {
        self.0.retain(|(a, _)| a != addr);
        self.0.push((addr.to_owned(), e));
    }

    /// The error to report: with one address, its own error (and exit code); else one line
    /// naming each address and why, after `context`.
    #[must_use]
    pub fn into_error(mut self, servers: &ServerList, context: &str) -> ClientError {
        if servers.len() == 1
            && self.0.len() == 1
            && context.is_empty()
            && let Some((_, e)) = self.0.pop()
        {
            return e;
        }
        // Keep the order of the list.
        let mut tried = Vec::new();
        for addr in servers.addrs() {
            if let Some((_, e)) = self.0.iter().find(|(a, _)| a == addr) {
                tried.push((addr.clone(), reason_of(e)));
            }
        }
        let busy = !self.0.is_empty() && self.0.iter().all(|(_, e)| e.is_busy());
        ClientError::NoServer {
            context: if context.is_empty() {
                "cannot reach any server".to_owned()
            } else {
                context.to_owned()
            },
            tried,
            busy,
        }
    }
}

/// The reason part of an error, without a repeated address.
fn reason_of(e: &ClientError) -> String {
    match e {
        ClientError::Unreachable { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}

/// Connects to the first address that completes the handshake (in the given order), e.g. to
/// register. Returns the connection and the index of its address.
pub async fn connect_any(
    servers: &ServerList,
    trust: &Trust,
) -> Result<(Conn, usize), ClientError> {
    let (tcp, handshake) = servers.timeouts();
    let mut failures = Failures::default();
    for i in servers.round_from(0) {
        let addr = servers.get(i);
        match Conn::connect_within(addr, trust, tcp, handshake).await {
            Ok(conn) => return Ok((conn, i)),
            Err(e) if is_fatal(&e) => return Err(e),
            Err(e) => failures.push(addr, e),
        }
    }
    Err(failures.into_error(servers, ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_repeats_and_rejects_garbage() {
        let one = ServerList::parse(&["127.0.0.1:6001"]).unwrap();
        assert_eq!(one.addrs(), ["127.0.0.1:6001"]);
        let many = ServerList::parse(&["a:1, b:2", "c:3", "a:1", "[::1]:4"]).unwrap();
        assert_eq!(many.addrs(), ["a:1", "b:2", "c:3", "[::1]:4"]);
        assert_eq!(many.to_string(), "a:1,b:2,c:3,[::1]:4");
        assert_eq!(many.get(5), "b:2");
        assert_eq!(many.round_from(2).collect::<Vec<_>>(), [2, 3, 0, 1]);
        for bad in ["", ",", "host", "host:", ":80", "h:99999", "h:x", "a b:1"] {
            assert!(
                matches!(ServerList::parse(&[bad]), Err(ClientError::Usage(_))),
                "{bad:?}"
            );
        }
        assert_eq!(one.timeouts(), (CONNECT_TIMEOUT, CONNECT_TIMEOUT));
        assert_eq!(
            many.timeouts(),
            (FAILOVER_CONNECT_TIMEOUT, FAILOVER_HANDSHAKE_TIMEOUT)
        );
    }

    #[test]
    fn failures_name_every_address_in_one_line() {
        let servers = ServerList::parse(&["a:1,b:2"]).unwrap();
        let mut f = Failures::default();
        f.push(
            "b:2",
            ClientError::Handshake("the server did not answer in time".into()),
        );
        f.push(
            "a:1",
            ClientError::Unreachable {
                server: "a:1".into(),
                reason: "refused".into(),
            },
        );
        let e = f.into_error(&servers, "");
        assert_eq!(
            e.to_string(),
            "cannot reach any server: a:1: refused; b:2: secure handshake failed: the server \
             did not answer in time"
        );
        assert_eq!(e.exit_code(), crate::error::exit::CONNECTION);
        let refused = |code: ErrorCode| ClientError::Refused {
            code: code as u16,
            text: String::new(),
        };
        assert!(is_fatal(&refused(ErrorCode::InvalidCredentials)));
        assert!(is_fatal(&refused(ErrorCode::Banned)));
        assert!(!is_fatal(&refused(ErrorCode::Busy)));
        assert!(!is_fatal(&refused(ErrorCode::Internal)));
        assert!(!is_fatal(&e));

        // One address: its own error, unchanged.
        let single = ServerList::parse(&["a:1"]).unwrap();
        let mut f = Failures::default();
        f.push(
            "a:1",
            ClientError::Unreachable {
                server: "a:1".into(),
                reason: "refused".into(),
            },
        );
        assert_eq!(
            f.into_error(&single, "").to_string(),
            "cannot reach server a:1: refused"
        );
    }
}
