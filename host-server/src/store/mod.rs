//! Storage behind one narrow API, so another backend (PostgreSQL) can be added later.
//!
//! All database work of the server goes through one writer thread that owns the connection:
//! jobs arrive over a channel, the thread drains what is queued, runs it in one
//! `BEGIN … COMMIT` (each job in its own savepoint, so one failing job does not undo the
//! others) and only then answers each caller. A chat message is therefore acknowledged and
//! fanned out only after its transaction committed.

pub mod queries;
pub mod schema;

use std::fmt;
use std::path::Path;
use std::sync::Mutex;
use std::thread::JoinHandle;

use rusqlite::Connection;
use smol::channel::{self, Receiver, Sender};

pub use queries::{Account, Sanction, StoredMsg, TopicRow};

use crate::logs::Logs;

/// Most jobs run in one transaction.
const MAX_BATCH: usize = 512;

/// Storage errors.
#[derive(Debug)]
pub enum StoreError {
    /// The statement failed.
    Sql(rusqlite::Error),
    /// The transaction did not commit; nothing was stored.
    Commit,
    /// The writer has stopped.
    Closed,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Sql(e) => write!(f, "database: {e}"),
            StoreError::Commit => f.write_str("database: commit failed"),
            StoreError::Closed => f.write_str("database writer stopped"),
        }
    }
}

impl core::error::Error for StoreError {}

type Reply = Box<dyn FnOnce(bool) + Send>;
type Job = Box<dyn FnOnce(&Connection) -> (bool, Reply) + Send>;

/// The storage handle.
#[derive(Debug)]
pub struct Store {
    tx: Sender<Job>,
    thread: Mutex<Option<JoinHandle<()>>>,
    logs: Logs,
}

/// What the server loads once at start.
#[derive(Debug, Default)]
pub struct Startup {
    /// Room topics.
    pub topics: Vec<TopicRow>,
    /// Mutes in force.
    pub mutes: Vec<(String, u64)>,
    /// MOTD set by an operator.
    pub motd: Option<String>,
}

fn run_writer(conn: &Connection, rx: &Receiver<Job>, logs: &Logs) {
    while let Ok(first) = rx.recv_blocking() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        let began = conn.execute_batch("BEGIN IMMEDIATE").is_ok();
        let mut replies = Vec::with_capacity(batch.len());
        for job in batch {
            let sp = conn.execute_batch("SAVEPOINT job").is_ok();
            let (ok, reply) = job(conn);
            if sp {
                let end = if ok {
                    "RELEASE job"
                } else {
                    "ROLLBACK TO job; RELEASE job"
                };
                let _ = conn.execute_batch(end);
            }
            replies.push(reply);
        }
        let committed = began
            && match conn.execute_batch("COMMIT") {
                Ok(()) => true,
                Err(e) => {
                    logs.sql(format!("COMMIT failed: {e}"));
                    logs.info(format!("database commit failed: {e}"));
                    let _ = conn.execute_batch("ROLLBACK");
                    false
                }
            };
        for reply in replies {
            reply(committed);
        }
    }
}

impl Store {
    /// Opens (creating and migrating) the database, resets `ONLINE`, loads what the server
    /// needs at start, and starts the writer thread.
    pub fn open(path: &Path, logs: Logs) -> Result<(Store, Startup), StoreError> {
        let conn = schema::open(path).map_err(StoreError::Sql)?;
        logs.sql(format!("OPEN {} (WAL, migrations applied)", path.display()));
        schema::reset_at_start(&conn).map_err(StoreError::Sql)?;
        logs.sql("DROP+CREATE ONLINE; UPDATE REGISTERED online=ko; DELETE REGISTERED pending");
        let now = crate::time::now_ms();
        let startup = Startup {
            topics: queries::topics(&conn).map_err(StoreError::Sql)?,
            mutes: queries::active_mutes(&conn, now).map_err(StoreError::Sql)?,
            motd: queries::setting(&conn, "motd").map_err(StoreError::Sql)?,
        };
        logs.sql("SELECT TOPICS; SELECT MUTES; SELECT SETTINGS key=motd");
        let (tx, rx) = channel::bounded::<Job>(8192);
        let wlogs = logs.clone();
        let thread = std::thread::Builder::new()
            .name("chatbox-db".into())
            .spawn(move || run_writer(&conn, &rx, &wlogs))
            .map_err(|_| StoreError::Closed)?;
        Ok((
            Store {
                tx,
                thread: Mutex::new(Some(thread)),
                logs,
            },
            startup,
        ))
    }

    /// Runs `f` on the writer thread in the next batch; logs `what` in `sql.log`.
    async fn call<T, F>(&self, what: String, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let (rtx, rrx) = channel::bounded::<Result<T, StoreError>>(1);
        let logs = self.logs.clone();
        let job: Job = Box::new(move |c| match f(c) {
            Ok(v) => {
                logs.sql(&what);
                let reply: Reply = Box::new(move |committed| {
                    let _ = rtx.try_send(if committed {
                        Ok(v)
                    } else {
                        Err(StoreError::Commit)
                    });
                });
                (true, reply)
            }
            Err(e) => {
                logs.sql(format!("{what} FAILED: {e}"));
                let reply: Reply = Box::new(move |_| {
                    let _ = rtx.try_send(Err(StoreError::Sql(e)));
                });
                (false, reply)
            }
        });
        self.tx.send(job).await.map_err(|_| StoreError::Closed)?;
        rrx.recv().await.map_err(|_| StoreError::Closed)?
    }

    /// Stops accepting jobs, lets the writer finish what is queued, and joins it.
    pub fn close(&self) {
        self.tx.close();
        if let Some(t) = self.thread.lock().ok().and_then(|mut g| g.take()) {
            let _ = t.join();
        }
    }

    /// One account.
    pub async fn account(&self, user: &str) -> Result<Option<Account>, StoreError> {
        let u = user.to_owned();
        self.call(format!("SELECT REGISTERED user={user}"), move |c| {
            queries::account(c, &u)
        })
        .await
    }

    /// A pending registration; `false` if the name is taken.
    pub async fn insert_pending(
        &self,
        user: &str,
        phc: String,
        sealed: Vec<u8>,
        ip_port: &str,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        let (u, ip) = (user.to_owned(), ip_port.to_owned());
        self.call(
            format!("INSERT REGISTERED user={user} statut=ko ip_port={ip_port}"),
            move |c| queries::insert_pending(c, &u, &phc, &sealed, &ip, now_ms),
        )
        .await
    }

    /// Activates a registration with its scratch code hashes.
    pub async fn confirm_registration(
        &self,
        user: &str,
        step: u64,
        scratch: Vec<[u8; 32]>,
    ) -> Result<bool, StoreError> {
        let u = user.to_owned();
        self.call(
            format!(
                "UPDATE REGISTERED user={user} statut=ok; INSERT SCRATCH user={user} count={}",
                scratch.len()
            ),
            move |c| queries::confirm_registration(c, &u, step, &scratch),
        )
        .await
    }

    /// Discards an unconfirmed registration.
    pub async fn delete_pending(&self, user: &str) -> Result<bool, StoreError> {
        let u = user.to_owned();
        self.call(
            format!("DELETE REGISTERED user={user} (unconfirmed)"),
            move |c| queries::delete_pending(c, &u),
        )
        .await
    }

    /// Records a successful login; `false` (nothing changed) if `step` is no longer above the
    /// last accepted one, i.e. another login used that code first.
    pub async fn login_success(
        &self,
        user: &str,
        step: Option<u64>,
        ip_port: &str,
    ) -> Result<bool, StoreError> {
        let (u, ip) = (user.to_owned(), ip_port.to_owned());
        self.call(
            format!("UPDATE REGISTERED user={user} online=ok ip_port_last={ip_port}; UPDATE ONLINE ip_port={ip_port} statut=online"),
            move |c| {
                if !queries::login_success(c, &u, step, &ip)? {
                    return Ok(false);
                }
                queries::online_insert(c, &u, &ip, "online").map(|()| true)
            },
        )
        .await
    }

    /// Records a failed login; returns the consecutive failures.
    pub async fn login_failure(
        &self,
        user: &str,
        lock_after: u32,
        lock_until_ms: u64,
    ) -> Result<u32, StoreError> {
        let u = user.to_owned();
        self.call(
            format!("UPDATE REGISTERED user={user} failures+1"),
            move |c| queries::login_failure(c, &u, lock_after, lock_until_ms),
        )
        .await
    }

    /// Uses a scratch code; `true` if it was valid and unused.
    pub async fn use_scratch(&self, user: &str, hash: [u8; 32]) -> Result<bool, StoreError> {
        let u = user.to_owned();
        self.call(format!("UPDATE SCRATCH user={user} used=1"), move |c| {
            queries::use_scratch(c, &u, &hash)
        })
        .await
    }

    /// Marks an account offline.
    pub async fn set_offline(&self, user: &str) -> Result<(), StoreError> {
        let u = user.to_owned();
        self.call(
            format!("UPDATE REGISTERED user={user} online=ko"),
            move |c| queries::set_offline(c, &u),
        )
        .await
    }

    /// A connection in `ONLINE` (`anonyme` until login).
    pub async fn online_insert(&self, client_id: &str, ip_port: &str) -> Result<(), StoreError> {
        let (id, ip) = (client_id.to_owned(), ip_port.to_owned());
        self.call(
            format!("INSERT ONLINE client_id={client_id} ip_port={ip_port} statut=anonyme"),
            move |c| queries::online_insert(c, &id, &ip, "anonyme"),
        )
        .await
    }

    /// A connection gone from `ONLINE`.
    pub async fn online_remove(&self, ip_port: &str) -> Result<(), StoreError> {
        let ip = ip_port.to_owned();
        self.call(format!("DELETE ONLINE ip_port={ip_port}"), move |c| {
            queries::online_remove(c, &ip)
        })
        .await
    }

    /// Stores a chat message; returns its id once committed.
    pub async fn insert_message(
        &self,
        time_ms: u64,
        target: &str,
        sender: &str,
        kind: u8,
        text: &str,
    ) -> Result<u64, StoreError> {
        let (t, s, x) = (target.to_owned(), sender.to_owned(), text.to_owned());
        self.call(
            format!("INSERT MESSAGES target={target} sender={sender} kind={kind}"),
            move |c| queries::insert_message(c, time_ms, &t, &s, kind, &x),
        )
        .await
    }

    /// History of a room (`#…`) or of the private conversation of `me` with a user.
    pub async fn history(
        &self,
        me: &str,
        target: &str,
        before_id: u64,
        limit: u32,
    ) -> Result<Vec<StoredMsg>, StoreError> {
        let (m, t) = (me.to_owned(), target.to_owned());
        self.call(
            format!("SELECT MESSAGES target={target} before={before_id} limit={limit}"),
            move |c| {
                if t.starts_with('#') {
                    queries::room_history(c, &t, before_id, limit)
                } else {
                    queries::private_history(c, &m, &t, before_id, limit)
                }
            },
        )
        .await
    }

    /// Adds a ban or mute.
    pub async fn add_sanction(
        &self,
        s: Sanction,
        user: &str,
        until_ms: u64,
        reason: &str,
        by: &str,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let (u, r, b) = (user.to_owned(), reason.to_owned(), by.to_owned());
        self.call(
            format!(
                "INSERT {} user={user} until_ms={until_ms} by={by}",
                s.table()
            ),
            move |c| queries::add_sanction(c, s, &u, until_ms, &r, &b, now_ms),
        )
        .await
    }

    /// Lifts a ban or mute.
    pub async fn remove_sanction(&self, s: Sanction, user: &str) -> Result<bool, StoreError> {
        let u = user.to_owned();
        self.call(format!("DELETE {} user={user}", s.table()), move |c| {
            queries::remove_sanction(c, s, &u)
        })
        .await
    }

    /// The ban or mute in force.
    pub async fn active_sanction(
        &self,
        s: Sanction,
        user: &str,
        now_ms: u64,
    ) -> Result<Option<(u64, String)>, StoreError> {
        let u = user.to_owned();
        self.call(format!("SELECT {} user={user}", s.table()), move |c| {
            queries::active_sanction(c, s, &u, now_ms)
        })
        .await
    }

    /// Sets a topic.
    pub async fn set_topic(&self, t: TopicRow) -> Result<(), StoreError> {
        self.call(
            format!("INSERT TOPICS room={} set_by={}", t.room, t.set_by),
            move |c| queries::set_topic(c, &t),
        )
        .await
    }

    /// Sets the MOTD.
    pub async fn set_motd(&self, text: &str) -> Result<(), StoreError> {
        let t = text.to_owned();
        self.call("INSERT SETTINGS key=motd".to_owned(), move |c| {
            queries::set_setting(c, "motd", &t)
        })
        .await
    }
}
