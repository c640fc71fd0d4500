//! The sans-IO session: the Noise `NX` handshake, then one ratchet per direction.
//!
//! Shaped like quinn-proto and rustls' unbuffered API. The host:
//! - feeds received bytes to [`Session::handle_input`], which consumes at most one frame and,
//!   for a transport record, decrypts it **in place** in the host's buffer (no copy, no
//!   allocation, no buffer held while idle);
//! - calls [`Session::poll_transmit`] for handshake bytes to send (0 = nothing);
//! - calls [`Session::poll_event`] to learn that the handshake completed;
//! - seals application records with [`Session::seal`] or [`Session::seal_in_place`], or takes
//!   the sending half out with [`Session::take_sender`] to seal from wherever it writes (the
//!   server seals a recipient's records in the task that delivers them); the session keeps
//!   opening records.
//!
//! Randomness comes in as arguments (ephemeral secrets). Timeouts are the host's: the session
//! never waits. An error about the peer's bytes or the keys kills the session: every later call
//! returns that error again. Three errors are the caller's and leave the session as it was:
//! [`SessionError::InsufficientSize`], [`SessionError::PlaintextTooLong`] and
//! [`SessionError::NotEstablished`].

mod ratchet;

pub use ratchet::Ratchet;

use crate::buffer::{BufferTooSmall, prefix_mut};
use core::fmt;

use crate::crypto::CryptoError;
use crate::crypto::cipher::TAG_LEN;
use crate::crypto::dh::KEY_LEN;
use crate::crypto::hash::HASH_LEN;
use crate::frame::{self, Decoded, FrameError, HEADER_LEN, MAX_PLAINTEXT_LEN};
use crate::noise::{
    HandshakeError, Initiator, MAX_PAYLOAD_LEN, MESSAGE1_LEN, Responder, StaticKeypair,
    TransportKeys,
};

/// Bytes a sealed record adds to its plaintext: the length prefix and the tag.
pub const RECORD_OVERHEAD: usize = HEADER_LEN + TAG_LEN;

/// Session errors. All but `InsufficientSize`, `PlaintextTooLong`, `NotEstablished` and
/// `SenderTaken` end the session (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum SessionError {
    /// A length prefix was zero or too large.
    Frame(FrameError),
    /// The handshake failed (bad version or length, tampered message, weak key).
    Handshake(HandshakeError),
    /// A transport record failed authentication: tampered, truncated, replayed, reordered or
    /// dropped records all end here.
    BadRecord,
    /// A message arrived that this state does not expect (e.g. a second message 1).
    UnexpectedMessage,
    /// Application data was sealed before the handshake completed. The session is still usable.
    NotEstablished,
    /// Plaintext longer than [`MAX_PLAINTEXT_LEN`]. The session is still usable.
    PlaintextTooLong,
    /// The caller's output buffer is too small. The session is still usable.
    InsufficientSize(BufferTooSmall),
    /// The record counter is exhausted.
    Exhausted,
    /// The sending half was taken out with [`Session::take_sender`]: seal with that
    /// [`Sender`]. The session is still usable for opening records.
    SenderTaken,
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Frame(e) => write!(f, "framing error: {e}"),
            Self::Handshake(e) => write!(f, "handshake error: {e}"),
            Self::BadRecord => f.write_str("record failed authentication"),
            Self::UnexpectedMessage => f.write_str("unexpected message for this state"),
            Self::NotEstablished => f.write_str("session not established"),
            Self::PlaintextTooLong => {
                write!(f, "plaintext longer than {MAX_PLAINTEXT_LEN} bytes")
            }
            Self::InsufficientSize(e) => e.fmt(f),
            Self::Exhausted => f.write_str("record counter exhausted"),
            Self::SenderTaken => f.write_str("the sending half was taken out of the session"),
        }
    }
}

impl core::error::Error for SessionError {}

impl From<BufferTooSmall> for SessionError {
    fn from(e: BufferTooSmall) -> Self {
        Self::InsufficientSize(e)
    }
}

impl From<FrameError> for SessionError {
    fn from(e: FrameError) -> Self {
        match e {
            FrameError::InsufficientSize(e) => Self::InsufficientSize(e),
            other => Self::Frame(other),
        }
    }
}

impl From<HandshakeError> for SessionError {
    fn from(e: HandshakeError) -> Self {
        match e {
            HandshakeError::InsufficientSize(e) => Self::InsufficientSize(e),
            other => Self::Handshake(other),
        }
    }
}

impl From<CryptoError> for SessionError {
    fn from(e: CryptoError) -> Self {
        match e {
            CryptoError::NonceExhausted => Self::Exhausted,
            CryptoError::InsufficientSize(e) => Self::InsufficientSize(e),
            _ => Self::BadRecord,
        }
    }
}

/// What [`Session::handle_input`] did with the start of the buffer.
#[derive(Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Input<'a> {
    /// No whole frame yet: read at least `needed` more bytes, then call again with them
    /// appended. Nothing was consumed.
    Incomplete {
        /// Bytes still missing, at least.
        needed: usize,
    },
    /// A handshake frame was consumed; check [`Session::poll_transmit`] and
    /// [`Session::poll_event`].
    Handshake {
        /// Bytes consumed from the front of the buffer.
        consumed: usize,
    },
    /// A transport record was authenticated and decrypted in place.
    Record {
        /// Bytes consumed from the front of the buffer.
        consumed: usize,
        /// The plaintext, inside the caller's buffer.
        plaintext: &'a [u8],
    },
}

impl Input<'_> {
    /// Bytes consumed (0 for [`Input::Incomplete`]).
    #[must_use]
    pub fn consumed(&self) -> usize {
        match self {
            Self::Incomplete { .. } => 0,
            Self::Handshake { consumed } | Self::Record { consumed, .. } => *consumed,
        }
    }
}

/// Things that happened, for the host to act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Event {
    /// The handshake completed; records may flow both ways. A client must now check
    /// [`Session::remote_static`] against its pinned key before sending anything.
    Established,
}

/// Which side of the connection this session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Role {
    /// The connecting side (initiator).
    Client,
    /// The listening side (responder).
    Server,
}

#[derive(Debug)]
#[cfg_attr(fuzzing, derive(Clone))]
enum State {
    ClientSendHello(Initiator),
    ClientAwaitReply(Initiator),
    ServerAwaitHello(Responder),
    ServerSendReply(Responder),
    Established {
        /// `None` once [`Session::take_sender`] moved it into a [`Sender`].
        send: Option<Ratchet>,
        recv: Ratchet,
    },
    Failed(SessionError),
    /// Transitional; never observed from outside.
    Poisoned,
}

/// One end of a ChatBox connection.
#[derive(Debug)]
// Not `Clone` in the product (a copied ratchet would reuse record keys); in fuzz builds only,
// so the fuzz targets can start every execution from one established state.
#[cfg_attr(fuzzing, derive(Clone))]
pub struct Session {
    role: Role,
    state: State,
    event: Option<Event>,
    remote_static: Option<[u8; KEY_LEN]>,
    handshake_hash: [u8; HASH_LEN],
    payload: heapless::Vec<u8, MAX_PAYLOAD_LEN>,
}

impl Session {
    /// A client session; `ephemeral_secret` must be 32 fresh random bytes.
    #[must_use]
    pub fn client(ephemeral_secret: [u8; KEY_LEN]) -> Self {
        Self {
            role: Role::Client,
            state: State::ClientSendHello(Initiator::new(ephemeral_secret)),
            event: None,
            remote_static: None,
            handshake_hash: [0; HASH_LEN],
            payload: heapless::Vec::new(),
        }
    }

    /// A server session with the server's static key, 32 fresh random bytes for the ephemeral
    /// key, and the payload message 2 carries (who the server is; at most 256 bytes).
    pub fn server(
        static_key: &StaticKeypair,
        ephemeral_secret: [u8; KEY_LEN],
        payload: &[u8],
    ) -> Result<Self, SessionError> {
        let payload = heapless::Vec::from_slice(payload)
            .map_err(|_| SessionError::Handshake(HandshakeError::PayloadTooLong))?;
        Ok(Self {
            role: Role::Server,
            state: State::ServerAwaitHello(Responder::new(static_key, ephemeral_secret)),
            event: None,
            remote_static: None,
            handshake_hash: [0; HASH_LEN],
            payload,
        })
    }

    /// Which side this is.
    #[must_use]
    pub fn role(&self) -> Role {
        self.role
    }

    /// Whether records may be sealed and opened.
    #[must_use]
    pub fn is_established(&self) -> bool {
        matches!(self.state, State::Established { .. })
    }

    /// The error that ended the session, if one did.
    #[must_use]
    pub fn error(&self) -> Option<SessionError> {
        match self.state {
            State::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// The server's static public key (client side, once established).
    #[must_use]
    pub fn remote_static(&self) -> Option<&[u8; KEY_LEN]> {
        self.remote_static.as_ref()
    }

    /// The payload of message 2: what the server said about itself (client side), or what it
    /// will say (server side).
    #[must_use]
    pub fn handshake_payload(&self) -> &[u8] {
        &self.payload
    }

    /// The handshake hash (all zeros before the handshake completes).
    #[must_use]
    pub fn handshake_hash(&self) -> &[u8; HASH_LEN] {
        &self.handshake_hash
    }

    /// Records sent and received so far: the current key epochs `(send, receive)`.
    #[must_use]
    pub fn epochs(&self) -> (u64, u64) {
        match &self.state {
            State::Established { send, recv } => {
                (send.as_ref().map_or(0, Ratchet::epoch), recv.epoch())
            }
            _ => (0, 0),
        }
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.event.take()
    }

    fn fail(&mut self, e: SessionError) -> SessionError {
        if !matches!(e, SessionError::InsufficientSize(_)) {
            self.state = State::Failed(e);
        }
        e
    }

    fn establish(&mut self, keys: &TransportKeys) {
        let (send, recv) = match self.role {
            Role::Client => (keys.client_to_server, keys.server_to_client),
            Role::Server => (keys.server_to_client, keys.client_to_server),
        };
        self.handshake_hash = keys.handshake_hash;
        self.state = State::Established {
            send: Some(Ratchet::new(send)),
            recv: Ratchet::new(recv),
        };
        self.event = Some(Event::Established);
    }

    /// Consumes at most one frame from the front of `bytes`. Transport records are
    /// authenticated and decrypted in place; the plaintext is returned as a slice of `bytes`.
    pub fn handle_input<'a>(&mut self, bytes: &'a mut [u8]) -> Result<Input<'a>, SessionError> {
        if let State::Failed(e) = self.state {
            return Err(e);
        }
        let consumed = match frame::decode(bytes) {
            Ok(Decoded::Incomplete { needed }) => return Ok(Input::Incomplete { needed }),
            Ok(Decoded::Frame(_, consumed)) => consumed,
            Err(e) => return Err(self.fail(e.into())),
        };
        let body = bytes
            .get_mut(HEADER_LEN..consumed)
            .ok_or(SessionError::UnexpectedMessage)?;
        // Records, the common case, are opened where the state is (no move of the whole state).
        if let State::Established { recv, .. } = &mut self.state {
            return match recv.open_body(body) {
                Ok(len) => record(bytes, consumed, len),
                Err(e) => Err(self.fail(e.into())),
            };
        }
        match core::mem::replace(&mut self.state, State::Poisoned) {
            // Handled above.
            State::Established { .. } => Err(self.fail(SessionError::UnexpectedMessage)),
            State::ServerAwaitHello(mut responder) => match responder.read_message1(body) {
                Ok(()) => {
                    self.state = State::ServerSendReply(responder);
                    Ok(Input::Handshake { consumed })
                }
                Err(e) => Err(self.fail(e.into())),
            },
            State::ClientAwaitReply(initiator) => {
                let mut payload = [0u8; MAX_PAYLOAD_LEN];
                match initiator.read_message2(body, &mut payload) {
                    Ok((rs, len, keys)) => {
                        self.remote_static = Some(rs);
                        self.payload.clear();
                        let got = payload.get(..len).unwrap_or_default();
                        // `len` ≤ MAX_PAYLOAD_LEN was checked by read_message2.
                        let _ = self.payload.extend_from_slice(got);
                        self.establish(&keys);
                        Ok(Input::Handshake { consumed })
                    }
                    Err(e) => Err(self.fail(e.into())),
                }
            }
            State::ClientSendHello(_)
            | State::ServerSendReply(_)
            | State::Failed(_)
            | State::Poisoned => Err(self.fail(SessionError::UnexpectedMessage)),
        }
    }

    /// Writes pending handshake bytes (a whole frame) into `out`; returns how many, 0 if there
    /// is nothing to send. Fails with `InsufficientSize` (session intact) if `out` is too small.
    pub fn poll_transmit(&mut self, out: &mut [u8]) -> Result<usize, SessionError> {
        match core::mem::replace(&mut self.state, State::Poisoned) {
            State::ClientSendHello(mut initiator) => {
                let required = HEADER_LEN + MESSAGE1_LEN;
                if out.len() < required {
                    self.state = State::ClientSendHello(initiator);
                    return Err(SessionError::InsufficientSize(BufferTooSmall { required }));
                }
                let (head, body) = out.split_at_mut(HEADER_LEN);
                match initiator.write_message1(body) {
                    Ok(len) => {
                        head.copy_from_slice(&frame::header(len)?);
                        self.state = State::ClientAwaitReply(initiator);
                        Ok(HEADER_LEN + len)
                    }
                    Err(e) => Err(self.fail(e.into())),
                }
            }
            State::ServerSendReply(responder) => {
                let required = HEADER_LEN + Responder::message2_len(self.payload.len());
                if out.len() < required {
                    self.state = State::ServerSendReply(responder);
                    return Err(SessionError::InsufficientSize(BufferTooSmall { required }));
                }
                let (head, body) = out.split_at_mut(HEADER_LEN);
                match responder.write_message2(&self.payload, body) {
                    Ok((len, keys)) => {
                        head.copy_from_slice(&frame::header(len)?);
                        self.payload.clear();
                        self.establish(&keys);
                        Ok(HEADER_LEN + len)
                    }
                    Err(e) => Err(self.fail(e.into())),
                }
            }
            State::Failed(e) => {
                self.state = State::Failed(e);
                Err(e)
            }
            other => {
                self.state = other;
                Ok(0)
            }
        }
    }

    /// Seals `plaintext` as one record (a whole frame) into `out`; returns the frame length,
    /// `plaintext.len() + RECORD_OVERHEAD`.
    pub fn seal(&mut self, plaintext: &[u8], out: &mut [u8]) -> Result<usize, SessionError> {
        if let State::Failed(e) = self.state {
            return Err(e);
        }
        place_plaintext(plaintext, out)?;
        self.seal_in_place(out, plaintext.len())
    }

    /// Seals a record whose plaintext the caller already wrote at
    /// `buf[HEADER_LEN..HEADER_LEN + plaintext_len]` (encode messages there to avoid a copy).
    /// Writes the prefix and the tag around it; returns the frame length.
    pub fn seal_in_place(
        &mut self,
        buf: &mut [u8],
        plaintext_len: usize,
    ) -> Result<usize, SessionError> {
        let send = match &mut self.state {
            State::Established {
                send: Some(send), ..
            } => send,
            State::Established { send: None, .. } => return Err(SessionError::SenderTaken),
            State::Failed(e) => return Err(*e),
            _ => return Err(SessionError::NotEstablished),
        };
        seal_record(send, buf, plaintext_len).map_err(|e| match e {
            SessionError::PlaintextTooLong => e,
            e => self.fail(e),
        })
    }

    /// Turns an established session into its receiving half alone, for a host that keeps
    /// only what it needs once the handshake is over (the handshake state, the payload and
    /// the keys' transcript are dropped; take the [`Sender`] first with
    /// [`Session::take_sender`], or it is dropped too). `None` if it is not established.
    #[must_use]
    pub fn into_receiver(self) -> Option<Receiver> {
        match self.state {
            State::Established { recv, .. } => Some(Receiver {
                ratchet: recv,
                failed: None,
            }),
            _ => None,
        }
    }

    /// Takes the sending half out of an established session, for a host that seals where it
    /// writes rather than where it reads. Afterwards [`Session::seal`] and
    /// [`Session::seal_in_place`] return [`SessionError::SenderTaken`], `epochs().0` is 0, and
    /// the session still opens records. `None` before the handshake completed, after an
    /// error, or if it was taken already.
    pub fn take_sender(&mut self) -> Option<Sender> {
        match &mut self.state {
            State::Established { send, .. } => send.take().map(|ratchet| Sender {
                ratchet,
                failed: None,
            }),
            _ => None,
        }
    }
}

/// The sending half of an established [`Session`] (see [`Session::take_sender`]): seals
/// records exactly as the session would have, continuing its ratchet. An error other than the
/// caller's (`InsufficientSize`, `PlaintextTooLong`) ends it: every later call returns that
/// error again.
#[derive(Debug)]
pub struct Sender {
    ratchet: Ratchet,
    failed: Option<SessionError>,
}

impl Sender {
    /// Seals `plaintext` as one record (a whole frame) into `out`; returns the frame length,
    /// `plaintext.len() + RECORD_OVERHEAD`. Like [`Session::seal`].
    pub fn seal(&mut self, plaintext: &[u8], out: &mut [u8]) -> Result<usize, SessionError> {
        place_plaintext(plaintext, out)?;
        self.seal_in_place(out, plaintext.len())
    }

    /// Seals a record whose plaintext the caller already wrote at
    /// `buf[HEADER_LEN..HEADER_LEN + plaintext_len]`; returns the frame length. Like
    /// [`Session::seal_in_place`].
    pub fn seal_in_place(
        &mut self,
        buf: &mut [u8],
        plaintext_len: usize,
    ) -> Result<usize, SessionError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        seal_record(&mut self.ratchet, buf, plaintext_len).inspect_err(|e| {
            if !matches!(
                e,
                SessionError::PlaintextTooLong | SessionError::InsufficientSize(_)
            ) {
                self.failed = Some(*e);
            }
        })
    }

    /// The number of records sealed in this direction so far (the key epoch).
    #[must_use]
    pub fn epoch(&self) -> u64 {
        self.ratchet.epoch()
    }
}

/// The receiving half of an established [`Session`] (see [`Session::into_receiver`]): opens
/// records exactly as the session would have, continuing its ratchet. Like the session, an
/// error about the peer's bytes ends it: every later call returns that error again.
#[derive(Debug)]
pub struct Receiver {
    ratchet: Ratchet,
    failed: Option<SessionError>,
}

impl Receiver {
    /// Consumes at most one frame from the front of `bytes` and opens it in place, like
    /// [`Session::handle_input`] once established (never [`Input::Handshake`]).
    pub fn handle_input<'a>(&mut self, bytes: &'a mut [u8]) -> Result<Input<'a>, SessionError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let r = match frame::decode(bytes) {
            Ok(Decoded::Incomplete { needed }) => return Ok(Input::Incomplete { needed }),
            Ok(Decoded::Frame(_, consumed)) => match bytes.get_mut(HEADER_LEN..consumed) {
                Some(body) => self
                    .ratchet
                    .open_body(body)
                    .map(|len| (consumed, len))
                    .map_err(SessionError::from),
                None => Err(SessionError::UnexpectedMessage),
            },
            Err(e) => Err(SessionError::from(e)),
        };
        match r {
            Ok((consumed, len)) => record(bytes, consumed, len),
            Err(e) => {
                if !matches!(e, SessionError::InsufficientSize(_)) {
                    self.failed = Some(e);
                }
                Err(e)
            }
        }
    }

    /// The number of records opened in this direction so far (the key epoch).
    #[must_use]
    pub fn epoch(&self) -> u64 {
        self.ratchet.epoch()
    }
}

/// Copies `plaintext` where a record's plaintext goes in `out` (after the length prefix),
/// checking that the whole record will fit.
fn place_plaintext(plaintext: &[u8], out: &mut [u8]) -> Result<(), SessionError> {
    let required = plaintext.len() + RECORD_OVERHEAD;
    if out.len() < required {
        return Err(SessionError::InsufficientSize(BufferTooSmall { required }));
    }
    if let Some(dst) = out.get_mut(HEADER_LEN..HEADER_LEN + plaintext.len()) {
        dst.copy_from_slice(plaintext);
    }
    Ok(())
}

/// The opened record at the front of `bytes`: `len` bytes of plaintext after the prefix.
fn record(bytes: &[u8], consumed: usize, len: usize) -> Result<Input<'_>, SessionError> {
    let plaintext = bytes
        .get(HEADER_LEN..HEADER_LEN + len)
        .ok_or(SessionError::BadRecord)?;
    Ok(Input::Record {
        consumed,
        plaintext,
    })
}

/// Frames and seals one record with `send`: the length prefix, the ciphertext in place, the
/// tag. `InsufficientSize` and `PlaintextTooLong` are the caller's; any other error ends the
/// direction.
fn seal_record(
    send: &mut Ratchet,
    buf: &mut [u8],
    plaintext_len: usize,
) -> Result<usize, SessionError> {
    if plaintext_len > MAX_PLAINTEXT_LEN {
        return Err(SessionError::PlaintextTooLong);
    }
    let body_len = plaintext_len + TAG_LEN;
    let required = HEADER_LEN + body_len;
    let frame = prefix_mut(buf, required)?;
    let (head, body) = frame.split_at_mut(HEADER_LEN);
    head.copy_from_slice(&frame::header(body_len)?);
    send.seal_body(body)?;
    Ok(required)
}
