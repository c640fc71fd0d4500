//! What a logged-in user can do.

use chatbox_core::proto::{
    ChatMessage, ClientMsg, ErrorCode, MAX_TEXT_LEN, MessageKind, PresenceKind, ServerMsg, StrList,
    is_valid_room,
};
use chatbox_core::username;

use super::bus::EventKind;
use super::hub::{ConnId, Departed, Join};
use super::{JOIN_HISTORY, LOBBY, MAX_HISTORY, Me, Replies, records, sanitize};
use crate::server::Shared;
use crate::store::{Sanction, TopicRow};
use crate::time::{fmt_utc, now_ms};

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

fn presence(room: &str, user: &str, kind: PresenceKind, text: &str) -> std::sync::Arc<[u8]> {
    records::shared(&ServerMsg::Presence {
        room,
        user,
        kind,
        text,
    })
}

/// A record for every member of `room` on every node (except `except` of this node).
fn to_room(shared: &Shared, room: &str, rec: std::sync::Arc<[u8]>, except: Option<ConnId>) {
    shared.bus.publish(
        shared,
        EventKind::Room {
            room: room.to_owned(),
            except,
            rec,
        },
    );
}

/// A record for every connection of `user` on every node (except `except` of this node).
fn to_user(shared: &Shared, user: &str, rec: std::sync::Arc<[u8]>, except: Option<ConnId>) {
    shared.bus.publish(
        shared,
        EventKind::User {
            user: user.to_owned(),
            except,
            rec,
        },
    );
}

fn store_failed(shared: &Shared, out: &mut Replies, e: &crate::store::StoreError) {
    shared.logs.info(format!("database error: {e}"));
    out.error(ErrorCode::Internal, "server error, nothing was stored");
}

fn muted(shared: &Shared, user: &str) -> bool {
    let now = now_ms();
    shared
        .mutes
        .lock()
        .ok()
        .and_then(|m| m.get(user).copied())
        .is_some_and(|until| until == 0 || until > now)
}

/// The `RateLimit` announcing this server's token bucket (`--rate`, `--burst`), so that clients
/// can pace themselves instead of being refused.
fn rate_limit(c: &crate::Config) -> ServerMsg<'static> {
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

/// After a successful login: `LoginOk` with the MOTD, `RateLimit`, then #lobby.
pub async fn on_login(shared: &Shared, me: &Me, out: &mut Replies) {
    let motd = shared.motd.lock().map(|m| m.clone()).unwrap_or_default();
    out.msg(&ServerMsg::LoginOk {
        user: &me.user,
        motd: &motd,
    });
    out.msg(&rate_limit(&shared.config));
    join(shared, me, LOBBY, out).await;
}

/// A connection went away: the other nodes forget it; `Quit` to its rooms and offline if it
/// was the user's last connection anywhere.
pub async fn on_leave(shared: &Shared, id: ConnId, d: Departed) {
    let Some(user) = d.user else { return };
    shared.bus.publish(shared, EventKind::Gone { conn: id });
    if d.still_online {
        return;
    }
    for room in &d.rooms {
        to_room(
            shared,
            room,
            presence(room, &user, PresenceKind::Quit, ""),
            None,
        );
    }
    if let Err(e) = shared.store.set_offline(&user).await {
        shared.logs.info(format!("database error: {e}"));
    }
}

/// Joins a room: at most `max_rooms_per_user` rooms per user over all its connections (the
/// lobby, joined at login, counts but is never refused).
async fn join(shared: &Shared, me: &Me, room: &str, out: &mut Replies) {
    if !is_valid_room(room) {
        out.error(
            ErrorCode::InvalidRoom,
            "room names are # then 1-31 of a-z 0-9 _ . -",
        );
        return;
    }
    let max = shared.config.max_rooms_per_user;
    let joined = if room == LOBBY {
        shared.hub.join(me.id, room)
    } else {
        match shared.hub.join_limited(me.id, room, max) {
            Join::Joined => true,
            Join::Already => false,
            Join::TooMany(n) => {
                shared.logs.info_coalesced(
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
        }
    };
    if joined {
        shared.bus.publish(
            shared,
            EventKind::Join {
                conn: me.id,
                room: room.to_owned(),
            },
        );
        let p = presence(room, &me.user, PresenceKind::Join, "");
        to_room(shared, room, p.clone(), Some(me.id));
        out.record(p);
    }
    let t = shared.hub.topic(room);
    out.msg(&ServerMsg::Topic {
        room,
        topic: t.as_ref().map_or("", |t| t.topic.as_str()),
        set_by: t.as_ref().map_or("", |t| t.set_by.as_str()),
        time_ms: t.as_ref().map_or(0, |t| t.time_ms),
    });
    out.all(records::names(
        room,
        &shared.hub.names(room).unwrap_or_default(),
    ));
    match shared.store.history(&me.user, room, 0, JOIN_HISTORY).await {
        Ok(h) => out.all(records::history(room, &h)),
        Err(e) => store_failed(shared, out, &e),
    }
}

/// Stores a message, then fans it out; the sender's copy (with the id) is the acknowledgement.
async fn post(
    shared: &Shared,
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
    if muted(shared, &me.user) {
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
        if !shared.hub.in_room(me.id, target) {
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
        if !shared.hub.online(&peer) {
            match shared.store.account(&peer).await {
                Ok(Some(a)) if !a.pending_reg => offline = true,
                Ok(_) => {
                    out.error(ErrorCode::NoSuchUser, "no such user");
                    return;
                }
                Err(e) => return store_failed(shared, out, &e),
            }
        }
        peer
    };
    let time_ms = now_ms();
    let stored = if offline && target != me.user {
        // Stored for later: at most `max_offline_per_sender` from one sender until the
        // recipient has been online again.
        let cap = shared.config.max_offline_per_sender;
        shared
            .store
            .insert_offline(time_ms, &target, &me.user, kind.to_wire(), &text, cap)
            .await
    } else {
        shared
            .store
            .insert_message(time_ms, &target, &me.user, kind.to_wire(), &text)
            .await
            .map(Some)
    };
    let id = match stored {
        Ok(Some(id)) => id,
        Ok(None) => {
            shared.logs.info_coalesced(
                &format!("offline limit {} to {target}", me.user),
                format!(
                    "private message refused: {target} is offline and holds {} from {} (limit)",
                    shared.config.max_offline_per_sender, me.user
                ),
            );
            out.error(
                ErrorCode::OfflineLimit,
                &format!(
                    "{target} is offline and already has {} messages from you; try again once they have been online",
                    shared.config.max_offline_per_sender
                ),
            );
            return;
        }
        Err(e) => return store_failed(shared, out, &e),
    };
    shared.metrics.message();
    let rec = records::shared(&ServerMsg::Message(ChatMessage {
        id,
        time_ms,
        target: &target,
        from: &me.user,
        kind,
        text: &text,
    }));
    if is_room {
        to_room(shared, &target, rec.clone(), Some(me.id));
    } else {
        to_user(shared, &target, rec.clone(), Some(me.id));
        if target != me.user {
            to_user(shared, &me.user, rec.clone(), Some(me.id));
        }
    }
    out.record(rec);
    let k = kind.name();
    shared
        .logs
        .chat(format!("id={id} {target} <{}> {k}: {text}", me.user));
}

/// Operator rights, read from the database at each use: an administrator's `user role NAME
/// user` (or `lock`, `delete`) holds from the next command on, on every node. A locked or
/// unconfirmed account has no rights.
async fn is_op(shared: &Shared, me: &Me, out: &mut Replies) -> bool {
    match shared.store.account(&me.user).await {
        Ok(Some(a)) if a.role == "op" && !a.pending_reg && a.locked_until <= now_ms() => true,
        Ok(_) => {
            out.error(ErrorCode::NotPermitted, "operators only");
            false
        }
        Err(e) => {
            store_failed(shared, out, &e);
            false
        }
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

/// Handles one message of a logged-in user (auth messages and Ping/Bye are the caller's).
#[allow(clippy::too_many_lines)]
pub async fn handle(shared: &Shared, me: &Me, msg: &ClientMsg<'_>, out: &mut Replies) {
    match *msg {
        ClientMsg::Say { room, text } => post(shared, me, room, MessageKind::Say, text, out).await,
        ClientMsg::Action { target, text } => {
            post(shared, me, target, MessageKind::Action, text, out).await;
        }
        ClientMsg::Private { to, text } => {
            if to.starts_with('#') {
                out.error(ErrorCode::NoSuchUser, "private messages go to a user");
            } else {
                post(shared, me, to, MessageKind::Private, text, out).await;
            }
        }
        ClientMsg::Join { room } => join(shared, me, room, out).await,
        ClientMsg::Part { room, reason } => {
            if !reason_ok(reason, out) {
                return;
            }
            if !shared.hub.part(me.id, room) {
                out.error(ErrorCode::NotInRoom, "not in that room");
                return;
            }
            shared.bus.publish(
                shared,
                EventKind::Part {
                    conn: me.id,
                    room: room.to_owned(),
                },
            );
            let reason = sanitize::clean(reason);
            let p = presence(room, &me.user, PresenceKind::Part, &reason);
            to_room(shared, room, p.clone(), None);
            out.record(p);
        }
        ClientMsg::Names { room } => match shared.hub.names(room) {
            Some(users) => out.all(records::names(room, &users)),
            None => out.error(ErrorCode::NoSuchRoom, "no such room"),
        },
        ClientMsg::Whois { user } => {
            let Some(user) = user_arg(user, out) else {
                return;
            };
            match shared.store.account(&user).await {
                Ok(Some(a)) if !a.pending_reg => {
                    let rooms = shared.hub.user_rooms(&user);
                    let rooms: Vec<&str> = rooms.iter().map(String::as_str).collect();
                    out.msg(&ServerMsg::Whois {
                        user: &user,
                        role: &a.role,
                        online: shared.hub.online(&user),
                        away: &shared.hub.away(&user),
                        registered_ms: a.created,
                        rooms: StrList::Items(&rooms),
                    });
                }
                Ok(_) => out.error(ErrorCode::NoSuchUser, "no such user"),
                Err(e) => store_failed(shared, out, &e),
            }
        }
        ClientMsg::Away { text } => {
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
            shared.bus.publish(
                shared,
                EventKind::Away {
                    user: me.user.clone(),
                    text: text.clone(),
                },
            );
            let kind = if text.is_empty() {
                PresenceKind::Back
            } else {
                PresenceKind::Away
            };
            for room in shared.hub.user_rooms(&me.user) {
                let p = presence(&room, &me.user, kind, &text);
                to_room(shared, &room, p, Some(me.id));
            }
            out.msg(&ServerMsg::Presence {
                room: "",
                user: &me.user,
                kind,
                text: &text,
            });
        }
        ClientMsg::ListRooms => {
            let rooms = shared.hub.list();
            for (room, members, topic) in &rooms {
                out.msg(&ServerMsg::RoomEntry {
                    room,
                    members: *members,
                    topic,
                });
            }
            out.info(&format!("end of room list ({} rooms)", rooms.len()));
        }
        ClientMsg::Topic { room, topic: None } => {
            if !is_valid_room(room) {
                out.error(ErrorCode::InvalidRoom, "invalid room name");
                return;
            }
            let t = shared.hub.topic(room);
            out.msg(&ServerMsg::Topic {
                room,
                topic: t.as_ref().map_or("", |t| t.topic.as_str()),
                set_by: t.as_ref().map_or("", |t| t.set_by.as_str()),
                time_ms: t.as_ref().map_or(0, |t| t.time_ms),
            });
        }
        ClientMsg::Topic {
            room,
            topic: Some(text),
        } => {
            if !shared.hub.in_room(me.id, room) {
                out.error(ErrorCode::NotInRoom, "join the room first");
                return;
            }
            if muted(shared, &me.user) {
                out.error(ErrorCode::Muted, "you are muted");
                return;
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
            if let Err(e) = shared.store.set_topic(row.clone()).await {
                return store_failed(shared, out, &e);
            }
            let rec = records::shared(&ServerMsg::Topic {
                room,
                topic: &row.topic,
                set_by: &row.set_by,
                time_ms: row.time_ms,
            });
            shared.bus.publish(shared, EventKind::Topic(row));
            to_room(shared, room, rec.clone(), Some(me.id));
            out.record(rec);
        }
        ClientMsg::History {
            target,
            before_id,
            limit,
        } => {
            let limit = match u32::from(limit) {
                0 => JOIN_HISTORY,
                n => n.min(MAX_HISTORY),
            };
            let target = if target.starts_with('#') {
                if !shared.hub.in_room(me.id, target) {
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
            match shared
                .store
                .history(&me.user, &target, before_id, limit)
                .await
            {
                Ok(h) => out.all(records::history(&target, &h)),
                Err(e) => store_failed(shared, out, &e),
            }
        }
        ClientMsg::Help => {
            for line in HELP {
                out.info(line);
            }
        }
        ClientMsg::Kick { room, user, reason } => {
            if !is_op(shared, me, out).await || !reason_ok(reason, out) {
                return;
            }
            let Some(user) = user_arg(user, out) else {
                return;
            };
            if !shared.hub.user_in_room(room, &user) {
                out.error(ErrorCode::NoSuchUser, "that user is not in the room");
                return;
            }
            shared.bus.publish(
                shared,
                EventKind::Kick {
                    room: room.to_owned(),
                    user: user.clone(),
                },
            );
            let reason = sanitize::clean(reason);
            let p = presence(room, &user, PresenceKind::Kicked, &reason);
            to_room(shared, room, p.clone(), Some(me.id));
            to_user(shared, &user, p.clone(), None);
            out.record(p);
            shared
                .logs
                .info(format!("{} kicked {user} from {room}", me.user));
        }
        ClientMsg::Ban {
            user,
            seconds,
            reason,
        } => {
            if !is_op(shared, me, out).await || !reason_ok(reason, out) {
                return;
            }
            let Some(user) = user_arg(user, out) else {
                return;
            };
            let reason = sanitize::clean(reason);
            match shared.store.account(&user).await {
                Ok(Some(_)) => {}
                Ok(None) => return out.error(ErrorCode::NoSuchUser, "no such user"),
                Err(e) => return store_failed(shared, out, &e),
            }
            let until_ms = until(seconds);
            if let Err(e) = shared
                .store
                .add_sanction(Sanction::Ban, &user, until_ms, &reason, &me.user, now_ms())
                .await
            {
                return store_failed(shared, out, &e);
            }
            for room in shared.hub.user_rooms(&user) {
                let p = presence(&room, &user, PresenceKind::Banned, &reason);
                to_room(shared, &room, p, Some(me.id));
            }
            let bye = format!("banned {}: {reason}", describe(until_ms));
            shared.bus.publish(
                shared,
                EventKind::Disconnect {
                    user: user.clone(),
                    rec: records::shared(&ServerMsg::Bye { reason: &bye }),
                },
            );
            shared
                .logs
                .info(format!("{} banned {user} {}", me.user, describe(until_ms)));
            out.info(&format!("{user} banned {}", describe(until_ms)));
        }
        ClientMsg::Unban { user } => {
            if !is_op(shared, me, out).await {
                return;
            }
            let Some(user) = user_arg(user, out) else {
                return;
            };
            match shared.store.remove_sanction(Sanction::Ban, &user).await {
                Ok(true) => {
                    shared.logs.info(format!("{} unbanned {user}", me.user));
                    out.info(&format!("{user} unbanned"));
                }
                Ok(false) => out.error(ErrorCode::NoSuchUser, "that user is not banned"),
                Err(e) => store_failed(shared, out, &e),
            }
        }
        ClientMsg::Mute {
            user,
            seconds,
            reason,
        } => {
            if !is_op(shared, me, out).await || !reason_ok(reason, out) {
                return;
            }
            let Some(user) = user_arg(user, out) else {
                return;
            };
            let reason = sanitize::clean(reason);
            let until_ms = until(seconds);
            if let Err(e) = shared
                .store
                .add_sanction(Sanction::Mute, &user, until_ms, &reason, &me.user, now_ms())
                .await
            {
                return store_failed(shared, out, &e);
            }
            shared.bus.publish(
                shared,
                EventKind::Mute {
                    user: user.clone(),
                    until_ms: Some(until_ms),
                },
            );
            let p = presence("", &user, PresenceKind::Muted, &reason);
            to_user(shared, &user, p, None);
            shared
                .logs
                .info(format!("{} muted {user} {}", me.user, describe(until_ms)));
            out.info(&format!("{user} muted {}", describe(until_ms)));
        }
        ClientMsg::Unmute { user } => {
            if !is_op(shared, me, out).await {
                return;
            }
            let Some(user) = user_arg(user, out) else {
                return;
            };
            match shared.store.remove_sanction(Sanction::Mute, &user).await {
                Ok(found) => {
                    shared.bus.publish(
                        shared,
                        EventKind::Mute {
                            user: user.clone(),
                            until_ms: None,
                        },
                    );
                    if found {
                        shared.logs.info(format!("{} unmuted {user}", me.user));
                        out.info(&format!("{user} unmuted"));
                    } else {
                        out.error(ErrorCode::NoSuchUser, "that user is not muted");
                    }
                }
                Err(e) => store_failed(shared, out, &e),
            }
        }
        ClientMsg::SetMotd { text } => {
            if !is_op(shared, me, out).await {
                return;
            }
            if text.len() > MAX_TEXT_LEN {
                out.error(ErrorCode::TooLong, "MOTD longer than 1024 bytes");
                return;
            }
            let text = sanitize::clean(text);
            if let Err(e) = shared.store.set_motd(&text).await {
                return store_failed(shared, out, &e);
            }
            shared.bus.publish(shared, EventKind::Motd(text));
            shared.logs.info(format!("{} set the MOTD", me.user));
            out.info("MOTD updated");
        }
        ClientMsg::Register { .. } | ClientMsg::ConfirmTotp { .. } | ClientMsg::Login { .. } => {
            out.error(ErrorCode::BadState, "already logged in");
        }
        ClientMsg::Ping { .. } | ClientMsg::Bye => {}
        _ => out.error(ErrorCode::Malformed, "unsupported message"),
    }
}
