//! Messages: room messages, actions, private messages (stored for later when the recipient is
//! offline), and history (see docs/DESIGN.md, "Server: chat and bus").

use chatbox_core::proto::{
    ChatMessage, ErrorCode, MAX_TEXT_LEN, MessageKind, ServerMsg, is_valid_room,
};
use chatbox_core::username;

use super::{store_failed, user_arg};
use crate::bus::Effect;
use crate::chat::service::Chat;
use crate::chat::{JOIN_HISTORY, MAX_HISTORY, Me, Replies, records, sanitize};
use crate::time::now_ms;

/// Stores a message, then fans it out; the sender's copy (with the id) is the acknowledgement.
pub(crate) async fn post(
    chat: &Chat,
    me: &Me,
    target: &str,
    kind: MessageKind,
    raw: &str,
    out: &mut Replies,
) {
    if raw.len() > MAX_TEXT_LEN {
        out.error(ErrorCode::TooLong, "message longer than 1024 bytes");
        return;
    }
    if chat.bus.lock().muted(&me.user, now_ms()) {
        out.error(ErrorCode::Muted, "you are muted");
        return;
    }
    // Judged after cleaning: a message of zero-width spaces is as empty as an empty one.
    let text = sanitize::clean(raw);
    if text.trim().is_empty() {
        out.error(ErrorCode::Malformed, "empty message");
        return;
    }
    let is_room = target.starts_with('#');
    let mut offline = false;
    let target = if is_room {
        if !is_valid_room(target) {
            out.error(ErrorCode::InvalidRoom, "invalid room name");
            return;
        }
        if !chat.bus.lock().in_room(me.id, target) {
            out.error(ErrorCode::NotInRoom, "join the room first");
            return;
        }
        target.to_owned()
    } else {
        let Ok(peer) = username::normalize(target) else {
            out.error(ErrorCode::NoSuchUser, "no such user");
            return;
        };
        let peer = peer.as_str().to_owned();
        let online = chat.bus.lock().online(&peer);
        if !online {
            match chat.store.account(&peer).await {
                Ok(Some(a)) if !a.pending_reg => offline = true,
                Ok(_) => {
                    out.error(ErrorCode::NoSuchUser, "no such user");
                    return;
                }
                Err(e) => return store_failed(chat, out, &e),
            }
        }
        peer
    };
    let time_ms = now_ms();
    let cap = chat.limits.max_offline_per_sender;
    let began = chat.metrics.store_began();
    let stored = if offline && target != me.user {
        // Stored for later: at most `max_offline_per_sender` from one sender until the
        // recipient has been online again.
        chat.store
            .insert_offline(time_ms, &target, &me.user, kind.to_wire(), &text, cap)
            .await
    } else {
        chat.store
            .insert_message(time_ms, &target, &me.user, kind.to_wire(), &text)
            .await
            .map(Some)
    };
    chat.metrics.message_stored(began);
    let id = match stored {
        Ok(Some(id)) => id,
        Ok(None) => {
            chat.logs.info_coalesced(
                &format!("offline limit {} to {target}", me.user),
                format!(
                    "private message refused: {target} is offline and holds {cap} from {} (limit)",
                    me.user
                ),
            );
            out.error(
                ErrorCode::OfflineLimit,
                &format!(
                    "{target} is offline and already has {cap} messages from you; try again once they have been online"
                ),
            );
            return;
        }
        Err(e) => return store_failed(chat, out, &e),
    };
    chat.metrics.message();
    let rec = records::shared(&ServerMsg::Message(ChatMessage {
        id,
        time_ms,
        target: &target,
        from: &me.user,
        kind,
        text: &text,
    }));
    let mut effects = Vec::with_capacity(2);
    if is_room {
        effects.push(Effect::Room {
            room: target.clone(),
            except: Some(me.id),
            rec: rec.clone(),
        });
    } else {
        effects.push(Effect::User {
            user: target.clone(),
            except: Some(me.id),
            rec: rec.clone(),
        });
        if target != me.user {
            effects.push(Effect::User {
                user: me.user.clone(),
                except: Some(me.id),
                rec: rec.clone(),
            });
        }
    }
    chat.bus.publish(effects);
    out.record(rec);
    let k = kind.name();
    chat.logs
        .chat(format!("id={id} {target} <{}> {k}: {text}", me.user));
}

/// Older messages of a room the user is in, or of a private conversation.
pub(crate) async fn history(
    chat: &Chat,
    me: &Me,
    target: &str,
    before_id: u64,
    limit: u16,
    out: &mut Replies,
) {
    let limit = match u32::from(limit) {
        0 => JOIN_HISTORY,
        n => n.min(MAX_HISTORY),
    };
    let target = if target.starts_with('#') {
        if !chat.bus.lock().in_room(me.id, target) {
            out.error(ErrorCode::NotInRoom, "join the room first");
            return;
        }
        target.to_owned()
    } else {
        let Some(u) = user_arg(target, out) else {
            return;
        };
        u
    };
    match chat
        .store
        .history(&me.user, &target, before_id, limit)
        .await
    {
        Ok(h) => out.all(records::history(&target, &h)),
        Err(e) => store_failed(chat, out, &e),
    }
}
