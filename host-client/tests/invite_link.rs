//! Invite links on the client: a link's key is pinned before anything is sent (even on first
//! contact), recorded in known_servers when it matches; garbled invites and links are refused
//! before any prompt. The real client binary against a real server, or against an impostor built
//! on core's server session that counts what it receives.

mod common;

use core::time::Duration;
use std::fs;
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{Receiver, channel};
use std::time::Instant;

use chatbox_core::frame::MAX_WIRE_LEN;
use chatbox_core::noise::StaticKeypair;
use chatbox_core::session::{Input, Session};
use common::{Client, TestServer};

/// A token of the right shape (43 URL-safe Base64 characters) that no server issued.
const TOKEN: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/// `+` → `%2B`, `/` → `%2F`, `:` kept (as the server writes links).
fn encode_fp(fp: &str) -> String {
    fp.replace('+', "%2B").replace('/', "%2F")
}

/// An impostor: completes the handshake with its own key and reports how many records (and
/// bytes after the handshake) it received before the client hung up.
struct Impostor {
    addr: String,
    fingerprint: String,
    received: Receiver<(usize, usize)>,
}

impl Impostor {
    fn start() -> Impostor {
        let listener = TcpListener::bind("127.0.0.1:0").expect("test setup");
        let addr = listener.local_addr().expect("test setup").to_string();
        let key = StaticKeypair::from_secret([7u8; 32]);
        let fingerprint = key.fingerprint().as_str().to_owned();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let Ok((stream, _)) = listener.accept() else {
                return;
            };
            let _ = tx.send(serve(stream, &key));
        });
        Impostor {
            addr,
            fingerprint,
            received: rx,
        }
    }
}

/// Runs the server side of the handshake, then counts records and raw bytes until EOF (or 10 s).
fn serve(mut stream: TcpStream, key: &StaticKeypair) -> (usize, usize) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(mut session) = Session::server(key, [9u8; 32], b"") else {
        return (usize::MAX, usize::MAX);
    };
    let mut buf = vec![0u8; 2 * MAX_WIRE_LEN];
    let mut filled = 0;
    let mut out = vec![0u8; MAX_WIRE_LEN];
    let mut established = false;
    let (mut records, mut bytes_after) = (0, 0);
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        let n = match stream.read(buf.get_mut(filled..).unwrap_or_default()) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if established {
            bytes_after += n;
        }
        filled += n;
        loop {
            let Ok(input) = session.handle_input(buf.get_mut(..filled).unwrap_or_default()) else {
                return (records, bytes_after);
            };
            let consumed = match input {
                Input::Incomplete { .. } => break,
                Input::Handshake { consumed } => consumed,
                Input::Record { consumed, .. } => {
                    records += 1;
                    consumed
                }
            };
            buf.copy_within(consumed..filled, 0);
            filled -= consumed;
            if let Ok(m) = session.poll_transmit(&mut out)
                && m > 0
            {
                let _ = stream.write_all(out.get(..m).unwrap_or_default());
                established = true;
            }
        }
    }
    (records, bytes_after)
}

#[test]
fn link_key_is_pinned_on_first_contact_and_nothing_is_sent_to_an_impostor() {
    let real = TestServer::start();
    let impostor = Impostor::start();
    let home = tempfile::tempdir().unwrap();
    // The link names the real key, but the address answers with the impostor's.
    let link = format!(
        "chatbox://{}/?key={}&invite={TOKEN}",
        impostor.addr,
        encode_fp(&real.fingerprint())
    );
    let client = Client::spawn(
        home.path(),
        &["register", "--invite", &link, "--user", "alice"],
    );
    let (status, out, err) = client.finish();
    assert_eq!(status.code(), Some(3), "stdout {out:?} stderr {err:?}");
    let err = err.join("\n");
    assert!(err.contains(&real.fingerprint()), "{err}");
    assert!(err.contains(&impostor.fingerprint), "{err}");
    assert!(out.is_empty(), "{out:?}");
    let (records, bytes) = impostor
        .received
        .recv_timeout(Duration::from_secs(20))
        .unwrap();
    assert_eq!((records, bytes), (0, 0), "the impostor got something");
    // Nothing recorded for the impostor's address.
    let known = fs::read_to_string(home.path().join("known_servers")).unwrap_or_default();
    assert!(!known.contains(&impostor.addr), "{known}");
}

#[test]
fn server_link_pins_and_records_the_key_and_a_wrong_one_exits_3() {
    let server = TestServer::start();
    let fp = server.fingerprint();
    let home = tempfile::tempdir().unwrap();
    // Register through a `--server` link (no invite; an open server), plain spelling of the key.
    let link = format!("chatbox://{}/?key={fp}", server.address);
    let mut acct = common::register_via(
        home.path(),
        &["--server", &link, "register", "--user", "carol"],
        "carol",
        0,
    );
    let known = fs::read_to_string(home.path().join("known_servers")).unwrap();
    assert_eq!(known, format!("{} {fp}\n", server.address));

    // Another home (first contact), a link with another key: refused, both shown, not recorded.
    let other_home = tempfile::tempdir().unwrap();
    let wrong = "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU";
    let link = format!("chatbox://{}/?key={}", server.address, encode_fp(wrong));
    let code = acct.next_code();
    let client = Client::spawn(
        other_home.path(),
        &[
            "--server", &link, "chat", "--plain", "--user", "carol", "--otp", &code,
        ],
    );
    let (status, out, err) = client.finish();
    assert_eq!(status.code(), Some(3), "{out:?} {err:?}");
    let err = err.join("\n");
    assert!(err.contains(wrong) && err.contains(&fp), "{err}");
    assert!(!other_home.path().join("known_servers").exists());
}

#[test]
fn garbled_invites_and_links_are_refused_before_any_prompt() {
    let server = TestServer::start();
    let home = tempfile::tempdir().unwrap();
    // No CHATBOX_PASSWORD and no terminal: a prompt would fail with exit 1, so exit 4 shows the
    // invite was refused first.
    let run = |args: &[&str]| {
        let mut cmd = std::process::Command::new(common::BIN);
        let out = cmd
            .args(args)
            .env("CHATBOX_HOME", home.path())
            .env_remove("CHATBOX_PASSWORD")
            .env_remove("CHATBOX_SERVER")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let fp = encode_fp(&server.fingerprint());
    let cases: Vec<(Vec<String>, i32, &str)> = vec![
        // A bare token that is not one.
        (
            vec![
                "--server".into(),
                server.address.clone(),
                "register".into(),
                "--invite".into(),
                "not-a-token".into(),
                "--user".into(),
                "dave".into(),
            ],
            4,
            "garbled",
        ),
        // A link whose invite is cut short.
        (
            vec![
                "register".into(),
                "--invite".into(),
                format!("chatbox://{}/?key={fp}&invite=AAAA", server.address),
                "--user".into(),
                "dave".into(),
            ],
            4,
            "garbled",
        ),
        // A link with a malformed key.
        (
            vec![
                "register".into(),
                "--invite".into(),
                format!(
                    "chatbox://{}/?key=SHA256:short&invite={TOKEN}",
                    server.address
                ),
                "--user".into(),
                "dave".into(),
            ],
            4,
            "key",
        ),
        // A link for another server than the --server given.
        (
            vec![
                "--server".into(),
                "127.0.0.1:1".into(),
                "register".into(),
                "--invite".into(),
                format!("chatbox://{}/?key={fp}&invite={TOKEN}", server.address),
                "--user".into(),
                "dave".into(),
            ],
            1,
            "not for --server",
        ),
        // A --server link with a malformed key.
        (
            vec![
                "--server".into(),
                format!("chatbox://{}/?key=SHA256:%ZZ", server.address),
                "chat".into(),
                "--plain".into(),
                "--user".into(),
                "dave".into(),
                "--otp".into(),
                "123456".into(),
            ],
            1,
            "key",
        ),
        // join with something that is not a link.
        (vec!["join".into(), TOKEN.into()], 4, "invite link"),
    ];
    for (args, want, says) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, err) = run(&args);
        assert_eq!(code, Some(want), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(!err.contains("Password"), "prompted: {err}");
    }
    // Nothing was contacted: no key recorded.
    assert!(!home.path().join("known_servers").exists());
}
