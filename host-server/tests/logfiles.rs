//! The files of the real binary: private from their first byte whatever the umask (13.2), the
//! chat log's anchor against cutting its end (13.10), and log rotation by SIGHUP with the chain
//! going on across files (15.3).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/binserver.rs"]
mod binserver;
use chatbox_server::test_util as common;

use core::time::Duration;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use binserver::{BinServer, server_bin};
use chatbox_core::proto::ServerMsg;
use common::*;

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

fn set_mode(p: &Path, m: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// Waits until `file` contains `needle` (the logs are written asynchronously).
fn wait_in(file: &Path, needle: &str) -> String {
    let end = Instant::now() + TIMEOUT;
    loop {
        let text = read(file);
        if text.contains(needle) {
            return text;
        }
        assert!(
            Instant::now() < end,
            "{} never contained {needle:?}:\n{text}",
            file.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn verify(data: &Path, files: &[PathBuf]) -> Output {
    Command::new(server_bin())
        .arg("verify-log")
        .arg("--data-dir")
        .arg(data)
        .args(files)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

struct Dirs {
    _tmp: tempfile::TempDir,
    data: PathBuf,
    log: PathBuf,
}

fn dirs() -> Dirs {
    let tmp = tempfile::tempdir().unwrap();
    let (data, log) = (tmp.path().join("data"), tmp.path().join("log"));
    Dirs {
        _tmp: tmp,
        data,
        log,
    }
}

// ---------------------------------------------------------------------------------------------
// 13.2: private files.

/// Every directory 0700 and every file 0600 under `dir`, recursively.
fn assert_private(dir: &Path) -> Vec<String> {
    let mut seen = Vec::new();
    assert_eq!(mode(dir), 0o700, "{} is {:o}", dir.display(), mode(dir));
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            seen.extend(assert_private(&p));
        } else {
            assert_eq!(mode(&p), 0o600, "{} is {:o}", p.display(), mode(&p));
            seen.push(p.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    seen
}

#[test]
fn every_file_and_directory_is_private_under_umask_022() {
    let d = dirs();
    let mut srv = BinServer::start_umask(Some("022"), &d.data, &d.log, &[]);
    let acc = register(srv.addr, "alice");
    let mut c = login(srv.addr, &acc, 0);
    for i in 0..20 {
        c.say("#lobby", &format!("private line {i}"));
    }
    wait_in(&d.log.join("chat.log"), "private line 19");
    // While it runs, after writes: the WAL and the shared memory exist and are private too.
    let data_files = assert_private(&d.data);
    for name in [
        "chatbox.db",
        "chatbox.db-wal",
        "chatbox.db-shm",
        "server.key",
        "chat.anchor",
    ] {
        assert!(
            data_files.iter().any(|f| f == name),
            "no {name} in {data_files:?}"
        );
    }
    let log_files = assert_private(&d.log);
    for name in ["chat.log", "info.log", "sql.log", "credentials.log"] {
        assert!(
            log_files.iter().any(|f| f == name),
            "no {name} in {log_files:?}"
        );
    }
    drop(c);
    assert_eq!(srv.terminate(), Some(0));
    assert_private(&d.data);
    assert_private(&d.log);
}

#[test]
fn existing_open_files_and_directories_are_tightened_and_said_in_info_log() {
    let d = dirs();
    // A first run leaves the files; then someone (an old version, umask 022) opens them up.
    let mut srv = BinServer::start(&d.data, &d.log, &[]);
    register(srv.addr, "alice");
    assert_eq!(srv.terminate(), Some(0));
    std::fs::write(d.log.join("chat.log.1"), b"rotated\n").unwrap();
    std::fs::write(d.data.join("notes.txt"), b"not ours\n").unwrap();
    for dir in [&d.data, &d.log] {
        set_mode(dir, 0o755);
        for e in std::fs::read_dir(dir).unwrap() {
            set_mode(&e.unwrap().path(), 0o644);
        }
    }
    let mut srv = BinServer::start_umask(Some("022"), &d.data, &d.log, &[]);
    register(srv.addr, "bob");
    assert_eq!(srv.terminate(), Some(0));
    let info = read(&d.log.join("info.log"));
    for p in [
        d.data.clone(),
        d.data.join("chatbox.db"),
        d.data.join("server.key"),
        d.log.clone(),
        d.log.join("chat.log"),
        d.log.join("chat.log.1"),
        d.log.join("credentials.log"),
    ] {
        let want = if p.is_dir() {
            "0755 to 0700"
        } else {
            "0644 to 0600"
        };
        assert!(
            info.contains(&format!(
                "tightened permissions of {} from {want}",
                p.display()
            )),
            "no tightening line for {}:\n{info}",
            p.display()
        );
    }
    assert_eq!(
        mode(&d.data.join("notes.txt")),
        0o644,
        "not the server's: left alone"
    );
    std::fs::remove_file(d.data.join("notes.txt")).unwrap();
    assert_private(&d.data);
    assert_private(&d.log);
    assert!(srv.stderr().contains("tightened permissions of"));
}

// ---------------------------------------------------------------------------------------------
// 13.10: cutting the end of chat.log.

fn chat_lines(srv: &BinServer, acc: &Account, offset: i64, prefix: &str, n: usize) -> Client {
    let mut c = login(srv.addr, acc, offset);
    for i in 0..n {
        c.say("#lobby", &format!("{prefix} {i}"));
    }
    c
}

#[test]
fn cutting_the_end_of_chat_log_fails_verify_log_and_is_reported_at_start() {
    let d = dirs();
    let mut srv = BinServer::start(&d.data, &d.log, &["--burst", "1000"]);
    let acc = register(srv.addr, "alice");
    drop(chat_lines(&srv, &acc, 0, "line", 10));
    assert_eq!(srv.terminate(), Some(0));
    let log = d.log.join("chat.log");
    let full = read(&log);
    assert_eq!(full.lines().count(), 10);
    let ok = verify(&d.data, core::slice::from_ref(&log));
    assert!(ok.status.success(), "{ok:?}");
    assert!(
        stdout(&ok).contains("10 lines verified") && stdout(&ok).contains("ends at its anchor")
    );
    // Cut the last three lines: every remaining line still chains, but the anchor says 10.
    let kept: String = full.lines().take(7).map(|l| format!("{l}\n")).collect();
    std::fs::write(&log, &kept).unwrap();
    let cut = verify(&d.data, core::slice::from_ref(&log));
    assert_eq!(cut.status.code(), Some(1), "{cut:?}");
    assert!(
        stdout(&cut).contains("lines 8..10 are missing at the end"),
        "{}",
        stdout(&cut)
    );
    // The server, started on the shortened log, says so (info.log and stderr) and goes on
    // from the anchor, so the gap stays visible.
    let mut srv = BinServer::start(&d.data, &d.log, &[]);
    let c = login_with(srv.addr, "alice", &acc.scratch[0]);
    drop(c);
    assert_eq!(srv.terminate(), Some(0));
    let err = srv.stderr();
    assert!(err.contains("chat.log was shortened"), "{err}");
    assert!(err.contains("lines 8..10 are missing"), "{err}");
    assert!(read(&d.log.join("info.log")).contains("chat.log was shortened"));
    // Lines written after the cut do not hide it.
    let mut srv = BinServer::start(&d.data, &d.log, &[]);
    let mut c = login_with(srv.addr, "alice", &acc.scratch[1]);
    c.say("#lobby", "after the cut");
    drop(c);
    assert_eq!(srv.terminate(), Some(0));
    let after = verify(&d.data, core::slice::from_ref(&log));
    assert!(!after.status.success(), "{after:?}");
    assert!(
        stdout(&after).contains("line 8 does not verify"),
        "{}",
        stdout(&after)
    );
}

#[test]
fn a_kill_9_is_not_reported_as_a_cut_log() {
    let d = dirs();
    let mut srv = BinServer::start(&d.data, &d.log, &["--burst", "1000"]);
    let acc = register(srv.addr, "alice");
    let _c = chat_lines(&srv, &acc, 0, "before the kill", 30);
    srv.kill9();
    let log = d.log.join("chat.log");
    let out = verify(&d.data, core::slice::from_ref(&log));
    assert!(out.status.success(), "{out:?}");
    let mut srv = BinServer::start(&d.data, &d.log, &[]);
    assert_eq!(srv.terminate(), Some(0));
    let err = srv.stderr();
    assert!(
        !err.contains("shortened") && !err.contains("anchor"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// 15.3: rotation.

const LOGS: [&str; 4] = ["chat.log", "info.log", "sql.log", "credentials.log"];

/// Renames the four logs to `NAME.1` (logrotate's default) and, as logrotate's `create 0600`
/// does, makes a new empty `chat.log` before the SIGHUP (the others the server creates itself).
fn rotate(srv: &BinServer, log: &Path) {
    for name in LOGS {
        std::fs::rename(log.join(name), log.join(format!("{name}.1"))).unwrap();
    }
    std::fs::write(log.join("chat.log"), b"").unwrap();
    set_mode(&log.join("chat.log"), 0o600);
    srv.signal("HUP");
    for name in LOGS {
        let end = Instant::now() + TIMEOUT;
        while !log.join(name).exists() {
            assert!(Instant::now() < end, "{name} not reopened after SIGHUP");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn sighup_reopens_the_logs_and_the_chain_goes_on_across_files() {
    let d = dirs();
    let mut srv = BinServer::start_umask(Some("022"), &d.data, &d.log, &["--burst", "1000"]);
    let acc = register(srv.addr, "alice");
    let mut c = chat_lines(&srv, &acc, 0, "first file", 5);
    wait_in(&d.log.join("chat.log"), "first file 4");
    rotate(&srv, &d.log);
    for i in 0..5 {
        c.say("#lobby", &format!("second file {i}"));
    }
    wait_in(&d.log.join("chat.log"), "second file 4");
    // New lines land in the new files, none in the old ones.
    let old = read(&d.log.join("chat.log.1"));
    let new = read(&d.log.join("chat.log"));
    assert!(
        !old.contains("second file") && old.contains("first file 4"),
        "{old}"
    );
    assert!(
        new.contains("chain continues from") && new.contains("second file 0"),
        "{new}"
    );
    wait_in(&d.log.join("info.log"), "log files reopened");
    assert!(read(&d.log.join("info.log.1")).contains("listening on"));
    assert_private(&d.log);
    drop(c);
    assert_eq!(srv.terminate(), Some(0));
    let (f1, f2) = (d.log.join("chat.log.1"), d.log.join("chat.log"));
    let both = verify(&d.data, &[f1.clone(), f2.clone()]);
    assert!(both.status.success(), "{both:?}");
    assert!(
        stdout(&both).contains("11 lines verified in 2 files"),
        "{}",
        stdout(&both)
    );
    // The newer file alone: it starts at a rotation point, which is said.
    let alone = verify(&d.data, core::slice::from_ref(&f2));
    assert!(alone.status.success(), "{alone:?}");
    assert!(stdout(&alone).contains("starts where a rotation left the chain"));
    // The wrong order fails.
    assert!(!verify(&d.data, &[f2.clone(), f1.clone()]).status.success());
    // A line dropped at the boundary (the last of the older file) is reported.
    let text = read(&f1);
    let n = text.lines().count();
    let cut: String = text.lines().take(n - 1).map(|l| format!("{l}\n")).collect();
    std::fs::write(&f1, cut).unwrap();
    let gap = verify(&d.data, &[f1.clone(), f2.clone()]);
    assert_eq!(gap.status.code(), Some(1), "{gap:?}");
    let out = stdout(&gap);
    assert!(
        out.contains("chat.log line 1 does not verify") && out.contains("missing at the boundary"),
        "{out}"
    );
}

#[test]
fn sighup_while_the_log_directory_is_gone_keeps_the_chat_and_a_later_one_recovers() {
    let d = dirs();
    let mut srv = BinServer::start(&d.data, &d.log, &["--burst", "1000"]);
    let acc = register(srv.addr, "alice");
    let bob = register(srv.addr, "bob");
    let mut c = chat_lines(&srv, &acc, 0, "before", 3);
    wait_in(&d.log.join("chat.log"), "before 2");
    let moved = d.log.with_file_name("log-away");
    std::fs::rename(&d.log, &moved).unwrap();
    srv.signal("HUP");
    std::thread::sleep(Duration::from_millis(300));
    // The chat goes on.
    let mut b = login(srv.addr, &bob, 0);
    for i in 0..3 {
        c.say("#lobby", &format!("while gone {i}"));
    }
    b.recv_until(
        "line from alice",
        |m| matches!(m, ServerMsg::Message(x) if x.text == "while gone 2"),
    );
    // The directory is back (empty): a second SIGHUP recovers.
    std::fs::create_dir(&d.log).unwrap();
    srv.signal("HUP");
    wait_in(&d.log.join("info.log"), "log files reopened");
    c.say("#lobby", "after recovery");
    let chat = wait_in(&d.log.join("chat.log"), "after recovery");
    assert!(
        chat.contains("chain continues from") && chat.contains("3 chat lines were lost"),
        "{chat}"
    );
    drop((c, b));
    assert_eq!(srv.terminate(), Some(0));
    let err = srv.stderr();
    assert!(err.contains("cannot open log file chat.log"), "{err}");
    assert!(err.contains("No such file or directory"), "{err}");
    let out = verify(&d.data, &[moved.join("chat.log"), d.log.join("chat.log")]);
    assert!(out.status.success(), "{out:?}");
}

/// Where the mode cannot be changed (here an immutable file: even root's chmod fails), the
/// server refuses to start and names the file, rather than serve with it readable by others.
#[test]
fn a_file_that_cannot_be_made_private_stops_the_start_with_its_name() {
    let d = dirs();
    std::fs::create_dir_all(&d.log).unwrap();
    let rotated = d.log.join("chat.log.1");
    std::fs::write(&rotated, b"old private lines\n").unwrap();
    set_mode(&rotated, 0o644);
    let immutable = Command::new("chattr").arg("+i").arg(&rotated).status();
    if !immutable.is_ok_and(|s| s.success()) {
        eprintln!("skipped: chattr +i is not available here (needs root on ext2/3/4)");
        return;
    }
    let out = Command::new(server_bin())
        .args(["--listen", "127.0.0.1:0", "--pbkdf2-iterations", "10000"])
        .arg("--data-dir")
        .arg(&d.data)
        .arg("--log-dir")
        .arg(&d.log)
        .output()
        .unwrap();
    let _ = Command::new("chattr").arg("-i").arg(&rotated).status();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "started with {} readable by others",
        rotated.display()
    );
    assert!(
        err.contains(&format!(
            "{} is accessible to other users (mode 0644)",
            rotated.display()
        )) && err.contains("cannot be changed"),
        "{err}"
    );
}
