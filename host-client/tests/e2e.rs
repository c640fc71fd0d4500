//! The real client binary against a real server on 127.0.0.1 (started in-process on a temp
//! dir): scripted registration, plain chat between two users, a wrong code, key mismatches and
//! an unreachable server. Every child process runs under a deadline.

mod common;

use core::time::Duration;
use std::time::Instant;

use common::{Client, DEADLINE, TestServer, chat};

fn register(server: &TestServer, home: &std::path::Path, user: &str) -> common::Account {
    common::register(&server.address, home, user)
}

#[test]
fn two_users_register_and_chat_in_plain_mode() {
    let server = TestServer::start();
    let home = tempfile::tempdir().expect("test setup");
    let mut alice = register(&server, home.path(), "alice");
    let mut bob = register(&server, home.path(), "bob");

    // The server key was recorded on first use.
    let known = std::fs::read_to_string(home.path().join("known_servers")).expect("test setup");
    assert_eq!(
        known,
        format!("{} {}\n", server.address, server.fingerprint())
    );

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
    let server = TestServer::start();
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
    let server = TestServer::start();
    let home = tempfile::tempdir().expect("test setup");
    register(&server, home.path(), "dave");
    let c = Client::spawn(
        home.path(),
        &["register", "--user", "dave", "--server", &server.address],
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
    let server = TestServer::start();
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
    let server = TestServer::start();
    let home = tempfile::tempdir().expect("test setup");
    let recorded = "SHA256:ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uSLs";
    std::fs::write(
        home.path().join("known_servers"),
        format!("garbage line\n{} {recorded}\n", server.address),
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
    let server = TestServer::start();
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
    // Both lines were refused for good: exit 6 at the end (issue 13.13).
    assert_eq!(status.code(), Some(6), "{status:?} {out:?} {err:?}");
    assert!(
        err.iter().any(|l| l.contains("2 line(s) refused")),
        "{err:?}"
    );
    assert!(err.iter().any(|l| l.contains("cannot send")), "{err:?}");
}

#[test]
fn connection_drop_is_a_nonzero_exit_with_one_line() {
    let mut server = TestServer::start();
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
