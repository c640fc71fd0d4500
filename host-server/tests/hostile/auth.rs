//! Hostile clients, on accounts: registering taken, pending or racing names, brute force on
//! password and OTP (per account and per address), OTP and scratch-code reuse (also racing),
//! what an anonymous connection may send. The fixture is in fixture.rs.

use core::net::SocketAddr;
use core::time::Duration;

use crate::fixture::*;
use chatbox_core::proto::{ClientMsg, ErrorCode, ServerMsg};
use chatbox_server::test_util::*;

// ---------------------------------------------------------------------------------------------
// Accounts.

#[test]
fn registering_an_existing_pending_or_racing_name() {
    let mut room = Room::new();
    let before = room.snapshot();
    // Existing (confirmed) name: refused and closed; alice's row untouched.
    let mut c = Client::connect(room.addr());
    c.send(&ClientMsg::Register {
        user: "alice",
        password: "a new password for alice",
    });
    c.expect_error(ErrorCode::AlreadyRegistered);
    c.expect_closed();
    assert_eq!(room.snapshot(), before);
    // Pending on another connection: refused too (no squatting over someone's registration).
    let mut p = Client::connect(room.addr());
    p.send(&ClientMsg::Register {
        user: "carol",
        password: PASSWORD,
    });
    assert!(matches!(p.recv().msg(), ServerMsg::RegisterStarted { .. }));
    let mut q = Client::connect(room.addr());
    q.send(&ClientMsg::Register {
        user: "carol",
        password: "the squatter's password",
    });
    q.expect_error(ErrorCode::AlreadyRegistered);
    q.expect_closed();
    drop(p);
    // Racing: eight connections register the same new name at once; exactly one starts.
    let addr = room.addr();
    let results: Vec<bool> = (0..8)
        .map(|_| {
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                c.send(&ClientMsg::Register {
                    user: "dave",
                    password: PASSWORD,
                });
                let r = c.recv();
                let ok = matches!(r.msg(), ServerMsg::RegisterStarted { .. });
                if ok {
                    // Hold it until the others have answered.
                    std::thread::sleep(Duration::from_millis(500));
                } else {
                    // Taken, or the hashing pool was full (Busy): never a second start.
                    let code = r.error_code();
                    assert!(
                        code == Some(ErrorCode::AlreadyRegistered as u16)
                            || code == Some(ErrorCode::Busy as u16),
                        "{r:?}"
                    );
                }
                ok
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    assert_eq!(
        results.iter().filter(|&&ok| ok).count(),
        1,
        "racing registrations: {results:?}"
    );
    // All of them gone again (unconfirmed), alice unchanged.
    room.s.wait_for("pending rows discarded", |s| {
        snapshot(&s.data_dir().join("chatbox.db")) == before
    });
    room.honest();
}

/// One login on a new connection: the error code (`None`: logged in) and the answer's delay.
fn attempt(addr: SocketAddr, user: &str, password: &str, otp: &str) -> (Option<u16>, Duration) {
    let (r, took) = Client::connect(addr).timed_login(user, password, otp);
    (r.error_code(), took)
}

/// [`attempt`] from the source address `from`.
fn attempt_from(
    addr: SocketAddr,
    from: [u8; 4],
    user: &str,
    password: &str,
    otp: &str,
) -> (Option<u16>, Duration) {
    let (r, took) = Client::connect_from(addr, from.into()).timed_login(user, password, otp);
    (r.error_code(), took)
}

fn lock_state(room: &Room, user: &str) -> (i64, i64) {
    room.s
        .db()
        .query_row(
            "SELECT failures, locked_until FROM REGISTERED WHERE User = ?1",
            [user],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
}

#[test]
fn brute_force_on_password_and_on_otp_is_slowed_then_locked() {
    let mut room = Room::with(|c| {
        c.lock_after = 4;
        c.failure_delay = Duration::from_millis(40);
        c.lock_duration = Duration::from_millis(2500);
    });
    let addr = room.addr();
    // Each mode from its own address, so that the per-address delay starts afresh.
    for (mode, from) in [
        ("password", [127, 0, 0, 20]),
        ("unknown", [127, 0, 0, 21]),
        ("otp", [127, 0, 0, 22]),
    ] {
        let user = format!("victim-{mode}");
        let acc = (mode != "unknown").then(|| register(addr, &user));
        let before = room.snapshot();
        let mut times = Vec::new();
        for _ in 0..4 {
            let (pw, otp) = match (&acc, mode) {
                (Some(acc), "otp") => (PASSWORD.to_owned(), wrong_code(&acc.secret)),
                (Some(acc), _) => (
                    "guessed password".to_owned(),
                    code_at_offset(&acc.secret, 0),
                ),
                (None, _) => ("guessed password".to_owned(), "123456".to_owned()),
            };
            let (code, took) = attempt_from(addr, from, &user, &pw, &otp);
            assert_eq!(code, Some(ErrorCode::InvalidCredentials as u16));
            times.push(took);
        }
        // The delay grows: 40, 80, 160, 320 ms, for a wrong password on a real account, on an
        // unknown name and for a wrong code alike.
        assert!(
            times[3] >= Duration::from_millis(300) && times[3] > times[0] * 3,
            "{mode}: delays {times:?}"
        );
        let Some(acc) = acc else {
            room.honest();
            continue;
        };
        let from_ip = format!("{}.{}.{}.{}", from[0], from[1], from[2], from[3]);
        if mode == "password" {
            // Wrong passwords, `lock_after` of them, locked nothing and counted nothing on the
            // account: the owner logs in, even from the guesser's address.
            assert_eq!(lock_state(&room, &user), (0, 0), "{mode}");
            let after = room.snapshot();
            assert_eq!(after, before, "a wrong password changed stored data");
            let mut c = Client::connect_from(addr, from.into());
            c.send(&ClientMsg::Login {
                user: &user,
                password: PASSWORD,
                otp: &code_at_offset(&acc.secret, 0),
            });
            assert!(matches!(c.recv().msg(), ServerMsg::LoginOk { .. }));
            room.s.wait_events(
                "credentials.log",
                &format!("login failed user={user} from={from_ip}"),
                4,
            );
            room.honest();
            continue;
        }
        // OTP brute force (the right password, wrong codes): locked after `lock_after`; the
        // right password and code are refused now, and the row says so.
        let (code, _) = attempt_from(addr, from, &user, PASSWORD, &code_at_offset(&acc.secret, 0));
        assert_eq!(code, Some(ErrorCode::InvalidCredentials as u16), "{mode}");
        let (failures, locked) = lock_state(&room, &user);
        assert!(
            locked > 0 && failures == 4,
            "{mode}: not locked ({failures}, {locked})"
        );
        room.s.wait_for("lock logged", |s| {
            let log = s.log("credentials.log");
            log.contains(&format!("login failed user={user} from={from_ip}"))
                && log.contains("(account now locked)")
                && log.contains("reason=account locked")
        });
        // Only the victim's row changed.
        let after = room.snapshot();
        assert_eq!(after.messages, before.messages);
        let others = |s: &Snapshot| -> Vec<String> {
            s.registered
                .iter()
                .filter(|r| !r.contains(&user))
                .cloned()
                .collect()
        };
        assert_eq!(others(&after), others(&before));
        room.honest();
        // The lock expires; then the right credentials work and reset the count.
        std::thread::sleep(Duration::from_millis(2600));
        let _c = login(addr, &acc, 0);
        assert_eq!(lock_state(&room, &user).0, 0);
    }
    room.honest();
}

#[test]
fn brute_force_across_accounts_is_throttled_per_address() {
    // Credential stuffing: one guess per account, many accounts, one address.
    let mut room = Room::with(|c| c.ip_failures_per_min = 3);
    let carol = register(room.addr(), "carol");
    let before = room.snapshot();
    let addr = room.addr();
    for user in ["alice", "bob", "nobody"] {
        let (code, _) = attempt(addr, user, "hunter2hunter2", "000000");
        assert_eq!(code, Some(ErrorCode::InvalidCredentials as u16), "{user}");
    }
    // Now even carol's real credentials are refused from that address (the check comes
    // before any password work), and her code is not consumed.
    let (code, _) = attempt(addr, "carol", PASSWORD, &code_at_offset(&carol.secret, 0));
    assert_eq!(code, Some(ErrorCode::InvalidCredentials as u16));
    room.s.wait_for("throttle logged", |s| {
        s.log("credentials.log")
            .contains("login refused user=carol from=127.0.0.1")
            && s.log("credentials.log")
                .contains("too many failures from this address")
    });
    let after = room.snapshot();
    assert_eq!(after.messages, before.messages);
    // The guessed accounts were not locked by one failure each, and carol's row is as it was.
    let row = |s: &Snapshot, u: &str| {
        s.registered
            .iter()
            .find(|r| r.starts_with(&format!("Text(\"{u}\")")))
            .cloned()
    };
    assert_eq!(row(&after, "carol"), row(&before, "carol"));
    // Users already logged in from that address keep chatting.
    room.honest();
}

#[test]
fn otp_reuse_within_the_window_even_concurrently() {
    let mut room = Room::new();
    let acc = register(room.addr(), "erin");
    let addr = room.addr();
    // Sequential: the current code once; then the previous step (older) is refused too.
    let _c = login(addr, &acc, 0);
    let (code, _) = attempt(addr, "erin", PASSWORD, &code_at_offset(&acc.secret, 0));
    assert_eq!(code, Some(ErrorCode::InvalidCredentials as u16), "reuse");
    let (code, _) = attempt(addr, "erin", PASSWORD, &code_at_offset(&acc.secret, -1));
    assert_eq!(
        code,
        Some(ErrorCode::InvalidCredentials as u16),
        "older step"
    );
    // Concurrent: eight logins with the same fresh code (+1) at once; one may win, no more.
    let code = code_at_offset(&acc.secret, 1);
    let wins: usize = (0..8)
        .map(|_| {
            let code = code.clone();
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                c.send(&ClientMsg::Login {
                    user: "erin",
                    password: PASSWORD,
                    otp: &code,
                });
                let r = c.recv();
                usize::from(matches!(r.msg(), ServerMsg::LoginOk { .. }))
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .sum();
    assert_eq!(wins, 1, "one TOTP code logged in {wins} sessions at once");
    room.honest();
}

#[test]
fn scratch_code_reuse_even_concurrently_and_across_accounts() {
    let mut room = Room::new();
    let acc = register(room.addr(), "frank");
    let addr = room.addr();
    // Another user's scratch code does not work for frank.
    let (code, _) = attempt(addr, "frank", PASSWORD, &room.alice.scratch[9]);
    assert_eq!(code, Some(ErrorCode::InvalidCredentials as u16));
    // Concurrent use of one scratch code: exactly one session.
    let sc = acc.scratch[0].clone();
    let wins: usize = (0..8)
        .map(|_| {
            let sc = sc.clone();
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                c.send(&ClientMsg::Login {
                    user: "frank",
                    password: PASSWORD,
                    otp: &sc,
                });
                usize::from(matches!(c.recv().msg(), ServerMsg::LoginOk { .. }))
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .sum();
    assert_eq!(wins, 1, "one scratch code opened {wins} sessions");
    let (code, _) = attempt(addr, "frank", PASSWORD, &sc);
    assert_eq!(code, Some(ErrorCode::InvalidCredentials as u16), "reuse");
    let left: i64 = room
        .s
        .scalar("SELECT COUNT(*) FROM SCRATCH WHERE User='frank' AND used=0");
    assert_eq!(left, 9);
    // Alice's code 9 is still good for alice.
    let _a = login_with(addr, "alice", &room.alice.scratch[9]);
    room.honest();
}

#[test]
fn anonymous_may_do_nothing_but_authenticate() {
    let mut room = Room::new();
    let before = room.snapshot();
    let mut c = Client::connect(room.addr());
    let msgs = [
        ClientMsg::Say {
            room: "#lobby",
            text: "hi",
        },
        ClientMsg::Action {
            target: "#lobby",
            text: "hi",
        },
        ClientMsg::Private {
            to: "alice",
            text: "hi",
        },
        ClientMsg::Join { room: "#secret" },
        ClientMsg::Part {
            room: "#lobby",
            reason: "",
        },
        ClientMsg::Names { room: "#lobby" },
        ClientMsg::Whois { user: "alice" },
        ClientMsg::Away { text: "x" },
        ClientMsg::ListRooms,
        ClientMsg::Topic {
            room: "#lobby",
            topic: Some("pwned"),
        },
        ClientMsg::History {
            target: "#lobby",
            before_id: 0,
            limit: 50,
        },
        ClientMsg::History {
            target: "alice",
            before_id: 0,
            limit: 50,
        },
        ClientMsg::Help,
        ClientMsg::Kick {
            room: "#lobby",
            user: "alice",
            reason: "",
        },
        ClientMsg::Ban {
            user: "alice",
            seconds: 0,
            reason: "",
        },
        ClientMsg::Unban { user: "alice" },
        ClientMsg::Mute {
            user: "alice",
            seconds: 0,
            reason: "",
        },
        ClientMsg::Unmute { user: "alice" },
        ClientMsg::SetMotd { text: "pwned" },
    ];
    for m in &msgs {
        c.send(m);
        let r = c.recv_until("error", |m| !matches!(m, ServerMsg::Pong { .. }));
        assert_eq!(
            r.error_code(),
            Some(ErrorCode::NotAuthenticated as u16),
            "{m:?} -> {r:?}"
        );
    }
    // During a registration (pending, not confirmed) it is still anonymous.
    c.send(&ClientMsg::Register {
        user: "mallory",
        password: PASSWORD,
    });
    assert!(matches!(c.recv().msg(), ServerMsg::RegisterStarted { .. }));
    c.send(&msgs[0]);
    c.expect_error(ErrorCode::NotAuthenticated);
    // A login attempt while registering is refused (bad state), still anonymous.
    c.send(&ClientMsg::Login {
        user: "alice",
        password: PASSWORD,
        otp: &code_at_offset(&room.alice.secret, 1),
    });
    c.expect_error(ErrorCode::BadState);
    c.send(&msgs[0]);
    c.expect_error(ErrorCode::NotAuthenticated);
    drop(c);
    // Bob saw nothing of it.
    room.honest();
    room.s.wait_for("pending discarded", |s| {
        snapshot(&s.data_dir().join("chatbox.db")).registered == before.registered
    });
    assert_eq!(room.snapshot().messages, before.messages);
}
