//! The fixture (a server with short timeouts and an honest pair chatting in #lobby, snapshots
//! of the stored rows) and raw-socket helpers. Each family uses its part.

use core::net::SocketAddr;
use core::time::Duration;
use std::io::Read;
use std::net::TcpStream;
use std::time::Instant;

use chatbox_core::proto::{ClientMsg, ServerMsg};
use chatbox_server::Config;
use chatbox_server::test_util::*;
use rusqlite::OpenFlags;
use rusqlite::types::Value;

// ---------------------------------------------------------------------------------------------
// Fixture: a server with short timeouts and an honest pair chatting in #lobby.

pub fn quick(c: &mut Config) {
    c.handshake_timeout = Duration::from_millis(600);
    c.login_timeout = Duration::from_millis(2500);
    c.idle_timeout = Duration::from_secs(30);
    c.write_timeout = Duration::from_secs(1);
}

pub struct Room {
    pub s: TestServer,
    pub alice: Account,
    pub ca: Client,
    pub cb: Client,
    pub said: u32,
}

impl Room {
    pub fn new() -> Room {
        Room::with(|_| {})
    }

    pub fn with(f: impl FnOnce(&mut Config)) -> Room {
        let s = TestServer::start_with(|c| {
            quick(c);
            f(c);
        });
        let alice = register(s.addr(), "alice");
        let bob = register(s.addr(), "bob");
        let ca = login(s.addr(), &alice, 0);
        let cb = login(s.addr(), &bob, 0);
        let mut room = Room {
            s,
            alice,
            ca,
            cb,
            said: 0,
        };
        room.honest();
        room
    }

    pub fn addr(&self) -> SocketAddr {
        self.s.addr()
    }

    /// Alice says a line; her echo (the acknowledgement) and Bob's copy arrive; Bob answers
    /// privately and Alice gets it. Texts start with `honest-` so snapshots can tell them apart.
    pub fn honest(&mut self) {
        self.said += 1;
        let text = format!("honest-{}", self.said);
        self.ca.send(&ClientMsg::Say {
            room: "#lobby",
            text: &text,
        });
        for c in [&mut self.ca, &mut self.cb] {
            c.recv_until(
                "honest line",
                |m| matches!(m, ServerMsg::Message(cm) if cm.text == text),
            );
        }
        let reply = format!("honest-reply-{}", self.said);
        self.cb.send(&ClientMsg::Private {
            to: "alice",
            text: &reply,
        });
        self.ca.recv_until(
            "honest reply",
            |m| matches!(m, ServerMsg::Message(cm) if cm.text == reply),
        );
        // Keep both idle timers fresh.
        self.cb.ping(u64::from(self.said));
    }

    pub fn snapshot(&self) -> Snapshot {
        snapshot(&self.s.data_dir().join("chatbox.db"))
    }
}

impl Drop for Room {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let info = self.s.log("info.log");
            let tail: Vec<&str> = info.lines().rev().take(25).collect();
            eprintln!("--- info.log (last lines, newest first) ---");
            for l in tail {
                eprintln!("{l}");
            }
        }
    }
}

/// REGISTERED rows (the columns a login does not touch) and MESSAGES rows (all columns)
/// except the honest pair's.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub registered: Vec<String>,
    pub messages: Vec<String>,
}

pub fn rows(c: &rusqlite::Connection, sql: &str) -> Vec<String> {
    let mut st = c.prepare(sql).unwrap();
    let n = st.column_count();
    st.query_map([], |r| {
        let mut line = String::new();
        for i in 0..n {
            let v: Value = r.get(i)?;
            line.push_str(&format!("{v:?}|"));
        }
        Ok(line)
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

pub fn snapshot(db: &std::path::Path) -> Snapshot {
    let c = rusqlite::Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .unwrap();
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    Snapshot {
        // Not ip_port_last, online, totp_last_step: an honest login changes those.
        registered: rows(
            &c,
            "SELECT User, password, statut, totp_sealed, role, failures, locked_until, created,
             pending_reg FROM REGISTERED ORDER BY User",
        ),
        messages: rows(
            &c,
            "SELECT * FROM MESSAGES WHERE text NOT LIKE 'honest-%' ORDER BY id",
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Raw-socket helpers.

pub fn raw_connect(addr: SocketAddr) -> TcpStream {
    let t = TcpStream::connect(addr).unwrap();
    t.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    t
}

/// Waits until the peer closes (EOF or reset); returns how long it took, or None after `max`.
pub fn closed_within(t: &mut TcpStream, max: Duration) -> Option<Duration> {
    let start = Instant::now();
    t.set_read_timeout(Some(max)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match t.read(&mut buf) {
            Ok(0) => return Some(start.elapsed()),
            Ok(_) => {
                if start.elapsed() > max {
                    return None;
                }
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return None;
            }
            Err(_) => return Some(start.elapsed()),
        }
    }
}

pub fn assert_closed(c: &mut Client, what: &str) {
    assert!(
        closed_within(&mut c.stream, Duration::from_secs(5)).is_some(),
        "{what}: the server kept the connection"
    );
}

/// Deterministic pseudo-random bytes (xorshift), so a failure can be replayed.
pub fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[3]
        })
        .collect()
}
