//! Accounts over the protocol: register (with TOTP confirmation), log in, TOTP codes.

use core::net::SocketAddr;
use core::time::Duration;
use std::time::{SystemTime, UNIX_EPOCH};

use chatbox_core::otp::{OtpauthUri, Totp};
use chatbox_core::proto::{ClientMsg, ErrorCode, ServerMsg};

use super::client::Client;

/// The password of every test account.
pub const PASSWORD: &str = "correct horse battery";

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The TOTP secret of an otpauth URI (parsed by [`OtpauthUri::parse`]).
pub fn secret_of(uri: &str) -> Vec<u8> {
    let parsed = OtpauthUri::parse(uri).unwrap_or_else(|e| panic!("{uri}: {e}"));
    parsed.totp().unwrap().secret().to_vec()
}

/// The SHA1 6-digit 30 s code of `secret` for the current step + `offset`.
pub fn code_at_offset(secret: &[u8], offset: i64) -> String {
    let totp = Totp::sha1_default(secret).unwrap();
    let step = totp.step(now_secs()).checked_add_signed(offset).unwrap();
    totp.generate_at_step(step).unwrap().as_str().to_owned()
}

/// A 6-digit code that is none of the account's current, previous or next codes.
pub fn wrong_code(secret: &[u8]) -> String {
    let used: Vec<String> = (-1..=1).map(|o| code_at_offset(secret, o)).collect();
    (0..)
        .map(|i| format!("{:06}", 100_000 + i * 7919))
        .find(|c| !used.contains(c))
        .unwrap()
}

/// A registered account.
#[derive(Debug)]
pub struct Account {
    /// The user name.
    pub user: String,
    /// The otpauth URI the server sent.
    pub uri: String,
    /// The TOTP secret.
    pub secret: Vec<u8>,
    /// The ten scratch codes.
    pub scratch: Vec<String>,
}

/// Waits out the last 2 s of a TOTP step: a code computed for offset -1 turns into step -2
/// (refused) if a 30 s boundary passes before the server checks it.
pub fn avoid_step_edge() {
    let into_step = now_secs() % 30;
    if into_step >= 28 {
        std::thread::sleep(Duration::from_secs(30 - into_step));
    }
}

/// Registers and confirms with the code of the previous step, so the current and next steps
/// stay free for logins.
pub fn register(addr: SocketAddr, user: &str) -> Account {
    let mut c = Client::connect(addr);
    c.send(&ClientMsg::Register {
        user,
        password: PASSWORD,
    });
    let r = c.recv();
    let ServerMsg::RegisterStarted { uri } = r.msg() else {
        panic!("expected RegisterStarted, got {r:?}");
    };
    let uri = uri.to_owned();
    let secret = secret_of(&uri);
    avoid_step_edge();
    c.send(&ClientMsg::ConfirmTotp {
        code: &code_at_offset(&secret, -1),
    });
    let r = c.recv();
    let ServerMsg::Registered { scratch_codes } = r.msg() else {
        panic!("expected Registered, got {r:?}");
    };
    let scratch = scratch_codes.iter().map(str::to_owned).collect();
    c.send(&ClientMsg::Bye);
    Account {
        user: user.to_owned(),
        uri,
        secret,
        scratch,
    }
}

/// Logs in and consumes the lobby join (up to the last History record).
pub fn login_with(addr: SocketAddr, user: &str, otp: &str) -> Client {
    let mut c = Client::connect(addr);
    c.send(&ClientMsg::Login {
        user,
        password: PASSWORD,
        otp,
    });
    let r = c.recv();
    assert!(
        matches!(r.msg(), ServerMsg::LoginOk { .. }),
        "login failed: {r:?}"
    );
    c.recv_until("lobby history", |m| {
        matches!(m, ServerMsg::History { done: true, .. })
    });
    c
}

/// Logs in with the current TOTP code (`offset` 0) or a later one.
pub fn login(addr: SocketAddr, acc: &Account, offset: i64) -> Client {
    login_with(addr, &acc.user, &code_at_offset(&acc.secret, offset))
}

/// Sends `RegisterInvite` (password [`PASSWORD`]) on a new connection: the otpauth URI of
/// `RegisterStarted`, or the error code.
pub fn start_invite(addr: SocketAddr, user: &str, invite: &str) -> (Client, Result<String, u16>) {
    let mut c = Client::connect(addr);
    c.send(&ClientMsg::RegisterInvite {
        user,
        password: PASSWORD,
        invite,
    });
    let r = c.recv();
    let out = match r.msg() {
        ServerMsg::RegisterStarted { uri } => Ok(uri.to_owned()),
        ServerMsg::Error { code, .. } => Err(code),
        other => panic!("unexpected {other:?}"),
    };
    (c, out)
}

/// Registrations racing for one invite: each `(addr, user)` connects, then all send their
/// `RegisterInvite` at once (a barrier releases them). For each, in order: whether it won
/// (`RegisterStarted`; a loser must get `InviteInvalid`) and its connection.
pub fn race_invite(invite: &str, racers: Vec<(SocketAddr, String)>) -> Vec<(bool, Client)> {
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(racers.len()));
    let threads: Vec<_> = racers
        .into_iter()
        .map(|(addr, user)| {
            let (t, b) = (invite.to_owned(), barrier.clone());
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                b.wait();
                c.send(&ClientMsg::RegisterInvite {
                    user: &user,
                    password: PASSWORD,
                    invite: &t,
                });
                let r = c.recv();
                let won = matches!(r.msg(), ServerMsg::RegisterStarted { .. });
                if !won {
                    assert_eq!(r.error_code(), Some(ErrorCode::InviteInvalid as u16));
                }
                (won, c)
            })
        })
        .collect();
    threads.into_iter().map(|h| h.join().unwrap()).collect()
}
