//! Group commit of chat messages on PostgreSQL: one writer, many rows per transaction.
//!
//! Every node stores every chat message before it acknowledges and fans it out
//! (docs/DESIGN.md §3, step 5). One autocommitted `INSERT` per message costs a round trip and a WAL flush
//! each, and the flushes queue behind each other once messages arrive faster than the disk
//! flushes. Like the SQLite writer, one task drains everything queued (a bounded queue: a full
//! queue makes callers wait), stores it with one multi-row `INSERT` (one transaction, one
//! flush) and only then answers each caller with its id. A caller whose row PostgreSQL refuses
//! gets that error alone: the other rows of its batch are stored one by one.
//!
//! Ids: the batch's ids are drawn from the table's sequence first and handed out in queue
//! order, so a batch's messages get increasing ids in the order they were queued whatever
//! order the database inserts the rows in.

use std::sync::Mutex;
use std::thread::JoinHandle;

use smol::channel::{self, Receiver, Sender};
use sqlx::PgPool;

use super::super::StoredMsg;
use super::super::model::{i64_of, u64_of};

/// Most messages one transaction stores.
pub(crate) const MAX_BATCH: usize = 512;

/// Messages waiting at most (then callers wait for a place).
const QUEUE: usize = 8192;

/// `$1` ids from the `MESSAGES` id sequence.
const DRAW_IDS: &str =
    "SELECT nextval(pg_get_serial_sequence('messages', 'id')) FROM generate_series(1, $1)";

/// The rows of one batch, one array per column.
const INSERT_MANY: &str = "INSERT INTO MESSAGES (id, time_ms, target, sender, kind, text)
     SELECT * FROM unnest($1::BIGINT[], $2::BIGINT[], $3::TEXT[], $4::TEXT[], $5::BIGINT[], $6::TEXT[])";

/// One row with its id chosen (the fall-back when a batch is refused).
const INSERT_ONE: &str = "INSERT INTO MESSAGES (id, time_ms, target, sender, kind, text) VALUES ($1, $2, $3, $4, $5, $6)";

type Reply = Sender<Result<u64, sqlx::Error>>;

struct Job {
    msg: StoredMsg,
    reply: Reply,
}

/// The writer thread's handle.
#[derive(Debug)]
pub(crate) struct Writer {
    tx: Sender<Job>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Writer {
    /// Starts the writer thread on `pool`.
    pub(crate) fn start(pool: PgPool) -> std::io::Result<Writer> {
        let (tx, rx) = channel::bounded::<Job>(QUEUE);
        let thread = std::thread::Builder::new()
            .name("chatbox-pg-writer".into())
            .spawn(move || smol::block_on(run(&pool, &rx)))?;
        Ok(Writer {
            tx,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Stores `msg` (its `id` is ignored) in the next batch; its id once that committed.
    pub(crate) async fn insert(&self, msg: StoredMsg) -> Result<u64, sqlx::Error> {
        let (reply, answer) = channel::bounded(1);
        self.tx
            .send(Job { msg, reply })
            .await
            .map_err(|_| sqlx::Error::PoolClosed)?;
        answer.recv().await.map_err(|_| sqlx::Error::PoolClosed)?
    }

    /// Stops taking messages, stores what is queued, and joins the thread.
    pub(crate) fn close(&self) {
        self.tx.close();
        if let Some(t) = self.thread.lock().ok().and_then(|mut g| g.take()) {
            let _ = t.join();
        }
    }
}

/// Drains the queue into batches until it is closed and empty.
async fn run(pool: &PgPool, rx: &Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = rx.recv().await {
        batch.push(first);
        fill(&mut batch, rx);
        store(pool, &mut batch).await;
    }
}

/// Adds what is queued to `batch`, up to [`MAX_BATCH`], without waiting.
fn fill<T>(batch: &mut Vec<T>, rx: &Receiver<T>) {
    while batch.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(j) => batch.push(j),
            Err(_) => break,
        }
    }
}

/// Stores `batch` and answers (and empties) it.
async fn store(pool: &PgPool, batch: &mut Vec<Job>) {
    let ids = match draw_ids(pool, batch.len()).await {
        Ok(ids) => ids,
        Err(e) => {
            answer_all(batch, &e);
            return;
        }
    };
    match insert_many(pool, batch, &ids).await {
        Ok(()) => {
            for (job, id) in batch.drain(..).zip(ids) {
                let _ = job.reply.try_send(Ok(u64_of(id)));
            }
        }
        // PostgreSQL refused a row (the statement failed, nothing of it was stored): each row
        // on its own, so only the refused one fails. Each keeps its drawn id, so a row that was
        // stored after all would conflict on its id rather than be stored twice.
        Err(sqlx::Error::Database(_)) => {
            for (job, id) in batch.drain(..).zip(ids) {
                let r = insert_one(pool, &job.msg, id).await.map(|()| u64_of(id));
                let _ = job.reply.try_send(r);
            }
        }
        // The connection failed: whether the statement committed is unknown, so no row is
        // stored again (that could store it twice); every caller hears the error.
        Err(e) => answer_all(batch, &e),
    }
}

fn answer_all(batch: &mut Vec<Job>, e: &sqlx::Error) {
    for job in batch.drain(..) {
        let _ = job.reply.try_send(Err(copy_error(e)));
    }
}

/// One error for each caller of a failed batch (`sqlx::Error` is not `Clone`).
fn copy_error(e: &sqlx::Error) -> sqlx::Error {
    match e {
        sqlx::Error::PoolClosed => sqlx::Error::PoolClosed,
        sqlx::Error::PoolTimedOut => sqlx::Error::PoolTimedOut,
        e => sqlx::Error::Protocol(format!("storing a batch of messages: {e}")),
    }
}

/// `n` ids from the sequence, increasing.
async fn draw_ids(pool: &PgPool, n: usize) -> Result<Vec<i64>, sqlx::Error> {
    let want = i64::try_from(n).unwrap_or(i64::MAX);
    let mut ids: Vec<i64> = sqlx::query_scalar(DRAW_IDS)
        .bind(want)
        .fetch_all(pool)
        .await?;
    ids_for(&mut ids, n)?;
    Ok(ids)
}

/// Checks that the sequence gave `n` distinct ids and sorts them, so that the `i`-th queued
/// message gets the `i`-th smallest.
fn ids_for(ids: &mut [i64], n: usize) -> Result<(), sqlx::Error> {
    ids.sort_unstable();
    if ids.len() != n || ids.windows(2).any(|w| w[0] == w[1]) {
        return Err(sqlx::Error::Protocol(format!(
            "the id sequence gave {} ids for {n} messages",
            ids.len()
        )));
    }
    Ok(())
}

/// The batch as one multi-row `INSERT` (autocommitted: one transaction).
async fn insert_many(pool: &PgPool, batch: &[Job], ids: &[i64]) -> Result<(), sqlx::Error> {
    let cols = Columns::of(batch.iter().map(|j| &j.msg));
    sqlx::query(INSERT_MANY)
        .bind(ids)
        .bind(&cols.time_ms)
        .bind(&cols.target)
        .bind(&cols.sender)
        .bind(&cols.kind)
        .bind(&cols.text)
        .execute(pool)
        .await
        .map(drop)
}

async fn insert_one(pool: &PgPool, m: &StoredMsg, id: i64) -> Result<(), sqlx::Error> {
    sqlx::query(INSERT_ONE)
        .bind(id)
        .bind(i64_of(m.time_ms))
        .bind(&m.target)
        .bind(&m.sender)
        .bind(i64::from(m.kind))
        .bind(&m.text)
        .execute(pool)
        .await
        .map(drop)
}

/// A batch turned into one array per column, in queue order.
#[derive(Debug, Default, PartialEq)]
struct Columns<'a> {
    time_ms: Vec<i64>,
    target: Vec<&'a str>,
    sender: Vec<&'a str>,
    kind: Vec<i64>,
    text: Vec<&'a str>,
}

impl<'a> Columns<'a> {
    fn of(msgs: impl Iterator<Item = &'a StoredMsg>) -> Columns<'a> {
        let mut c = Columns::default();
        for m in msgs {
            c.time_ms.push(i64_of(m.time_ms));
            c.target.push(&m.target);
            c.sender.push(&m.sender);
            c.kind.push(i64::from(m.kind));
            c.text.push(&m.text);
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(i: u64) -> StoredMsg {
        StoredMsg {
            id: 99,
            time_ms: 1_000 + i,
            target: format!("#r{i}"),
            sender: format!("u{i}"),
            kind: u8::try_from(i % 3).unwrap_or(0),
            text: format!("text {i}"),
        }
    }

    #[test]
    fn columns_keep_queue_order() {
        let msgs: Vec<StoredMsg> = (0..3).map(msg).collect();
        let c = Columns::of(msgs.iter());
        assert_eq!(c.time_ms, [1_000, 1_001, 1_002]);
        assert_eq!(c.target, ["#r0", "#r1", "#r2"]);
        assert_eq!(c.sender, ["u0", "u1", "u2"]);
        assert_eq!(c.kind, [0, 1, 2]);
        assert_eq!(c.text, ["text 0", "text 1", "text 2"]);
    }

    #[test]
    fn ids_are_sorted_and_checked() {
        let mut ids = [42, 40, 41];
        assert!(ids_for(&mut ids, 3).is_ok());
        assert_eq!(ids, [40, 41, 42]);
        assert!(ids_for(&mut [1, 2], 3).is_err());
        assert!(ids_for(&mut [5, 5, 6], 3).is_err());
        assert!(ids_for(&mut [], 0).is_ok());
    }

    #[test]
    fn a_batch_takes_what_is_queued_up_to_the_cap() {
        let (tx, rx) = channel::bounded::<usize>(QUEUE);
        for i in 0..MAX_BATCH + 10 {
            assert!(tx.try_send(i).is_ok());
        }
        let mut batch = vec![usize::MAX];
        fill(&mut batch, &rx);
        assert_eq!(batch.len(), MAX_BATCH);
        assert_eq!(batch.get(1..4), Some(&[0, 1, 2][..]));
        batch.clear();
        fill(&mut batch, &rx);
        assert_eq!(batch.len(), 11);
        batch.clear();
        fill(&mut batch, &rx);
        assert!(batch.is_empty());
    }
}
