//! The sans-IO state of one connection: its phase (handshaking, anonymous, registering,
//! logged in), its token bucket, and the decisions that follow from them alone: which phase a
//! message may be sent in and where it goes, whether the rate limit lets it through, when the
//! connection times out and why. No socket, no clock of its own (every `now` is passed in):
//! the driver (`conn/driver.rs`) does the I/O and asks here. See docs/DESIGN.md, "Server:
//! connections and runtime".

use core::time::Duration;
use std::time::Instant;

use chatbox_core::proto::{ClientMsg, ErrorCode};

use crate::auth::Refusal;
use crate::auth::account::Reenrol;
use crate::auth::register::Pending;
use crate::chat::Me;
use crate::config::Config;

/// The timeouts and rate limit a connection lives under.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// The Noise handshake must end within this of the accept.
    pub(crate) handshake: Duration,
    /// A connection not logged in goes this long after its accept, whatever it does.
    pub(crate) login: Duration,
    /// An anonymous connection must log in or start a registration within this (counted from
    /// the handshake's end, and again after a completed registration).
    pub(crate) anonymous: Duration,
    /// A registration must be confirmed within this of `RegisterStarted`.
    pub(crate) register: Duration,
    /// A connection silent for longer goes.
    pub(crate) idle: Duration,
    /// Token bucket: messages per second refilled.
    pub(crate) rate_per_sec: f64,
    /// Token bucket: burst size.
    pub(crate) rate_burst: f64,
    /// Rate-limit warnings before the connection is closed.
    pub(crate) rate_violations: u32,
}

impl Limits {
    /// `config`'s limits.
    pub(crate) fn of(config: &Config) -> Limits {
        Limits {
            handshake: config.handshake_timeout,
            login: config.login_timeout,
            anonymous: config.anonymous_timeout,
            register: config.register_timeout,
            idle: config.idle_timeout,
            rate_per_sec: config.rate_per_sec,
            rate_burst: config.rate_burst,
            rate_violations: config.rate_violations,
        }
    }
}

/// Messages a connection may send per second: `rate` refilled, at most `burst` saved up.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    tokens: f64,
    refilled: Instant,
    rate: f64,
    burst: f64,
}

impl TokenBucket {
    /// A full bucket at `now`.
    pub(crate) fn new(rate: f64, burst: f64, now: Instant) -> TokenBucket {
        TokenBucket {
            tokens: burst,
            refilled: now,
            rate,
            burst,
        }
    }

    /// Takes one token if there is one (after refilling for the time since the last take).
    pub(crate) fn take(&mut self, now: Instant) -> bool {
        let dt = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.refilled = now;
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// A logged-in session.
#[derive(Debug)]
pub(crate) struct Session {
    /// Who.
    pub(crate) me: Me,
    /// The TOTP step this session's login used (None: a scratch code).
    pub(crate) login_step: Option<u64>,
    /// A second-factor re-enrolment waiting for its code.
    pub(crate) reenrol: Option<Reenrol>,
}

/// Where a connection is in its life. Each phase holds what only it has, so "logged in and
/// registering at once" cannot be written down.
#[derive(Debug)]
pub(crate) enum Phase {
    /// Accepted; the Noise handshake is not finished.
    Handshaking,
    /// Handshake done, not logged in, no registration running. `since`: when the anonymous
    /// timeout started (the handshake's end, again after a completed registration).
    Anonymous {
        /// When the anonymous timeout started.
        since: Instant,
    },
    /// A registration waits for its confirmation code.
    Registering(Box<Pending>),
    /// Logged in.
    LoggedIn(Box<Session>),
}

/// Where a message goes, decided by the phase alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// `Ping`: answer `Pong`.
    Pong,
    /// `Bye`: the client leaves.
    Bye,
    /// `AskPolicy`: answer `RegistrationPolicy`.
    Policy,
    /// `Register` or `RegisterInvite` from an anonymous connection.
    Register,
    /// `ConfirmTotp` during a registration.
    Confirm,
    /// `Login` from an anonymous connection.
    Login,
    /// Account self-service (logged in).
    SelfService,
    /// Everything else, for chat (logged in).
    Chat,
    /// Not in this phase: answer the refusal.
    Refuse(Refusal),
}

/// What the rate limit says about one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rate {
    /// Within the limit.
    Pass,
    /// Over it: answer `RateLimited`, drop the message.
    Warn,
    /// Over it too often: `Bye`, close.
    Close,
}

/// Why a connection timed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timeout {
    /// The handshake did not finish in time (no `Bye`: there is no session to seal it).
    Handshake,
    /// The registration was not confirmed in time.
    Registration,
    /// Idle, or the anonymous or login timeout.
    Other,
}

/// The text of the refusal for a chat message or self-service before logging in.
pub(crate) const LOG_IN_FIRST: &str = "log in first (only Register, RegisterInvite, ConfirmTotp, Login, AskPolicy, Ping and Bye are allowed)";

/// One connection's state.
#[derive(Debug)]
pub(crate) struct ConnState {
    /// Where it is.
    pub(crate) phase: Phase,
    /// Its rate limit.
    pub(crate) bucket: TokenBucket,
    limits: Limits,
    started: Instant,
    last_rx: Instant,
    violations: u32,
}

impl ConnState {
    /// A connection accepted at `now`.
    pub(crate) fn new(limits: Limits, now: Instant) -> ConnState {
        ConnState {
            phase: Phase::Handshaking,
            bucket: TokenBucket::new(limits.rate_per_sec, limits.rate_burst, now),
            limits,
            started: now,
            last_rx: now,
            violations: 0,
        }
    }

    /// The handshake ended at `now`: anonymous from now on.
    pub(crate) fn established(&mut self, now: Instant) {
        if matches!(self.phase, Phase::Handshaking) {
            self.phase = Phase::Anonymous { since: now };
        }
    }

    /// A registration started (only an anonymous connection may start one).
    pub(crate) fn registering(&mut self, pending: Pending) {
        if matches!(self.phase, Phase::Anonymous { .. }) {
            self.phase = Phase::Registering(Box::new(pending));
        }
    }

    /// The registration was confirmed at `now`: anonymous again, with a fresh anonymous
    /// period (the same connection may log in next). The slot it held is given back.
    pub(crate) fn registered(&mut self, now: Instant) {
        if matches!(self.phase, Phase::Registering(_)) {
            self.phase = Phase::Anonymous { since: now };
        }
    }

    /// Logged in (only an anonymous connection may log in).
    pub(crate) fn logged_in(&mut self, session: Session) {
        if matches!(self.phase, Phase::Anonymous { .. }) {
            self.phase = Phase::LoggedIn(Box::new(session));
        }
    }

    /// The registration waiting for its code, if any.
    pub(crate) fn pending_mut(&mut self) -> Option<&mut Pending> {
        match &mut self.phase {
            Phase::Registering(p) => Some(p),
            _ => None,
        }
    }

    /// The registration, taken out (the connection ended before it was confirmed).
    pub(crate) fn take_pending(&mut self) -> Option<Box<Pending>> {
        match core::mem::replace(&mut self.phase, Phase::Handshaking) {
            Phase::Registering(p) => Some(p),
            other => {
                self.phase = other;
                None
            }
        }
    }

    /// The logged-in session, if any.
    pub(crate) fn session(&self) -> Option<&Session> {
        match &self.phase {
            Phase::LoggedIn(s) => Some(s),
            _ => None,
        }
    }

    /// The logged-in session, mutable.
    pub(crate) fn session_mut(&mut self) -> Option<&mut Session> {
        match &mut self.phase {
            Phase::LoggedIn(s) => Some(s),
            _ => None,
        }
    }

    /// Whether the connection has logged in.
    pub(crate) fn is_logged_in(&self) -> bool {
        matches!(self.phase, Phase::LoggedIn(_))
    }

    /// A record arrived at `now` (the idle timeout starts again).
    pub(crate) fn received(&mut self, now: Instant) {
        self.last_rx = now;
    }

    /// The rate limit's verdict on `msg` at `now`. `Ping` and `Bye` are always let through
    /// (and cost nothing), so a client can always keep alive and leave.
    pub(crate) fn rate(&mut self, msg: &ClientMsg<'_>, now: Instant) -> Rate {
        if matches!(msg, ClientMsg::Ping { .. } | ClientMsg::Bye) || self.bucket.take(now) {
            return Rate::Pass;
        }
        self.violations += 1;
        if self.violations > self.limits.rate_violations {
            Rate::Close
        } else {
            Rate::Warn
        }
    }

    /// Where `msg` goes in the current phase. An anonymous connection may send `Register`,
    /// `RegisterInvite`, `Login`, `AskPolicy`, `Ping` and `Bye`; a registering one
    /// `ConfirmTotp` too; everything else needs a login.
    pub(crate) fn route(&self, msg: &ClientMsg<'_>) -> Route {
        let busy = || {
            Route::Refuse(Refusal::keep(
                ErrorCode::BadState,
                "already logged in or registering",
            ))
        };
        let anonymous = matches!(self.phase, Phase::Anonymous { .. });
        let logged_in = self.is_logged_in();
        match msg {
            ClientMsg::Ping { .. } => Route::Pong,
            ClientMsg::Bye => Route::Bye,
            ClientMsg::AskPolicy => Route::Policy,
            ClientMsg::Register { .. } | ClientMsg::RegisterInvite { .. } if anonymous => {
                Route::Register
            }
            ClientMsg::Register { .. }
            | ClientMsg::RegisterInvite { .. }
            | ClientMsg::Login { .. }
                if !matches!(self.phase, Phase::Handshaking) && !anonymous =>
            {
                busy()
            }
            ClientMsg::Login { .. } if anonymous => Route::Login,
            ClientMsg::ConfirmTotp { .. } => match self.phase {
                Phase::Registering(_) => Route::Confirm,
                _ => Route::Refuse(Refusal::keep(
                    ErrorCode::BadState,
                    "no registration in progress",
                )),
            },
            ClientMsg::ChangePassword { .. }
            | ClientMsg::Reenrol { .. }
            | ClientMsg::ConfirmReenrol { .. }
            | ClientMsg::Sessions
            | ClientMsg::RevokeSession { .. }
            | ClientMsg::RevokeOtherSessions
                if logged_in =>
            {
                Route::SelfService
            }
            _ if logged_in => Route::Chat,
            _ => Route::Refuse(Refusal::keep(ErrorCode::NotAuthenticated, LOG_IN_FIRST)),
        }
    }

    /// When the connection times out if nothing happens.
    pub(crate) fn deadline(&self) -> Instant {
        let l = &self.limits;
        let anonymous = |own: Instant| (self.started + l.login).min(self.last_rx + l.idle).min(own);
        match &self.phase {
            Phase::Handshaking => self.started + l.handshake,
            Phase::Anonymous { since } => anonymous(*since + l.anonymous),
            Phase::Registering(p) => anonymous(p.started + l.register),
            Phase::LoggedIn(_) => self.last_rx + l.idle,
        }
    }

    /// Why the deadline, reached at `now`, closes the connection.
    pub(crate) fn timeout(&self, now: Instant) -> Timeout {
        match &self.phase {
            Phase::Handshaking => Timeout::Handshake,
            Phase::Registering(p) if now >= p.started + self.limits.register => {
                Timeout::Registration
            }
            _ => Timeout::Other,
        }
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
