//! Users: whois and away (see docs/DESIGN.md, "Server: chat and bus").

use chatbox_core::proto::{ErrorCode, MAX_TEXT_LEN, PresenceKind, ServerMsg, StrList};

use super::{presence, store_failed, user_arg};
use crate::bus::Effect;
use crate::chat::service::Chat;
use crate::chat::{Me, Replies, Role, sanitize};

/// About a user: role, online on any node, away message, rooms.
pub(crate) async fn whois(chat: &Chat, user: &str, out: &mut Replies) {
    let Some(user) = user_arg(user, out) else {
        return;
    };
    match chat.store.account(&user).await {
        Ok(Some(a)) if !a.pending_reg => {
            let (rooms, online, away) = {
                let s = chat.bus.lock();
                (
                    s.user_rooms(&user),
                    s.online(&user),
                    s.away(&user).to_owned(),
                )
            };
            let rooms: Vec<&str> = rooms.iter().map(String::as_str).collect();
            out.msg(&ServerMsg::Whois {
                user: &user,
                role: Role::from_db(&a.role).as_str(),
                online,
                away: &away,
                registered_ms: a.created,
                rooms: StrList::Items(&rooms),
            });
        }
        Ok(_) => out.error(ErrorCode::NoSuchUser, "no such user"),
        Err(e) => store_failed(chat, out, &e),
    }
}

/// Sets (or, empty, clears) the user's away message; the rooms they are in hear it.
pub(crate) fn away(chat: &Chat, me: &Me, text: &str, out: &mut Replies) {
    if text.len() > MAX_TEXT_LEN {
        out.error(ErrorCode::TooLong, "away message too long");
        return;
    }
    // Only invisible characters or spaces: back, not away with a blank text.
    let text = sanitize::clean(text);
    let text = if text.trim().is_empty() {
        String::new()
    } else {
        text
    };
    let kind = if text.is_empty() {
        PresenceKind::Back
    } else {
        PresenceKind::Away
    };
    let mut s = chat.bus.lock();
    let mut effects = vec![Effect::Away {
        user: me.user.clone(),
        text: text.clone(),
    }];
    for room in s.user_rooms(&me.user) {
        let rec = presence(&room, &me.user, kind, &text);
        effects.push(Effect::Room {
            room,
            except: Some(me.id),
            rec,
        });
    }
    chat.bus.publish_in(&mut s, effects);
    drop(s);
    out.msg(&ServerMsg::Presence {
        room: "",
        user: &me.user,
        kind,
        text: &text,
    });
}
