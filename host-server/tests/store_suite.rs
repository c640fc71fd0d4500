//! The storage behaviour suite: the same checks against both backends, SQLite (always, in a
//! temp dir) and PostgreSQL (when `CHATBOX_TEST_POSTGRES` names a server whose user may create
//! databases; each check gets a fresh database, dropped at the end). Several `Store`s opened
//! on one database play several nodes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::future::Future;
use core::ops::Deref;
use core::sync::atomic::{AtomicU32, Ordering};
use core::time::Duration;

use chatbox_server::admin::{self, Action};
use chatbox_server::keys::ServerKeys;
use chatbox_server::logs::Logs;
use chatbox_server::store::{Database, Sanction, Store, StoreError, TopicRow};
use chatbox_server::time::now_ms;
use smol::future::zip;
use sqlx::{AssertSqlSafe, Connection};

const PG_ENV: &str = "CHATBOX_TEST_POSTGRES";
const PHC: &str = "$pbkdf2-sha256$i=10000,l=32$c2FsdA$aGFzaA";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Sqlite,
    Postgres,
}

/// A PostgreSQL database made for one check, dropped with it.
struct PgDb {
    admin: String,
    name: String,
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let dropped = smol::block_on(async {
            let mut c = sqlx::PgConnection::connect(&self.admin).await?;
            sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut c).await?;
            c.close().await
        });
        if let Err(e) = dropped {
            eprintln!("could not drop test database {}: {e}", self.name);
        }
    }
}

/// `url` with its database name replaced by `name`.
fn with_db_name(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (authority, query) = match rest.find(['/', '?']) {
        Some(i) => {
            let tail = &rest[i..];
            (&rest[..i], tail.find('?').map_or("", |q| &tail[q..]))
        }
        None => (rest, ""),
    };
    format!("{scheme}://{authority}/{name}{query}")
}

/// One database for one check, its temp dir (SQLite file, logs, server key) and its log.
struct Fixture {
    kind: Kind,
    db: Database,
    dir: tempfile::TempDir,
    logs: Logs,
    _pg: Option<PgDb>,
}

impl Fixture {
    fn new(kind: Kind) -> Option<Fixture> {
        let dir = tempfile::tempdir().unwrap();
        let (db, pg) = match kind {
            Kind::Sqlite => (Database::default_in(dir.path()), None),
            Kind::Postgres => {
                let admin = std::env::var(PG_ENV).ok().filter(|s| !s.is_empty())?;
                static N: AtomicU32 = AtomicU32::new(0);
                let name = format!(
                    "cb_{}_{}_{}",
                    std::process::id(),
                    now_ms() % 1_000_000_000,
                    N.fetch_add(1, Ordering::SeqCst)
                );
                let sql = format!("CREATE DATABASE {name}");
                smol::block_on(async {
                    let mut c = sqlx::PgConnection::connect(&admin).await?;
                    sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut c).await?;
                    c.close().await
                })
                .unwrap_or_else(|e| panic!("creating database {name}: {e}"));
                let url = with_db_name(&admin, &name);
                (Database::parse(&url).unwrap(), Some(PgDb { admin, name }))
            }
        };
        let logs = Logs::open(&dir.path().join("log"), [7; 32]).unwrap();
        Some(Fixture {
            kind,
            db,
            dir,
            logs,
            _pg: pg,
        })
    }

    /// A node's store, as a server opens it.
    fn node(&self, id: &str) -> Node {
        Node(Store::open(&self.db, id, self.logs.clone()).unwrap().0)
    }

    fn sql_log(&self) -> String {
        self.logs.flush();
        std::fs::read_to_string(self.dir.path().join("log").join("sql.log")).unwrap_or_default()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.logs.close();
    }
}

/// A store closed when dropped.
struct Node(Store);

impl Deref for Node {
    type Target = Store;
    fn deref(&self) -> &Store {
        &self.0
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.0.close();
    }
}

fn run<F, Fut>(kind: Kind, check: F)
where
    F: FnOnce(Fixture) -> Fut,
    Fut: Future<Output = ()>,
{
    match Fixture::new(kind) {
        Some(f) => smol::block_on(check(f)),
        None => println!("skipped: {PG_ENV} not set"),
    }
}

/// Each check as a test on each backend: `sqlite::name` and `postgres::name`.
macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() { super::run(super::Kind::Sqlite, super::$name) } )*
        }
        mod postgres {
            $( #[test] fn $name() { super::run(super::Kind::Postgres, super::$name) } )*
        }
    };
}

suite!(
    registration_then_login,
    name_taken_across_nodes,
    totp_step_used_once,
    totp_step_race_between_nodes,
    scratch_code_used_once,
    failures_count_and_lock,
    messages_and_history,
    offline_messages_capped_per_sender_since_last_seen,
    moderation_topics_motd,
    online_per_node_and_reaping,
    concurrent_reapers_split_the_dead,
    clean_leave,
    offline_only_when_no_node_has_the_user,
    pending_registration_of_a_dead_node,
    restart_resets_this_node,
    migrations_idempotent,
    fresh_database_opened_by_two_nodes_at_once,
    admin_commands,
    messages_queued_together_commit_together,
);

fn hash(i: u8) -> [u8; 32] {
    [i; 32]
}

/// A confirmed account with scratch codes `hash(1..=10)`, confirmed at step 1000.
async fn account(s: &Store, user: &str) {
    assert!(
        s.insert_pending(user, PHC.into(), vec![1, 2, 3], "10.0.0.1:1000", now_ms())
            .await
            .unwrap()
    );
    let codes = (1..=10).map(hash).collect();
    assert!(s.confirm_registration(user, 1000, codes).await.unwrap());
}

async fn registration_then_login(f: Fixture) {
    let a = f.node("a:1");
    let now = now_ms();
    assert!(
        a.insert_pending("alice", PHC.into(), vec![9; 40], "10.0.0.1:5", now)
            .await
            .unwrap()
    );
    let acc = a.account("alice").await.unwrap().unwrap();
    assert_eq!(
        (acc.statut.as_str(), acc.pending_reg, acc.online.as_str()),
        ("ko", true, "ko")
    );
    assert_eq!((acc.password.as_str(), acc.created), (PHC, now));
    assert_eq!(acc.totp_sealed, vec![9; 40]);
    assert_eq!(acc.totp_last_step, None);
    assert!(
        a.confirm_registration("alice", 77, (1..=10).map(hash).collect())
            .await
            .unwrap()
    );
    let acc = a.account("alice").await.unwrap().unwrap();
    assert_eq!((acc.statut.as_str(), acc.pending_reg), ("ok", false));
    assert_eq!(acc.totp_last_step, Some(77));
    assert_eq!(a.scratch_left("alice").await.unwrap(), 10);
    // Confirmed: no longer discardable as pending.
    assert!(!a.delete_pending("alice").await.unwrap());
    // Confirming a registration that is gone stores nothing.
    assert!(
        !a.confirm_registration("ghost", 1, vec![hash(1)])
            .await
            .unwrap()
    );
    assert_eq!(a.scratch_left("ghost").await.unwrap(), 0);
    // Login: online, ONLINE row of this node.
    a.online_insert("Client1", "10.0.0.1:6").await.unwrap();
    assert!(
        a.login_success("alice", Some(78), "10.0.0.1:6")
            .await
            .unwrap()
    );
    let acc = a.account("alice").await.unwrap().unwrap();
    assert_eq!(
        (acc.online.as_str(), acc.ip_port_last.as_str()),
        ("ok", "10.0.0.1:6")
    );
    let rows = a.online_rows().await.unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (
            rows[0].node.as_str(),
            rows[0].client_id.as_str(),
            rows[0].statut.as_str()
        ),
        ("a:1", "alice", "online")
    );
    a.online_remove("10.0.0.1:6").await.unwrap();
    assert!(a.online_rows().await.unwrap().is_empty());
    // A registration abandoned: gone with its scratch codes.
    assert!(
        a.insert_pending("bob", PHC.into(), vec![1], "10.0.0.2:1", now)
            .await
            .unwrap()
    );
    assert!(a.delete_pending("bob").await.unwrap());
    assert!(a.account("bob").await.unwrap().is_none());
    let log = f.sql_log();
    assert!(log.contains("INSERT REGISTERED user=alice"), "{log}");
    assert!(!log.contains("pbkdf2"), "no hash in sql.log: {log}");
}

async fn name_taken_across_nodes(f: Fixture) {
    let (a, b) = (f.node("a:1"), f.node("b:1"));
    account(&a, "carol").await;
    assert!(
        !b.insert_pending("carol", PHC.into(), vec![], "10.0.0.3:1", now_ms())
            .await
            .unwrap()
    );
    // Two nodes registering the same new name at once: one gets it.
    let (x, y) = zip(
        a.insert_pending("dave", PHC.into(), vec![1], "10.0.0.4:1", now_ms()),
        b.insert_pending("dave", PHC.into(), vec![2], "10.0.0.4:2", now_ms()),
    )
    .await;
    assert!(x.unwrap() ^ y.unwrap(), "exactly one node registers dave");
    assert_eq!(a.accounts().await.unwrap().len(), 2);
}

async fn totp_step_used_once(f: Fixture) {
    let a = f.node("a:1");
    account(&a, "erin").await;
    // The confirming step (1000) counts as used.
    assert!(
        !a.login_success("erin", Some(1000), "1.1.1.1:1")
            .await
            .unwrap()
    );
    assert!(
        a.login_success("erin", Some(1001), "1.1.1.1:1")
            .await
            .unwrap()
    );
    assert!(
        !a.login_success("erin", Some(1001), "1.1.1.1:2")
            .await
            .unwrap()
    );
    assert!(
        !a.login_success("erin", Some(999), "1.1.1.1:2")
            .await
            .unwrap()
    );
    // A scratch-code login has no step and leaves the last one alone.
    assert!(a.login_success("erin", None, "1.1.1.1:3").await.unwrap());
    let acc = a.account("erin").await.unwrap().unwrap();
    assert_eq!(acc.totp_last_step, Some(1001));
    assert!(
        a.login_success("erin", Some(1002), "1.1.1.1:4")
            .await
            .unwrap()
    );
    // Unknown user: nothing.
    assert!(
        !a.login_success("nobody", Some(5), "1.1.1.1:5")
            .await
            .unwrap()
    );
}

async fn totp_step_race_between_nodes(f: Fixture) {
    let (a, b) = (f.node("a:1"), f.node("b:1"));
    account(&a, "frank").await;
    for step in 2000..2040 {
        let (x, y) = zip(
            a.login_success("frank", Some(step), "10.1.0.1:1"),
            b.login_success("frank", Some(step), "10.2.0.1:1"),
        )
        .await;
        let (x, y) = (x.unwrap(), y.unwrap());
        assert!(x ^ y, "step {step}: node a {x}, node b {y}");
    }
    let acc = b.account("frank").await.unwrap().unwrap();
    assert_eq!(acc.totp_last_step, Some(2039));
}

async fn scratch_code_used_once(f: Fixture) {
    let (a, b) = (f.node("a:1"), f.node("b:1"));
    account(&a, "gina").await;
    assert!(a.use_scratch("gina", hash(1)).await.unwrap());
    assert!(!a.use_scratch("gina", hash(1)).await.unwrap());
    assert!(!b.use_scratch("gina", hash(1)).await.unwrap());
    assert!(!a.use_scratch("gina", hash(99)).await.unwrap());
    assert!(!a.use_scratch("nobody", hash(2)).await.unwrap());
    assert_eq!(a.scratch_left("gina").await.unwrap(), 9);
    for i in 2..=10 {
        let (x, y) = zip(
            a.use_scratch("gina", hash(i)),
            b.use_scratch("gina", hash(i)),
        )
        .await;
        let (x, y) = (x.unwrap(), y.unwrap());
        assert!(x ^ y, "code {i}: node a {x}, node b {y}");
    }
    assert_eq!(b.scratch_left("gina").await.unwrap(), 0);
}

async fn failures_count_and_lock(f: Fixture) {
    let (a, b) = (f.node("a:1"), f.node("b:1"));
    account(&a, "hank").await;
    let until = now_ms() + 60_000;
    assert_eq!(a.login_failure("hank", 3, until).await.unwrap(), 1);
    assert_eq!(b.login_failure("hank", 3, until).await.unwrap(), 2);
    assert_eq!(a.account("hank").await.unwrap().unwrap().locked_until, 0);
    assert_eq!(a.login_failure("hank", 3, until).await.unwrap(), 3);
    assert_eq!(
        b.account("hank").await.unwrap().unwrap().locked_until,
        until
    );
    // Unknown user: 0, nothing stored.
    assert_eq!(a.login_failure("nobody", 3, until).await.unwrap(), 0);
    // Success resets the failures. A lock still in force stays: one written while this login
    // was checking its password (an administrator's, or another node's wrong codes) must
    // survive the login's own update; an expired lock is cleared.
    assert!(a.login_success("hank", None, "1.2.3.4:5").await.unwrap());
    let acc = a.account("hank").await.unwrap().unwrap();
    assert_eq!((acc.failures, acc.locked_until), (0, until));
    let expired = now_ms() - 1_000;
    assert_eq!(a.login_failure("hank", 1, expired).await.unwrap(), 1);
    assert_eq!(
        b.account("hank").await.unwrap().unwrap().locked_until,
        expired
    );
    assert!(b.login_success("hank", None, "1.2.3.4:5").await.unwrap());
    let acc = a.account("hank").await.unwrap().unwrap();
    assert_eq!((acc.failures, acc.locked_until), (0, 0));
    // Failures from two nodes at once all count.
    for _ in 0..15 {
        let (x, y) = zip(
            a.login_failure("hank", 100, until),
            b.login_failure("hank", 100, until),
        )
        .await;
        assert_ne!(x.unwrap(), y.unwrap());
    }
    assert_eq!(a.account("hank").await.unwrap().unwrap().failures, 30);
    // Admin lock and unlock.
    assert!(a.set_lock("hank", until + 1).await.unwrap());
    assert_eq!(
        b.account("hank").await.unwrap().unwrap().locked_until,
        until + 1
    );
    assert!(a.set_lock("hank", 0).await.unwrap());
    let acc = b.account("hank").await.unwrap().unwrap();
    assert_eq!((acc.failures, acc.locked_until), (0, 0));
    assert!(!a.set_lock("nobody", 0).await.unwrap());
}

async fn messages_and_history(f: Fixture) {
    let (a, b) = (f.node("a:1"), f.node("b:1"));
    let mut ids = Vec::new();
    for i in 0..30u64 {
        let node = if i % 2 == 0 { &a } else { &b };
        let text = format!("room {i}");
        ids.push(
            node.insert_message(1_000 + i, "#lobby", "ivy", 0, &text)
                .await
                .unwrap(),
        );
        node.insert_message(1_000 + i, "#other", "ivy", 0, "elsewhere")
            .await
            .unwrap();
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    // Stored once acknowledged: the other node reads it at once.
    let last = b.history("ivy", "#lobby", 0, 1).await.unwrap();
    assert_eq!((last[0].id, last[0].text.as_str()), (ids[29], "room 29"));
    // Newest page, oldest first.
    let page = a.history("ivy", "#lobby", 0, 10).await.unwrap();
    let texts: Vec<&str> = page.iter().map(|m| m.text.as_str()).collect();
    let want: Vec<String> = (20..30).map(|i| format!("room {i}")).collect();
    assert_eq!(texts, want);
    assert!(
        page.iter()
            .all(|m| m.target == "#lobby" && m.sender == "ivy" && m.kind == 0)
    );
    assert_eq!(page[0].time_ms, 1_020);
    // Older pages below the first id seen.
    let older = a.history("ivy", "#lobby", page[0].id, 10).await.unwrap();
    assert_eq!(older.first().map(|m| m.id), Some(ids[10]));
    assert_eq!(older.last().map(|m| m.id), Some(ids[19]));
    let oldest = a.history("ivy", "#lobby", ids[10], 50).await.unwrap();
    assert_eq!(oldest.len(), 10);
    assert!(
        a.history("ivy", "#lobby", ids[0], 50)
            .await
            .unwrap()
            .is_empty()
    );
    // Private: both directions of one pair, nobody else's.
    let p1 = a
        .insert_message(5, "judy", "kim", 2, "hi judy")
        .await
        .unwrap();
    let p2 = b
        .insert_message(6, "kim", "judy", 2, "hi kim")
        .await
        .unwrap();
    a.insert_message(7, "judy", "leo", 2, "not for kim")
        .await
        .unwrap();
    let conv = b.history("kim", "judy", 0, 50).await.unwrap();
    let got: Vec<(u64, &str)> = conv.iter().map(|m| (m.id, m.text.as_str())).collect();
    assert_eq!(got, vec![(p1, "hi judy"), (p2, "hi kim")]);
    let conv = a.history("judy", "kim", 0, 50).await.unwrap();
    assert_eq!(conv.len(), 2);
    // Concurrent inserts from two nodes: distinct ids, all stored.
    let mut all = Vec::new();
    for i in 0..20 {
        let (x, y) = zip(
            a.insert_message(9, "#race", "a", 0, &format!("a{i}")),
            b.insert_message(9, "#race", "b", 0, &format!("b{i}")),
        )
        .await;
        all.push(x.unwrap());
        all.push(y.unwrap());
    }
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 40);
    assert_eq!(a.history("x", "#race", 0, 100).await.unwrap().len(), 40);
}

/// Stores `texts` from `sender` to `#group`, all queued at once (one task each, spawned in order
/// on one thread, so they reach the writer in this order); each caller's result.
async fn insert_at_once(s: &Store, sender: &str, texts: &[String]) -> Vec<Result<u64, StoreError>> {
    let ex = smol::LocalExecutor::new();
    let tasks: Vec<_> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| ex.spawn(s.insert_message(2_000 + i as u64, "#group", sender, 0, t)))
        .collect();
    ex.run(async {
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await);
        }
        out
    })
    .await
}

/// Many messages queued at once (what a busy node does): the writer stores them in a few
/// transactions (PostgreSQL: rows sharing a transaction id), every caller gets its own id in
/// queue order once stored, and a row the database refuses fails alone.
async fn messages_queued_together_commit_together(f: Fixture) {
    let a = f.node("a:1");
    let texts: Vec<String> = (0..300).map(|i| format!("g{i}")).collect();
    let ids: Vec<u64> = insert_at_once(&a, "ivy", &texts)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let stored = a.history("ivy", "#group", 0, 500).await.unwrap();
    let got: Vec<(u64, &str)> = stored.iter().map(|m| (m.id, m.text.as_str())).collect();
    let want: Vec<(u64, &str)> = ids
        .iter()
        .copied()
        .zip(texts.iter().map(String::as_str))
        .collect();
    assert_eq!(got, want);
    assert!(
        stored
            .iter()
            .enumerate()
            .all(|(i, m)| m.time_ms == 2_000 + i as u64 && m.sender == "ivy")
    );
    if let Database::Postgres(url) = &f.db {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        let txs: i64 = sqlx::query_scalar(
            "SELECT COUNT(DISTINCT xmin::text) FROM MESSAGES WHERE target = '#group'",
        )
        .fetch_one(&mut c)
        .await
        .unwrap();
        assert!(
            (1..=30).contains(&txs),
            "300 messages in {txs} transactions"
        );
        c.close().await.unwrap();
    }
    // PostgreSQL refuses a NUL in text (SQLite stores it): only that caller hears it.
    let mut texts: Vec<String> = (0..40).map(|i| format!("h{i}")).collect();
    texts[17] = "bad\0text".to_owned();
    let results = insert_at_once(&a, "kim", &texts).await;
    let bad = &results[17];
    match f.kind {
        Kind::Postgres => assert!(matches!(bad, Err(StoreError::Pg(_))), "{bad:?}"),
        Kind::Sqlite => assert!(bad.is_ok(), "{bad:?}"),
    }
    let good: Vec<u64> = results
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 17)
        .map(|(_, r)| *r.as_ref().unwrap())
        .collect();
    assert!(good.windows(2).all(|w| w[0] < w[1]), "{good:?}");
    let stored = a.history("kim", "#group", 0, 500).await.unwrap();
    let kims: Vec<&str> = stored
        .iter()
        .filter(|m| m.sender == "kim")
        .map(|m| m.text.as_str())
        .collect();
    let want: Vec<&str> = texts
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 17 || f.kind == Kind::Sqlite)
        .map(|(_, t)| t.as_str())
        .collect();
    assert_eq!(kims, want);
    assert!(
        f.sql_log()
            .contains("INSERT MESSAGES target=#group sender=kim kind=0")
    );
}

async fn offline_messages_capped_per_sender_since_last_seen(f: Fixture) {
    let (a, b) = (f.node("a:1"), f.node("b:1"));
    for u in ["uma", "vic", "wes"] {
        account(&a, u).await;
    }
    // uma logged in and went offline: from then on, at most 3 from each sender are kept.
    assert!(a.login_success("uma", None, "10.0.0.1:1").await.unwrap());
    a.set_offline("uma").await.unwrap();
    a.online_remove("10.0.0.1:1").await.unwrap();
    let now = now_ms();
    for i in 0..3u64 {
        let node = if i % 2 == 0 { &a } else { &b };
        let id = node
            .insert_offline(now + 1 + i, "uma", "vic", 2, &format!("kept {i}"), 3)
            .await
            .unwrap();
        assert!(id.is_some(), "message {i} refused");
    }
    assert_eq!(
        b.insert_offline(now + 5, "uma", "vic", 2, "one too many", 3)
            .await
            .unwrap(),
        None
    );
    // Another sender has an allowance of its own.
    assert!(
        a.insert_offline(now + 6, "uma", "wes", 2, "from wes", 3)
            .await
            .unwrap()
            .is_some()
    );
    let h = a.history("uma", "vic", 0, 50).await.unwrap();
    let texts: Vec<&str> = h.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(
        texts,
        ["kept 0", "kept 1", "kept 2"],
        "nothing refused was stored"
    );
    // Seen again (a login, then offline): a fresh allowance; what was kept stays.
    smol::Timer::after(Duration::from_millis(5)).await;
    assert!(b.login_success("uma", None, "10.0.0.2:1").await.unwrap());
    b.set_offline("uma").await.unwrap();
    let later = now_ms() + 1;
    assert!(
        a.insert_offline(later, "uma", "vic", 2, "after", 3)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(a.history("uma", "vic", 0, 50).await.unwrap().len(), 4);
}

async fn moderation_topics_motd(f: Fixture) {
    let a = f.node("a:1");
    let now = now_ms();
    assert!(
        a.active_sanction(Sanction::Ban, "mia", now)
            .await
            .unwrap()
            .is_none()
    );
    a.add_sanction(Sanction::Ban, "mia", 0, "spam", "op", now)
        .await
        .unwrap();
    assert_eq!(
        a.active_sanction(Sanction::Ban, "mia", now).await.unwrap(),
        Some((0, "spam".to_owned()))
    );
    // A ban is not a mute.
    assert!(
        a.active_sanction(Sanction::Mute, "mia", now)
            .await
            .unwrap()
            .is_none()
    );
    // Replaced, then expired.
    a.add_sanction(Sanction::Ban, "mia", now + 1000, "again", "op", now)
        .await
        .unwrap();
    assert_eq!(
        a.active_sanction(Sanction::Ban, "mia", now).await.unwrap(),
        Some((now + 1000, "again".to_owned()))
    );
    assert!(
        a.active_sanction(Sanction::Ban, "mia", now + 1000)
            .await
            .unwrap()
            .is_none()
    );
    assert!(a.remove_sanction(Sanction::Ban, "mia").await.unwrap());
    assert!(!a.remove_sanction(Sanction::Ban, "mia").await.unwrap());
    a.add_sanction(Sanction::Mute, "ned", now + 60_000, "loud", "op", now)
        .await
        .unwrap();
    a.add_sanction(Sanction::Mute, "old", now - 1, "was loud", "op", now - 10)
        .await
        .unwrap();
    a.add_sanction(Sanction::Mute, "pat", 0, "forever", "op", now)
        .await
        .unwrap();
    let mut mutes = a.active_mutes(now).await.unwrap();
    mutes.sort();
    assert_eq!(
        mutes,
        vec![("ned".to_owned(), now + 60_000), ("pat".to_owned(), 0)]
    );
    for (room, topic) in [("#a", "first"), ("#b", "bee"), ("#a", "second")] {
        a.set_topic(TopicRow {
            room: room.into(),
            topic: topic.into(),
            set_by: "op".into(),
            time_ms: now,
        })
        .await
        .unwrap();
    }
    a.set_motd("hello").await.unwrap();
    a.set_motd("hello again").await.unwrap();
    // What a node loads at start.
    let (b, startup) = Store::open(&f.db, "b:1", f.logs.clone()).unwrap();
    let b = Node(b);
    let topics: Vec<(String, String)> = startup
        .topics
        .iter()
        .map(|t| (t.room.clone(), t.topic.clone()))
        .collect();
    assert_eq!(
        topics,
        vec![("#a".into(), "second".into()), ("#b".into(), "bee".into())]
    );
    assert_eq!(startup.mutes.len(), 2);
    assert_eq!(startup.motd.as_deref(), Some("hello again"));
    assert_eq!(b.motd().await.unwrap().as_deref(), Some("hello again"));
}

async fn online_per_node_and_reaping(f: Fixture) {
    let (a, b, c) = (f.node("a:1"), f.node("b:1"), f.node("c:1"));
    for u in ["olive", "paul", "quinn"] {
        account(&a, u).await;
    }
    let now = now_ms();
    a.online_insert("Client1", "10.0.0.1:1").await.unwrap();
    assert!(a.login_success("olive", None, "10.0.0.1:2").await.unwrap());
    assert!(a.login_success("quinn", None, "10.0.0.1:3").await.unwrap());
    // The same ip:port on another node is another row.
    b.online_insert("Client1", "10.0.0.1:1").await.unwrap();
    assert!(b.login_success("paul", None, "10.0.0.2:1").await.unwrap());
    assert!(b.login_success("quinn", None, "10.0.0.2:2").await.unwrap());
    assert_eq!(c.online_rows().await.unwrap().len(), 6);
    // Nobody expired yet.
    assert!(a.heartbeat(now + 60_000).await.unwrap());
    assert!(b.heartbeat(now + 60_000).await.unwrap());
    assert!(c.reap_nodes(now).await.unwrap().is_empty());
    // a stops renewing; its lease runs out.
    assert!(a.heartbeat(now - 1).await.unwrap());
    assert_eq!(c.reap_nodes(now).await.unwrap(), vec!["a:1".to_owned()]);
    let rows = c.online_rows().await.unwrap();
    assert!(rows.iter().all(|r| r.node == "b:1"), "{rows:?}");
    assert_eq!(rows.len(), 3);
    let online = |u: &'static str| {
        let c = &c;
        async move { c.account(u).await.unwrap().unwrap().online }
    };
    assert_eq!(online("olive").await, "ko");
    assert_eq!(online("paul").await, "ok");
    assert_eq!(online("quinn").await, "ok", "still logged in on b");
    // Reaped once only; a node never reaps itself.
    assert!(c.reap_nodes(now).await.unwrap().is_empty());
    assert!(b.heartbeat(now - 1).await.unwrap());
    assert!(b.reap_nodes(now).await.unwrap().is_empty());
    // a comes back: told its lease was lost, then holds it again.
    assert!(!a.heartbeat(now + 60_000).await.unwrap());
    assert!(a.heartbeat(now + 60_000).await.unwrap());
    assert_eq!(a.reap_nodes(now).await.unwrap(), vec!["b:1".to_owned()]);
    assert!(c.online_rows().await.unwrap().is_empty());
    assert_eq!(online("quinn").await, "ko");
    assert!(f.sql_log().contains("DELETE NODES expired"));
}

async fn concurrent_reapers_split_the_dead(f: Fixture) {
    let nodes: Vec<Node> = (0..6).map(|i| f.node(&format!("n{i}"))).collect();
    let now = now_ms();
    for (i, n) in nodes.iter().enumerate() {
        n.online_insert(&format!("Client{i}"), "10.9.9.9:9")
            .await
            .unwrap();
        let live = i < 2;
        n.heartbeat(if live { now + 60_000 } else { now - 1 })
            .await
            .unwrap();
    }
    for round in 0..2 {
        let (x, y) = zip(nodes[0].reap_nodes(now), nodes[1].reap_nodes(now)).await;
        let (mut x, y) = (x.unwrap(), y.unwrap());
        if round == 1 {
            assert!(x.is_empty() && y.is_empty());
            break;
        }
        x.extend(y);
        x.sort();
        assert_eq!(
            x,
            vec!["n2", "n3", "n4", "n5"],
            "each dead node reaped once"
        );
    }
    let rows = nodes[0].online_rows().await.unwrap();
    let mut left: Vec<&str> = rows.iter().map(|r| r.node.as_str()).collect();
    left.sort_unstable();
    assert_eq!(left, vec!["n0", "n1"]);
}

async fn clean_leave(f: Fixture) {
    let (a, b) = (f.node("a:1"), f.node("b:1"));
    account(&a, "lea").await;
    account(&a, "max").await;
    assert!(a.login_success("lea", None, "10.0.0.1:1").await.unwrap());
    assert!(a.login_success("max", None, "10.0.0.1:2").await.unwrap());
    assert!(b.login_success("max", None, "10.0.0.2:1").await.unwrap());
    assert!(
        a.insert_pending("ned", PHC.into(), vec![1], "10.0.0.1:3", now_ms())
            .await
            .unwrap()
    );
    a.leave().await.unwrap();
    let rows = b.online_rows().await.unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].node, "b:1");
    assert_eq!(b.account("lea").await.unwrap().unwrap().online, "ko");
    assert_eq!(b.account("max").await.unwrap().unwrap().online, "ok");
    assert!(b.account("ned").await.unwrap().is_none());
    // Its lease is gone: nothing left to reap, and a new heartbeat says it was lost.
    assert!(b.reap_nodes(now_ms() + 3_600_000).await.unwrap().is_empty());
    assert!(!a.heartbeat(now_ms() + 60_000).await.unwrap());
}

async fn offline_only_when_no_node_has_the_user(f: Fixture) {
    let (a, b) = (f.node("a:1"), f.node("b:1"));
    account(&a, "rita").await;
    assert!(a.login_success("rita", None, "10.0.0.1:1").await.unwrap());
    assert!(b.login_success("rita", None, "10.0.0.2:1").await.unwrap());
    // Leaving a (its own row is still there, as in the server's clean-up order): b has her.
    a.set_offline("rita").await.unwrap();
    assert_eq!(a.account("rita").await.unwrap().unwrap().online, "ok");
    a.online_remove("10.0.0.1:1").await.unwrap();
    // Leaving b too: offline, though b's own row is removed only afterwards.
    b.set_offline("rita").await.unwrap();
    assert_eq!(a.account("rita").await.unwrap().unwrap().online, "ko");
    b.online_remove("10.0.0.2:1").await.unwrap();
    assert!(a.online_rows().await.unwrap().is_empty());
    // An anonymous row on another node named like nothing does not count.
    b.online_insert("Client7", "10.0.0.2:2").await.unwrap();
    assert!(a.login_success("rita", None, "10.0.0.1:2").await.unwrap());
    a.set_offline("rita").await.unwrap();
    assert_eq!(a.account("rita").await.unwrap().unwrap().online, "ko");
}

async fn pending_registration_of_a_dead_node(f: Fixture) {
    let (a, b) = (f.node("a:1"), f.node("b:1"));
    let now = now_ms();
    for (node, user) in [(&a, "sam"), (&b, "tess")] {
        assert!(
            node.insert_pending(user, PHC.into(), vec![1], "10.0.0.1:1", now)
                .await
                .unwrap()
        );
    }
    account(&a, "uma").await;
    a.heartbeat(now - 1).await.unwrap();
    b.heartbeat(now + 60_000).await.unwrap();
    assert_eq!(b.reap_nodes(now).await.unwrap(), vec!["a:1".to_owned()]);
    assert!(
        b.account("sam").await.unwrap().is_none(),
        "a's pending reaped"
    );
    assert!(
        b.account("tess").await.unwrap().is_some(),
        "b's pending kept"
    );
    assert!(
        b.account("uma").await.unwrap().is_some(),
        "confirmed account kept"
    );
    assert_eq!(b.scratch_left("uma").await.unwrap(), 10);
    // The name is free again.
    assert!(
        b.insert_pending("sam", PHC.into(), vec![2], "10.0.0.3:1", now)
            .await
            .unwrap()
    );
}

async fn restart_resets_this_node(f: Fixture) {
    let (a, b) = (f.node("a:1"), f.node("b:1"));
    account(&a, "vic").await;
    account(&a, "wes").await;
    assert!(a.login_success("vic", None, "10.0.0.1:1").await.unwrap());
    assert!(b.login_success("wes", None, "10.0.0.2:1").await.unwrap());
    a.online_insert("Client3", "10.0.0.1:3").await.unwrap();
    for (node, user) in [(&a, "xena"), (&b, "yuri")] {
        assert!(
            node.insert_pending(user, PHC.into(), vec![1], "10.0.0.1:1", now_ms())
                .await
                .unwrap()
        );
    }
    // a is killed and starts again.
    drop(a);
    let a = f.node("a:1");
    let rows = a.online_rows().await.unwrap();
    let on = |u: &'static str| {
        let a = &a;
        async move { a.account(u).await.unwrap().map(|x| x.online) }
    };
    assert_eq!(on("vic").await.as_deref(), Some("ko"));
    assert!(
        on("xena").await.is_none(),
        "a's pending registration discarded"
    );
    match f.kind {
        // One node owns the file: everything reset, as before scale-out.
        Kind::Sqlite => {
            assert!(rows.is_empty(), "{rows:?}");
            assert_eq!(on("wes").await.as_deref(), Some("ko"));
            assert!(on("yuri").await.is_none());
        }
        // Shared: b's state is b's.
        Kind::Postgres => {
            assert_eq!(rows.len(), 1, "{rows:?}");
            assert_eq!(
                (rows[0].node.as_str(), rows[0].client_id.as_str()),
                ("b:1", "wes")
            );
            assert_eq!(on("wes").await.as_deref(), Some("ok"));
            assert!(on("yuri").await.is_some());
        }
    }
    // The restarted node holds its lease again.
    assert!(a.heartbeat(now_ms() + 60_000).await.unwrap());
}

fn schema_version(f: &Fixture) -> Vec<i64> {
    match &f.db {
        Database::Sqlite(path) => {
            let c = rusqlite::Connection::open(path).unwrap();
            vec![
                c.pragma_query_value(None, "user_version", |r| r.get(0))
                    .unwrap(),
            ]
        }
        Database::Postgres(url) => smol::block_on(async {
            let mut c = sqlx::PgConnection::connect(url).await.unwrap();
            let v: Vec<i64> =
                sqlx::query_scalar("SELECT version FROM schema_version ORDER BY version")
                    .fetch_all(&mut c)
                    .await
                    .unwrap();
            v
        }),
    }
}

async fn migrations_idempotent(f: Fixture) {
    let a = f.node("a:1");
    account(&a, "zoe").await;
    a.insert_message(1, "#lobby", "zoe", 0, "kept")
        .await
        .unwrap();
    drop(a);
    let admin = Store::open_admin(&f.db).unwrap();
    assert!(admin.account("zoe").await.unwrap().is_some());
    admin.close();
    let a = f.node("a:1");
    let b = f.node("b:1");
    assert_eq!(b.history("zoe", "#lobby", 0, 5).await.unwrap().len(), 1);
    assert_eq!(a.scratch_left("zoe").await.unwrap(), 10);
    let want = match f.kind {
        Kind::Sqlite => vec![5],
        Kind::Postgres => vec![1, 2, 3, 4, 5],
    };
    assert_eq!(schema_version(&f), want);
}

async fn fresh_database_opened_by_two_nodes_at_once(f: Fixture) {
    let opened: Vec<Result<Store, StoreError>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|i| {
                let (db, logs) = (&f.db, f.logs.clone());
                s.spawn(move || Store::open(db, &format!("n{i}"), logs).map(|x| x.0))
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let nodes: Vec<Node> = opened
        .into_iter()
        .map(|r| Node(r.unwrap_or_else(|e| panic!("concurrent open: {e}"))))
        .collect();
    account(&nodes[0], "amy").await;
    assert!(nodes[3].account("amy").await.unwrap().is_some());
    let want = match f.kind {
        Kind::Sqlite => vec![5],
        Kind::Postgres => vec![1, 2, 3, 4, 5],
    };
    assert_eq!(schema_version(&f), want);
}

async fn admin_commands(f: Fixture) {
    let data = f.dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    ServerKeys::load_or_create(&data).unwrap();
    {
        let a = f.node("a:1");
        account(&a, "bea").await;
        account(&a, "cy").await;
        assert!(a.login_success("bea", None, "10.0.0.1:1").await.unwrap());
    }
    let run = |action: Action| {
        let mut out = Vec::new();
        let r = admin::run_on(&data, &f.db, "ChatBox", &action, &mut out);
        (r.is_ok(), String::from_utf8(out).unwrap())
    };
    let (ok, list) = run(Action::List);
    assert!(ok && list.contains("bea") && list.contains("cy"), "{list}");
    let (ok, show) = run(Action::Show("bea".into()));
    assert!(
        ok && show.contains("statut:         ok") && show.contains("10 unused"),
        "{show}"
    );
    assert!(!run(Action::Show("nobody".into())).0);
    assert!(run(Action::Lock("bea".into())).0);
    let s = Store::open_admin(&f.db).unwrap();
    assert!(s.account("bea").await.unwrap().unwrap().locked_until > now_ms());
    // Opening for administration reset nothing: bea's ONLINE row is still there.
    assert_eq!(s.online_rows().await.unwrap().len(), 1);
    assert!(run(Action::Unlock("bea".into())).0);
    assert!(run(Action::Role("bea".into(), "op".into())).0);
    assert!(!run(Action::Role("bea".into(), "king".into())).0);
    let (ok, out) = run(Action::ResetOtp("cy".into()));
    assert!(
        ok && out.contains("otpauth://totp/ChatBox:cy?secret="),
        "{out}"
    );
    assert!(run(Action::Delete("cy".into())).0);
    assert!(!run(Action::Delete("cy".into())).0);
    let bea = s.account("bea").await.unwrap().unwrap();
    assert_eq!((bea.role.as_str(), bea.locked_until), ("op", 0));
    assert!(s.account("cy").await.unwrap().is_none());
    s.close();
}

/// A database made by the schema before scale-out (version 1) upgrades in place.
#[test]
fn sqlite_version_1_upgrades_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chatbox.db");
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(chatbox_server::store::sqlite::MIGRATIONS[0])
            .unwrap();
        c.execute_batch(
            "CREATE TABLE ONLINE (Client_Id TEXT NOT NULL, ip_port TEXT PRIMARY KEY NOT NULL, statut TEXT NOT NULL);
             INSERT INTO ONLINE VALUES ('old', '1.1.1.1:1', 'online');
             INSERT INTO REGISTERED (User, password, statut, totp_sealed, totp_last_step, created)
                 VALUES ('ada', 'phc', 'ok', x'0102', 5, 42);
             INSERT INTO REGISTERED (User, password, statut, pending_reg) VALUES ('pend', 'phc', 'ko', 1);
             INSERT INTO SCRATCH VALUES ('ada', x'00', 0);
             INSERT INTO MESSAGES (time_ms, target, sender, kind, text) VALUES (7, '#lobby', 'ada', 0, 'old message');
             INSERT INTO MESSAGES (time_ms, target, sender, kind, text) VALUES (8, 'ada', 'bob', 2, 'old private 1');
             INSERT INTO MESSAGES (time_ms, target, sender, kind, text) VALUES (9, 'ada', 'bob', 2, 'old private 2');
             INSERT INTO TOPICS VALUES ('#lobby', 'old topic', 'ada', 7);
             PRAGMA user_version = 1;",
        )
        .unwrap();
    }
    let logs = Logs::open(&dir.path().join("log"), [7; 32]).unwrap();
    let (s, startup) = Store::open(&Database::Sqlite(path.clone()), "n:1", logs.clone()).unwrap();
    let s = Node(s);
    assert_eq!(startup.topics.len(), 1);
    smol::block_on(async {
        let ada = s.account("ada").await.unwrap().unwrap();
        assert_eq!(
            (ada.totp_last_step, ada.created, ada.totp_sealed),
            (Some(5), 42, vec![1, 2])
        );
        assert!(s.account("pend").await.unwrap().is_none());
        // Accounts count as seen at the upgrade: messages from before do not use up the
        // offline allowance (2 old ones, a cap of 1).
        assert!(
            s.insert_offline(now_ms() + 1, "ada", "bob", 2, "new", 1)
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(
            s.insert_offline(now_ms() + 1, "ada", "bob", 2, "newer", 1)
                .await
                .unwrap(),
            None
        );
        assert_eq!(s.scratch_left("ada").await.unwrap(), 1);
        assert_eq!(
            s.history("ada", "#lobby", 0, 10).await.unwrap()[0].text,
            "old message"
        );
        assert!(s.online_rows().await.unwrap().is_empty());
        assert!(s.login_success("ada", Some(6), "2.2.2.2:2").await.unwrap());
        assert_eq!(s.online_rows().await.unwrap()[0].node, "n:1");
        assert!(s.heartbeat(now_ms() + 1000).await.unwrap());
    });
    drop(s);
    logs.close();
    let c = rusqlite::Connection::open(&path).unwrap();
    let v: i64 = c
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(v, 5);
    let cols: Vec<String> = c
        .prepare("SELECT name FROM pragma_table_info('REGISTERED')")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(cols.contains(&"pending_node".to_owned()), "{cols:?}");
    assert!(cols.contains(&"seen_id".to_owned()), "{cols:?}");
    assert!(cols.contains(&"invite_id".to_owned()), "{cols:?}");
}

/// A PostgreSQL server that cannot be reached is an error, and its password is never shown.
#[test]
fn unreachable_postgres_is_an_error_without_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let logs = Logs::open(&dir.path().join("log"), [7; 32]).unwrap();
    let db = Database::parse("postgres://chatbox:hunter2@127.0.0.1:1/chatbox").unwrap();
    let start = std::time::Instant::now();
    let e = Store::open(&db, "n:1", logs.clone()).expect_err("no server there");
    assert!(start.elapsed() < Duration::from_secs(30));
    let shown = format!("{e} {e:?} {db} {db:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    logs.close();
    let sql = std::fs::read_to_string(dir.path().join("log").join("sql.log")).unwrap_or_default();
    assert!(
        sql.contains("chatbox:***@127.0.0.1:1") && !sql.contains("hunter2"),
        "{sql}"
    );
}
