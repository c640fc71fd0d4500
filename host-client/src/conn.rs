//! The connection: TCP plus `chatbox_core::session::Session`. The only module that touches the
//! socket.
//!
//! [`Conn::connect`] opens the TCP connection, runs the Noise `NX` handshake and checks the
//! server's static key (trust on first use, a pinned fingerprint or an invite link's key) as soon
//! as the server's handshake message has been read, before anything else is sent. Then [`Conn::send`] seals one `ClientMsg` per record and
//! [`Conn::recv`] opens records into owned [`ServerEvent`]s. `recv` is cancel-safe (its only
//! await is one socket read, and bytes are kept only after it returns), so a caller may race it
//! against keyboard input or a timer and send in between.

use core::time::Duration;

use chatbox_core::frame::{HEADER_LEN, MAX_PLAINTEXT_LEN, MAX_WIRE_LEN};
use chatbox_core::noise::fingerprint;
use chatbox_core::proto::{ClientMsg, ServerMsg};
use chatbox_core::session::{Event, Input, Session, SessionError};
use smol::future::FutureExt as _;
use smol::io::{AsyncReadExt as _, AsyncWriteExt as _};
use smol::net::TcpStream;

use crate::error::ClientError;
use crate::event::ServerEvent;
use crate::known_servers::{self, Outcome, Trust, TrustError};

/// Time allowed for TCP connect plus handshake.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// 32 bytes from the OS RNG.
pub fn random_bytes() -> Result<[u8; 32], ClientError> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| ClientError::Io(format!("no OS randomness: {e}")))?;
    Ok(b)
}

/// A random `u64` (ping tokens).
pub fn random_u64() -> Result<u64, ClientError> {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).map_err(|e| ClientError::Io(format!("no OS randomness: {e}")))?;
    Ok(u64::from_be_bytes(b))
}

/// Fails with `on_timeout` if `fut` takes longer than `limit`.
pub async fn timeout<T>(
    limit: Duration,
    on_timeout: impl FnOnce() -> ClientError,
    fut: impl Future<Output = Result<T, ClientError>>,
) -> Result<T, ClientError> {
    fut.or(async {
        smol::Timer::after(limit).await;
        Err(on_timeout())
    })
    .await
}

/// An established, authenticated-server connection.
#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
    session: Session,
    /// Received bytes not yet consumed: `rbuf[..filled]`.
    rbuf: Vec<u8>,
    filled: usize,
    /// Where outgoing records are built and sealed.
    wbuf: Vec<u8>,
    server: String,
    fingerprint: String,
    outcome: Outcome,
    by_link: bool,
}

impl Conn {
    /// Connects to `server` (`host:port`), runs the handshake and checks the server key.
    pub async fn connect(server: &str, trust: &Trust) -> Result<Conn, ClientError> {
        Self::connect_within(server, trust, CONNECT_TIMEOUT, CONNECT_TIMEOUT).await
    }

    /// [`Conn::connect`] with its own limits for the TCP connect and for the handshake.
    pub async fn connect_within(
        server: &str,
        trust: &Trust,
        tcp_timeout: Duration,
        handshake_timeout: Duration,
    ) -> Result<Conn, ClientError> {
        let stream = timeout(
            tcp_timeout,
            || ClientError::Unreachable {
                server: server.to_owned(),
                reason: "timed out".into(),
            },
            async {
                TcpStream::connect(server)
                    .await
                    .map_err(|e| ClientError::Unreachable {
                        server: server.to_owned(),
                        reason: e.to_string(),
                    })
            },
        )
        .await?;
        let _ = stream.set_nodelay(true);
        let mut conn = Conn {
            stream,
            session: Session::client(random_bytes()?),
            rbuf: vec![0; 2 * MAX_WIRE_LEN],
            filled: 0,
            wbuf: vec![0; MAX_WIRE_LEN],
            server: server.to_owned(),
            fingerprint: String::new(),
            outcome: Outcome::Known,
            by_link: matches!(trust, Trust::Link { .. }),
        };
        timeout(
            handshake_timeout,
            || ClientError::Handshake("the server did not answer in time".into()),
            conn.handshake(trust),
        )
        .await?;
        Ok(conn)
    }

    /// Runs the handshake and checks the server's key as soon as message 2 has been read: a
    /// pinned key (`--server-key`, an invite link) or `known_servers`. On a mismatch nothing at
    /// all has been sent beyond message 1 (no registration, no invite token, no password).
    async fn handshake(&mut self, trust: &Trust) -> Result<(), ClientError> {
        let hs = |e: SessionError| ClientError::Handshake(e.to_string());
        let n = self.session.poll_transmit(&mut self.wbuf).map_err(hs)?;
        let hello = self.wbuf.get(..n).unwrap_or_default();
        self.stream
            .write_all(hello)
            .await
            .map_err(|e| ClientError::Handshake(e.to_string()))?;
        loop {
            let filled = self.filled;
            let input = self
                .session
                .handle_input(self.rbuf.get_mut(..filled).unwrap_or_default())
                .map_err(hs)?;
            match input {
                Input::Incomplete { .. } => {
                    self.read_more()
                        .await
                        .map_err(|e| ClientError::Handshake(e.to_string()))?;
                }
                Input::Handshake { consumed } => {
                    self.discard(consumed);
                    break;
                }
                Input::Record { .. } => {
                    return Err(ClientError::Handshake("record before handshake".into()));
                }
            }
        }
        if self.session.poll_event() != Some(Event::Established) {
            return Err(ClientError::Handshake("handshake did not complete".into()));
        }
        let key = self
            .session
            .remote_static()
            .ok_or_else(|| ClientError::Handshake("no server key".into()))?;
        self.fingerprint = fingerprint(key).as_str().to_owned();
        if let Trust::Link { key: pinned, .. } = trust {
            // The link's digest against the key itself, with core's check (constant time).
            let digest = chatbox_core::link::parse_fingerprint(pinned)
                .map_err(|e| ClientError::Usage(format!("the link's key: {e}")))?;
            if !chatbox_core::link::key_matches(&digest, key) {
                return Err(ClientError::Trust(TrustError::LinkMismatch {
                    server: self.server.clone(),
                    expected: pinned.clone(),
                    got: self.fingerprint.clone(),
                }));
            }
        }
        let check = known_servers::check(trust, &self.server, &self.fingerprint)?;
        let file = match trust {
            Trust::File(path) | Trust::Link { file: path, .. } => Some(path),
            Trust::Pinned(_) => None,
        };
        for line in &check.skipped {
            if let Some(path) = file {
                eprintln!(
                    "warning: {} line {line} is not `host:port SHA256:<base64>`; ignored",
                    path.display()
                );
            }
        }
        for note in &check.tightened {
            eprintln!("note: {note} (private: the server keys you trust)");
        }
        self.outcome = check.outcome;
        Ok(())
    }

    /// Drops the first `n` received bytes.
    fn discard(&mut self, n: usize) {
        let n = n.min(self.filled);
        self.rbuf.copy_within(n..self.filled, 0);
        self.filled -= n;
    }

    /// One socket read into the buffer's free space (cancel-safe).
    async fn read_more(&mut self) -> Result<(), ClientError> {
        let free = self.rbuf.get_mut(self.filled..).unwrap_or_default();
        if free.is_empty() {
            return Err(ClientError::ConnectionLost("receive buffer full".into()));
        }
        match self.stream.read(free).await {
            Ok(0) => Err(ClientError::ConnectionLost(
                "the server closed the connection".into(),
            )),
            Ok(n) => {
                self.filled += n;
                Ok(())
            }
            Err(e) => Err(ClientError::ConnectionLost(e.to_string())),
        }
    }

    /// The next message from the server.
    pub async fn recv(&mut self) -> Result<ServerEvent, ClientError> {
        loop {
            if self.filled > 0 {
                let filled = self.filled;
                let input = self
                    .session
                    .handle_input(self.rbuf.get_mut(..filled).unwrap_or_default())
                    .map_err(|e| ClientError::ConnectionLost(e.to_string()))?;
                match input {
                    Input::Incomplete { .. } => {}
                    Input::Record {
                        consumed,
                        plaintext,
                    } => {
                        let event = match ServerMsg::decode(plaintext) {
                            Ok(msg) => ServerEvent::from(&msg),
                            Err(_) => ServerEvent::Unknown {
                                tag: plaintext.first().copied().unwrap_or(0),
                            },
                        };
                        self.discard(consumed);
                        return Ok(event);
                    }
                    Input::Handshake { .. } => {
                        return Err(ClientError::ConnectionLost(
                            "unexpected handshake message".into(),
                        ));
                    }
                }
            }
            self.read_more().await?;
        }
    }

    /// Seals and sends one message.
    pub async fn send(&mut self, msg: &ClientMsg<'_>) -> Result<(), ClientError> {
        let body = self
            .wbuf
            .get_mut(HEADER_LEN..HEADER_LEN + MAX_PLAINTEXT_LEN)
            .ok_or_else(|| ClientError::Io("send buffer too small".into()))?;
        let len = msg
            .encode(body)
            .map_err(|e| ClientError::Usage(format!("cannot send that: {e}")))?;
        let total = self
            .session
            .seal_in_place(&mut self.wbuf, len)
            .map_err(|e| ClientError::ConnectionLost(e.to_string()))?;
        let frame = self.wbuf.get(..total).unwrap_or_default();
        self.stream
            .write_all(frame)
            .await
            .map_err(|e| ClientError::ConnectionLost(e.to_string()))
    }

    /// `host:port` as given.
    #[must_use]
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The server key's fingerprint (`SHA256:…`).
    #[must_use]
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Whether the key was checked against an invite link's key.
    #[must_use]
    pub fn pinned_by_link(&self) -> bool {
        self.by_link
    }

    /// How the key was trusted.
    #[must_use]
    pub fn trust_outcome(&self) -> &Outcome {
        &self.outcome
    }

    /// Key epochs `(send, receive)`: records sealed and opened so far.
    #[must_use]
    pub fn epochs(&self) -> (u64, u64) {
        self.session.epochs()
    }
}

/// Says how the server key was trusted, the first time.
pub fn note_trust(conn: &Conn) {
    if let (Outcome::Recorded(path), true) = (conn.trust_outcome(), conn.pinned_by_link()) {
        eprintln!(
            "Server {}: key {} matches the invite link; recorded in {}",
            conn.server(),
            conn.fingerprint(),
            path.display()
        );
    } else if let Outcome::Recorded(path) = conn.trust_outcome() {
        eprintln!(
            "New server {}: key {} recorded in {}",
            conn.server(),
            conn.fingerprint(),
            path.display()
        );
    }
}
