//! The SQL, as plain functions over a connection: the writer thread runs them for the server,
//! the admin commands call them directly. Parameterised statements only.

use rusqlite::{Connection, OptionalExtension, params};

/// An account row.
#[derive(Debug, Clone)]
pub struct Account {
    /// Normalised user name.
    pub user: String,
    /// PHC password hash.
    pub password: String,
    /// Last address a login came from.
    pub ip_port_last: String,
    /// `ok` (active) or `ko` (pending).
    pub statut: String,
    /// `ok` while logged in.
    pub online: String,
    /// Sealed TOTP secret.
    pub totp_sealed: Vec<u8>,
    /// Last accepted TOTP step.
    pub totp_last_step: Option<u64>,
    /// `user` or `op`.
    pub role: String,
    /// Consecutive failed logins.
    pub failures: u32,
    /// Locked until this Unix time in ms (0 = not locked).
    pub locked_until: u64,
    /// Creation time, Unix ms.
    pub created: u64,
    /// A registration not yet confirmed on its connection.
    pub pending_reg: bool,
}

/// A stored chat message.
#[derive(Debug, Clone)]
pub struct StoredMsg {
    /// Row id.
    pub id: u64,
    /// Unix ms.
    pub time_ms: u64,
    /// Room, or recipient user for private messages.
    pub target: String,
    /// Sender.
    pub sender: String,
    /// `MessageKind` as a number.
    pub kind: u8,
    /// Sanitised text.
    pub text: String,
}

/// A room topic.
#[derive(Debug, Clone)]
pub struct TopicRow {
    /// Room.
    pub room: String,
    /// Topic text.
    pub topic: String,
    /// Who set it.
    pub set_by: String,
    /// When, Unix ms.
    pub time_ms: u64,
}

fn u64_of(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

const ACCOUNT_COLUMNS: &str = "User, password, ip_port_last, statut, online, totp_sealed, totp_last_step, role, failures, locked_until, created, pending_reg";

fn account_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Account> {
    Ok(Account {
        user: r.get(0)?,
        password: r.get(1)?,
        ip_port_last: r.get(2)?,
        statut: r.get(3)?,
        online: r.get(4)?,
        totp_sealed: r.get::<_, Option<Vec<u8>>>(5)?.unwrap_or_default(),
        totp_last_step: r.get::<_, Option<i64>>(6)?.map(u64_of),
        role: r.get(7)?,
        failures: u32::try_from(r.get::<_, i64>(8)?).unwrap_or(u32::MAX),
        locked_until: u64_of(r.get(9)?),
        created: u64_of(r.get(10)?),
        pending_reg: r.get::<_, i64>(11)? != 0,
    })
}

/// One account.
pub fn account(c: &Connection, user: &str) -> rusqlite::Result<Option<Account>> {
    c.query_row(
        &format!("SELECT {ACCOUNT_COLUMNS} FROM REGISTERED WHERE User = ?1"),
        params![user],
        account_row,
    )
    .optional()
}

/// Every account, by name.
pub fn accounts(c: &Connection) -> rusqlite::Result<Vec<Account>> {
    let mut st = c.prepare(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM REGISTERED ORDER BY User"
    ))?;
    let rows = st.query_map([], account_row)?;
    rows.collect()
}

/// Inserts a pending registration; `false` if the name is taken.
pub fn insert_pending(
    c: &Connection,
    user: &str,
    phc: &str,
    sealed: &[u8],
    ip_port: &str,
    now_ms: u64,
) -> rusqlite::Result<bool> {
    let n = c.execute(
        "INSERT OR IGNORE INTO REGISTERED (User, password, ip_port_last, statut, online, totp_sealed, role, created, pending_reg)
         VALUES (?1, ?2, ?3, 'ko', 'ko', ?4, 'user', ?5, 1)",
        params![user, phc, ip_port, sealed, i64_of(now_ms)],
    )?;
    Ok(n == 1)
}

/// Activates a registration: statut `ok`, the confirming step used, the scratch codes stored.
pub fn confirm_registration(
    c: &Connection,
    user: &str,
    step: u64,
    scratch_hashes: &[[u8; 32]],
) -> rusqlite::Result<bool> {
    let n = c.execute(
        "UPDATE REGISTERED SET statut = 'ok', pending_reg = 0, totp_last_step = ?2 WHERE User = ?1",
        params![user, i64_of(step)],
    )?;
    replace_scratch(c, user, scratch_hashes)?;
    Ok(n == 1)
}

/// Replaces a user's scratch codes.
pub fn replace_scratch(
    c: &Connection,
    user: &str,
    scratch_hashes: &[[u8; 32]],
) -> rusqlite::Result<()> {
    c.execute("DELETE FROM SCRATCH WHERE User = ?1", params![user])?;
    let mut st =
        c.prepare("INSERT OR IGNORE INTO SCRATCH (User, code_hash, used) VALUES (?1, ?2, 0)")?;
    for h in scratch_hashes {
        st.execute(params![user, &h[..]])?;
    }
    Ok(())
}

/// Deletes a registration that was never confirmed; `true` if one was.
pub fn delete_pending(c: &Connection, user: &str) -> rusqlite::Result<bool> {
    let n = c.execute(
        "DELETE FROM REGISTERED WHERE User = ?1 AND pending_reg = 1",
        params![user],
    )?;
    if n > 0 {
        c.execute("DELETE FROM SCRATCH WHERE User = ?1", params![user])?;
    }
    Ok(n > 0)
}

/// Deletes an account and everything attached to it; `true` if it existed.
pub fn delete_account(c: &Connection, user: &str) -> rusqlite::Result<bool> {
    let n = c.execute("DELETE FROM REGISTERED WHERE User = ?1", params![user])?;
    c.execute("DELETE FROM SCRATCH WHERE User = ?1", params![user])?;
    Ok(n > 0)
}

/// A successful login: failures reset, step stored, online.
pub fn login_success(
    c: &Connection,
    user: &str,
    step: Option<u64>,
    ip_port: &str,
) -> rusqlite::Result<bool> {
    // The step condition makes "verify, then record the step" atomic: of two logins racing
    // with the same TOTP code, only the first to reach the writer gets in.
    let n = c.execute(
        "UPDATE REGISTERED SET failures = 0, locked_until = 0, statut = 'ok', online = 'ok', ip_port_last = ?2,
         totp_last_step = COALESCE(?3, totp_last_step)
         WHERE User = ?1 AND (?3 IS NULL OR totp_last_step IS NULL OR totp_last_step < ?3)",
        params![user, ip_port, step.map(i64_of)],
    )?;
    Ok(n == 1)
}

/// A failed login: one more failure, locked when `lock_after` is reached. Returns the count.
pub fn login_failure(
    c: &Connection,
    user: &str,
    lock_after: u32,
    lock_until_ms: u64,
) -> rusqlite::Result<u32> {
    c.execute(
        "UPDATE REGISTERED SET failures = failures + 1,
         locked_until = CASE WHEN failures + 1 >= ?2 THEN ?3 ELSE locked_until END
         WHERE User = ?1",
        params![user, i64::from(lock_after), i64_of(lock_until_ms)],
    )?;
    let n: Option<i64> = c
        .query_row(
            "SELECT failures FROM REGISTERED WHERE User = ?1",
            params![user],
            |r| r.get(0),
        )
        .optional()?;
    Ok(n.and_then(|n| u32::try_from(n).ok()).unwrap_or(0))
}

/// Locks (`until_ms` > now) or unlocks (0, failures reset) an account; `true` if it exists.
pub fn set_lock(c: &Connection, user: &str, until_ms: u64) -> rusqlite::Result<bool> {
    let n = if until_ms == 0 {
        c.execute(
            "UPDATE REGISTERED SET locked_until = 0, failures = 0 WHERE User = ?1",
            params![user],
        )?
    } else {
        c.execute(
            "UPDATE REGISTERED SET locked_until = ?2 WHERE User = ?1",
            params![user, i64_of(until_ms)],
        )?
    };
    Ok(n > 0)
}

/// Sets the role; `true` if the account exists.
pub fn set_role(c: &Connection, user: &str, role: &str) -> rusqlite::Result<bool> {
    Ok(c.execute(
        "UPDATE REGISTERED SET role = ?2 WHERE User = ?1",
        params![user, role],
    )? > 0)
}

/// New TOTP secret, back to pending (statut `ko`, step cleared, scratch codes removed).
pub fn reset_otp(c: &Connection, user: &str, sealed: &[u8]) -> rusqlite::Result<bool> {
    let n = c.execute(
        "UPDATE REGISTERED SET totp_sealed = ?2, totp_last_step = NULL, statut = 'ko' WHERE User = ?1",
        params![user, sealed],
    )?;
    c.execute("DELETE FROM SCRATCH WHERE User = ?1", params![user])?;
    Ok(n > 0)
}

/// Marks a scratch code used; `true` if it existed unused.
pub fn use_scratch(c: &Connection, user: &str, hash: &[u8; 32]) -> rusqlite::Result<bool> {
    Ok(c.execute(
        "UPDATE SCRATCH SET used = 1 WHERE User = ?1 AND code_hash = ?2 AND used = 0",
        params![user, &hash[..]],
    )? == 1)
}

/// Unused scratch codes left.
pub fn scratch_left(c: &Connection, user: &str) -> rusqlite::Result<u32> {
    let n: i64 = c.query_row(
        "SELECT COUNT(*) FROM SCRATCH WHERE User = ?1 AND used = 0",
        params![user],
        |r| r.get(0),
    )?;
    Ok(u32::try_from(n).unwrap_or(0))
}

/// Marks an account offline.
pub fn set_offline(c: &Connection, user: &str) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE REGISTERED SET online = 'ko' WHERE User = ?1",
        params![user],
    )?;
    Ok(())
}

/// A new connection in `ONLINE`.
pub fn online_insert(
    c: &Connection,
    client_id: &str,
    ip_port: &str,
    statut: &str,
) -> rusqlite::Result<()> {
    c.execute(
        "INSERT OR REPLACE INTO ONLINE (Client_Id, ip_port, statut) VALUES (?1, ?2, ?3)",
        params![client_id, ip_port, statut],
    )?;
    Ok(())
}

/// A connection left `ONLINE`.
pub fn online_remove(c: &Connection, ip_port: &str) -> rusqlite::Result<()> {
    c.execute("DELETE FROM ONLINE WHERE ip_port = ?1", params![ip_port])?;
    Ok(())
}

/// The `ONLINE` table.
pub fn online_rows(c: &Connection) -> rusqlite::Result<Vec<(String, String, String)>> {
    let mut st = c.prepare("SELECT Client_Id, ip_port, statut FROM ONLINE ORDER BY Client_Id")?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    rows.collect()
}

/// Stores a chat message; returns its id.
pub fn insert_message(
    c: &Connection,
    time_ms: u64,
    target: &str,
    sender: &str,
    kind: u8,
    text: &str,
) -> rusqlite::Result<u64> {
    c.execute(
        "INSERT INTO MESSAGES (time_ms, target, sender, kind, text) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![i64_of(time_ms), target, sender, i64::from(kind), text],
    )?;
    Ok(u64_of(c.last_insert_rowid()))
}

fn msg_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredMsg> {
    Ok(StoredMsg {
        id: u64_of(r.get(0)?),
        time_ms: u64_of(r.get(1)?),
        target: r.get(2)?,
        sender: r.get(3)?,
        kind: u8::try_from(r.get::<_, i64>(4)?).unwrap_or(0),
        text: r.get(5)?,
    })
}

/// The exclusive upper bound on message ids for a history request (`before_id` 0 = newest).
fn id_bound(before_id: u64) -> i64 {
    if before_id == 0 {
        i64::MAX
    } else {
        i64_of(before_id)
    }
}

/// Rows fetched newest first (`ORDER BY id DESC LIMIT n`), returned oldest first.
fn oldest_first(
    rows: impl Iterator<Item = rusqlite::Result<StoredMsg>>,
) -> rusqlite::Result<Vec<StoredMsg>> {
    let mut v: Vec<StoredMsg> = rows.collect::<rusqlite::Result<_>>()?;
    v.reverse();
    Ok(v)
}

/// The newest `limit` messages of a room with an id below `before_id` (0 = newest), oldest first.
pub fn room_history(
    c: &Connection,
    room: &str,
    before_id: u64,
    limit: u32,
) -> rusqlite::Result<Vec<StoredMsg>> {
    let before = id_bound(before_id);
    let mut st = c.prepare(
        "SELECT id, time_ms, target, sender, kind, text FROM MESSAGES
         WHERE target = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3",
    )?;
    let rows = st.query_map(params![room, before, i64::from(limit)], msg_row)?;
    oldest_first(rows)
}

/// The private conversation between `a` and `b`, like [`room_history`].
pub fn private_history(
    c: &Connection,
    a: &str,
    b: &str,
    before_id: u64,
    limit: u32,
) -> rusqlite::Result<Vec<StoredMsg>> {
    let before = id_bound(before_id);
    let mut st = c.prepare(
        "SELECT id, time_ms, target, sender, kind, text FROM MESSAGES
         WHERE ((sender = ?1 AND target = ?2) OR (sender = ?2 AND target = ?1)) AND id < ?3
         ORDER BY id DESC LIMIT ?4",
    )?;
    let rows = st.query_map(params![a, b, before, i64::from(limit)], msg_row)?;
    oldest_first(rows)
}

/// Bans or mutes (`table` is `BANS` or `MUTES`, chosen by the caller, never from input).
fn set_sanction(
    c: &Connection,
    table: Sanction,
    user: &str,
    until_ms: u64,
    reason: &str,
    by: &str,
    now_ms: u64,
) -> rusqlite::Result<()> {
    let sql = match table {
        Sanction::Ban => {
            "INSERT OR REPLACE INTO BANS (User, until_ms, reason, by, time_ms) VALUES (?1, ?2, ?3, ?4, ?5)"
        }
        Sanction::Mute => {
            "INSERT OR REPLACE INTO MUTES (User, until_ms, reason, by, time_ms) VALUES (?1, ?2, ?3, ?4, ?5)"
        }
    };
    c.execute(
        sql,
        params![user, i64_of(until_ms), reason, by, i64_of(now_ms)],
    )?;
    Ok(())
}

/// Which moderation table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sanction {
    /// `BANS`: refused at login.
    Ban,
    /// `MUTES`: may not speak.
    Mute,
}

impl Sanction {
    /// Table name, for logs.
    #[must_use]
    pub fn table(self) -> &'static str {
        match self {
            Sanction::Ban => "BANS",
            Sanction::Mute => "MUTES",
        }
    }
}

/// Adds a ban or mute (`until_ms` 0 = permanent).
pub fn add_sanction(
    c: &Connection,
    s: Sanction,
    user: &str,
    until_ms: u64,
    reason: &str,
    by: &str,
    now_ms: u64,
) -> rusqlite::Result<()> {
    set_sanction(c, s, user, until_ms, reason, by, now_ms)
}

/// Lifts a ban or mute; `true` if there was one.
pub fn remove_sanction(c: &Connection, s: Sanction, user: &str) -> rusqlite::Result<bool> {
    let sql = match s {
        Sanction::Ban => "DELETE FROM BANS WHERE User = ?1",
        Sanction::Mute => "DELETE FROM MUTES WHERE User = ?1",
    };
    Ok(c.execute(sql, params![user])? > 0)
}

/// The ban or mute of `user` in force at `now_ms`: `(until_ms, reason)`.
pub fn active_sanction(
    c: &Connection,
    s: Sanction,
    user: &str,
    now_ms: u64,
) -> rusqlite::Result<Option<(u64, String)>> {
    let sql = match s {
        Sanction::Ban => {
            "SELECT until_ms, reason FROM BANS WHERE User = ?1 AND (until_ms = 0 OR until_ms > ?2)"
        }
        Sanction::Mute => {
            "SELECT until_ms, reason FROM MUTES WHERE User = ?1 AND (until_ms = 0 OR until_ms > ?2)"
        }
    };
    c.query_row(sql, params![user, i64_of(now_ms)], |r| {
        Ok((u64_of(r.get(0)?), r.get(1)?))
    })
    .optional()
}

/// Every mute in force: `(user, until_ms)`.
pub fn active_mutes(c: &Connection, now_ms: u64) -> rusqlite::Result<Vec<(String, u64)>> {
    let mut st =
        c.prepare("SELECT User, until_ms FROM MUTES WHERE until_ms = 0 OR until_ms > ?1")?;
    let rows = st.query_map(params![i64_of(now_ms)], |r| {
        Ok((r.get(0)?, u64_of(r.get(1)?)))
    })?;
    rows.collect()
}

/// Sets a room topic.
pub fn set_topic(c: &Connection, t: &TopicRow) -> rusqlite::Result<()> {
    c.execute(
        "INSERT OR REPLACE INTO TOPICS (room, topic, set_by, time_ms) VALUES (?1, ?2, ?3, ?4)",
        params![t.room, t.topic, t.set_by, i64_of(t.time_ms)],
    )?;
    Ok(())
}

/// All topics.
pub fn topics(c: &Connection) -> rusqlite::Result<Vec<TopicRow>> {
    let mut st = c.prepare("SELECT room, topic, set_by, time_ms FROM TOPICS")?;
    let rows = st.query_map([], |r| {
        Ok(TopicRow {
            room: r.get(0)?,
            topic: r.get(1)?,
            set_by: r.get(2)?,
            time_ms: u64_of(r.get(3)?),
        })
    })?;
    rows.collect()
}

/// Reads a setting.
pub fn setting(c: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    c.query_row(
        "SELECT value FROM SETTINGS WHERE key = ?1",
        params![key],
        |r| r.get(0),
    )
    .optional()
}

/// Writes a setting.
pub fn set_setting(c: &Connection, key: &str, value: &str) -> rusqlite::Result<()> {
    c.execute(
        "INSERT OR REPLACE INTO SETTINGS (key, value) VALUES (?1, ?2)",
        params![key, value],
    )?;
    Ok(())
}
