//! Account self-service with the real client binary against the real server: `passwd` for
//! scripts (then the new password logs in, the old one does not, the other session is closed),
//! `/sessions` and `/sessions revoke others|ID` in plain mode, re-enrolment in plain mode.

mod common;

use chatbox_core::otp::OtpauthUri;
use common::{Client, TestServer};

const NEW_PASSWORD: &str = "a different long passphrase";

fn chat_with(
    server: &TestServer,
    home: &std::path::Path,
    user: &str,
    code: &str,
    password: &str,
) -> Client {
    Client::spawn_env(
        home,
        &[
            "--server",
            &server.address,
            "chat",
            "--plain",
            "--user",
            user,
            "--otp",
            code,
        ],
        &[("CHATBOX_PASSWORD", password)],
    )
}

/// `passwd --user alice` with one `--otp` per code in `otps` and the environment `env`.
fn passwd_alice(
    server: &TestServer,
    home: &std::path::Path,
    otps: &[&str],
    env: &[(&str, &str)],
) -> Client {
    let mut args = vec!["--server", &server.address, "passwd", "--user", "alice"];
    for otp in otps {
        args.extend(["--otp", otp]);
    }
    Client::spawn_env(home, &args, env)
}

#[test]
fn passwd_by_script_closes_the_other_session_and_the_new_password_logs_in() {
    let server = TestServer::start();
    let home = tempfile::tempdir().unwrap();
    let acct = common::register(&server.address, home.path(), "alice");
    let s = &acct.scratch;

    let mut other = common::chat(&server, home.path(), "alice", &s[0], &[]);
    other.expect("login", |l| l == "login alice");

    let passwd = passwd_alice(
        &server,
        home.path(),
        &[&s[1], &s[2]],
        &[("CHATBOX_NEW_PASSWORD", NEW_PASSWORD)],
    );
    let (status, out, err) = passwd.finish();
    assert_eq!(status.code(), Some(0), "{out:?} {err:?}");
    assert_eq!(out, vec!["passwd 1"], "{err:?}");

    // The other session was closed with a Bye.
    other.expect("bye", |l| l.starts_with("bye "));
    let _ = other.finish();

    // The old password no longer logs in; the new one does.
    let old = common::chat(&server, home.path(), "alice", &s[3], &[]);
    let (status, _, err) = old.finish();
    assert_eq!(status.code(), Some(4), "{err:?}");
    let mut new = chat_with(&server, home.path(), "alice", &s[4], NEW_PASSWORD);
    new.expect("login", |l| l == "login alice");
    let (status, _, err) = new.finish();
    assert!(status.success(), "{err:?}");

    // passwd with the old (now wrong) current password: refused, exit 4.
    let wrong = passwd_alice(
        &server,
        home.path(),
        &[&s[7], &s[8]],
        &[("CHATBOX_NEW_PASSWORD", NEW_PASSWORD)],
    );
    let (status, out, _) = wrong.finish();
    assert_eq!(
        status.code(),
        Some(4),
        "the old password logged in: {out:?}"
    );

    // One code, computed from CHATBOX_TOTP_SECRET: it logs in and confirms the change.
    let third = "the third long passphrase";
    let by_secret = passwd_alice(
        &server,
        home.path(),
        &[],
        &[
            ("CHATBOX_PASSWORD", NEW_PASSWORD),
            ("CHATBOX_NEW_PASSWORD", third),
            ("CHATBOX_TOTP_SECRET", &acct.secret_b32),
        ],
    );
    let (status, out, err) = by_secret.finish();
    assert_eq!(status.code(), Some(0), "{out:?} {err:?}");
    assert_eq!(out, vec!["passwd 0"]);
    let mut last = chat_with(&server, home.path(), "alice", &s[9], third);
    last.expect("login", |l| l == "login alice");
    assert!(last.finish().0.success());
}

#[test]
fn sessions_are_listed_and_revoked_from_plain_mode() {
    let server = TestServer::start();
    let home = tempfile::tempdir().unwrap();
    let acct = common::register(&server.address, home.path(), "bob");
    let s = &acct.scratch;
    let mut a = common::chat(&server, home.path(), "bob", &s[0], &[]);
    a.expect("login", |l| l == "login bob");
    let mut b = common::chat(&server, home.path(), "bob", &s[1], &[]);
    b.expect("login", |l| l == "login bob");

    b.send("/sessions");
    let mut listed = Vec::new();
    loop {
        let l = b.expect("session lines", |l| l.starts_with("session"));
        if l == "sessions end" {
            break;
        }
        listed.push(l);
    }
    assert_eq!(listed.len(), 2, "{listed:?}");
    for l in &listed {
        let f: Vec<&str> = l.split(' ').collect();
        assert_eq!(f.len(), 6, "{l}");
        assert!(f[3].parse::<core::net::SocketAddr>().is_ok(), "{l}");
        assert!(f[4].ends_with('Z'), "{l}");
    }
    assert_eq!(listed.iter().filter(|l| l.ends_with(" this")).count(), 1);
    let other_id = listed
        .iter()
        .find(|l| l.ends_with(" other"))
        .and_then(|l| l.split(' ').nth(1))
        .unwrap()
        .to_owned();

    b.send("/sessions revoke no-such-id");
    b.expect("no such session", |l| {
        l.starts_with("error no_such_session")
    });
    b.send("/sessions revoke others");
    b.expect("revoked", |l| l == "revoked 1");
    a.expect("bye", |l| l.starts_with("bye "));
    let (status, _, _) = a.finish();
    assert!(
        !status.success(),
        "the revoked session ended with a Bye (not a clean EOF)"
    );

    b.send("/sessions");
    let only = b.expect("one session", |l| l.starts_with("session "));
    assert!(
        only.ends_with(" this") && !only.contains(&other_id),
        "{only}"
    );
    b.expect("end", |l| l == "sessions end");
    b.send(&format!("/sessions revoke {other_id}"));
    b.expect("gone", |l| l.starts_with("error no_such_session"));
    let (status, _, err) = b.finish();
    // Two lines were refused for good (the two unknown ids): exit 6, everything else delivered.
    assert_eq!(status.code(), Some(6), "{err:?}");
}

#[test]
fn reenrol_in_plain_mode_gives_a_new_secret_and_new_scratch_codes() {
    let server = TestServer::start();
    let home = tempfile::tempdir().unwrap();
    let acct = common::register(&server.address, home.path(), "carol");
    let s = &acct.scratch;
    let mut c = common::chat(&server, home.path(), "carol", &s[0], &[]);
    c.expect("login", |l| l == "login carol");
    c.send(&format!("/reenrol {}", s[1]));
    let line = c.expect("reenrol", |l| l.starts_with("reenrol "));
    let uri = line.trim_start_matches("reenrol ");
    let parsed = OtpauthUri::parse(uri).unwrap();
    assert_ne!(parsed.secret_base32(), acct.secret_b32);
    let totp = parsed.totp().unwrap();
    let step = totp.step(common::now_secs());
    c.send("/reenrol confirm 000000");
    c.expect("wrong code", |l| l.starts_with("error "));
    c.send(&format!(
        "/reenrol confirm {}",
        totp.generate_at_step(step).unwrap().as_str()
    ));
    c.expect("reenrolled", |l| l.starts_with("reenrolled "));
    let mut new_scratch = Vec::new();
    while new_scratch.len() < 10 {
        let l = c.expect("scratch", |l| l.starts_with("scratch "));
        new_scratch.push(l.trim_start_matches("scratch ").to_owned());
    }
    let (status, _, err) = c.finish();
    // The wrong confirmation code was refused for good: exit 6, the rest delivered.
    assert_eq!(status.code(), Some(6), "{err:?}");

    // An old scratch code no longer logs in; a new one does.
    let old = common::chat(&server, home.path(), "carol", &s[2], &[]);
    assert_eq!(old.finish().0.code(), Some(4));
    let mut new = common::chat(&server, home.path(), "carol", &new_scratch[0], &[]);
    new.expect("login", |l| l == "login carol");
    assert!(new.finish().0.success());
}
