//! The scale-out backend: PostgreSQL through a sqlx pool on smol. The statements are the
//! shared ones of [`super::sql`]; each method runs as one autocommitted statement or one
//! explicit transaction, so whatever it returns has been committed. Chat messages go through
//! one writer ([`writer`]) that stores everything queued with one multi-row `INSERT` (group
//! commit) and answers each caller after that committed. Checks that decide between
//! nodes (a TOTP step, a scratch code, a failure count, a lease) are single conditional
//! statements, atomic under PostgreSQL's row locks.

pub(crate) mod schema;
pub(crate) mod writer;

use core::str::FromStr;
use core::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{PgConnection, PgPool, Row};

use super::model::{Cols, Pending, SanctionSet, i64_of, id_bound, u32_of, u64_of};
use super::{Account, AdminEvent, OnlineRow, Sanction, StoredMsg, TopicRow, sql};

pub use schema::MIGRATIONS;

/// Connections per node.
const POOL_SIZE: u32 = 16;

/// A query with its parameters bound in order.
macro_rules! q {
    ($sql:expr $(, $arg:expr)* $(,)?) => {
        sqlx::query($sql)$(.bind($arg))*
    };
}

impl Cols for PgRow {
    type Error = sqlx::Error;
    fn text(&self, i: usize) -> Result<String, sqlx::Error> {
        self.try_get(i)
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>, sqlx::Error> {
        self.try_get(i)
    }
    fn opt_bytes(&self, i: usize) -> Result<Option<Vec<u8>>, sqlx::Error> {
        self.try_get(i)
    }
}

/// The pool, and the writer of chat messages on it.
#[derive(Debug)]
pub(crate) struct Pg {
    pool: PgPool,
    writer: writer::Writer,
}

impl Pg {
    /// `SELECT 1` (the health check).
    pub(crate) async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    /// Connects and applies the migrations.
    pub(crate) async fn open(url: &str, node: &str) -> Result<Pg, sqlx::Error> {
        let options = PgConnectOptions::from_str(url)?.application_name(&format!("chatbox {node}"));
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        schema::migrate(&pool).await?;
        let writer = match writer::Writer::start(pool.clone()) {
            Ok(w) => w,
            Err(e) => {
                pool.close().await;
                return Err(sqlx::Error::Io(e));
            }
        };
        Ok(Pg { pool, writer })
    }

    /// Stores what the writer holds, then closes every connection.
    pub(crate) async fn close(&self) {
        self.writer.close();
        self.pool.close().await;
    }

    /// Start of `node`: what an earlier run of it held released, accounts with no logged-in
    /// connection anywhere marked offline, its lease written.
    pub(crate) async fn start_node(&self, node: &str, expires_ms: u64) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        release_node(&mut tx, node).await?;
        q!(sql::OFFLINE_SWEEP).execute(&mut *tx).await?;
        q!(sql::LEASE_PUT, node, i64_of(expires_ms))
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    pub(crate) async fn account(&self, user: &str) -> Result<Option<Account>, sqlx::Error> {
        let row = q!(sql::ACCOUNT, user).fetch_optional(&self.pool).await?;
        row.as_ref().map(Account::from_cols).transpose()
    }

    pub(crate) async fn accounts(&self) -> Result<Vec<Account>, sqlx::Error> {
        let rows = q!(sql::ACCOUNTS).fetch_all(&self.pool).await?;
        rows.iter().map(Account::from_cols).collect()
    }

    pub(crate) async fn insert_pending(&self, p: &Pending) -> Result<bool, sqlx::Error> {
        let q = q!(sql::INSERT_PENDING, &p.user, &p.phc, &p.ip_port, &p.sealed);
        let q = q.bind(i64_of(p.now_ms)).bind(&p.node);
        Ok(self.exec(q).await? == 1)
    }

    pub(crate) async fn confirm_registration(
        &self,
        user: &str,
        step: u64,
        scratch: &[[u8; 32]],
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let n = q!(sql::CONFIRM, user, i64_of(step))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n != 1 {
            return Ok(false);
        }
        q!(sql::SCRATCH_CLEAR, user).execute(&mut *tx).await?;
        for h in scratch {
            q!(sql::SCRATCH_ADD, user, &h[..]).execute(&mut *tx).await?;
        }
        q!(sql::CONFIRM_INVITE_ROLE, user).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Deletes the account (`pending_only`: only an unconfirmed registration) and its scratch
    /// codes; `true` if it existed.
    pub(crate) async fn delete_account(
        &self,
        user: &str,
        pending_only: bool,
    ) -> Result<bool, sqlx::Error> {
        let stmt = if pending_only {
            sql::DELETE_PENDING
        } else {
            sql::DELETE_ACCOUNT
        };
        let mut tx = self.pool.begin().await?;
        let n = q!(stmt, user).execute(&mut *tx).await?.rows_affected();
        if n > 0 || !pending_only {
            q!(sql::SCRATCH_CLEAR, user).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(n > 0)
    }

    pub(crate) async fn login_success(
        &self,
        user: &str,
        step: Option<u64>,
        ip_port: &str,
        node: &str,
        now_ms: u64,
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let n = q!(
            sql::LOGIN_SUCCESS,
            user,
            ip_port,
            step.map(i64_of),
            i64_of(now_ms)
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n != 1 {
            return Ok(false);
        }
        q!(sql::SEEN, user).execute(&mut *tx).await?;
        q!(sql::ONLINE_PUT, node, user, ip_port, "online")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    pub(crate) async fn login_failure(
        &self,
        user: &str,
        lock_after: u32,
        lock_until_ms: u64,
    ) -> Result<u32, sqlx::Error> {
        let n: Option<i64> = sqlx::query_scalar(sql::LOGIN_FAILURE)
            .bind(user)
            .bind(i64::from(lock_after))
            .bind(i64_of(lock_until_ms))
            .fetch_optional(&self.pool)
            .await?;
        Ok(n.map_or(0, u32_of))
    }

    /// Runs one statement; the rows it changed.
    /// The pool, for the statements of sibling modules (invites).
    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn exec(
        &self,
        q: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> Result<u64, sqlx::Error> {
        Ok(q.execute(&self.pool).await?.rows_affected())
    }

    pub(crate) async fn set_lock(&self, user: &str, until_ms: u64) -> Result<bool, sqlx::Error> {
        let n = if until_ms == 0 {
            self.exec(q!(sql::UNLOCK, user)).await?
        } else {
            self.exec(q!(sql::LOCK, user, i64_of(until_ms))).await?
        };
        Ok(n > 0)
    }

    pub(crate) async fn admin_event(
        &self,
        time_ms: u64,
        user: &str,
        action: &str,
        prune_before_ms: u64,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        q!(sql::ADMIN_EVENTS_PRUNE, i64_of(prune_before_ms))
            .execute(&mut *tx)
            .await?;
        q!(sql::ADMIN_EVENT_ADD, i64_of(time_ms), user, action)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    pub(crate) async fn admin_events(&self, since_ms: u64) -> Result<Vec<AdminEvent>, sqlx::Error> {
        let rows = q!(sql::ADMIN_EVENTS_SINCE, i64_of(since_ms))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(AdminEvent {
                    id: r.int(0)?,
                    user: r.text(1)?,
                    action: r.text(2)?,
                    time_ms: u64_of(r.int(3)?),
                })
            })
            .collect()
    }

    pub(crate) async fn set_role(&self, user: &str, role: &str) -> Result<bool, sqlx::Error> {
        Ok(self.exec(q!(sql::SET_ROLE, user, role)).await? > 0)
    }

    pub(crate) async fn reset_otp(&self, user: &str, sealed: &[u8]) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let n = q!(sql::RESET_OTP, user, sealed)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        q!(sql::SCRATCH_CLEAR, user).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(n > 0)
    }

    pub(crate) async fn use_scratch(
        &self,
        user: &str,
        hash: &[u8; 32],
    ) -> Result<bool, sqlx::Error> {
        Ok(self.exec(q!(sql::SCRATCH_USE, user, &hash[..])).await? == 1)
    }

    pub(crate) async fn scratch_left(&self, user: &str) -> Result<u32, sqlx::Error> {
        let n: i64 = sqlx::query_scalar(sql::SCRATCH_LEFT)
            .bind(user)
            .fetch_one(&self.pool)
            .await?;
        Ok(u32_of(n))
    }

    pub(crate) async fn set_offline(&self, user: &str, node: &str) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let n = q!(sql::SET_OFFLINE, user, node)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 1 {
            q!(sql::SEEN, user).execute(&mut *tx).await?;
        }
        tx.commit().await
    }

    pub(crate) async fn insert_offline(
        &self,
        m: &StoredMsg,
        cap: u32,
    ) -> Result<Option<u64>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        // One sender's messages to one recipient are counted under a lock on that pair, so
        // concurrent sends from several connections cannot overshoot the limit.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1 || ':' || $2))")
            .bind(&m.target)
            .bind(&m.sender)
            .execute(&mut *tx)
            .await?;
        let n: i64 = sqlx::query_scalar(sql::OFFLINE_COUNT)
            .bind(&m.target)
            .bind(&m.sender)
            .fetch_one(&mut *tx)
            .await?;
        if n >= i64::from(cap) {
            return Ok(None);
        }
        let q = sqlx::query_scalar(sql::MESSAGE_ADD).bind(i64_of(m.time_ms));
        let q = q.bind(&m.target).bind(&m.sender).bind(i64::from(m.kind));
        let id: i64 = q.bind(&m.text).fetch_one(&mut *tx).await?;
        tx.commit().await?;
        Ok(Some(u64_of(id)))
    }

    pub(crate) async fn set_online(&self, user: &str) -> Result<(), sqlx::Error> {
        self.exec(q!(sql::SET_ONLINE, user)).await.map(drop)
    }

    pub(crate) async fn online_put(
        &self,
        node: &str,
        client_id: &str,
        ip_port: &str,
        statut: &str,
    ) -> Result<(), sqlx::Error> {
        self.exec(q!(sql::ONLINE_PUT, node, client_id, ip_port, statut))
            .await
            .map(drop)
    }

    pub(crate) async fn online_remove(&self, node: &str, ip_port: &str) -> Result<(), sqlx::Error> {
        self.exec(q!(sql::ONLINE_REMOVE, node, ip_port))
            .await
            .map(drop)
    }

    pub(crate) async fn online_rows(&self) -> Result<Vec<OnlineRow>, sqlx::Error> {
        let rows = q!(sql::ONLINE_ROWS).fetch_all(&self.pool).await?;
        rows.iter().map(OnlineRow::from_cols).collect()
    }

    /// Stores `m` (its `id` is ignored) in the writer's next batch; returns its id once that
    /// committed.
    pub(crate) async fn insert_message(&self, m: StoredMsg) -> Result<u64, sqlx::Error> {
        self.writer.insert(m).await
    }

    pub(crate) async fn history(
        &self,
        me: &str,
        target: &str,
        before_id: u64,
        limit: u32,
    ) -> Result<Vec<StoredMsg>, sqlx::Error> {
        let (before, limit) = (id_bound(before_id), i64::from(limit));
        let q = if target.starts_with('#') {
            q!(sql::ROOM_HISTORY, target, before, limit)
        } else {
            q!(sql::PRIVATE_HISTORY, me, target, before, limit)
        };
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter().rev().map(StoredMsg::from_cols).collect()
    }

    pub(crate) async fn add_sanction(&self, x: &SanctionSet) -> Result<(), sqlx::Error> {
        let q = q!(
            x.kind.sql().put,
            &x.user,
            i64_of(x.until_ms),
            &x.reason,
            &x.by
        );
        self.exec(q.bind(i64_of(x.now_ms))).await.map(drop)
    }

    pub(crate) async fn remove_sanction(
        &self,
        s: Sanction,
        user: &str,
    ) -> Result<bool, sqlx::Error> {
        Ok(self.exec(q!(s.sql().remove, user)).await? > 0)
    }

    pub(crate) async fn active_sanction(
        &self,
        s: Sanction,
        user: &str,
        now_ms: u64,
    ) -> Result<Option<(u64, String)>, sqlx::Error> {
        let row = q!(s.sql().active, user, i64_of(now_ms))
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok((u64_of(r.int(0)?), r.text(1)?))).transpose()
    }

    pub(crate) async fn active_mutes(
        &self,
        now_ms: u64,
    ) -> Result<Vec<(String, u64)>, sqlx::Error> {
        let rows = q!(sql::MUTES.all_active, i64_of(now_ms))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.text(0)?, u64_of(r.int(1)?))))
            .collect()
    }

    pub(crate) async fn set_topic(&self, t: &TopicRow) -> Result<(), sqlx::Error> {
        let q = q!(
            sql::TOPIC_PUT,
            &t.room,
            &t.topic,
            &t.set_by,
            i64_of(t.time_ms)
        );
        self.exec(q).await.map(drop)
    }

    pub(crate) async fn topics(&self) -> Result<Vec<TopicRow>, sqlx::Error> {
        let rows = q!(sql::TOPICS).fetch_all(&self.pool).await?;
        rows.iter().map(TopicRow::from_cols).collect()
    }

    pub(crate) async fn setting(&self, key: &str) -> Result<Option<String>, sqlx::Error> {
        sqlx::query_scalar(sql::SETTING)
            .bind(key)
            .fetch_optional(&self.pool)
            .await
    }

    pub(crate) async fn set_setting(&self, key: &str, value: &str) -> Result<(), sqlx::Error> {
        self.exec(q!(sql::SETTING_PUT, key, value)).await.map(drop)
    }

    pub(crate) async fn heartbeat(&self, node: &str, expires_ms: u64) -> Result<bool, sqlx::Error> {
        let held = self
            .exec(q!(sql::LEASE_RENEW, node, i64_of(expires_ms)))
            .await?
            == 1;
        if !held {
            self.exec(q!(sql::LEASE_PUT, node, i64_of(expires_ms)))
                .await?;
        }
        Ok(held)
    }

    pub(crate) async fn leave(&self, node: &str) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        release_node(&mut tx, node).await?;
        q!(sql::LEASE_DELETE, node).execute(&mut *tx).await?;
        tx.commit().await
    }

    pub(crate) async fn reap_nodes(
        &self,
        node: &str,
        now_ms: u64,
    ) -> Result<Vec<String>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let dead: Vec<String> = sqlx::query_scalar(sql::LEASES_EXPIRED)
            .bind(node)
            .bind(i64_of(now_ms))
            .fetch_all(&mut *tx)
            .await?;
        for d in &dead {
            release_node(&mut tx, d).await?;
        }
        tx.commit().await?;
        Ok(dead)
    }
}

/// [`sql::RELEASE_NODE`] for `node`, inside the caller's transaction.
async fn release_node(c: &mut PgConnection, node: &str) -> Result<(), sqlx::Error> {
    for stmt in sql::RELEASE_NODE {
        q!(stmt, node).execute(&mut *c).await?;
    }
    Ok(())
}
