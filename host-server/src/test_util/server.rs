//! [`TestServer`]: `chatbox_server::start` on `Config::for_tests` in a temp dir.

use core::net::SocketAddr;
use core::time::Duration;
use std::path::PathBuf;
use std::time::Instant;

use super::TIMEOUT;
use super::logs::count_events;
use crate::invite::{CreateOpts, InviteAction};
use crate::{Config, ServerHandle};

/// An in-process server on 127.0.0.1 with its data and logs in a temp dir (removed on drop,
/// after the server shut down).
#[derive(Debug)]
pub struct TestServer {
    /// The temp dir holding `data/` and `log/`.
    pub dir: tempfile::TempDir,
    /// The running server (`None` after [`TestServer::stop`]).
    pub handle: Option<ServerHandle>,
    /// The configuration it runs with.
    pub config: Config,
    /// `127.0.0.1:PORT` as text, what the client's `--server` takes (updated by
    /// [`TestServer::restart`]).
    pub address: String,
}

impl TestServer {
    /// A server on the test configuration.
    pub fn start() -> TestServer {
        Self::start_with(|_| {})
    }

    /// A server on the test configuration with `f` applied first. Failed logins per address
    /// are raised to 1 000 a minute before `f` runs (most tests fail logins on purpose; the
    /// throttle's own tests set it back).
    pub fn start_with(f: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::for_tests(dir.path());
        config.ip_failures_per_min = 1000;
        f(&mut config);
        let handle = crate::start(config.clone()).unwrap();
        let address = handle.local_addr().to_string();
        assert!(address.starts_with("127.0.0.1:"), "{address}");
        TestServer {
            dir,
            handle: Some(handle),
            config,
            address,
        }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.handle.as_ref().unwrap().local_addr()
    }

    /// The server key's fingerprint (`SHA256:…`).
    pub fn fingerprint(&self) -> String {
        self.handle.as_ref().unwrap().fingerprint()
    }

    /// Shuts down and starts again on the same directories (on a new port).
    pub fn restart(&mut self) {
        self.handle.take().unwrap().shutdown();
        let mut config = self.config.clone();
        config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        let handle = crate::start(config).unwrap();
        self.address = handle.local_addr().to_string();
        self.handle = Some(handle);
    }

    /// Shuts the server down (idempotent).
    pub fn stop(&mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown();
        }
    }

    /// The data directory (server.key, chatbox.db).
    pub fn data_dir(&self) -> PathBuf {
        self.config.data_dir.clone()
    }

    /// The log directory.
    pub fn log_dir(&self) -> PathBuf {
        self.config.log_dir.clone()
    }

    /// The SQLite database, opened next to the running server (5 s busy timeout).
    pub fn db(&self) -> rusqlite::Connection {
        let c = rusqlite::Connection::open(self.data_dir().join("chatbox.db")).unwrap();
        c.busy_timeout(Duration::from_secs(5)).unwrap();
        c
    }

    /// The one value a one-row query returns (`SELECT COUNT(*) …`, a column of one row).
    pub fn scalar<T: rusqlite::types::FromSql>(&self, sql: &str) -> T {
        self.db()
            .query_row(sql, [], |r| r.get(0))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// The text of log file `name` (empty if it does not exist yet).
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

    /// `chatbox-server invite …` on this server's database (the server running); its output.
    pub fn invite_admin(&self, action: &InviteAction) -> String {
        let dir = self.data_dir();
        let db = self.config.database();
        let mut out = Vec::new();
        crate::invite::run_on(&dir, &db, action, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// A new invite link for this server (`uses` uses, role user, 1 hour).
    pub fn new_invite(&self, uses: u32) -> String {
        let addr = self.addr();
        let out = self.invite_admin(&InviteAction::Create {
            opts: CreateOpts {
                uses,
                expires: Duration::from_secs(3600),
                role: "user".into(),
                note: "test".into(),
                server: (addr.ip().to_string(), addr.port()),
            },
            qr: false,
        });
        out.lines().last().unwrap().to_owned()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}
