//! Log contents (and what must never be in them), the chat log's HMAC chain, and the admin
//! subcommands of the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chatbox_server::test_util as common;

use std::process::{Command, Output};

use chatbox_core::proto::{ClientMsg, ErrorCode, ServerMsg};
use common::*;

fn bin(args: &[&str], s: &TestServer) -> Output {
    Command::new(env!("CARGO_BIN_EXE_chatbox-server"))
        .args(args)
        .arg("--data-dir")
        .arg(s.data_dir())
        .output()
        .unwrap()
}

#[test]
fn logs_hold_events_but_never_secrets() {
    let mut s = TestServer::start();
    let acc = register(s.addr(), "alice");
    let code = code_at_offset(&acc.secret, 0);
    let mut c = login_with(s.addr(), "alice", &code);
    c.say("#lobby", "hello logs");
    let _c2 = login_with(s.addr(), "alice", &acc.scratch[3]);
    // A failed login with a wrong password must not log it either.
    let mut bad = Client::connect(s.addr());
    bad.send(&ClientMsg::Login {
        user: "alice",
        password: "WrongPassw0rd!",
        otp: "654321",
    });
    bad.expect_error(ErrorCode::InvalidCredentials);
    drop(c);
    s.stop();
    let sql = s.log("sql.log");
    let info = s.log("info.log");
    let creds = s.log("credentials.log");
    let chat = s.log("chat.log");
    assert!(sql.contains("INSERT REGISTERED user=alice"), "{sql}");
    assert!(sql.contains("INSERT MESSAGES target=#lobby sender=alice"));
    assert!(
        info.contains("listening on")
            && info.contains("connection")
            && info.contains("server stopped")
    );
    assert!(creds.contains("login established user=alice"));
    assert!(creds.contains("login failed user=alice") && creds.contains("reason=wrong password"));
    assert!(chat.contains("#lobby <alice> say: hello logs"));
    let all = read_all_logs(&s.log_dir());
    let b32 = acc
        .uri
        .split("secret=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_owned();
    let mut secrets = vec![
        PASSWORD.to_owned(),
        "WrongPassw0rd!".to_owned(),
        acc.uri.clone(),
        b32,
        code,
        "654321".to_owned(),
        "otpauth://".to_owned(),
    ];
    secrets.extend(acc.scratch.iter().cloned());
    for secret in &secrets {
        assert!(
            !all.contains(secret.as_str()),
            "a log file contains the secret {secret:?}"
        );
    }
    // Nor the server key.
    let key = std::fs::read(s.data_dir().join("server.key")).unwrap();
    let mut b64 = [0u8; 64];
    let k = chatbox_core::encoding::base64_encode(&key, &mut b64).unwrap();
    assert!(!all.contains(k));
}

#[test]
fn verify_log_detects_tampering_and_chains_across_restarts() {
    let mut s = TestServer::start_with(|c| c.rate_burst = 1000.0);
    let acc = register(s.addr(), "alice");
    {
        let mut c = login(s.addr(), &acc, 0);
        for i in 0..5 {
            c.say("#lobby", &format!("line {i}"));
        }
    }
    s.restart();
    {
        let mut c = login_with(s.addr(), "alice", &acc.scratch[0]);
        c.say("#lobby", "after restart");
    }
    s.stop();
    let log = s.log_dir().join("chat.log");
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text.lines().count(), 6);
    let out = bin(&["verify-log", log.to_str().unwrap()], &s);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("6 lines"));
    // Edit line 3.
    let tampered = s.dir.path().join("tampered.log");
    std::fs::write(&tampered, text.replacen("line 2", "line X", 1)).unwrap();
    let out = bin(&["verify-log", tampered.to_str().unwrap()], &s);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("line 3"),
        "{out:?}"
    );
    // Remove line 2: line 2 (formerly 3) fails.
    let lines: Vec<&str> = text.lines().collect();
    let removed: String = lines
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    std::fs::write(&tampered, removed).unwrap();
    let out = bin(&["verify-log", tampered.to_str().unwrap()], &s);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("line 2"),
        "{out:?}"
    );
    // Truncated tail.
    std::fs::write(&tampered, &text[..text.len() - 10]).unwrap();
    let out = bin(&["verify-log", tampered.to_str().unwrap()], &s);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("truncated"),
        "{out:?}"
    );
    // Another server key does not verify it.
    let other = TestServer::start();
    let out = bin(&["verify-log", log.to_str().unwrap()], &other);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("line 1"));
}

#[test]
fn admin_subcommands_on_the_live_database() {
    let s = TestServer::start();
    let acc = register(s.addr(), "alice");
    register(s.addr(), "bob");
    let out = bin(&["user", "list"], &s);
    assert!(out.status.success(), "{out:?}");
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(
        list.contains("User")
            && list.contains("statut")
            && list.contains("alice")
            && list.contains("bob")
    );
    assert!(!list.contains("pbkdf2"), "list must not print hashes");
    let out = bin(&["user", "show", "alice"], &s);
    let show = String::from_utf8_lossy(&out.stdout);
    assert!(
        show.contains("statut:         ok") && show.contains("10 unused"),
        "{show}"
    );
    assert!(!bin(&["user", "show", "nobody"], &s).status.success());
    // Lock: even the right credentials fail.
    assert!(bin(&["user", "lock", "alice"], &s).status.success());
    let mut c = Client::connect(s.addr());
    c.send(&ClientMsg::Login {
        user: "alice",
        password: PASSWORD,
        otp: &acc.scratch[0],
    });
    c.expect_error(ErrorCode::InvalidCredentials);
    assert!(bin(&["user", "unlock", "alice"], &s).status.success());
    // Role.
    assert!(bin(&["user", "role", "alice", "op"], &s).status.success());
    assert!(!bin(&["user", "role", "alice", "king"], &s).status.success());
    let mut c = login(s.addr(), &acc, 0);
    c.send(&ClientMsg::Whois { user: "alice" });
    c.recv_until("whois", |m| {
        matches!(m, ServerMsg::Whois { role: "op", .. })
    });
    drop(c);
    // Reset the OTP: a new URI, printed once; the old secret stops working.
    let out = bin(&["user", "reset-otp", "alice"], &s);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let uri = stdout
        .lines()
        .find(|l| l.starts_with("otpauth://totp/ChatBox:alice?secret="))
        .unwrap();
    let secret = secret_of(uri);
    assert_ne!(secret, acc.secret);
    let statut: String = s.scalar("SELECT statut FROM REGISTERED WHERE User='alice'");
    assert_eq!(statut, "ko");
    let mut c = Client::connect(s.addr());
    c.send(&ClientMsg::Login {
        user: "alice",
        password: PASSWORD,
        otp: &code_at_offset(&acc.secret, 1),
    });
    c.expect_error(ErrorCode::InvalidCredentials);
    let _c = login_with(s.addr(), "alice", &code_at_offset(&secret, 0));
    let statut: String = s.scalar("SELECT statut FROM REGISTERED WHERE User='alice'");
    assert_eq!(statut, "ok");
    // Delete.
    assert!(bin(&["user", "delete", "bob"], &s).status.success());
    let list = String::from_utf8_lossy(&bin(&["user", "list"], &s).stdout).to_string();
    assert!(!list.contains("bob"));
    // Tables as in the seed.
    let tables: Vec<String> = s
        .db()
        .prepare("SELECT name FROM sqlite_master WHERE type='table'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(tables.contains(&"ONLINE".to_owned()) && tables.contains(&"REGISTERED".to_owned()));
}
