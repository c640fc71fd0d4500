//! Building server records: one `ServerMsg` per record, long lists split so that every record
//! stays within `MAX_PLAINTEXT_LEN`.

use std::sync::Arc;

use chatbox_core::frame::MAX_PLAINTEXT_LEN;
use chatbox_core::proto::codec::Field as _;
use chatbox_core::proto::{ChatMessage, ErrorCode, MessageKind, MessageList, ServerMsg, StrList};

use crate::store::StoredMsg;

thread_local! {
    /// Messages are encoded here, then copied out at their real size (no 16 KiB buffer per
    /// message).
    static SCRATCH: core::cell::RefCell<Vec<u8>> =
        core::cell::RefCell::new(vec![0u8; MAX_PLAINTEXT_LEN]);
}

/// Encodes `msg` into the scratch buffer and hands the bytes to `f`.
fn with_encoded<R>(msg: &ServerMsg<'_>, f: impl FnOnce(&[u8]) -> R) -> R {
    SCRATCH.with_borrow_mut(|buf| match msg.encode(buf) {
        Ok(n) => f(buf.get(..n).unwrap_or_default()),
        Err(_) => {
            // Only reachable if a caller built an oversized message: send an error instead.
            let e = ServerMsg::error(ErrorCode::Internal, "reply too large");
            let mut small = [0u8; 64];
            let n = e.encode(&mut small).unwrap_or(0);
            f(small.get(..n).unwrap_or_default())
        }
    })
}

/// Encodes one message (the plaintext of one record).
#[must_use]
pub(crate) fn encode(msg: &ServerMsg<'_>) -> Vec<u8> {
    with_encoded(msg, <[u8]>::to_vec)
}

/// Encodes one message for fan-out: encoded once, shared by every recipient.
#[must_use]
pub(crate) fn shared(msg: &ServerMsg<'_>) -> Arc<[u8]> {
    with_encoded(msg, |b| Arc::from(b))
}

/// The kind byte stored in the database, back to a `MessageKind`.
#[must_use]
pub(crate) fn kind(v: u8) -> MessageKind {
    MessageKind::from_wire(v).unwrap_or(MessageKind::Say)
}

/// A stored message as it goes on the wire.
#[must_use]
pub(crate) fn chat_message(m: &StoredMsg) -> ChatMessage<'_> {
    ChatMessage {
        id: m.id,
        time_ms: m.time_ms,
        target: &m.target,
        from: &m.sender,
        kind: kind(m.kind),
        text: &m.text,
    }
}

/// `Names` records for a room, the last with `done = true`.
#[must_use]
pub(crate) fn names(room: &str, users: &[String]) -> Vec<Vec<u8>> {
    let empty = ServerMsg::Names {
        room,
        done: true,
        users: StrList::Items(&[]),
    };
    let base = empty.encoded_len();
    let mut out = Vec::new();
    let mut start = 0;
    while start < users.len() || out.is_empty() {
        let mut size = base;
        let mut end = start;
        while let Some(u) = users.get(end) {
            let len = u.as_str().encoded_len();
            if size + len > MAX_PLAINTEXT_LEN {
                break;
            }
            size += len;
            end += 1;
        }
        if end == start && start < users.len() {
            end += 1; // cannot happen with valid names; never loop forever
        }
        let chunk: Vec<&str> = users
            .get(start..end)
            .unwrap_or_default()
            .iter()
            .map(String::as_str)
            .collect();
        out.push(encode(&ServerMsg::Names {
            room,
            done: end >= users.len(),
            users: StrList::Items(&chunk),
        }));
        start = end;
    }
    out
}

/// `History` records, oldest first, the last with `done = true`.
#[must_use]
pub(crate) fn history(target: &str, msgs: &[StoredMsg]) -> Vec<Vec<u8>> {
    let empty = ServerMsg::History {
        target,
        done: true,
        messages: MessageList::Items(&[]),
    };
    let base = empty.encoded_len();
    let mut out = Vec::new();
    let mut start = 0;
    while start < msgs.len() || out.is_empty() {
        let mut size = base;
        let mut end = start;
        while let Some(m) = msgs.get(end) {
            let len = chat_message(m).encoded_len();
            if size + len > MAX_PLAINTEXT_LEN {
                break;
            }
            size += len;
            end += 1;
        }
        if end == start && start < msgs.len() {
            end += 1;
        }
        let chunk: Vec<ChatMessage<'_>> = msgs
            .get(start..end)
            .unwrap_or_default()
            .iter()
            .map(chat_message)
            .collect();
        out.push(encode(&ServerMsg::History {
            target,
            done: end >= msgs.len(),
            messages: MessageList::Items(&chunk),
        }));
        start = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_name_lists_are_split_within_the_record_limit() {
        let users: Vec<String> = (0..3000).map(|i| format!("user{i:027}")).collect();
        let recs = names("#lobby", &users);
        assert!(recs.len() > 1);
        let mut seen = 0;
        for (i, r) in recs.iter().enumerate() {
            assert!(r.len() <= MAX_PLAINTEXT_LEN);
            match ServerMsg::decode(r).unwrap() {
                ServerMsg::Names { done, users, .. } => {
                    assert_eq!(done, i == recs.len() - 1);
                    seen += users.len();
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(seen, users.len());
        assert_eq!(names("#x", &[]).len(), 1);
    }

    #[test]
    fn history_is_split_within_the_record_limit() {
        let msgs: Vec<StoredMsg> = (0..60)
            .map(|i| StoredMsg {
                id: i,
                time_ms: 1,
                target: "#lobby".into(),
                sender: "alice".into(),
                kind: 0,
                text: "x".repeat(1024),
            })
            .collect();
        let recs = history("#lobby", &msgs);
        assert!(recs.len() >= 4);
        assert!(recs.iter().all(|r| r.len() <= MAX_PLAINTEXT_LEN));
    }
}
