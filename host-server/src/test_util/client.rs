//! [`Client`]: a blocking test client over a real socket, `chatbox_core::session` inside.

use core::net::{IpAddr, SocketAddr};
use core::time::Duration;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Instant;

use chatbox_core::frame::MAX_WIRE_LEN;
use chatbox_core::proto::{ClientMsg, ErrorCode, ServerMsg};
use chatbox_core::session::{Input, Session};

use super::TIMEOUT;

/// An owned received record.
pub struct Rec(pub Vec<u8>);

impl Rec {
    /// The decoded message (panics if the server sent something undecodable).
    pub fn msg(&self) -> ServerMsg<'_> {
        ServerMsg::decode(&self.0).expect("server sent an undecodable message")
    }

    /// The code of an `Error` message, `None` for any other message.
    pub fn error_code(&self) -> Option<u16> {
        match self.msg() {
            ServerMsg::Error { code, .. } => Some(code),
            _ => None,
        }
    }
}

impl core::fmt::Debug for Rec {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:?}", self.msg())
    }
}

/// Why [`Client::try_recv`] returned no record.
#[derive(Debug, PartialEq, Eq)]
pub enum RecvError {
    /// The server closed the connection (or it failed).
    Closed,
    /// Nothing arrived in time.
    Timeout,
}

/// A connected, handshaken protocol client (blocking; every read has a timeout).
#[derive(Debug)]
pub struct Client {
    /// The socket (tests write raw bytes to it too).
    pub stream: TcpStream,
    /// The established session.
    pub session: Session,
    buf: Vec<u8>,
    len: usize,
}

/// 32 random bytes (a session seed, a name suffix).
pub fn random32() -> [u8; 32] {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).unwrap();
    b
}

impl Client {
    /// Connects to `addr` and completes the handshake.
    pub fn connect(addr: SocketAddr) -> Client {
        Client::over(TcpStream::connect(addr).unwrap())
    }

    /// Connects from the source address `from` (any of 127.0.0.0/8), to play a client on
    /// another address.
    pub fn connect_from(addr: SocketAddr, from: IpAddr) -> Client {
        Client::over(tcp_from(addr, from))
    }

    /// Connects with the socket's receive buffer set to `bytes` before the connection exists,
    /// which fixes the TCP window (no autotuning to megabytes): a client that stops reading
    /// then fills the server's side after a few kilobytes, however fast the machine is.
    pub fn connect_with_recv_buffer(addr: SocketAddr, bytes: usize) -> Client {
        let domain = socket2::Domain::for_address(addr);
        let sock = socket2::Socket::new(domain, socket2::Type::STREAM, None).unwrap();
        sock.set_recv_buffer_size(bytes).unwrap();
        sock.connect_timeout(&addr.into(), TIMEOUT).unwrap();
        Client::over(sock.into())
    }

    /// Handshakes over an already connected stream (e.g. one bound to another source address).
    pub fn over(stream: TcpStream) -> Client {
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        let mut c = Client {
            stream,
            session: Session::client(random32()),
            buf: vec![0; MAX_WIRE_LEN * 2],
            len: 0,
        };
        let mut out = [0u8; 128];
        let n = c.session.poll_transmit(&mut out).unwrap();
        c.stream.write_all(&out[..n]).unwrap();
        loop {
            c.fill().expect("handshake reply");
            match c.session.handle_input(&mut c.buf[..c.len]).unwrap() {
                Input::Incomplete { .. } => continue,
                Input::Handshake { consumed } => {
                    c.buf.copy_within(consumed..c.len, 0);
                    c.len -= consumed;
                    break;
                }
                Input::Record { .. } => panic!("record before handshake end"),
            }
        }
        assert!(c.session.is_established());
        c
    }

    fn fill(&mut self) -> Result<(), RecvError> {
        match self.stream.read(&mut self.buf[self.len..]) {
            Ok(0) => Err(RecvError::Closed),
            Ok(n) => {
                self.len += n;
                Ok(())
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                Err(RecvError::Timeout)
            }
            Err(_) => Err(RecvError::Closed),
        }
    }

    /// Encodes, seals and writes `msg` (a write error is ignored: the server may have closed).
    pub fn send(&mut self, msg: &ClientMsg<'_>) {
        let mut pt = vec![0u8; 20_000];
        let n = msg.encode(&mut pt).unwrap();
        self.send_plain(&pt[..n]);
    }

    /// `msg` encoded and sealed as the next record, without sending it (to drop, reorder,
    /// replay, corrupt or batch it).
    pub fn sealed(&mut self, msg: &ClientMsg<'_>) -> Vec<u8> {
        let mut pt = vec![0u8; 20_000];
        let n = msg.encode(&mut pt).unwrap();
        let mut out = vec![0u8; n + 64];
        let len = self.session.seal(&pt[..n], &mut out).unwrap();
        out.truncate(len);
        out
    }

    /// Sends a `Login` and returns the answer and the time from sending to the answer.
    pub fn timed_login(&mut self, user: &str, password: &str, otp: &str) -> (Rec, Duration) {
        let t = Instant::now();
        self.send(&ClientMsg::Login {
            user,
            password,
            otp,
        });
        let r = self.recv();
        (r, t.elapsed())
    }

    /// Seals and writes the plaintext `pt` as one record.
    pub fn send_plain(&mut self, pt: &[u8]) {
        let mut out = vec![0u8; pt.len() + 64];
        let n = self.session.seal(pt, &mut out).unwrap();
        // The server may already have closed; tests check that separately.
        let _ = self.stream.write_all(&out[..n]);
    }

    /// The next record, waiting up to `timeout`.
    pub fn try_recv(&mut self, timeout: Duration) -> Result<Rec, RecvError> {
        self.stream.set_read_timeout(Some(timeout)).unwrap();
        loop {
            if self.len > 0 {
                match self.session.handle_input(&mut self.buf[..self.len]) {
                    Ok(Input::Record {
                        consumed,
                        plaintext,
                    }) => {
                        let rec = Rec(plaintext.to_vec());
                        self.buf.copy_within(consumed..self.len, 0);
                        self.len -= consumed;
                        return Ok(rec);
                    }
                    Ok(Input::Incomplete { .. }) => {}
                    Ok(Input::Handshake { .. }) => panic!("unexpected handshake"),
                    Err(e) => panic!("bad record from server: {e}"),
                }
            }
            self.fill()?;
        }
    }

    /// The next record (panics after [`TIMEOUT`]).
    pub fn recv(&mut self) -> Rec {
        self.try_recv(TIMEOUT)
            .expect("expected a message from the server")
    }

    /// Receives until `pred` holds; returns that record.
    pub fn recv_until(&mut self, what: &str, mut pred: impl FnMut(&ServerMsg<'_>) -> bool) -> Rec {
        let end = Instant::now() + TIMEOUT;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "timed out waiting for {what}");
            match self.try_recv(left) {
                Ok(r) => {
                    if pred(&r.msg()) {
                        return r;
                    }
                }
                Err(e) => panic!("waiting for {what}: {e:?}"),
            }
        }
    }

    /// Receives until an `Error` and checks its code.
    pub fn expect_error(&mut self, code: ErrorCode) -> Rec {
        let r = self.recv_until("an error", |m| matches!(m, ServerMsg::Error { .. }));
        assert_eq!(r.error_code(), Some(code as u16), "got {r:?}");
        r
    }

    /// The server closes the connection (a Bye or error before is fine).
    pub fn expect_closed(&mut self) {
        let end = Instant::now() + TIMEOUT;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "connection was not closed");
            match self.try_recv(left) {
                Ok(_) => {}
                Err(RecvError::Closed) => return,
                Err(RecvError::Timeout) => panic!("connection was not closed"),
            }
        }
    }

    /// Says `text` in `room` and waits for its echo (the acknowledgement).
    pub fn say(&mut self, room: &str, text: &str) -> Rec {
        self.send(&ClientMsg::Say { room, text });
        self.recv_until(
            "echo",
            |m| matches!(m, ServerMsg::Message(x) if x.target == room && x.text == text),
        )
    }

    /// Sends `ChangePassword` and returns the answer: `PasswordChanged` or an `Error`.
    pub fn change_password(&mut self, password: &str, otp: &str, new_password: &str) -> Rec {
        self.send(&ClientMsg::ChangePassword {
            password,
            otp,
            new_password,
        });
        self.recv_until("password change answer", |m| {
            matches!(
                m,
                ServerMsg::PasswordChanged { .. } | ServerMsg::Error { .. }
            )
        })
    }

    /// Waits (at most `within`) for the server's `Bye` and the end of the connection; returns
    /// the Bye's reason and how long it took. Other records before are skipped; a close
    /// without a Bye fails.
    pub fn bye_within(&mut self, within: Duration) -> (String, Duration) {
        let t0 = Instant::now();
        let mut reason = None;
        loop {
            let left = within.saturating_sub(t0.elapsed());
            assert!(
                !left.is_zero(),
                "no Bye/close within {within:?} (Bye: {reason:?})"
            );
            match self.try_recv(left) {
                Ok(r) => {
                    if let ServerMsg::Bye { reason: t } = r.msg() {
                        reason = Some(t.to_owned());
                    }
                }
                Err(RecvError::Closed) => break,
                Err(RecvError::Timeout) => {}
            }
        }
        (reason.expect("closed without a Bye"), t0.elapsed())
    }

    /// Pings with `token` and waits for the matching pong.
    pub fn ping(&mut self, token: u64) {
        self.send(&ClientMsg::Ping { token });
        self.recv_until(
            "pong",
            |m| matches!(m, ServerMsg::Pong { token: t } if *t == token),
        );
    }
}

/// A TCP connection to `addr` from the source address `from` (port chosen by the system).
pub fn tcp_from(addr: SocketAddr, from: IpAddr) -> TcpStream {
    let domain = socket2::Domain::for_address(addr);
    let sock = socket2::Socket::new(domain, socket2::Type::STREAM, None).unwrap();
    sock.bind(&SocketAddr::new(from, 0).into()).unwrap();
    sock.connect_timeout(&addr.into(), TIMEOUT).unwrap();
    sock.into()
}
