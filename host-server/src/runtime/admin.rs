//! Administrators' changes on live sessions: `chatbox-server user …` writes `ADMIN_EVENTS` on
//! the (shared) database; every node polls it and applies each change to its own sessions
//! (close them, or tell them their new role). See docs/DESIGN.md, "Server: connections and
//! runtime".

use core::time::Duration;
use std::collections::HashSet;
use std::sync::Arc;

use chatbox_core::proto::ServerMsg;

use super::admission::Admission;
use crate::chat::{Chat, records};
use crate::logs::Logs;
use crate::store::Store;

/// How far back each poll of `ADMIN_EVENTS` looks (ids already applied are remembered), so a
/// change whose id PostgreSQL commits after a larger one is still seen.
pub(crate) const ADMIN_WINDOW_MS: u64 = 10 * 60 * 1000;

/// Applies administrators' changes (rows of `ADMIN_EVENTS`, written by `chatbox-server user
/// …` on the shared database) to this node's live sessions, looking every `admin_poll`.
/// `seen`: the ids already in the window when the node started (nothing of theirs to apply).
pub(crate) async fn admin_loop(
    chat: Arc<Chat>,
    store: Arc<Store>,
    logs: Logs,
    admission: Arc<Admission>,
    admin_poll: Duration,
    mut seen: HashSet<i64>,
) {
    let mut failing = false;
    loop {
        smol::Timer::after(admin_poll).await;
        if admission.shutting_down() {
            return;
        }
        let since = crate::time::now_ms().saturating_sub(ADMIN_WINDOW_MS);
        match store.admin_events(since).await {
            Ok(rows) => {
                if failing {
                    failing = false;
                    logs.info("admin changes: reading ADMIN_EVENTS works again");
                }
                let ids: HashSet<i64> = rows.iter().map(|r| r.id).collect();
                for ev in rows {
                    if seen.insert(ev.id) {
                        apply_admin(&chat, &logs, &ev.user, &ev.action);
                    }
                }
                seen.retain(|id| ids.contains(id));
            }
            Err(e) => {
                // Once per outage, not once per poll.
                if !failing {
                    failing = true;
                    logs.info(format!(
                        "admin changes: reading ADMIN_EVENTS failed: {e} (retrying)"
                    ));
                }
            }
        }
    }
}

/// One administrator's change, on this node's sessions of `user`.
fn apply_admin(chat: &Chat, logs: &Logs, user: &str, action: &str) {
    let bye = match action {
        "lock" => Some("account locked by an administrator"),
        "delete" => Some("account deleted by an administrator"),
        "reset-otp" => Some("second factor reset by an administrator; log in with the new code"),
        _ => None,
    };
    if let Some(reason) = bye {
        let n = chat.disconnect_here(user, records::shared(&ServerMsg::Bye { reason }));
        logs.info(format!(
            "admin: {action} {user}: {n} session(s) on this node closed"
        ));
    } else if let Some(role) = action.strip_prefix("role:") {
        let text = format!("an administrator changed your role to {role}");
        chat.tell_here(user, records::shared(&ServerMsg::Info { text: &text }));
        logs.info(format!("admin: {user} is now {role} (told on this node)"));
    }
}
