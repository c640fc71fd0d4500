//! Driver for the Arm CMSDK APB UART (Cortex-M System Design Kit, ARM DDI 0479), UART0 of the
//! MPS2 AN385/AN386 FPGA images at `0x4000_4000` (RX interrupt 0, TX interrupt 1), written
//! against its register block.
//!
//! The UART has a one-byte buffer each way and no FIFO. QEMU joins it to a chardev: with
//! `-serial tcp:127.0.0.1:PORT` the byte stream is a TCP connection, QEMU reading from the socket
//! only when the RX buffer is empty, so nothing is lost however slowly the firmware reads.
//!
//! Waiting never spins: [`Uart::wait`] sleeps with `WFI` until a byte arrives, the TX buffer
//! drains, or the SysTick (10 ms, set up by [`Uart::take`]) fires. Interrupts stay masked by
//! `PRIMASK` the whole time, so no handler ever runs: a masked pending interrupt still ends
//! `WFI` (ARMv7-M Architecture Reference Manual, "Wait For Interrupt"; QEMU models it so), and
//! `wait` clears what woke it.
//!
//! This module and [`crate::stack`] hold the device firmware's only `unsafe` code (besides the
//! `unsafe fn` signatures cortex-m-rt requires of exception handlers): volatile accesses to the
//! UART's registers, the interrupt numbers, and unmasking the two interrupts in the NVIC.

use core::sync::atomic::{AtomicBool, Ordering};

use cortex_m::interrupt::InterruptNumber;
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::{NVIC, SCB, SYST};

/// Base address of UART0 on mps2-an385/an386 (the AN385/AN386 memory map; QEMU `hw/arm/mps2.c`).
const UART0_BASE: usize = 0x4000_4000;

// Register offsets (DDI 0479, the UART's programmer's model).
const DATA: usize = 0x00;
const STATE: usize = 0x04;
const CTRL: usize = 0x08;
/// Read: interrupt status; write 1s: clear them.
const INTCLEAR: usize = 0x0C;
const BAUDDIV: usize = 0x10;

// STATE bits.
const STATE_TX_FULL: u32 = 1 << 0;
const STATE_RX_FULL: u32 = 1 << 1;
// CTRL bits.
const CTRL_TX_EN: u32 = 1 << 0;
const CTRL_RX_EN: u32 = 1 << 1;
const CTRL_TX_INTEN: u32 = 1 << 2;
const CTRL_RX_INTEN: u32 = 1 << 3;
// INTSTATUS / INTCLEAR bits.
const INT_TX: u32 = 1 << 0;
const INT_RX: u32 = 1 << 1;

/// The smallest divisor the UART accepts: 25 MHz / 16 ≈ 1.56 Mbaud (QEMU does not model the
/// line rate; on the FPGA board this is the fastest setting).
const BAUD_DIVISOR: u32 = 16;

/// SysTick reload for 10 ms at the AN386's 25 MHz processor clock: the longest `wait` sleeps.
const SYSTICK_RELOAD: u32 = 25_000_000 / 100 - 1;

/// UART0's interrupt lines in the NVIC (the AN385/AN386 interrupt map; QEMU `hw/arm/mps2.c`).
#[derive(Clone, Copy)]
enum Irq {
    Uart0Rx = 0,
    Uart0Tx = 1,
}

// SAFETY: the numbers are UART0's RX and TX lines on this board, below the 32 the NVIC has here.
unsafe impl InterruptNumber for Irq {
    fn number(self) -> u16 {
        self as u16
    }
}

static TAKEN: AtomicBool = AtomicBool::new(false);

/// UART0, owned: at most one exists (see [`Uart::take`]).
#[allow(missing_debug_implementations)] // holds the SysTick, which has no `Debug`
pub struct Uart {
    _syst: SYST,
}

impl Uart {
    /// Takes UART0 (once; `None` afterwards), enables its transmitter, receiver and their
    /// interrupts at the fastest divisor, masks interrupts (`PRIMASK`) for good and starts the
    /// SysTick that bounds every sleep. Takes the SysTick so nobody reprograms it.
    pub fn take(mut syst: SYST) -> Option<Self> {
        if TAKEN.swap(true, Ordering::AcqRel) {
            return None;
        }
        cortex_m::interrupt::disable();
        let uart = Self::registers();
        uart.write(CTRL, 0);
        uart.write(BAUDDIV, BAUD_DIVISOR);
        uart.write(INTCLEAR, INT_TX | INT_RX);
        uart.write(
            CTRL,
            CTRL_TX_EN | CTRL_RX_EN | CTRL_TX_INTEN | CTRL_RX_INTEN,
        );
        // SAFETY: unmasking in the NVIC cannot break a critical section here: PRIMASK is set
        // above and never cleared, so the lines only wake `WFI` and their handlers never run.
        unsafe {
            NVIC::unmask(Irq::Uart0Rx);
            NVIC::unmask(Irq::Uart0Tx);
        }
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(SYSTICK_RELOAD);
        syst.clear_current();
        syst.enable_interrupt();
        syst.enable_counter();
        Some(Self { _syst: syst })
    }

    fn registers() -> Registers {
        Registers { base: UART0_BASE }
    }

    /// The received byte, if one is waiting.
    pub fn try_read(&mut self) -> Option<u8> {
        let regs = Self::registers();
        if regs.read(STATE) & STATE_RX_FULL != 0 {
            // Only the low 8 bits of DATA are the byte.
            Some((regs.read(DATA) & 0xFF) as u8)
        } else {
            None
        }
    }

    /// Writes `byte` if the transmit buffer is free; `false` if it is still full.
    pub fn try_write(&mut self, byte: u8) -> bool {
        let regs = Self::registers();
        if regs.read(STATE) & STATE_TX_FULL != 0 {
            return false;
        }
        regs.write(DATA, u32::from(byte));
        true
    }

    /// Whether the last byte written has left the transmit buffer.
    pub fn tx_idle(&mut self) -> bool {
        Self::registers().read(STATE) & STATE_TX_FULL == 0
    }

    /// Sleeps until something may have changed: a byte arrived, the transmit buffer drained, or
    /// 10 ms passed (SysTick). Returns at once if one of them is already pending. Callers check
    /// the UART and their clock after it, in a loop.
    pub fn wait(&mut self) {
        cortex_m::asm::wfi();
        // Clear in the order that loses no wake-up: the UART's status first (it drives the
        // NVIC lines), then the pending bits; anything arriving later pends again.
        Self::registers().write(INTCLEAR, INT_TX | INT_RX);
        NVIC::unpend(Irq::Uart0Rx);
        NVIC::unpend(Irq::Uart0Tx);
        SCB::clear_pendst();
    }
}

/// The UART's register block.
struct Registers {
    base: usize,
}

impl Registers {
    fn read(&self, offset: usize) -> u32 {
        // SAFETY: `base + offset` is one of the UART0 registers listed above, a 32-bit aligned
        // device register that is always mapped on this board; reading it has no side effect
        // besides the UART's own (DATA hands over the received byte).
        unsafe { core::ptr::read_volatile((self.base + offset) as *const u32) }
    }

    fn write(&self, offset: usize, value: u32) {
        // SAFETY: as in `read`; only the `Uart` that `take` handed out writes these registers.
        unsafe { core::ptr::write_volatile((self.base + offset) as *mut u32, value) }
    }
}
