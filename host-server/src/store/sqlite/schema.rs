//! SQLite schema and ordered migrations, tracked in `PRAGMA user_version`.

use core::time::Duration;
use std::path::Path;

use rusqlite::Connection;

/// `ONLINE` as of version 2 (also how each start recreates it).
macro_rules! online_table {
    () => {
        "CREATE TABLE ONLINE (
            node TEXT NOT NULL DEFAULT '',
            Client_Id TEXT NOT NULL,
            ip_port TEXT NOT NULL,
            statut TEXT NOT NULL,
            PRIMARY KEY (node, ip_port)
        );
        CREATE INDEX ONLINE_client ON ONLINE (Client_Id);"
    };
}

/// Migrations, in order; migration `i` brings the schema to version `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 1: the seed's tables plus what accounts, chat and moderation need.
    "CREATE TABLE IF NOT EXISTS REGISTERED (
        User TEXT PRIMARY KEY NOT NULL,
        password TEXT NOT NULL,
        ip_port_last TEXT NOT NULL DEFAULT '',
        statut TEXT NOT NULL DEFAULT 'ko',
        online TEXT NOT NULL DEFAULT 'ko',
        totp_sealed BLOB,
        totp_last_step INTEGER,
        role TEXT NOT NULL DEFAULT 'user',
        failures INTEGER NOT NULL DEFAULT 0,
        locked_until INTEGER NOT NULL DEFAULT 0,
        created INTEGER NOT NULL DEFAULT 0,
        pending_reg INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE IF NOT EXISTS SCRATCH (
        User TEXT NOT NULL,
        code_hash BLOB NOT NULL,
        used INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (User, code_hash)
    );
    CREATE TABLE IF NOT EXISTS MESSAGES (
        id INTEGER PRIMARY KEY,
        time_ms INTEGER NOT NULL,
        target TEXT NOT NULL,
        sender TEXT NOT NULL,
        kind INTEGER NOT NULL,
        text TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS MESSAGES_target ON MESSAGES (target, id);
    CREATE INDEX IF NOT EXISTS MESSAGES_sender ON MESSAGES (sender, id);
    CREATE TABLE IF NOT EXISTS BANS (
        User TEXT PRIMARY KEY NOT NULL,
        until_ms INTEGER NOT NULL,
        reason TEXT NOT NULL,
        by TEXT NOT NULL,
        time_ms INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS MUTES (
        User TEXT PRIMARY KEY NOT NULL,
        until_ms INTEGER NOT NULL,
        reason TEXT NOT NULL,
        by TEXT NOT NULL,
        time_ms INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS TOPICS (
        room TEXT PRIMARY KEY NOT NULL,
        topic TEXT NOT NULL,
        set_by TEXT NOT NULL,
        time_ms INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS SETTINGS (
        key TEXT PRIMARY KEY NOT NULL,
        value TEXT NOT NULL
    );",
    // 2: scale-out. ONLINE rows belong to a node, nodes hold leases, and a pending registration
    // remembers the node of its connection.
    concat!(
        "ALTER TABLE REGISTERED ADD COLUMN pending_node TEXT NOT NULL DEFAULT '';
        CREATE TABLE IF NOT EXISTS NODES (
            node TEXT PRIMARY KEY NOT NULL,
            expires_ms INTEGER NOT NULL
        );
        DROP TABLE IF EXISTS ONLINE;",
        online_table!()
    ),
    // 3: administrators' changes (role, lock, delete, reset-otp) that the running nodes apply
    // to their live sessions.
    "CREATE TABLE IF NOT EXISTS ADMIN_EVENTS (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        time_ms INTEGER NOT NULL,
        User TEXT NOT NULL,
        action TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS ADMIN_EVENTS_time ON ADMIN_EVENTS (time_ms);",
    // 4: growth limits. When an account was last seen (login, going offline): the private
    // messages stored for it since then are bounded per sender.
    // Existing accounts count as seen at the upgrade: older messages to them do not count.
    "ALTER TABLE REGISTERED ADD COLUMN seen_id INTEGER NOT NULL DEFAULT 0;
    UPDATE REGISTERED SET seen_id = (SELECT COALESCE(MAX(id), 0) FROM MESSAGES);
    CREATE INDEX IF NOT EXISTS MESSAGES_pair ON MESSAGES (target, sender, id);",
    // 5: invites. A pending registration remembers the invite whose use it took; deleting it
    // unconfirmed (connection closed, deadline, node start or reaped) gives that use back.
    "CREATE TABLE IF NOT EXISTS INVITES (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        token_hash BLOB NOT NULL UNIQUE,
        uses_left INTEGER NOT NULL,
        uses_total INTEGER NOT NULL,
        expires_ms INTEGER NOT NULL,
        role TEXT NOT NULL,
        note TEXT NOT NULL DEFAULT '',
        created_ms INTEGER NOT NULL,
        revoked INTEGER NOT NULL DEFAULT 0
    );
    ALTER TABLE REGISTERED ADD COLUMN invite_id INTEGER;
    CREATE TRIGGER IF NOT EXISTS REGISTERED_invite_back AFTER DELETE ON REGISTERED
        WHEN OLD.pending_reg = 1 AND OLD.invite_id IS NOT NULL
    BEGIN
        UPDATE INVITES SET uses_left = uses_left + 1
            WHERE id = OLD.invite_id AND uses_left < uses_total;
    END;",
];

/// Opens the database file with WAL and a busy timeout, and applies pending migrations.
///
/// Several processes opening a new file at once can get `SQLITE_BUSY` without the busy handler
/// being consulted (switching the journal to WAL, WAL recovery): such an open is tried again
/// for up to the busy timeout.
pub(crate) fn open(path: &Path) -> rusqlite::Result<Connection> {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        match open_once(path) {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            r => return r,
        }
    }
}

fn open_once(path: &Path) -> rusqlite::Result<Connection> {
    // Created 0600 before SQLite sees it: SQLite gives `-wal` and `-shm` the database file's
    // mode, so all three are private from their first byte whatever the umask.
    if !path.exists() {
        crate::private::create_file(path).map_err(|e| {
            rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
                Some(format!("creating {}: {e}", path.display())),
            )
        })?;
    }
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    // Every query and the writer's five control statements are cached: room for all of them
    // (rusqlite's default is 16, fewer than the statements the store prepares).
    conn.set_prepared_statement_cache_capacity(64);
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    migrate(&conn)?;
    Ok(conn)
}

/// Applies the missing migrations in one transaction; the version is read inside it, so two
/// processes opening the same file at once apply each migration once.
fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let current =
        |c: &Connection| c.pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0));
    let latest = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
    if current(conn)? >= latest {
        return Ok(());
    }
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let applied = current(conn).and_then(|version| {
        for (target, sql) in (1..).zip(MIGRATIONS) {
            if version < target {
                conn.execute_batch(sql)?;
                conn.pragma_update(None, "user_version", target)?;
            }
        }
        Ok(())
    });
    match applied {
        Ok(()) => conn.execute_batch("COMMIT"),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// Server start: `ONLINE` dropped and recreated, every account offline, and registrations
/// whose connection died with the previous run discarded.
pub(crate) fn reset_at_start(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(concat!(
        "BEGIN IMMEDIATE;
         DROP TABLE IF EXISTS ONLINE;",
        online_table!(),
        "UPDATE REGISTERED SET online = 'ko';
         DELETE FROM SCRATCH WHERE User IN (SELECT User FROM REGISTERED WHERE pending_reg = 1);
         DELETE FROM REGISTERED WHERE pending_reg = 1;
         COMMIT;"
    ))
}
