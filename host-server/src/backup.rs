//! `chatbox-server backup`: a consistent copy of the SQLite database while the server runs,
//! through SQLite's online backup API.
//!
//! The copy is taken in one step under one read transaction (WAL readers do not block the
//! server's writer), so it is the database as of one commit. The output file is created with
//! `create_new` and mode 0600 (never an existing file, private from its first byte), switched
//! to a rollback journal so it is one self-contained file, checked with `integrity_check`, and
//! removed again if anything fails.

use core::time::Duration;
use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use crate::store::Database;

/// What a backup holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Accounts (confirmed or not).
    pub accounts: u64,
    /// Stored messages.
    pub messages: u64,
    /// Highest message id (0: none).
    pub last_message_id: u64,
}

/// Copies `db` to `out` (a new file) and checks the copy.
pub fn backup(db: &Database, out: &Path) -> Result<Summary, String> {
    let src_path = match db {
        Database::Sqlite(p) => p,
        Database::Postgres(_) => {
            return Err(format!(
                "{} is a PostgreSQL database: back it up with pg_dump (e.g. `pg_dump -Fc -f chatbox.dump DBNAME`), not with this command",
                db.redacted()
            ));
        }
    };
    // Never creates a database: the source must exist.
    let src = Connection::open_with_flags(
        src_path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| format!("opening {}: {e}", src_path.display()))?;
    src.busy_timeout(Duration::from_secs(10))
        .map_err(|e| format!("{}: {e}", src_path.display()))?;
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                format!(
                    "{} already exists: a backup never overwrites a file",
                    out.display()
                )
            }
            _ => format!("creating {}: {e}", out.display()),
        })?;
    drop(file);
    match copy_and_check(&src, out) {
        Ok(s) => Ok(s),
        Err(e) => {
            // Only what this run created goes.
            let _ = std::fs::remove_file(out);
            let mut journal = out.as_os_str().to_owned();
            journal.push("-journal");
            let _ = std::fs::remove_file(journal);
            Err(format!("writing {}: {e}", out.display()))
        }
    }
}

fn copy_and_check(src: &Connection, out: &Path) -> rusqlite::Result<Summary> {
    let mut dst = Connection::open_with_flags(
        out,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    {
        let backup = rusqlite::backup::Backup::new(src, &mut dst)?;
        // -1: every page in one step, under one read transaction: a snapshot of one commit
        // (stepping in parts would restart whenever the server commits meanwhile).
        loop {
            match backup.step(-1)? {
                rusqlite::backup::StepResult::Done => break,
                rusqlite::backup::StepResult::More => {}
                // The source is locked for a moment (a checkpoint): try again shortly.
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
    dst.pragma_update(None, "journal_mode", "DELETE")?;
    let check: String = dst.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    if check != "ok" {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
            Some(format!("integrity_check: {check}")),
        ));
    }
    let count = |sql: &str| dst.query_row(sql, [], |r| r.get::<_, i64>(0));
    let summary = Summary {
        accounts: u64::try_from(count("SELECT COUNT(*) FROM REGISTERED")?).unwrap_or(0),
        messages: u64::try_from(count("SELECT COUNT(*) FROM MESSAGES")?).unwrap_or(0),
        last_message_id: u64::try_from(count("SELECT COALESCE(MAX(id), 0) FROM MESSAGES")?)
            .unwrap_or(0),
    };
    dst.close().map_err(|(_, e)| e)?;
    Ok(summary)
}
