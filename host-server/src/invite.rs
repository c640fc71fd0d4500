//! Invites: the registration policy, durations, creating an invite and its link, the
//! `chatbox-server invite create|list|revoke` commands (on the database, server running or not,
//! like `user …`) and the first-run operator invite.
//!
//! A token is 32 bytes from the OS RNG written as 43 URL-safe Base64 characters; the database
//! holds only [`ServerKeys::invite_hash`] of it. The link is
//! `chatbox://HOST:PORT/?key=SHA256:<fingerprint>&invite=<token>` (core's [`Link`]).

use core::fmt;
use core::str::FromStr;
use core::time::Duration;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};
use chatbox_core::link::{InviteToken, Link};
use chatbox_core::qr::{Ecc, QrCode};

use crate::keys::{ServerKeys, random};
use crate::store::{Database, NewInvite, Store};
use crate::time::{fmt_utc, now_ms};

/// Who may register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Registration {
    /// Anyone who can reach the server (the default).
    #[default]
    Open,
    /// Only with a valid invite.
    Invite,
}

impl FromStr for Registration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "open" => Ok(Registration::Open),
            "invite" => Ok(Registration::Invite),
            _ => Err(format!("registration must be open or invite, not {s:?}")),
        }
    }
}

impl fmt::Display for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Registration::Open => "open",
            Registration::Invite => "invite",
        })
    }
}

/// Longest invite lifetime accepted (ten years).
const MAX_LIFETIME_SECS: u64 = 10 * 365 * 86_400;

/// Parses `30m`, `12h`, `7d`, `90s` or plain seconds (`3600`); at least one second.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (s.get(..i).unwrap_or_default(), Some(c)),
        _ => (s, None),
    };
    let bad = || format!("bad duration {s:?} (examples: 30m, 12h, 7d, or seconds)");
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u64 = num.parse().map_err(|_| bad())?;
    let mul = match unit {
        None | Some('s') => 1,
        Some('m') => 60,
        Some('h') => 3600,
        Some('d') => 86_400,
        Some(_) => return Err(bad()),
    };
    let secs = n.checked_mul(mul).ok_or_else(bad)?;
    if secs == 0 || secs > MAX_LIFETIME_SECS {
        return Err(format!(
            "duration {s:?} must be between 1 second and 10 years"
        ));
    }
    Ok(Duration::from_secs(secs))
}

/// Checks `HOST:PORT` for a link (a name, IPv4, or `[IPv6]`, and a port).
pub fn parse_server(s: &str) -> Result<(String, u16), String> {
    let link = Link::parse(&format!("chatbox://{s}/"))
        .map_err(|e| format!("bad server address {s:?} (HOST:PORT): {e}"))?;
    Ok((link.host().to_owned(), link.port()))
}

/// A listen address as a link's host and port (IPv6 in brackets).
#[must_use]
pub fn listen_host_port(a: core::net::SocketAddr) -> (String, u16) {
    match a {
        core::net::SocketAddr::V4(v) => (v.ip().to_string(), v.port()),
        core::net::SocketAddr::V6(v) => (format!("[{}]", v.ip()), v.port()),
    }
}

/// What `invite create` makes.
#[derive(Debug, Clone)]
pub struct CreateOpts {
    /// Uses (at least 1).
    pub uses: u32,
    /// Lifetime.
    pub expires: Duration,
    /// `user` or `op`.
    pub role: String,
    /// Note for `invite list`.
    pub note: String,
    /// Host and port users connect to.
    pub server: (String, u16),
}

/// Creates an invite: a fresh token, its keyed hash stored; returns the id and the link
/// (the only place the token ever appears).
pub async fn create(store: &Store, keys: &ServerKeys, o: &CreateOpts) -> Result<(i64, Link)> {
    if o.uses == 0 {
        bail!("--uses must be at least 1");
    }
    if o.role != "user" && o.role != "op" {
        bail!("--role must be user or op");
    }
    if o.note.len() > 200 || o.note.chars().any(char::is_control) {
        bail!("--note: at most 200 bytes, no control characters");
    }
    let token = InviteToken::from_bytes(random::<32>().context("OS random generator")?);
    let now = now_ms();
    let expires_ms = now.saturating_add(u64::try_from(o.expires.as_millis()).unwrap_or(u64::MAX));
    let id = store
        .invite_add(NewInvite {
            hash: keys.invite_hash(token.as_bytes()),
            uses: o.uses,
            expires_ms,
            role: o.role.clone(),
            note: o.note.clone(),
            created_ms: now,
        })
        .await?;
    let digest = chatbox_core::link::parse_fingerprint(&keys.fingerprint())
        .map_err(|e| anyhow::anyhow!("server key fingerprint: {e}"))?;
    let link = Link::new(&o.server.0, o.server.1, Some(digest), Some(token))
        .map_err(|e| anyhow::anyhow!("link: {e}"))?;
    Ok((id, link))
}

/// The link drawn as a QR code for a terminal: half blocks, dark on light forced with ANSI
/// colours (so it scans whatever the terminal's theme), 4-module quiet zone.
pub fn qr_lines(text: &str) -> Result<Vec<String>> {
    let code =
        QrCode::encode_text(text, Ecc::Medium).map_err(|e| anyhow::anyhow!("QR code: {e:?}"))?;
    let rows: Vec<Vec<bool>> = code.rows(4).map(Iterator::collect).collect();
    let width = rows.first().map_or(0, Vec::len);
    Ok(rows
        .chunks(2)
        .map(|pair| {
            let mut line = String::from("\x1b[30;47m");
            for x in 0..width {
                let t = pair
                    .first()
                    .and_then(|r| r.get(x))
                    .copied()
                    .unwrap_or(false);
                let b = pair.get(1).and_then(|r| r.get(x)).copied().unwrap_or(false);
                line.push(match (t, b) {
                    (true, true) => '█',
                    (true, false) => '▀',
                    (false, true) => '▄',
                    (false, false) => ' ',
                });
            }
            line.push_str("\x1b[0m");
            line
        })
        .collect())
}

/// An `invite …` command.
#[derive(Debug, Clone)]
pub enum InviteAction {
    /// Create one and print its link last.
    Create {
        /// What to create.
        opts: CreateOpts,
        /// Also draw the link as a QR code above it.
        qr: bool,
    },
    /// List invites (never tokens).
    List,
    /// Revoke one by id.
    Revoke(i64),
}

/// Runs an `invite …` command on `db` (`data_dir` holds `server.key`).
pub fn run_on(
    data_dir: &Path,
    db: &Database,
    action: &InviteAction,
    out: &mut dyn Write,
) -> Result<()> {
    let store = Store::open_admin(db).with_context(|| format!("opening {db}"))?;
    let r = smol::block_on(act(&store, data_dir, action, out));
    store.close();
    r
}

async fn act(
    store: &Store,
    data_dir: &Path,
    action: &InviteAction,
    out: &mut dyn Write,
) -> Result<()> {
    match action {
        InviteAction::Create { opts, qr } => {
            let keys = ServerKeys::load(data_dir).with_context(|| {
                format!(
                    "reading {}/server.key (start the server once first, or pass --data-dir)",
                    data_dir.display()
                )
            })?;
            let (id, link) = create(store, &keys, opts).await?;
            let text = link.to_string();
            writeln!(
                out,
                "invite {id}: {} use(s), role {}, expires {}{}",
                opts.uses,
                opts.role,
                fmt_utc(
                    now_ms().saturating_add(
                        u64::try_from(opts.expires.as_millis()).unwrap_or(u64::MAX)
                    )
                ),
                if opts.note.is_empty() {
                    String::new()
                } else {
                    format!(", note: {}", opts.note)
                }
            )?;
            if *qr {
                for line in qr_lines(&text)? {
                    writeln!(out, "{line}")?;
                }
            }
            writeln!(out, "{text}")?;
        }
        InviteAction::List => {
            let now = now_ms();
            writeln!(
                out,
                "| {:>5} | {:>9} | {:<24} | {:<4} | {:<24} | {:<8} | note",
                "id", "uses left", "expires", "role", "created", "state"
            )?;
            for i in store.invites().await? {
                let state = if i.revoked {
                    "revoked"
                } else if i.expires_ms <= now {
                    "expired"
                } else if i.uses_left == 0 {
                    "used up"
                } else {
                    "valid"
                };
                writeln!(
                    out,
                    "| {:>5} | {:>9} | {:<24} | {:<4} | {:<24} | {:<8} | {}",
                    i.id,
                    format!("{}/{}", i.uses_left, i.uses_total),
                    fmt_utc(i.expires_ms),
                    i.role,
                    fmt_utc(i.created_ms),
                    state,
                    i.note
                )?;
            }
        }
        InviteAction::Revoke(id) => {
            if !store.invite_revoke(*id).await? {
                bail!("no such invite (or already revoked): {id}");
            }
            writeln!(out, "invite {id} revoked")?;
        }
    }
    Ok(())
}
