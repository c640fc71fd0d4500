//! Registering with an invite: the real client binary against the real server with
//! `--registration invite` (invites made with the admin CLI's code on the server's database).

mod common;

use std::fs;
use std::process::{Command, Stdio};

use chatbox_server::invite::{InviteAction, Registration};
use common::{BIN, PASSWORD, TestServer};

fn invite_server() -> TestServer {
    TestServer::start_with(|c| c.registration = Registration::Invite)
}

/// The client with stdin closed and no terminal: any prompt would fail (exit 1).
fn run_unprompted(
    home: &std::path::Path,
    args: &[&str],
    password: bool,
) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env("CHATBOX_HOME", home)
        .env_remove("CHATBOX_SERVER")
        .env_remove("CHATBOX_TOTP_SECRET")
        .stdin(Stdio::null());
    if password {
        cmd.env("CHATBOX_PASSWORD", PASSWORD);
    } else {
        cmd.env_remove("CHATBOX_PASSWORD");
    }
    let out = cmd.output().expect("test setup");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn register_with_the_first_run_link_then_every_refusal_exits_4_without_prompting() {
    let server = invite_server();
    let first = server
        .handle
        .as_ref()
        .unwrap()
        .first_invite()
        .expect("first-run op invite")
        .to_owned();
    assert!(
        first.contains("%2B") || first.contains("%2F") || first.contains("key=SHA256"),
        "{first}"
    );
    let home = tempfile::tempdir().unwrap();

    // The link alone says where to go and which key to expect (no --server).
    let mut acct = common::register_via(
        home.path(),
        &["register", "--invite", &first, "--user", "alice"],
        "alice",
        0,
    );
    let known = fs::read_to_string(home.path().join("known_servers")).unwrap();
    assert_eq!(
        known,
        format!("{} {}\n", server.address, server.fingerprint())
    );

    // alice logs in (through the recorded key).
    let code = acct.next_code();
    let mut chat = common::chat(&server, home.path(), "alice", &code, &[]);
    chat.expect("login", |l| l == "login alice");
    chat.send("/whois alice");
    chat.expect("whois", |l| l.starts_with("whois alice role=op"));
    let (status, _, _) = chat.finish();
    assert!(status.success());

    // The same 1-use link again: used up → exit 4, no URI, no code asked.
    let other = tempfile::tempdir().unwrap();
    let (code, out, err) = run_unprompted(
        other.path(),
        &["register", "--invite", &first, "--user", "bob"],
        true,
    );
    assert_eq!(code, Some(4), "{out} {err}");
    assert!(err.contains("invite_invalid"), "{err}");
    assert!(!out.contains("otpauth://"), "{out}");

    // No invite at all on an invite-only server: exit 4 before the password is asked (none in
    // the environment, no terminal: a prompt would have failed with exit 1) …
    let (code, out, err) = run_unprompted(
        other.path(),
        &["--server", &server.address, "register", "--user", "bob"],
        false,
    );
    assert_eq!(code, Some(4), "{out} {err}");
    assert!(err.contains("invite only"), "{err}");
    // … and with the password in the environment, the server's refusal says the same.
    let (code, _, err) = run_unprompted(
        other.path(),
        &["--server", &server.address, "register", "--user", "bob"],
        true,
    );
    assert_eq!(code, Some(4), "{err}");
    assert!(err.contains("invite only"), "{err}");

    // A well-formed token nobody issued, as a bare token with --server.
    let (code, _, err) = run_unprompted(
        other.path(),
        &[
            "--server",
            &server.address,
            "register",
            "--user",
            "bob",
            "--invite",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ],
        true,
    );
    assert_eq!(code, Some(4), "{err}");

    // A revoked invite.
    let revoked = server.new_invite(3);
    let list = server.invite_admin(&InviteAction::List);
    let id: i64 = list
        .lines()
        .filter_map(|l| l.split('|').nth(1)?.trim().parse().ok())
        .max()
        .expect("an invite id in the list");
    server.invite_admin(&InviteAction::Revoke(id));
    let (code, out, err) = run_unprompted(
        other.path(),
        &["register", "--invite", &revoked, "--user", "bob"],
        true,
    );
    assert_eq!(code, Some(4), "{out} {err}");

    // A fresh invite's bare token with --server: bob gets in (a user, not an op).
    let link = server.new_invite(1);
    let token = link.rsplit("invite=").next().unwrap().to_owned();
    let bob_home = tempfile::tempdir().unwrap();
    let mut bob = common::register_via(
        bob_home.path(),
        &[
            "--server",
            &server.address,
            "register",
            "--user",
            "bob",
            "--invite",
            &token,
        ],
        "bob",
        0,
    );
    let code = bob.next_code();
    let mut chat = common::chat(&server, bob_home.path(), "bob", &code, &[]);
    chat.expect("login", |l| l == "login bob");
    chat.send("/whois bob");
    chat.expect("whois", |l| l.starts_with("whois bob role=user"));
    let (status, _, _) = chat.finish();
    assert!(status.success());
}

/// The code of the current step for the otpauth URI on a `URI: …` line.
fn code_for(uri_line: &str) -> String {
    let uri = uri_line.trim_start_matches("URI: ");
    chatbox_core::otp::OtpauthUri::parse(uri)
        .expect("an otpauth URI")
        .code_at(common::now_secs(), 0)
        .expect("test setup")
        .as_str()
        .to_owned()
}

#[test]
fn the_menu_asks_for_an_invite_and_join_opens_the_registration_for_the_link() {
    let server = invite_server();
    let home = tempfile::tempdir().unwrap();
    // Menu: Register on an invite-only server asks for the invite first; a garbled one is
    // refused (asked again), then the link works.
    let link = server.new_invite(1);
    let mut menu = common::Client::spawn(home.path(), &["--server", &server.address]);
    menu.send("1");
    menu.expect("invite only", |l| l.contains("registers by invite only"));
    menu.send("not an invite");
    menu.expect("garbled", |l| l.contains("garbled"));
    // A link for another server: refused, asked again.
    menu.send(&format!(
        "chatbox://127.0.0.1:1/?invite={}",
        link.rsplit("invite=").next().unwrap()
    ));
    menu.expect("another server", |l| l.contains("is for 127.0.0.1:1"));
    menu.send(&link);
    menu.send("erin");
    let uri = menu.expect("URI", |l| l.starts_with("URI: otpauth://"));
    menu.send(&code_for(&uri));
    menu.expect("registered", |l| l.contains("Registration complete"));
    menu.send("3");
    let (status, _, err) = menu.finish();
    assert!(status.success(), "{err:?}");

    // join LINK: straight into the registration for the link's server (no --server).
    let link = server.new_invite(1);
    let other = tempfile::tempdir().unwrap();
    let mut join = common::Client::spawn(other.path(), &["join", &link]);
    join.expect("invite for", |l| {
        l.contains(&format!("Invite for {}", server.address))
    });
    join.send("frank");
    let uri = join.expect("URI", |l| l.starts_with("URI: otpauth://"));
    join.send(&code_for(&uri));
    join.expect("registered", |l| l.contains("Registration complete"));
    // Then the menu, for that server.
    join.expect("menu", |l| {
        l.contains(&format!("ChatBox — {}", server.address))
    });
    join.send("3");
    let (status, _, err) = join.finish();
    assert!(status.success(), "{err:?}");
    let known = fs::read_to_string(other.path().join("known_servers")).unwrap();
    assert_eq!(
        known,
        format!("{} {}\n", server.address, server.fingerprint())
    );

    // The same link again: the menu says the invite is not valid and nothing is registered.
    let mut again = common::Client::spawn(other.path(), &["join", &link]);
    again.send("gina");
    again.expect("refused", |l| l.contains("the invite is not valid"));
    again.send("3");
    let (status, _, _) = again.finish();
    assert!(status.success());
}
