//! Invite links and invite tokens, parsed once for client and server.
//!
//! A link is `chatbox://HOST:PORT/?key=SHA256:<fingerprint>&invite=<token>`. Both query
//! parameters are optional (a link with only `key` pins a server; one with only `invite` trusts
//! on first use). Query values are percent-decoded (RFC 3986): `%2B` and `+` both mean `+` in a
//! fingerprint, `%2F` and `/` both mean `/`. [`Link`]'s `Display` writes the canonical form, every
//! byte outside RFC 3986's unreserved set (and `:`) encoded, e.g. `SHA256:ab%2Bc%2Fd`.
//!
//! A token is 32 random bytes as unpadded URL-safe Base64: 43 characters of `[A-Za-z0-9_-]`.

use core::fmt;

use base64ct::{Base64Unpadded, Base64UrlUnpadded, Encoding};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::crypto::hash::sha256;

/// Random bytes in an invite token (256 bits).
pub const TOKEN_BYTES: usize = 32;
/// Characters of an invite token's text form.
pub const TOKEN_CHARS: usize = 43;
/// Longest host accepted in a link (a DNS name; brackets of an IPv6 literal included).
pub const MAX_HOST_LEN: usize = 255;
/// Longest link accepted, in bytes.
pub const MAX_LINK_LEN: usize = 1024;
/// The scheme, lower case.
pub const SCHEME: &str = "chatbox://";

/// Why a link or token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum LinkError {
    /// Not a `chatbox://` link.
    NotALink,
    /// Longer than [`MAX_LINK_LEN`].
    TooLong,
    /// The host is missing or has characters a host cannot have.
    BadHost,
    /// The port is missing, not a number, or 0.
    BadPort,
    /// Something other than `/` and a query after the port, or a fragment.
    BadPath,
    /// A bad percent escape, a parameter twice, or a parameter without `=`.
    BadQuery,
    /// The `key` is not `SHA256:` + 43 Base64 characters of a 32-byte digest.
    BadKey,
    /// The invite is not 43 URL-safe Base64 characters.
    BadInvite,
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotALink => "not a chatbox:// link",
            Self::TooLong => "link too long",
            Self::BadHost => "bad host in link",
            Self::BadPort => "bad port in link",
            Self::BadPath => "unexpected path or fragment in link",
            Self::BadQuery => "malformed query in link",
            Self::BadKey => "malformed server key in link (expected SHA256:<43 Base64 characters>)",
            Self::BadInvite => "malformed invite (expected 43 characters of [A-Za-z0-9_-])",
        })
    }
}

impl core::error::Error for LinkError {}

/// An invite token: 32 secret bytes. Wiped on drop; compared in constant time.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct InviteToken([u8; TOKEN_BYTES]);

impl fmt::Debug for InviteToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InviteToken(..)")
    }
}

impl PartialEq for InviteToken {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for InviteToken {}

impl InviteToken {
    /// From 32 random bytes (the host's RNG).
    #[must_use]
    pub fn from_bytes(bytes: [u8; TOKEN_BYTES]) -> Self {
        Self(bytes)
    }

    /// Parses the text form (exactly 43 characters of `[A-Za-z0-9_-]`, canonical).
    pub fn parse(s: &str) -> Result<Self, LinkError> {
        if s.len() != TOKEN_CHARS {
            return Err(LinkError::BadInvite);
        }
        let mut out = [0u8; TOKEN_BYTES];
        match Base64UrlUnpadded::decode(s.as_bytes(), &mut out) {
            Ok(d) if d.len() == TOKEN_BYTES => Ok(Self(out)),
            _ => {
                out.zeroize();
                Err(LinkError::BadInvite)
            }
        }
    }

    /// The secret bytes (the server hashes them with its key before storing or looking up).
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; TOKEN_BYTES] {
        &self.0
    }

    /// The text form (43 characters); it is the secret itself, so keep it short-lived.
    #[must_use]
    pub fn to_text(&self) -> heapless::String<TOKEN_CHARS> {
        let mut buf = [0u8; TOKEN_CHARS];
        let mut s = heapless::String::new();
        if let Ok(enc) = Base64UrlUnpadded::encode(&self.0, &mut buf) {
            let _ = s.push_str(enc);
        }
        buf.zeroize();
        s
    }
}

/// Parses a fingerprint `SHA256:<43 standard Base64 characters>` (the form the server prints)
/// into the 32-byte SHA-256 digest of the server's static public key.
pub fn parse_fingerprint(s: &str) -> Result<[u8; 32], LinkError> {
    let b64 = s.strip_prefix("SHA256:").ok_or(LinkError::BadKey)?;
    if b64.len() != 43 {
        return Err(LinkError::BadKey);
    }
    let mut out = [0u8; 32];
    match Base64Unpadded::decode(b64.as_bytes(), &mut out) {
        Ok(d) if d.len() == 32 => Ok(out),
        _ => Err(LinkError::BadKey),
    }
}

/// Whether `public` (a server's static key) has the fingerprint digest `digest`, in constant time.
#[must_use]
pub fn key_matches(digest: &[u8; 32], public: &[u8; 32]) -> bool {
    sha256(public).ct_eq(digest).into()
}

/// Percent-decodes `input` (RFC 3986 `%XX`, either case) into `out`; the result must be UTF-8.
/// `+` stays `+` (this is not form encoding).
pub fn percent_decode<'a>(input: &str, out: &'a mut [u8]) -> Result<&'a str, LinkError> {
    let bytes = input.as_bytes();
    let mut i = 0;
    let mut n = 0;
    while let Some(&b) = bytes.get(i) {
        let v = if b == b'%' {
            let hi = bytes.get(i + 1).and_then(|&c| hex(c));
            let lo = bytes.get(i + 2).and_then(|&c| hex(c));
            i += 3;
            match (hi, lo) {
                (Some(h), Some(l)) => (h << 4) | l,
                _ => return Err(LinkError::BadQuery),
            }
        } else {
            i += 1;
            b
        };
        *out.get_mut(n).ok_or(LinkError::TooLong)? = v;
        n += 1;
    }
    core::str::from_utf8(out.get(..n).unwrap_or_default()).map_err(|_| LinkError::BadQuery)
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Writes `s` percent-encoded: unreserved characters (`A-Z a-z 0-9 - . _ ~`) and `:` as they
/// are, every other byte as `%XX` (upper case), so `+` is `%2B` and `/` is `%2F`.
pub fn percent_encode(s: &str, f: &mut impl fmt::Write) -> fmt::Result {
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:".contains(&b) {
            f.write_char(char::from(b))?;
        } else {
            write!(f, "%{b:02X}")?;
        }
    }
    Ok(())
}

/// A parsed `chatbox://` link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    host: heapless::String<MAX_HOST_LEN>,
    port: u16,
    key: Option<[u8; 32]>,
    invite: Option<InviteToken>,
}

impl Link {
    /// A link for `host` (a name, an IPv4 address or a bracketed IPv6 address) and `port`.
    pub fn new(
        host: &str,
        port: u16,
        key: Option<[u8; 32]>,
        invite: Option<InviteToken>,
    ) -> Result<Self, LinkError> {
        if port == 0 {
            return Err(LinkError::BadPort);
        }
        Ok(Self {
            host: checked_host(host)?,
            port,
            key,
            invite,
        })
    }

    /// Parses a link. The scheme is case-insensitive; the path must be empty or `/`; unknown
    /// query parameters are ignored; `key` and `invite` may each appear at most once.
    pub fn parse(s: &str) -> Result<Self, LinkError> {
        let s = s.trim();
        if s.len() > MAX_LINK_LEN {
            return Err(LinkError::TooLong);
        }
        let scheme = s.get(..SCHEME.len()).ok_or(LinkError::NotALink)?;
        if !scheme.eq_ignore_ascii_case(SCHEME) {
            return Err(LinkError::NotALink);
        }
        let rest = s.get(SCHEME.len()..).unwrap_or_default();
        if rest.contains('#') {
            return Err(LinkError::BadPath);
        }
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let (host, port) = split_host_port(authority)?;
        let query = match tail {
            "" | "/" => "",
            t => t
                .strip_prefix("/?")
                .or_else(|| t.strip_prefix('?'))
                .ok_or(LinkError::BadPath)?,
        };
        let mut key = None;
        let mut invite = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').ok_or(LinkError::BadQuery)?;
            let mut buf = [0u8; 128];
            match name {
                "key" => {
                    if key.is_some() {
                        return Err(LinkError::BadQuery);
                    }
                    let v = percent_decode(value, &mut buf).map_err(|_| LinkError::BadKey)?;
                    key = Some(parse_fingerprint(v)?);
                }
                "invite" => {
                    if invite.is_some() {
                        return Err(LinkError::BadQuery);
                    }
                    let v = percent_decode(value, &mut buf).map_err(|_| LinkError::BadInvite);
                    let parsed = v.and_then(InviteToken::parse);
                    buf.zeroize();
                    invite = Some(parsed?);
                }
                _ => {}
            }
        }
        Self::new(host, port, key, invite)
    }

    /// The host as written (IPv6 literals keep their brackets).
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `HOST:PORT`, as `--server` takes it.
    #[must_use]
    pub fn server(&self) -> heapless::String<{ MAX_HOST_LEN + 6 }> {
        let mut s = heapless::String::new();
        let _ = fmt::Write::write_fmt(&mut s, format_args!("{}:{}", self.host, self.port));
        s
    }

    /// The SHA-256 digest of the server key this link pins, if any.
    #[must_use]
    pub fn key(&self) -> Option<&[u8; 32]> {
        self.key.as_ref()
    }

    /// The pinned key's printable fingerprint (`SHA256:…`), if any.
    #[must_use]
    pub fn key_fingerprint(&self) -> Option<heapless::String<{ crate::noise::FINGERPRINT_LEN }>> {
        let digest = self.key.as_ref()?;
        let mut b64 = [0u8; 43];
        let enc = Base64Unpadded::encode(digest, &mut b64).ok()?;
        let mut s = heapless::String::new();
        s.push_str("SHA256:").ok()?;
        s.push_str(enc).ok()?;
        Some(s)
    }

    /// The invite token, if any.
    #[must_use]
    pub fn invite(&self) -> Option<&InviteToken> {
        self.invite.as_ref()
    }
}

impl fmt::Display for Link {
    /// The canonical, percent-encoded form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}:{}/", self.host, self.port)?;
        let mut sep = '?';
        if let Some(fp) = self.key_fingerprint() {
            write!(f, "{sep}key=")?;
            percent_encode(&fp, f)?;
            sep = '&';
        }
        if let Some(t) = &self.invite {
            let mut buf = [0u8; TOKEN_CHARS];
            let r = match Base64UrlUnpadded::encode(t.as_bytes(), &mut buf) {
                Ok(text) => write!(f, "{sep}invite={text}"),
                Err(_) => Err(fmt::Error),
            };
            buf.zeroize();
            r?;
        }
        Ok(())
    }
}

fn split_host_port(authority: &str) -> Result<(&str, u16), LinkError> {
    let (host, port) = if authority.starts_with('[') {
        let close = authority.find(']').ok_or(LinkError::BadHost)?;
        let (h, p) = authority.split_at(close + 1);
        (h, p.strip_prefix(':').ok_or(LinkError::BadPort)?)
    } else {
        authority.rsplit_once(':').ok_or(LinkError::BadPort)?
    };
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(LinkError::BadPort);
    }
    let port: u16 = port.parse().map_err(|_| LinkError::BadPort)?;
    if port == 0 {
        return Err(LinkError::BadPort);
    }
    Ok((host, port))
}

fn checked_host(host: &str) -> Result<heapless::String<MAX_HOST_LEN>, LinkError> {
    let ok = if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        !inner.is_empty()
            && inner.contains(':')
            && inner
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
    } else {
        !host.is_empty()
            && !host.starts_with(['.', '-'])
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
    };
    if !ok {
        return Err(LinkError::BadHost);
    }
    let mut s = heapless::String::new();
    s.push_str(host).map_err(|_| LinkError::BadHost)?;
    Ok(s)
}

#[cfg(test)]
mod tests;
