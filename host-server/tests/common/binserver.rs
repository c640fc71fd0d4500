//! The real `chatbox-server` binary as a child process on 127.0.0.1 (for `kill -9`, stderr and
//! `/proc/<pid>/fd` and `/proc/<pid>/status`), used by the hostile, crash and soak suites.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::net::SocketAddr;
use core::time::Duration;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Instant;

/// A running server binary. Killed (SIGKILL) when dropped.
pub struct BinServer {
    pub child: Child,
    pub addr: SocketAddr,
    pub fingerprint: String,
    /// stderr, collected by a thread; read it with [`BinServer::stderr`] after the child ended.
    stderr: Option<std::thread::JoinHandle<String>>,
}

/// The binary to run: `CHATBOX_SERVER_BIN` (the soak script points it at a release build) or
/// the one cargo built for these tests.
pub fn server_bin() -> PathBuf {
    std::env::var_os("CHATBOX_SERVER_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_chatbox-server")),
        PathBuf::from,
    )
}

/// Runs `cmd` (an admin command, a tool) and returns its stdout; fails the test, showing
/// `what` and the command's stderr, unless it exits 0.
pub fn run_ok(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl BinServer {
    /// Starts `chatbox-server --listen 127.0.0.1:0 --data-dir D --log-dir L` with fast hashing
    /// (unless `extra` sets `--pbkdf2-iterations`) plus `extra` flags; waits for the listening line on stdout (10 s at most).
    pub fn start(data: &Path, log: &Path, extra: &[&str]) -> BinServer {
        Self::start_umask(None, data, log, extra)
    }

    /// [`BinServer::start`] with the process umask set first (`sh -c 'umask U; exec …'`), for
    /// checking file modes whatever the operator's umask.
    pub fn start_umask(umask: Option<&str>, data: &Path, log: &Path, extra: &[&str]) -> BinServer {
        let mut cmd = match umask {
            Some(u) => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(format!("umask {u}; exec \"$0\" \"$@\""))
                    .arg(server_bin());
                c
            }
            None => Command::new(server_bin()),
        };
        let mut child = cmd
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(data)
            .arg("--log-dir")
            .arg(log)
            .args(if extra.contains(&"--pbkdf2-iterations") {
                &[][..]
            } else {
                &["--pbkdf2-iterations", "10000"][..]
            })
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning chatbox-server");
        let stdout = child.stdout.take().unwrap();
        let mut stderr_pipe = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr_pipe.read_to_string(&mut s);
            s
        });
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let mut addr = None;
            let mut fp = None;
            for line in lines.by_ref() {
                let Ok(line) = line else { break };
                if let Some(a) = line.strip_prefix("ChatBox server listening on ") {
                    addr = a.trim().parse::<SocketAddr>().ok();
                }
                if let Some(f) = line.strip_prefix("server key fingerprint: ") {
                    fp = Some(f.trim().to_owned());
                }
                if let (Some(a), Some(f)) = (addr, fp.as_ref()) {
                    let _ = tx.send((a, f.clone()));
                    break;
                }
            }
            // Keep draining so the child never blocks on a full pipe.
            for _ in lines {}
        });
        let (addr, fingerprint) = match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(x) => x,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "server did not start; stderr: {}",
                    stderr.join().unwrap_or_default()
                );
            }
        };
        BinServer {
            child,
            addr,
            fingerprint,
            stderr: Some(stderr),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Open file descriptors of the server process.
    pub fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// Resident set size in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// Waits until the process has at most `n` fds (polling), up to `within`.
    pub fn wait_fds_at_most(&self, n: usize, within: Duration) -> usize {
        let end = Instant::now() + within;
        loop {
            let now = self.fds();
            if now <= n || Instant::now() >= end {
                return now;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends a signal (`HUP`, `TERM`, …) without waiting.
    pub fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(st.success(), "kill -{sig} failed");
    }

    /// `kill -9` and reap.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait for a clean exit (10 s at most, then SIGKILL). Returns the exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status();
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill9();
        None
    }

    /// Everything the server wrote on stderr (kills it first if it still runs).
    pub fn stderr(&mut self) -> String {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.kill9();
        }
        self.stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default()
    }
}

impl Drop for BinServer {
    fn drop(&mut self) {
        self.kill9();
    }
}
