//! Storage behind one narrow API with two backends: embedded SQLite (the default, one writer
//! thread over one file) and PostgreSQL (scale-out: several nodes share one database). The
//! rest of the server calls [`Store`] only; which engine runs is chosen once, by [`Database`].
//!
//! Both backends run the same statements ([`sql`]) over the same schema concepts, and keep the
//! same guarantees: parameterised SQL only, and a call returns only after its change committed
//! (a chat message is acknowledged and fanned out only once stored). Every call logs its action
//! in `sql.log` (table, kind, non-secret keys; never passwords, hashes, codes or secrets).
//!
//! Scale-out: `ONLINE` rows belong to a node, and each node holds a lease in `NODES`
//! ([`Store::heartbeat`]); a node whose lease expired is reaped by the others
//! ([`Store::reap_nodes`]): its connections leave `ONLINE`, its users go offline unless they
//! are logged in elsewhere, and its unconfirmed registrations are discarded.

mod model;
pub mod postgres;
pub mod sql;
pub mod sqlite;

use core::fmt;
use core::str::FromStr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use model::{Account, OnlineRow, Sanction, StoredMsg, TopicRow};
use model::{Pending, SanctionSet};

use self::postgres::Pg;
use self::sqlite::Sqlite;
use self::sqlite::queries as lite;
use crate::logs::Logs;

/// How long a lease written at start lasts, in ms; a running node renews it with
/// [`Store::heartbeat`] well before it runs out.
pub const LEASE_MS: u64 = 15_000;

/// Storage errors.
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError {
    /// A SQLite statement failed.
    Sql(rusqlite::Error),
    /// A PostgreSQL statement or connection failed.
    Pg(sqlx::Error),
    /// The transaction did not commit; nothing was stored.
    Commit,
    /// The writer has stopped.
    Closed,
    /// A bad database location or node id.
    Config(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Sql(e) => write!(f, "database: {e}"),
            StoreError::Pg(e) => write!(f, "database: {e}"),
            StoreError::Commit => f.write_str("database: commit failed"),
            StoreError::Closed => f.write_str("database writer stopped"),
            StoreError::Config(e) => write!(f, "database: {e}"),
        }
    }
}

impl core::error::Error for StoreError {}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Sql(e)
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Pg(e)
    }
}

/// Where the data lives.
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    /// An SQLite file (created if missing).
    Sqlite(PathBuf),
    /// A PostgreSQL URL, `postgres://user:password@host:port/db`.
    Postgres(String),
}

impl Database {
    /// The default: `chatbox.db` in the data directory.
    #[must_use]
    pub fn default_in(data_dir: &Path) -> Database {
        Database::Sqlite(data_dir.join("chatbox.db"))
    }

    /// `postgres://…` or `postgresql://…` → PostgreSQL; `sqlite://PATH` or a plain path →
    /// SQLite. Errors never repeat a password.
    pub fn parse(s: &str) -> Result<Database, StoreError> {
        let bad = |why: &str| StoreError::Config(format!("{why}: {}", redact(s)));
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            sqlx::postgres::PgConnectOptions::from_str(s)
                .map_err(|e| bad(&format!("invalid PostgreSQL URL ({e})")))?;
            return Ok(Database::Postgres(s.to_owned()));
        }
        let path = s.strip_prefix("sqlite://").unwrap_or(s);
        if path.is_empty() {
            return Err(bad("empty database path"));
        }
        if path.contains("://") {
            return Err(bad(
                "unsupported database (use postgres://…, sqlite://PATH or a file path)",
            ));
        }
        Ok(Database::Sqlite(PathBuf::from(path)))
    }

    /// For logs and messages: the path, or the URL with its password replaced by `***`.
    #[must_use]
    pub fn redacted(&self) -> String {
        match self {
            Database::Sqlite(p) => p.display().to_string(),
            Database::Postgres(url) => redact(url),
        }
    }
}

impl FromStr for Database {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Database::parse(s)
    }
}

impl fmt::Display for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Database::Sqlite(p) => f.debug_tuple("Sqlite").field(p).finish(),
            Database::Postgres(_) => f.debug_tuple("Postgres").field(&self.redacted()).finish(),
        }
    }
}

/// `scheme://user:password@host/…?password=…` with both passwords shown as `***` (anything
/// without `://` as it is).
#[must_use]
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(auth_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => kv.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// The address part of `ip:port`.
fn host(ip_port: &str) -> &str {
    ip_port.rsplit_once(':').map_or(ip_port, |(h, _)| h)
}

/// Whether `s` can name a node: 1–64 of `A-Z a-z 0-9 _ . : -`.
#[must_use]
pub fn valid_node_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

#[derive(Debug)]
enum Backend {
    Sqlite(Sqlite),
    Postgres(Pg),
}

/// One row of `ADMIN_EVENTS`: an administrator's change for the running nodes to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminEvent {
    /// Row id (grows; PostgreSQL may commit a smaller one after a larger one).
    pub id: i64,
    /// The account.
    pub user: String,
    /// `role:op`, `role:user`, `lock`, `unlock`, `delete` or `reset-otp`.
    pub action: String,
    /// When the administrator's command wrote it (its machine's clock), ms.
    pub time_ms: u64,
}

/// How long administrators' changes stay in `ADMIN_EVENTS` (a day).
const ADMIN_EVENTS_KEPT_MS: u64 = 86_400_000;

/// The storage handle of one node.
#[derive(Debug)]
pub struct Store {
    backend: Backend,
    node: Arc<str>,
    logs: Option<Logs>,
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

/// Runs one call on the backend: `lite` (a closure over the SQLite connection, run by the
/// writer thread) or `pg` (a future on the pool); logs `what`, or its failure, in `sql.log`.
// The PostgreSQL futures (sqlx transactions) are up to ~18 KB, the SQLite ones a few hundred
// bytes: awaited inline, every `Store` call, and every request future above it (login,
// registration, chat commands, each boxed per request), would be ~19 KB even on SQLite. Boxed
// (one allocation per PostgreSQL call, next to a network round trip), they stay small.
macro_rules! run {
    ($self:ident, $what:expr, lite: $lite:expr, pg: |$p:ident| $pg:expr $(,)?) => {{
        let what: String = $what;
        let r = match &$self.backend {
            Backend::Sqlite(b) => b.call($lite).await,
            Backend::Postgres($p) => Box::pin($pg).await.map_err(StoreError::from),
        };
        $self.logged(what, r)
    }};
}

mod invites;
pub use invites::{Invite, InviteState, NewInvite, PendingInvite};

impl Store {
    /// Opens the database for a serving node: creates and migrates it, resets what this node
    /// held in an earlier run, writes its lease (for [`LEASE_MS`]), and loads what the server
    /// needs at start.
    ///
    /// SQLite (one node): `ONLINE` is recreated, every account goes offline, every unconfirmed
    /// registration is discarded. PostgreSQL (shared): only this node's `ONLINE` rows and
    /// unconfirmed registrations go, and accounts left with no logged-in connection on any
    /// node go offline.
    pub fn open(db: &Database, node_id: &str, logs: Logs) -> Result<(Store, Startup), StoreError> {
        Store::open_with_metrics(db, node_id, logs, crate::metrics::Metrics::off())
    }

    /// [`Store::open`], timing each SQLite writer transaction in `metrics`.
    pub fn open_with_metrics(
        db: &Database,
        node_id: &str,
        logs: Logs,
        metrics: crate::metrics::Metrics,
    ) -> Result<(Store, Startup), StoreError> {
        let store = Store::open_inner(db, node_id, Some(logs), true, metrics)?;
        let startup = smol::block_on(async {
            let now = crate::time::now_ms();
            if let Backend::Sqlite(_) = store.backend {
                store.heartbeat(now.saturating_add(LEASE_MS)).await?;
            }
            Ok::<_, StoreError>(Startup {
                topics: store.topics().await?,
                mutes: store.active_mutes(now).await?,
                motd: store.motd().await?,
            })
        });
        match startup {
            Ok(s) => Ok((store, s)),
            Err(e) => {
                store.close();
                Err(e)
            }
        }
    }

    /// Opens the database for the `user …` administration commands: created and migrated like
    /// [`Store::open`], but nothing reset (a server may be running on it) and nothing logged.
    pub fn open_admin(db: &Database) -> Result<Store, StoreError> {
        Store::open_inner(db, "admin", None, false, crate::metrics::Metrics::off())
    }

    fn open_inner(
        db: &Database,
        node_id: &str,
        logs: Option<Logs>,
        start: bool,
        metrics: crate::metrics::Metrics,
    ) -> Result<Store, StoreError> {
        if !valid_node_id(node_id) {
            return Err(StoreError::Config(format!(
                "invalid node id {node_id:?} (1-64 of A-Z a-z 0-9 _ . : -)"
            )));
        }
        let sql_log = |text: String| {
            if let Some(l) = &logs {
                l.sql(text);
            }
        };
        let backend = match db {
            Database::Sqlite(path) => {
                if let Some(dir) = path.parent().filter(|d| start && !d.as_os_str().is_empty()) {
                    crate::private::create_dir(dir).map_err(|e| {
                        StoreError::Config(format!("creating {}: {e}", dir.display()))
                    })?;
                }
                let b = Sqlite::open(path, start, logs.clone(), metrics)?;
                sql_log(format!("OPEN {} (WAL, migrations applied)", path.display()));
                if start {
                    sql_log("DROP+CREATE ONLINE; UPDATE REGISTERED online=ko; DELETE REGISTERED pending".to_owned());
                }
                Backend::Sqlite(b)
            }
            Database::Postgres(url) => {
                let pg = smol::block_on(async {
                    let pg = Pg::open(url, node_id).await?;
                    if start {
                        let lease = crate::time::now_ms().saturating_add(LEASE_MS);
                        if let Err(e) = pg.start_node(node_id, lease).await {
                            pg.close().await;
                            return Err(e);
                        }
                    }
                    Ok(pg)
                })
                .map_err(|e| {
                    sql_log(format!("OPEN {} FAILED: {e}", db.redacted()));
                    StoreError::Pg(e)
                })?;
                sql_log(format!("OPEN {} (migrations applied)", db.redacted()));
                if start {
                    sql_log(format!(
                        "DELETE ONLINE node={node_id}; DELETE REGISTERED pending node={node_id}; UPDATE REGISTERED online=ko (no ONLINE row); UPSERT NODES node={node_id}"
                    ));
                }
                Backend::Postgres(pg)
            }
        };
        Ok(Store {
            backend,
            node: Arc::from(node_id),
            logs,
        })
    }

    /// This node's id (the `node` of its `ONLINE` rows and lease).
    #[must_use]
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Stops the backend: the SQLite writer finishes what is queued and is joined; the
    /// PostgreSQL message writer stores what is queued and is joined, then the pool closes its
    /// connections.
    pub fn close(&self) {
        match &self.backend {
            Backend::Sqlite(b) => b.close(),
            Backend::Postgres(p) => smol::block_on(p.close()),
        }
    }

    /// [`Store::logged`] for statements a flood repeats: successes coalesced per `kind`.
    fn logged_coalesced<T>(
        &self,
        kind: &str,
        what: String,
        r: Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if let Some(logs) = &self.logs {
            match &r {
                Ok(_) => logs.sql_coalesced(kind, what),
                Err(e) => logs.sql(format!("{what} FAILED: {e}")),
            }
        }
        r
    }

    fn logged<T>(&self, what: String, r: Result<T, StoreError>) -> Result<T, StoreError> {
        if let Some(logs) = &self.logs {
            match &r {
                Ok(_) => logs.sql(what),
                Err(e) => logs.sql(format!("{what} FAILED: {e}")),
            }
        }
        r
    }

    /// One account.
    pub async fn account(&self, user: &str) -> Result<Option<Account>, StoreError> {
        let u = user.to_owned();
        run!(self, format!("SELECT REGISTERED user={user}"),
            lite: move |c| lite::account(c, &u),
            pg: |p| p.account(user))
    }

    /// Every account, by name.
    pub async fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        run!(self, "SELECT REGISTERED (all)".to_owned(),
            lite: lite::accounts,
            pg: |p| p.accounts())
    }

    /// A pending registration held by this node; `false` if the name is taken.
    pub async fn insert_pending(
        &self,
        user: &str,
        phc: String,
        sealed: Vec<u8>,
        ip_port: &str,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        let p = Pending {
            user: user.to_owned(),
            phc,
            sealed,
            ip_port: ip_port.to_owned(),
            now_ms,
            node: self.node.to_string(),
        };
        run!(self, format!("INSERT REGISTERED user={user} statut=ko ip_port={ip_port}"),
            lite: move |c| lite::insert_pending(c, &p),
            pg: |b| b.insert_pending(&p))
    }

    /// Activates a registration with its scratch code hashes; `false` if it is gone.
    pub async fn confirm_registration(
        &self,
        user: &str,
        step: u64,
        scratch: Vec<[u8; 32]>,
    ) -> Result<bool, StoreError> {
        let u = user.to_owned();
        let n = scratch.len();
        run!(self, format!("UPDATE REGISTERED user={user} statut=ok; INSERT SCRATCH user={user} count={n}"),
            lite: move |c| lite::confirm_registration(c, &u, step, &scratch),
            pg: |p| p.confirm_registration(user, step, &scratch))
    }

    /// Discards an unconfirmed registration.
    pub async fn delete_pending(&self, user: &str) -> Result<bool, StoreError> {
        let u = user.to_owned();
        run!(self, format!("DELETE REGISTERED user={user} (unconfirmed)"),
            lite: move |c| lite::delete_pending(c, &u),
            pg: |p| p.delete_account(user, true))
    }

    /// Deletes an account and its scratch codes; `true` if it existed.
    pub async fn delete_account(&self, user: &str) -> Result<bool, StoreError> {
        let u = user.to_owned();
        run!(self, format!("DELETE REGISTERED user={user}; DELETE SCRATCH user={user}"),
            lite: move |c| lite::delete_account(c, &u),
            pg: |p| p.delete_account(user, false))
    }

    /// Records a successful login (and the connection's `ONLINE` row shows the user); `false`
    /// (nothing changed) if `step` is no longer above the last accepted one, i.e. another
    /// login, on any node, used that code first.
    pub async fn login_success(
        &self,
        user: &str,
        step: Option<u64>,
        ip_port: &str,
    ) -> Result<bool, StoreError> {
        let (u, ip, n) = (user.to_owned(), ip_port.to_owned(), self.node.clone());
        let now = crate::time::now_ms();
        run!(self, format!("UPDATE REGISTERED user={user} online=ok ip_port_last={ip_port}; UPDATE ONLINE ip_port={ip_port} statut=online"),
            lite: move |c| lite::login_success(c, &u, step, &ip, &n, now),
            pg: |p| p.login_success(user, step, ip_port, &self.node, now))
    }

    /// Records a wrong code after the right password; returns how many in a row (locks at
    /// `lock_after`).
    pub async fn login_failure(
        &self,
        user: &str,
        lock_after: u32,
        lock_until_ms: u64,
    ) -> Result<u32, StoreError> {
        let u = user.to_owned();
        run!(self, format!("UPDATE REGISTERED user={user} failures+1"),
            lite: move |c| lite::login_failure(c, &u, lock_after, lock_until_ms),
            pg: |p| p.login_failure(user, lock_after, lock_until_ms))
    }

    /// Uses a scratch code; `true` if it was valid and unused (once, across nodes).
    pub async fn use_scratch(&self, user: &str, hash: [u8; 32]) -> Result<bool, StoreError> {
        let u = user.to_owned();
        run!(self, format!("UPDATE SCRATCH user={user} used=1"),
            lite: move |c| lite::use_scratch(c, &u, &hash),
            pg: |p| p.use_scratch(user, &hash))
    }

    /// Unused scratch codes left.
    pub async fn scratch_left(&self, user: &str) -> Result<u32, StoreError> {
        let u = user.to_owned();
        run!(self, format!("SELECT SCRATCH user={user} unused"),
            lite: move |c| lite::scratch_left(c, &u),
            pg: |p| p.scratch_left(user))
    }

    /// Locks until `until_ms`, or unlocks (0: failures reset too); `true` if the account exists.
    pub async fn set_lock(&self, user: &str, until_ms: u64) -> Result<bool, StoreError> {
        let u = user.to_owned();
        run!(self, format!("UPDATE REGISTERED user={user} locked_until={until_ms}"),
            lite: move |c| lite::set_lock(c, &u, until_ms),
            pg: |p| p.set_lock(user, until_ms))
    }

    /// Records an administrator's change to `user` (`action`: `role:op`, `role:user`, `lock`,
    /// `unlock`, `delete`, `reset-otp`) for the running nodes to apply to live sessions, and
    /// forgets changes older than a day.
    pub async fn admin_event(&self, user: &str, action: &str) -> Result<(), StoreError> {
        let (u, a) = (user.to_owned(), action.to_owned());
        let now = crate::time::now_ms();
        let prune = now.saturating_sub(ADMIN_EVENTS_KEPT_MS);
        run!(self, format!("INSERT ADMIN_EVENTS user={user} action={action}; DELETE ADMIN_EVENTS (older than a day)"),
            lite: move |c| lite::admin_event(c, now, &u, &a, prune),
            pg: |p| p.admin_event(now, user, action, prune))
    }

    /// Administrators' changes written at or after `since_ms`, by id.
    /// Polled about once a second, so only a poll that finds something is logged in sql.log.
    pub async fn admin_events(&self, since_ms: u64) -> Result<Vec<AdminEvent>, StoreError> {
        let r = match &self.backend {
            Backend::Sqlite(b) => b.call(move |c| lite::admin_events(c, since_ms)).await,
            Backend::Postgres(p) => Box::pin(p.admin_events(since_ms))
                .await
                .map_err(StoreError::from),
        };
        match &r {
            Ok(v) if v.is_empty() => r,
            Ok(v) => {
                let n = v.len();
                self.logged(format!("SELECT ADMIN_EVENTS ({n} rows)"), r)
            }
            Err(_) => self.logged("SELECT ADMIN_EVENTS".to_owned(), r),
        }
    }

    /// Sets the role; `true` if the account exists.
    pub async fn set_role(&self, user: &str, role: &str) -> Result<bool, StoreError> {
        let (u, r) = (user.to_owned(), role.to_owned());
        run!(self, format!("UPDATE REGISTERED user={user} role={role}"),
            lite: move |c| lite::set_role(c, &u, &r),
            pg: |p| p.set_role(user, role))
    }

    /// A new sealed TOTP secret: pending (statut `ko`) until the next login, step cleared,
    /// scratch codes removed; `true` if the account exists.
    pub async fn reset_otp(&self, user: &str, sealed: Vec<u8>) -> Result<bool, StoreError> {
        let u = user.to_owned();
        run!(self, format!("UPDATE REGISTERED user={user} new TOTP secret statut=ko; DELETE SCRATCH user={user}"),
            lite: move |c| lite::reset_otp(c, &u, &sealed),
            pg: |p| p.reset_otp(user, &sealed))
    }

    /// Marks an account offline, unless it is logged in on another node (this node's own
    /// connections are the caller's to count).
    pub async fn set_offline(&self, user: &str) -> Result<(), StoreError> {
        let (u, n) = (user.to_owned(), self.node.clone());
        run!(self, format!("UPDATE REGISTERED user={user} online=ko"),
            lite: move |c| lite::set_offline(c, &u, &n),
            pg: |p| p.set_offline(user, &self.node))
    }

    /// A connection of this node in `ONLINE` (`anonyme` until login). Logged coalesced per
    /// address (anyone can open connections at will).
    pub async fn online_insert(&self, client_id: &str, ip_port: &str) -> Result<(), StoreError> {
        let (id, ip, n) = (client_id.to_owned(), ip_port.to_owned(), self.node.clone());
        let r = match &self.backend {
            Backend::Sqlite(b) => {
                b.call(move |c| lite::online_put(c, &n, &id, &ip, "anonyme"))
                    .await
            }
            Backend::Postgres(p) => {
                Box::pin(p.online_put(&self.node, client_id, ip_port, "anonyme"))
                    .await
                    .map_err(StoreError::from)
            }
        };
        let what = format!("INSERT ONLINE client_id={client_id} ip_port={ip_port} statut=anonyme");
        self.logged_coalesced(&format!("INSERT ONLINE from {}", host(ip_port)), what, r)
    }

    /// A connection of this node written into `ONLINE` again with its state, its user marked
    /// online if it is logged in: after other nodes reaped this node while it was alive (its
    /// lease renewal came too late), so the shared tables say again who is here.
    pub async fn online_restore(
        &self,
        client_id: &str,
        ip_port: &str,
        user: Option<&str>,
    ) -> Result<(), StoreError> {
        let statut = if user.is_some() { "online" } else { "anonyme" };
        let (id, ip, n, u) = (
            client_id.to_owned(),
            ip_port.to_owned(),
            self.node.clone(),
            user.map(str::to_owned),
        );
        run!(self, format!("INSERT ONLINE client_id={client_id} ip_port={ip_port} statut={statut} (restored)"),
        lite: move |c| {
            lite::online_put(c, &n, &id, &ip, statut)?;
            match &u {
                Some(u) => lite::set_online(c, u),
                None => Ok(()),
            }
        },
        pg: |p| async {
            p.online_put(&self.node, client_id, ip_port, statut).await?;
            match user {
                Some(u) => p.set_online(u).await,
                None => Ok(()),
            }
        })
    }

    /// A connection of this node gone from `ONLINE`. Logged coalesced per address.
    pub async fn online_remove(&self, ip_port: &str) -> Result<(), StoreError> {
        let (ip, n) = (ip_port.to_owned(), self.node.clone());
        let r = match &self.backend {
            Backend::Sqlite(b) => b.call(move |c| lite::online_remove(c, &n, &ip)).await,
            Backend::Postgres(p) => Box::pin(p.online_remove(&self.node, ip_port))
                .await
                .map_err(StoreError::from),
        };
        let what = format!("DELETE ONLINE ip_port={ip_port}");
        self.logged_coalesced(&format!("DELETE ONLINE from {}", host(ip_port)), what, r)
    }

    /// The whole `ONLINE` table, every node's rows.
    pub async fn online_rows(&self) -> Result<Vec<OnlineRow>, StoreError> {
        run!(self, "SELECT ONLINE (all)".to_owned(),
            lite: lite::online_rows,
            pg: |p| p.online_rows())
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
        let m = StoredMsg {
            id: 0,
            time_ms,
            target: target.to_owned(),
            sender: sender.to_owned(),
            kind,
            text: text.to_owned(),
        };
        run!(self, format!("INSERT MESSAGES target={target} sender={sender} kind={kind}"),
            lite: move |c| lite::insert_message(c, &m),
            pg: |p| p.insert_message(m))
    }

    /// Stores a private message for an offline recipient (`target`), unless `target` already
    /// holds `cap` messages from `sender` stored since it was last seen online; `None` then,
    /// and nothing is stored.
    pub async fn insert_offline(
        &self,
        time_ms: u64,
        target: &str,
        sender: &str,
        kind: u8,
        text: &str,
        cap: u32,
    ) -> Result<Option<u64>, StoreError> {
        let m = StoredMsg {
            id: 0,
            time_ms,
            target: target.to_owned(),
            sender: sender.to_owned(),
            kind,
            text: text.to_owned(),
        };
        run!(self, format!("INSERT MESSAGES target={target} sender={sender} kind={kind} (offline, at most {cap})"),
            lite: move |c| lite::insert_offline(c, &m, cap),
            pg: |p| p.insert_offline(&m, cap))
    }

    /// History of a room (`#…`) or of the private conversation of `me` with a user: the newest
    /// `limit` messages with an id below `before_id` (0 = newest), oldest first.
    pub async fn history(
        &self,
        me: &str,
        target: &str,
        before_id: u64,
        limit: u32,
    ) -> Result<Vec<StoredMsg>, StoreError> {
        let (m, t) = (me.to_owned(), target.to_owned());
        run!(self, format!("SELECT MESSAGES target={target} before={before_id} limit={limit}"),
            lite: move |c| lite::history(c, &m, &t, before_id, limit),
            pg: |p| p.history(me, target, before_id, limit))
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
        let x = SanctionSet {
            kind: s,
            user: user.to_owned(),
            until_ms,
            reason: reason.to_owned(),
            by: by.to_owned(),
            now_ms,
        };
        run!(self, format!("INSERT {} user={user} until_ms={until_ms} by={by}", s.table()),
            lite: move |c| lite::add_sanction(c, &x),
            pg: |p| p.add_sanction(&x))
    }

    /// Lifts a ban or mute.
    pub async fn remove_sanction(&self, s: Sanction, user: &str) -> Result<bool, StoreError> {
        let u = user.to_owned();
        run!(self, format!("DELETE {} user={user}", s.table()),
            lite: move |c| lite::remove_sanction(c, s, &u),
            pg: |p| p.remove_sanction(s, user))
    }

    /// The ban or mute in force.
    pub async fn active_sanction(
        &self,
        s: Sanction,
        user: &str,
        now_ms: u64,
    ) -> Result<Option<(u64, String)>, StoreError> {
        let u = user.to_owned();
        run!(self, format!("SELECT {} user={user}", s.table()),
            lite: move |c| lite::active_sanction(c, s, &u, now_ms),
            pg: |p| p.active_sanction(s, user, now_ms))
    }

    /// Every mute in force at `now_ms`: `(user, until_ms)`.
    pub async fn active_mutes(&self, now_ms: u64) -> Result<Vec<(String, u64)>, StoreError> {
        run!(self, "SELECT MUTES (in force)".to_owned(),
            lite: move |c| lite::active_mutes(c, now_ms),
            pg: |p| p.active_mutes(now_ms))
    }

    /// Sets a topic.
    pub async fn set_topic(&self, t: TopicRow) -> Result<(), StoreError> {
        run!(self, format!("INSERT TOPICS room={} set_by={}", t.room, t.set_by),
            lite: move |c| lite::set_topic(c, &t),
            pg: |p| p.set_topic(&t))
    }

    /// Every room topic.
    pub async fn topics(&self) -> Result<Vec<TopicRow>, StoreError> {
        run!(self, "SELECT TOPICS".to_owned(),
            lite: lite::topics,
            pg: |p| p.topics())
    }

    /// Whether the database answers a trivial query (the health check; not logged).
    pub async fn ping(&self) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(b) => b.call(|c| c.query_row("SELECT 1", [], |_| Ok(()))).await,
            Backend::Postgres(p) => Box::pin(p.ping()).await.map_err(StoreError::from),
        }
    }

    /// The MOTD an operator set, if any.
    pub async fn motd(&self) -> Result<Option<String>, StoreError> {
        run!(self, "SELECT SETTINGS key=motd".to_owned(),
            lite: |c| lite::setting(c, "motd"),
            pg: |p| p.setting("motd"))
    }

    /// Sets the MOTD.
    pub async fn set_motd(&self, text: &str) -> Result<(), StoreError> {
        let t = text.to_owned();
        run!(self, "INSERT SETTINGS key=motd".to_owned(),
            lite: move |c| lite::set_setting(c, "motd", &t),
            pg: |p| p.set_setting("motd", text))
    }

    /// Renews this node's lease until `expires_ms`. `false` if the lease had been reaped
    /// (another node found it expired and released this node's `ONLINE` rows and pending
    /// registrations); the lease is written again either way.
    pub async fn heartbeat(&self, expires_ms: u64) -> Result<bool, StoreError> {
        let n = self.node.clone();
        run!(self, format!("UPSERT NODES node={} expires_ms={expires_ms}", self.node),
            lite: move |c| lite::heartbeat(c, &n, expires_ms),
            pg: |p| p.heartbeat(&self.node, expires_ms))
    }

    /// A clean stop of this node, before [`Store::close`]: in one transaction its `ONLINE` rows
    /// and unconfirmed registrations go, its users go offline unless logged in on another
    /// node, and its lease is deleted, so the others need not wait for it to expire.
    pub async fn leave(&self) -> Result<(), StoreError> {
        let n = self.node.clone();
        run!(self, format!("DELETE ONLINE, REGISTERED pending, NODES node={}", self.node),
            lite: move |c| lite::leave(c, &n),
            pg: |p| p.leave(&self.node))
    }

    /// Reaps every other node whose lease expired before `now_ms`, in one transaction: its
    /// `ONLINE` rows and unconfirmed registrations deleted, its users offline unless logged in
    /// on another node, its lease deleted. Returns the reaped node ids (each reaped by one node
    /// only, when several reap at once).
    pub async fn reap_nodes(&self, now_ms: u64) -> Result<Vec<String>, StoreError> {
        let n = self.node.clone();
        let r = match &self.backend {
            Backend::Sqlite(b) => b.call(move |c| lite::reap_nodes(c, &n, now_ms)).await,
            Backend::Postgres(p) => Box::pin(p.reap_nodes(&self.node, now_ms))
                .await
                .map_err(StoreError::from),
        };
        let what = match &r {
            Ok(dead) if !dead.is_empty() => format!(
                "DELETE NODES expired before {now_ms}: {}; DELETE ONLINE, REGISTERED pending of those nodes",
                dead.join(",")
            ),
            _ => format!("DELETE NODES expired before {now_ms}"),
        };
        self.logged(what, r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_locations() {
        assert_eq!(
            Database::parse("postgres://u:p@h:5432/db").ok(),
            Some(Database::Postgres("postgres://u:p@h:5432/db".into()))
        );
        assert!(matches!(
            Database::parse("postgresql://h/db"),
            Ok(Database::Postgres(_))
        ));
        assert_eq!(
            Database::parse("sqlite:///tmp/x.db").ok(),
            Some(Database::Sqlite("/tmp/x.db".into()))
        );
        assert_eq!(
            Database::parse("data/x.db").ok(),
            Some(Database::Sqlite("data/x.db".into()))
        );
        assert!(Database::parse("").is_err());
        assert!(Database::parse("sqlite://").is_err());
        let e = Database::parse("mysql://root:hunter2@h/db")
            .err()
            .map(|e| e.to_string());
        assert!(
            e.as_deref()
                .is_some_and(|e| e.contains("root:***@h") && !e.contains("hunter2")),
            "{e:?}"
        );
        let e = Database::parse("postgres://u:hunter2@h:notaport/db")
            .err()
            .map(|e| e.to_string());
        assert!(
            e.as_deref().is_some_and(|e| !e.contains("hunter2")),
            "{e:?}"
        );
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("postgres://chatbox:s3cret@127.0.0.1:5432/chatbox"),
            "postgres://chatbox:***@127.0.0.1:5432/chatbox"
        );
        assert_eq!(redact("postgres://chatbox@h/db"), "postgres://chatbox@h/db");
        assert_eq!(
            redact("postgres://h/db?user=a&password=s3cret&sslmode=disable"),
            "postgres://h/db?user=a&password=***&sslmode=disable"
        );
        assert_eq!(redact("postgres://u:p@ss@h/db"), "postgres://u:***@h/db");
        let db = Database::Postgres("postgres://u:s3cret@h/db".into());
        assert!(!format!("{db} {db:?}").contains("s3cret"));
    }

    #[test]
    fn node_ids() {
        assert!(valid_node_id("host:6001"));
        assert!(valid_node_id("a.b-c_D:1"));
        assert!(!valid_node_id(""));
        assert!(!valid_node_id("a b"));
        assert!(!valid_node_id(&"x".repeat(65)));
        assert!(valid_node_id(&"x".repeat(64)));
    }
}
