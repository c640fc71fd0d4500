//! Registration, login, throttling, anonymous limits — a real server over TCP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chatbox_server::test_util as common;

use core::time::Duration;

use chatbox_core::proto::{ClientMsg, ErrorCode, ServerMsg};
use common::*;

#[test]
fn ping_pong_before_login_and_server_key() {
    let s = TestServer::start();
    let mut c = Client::connect(s.addr());
    assert_eq!(
        c.session.remote_static(),
        Some(&s.handle.as_ref().unwrap().public_key())
    );
    assert!(
        s.handle
            .as_ref()
            .unwrap()
            .fingerprint()
            .starts_with("SHA256:")
    );
    for token in [0, 1, u64::MAX] {
        c.send(&ClientMsg::Ping { token });
        let r = c.recv();
        assert!(
            matches!(r.msg(), ServerMsg::Pong { token: t } if t == token),
            "{r:?}"
        );
    }
    // Anonymous connections appear in ONLINE as anonyme.
    s.wait_for("anonyme row", |s| {
        s.db()
            .query_row(
                "SELECT COUNT(*) FROM ONLINE WHERE statut = 'anonyme' AND Client_Id LIKE 'Client%'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .unwrap()
            == 1
    });
    let key = std::fs::metadata(s.data_dir().join("server.key")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(key.permissions().mode() & 0o777, 0o600);
    assert_eq!(key.len(), 32);
    let fp = s.handle.as_ref().unwrap().fingerprint();
    s.wait_for("fingerprint in info.log", |s| {
        s.log("info.log").contains(&fp)
    });
}

#[test]
fn anonymous_may_not_chat() {
    let s = TestServer::start();
    let mut c = Client::connect(s.addr());
    c.send(&ClientMsg::Say {
        room: "#lobby",
        text: "hello",
    });
    c.expect_error(ErrorCode::NotAuthenticated);
    c.send(&ClientMsg::Join { room: "#x" });
    c.expect_error(ErrorCode::NotAuthenticated);
    c.send(&ClientMsg::ConfirmTotp { code: "123456" });
    c.expect_error(ErrorCode::BadState);
    c.ping(7);
}

#[test]
fn registration_flow() {
    let s = TestServer::start();
    let mut c = Client::connect(s.addr());
    c.send(&ClientMsg::Register {
        user: "Alice",
        password: PASSWORD,
    });
    let r = c.recv();
    let ServerMsg::RegisterStarted { uri } = r.msg() else {
        panic!("{r:?}")
    };
    let uri = uri.to_owned();
    assert!(
        uri.starts_with("otpauth://totp/ChatBox:alice?secret="),
        "{uri}"
    );
    assert!(
        uri.ends_with("&issuer=ChatBox&algorithm=SHA1&digits=6&period=30"),
        "{uri}"
    );
    let secret = secret_of(&uri);
    assert_eq!(secret.len(), 20);
    let statut = |s: &TestServer| -> String {
        s.scalar("SELECT statut FROM REGISTERED WHERE User = 'alice'")
    };
    assert_eq!(statut(&s), "ko");
    // The secret is not stored in clear.
    let sealed: Vec<u8> = s.scalar("SELECT totp_sealed FROM REGISTERED WHERE User = 'alice'");
    assert!(!sealed.windows(secret.len()).any(|w| w == secret.as_slice()));
    // A wrong code keeps the connection and the pending state.
    let wrong = if code_at_offset(&secret, 0) == "000000" {
        "111111"
    } else {
        "000000"
    };
    c.send(&ClientMsg::ConfirmTotp { code: wrong });
    c.expect_error(ErrorCode::InvalidCode);
    assert_eq!(statut(&s), "ko");
    avoid_step_edge();
    c.send(&ClientMsg::ConfirmTotp {
        code: &code_at_offset(&secret, -1),
    });
    let r = c.recv();
    let ServerMsg::Registered { scratch_codes } = r.msg() else {
        panic!("{r:?}")
    };
    let codes: Vec<&str> = scratch_codes.iter().collect();
    assert_eq!(codes.len(), 10);
    assert!(
        codes
            .iter()
            .all(|c| c.len() == 8 && c.bytes().all(|b| b.is_ascii_digit()))
    );
    let mut dedup = codes.clone();
    dedup.sort_unstable();
    dedup.dedup();
    assert_eq!(dedup.len(), 10);
    assert_eq!(statut(&s), "ok");
    let stored: i64 = s.scalar("SELECT COUNT(*) FROM SCRATCH WHERE User = 'alice' AND used = 0");
    assert_eq!(stored, 10);
    // The confirming code's step is used: that code no longer logs in.
    let mut c2 = Client::connect(s.addr());
    c2.send(&ClientMsg::Login {
        user: "alice",
        password: PASSWORD,
        otp: &code_at_offset(&secret, -1),
    });
    c2.expect_error(ErrorCode::InvalidCredentials);
    c2.expect_closed();
    s.wait_for("registration logged", |s| {
        s.log("credentials.log").contains("registered user=alice")
    });
}

#[test]
fn already_registered_closes_and_bad_names_are_refused() {
    let s = TestServer::start();
    register(s.addr(), "bob");
    let mut c = Client::connect(s.addr());
    c.send(&ClientMsg::Register {
        user: "BOB",
        password: "another password",
    });
    c.expect_error(ErrorCode::AlreadyRegistered);
    c.expect_closed();
    // SQL metacharacters and other bad names: refused cleanly, connection kept.
    let mut c = Client::connect(s.addr());
    for name in [
        "bob'; DROP TABLE REGISTERED;--",
        "x\" OR 1=1",
        "",
        "1abc",
        "a b",
        "ümlaut",
        &"a".repeat(33),
    ] {
        c.send(&ClientMsg::Register {
            user: name,
            password: PASSWORD,
        });
        c.expect_error(ErrorCode::InvalidUsername);
    }
    c.send(&ClientMsg::Register {
        user: "carol",
        password: "short",
    });
    c.expect_error(ErrorCode::InvalidPassword);
    c.send(&ClientMsg::Login {
        user: "bob' OR '1'='1",
        password: PASSWORD,
        otp: "123456",
    });
    c.expect_error(ErrorCode::InvalidCredentials);
    c.expect_closed();
    let n: i64 = s.scalar("SELECT COUNT(*) FROM REGISTERED");
    assert_eq!(n, 1);
}

#[test]
fn unconfirmed_registration_is_discarded() {
    let s = TestServer::start();
    let mut c = Client::connect(s.addr());
    c.send(&ClientMsg::Register {
        user: "dave",
        password: PASSWORD,
    });
    assert!(matches!(c.recv().msg(), ServerMsg::RegisterStarted { .. }));
    drop(c);
    s.wait_for("pending account deleted", |s| {
        s.db()
            .query_row(
                "SELECT COUNT(*) FROM REGISTERED WHERE User = 'dave'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .unwrap()
            == 0
    });
    register(s.addr(), "dave");
}

#[test]
fn login_success_failures_and_code_reuse() {
    let s = TestServer::start();
    let acc = register(s.addr(), "erin");
    let addr = s.addr();
    let good = code_at_offset(&acc.secret, 0);
    let fail = |user: &str, password: &str, otp: &str| {
        let mut c = Client::connect(addr);
        c.send(&ClientMsg::Login {
            user,
            password,
            otp,
        });
        let r = c.expect_error(ErrorCode::InvalidCredentials);
        let ServerMsg::Error { text, .. } = r.msg() else {
            panic!()
        };
        assert_eq!(text, "invalid credentials");
        c.expect_closed();
    };
    fail("erin", "wrong password!", &good);
    fail(
        "erin",
        PASSWORD,
        if good == "999999" { "999998" } else { "999999" },
    );
    fail("nobody", PASSWORD, &good);
    fail("erin", PASSWORD, "12345"); // malformed code
    let mut c = login(addr, &acc, 0);
    c.ping(1);
    // ONLINE shows the user, REGISTERED online=ok.
    s.wait_for("online row", |s| {
        s.db()
            .query_row(
                "SELECT COUNT(*) FROM ONLINE WHERE Client_Id = 'erin' AND statut = 'online'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .unwrap()
            == 1
    });
    // The same code again is refused (no reuse), the next one works.
    fail("erin", PASSWORD, &good);
    let _c2 = login(addr, &acc, 1);
    // A scratch code works once.
    let _c3 = login_with(addr, "erin", &acc.scratch[0]);
    fail("erin", PASSWORD, &acc.scratch[0]);
    for reason in [
        "reason=wrong password",
        "reason=wrong or reused TOTP code",
        "reason=unknown user",
        "reason=wrong or used scratch code",
        "login established user=erin",
    ] {
        s.wait_for(reason, |s| s.log("credentials.log").contains(reason));
    }
    drop(c);
}

#[test]
fn ip_throttle_refuses_even_good_credentials() {
    let s = TestServer::start_with(|c| c.ip_failures_per_min = 5);
    let acc = register(s.addr(), "frank");
    for _ in 0..5 {
        let mut c = Client::connect(s.addr());
        c.send(&ClientMsg::Login {
            user: "frank",
            password: "not the password",
            otp: "000000",
        });
        c.expect_error(ErrorCode::InvalidCredentials);
        c.expect_closed();
    }
    let mut c = Client::connect(s.addr());
    c.send(&ClientMsg::Login {
        user: "frank",
        password: PASSWORD,
        otp: &code_at_offset(&acc.secret, 0),
    });
    c.expect_error(ErrorCode::InvalidCredentials);
    c.expect_closed();
    s.wait_for("throttle logged", |s| {
        s.log("credentials.log")
            .contains("too many failures from this address")
    });
}

#[test]
fn ip_throttle_holds_against_parallel_attempts() {
    // All attempts are in flight before any has failed: each must count when it begins, or
    // every one of them passes the check and reaches the password.
    // A hashing queue long enough for every attempt that passes the throttle: on a machine with
    // one or two cores the default (twice the workers) can answer Busy, which is counted too.
    let s = TestServer::start_with(|c| {
        c.ip_failures_per_min = 5;
        c.hash_queue = 32;
    });
    let _acc = register(s.addr(), "parallel");
    let mut clients: Vec<Client> = (0..20).map(|_| Client::connect(s.addr())).collect();
    for c in &mut clients {
        c.send(&ClientMsg::Login {
            user: "parallel",
            password: "not the password",
            otp: "000000",
        });
    }
    for c in &mut clients {
        c.expect_error(ErrorCode::InvalidCredentials);
    }
    // Stopping writes the counts of coalesced lines.
    let mut s = s;
    s.stop();
    let log = s.log("credentials.log");
    let judged = count_events(&log, "reason=wrong password");
    let refused = count_events(&log, "too many failures from this address");
    assert_eq!(
        judged, 5,
        "attempts that reached the password check:\n{log}"
    );
    assert_eq!(refused, 15, "{log}");
}

#[test]
fn account_lockout_after_consecutive_failures() {
    // Wrong codes after the right password (TOTP brute force) lock; wrong passwords do not
    // (the login_attacks tests show that).
    let s = TestServer::start_with(|c| {
        c.lock_after = 3;
        c.failure_delay = Duration::from_millis(5);
    });
    let acc = register(s.addr(), "gina");
    let near: Vec<String> = (-1..=1).map(|o| code_at_offset(&acc.secret, o)).collect();
    let wrong = &["000000", "000001", "000002", "000003"]
        .into_iter()
        .find(|c| !near.iter().any(|n| n == c))
        .unwrap();
    for _ in 0..3 {
        let mut c = Client::connect(s.addr());
        c.send(&ClientMsg::Login {
            user: "gina",
            password: PASSWORD,
            otp: wrong,
        });
        c.expect_error(ErrorCode::InvalidCredentials);
        c.expect_closed();
    }
    let mut c = Client::connect(s.addr());
    c.send(&ClientMsg::Login {
        user: "gina",
        password: PASSWORD,
        otp: &code_at_offset(&acc.secret, 0),
    });
    c.expect_error(ErrorCode::InvalidCredentials);
    c.expect_closed();
    s.wait_for("lock logged", |s| {
        s.log("credentials.log").contains("reason=account locked")
    });
    // An admin unlocks it (the real binary, on the live database).
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_chatbox-server"))
        .args(["user", "unlock", "gina", "--data-dir"])
        .arg(s.data_dir())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let _c = login(s.addr(), &acc, 0);
    let failures: i64 = s.scalar("SELECT failures FROM REGISTERED WHERE User = 'gina'");
    assert_eq!(failures, 0);
}

#[test]
fn connection_limits_answer_server_full() {
    let s = TestServer::start_with(|c| c.max_per_ip = 2);
    let mut a = Client::connect(s.addr());
    let mut b = Client::connect(s.addr());
    let mut c = Client::connect(s.addr());
    c.expect_error(ErrorCode::ServerFull);
    c.expect_closed();
    a.ping(1);
    b.ping(2);
}

#[test]
fn busy_pool_answers_busy_not_queueing() {
    // One worker, a queue of one: a burst of logins must see Busy for some.
    let s = TestServer::start_with(|c| {
        c.hash_workers = 1;
        c.hash_queue = 1;
        c.pbkdf2_iterations = 400_000;
    });
    let mut clients: Vec<Client> = (0..6).map(|_| Client::connect(s.addr())).collect();
    for c in &mut clients {
        c.send(&ClientMsg::Login {
            user: "nobody",
            password: PASSWORD,
            otp: "123456",
        });
    }
    let mut busy = 0;
    for c in &mut clients {
        let r = c.recv_until("an error", |m| matches!(m, ServerMsg::Error { .. }));
        if r.error_code() == Some(ErrorCode::Busy as u16) {
            busy += 1;
        }
    }
    assert!(busy >= 1, "no Busy answer");
}
