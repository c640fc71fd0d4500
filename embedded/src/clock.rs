//! Time from the host, through semihosting.
//!
//! - [`Clock::now_ms`]: a monotonic clock from `SYS_ELAPSED` / `SYS_TICKFREQ` (QEMU counts host
//!   nanoseconds since it started, asleep or not). Not `SYS_CLOCK`: QEMU answers it with the
//!   process's CPU time, which stands still while the board sleeps in `WFI`.
//! - [`unix_seconds`]: wall-clock time from `SYS_TIME`, for TOTP codes.
//!
//! A real board has neither: it needs a timer for the first (SysTick or a general-purpose timer
//! counting overflows) and a battery-backed RTC set from a trusted source for the second.

use semihosting::sys::arm_compat::{sys_elapsed, sys_tickfreq, sys_time};

/// The monotonic clock.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    ticks_per_ms: u64,
}

impl Clock {
    /// The host's tick counter, if it has one (`None` on a host that does not implement
    /// `SYS_ELAPSED` or `SYS_TICKFREQ`, or counts slower than 1 kHz).
    #[must_use]
    pub fn new() -> Option<Self> {
        let freq = u64::try_from(sys_tickfreq().ok()?).ok()?;
        let ticks_per_ms = freq / 1000;
        sys_elapsed().ok()?;
        (ticks_per_ms > 0).then_some(Self { ticks_per_ms })
    }

    /// Milliseconds since the emulator started; `u64::MAX` if the host stops answering, so that
    /// every deadline has passed and a broken clock ends the run instead of hanging it.
    #[must_use]
    pub fn now_ms(&self) -> u64 {
        sys_elapsed().map_or(u64::MAX, |t| t / self.ticks_per_ms)
    }
}

/// Seconds since the Unix epoch, from the host.
#[must_use]
pub fn unix_seconds() -> u64 {
    sys_time().map_or(0, |t| t as u64)
}
