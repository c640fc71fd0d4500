//! Start-up steps that are neither wiring nor serving: the settings `start` refuses, private
//! directories and files, the admission notes and the first-run operator invite. See
//! docs/DESIGN.md, "Server: connections and runtime".

use core::net::SocketAddr;
use core::time::Duration;
use std::io;

use chatbox_core::password::{MAX_ITERATIONS, MIN_ITERATIONS};

use crate::config::Config;
use crate::keys::ServerKeys;
use crate::logs::Logs;
use crate::private;
use crate::store::{Database, Store};

/// The settings `start` refuses before touching the disk.
pub(crate) fn validate(config: &Config) -> io::Result<()> {
    if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&config.pbkdf2_iterations) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("--pbkdf2-iterations must be within {MIN_ITERATIONS}..={MAX_ITERATIONS}"),
        ));
    }
    if config.register_timeout.is_zero() || config.register_timeout > Duration::from_secs(60) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "--register-timeout must be within 1..=60 seconds",
        ));
    }
    Ok(())
}

/// Creates the data and log directories 0700 (and the SQLite file 0600, so its `-wal` and
/// `-shm` are too), and tightens what already exists there with group or other access. Returns
/// what it changed (for `info.log`); an error if something stays readable by others.
pub(crate) fn make_private(config: &Config) -> io::Result<Vec<String>> {
    let mut notes = Vec::new();
    private::create_dir(&config.data_dir)?;
    notes.extend(private::tighten_dir(
        &config.data_dir,
        &["chatbox.db", crate::keys::KEY_FILE, "chat"],
    )?);
    if let Database::Sqlite(db) = config.database() {
        if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
            private::create_dir(dir)?;
        }
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut p = db.clone().into_os_string();
            p.push(suffix);
            notes.extend(private::tighten(std::path::Path::new(&p))?);
        }
        private::create_file(&db)?;
    }
    // The log directory may be impossible to create (the server then runs without logs).
    if config.log_dir.exists() {
        notes.extend(private::tighten_dir(
            &config.log_dir,
            &["chat.log", "info.log", "sql.log", "credentials.log"],
        )?);
    }
    notes.dedup();
    Ok(notes)
}

/// The admission notes at start: the `open`-on-a-public-address warning, and the first-run
/// operator invite (created when invites are required and no account is confirmed yet).
pub(crate) async fn admission_notes(
    config: &Config,
    store: &Store,
    keys: &ServerKeys,
    logs: &Logs,
    local: SocketAddr,
) -> (Vec<String>, Option<String>) {
    use crate::invite::{CreateOpts, Registration, create, listen_host_port};
    let mut notes = Vec::new();
    if config.registration == Registration::Open && !local.ip().is_loopback() {
        let w = format!(
            "warning: registration is open and the server listens on {local}: anyone who can reach it can register. Start with --registration invite (CHATBOX_REGISTRATION=invite) to require invites (chatbox-server invite create)."
        );
        logs.info(w.clone());
        notes.push(w);
    }
    if config.registration != Registration::Invite {
        return (notes, None);
    }
    match store.confirmed_accounts().await {
        Ok(0) => {}
        Ok(_) => return (notes, None),
        Err(e) => {
            logs.info(format!("first-run invite: {e}"));
            return (notes, None);
        }
    }
    let opts = CreateOpts {
        uses: 1,
        expires: Duration::from_secs(7 * 86_400),
        role: "op".to_owned(),
        note: "first-run operator invite".to_owned(),
        server: config
            .public_address
            .clone()
            .unwrap_or_else(|| listen_host_port(local)),
    };
    match create(store, keys, &opts).await {
        Ok((id, link)) => {
            logs.info(format!(
                "no confirmed account and registration by invite: created first-run operator invite {id} (1 use, 7 days; link on stdout)"
            ));
            logs.credentials(format!(
                "invite created invite={id} role=op uses=1 (first run)"
            ));
            notes.push(
                "No account yet: register the first operator with this invite (1 use, 7 days): chatbox-client register --invite LINK --user NAME"
                    .to_owned(),
            );
            (notes, Some(link.to_string()))
        }
        Err(e) => {
            logs.info(format!("first-run invite: {e:#}"));
            (notes, None)
        }
    }
}
