//! The one "output buffer too small" error. Every encoder in this crate writes into a caller
//! buffer; when that buffer is short, its own error type carries this value (as its
//! `InsufficientSize` variant), so the size needed is reported the same way everywhere and the
//! layers convert it without re-wrapping.

use core::fmt;

/// The caller's output buffer is too small: nothing was written that matters, and the same call
/// with a buffer of at least `required` bytes succeeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BufferTooSmall {
    /// Bytes the output buffer must hold.
    pub required: usize,
}

impl fmt::Display for BufferTooSmall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "output buffer too small ({} bytes needed)",
            self.required
        )
    }
}

impl core::error::Error for BufferTooSmall {}

/// The first `len` bytes of `out`, or the error naming `len`.
pub(crate) fn prefix_mut(out: &mut [u8], len: usize) -> Result<&mut [u8], BufferTooSmall> {
    out.get_mut(..len).ok_or(BufferTooSmall { required: len })
}
