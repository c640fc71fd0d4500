//! The chat screen drawn with ratatui's TestBackend for a known sequence of events.

use chatbox_client::event::{ChatLine, ServerEvent};
use chatbox_client::tui::app::{Action, App, utc_hh_mm};
use chatbox_client::tui::view;
use chatbox_core::proto::{ChatMessage, ErrorCode, MessageKind, PresenceKind, ServerMsg, StrList};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

const FP: &str = "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU";
/// 2023-11-14 22:13:20 UTC.
const T0: u64 = 1_700_000_000_000;

fn ev(msg: ServerMsg<'_>) -> ServerEvent {
    ServerEvent::from(&msg)
}

fn say(id: u64, minutes: u64, from: &str, text: &str) -> ServerEvent {
    ev(ServerMsg::Message(ChatMessage {
        id,
        time_ms: T0 + minutes * 60_000,
        target: "#lobby",
        from,
        kind: MessageKind::Say,
        text,
    }))
}

fn screen(app: &App, w: u16, h: u16) -> Vec<String> {
    let mut terminal = Terminal::new(TestBackend::new(w, h)).expect("test terminal");
    terminal
        .draw(|f| view::render(app, f.area(), f.buffer_mut()))
        .expect("draw");
    let buf = terminal.backend().buffer().clone();
    (0..h)
        .map(|y| {
            (0..w)
                .map(|x| buf[(x, y)].symbol().to_owned())
                .collect::<String>()
        })
        .collect()
}

fn find(rows: &[String], needle: &str) -> usize {
    rows.iter()
        .position(|r| r.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not on screen:\n{}", rows.join("\n")))
}

fn known_session() -> App {
    let mut app = App::new("alice", "127.0.0.1:6001", FP, utc_hh_mm);
    let events = [
        ev(ServerMsg::LoginOk {
            user: "alice",
            motd: "Be nice",
        }),
        ev(ServerMsg::Presence {
            room: "#lobby",
            user: "alice",
            kind: PresenceKind::Join,
            text: "",
        }),
        ev(ServerMsg::Topic {
            room: "#lobby",
            topic: "General chat",
            set_by: "admin",
            time_ms: T0,
        }),
        ev(ServerMsg::Names {
            room: "#lobby",
            done: true,
            users: StrList::Items(&["alice", "bob"]),
        }),
        say(1, 1, "bob", "hello \u{1b}[31mred\u{1b}[0m world"),
        ev(ServerMsg::Message(ChatMessage {
            id: 2,
            time_ms: T0 + 120_000,
            target: "#lobby",
            from: "bob",
            kind: MessageKind::Action,
            text: "waves",
        })),
        ev(ServerMsg::Message(ChatMessage {
            id: 3,
            time_ms: T0 + 180_000,
            target: "alice",
            from: "bob",
            kind: MessageKind::Private,
            text: "psst",
        })),
        ev(ServerMsg::error(
            ErrorCode::NoSuchUser,
            "no such user: carol",
        )),
        // Straight into the app, not through the sanitising conversion: the app cleans too.
        ServerEvent::Message(ChatLine {
            id: 4,
            time_ms: T0 + 240_000,
            target: "#lobby".into(),
            from: "mallory\u{1b}[2J".into(),
            kind: MessageKind::Say,
            text: "\u{1b}]0;pwned\u{7}gotcha\u{1b}[H".into(),
        }),
    ];
    for e in &events {
        app.on_event(e, T0);
    }
    app.epochs = (3, 9);
    app
}

#[test]
fn known_events_render_in_order_with_status_bar() {
    let app = known_session();
    let rows = screen(&app, 100, 20);
    let text = rows.join("\n");

    // Title: room and topic.
    assert!(
        rows[0].contains("#lobby") && rows[0].contains("General chat"),
        "{}",
        rows[0]
    );
    // Status bar (second to last line): user, room, members, server, short fingerprint, epochs.
    let status = &rows[18];
    for needle in [
        "alice",
        "#lobby",
        "2 online",
        "127.0.0.1:6001",
        "SHA256:47DEQpj8…",
        "key epoch ↑3 ↓9",
    ] {
        assert!(
            status.contains(needle),
            "status bar lacks {needle:?}: {status}"
        );
    }
    // Input line prompt.
    assert!(rows[19].starts_with("[#lobby] "), "{}", rows[19]);

    // Lines in order, with times (UTC in this test).
    let order = [
        "logged in as alice",
        "MOTD: Be nice",
        "--> alice joined #lobby",
        "topic of #lobby: General chat (set by admin)",
        "in #lobby: alice bob",
        "22:14 <bob> hello red world",
        "22:15 * bob waves",
        "22:16 [bob → alice] psst",
        "!!! no_such_user: no such user: carol",
        "22:17 <mallory> gotcha",
    ];
    let positions: Vec<usize> = order.iter().map(|n| find(&rows, n)).collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "out of order {positions:?}:\n{text}"
    );

    // No escape sequence survived into the buffer.
    assert!(!text.contains('\u{1b}'), "{text}");
    assert!(!text.contains("[31m") && !text.contains("[2J") && !text.contains("pwned"));
}

#[test]
fn typing_history_and_cursor() {
    let mut app = known_session();
    let key = |c| KeyEvent::new(c, KeyModifiers::NONE);
    for c in "hi there".chars() {
        assert_eq!(app.on_key(key(KeyCode::Char(c))), Action::None);
    }
    app.on_key(key(KeyCode::Home));
    app.on_key(key(KeyCode::Delete));
    app.on_key(key(KeyCode::Char('H')));
    let rows = screen(&app, 60, 12);
    assert!(rows[11].starts_with("[#lobby] Hi there"), "{}", rows[11]);
    let area = ratatui::layout::Rect::new(0, 0, 60, 12);
    assert_eq!(
        view::cursor(&app, area),
        ratatui::layout::Position::new(10, 11)
    );
    assert_eq!(
        app.on_key(key(KeyCode::Enter)),
        Action::Submit("Hi there".into())
    );
    app.on_key(key(KeyCode::Up));
    assert_eq!(app.editor.text(), "Hi there");
    assert_eq!(
        app.on_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
        Action::Quit
    );
}

#[test]
fn page_up_scrolls_back_and_page_down_returns() {
    let mut app = App::new("alice", "127.0.0.1:6001", FP, utc_hh_mm);
    for i in 0..100 {
        app.on_event(&say(i, 0, "bob", &format!("message number {i}")), T0);
    }
    app.set_page(8);
    let bottom = screen(&app, 60, 11);
    assert!(bottom.iter().any(|r| r.contains("message number 99")));
    app.on_key(KeyEvent::new(KeyCode::PageUp, KeyModifiers::NONE));
    let up = screen(&app, 60, 11);
    assert!(!up.iter().any(|r| r.contains("message number 99")));
    assert!(up.iter().any(|r| r.contains("message number 92")));
    assert!(up[9].contains("scrolled"), "{}", up[9]);
    app.on_key(KeyEvent::new(KeyCode::PageDown, KeyModifiers::NONE));
    assert_eq!(screen(&app, 60, 11), bottom);
}

#[test]
fn long_lines_wrap_and_lost_connection_is_shown() {
    let mut app = App::new("alice", "127.0.0.1:6001", FP, utc_hh_mm);
    let long = "word ".repeat(30);
    app.on_event(&say(1, 0, "bob", &long), T0);
    let rows = screen(&app, 40, 10);
    let wrapped = rows.iter().filter(|r| r.contains("word")).count();
    assert!(wrapped >= 4, "{rows:#?}");
    app.connection_lost(T0, "connection lost: the server closed the connection");
    let rows = screen(&app, 120, 10);
    assert!(
        rows[0].contains("Connection lost: the server closed the connection"),
        "{}",
        rows[0]
    );
    assert!(rows[8].contains("DISCONNECTED"), "{}", rows[8]);
    assert!(rows[9].starts_with("code> "), "{}", rows[9]);
    assert_eq!(
        app.on_key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE)),
        Action::Quit
    );
}

#[test]
fn reconnecting_by_itself_keeps_the_chat_prompt_then_offers_a_retry() {
    let key = |c| KeyEvent::new(c, KeyModifiers::NONE);
    let mut app = App::new("alice", "127.0.0.1:6001", FP, utc_hh_mm);
    app.auto_login = true;
    app.reconnecting(T0, "connection lost: connection reset by peer");
    let rows = screen(&app, 120, 10);
    assert!(
        rows[0].contains("Connection lost: connection reset by peer")
            && rows[0].contains("reconnecting"),
        "{}",
        rows[0]
    );
    assert!(rows[8].contains("RECONNECTING"), "{}", rows[8]);
    assert!(rows[9].starts_with("[#lobby] "), "{}", rows[9]);
    // Lines typed meanwhile are chat lines (the loop queues them), remembered in the history.
    for c in "later".chars() {
        app.on_key(key(KeyCode::Char(c)));
    }
    assert_eq!(
        app.on_key(key(KeyCode::Enter)),
        Action::Submit("later".into())
    );
    app.on_key(key(KeyCode::Up));
    assert_eq!(app.editor.text(), "later");
    // Gave up: Enter tries again (no code to type), Esc quits.
    app.connection_lost(T0, "could not log in again within 30 s");
    let rows = screen(&app, 120, 10);
    assert!(rows[0].contains("Enter to try again"), "{}", rows[0]);
    assert!(rows[8].contains("DISCONNECTED"), "{}", rows[8]);
    assert!(rows[9].starts_with("Enter to retry> "), "{}", rows[9]);
    assert_eq!(app.on_key(key(KeyCode::Esc)), Action::Quit);
    // Back: the status bar names the node now used.
    app.reconnected("127.0.0.1:6002", FP);
    let rows = screen(&app, 120, 10);
    assert!(
        rows[8].contains("127.0.0.1:6002") && !rows[8].contains("DISCONNECTED"),
        "{}",
        rows[8]
    );
}

#[test]
fn user_colours_are_stable_and_spread() {
    assert_eq!(view::user_color("alice"), view::user_color("alice"));
    let distinct: std::collections::HashSet<_> = ["alice", "bob", "carol", "dave", "erin", "frank"]
        .iter()
        .map(|n| format!("{:?}", view::user_color(n)))
        .collect();
    assert!(distinct.len() >= 3);
}

#[test]
fn history_resent_after_a_reconnect_is_not_shown_twice() {
    let mut app = App::new("alice", "127.0.0.1:6001", FP, utc_hh_mm);
    app.on_event(&say(1, 0, "bob", "only once"), T0);
    let msgs = [ChatMessage {
        id: 1,
        time_ms: T0,
        target: "#lobby",
        from: "bob",
        kind: MessageKind::Say,
        text: "only once",
    }];
    let history = ev(ServerMsg::History {
        target: "#lobby",
        done: true,
        messages: chatbox_core::proto::MessageList::Items(&msgs),
    });
    app.on_event(&history, T0);
    let rows = screen(&app, 60, 10);
    assert_eq!(rows.iter().filter(|r| r.contains("only once")).count(), 1);
}

#[test]
fn members_online_follow_presence() {
    let mut app = App::new("alice", "127.0.0.1:6001", FP, utc_hh_mm);
    let presence = |user: &str, kind| {
        ev(ServerMsg::Presence {
            room: if kind == PresenceKind::Quit {
                ""
            } else {
                "#lobby"
            },
            user,
            kind,
            text: "",
        })
    };
    app.on_event(
        &ev(ServerMsg::Names {
            room: "#lobby",
            done: true,
            users: StrList::Items(&["alice", "bob"]),
        }),
        T0,
    );
    assert_eq!(app.members_here(), 2);
    app.on_event(&presence("carol", PresenceKind::Join), T0);
    assert_eq!(app.members_here(), 3);
    app.on_event(&presence("bob", PresenceKind::Part), T0);
    assert_eq!(app.members_here(), 2);
    app.on_event(&presence("carol", PresenceKind::Quit), T0);
    assert_eq!(app.members_here(), 1);
    let rows = screen(&app, 100, 10);
    assert!(rows[8].contains("#lobby · 1 online"), "{}", rows[8]);
    assert!(rows.iter().any(|r| r.contains("<-- carol quit")));
}

#[test]
fn secrets_asked_on_the_chat_screen_are_never_drawn_nor_remembered() {
    use chatbox_client::tui::app::{Ask, AskKind};
    let key = |code| KeyEvent::new(code, KeyModifiers::NONE);
    let mut app = known_session();
    app.ask = Some(Ask::new(AskKind::Passwd));
    for c in "hunter2-secret".chars() {
        assert_eq!(app.on_key(key(KeyCode::Char(c))), Action::None);
    }
    let rows = screen(&app, 80, 20);
    let all = rows.join("\n");
    assert!(all.contains("current password (not shown"), "{all}");
    assert!(!all.contains("hunter2"), "{all}");
    let input = &rows[find(&rows, "current password (not shown")];
    assert!(
        !input.contains('*') && !input.contains('•'),
        "not even masked: {input}"
    );
    let Action::Submit(answer) = app.on_key(key(KeyCode::Enter)) else {
        panic!("Enter submits");
    };
    assert_eq!(answer, "hunter2-secret");
    let mut ask = app.ask.take().unwrap();
    assert!(!ask.answer(answer));
    assert_eq!(ask.prompt(), "one-time code");
    app.ask = Some(ask);
    // Up does not bring the secret back from history; Esc cancels the questions.
    app.on_key(key(KeyCode::Up));
    assert!(!screen(&app, 80, 20).join("\n").contains("hunter2"));
    app.on_key(key(KeyCode::Esc));
    assert!(app.ask.is_none());
    app.on_key(key(KeyCode::Up));
    assert!(!screen(&app, 80, 20).join("\n").contains("hunter2"));
}

#[test]
fn self_service_answers_are_shown() {
    use chatbox_core::proto::{SessionEntry, SessionEntryList};
    let mut app = known_session();
    let entries = [
        SessionEntry {
            id: "s1",
            node: "n1",
            address: "127.0.0.1:5000",
            since_ms: T0,
            current: true,
        },
        SessionEntry {
            id: "s2",
            node: "n2",
            address: "127.0.0.2:5001",
            since_ms: T0,
            current: false,
        },
    ];
    app.on_event(
        &ev(ServerMsg::SessionList {
            done: true,
            sessions: SessionEntryList::Items(&entries),
        }),
        T0,
    );
    app.on_event(&ev(ServerMsg::SessionsRevoked { count: 1 }), T0);
    app.on_event(&ev(ServerMsg::PasswordChanged { closed: 2 }), T0);
    app.on_event(
        &ev(ServerMsg::ReenrolStarted {
            uri: "otpauth://totp/ChatBox:alice?secret=JBSWY3DPEHPK3PXP&issuer=ChatBox",
        }),
        T0,
    );
    app.on_event(
        &ev(ServerMsg::Reenrolled {
            closed: 0,
            scratch_codes: StrList::Items(&["11112222", "33334444"]),
        }),
        T0,
    );
    let rows = screen(&app, 100, 60);
    find(
        &rows,
        "session s1: node n1, from 127.0.0.1:5000, since 2023-11-14T22:13:20Z (this one)",
    );
    find(&rows, "session s2: node n2, from 127.0.0.2:5001");
    find(&rows, "1 session(s) closed");
    find(&rows, "password changed; 2 other session(s) closed");
    find(&rows, "JBSW Y3DP EHPK 3PXP");
    find(&rows, "▀");
    find(&rows, "11112222    33334444");
}
