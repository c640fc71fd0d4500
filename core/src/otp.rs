//! One-time passwords: HOTP (RFC 4226), TOTP (RFC 6238) and `otpauth://` URIs.
//!
//! The server keeps a [`Totp`] per account and the last accepted time step. [`Totp::verify`]
//! checks the steps −1, 0 and +1 around the current one, every one of them every time, comparing
//! in constant time, and refuses any step at or before the last accepted one, so a code works
//! once. Codes are strings that keep their leading zeros: `"012345"` is not `"12345"`.
//!
//! Time is an argument (`unix_secs`): this crate has no clock.

use crate::buffer::BufferTooSmall;
use core::fmt::{self, Write as _};
use core::str::FromStr;

use hmac::{Hmac, KeyInit, Mac};
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::encoding::{SliceWriter, base32_encode};

/// Length in bytes of the TOTP secrets ChatBox generates (160 bits, as RFC 4226 recommends).
pub const SECRET_LEN: usize = 20;
/// Longest secret a [`Totp`] holds (one SHA-512 block's worth of key is plenty).
pub const MAX_SECRET_LEN: usize = 64;

/// Errors from this module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum OtpError {
    /// The number of digits is outside 6..=8.
    InvalidDigits,
    /// The secret is empty or longer than [`MAX_SECRET_LEN`].
    InvalidSecret,
    /// The period is zero.
    InvalidPeriod,
    /// The code is not exactly the expected number of ASCII digits.
    InvalidCode,
    /// The algorithm name is not SHA1, SHA256 or SHA512.
    UnknownAlgorithm,
    /// The output buffer is too small.
    InsufficientSize(BufferTooSmall),
}

impl fmt::Display for OtpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidDigits => f.write_str("OTP digits must be 6, 7 or 8"),
            Self::InvalidSecret => f.write_str("OTP secret is empty or too long"),
            Self::InvalidPeriod => f.write_str("TOTP period must be at least one second"),
            Self::InvalidCode => f.write_str("OTP code has the wrong format"),
            Self::UnknownAlgorithm => f.write_str("unknown OTP algorithm"),
            Self::InsufficientSize(BufferTooSmall { required }) => {
                write!(f, "output buffer too small: {required} bytes required")
            }
        }
    }
}

impl core::error::Error for OtpError {}

impl From<BufferTooSmall> for OtpError {
    fn from(e: BufferTooSmall) -> Self {
        Self::InsufficientSize(e)
    }
}

/// The HMAC hash function of an OTP (the otpauth `algorithm` parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Algorithm {
    /// HMAC-SHA1, the RFC 4226 default and what authenticator apps support.
    #[default]
    Sha1,
    /// HMAC-SHA256.
    Sha256,
    /// HMAC-SHA512.
    Sha512,
}

impl Algorithm {
    /// The otpauth name: `"SHA1"`, `"SHA256"` or `"SHA512"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
            Self::Sha512 => "SHA512",
        }
    }
}

impl FromStr for Algorithm {
    type Err = OtpError;

    /// Parses an otpauth name, ignoring ASCII case.
    fn from_str(s: &str) -> Result<Self, OtpError> {
        [Self::Sha1, Self::Sha256, Self::Sha512]
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s))
            .ok_or(OtpError::UnknownAlgorithm)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `10^digits` for the allowed digit counts.
fn modulus(digits: u8) -> Result<u32, OtpError> {
    match digits {
        6 => Ok(1_000_000),
        7 => Ok(10_000_000),
        8 => Ok(100_000_000),
        _ => Err(OtpError::InvalidDigits),
    }
}

/// HMAC(secret, counter) with RFC 4226 §5.3 dynamic truncation, before the modulus.
fn truncated<M: Mac + KeyInit>(secret: &[u8], counter: u64) -> Result<u32, OtpError> {
    let mut mac = <M as KeyInit>::new_from_slice(secret).map_err(|_| OtpError::InvalidSecret)?;
    Mac::update(&mut mac, &counter.to_be_bytes());
    let mut digest = mac.finalize().into_bytes();
    let offset = digest.last().map_or(0, |b| usize::from(b & 0x0f));
    let word = digest
        .get(offset..offset.saturating_add(4))
        .and_then(|w| <[u8; 4]>::try_from(w).ok())
        .map(|w| u32::from_be_bytes(w) & 0x7fff_ffff);
    digest.as_mut_slice().zeroize();
    word.ok_or(OtpError::InvalidSecret)
}

/// HOTP (RFC 4226): the `digits`-digit code of `secret` at `counter`, as a number.
///
/// Use [`format_code`] to get the zero-padded string.
pub fn hotp(
    secret: &[u8],
    counter: u64,
    digits: u8,
    algorithm: Algorithm,
) -> Result<u32, OtpError> {
    let modulus = modulus(digits)?;
    if secret.is_empty() {
        return Err(OtpError::InvalidSecret);
    }
    let value = match algorithm {
        Algorithm::Sha1 => truncated::<Hmac<sha1::Sha1>>(secret, counter),
        Algorithm::Sha256 => truncated::<Hmac<sha2::Sha256>>(secret, counter),
        Algorithm::Sha512 => truncated::<Hmac<sha2::Sha512>>(secret, counter),
    }?;
    Ok(value % modulus)
}

/// A one-time code: up to 8 ASCII digits, leading zeros kept. Compared in constant time; wiped on
/// drop; `Debug` does not show it.
#[derive(Clone, Default)]
pub struct Code(heapless::String<8>);

impl Code {
    /// The digits.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

/// Formats `value` as a `digits`-digit code with leading zeros (`digits` is clamped to 1..=8;
/// higher-order digits of `value` are dropped).
pub fn format_code(value: u32, digits: u8) -> Code {
    let digits = u32::from(digits.clamp(1, 8));
    let mut code = Code::default();
    for place in (0..digits).rev() {
        let digit = value / 10u32.pow(place) % 10;
        let c = char::from_digit(digit, 10).unwrap_or('0');
        if code.0.push(c).is_err() {
            break;
        }
    }
    code
}

/// Parses a code typed by a user: surrounding ASCII whitespace is trimmed, then exactly `digits`
/// ASCII digits (6..=8) are required.
pub fn parse_code(s: &str, digits: u8) -> Result<Code, OtpError> {
    modulus(digits)?;
    let s = s.trim_ascii();
    if s.len() != usize::from(digits) || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(OtpError::InvalidCode);
    }
    heapless::String::try_from(s)
        .map(Code)
        .map_err(|_| OtpError::InvalidCode)
}

impl ConstantTimeEq for Code {
    fn ct_eq(&self, other: &Self) -> Choice {
        // Lengths are public (the digit count); contents are compared in constant time.
        self.as_str().as_bytes().ct_eq(other.as_str().as_bytes())
    }
}

impl PartialEq for Code {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other).into()
    }
}

impl Eq for Code {}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Code(<redacted>)")
    }
}

impl Zeroize for Code {
    fn zeroize(&mut self) {
        self.0.as_mut_str().zeroize();
        self.0.clear();
    }
}

impl Drop for Code {
    fn drop(&mut self) {
        self.zeroize();
    }
}

impl ZeroizeOnDrop for Code {}

/// A TOTP generator and verifier (RFC 6238, T0 = 0). The secret is wiped on drop.
#[derive(Clone)]
pub struct Totp {
    secret: heapless::Vec<u8, MAX_SECRET_LEN>,
    algorithm: Algorithm,
    digits: u8,
    period: u32,
}

impl Totp {
    /// A TOTP over `secret` (1..=64 bytes) with `digits` in 6..=8 and a period of at least 1 s.
    pub fn new(
        secret: &[u8],
        algorithm: Algorithm,
        digits: u8,
        period_secs: u32,
    ) -> Result<Self, OtpError> {
        modulus(digits)?;
        if period_secs == 0 {
            return Err(OtpError::InvalidPeriod);
        }
        if secret.is_empty() {
            return Err(OtpError::InvalidSecret);
        }
        let secret = heapless::Vec::from_slice(secret).map_err(|_| OtpError::InvalidSecret)?;
        Ok(Self {
            secret,
            algorithm,
            digits,
            period: period_secs,
        })
    }

    /// The common profile: HMAC-SHA1, 6 digits, 30 seconds.
    pub fn sha1_default(secret: &[u8]) -> Result<Self, OtpError> {
        Self::new(secret, Algorithm::Sha1, 6, 30)
    }

    /// The secret bytes.
    pub fn secret(&self) -> &[u8] {
        &self.secret
    }

    /// The HMAC algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The number of digits of a code.
    pub fn digits(&self) -> u8 {
        self.digits
    }

    /// The period in seconds.
    pub fn period(&self) -> u32 {
        self.period
    }

    /// The time step at `unix_secs`: `unix_secs / period`.
    pub fn step(&self, unix_secs: u64) -> u64 {
        unix_secs.checked_div(u64::from(self.period)).unwrap_or(0)
    }

    /// The code at `unix_secs`.
    pub fn generate(&self, unix_secs: u64) -> Result<Code, OtpError> {
        self.generate_at_step(self.step(unix_secs))
    }

    /// The code for time step `step`.
    pub fn generate_at_step(&self, step: u64) -> Result<Code, OtpError> {
        let value = hotp(&self.secret, step, self.digits, self.algorithm)?;
        Ok(format_code(value, self.digits))
    }

    /// Checks `code` (exactly `digits` ASCII digits, no trimming) against the steps −1, 0 and +1
    /// around `unix_secs`, all three every time and in constant time.
    ///
    /// Returns the largest matching step that is after `last_used_step`; the caller stores it as
    /// the new `last_used_step` so the code cannot be used again. `None` if nothing acceptable
    /// matches.
    pub fn verify(&self, code: &str, unix_secs: u64, last_used_step: Option<u64>) -> Option<u64> {
        let code = parse_code_exact(code, self.digits)?;
        let now = self.step(unix_secs);
        let mut found = Choice::from(0);
        let mut step_found = 0u64;
        for step in [now.checked_sub(1), Some(now), now.checked_add(1)]
            .into_iter()
            .flatten()
        {
            let Ok(expected) = self.generate_at_step(step) else {
                continue;
            };
            let fresh = Choice::from(u8::from(last_used_step.is_none_or(|last| step > last)));
            let accept = expected.ct_eq(&code) & fresh;
            step_found = u64::conditional_select(&step_found, &step, accept);
            found |= accept;
        }
        bool::from(found).then_some(step_found)
    }
}

/// `code` must be exactly `digits` ASCII digits, nothing trimmed.
fn parse_code_exact(code: &str, digits: u8) -> Option<Code> {
    if code.len() != usize::from(digits) {
        return None;
    }
    parse_code(code, digits).ok()
}

impl fmt::Debug for Totp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Totp")
            .field("secret", &"<redacted>")
            .field("algorithm", &self.algorithm)
            .field("digits", &self.digits)
            .field("period", &self.period)
            .finish()
    }
}

impl Zeroize for Totp {
    fn zeroize(&mut self) {
        self.secret.as_mut_slice().zeroize();
        self.secret.clear();
    }
}

impl Drop for Totp {
    fn drop(&mut self) {
        self.zeroize();
    }
}

impl ZeroizeOnDrop for Totp {}

/// Writes `otpauth://totp/<issuer>:<account>?secret=<BASE32>&issuer=<issuer>&algorithm=<ALG>&digits=<d>&period=<p>`
/// into `out`, the secret in unpadded Base32 and the issuer and account percent-encoded (RFC 3986
/// unreserved characters kept, everything else `%XX`).
pub fn otpauth_uri<'a>(
    out: &'a mut [u8],
    issuer: &str,
    account: &str,
    secret: &[u8],
    algorithm: Algorithm,
    digits: u8,
    period: u32,
) -> Result<&'a str, OtpError> {
    // Validates secret, digits and period.
    drop(Totp::new(secret, algorithm, digits, period)?);
    let mut b32 = [0u8; 104]; // base32_encoded_len(MAX_SECRET_LEN) = 103
    let written = base32_encode(secret, &mut b32).map(|s| s.len());
    let mut w = SliceWriter::new(out);
    let result = written.ok().and_then(|n| b32.get(..n)).map(|secret_b32| {
        w.write_str("otpauth://totp/")?;
        percent_encode(&mut w, issuer)?;
        w.write_str(":")?;
        percent_encode(&mut w, account)?;
        w.write_str("?secret=")?;
        w.write_bytes(secret_b32)?;
        w.write_str("&issuer=")?;
        percent_encode(&mut w, issuer)?;
        write!(w, "&algorithm={algorithm}&digits={digits}&period={period}")
    });
    b32.zeroize();
    match result {
        None => Err(OtpError::InvalidSecret),
        Some(_) => w
            .finish()
            .map_err(|required| OtpError::InsufficientSize(BufferTooSmall { required })),
    }
}

/// RFC 3986 percent-encoding: unreserved characters as they are, other bytes as `%XX`.
fn percent_encode(w: &mut SliceWriter<'_>, s: &str) -> fmt::Result {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            w.write_bytes(&[b])?;
        } else {
            write!(w, "%{b:02X}")?;
        }
    }
    Ok(())
}
