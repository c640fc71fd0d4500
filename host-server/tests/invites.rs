//! Issue 14: registration policy and invites, on the real server (in-process for the protocol,
//! the real binary for the admin CLI and the first run), SQLite. The PostgreSQL race across
//! nodes is in `cluster.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chatbox_server::test_util as common;

use core::time::Duration;
use std::path::Path;
use std::process::Command;

use chatbox_core::link::Link;
use chatbox_core::proto::{ClientMsg, ErrorCode, ServerMsg};
use chatbox_server::invite::Registration;
use common::{
    Client, PASSWORD, RecvError, TestServer, avoid_step_edge, code_at_offset, race_invite,
    secret_of, start_invite,
};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_chatbox-server")
}

/// `chatbox-server invite ARGS…` on the test server's data directory; (status, stdout).
fn invite_cmd(data: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(bin())
        .arg("invite")
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env_remove("CHATBOX_DATABASE")
        .env_remove("CHATBOX_LISTEN")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Creates an invite; returns its link (the last stdout line) parsed, and the text.
fn create(s: &TestServer, args: &[&str]) -> (Link, String) {
    let server = s.addr().to_string();
    let mut all = vec!["create", "--server", &server];
    all.extend_from_slice(args);
    let (ok, out, err) = invite_cmd(&s.data_dir(), &all);
    assert!(ok, "invite create failed: {err}");
    let last = out.lines().last().unwrap().to_owned();
    let link = Link::parse(&last).unwrap_or_else(|e| panic!("last line {last:?}: {e}"));
    (link, last)
}

fn token(link: &Link) -> String {
    link.invite().unwrap().to_text().as_str().to_owned()
}

fn confirm(c: &mut Client, uri: &str) {
    let secret = secret_of(uri);
    avoid_step_edge();
    c.send(&ClientMsg::ConfirmTotp {
        code: &code_at_offset(&secret, 0),
    });
    let r = c.recv();
    assert!(
        matches!(r.msg(), ServerMsg::Registered { .. }),
        "expected Registered, got {r:?}"
    );
}

/// Waits until credentials.log holds every line of `wants` (the logs are written
/// asynchronously), then returns it.
fn creds_with(s: &TestServer, wants: &[&str]) -> String {
    s.wait_for("credentials.log lines", |s| {
        let c = s.log("credentials.log");
        wants.iter().all(|w| c.contains(w))
    });
    s.log("credentials.log")
}

fn invite_server() -> TestServer {
    TestServer::start_with(|c| c.registration = Registration::Invite)
}

fn role_of(s: &TestServer, user: &str) -> Option<String> {
    s.db()
        .query_row(
            "SELECT role FROM REGISTERED WHERE User = ?1 AND pending_reg = 0",
            [user],
            |r| r.get(0),
        )
        .ok()
}

fn uses_left(s: &TestServer) -> Vec<i64> {
    let db = s.db();
    // The first-run operator invite (an invite-only server with no account) is not ours.
    let mut st = db
        .prepare(
            "SELECT uses_left FROM INVITES WHERE note <> 'first-run operator invite' ORDER BY id",
        )
        .unwrap();
    st.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn invite_only_server_refuses_every_bad_invite_alike() {
    let s = invite_server();
    let (expired, _) = create(&s, &["--expires", "1"]);
    let (revoked, _) = create(&s, &[]);
    let (used, _) = create(&s, &[]);
    // Ids: 1 is the first-run operator invite.
    let (ok, out, _) = invite_cmd(&s.data_dir(), &["revoke", "3"]);
    assert!(ok && out.contains("invite 3 revoked"), "{out}");
    // Use up the third one.
    let (mut c, r) = start_invite(s.addr(), "first", &token(&used));
    confirm(&mut c, &r.unwrap());
    std::thread::sleep(Duration::from_millis(1200));

    // The policy is announced without sending anything secret.
    let mut c = Client::connect(s.addr());
    c.send(&ClientMsg::AskPolicy);
    assert!(matches!(
        c.recv().msg(),
        ServerMsg::RegistrationPolicy {
            invite_required: true
        }
    ));
    // A plain Register (today's clients) on an invite-only server.
    c.send(&ClientMsg::Register {
        user: "plain",
        password: PASSWORD,
    });
    let texts = |rec: common::Rec| match rec.msg() {
        ServerMsg::Error { code, text } => (code, text.to_owned()),
        other => panic!("{other:?}"),
    };
    let first = texts(c.recv());
    assert_eq!(first.0, ErrorCode::InviteInvalid as u16);
    c.expect_closed();
    let garbled = "not-a-token";
    let unknown = "A".repeat(43);
    for (user, inv) in [
        ("garbled", garbled.to_owned()),
        ("unknown", unknown.clone()),
        ("expired", token(&expired)),
        ("revoked", token(&revoked)),
        ("usedup", token(&used)),
        // Even a taken name gets the invite's answer first: names are not revealed.
        ("first", token(&used)),
    ] {
        let (mut c, r) = start_invite(s.addr(), user, &inv);
        assert_eq!(r, Err(ErrorCode::InviteInvalid as u16), "{user}");
        c.expect_closed();
        // Same text for all.
        let mut c2 = Client::connect(s.addr());
        c2.send(&ClientMsg::RegisterInvite {
            user,
            password: PASSWORD,
            invite: &inv,
        });
        assert_eq!(texts(c2.recv()), first, "{user}");
    }
    // Nothing was created; the reasons are in credentials.log with ids, never the tokens.
    assert_eq!(role_of(&s, "expired"), None);
    let creds = creds_with(
        &s,
        &[
            "reason=used up invite=4",
            "registered user=first from=",
            "reason=garbled token",
        ],
    );
    for want in [
        "reason=missing (invite-only server)",
        "reason=garbled token",
        "reason=unknown token",
        "reason=expired invite=2",
        "reason=revoked invite=3",
        "reason=used up invite=4",
        "invite used user=first",
        "registered user=first from=",
    ] {
        assert!(
            creds.contains(want),
            "credentials.log lacks {want:?}:\n{creds}"
        );
    }
    for t in [token(&expired), token(&revoked), token(&used), unknown] {
        assert!(!creds.contains(&t), "token in credentials.log");
        assert!(!s.log("info.log").contains(&t) && !s.log("sql.log").contains(&t));
    }
}

#[test]
fn invite_role_is_applied_at_confirmation_and_list_never_shows_tokens() {
    let s = invite_server();
    let (op, op_text) = create(&s, &["--role", "op", "--note", "for ann", "--uses", "2"]);
    let (user, _) = create(&s, &["--expires", "30m"]);
    // The link names this server and its key.
    assert_eq!(op.server().as_str(), s.addr().to_string());
    let fp = s.handle.as_ref().unwrap().fingerprint();
    assert_eq!(op.key_fingerprint().unwrap().as_str(), fp);
    assert!(op_text.contains("?key=SHA256:") && !op_text.contains('+'));
    let (mut c, r) = start_invite(s.addr(), "ann", &token(&op));
    let uri = r.unwrap();
    // Pending: no role yet (the account does not exist as confirmed).
    assert_eq!(role_of(&s, "ann"), None);
    confirm(&mut c, &uri);
    assert_eq!(role_of(&s, "ann").as_deref(), Some("op"));
    let (mut c, r) = start_invite(s.addr(), "bob", &token(&user));
    confirm(&mut c, &r.unwrap());
    assert_eq!(role_of(&s, "bob").as_deref(), Some("user"));

    let (ok, list, _) = invite_cmd(&s.data_dir(), &["list"]);
    assert!(ok);
    assert!(
        list.contains("for ann") && list.contains("1/2") && list.contains("0/1"),
        "{list}"
    );
    assert!(list.contains("used up"), "{list}");
    assert!(!list.contains(&token(&op)) && !list.contains(&token(&user)));
    // The tokens are not in the database either, only keyed hashes.
    let raw = std::fs::read(s.data_dir().join("chatbox.db")).unwrap();
    for t in [op.invite().unwrap(), user.invite().unwrap()] {
        assert!(!raw.windows(32).any(|w| w == t.as_bytes()));
        assert!(!raw.windows(43).any(|w| w == t.to_text().as_bytes()));
    }
}

#[test]
fn unconfirmed_registration_gives_its_use_back() {
    let s = invite_server();
    let (link, _) = create(&s, &[]);
    let t = token(&link);
    let (c, r) = start_invite(s.addr(), "quitter", &t);
    r.unwrap();
    assert_eq!(uses_left(&s), vec![0]);
    // Meanwhile nobody else can use it.
    let (_c2, r2) = start_invite(s.addr(), "other", &t);
    assert_eq!(r2, Err(ErrorCode::InviteInvalid as u16));
    drop(c); // connection closes without confirming
    s.wait_for("use given back", |s| uses_left(s) == vec![1]);
    creds_with(&s, &["invite=2 (use given back)"]);
    let (mut c, r) = start_invite(s.addr(), "stayer", &t);
    confirm(&mut c, &r.unwrap());
    assert_eq!(uses_left(&s), vec![0]);
}

#[test]
fn a_restart_gives_back_uses_held_by_unconfirmed_registrations() {
    let mut s = invite_server();
    let (link, _) = create(&s, &["--uses", "3"]);
    let (_c, r) = start_invite(s.addr(), "held", &token(&link));
    r.unwrap();
    assert_eq!(uses_left(&s), vec![2]);
    // The node dies without cleaning up; its pending rows go at the next start.
    s.restart();
    assert_eq!(uses_left(&s), vec![3]);
}

#[test]
fn two_registrations_racing_for_a_one_use_invite_one_wins() {
    let s = invite_server();
    for round in 0..8 {
        let (link, _) = create(&s, &[]);
        let t = token(&link);
        let results = race_invite(
            &t,
            (0..2)
                .map(|i| (s.addr(), format!("r{round}x{i}")))
                .collect(),
        );
        let wins = results.iter().filter(|(w, _)| *w).count();
        assert_eq!(wins, 1, "round {round}: {wins} winners");
        assert_eq!(uses_left(&s).last(), Some(&0));
    }
}

#[test]
fn wrong_invites_count_against_the_address_budget() {
    let s = TestServer::start_with(|c| {
        c.registration = Registration::Invite;
        c.ip_failures_per_min = 3;
    });
    let (link, _) = create(&s, &[]);
    for i in 0..3 {
        let (mut c, r) = start_invite(s.addr(), &format!("g{i}"), &"B".repeat(43));
        assert_eq!(r, Err(ErrorCode::InviteInvalid as u16));
        c.expect_closed();
    }
    // The budget is spent: even the valid invite gets the same answer, and keeps its use.
    let (_c, r) = start_invite(s.addr(), "late", &token(&link));
    assert_eq!(r, Err(ErrorCode::InviteInvalid as u16));
    assert_eq!(uses_left(&s), vec![1]);
    creds_with(&s, &["invite refused user=late from=127.0.0.1:"]);
}

#[test]
fn open_server_keeps_plain_registration_and_checks_given_invites() {
    let s = TestServer::start();
    let acc = common::register(s.addr(), "oldclient");
    assert_eq!(acc.scratch.len(), 10);
    let mut c = Client::connect(s.addr());
    c.send(&ClientMsg::AskPolicy);
    assert!(matches!(
        c.recv().msg(),
        ServerMsg::RegistrationPolicy {
            invite_required: false
        }
    ));
    let (_c, r) = start_invite(s.addr(), "withbad", &"C".repeat(43));
    assert_eq!(r, Err(ErrorCode::InviteInvalid as u16));
}

#[test]
fn admin_cli_refuses_bad_input_and_changes_nothing() {
    let s = invite_server();
    let d = s.data_dir();
    for args in [
        &["create", "--expires", "7x"][..],
        &["create", "--expires", "0"],
        &["create", "--uses", "0"],
        &["create", "--role", "admin"],
        &["create", "--server", "no port"],
        &["create", "--server", "host:0"],
    ] {
        let (ok, _, err) = invite_cmd(&d, args);
        assert!(!ok && !err.is_empty(), "{args:?} accepted");
    }
    let (ok, _, err) = invite_cmd(&d, &["revoke", "99"]);
    assert!(!ok && err.contains("no such invite"), "{err}");
    assert!(uses_left(&s).is_empty());
    // Durations.
    for (arg, secs) in [("30m", 1800), ("12h", 43_200), ("7d", 604_800), ("90", 90)] {
        assert_eq!(
            chatbox_server::invite::parse_duration(arg).unwrap(),
            Duration::from_secs(secs)
        );
    }
}

#[test]
fn qr_is_drawn_above_the_link() {
    let s = invite_server();
    let server = s.addr().to_string();
    let (ok, out, _) = invite_cmd(&s.data_dir(), &["create", "--qr", "--server", &server]);
    assert!(ok);
    let lines: Vec<&str> = out.lines().collect();
    let last = lines.last().unwrap();
    assert!(last.starts_with("chatbox://"));
    let qr_rows = lines.iter().filter(|l| l.contains('█')).count();
    assert!(qr_rows > 10, "{out}");
    // The drawing decodes to the link.
    let code = chatbox_core::qr::QrCode::encode_text(last, chatbox_core::qr::Ecc::Medium).unwrap();
    let want = chatbox_server::invite::qr_lines(last).unwrap();
    assert!(code.size() > 0);
    for w in &want {
        assert!(out.contains(w.as_str()));
    }
}

/// Runs the real binary until `stop_when` sees its stdout line; returns stdout so far.
fn run_until(args: &[&str], dir: &Path, stop_when: impl Fn(&str) -> bool) -> Vec<String> {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(bin())
        .args(args)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--log-dir")
        .arg(dir.join("log"))
        .args(["--pbkdf2-iterations", "10000"])
        .env_remove("CHATBOX_REGISTRATION")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines() {
            let Ok(l) = l else { break };
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    while let Ok(l) = rx.recv_timeout(Duration::from_secs(10)) {
        let done = stop_when(&l);
        lines.push(l);
        if done {
            break;
        }
    }
    // A clean stop (SIGTERM) flushes the logs, which are written asynchronously.
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let end = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < end {
        if child.try_wait().ok().flatten().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    lines
}

#[test]
fn first_run_prints_a_one_use_op_invite_last() {
    let dir = tempfile::tempdir().unwrap();
    let lines = run_until(
        &["--listen", "127.0.0.1:0", "--registration", "invite"],
        dir.path(),
        |l| l.starts_with("chatbox://"),
    );
    let last = lines.last().unwrap();
    let link = Link::parse(last).unwrap_or_else(|e| panic!("{lines:?}: {e}"));
    let fp = lines
        .iter()
        .find_map(|l| l.strip_prefix("server key fingerprint: "))
        .unwrap();
    assert_eq!(link.key_fingerprint().unwrap().as_str(), fp);
    let info = std::fs::read_to_string(dir.path().join("log/info.log")).unwrap();
    assert!(info.contains("created first-run operator invite 1"));
    assert!(!info.contains(token(&link).as_str()));
    let db = rusqlite::Connection::open(dir.path().join("data/chatbox.db")).unwrap();
    let (uses, role): (i64, String) = db
        .query_row("SELECT uses_total, role FROM INVITES", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((uses, role.as_str()), (1, "op"));
    // Open (the default) prints no invite.
    let dir = tempfile::tempdir().unwrap();
    let lines = run_until(&["--listen", "127.0.0.1:0"], dir.path(), |l| {
        l.starts_with("database:")
    });
    assert!(!lines.iter().any(|l| l.starts_with("chatbox://")));
}

#[test]
fn open_on_a_non_loopback_address_warns() {
    let dir = tempfile::tempdir().unwrap();
    let lines = run_until(&["--listen", "0.0.0.0:0"], dir.path(), |l| {
        l.starts_with("warning: registration is open")
    });
    let w = lines.last().unwrap();
    assert!(
        w.contains("anyone who can reach it can register") && w.contains("--registration invite"),
        "{lines:?}"
    );
    let info = std::fs::read_to_string(dir.path().join("log/info.log")).unwrap();
    assert!(info.contains("anyone who can reach it can register"));
    // Loopback: no warning.
    let dir = tempfile::tempdir().unwrap();
    let lines = run_until(&["--listen", "127.0.0.1:0"], dir.path(), |l| {
        l.starts_with("database:")
    });
    assert!(!lines.iter().any(|l| l.contains("anyone who can reach")));
}

#[allow(dead_code)]
fn _unused(_: RecvError) {}

#[test]
fn invite_create_takes_listen_and_data_dir_from_the_config_file() {
    let s = invite_server();
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("chatbox.toml");
    std::fs::write(
        &conf,
        format!(
            "listen = \"127.0.0.1:7777\"\ndata-dir = \"{}\"\nregistration = \"invite\"\n",
            s.data_dir().display()
        ),
    )
    .unwrap();
    let stdout = binserver::run_ok(
        Command::new(bin())
            .args(["invite", "create", "--config"])
            .arg(&conf)
            .env_remove("CHATBOX_DATABASE")
            .env_remove("CHATBOX_LISTEN")
            .env_remove("CHATBOX_DATA_DIR"),
        "invite create --config",
    );
    let link = Link::parse(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(link.server().as_str(), "127.0.0.1:7777");
    // Stored in the file's data directory: it admits a registration on that server.
    let (mut c, r) = start_invite(s.addr(), "viaconf", &token(&link));
    confirm(&mut c, &r.unwrap());
    // A bad key in the file is refused with its name.
    std::fs::write(&conf, "no-such-key = 1\n").unwrap();
    let out = Command::new(bin())
        .args(["invite", "list", "--config"])
        .arg(&conf)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-key"));
}

#[test]
fn an_invite_made_by_another_server_is_refused() {
    let s = invite_server();
    let other = invite_server();
    let (foreign, _) = create(&other, &[]);
    assert_ne!(
        foreign.key_fingerprint(),
        create(&s, &[]).0.key_fingerprint(),
        "two servers, two keys"
    );
    let (mut c, r) = start_invite(s.addr(), "stranger", &token(&foreign));
    assert_eq!(r, Err(ErrorCode::InviteInvalid as u16));
    c.expect_closed();
    creds_with(
        &s,
        &["invite refused user=stranger", "reason=unknown token"],
    );
    // Still good where it was made.
    let (mut c, r) = start_invite(other.addr(), "stranger", &token(&foreign));
    confirm(&mut c, &r.unwrap());
}

/// Every refusal does the same work (a keyed hash and one lookup, a dummy token when the text
/// does not parse): the median answer times of the kinds of refusal stay within a few ms.
#[test]
fn refusals_take_the_same_time_whatever_the_reason() {
    let s = invite_server();
    let (expired, _) = create(&s, &["--expires", "1"]);
    std::thread::sleep(Duration::from_millis(1100));
    let cases: Vec<(&str, Option<String>)> = vec![
        ("missing", None),
        ("garbled", Some("x".repeat(10))),
        ("unknown", Some("D".repeat(43))),
        ("expired", Some(token(&expired))),
    ];
    let mut medians = Vec::new();
    for (name, inv) in &cases {
        let mut times = Vec::new();
        for i in 0..15 {
            let mut c = Client::connect(s.addr());
            let user = format!("t{name}{i}");
            let t0 = std::time::Instant::now();
            match inv {
                None => c.send(&ClientMsg::Register {
                    user: &user,
                    password: PASSWORD,
                }),
                Some(t) => c.send(&ClientMsg::RegisterInvite {
                    user: &user,
                    password: PASSWORD,
                    invite: t,
                }),
            }
            assert_eq!(c.recv().error_code(), Some(ErrorCode::InviteInvalid as u16));
            times.push(t0.elapsed());
        }
        times.sort();
        medians.push((name, times[7]));
    }
    eprintln!("median refusal times: {medians:?}");
    let lo = medians.iter().map(|m| m.1).min().unwrap();
    let hi = medians.iter().map(|m| m.1).max().unwrap();
    // Loose enough for a loaded 2-core machine; a refusal that hashed the password (PBKDF2)
    // or slept would be far above it.
    assert!(hi - lo < Duration::from_millis(10), "{medians:?}");
}

#[path = "common/binserver.rs"]
mod binserver;

/// The real binary, killed with SIGKILL while a registration holds an invite's use: the next
/// start gives the use back, and the invite then admits someone.
#[test]
fn real_binary_killed_mid_registration_gives_the_use_back_at_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (data, log) = (dir.path().join("data"), dir.path().join("log"));
    let args = ["--registration", "invite"];
    let mut srv = binserver::BinServer::start(&data, &log, &args);
    let server = srv.addr.to_string();
    let (ok, out, err) = invite_cmd(&data, &["create", "--server", &server, "--note", "kill"]);
    assert!(ok, "{err}");
    let link = Link::parse(out.lines().last().unwrap()).unwrap();
    assert_eq!(link.key_fingerprint().unwrap().as_str(), srv.fingerprint);
    let (_c, r) = start_invite(srv.addr, "held", &token(&link));
    r.unwrap();
    let left = |data: &Path| -> i64 {
        let db = rusqlite::Connection::open(data.join("chatbox.db")).unwrap();
        db.query_row(
            "SELECT uses_left FROM INVITES WHERE note = 'kill'",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!(left(&data), 0);
    srv.kill9();
    assert_eq!(left(&data), 0, "nothing ran after SIGKILL");
    let srv = binserver::BinServer::start(&data, &log, &args);
    assert_eq!(left(&data), 1);
    let (mut c, r) = start_invite(srv.addr, "second", &token(&link));
    confirm(&mut c, &r.unwrap());
    assert_eq!(left(&data), 0);
}

/// A registration that holds a use and lets its deadline (`--register-timeout`) pass: the
/// server ends it with a `Bye` and the use comes back.
#[test]
fn the_registration_deadline_gives_the_use_back() {
    let s = TestServer::start_with(|c| {
        c.registration = Registration::Invite;
        c.register_timeout = Duration::from_secs(1);
    });
    let (link, _) = create(&s, &[]);
    let (mut c, r) = start_invite(s.addr(), "slowpoke", &token(&link));
    r.unwrap();
    assert_eq!(uses_left(&s), vec![0]);
    let bye = c.recv_until("deadline bye", |m| matches!(m, ServerMsg::Bye { .. }));
    assert!(
        matches!(bye.msg(), ServerMsg::Bye { reason } if reason.contains("not confirmed in time")),
        "{bye:?}"
    );
    s.wait_for("use back after the deadline", |s| uses_left(s) == vec![1]);
    avoid_step_edge(); // confirm() must not wait past the 1 s deadline
    let (mut c, r) = start_invite(s.addr(), "intime", &token(&link));
    confirm(&mut c, &r.unwrap());
}
