//! The chat screen's self-service, on a real terminal (tmux, its own socket) with the real
//! client and server: `/sessions` lists both sessions and `/sessions revoke others` closes the
//! other one; `/passwd` and `/reenrol` ask for every secret without echo; the re-enrolment's QR
//! code on screen decodes to the new secret, a code from it confirms, new scratch codes are
//! shown; afterwards the new password and a new scratch code log in, the old ones do not.
//! Skipped (with a note) when tmux is not installed.

mod common;

use core::time::Duration;
use std::process::Command;
use std::time::Instant;

use common::{BIN, Client, PASSWORD, TestServer};

const NEW_PASSWORD: &str = "tui-new-passphrase-42";

struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(cmd: &str) -> Option<Tmux> {
        let socket = format!("chatbox-client-test-{}", std::process::id());
        let ok = Command::new("tmux")
            .args([
                "-L",
                &socket,
                "new-session",
                "-d",
                "-s",
                "t",
                "-x",
                "150",
                "-y",
                "50",
                cmd,
            ])
            .status()
            .ok()?
            .success();
        ok.then_some(Tmux { socket })
    }

    fn keys(&self, keys: &[&str]) {
        let status = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", "-t", "t"])
            .args(keys)
            .status()
            .expect("tmux send-keys");
        assert!(status.success());
    }

    fn type_line(&self, text: &str) {
        self.keys(&["-l", text]);
        self.keys(&["Enter"]);
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p", "-t", "t"])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn wait_for(&self, what: &str) -> String {
        let end = Instant::now() + common::DEADLINE;
        loop {
            let s = self.screen();
            if s.contains(what) {
                return s;
            }
            assert!(Instant::now() < end, "{what:?} never on screen:\n{s}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

#[test]
fn chat_screen_sessions_passwd_and_reenrol_without_echo() {
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("tmux not installed: chat screen test skipped");
        return;
    }
    let server = TestServer::start();
    let home = tempfile::tempdir().unwrap();
    let acct = common::register(&server.address, home.path(), "tina");
    let s = &acct.scratch;

    // Another session of tina, in plain mode.
    let mut other = common::chat(&server, home.path(), "tina", &s[0], &[]);
    other.expect("login", |l| l == "login tina");

    let cmd = format!(
        "env CHATBOX_HOME={} CHATBOX_PASSWORD='{PASSWORD}' {BIN} --server {} chat --user tina --otp {}",
        home.path().display(),
        server.address,
        s[1]
    );
    let Some(tui) = Tmux::start(&cmd) else {
        eprintln!("tmux cannot start a session here: chat screen test skipped");
        return;
    };
    tui.wait_for("logged in as tina");

    tui.type_line("/sessions");
    let screen = tui.wait_for("end of sessions");
    assert_eq!(screen.matches("-!- session ").count(), 2, "{screen}");
    assert!(screen.contains("(this one)"), "{screen}");
    tui.type_line("/sessions revoke others");
    tui.wait_for("1 session(s) closed");
    other.expect("bye", |l| l.starts_with("bye "));
    let _ = other.finish();

    tui.type_line("/passwd");
    tui.wait_for("current password (not shown");
    tui.type_line(PASSWORD);
    tui.wait_for("one-time code (not shown");
    tui.type_line(&s[2]);
    tui.wait_for("new password (not shown");
    tui.type_line(NEW_PASSWORD);
    tui.wait_for("new password again (not shown");
    tui.type_line(NEW_PASSWORD);
    let screen = tui.wait_for("password changed; 0 other session(s) closed");
    for secret in [PASSWORD, NEW_PASSWORD, s[2].as_str()] {
        assert!(!screen.contains(secret), "{secret:?} shown:\n{screen}");
    }
    // Up brings back /passwd at most, never a secret.
    tui.keys(&["Up", "Up", "Up"]);
    std::thread::sleep(Duration::from_millis(300));
    let screen = tui.screen();
    assert!(
        !screen.contains(NEW_PASSWORD) && !screen.contains(PASSWORD),
        "{screen}"
    );

    // Re-enrolment: asked without echo, the new secret as a QR code that decodes, confirmed
    // with a code from it; new scratch codes on screen.
    tui.keys(&["C-u"]);
    tui.type_line("/reenrol");
    tui.wait_for("current password (not shown");
    tui.type_line(NEW_PASSWORD);
    tui.wait_for("one-time code (not shown");
    tui.type_line(&s[5]);
    let screen = tui.wait_for("or by hand: ");
    let grouped = screen
        .lines()
        .find_map(|l| l.split("or by hand: ").nth(1))
        .unwrap()
        .trim();
    let secret: String = grouped.split_whitespace().collect();
    let uri = decode_screen_qr(&screen);
    let parsed = chatbox_core::otp::OtpauthUri::parse(&uri).unwrap();
    assert_eq!(parsed.secret_base32(), secret.as_str(), "{uri}");
    assert_ne!(secret, acct.secret_b32);
    let totp = parsed.totp().unwrap();
    let code = totp
        .generate_at_step(totp.step(common::now_secs()))
        .unwrap();
    tui.type_line(&format!("/reenrol confirm {}", code.as_str()));
    let screen = tui.wait_for("second factor re-enrolled");
    let new_scratch: Vec<&str> = screen
        .lines()
        .skip_while(|l| !l.contains("second factor re-enrolled"))
        .flat_map(str::split_whitespace)
        .filter(|w| w.len() == 8 && w.bytes().all(|b| b.is_ascii_digit()))
        .collect();
    assert_eq!(new_scratch.len(), 10, "{screen}");
    let first_new = new_scratch[0].to_owned();
    let new_scratch: Vec<String> = new_scratch.iter().map(|c| (*c).to_owned()).collect();
    tui.keys(&["C-c"]);

    // The old password no longer logs in (with a valid new scratch code); an old scratch code
    // no longer works (with the new password); the new password and a new scratch code do.
    let plain = |password: &str, code: &str| {
        Client::spawn_env(
            home.path(),
            &[
                "--server",
                &server.address,
                "chat",
                "--plain",
                "--user",
                "tina",
                "--otp",
                code,
            ],
            &[("CHATBOX_PASSWORD", password)],
        )
    };
    assert_eq!(plain(PASSWORD, &new_scratch[1]).finish().0.code(), Some(4));
    assert_eq!(plain(NEW_PASSWORD, &s[6]).finish().0.code(), Some(4));
    let mut new = plain(NEW_PASSWORD, &first_new);
    new.expect("login", |l| l == "login tina");
    assert!(new.finish().0.success());
}

/// The QR code drawn on the chat screen (plain style: a block is a light module) read back.
fn decode_screen_qr(screen: &str) -> String {
    let rows: Vec<&str> = screen
        .lines()
        .filter_map(|l| l.split_once("-!- ").map(|(_, r)| r))
        .filter(|r| r.contains('▀') || r.contains('▄') || r.contains('█'))
        .collect();
    assert!(rows.len() > 10, "no QR code on screen:\n{screen}");
    let width = rows.iter().map(|r| r.chars().count()).max().unwrap_or(0);
    let mut modules: Vec<Vec<bool>> = Vec::new();
    for r in &rows {
        let (mut top, mut bottom) = (Vec::new(), Vec::new());
        let mut chars: Vec<char> = r.chars().collect();
        chars.resize(width, ' ');
        for c in chars {
            let (t, b) = match c {
                '█' => (true, true),
                '▀' => (true, false),
                '▄' => (false, true),
                _ => (false, false),
            };
            // Plain style: the drawn (foreground) half is a light module.
            top.push(!t);
            bottom.push(!b);
        }
        modules.push(top);
        modules.push(bottom);
    }
    // A light quiet zone around it (the screen trims trailing blanks).
    let pad = 4;
    let w = width + 2 * pad;
    let h = modules.len() + 2 * pad;
    let px = 4;
    let dark = |x: usize, y: usize| {
        let (x, y) = (x / px, y / px);
        x >= pad && y >= pad && modules.get(y - pad).and_then(|r| r.get(x - pad)) == Some(&true)
    };
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w * px, h * px, |x, y| {
        if dark(x, y) { 0 } else { 255 }
    });
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code on screen:\n{screen}");
    let (_, content) = grids[0].decode().expect("the QR code decodes");
    content
}
