//! Peak stack use, measured by painting.
//!
//! [`paint`] fills the [`WINDOW`] bytes of free RAM below the current stack pointer (never below
//! the end of the static data, `_stack_end` from cortex-m-rt's `link.x`) with a pattern;
//! [`peak`] finds the lowest word that no longer holds it. The stack grows down from
//! `_stack_start`, so `_stack_start - that address` is the most stack used since `paint`
//! (an underestimate only if a function reserved stack it never wrote).

use core::sync::atomic::{AtomicUsize, Ordering};

const PATTERN: u32 = 0xA5C3_5A3C;
/// How much of the stack is painted: far more than the firmware's 48 KiB RAM budget (a peak equal
/// to it would mean "at least"), and small enough to scan quickly.
pub const WINDOW: usize = 256 * 1024;
/// Left alone below the stack pointer at `paint`: `paint`'s own frame and what it calls.
const MARGIN: usize = 64;

unsafe extern "C" {
    static _stack_start: u32;
    static _stack_end: u32;
}

/// The lowest address painted.
static START: AtomicUsize = AtomicUsize::new(0);
/// The lowest address found written so far (0 before `paint`).
static LOW: AtomicUsize = AtomicUsize::new(0);

fn top() -> usize {
    (&raw const _stack_start) as usize
}

fn bottom() -> usize {
    (&raw const _stack_end) as usize
}

/// Paints the unused stack. Call once, first thing in `main`.
#[inline(never)]
pub fn paint() {
    let sp = cortex_m::register::msp::read() as usize;
    let end = (sp - MARGIN) & !3;
    let start = bottom().max(sp.saturating_sub(WINDOW)) & !3;
    let mut at = start;
    while at < end {
        // SAFETY: `[start, sp - MARGIN)` is RAM below the live stack and above every static
        // (`start >= _stack_end`): nothing uses it yet, and each word there is aligned and mapped.
        unsafe { core::ptr::write_volatile(at as *mut u32, PATTERN) };
        at += 4;
    }
    START.store(start, Ordering::Relaxed);
    LOW.store(end, Ordering::Relaxed);
}

/// The most stack used since [`paint`], in bytes (0 without `paint`).
#[must_use]
pub fn peak() -> usize {
    let low = LOW.load(Ordering::Relaxed);
    if low == 0 {
        return 0;
    }
    // Below `low` the paint may still be intact; scan up to the first word that is not.
    let mut at = START.load(Ordering::Relaxed);
    while at < low {
        // SAFETY: the same painted region as in `paint`, read only.
        if unsafe { core::ptr::read_volatile(at as *const u32) } != PATTERN {
            break;
        }
        at += 4;
    }
    LOW.store(at, Ordering::Relaxed);
    top() - at
}
