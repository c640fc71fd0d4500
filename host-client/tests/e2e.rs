//! The real client binary against a real server on 127.0.0.1 (started in-process on a temp
//! dir): scripted registration, plain chat between two users, a wrong code, key mismatches and
//! an unreachable server. Every child process runs under a deadline.

use core::time::Duration;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use chatbox_client::qr_view::otpauth_secret;
use chatbox_core::encoding::base32_decode;
use chatbox_core::otp::Totp;

const BIN: &str = env!("CARGO_BIN_EXE_chatbox-client");
const DEADLINE: Duration = Duration::from_secs(60);
const PASSWORD: &str = "correct horse battery";

struct Server {
    handle: Option<chatbox_server::ServerHandle>,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().expect("test setup");
        let handle = chatbox_server::start(chatbox_server::Config::for_tests(dir.path()))
            .expect("test setup");
        let addr = handle.local_addr().to_string();
        assert!(addr.starts_with("127.0.0.1:"), "{addr}");
        Server {
            handle: Some(handle),
            addr,
            _dir: dir,
        }
    }

    fn fingerprint(&self) -> String {
        self.handle.as_ref().expect("test setup").fingerprint()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown();
        }
    }
}

/// A running client with its stdout (and stderr) lines arriving on channels.
struct Client {
    child: Child,
    stdin: Option<ChildStdin>,
    out: Receiver<String>,
    err: Receiver<String>,
    seen: Vec<String>,
}

fn lines_of(r: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

impl Client {
    fn spawn(home: &Path, args: &[&str]) -> Client {
        let mut child = Command::new(BIN)
            .args(args)
            .env("CHATBOX_HOME", home)
            .env("CHATBOX_PASSWORD", PASSWORD)
            .env_remove("CHATBOX_SERVER")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("test setup");
        let out = lines_of(child.stdout.take().expect("test setup"));
        let err = lines_of(child.stderr.take().expect("test setup"));
        Client {
            stdin: child.stdin.take(),
            child,
            out,
            err,
            seen: Vec::new(),
        }
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").expect("test setup");
        stdin.flush().expect("test setup");
    }

    fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits for a stdout line matching `pred`.
    fn expect(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let end = Instant::now() + DEADLINE;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.out.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                    let _ = self.child.kill();
                    let err: Vec<String> = self.err.try_iter().collect();
                    panic!(
                        "no line {what:?}; stdout so far:\n{}\nstderr:\n{}",
                        self.seen.join("\n"),
                        err.join("\n")
                    );
                }
            }
        }
    }

    /// Waits for exit; returns the status, the remaining stdout lines and all stderr lines.
    fn finish(mut self) -> (ExitStatus, Vec<String>, Vec<String>) {
        self.close_stdin();
        let end = Instant::now() + DEADLINE;
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("test setup") {
                break s;
            }
            if Instant::now() > end {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "client did not exit in time; stdout:\n{}",
                    self.seen.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // The reader threads end at EOF now that the process is gone.
        let mut out = self.seen;
        while let Ok(l) = self.out.recv_timeout(Duration::from_secs(5)) {
            out.push(l);
        }
        let err = self.err.iter().collect();
        (status, out, err)
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("test setup")
        .as_secs()
}

/// An account made through `chatbox-client register`.
struct Account {
    totp: Totp,
    /// The TOTP step spent confirming; logins use later steps.
    last_step: u64,
    scratch: Vec<String>,
}

impl Account {
    /// A code the server has not seen yet for this account (the server accepts steps −1..=+1).
    fn next_code(&mut self) -> String {
        let step = self.last_step + 1;
        self.last_step = step;
        assert!(
            step <= self.totp.step(now_secs()) + 1,
            "test too slow: step {step} not yet valid"
        );
        self.totp
            .generate_at_step(step)
            .expect("test setup")
            .as_str()
            .to_owned()
    }
}

fn register(server: &Server, home: &Path, user: &str) -> Account {
    let mut c = Client::spawn(
        home,
        &["--server", &server.addr, "register", "--user", user],
    );
    let uri = c.expect("otpauth URI", |l| l.starts_with("otpauth://totp/"));
    assert!(uri.contains(user), "{uri}");
    let secret_b32 = otpauth_secret(&uri).expect("secret in URI");
    let mut buf = [0u8; 64];
    let secret = base32_decode(secret_b32, &mut buf).expect("test setup");
    let totp = Totp::sha1_default(secret).expect("test setup");
    let now = now_secs();
    let step = totp.step(now);
    c.send(totp.generate_at_step(step).expect("test setup").as_str());
    let (status, out, err) = c.finish();
    assert!(
        status.success(),
        "register failed: {status:?}\n{out:?}\n{err:?}"
    );
    let scratch: Vec<String> = out
        .iter()
        .filter(|l| l.len() == 8 && l.bytes().all(|b| b.is_ascii_digit()))
        .cloned()
        .collect();
    assert_eq!(scratch.len(), 10, "ten scratch codes in {out:?}");
    Account {
        totp,
        last_step: step,
        scratch,
    }
}

fn chat(server: &Server, home: &Path, user: &str, otp: &str, extra: &[&str]) -> Client {
    let mut args = vec![
        "--server",
        &server.addr,
        "chat",
        "--user",
        user,
        "--otp",
        otp,
        "--plain",
    ];
    args.extend_from_slice(extra);
    Client::spawn(home, &args)
}

#[test]
fn two_users_register_and_chat_in_plain_mode() {
    let server = Server::start();
    let home = tempfile::tempdir().expect("test setup");
    let mut alice = register(&server, home.path(), "alice");
    let mut bob = register(&server, home.path(), "bob");

    // The server key was recorded on first use.
    let known = std::fs::read_to_string(home.path().join("known_servers")).expect("test setup");
    assert_eq!(known, format!("{} {}\n", server.addr, server.fingerprint()));

    let mut b = chat(&server, home.path(), "bob", &bob.next_code(), &[]);
    b.expect("bob logged in", |l| l == "login bob");
    b.expect("bob in #lobby", |l| {
        l.starts_with("names #lobby") && l.contains("bob")
    });

    let mut a = chat(&server, home.path(), "alice", &alice.next_code(), &[]);
    a.expect("alice logged in", |l| l == "login alice");
    b.expect("alice joins", |l| {
        l.starts_with("presence #lobby alice join")
    });
    a.send("hello from alice \u{1b}[31m!");
    a.send("/msg bob psst, a secret");
    a.send("/whois bob");
    a.send("/nonsense");
    let (status, out, err) = a.finish();
    assert!(status.success(), "alice: {status:?}\n{out:?}\n{err:?}");
    assert!(out.iter().any(|l| l.starts_with("pong ")), "{out:?}");
    assert!(
        out.iter()
            .any(|l| l.starts_with("whois bob role=") && l.contains("online=yes")),
        "{out:?}"
    );
    assert!(err.iter().any(|l| l.contains("unknown command")), "{err:?}");

    b.expect("alice's line", |l| {
        l == "say #lobby alice hello from alice !"
    });
    b.expect("the private message", |l| {
        l == "private bob alice psst, a secret"
    });
    b.send("/part");
    let (status, out, err) = b.finish();
    assert!(status.success(), "bob: {status:?}\n{out:?}\n{err:?}");
    assert!(out.iter().all(|l| !l.contains('\u{1b}')));

    // A scratch code works in place of a TOTP code.
    let a = chat(&server, home.path(), "alice", &alice.scratch[0], &[]);
    let (status, out, _) = a.finish();
    assert!(status.success());
    assert!(out.contains(&"login alice".to_owned()), "{out:?}");
    // History of #lobby came with the login.
    assert!(
        out.iter().any(
            |l| l.starts_with("history #lobby ") && l.ends_with("alice say hello from alice !")
        ),
        "{out:?}"
    );
}

#[test]
fn wrong_code_fails_with_an_error_line() {
    let server = Server::start();
    let home = tempfile::tempdir().expect("test setup");
    let mut carol = register(&server, home.path(), "carol");
    let good = carol.next_code();
    let wrong = format!(
        "{:06}",
        (good.parse::<u32>().expect("test setup") + 1) % 1_000_000
    );
    let c = chat(&server, home.path(), "carol", &wrong, &[]);
    let (status, out, err) = c.finish();
    assert_eq!(status.code(), Some(4), "{out:?} {err:?}");
    assert!(!out.iter().any(|l| l.starts_with("login ")), "{out:?}");
    assert_eq!(err.len(), 1, "one line: {err:?}");
    assert!(err[0].contains("invalid_credentials"), "{err:?}");
}

#[test]
fn duplicate_registration_fails() {
    let server = Server::start();
    let home = tempfile::tempdir().expect("test setup");
    register(&server, home.path(), "dave");
    let c = Client::spawn(
        home.path(),
        &["register", "--user", "dave", "--server", &server.addr],
    );
    let (status, out, err) = c.finish();
    assert_eq!(status.code(), Some(4), "{out:?} {err:?}");
    assert!(
        err.iter().any(|l| l.contains("already_registered")),
        "{err:?}"
    );
}

#[test]
fn pinned_wrong_key_fails_naming_both_fingerprints() {
    let server = Server::start();
    let home = tempfile::tempdir().expect("test setup");
    let wrong = "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU";
    let c = chat(
        &server,
        home.path(),
        "erin",
        "123456",
        &["--server-key", wrong],
    );
    let (status, out, err) = c.finish();
    assert_eq!(status.code(), Some(3), "{out:?} {err:?}");
    let msg = err.join("\n");
    assert!(
        msg.contains(wrong) && msg.contains(&server.fingerprint()),
        "{msg}"
    );
    assert!(out.is_empty(), "{out:?}");
    // With --server-key the known_servers file is neither read nor written.
    assert!(!home.path().join("known_servers").exists());

    // The right pin passes the key check (and then the unknown user fails to log in).
    let c = chat(
        &server,
        home.path(),
        "erin",
        "123456",
        &["--server-key", &server.fingerprint()],
    );
    let (status, _, err) = c.finish();
    assert_eq!(status.code(), Some(4), "{err:?}");
}

#[test]
fn changed_server_key_is_refused_after_first_use() {
    let server = Server::start();
    let home = tempfile::tempdir().expect("test setup");
    let recorded = "SHA256:ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uSLs";
    std::fs::write(
        home.path().join("known_servers"),
        format!("garbage line\n{} {recorded}\n", server.addr),
    )
    .expect("test setup");
    let c = chat(&server, home.path(), "frank", "123456", &[]);
    let (status, _, err) = c.finish();
    assert_eq!(status.code(), Some(3), "{err:?}");
    let msg = err.join("\n");
    assert!(
        msg.contains(recorded) && msg.contains(&server.fingerprint()),
        "{msg}"
    );
    assert!(msg.contains("known_servers"), "says where to fix it: {msg}");
}

#[test]
fn unreachable_server_is_a_clear_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("test setup");
    let addr = listener.local_addr().expect("test setup").to_string();
    drop(listener);
    let home = tempfile::tempdir().expect("test setup");
    let c = Client::spawn(
        home.path(),
        &[
            "chat", "--plain", "--user", "x", "--otp", "1", "--server", &addr,
        ],
    );
    let (status, _, err) = c.finish();
    assert_eq!(status.code(), Some(2), "{err:?}");
    assert_eq!(err.len(), 1, "{err:?}");
    assert!(
        err[0].contains("cannot reach server") && err[0].contains(&addr),
        "{err:?}"
    );
}

#[test]
fn overlong_lines_are_refused_without_ending_the_session() {
    let server = Server::start();
    let home = tempfile::tempdir().expect("tempdir");
    let mut gina = register(&server, home.path(), "gina");
    let mut c = chat(&server, home.path(), "gina", &gina.next_code(), &[]);
    c.expect("logged in", |l| l == "login gina");
    // Over the server's text limit: the server says so.
    c.send(&"x".repeat(2000));
    c.expect("server refusal", |l| l.starts_with("error too_long"));
    // Over what one record can carry: the client says so and sends nothing.
    c.send(&"y".repeat(20_000));
    c.send("still here");
    c.expect("the session went on", |l| l == "say #lobby gina still here");
    let (status, out, err) = c.finish();
    assert!(status.success(), "{status:?} {out:?} {err:?}");
    assert!(err.iter().any(|l| l.contains("cannot send")), "{err:?}");
}

#[test]
fn connection_drop_is_a_nonzero_exit_with_one_line() {
    let mut server = Server::start();
    let home = tempfile::tempdir().expect("tempdir");
    let mut hank = register(&server, home.path(), "hank");
    let mut c = chat(&server, home.path(), "hank", &hank.next_code(), &[]);
    c.expect("logged in", |l| l == "login hank");
    c.expect("names", |l| l.starts_with("names #lobby"));
    if let Some(h) = server.handle.take() {
        h.shutdown();
    }
    let end = Instant::now() + DEADLINE;
    while c.child.try_wait().expect("wait").is_none() {
        assert!(
            Instant::now() < end,
            "client did not notice the server going away"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (status, _, err) = c.finish();
    assert_eq!(status.code(), Some(2), "{err:?}");
    assert_eq!(err.len(), 1, "{err:?}");
    assert!(
        err[0].starts_with("chatbox-client: connection lost"),
        "{err:?}"
    );
}
