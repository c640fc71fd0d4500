//! Sealing bus messages: `MAGIC ‖ sender id (16) ‖ counter (8, big-endian) ‖ ciphertext ‖ tag
//! (16)`, AES-256-CTR + HMAC-SHA256 from `chatbox-core` with a key derived from `server.key`
//! and a random per-process sender id; the header is the associated data, the counter the
//! nonce. Receivers refuse anything that does not authenticate or replays an old counter, so
//! access to Redis alone gives neither the chat text nor a way to inject messages (see
//! docs/DESIGN.md, "Server: chat and bus").

use std::collections::HashMap;

use chatbox_core::crypto::cipher::{RecordKeys, TAG_LEN};

/// Version 2: an event is a batch of effects (version 1 carried one).
const MAGIC: [u8; 2] = *b"C2";
const SENDER_LEN: usize = 16;
const HEADER_LEN: usize = MAGIC.len() + SENDER_LEN + 8;
/// Senders remembered for replay protection at most.
const MAX_SENDERS: usize = 4096;

/// Seals events of this process.
#[derive(Debug)]
pub(crate) struct Sealer {
    sender: [u8; SENDER_LEN],
    keys: RecordKeys,
    counter: u64,
}

impl Sealer {
    /// A sealer with a fresh random sender id.
    pub(crate) fn new(shared_keys: &crate::keys::ServerKeys) -> std::io::Result<Sealer> {
        let sender = crate::keys::random::<SENDER_LEN>()?;
        let keys = RecordKeys::derive(&shared_keys.bus_sender_key(&sender));
        Ok(Sealer {
            sender,
            keys,
            counter: 0,
        })
    }

    /// The sealed form of `plain`.
    pub(crate) fn seal(&mut self, plain: &[u8]) -> Vec<u8> {
        self.counter += 1;
        let mut out = Vec::with_capacity(HEADER_LEN + plain.len() + TAG_LEN);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&self.sender);
        out.extend_from_slice(&self.counter.to_be_bytes());
        out.extend_from_slice(plain);
        let (head, body) = out.split_at_mut(HEADER_LEN);
        let tag = self.keys.seal_in_place(self.counter, head, body);
        out.extend_from_slice(&tag);
        out
    }
}

/// Opens events, refusing forgeries and replays.
#[derive(Debug, Default)]
pub(crate) struct Opener {
    /// Sender id → its keys and the last counter accepted.
    senders: HashMap<[u8; SENDER_LEN], (RecordKeys, u64)>,
}

/// Why a bus message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpenError {
    /// Not a ChatBox bus message.
    Malformed,
    /// The tag did not verify (another cluster's key, or tampered with).
    Forged,
    /// A counter not above the last one of its sender.
    Replayed,
}

impl Opener {
    /// The plaintext of one sealed event.
    pub(crate) fn open(
        &mut self,
        keys: &crate::keys::ServerKeys,
        msg: &[u8],
    ) -> Result<Vec<u8>, OpenError> {
        if msg.len() < HEADER_LEN + TAG_LEN || msg.get(..MAGIC.len()) != Some(&MAGIC[..]) {
            return Err(OpenError::Malformed);
        }
        let (head, rest) = msg.split_at(HEADER_LEN);
        let (ct, tag) = rest.split_at(rest.len() - TAG_LEN);
        let sender: [u8; SENDER_LEN] = head
            .get(MAGIC.len()..MAGIC.len() + SENDER_LEN)
            .and_then(|s| s.try_into().ok())
            .ok_or(OpenError::Malformed)?;
        let counter = head
            .get(MAGIC.len() + SENDER_LEN..)
            .and_then(|c| <[u8; 8]>::try_from(c).ok())
            .map(u64::from_be_bytes)
            .ok_or(OpenError::Malformed)?;
        if !self.senders.contains_key(&sender) && self.senders.len() >= MAX_SENDERS {
            // Bound the memory; forgetting senders only makes later replays of theirs fail
            // the counter check less strictly, never lets a forgery through.
            self.senders.clear();
        }
        let entry = self
            .senders
            .entry(sender)
            .or_insert_with(|| (RecordKeys::derive(&keys.bus_sender_key(&sender)), 0));
        let mut body = ct.to_vec();
        entry
            .0
            .open_in_place(counter, head, &mut body, tag)
            .map_err(|_| OpenError::Forged)?;
        if counter <= entry.1 {
            return Err(OpenError::Replayed);
        }
        entry.1 = counter;
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_events_open_once_and_refuse_tampering_and_other_keys() {
        let dir = tempfile::tempdir().unwrap();
        let keys = crate::keys::ServerKeys::load_or_create(dir.path()).unwrap();
        let other_dir = tempfile::tempdir().unwrap();
        let other = crate::keys::ServerKeys::load_or_create(other_dir.path()).unwrap();
        let mut sealer = Sealer::new(&keys).unwrap();
        let mut opener = Opener::default();
        let a = sealer.seal(b"first");
        let b = sealer.seal(b"second");
        assert_eq!(opener.open(&keys, &a).unwrap(), b"first");
        assert_eq!(opener.open(&keys, &b).unwrap(), b"second");
        assert_eq!(opener.open(&keys, &a), Err(OpenError::Replayed));
        let c = sealer.seal(b"third");
        for i in 0..c.len() {
            let mut t = c.clone();
            t[i] ^= 0x40;
            assert!(opener.open(&keys, &t).is_err(), "flip at {i} accepted");
        }
        assert_eq!(
            Opener::default().open(&other, &c),
            Err(OpenError::Forged),
            "another cluster's key"
        );
        assert_eq!(opener.open(&keys, &c).unwrap(), b"third");
        assert_eq!(opener.open(&keys, &c[..10]), Err(OpenError::Malformed));
        // The plaintext does not appear in the sealed bytes.
        let secret = sealer.seal(b"attack at dawn");
        assert!(!secret.windows(6).any(|w| w == b"attack"));
    }
}
