//! Rooms: join, part, names, list, topics (see docs/DESIGN.md, "Server: chat and bus").

use chatbox_core::proto::{ErrorCode, MAX_TEXT_LEN, PresenceKind, ServerMsg, is_valid_room};

use super::{presence, reason_ok, store_failed};
use crate::bus::Effect;
use crate::chat::service::Chat;
use crate::chat::{JOIN_HISTORY, LOBBY, Me, Replies, records, sanitize};
use crate::store::TopicRow;
use crate::time::now_ms;

fn topic_msg<'a>(room: &'a str, t: Option<&'a TopicRow>) -> ServerMsg<'a> {
    ServerMsg::Topic {
        room,
        topic: t.map_or("", |t| t.topic.as_str()),
        set_by: t.map_or("", |t| t.set_by.as_str()),
        time_ms: t.map_or(0, |t| t.time_ms),
    }
}

/// Joins a room: at most `max_rooms_per_user` rooms per user over all its connections (the
/// lobby, joined at login, counts but is never refused). The check and the join are one step
/// under the state's lock.
pub(crate) async fn join(chat: &Chat, me: &Me, room: &str, out: &mut Replies) {
    if !is_valid_room(room) {
        out.error(
            ErrorCode::InvalidRoom,
            "room names are # then 1-31 of a-z 0-9 _ . -",
        );
        return;
    }
    let max = chat.limits.max_rooms_per_user;
    {
        let mut s = chat.bus.lock();
        // Not a logged-in connection of this node (a race with its end): nothing to join.
        if !s.in_room(me.id, room) && s.user_of(me.id).is_some() {
            let rooms = s.user_rooms(&me.user);
            let n = rooms.len();
            if room != LOBBY && !rooms.iter().any(|r| r == room) && n >= max {
                drop(s);
                chat.logs.info_coalesced(
                    &format!("room limit {}", me.user),
                    format!(
                        "join {room} refused: {} is in {n} rooms (limit {max})",
                        me.user
                    ),
                );
                out.error(
                    ErrorCode::TooManyRooms,
                    &format!("you are in {n} rooms, the most allowed; /part one first"),
                );
                return;
            }
            let p = presence(room, &me.user, PresenceKind::Join, "");
            chat.bus.publish_in(
                &mut s,
                vec![
                    Effect::Join {
                        conn: me.id,
                        room: room.to_owned(),
                    },
                    Effect::Room {
                        room: room.to_owned(),
                        except: Some(me.id),
                        rec: p.clone(),
                    },
                ],
            );
            out.record(p);
        }
        out.msg(&topic_msg(room, s.topic(room)));
        out.all(records::names(room, &s.names(room).unwrap_or_default()));
    }
    match chat.store.history(&me.user, room, 0, JOIN_HISTORY).await {
        Ok(h) => out.all(records::history(room, &h)),
        Err(e) => store_failed(chat, out, &e),
    }
}

/// Leaves a room; the room (and the user) hear the `Part` with its reason.
pub(crate) fn part(chat: &Chat, me: &Me, room: &str, reason: &str, out: &mut Replies) {
    if !reason_ok(reason, out) {
        return;
    }
    let mut s = chat.bus.lock();
    if !s.in_room(me.id, room) {
        out.error(ErrorCode::NotInRoom, "not in that room");
        return;
    }
    let reason = sanitize::clean(reason);
    let p = presence(room, &me.user, PresenceKind::Part, &reason);
    chat.bus.publish_in(
        &mut s,
        vec![
            Effect::Part {
                conn: me.id,
                room: room.to_owned(),
            },
            Effect::Room {
                room: room.to_owned(),
                except: None,
                rec: p.clone(),
            },
        ],
    );
    out.record(p);
}

/// Who is in a room, on every node.
pub(crate) fn names(chat: &Chat, room: &str, out: &mut Replies) {
    match chat.bus.lock().names(room) {
        Some(users) => out.all(records::names(room, &users)),
        None => out.error(ErrorCode::NoSuchRoom, "no such room"),
    }
}

/// Every non-empty room with its members and topic.
pub(crate) fn list(chat: &Chat, out: &mut Replies) {
    let rooms = chat.bus.lock().list();
    for (room, members, topic) in &rooms {
        out.msg(&ServerMsg::RoomEntry {
            room,
            members: *members,
            topic,
        });
    }
    out.info(&format!("end of room list ({} rooms)", rooms.len()));
}

/// A room's topic.
pub(crate) fn show_topic(chat: &Chat, room: &str, out: &mut Replies) {
    if !is_valid_room(room) {
        out.error(ErrorCode::InvalidRoom, "invalid room name");
        return;
    }
    let s = chat.bus.lock();
    out.msg(&topic_msg(room, s.topic(room)));
}

/// Sets a room's topic (a member who is not muted): stored, then every node learns it and the
/// room hears it.
pub(crate) async fn set_topic(chat: &Chat, me: &Me, room: &str, text: &str, out: &mut Replies) {
    {
        let s = chat.bus.lock();
        if !s.in_room(me.id, room) {
            out.error(ErrorCode::NotInRoom, "join the room first");
            return;
        }
        if s.muted(&me.user, now_ms()) {
            out.error(ErrorCode::Muted, "you are muted");
            return;
        }
    }
    if text.len() > MAX_TEXT_LEN {
        out.error(ErrorCode::TooLong, "topic longer than 1024 bytes");
        return;
    }
    let row = TopicRow {
        room: room.to_owned(),
        topic: sanitize::clean(text),
        set_by: me.user.clone(),
        time_ms: now_ms(),
    };
    if let Err(e) = chat.store.set_topic(row.clone()).await {
        return store_failed(chat, out, &e);
    }
    let rec = records::shared(&topic_msg(room, Some(&row)));
    chat.bus.publish(vec![
        Effect::Topic(row),
        Effect::Room {
            room: room.to_owned(),
            except: Some(me.id),
            rec: rec.clone(),
        },
    ]);
    out.record(rec);
}
