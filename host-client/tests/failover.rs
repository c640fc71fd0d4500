//! Several server addresses and reconnecting, with the real client binary over real TCP on
//! 127.0.0.1: a dead address is skipped, all-dead addresses are listed, and a server killed
//! with SIGKILL and started again on the same port (same data dir) gets the client back —
//! logged in again with a code computed from `CHATBOX_TOTP_SECRET`, in its rooms again, with
//! the lines typed during the outage and the line sent just before the kill delivered exactly
//! once. A `Bye` is not a reason to reconnect; a refused login on reconnect is
//! final (exit 4).
//!
//! The killable server is this test binary started again with [`CHILD_ENV`] set (it then runs
//! `chatbox_server::start` in that child process), or the `chatbox-server` binary named by
//! `CHATBOX_SERVER_BIN`.

mod common;

use core::time::Duration;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use common::{Client, DEADLINE, TestServer, register_with_step};

/// Set in the environment of a child started to be a server: `ADDR DIR`.
const CHILD_ENV: &str = "CHATBOX_CLIENT_TEST_SERVER";

/// Not a test of its own: in a child started by [`KillableServer`] it runs a server until it
/// is killed; in a normal test run it returns at once.
#[test]
fn server_process() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (addr, dir) = spec.split_once(' ').expect("ADDR DIR");
    let mut config = chatbox_server::Config::for_tests(Path::new(dir));
    config.listen = addr.parse().expect("listen address");
    let handle = chatbox_server::start(config).expect("server start");
    println!("listening on {}", handle.local_addr());
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// A free port on 127.0.0.1 (nothing listens on it when this returns).
fn free_addr() -> String {
    let l = TcpListener::bind("127.0.0.1:0").expect("test setup");
    l.local_addr().expect("test setup").to_string()
}

/// A server in a child process on a fixed address, that can be killed and started again.
struct KillableServer {
    addr: String,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl KillableServer {
    fn start() -> KillableServer {
        let mut s = KillableServer {
            addr: free_addr(),
            dir: tempfile::tempdir().expect("test setup"),
            child: None,
        };
        s.restart();
        s
    }

    fn spawn(&self) -> Child {
        let (data, log) = (self.dir.path().join("data"), self.dir.path().join("log"));
        let mut cmd = match std::env::var_os("CHATBOX_SERVER_BIN") {
            Some(bin) => {
                let mut c = Command::new(bin);
                c.arg("--listen")
                    .arg(&self.addr)
                    .arg("--data-dir")
                    .arg(data)
                    .arg("--log-dir")
                    .arg(log)
                    .args(["--pbkdf2-iterations", "10000"]);
                c
            }
            None => {
                let mut c = Command::new(std::env::current_exe().expect("test setup"));
                c.args([
                    "server_process",
                    "--exact",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(
                    CHILD_ENV,
                    format!("{} {}", self.addr, self.dir.path().display()),
                );
                c
            }
        };
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawning the server")
    }

    /// (Re)starts the server on the same address and data dir; waits until it accepts.
    fn restart(&mut self) {
        let end = Instant::now() + DEADLINE;
        let mut child = self.spawn();
        loop {
            if TcpStream::connect(&self.addr).is_ok() {
                self.child = Some(child);
                return;
            }
            if child.try_wait().expect("test setup").is_some() {
                // Could not bind yet (the old sockets are going away): try again.
                child = self.spawn();
            }
            assert!(
                Instant::now() < end,
                "server on {} did not start",
                self.addr
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: no `Bye`, no flush, the sockets just close.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().expect("kill");
            c.wait().expect("wait");
        }
    }
}

impl Drop for KillableServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits, if needed, so that at least 4 s of the current TOTP step are left: the tests confirm
/// registrations with the previous step's code and must not cross a step boundary meanwhile.
fn away_from_step_end() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("test setup");
    let into = now.as_millis() % 30_000;
    if into > 26_000 {
        std::thread::sleep(Duration::from_millis(
            u64::try_from(30_500 - into).unwrap_or(0),
        ));
    }
}

#[test]
fn a_dead_address_is_skipped_and_all_dead_are_listed() {
    let server = TestServer::start();
    let home = tempfile::tempdir().expect("test setup");
    let dead = free_addr();
    let both = format!("{dead},{}", server.address);

    // Registration goes to the first address that answers.
    away_from_step_end();
    let mut acc = register_with_step(&both, home.path(), "ivy", 0);
    // Repeated --server works too; the plain chat logs in through the live one.
    let mut c = Client::spawn(
        home.path(),
        &[
            "--server",
            &dead,
            "--server",
            &server.address,
            "chat",
            "--user",
            "ivy",
            "--otp",
            &acc.next_code(),
            "--plain",
        ],
    );
    c.expect("logged in", |l| l == "login ivy");
    c.send("through the second address");
    c.expect("echo", |l| l == "say #lobby ivy through the second address");
    let (status, out, err) = c.finish();
    assert!(status.success(), "{status:?} {out:?} {err:?}");
    assert!(!out.iter().any(|l| l.starts_with("reconnect")), "{out:?}");

    // The key was recorded for the address that answered, not for the dead one.
    let known = std::fs::read_to_string(home.path().join("known_servers")).expect("test setup");
    assert_eq!(
        known,
        format!("{} {}\n", server.address, server.fingerprint())
    );

    // No address answers: exit 2, one line naming each address.
    let dead2 = free_addr();
    let c = Client::spawn(
        home.path(),
        &[
            "chat",
            "--plain",
            "--user",
            "ivy",
            "--otp",
            "123456",
            "--server",
            &format!("{dead},{dead2}"),
        ],
    );
    let (status, _, err) = c.finish();
    assert_eq!(status.code(), Some(2), "{err:?}");
    assert_eq!(err.len(), 1, "{err:?}");
    assert!(
        err[0].contains("cannot reach any server")
            && err[0].contains(&dead)
            && err[0].contains(&dead2),
        "{err:?}"
    );
}

/// `history #room id from kind text` lines of `out` with exactly this text.
fn count_history(out: &[String], room: &str, from: &str, text: &str) -> usize {
    let tail = format!(" {from} say {text}");
    out.iter()
        .filter(|l| l.starts_with(&format!("history {room} ")) && l.ends_with(&tail))
        .count()
}

#[test]
fn killed_server_restarted_on_the_same_port_gets_the_client_back() {
    let mut server = KillableServer::start();
    let home = tempfile::tempdir().expect("test setup");
    let dead = free_addr();
    // Confirmed with the previous step's code, so the current step is free for the login.
    away_from_step_end();
    let acc = register_with_step(&server.addr, home.path(), "jane", -1);
    let list = format!("{dead},{}", server.addr);
    let secret = [("CHATBOX_TOTP_SECRET", acc.secret_b32.as_str())];

    // No --otp: the first code is computed too.
    let mut c = Client::spawn_env(
        home.path(),
        &["--server", &list, "chat", "--user", "jane", "--plain"],
        &secret,
    );
    c.expect("logged in", |l| l == "login jane");
    c.send("/join #ops");
    c.expect("in #ops", |l| {
        l.starts_with("names #ops") && l.contains("jane")
    });
    c.send("first line");
    c.expect("first line stored", |l| l == "say #ops jane first line");
    // The answer to a later command comes after the Pong that acknowledges "first line" (the
    // server answers in order): from here on it is never sent again.
    c.send("/names #ops");
    c.expect("first line acknowledged", |l| l.starts_with("names #ops"));

    // Sent, then the server dies before (or after) handling it.
    c.send("just before the kill");
    server.kill();
    c.expect("reconnecting", |l| l.starts_with("reconnecting to "));
    // Typed while no server is up: queued, then sent exactly once.
    c.send("during the outage 1");
    c.send("during the outage 2");
    std::thread::sleep(Duration::from_millis(500));
    server.restart();
    let back = format!("reconnected to {}", server.addr);
    c.expect("reconnected", |l| l == back);
    c.expect("logged in again", |l| l == "login jane");
    // Back in #ops (rejoined), and the queued lines said there.
    c.expect("rejoined #ops", |l| {
        l.starts_with("names #ops") && l.contains("jane")
    });
    c.expect("queued line 2", |l| {
        l == "say #ops jane during the outage 2"
    });
    let (status, out, err) = c.finish();
    assert!(status.success(), "{status:?}\n{out:#?}\n{err:#?}");
    assert!(
        !out.iter().any(|l| l.starts_with("error ")),
        "no refusal (not_in_room…) after the reconnect: {out:#?}"
    );
    assert!(
        err.iter()
            .any(|l| l.contains("connection to") && l.contains("lost")),
        "{err:?}"
    );
    assert!(
        !err.iter()
            .chain(out.iter())
            .any(|l| l.contains(&acc.secret_b32)),
        "the secret is never printed"
    );

    // The history as another session sees it: each line once, the unacknowledged one at
    // least once.
    let mut h = Client::spawn(
        home.path(),
        &[
            "--server",
            &server.addr,
            "chat",
            "--user",
            "jane",
            "--otp",
            &acc.scratch[0],
            "--plain",
        ],
    );
    h.expect("logged in", |l| l == "login jane");
    h.send("/join #ops");
    h.send("/history #ops");
    let (status, out, err) = h.finish();
    assert!(status.success(), "{status:?} {out:?} {err:?}");
    // Join history and /history both list the room: count in one of the two batches.
    let batches = 2;
    assert_eq!(
        count_history(&out, "#ops", "jane", "first line"),
        batches,
        "{out:#?}"
    );
    for text in ["during the outage 1", "during the outage 2"] {
        assert_eq!(
            count_history(&out, "#ops", "jane", text),
            batches,
            "{text}: exactly once\n{out:#?}"
        );
    }
    // Its copy came back before the kill, or the history after the login shows it stored, or
    // it is sent again: exactly once either way.
    assert_eq!(
        count_history(&out, "#ops", "jane", "just before the kill"),
        batches,
        "exactly once\n{out:#?}"
    );
}

#[test]
fn bye_is_not_a_reason_to_reconnect_and_a_refused_relogin_is_final() {
    // A server that says Bye (shutdown): exit 2, no reconnect, even with the secret.
    let mut server = TestServer::start();
    let home = tempfile::tempdir().expect("test setup");
    away_from_step_end();
    let acc = register_with_step(&server.address, home.path(), "kim", -1);
    let secret = [("CHATBOX_TOTP_SECRET", acc.secret_b32.clone())];
    let env: Vec<(&str, &str)> = secret.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut c = Client::spawn_env(
        home.path(),
        &[
            "--server",
            &server.address,
            "chat",
            "--user",
            "kim",
            "--plain",
        ],
        &env,
    );
    c.expect("logged in", |l| l == "login kim");
    if let Some(h) = server.handle.take() {
        h.shutdown();
    }
    c.expect("bye", |l| l.starts_with("bye "));
    let (status, out, err) = c.finish();
    assert_eq!(status.code(), Some(2), "{out:?} {err:?}");
    assert!(!out.iter().any(|l| l.starts_with("reconnect")), "{out:?}");

    // A killed server, and a secret that gives wrong codes: the first login (with --otp)
    // works, logging in again is refused: exit 4 with the server's reason.
    let mut killable = KillableServer::start();
    away_from_step_end();
    let mut lee = register_with_step(&killable.addr, home.path(), "lee", -1);
    let wrong = [("CHATBOX_TOTP_SECRET", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")];
    let code = lee.next_code();
    let mut c = Client::spawn_env(
        home.path(),
        &[
            "--server",
            &killable.addr,
            "chat",
            "--user",
            "lee",
            "--otp",
            &code,
            "--plain",
        ],
        &wrong,
    );
    c.expect("logged in", |l| l == "login lee");
    killable.kill();
    c.expect("reconnecting", |l| l.starts_with("reconnecting to "));
    killable.restart();
    let (status, out, err) = c.finish();
    assert_eq!(status.code(), Some(4), "{out:?} {err:?}");
    assert!(
        err.last()
            .is_some_and(|l| l.contains("invalid_credentials")),
        "{err:?}"
    );

    // Without the secret the plain mode cannot log in again: exit 2, saying why.
    let mut c = Client::spawn(
        home.path(),
        &[
            "--server",
            &killable.addr,
            "chat",
            "--user",
            "lee",
            "--otp",
            &lee.scratch[0],
            "--plain",
        ],
    );
    c.expect("logged in", |l| l == "login lee");
    killable.kill();
    let (status, out, err) = c.finish();
    assert_eq!(status.code(), Some(2), "{out:?} {err:?}");
    assert_eq!(err.len(), 1, "{err:?}");
    assert!(
        err[0].starts_with("chatbox-client: connection lost")
            && err[0].contains("CHATBOX_TOTP_SECRET"),
        "{err:?}"
    );
}
