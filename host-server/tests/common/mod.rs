//! A small blocking test client that drives chatbox_core's session and messages directly.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::net::{IpAddr, SocketAddr};
use core::time::Duration;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use chatbox_core::encoding::base32_decode;
use chatbox_core::frame::MAX_WIRE_LEN;
use chatbox_core::otp::Totp;
use chatbox_core::proto::{ClientMsg, ErrorCode, ServerMsg};
use chatbox_core::session::{Input, Session};
use chatbox_server::{Config, ServerHandle};

pub const PASSWORD: &str = "correct horse battery";
pub const TIMEOUT: Duration = Duration::from_secs(10);

pub struct TestServer {
    pub dir: tempfile::TempDir,
    pub handle: Option<ServerHandle>,
    pub config: Config,
}

impl TestServer {
    pub fn start() -> TestServer {
        Self::start_with(|_| {})
    }

    pub fn start_with(f: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::for_tests(dir.path());
        // Most tests fail logins on purpose; the throttle has its own test.
        config.ip_failures_per_min = 1000;
        f(&mut config);
        let handle = chatbox_server::start(config.clone()).unwrap();
        TestServer {
            dir,
            handle: Some(handle),
            config,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.handle.as_ref().unwrap().local_addr()
    }

    pub fn restart(&mut self) {
        self.handle.take().unwrap().shutdown();
        let mut config = self.config.clone();
        config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        self.handle = Some(chatbox_server::start(config).unwrap());
    }

    pub fn stop(&mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown();
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.config.data_dir.clone()
    }

    pub fn log_dir(&self) -> PathBuf {
        self.config.log_dir.clone()
    }

    pub fn db(&self) -> rusqlite::Connection {
        let c = rusqlite::Connection::open(self.data_dir().join("chatbox.db")).unwrap();
        c.busy_timeout(Duration::from_secs(5)).unwrap();
        c
    }

    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.log_dir().join(name)).unwrap_or_default()
    }

    /// Waits until `f` holds (polling), failing after the timeout.
    pub fn wait_for(&self, what: &str, mut f: impl FnMut(&TestServer) -> bool) {
        let end = Instant::now() + TIMEOUT;
        while Instant::now() < end {
            if f(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("timed out waiting for: {what}");
    }

    /// Waits until log `file` records `n` events containing `needle`, counted by
    /// [`count_events`]: repeated lines are coalesced, the first whole and the rest as a count
    /// when their 10 s window ends, so this waits up to 20 s.
    pub fn wait_events(&self, file: &str, needle: &str, n: usize) {
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            let seen = count_events(&self.log(file), needle);
            if seen == n {
                return;
            }
            assert!(
                Instant::now() < end,
                "{file}: {seen} events with {needle:?}, expected {n}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An owned received record.
pub struct Rec(pub Vec<u8>);

impl Rec {
    pub fn msg(&self) -> ServerMsg<'_> {
        ServerMsg::decode(&self.0).expect("server sent an undecodable message")
    }

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

#[derive(Debug, PartialEq, Eq)]
pub enum RecvError {
    Closed,
    Timeout,
}

pub struct Client {
    pub stream: TcpStream,
    pub session: Session,
    buf: Vec<u8>,
    len: usize,
}

pub fn random32() -> [u8; 32] {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).unwrap();
    b
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        Client::over(TcpStream::connect(addr).unwrap())
    }

    /// Connects from the source address `from` (any of 127.0.0.0/8), to play a client on
    /// another address.
    pub fn connect_from(addr: SocketAddr, from: IpAddr) -> Client {
        Client::over(tcp_from(addr, from))
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

    pub fn send(&mut self, msg: &ClientMsg<'_>) {
        let mut pt = vec![0u8; 20_000];
        let n = msg.encode(&mut pt).unwrap();
        self.send_plain(&pt[..n]);
    }

    pub fn send_plain(&mut self, pt: &[u8]) {
        let mut out = vec![0u8; pt.len() + 64];
        let n = self.session.seal(pt, &mut out).unwrap();
        // The server may already have closed; tests check that separately.
        let _ = self.stream.write_all(&out[..n]);
    }

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

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn secret_of(uri: &str) -> Vec<u8> {
    let q = uri.split_once('?').unwrap().1;
    let b32 = q
        .split('&')
        .find_map(|kv| kv.strip_prefix("secret="))
        .unwrap();
    let mut out = [0u8; 64];
    base32_decode(b32, &mut out).unwrap().to_vec()
}

pub fn code_at_offset(secret: &[u8], offset: i64) -> String {
    let totp = Totp::sha1_default(secret).unwrap();
    let step = totp.step(now_secs()).checked_add_signed(offset).unwrap();
    totp.generate_at_step(step).unwrap().as_str().to_owned()
}

pub struct Account {
    pub user: String,
    pub uri: String,
    pub secret: Vec<u8>,
    pub scratch: Vec<String>,
}

/// Waits out the last 2 s of a TOTP step: a code computed for offset -1 turns into step -2
/// (refused) if a 30 s boundary passes before the server checks it.
pub fn avoid_step_edge() {
    let into_step = now_secs() % 30;
    if into_step >= 28 {
        std::thread::sleep(Duration::from_secs(30 - into_step));
    }
}

/// Registers and confirms with the code of the previous step, so the current and next steps
/// stay free for logins.
pub fn register(addr: SocketAddr, user: &str) -> Account {
    let mut c = Client::connect(addr);
    c.send(&ClientMsg::Register {
        user,
        password: PASSWORD,
    });
    let r = c.recv();
    let ServerMsg::RegisterStarted { uri } = r.msg() else {
        panic!("expected RegisterStarted, got {r:?}");
    };
    let uri = uri.to_owned();
    let secret = secret_of(&uri);
    avoid_step_edge();
    c.send(&ClientMsg::ConfirmTotp {
        code: &code_at_offset(&secret, -1),
    });
    let r = c.recv();
    let ServerMsg::Registered { scratch_codes } = r.msg() else {
        panic!("expected Registered, got {r:?}");
    };
    let scratch = scratch_codes.iter().map(str::to_owned).collect();
    c.send(&ClientMsg::Bye);
    Account {
        user: user.to_owned(),
        uri,
        secret,
        scratch,
    }
}

/// Logs in and consumes the lobby join (up to the last History record).
pub fn login_with(addr: SocketAddr, user: &str, otp: &str) -> Client {
    let mut c = Client::connect(addr);
    c.send(&ClientMsg::Login {
        user,
        password: PASSWORD,
        otp,
    });
    let r = c.recv();
    assert!(
        matches!(r.msg(), ServerMsg::LoginOk { .. }),
        "login failed: {r:?}"
    );
    c.recv_until("lobby history", |m| {
        matches!(m, ServerMsg::History { done: true, .. })
    });
    c
}

/// Logs in with the current TOTP code (`offset` 0) or a later one.
pub fn login(addr: SocketAddr, acc: &Account, offset: i64) -> Client {
    login_with(addr, &acc.user, &code_at_offset(&acc.secret, offset))
}

pub fn read_all_logs(dir: &Path) -> String {
    let mut all = String::new();
    for name in ["sql.log", "info.log", "credentials.log", "chat.log"] {
        all.push_str(&std::fs::read_to_string(dir.join(name)).unwrap_or_default());
    }
    all
}

/// How many events containing `needle` a log records, counting coalesced lines by their
/// count: `KIND: N more like this in the last 10 s (the last: LINE)` stands for N events and
/// `LINE (and N more like this since the last report)` for 1 + N.
pub fn count_events(log: &str, needle: &str) -> usize {
    log.lines()
        .map(|l| {
            if let Some((head, rest)) = l.split_once(" more like this in the last ") {
                let n = head
                    .rsplit(' ')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                let last = rest.split_once("(the last: ").map_or("", |(_, t)| t);
                if last.contains(needle) { n } else { 0 }
            } else if let Some((line, more)) = l.split_once(" (and ") {
                let n: usize = more
                    .split(' ')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                if line.contains(needle) { 1 + n } else { 0 }
            } else {
                usize::from(l.contains(needle))
            }
        })
        .sum()
}
