//! In-process tests of [`ConnState`]: phases and their transitions, the token bucket, what each
//! phase may send, and the timeouts per phase. No socket, no server: time is passed in.

use core::net::IpAddr;
use core::time::Duration;
use std::sync::Arc;
use std::time::Instant;

use chatbox_core::proto::{ClientMsg, ErrorCode};

use super::{ConnState, LOG_IN_FIRST, Limits, Phase, Rate, Route, Session, Timeout, TokenBucket};
use crate::auth::register::{Pending, PendingLimit};
use crate::auth::source::Prefixes;
use crate::chat::Me;
use crate::config::Config;

const S: Duration = Duration::from_secs(1);

fn limits() -> Limits {
    Limits {
        handshake: 10 * S,
        login: 120 * S,
        anonymous: 20 * S,
        register: 60 * S,
        idle: 300 * S,
        rate_per_sec: 2.0,
        rate_burst: 4.0,
        rate_violations: 2,
    }
}

fn ip() -> IpAddr {
    IpAddr::from([10, 0, 0, 1])
}

fn pending_limit(max: usize) -> Arc<PendingLimit> {
    Arc::new(PendingLimit::new(max, Prefixes::of(&Config::new())))
}

fn pending(started: Instant) -> Pending {
    Pending::for_tests("alice", started, &pending_limit(1), ip())
        .unwrap_or_else(|| unreachable!("a fresh limit has room"))
}

fn session() -> Session {
    Session {
        me: Me {
            id: 7,
            user: "alice".to_owned(),
            ip_port: "10.0.0.1:5000".to_owned(),
        },
        login_step: Some(1),
        reenrol: None,
    }
}

fn name(p: &Phase) -> &'static str {
    match p {
        Phase::Handshaking => "handshaking",
        Phase::Anonymous { .. } => "anonymous",
        Phase::Registering(_) => "registering",
        Phase::LoggedIn(_) => "logged in",
    }
}

/// One message of every kind a phase decides about.
fn every_message() -> Vec<ClientMsg<'static>> {
    vec![
        ClientMsg::Ping { token: 1 },
        ClientMsg::Bye,
        ClientMsg::AskPolicy,
        ClientMsg::Register {
            user: "a",
            password: "p",
        },
        ClientMsg::RegisterInvite {
            user: "a",
            password: "p",
            invite: "i",
        },
        ClientMsg::ConfirmTotp { code: "123456" },
        ClientMsg::Login {
            user: "a",
            password: "p",
            otp: "123456",
        },
        ClientMsg::Sessions,
        ClientMsg::RevokeOtherSessions,
        ClientMsg::Say {
            room: "#lobby",
            text: "hi",
        },
        ClientMsg::Join { room: "#x" },
        ClientMsg::ListRooms,
    ]
}

fn refused_with(r: &Route) -> Option<(ErrorCode, &str)> {
    match r {
        Route::Refuse(f) => Some((f.code, f.text.as_str())),
        _ => None,
    }
}

#[test]
fn phases_move_forward_only_the_way_the_protocol_goes() {
    let t0 = Instant::now();
    let mut c = ConnState::new(limits(), t0);
    assert_eq!(name(&c.phase), "handshaking");
    // Nothing but the handshake's end leaves the handshake.
    c.registering(pending(t0));
    c.logged_in(session());
    assert_eq!(name(&c.phase), "handshaking");
    c.established(t0 + S);
    assert_eq!(name(&c.phase), "anonymous");
    c.established(t0 + 2 * S);
    assert!(matches!(c.phase, Phase::Anonymous { since } if since == t0 + S));
    c.registering(pending(t0 + 3 * S));
    assert_eq!(name(&c.phase), "registering");
    // Registering: no login, no second registration.
    c.logged_in(session());
    c.registering(pending(t0 + 4 * S));
    assert!(matches!(&c.phase, Phase::Registering(p) if p.started == t0 + 3 * S));
    assert_eq!(
        c.pending_mut().map(|p| p.user.clone()).as_deref(),
        Some("alice")
    );
    c.registered(t0 + 5 * S);
    assert!(matches!(c.phase, Phase::Anonymous { since } if since == t0 + 5 * S));
    assert!(c.take_pending().is_none());
    assert_eq!(name(&c.phase), "anonymous");
    c.logged_in(session());
    assert!(c.is_logged_in());
    assert_eq!(c.session().map(|s| s.me.user.as_str()), Some("alice"));
    // Logged in: no registration, no going back.
    c.registering(pending(t0));
    c.registered(t0);
    c.established(t0);
    assert!(c.is_logged_in());
    assert!(c.take_pending().is_none());
    assert!(c.is_logged_in());
}

#[test]
fn a_confirmed_registration_gives_its_slot_back_and_an_unconfirmed_one_is_handed_over() {
    let t0 = Instant::now();
    let limit = pending_limit(1);
    let mut c = ConnState::new(limits(), t0);
    c.established(t0);
    let p = Pending::for_tests("bob", t0, &limit, ip());
    c.registering(p.unwrap_or_else(|| unreachable!()));
    assert!(
        !limit.room(ip()),
        "the registration holds the address's one slot"
    );
    assert!(Pending::for_tests("carl", t0, &limit, ip()).is_none());
    c.registered(t0 + S);
    assert!(
        limit.room(ip()),
        "the confirmed registration gave its slot back"
    );
    let p = Pending::for_tests("dora", t0, &limit, ip());
    c.registering(p.unwrap_or_else(|| unreachable!()));
    let taken = c.take_pending();
    assert_eq!(taken.as_ref().map(|p| p.user.as_str()), Some("dora"));
    assert_eq!(
        name(&c.phase),
        "handshaking",
        "nothing left once the pending is taken"
    );
    assert!(
        !limit.room(ip()),
        "the slot goes with the pending registration"
    );
    drop(taken);
    assert!(limit.room(ip()));
}

#[test]
fn the_token_bucket_allows_its_burst_then_its_rate_and_saves_no_more_than_the_burst() {
    let t0 = Instant::now();
    let mut b = TokenBucket::new(2.0, 4.0, t0);
    for i in 0..4 {
        assert!(b.take(t0), "burst token {i}");
    }
    assert!(!b.take(t0), "the burst is spent");
    assert!(
        !b.take(t0 + Duration::from_millis(400)),
        "0.8 token is not one"
    );
    assert!(
        b.take(t0 + Duration::from_millis(500)),
        "one token refilled in 500 ms"
    );
    assert!(!b.take(t0 + Duration::from_millis(500)));
    // An hour idle saves the burst, not 7 200 tokens.
    let later = t0 + 3600 * S;
    for i in 0..4 {
        assert!(b.take(later), "saved token {i}");
    }
    assert!(!b.take(later));
    // A clock that seems to go back refills nothing and does not panic.
    assert!(!b.take(t0));
}

#[test]
fn the_rate_limit_warns_then_closes_and_never_counts_ping_or_bye() {
    let t0 = Instant::now();
    let mut c = ConnState::new(limits(), t0);
    c.established(t0);
    let say = ClientMsg::Say {
        room: "#lobby",
        text: "x",
    };
    for _ in 0..4 {
        assert_eq!(c.rate(&say, t0), Rate::Pass);
    }
    // Ping and Bye pass on an empty bucket, and take nothing from it.
    for _ in 0..10 {
        assert_eq!(c.rate(&ClientMsg::Ping { token: 0 }, t0), Rate::Pass);
        assert_eq!(c.rate(&ClientMsg::Bye, t0), Rate::Pass);
    }
    assert_eq!(c.rate(&say, t0), Rate::Warn);
    assert_eq!(c.rate(&say, t0), Rate::Warn);
    // A refilled token passes, but warnings given stay counted.
    assert_eq!(c.rate(&say, t0 + S), Rate::Pass);
    assert_eq!(c.rate(&say, t0 + S), Rate::Pass);
    assert_eq!(c.rate(&say, t0 + S), Rate::Close);
}

#[test]
fn what_each_phase_may_send() {
    let t0 = Instant::now();
    let mut anon = ConnState::new(limits(), t0);
    anon.established(t0);
    let mut reg = ConnState::new(limits(), t0);
    reg.established(t0);
    reg.registering(pending(t0));
    let mut user = ConnState::new(limits(), t0);
    user.established(t0);
    user.logged_in(session());
    let busy = Some((ErrorCode::BadState, "already logged in or registering"));
    let no_reg = Some((ErrorCode::BadState, "no registration in progress"));
    let first = Some((ErrorCode::NotAuthenticated, LOG_IN_FIRST));
    for msg in every_message() {
        let (a, r, u) = (anon.route(&msg), reg.route(&msg), user.route(&msg));
        let want: [Result<Route, Option<(ErrorCode, &str)>>; 3] = match msg {
            ClientMsg::Ping { .. } => [Ok(Route::Pong), Ok(Route::Pong), Ok(Route::Pong)],
            ClientMsg::Bye => [Ok(Route::Bye), Ok(Route::Bye), Ok(Route::Bye)],
            ClientMsg::AskPolicy => [Ok(Route::Policy), Ok(Route::Policy), Ok(Route::Policy)],
            ClientMsg::Register { .. } | ClientMsg::RegisterInvite { .. } => {
                [Ok(Route::Register), Err(busy), Err(busy)]
            }
            ClientMsg::Login { .. } => [Ok(Route::Login), Err(busy), Err(busy)],
            ClientMsg::ConfirmTotp { .. } => [Err(no_reg), Ok(Route::Confirm), Err(no_reg)],
            ClientMsg::Sessions | ClientMsg::RevokeOtherSessions => {
                [Err(first), Err(first), Ok(Route::SelfService)]
            }
            _ => [Err(first), Err(first), Ok(Route::Chat)],
        };
        for (got, want, phase) in [
            (a, &want[0], "anonymous"),
            (r, &want[1], "registering"),
            (u, &want[2], "logged in"),
        ] {
            match want {
                Ok(route) => assert_eq!(&got, route, "{msg:?} when {phase}"),
                Err(refusal) => {
                    assert_eq!(refused_with(&got), *refusal, "{msg:?} when {phase}");
                    if let Route::Refuse(f) = &got {
                        assert!(
                            !f.close,
                            "{msg:?} when {phase}: a wrong-phase message keeps the connection"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn timeouts_per_phase() {
    let t0 = Instant::now();
    let l = limits();
    let mut c = ConnState::new(l, t0);
    // Handshaking: the handshake timeout, and no traffic extends it.
    assert_eq!(c.deadline(), t0 + l.handshake);
    c.received(t0 + 5 * S);
    assert_eq!(c.deadline(), t0 + l.handshake);
    assert_eq!(c.timeout(t0 + l.handshake), Timeout::Handshake);
    // Anonymous: its own 20 s from the handshake's end.
    c.established(t0 + 2 * S);
    assert_eq!(c.deadline(), t0 + 2 * S + l.anonymous);
    assert_eq!(c.timeout(c.deadline()), Timeout::Other);
    // Registering: the registration timeout from RegisterStarted, under the login cap.
    c.registering(pending(t0 + 10 * S));
    assert_eq!(c.deadline(), t0 + 10 * S + l.register);
    assert_eq!(c.timeout(t0 + 70 * S), Timeout::Registration);
    assert_eq!(c.timeout(t0 + 69 * S), Timeout::Other);
    // Confirmed late in the login window: the login cap (from the accept) comes first.
    c.registered(t0 + 110 * S);
    assert_eq!(c.deadline(), t0 + l.login);
    // Logged in: only idleness, counted from the last record.
    c.logged_in(session());
    c.received(t0 + 200 * S);
    assert_eq!(c.deadline(), t0 + 200 * S + l.idle);
    c.received(t0 + 400 * S);
    assert_eq!(c.deadline(), t0 + 400 * S + l.idle);
    assert_eq!(c.timeout(t0 + 700 * S), Timeout::Other);
}

#[test]
fn a_quiet_anonymous_connection_times_out_on_idleness_before_its_other_limits() {
    let t0 = Instant::now();
    let l = Limits {
        idle: 5 * S,
        ..limits()
    };
    let mut c = ConnState::new(l, t0);
    c.established(t0);
    assert_eq!(c.deadline(), t0 + 5 * S);
    c.received(t0 + 4 * S);
    assert_eq!(c.deadline(), t0 + 9 * S);
    c.received(t0 + 18 * S);
    assert_eq!(
        c.deadline(),
        t0 + l.anonymous,
        "the anonymous period caps it"
    );
}
