//! Moderation, for operators: kick, ban, unban, mute, unmute, the MOTD. Operator rights are
//! read from the database at each use (see docs/DESIGN.md, "Server: chat and bus").

use chatbox_core::proto::{ErrorCode, MAX_TEXT_LEN, PresenceKind, ServerMsg};

use super::{presence, reason_ok, store_failed, user_arg};
use crate::bus::Effect;
use crate::chat::service::Chat;
use crate::chat::{Me, Replies, Role, records, sanitize};
use crate::store::Sanction;
use crate::time::{fmt_utc, now_ms};

/// Operator rights, read from the database at each use: an administrator's `user role NAME
/// user` (or `lock`, `delete`) holds from the next command on, on every node. A locked or
/// unconfirmed account has no rights.
async fn is_op(chat: &Chat, me: &Me, out: &mut Replies) -> bool {
    match chat.store.account(&me.user).await {
        Ok(Some(a))
            if Role::from_db(&a.role) == Role::Op
                && !a.pending_reg
                && a.locked_until <= now_ms() =>
        {
            true
        }
        Ok(_) => {
            out.error(ErrorCode::NotPermitted, "operators only");
            false
        }
        Err(e) => {
            store_failed(chat, out, &e);
            false
        }
    }
}

/// The checks a moderation command on a user starts with, in this order: the caller's rights,
/// the reason's length (when it takes one), the target's name. The target's normalized name, or
/// `None` when refused (the answer is in `out`).
async fn target(
    chat: &Chat,
    me: &Me,
    user: &str,
    reason: Option<&str>,
    out: &mut Replies,
) -> Option<String> {
    if !is_op(chat, me, out).await || !reason.is_none_or(|r| reason_ok(r, out)) {
        return None;
    }
    user_arg(user, out)
}

fn until(seconds: u32) -> u64 {
    if seconds == 0 {
        0
    } else {
        now_ms().saturating_add(u64::from(seconds) * 1000)
    }
}

fn describe(until_ms: u64) -> String {
    if until_ms == 0 {
        "permanently".to_owned()
    } else {
        format!("until {}", fmt_utc(until_ms))
    }
}

/// Removes a user from a room on every node: one event, so every node removes them and the
/// room and the user hear it together.
pub(crate) async fn kick(
    chat: &Chat,
    me: &Me,
    room: &str,
    user: &str,
    reason: &str,
    out: &mut Replies,
) {
    let Some(user) = target(chat, me, user, Some(reason), out).await else {
        return;
    };
    let reason = sanitize::clean(reason);
    let p = presence(room, &user, PresenceKind::Kicked, &reason);
    {
        let mut s = chat.bus.lock();
        if !s.user_in_room(room, &user) {
            out.error(ErrorCode::NoSuchUser, "that user is not in the room");
            return;
        }
        chat.bus
            .publish_in(&mut s, kick_effects(me, room, &user, &p));
    }
    out.record(p);
    chat.logs
        .info(format!("{} kicked {user} from {room}", me.user));
}

/// A kick's effects: out of the room everywhere, then the room and the user hear it.
pub(crate) fn kick_effects(
    me: &Me,
    room: &str,
    user: &str,
    p: &std::sync::Arc<[u8]>,
) -> Vec<Effect> {
    vec![
        Effect::Kick {
            room: room.to_owned(),
            user: user.to_owned(),
        },
        Effect::Room {
            room: room.to_owned(),
            except: Some(me.id),
            rec: p.clone(),
        },
        Effect::User {
            user: user.to_owned(),
            except: None,
            rec: p.clone(),
        },
    ]
}

/// Bans a user (stored), tells their rooms and closes their connections on every node.
pub(crate) async fn ban(
    chat: &Chat,
    me: &Me,
    user: &str,
    seconds: u32,
    reason: &str,
    out: &mut Replies,
) {
    let Some(user) = target(chat, me, user, Some(reason), out).await else {
        return;
    };
    let reason = sanitize::clean(reason);
    match chat.store.account(&user).await {
        Ok(Some(_)) => {}
        Ok(None) => return out.error(ErrorCode::NoSuchUser, "no such user"),
        Err(e) => return store_failed(chat, out, &e),
    }
    let until_ms = until(seconds);
    if let Err(e) = chat
        .store
        .add_sanction(Sanction::Ban, &user, until_ms, &reason, &me.user, now_ms())
        .await
    {
        return store_failed(chat, out, &e);
    }
    let bye = format!("banned {}: {reason}", describe(until_ms));
    {
        let mut s = chat.bus.lock();
        let mut effects: Vec<Effect> = s
            .user_rooms(&user)
            .into_iter()
            .map(|room| {
                let rec = presence(&room, &user, PresenceKind::Banned, &reason);
                Effect::Room {
                    room,
                    except: Some(me.id),
                    rec,
                }
            })
            .collect();
        effects.push(Effect::Disconnect {
            user: user.clone(),
            rec: records::shared(&ServerMsg::Bye { reason: &bye }),
        });
        chat.bus.publish_in(&mut s, effects);
    }
    chat.logs
        .info(format!("{} banned {user} {}", me.user, describe(until_ms)));
    out.info(&format!("{user} banned {}", describe(until_ms)));
}

/// Lifts a ban (stored; the user may log in again).
pub(crate) async fn unban(chat: &Chat, me: &Me, user: &str, out: &mut Replies) {
    let Some(user) = target(chat, me, user, None, out).await else {
        return;
    };
    match chat.store.remove_sanction(Sanction::Ban, &user).await {
        Ok(true) => {
            chat.logs.info(format!("{} unbanned {user}", me.user));
            out.info(&format!("{user} unbanned"));
        }
        Ok(false) => out.error(ErrorCode::NoSuchUser, "that user is not banned"),
        Err(e) => store_failed(chat, out, &e),
    }
}

/// Mutes a user (stored, then in force on every node); they hear it.
pub(crate) async fn mute(
    chat: &Chat,
    me: &Me,
    user: &str,
    seconds: u32,
    reason: &str,
    out: &mut Replies,
) {
    let Some(user) = target(chat, me, user, Some(reason), out).await else {
        return;
    };
    let reason = sanitize::clean(reason);
    let until_ms = until(seconds);
    if let Err(e) = chat
        .store
        .add_sanction(Sanction::Mute, &user, until_ms, &reason, &me.user, now_ms())
        .await
    {
        return store_failed(chat, out, &e);
    }
    chat.bus.publish(vec![
        Effect::Mute {
            user: user.clone(),
            until_ms: Some(until_ms),
        },
        Effect::User {
            user: user.clone(),
            except: None,
            rec: presence("", &user, PresenceKind::Muted, &reason),
        },
    ]);
    chat.logs
        .info(format!("{} muted {user} {}", me.user, describe(until_ms)));
    out.info(&format!("{user} muted {}", describe(until_ms)));
}

/// Lifts a mute (stored, then on every node).
pub(crate) async fn unmute(chat: &Chat, me: &Me, user: &str, out: &mut Replies) {
    let Some(user) = target(chat, me, user, None, out).await else {
        return;
    };
    match chat.store.remove_sanction(Sanction::Mute, &user).await {
        Ok(found) => {
            chat.bus.publish(vec![Effect::Mute {
                user: user.clone(),
                until_ms: None,
            }]);
            if found {
                chat.logs.info(format!("{} unmuted {user}", me.user));
                out.info(&format!("{user} unmuted"));
            } else {
                out.error(ErrorCode::NoSuchUser, "that user is not muted");
            }
        }
        Err(e) => store_failed(chat, out, &e),
    }
}

/// Sets the MOTD (stored, then on every node, for the next logins).
pub(crate) async fn set_motd(chat: &Chat, me: &Me, text: &str, out: &mut Replies) {
    if !is_op(chat, me, out).await {
        return;
    }
    if text.len() > MAX_TEXT_LEN {
        out.error(ErrorCode::TooLong, "MOTD longer than 1024 bytes");
        return;
    }
    let text = sanitize::clean(text);
    if let Err(e) = chat.store.set_motd(&text).await {
        return store_failed(chat, out, &e);
    }
    chat.bus.publish(vec![Effect::Motd(text)]);
    chat.logs.info(format!("{} set the MOTD", me.user));
    out.info("MOTD updated");
}
