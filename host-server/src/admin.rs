//! `chatbox-server user …`: account administration straight on the database, SQLite or
//! PostgreSQL, through the same [`Store`] API as the server (SQLite's WAL lets it run while the
//! server is up; opening it for administration resets nothing).
//!
//! Every change is also written to `ADMIN_EVENTS`; each running node polls that table (about
//! once a second, `--admin-poll-ms`) and applies it to its own live sessions: a locked or
//! deleted account, or one whose TOTP secret was reset, has its sessions closed with a `Bye`;
//! a role change is announced to the user (operator rights are read from the database each
//! time an operator command is used, so a demotion holds at once).

use std::path::Path;

use anyhow::{Context, Result, bail};
use chatbox_core::otp::{Algorithm, SECRET_LEN, otpauth_uri};
use chatbox_core::username;
use zeroize::Zeroizing;

use crate::keys::{ServerKeys, random};
use crate::store::{Database, Store};
use crate::time::{fmt_utc, now_ms};

/// An administration action.
#[derive(Debug, Clone)]
pub enum Action {
    /// Table of accounts.
    List,
    /// One account in detail.
    Show(String),
    /// Lock until unlocked.
    Lock(String),
    /// Unlock and reset the failure count.
    Unlock(String),
    /// Delete the account.
    Delete(String),
    /// New TOTP secret; prints the otpauth URI once.
    ResetOtp(String),
    /// Set the role (`op` or `user`).
    Role(String, String),
}

fn open(db: &Database) -> Result<Store> {
    if let Database::Sqlite(path) = db
        && !path.exists()
    {
        bail!("no database at {}", path.display());
    }
    Store::open_admin(db).with_context(|| format!("opening {db}"))
}

fn name(raw: &str) -> Result<String> {
    Ok(username::normalize(raw)
        .map_err(|e| anyhow::anyhow!("invalid user name: {e}"))?
        .as_str()
        .to_owned())
}

fn lock_text(until: u64) -> String {
    if until > now_ms() {
        format!("locked until {}", fmt_utc(until))
    } else {
        "-".to_owned()
    }
}

/// Runs an action on `chatbox.db` in `data_dir`, writing its report to `out`.
pub fn run(
    data_dir: &Path,
    issuer: &str,
    action: &Action,
    out: &mut dyn std::io::Write,
) -> Result<()> {
    run_on(
        data_dir,
        &Database::default_in(data_dir),
        issuer,
        action,
        out,
    )
}

/// Runs an action on `db`, writing its report to `out` (`data_dir` holds `server.key`, which
/// `reset-otp` needs to seal the new secret).
pub fn run_on(
    data_dir: &Path,
    db: &Database,
    issuer: &str,
    action: &Action,
    out: &mut dyn std::io::Write,
) -> Result<()> {
    let store = open(db)?;
    let r = smol::block_on(act(&store, data_dir, issuer, action, out));
    store.close();
    r
}

async fn act(
    c: &Store,
    data_dir: &Path,
    issuer: &str,
    action: &Action,
    out: &mut dyn std::io::Write,
) -> Result<()> {
    match action {
        Action::List => {
            let rows = c.accounts().await?;
            writeln!(
                out,
                "| {:<32} | {:<22} | {:<6} | {:<6} | {:<4} | {:<8} | {:<30} |",
                "User", "ip:port (last)", "statut", "online", "role", "failures", "lock"
            )?;
            writeln!(out, "|{}|", "-".repeat(130))?;
            for a in rows {
                writeln!(
                    out,
                    "| {:<32} | {:<22} | {:<6} | {:<6} | {:<4} | {:<8} | {:<30} |",
                    a.user,
                    a.ip_port_last,
                    a.statut,
                    a.online,
                    a.role,
                    a.failures,
                    lock_text(a.locked_until)
                )?;
            }
        }
        Action::Show(u) => {
            let u = name(u)?;
            let Some(a) = c.account(&u).await? else {
                bail!("no such user: {u}");
            };
            let scratch = c.scratch_left(&u).await?;
            writeln!(out, "user:           {}", a.user)?;
            writeln!(
                out,
                "statut:         {}{}",
                a.statut,
                if a.pending_reg {
                    " (registration pending)"
                } else {
                    ""
                }
            )?;
            writeln!(out, "online:         {}", a.online)?;
            writeln!(out, "role:           {}", a.role)?;
            writeln!(out, "ip:port (last): {}", a.ip_port_last)?;
            writeln!(out, "created:        {}", fmt_utc(a.created))?;
            writeln!(out, "failures:       {}", a.failures)?;
            writeln!(out, "lock:           {}", lock_text(a.locked_until))?;
            writeln!(out, "scratch codes:  {scratch} unused")?;
            writeln!(
                out,
                "password:       {}",
                a.password.split('$').nth(1).unwrap_or("?")
            )?;
        }
        Action::Lock(u) => {
            let u = name(u)?;
            // "Until an admin unlocks it": a century.
            let until = now_ms().saturating_add(100 * 365 * 86_400_000);
            if !c.set_lock(&u, until).await? {
                bail!("no such user: {u}");
            }
            c.admin_event(&u, "lock").await?;
            writeln!(out, "{u} locked (its sessions are closed)")?;
        }
        Action::Unlock(u) => {
            let u = name(u)?;
            if !c.set_lock(&u, 0).await? {
                bail!("no such user: {u}");
            }
            c.admin_event(&u, "unlock").await?;
            writeln!(out, "{u} unlocked")?;
        }
        Action::Delete(u) => {
            let u = name(u)?;
            if !c.delete_account(&u).await? {
                bail!("no such user: {u}");
            }
            c.admin_event(&u, "delete").await?;
            writeln!(out, "{u} deleted (its sessions are closed)")?;
        }
        Action::ResetOtp(u) => {
            let u = name(u)?;
            if c.account(&u).await?.is_none() {
                bail!("no such user: {u}");
            }
            let keys = ServerKeys::load(data_dir).context("reading server.key")?;
            let secret = Zeroizing::new(random::<SECRET_LEN>()?);
            let sealed = keys.seal_totp(&u, &secret[..])?;
            let mut buf = Zeroizing::new([0u8; 512]);
            let uri = otpauth_uri(
                &mut buf[..],
                issuer,
                &u,
                &secret[..],
                Algorithm::Sha1,
                6,
                30,
            )
            .map_err(|e| anyhow::anyhow!("otpauth URI: {e}"))?;
            c.reset_otp(&u, sealed).await?;
            c.admin_event(&u, "reset-otp").await?;
            writeln!(
                out,
                "{u}: new TOTP secret; the account is pending until its next login with this code."
            )?;
            writeln!(out, "Hand this URI to the user (shown once):")?;
            writeln!(out, "{uri}")?;
        }
        Action::Role(u, role) => {
            let u = name(u)?;
            if role != "op" && role != "user" {
                bail!("role must be op or user");
            }
            if !c.set_role(&u, role).await? {
                bail!("no such user: {u}");
            }
            c.admin_event(&u, &format!("role:{role}")).await?;
            writeln!(out, "{u} is now {role}")?;
        }
    }
    Ok(())
}
