//! One-time codes computed by the client from `CHATBOX_TOTP_SECRET`, for logging in again
//! after a lost connection without a person typing a code.
//!
//! The server accepts the codes of the time steps −1, 0 and +1 around its clock, but never a
//! step at or before the last one it accepted for the account. So the client remembers the last
//! step it sent (or the step of the code given with `--otp`) and picks the next one:
//!
//! - the current step if it is after the last one sent;
//! - else the next step (the server accepts +1), once [`SKEW_MARGIN`] of the current step has
//!   passed, so that a server clock slightly behind still counts it as +1;
//! - else (the next step was spent already) it waits until the step after is acceptable.
//!
//! A step counts as spent as soon as a `Login` with its code was sent, even if the answer never
//! came (the node may have accepted it and died). The secret is never printed.

use core::time::Duration;
use std::time::{SystemTime, UNIX_EPOCH};

use chatbox_core::encoding::base32_decode;
use chatbox_core::otp::{MAX_SECRET_LEN, Totp};

use crate::error::ClientError;

/// Environment variable holding the Base32 TOTP secret (as in the otpauth URI).
pub const SECRET_ENV: &str = "CHATBOX_TOTP_SECRET";

/// How far into the current step the next step's code is used (server clock a little behind).
pub const SKEW_MARGIN: Duration = Duration::from_secs(3);

/// A code to send now, or how long to wait first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Send this code; it belongs to `step`.
    Use {
        /// The time step.
        step: u64,
        /// The 6-digit code.
        code: String,
    },
    /// Nothing acceptable yet: ask again after this long.
    Wait(Duration),
}

/// Computes TOTP codes and remembers the last step used.
#[derive(Debug, Clone)]
pub struct OtpSource {
    totp: Totp,
    last_step: Option<u64>,
}

/// Unix time now, in milliseconds.
#[must_use]
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl OtpSource {
    /// From a Base32 secret (spaces and lower case allowed, as authenticator apps show it).
    pub fn from_base32(secret: &str) -> Result<OtpSource, ClientError> {
        let mut buf = [0u8; MAX_SECRET_LEN];
        let bytes = base32_decode(secret.trim(), &mut buf)
            .ok()
            .filter(|b| !b.is_empty())
            .ok_or_else(|| {
                ClientError::Usage(format!(
                    "{SECRET_ENV} is not a Base32 TOTP secret (the secret=… part of the otpauth URI)"
                ))
            })?;
        let totp = Totp::sha1_default(bytes)
            .map_err(|_| ClientError::Usage(format!("{SECRET_ENV} is not a usable TOTP secret")));
        buf.fill(0);
        Ok(OtpSource {
            totp: totp?,
            last_step: None,
        })
    }

    /// From `CHATBOX_TOTP_SECRET`, if it is set and not empty.
    pub fn from_env() -> Result<Option<OtpSource>, ClientError> {
        match std::env::var(SECRET_ENV) {
            Ok(s) if s.trim().is_empty() => Ok(None),
            Ok(s) => Self::from_base32(&s).map(Some),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err(ClientError::Usage(format!(
                "{SECRET_ENV} is not valid UTF-8"
            ))),
        }
    }

    /// The last step sent, if known.
    #[must_use]
    pub fn last_step(&self) -> Option<u64> {
        self.last_step
    }

    /// Notes a code that was sent (typed with `--otp`): if it is this secret's code for a step
    /// around `now_ms`, that step counts as spent. Scratch codes match nothing.
    pub fn note_sent_code(&mut self, code: &str, now_ms: u64) {
        if let Some(step) = self.totp.verify(code.trim(), now_ms / 1000, None) {
            self.mark_sent(step);
        }
    }

    /// Notes that a `Login` with the code of `step` was sent.
    pub fn mark_sent(&mut self, step: u64) {
        self.last_step = Some(self.last_step.map_or(step, |s| s.max(step)));
    }

    /// The code of the last step sent (the server takes it once more on the session that
    /// logged in with it, to confirm a password change or re-enrolment there).
    #[must_use]
    pub fn last_code(&self) -> Option<String> {
        let step = self.last_step?;
        self.totp
            .generate_at_step(step)
            .ok()
            .map(|c| c.as_str().to_owned())
    }

    /// What to send at `now_ms` (Unix milliseconds).
    pub fn plan(&self, now_ms: u64) -> Result<Plan, ClientError> {
        let period_ms = u64::from(self.totp.period()) * 1000;
        let now = self.totp.step(now_ms / 1000);
        let want = self.last_step.map_or(now, |last| now.max(last + 1));
        let margin = u64::try_from(SKEW_MARGIN.as_millis()).unwrap_or(u64::MAX);
        // Step `want` is acceptable from when the server is at step `want - 1` (as its +1):
        // from the start of that step plus the margin.
        let usable_at = if want <= now {
            now_ms
        } else {
            (want - 1).saturating_mul(period_ms).saturating_add(margin)
        };
        if usable_at > now_ms {
            return Ok(Plan::Wait(Duration::from_millis(usable_at - now_ms)));
        }
        let code = self
            .totp
            .generate_at_step(want)
            .map_err(|e| ClientError::Io(format!("cannot compute a TOTP code: {e}")))?;
        Ok(Plan::Use {
            step: want,
            code: code.as_str().to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 6238's SHA-1 secret "12345678901234567890" in Base32.
    const SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

    fn src() -> OtpSource {
        OtpSource::from_base32(SECRET).unwrap()
    }

    fn code_at(step: u64) -> String {
        src()
            .totp
            .generate_at_step(step)
            .unwrap()
            .as_str()
            .to_owned()
    }

    #[test]
    fn rfc_6238_vector_and_lenient_base32() {
        // RFC 6238 appendix B: T = 59 s, SHA-1, 8 digits 94287082 → 6 digits 287082.
        let s = OtpSource::from_base32("gezd gnbv gy3t qojq gezd gnbv gy3t qojq").unwrap();
        assert_eq!(
            s.plan(59_000).unwrap(),
            Plan::Use {
                step: 1,
                code: "287082".into()
            }
        );
        for bad in ["", "not base32!", "A", "GEZDGNBVGY3TQOJQ1"] {
            let e = OtpSource::from_base32(bad).unwrap_err();
            assert!(matches!(e, ClientError::Usage(_)), "{e}");
            assert!(!e.to_string().contains("GEZD"), "{e}");
        }
    }

    #[test]
    fn never_reuses_a_step_and_waits_when_needed() {
        let mut s = src();
        let t = 1_000 * 30_000; // start of step 1000
        // Nothing sent yet: the current step.
        let Plan::Use { step, .. } = s.plan(t + 10_000).unwrap() else {
            panic!()
        };
        assert_eq!(step, 1000);
        s.mark_sent(1000);
        // Same step later: the next one, once the margin has passed.
        assert_eq!(
            s.plan(t + 1_000).unwrap(),
            Plan::Wait(Duration::from_millis(2_000))
        );
        assert_eq!(
            s.plan(t + 3_000).unwrap(),
            Plan::Use {
                step: 1001,
                code: code_at(1001)
            }
        );
        s.mark_sent(1001);
        // Both spent: wait until step 1001 has begun (+ margin), then use 1002 as its +1.
        assert_eq!(
            s.plan(t + 20_000).unwrap(),
            Plan::Wait(Duration::from_millis(13_000))
        );
        assert_eq!(
            s.plan(t + 33_000).unwrap(),
            Plan::Use {
                step: 1002,
                code: code_at(1002)
            }
        );
        // Time moved on: the current step again.
        let Plan::Use { step, .. } = s.plan(t + 95_000).unwrap() else {
            panic!()
        };
        assert_eq!(step, 1003);
        // mark_sent never goes back.
        s.mark_sent(5);
        assert_eq!(s.last_step(), Some(1001));
    }

    #[test]
    fn a_typed_code_counts_as_spent() {
        let mut s = src();
        let t = 2_000 * 30_000 + 5_000;
        s.note_sent_code(&code_at(2_000), t);
        assert_eq!(s.last_step(), Some(2_000));
        s.note_sent_code(&code_at(2_001), t);
        assert_eq!(s.last_step(), Some(2_001));
        // A scratch code (or garbage) changes nothing.
        s.note_sent_code("12345678", t);
        assert_eq!(s.last_step(), Some(2_001));
        // A code from long ago is not recognised.
        s.note_sent_code(&code_at(10), t);
        assert_eq!(s.last_step(), Some(2_001));
    }
}
