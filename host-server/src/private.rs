//! Files private to the server's user from their first byte.
//!
//! The data directory holds password hashes, sealed TOTP secrets, every private message and the
//! server key; the log directory holds private messages in clear (`chat.log`). Directories are
//! created 0700 and files 0600 by the `open` call itself (no create-then-chmod window, whatever
//! the umask). SQLite creates `-wal` and `-shm` with the database file's mode, so creating the
//! database file 0600 first covers them too.
//!
//! What already exists (from an older version, another tool, or a umask of 022) is tightened at
//! start: [`tighten`] removes every group and other bit and says what it changed; where that is
//! impossible (another owner) it is an error naming the file, and the server refuses to start.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of every directory the server creates.
pub(crate) const DIR_MODE: u32 = 0o700;
/// Mode of every file the server creates.
pub(crate) const FILE_MODE: u32 = 0o600;

/// Creates `dir` (and missing parents) with mode 0700.
pub(crate) fn create_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
}

/// Opens `path` for appending, creating it with mode 0600.
pub(crate) fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(FILE_MODE)
        .open(path)
}

/// Creates `path` empty with mode 0600 if it does not exist (an existing file is left as is).
pub(crate) fn create_file(path: &Path) -> io::Result<()> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(FILE_MODE)
        .open(path)
        .map(drop)
}

/// Removes the group and other bits of `path` (a directory or a regular file; a symbolic link,
/// a device or a missing path is left alone). `Ok(Some(note))` says what changed, for
/// `info.log`; an error names the path and why it stays readable by others.
pub(crate) fn tighten(path: &Path) -> io::Result<Option<String>> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
    };
    let kind = meta.file_type();
    if !(kind.is_dir() || kind.is_file()) {
        return Ok(None);
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 == 0 {
        return Ok(None);
    }
    let new = mode & !0o077;
    fs::set_permissions(path, fs::Permissions::from_mode(new)).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "{} is accessible to other users (mode {mode:04o}) and its mode cannot be \
                 changed: {e}; make it private (chmod go-rwx) or run as its owner",
                path.display()
            ),
        )
    })?;
    Ok(Some(format!(
        "tightened permissions of {} from {mode:04o} to {new:04o} (private data)",
        path.display()
    )))
}

/// [`tighten`]s `dir` and every entry of it whose name is one of `names` or starts with one of
/// them followed by `.` or `-` (rotated logs such as `chat.log.1`, SQLite's `chatbox.db-wal`).
/// Other files in the directory are not touched.
pub(crate) fn tighten_dir(dir: &Path, names: &[&str]) -> io::Result<Vec<String>> {
    let mut notes = Vec::new();
    notes.extend(tighten(dir)?);
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(notes),
        Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", dir.display()))),
    };
    let mut paths: Vec<_> = entries
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            names.iter().any(|n| {
                name == *n
                    || name
                        .strip_prefix(n)
                        .is_some_and(|rest| rest.starts_with(['.', '-']))
            })
        })
        .map(|e| e.path())
        .collect();
    paths.sort();
    for p in paths {
        notes.extend(tighten(&p)?);
    }
    Ok(notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0)
    }

    #[test]
    fn creates_private_and_tightens_only_what_it_owns() {
        let dir = std::env::temp_dir().join(format!("chatbox-private-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let sub = dir.join("a/b");
        assert!(create_dir(&sub).is_ok());
        assert_eq!(mode(&sub), 0o700);
        assert!(open_append(&sub.join("chat.log")).is_ok());
        assert_eq!(mode(&sub.join("chat.log")), 0o600);
        for (name, m) in [("chat.log.1", 0o644), ("other.txt", 0o644)] {
            assert!(fs::write(sub.join(name), b"x").is_ok());
            assert!(fs::set_permissions(sub.join(name), fs::Permissions::from_mode(m)).is_ok());
        }
        assert!(fs::set_permissions(&sub, fs::Permissions::from_mode(0o755)).is_ok());
        let notes = tighten_dir(&sub, &["chat.log"]).unwrap_or_default();
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes.iter().any(|n| n.contains("from 0755 to 0700")));
        assert!(
            notes
                .iter()
                .any(|n| n.contains("chat.log.1 from 0644 to 0600"))
        );
        assert_eq!(mode(&sub), 0o700);
        assert_eq!(mode(&sub.join("chat.log.1")), 0o600);
        assert_eq!(mode(&sub.join("other.txt")), 0o644, "not ours: untouched");
        let _ = fs::remove_dir_all(&dir);
    }
}
