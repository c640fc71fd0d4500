//! The shared statements ([`super::super::sql`]) over a rusqlite connection; the writer thread
//! runs these for the [`Store`](crate::store::Store).

use rusqlite::{Connection, OptionalExtension, Params, Row, params};

use crate::store::model::{Cols, Pending, SanctionSet, i64_of, id_bound, u32_of, u64_of};
use crate::store::sql;
use crate::store::{Account, AdminEvent, OnlineRow, Sanction, StoredMsg, TopicRow};

/// A shared statement in SQLite's spelling: `$n` placeholders become `?n` (the shared text
/// has no other `$`).
fn lite(sql: &str) -> String {
    sql.replace('$', "?")
}

fn exec(c: &Connection, sql: &str, p: impl Params) -> rusqlite::Result<usize> {
    c.prepare_cached(&lite(sql))?.execute(p)
}

fn one<T>(
    c: &Connection,
    sql: &str,
    p: impl Params,
    f: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Option<T>> {
    c.prepare_cached(&lite(sql))?.query_row(p, f).optional()
}

fn all<T>(
    c: &Connection,
    sql: &str,
    p: impl Params,
    f: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    c.prepare_cached(&lite(sql))?.query_map(p, f)?.collect()
}

impl Cols for Row<'_> {
    type Error = rusqlite::Error;
    fn text(&self, i: usize) -> rusqlite::Result<String> {
        self.get(i)
    }
    fn opt_int(&self, i: usize) -> rusqlite::Result<Option<i64>> {
        self.get(i)
    }
    fn opt_bytes(&self, i: usize) -> rusqlite::Result<Option<Vec<u8>>> {
        self.get(i)
    }
}

fn account_row(r: &Row<'_>) -> rusqlite::Result<Account> {
    Account::from_cols(r)
}

/// One account.
pub(crate) fn account(c: &Connection, user: &str) -> rusqlite::Result<Option<Account>> {
    one(c, sql::ACCOUNT, params![user], account_row)
}

/// Every account, by name.
pub(crate) fn accounts(c: &Connection) -> rusqlite::Result<Vec<Account>> {
    all(c, sql::ACCOUNTS, [], account_row)
}

/// Inserts a pending registration; `false` if the name is taken.
pub(crate) fn insert_pending(c: &Connection, p: &Pending) -> rusqlite::Result<bool> {
    let n = exec(
        c,
        sql::INSERT_PENDING,
        params![p.user, p.phc, p.ip_port, p.sealed, i64_of(p.now_ms), p.node],
    )?;
    Ok(n == 1)
}

/// Activates a registration: statut `ok`, the confirming step used, the scratch codes stored.
pub(crate) fn confirm_registration(
    c: &Connection,
    user: &str,
    step: u64,
    scratch_hashes: &[[u8; 32]],
) -> rusqlite::Result<bool> {
    if exec(c, sql::CONFIRM, params![user, i64_of(step)])? != 1 {
        return Ok(false);
    }
    exec(c, sql::SCRATCH_CLEAR, params![user])?;
    for h in scratch_hashes {
        exec(c, sql::SCRATCH_ADD, params![user, &h[..]])?;
    }
    exec(c, sql::CONFIRM_INVITE_ROLE, params![user])?;
    Ok(true)
}

/// Deletes a registration that was never confirmed; `true` if one was.
pub(crate) fn delete_pending(c: &Connection, user: &str) -> rusqlite::Result<bool> {
    let n = exec(c, sql::DELETE_PENDING, params![user])?;
    if n > 0 {
        exec(c, sql::SCRATCH_CLEAR, params![user])?;
    }
    Ok(n > 0)
}

/// Deletes an account and everything attached to it; `true` if it existed.
pub(crate) fn delete_account(c: &Connection, user: &str) -> rusqlite::Result<bool> {
    let n = exec(c, sql::DELETE_ACCOUNT, params![user])?;
    exec(c, sql::SCRATCH_CLEAR, params![user])?;
    Ok(n > 0)
}

/// A successful login: failures reset, step stored, online, and the connection's `ONLINE` row
/// (on `node`) shows the user. `false`, nothing changed, if the step was used already.
pub(crate) fn login_success(
    c: &Connection,
    user: &str,
    step: Option<u64>,
    ip_port: &str,
    node: &str,
    now_ms: u64,
) -> rusqlite::Result<bool> {
    if exec(
        c,
        sql::LOGIN_SUCCESS,
        params![user, ip_port, step.map(i64_of), i64_of(now_ms)],
    )? != 1
    {
        return Ok(false);
    }
    exec(c, sql::SEEN, params![user])?;
    online_put(c, node, user, ip_port, "online").map(|()| true)
}

/// A failed login: one more failure, locked when `lock_after` is reached. Returns the count.
pub(crate) fn login_failure(
    c: &Connection,
    user: &str,
    lock_after: u32,
    lock_until_ms: u64,
) -> rusqlite::Result<u32> {
    let n = one(
        c,
        sql::LOGIN_FAILURE,
        params![user, i64::from(lock_after), i64_of(lock_until_ms)],
        |r| r.get::<_, i64>(0),
    )?;
    Ok(n.map_or(0, u32_of))
}

/// Locks (`until_ms` > now) or unlocks (0, failures reset) an account; `true` if it exists.
pub(crate) fn set_lock(c: &Connection, user: &str, until_ms: u64) -> rusqlite::Result<bool> {
    let n = if until_ms == 0 {
        exec(c, sql::UNLOCK, params![user])?
    } else {
        exec(c, sql::LOCK, params![user, i64_of(until_ms)])?
    };
    Ok(n > 0)
}

/// Records an administrator's change and forgets those older than `prune_before_ms`.
pub(crate) fn admin_event(
    c: &Connection,
    time_ms: u64,
    user: &str,
    action: &str,
    prune_before_ms: u64,
) -> rusqlite::Result<()> {
    exec(c, sql::ADMIN_EVENTS_PRUNE, params![i64_of(prune_before_ms)])?;
    exec(
        c,
        sql::ADMIN_EVENT_ADD,
        params![i64_of(time_ms), user, action],
    )
    .map(drop)
}

/// Administrators' changes written at or after `since_ms`.
pub(crate) fn admin_events(c: &Connection, since_ms: u64) -> rusqlite::Result<Vec<AdminEvent>> {
    all(c, sql::ADMIN_EVENTS_SINCE, params![i64_of(since_ms)], |r| {
        Ok(AdminEvent {
            id: r.get(0)?,
            user: r.get(1)?,
            action: r.get(2)?,
            time_ms: u64_of(r.get(3)?),
        })
    })
}

/// Sets the role; `true` if the account exists.
pub(crate) fn set_role(c: &Connection, user: &str, role: &str) -> rusqlite::Result<bool> {
    Ok(exec(c, sql::SET_ROLE, params![user, role])? > 0)
}

/// New TOTP secret, back to pending (statut `ko`, step cleared, scratch codes removed).
pub(crate) fn reset_otp(c: &Connection, user: &str, sealed: &[u8]) -> rusqlite::Result<bool> {
    let n = exec(c, sql::RESET_OTP, params![user, sealed])?;
    exec(c, sql::SCRATCH_CLEAR, params![user])?;
    Ok(n > 0)
}

/// Marks a scratch code used; `true` if it existed unused.
pub(crate) fn use_scratch(c: &Connection, user: &str, hash: &[u8; 32]) -> rusqlite::Result<bool> {
    Ok(exec(c, sql::SCRATCH_USE, params![user, &hash[..]])? == 1)
}

/// Unused scratch codes left.
pub(crate) fn scratch_left(c: &Connection, user: &str) -> rusqlite::Result<u32> {
    let n = one(c, sql::SCRATCH_LEFT, params![user], |r| r.get::<_, i64>(0))?;
    Ok(n.map_or(0, u32_of))
}

/// Marks an account offline unless it is logged in on another node than `node`.
pub(crate) fn set_offline(c: &Connection, user: &str, node: &str) -> rusqlite::Result<()> {
    if exec(c, sql::SET_OFFLINE, params![user, node])? == 1 {
        exec(c, sql::SEEN, params![user])?;
    }
    Ok(())
}

/// A connection of `node` in `ONLINE`.
/// Marks `user` online.
pub(crate) fn set_online(c: &Connection, user: &str) -> rusqlite::Result<()> {
    exec(c, sql::SET_ONLINE, params![user]).map(drop)
}

pub(crate) fn online_put(
    c: &Connection,
    node: &str,
    client_id: &str,
    ip_port: &str,
    statut: &str,
) -> rusqlite::Result<()> {
    exec(
        c,
        sql::ONLINE_PUT,
        params![node, client_id, ip_port, statut],
    )
    .map(drop)
}

/// A connection of `node` left `ONLINE`.
pub(crate) fn online_remove(c: &Connection, node: &str, ip_port: &str) -> rusqlite::Result<()> {
    exec(c, sql::ONLINE_REMOVE, params![node, ip_port]).map(drop)
}

/// The `ONLINE` table.
pub(crate) fn online_rows(c: &Connection) -> rusqlite::Result<Vec<OnlineRow>> {
    all(c, sql::ONLINE_ROWS, [], |r| OnlineRow::from_cols(r))
}

/// Stores a chat message (its `id` is ignored); returns its id.
/// Stores a private message for an offline recipient unless it already holds `cap` from this
/// sender since it was last seen; `None` then (nothing stored).
pub(crate) fn insert_offline(
    c: &Connection,
    m: &StoredMsg,
    cap: u32,
) -> rusqlite::Result<Option<u64>> {
    let n = one(c, sql::OFFLINE_COUNT, params![m.target, m.sender], |r| {
        r.get::<_, i64>(0)
    })?
    .unwrap_or(0);
    if n >= i64::from(cap) {
        return Ok(None);
    }
    insert_message(c, m).map(Some)
}

pub(crate) fn insert_message(c: &Connection, m: &StoredMsg) -> rusqlite::Result<u64> {
    let time = i64_of(m.time_ms);
    let p = params![time, m.target, m.sender, i64::from(m.kind), m.text];
    let id = one(c, sql::MESSAGE_ADD, p, |r| r.get::<_, i64>(0))?;
    id.map(u64_of).ok_or(rusqlite::Error::QueryReturnedNoRows)
}

fn msg_row(r: &Row<'_>) -> rusqlite::Result<StoredMsg> {
    StoredMsg::from_cols(r)
}

/// The newest `limit` messages of a room (`#…`), or of the private conversation of `me` with
/// `target`, with an id below `before_id` (0 = newest); oldest first.
pub(crate) fn history(
    c: &Connection,
    me: &str,
    target: &str,
    before_id: u64,
    limit: u32,
) -> rusqlite::Result<Vec<StoredMsg>> {
    let (before, limit) = (id_bound(before_id), i64::from(limit));
    let mut v = if target.starts_with('#') {
        all(
            c,
            sql::ROOM_HISTORY,
            params![target, before, limit],
            msg_row,
        )?
    } else {
        all(
            c,
            sql::PRIVATE_HISTORY,
            params![me, target, before, limit],
            msg_row,
        )?
    };
    v.reverse();
    Ok(v)
}

/// Adds (or replaces) a ban or mute (`until_ms` 0 = permanent).
pub(crate) fn add_sanction(c: &Connection, x: &SanctionSet) -> rusqlite::Result<()> {
    let until = i64_of(x.until_ms);
    let p = params![x.user, until, x.reason, x.by, i64_of(x.now_ms)];
    exec(c, x.kind.sql().put, p).map(drop)
}

/// Lifts a ban or mute; `true` if there was one.
pub(crate) fn remove_sanction(c: &Connection, s: Sanction, user: &str) -> rusqlite::Result<bool> {
    Ok(exec(c, s.sql().remove, params![user])? > 0)
}

/// The ban or mute of `user` in force at `now_ms`: `(until_ms, reason)`.
pub(crate) fn active_sanction(
    c: &Connection,
    s: Sanction,
    user: &str,
    now_ms: u64,
) -> rusqlite::Result<Option<(u64, String)>> {
    one(c, s.sql().active, params![user, i64_of(now_ms)], |r| {
        Ok((u64_of(r.get(0)?), r.get(1)?))
    })
}

/// Every mute in force: `(user, until_ms)`.
pub(crate) fn active_mutes(c: &Connection, now_ms: u64) -> rusqlite::Result<Vec<(String, u64)>> {
    all(c, sql::MUTES.all_active, params![i64_of(now_ms)], |r| {
        Ok((r.get(0)?, u64_of(r.get(1)?)))
    })
}

/// Sets a room topic.
pub(crate) fn set_topic(c: &Connection, t: &TopicRow) -> rusqlite::Result<()> {
    exec(
        c,
        sql::TOPIC_PUT,
        params![t.room, t.topic, t.set_by, i64_of(t.time_ms)],
    )
    .map(drop)
}

/// All topics.
pub(crate) fn topics(c: &Connection) -> rusqlite::Result<Vec<TopicRow>> {
    all(c, sql::TOPICS, [], |r| TopicRow::from_cols(r))
}

/// Reads a setting.
pub(crate) fn setting(c: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    one(c, sql::SETTING, params![key], |r| r.get(0))
}

/// Writes a setting.
pub(crate) fn set_setting(c: &Connection, key: &str, value: &str) -> rusqlite::Result<()> {
    exec(c, sql::SETTING_PUT, params![key, value]).map(drop)
}

/// Renews (or writes again) the lease of `node`; `true` if it was still there.
pub(crate) fn heartbeat(c: &Connection, node: &str, expires_ms: u64) -> rusqlite::Result<bool> {
    let held = exec(c, sql::LEASE_RENEW, params![node, i64_of(expires_ms)])? == 1;
    if !held {
        exec(c, sql::LEASE_PUT, params![node, i64_of(expires_ms)])?;
    }
    Ok(held)
}

/// Releases what `node` held: its users offline (unless on another node), its `ONLINE` rows,
/// its unconfirmed registrations.
pub(crate) fn release_node(c: &Connection, node: &str) -> rusqlite::Result<()> {
    for stmt in sql::RELEASE_NODE {
        exec(c, stmt, params![node])?;
    }
    Ok(())
}

/// `node` leaves: what it held released, its lease deleted.
pub(crate) fn leave(c: &Connection, node: &str) -> rusqlite::Result<()> {
    release_node(c, node)?;
    exec(c, sql::LEASE_DELETE, params![node]).map(drop)
}

/// Takes the expired leases of other nodes than `node` and releases what those nodes held;
/// returns them.
pub(crate) fn reap_nodes(c: &Connection, node: &str, now_ms: u64) -> rusqlite::Result<Vec<String>> {
    let dead: Vec<String> = all(c, sql::LEASES_EXPIRED, params![node, i64_of(now_ms)], |r| {
        r.get(0)
    })?;
    for d in &dead {
        release_node(c, d)?;
    }
    Ok(dead)
}
