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

    /// Messages of a `History` answer for the target.
    pub(crate) fn add(&mut self, messages: &[ChatLine]) {
        self.page.extend_from_slice(messages);
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
