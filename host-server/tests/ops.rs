//! Operating the real binary (issue 15): the TOML config file and `config check`, the online
//! `backup` under load, and `--metrics` (/metrics, /healthz, a port in use).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/binserver.rs"]
mod binserver;
use chatbox_server::test_util as common;

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use core::time::Duration;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Instant;

use binserver::{BinServer, server_bin};
use chatbox_core::proto::{ClientMsg, ErrorCode, ServerMsg};
use common::*;

fn run(args: &[&str], cwd: &Path) -> Output {
    Command::new(server_bin())
        .args(args)
        .current_dir(cwd)
        .env_remove("CHATBOX_CONFIG")
        .env_remove("CHATBOX_LISTEN")
        .env_remove("CHATBOX_DATA_DIR")
        .output()
        .expect("running chatbox-server")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

// ---- config file ----

#[test]
fn config_check_shows_each_value_and_its_source() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("c.toml"),
        "# comment\nlisten = \"127.0.0.1:7001\"\nmax-per-ip = 16\ndatabase = \"postgres://bob:hunter2@db.invalid/chat\"\nissuer = \"Ops\"\n",
    )
    .unwrap();
    let o = Command::new(server_bin())
        .args(["config", "check", "--config", "c.toml", "--issuer", "Cli"])
        .env("CHATBOX_LISTEN", "127.0.0.1:7002")
        .env_remove("CHATBOX_CONFIG")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    let line = |key: &str| {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(key))
            .unwrap_or_else(|| panic!("no {key} in {out}"))
            .to_owned()
    };
    // command line > environment > file > default
    assert!(line("issuer").contains("Cli") && line("issuer").ends_with("# command line"));
    assert!(line("listen").contains("127.0.0.1:7002"), "{out}");
    assert!(
        line("listen").ends_with("# environment CHATBOX_LISTEN"),
        "{out}"
    );
    assert!(line("max-per-ip").contains("16") && line("max-per-ip").ends_with("c.toml line 3"));
    assert!(line("lock-after").contains("10") && line("lock-after").ends_with("# default"));
    // The password never shows.
    assert!(!out.contains("hunter2"), "{out}");
    assert!(
        line("database").contains("postgres://bob:***@db.invalid/chat"),
        "{out}"
    );
    assert!(out.contains("listen overridden"), "{out}");
    assert!(out.contains("configuration OK"), "{out}");
}

#[test]
fn bad_config_files_are_refused_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, Option<&str>, &[&str])] = &[
        ("missing.toml", None, &["missing.toml", "cannot read"]),
        (
            "notoml.toml",
            Some("listen = \"x\nmax-per-ip = 3\n"),
            &["not valid TOML", "line 1"],
        ),
        (
            "unknown.toml",
            Some("listen = \"127.0.0.1:0\"\n\nmax-per-iq = 3\n"),
            &["line 3", "`max-per-iq`", "unknown key"],
        ),
        (
            "range.toml",
            Some("# iterations\npbkdf2-iterations = 5\n"),
            &["line 2", "`pbkdf2-iterations`", "10000..=10000000"],
        ),
        (
            "type.toml",
            Some("max-per-ip = \"many\"\n"),
            &["line 1", "`max-per-ip`", "invalid value 'many'"],
        ),
        (
            "table.toml",
            Some("[listen]\nport = 1\n"),
            &["line 1", "`listen`", "expected a string"],
        ),
        (
            "self.toml",
            Some("config = \"other.toml\"\n"),
            &["`config`", "unknown key"],
        ),
    ];
    for (name, content, want) in cases {
        if let Some(c) = content {
            std::fs::write(dir.path().join(name), c).unwrap();
        }
        for cmd in [
            &["--config", name][..],
            &["serve", "--config", name],
            &["config", "check", "--config", name],
        ] {
            let o = run(
                &[
                    cmd,
                    &[
                        "--data-dir",
                        "d",
                        "--log-dir",
                        "l",
                        "--listen",
                        "127.0.0.1:0",
                    ],
                ]
                .concat(),
                dir.path(),
            );
            let (out, err) = text(&o);
            assert_eq!(o.status.code(), Some(2), "{name} {cmd:?}: {out}{err}");
            for w in *want {
                assert!(err.contains(w), "{name}: want {w:?} in {err:?}");
            }
            assert!(!out.contains("listening"), "{out}");
            // Nothing started: no data or log directory was created.
            assert!(
                !dir.path().join("d").exists() && !dir.path().join("l").exists(),
                "{name}"
            );
        }
    }
    // Unreadable (not root: root reads anything).
    let unread = dir.path().join("unread.toml");
    std::fs::write(&unread, "max-per-ip = 3\n").unwrap();
    std::fs::set_permissions(&unread, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::read(&unread).is_err() {
        let o = run(&["--config", "unread.toml"], dir.path());
        assert_eq!(o.status.code(), Some(2));
        assert!(text(&o).1.contains("Permission denied"), "{:?}", text(&o));
    }
}

/// The file's settings reach the running server; the command line still wins.
#[test]
fn serve_uses_the_file_and_the_command_line_wins() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("chatbox.toml");
    std::fs::write(
        &cfg,
        "motd = \"motd from the file\"\nissuer = \"FileIssuer\"\nlisten = \"127.0.0.1:1\"\n",
    )
    .unwrap();
    let cfg_s = cfg.to_str().unwrap();
    // BinServer passes --listen 127.0.0.1:0 on the command line: it beats the file's port 1.
    let s = BinServer::start(
        &dir.path().join("data"),
        &dir.path().join("log"),
        &["--config", cfg_s, "--issuer", "CliIssuer"],
    );
    let mut c = Client::connect(s.addr);
    c.send(&ClientMsg::Register {
        user: "alice",
        password: PASSWORD,
    });
    let r = c.recv();
    let ServerMsg::RegisterStarted { uri } = r.msg() else {
        panic!("{r:?}")
    };
    assert!(uri.contains("issuer=CliIssuer"), "{uri}");
    drop(c);
    let acc = register(s.addr, "bob");
    let mut c = Client::connect(s.addr);
    c.send(&ClientMsg::Login {
        user: "bob",
        password: PASSWORD,
        otp: &code_at_offset(&acc.secret, 0),
    });
    let r = c.recv();
    let ServerMsg::LoginOk { motd, .. } = r.msg() else {
        panic!("{r:?}")
    };
    assert_eq!(motd, "motd from the file");
}

// ---- backup ----

fn writers(
    addr: core::net::SocketAddr,
    n: usize,
    stop: &Arc<AtomicBool>,
) -> (Vec<std::thread::JoinHandle<()>>, Arc<AtomicU64>) {
    let sent = Arc::new(AtomicU64::new(0));
    let mut hs = Vec::new();
    for i in 0..n {
        let acc = register(addr, &format!("writer{i}"));
        let (stop, sent) = (stop.clone(), sent.clone());
        hs.push(std::thread::spawn(move || {
            let mut c = login(addr, &acc, 0);
            let mut k = 0u64;
            while !stop.load(Ordering::SeqCst) {
                k += 1;
                c.send(&ClientMsg::Say {
                    room: "#lobby",
                    text: &format!("load {i} {k}"),
                });
                // Our own echo: the message is stored.
                c.recv_until(
                    "echo",
                    |m| matches!(m, ServerMsg::Message(x) if x.from == acc.user),
                );
                sent.fetch_add(1, Ordering::SeqCst);
                // Under the rate limit (20/s per connection).
                std::thread::sleep(Duration::from_millis(80));
            }
        }));
    }
    (hs, sent)
}

#[test]
fn backup_under_load_is_consistent_private_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = BinServer::start(&data, &dir.path().join("log"), &[]);
    let stop = Arc::new(AtomicBool::new(false));
    let (hs, sent) = writers(s.addr, 3, &stop);
    let t0 = Instant::now();
    while sent.load(Ordering::SeqCst) < 100 && t0.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let data_s = data.to_str().unwrap();
    // Backups one after another while the writers keep writing: each consistent and complete
    // up to the moment it began, later ones holding more.
    let mut counts = Vec::new();
    for i in 0..6 {
        let before = sent.load(Ordering::SeqCst);
        let f = dir.path().join(format!("b{i}.db"));
        let f_s = f.to_str().unwrap();
        let o = if i % 2 == 0 {
            run(&["backup", "--data-dir", data_s, f_s], dir.path())
        } else {
            let url = format!("sqlite://{data_s}/chatbox.db");
            run(&["backup", "--database", &url, f_s], dir.path())
        };
        let (out, err) = text(&o);
        assert!(o.status.success(), "{out}{err}");
        let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", f.display());
        // One self-contained file.
        assert!(!Path::new(&format!("{f_s}-wal")).exists());
        let db = rusqlite::Connection::open(&f).unwrap();
        let check: String = db
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
        let (n, max): (u64, u64) = db
            .query_row(
                "SELECT COUNT(*), COALESCE(MAX(id),0) FROM MESSAGES",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        let accounts: u64 = db
            .query_row("SELECT COUNT(*) FROM REGISTERED", [], |r| r.get(0))
            .unwrap();
        // Every message acknowledged before the backup began is in it; ids dense.
        assert!(n >= before && n == max, "n={n} max={max} before={before}");
        assert_eq!(accounts, 3);
        assert!(
            out.contains(&format!(
                "{accounts} accounts, {n} messages, last message id {max}"
            )),
            "{out}"
        );
        counts.push(n);
        std::thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, Ordering::SeqCst);
    for h in hs {
        h.join().unwrap();
    }
    assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
    assert!(
        counts[5] > counts[0],
        "the writers did not write between the backups: {counts:?}"
    );
    let out1 = dir.path().join("b0.db");
    // Never overwrites: an existing file (and /dev/full, which exists) is refused, untouched.
    let len = std::fs::metadata(&out1).unwrap().len();
    let o = run(
        &["backup", "--data-dir", data_s, out1.to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o)
            .1
            .contains("already exists: a backup never overwrites"),
        "{:?}",
        text(&o)
    );
    assert_eq!(std::fs::metadata(&out1).unwrap().len(), len);
    let o = run(&["backup", "--data-dir", data_s, "/dev/full"], dir.path());
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).1.contains("/dev/full already exists"),
        "{:?}",
        text(&o)
    );
    // No database there: an error, and no database created.
    let o = run(&["backup", "--data-dir", "nowhere", "x.db"], dir.path());
    assert_eq!(o.status.code(), Some(1));
    assert!(!dir.path().join("nowhere").exists() && !dir.path().join("x.db").exists());
    // PostgreSQL: pointed to pg_dump, password masked.
    let o = run(
        &[
            "backup",
            "--database",
            "postgres://u:s3cret@h.invalid/db",
            "y.db",
        ],
        dir.path(),
    );
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(err.contains("pg_dump") && !err.contains("s3cret"), "{err}");
    assert!(!dir.path().join("y.db").exists());
}

/// A full file system: a clear error and no partial file left. Needs a small tmpfs (root).
#[test]
fn backup_to_a_full_disk_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = BinServer::start(&data, &dir.path().join("log"), &[]);
    for i in 0..3 {
        register(s.addr, &format!("user{i}"));
    }
    let mnt = dir.path().join("small");
    std::fs::create_dir(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=16k", "tmpfs"])
        .arg(&mnt)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("SKIPPED: cannot mount a tmpfs here (not root?)");
        return;
    }
    // Fill it.
    let _ = std::fs::write(mnt.join("fill"), vec![0u8; 64 * 1024]);
    let out = mnt.join("b.db");
    let o = run(
        &[
            "backup",
            "--data-dir",
            data.to_str().unwrap(),
            out.to_str().unwrap(),
        ],
        dir.path(),
    );
    let (_, err) = text(&o);
    let left = out.exists();
    let _ = Command::new("umount").arg(&mnt).status();
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("full") || err.contains("No space"), "{err}");
    assert!(!left, "a partial backup was left behind");
}

// ---- metrics ----

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http_get(port: u16, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad response {resp:?}"));
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn sample(body: &str, series: &str) -> f64 {
    body.lines()
        .find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no {series} in\n{body}"))
}

#[test]
fn metrics_move_with_the_chat_and_healthz_follows_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let data = dir.path().join("data");
    let s = BinServer::start(
        &data,
        &dir.path().join("log"),
        &["--metrics", &port.to_string()],
    );
    let (st, m0) = http_get(port, "/metrics");
    assert_eq!(st, 200);
    for name in [
        "chatbox_connections{state=\"anonymous\"} 0",
        "chatbox_connections{state=\"authenticated\"} 0",
        "chatbox_logins_total{result=\"ok\"} 0",
        "chatbox_logins_total{result=\"failed\"} 0",
        "chatbox_logins_total{result=\"busy\"} 0",
        "chatbox_registrations_total 0",
        "chatbox_messages_total 0",
        "chatbox_deliveries_total 0",
        "chatbox_slow_reader_disconnects_total 0",
        "# TYPE chatbox_store_commit_seconds histogram",
        "# TYPE chatbox_message_store_seconds histogram",
        "chatbox_message_store_seconds_count 0",
    ] {
        assert!(m0.contains(name), "{name} missing:\n{m0}");
    }
    // Not in cluster mode.
    assert!(!m0.contains("chatbox_bus_events"), "{m0}");
    let alice = register(s.addr, "alice");
    let bob = register(s.addr, "bob");
    let mut ca = login(s.addr, &alice, 0);
    let mut cb = login(s.addr, &bob, 0);
    let mut bad = Client::connect(s.addr);
    bad.send(&ClientMsg::Login {
        user: "alice",
        password: "wrong password here",
        otp: "000000",
    });
    bad.expect_error(ErrorCode::InvalidCredentials);
    let anon = Client::connect(s.addr);
    for i in 0..5 {
        ca.send(&ClientMsg::Say {
            room: "#lobby",
            text: &format!("m{i}"),
        });
        cb.recv_until("message", |m| matches!(m, ServerMsg::Message(_)));
    }
    let (_, m1) = http_get(port, "/metrics");
    assert_eq!(sample(&m1, "chatbox_registrations_total"), 2.0);
    assert_eq!(sample(&m1, "chatbox_logins_total{result=\"ok\"}"), 2.0);
    assert_eq!(sample(&m1, "chatbox_logins_total{result=\"failed\"}"), 1.0);
    assert_eq!(sample(&m1, "chatbox_messages_total"), 5.0);
    assert_eq!(
        sample(&m1, "chatbox_connections{state=\"authenticated\"}"),
        2.0
    );
    assert!(
        sample(&m1, "chatbox_connections{state=\"anonymous\"}") >= 1.0,
        "{m1}"
    );
    // Queued to other connections: each message to bob, and bob's join to alice (a sender's
    // echo is its own reply, not a delivery).
    assert_eq!(sample(&m1, "chatbox_deliveries_total"), 6.0, "{m1}");
    assert!(
        sample(&m1, "chatbox_store_commit_seconds_count") >= 5.0,
        "{m1}"
    );
    // Every message's wait for its store, once each, and each a positive time.
    assert_eq!(
        sample(&m1, "chatbox_message_store_seconds_count"),
        5.0,
        "{m1}"
    );
    assert!(
        sample(&m1, "chatbox_message_store_seconds_sum") > 0.0,
        "{m1}"
    );
    drop((ca, cb, anon, bad));
    let t0 = Instant::now();
    loop {
        let (_, m) = http_get(port, "/metrics");
        if sample(&m, "chatbox_connections{state=\"authenticated\"}") == 0.0
            && sample(&m, "chatbox_connections{state=\"anonymous\"}") == 0.0
        {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "connections never went to 0:\n{m}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Health: 200; 503 while another process holds the database's write lock; 200 again.
    assert_eq!(http_get(port, "/healthz"), (200, "ok\n".to_owned()));
    let db = rusqlite::Connection::open(data.join("chatbox.db")).unwrap();
    db.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let (st, body) = http_get(port, "/healthz");
    db.execute_batch("COMMIT").unwrap();
    assert_eq!((st, body.as_str()), (503, "store not answering\n"));
    let t0 = Instant::now();
    while http_get(port, "/healthz").0 != 200 {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "healthz never recovered"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(http_get(port, "/nothing").0, 404);
    // The port is taken now: a second server refuses to start and names it.
    let d2 = tempfile::tempdir().unwrap();
    let o = Command::new(server_bin())
        .args(["--listen", "127.0.0.1:0", "--metrics", &port.to_string()])
        .arg("--data-dir")
        .arg(d2.path().join("data"))
        .arg("--log-dir")
        .arg(d2.path().join("log"))
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert!(!o.status.success(), "{out}{err}");
    assert!(
        err.contains(&format!("port {port}")) && err.contains("--metrics"),
        "{err}"
    );
    assert!(!out.contains("listening on"), "{out}");
}

/// The database, its WAL files and the four logs are 0600 even under a permissive umask (the
/// package's unit also sets UMask=0077; a server started by hand gets no such help).
#[test]
fn data_and_log_files_are_private_under_umask_022() {
    let dir = tempfile::tempdir().unwrap();
    let (data, log) = (dir.path().join("data"), dir.path().join("log"));
    // Started through a shell so that its umask is 022 whatever ours is.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("umask 022; exec \"$0\" --listen 127.0.0.1:0 --data-dir \"$1\" --log-dir \"$2\" --pbkdf2-iterations 10000")
        .arg(server_bin())
        .arg(&data)
        .arg(&log)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let names = [
        "chatbox.db",
        "chatbox.db-wal",
        "chatbox.db-shm",
        "server.key",
    ];
    while !(names.iter().all(|n| data.join(n).exists()) && log.join("info.log").exists()) {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "server did not create its files"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut seen = Vec::new();
    for d in [&data, &log] {
        for e in std::fs::read_dir(d).unwrap() {
            let e = e.unwrap();
            let mode = e.metadata().unwrap().permissions().mode() & 0o777;
            seen.push((e.file_name().to_string_lossy().into_owned(), mode));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(seen.len() >= 8, "{seen:?}");
    for (name, mode) in &seen {
        assert_eq!(*mode, 0o600, "{name} is {mode:o}: {seen:?}");
    }
}

/// The server's executor threads (named `chatbox-exec-N`). A thread names itself once it runs,
/// so right after start some may not be named yet: the count is read again until it reaches
/// `expected` (or 5 s have passed), then once more 200 ms later, so that threads still naming
/// themselves beyond `expected` are counted too.
fn executor_threads(pid: u32, expected: usize) -> usize {
    let count = || {
        std::fs::read_dir(format!("/proc/{pid}/task"))
            .unwrap()
            .filter_map(Result::ok)
            .filter(|t| {
                std::fs::read_to_string(t.path().join("comm"))
                    .is_ok_and(|c| c.trim_end().starts_with("chatbox-exec-"))
            })
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while count() < expected && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    count()
}

/// `--threads N` (and `threads` in the file) sets how many executor threads serve the
/// connections; 0 or nothing is one per core. The server works on one thread alone.
#[test]
fn threads_sets_the_executor_threads() {
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    let dir = tempfile::tempdir().unwrap();
    let (data, log) = (dir.path().join("data"), dir.path().join("log"));
    let s = BinServer::start(&data, &log, &[]);
    assert_eq!(executor_threads(s.pid(), cores), cores);
    drop(s);
    // More threads than cores, so an ignored setting cannot pass by chance.
    let s = BinServer::start(&data, &log, &["--threads", &(cores + 1).to_string()]);
    assert_eq!(executor_threads(s.pid(), cores + 1), cores + 1);
    drop(s);
    let conf = dir.path().join("chatbox.toml");
    std::fs::write(&conf, "threads = 1\n").unwrap();
    let s = BinServer::start(&data, &log, &["--config", conf.to_str().unwrap()]);
    assert_eq!(executor_threads(s.pid(), 1), 1);
    let alice = register(s.addr, "alice");
    let bob = register(s.addr, "bob");
    let mut ca = login(s.addr, &alice, 0);
    let mut cb = login(s.addr, &bob, 0);
    ca.send(&ClientMsg::Say {
        room: "#lobby",
        text: "one thread",
    });
    let got = cb.recv_until("alice's message", |m| matches!(m, ServerMsg::Message(_)));
    match got.msg() {
        ServerMsg::Message(m) => assert_eq!((m.from, m.text), ("alice", "one thread")),
        other => panic!("{other:?}"),
    }
    let o = run(
        &["serve", "--threads", "2000", "--data-dir", "d"],
        dir.path(),
    );
    assert!(!o.status.success());
    assert!(text(&o).1.contains("--threads"), "{:?}", text(&o));
}
