//! The two roles of the `NX` handshake. Each is used once: the initiator writes message 1 and
//! reads message 2, the responder reads message 1 and writes message 2; both then split.

use crate::buffer::{BufferTooSmall, prefix_mut};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::keys::StaticKeypair;
use super::symmetric::SymmetricState;
use super::{
    HandshakeError, MAX_PAYLOAD_LEN, MESSAGE1_LEN, MESSAGE2_OVERHEAD, PROLOGUE, PROTOCOL_NAME,
    PROTOCOL_VERSION,
};
use crate::crypto::cipher::TAG_LEN;
use crate::crypto::dh::{KEY_LEN, Keypair};
use crate::crypto::hash::HASH_LEN;

/// Keys produced by `Split()`: one chain key per direction, and the handshake hash.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct TransportKeys {
    /// Chain key for records the client sends.
    pub client_to_server: [u8; HASH_LEN],
    /// Chain key for records the server sends.
    pub server_to_client: [u8; HASH_LEN],
    /// The final handshake hash, a unique name for this session.
    pub handshake_hash: [u8; HASH_LEN],
}

impl core::fmt::Debug for TransportKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TransportKeys")
            .field("handshake_hash", &self.handshake_hash)
            .finish_non_exhaustive()
    }
}

fn initial_state() -> SymmetricState {
    let mut ss = SymmetricState::new(PROTOCOL_NAME.as_bytes());
    ss.mix_hash(PROLOGUE);
    ss
}

fn split(ss: &SymmetricState) -> TransportKeys {
    let (client_to_server, server_to_client) = ss.split();
    TransportKeys {
        client_to_server,
        server_to_client,
        handshake_hash: ss.handshake_hash(),
    }
}

fn key32(bytes: &[u8]) -> Result<[u8; KEY_LEN], HandshakeError> {
    bytes.try_into().map_err(|_| HandshakeError::BadLength)
}

/// The client side: `-> e`, then `<- e, ee, s, es`.
#[derive(Debug)]
#[cfg_attr(fuzzing, derive(Clone))]
pub struct Initiator {
    ss: SymmetricState,
    e: Keypair,
}

impl Initiator {
    /// A fresh initiator with the ephemeral secret supplied by the host's RNG.
    #[must_use]
    pub fn new(ephemeral_secret: [u8; KEY_LEN]) -> Self {
        Self {
            ss: initial_state(),
            e: Keypair::from_secret(ephemeral_secret),
        }
    }

    /// Writes message 1's body (`e.pub || version`) into `out`; returns its length (33).
    pub fn write_message1(&mut self, out: &mut [u8]) -> Result<usize, HandshakeError> {
        let dst = out
            .get_mut(..MESSAGE1_LEN)
            .ok_or(HandshakeError::InsufficientSize(BufferTooSmall {
                required: MESSAGE1_LEN,
            }))?;
        let (e_out, payload_out) = dst.split_at_mut(KEY_LEN);
        e_out.copy_from_slice(self.e.public());
        self.ss.mix_hash(self.e.public());
        // No key yet: EncryptAndHash copies the payload and hashes it.
        self.ss.encrypt_and_hash(&[PROTOCOL_VERSION], payload_out)?;
        Ok(MESSAGE1_LEN)
    }

    /// Reads message 2's body. Writes the server's decrypted payload into `payload_out` and
    /// returns the server's static public key, the payload length and the transport keys.
    pub fn read_message2(
        mut self,
        message: &[u8],
        payload_out: &mut [u8],
    ) -> Result<([u8; KEY_LEN], usize, TransportKeys), HandshakeError> {
        if message.len() < MESSAGE2_OVERHEAD || message.len() > MESSAGE2_OVERHEAD + MAX_PAYLOAD_LEN
        {
            return Err(HandshakeError::BadLength);
        }
        let (re, rest) = message.split_at(KEY_LEN);
        let (enc_s, enc_payload) = rest.split_at(KEY_LEN + TAG_LEN);
        let re = key32(re)?;
        self.ss.mix_hash(&re);
        self.ss.mix_key(&self.e.dh(&re)?.0);
        let mut rs = [0u8; KEY_LEN];
        self.ss.decrypt_and_hash(enc_s, &mut rs)?;
        self.ss.mix_key(&self.e.dh(&rs)?.0);
        let len = self.ss.decrypt_and_hash(enc_payload, payload_out)?;
        Ok((rs, len, split(&self.ss)))
    }
}

/// The server side: reads `-> e`, writes `<- e, ee, s, es`.
#[derive(Debug)]
#[cfg_attr(fuzzing, derive(Clone))]
pub struct Responder {
    ss: SymmetricState,
    s: StaticKeypair,
    e: Keypair,
    re: Option<[u8; KEY_LEN]>,
}

impl Responder {
    /// A fresh responder with the server's static key and an ephemeral secret from the host's
    /// RNG.
    #[must_use]
    pub fn new(static_key: &StaticKeypair, ephemeral_secret: [u8; KEY_LEN]) -> Self {
        Self {
            ss: initial_state(),
            s: static_key.clone(),
            e: Keypair::from_secret(ephemeral_secret),
            re: None,
        }
    }

    /// Reads message 1's body: exactly 33 bytes, version 1.
    pub fn read_message1(&mut self, message: &[u8]) -> Result<(), HandshakeError> {
        if message.len() != MESSAGE1_LEN {
            return Err(HandshakeError::BadLength);
        }
        let (re, version) = message.split_at(KEY_LEN);
        if version != [PROTOCOL_VERSION] {
            return Err(HandshakeError::UnsupportedVersion);
        }
        let re = key32(re)?;
        self.ss.mix_hash(&re);
        let mut v = [0u8; 1];
        self.ss.decrypt_and_hash(version, &mut v)?;
        self.re = Some(re);
        Ok(())
    }

    /// Length of message 2's body for a payload of `payload_len` bytes.
    #[must_use]
    pub fn message2_len(payload_len: usize) -> usize {
        MESSAGE2_OVERHEAD + payload_len
    }

    /// Writes message 2's body carrying `payload` into `out`; returns its length and the
    /// transport keys. Message 1 must have been read.
    pub fn write_message2(
        mut self,
        payload: &[u8],
        out: &mut [u8],
    ) -> Result<(usize, TransportKeys), HandshakeError> {
        if payload.len() > MAX_PAYLOAD_LEN {
            return Err(HandshakeError::PayloadTooLong);
        }
        let required = Self::message2_len(payload.len());
        let dst = prefix_mut(out, required)?;
        let re = self.re.ok_or(HandshakeError::BadLength)?;
        let (e_out, rest) = dst.split_at_mut(KEY_LEN);
        let (s_out, payload_out) = rest.split_at_mut(KEY_LEN + TAG_LEN);
        e_out.copy_from_slice(self.e.public());
        self.ss.mix_hash(self.e.public());
        self.ss.mix_key(&self.e.dh(&re)?.0);
        self.ss.encrypt_and_hash(&self.s.public(), s_out)?;
        self.ss.mix_key(&self.s.keypair().dh(&re)?.0);
        self.ss.encrypt_and_hash(payload, payload_out)?;
        Ok((required, split(&self.ss)))
    }
}
