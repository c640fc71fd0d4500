//! What the device client (`src/bin/device-client.rs`) decides, apart from moving bytes: its
//! configuration from the semihosting command line, its exit statuses, and its answers to the
//! commands said in its room. No I/O here, so `tests/device.rs` checks it on the board.

use chatbox_core::encoding::base32_decode;
use chatbox_core::noise::FINGERPRINT_LEN;
use chatbox_core::otp::Totp;
use chatbox_core::proto::{MAX_TEXT_LEN, is_valid_room};
use chatbox_core::username;

/// The room joined when the command line names none.
pub const DEFAULT_ROOM: &str = "#devices";
/// Seconds between keepalive Pings when the command line says nothing (`ping=1..60`).
pub const DEFAULT_PING_SECS: u32 = 30;
/// The longest keepalive interval accepted: the "a Ping at least every 60 s".
pub const MAX_PING_SECS: u32 = 60;
/// Longest TOTP secret accepted, in bytes (SHA-1 secrets are 20; this leaves room for 64).
pub const MAX_SECRET_LEN: usize = 64;

/// How the device client ends: the process exit status QEMU returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, defmt::Format)]
pub enum Exit {
    /// `!bye`: Bye sent, status 0.
    Bye = 0,
    /// A missing or invalid setting, or no clock or randomness from the host: 1.
    Config = 1,
    /// The connection was lost (no answer in time), the server said Bye, or the stream broke
    /// the protocol: 2.
    Lost = 2,
    /// The server's key is not the one in `key=`: 3.
    KeyMismatch = 3,
    /// The server refused the login: 4.
    Refused = 4,
}

impl Exit {
    /// The exit status.
    #[must_use]
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// Why the command line was refused (the word's key, never its value: it may be secret).
#[derive(Debug, Clone, Copy, PartialEq, Eq, defmt::Format)]
pub enum ConfigError {
    /// A required key (`user`, `password`, `totp`, `key`) is missing.
    Missing(&'static str),
    /// A key's value is invalid.
    Invalid(&'static str),
}

/// The device's settings: `key=value` words; words without `=` and unknown keys are ignored.
pub struct Config<'a> {
    /// `user=NAME`, checked and lower-cased as the server does.
    pub user: heapless::String<{ username::MAX_LEN }>,
    /// `password=PASS` (8–128 bytes).
    pub password: &'a str,
    /// `totp=BASE32SECRET`: the account's TOTP (RFC 6238, SHA-1, 6 digits, 30 s).
    pub totp: Totp,
    /// `key=SHA256:FINGERPRINT`: the only server key accepted.
    pub key: &'a str,
    /// `room=#ROOM`, [`DEFAULT_ROOM`] by default.
    pub room: &'a str,
    /// `ping=SECONDS` between keepalive Pings, [`DEFAULT_PING_SECS`] by default.
    pub ping_secs: u32,
}

impl core::fmt::Debug for Config<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Config")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("totp", &self.totp)
            .field("key", &self.key)
            .field("room", &self.room)
            .field("ping_secs", &self.ping_secs)
            .finish()
    }
}

impl<'a> Config<'a> {
    /// Parses the command line's words. A key given twice keeps its last value.
    pub fn parse<I>(words: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = &'a str>,
    {
        let (mut user, mut password, mut totp, mut key) = (None, None, None, None);
        let (mut room, mut ping) = (DEFAULT_ROOM, None);
        for word in words {
            let Some((k, v)) = word.split_once('=') else {
                continue;
            };
            match k {
                "user" => user = Some(v),
                "password" => password = Some(v),
                "totp" => totp = Some(v),
                "key" => key = Some(v),
                "room" => room = v,
                "ping" => ping = Some(v),
                _ => {}
            }
        }
        let user = user.ok_or(ConfigError::Missing("user"))?;
        let user = username::normalize(user).map_err(|_| ConfigError::Invalid("user"))?;
        let password = password.ok_or(ConfigError::Missing("password"))?;
        if !(8..=128).contains(&password.len()) {
            return Err(ConfigError::Invalid("password"));
        }
        let secret = totp.ok_or(ConfigError::Missing("totp"))?;
        let mut buf = [0u8; MAX_SECRET_LEN];
        let totp = base32_decode(secret, &mut buf)
            .ok()
            .filter(|s| !s.is_empty())
            .and_then(|s| Totp::sha1_default(s).ok());
        zeroize::Zeroize::zeroize(&mut buf);
        let totp = totp.ok_or(ConfigError::Invalid("totp"))?;
        let key = key.ok_or(ConfigError::Missing("key"))?;
        if !is_fingerprint(key) {
            return Err(ConfigError::Invalid("key"));
        }
        if !is_valid_room(room) {
            return Err(ConfigError::Invalid("room"));
        }
        let ping_secs = match ping {
            None => DEFAULT_PING_SECS,
            Some(p) => p
                .parse()
                .ok()
                .filter(|s| (1..=MAX_PING_SECS).contains(s))
                .ok_or(ConfigError::Invalid("ping"))?,
        };
        Ok(Self {
            user,
            password,
            totp,
            key,
            room,
            ping_secs,
        })
    }
}

/// `SHA256:` and 43 characters of standard Base64 (a fingerprint as the server prints it).
fn is_fingerprint(s: &str) -> bool {
    s.len() == FINGERPRINT_LEN
        && s.strip_prefix("SHA256:").is_some_and(|b64| {
            b64.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
        })
}

/// What the device says back to a line in its room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, defmt::Format)]
pub enum Reply<'t> {
    /// Say this text in the room.
    Say(&'t str),
    /// Send Bye and exit 0.
    Bye,
}

/// Counters for `!stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, defmt::Format)]
pub struct Stats {
    /// Records sent so far (the send key epoch).
    pub sent: u64,
    /// Records received so far (the receive key epoch).
    pub received: u64,
    /// Peak stack so far, in bytes.
    pub stack: usize,
}

/// Room for the `!stats` answer.
pub const STATS_LEN: usize = 96;

/// The answer to `text`, said in the room by someone else: `!ping` → `pong`, `!echo TEXT` →
/// `TEXT`, `!stats` → `records sent=N received=M stack=B bytes` (written into `scratch`),
/// `!bye` → [`Reply::Bye`]; anything else (an `!echo` with nothing or more than the server takes
/// to echo included) gets no answer.
pub fn reply<'t>(
    text: &'t str,
    stats: Stats,
    scratch: &'t mut [u8; STATS_LEN],
) -> Option<Reply<'t>> {
    match text {
        "!ping" => Some(Reply::Say("pong")),
        "!bye" => Some(Reply::Bye),
        "!stats" => Some(Reply::Say(stats_line(stats, scratch))),
        _ => text
            .strip_prefix("!echo ")
            .filter(|t| !t.is_empty() && t.len() <= MAX_TEXT_LEN)
            .map(Reply::Say),
    }
}

/// `records sent=N received=M stack=B bytes`.
fn stats_line(stats: Stats, out: &mut [u8; STATS_LEN]) -> &str {
    let mut w = Line { buf: out, len: 0 };
    w.push(b"records sent=");
    w.number(stats.sent);
    w.push(b" received=");
    w.number(stats.received);
    w.push(b" stack=");
    w.number(stats.stack as u64);
    w.push(b" bytes");
    let Line { buf, len } = w;
    // Only ASCII was written.
    core::str::from_utf8(buf.get(..len).unwrap_or_default()).unwrap_or_default()
}

/// A line of ASCII in a fixed buffer (what does not fit is dropped; [`STATS_LEN`] fits the
/// longest stats line, three 20-digit numbers).
struct Line<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl Line<'_> {
    fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if let Some(slot) = self.buf.get_mut(self.len) {
                *slot = b;
                self.len += 1;
            }
        }
    }

    fn number(&mut self, mut n: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            if let Some(d) = digits.get_mut(i) {
                *d = b'0' + (n % 10) as u8;
            }
            n /= 10;
            if n == 0 || i == 0 {
                break;
            }
        }
        self.push(digits.get(i..).unwrap_or_default());
    }
}
