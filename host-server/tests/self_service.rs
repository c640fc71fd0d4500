//! Issue 14 item 4: account self-service on a live session (password change, second-factor
//! re-enrolment, the user's own sessions), on the real server over TCP with core's client
//! session. Cross-node closing is in `cluster.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/binserver.rs"]
mod binserver;
use chatbox_server::test_util as common;

use core::time::Duration;

use chatbox_core::proto::{ClientMsg, ErrorCode, ServerMsg};
use common::{
    Client, PASSWORD, RecvError, TestServer, avoid_step_edge, code_at_offset, login, register,
    secret_of,
};

const NEW_PASSWORD: &str = "a brand new passphrase";

fn expect_bye(c: &mut Client, reason: &str) {
    let r = c.recv_until("bye", |m| matches!(m, ServerMsg::Bye { .. }));
    assert!(
        matches!(r.msg(), ServerMsg::Bye { reason: got } if got == reason),
        "{r:?}"
    );
    c.expect_closed();
}

fn login_pw(s: &TestServer, user: &str, password: &str, otp: &str) -> Result<Client, u16> {
    let mut c = Client::connect(s.addr());
    c.send(&ClientMsg::Login {
        user,
        password,
        otp,
    });
    let r = c.recv();
    match r.msg() {
        ServerMsg::LoginOk { .. } => Ok(c),
        ServerMsg::Error { code, .. } => Err(code),
        other => panic!("{other:?}"),
    }
}

/// credentials.log once it holds every line of `wants` (logs are written asynchronously).
fn creds_with(s: &TestServer, wants: &[&str]) -> String {
    s.wait_for("credentials.log lines", |s| {
        let c = s.log("credentials.log");
        wants.iter().all(|w| c.contains(w))
    });
    s.log("credentials.log")
}

fn still_open(c: &mut Client) {
    c.ping(77);
}

#[test]
fn password_change_closes_other_sessions_and_old_password_stops_working() {
    let s = TestServer::start();
    let acc = register(s.addr(), "pat");
    avoid_step_edge();
    let mut a = login(s.addr(), &acc, 0);
    let mut b = login(s.addr(), &acc, 1);
    // Wrong current password: refused, counted, session kept.
    a.send(&ClientMsg::ChangePassword {
        password: "not the password",
        otp: &code_at_offset(&acc.secret, 0),
        new_password: NEW_PASSWORD,
    });
    a.expect_error(ErrorCode::InvalidCredentials);
    still_open(&mut a);
    // Bad new password: refused before anything is checked.
    a.send(&ClientMsg::ChangePassword {
        password: PASSWORD,
        otp: &code_at_offset(&acc.secret, 0),
        new_password: "short",
    });
    a.expect_error(ErrorCode::InvalidPassword);
    // The code this session logged in with is accepted once more here (possession shown on
    // this connection); elsewhere it is spent.
    let r = a.change_password(PASSWORD, &code_at_offset(&acc.secret, 0), NEW_PASSWORD);
    assert!(
        matches!(r.msg(), ServerMsg::PasswordChanged { closed: 1 }),
        "{r:?}"
    );
    expect_bye(&mut b, "credentials changed in another session");
    still_open(&mut a);
    // Old password refused, new one works (scratch codes: the TOTP steps are spent).
    assert_eq!(
        login_pw(&s, "pat", PASSWORD, &acc.scratch[0]).err(),
        Some(ErrorCode::InvalidCredentials as u16)
    );
    assert!(login_pw(&s, "pat", NEW_PASSWORD, &acc.scratch[1]).is_ok());
    let creds = creds_with(&s, &["password changed user=pat"]);
    assert!(
        creds.contains("password change refused user=pat"),
        "{creds}"
    );
    assert!(creds.contains("reason=wrong password"));
    assert!(creds.contains("password changed user=pat"));
    assert!(!creds.contains(NEW_PASSWORD) && !creds.contains(PASSWORD));
}

#[test]
fn a_spent_code_from_another_session_is_refused() {
    let s = TestServer::start();
    let acc = register(s.addr(), "quinn");
    avoid_step_edge();
    let _a = login(s.addr(), &acc, 0);
    let mut b = login(s.addr(), &acc, 1);
    // Step 0 was spent by session a's login: b may not use it.
    b.send(&ClientMsg::ChangePassword {
        password: PASSWORD,
        otp: &code_at_offset(&acc.secret, 0),
        new_password: NEW_PASSWORD,
    });
    b.expect_error(ErrorCode::InvalidCredentials);
    assert!(login_pw(&s, "quinn", PASSWORD, &acc.scratch[0]).is_ok());
}

#[test]
fn reenrolment_replaces_secret_and_scratch_codes_only_when_confirmed() {
    let s = TestServer::start();
    let acc = register(s.addr(), "rae");
    avoid_step_edge();
    let mut a = login(s.addr(), &acc, 0);
    let mut b = login(s.addr(), &acc, 1);
    a.send(&ClientMsg::ConfirmReenrol { code: "123456" });
    a.expect_error(ErrorCode::BadState);
    a.send(&ClientMsg::Reenrol {
        password: PASSWORD,
        otp: &acc.scratch[0],
    });
    let r = a.recv_until("started", |m| {
        matches!(
            m,
            ServerMsg::ReenrolStarted { .. } | ServerMsg::Error { .. }
        )
    });
    let ServerMsg::ReenrolStarted { uri } = r.msg() else {
        panic!("{r:?}");
    };
    let new_secret = secret_of(uri);
    assert_ne!(new_secret, acc.secret);
    // Until confirmed, the old factor still works (a scratch code of the old set).
    assert!(login_pw(&s, "rae", PASSWORD, &acc.scratch[1]).is_ok());
    // A code of the OLD secret does not confirm.
    a.send(&ClientMsg::ConfirmReenrol {
        code: &code_at_offset(&acc.secret, 0),
    });
    a.expect_error(ErrorCode::InvalidCode);
    avoid_step_edge();
    a.send(&ClientMsg::ConfirmReenrol {
        code: &code_at_offset(&new_secret, 0),
    });
    let r = a.recv_until("reenrolled", |m| {
        matches!(m, ServerMsg::Reenrolled { .. } | ServerMsg::Error { .. })
    });
    let ServerMsg::Reenrolled {
        closed,
        scratch_codes,
    } = r.msg()
    else {
        panic!("{r:?}");
    };
    // b and the login above (still open).
    assert!(closed >= 1, "{closed}");
    let new_scratch: Vec<String> = scratch_codes.iter().map(str::to_owned).collect();
    assert_eq!(new_scratch.len(), 10);
    expect_bye(&mut b, "credentials changed in another session");
    still_open(&mut a);
    // Old scratch codes and old TOTP are gone; the new ones work.
    assert_eq!(
        login_pw(&s, "rae", PASSWORD, &acc.scratch[2]).err(),
        Some(ErrorCode::InvalidCredentials as u16)
    );
    assert_eq!(
        login_pw(&s, "rae", PASSWORD, &code_at_offset(&acc.secret, 1)).err(),
        Some(ErrorCode::InvalidCredentials as u16)
    );
    assert!(login_pw(&s, "rae", PASSWORD, &new_scratch[0]).is_ok());
    assert!(login_pw(&s, "rae", PASSWORD, &code_at_offset(&new_secret, 1)).is_ok());
    let creds = creds_with(&s, &["second factor re-enrolled user=rae"]);
    assert!(creds.contains("re-enrolment started user=rae"));
    assert!(creds.contains("re-enrolment code wrong user=rae"));
    assert!(creds.contains("second factor re-enrolled user=rae"));
    let b32 = uri
        .split("secret=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    assert!(!creds.contains(b32) && !s.log("info.log").contains(b32));
}

#[test]
fn sessions_list_and_revoke() {
    let s = TestServer::start();
    let acc = register(s.addr(), "sam");
    let other = register(s.addr(), "tom");
    avoid_step_edge();
    let mut a = login(s.addr(), &acc, 0);
    let mut b = login(s.addr(), &acc, 1);
    let mut t = login(s.addr(), &other, 0);
    a.send(&ClientMsg::Sessions);
    let r = a.recv_until("sessions", |m| matches!(m, ServerMsg::SessionList { .. }));
    let ServerMsg::SessionList { done, sessions } = r.msg() else {
        unreachable!()
    };
    assert!(done);
    let list: Vec<_> = sessions
        .iter()
        .map(|e| {
            (
                e.id.to_owned(),
                e.node.to_owned(),
                e.address.to_owned(),
                e.since_ms,
                e.current,
            )
        })
        .collect();
    assert_eq!(list.len(), 2, "{list:?}");
    assert_eq!(list.iter().filter(|e| e.4).count(), 1);
    assert!(
        list.iter()
            .all(|e| e.2.starts_with("127.0.0.1:") && e.3 > 0)
    );
    let mine = list.iter().find(|e| e.4).unwrap().0.clone();
    let theirs = list.iter().find(|e| !e.4).unwrap().0.clone();
    // Not one's own, not unknown, not another user's.
    for bad in [
        mine.as_str(),
        "nope/1",
        "",
        &format!("{}/999999", list[0].1),
    ] {
        a.send(&ClientMsg::RevokeSession { id: bad });
        a.expect_error(ErrorCode::NoSuchSession);
    }
    a.send(&ClientMsg::RevokeSession { id: &theirs });
    let r = a.recv_until("revoked", |m| {
        matches!(m, ServerMsg::SessionsRevoked { .. })
    });
    assert!(matches!(r.msg(), ServerMsg::SessionsRevoked { count: 1 }));
    expect_bye(&mut b, "session closed by its owner");
    still_open(&mut t);
    // Others: none left now; a new one is closed.
    let mut c = common::login_with(s.addr(), "sam", &acc.scratch[0]).ping_ok();
    a.send(&ClientMsg::RevokeOtherSessions);
    let r = a.recv_until("revoked", |m| {
        matches!(m, ServerMsg::SessionsRevoked { .. })
    });
    assert!(
        matches!(r.msg(), ServerMsg::SessionsRevoked { count: 1 }),
        "{r:?}"
    );
    expect_bye(&mut c, "session closed by its owner");
    still_open(&mut a);
    still_open(&mut t);
    creds_with(&s, &["session revoked by owner user=sam"]);
    // Before login, none of this is allowed.
    let mut anon = Client::connect(s.addr());
    anon.send(&ClientMsg::Sessions);
    anon.expect_error(ErrorCode::NotAuthenticated);
    let _ = (Duration::ZERO, RecvError::Closed);
}

trait PingOk {
    fn ping_ok(self) -> Self;
}

impl PingOk for Client {
    fn ping_ok(mut self) -> Self {
        self.ping(5);
        self
    }
}

#[test]
fn a_locked_account_cannot_change_its_password_from_an_open_session() {
    let s = TestServer::start();
    let acc = register(s.addr(), "uma");
    avoid_step_edge();
    let mut a = login(s.addr(), &acc, 0);
    // An administrator locks the account while the session is open.
    binserver::run_ok(
        std::process::Command::new(binserver::server_bin())
            .args(["user", "lock", "uma", "--data-dir"])
            .arg(s.data_dir())
            .env_remove("CHATBOX_DATABASE"),
        "user lock uma",
    );
    a.send(&ClientMsg::ChangePassword {
        password: PASSWORD,
        otp: &code_at_offset(&acc.secret, 1),
        new_password: NEW_PASSWORD,
    });
    let r = a.recv_until("refusal", |m| {
        matches!(
            m,
            ServerMsg::Error { .. } | ServerMsg::Bye { .. } | ServerMsg::PasswordChanged { .. }
        )
    });
    assert!(
        !matches!(r.msg(), ServerMsg::PasswordChanged { .. }),
        "a locked account changed its password"
    );
    // Still locked, old password unchanged.
    let locked: i64 = s.scalar("SELECT locked_until FROM REGISTERED WHERE User = 'uma'");
    assert!(locked > 0);
    assert_eq!(
        login_pw(&s, "uma", NEW_PASSWORD, &acc.scratch[0]).err(),
        Some(ErrorCode::InvalidCredentials as u16)
    );
}

#[test]
fn help_lists_the_account_commands() {
    let s = TestServer::start();
    let acc = register(s.addr(), "val");
    avoid_step_edge();
    let mut a = login(s.addr(), &acc, 0);
    a.send(&ClientMsg::Help);
    let r = a.recv_until(
        "account help line",
        |m| matches!(m, ServerMsg::Info { text } if text.starts_with("Account:")),
    );
    let ServerMsg::Info { text } = r.msg() else {
        unreachable!()
    };
    for cmd in [
        "/sessions",
        "/sessions revoke ID|others",
        "/passwd",
        "/reenrol",
    ] {
        assert!(text.contains(cmd), "{text}");
    }
}
