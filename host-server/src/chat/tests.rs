//! In-process tests of the chat state and the chat service: no socket, no server. The state
//! is driven by events as the bus would hand them over; the service runs on a real SQLite file
//! in a temporary directory and a local bus.

use std::sync::Arc;

use chatbox_core::proto::{ClientMsg, ErrorCode, PresenceKind, ServerMsg};

use super::mailbox::{Mailbox, Outbound};
use super::service::Chat;
use super::state::{ChatState, Departed, RemoteConn, Scope};
use super::{ConnId, Me, Replies, Role, records};
use crate::bus::{Effect, Event, Link};
use crate::store::{Database, Store, TopicRow};

const N1: &str = "n1";
const N2: &str = "n2";

fn rec(tag: &str) -> Arc<[u8]> {
    records::shared(&ServerMsg::Info { text: tag })
}

fn ev(origin: &str, effects: Vec<Effect>) -> Event {
    Event {
        origin: origin.to_owned(),
        effects,
    }
}

/// What a mailbox holds, as text: `info:TEXT`, `presence:KIND:ROOM:USER`, `close:…`.
fn drain(mb: &Mailbox) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(o) = mb.try_recv() {
        let (close, r) = match o {
            Outbound::Record(r) => ("", r),
            Outbound::Close(r) | Outbound::Evict(r) => ("close:", r),
        };
        let text = match ServerMsg::decode(&r) {
            Ok(ServerMsg::Info { text }) => format!("info:{text}"),
            Ok(ServerMsg::Bye { reason }) => format!("bye:{reason}"),
            Ok(ServerMsg::Presence {
                room, user, kind, ..
            }) => format!("presence:{kind:?}:{room}:{user}"),
            Ok(ServerMsg::Message(m)) => format!("msg:{}:{}:{}", m.target, m.from, m.text),
            Ok(ServerMsg::Topic { room, topic, .. }) => format!("topic:{room}:{topic}"),
            Ok(other) => format!("{other:?}"),
            Err(e) => format!("undecodable: {e:?}"),
        };
        out.push(format!("{close}{text}"));
    }
    out
}

struct Node {
    s: ChatState,
    boxes: Vec<(ConnId, Arc<Mailbox>)>,
}

impl Node {
    fn new() -> Node {
        Node {
            s: ChatState::new(N1, Vec::new(), Vec::new(), "hi".into(), Default::default()),
            boxes: Vec::new(),
        }
    }

    /// A connection of this node, logged in as `user`, in `rooms`.
    fn user(&mut self, id: ConnId, user: &str, rooms: &[&str]) {
        let mb = Mailbox::new(16);
        self.s.attach(id, mb.clone());
        self.boxes.push((id, mb));
        let mut effects = vec![Effect::Login {
            conn: id,
            user: user.into(),
            address: format!("127.0.0.1:{id}"),
            since_ms: id,
        }];
        effects.extend(rooms.iter().map(|r| Effect::Join {
            conn: id,
            room: (*r).into(),
        }));
        self.s.apply(&ev(N1, effects), Scope::All);
    }

    fn mb(&self, id: ConnId) -> &Mailbox {
        &self
            .boxes
            .iter()
            .find(|(i, _)| *i == id)
            .unwrap_or_else(|| panic!("no connection {id}"))
            .1
    }

    fn got(&self, id: ConnId) -> Vec<String> {
        drain(self.mb(id))
    }
}

#[test]
fn login_join_part_and_gone_change_this_nodes_members() {
    let mut n = Node::new();
    n.user(1, "alice", &["#a", "#b"]);
    n.user(2, "alice", &["#a"]);
    n.user(3, "bob", &["#a"]);
    assert_eq!(n.s.names("#a"), Some(vec!["alice".into(), "bob".into()]));
    assert_eq!(n.s.user_rooms("alice"), vec!["#a", "#b"]);
    assert!(n.s.in_room(2, "#a") && !n.s.in_room(2, "#b"));
    assert_eq!(n.s.sessions("alice").len(), 2);
    assert_eq!(n.s.sessions("alice")[0].address, "127.0.0.1:1");
    let list = n.s.list();
    assert_eq!(
        list,
        vec![
            ("#a".into(), 2, String::new()),
            ("#b".into(), 1, String::new())
        ]
    );
    n.s.apply(
        &ev(
            N1,
            vec![Effect::Part {
                conn: 1,
                room: "#b".into(),
            }],
        ),
        Scope::All,
    );
    assert_eq!(n.s.names("#b"), None, "an empty room is gone");
    // Alice's first connection goes; she is still online through the second.
    let a =
        n.s.apply(&ev(N1, vec![Effect::Gone { conn: 1 }]), Scope::All);
    assert_eq!(
        a.departed,
        Some(Departed {
            user: Some("alice".into()),
            rooms: vec!["#a".into()],
            still_online: true
        })
    );
    assert!(!n.s.contains(1) && n.s.online("alice"));
    assert_eq!(n.s.departure(2).map(|d| d.still_online), Some(false));
    let a =
        n.s.apply(&ev(N1, vec![Effect::Gone { conn: 2 }]), Scope::All);
    assert_eq!(a.departed.map(|d| d.still_online), Some(false));
    assert!(!n.s.online("alice"));
    assert_eq!(n.s.names("#a"), Some(vec!["bob".into()]));
}

#[test]
fn a_room_record_reaches_each_member_once_but_not_the_sender_nor_outsiders() {
    let mut n = Node::new();
    n.user(1, "alice", &["#a"]);
    n.user(2, "alice", &["#a"]);
    n.user(3, "bob", &["#a"]);
    n.user(4, "carol", &["#b"]);
    let room = |except| Effect::Room {
        room: "#a".into(),
        except,
        rec: rec("m"),
    };
    n.s.apply(&ev(N1, vec![room(Some(1))]), Scope::All);
    assert_eq!(
        n.got(1),
        Vec::<String>::new(),
        "the sender has its own copy"
    );
    assert_eq!(n.got(2), vec!["info:m"], "the sender's other connection");
    assert_eq!(n.got(3), vec!["info:m"]);
    assert_eq!(n.got(4), Vec::<String>::new(), "not a member");
    // `except` names a connection of the origin node: from another node it leaves no one out.
    n.s.apply(&ev(N2, vec![room(Some(1))]), Scope::All);
    assert_eq!(n.got(1), vec!["info:m"]);
}

#[test]
fn a_private_record_reaches_every_connection_of_its_user_only() {
    let mut n = Node::new();
    n.user(1, "alice", &[]);
    n.user(2, "alice", &[]);
    n.user(3, "bob", &[]);
    n.s.apply(
        &ev(
            N1,
            vec![Effect::User {
                user: "alice".into(),
                except: Some(2),
                rec: rec("pm"),
            }],
        ),
        Scope::All,
    );
    assert_eq!(
        (n.got(1), n.got(2), n.got(3)),
        (vec!["info:pm".to_owned()], vec![], vec![])
    );
}

#[test]
fn other_nodes_users_count_in_names_list_whois_and_leave_with_their_node() {
    let mut n = Node::new();
    n.user(1, "alice", &["#a"]);
    let login = |conn, user: &str| Effect::Login {
        conn,
        user: user.into(),
        address: "10.0.0.2:9".into(),
        since_ms: 5,
    };
    n.s.apply(
        &ev(
            N2,
            vec![
                login(7, "bob"),
                Effect::Join {
                    conn: 7,
                    room: "#a".into(),
                },
                login(8, "carol"),
                Effect::Join {
                    conn: 8,
                    room: "#c".into(),
                },
            ],
        ),
        Scope::All,
    );
    assert!(!n.s.contains(7), "a remote connection is not this node's");
    assert_eq!(n.s.names("#a"), Some(vec!["alice".into(), "bob".into()]));
    assert_eq!(n.s.names("#c"), Some(vec!["carol".into()]));
    assert!(n.s.online("bob") && n.s.user_in_room("#a", "bob"));
    assert_eq!(n.s.sessions("bob")[0].node, N2);
    assert_eq!(n.s.list().len(), 2);
    n.s.apply(
        &ev(
            N2,
            vec![Effect::Part {
                conn: 8,
                room: "#c".into(),
            }],
        ),
        Scope::All,
    );
    assert_eq!(n.s.names("#c"), None);
    // Carol is away; her node dies: she is offline, her away message gone, and #a hears
    // that bob quit (once, from this node to its own member).
    n.s.apply(
        &ev(
            N2,
            vec![Effect::Away {
                user: "bob".into(),
                text: "lunch".into(),
            }],
        ),
        Scope::All,
    );
    assert_eq!(n.s.away("bob"), "lunch");
    let a = n.s.apply(
        &ev(N1, vec![Effect::NodeDown { node: N2.into() }]),
        Scope::All,
    );
    assert_eq!(a.node_down, Some((N2.to_owned(), 2)));
    assert!(!n.s.online("bob") && !n.s.online("carol"));
    assert_eq!(n.s.away("bob"), "");
    assert_eq!(n.got(1), vec!["presence:Quit:#a:bob"]);
    // A snapshot replaces what was known of a node; a remote Gone forgets one connection.
    let snap = RemoteConn {
        id: 3,
        user: "dave".into(),
        rooms: ["#a".to_owned()].into_iter().collect(),
        address: String::new(),
        since_ms: 1,
    };
    n.s.apply(&ev(N2, vec![Effect::Snapshot(vec![snap])]), Scope::All);
    assert_eq!(n.s.names("#a"), Some(vec!["alice".into(), "dave".into()]));
    n.s.apply(&ev(N2, vec![Effect::Gone { conn: 3 }]), Scope::All);
    assert!(!n.s.online("dave"));
}

#[test]
fn away_mutes_topics_and_motd_are_state_on_every_node() {
    let mut n = Node::new();
    n.user(1, "alice", &["#a"]);
    n.s.apply(
        &ev(
            N2,
            vec![
                Effect::Away {
                    user: "alice".into(),
                    text: "out".into(),
                },
                Effect::Mute {
                    user: "bob".into(),
                    until_ms: Some(0),
                },
                Effect::Mute {
                    user: "carol".into(),
                    until_ms: Some(1000),
                },
                Effect::Topic(TopicRow {
                    room: "#a".into(),
                    topic: "t".into(),
                    set_by: "op".into(),
                    time_ms: 3,
                }),
                Effect::Motd("new".into()),
            ],
        ),
        Scope::All,
    );
    assert_eq!(n.s.away("alice"), "out");
    assert!(n.s.muted("bob", u64::MAX), "0: until lifted");
    assert!(n.s.muted("carol", 999) && !n.s.muted("carol", 1000));
    assert!(!n.s.muted("alice", 0));
    assert_eq!(n.s.topic("#a").map(|t| t.topic.as_str()), Some("t"));
    assert_eq!(n.s.list()[0].2, "t");
    assert_eq!(n.s.motd(), "new");
    n.s.apply(
        &ev(
            N1,
            vec![
                Effect::Away {
                    user: "alice".into(),
                    text: String::new(),
                },
                Effect::Mute {
                    user: "bob".into(),
                    until_ms: None,
                },
            ],
        ),
        Scope::All,
    );
    assert_eq!(n.s.away("alice"), "");
    assert!(!n.s.muted("bob", 0));
    // Away ends with the user's last connection.
    n.s.apply(
        &ev(
            N1,
            vec![Effect::Away {
                user: "alice".into(),
                text: "x".into(),
            }],
        ),
        Scope::All,
    );
    n.s.apply(&ev(N1, vec![Effect::Gone { conn: 1 }]), Scope::All);
    assert_eq!(n.s.away("alice"), "");
}

#[test]
fn a_kick_is_one_event_the_kicked_hear_it_once_and_are_out_on_every_node() {
    let mut n = Node::new();
    n.user(1, "op", &["#a"]);
    n.user(2, "bob", &["#a", "#b"]);
    n.user(3, "bob", &["#a"]);
    n.user(4, "carol", &["#a"]);
    n.s.apply(
        &ev(
            N2,
            vec![
                Effect::Login {
                    conn: 9,
                    user: "bob".into(),
                    address: String::new(),
                    since_ms: 0,
                },
                Effect::Join {
                    conn: 9,
                    room: "#a".into(),
                },
            ],
        ),
        Scope::All,
    );
    let me = Me {
        id: 1,
        user: "op".into(),
        ip_port: String::new(),
    };
    let p = records::shared(&ServerMsg::Presence {
        room: "#a",
        user: "bob",
        kind: PresenceKind::Kicked,
        text: "",
    });
    let kick = super::cmd::moderation::kick_effects(&me, "#a", "bob", &p);
    assert_eq!(kick.len(), 3);
    n.s.apply(&ev(N1, kick), Scope::All);
    assert_eq!(n.s.names("#a"), Some(vec!["carol".into(), "op".into()]));
    assert_eq!(n.s.user_rooms("bob"), vec!["#b"], "out of #a on both nodes");
    let k = vec!["presence:Kicked:#a:bob".to_owned()];
    assert_eq!(n.got(2), k, "once, not as a member and again as the user");
    assert_eq!(n.got(3), k);
    assert_eq!(n.got(4), k);
    assert_eq!(
        n.got(1),
        Vec::<String>::new(),
        "the operator has its own copy"
    );
}

#[test]
fn the_publisher_applies_state_at_once_and_only_the_deliveries_of_its_echo() {
    let mut n = Node::new();
    n.user(1, "alice", &["#a"]);
    n.user(2, "bob", &[]);
    let join = ev(
        N1,
        vec![
            Effect::Join {
                conn: 2,
                room: "#a".into(),
            },
            Effect::Room {
                room: "#a".into(),
                except: Some(2),
                rec: rec("bob joined"),
            },
        ],
    );
    // Published: bob is in #a at once, nobody has heard it yet.
    n.s.apply(&join, Scope::State);
    assert!(n.s.in_room(2, "#a"));
    assert_eq!(n.got(1), Vec::<String>::new());
    // Bob parts before the echo comes back; the echo delivers but does not join him again.
    n.s.apply(
        &ev(
            N1,
            vec![Effect::Part {
                conn: 2,
                room: "#a".into(),
            }],
        ),
        Scope::State,
    );
    n.s.apply(&join, Scope::Deliveries);
    assert!(!n.s.in_room(2, "#a"), "the echo's state was skipped");
    assert_eq!(n.got(1), vec!["info:bob joined"]);
    assert_eq!(n.got(2), Vec::<String>::new());
}

#[test]
fn hello_and_being_declared_down_ask_for_a_snapshot_but_not_from_ourselves() {
    let mut n = Node::new();
    n.user(1, "alice", &["#a"]);
    assert!(n.s.apply(&ev(N2, vec![Effect::Hello]), Scope::All).announce);
    assert!(!n.s.apply(&ev(N1, vec![Effect::Hello]), Scope::All).announce);
    let a = n.s.apply(
        &ev(N2, vec![Effect::NodeDown { node: N1.into() }]),
        Scope::All,
    );
    assert!(a.announce && a.declared_down);
    assert!(n.s.contains(1), "this node keeps its own connections");
    let snap = n.s.local_snapshot();
    assert_eq!(snap.len(), 1);
    assert_eq!((snap[0].id, snap[0].user.as_str()), (1, "alice"));
    // Our own snapshot is not stored as a remote node's.
    n.s.apply(&ev(N1, vec![Effect::Snapshot(snap)]), Scope::All);
    assert_eq!(n.s.sessions("alice").len(), 1);
}

#[test]
fn closing_sessions_picks_by_node_and_connection_and_ban_closes_all() {
    let mut n = Node::new();
    n.user(1, "alice", &[]);
    n.user(2, "alice", &[]);
    n.user(3, "alice", &[]);
    n.user(4, "bob", &[]);
    let bye = rec("bye");
    let close = |only, except| Effect::CloseSessions {
        user: "alice".into(),
        only,
        except,
        rec: bye.clone(),
    };
    // Another node's connection 1 is not ours.
    let a =
        n.s.apply(&ev(N2, vec![close(Some((N2.into(), 1)), None)]), Scope::All);
    assert_eq!(a.closed, 0);
    let a =
        n.s.apply(&ev(N2, vec![close(Some((N1.into(), 1)), None)]), Scope::All);
    assert_eq!((a.closed, n.got(1)), (1, vec!["close:info:bye".to_owned()]));
    let a =
        n.s.apply(&ev(N1, vec![close(None, Some((N1.into(), 2)))]), Scope::All);
    assert_eq!(a.closed, 2, "all of alice's but the one that asked");
    assert_eq!(n.got(1), vec!["close:info:bye"]);
    assert_eq!(n.got(2), Vec::<String>::new());
    assert_eq!(n.got(3), vec!["close:info:bye"]);
    assert_eq!(n.got(4), Vec::<String>::new(), "not bob's");
    let a = n.s.apply(
        &ev(
            N2,
            vec![Effect::Disconnect {
                user: "bob".into(),
                rec: bye.clone(),
            }],
        ),
        Scope::All,
    );
    assert_eq!((a.closed, n.got(4)), (1, vec!["close:info:bye".to_owned()]));
}

#[test]
fn a_full_mailbox_cuts_its_connection_off_and_the_others_still_get_theirs() {
    let mut s = ChatState::new(
        N1,
        Vec::new(),
        Vec::new(),
        String::new(),
        Default::default(),
    );
    let (slow, fast) = (Mailbox::new(2), Mailbox::new(64));
    for (id, mb) in [(1, &slow), (2, &fast)] {
        s.attach(id, mb.clone());
        s.apply(
            &ev(
                N1,
                vec![
                    Effect::Login {
                        conn: id,
                        user: format!("u{id}"),
                        address: String::new(),
                        since_ms: 0,
                    },
                    Effect::Join {
                        conn: id,
                        room: "#a".into(),
                    },
                ],
            ),
            Scope::All,
        );
    }
    for _ in 0..5 {
        s.apply(
            &ev(
                N1,
                vec![Effect::Room {
                    room: "#a".into(),
                    except: None,
                    rec: rec("x"),
                }],
            ),
            Scope::All,
        );
    }
    assert_eq!(
        slow.try_recv().map(|_| ()),
        None,
        "closed: nothing more to read"
    );
    assert_eq!(fast.len(), 5);
}

// ----------------------------------------------------------------------------------------
// The service, on a real SQLite file and a local bus.

struct Fixture {
    _dir: tempfile::TempDir,
    chat: Chat,
    store: Arc<Store>,
    boxes: Vec<(ConnId, Arc<Mailbox>)>,
}

impl Fixture {
    fn new(max_rooms: usize) -> Fixture {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let logs = crate::logs::Logs::open(&dir.path().join("logs"), [7; 32])
            .unwrap_or_else(|e| panic!("logs: {e}"));
        let (store, startup) = Store::open(
            &Database::Sqlite(dir.path().join("chatbox.db")),
            "local",
            logs.clone(),
        )
        .unwrap_or_else(|e| panic!("store: {e}"));
        let store = Arc::new(store);
        let mut config = crate::Config::for_tests(dir.path());
        config.max_rooms_per_user = max_rooms;
        config.node_id = "local".into();
        config.motd = "welcome".into();
        let chat = Chat::new(
            &config,
            startup,
            store.clone(),
            logs,
            Default::default(),
            Link::Local,
        );
        Fixture {
            _dir: dir,
            chat,
            store,
            boxes: Vec::new(),
        }
    }

    /// A confirmed account.
    fn account(&self, user: &str, role: &str) {
        smol::block_on(async {
            let ok = self
                .store
                .insert_pending(user, "phc".into(), vec![1, 2, 3], "127.0.0.1:1", 1)
                .await
                .unwrap_or_else(|e| panic!("insert: {e}"));
            assert!(ok);
            self.store
                .confirm_registration(user, 1, Vec::new())
                .await
                .unwrap_or_else(|e| panic!("confirm: {e}"));
            self.store
                .set_role(user, role)
                .await
                .unwrap_or_else(|e| panic!("role: {e}"));
        });
    }

    /// A connection logged in as `user` (entered: LoginOk, #lobby).
    fn login(&mut self, id: ConnId, user: &str) -> Me {
        let mb = Mailbox::new(64);
        self.chat.attach(id, mb.clone());
        self.boxes.push((id, mb));
        let me = Me {
            id,
            user: user.into(),
            ip_port: format!("127.0.0.1:{id}"),
        };
        self.chat.sign_in(&me, 1);
        let mut out = Replies::default();
        smol::block_on(self.chat.enter(&me, &mut out));
        assert!(
            matches!(
                ServerMsg::decode(&out.records[0]),
                Ok(ServerMsg::LoginOk {
                    motd: "welcome",
                    ..
                })
            ),
            "LoginOk first"
        );
        me
    }

    fn run(&self, me: &Me, msg: &ClientMsg<'_>) -> Vec<String> {
        let mut out = Replies::default();
        smol::block_on(self.chat.handle(me, msg, &mut out));
        out.records
            .iter()
            .map(|r| match ServerMsg::decode(r) {
                Ok(ServerMsg::Error { code, .. }) => match ErrorCode::from_u16(code) {
                    Some(c) => format!("error:{c:?}"),
                    None => format!("error:{code}"),
                },
                Ok(ServerMsg::Info { text }) => format!("info:{text}"),
                Ok(ServerMsg::Presence {
                    room, user, kind, ..
                }) => {
                    format!("presence:{kind:?}:{room}:{user}")
                }
                Ok(ServerMsg::Message(m)) => format!("msg:{}:{}:{}", m.target, m.from, m.text),
                Ok(other) => format!("{other:?}"),
                Err(e) => format!("undecodable: {e:?}"),
            })
            .collect()
    }

    fn got(&self, id: ConnId) -> Vec<String> {
        let mb = &self
            .boxes
            .iter()
            .find(|(i, _)| *i == id)
            .unwrap_or_else(|| panic!("no connection {id}"))
            .1;
        drain(mb)
    }
}

fn errors(v: &[String]) -> Vec<&str> {
    v.iter()
        .filter(|s| s.starts_with("error:"))
        .map(String::as_str)
        .collect()
}

#[test]
fn only_an_operator_per_the_database_may_kick_and_the_kick_reaches_room_and_user() {
    let mut f = Fixture::new(8);
    f.account("alice", "user");
    f.account("bob", "user");
    f.account("carol", "user");
    let alice = f.login(1, "alice");
    let bob = f.login(2, "bob");
    let carol = f.login(3, "carol");
    for me in [&alice, &bob, &carol] {
        assert!(errors(&f.run(me, &ClientMsg::Join { room: "#x" })).is_empty());
    }
    for id in 1..=3 {
        f.got(id);
    }
    let kick = ClientMsg::Kick {
        room: "#x",
        user: "bob",
        reason: "spam",
    };
    assert_eq!(f.run(&alice, &kick), vec!["error:NotPermitted"]);
    assert_eq!(f.got(2), Vec::<String>::new());
    // The role is read at each use: promoted in the database, alice may kick at once.
    smol::block_on(f.store.set_role("alice", "op")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(f.run(&alice, &kick), vec!["presence:Kicked:#x:bob"]);
    assert_eq!(
        f.got(2),
        vec!["presence:Kicked:#x:bob"],
        "bob hears it once"
    );
    assert_eq!(f.got(3), vec!["presence:Kicked:#x:bob"]);
    assert_eq!(f.got(1), Vec::<String>::new());
    assert_eq!(
        f.run(
            &bob,
            &ClientMsg::Say {
                room: "#x",
                text: "hi"
            }
        ),
        vec!["error:NotInRoom"]
    );
    assert_eq!(
        f.run(&alice, &kick),
        vec!["error:NoSuchUser"],
        "not in the room"
    );
    // Demoted: no rights any more.
    smol::block_on(f.store.set_role("alice", "user")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        f.run(&alice, &ClientMsg::SetMotd { text: "x" }),
        vec!["error:NotPermitted"]
    );
}

#[test]
fn a_muted_user_can_neither_post_nor_set_a_topic_until_unmuted() {
    let mut f = Fixture::new(8);
    f.account("op", "op");
    f.account("bob", "user");
    let op = f.login(1, "op");
    let bob = f.login(2, "bob");
    f.got(1);
    f.got(2);
    let mute = ClientMsg::Mute {
        user: "bob",
        seconds: 0,
        reason: "calm down",
    };
    assert_eq!(f.run(&op, &mute), vec!["info:bob muted permanently"]);
    assert_eq!(f.got(2), vec!["presence:Muted::bob"]);
    let say = ClientMsg::Say {
        room: "#lobby",
        text: "hello",
    };
    assert_eq!(f.run(&bob, &say), vec!["error:Muted"]);
    assert_eq!(
        f.run(
            &bob,
            &ClientMsg::Topic {
                room: "#lobby",
                topic: Some("t")
            }
        ),
        vec!["error:Muted"]
    );
    assert_eq!(f.got(1), Vec::<String>::new(), "nothing reached the room");
    assert_eq!(
        f.run(&op, &ClientMsg::Unmute { user: "bob" }),
        vec!["info:bob unmuted"]
    );
    assert_eq!(f.run(&bob, &say), vec!["msg:#lobby:bob:hello"]);
    assert_eq!(f.got(1), vec!["msg:#lobby:bob:hello"]);
}

#[test]
fn the_room_limit_counts_every_connection_of_the_user_and_spares_the_lobby() {
    let mut f = Fixture::new(3);
    f.account("alice", "user");
    let a1 = f.login(1, "alice");
    let a2 = f.login(2, "alice");
    assert!(errors(&f.run(&a1, &ClientMsg::Join { room: "#one" })).is_empty());
    assert!(errors(&f.run(&a2, &ClientMsg::Join { room: "#two" })).is_empty());
    // #lobby, #one, #two: the limit.
    assert_eq!(
        errors(&f.run(&a1, &ClientMsg::Join { room: "#three" })),
        vec!["error:TooManyRooms"]
    );
    // A room another connection of hers is in is no new room.
    assert!(errors(&f.run(&a1, &ClientMsg::Join { room: "#two" })).is_empty());
    assert!(f.chat.bus.lock().in_room(1, "#two"));
}

#[test]
fn leaving_tells_the_rooms_only_when_the_last_connection_goes() {
    let mut f = Fixture::new(8);
    f.account("alice", "user");
    f.account("bob", "user");
    f.login(1, "alice");
    f.login(2, "alice");
    f.login(3, "bob");
    f.got(3);
    smol::block_on(f.chat.leave(1));
    assert_eq!(f.got(3), Vec::<String>::new(), "alice is still here");
    assert!(f.chat.contains(2) && !f.chat.contains(1));
    smol::block_on(f.chat.leave(2));
    assert_eq!(f.got(3), vec!["presence:Quit:#lobby:alice"]);
    assert_eq!(f.chat.sessions("alice"), Vec::new());
    // A connection that never logged in leaves quietly.
    f.chat.attach(9, Mailbox::new(4));
    smol::block_on(f.chat.leave(9));
    assert!(!f.chat.contains(9));
    assert_eq!(f.got(3), Vec::<String>::new());
}

#[test]
fn private_messages_reach_the_peer_and_the_senders_other_connections() {
    let mut f = Fixture::new(8);
    f.account("alice", "user");
    f.account("bob", "user");
    let a1 = f.login(1, "alice");
    f.login(2, "alice");
    f.login(3, "bob");
    for id in 1..=3 {
        f.got(id);
    }
    let pm = ClientMsg::Private {
        to: "bob",
        text: "psst",
    };
    assert_eq!(f.run(&a1, &pm), vec!["msg:bob:alice:psst"]);
    assert_eq!(f.got(3), vec!["msg:bob:alice:psst"]);
    assert_eq!(f.got(2), vec!["msg:bob:alice:psst"], "her other connection");
    assert_eq!(
        f.got(1),
        Vec::<String>::new(),
        "the reply is the sender's copy"
    );
    assert_eq!(
        f.run(
            &a1,
            &ClientMsg::Private {
                to: "nobody",
                text: "x"
            }
        ),
        vec!["error:NoSuchUser"]
    );
}

#[test]
fn roles_keep_their_database_and_wire_spellings() {
    assert_eq!(Role::from_db("op"), Role::Op);
    assert_eq!(Role::from_db("user"), Role::User);
    assert_eq!(Role::from_db("OP"), Role::User, "only `op` grants rights");
    assert_eq!((Role::Op.as_str(), Role::User.as_str()), ("op", "user"));
}
