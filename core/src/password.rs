//! Password hashing: PBKDF2-HMAC-SHA256 stored as PHC strings.
//!
//! A stored hash reads `$pbkdf2-sha256$i=600000,l=32$<salt>$<hash>`, salt and hash in standard
//! Base64 without padding. [`PhcHash::parse`] is strict and bounds the iteration count, so a
//! crafted database row cannot make the server spin. [`verify_password`] compares in constant
//! time, and [`dummy_verify`] spends the same work for unknown users so timing does not reveal
//! which accounts exist. Derived keys are wiped after use.

use crate::buffer::BufferTooSmall;
use core::fmt::{self, Write as _};

use hmac::Hmac;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::encoding::{SliceWriter, b64_decode, b64_encode};

/// Iterations used for new hashes (OWASP 2023 recommendation for PBKDF2-HMAC-SHA256).
pub const DEFAULT_ITERATIONS: u32 = 600_000;
/// Fewest iterations accepted when hashing or parsing.
pub const MIN_ITERATIONS: u32 = 10_000;
/// Most iterations accepted when parsing, so a crafted hash cannot cost minutes of CPU.
pub const MAX_ITERATIONS: u32 = 10_000_000;
/// Length of the random salt of new hashes, in bytes.
pub const SALT_LEN: usize = 16;
/// Shortest salt accepted when parsing, in bytes.
pub const MIN_SALT_LEN: usize = 8;
/// Longest salt accepted when parsing, in bytes.
pub const MAX_SALT_LEN: usize = 64;
/// Length of the derived hash, in bytes (the PHC `l` parameter).
pub const HASH_LEN: usize = 32;
/// Output buffer size that always fits a PHC string written by [`hash_password`].
pub const MAX_PHC_LEN: usize = 128;
/// Shortest password accepted by [`check_password_policy`], in bytes.
pub const MIN_PASSWORD_LEN: usize = 8;
/// Longest password accepted by [`check_password_policy`], in bytes.
pub const MAX_PASSWORD_LEN: usize = 128;

const PREFIX: &str = "$pbkdf2-sha256$i=";
const LENGTH_PARAM: &str = "l=32";
const DUMMY_SALT: [u8; SALT_LEN] = *b"chatbox-no-user!";

/// Errors from this module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum PasswordError {
    /// The iteration count is below [`MIN_ITERATIONS`] (or zero for the raw primitive).
    TooFewIterations,
    /// The iteration count is above [`MAX_ITERATIONS`].
    TooManyIterations,
    /// The PHC string is not exactly `$pbkdf2-sha256$i=<n>,l=32$<salt>$<hash>`.
    Malformed,
    /// The output buffer is too small.
    InsufficientSize(BufferTooSmall),
    /// The password is shorter than [`MIN_PASSWORD_LEN`] bytes.
    TooShort,
    /// The password is longer than [`MAX_PASSWORD_LEN`] bytes.
    TooLong,
    /// The password is not valid UTF-8.
    InvalidUtf8,
}

impl fmt::Display for PasswordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooFewIterations => f.write_str("too few PBKDF2 iterations"),
            Self::TooManyIterations => f.write_str("too many PBKDF2 iterations"),
            Self::Malformed => f.write_str("malformed PHC password hash"),
            Self::InsufficientSize(BufferTooSmall { required }) => {
                write!(f, "output buffer too small: {required} bytes required")
            }
            Self::TooShort => write!(f, "password shorter than {MIN_PASSWORD_LEN} bytes"),
            Self::TooLong => write!(f, "password longer than {MAX_PASSWORD_LEN} bytes"),
            Self::InvalidUtf8 => f.write_str("password is not valid UTF-8"),
        }
    }
}

impl core::error::Error for PasswordError {}

impl From<BufferTooSmall> for PasswordError {
    fn from(e: BufferTooSmall) -> Self {
        Self::InsufficientSize(e)
    }
}

/// Raw PBKDF2-HMAC-SHA256 (RFC 8018) of any output length; `iterations` must be at least 1.
///
/// This is the primitive, without the policy bounds of [`hash_password`].
pub fn pbkdf2_sha256(
    password: &[u8],
    salt: &[u8],
    iterations: u32,
    out: &mut [u8],
) -> Result<(), PasswordError> {
    if iterations == 0 {
        return Err(PasswordError::TooFewIterations);
    }
    // HMAC takes keys of any length, so this cannot fail.
    pbkdf2::pbkdf2::<Hmac<Sha256>>(password, salt, iterations, out)
        .map_err(|_| PasswordError::Malformed)
}

fn check_iterations(iterations: u32) -> Result<(), PasswordError> {
    if iterations < MIN_ITERATIONS {
        Err(PasswordError::TooFewIterations)
    } else if iterations > MAX_ITERATIONS {
        Err(PasswordError::TooManyIterations)
    } else {
        Ok(())
    }
}

/// Hashes `password` with `salt` and writes the PHC string into `out` ([`MAX_PHC_LEN`] bytes
/// always suffice). `iterations` must be within [`MIN_ITERATIONS`]..=[`MAX_ITERATIONS`].
pub fn hash_password<'a>(
    password: &[u8],
    salt: &[u8; SALT_LEN],
    iterations: u32,
    out: &'a mut [u8],
) -> Result<&'a str, PasswordError> {
    check_iterations(iterations)?;
    let mut hash = [0u8; HASH_LEN];
    pbkdf2_sha256(password, salt, iterations, &mut hash)?;
    let mut salt_b64 = [0u8; 24];
    let mut hash_b64 = [0u8; 44];
    let encoded =
        b64_encode(salt, &mut salt_b64).and_then(|s| Ok((s, b64_encode(&hash, &mut hash_b64)?)));
    hash.zeroize();
    let (salt_b64, hash_b64) = encoded.map_err(|_| PasswordError::Malformed)?;
    let mut w = SliceWriter::new(out);
    write!(
        w,
        "{PREFIX}{iterations},{LENGTH_PARAM}${salt_b64}${hash_b64}"
    )
    .map_err(|_| PasswordError::Malformed)?;
    w.finish()
        .map_err(|required| PasswordError::InsufficientSize(BufferTooSmall { required }))
}

/// A parsed PBKDF2-SHA256 PHC string. The hash is wiped on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct PhcHash {
    iterations: u32,
    salt: [u8; MAX_SALT_LEN],
    salt_len: usize,
    hash: [u8; HASH_LEN],
}

impl PhcHash {
    /// Parses `$pbkdf2-sha256$i=<n>,l=32$<salt>$<hash>` strictly: exactly these fields in this
    /// order, `n` in decimal without sign or leading zeros within the iteration bounds, a salt of
    /// 8..=64 bytes and a 32-byte hash, both canonical unpadded standard Base64.
    pub fn parse(s: &str) -> Result<PhcHash, PasswordError> {
        let rest = s.strip_prefix(PREFIX).ok_or(PasswordError::Malformed)?;
        let mut fields = rest.split('$');
        let (Some(params), Some(salt_b64), Some(hash_b64), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(PasswordError::Malformed);
        };
        let (count, length) = params.split_once(',').ok_or(PasswordError::Malformed)?;
        if length != LENGTH_PARAM {
            return Err(PasswordError::Malformed);
        }
        let iterations = parse_count(count)?;
        check_iterations(iterations)?;

        let mut phc = PhcHash {
            iterations,
            salt: [0; MAX_SALT_LEN],
            salt_len: 0,
            hash: [0; HASH_LEN],
        };
        phc.salt_len = b64_decode(salt_b64, &mut phc.salt)
            .map_err(|_| PasswordError::Malformed)?
            .len();
        if phc.salt_len < MIN_SALT_LEN {
            return Err(PasswordError::Malformed);
        }
        let hash_len = b64_decode(hash_b64, &mut phc.hash)
            .map_err(|_| PasswordError::Malformed)?
            .len();
        if hash_len != HASH_LEN {
            return Err(PasswordError::Malformed);
        }
        Ok(phc)
    }

    /// The PBKDF2 iteration count.
    pub fn iterations(&self) -> u32 {
        self.iterations
    }

    /// The salt.
    pub fn salt(&self) -> &[u8] {
        self.salt.get(..self.salt_len).unwrap_or_default()
    }

    /// The derived hash.
    pub fn hash(&self) -> &[u8; HASH_LEN] {
        &self.hash
    }
}

impl fmt::Debug for PhcHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PhcHash")
            .field("iterations", &self.iterations)
            .field("salt_len", &self.salt_len)
            .finish_non_exhaustive()
    }
}

/// A decimal iteration count: 1 to 9 ASCII digits, no sign, no leading zero.
fn parse_count(digits: &str) -> Result<u32, PasswordError> {
    let canonical = !digits.is_empty()
        && digits.len() <= 9
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !(digits.len() > 1 && digits.starts_with('0'));
    if !canonical {
        return Err(PasswordError::Malformed);
    }
    digits.parse().map_err(|_| PasswordError::Malformed)
}

/// Checks `password` against a stored PHC string, comparing the derived hash in constant time.
///
/// `Ok(false)` for a wrong password; `Err` if the stored string is malformed or out of bounds.
pub fn verify_password(password: &[u8], phc: &str) -> Result<bool, PasswordError> {
    let phc = PhcHash::parse(phc)?;
    let mut derived = [0u8; HASH_LEN];
    pbkdf2_sha256(password, phc.salt(), phc.iterations(), &mut derived)?;
    let equal = derived.as_slice().ct_eq(phc.hash().as_slice());
    derived.zeroize();
    Ok(equal.into())
}

/// Spends the work of a [`verify_password`] at `iterations` (clamped to the accepted bounds)
/// against a fixed salt, and throws the result away. Call it for unknown users so that the
/// response time does not reveal whether an account exists.
pub fn dummy_verify(password: &[u8], iterations: u32) {
    let iterations = iterations.clamp(MIN_ITERATIONS, MAX_ITERATIONS);
    let mut derived = [0u8; HASH_LEN];
    if pbkdf2_sha256(password, &DUMMY_SALT, iterations, &mut derived).is_ok() {
        let equal = derived.as_slice().ct_eq([0u8; HASH_LEN].as_slice());
        core::hint::black_box(equal);
    }
    derived.zeroize();
}

/// The account password policy: 8..=128 bytes of valid UTF-8.
pub fn check_password_policy(password: &[u8]) -> Result<(), PasswordError> {
    if password.len() < MIN_PASSWORD_LEN {
        return Err(PasswordError::TooShort);
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(PasswordError::TooLong);
    }
    core::str::from_utf8(password)
        .map(|_| ())
        .map_err(|_| PasswordError::InvalidUtf8)
}
