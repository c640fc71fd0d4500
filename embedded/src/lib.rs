//! Runtime glue shared by the firmware and the on-target test suite.
//!
//! - defmt log frames go to the host over Arm semihosting (`defmt-semihosting`); decode them with
//!   `defmt-print -e <elf>`.
//! - A panic (a failed `assert!` in a test included) or a HardFault logs what happened and ends
//!   QEMU with a non-zero exit status through semihosting, so a failure never hangs the runner.
//!   Each binary picks its `#[panic_handler]`: [`panic_location_only`] (small, for firmware) or
//!   [`panic_with_message`] (for tests).
#![no_std]

pub mod clock;
pub mod device;
pub mod stack;
pub mod uart;
pub mod vectors;

use cortex_m as _; // critical-section implementation (single core)
use cortex_m_rt::{ExceptionFrame, exception};
use defmt_semihosting as _;

/// Decodes a hex string at compile time (`N` must be half its length; anything else fails the
/// build).
#[must_use]
pub const fn hex<const N: usize>(s: &str) -> [u8; N] {
    const fn nibble(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => panic!("not a hex digit"),
        }
    }
    let s = s.as_bytes();
    assert!(s.len() == 2 * N, "hex string length is not 2 * N");
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = (nibble(s[2 * i]) << 4) | nibble(s[2 * i + 1]);
        i += 1;
    }
    out
}

/// Exit status of a panic (a failed test included).
pub const EXIT_PANIC: i32 = 101;
/// Exit status of a HardFault (e.g. a stack overflow into the vector table).
pub const EXIT_HARD_FAULT: i32 = 102;

/// Ends the program (and QEMU) with `code` as the process exit status.
pub fn exit(code: i32) -> ! {
    semihosting::process::exit(code)
}

/// Called by `defmt::panic!` (and the failing `defmt::assert*!`) after the message is logged.
#[defmt::panic_handler]
fn defmt_panic() -> ! {
    exit(EXIT_PANIC)
}

/// Logs where a panic happened (not its message, whose formatting machinery costs kilobytes of
/// flash) and ends the program with [`EXIT_PANIC`]. For a firmware's `#[panic_handler]`.
pub fn panic_location_only(info: &core::panic::PanicInfo<'_>) -> ! {
    match info.location() {
        Some(l) => defmt::error!("panicked at {=str}:{=u32}", l.file(), l.line()),
        None => defmt::error!("panicked"),
    }
    exit(EXIT_PANIC)
}

/// Logs a panic with its message and ends the program with [`EXIT_PANIC`]. For the test
/// suites' `#[panic_handler]`, where the message (an `unwrap` on which error, say) matters more
/// than flash.
pub fn panic_with_message(info: &core::panic::PanicInfo<'_>) -> ! {
    defmt::error!("{}", defmt::Display2Format(info));
    exit(EXIT_PANIC)
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    defmt::error!(
        "HardFault: pc={=u32:#010x} lr={=u32:#010x}",
        frame.pc(),
        frame.lr()
    );
    exit(EXIT_HARD_FAULT)
}
