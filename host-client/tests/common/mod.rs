//! What the client's integration tests share beyond `chatbox_server::test_util` (the
//! in-process server on a temp dir, [`TestServer`]): the client binary as a child process with
//! its output lines on channels, registration through the client. Every wait has a deadline.

// Each test crate uses its own part of this module.
#![allow(dead_code)]

use core::time::Duration;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::Instant;

use chatbox_core::otp::{OtpauthUri, Totp};
pub use chatbox_server::test_util::{PASSWORD, TestServer, now_secs};

pub const BIN: &str = env!("CARGO_BIN_EXE_chatbox-client");
pub const DEADLINE: Duration = Duration::from_secs(60);

/// A running client with its stdout (and stderr) lines arriving on channels.
pub struct Client {
    pub child: Child,
    stdin: Option<ChildStdin>,
    out: Receiver<String>,
    err: Receiver<String>,
    pub seen: Vec<String>,
}

pub fn lines_of(r: impl std::io::Read + Send + 'static) -> Receiver<String> {
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
    pub fn spawn(home: &Path, args: &[&str]) -> Client {
        Client::spawn_env(home, args, &[])
    }

    /// [`Client::spawn`] with extra environment variables.
    pub fn spawn_env(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Client {
        let mut child = Command::new(BIN)
            .args(args)
            .env("CHATBOX_HOME", home)
            .env("CHATBOX_PASSWORD", PASSWORD)
            .env_remove("CHATBOX_SERVER")
            .env_remove("CHATBOX_TOTP_SECRET")
            .envs(env.iter().copied())
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

    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").expect("test setup");
        stdin.flush().expect("test setup");
    }

    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits for a stdout line matching `pred`.
    pub fn expect(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
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
    pub fn finish(mut self) -> (ExitStatus, Vec<String>, Vec<String>) {
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

/// An account made through `chatbox-client register`.
pub struct Account {
    pub totp: Totp,
    /// The Base32 secret (for `CHATBOX_TOTP_SECRET`).
    pub secret_b32: String,
    /// The TOTP step spent confirming; logins use later steps.
    pub last_step: u64,
    pub scratch: Vec<String>,
}

impl Account {
    /// A code the server has not seen yet for this account (the server accepts steps −1..=+1).
    pub fn next_code(&mut self) -> String {
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

/// Registers `user` at `server` (`--server` value), confirming with the code of the current
/// TOTP step.
pub fn register(server: &str, home: &Path, user: &str) -> Account {
    register_with_step(server, home, user, 0)
}

/// [`register`], confirming with the code of the current step + `offset` (the server accepts
/// −1..=+1): −1 leaves the current step free for a login right after.
pub fn register_with_step(server: &str, home: &Path, user: &str, offset: i64) -> Account {
    register_via(
        home,
        &["--server", server, "register", "--user", user],
        user,
        offset,
    )
}

/// Registers with the client arguments `args` (which name `user`), confirming with the code
/// of the current step + `offset`.
pub fn register_via(home: &Path, args: &[&str], user: &str, offset: i64) -> Account {
    let mut c = Client::spawn(home, args);
    let uri = c.expect("otpauth URI", |l| l.starts_with("otpauth://totp/"));
    assert!(uri.contains(user), "{uri}");
    let parsed = OtpauthUri::parse(&uri).expect("an otpauth URI");
    assert!(parsed.account().eq(user.bytes()), "{uri}");
    let totp = parsed.totp().expect("test setup");
    let now = now_secs();
    let step = totp
        .step(now)
        .checked_add_signed(offset)
        .expect("test setup");
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
        secret_b32: parsed.secret_base32().to_owned(),
        last_step: step,
        scratch,
    }
}

pub fn chat(server: &TestServer, home: &Path, user: &str, otp: &str, extra: &[&str]) -> Client {
    let mut args = vec![
        "--server",
        &server.address,
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
