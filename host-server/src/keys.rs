//! The server key file and the keys derived from it.
//!
//! `<data dir>/server.key` holds 32 random bytes (mode 0600), the X25519 static secret of the
//! Noise handshake. Separate keys are derived from it with the Noise HKDF and a label each: one
//! seals TOTP secrets at rest, one keys the chat log's HMAC chain, one hashes scratch codes, one
//! seals the events nodes of a cluster exchange over the bus (all nodes share `server.key`), one
//! hashes invite tokens.

use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use chatbox_core::crypto::cipher::{TAG_LEN, decrypt, encrypt};
use chatbox_core::crypto::hash::hmac_sha256;
use chatbox_core::crypto::hkdf::hkdf2;
use chatbox_core::noise::StaticKeypair;
use zeroize::Zeroizing;

/// Name of the key file inside the data directory.
pub const KEY_FILE: &str = "server.key";
const SEAL_SALT_LEN: usize = 16;

/// The static key and the keys derived from it.
pub struct ServerKeys {
    /// The Noise static key pair.
    pub static_key: StaticKeypair,
    totp_seal: Zeroizing<[u8; 32]>,
    log_key: Zeroizing<[u8; 32]>,
    scratch_key: Zeroizing<[u8; 32]>,
    bus_key: Zeroizing<[u8; 32]>,
    invite_key: Zeroizing<[u8; 32]>,
}

impl core::fmt::Debug for ServerKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ServerKeys")
            .field("fingerprint", &self.static_key.fingerprint().as_str())
            .finish_non_exhaustive()
    }
}

/// Fills an array from the OS RNG.
pub fn random<const N: usize>() -> io::Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| io::Error::other(format!("OS RNG: {e}")))?;
    Ok(b)
}

fn derive(secret: &[u8; 32], label: &[u8]) -> Zeroizing<[u8; 32]> {
    let (k, mut other) = hkdf2(secret, label);
    zeroize::Zeroize::zeroize(&mut other);
    Zeroizing::new(k)
}

impl ServerKeys {
    fn from_secret(secret: Zeroizing<[u8; 32]>) -> ServerKeys {
        ServerKeys {
            static_key: StaticKeypair::from_secret(*secret),
            totp_seal: derive(&secret, b"chatbox totp seal"),
            log_key: derive(&secret, b"chatbox chat log"),
            scratch_key: derive(&secret, b"chatbox scratch codes"),
            bus_key: derive(&secret, b"chatbox cluster bus"),
            invite_key: derive(&secret, b"chatbox invite tokens"),
        }
    }

    /// Reads `server.key`, or creates it (mode 0600) with fresh random bytes if missing.
    pub fn load_or_create(data_dir: &Path) -> io::Result<ServerKeys> {
        let path = data_dir.join(KEY_FILE);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(mut f) => {
                let secret = Zeroizing::new(random::<32>()?);
                f.write_all(&secret[..])?;
                f.sync_all()?;
                Ok(ServerKeys::from_secret(secret))
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => ServerKeys::load(data_dir),
            Err(e) => Err(e),
        }
    }

    /// Reads an existing `server.key`.
    pub fn load(data_dir: &Path) -> io::Result<ServerKeys> {
        let path = data_dir.join(KEY_FILE);
        let mut f = fs::File::open(&path)?;
        let mode = f.metadata()?.permissions().mode();
        if mode & 0o077 != 0 {
            // Tighten it rather than refuse: the key must not be readable by others.
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600))?;
        }
        let mut secret = Zeroizing::new([0u8; 32]);
        let mut extra = [0u8; 1];
        f.read_exact(&mut secret[..])
            .map_err(|_| io::Error::other(format!("{}: not 32 bytes", path.display())))?;
        if f.read(&mut extra)? != 0 {
            return Err(io::Error::other(format!(
                "{}: longer than 32 bytes",
                path.display()
            )));
        }
        Ok(ServerKeys::from_secret(secret))
    }

    /// The fingerprint clients pin, `SHA256:<base64>`.
    #[must_use]
    pub fn fingerprint(&self) -> String {
        self.static_key.fingerprint().as_str().to_owned()
    }

    /// The key of the chat log's HMAC chain.
    /// The keyed hash an invite token is stored and looked up under (never the token itself):
    /// HMAC-SHA256 with a key derived from `server.key`, so a database alone yields no token and
    /// a token works only with the server (cluster) whose key made it.
    #[must_use]
    pub fn invite_hash(&self, token: &[u8; 32]) -> [u8; 32] {
        hmac_sha256(&self.invite_key[..], &[token])
    }

    #[must_use]
    pub fn log_key(&self) -> [u8; 32] {
        *self.log_key
    }

    /// Seals a TOTP secret for `user`: `salt(16) || ENCRYPT(HMAC(k_seal, salt), 0, user, secret)`.
    pub fn seal_totp(&self, user: &str, secret: &[u8]) -> io::Result<Vec<u8>> {
        let salt = random::<SEAL_SALT_LEN>()?;
        let key = Zeroizing::new(hmac_sha256(&self.totp_seal[..], &[&salt]));
        let mut out = vec![0u8; SEAL_SALT_LEN + secret.len() + TAG_LEN];
        let (head, body) = out.split_at_mut(SEAL_SALT_LEN);
        head.copy_from_slice(&salt);
        encrypt(&key, 0, user.as_bytes(), secret, body)
            .map_err(|e| io::Error::other(format!("seal: {e}")))?;
        Ok(out)
    }

    /// Opens a sealed TOTP secret; `None` if it was tampered with or belongs to another user.
    #[must_use]
    pub fn unseal_totp(&self, user: &str, sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        let salt = sealed.get(..SEAL_SALT_LEN)?;
        let body = sealed.get(SEAL_SALT_LEN..)?;
        let key = Zeroizing::new(hmac_sha256(&self.totp_seal[..], &[salt]));
        let mut out = Zeroizing::new(vec![0u8; body.len().checked_sub(TAG_LEN)?]);
        let n = decrypt(&key, 0, user.as_bytes(), body, &mut out).ok()?;
        out.truncate(n);
        Some(out)
    }

    /// The key of one bus sender: `HMAC(k_bus, sender id)` (each node picks a random sender id
    /// at start, so no two senders share a key and nonces never repeat under one key).
    #[must_use]
    pub fn bus_sender_key(&self, sender: &[u8]) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(hmac_sha256(&self.bus_key[..], &[b"sender", sender]))
    }

    /// The stored form of a scratch code: `HMAC(k_scratch, user || ":" || code)`.
    #[must_use]
    pub fn scratch_hash(&self, user: &str, code: &str) -> [u8; 32] {
        hmac_sha256(
            &self.scratch_key[..],
            &[user.as_bytes(), b":", code.as_bytes()],
        )
    }
}
