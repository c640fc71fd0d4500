//! What a logged-in user can do (see docs/DESIGN.md, "Server: chat and bus"): [`handle`]
//! dispatches each message to its command family — [`rooms`], [`messages`], [`users`],
//! [`moderation`]. A command reads the chat state and the database, answers in [`Replies`]
//! and reaches everyone else only by publishing effects on the bus.

pub(crate) mod messages;
pub(crate) mod moderation;
pub(crate) mod rooms;
pub(crate) mod users;

use std::sync::Arc;

use chatbox_core::proto::{
    ClientMsg, ErrorCode, MAX_TEXT_LEN, MessageKind, PresenceKind, ServerMsg,
};
use chatbox_core::username;

use super::service::{Chat, Limits};
use super::{Me, Replies, records};

const HELP: &[&str] = &[
    "Commands:",
    "  /join #room            join (or create) a room",
    "  /part [#room] [reason] leave a room",
    "  /list                  list rooms",
    "  /names [#room]         who is in a room",
    "  /topic [#room] [text]  show or set a room's topic",
    "  /msg user text         private message",
    "  /me text               action",
    "  /whois user            about a user",
    "  /away [text]           set or clear an away message",
    "  /history [#room|user]  older messages",
    "  /help                  this list",
    "  /quit                  leave",
    "Operators: /kick #room user [reason], /ban user [seconds] [reason] (0 = permanent),",
    "  /unban user, /mute user [seconds] [reason], /unmute user, /motd text",
    "Account: /sessions, /sessions revoke ID|others, /passwd, /reenrol (then /reenrol confirm CODE)",
];

/// Handles one message of a logged-in user (auth messages and Ping/Bye are the caller's).
pub(crate) async fn handle(chat: &Chat, me: &Me, msg: &ClientMsg<'_>, out: &mut Replies) {
    match *msg {
        ClientMsg::Say { room, text } => {
            messages::post(chat, me, room, MessageKind::Say, text, out).await;
        }
        ClientMsg::Action { target, text } => {
            messages::post(chat, me, target, MessageKind::Action, text, out).await;
        }
        ClientMsg::Private { to, text } => {
            if to.starts_with('#') {
                out.error(ErrorCode::NoSuchUser, "private messages go to a user");
            } else {
                messages::post(chat, me, to, MessageKind::Private, text, out).await;
            }
        }
        ClientMsg::History {
            target,
            before_id,
            limit,
        } => messages::history(chat, me, target, before_id, limit, out).await,
        ClientMsg::Join { room } => rooms::join(chat, me, room, out).await,
        ClientMsg::Part { room, reason } => rooms::part(chat, me, room, reason, out),
        ClientMsg::Names { room } => rooms::names(chat, room, out),
        ClientMsg::ListRooms => rooms::list(chat, out),
        ClientMsg::Topic { room, topic: None } => rooms::show_topic(chat, room, out),
        ClientMsg::Topic {
            room,
            topic: Some(text),
        } => rooms::set_topic(chat, me, room, text, out).await,
        ClientMsg::Whois { user } => users::whois(chat, user, out).await,
        ClientMsg::Away { text } => users::away(chat, me, text, out),
        ClientMsg::Help => {
            for line in HELP {
                out.info(line);
            }
        }
        ClientMsg::Kick { room, user, reason } => {
            moderation::kick(chat, me, room, user, reason, out).await;
        }
        ClientMsg::Ban {
            user,
            seconds,
            reason,
        } => moderation::ban(chat, me, user, seconds, reason, out).await,
        ClientMsg::Unban { user } => moderation::unban(chat, me, user, out).await,
        ClientMsg::Mute {
            user,
            seconds,
            reason,
        } => moderation::mute(chat, me, user, seconds, reason, out).await,
        ClientMsg::Unmute { user } => moderation::unmute(chat, me, user, out).await,
        ClientMsg::SetMotd { text } => moderation::set_motd(chat, me, text, out).await,
        ClientMsg::Register { .. } | ClientMsg::ConfirmTotp { .. } | ClientMsg::Login { .. } => {
            out.error(ErrorCode::BadState, "already logged in");
        }
        ClientMsg::Ping { .. } | ClientMsg::Bye => {}
        _ => out.error(ErrorCode::Malformed, "unsupported message"),
    }
}

fn presence(room: &str, user: &str, kind: PresenceKind, text: &str) -> Arc<[u8]> {
    records::shared(&ServerMsg::Presence {
        room,
        user,
        kind,
        text,
    })
}

fn store_failed(chat: &Chat, out: &mut Replies, e: &crate::store::StoreError) {
    chat.logs.info(format!("database error: {e}"));
    out.error(ErrorCode::Internal, "server error, nothing was stored");
}

/// The `RateLimit` announcing this server's token bucket (`--rate`, `--burst`), so that clients
/// can pace themselves instead of being refused.
pub(crate) fn rate_limit(c: &Limits) -> ServerMsg<'static> {
    // Both are clamped at start (rate ≥ 0.1, burst ≥ 1); the casts saturate beyond u32.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let (milli_per_sec, burst) = (
        (c.rate_per_sec * 1000.0).round() as u32,
        c.rate_burst.floor() as u32,
    );
    ServerMsg::RateLimit {
        milli_per_sec,
        burst,
    }
}

/// A reason (part, kick, ban, mute) is text like any other: at most `MAX_TEXT_LEN` bytes.
fn reason_ok(reason: &str, out: &mut Replies) -> bool {
    if reason.len() > MAX_TEXT_LEN {
        out.error(ErrorCode::TooLong, "reason longer than 1024 bytes");
        return false;
    }
    true
}

fn user_arg(raw: &str, out: &mut Replies) -> Option<String> {
    match username::normalize(raw) {
        Ok(u) => Some(u.as_str().to_owned()),
        Err(_) => {
            out.error(ErrorCode::NoSuchUser, "no such user");
            None
        }
    }
}
