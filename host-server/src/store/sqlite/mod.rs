//! The embedded backend: one SQLite file, one writer thread.
//!
//! All database work goes through one writer thread that owns the connection: jobs arrive over
//! a channel, the thread drains what is queued, runs it in one `BEGIN … COMMIT` (each job in
//! its own savepoint, so one failing job does not undo the others) and only then answers each
//! caller. A chat message is therefore acknowledged and fanned out only after its transaction
//! committed.

pub(crate) mod queries;
pub(crate) mod schema;

use std::path::Path;
use std::sync::Mutex;
use std::thread::JoinHandle;

use rusqlite::Connection;
use smol::channel::{self, Receiver, Sender};

use super::StoreError;
use crate::logs::Logs;
use crate::metrics::Metrics;

pub use schema::MIGRATIONS;

/// Most jobs run in one transaction.
const MAX_BATCH: usize = 512;

type Reply = Box<dyn FnOnce(bool) + Send>;
type Job = Box<dyn FnOnce(&Connection) -> (bool, Reply) + Send>;

/// The writer thread's handle.
#[derive(Debug)]
pub(crate) struct Sqlite {
    tx: Sender<Job>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

fn run_writer(conn: &Connection, rx: &Receiver<Job>, logs: Option<&Logs>, metrics: &Metrics) {
    while let Ok(first) = rx.recv_blocking() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        let t0 = std::time::Instant::now();
        let began = run(conn, "BEGIN IMMEDIATE").is_ok();
        let mut replies = Vec::with_capacity(batch.len());
        for job in batch {
            let sp = run(conn, "SAVEPOINT job").is_ok();
            let (ok, reply) = job(conn);
            if sp {
                if !ok {
                    let _ = run(conn, "ROLLBACK TO job");
                }
                let _ = run(conn, "RELEASE job");
            }
            replies.push(reply);
        }
        let committed = began
            && match run(conn, "COMMIT") {
                Ok(()) => true,
                Err(e) => {
                    if let Some(logs) = logs {
                        logs.sql(format!("COMMIT failed: {e}"));
                        logs.info(format!("database commit failed: {e}"));
                    }
                    let _ = conn.execute_batch("ROLLBACK");
                    false
                }
            };
        metrics.commit(t0.elapsed());
        for reply in replies {
            reply(committed);
        }
    }
}

/// Runs one statement without results through the connection's statement cache: the writer
/// runs these five around every job and batch, and need not parse them each time.
fn run(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

impl Sqlite {
    /// Opens (creating and migrating) the file; with `reset`, the server's start-up reset
    /// ([`schema::reset_at_start`]); then starts the writer thread.
    pub(crate) fn open(
        path: &Path,
        reset: bool,
        logs: Option<Logs>,
        metrics: Metrics,
    ) -> Result<Sqlite, StoreError> {
        let conn = schema::open(path)?;
        if reset {
            schema::reset_at_start(&conn)?;
        }
        let (tx, rx) = channel::bounded::<Job>(8192);
        let thread = std::thread::Builder::new()
            .name("chatbox-db".into())
            .spawn(move || run_writer(&conn, &rx, logs.as_ref(), &metrics))
            .map_err(|_| StoreError::Closed)?;
        Ok(Sqlite {
            tx,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Runs `f` on the writer thread in the next batch; answers once the batch committed.
    pub(crate) async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let (rtx, rrx) = channel::bounded::<Result<T, StoreError>>(1);
        let job: Job = Box::new(move |c| {
            let (ok, r) = match f(c) {
                Ok(v) => (true, Ok(v)),
                Err(e) => (false, Err(StoreError::Sql(e))),
            };
            let reply: Reply = Box::new(move |committed| {
                let _ = rtx.try_send(match r {
                    Ok(_) if !committed => Err(StoreError::Commit),
                    r => r,
                });
            });
            (ok, reply)
        });
        self.tx.send(job).await.map_err(|_| StoreError::Closed)?;
        rrx.recv().await.map_err(|_| StoreError::Closed)?
    }

    /// Stops accepting jobs, lets the writer finish what is queued, and joins it.
    pub(crate) fn close(&self) {
        self.tx.close();
        if let Some(t) = self.thread.lock().ok().and_then(|mut g| g.take()) {
            let _ = t.join();
        }
    }
}
