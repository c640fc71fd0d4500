//! Logging in through the first address that works, and again after a lost connection.
//!
//! [`login_any`] tries the addresses of the [`ServerList`] in turn from a starting index
//! (the first one at start; the one after the lost node when reconnecting, wrapping around to
//! include it). An address that cannot be reached, fails the handshake, drops the connection
//! or answers busy is skipped; a server key mismatch, a refused login (wrong password or code,
//! banned) or a local problem ends the search at once. [`Rounds::Within`] repeats whole rounds
//! with a growing pause (0.25 s doubling to 4 s) until the time is up.
//!
//! With a computed code ([`Code::Computed`]), a refused login is tried once more, after a
//! random 1–3 s, with the next time step: the current step may have been spent by a login this
//! client does not know about (an earlier run, another session of the same user), or a burst of
//! logins from this address may have been throttled. A second refusal is final.
//!
//! Reconnects start after a random pause of up to 0.5 s so that the clients of a dead node do
//! not all arrive at once.

use core::time::Duration;
use std::time::Instant;

use chatbox_core::proto::ErrorCode;

use crate::account::{LoggedIn, login_on};
use crate::conn::{Conn, random_u64};
use crate::error::ClientError;
use crate::known_servers::Trust;
use crate::otp_source::{OtpSource, Plan, SECRET_ENV, unix_ms};
use crate::servers::{Failures, ServerList, is_fatal};

/// How long the client keeps trying to log in again after losing the connection.
pub const RECONNECT_WINDOW: Duration = Duration::from_secs(30);

/// First pause between two rounds over the addresses.
pub const BACKOFF_START: Duration = Duration::from_millis(250);

/// Longest pause between two rounds.
pub const BACKOFF_MAX: Duration = Duration::from_secs(4);

/// Before reconnecting, a random pause up to this long, so that the clients of a node that
/// died do not all log in again at the same instant.
pub const RECONNECT_JITTER: Duration = Duration::from_millis(500);

/// Before trying a refused computed code once more, a random pause between 1 s and 1 s plus
/// this (a burst of logins from one address may have been throttled).
pub const RETRY_JITTER: Duration = Duration::from_secs(2);

/// A random duration in `[0, max)`.
fn jitter(max: Duration) -> Result<Duration, ClientError> {
    let ms = u64::try_from(max.as_millis()).unwrap_or(u64::MAX).max(1);
    Ok(Duration::from_millis(random_u64()? % ms))
}

/// Who logs in, where, and how the server key is checked.
#[derive(Debug, Clone)]
pub struct Target {
    /// Addresses to try.
    pub servers: ServerList,
    /// How to check the server key.
    pub trust: Trust,
    /// User name.
    pub user: String,
    /// Password.
    pub password: String,
}

/// Where the one-time code comes from.
#[derive(Debug)]
pub enum Code<'a> {
    /// Typed by the user (`--otp`, a prompt): used as is.
    Given(&'a str),
    /// Computed from `CHATBOX_TOTP_SECRET`.
    Computed(&'a mut OtpSource),
}

/// How long to keep trying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rounds {
    /// Each address once.
    Once,
    /// Rounds with pauses until this much time has passed.
    Within(Duration),
}

/// What [`login_any`] is doing, for the caller to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Connecting to this address.
    Trying(String),
    /// The next usable TOTP step starts in this long.
    WaitingForCode(Duration),
}

/// Logs in at the first address that works, starting at index `start`. Returns the login and
/// the index of the address used.
pub async fn login_any(
    target: &Target,
    mut code: Code<'_>,
    start: usize,
    rounds: Rounds,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<(LoggedIn, usize), ClientError> {
    let started = Instant::now();
    let mut failures = Failures::default();
    let mut backoff = BACKOFF_START;
    let mut retried = false;
    if let Rounds::Within(_) = rounds {
        smol::Timer::after(jitter(RECONNECT_JITTER)?).await;
    }
    loop {
        for i in target.servers.round_from(start) {
            let addr = target.servers.get(i);
            loop {
                progress(Progress::Trying(addr.to_owned()));
                match attempt(target, addr, &mut code, progress).await {
                    Ok(logged_in) => return Ok((logged_in, i)),
                    Err(e)
                        if !retried
                            && matches!(code, Code::Computed(_))
                            && e.is_refusal(ErrorCode::InvalidCredentials) =>
                    {
                        retried = true;
                        smol::Timer::after(Duration::from_secs(1) + jitter(RETRY_JITTER)?).await;
                    }
                    Err(e) if is_fatal(&e) => return Err(e),
                    Err(e) => {
                        failures.push(addr, e);
                        break;
                    }
                }
            }
        }
        match rounds {
            Rounds::Once => return Err(failures.into_error(&target.servers, "")),
            Rounds::Within(limit) => {
                if started.elapsed() + backoff >= limit {
                    let context = format!("could not log in again within {} s", limit.as_secs());
                    return Err(failures.into_error(&target.servers, &context));
                }
                smol::Timer::after(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// One login at `addr`.
async fn attempt(
    target: &Target,
    addr: &str,
    code: &mut Code<'_>,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<LoggedIn, ClientError> {
    // The code is worked out before connecting, so no connection idles while waiting.
    let (text, step) = match code {
        Code::Given(c) => ((*c).to_owned(), None),
        Code::Computed(otp) => loop {
            match otp.plan(unix_ms())? {
                Plan::Use { step, code } => break (code, Some(step)),
                Plan::Wait(d) => {
                    progress(Progress::WaitingForCode(d));
                    smol::Timer::after(d).await;
                }
            }
        },
    };
    let (tcp, handshake) = target.servers.timeouts();
    let conn = Conn::connect_within(addr, &target.trust, tcp, handshake).await?;
    if let (Code::Computed(otp), Some(step)) = (code, step) {
        // Spent from now on, even if the answer never comes.
        otp.mark_sent(step);
    }
    login_on(conn, &target.user, &target.password, &text).await
}

/// The first login of a session, at the first address that works: with the code given
/// (`--otp`, a prompt) if any, else with one computed from the secret. A given code's step
/// is noted in `secret` as spent.
pub async fn first_login(
    target: &Target,
    given: Option<&str>,
    secret: Option<&mut OtpSource>,
) -> Result<(LoggedIn, usize), ClientError> {
    let mut quiet = |_: Progress| {};
    match (given, secret) {
        (Some(code), secret) => {
            let r = login_any(target, Code::Given(code), 0, Rounds::Once, &mut quiet).await;
            if let Some(s) = secret {
                s.note_sent_code(code, unix_ms());
            }
            r
        }
        (None, Some(s)) => login_any(target, Code::Computed(s), 0, Rounds::Once, &mut quiet).await,
        (None, None) => Err(ClientError::Usage(format!(
            "a one-time code is needed (--otp CODE, or {SECRET_ENV} to compute codes)"
        ))),
    }
}
