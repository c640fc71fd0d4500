//! Trust on first use for server keys, like ssh's `StrictHostKeyChecking=accept-new`.
//!
//! `$CHATBOX_HOME/known_servers` (default `~/.config/chatbox/known_servers`) holds one line per
//! server: `host:port SHA256:<base64>`. Blank lines and `#` comments are allowed; lines that do
//! not parse are skipped (with a warning from [`Check::skipped`]), never fatal. The first key seen
//! for a `host:port` is appended; a different key later is [`TrustError::Mismatch`]. A key given
//! with `--server-key` pins the server instead, and the file is then neither read nor written.
//! A key from an invite link (`chatbox://HOST:PORT/?key=SHA256:…`) is [`Trust::Link`]: only that
//! key is accepted, even on first contact, and it is then recorded in the file like a first use
//! (a different key already recorded for that address is still a mismatch: two sources disagree,
//! and the one the user already trusted is not overridden by a link).

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

/// Length of the Base64 part of a fingerprint (SHA-256, unpadded).
const FP_B64_LEN: usize = 43;

/// How the server's key is to be checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// Only this fingerprint is accepted (`--server-key`).
    Pinned(String),
    /// Trust on first use with this file.
    File(PathBuf),
    /// Only `key` (from an invite link) is accepted; once it is, it is recorded in `file` as a
    /// first use would (unless `file` already holds another key for the address: a mismatch).
    Link {
        /// The fingerprint the link names.
        key: String,
        /// `known_servers`.
        file: PathBuf,
    },
}

/// What a successful check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The key matched the pinned fingerprint.
    Pinned,
    /// The key matched the one recorded for this server.
    Known,
    /// No key was recorded for this server; this one now is.
    Recorded(PathBuf),
}

/// Why the server's key is not accepted.
#[derive(Debug)]
pub enum TrustError {
    /// The key differs from the pinned or recorded one.
    Mismatch {
        /// `host:port`.
        server: String,
        /// The fingerprint we trust.
        expected: String,
        /// The fingerprint the server showed.
        got: String,
        /// Where `expected` came from: `None` for `--server-key`, else the file and line.
        source: Option<(PathBuf, usize)>,
    },
    /// The key differs from the one the invite link names (checked before anything is sent).
    LinkMismatch {
        /// `host:port`.
        server: String,
        /// The fingerprint in the link.
        expected: String,
        /// The fingerprint the server showed.
        got: String,
    },
    /// The file could not be read or written.
    Io(PathBuf, io::Error),
}

impl fmt::Display for TrustError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Mismatch {
                server,
                expected,
                got,
                source,
            } => {
                write!(
                    f,
                    "server key mismatch for {server}: expected {expected}, got {got}"
                )?;
                match source {
                    Some((path, line)) => write!(
                        f,
                        " (recorded in {} line {line}). Someone may be impersonating the server. \
                         If its key really changed, delete that line or run with --server-key {got}",
                        path.display()
                    ),
                    None => write!(
                        f,
                        " (pinned with --server-key). If the server's key really changed, pin the new one"
                    ),
                }
            }
            Self::LinkMismatch {
                server,
                expected,
                got,
            } => write!(
                f,
                "server key mismatch for {server}: the invite link says {expected}, the server \
                 showed {got}. Someone may be impersonating the server: nothing was sent to it. \
                 Ask whoever gave you the link to check the server's key"
            ),
            Self::Io(path, e) => write!(f, "cannot use {}: {e}", path.display()),
        }
    }
}

impl core::error::Error for TrustError {}

/// Whether `s` looks like `SHA256:` + 43 Base64 characters.
#[must_use]
pub fn is_fingerprint(s: &str) -> bool {
    s.strip_prefix("SHA256:").is_some_and(|b64| {
        b64.len() == FP_B64_LEN
            && b64
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
    })
}

/// The file to use: `$CHATBOX_HOME/known_servers`, else `$HOME/.config/chatbox/known_servers`.
pub fn default_path() -> Result<PathBuf, String> {
    if let Some(home) = std::env::var_os("CHATBOX_HOME").filter(|h| !h.is_empty()) {
        return Ok(PathBuf::from(home).join("known_servers"));
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(home) => Ok(PathBuf::from(home)
            .join(".config")
            .join("chatbox")
            .join("known_servers")),
        None => Err("neither CHATBOX_HOME nor HOME is set: cannot find known_servers".into()),
    }
}

/// The result of a check, with the count of unreadable lines skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was found.
    pub outcome: Outcome,
    /// Line numbers (1-based) that were not `host:port SHA256:<base64>` and were ignored.
    pub skipped: Vec<usize>,
    /// Group or other access removed from `$CHATBOX_HOME` or `known_servers` (what changed).
    pub tightened: Vec<String>,
}

/// Checks `got` (the server's fingerprint) for `server` (`host:port`).
pub fn check(trust: &Trust, server: &str, got: &str) -> Result<Check, TrustError> {
    match trust {
        Trust::Pinned(expected) if expected == got => Ok(Check {
            outcome: Outcome::Pinned,
            skipped: Vec::new(),
            tightened: Vec::new(),
        }),
        Trust::Pinned(expected) => Err(TrustError::Mismatch {
            server: server.to_owned(),
            expected: expected.clone(),
            got: got.to_owned(),
            source: None,
        }),
        Trust::File(path) => check_file(path, server, got),
        Trust::Link { key, .. } if key != got => Err(TrustError::LinkMismatch {
            server: server.to_owned(),
            expected: key.clone(),
            got: got.to_owned(),
        }),
        Trust::Link { file, .. } => {
            let mut c = check_file(file, server, got)?;
            if c.outcome == Outcome::Known {
                c.outcome = Outcome::Pinned;
            }
            Ok(c)
        }
    }
}

fn check_file(path: &Path, server: &str, got: &str) -> Result<Check, TrustError> {
    let io_err = |e| TrustError::Io(path.to_owned(), e);
    let mut tightened = Vec::new();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        tightened.extend(tighten(dir).map_err(|e| TrustError::Io(dir.to_owned(), e))?);
    }
    tightened.extend(tighten(path).map_err(io_err)?);
    let text = match fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io_err(e)),
    };
    let mut skipped = Vec::new();
    let mut recorded = None;
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let (Some(host), Some(fp), None) = (fields.next(), fields.next(), fields.next()) else {
            skipped.push(line_no);
            continue;
        };
        if !is_fingerprint(fp) {
            skipped.push(line_no);
            continue;
        }
        if host == server {
            if fp == got {
                return Ok(Check {
                    outcome: Outcome::Known,
                    skipped,
                    tightened,
                });
            }
            recorded.get_or_insert((fp.to_owned(), line_no));
        }
    }
    if let Some((expected, line_no)) = recorded {
        return Err(TrustError::Mismatch {
            server: server.to_owned(),
            expected,
            got: got.to_owned(),
            source: Some((path.to_owned(), line_no)),
        });
    }
    append(path, server, got, &text).map_err(io_err)?;
    Ok(Check {
        outcome: Outcome::Recorded(path.to_owned()),
        skipped,
        tightened,
    })
}

fn append(path: &Path, server: &str, fingerprint: &str, existing: &str) -> io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_private_dir(dir)?;
    }
    let mut file = private_append(path)?;
    let sep = if existing.is_empty() || existing.ends_with('\n') {
        ""
    } else {
        "\n"
    };
    writeln!(file, "{sep}{server} {fingerprint}")?;
    file.sync_all()
}

/// Opens for appending, creating it 0600 (readable by its owner only from its first byte).
#[cfg(unix)]
fn private_append(path: &Path) -> io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn private_append(path: &Path) -> io::Result<fs::File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Removes group and other access from an existing directory or regular file (a missing path
/// or a symbolic link is left alone); says what changed. An error if it cannot be changed.
#[cfg(unix)]
fn tighten(path: &Path) -> io::Result<Option<String>> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if !(meta.is_dir() || meta.is_file()) {
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
                "it is accessible to other users (mode {mode:04o}) and cannot be made private: {e}"
            ),
        )
    })?;
    Ok(Some(format!(
        "tightened permissions of {} from {mode:04o} to {new:04o}",
        path.display()
    )))
}

#[cfg(not(unix))]
fn tighten(_path: &Path) -> io::Result<Option<String>> {
    Ok(None)
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)
}
