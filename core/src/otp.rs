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

/// Why [`OtpauthUri::parse`] refused a URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum OtpauthError {
    /// The URI does not start with `otpauth://totp/` (another scheme, or the `hotp` type).
    NotTotp,
    /// The label is not `ACCOUNT` or `ISSUER:ACCOUNT` with both parts non-empty.
    BadLabel,
    /// A `%` is not followed by two hexadecimal digits.
    BadPercentEncoding,
    /// A query parameter has no `=`.
    BadParameter,
    /// A parameter ChatBox reads (`secret`, `issuer`, `algorithm`, `digits`, `period`) appears
    /// twice.
    DuplicateParameter,
    /// There is no `secret` parameter, or it is empty.
    MissingSecret,
    /// The secret is not Base32 of 1 to [`MAX_SECRET_LEN`] bytes.
    InvalidSecret,
    /// `algorithm` is not SHA1, SHA256 or SHA512.
    UnknownAlgorithm,
    /// `digits` is not 6, 7 or 8.
    InvalidDigits,
    /// `period` is not a whole number of seconds from 1 up.
    InvalidPeriod,
    /// The `issuer` parameter differs from the issuer in the label.
    IssuerMismatch,
    /// The time step asked for in [`OtpauthUri::code_at`] is before step 0 or past `u64::MAX`.
    StepOutOfRange,
}

impl fmt::Display for OtpauthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotTotp => "not an otpauth://totp/ URI",
            Self::BadLabel => "otpauth label is not ACCOUNT or ISSUER:ACCOUNT",
            Self::BadPercentEncoding => "bad percent-encoding in otpauth URI",
            Self::BadParameter => "otpauth parameter without '='",
            Self::DuplicateParameter => "otpauth parameter given twice",
            Self::MissingSecret => "otpauth URI has no secret",
            Self::InvalidSecret => "otpauth secret is not Base32 of 1 to 64 bytes",
            Self::UnknownAlgorithm => "unknown otpauth algorithm",
            Self::InvalidDigits => "otpauth digits must be 6, 7 or 8",
            Self::InvalidPeriod => "otpauth period must be a whole number of seconds from 1 up",
            Self::IssuerMismatch => "otpauth issuer parameter differs from the label's issuer",
            Self::StepOutOfRange => "TOTP step out of range",
        })
    }
}

impl core::error::Error for OtpauthError {}

/// The parts of an `otpauth://totp/ISSUER:ACCOUNT?secret=…&issuer=…&algorithm=…&digits=…&period=…`
/// URI (the key URI format authenticator apps read; [`otpauth_uri`] writes it), borrowed from
/// the URI text.
///
/// Parsing checks everything ChatBox relies on: the secret is Base32 of a usable length, the
/// algorithm, digits and period are ones a [`Totp`] accepts (absent ones take the defaults
/// SHA1, 6 and 30), the percent-encoding is well formed and the issuer parameter agrees with the
/// label. Unknown parameters (`image`, …) are ignored, parameter names compare ignoring ASCII
/// case. Issuer and account stay percent-encoded here: [`OtpauthUri::account`] and
/// [`OtpauthUri::issuer`] decode them on the fly, without a buffer; algorithm, digits and
/// period are those of [`OtpauthUri::totp`]. `Debug` does not show the secret.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct OtpauthUri<'a> {
    label_issuer: Option<&'a str>,
    account: &'a str,
    issuer: Option<&'a str>,
    secret: &'a str,
    algorithm: Algorithm,
    digits: u8,
    period: u32,
}

impl<'a> OtpauthUri<'a> {
    /// Parses `uri`; see the type's documentation for what is checked.
    pub fn parse(uri: &'a str) -> Result<Self, OtpauthError> {
        let rest = strip_prefix_ignore_case(uri, "otpauth://")
            .and_then(|r| strip_prefix_ignore_case(r, "totp/"))
            .ok_or(OtpauthError::NotTotp)?;
        // A fragment is not part of the key URI; drop it.
        let rest = rest.split_once('#').map_or(rest, |(r, _)| r);
        let (label, query) = rest.split_once('?').ok_or(OtpauthError::MissingSecret)?;
        check_percent_encoding(label)?;
        let (label_issuer, account) = split_label(label);
        if account.is_empty() || label_issuer.is_some_and(str::is_empty) {
            return Err(OtpauthError::BadLabel);
        }
        let mut uri = OtpauthUri {
            label_issuer,
            account,
            issuer: None,
            secret: "",
            algorithm: Algorithm::Sha1,
            digits: 6,
            period: 30,
        };
        let mut seen = [false; 5];
        for param in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = param.split_once('=').ok_or(OtpauthError::BadParameter)?;
            check_percent_encoding(value)?;
            let Some(index) = ["secret", "issuer", "algorithm", "digits", "period"]
                .iter()
                .position(|k| k.eq_ignore_ascii_case(key))
            else {
                continue;
            };
            let once = seen.get_mut(index).ok_or(OtpauthError::BadParameter)?;
            if core::mem::replace(once, true) {
                return Err(OtpauthError::DuplicateParameter);
            }
            match index {
                0 => uri.secret = value,
                1 => uri.issuer = Some(value),
                2 => {
                    uri.algorithm = value.parse().map_err(|_| OtpauthError::UnknownAlgorithm)?;
                }
                3 => {
                    uri.digits = parse_decimal(value)
                        .and_then(|d| u8::try_from(d).ok())
                        .filter(|d| modulus(*d).is_ok())
                        .ok_or(OtpauthError::InvalidDigits)?;
                }
                _ => {
                    uri.period = parse_decimal(value)
                        .and_then(|p| u32::try_from(p).ok())
                        .filter(|p| *p > 0)
                        .ok_or(OtpauthError::InvalidPeriod)?;
                }
            }
        }
        if uri.secret.is_empty() {
            return Err(OtpauthError::MissingSecret);
        }
        // Checks the secret decodes to a length a Totp takes.
        drop(uri.totp()?);
        if let (Some(a), Some(b)) = (uri.label_issuer, uri.issuer)
            && !percent_decoded(a).eq(percent_decoded(b))
        {
            return Err(OtpauthError::IssuerMismatch);
        }
        Ok(uri)
    }

    /// The account name (the label after `ISSUER:`), percent-decoded byte by byte.
    pub fn account(&self) -> PercentDecoded<'a> {
        percent_decoded(self.account)
    }

    /// The issuer: the `issuer` parameter, else the label's `ISSUER:` prefix, percent-decoded;
    /// `None` when the URI names none.
    pub fn issuer(&self) -> Option<PercentDecoded<'a>> {
        self.issuer.or(self.label_issuer).map(percent_decoded)
    }

    /// The secret as written in the URI (Base32).
    pub fn secret_base32(&self) -> &'a str {
        self.secret
    }

    /// The [`Totp`] this URI describes: its secret decoded (the stack copy is zeroized), its
    /// algorithm, digits and period (SHA1, 6 and 30 when the URI does not say).
    pub fn totp(&self) -> Result<Totp, OtpauthError> {
        let mut buf = [0u8; MAX_SECRET_LEN];
        let totp = crate::encoding::base32_decode(self.secret, &mut buf)
            .map_err(|_| OtpauthError::InvalidSecret)
            .and_then(|secret| {
                Totp::new(secret, self.algorithm, self.digits, self.period)
                    .map_err(|_| OtpauthError::InvalidSecret)
            });
        buf.zeroize();
        totp
    }

    /// The code an authenticator app holding this URI shows at `unix_secs`, moved by
    /// `step_offset` time steps (−1: the previous step's code).
    pub fn code_at(&self, unix_secs: u64, step_offset: i64) -> Result<Code, OtpauthError> {
        let totp = self.totp()?;
        let step = totp
            .step(unix_secs)
            .checked_add_signed(step_offset)
            .ok_or(OtpauthError::StepOutOfRange)?;
        totp.generate_at_step(step)
            .map_err(|_| OtpauthError::InvalidSecret)
    }
}

impl fmt::Debug for OtpauthUri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtpauthUri")
            .field("label_issuer", &self.label_issuer)
            .field("account", &self.account)
            .field("issuer", &self.issuer)
            .field("secret", &"<redacted>")
            .field("algorithm", &self.algorithm)
            .field("digits", &self.digits)
            .field("period", &self.period)
            .finish()
    }
}

/// The bytes of a percent-encoded string that [`OtpauthUri::parse`] checked: `%XX` as one
/// byte, everything else as it is. Compare with `Iterator::eq` (`uri.account().eq(*b"alice")`)
/// or collect.
#[derive(Debug, Clone)]
pub struct PercentDecoded<'a> {
    rest: &'a [u8],
}

impl Iterator for PercentDecoded<'_> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        match *self.rest {
            [b'%', h, l, ref tail @ ..] if hex_value(h).is_some() && hex_value(l).is_some() => {
                self.rest = tail;
                Some(hex_value(h).unwrap_or(0) << 4 | hex_value(l).unwrap_or(0))
            }
            [b, ref tail @ ..] => {
                self.rest = tail;
                Some(b)
            }
            [] => None,
        }
    }
}

fn percent_decoded(s: &str) -> PercentDecoded<'_> {
    PercentDecoded { rest: s.as_bytes() }
}

fn hex_value(c: u8) -> Option<u8> {
    char::from(c)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// Every `%` starts `%XX` with two hexadecimal digits.
fn check_percent_encoding(s: &str) -> Result<(), OtpauthError> {
    let b = s.as_bytes();
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let ok = b
                .get(i + 1..i + 3)
                .is_some_and(|xx| xx.iter().all(|&x| hex_value(x).is_some()));
            if !ok {
                return Err(OtpauthError::BadPercentEncoding);
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    Ok(())
}

/// Splits `ISSUER:ACCOUNT` into its parts at the first literal colon, or, with none, at the
/// first `%3A` (an issuer written by [`otpauth_uri`] has its own colons encoded, the separator
/// literal); no colon at all: no issuer.
fn split_label(label: &str) -> (Option<&str>, &str) {
    if let Some((issuer, account)) = label.split_once(':') {
        return (Some(issuer), account);
    }
    let encoded = label
        .as_bytes()
        .windows(3)
        .position(|w| w.eq_ignore_ascii_case(b"%3A"));
    match encoded {
        Some(e) => (label.get(..e), label.get(e + 3..).unwrap_or("")),
        None => (None, label),
    }
}

fn strip_prefix_ignore_case<'s>(s: &'s str, prefix: &str) -> Option<&'s str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| s.get(prefix.len()..))
        .flatten()
}

/// A number written in ASCII digits only (no sign, no spaces), up to `u64::MAX`.
fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod otpauth_tests {
    use super::*;
    use std::format;

    const URI: &str = "otpauth://totp/ChatBox:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=ChatBox&algorithm=SHA1&digits=6&period=30";

    #[test]
    fn parses_what_otpauth_uri_writes() {
        let mut buf = [0u8; 256];
        let secret = *b"12345678901234567890";
        for (issuer, account, alg, digits, period) in [
            ("ChatBox", "alice", Algorithm::Sha1, 6, 30),
            ("Chat Box&Co", "bob:the?builder%", Algorithm::Sha256, 8, 60),
            ("a:b%3A", "c:d", Algorithm::Sha1, 6, 30),
            ("Ünï", "çarol", Algorithm::Sha512, 7, 1),
        ] {
            let uri =
                otpauth_uri(&mut buf, issuer, account, &secret, alg, digits, period).expect("fits");
            let p = OtpauthUri::parse(uri).expect("parses");
            assert!(p.account().eq(account.bytes()), "{uri}");
            assert!(p.issuer().expect("issuer").eq(issuer.bytes()), "{uri}");
            let totp = p.totp().expect("totp");
            assert_eq!(totp.algorithm(), alg);
            assert_eq!(totp.digits(), digits);
            assert_eq!(totp.period(), period);
            assert_eq!(totp.secret(), &secret);
            let direct = Totp::new(&secret, alg, digits, period).expect("totp");
            assert_eq!(
                p.code_at(1_000_000, -1).expect("code"),
                direct
                    .generate_at_step(direct.step(1_000_000) - 1)
                    .expect("code")
            );
        }
    }

    #[test]
    fn parts_and_defaults() {
        let p = OtpauthUri::parse(URI).expect("parses");
        assert_eq!(p.secret_base32(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(p.totp().expect("totp").secret(), b"12345678901234567890");
        // No issuer, no parameters but the secret: SHA1, 6 digits, 30 s.
        let p = OtpauthUri::parse("otpauth://totp/alice?secret=GEZDGNBV").expect("parses");
        assert!(p.issuer().is_none());
        assert!(p.account().eq(*b"alice"));
        let totp = p.totp().expect("totp");
        assert_eq!(
            (totp.algorithm(), totp.digits(), totp.period()),
            (Algorithm::Sha1, 6, 30)
        );
        // Issuer only in the label, %3A as the separator, names ignoring case, unknown
        // parameters and a fragment ignored.
        let p = OtpauthUri::parse(
            "OTPAUTH://TOTP/Ex%20Co%3ajo%40x?image=http%3A%2F%2Fx&SECRET=gezdgnbv&Digits=8#frag",
        )
        .expect("parses");
        assert!(p.issuer().expect("issuer").eq(*b"Ex Co"));
        assert!(p.account().eq(*b"jo@x"));
        assert_eq!(p.totp().expect("totp").digits(), 8);
        // The Debug form hides the secret.
        let shown = format!("{p:?}");
        assert!(!shown.to_ascii_lowercase().contains("gezdgnbv"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn refuses_malformed_uris() {
        use OtpauthError as E;
        let s = "secret=GEZDGNBV";
        for (uri, want) in [
            ("", E::NotTotp),
            ("http://totp/a?secret=GEZDGNBV", E::NotTotp),
            ("otpauth://hotp/a?secret=GEZDGNBV&counter=1", E::NotTotp),
            ("otpauth://totp", E::NotTotp),
            ("otpauth://totp/alice", E::MissingSecret),
            ("otpauth://totp/alice?issuer=x", E::MissingSecret),
            ("otpauth://totp/alice?secret=", E::MissingSecret),
            (&format!("otpauth://totp/?{s}"), E::BadLabel),
            (&format!("otpauth://totp/ChatBox:?{s}"), E::BadLabel),
            (&format!("otpauth://totp/:alice?{s}"), E::BadLabel),
            (&format!("otpauth://totp/%3Aalice?{s}"), E::BadLabel),
            (&format!("otpauth://totp/al%4?{s}"), E::BadPercentEncoding),
            (
                &format!("otpauth://totp/al%zzice?{s}"),
                E::BadPercentEncoding,
            ),
            (
                &format!("otpauth://totp/a?{s}&issuer=%"),
                E::BadPercentEncoding,
            ),
            (&format!("otpauth://totp/a?{s}&digits"), E::BadParameter),
            (&format!("otpauth://totp/a?{s}&{s}"), E::DuplicateParameter),
            (
                &format!("otpauth://totp/a?{s}&period=30&PERIOD=30"),
                E::DuplicateParameter,
            ),
            ("otpauth://totp/a?secret=GEZ", E::InvalidSecret),
            ("otpauth://totp/a?secret=1189", E::InvalidSecret),
            ("otpauth://totp/a?secret=GE%20ZDGNBV", E::InvalidSecret),
            (
                &format!("otpauth://totp/a?secret={}", "A".repeat(112)),
                E::InvalidSecret,
            ),
            (
                &format!("otpauth://totp/a?{s}&algorithm=MD5"),
                E::UnknownAlgorithm,
            ),
            (
                &format!("otpauth://totp/a?{s}&algorithm="),
                E::UnknownAlgorithm,
            ),
            (&format!("otpauth://totp/a?{s}&digits=5"), E::InvalidDigits),
            (&format!("otpauth://totp/a?{s}&digits=9"), E::InvalidDigits),
            (&format!("otpauth://totp/a?{s}&digits=+6"), E::InvalidDigits),
            (
                &format!("otpauth://totp/a?{s}&digits=262"),
                E::InvalidDigits,
            ),
            (&format!("otpauth://totp/a?{s}&period=0"), E::InvalidPeriod),
            (
                &format!("otpauth://totp/a?{s}&period=-30"),
                E::InvalidPeriod,
            ),
            (
                &format!("otpauth://totp/a?{s}&period=4294967296"),
                E::InvalidPeriod,
            ),
            (
                &format!("otpauth://totp/a?{s}&period=99999999999999999999999"),
                E::InvalidPeriod,
            ),
            (
                &format!("otpauth://totp/A:a?{s}&issuer=B"),
                E::IssuerMismatch,
            ),
        ] {
            assert_eq!(OtpauthUri::parse(uri), Err(want), "{uri:?}");
        }
        // The same issuer, encoded differently, agrees.
        assert!(OtpauthUri::parse(&format!("otpauth://totp/A%20B:a?{s}&issuer=A%20B")).is_ok());
    }

    #[test]
    fn code_at_steps() {
        let p = OtpauthUri::parse(URI).expect("parses");
        let totp = p.totp().expect("totp");
        for (t, off) in [(59u64, 0i64), (59, 1), (59, -1), (0, 5)] {
            let step = totp.step(t).checked_add_signed(off).expect("step");
            assert_eq!(
                p.code_at(t, off).expect("code"),
                totp.generate_at_step(step).expect("code")
            );
        }
        assert_eq!(p.code_at(0, -1), Err(OtpauthError::StepOutOfRange));
        let one = URI.replace("period=30", "period=1");
        let p1 = OtpauthUri::parse(&one).expect("parses");
        assert_eq!(p1.code_at(u64::MAX, 1), Err(OtpauthError::StepOutOfRange));
        assert!(p1.code_at(u64::MAX, 0).is_ok());
        // RFC 6238 appendix B, SHA1, 8 digits, T = 59: 94287082.
        let eight = URI.replace("digits=6", "digits=8");
        let p = OtpauthUri::parse(&eight).expect("parses");
        assert_eq!(p.code_at(59, 0).expect("code").as_str(), "94287082");
    }
}
