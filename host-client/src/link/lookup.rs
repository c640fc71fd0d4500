//! The history lookup for chat lines of unknown fate after a reconnect (see
//! [`super::outbox::Check`]): `Ping`, `History` pages, `Ping`, answered in order.
//!
//! The first `Ping` separates what the server answers to earlier messages (the rejoins, a line
//! sent before) from the lookup: between its `Pong` and the last one, every `History` for the
//! target and every `Error` belongs to the lookup. Pages are read newest first, going back
//! while a page is full and its oldest message is still newer than the oldest line in doubt,
//! at most [`MAX_LOOKUP_PAGES`] pages.

use std::time::Instant;

use crate::event::ChatLine;

/// Messages asked for per history page (the server's maximum).
pub const LOOKUP_LIMIT: u16 = 200;

/// Pages read back at most per target (so at most 1000 messages are looked through).
pub const MAX_LOOKUP_PAGES: u32 = 5;

/// What the lookup does next, after a `Pong` of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// Ask for the page of messages older than this id (`before_id`).
    Page(u64),
    /// Done: these are the messages found.
    Done(Vec<ChatLine>),
}

/// One target's lookup in progress.
#[derive(Debug, Clone)]
pub(crate) struct Lookup {
    /// Room, or the other user of a private conversation.
    pub(crate) target: String,
    /// The oldest id in doubt: no need to read further back than that.
    after_id: u64,
    /// The separating ping not answered yet.
    sync: Option<u64>,
    /// The ping that ends the current page.
    pub(crate) token: u64,
    /// When the last ping went out (its answer is due [`super::ACK_TIMEOUT`] later).
    pub(crate) sent: Instant,
    pages: u32,
    /// Messages of the current page.
    page: Vec<ChatLine>,
    found: Vec<ChatLine>,
}

impl Lookup {
    /// A lookup of `target` back to `after_id`; `sync` and `token` are the two pings sent around
    /// the first page.
    pub(crate) fn new(target: String, after_id: u64, sync: u64, token: u64, now: Instant) -> Self {
        Lookup {
            target,
            after_id,
            sync: Some(sync),
            token,
            sent: now,
            pages: 1,
            page: Vec::new(),
            found: Vec::new(),
        }
    }

    /// Whether answers now belong to the lookup (the separating ping was answered).
    pub(crate) fn is_reading(&self) -> bool {
        self.sync.is_none()
    }

    /// A `Pong`: true if it is one of the lookup's (not to be shown).
    pub(crate) fn is_own(&self, token: u64) -> bool {
        self.sync == Some(token) || self.token == token
    }

    /// The separating ping's `Pong` (true if `token` is it).
    pub(crate) fn synced(&mut self, token: u64) -> bool {
        if self.sync == Some(token) {
            self.sync = None;
            true
        } else {
            false
        }
    }

    /// Messages of a `History` answer for the target (a page holds what was asked for at
    /// most: a server sending more is not followed further).
    pub(crate) fn add(&mut self, messages: &[ChatLine]) {
        let room = usize::from(LOOKUP_LIMIT).saturating_sub(self.page.len());
        self.page.extend(messages.iter().take(room).cloned());
    }

    /// The page's `Pong`: another page, or done.
    pub(crate) fn page_done(&mut self) -> Step {
        let full = self.page.len() >= usize::from(LOOKUP_LIMIT);
        let oldest = self.page.iter().map(|m| m.id).min();
        self.found.append(&mut self.page);
        match oldest {
            Some(id)
                if full
                    && id > self.after_id.saturating_add(1)
                    && self.pages < MAX_LOOKUP_PAGES =>
            {
                self.pages += 1;
                Step::Page(id)
            }
            _ => Step::Done(core::mem::take(&mut self.found)),
        }
    }

    /// A next page asked for, ended by the ping `token`.
    pub(crate) fn next_page(&mut self, token: u64, now: Instant) {
        self.token = token;
        self.sent = now;
    }
}

#[cfg(test)]
mod tests {
    use chatbox_core::proto::MessageKind;

    use super::*;

    fn msgs(ids: core::ops::Range<u64>) -> Vec<ChatLine> {
        ids.map(|id| ChatLine {
            id,
            time_ms: 0,
            target: "#a".into(),
            from: "bob".into(),
            kind: MessageKind::Say,
            text: String::new(),
        })
        .collect()
    }

    #[test]
    fn pages_go_back_while_full_and_newer_than_the_line_at_most_five() {
        let now = Instant::now();
        let mut l = Lookup::new("#a".into(), 10, 1, 2, now);
        assert!(!l.is_reading() && l.is_own(1) && l.is_own(2) && !l.is_own(3));
        assert!(!l.synced(2) && l.synced(1) && l.is_reading());
        // A full page, oldest id 801: older ones may hold the line.
        l.add(&msgs(801..1001));
        assert_eq!(l.page_done(), Step::Page(801));
        l.next_page(3, now);
        assert!(l.is_own(3));
        // A page reaching back to the line's predecessor ends it.
        l.add(&msgs(11..211));
        assert_eq!(
            l.page_done(),
            Step::Done([msgs(801..1001), msgs(11..211)].concat())
        );
        // A short page ends it; so do five pages.
        let mut l = Lookup::new("#a".into(), 0, 1, 2, now);
        l.add(&msgs(5..10));
        assert!(matches!(l.page_done(), Step::Done(v) if v.len() == 5));
        let mut l = Lookup::new("#a".into(), 0, 1, 2, now);
        let mut steps = 0;
        for page in 0..10u64 {
            let top = 10_000 - page * 200;
            l.add(&msgs(top - 200..top));
            steps += 1;
            if let Step::Done(found) = l.page_done() {
                assert_eq!(found.len(), 1000);
                break;
            }
        }
        assert_eq!(steps, MAX_LOOKUP_PAGES);
    }

    #[test]
    fn a_page_holds_no_more_than_was_asked_for() {
        let mut l = Lookup::new("#a".into(), 0, 1, 2, Instant::now());
        l.synced(1);
        for _ in 0..100 {
            l.add(&msgs(1..1001));
        }
        match l.page_done() {
            Step::Done(v) => assert_eq!(v.len(), usize::from(LOOKUP_LIMIT)),
            other => panic!("{other:?}"),
        }
    }
}
