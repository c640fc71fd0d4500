//! Three real `chatbox-server` processes sharing one PostgreSQL database and one Redis bus on
//! 127.0.0.1: users on different nodes chat; presence, private messages, TOTP reuse and the
//! login throttle work across nodes; one node is killed (SIGKILL) mid-conversation, the others
//! reap its `ONLINE` rows when its lease expires, its user logs in again on another node, and
//! everyone ends up with the full history of every acknowledged message. A second test stalls
//! a node (SIGSTOP) past its lease: it is reaped, then on resuming writes its rows again and
//! re-announces its users; and its clean stop (SIGTERM) releases its rows and lease at once.
//!
//! Needs `CHATBOX_TEST_POSTGRES` (a superuser URL; the test creates and drops its own database)
//! and `CHATBOX_TEST_REDIS`; `ci/cluster.sh` starts both from Debian's packages. Without them
//! the test says it was skipped and passes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/binserver.rs"]
mod binserver;
use chatbox_server::test_util as common;

use core::net::SocketAddr;
use core::sync::atomic::{AtomicU32, Ordering};
use core::time::Duration;
use std::collections::BTreeSet;
use std::process::Command;
use std::time::Instant;

use binserver::BinServer;
use chatbox_core::proto::{ClientMsg, ErrorCode, PresenceKind, ServerMsg};
use common::{Client, avoid_step_edge, code_at_offset, login, login_with, register};

const LEASE_SECS: &str = "3";

struct Cluster {
    db_admin: String,
    db_name: String,
    db_url: String,
    bus: String,
    dir: tempfile::TempDir,
}

impl Cluster {
    fn new() -> Option<Cluster> {
        let (Ok(pg), Ok(redis)) = (
            std::env::var("CHATBOX_TEST_POSTGRES"),
            std::env::var("CHATBOX_TEST_REDIS"),
        ) else {
            eprintln!("skipped: CHATBOX_TEST_POSTGRES / CHATBOX_TEST_REDIS not set");
            return None;
        };
        let suffix: String = common::random32()[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let db_name = format!("cb_cluster_{suffix}");
        psql(&pg, &format!("CREATE DATABASE {db_name}"));
        let base = pg.rsplit_once('/').map_or(pg.as_str(), |(b, _)| b);
        let db_url = format!("{base}/{db_name}");
        // A Redis database of its own for the shared counters (pub/sub is global, but other
        // clusters' events do not authenticate under this cluster's key).
        // Distinct for the tests of this process running at once (each FLUSHDBs its own).
        static BASE: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let base = *BASE.get_or_init(|| u32::from(common::random32()[0]));
        let db_index = 1 + (base + NEXT.fetch_add(1, Ordering::SeqCst)) % 15;
        let bus = format!("{}/{db_index}", redis.trim_end_matches('/'));
        // Earlier runs' login counters (127.0.0.1) must not count against this one.
        let mut r = redis::Client::open(bus.as_str())
            .and_then(|c| c.get_connection())
            .expect("connecting to Redis");
        redis::cmd("FLUSHDB").exec(&mut r).expect("FLUSHDB");
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        Some(Cluster {
            db_admin: pg,
            db_name,
            db_url,
            bus,
            dir,
        })
    }

    /// Starts node `name`; every node shares `data/server.key`.
    fn node(&self, name: &str, extra: &[&str]) -> BinServer {
        let log = self.dir.path().join(format!("log-{name}"));
        let mut args = vec![
            "--database",
            &self.db_url,
            "--bus",
            &self.bus,
            "--node-id",
            name,
            "--lease-secs",
            LEASE_SECS,
            "--max-per-ip",
            "1000",
            "--ip-failures-per-min",
            "5",
            "--rate",
            "1000",
            "--burst",
            "1000",
        ];
        args.extend_from_slice(extra);
        BinServer::start(&self.dir.path().join("data"), &log, &args)
    }

    fn log(&self, node: &str, file: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("log-{node}")).join(file))
            .unwrap_or_default()
    }

    fn sql(&self, q: &str) -> String {
        psql(&self.db_url, q)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([&self.db_admin, "-qAtc"])
            .arg(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.db_name
            ))
            .output();
    }
}

fn psql(url: &str, q: &str) -> String {
    binserver::run_ok(
        Command::new("psql").args([url, "-qAtc", q]),
        &format!("psql {q}"),
    )
    .trim()
    .to_owned()
}

fn wait_until(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + within;
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Says `text` in `room` and waits for the server's copy (the acknowledgement); its id. Other
/// messages of the room that arrive meanwhile go to `inbox` (id, sender), in arrival order.
fn say(c: &mut Client, inbox: &mut Vec<(u64, String)>, room: &str, text: &str) -> u64 {
    c.send(&ClientMsg::Say { room, text });
    loop {
        let r = c.recv_until(
            "ack",
            |m| matches!(m, ServerMsg::Message(x) if x.target == room),
        );
        let ServerMsg::Message(m) = r.msg() else {
            unreachable!()
        };
        if m.text == text {
            return m.id;
        }
        inbox.push((m.id, m.from.to_owned()));
    }
}

/// Reads until `inbox` holds `n` messages of `room`.
fn receive(c: &mut Client, inbox: &mut Vec<(u64, String)>, room: &str, n: usize) {
    while inbox.len() < n {
        let r = c.recv_until(
            "a room message",
            |m| matches!(m, ServerMsg::Message(x) if x.target == room),
        );
        if let ServerMsg::Message(m) = r.msg() {
            inbox.push((m.id, m.from.to_owned()));
        }
    }
}

fn names(c: &mut Client, room: &str) -> BTreeSet<String> {
    c.send(&ClientMsg::Names { room });
    let mut all = BTreeSet::new();
    loop {
        let r = c.recv_until("names", |m| matches!(m, ServerMsg::Names { .. }));
        if let ServerMsg::Names { users, done, .. } = r.msg() {
            all.extend(users.iter().map(str::to_owned));
            if done {
                return all;
            }
        }
    }
}

/// Every message id of `room` the user can see in history (paging back from the newest).
fn history_ids(c: &mut Client, room: &str) -> BTreeSet<u64> {
    let mut ids = BTreeSet::new();
    let mut before = 0;
    loop {
        c.send(&ClientMsg::History {
            target: room,
            before_id: before,
            limit: 200,
        });
        let mut page = Vec::new();
        loop {
            let r = c.recv_until("history", |m| matches!(m, ServerMsg::History { .. }));
            if let ServerMsg::History { messages, done, .. } = r.msg() {
                page.extend(messages.iter().map(|m| m.id));
                if done {
                    break;
                }
            }
        }
        if page.is_empty() {
            return ids;
        }
        before = page.iter().copied().min().unwrap_or(0);
        ids.extend(page);
    }
}

fn login_fails(addr: SocketAddr, user: &str, password: &str, otp: &str) {
    let mut c = Client::connect(addr);
    c.send(&ClientMsg::Login {
        user,
        password,
        otp,
    });
    c.expect_error(ErrorCode::InvalidCredentials);
}

#[test]
fn three_nodes_one_chat_survives_a_node_kill() {
    let Some(cl) = Cluster::new() else { return };
    let mut n1 = cl.node("n1", &[]);
    let mut n2 = cl.node("n2", &[]);
    let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let mut n3 = cl.node("n3", &["--metrics", &metrics_port.to_string()]);
    assert_eq!(n1.fingerprint, n2.fingerprint, "nodes share server.key");
    assert_eq!(n2.fingerprint, n3.fingerprint);

    // Accounts registered on different nodes, all in one database.
    let alice = register(n1.addr, "alice");
    let bob = register(n2.addr, "bob");
    let carol = register(n3.addr, "carol");
    avoid_step_edge();
    let mut a = login(n1.addr, &alice, 0);
    let mut b = login(n2.addr, &bob, 0);
    let mut c = login(n3.addr, &carol, 0);

    // Presence across nodes.
    wait_until(
        "everyone in every node's #lobby",
        Duration::from_secs(10),
        || {
            names(&mut a, "#lobby")
                == BTreeSet::from(["alice".into(), "bob".into(), "carol".into()])
        },
    );
    assert_eq!(names(&mut c, "#lobby"), names(&mut a, "#lobby"));
    let online =
        cl.sql("SELECT node || '/' || client_id FROM online WHERE statut = 'online' ORDER BY 1");
    assert_eq!(online, "n1/alice\nn2/bob\nn3/carol", "ONLINE per node");

    // TOTP step reuse refused across nodes: alice's step 0 was used on n1.
    login_fails(
        n2.addr,
        "alice",
        common::PASSWORD,
        &code_at_offset(&alice.secret, 0),
    );

    // Interleaved messages from two nodes reach all three users once, in one order.
    let (mut in_a, mut in_b, mut in_c) = (Vec::new(), Vec::new(), Vec::new());
    let mut acked = BTreeSet::new();
    for i in 0..20 {
        acked.insert(say(&mut a, &mut in_a, "#lobby", &format!("a{i}")));
        acked.insert(say(&mut b, &mut in_b, "#lobby", &format!("b{i}")));
    }
    receive(&mut c, &mut in_c, "#lobby", 40);
    receive(&mut a, &mut in_a, "#lobby", 20); // bob's 20 (alice's own come back as acks)
    receive(&mut b, &mut in_b, "#lobby", 20);
    let ids_c: Vec<u64> = in_c.iter().map(|x| x.0).collect();
    assert_eq!(ids_c.len(), 40);
    // n3 heard the 40 messages (and more: presence, snapshots) on the bus and published
    // carol's login at least.
    let get = |path: &str| {
        use std::io::{Read as _, Write as _};
        let mut h = std::net::TcpStream::connect(("127.0.0.1", metrics_port)).unwrap();
        write!(
            h,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut body = String::new();
        h.read_to_string(&mut body).unwrap();
        body
    };
    // PostgreSQL answers: healthy.
    let health = get("/healthz");
    assert!(
        health.starts_with("HTTP/1.1 200") && health.ends_with("ok\n"),
        "{health}"
    );
    let scrape = get("/metrics");
    let bus = |dir: &str| -> f64 {
        let series = format!("chatbox_bus_events_total{{direction=\"{dir}\"}} ");
        scrape
            .lines()
            .find_map(|l| l.strip_prefix(series.as_str())?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {series} in {scrape}"))
    };
    assert!(bus("in") >= 40.0 && bus("out") >= 1.0, "{scrape}");
    assert_eq!(
        ids_c.iter().copied().collect::<BTreeSet<_>>(),
        acked,
        "carol got each message once"
    );
    // Alice and Bob saw the other's messages in the order Carol saw them.
    for (me, inbox) in [("alice", &in_a), ("bob", &in_b)] {
        let theirs: Vec<u64> = in_c.iter().filter(|x| x.1 != me).map(|x| x.0).collect();
        let mine: Vec<u64> = inbox.iter().map(|x| x.0).collect();
        assert_eq!(mine, theirs, "{me}'s order");
    }

    // A private message from n1 to a user on n3.
    a.send(&ClientMsg::Private {
        to: "carol",
        text: "psst",
    });
    c.recv_until(
        "private message",
        |m| matches!(m, ServerMsg::Message(x) if x.text == "psst" && x.from == "alice"),
    );

    // Kill n2 mid-conversation: alice keeps talking; bob's messages until then were acked.
    let last_bob = say(&mut b, &mut in_b, "#lobby", "bob before the crash");
    acked.insert(last_bob);
    n2.kill9();
    let t_kill = Instant::now();
    for i in 0..10 {
        acked.insert(say(
            &mut a,
            &mut in_a,
            "#lobby",
            &format!("after crash {i}"),
        ));
    }
    // The survivors reap n2's rows once its lease expires, and tell the room bob quit.
    wait_until("n2's ONLINE rows reaped", Duration::from_secs(20), || {
        cl.sql("SELECT count(*) FROM online WHERE node = 'n2'") == "0"
    });
    let reaped_after = t_kill.elapsed();
    c.recv_until("bob's quit", |m| {
        matches!(
            m,
            ServerMsg::Presence {
                user: "bob",
                kind: PresenceKind::Quit,
                ..
            }
        )
    });
    assert_eq!(
        cl.sql("SELECT online FROM registered WHERE \"User\" = 'bob'"),
        "ko",
        "bob offline once n2 was reaped"
    );
    assert_eq!(
        names(&mut a, "#lobby"),
        BTreeSet::from(["alice".into(), "carol".into()])
    );

    // Bob comes back on n3 (the next code: step 0 was used) and sees everything.
    avoid_step_edge();
    let mut b = login_with(n3.addr, "bob", &code_at_offset(&bob.secret, 1));
    for (who, client) in [("alice", &mut a), ("bob", &mut b), ("carol", &mut c)] {
        let ids = history_ids(client, "#lobby");
        let missing: Vec<u64> = acked.difference(&ids).copied().collect();
        assert!(
            missing.is_empty(),
            "{who} misses acknowledged messages {missing:?}"
        );
    }
    let stored: usize = cl
        .sql("SELECT count(*) FROM messages WHERE target = '#lobby'")
        .parse()
        .unwrap();
    assert_eq!(
        stored,
        acked.len(),
        "exactly the acknowledged messages are stored"
    );
    let back = say(&mut b, &mut Vec::new(), "#lobby", "bob is back");
    acked.insert(back);
    a.recv_until(
        "bob's message after his return",
        |m| matches!(m, ServerMsg::Message(x) if x.id == back),
    );

    // The login throttle is shared: alice's reused code plus 4 failures spread over the nodes
    // use up 127.0.0.1's 5 attempts everywhere, even for the right password and code.
    let mallory = register(n1.addr, "mallory");
    for (i, n) in [&n1, &n3, &n1, &n3].iter().enumerate() {
        login_fails(n.addr, "mallory", "wrong password!", &format!("00000{i}"));
    }
    login_fails(
        n3.addr,
        "mallory",
        common::PASSWORD,
        &code_at_offset(&mallory.secret, 0),
    );
    // The log is written asynchronously: wait for the line rather than read it at once.
    wait_until("n3 logs the refusal", Duration::from_secs(5), || {
        cl.log("n3", "credentials.log")
            .contains("too many failures from this address")
    });
    assert!(
        cl.log("n3", "credentials.log")
            .contains("too many failures from this address"),
        "n3 refused the 6th attempt: {}",
        cl.log("n3", "credentials.log")
    );

    eprintln!(
        "cluster: {} messages acknowledged; n2 reaped {:.1} s after SIGKILL (lease {LEASE_SECS} s)",
        acked.len(),
        reaped_after.as_secs_f64()
    );
    for node in ["n1", "n3"] {
        for line in cl
            .log(node, "info.log")
            .lines()
            .filter(|l| l.contains("cluster:"))
        {
            eprintln!("{node}: {line}");
        }
    }
    drop((a, b, c));
    n1.terminate();
    n3.terminate();
    let _ = &carol;
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill {sig} {pid}");
}

#[test]
fn a_node_stalled_past_its_lease_comes_back_and_a_clean_stop_leaves_at_once() {
    let Some(cl) = Cluster::new() else { return };
    let mut n1 = cl.node("n1", &[]);
    let mut n2 = cl.node("n2", &[]);
    let dora = register(n1.addr, "dora");
    let eve = register(n2.addr, "eve");
    avoid_step_edge();
    let mut d = login(n1.addr, &dora, 0);
    let mut e = login(n2.addr, &eve, 0);
    let both = BTreeSet::from(["dora".into(), "eve".into()]);
    wait_until("both in #lobby", Duration::from_secs(10), || {
        names(&mut d, "#lobby") == both
    });

    // n2 stalls (SIGSTOP) past its lease: n1 reaps it and eve is gone for everyone.
    signal(n2.pid(), "-STOP");
    wait_until("n2 reaped while stopped", Duration::from_secs(20), || {
        cl.sql("SELECT count(*) FROM online WHERE node = 'n2'") == "0"
    });
    assert_eq!(
        cl.sql("SELECT online FROM registered WHERE \"User\" = 'eve'"),
        "ko"
    );
    wait_until("eve gone from n1's #lobby", Duration::from_secs(10), || {
        names(&mut d, "#lobby") == BTreeSet::from(["dora".into()])
    });

    // n2 resumes: its next renewal finds the lease reaped, it writes its rows again, marks eve
    // online and re-announces her; her session never broke.
    signal(n2.pid(), "-CONT");
    wait_until("n2's rows restored", Duration::from_secs(20), || {
        cl.sql("SELECT node || '/' || client_id || '/' || statut FROM online WHERE node = 'n2'")
            == "n2/eve/online"
    });
    assert_eq!(
        cl.sql("SELECT online FROM registered WHERE \"User\" = 'eve'"),
        "ok"
    );
    wait_until("eve back in n1's #lobby", Duration::from_secs(10), || {
        names(&mut d, "#lobby") == both
    });
    assert!(
        cl.log("n2", "info.log")
            .contains("lease had expired and was reaped; restoring 1 ONLINE rows"),
        "{}",
        cl.log("n2", "info.log")
    );
    let id = say(&mut e, &mut Vec::new(), "#lobby", "still here");
    d.recv_until(
        "eve's message after the stall",
        |m| matches!(m, ServerMsg::Message(x) if x.id == id),
    );

    // A clean stop (SIGTERM) releases n2's rows and lease at once, not a lease later.
    drop(e);
    n2.terminate();
    assert_eq!(
        cl.sql("SELECT count(*) FROM online WHERE node = 'n2'"),
        "0",
        "ONLINE rows released by the stop"
    );
    assert_eq!(cl.sql("SELECT count(*) FROM nodes WHERE node = 'n2'"), "0");
    assert_eq!(
        cl.sql("SELECT online FROM registered WHERE \"User\" = 'eve'"),
        "ko"
    );
    drop(d);
    n1.terminate();
}

/// `chatbox-server user ARGS` on the cluster's database (a separate process, like an
/// administrator's shell); panics unless it exits 0.
fn admin_cli(cl: &Cluster, args: &[&str]) {
    binserver::run_ok(
        Command::new(binserver::server_bin())
            .arg("user")
            .args(args)
            .arg("--database")
            .arg(&cl.db_url)
            .arg("--data-dir")
            .arg(cl.dir.path().join("data")),
        &format!("user {args:?}"),
    );
}

/// Issue 13, item 3 across nodes: the admin CLI changes the shared PostgreSQL database; an
/// operator demoted while logged in on n1 loses operator commands at once, and users locked
/// or deleted while logged in on n2 (and on n1) get a `Bye` and are closed by their own node.
#[test]
fn admin_changes_reach_live_sessions_on_every_node() {
    let Some(cl) = Cluster::new() else { return };
    let poll = ["--admin-poll-ms", "300"];
    let n1 = cl.node("n1", &poll);
    let n2 = cl.node("n2", &poll);
    let olga = register(n1.addr, "olga");
    let paul = register(n2.addr, "paul");
    let quinn = register(n1.addr, "quinn");
    let rita = register(n2.addr, "rita");
    admin_cli(&cl, &["role", "olga", "op"]);
    avoid_step_edge();
    let mut op = login(n1.addr, &olga, 0);
    let mut p = login(n2.addr, &paul, 0);
    let mut q = login(n1.addr, &quinn, 0);
    let mut r = login(n2.addr, &rita, 0);
    wait_until("rita seen from n1", Duration::from_secs(10), || {
        names(&mut op, "#lobby").contains("rita")
    });
    let kick = |op: &mut Client| {
        op.send(&ClientMsg::Kick {
            room: "#lobby",
            user: "rita",
            reason: "test",
        });
        op.recv_until("kick answer", |m| {
            matches!(m, ServerMsg::Error { .. })
                || matches!(
                    m,
                    ServerMsg::Presence {
                        kind: PresenceKind::Kicked,
                        ..
                    }
                )
        })
    };
    let k = kick(&mut op);
    assert!(
        matches!(
            k.msg(),
            ServerMsg::Presence {
                kind: PresenceKind::Kicked,
                ..
            }
        ),
        "op's kick across nodes refused: {k:?}"
    );
    admin_cli(&cl, &["role", "olga", "user"]);
    let k = kick(&mut op);
    assert_eq!(
        k.error_code(),
        Some(ErrorCode::NotPermitted as u16),
        "demoted op still kicks: {k:?}"
    );
    admin_cli(&cl, &["lock", "paul"]);
    let (why, took_p) = p.bye_within(Duration::from_secs(5));
    assert!(why.contains("locked"), "{why}");
    admin_cli(&cl, &["delete", "quinn"]);
    let (why, took_q) = q.bye_within(Duration::from_secs(5));
    assert!(why.contains("deleted"), "{why}");
    println!("cluster: lock → Bye on n2 in {took_p:?}, delete → Bye on n1 in {took_q:?}");
    // The others keep their sessions.
    r.ping(1);
    op.ping(2);
    assert!(
        cl.log("n2", "info.log")
            .contains("admin: lock paul: 1 session(s) on this node closed")
    );
    assert!(
        cl.log("n1", "info.log")
            .contains("admin: delete quinn: 1 session(s) on this node closed")
    );
    // Each node applies a change to its own sessions only, and every node saw it.
    assert!(
        cl.log("n1", "info.log")
            .contains("admin: lock paul: 0 session(s) on this node closed")
    );
    drop((op, r));
    drop((n1, n2));
}

/// `chatbox-server invite ARGS…` on the cluster's database; the last stdout line.
fn invite_cli(cl: &Cluster, args: &[&str]) -> String {
    let stdout = binserver::run_ok(
        Command::new(binserver::server_bin())
            .arg("invite")
            .args(args)
            .arg("--data-dir")
            .arg(cl.dir.path().join("data"))
            .arg("--database")
            .arg(&cl.db_url),
        &format!("invite {args:?}"),
    );
    stdout.lines().last().unwrap_or_default().to_owned()
}

fn invite_token(link: &str) -> String {
    let l = chatbox_core::link::Link::parse(link).unwrap();
    l.invite().unwrap().to_text().as_str().to_owned()
}

fn start_with_invite(addr: SocketAddr, user: &str, token: &str) -> (Client, Option<String>) {
    let (c, r) = common::start_invite(addr, user, token);
    if let Err(code) = r {
        assert_eq!(
            code,
            ErrorCode::InviteInvalid as u16,
            "{user}: error {code}"
        );
    }
    (c, r.ok())
}

/// Issue 14 across PostgreSQL nodes: two registrations on two nodes racing for a 1-use invite
/// (exactly one wins, every round); an invite used on one node is refused on another; a use held
/// by a registration on a node that dies is given back when the node is reaped; a password
/// change on one node closes the user's session on another, and `/sessions` sees both nodes.
#[test]
fn invites_and_self_service_across_nodes() {
    let Some(cl) = Cluster::new() else { return };
    let inv = ["--registration", "invite"];
    let mut n1 = cl.node("n1", &inv);
    let n2 = cl.node("n2", &inv);
    for round in 0..6 {
        let link = invite_cli(&cl, &["create", "--server", &n1.addr.to_string()]);
        let token = invite_token(&link);
        let racers = [n1.addr, n2.addr]
            .into_iter()
            .enumerate()
            .map(|(i, addr)| (addr, format!("race{round}n{i}")))
            .collect();
        let results = common::race_invite(&token, racers);
        let wins = results.iter().filter(|(w, _)| *w).count();
        assert_eq!(wins, 1, "round {round}: {wins} winners across nodes");
    }

    // Registered on n1 with an invite: the same invite is refused on n2 (used up there too).
    let link = invite_cli(
        &cl,
        &["create", "--role", "op", "--server", &n1.addr.to_string()],
    );
    let token = invite_token(&link);
    let (mut c, uri) = start_with_invite(n1.addr, "opal", &token);
    let secret = common::secret_of(&uri.unwrap());
    avoid_step_edge();
    c.send(&ClientMsg::ConfirmTotp {
        code: &code_at_offset(&secret, -1),
    });
    assert!(matches!(c.recv().msg(), ServerMsg::Registered { .. }));
    assert_eq!(
        cl.sql("SELECT role FROM registered WHERE \"User\" = 'opal'"),
        "op"
    );
    let (_c, again) = start_with_invite(n2.addr, "reuser", &token);
    assert!(
        again.is_none(),
        "a used invite was accepted on another node"
    );

    // A use held on n1 when n1 dies comes back when n2 reaps it.
    let link = invite_cli(&cl, &["create", "--server", &n1.addr.to_string()]);
    let token = invite_token(&link);
    let id = cl.sql("SELECT max(id) FROM invites");
    let (_held, uri) = start_with_invite(n1.addr, "holder", &token);
    assert!(uri.is_some());
    assert_eq!(
        cl.sql(&format!("SELECT uses_left FROM invites WHERE id = {id}")),
        "0"
    );
    n1.kill9();
    wait_until("use given back after reap", Duration::from_secs(20), || {
        cl.sql(&format!("SELECT uses_left FROM invites WHERE id = {id}")) == "1"
    });
    let (_c, ok) = start_with_invite(n2.addr, "holder2", &token);
    assert!(ok.is_some());

    // Self-service across nodes.
    let n3 = cl.node("n3", &inv);
    avoid_step_edge();
    let mut a = login(n2.addr, &opal_account(secret.clone()), 0);
    let mut b = login(n3.addr, &opal_account(secret.clone()), 1);
    wait_until("n2 sees the n3 session", Duration::from_secs(10), || {
        a.send(&ClientMsg::Sessions);
        let r = a.recv_until("sessions", |m| matches!(m, ServerMsg::SessionList { .. }));
        let ServerMsg::SessionList { sessions, .. } = r.msg() else {
            unreachable!()
        };
        sessions.iter().any(|s| s.node == "n3" && !s.current)
    });
    let r = a.change_password(
        common::PASSWORD,
        &code_at_offset(&secret, 0),
        "another long passphrase",
    );
    assert!(
        matches!(r.msg(), ServerMsg::PasswordChanged { closed: 1 }),
        "{r:?}"
    );
    let r = b.recv_until("bye on n3", |m| matches!(m, ServerMsg::Bye { .. }));
    assert!(matches!(
        r.msg(),
        ServerMsg::Bye { reason } if reason == "credentials changed in another session"
    ));
    b.expect_closed();
    wait_until("n2's credentials.log line", Duration::from_secs(10), || {
        cl.log("n2", "credentials.log")
            .contains("password changed user=opal")
    });
    drop(n2);
    drop(n3);
}

fn opal_account(secret: Vec<u8>) -> common::Account {
    common::Account {
        user: "opal".into(),
        uri: String::new(),
        secret,
        scratch: Vec::new(),
    }
}
