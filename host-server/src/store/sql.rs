//! The statements both backends run, written once. Placeholders are PostgreSQL's `$1, $2, …`;
//! the SQLite backend runs the same text with `?1, ?2, …` (see `sqlite::lite`). Only SQL both
//! engines accept is used here: `INSERT … ON CONFLICT`, `RETURNING`, quoted `"User"` (a
//! reserved word in PostgreSQL) and `"by"`. The schema itself differs per engine and lives with
//! each backend. Every value is a bound parameter; nothing here is built from input.

/// The columns of an [`Account`](super::Account), in its field order.
macro_rules! account_columns {
    () => {
        "\"User\", password, ip_port_last, statut, online, totp_sealed, totp_last_step, role, failures, locked_until, created, pending_reg"
    };
}

/// The columns of a [`StoredMsg`](super::StoredMsg), in its field order.
macro_rules! message_columns {
    () => {
        "SELECT id, time_ms, target, sender, kind, text FROM MESSAGES "
    };
}

/// One account by name.
pub const ACCOUNT: &str = concat!(
    "SELECT ",
    account_columns!(),
    " FROM REGISTERED WHERE \"User\" = $1"
);
/// Every account, by name.
pub const ACCOUNTS: &str = concat!(
    "SELECT ",
    account_columns!(),
    " FROM REGISTERED ORDER BY \"User\""
);

/// A pending registration ($6: the node holding its connection); no row if the name is taken.
pub const INSERT_PENDING: &str = "INSERT INTO REGISTERED (\"User\", password, ip_port_last, statut, online, totp_sealed, role, created, pending_reg, pending_node)
     VALUES ($1, $2, $3, 'ko', 'ko', $4, 'user', $5, 1, $6) ON CONFLICT (\"User\") DO NOTHING";
/// A registration confirmed: active, its step used.
pub const CONFIRM: &str = "UPDATE REGISTERED SET statut = 'ok', pending_reg = 0, pending_node = '', totp_last_step = $2 WHERE \"User\" = $1";
/// An unconfirmed registration discarded.
pub const DELETE_PENDING: &str = "DELETE FROM REGISTERED WHERE \"User\" = $1 AND pending_reg = 1";
/// An account deleted.
pub const DELETE_ACCOUNT: &str = "DELETE FROM REGISTERED WHERE \"User\" = $1";

/// A user's scratch codes removed.
pub const SCRATCH_CLEAR: &str = "DELETE FROM SCRATCH WHERE \"User\" = $1";
/// One scratch code hash stored.
pub const SCRATCH_ADD: &str =
    "INSERT INTO SCRATCH (\"User\", code_hash, used) VALUES ($1, $2, 0) ON CONFLICT DO NOTHING";
/// A scratch code used: one conditional update, so of two racing logins only one gets it.
pub const SCRATCH_USE: &str =
    "UPDATE SCRATCH SET used = 1 WHERE \"User\" = $1 AND code_hash = $2 AND used = 0";
/// Unused scratch codes left.
pub const SCRATCH_LEFT: &str = "SELECT COUNT(*) FROM SCRATCH WHERE \"User\" = $1 AND used = 0";

/// A successful login: failures reset, an expired lock cleared (one still in force at `$4`,
/// the time now, stays: a lock written while the login was checking its password survives
/// it), online. The step condition makes "verify, then record the step" one atomic
/// check-and-set: of two logins (on any nodes) racing with the same TOTP code, only the first
/// to update the row gets in.
pub const LOGIN_SUCCESS: &str = "UPDATE REGISTERED SET failures = 0,
     locked_until = CASE WHEN locked_until > $4 THEN locked_until ELSE 0 END, statut = 'ok', online = 'ok', ip_port_last = $2,
     totp_last_step = COALESCE($3, totp_last_step)
     WHERE \"User\" = $1 AND ($3 IS NULL OR totp_last_step IS NULL OR totp_last_step < $3)";
/// A wrong code after the right password, counted in the row itself (no read-modify-write);
/// locks at `$2` of them.
pub const LOGIN_FAILURE: &str = "UPDATE REGISTERED SET failures = failures + 1,
     locked_until = CASE WHEN failures + 1 >= $2 THEN $3 ELSE locked_until END
     WHERE \"User\" = $1 RETURNING failures";
/// Locked until `$2`.
pub const LOCK: &str = "UPDATE REGISTERED SET locked_until = $2 WHERE \"User\" = $1";
/// Unlocked, failures forgotten.
pub const UNLOCK: &str = "UPDATE REGISTERED SET locked_until = 0, failures = 0 WHERE \"User\" = $1";
/// A new role.
pub const SET_ROLE: &str = "UPDATE REGISTERED SET role = $2 WHERE \"User\" = $1";
/// A new TOTP secret: back to pending until the next login with it.
pub const RESET_OTP: &str = "UPDATE REGISTERED SET totp_sealed = $2, totp_last_step = NULL, statut = 'ko' WHERE \"User\" = $1";
/// `$1` was seen (a login, going offline): the private messages stored after this moment count
/// against [`OFFLINE_COUNT`]'s limit. By message id, not time: every message stored before is
/// at or below it, every later one above, even within one millisecond.
pub const SEEN: &str = "UPDATE REGISTERED SET seen_id = (SELECT COALESCE(MAX(id), 0) FROM MESSAGES)
     WHERE \"User\" = $1";
/// Messages from `$2` to `$1` stored since `$1` was last seen (for the offline limit).
pub const OFFLINE_COUNT: &str = "SELECT COUNT(*) FROM MESSAGES WHERE target = $1 AND sender = $2
     AND id > COALESCE((SELECT seen_id FROM REGISTERED WHERE \"User\" = $1), 0)";
/// Offline, unless the user still has a logged-in connection on another node (`$2` is this
/// node; its own connections are known to the node itself).
pub const SET_OFFLINE: &str =
    "UPDATE REGISTERED SET online = 'ko' WHERE \"User\" = $1 AND NOT EXISTS
     (SELECT 1 FROM ONLINE WHERE Client_Id = $1 AND statut = 'online' AND node <> $2)";

/// A connection of node `$1` in `ONLINE`.
/// A user marked online again (its node's rows had been reaped while it was alive).
pub const SET_ONLINE: &str = "UPDATE REGISTERED SET online = 'ok' WHERE \"User\" = $1";
pub const ONLINE_PUT: &str = "INSERT INTO ONLINE (node, Client_Id, ip_port, statut) VALUES ($1, $2, $3, $4)
     ON CONFLICT (node, ip_port) DO UPDATE SET Client_Id = excluded.Client_Id, statut = excluded.statut";
/// A connection of node `$1` gone.
pub const ONLINE_REMOVE: &str = "DELETE FROM ONLINE WHERE node = $1 AND ip_port = $2";
/// The whole `ONLINE` table.
pub const ONLINE_ROWS: &str =
    "SELECT node, Client_Id, ip_port, statut FROM ONLINE ORDER BY node, Client_Id, ip_port";

/// A chat message; its id comes back.
pub const MESSAGE_ADD: &str = "INSERT INTO MESSAGES (time_ms, target, sender, kind, text) VALUES ($1, $2, $3, $4, $5) RETURNING id";
/// The newest `$3` messages of room `$1` below id `$2`, newest first.
pub const ROOM_HISTORY: &str = concat!(
    message_columns!(),
    "WHERE target = $1 AND id < $2 ORDER BY id DESC LIMIT $3"
);
/// The newest `$4` messages between `$1` and `$2` below id `$3`, newest first.
pub const PRIVATE_HISTORY: &str = concat!(
    message_columns!(),
    "WHERE ((sender = $1 AND target = $2) OR (sender = $2 AND target = $1)) AND id < $3 ORDER BY id DESC LIMIT $4"
);

/// The statements of one moderation table.
#[derive(Debug)]
pub struct SanctionSql {
    /// Sets (or replaces) the sanction of a user.
    pub put: &'static str,
    /// Lifts it.
    pub remove: &'static str,
    /// The sanction of `$1` in force at `$2`.
    pub active: &'static str,
    /// Every sanction in force at `$1`.
    pub all_active: &'static str,
}

macro_rules! sanction_sql {
    ($table:literal) => {
        SanctionSql {
            put: concat!(
                "INSERT INTO ",
                $table,
                " (\"User\", until_ms, reason, \"by\", time_ms) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (\"User\") DO UPDATE SET until_ms = excluded.until_ms, reason = excluded.reason,
                 \"by\" = excluded.\"by\", time_ms = excluded.time_ms"
            ),
            remove: concat!("DELETE FROM ", $table, " WHERE \"User\" = $1"),
            active: concat!(
                "SELECT until_ms, reason FROM ",
                $table,
                " WHERE \"User\" = $1 AND (until_ms = 0 OR until_ms > $2)"
            ),
            all_active: concat!(
                "SELECT \"User\", until_ms FROM ",
                $table,
                " WHERE until_ms = 0 OR until_ms > $1"
            ),
        }
    };
}

/// `BANS`.
pub const BANS: SanctionSql = sanction_sql!("BANS");
/// `MUTES`.
pub const MUTES: SanctionSql = sanction_sql!("MUTES");

impl super::Sanction {
    /// Its statements.
    pub(crate) fn sql(self) -> &'static SanctionSql {
        match self {
            super::Sanction::Ban => &BANS,
            super::Sanction::Mute => &MUTES,
        }
    }
}

/// A room topic set.
pub const TOPIC_PUT: &str = "INSERT INTO TOPICS (room, topic, set_by, time_ms) VALUES ($1, $2, $3, $4)
     ON CONFLICT (room) DO UPDATE SET topic = excluded.topic, set_by = excluded.set_by, time_ms = excluded.time_ms";
/// Every topic.
pub const TOPICS: &str = "SELECT room, topic, set_by, time_ms FROM TOPICS ORDER BY room";
/// One setting.
pub const SETTING: &str = "SELECT value FROM SETTINGS WHERE key = $1";
/// A setting written.
pub const SETTING_PUT: &str = "INSERT INTO SETTINGS (key, value) VALUES ($1, $2)
     ON CONFLICT (key) DO UPDATE SET value = excluded.value";

/// This node's lease renewed; no row if it was reaped meanwhile.
pub const LEASE_RENEW: &str = "UPDATE NODES SET expires_ms = $2 WHERE node = $1";
/// This node's lease written.
pub const LEASE_PUT: &str = "INSERT INTO NODES (node, expires_ms) VALUES ($1, $2)
     ON CONFLICT (node) DO UPDATE SET expires_ms = excluded.expires_ms";
/// A node's lease given up.
pub const LEASE_DELETE: &str = "DELETE FROM NODES WHERE node = $1";
/// The leases of other nodes expired before `$2`, taken (row by row: of two nodes reaping at
/// once, each expired node goes to one of them).
pub const LEASES_EXPIRED: &str =
    "DELETE FROM NODES WHERE node <> $1 AND expires_ms < $2 RETURNING node";

/// The statements that release everything node `$1` held, in this order: its users offline
/// (unless connected on another node), its `ONLINE` rows, the scratch codes of its unconfirmed
/// registrations, those registrations.
pub const RELEASE_NODE: [&str; 4] = [
    "UPDATE REGISTERED SET online = 'ko' WHERE online = 'ok'
     AND \"User\" IN (SELECT Client_Id FROM ONLINE WHERE node = $1 AND statut = 'online')
     AND NOT EXISTS (SELECT 1 FROM ONLINE o WHERE o.Client_Id = REGISTERED.\"User\" AND o.statut = 'online' AND o.node <> $1)",
    "DELETE FROM ONLINE WHERE node = $1",
    "DELETE FROM SCRATCH WHERE \"User\" IN (SELECT \"User\" FROM REGISTERED WHERE pending_reg = 1 AND pending_node = $1)",
    "DELETE FROM REGISTERED WHERE pending_reg = 1 AND pending_node = $1",
];

/// Every account without a logged-in connection on any node marked offline.
pub const OFFLINE_SWEEP: &str = "UPDATE REGISTERED SET online = 'ko' WHERE online = 'ok'
     AND NOT EXISTS (SELECT 1 FROM ONLINE WHERE Client_Id = REGISTERED.\"User\" AND statut = 'online')";

/// An administrator's change to an account, for every node to apply to its live sessions.
pub const ADMIN_EVENT_ADD: &str =
    "INSERT INTO ADMIN_EVENTS (time_ms, \"User\", action) VALUES ($1, $2, $3)";
/// Administrators' changes written at or after $1 (ms), in order. Nodes remember the ids they
/// applied: a time window rather than "id above the last seen" because PostgreSQL may commit
/// a smaller id after a larger one.
pub const ADMIN_EVENTS_SINCE: &str = "SELECT id, \"User\", action, time_ms FROM ADMIN_EVENTS WHERE time_ms >= $1 ORDER BY id LIMIT 10000";
/// Administrators' changes older than $1 (ms) forgotten.
pub const ADMIN_EVENTS_PRUNE: &str = "DELETE FROM ADMIN_EVENTS WHERE time_ms < $1";

/// A pending registration that took one use of invite `$7` (same as [`INSERT_PENDING`]).
pub const INSERT_PENDING_INVITE: &str = "INSERT INTO REGISTERED (\"User\", password, ip_port_last, statut, online, totp_sealed, role, created, pending_reg, pending_node, invite_id)
     VALUES ($1, $2, $3, 'ko', 'ko', $4, 'user', $5, 1, $6, $7) ON CONFLICT (\"User\") DO NOTHING";
/// At confirmation the account gets its invite's role (none: unchanged).
pub const CONFIRM_INVITE_ROLE: &str = "UPDATE REGISTERED SET role = COALESCE((SELECT role FROM INVITES WHERE INVITES.id = REGISTERED.invite_id), role) WHERE \"User\" = $1 AND invite_id IS NOT NULL";
/// A new invite ($1 token hash); its id.
pub const INVITE_ADD: &str = "INSERT INTO INVITES (token_hash, uses_left, uses_total, expires_ms, role, note, created_ms, revoked)
     VALUES ($1, $2, $2, $3, $4, $5, $6, 0) RETURNING id";
/// Every invite (never the token: only its hash is stored, and not even that is listed).
pub const INVITES_LIST: &str = "SELECT id, uses_left, uses_total, expires_ms, role, note, created_ms, revoked FROM INVITES ORDER BY id";
/// An invite revoked; no row if unknown or already revoked.
pub const INVITE_REVOKE: &str = "UPDATE INVITES SET revoked = 1 WHERE id = $1 AND revoked = 0";
/// An invite by its token hash, to say why it was refused.
pub const INVITE_LOOKUP: &str =
    "SELECT id, uses_left, expires_ms, revoked FROM INVITES WHERE token_hash = $1";
/// One use taken, atomically: the row lock (PostgreSQL) or the single writer (SQLite) make two
/// registrations racing for the last use see one success.
pub const INVITE_TAKE: &str = "UPDATE INVITES SET uses_left = uses_left - 1
     WHERE token_hash = $1 AND uses_left > 0 AND revoked = 0 AND expires_ms > $2 RETURNING id, role";
/// A use given back (the registration that took it was not created after all).
pub const INVITE_GIVE_BACK: &str =
    "UPDATE INVITES SET uses_left = uses_left + 1 WHERE id = $1 AND uses_left < uses_total";
/// Confirmed accounts registered with any invite (none: the first-run op invite is due).
pub const CONFIRMED_COUNT: &str = "SELECT COUNT(*) FROM REGISTERED WHERE pending_reg = 0";
/// A new password hash (self-service change).
pub const SET_PASSWORD: &str =
    "UPDATE REGISTERED SET password = $2 WHERE \"User\" = $1 AND pending_reg = 0";
/// A re-enrolled second factor: the new sealed secret, its confirming step used.
pub const REENROL: &str = "UPDATE REGISTERED SET totp_sealed = $2, totp_last_step = $3 WHERE \"User\" = $1 AND pending_reg = 0";
