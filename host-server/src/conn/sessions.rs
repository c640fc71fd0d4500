//! A user's own sessions, for account self-service: list them, close one, close the others.
//! The sessions are chat's (every node's: `Chat::sessions`, `Chat::close_sessions`); the
//! credentials log line is the account's (docs/DESIGN.md, "Server: connections and runtime").

use chatbox_core::proto::{ErrorCode, ServerMsg};

use super::Env;
use crate::auth::Refusal;
use crate::auth::account::{BYE_REVOKED, Who};
use crate::chat::{SessionInfo, records};

/// Closes every other session of `user` (all nodes); returns how many there were.
pub(crate) fn close_others(env: &Env, who: Who<'_>, reason: &str) -> u32 {
    let others = env
        .chat
        .sessions(who.user)
        .into_iter()
        .filter(|s| !(s.node == env.node && s.conn == who.conn))
        .count();
    if others > 0 {
        env.chat.close_sessions(
            who.user,
            None,
            Some((env.node.clone(), who.conn)),
            records::shared(&ServerMsg::Bye { reason }),
        );
    }
    u32::try_from(others).unwrap_or(u32::MAX)
}

/// The session id shown to users: `NODE/CONN`.
pub(crate) fn session_id(s: &SessionInfo) -> String {
    format!("{}/{}", s.node, s.conn)
}

/// `RevokeSession` (`id` Some) or `RevokeOtherSessions`: how many were closed.
pub(crate) fn revoke(env: &Env, who: Who<'_>, id: Option<&str>) -> Result<u32, Refusal> {
    let Some(id) = id else {
        let n = close_others(env, who, BYE_REVOKED);
        env.logs.credentials(format!(
            "sessions revoked by owner user={} from={} which=others count={n}",
            who.user, who.ip_port
        ));
        return Ok(n);
    };
    let target = env
        .chat
        .sessions(who.user)
        .into_iter()
        .find(|s| session_id(s) == id && !(s.node == env.node && s.conn == who.conn));
    let Some(t) = target else {
        return Err(Refusal::keep(
            ErrorCode::NoSuchSession,
            "no such session of yours (see /sessions; this session cannot revoke itself)",
        ));
    };
    env.chat.close_sessions(
        who.user,
        Some((t.node.clone(), t.conn)),
        None,
        records::shared(&ServerMsg::Bye {
            reason: BYE_REVOKED,
        }),
    );
    env.logs.credentials(format!(
        "session revoked by owner user={} from={} session={id} (at {})",
        who.user, who.ip_port, t.address
    ));
    Ok(1)
}
