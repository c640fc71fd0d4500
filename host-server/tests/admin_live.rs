//! Issue 13, item 3: administrators' changes made with `chatbox-server user …` (a separate
//! process, straight on the database) reach the live sessions of the running server binary:
//! a demoted operator loses operator commands at once, a locked, deleted or re-enrolled user's
//! sessions get a `Bye` and are closed within the poll interval.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/binserver.rs"]
mod binserver;
use chatbox_server::test_util as common;

use core::time::Duration;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use chatbox_core::proto::{ClientMsg, ErrorCode, PresenceKind, ServerMsg};
use common::*;

/// Polls the database every 200 ms: a change takes effect within that (plus scheduling).
const POLL_MS: &str = "200";
/// The bound a test waits for a change to show (a loaded 2-core machine is slow).
const BOUND: Duration = Duration::from_secs(5);

/// `chatbox-server user ARGS --data-dir DATA`; panics unless it exits 0.
fn admin(data: &Path, args: &[&str]) -> String {
    binserver::run_ok(
        Command::new(binserver::server_bin())
            .arg("user")
            .args(args)
            .arg("--data-dir")
            .arg(data),
        &format!("user {args:?}"),
    )
}

fn told(m: &ServerMsg<'_>) -> bool {
    matches!(m, ServerMsg::Info { text } if text.contains("role to user"))
}

/// Sends `msg` and waits for its answer (an error, or the kick's presence line); notes in
/// `notice` whether the role notice came meanwhile.
fn answer(op: &mut Client, msg: &ClientMsg<'_>, notice: &mut bool) -> Rec {
    op.send(msg);
    op.recv_until("answer", |m| {
        *notice |= told(m);
        matches!(m, ServerMsg::Error { .. })
            || matches!(
                m,
                ServerMsg::Presence {
                    kind: PresenceKind::Kicked,
                    ..
                }
            )
    })
}

fn kick(op: &mut Client, user: &str, notice: &mut bool) -> Rec {
    let msg = ClientMsg::Kick {
        room: "#lobby",
        user,
        reason: "test",
    };
    answer(op, &msg, notice)
}

#[test]
fn role_lock_delete_and_reset_otp_reach_live_sessions_of_the_running_binary() {
    let dir = tempfile::tempdir().unwrap();
    let (data, log) = (dir.path().join("data"), dir.path().join("log"));
    let mut srv = binserver::BinServer::start(&data, &log, &["--admin-poll-ms", POLL_MS]);
    let addr = srv.addr;
    let boss = register(addr, "boss");
    let names = ["carol", "dave", "erin", "frank"];
    let accounts: Vec<Account> = names.iter().map(|n| register(addr, n)).collect();
    // Promoted before logging in; boss's kick works.
    admin(&data, &["role", "boss", "op"]);
    let mut op = login(addr, &boss, 0);
    let mut c: Vec<Client> = accounts.iter().map(|a| login(addr, a, 0)).collect();
    let mut notice = false;
    let r = kick(&mut op, "carol", &mut notice);
    assert!(
        matches!(
            r.msg(),
            ServerMsg::Presence {
                kind: PresenceKind::Kicked,
                ..
            }
        ),
        "op's kick refused: {r:?}"
    );
    c[0].send(&ClientMsg::Join { room: "#lobby" });
    c[0].recv_until("rejoined", |m| {
        matches!(m, ServerMsg::History { done: true, .. })
    });

    // Demoted while logged in: the very next operator command is refused (rights are read
    // when used, no waiting for the poll).
    let out = admin(&data, &["role", "boss", "user"]);
    assert!(out.contains("boss is now user"), "{out}");
    let r = kick(&mut op, "carol", &mut notice);
    assert_eq!(
        r.error_code(),
        Some(ErrorCode::NotPermitted as u16),
        "{r:?}"
    );
    for msg in [
        ClientMsg::Mute {
            user: "carol",
            seconds: 60,
            reason: "x",
        },
        ClientMsg::Ban {
            user: "carol",
            seconds: 60,
            reason: "x",
        },
        ClientMsg::SetMotd { text: "owned" },
    ] {
        let r = answer(&mut op, &msg, &mut notice);
        assert_eq!(
            r.error_code(),
            Some(ErrorCode::NotPermitted as u16),
            "{r:?}"
        );
    }
    // And the demoted user is told (through the poll).
    if !notice {
        op.recv_until("role notice", told);
    }

    // Locked, deleted, re-enrolled: Bye and closed within the bound.
    let mut measured = Vec::new();
    for (i, (action, word)) in [
        ("lock", "locked"),
        ("delete", "deleted"),
        ("reset-otp", "second factor reset"),
    ]
    .into_iter()
    .enumerate()
    {
        let user = names[i];
        admin(&data, &[action, user]);
        let (reason, took) = c[i].bye_within(BOUND);
        assert!(reason.contains(word), "{action}: Bye {reason:?}");
        measured.push(format!("{action} {took:?}"));
    }
    println!("admin change → Bye and close (poll {POLL_MS} ms): {measured:?}");
    // The one nobody touched is still chatting, and boss is still logged in (as a user).
    c[3].ping(4);
    op.ping(5);
    // The locked and deleted users cannot come back.
    for name in ["carol", "dave"] {
        let mut x = Client::connect(addr);
        x.send(&ClientMsg::Login {
            user: name,
            password: PASSWORD,
            otp: &code_at_offset(&accounts[0].secret, 1),
        });
        x.expect_error(ErrorCode::InvalidCredentials);
    }
    srv.terminate();
    let info = std::fs::read_to_string(log.join("info.log")).unwrap();
    for line in [
        "admin: lock carol: 1 session(s) on this node closed",
        "admin: delete dave: 1 session(s) on this node closed",
        "admin: reset-otp erin: 1 session(s) on this node closed",
        "admin: boss is now user",
    ] {
        assert!(info.contains(line), "info.log lacks {line:?}");
    }
}

/// A `lock` written while the user's login is checking the password (slow hashing makes the
/// window seconds wide): the login's own update would clear the fresh lock and the poller may
/// look before the session exists. The session must still be closed with `Bye` and the
/// account must stay locked. On the old code the login gets in and the lock is gone.
#[test]
fn a_lock_racing_a_login_still_closes_the_session_and_stays() {
    let dir = tempfile::tempdir().unwrap();
    let (data, log) = (dir.path().join("data"), dir.path().join("log"));
    // More than a second per hash here: the lock lands during the login's hash.
    let srv = binserver::BinServer::start(
        &data,
        &log,
        &["--admin-poll-ms", POLL_MS, "--pbkdf2-iterations", "5000000"],
    );
    let addr = srv.addr;
    let t0 = Instant::now();
    let gina = register(addr, "gina");
    let hash = t0.elapsed();
    let mut c = Client::connect(addr);
    c.send(&ClientMsg::Login {
        user: "gina",
        password: PASSWORD,
        otp: &code_at_offset(&gina.secret, 0),
    });
    std::thread::sleep(hash / 8);
    admin(&data, &["lock", "gina"]);
    let locked_at = t0.elapsed();
    let mut got = Vec::new();
    let end = Instant::now() + Duration::from_secs(30);
    let closed = loop {
        match c.try_recv(end.saturating_duration_since(Instant::now())) {
            Ok(r) => got.push(format!("{r:?}")),
            Err(RecvError::Closed) => break true,
            Err(RecvError::Timeout) => break false,
        }
    };
    println!(
        "registration hash {hash:?}; lock written at {locked_at:?}; the login's answer: {got:?}"
    );
    assert!(closed, "the session stayed open: {got:?}");
    assert!(
        got.iter()
            .any(|m| m.contains("Bye") && m.contains("locked")),
        "no Bye: {got:?}"
    );
    assert!(
        !got.iter().any(|m| m.contains("LoginOk")),
        "the raced login got in: {got:?}"
    );
    let show = admin(&data, &["show", "gina"]);
    assert!(show.contains("locked until"), "the lock was lost: {show}");
    drop(srv);
    let info = std::fs::read_to_string(log.join("info.log")).unwrap();
    assert!(
        info.contains("admin: lock gina raced a login; lock written again, session closed"),
        "not the raced path: {info}"
    );
}
