//! QR code matrices (for otpauth URIs), built with `qrcodegen-no-heap` into a fixed buffer.
//!
//! [`QrCode`] owns its modules, so it can be returned and kept. It says nothing about how to draw
//! them: a renderer walks [`QrCode::module`] (or [`QrCode::rows`]) from `-quiet` to
//! `size + quiet`, where everything outside the symbol is light, and picks its own pixels (the
//! terminal client uses Unicode half blocks).

use core::fmt;

use qrcodegen_no_heap::{QrCode as Generator, QrCodeEcc, Version};

/// Largest QR version produced (77 × 77 modules). An otpauth URI with a 32-character issuer and
/// account fits easily at [`Ecc::Medium`].
pub const MAX_VERSION: u8 = 15;
/// Widest quiet zone [`QrCode::rows`] draws, in modules (the standard asks for 4).
pub const MAX_QUIET: u32 = 64;

const BUFFER_LEN: usize = Version::new(MAX_VERSION).buffer_len();

/// The mask: chosen by `qrcodegen` (all eight tried, the lowest penalty kept). In fuzz builds
/// only, always mask 0: the choice is the library's own (tested upstream) and trying eight
/// masks was nearly all of each fuzz execution, while what the fuzz target checks here (sizes,
/// versions, `module`, `rows`) does not depend on the mask.
#[cfg(not(fuzzing))]
const MASK: Option<qrcodegen_no_heap::Mask> = None;
#[cfg(fuzzing)]
const MASK: Option<qrcodegen_no_heap::Mask> = Some(qrcodegen_no_heap::Mask::new(0));

/// Errors from this module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum QrError {
    /// The text does not fit in a QR code of version [`MAX_VERSION`] at the requested level.
    TooLong,
    /// The text is empty.
    InvalidInput,
}

impl fmt::Display for QrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLong => f.write_str("text too long for a QR code"),
            Self::InvalidInput => f.write_str("nothing to put in a QR code"),
        }
    }
}

impl core::error::Error for QrError {}

/// Error correction level: the share of the symbol that may be damaged and still decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Ecc {
    /// About 7 %.
    Low,
    /// About 15 % (the usual choice for screens).
    #[default]
    Medium,
    /// About 25 %.
    Quartile,
    /// About 30 %.
    High,
}

impl From<Ecc> for QrCodeEcc {
    fn from(ecc: Ecc) -> Self {
        match ecc {
            Ecc::Low => QrCodeEcc::Low,
            Ecc::Medium => QrCodeEcc::Medium,
            Ecc::Quartile => QrCodeEcc::Quartile,
            Ecc::High => QrCodeEcc::High,
        }
    }
}

/// A QR code symbol: `size × size` modules, one bit each, dark = `true`.
#[derive(Clone, PartialEq, Eq)]
pub struct QrCode {
    modules: [u8; BUFFER_LEN],
    size: u8,
}

impl QrCode {
    /// Encodes `text` (numeric, alphanumeric or byte mode, whichever is shortest) in the smallest
    /// version up to [`MAX_VERSION`], raising the error correction level when that is free.
    pub fn encode_text(text: &str, ecc: Ecc) -> Result<QrCode, QrError> {
        if text.is_empty() {
            return Err(QrError::InvalidInput);
        }
        let mut temp = [0u8; BUFFER_LEN];
        let mut out = [0u8; BUFFER_LEN];
        let generated = Generator::encode_text(
            text,
            &mut temp,
            &mut out,
            ecc.into(),
            Version::MIN,
            Version::new(MAX_VERSION),
            MASK,
            true,
        )
        .map_err(|_| QrError::TooLong)?;
        let size = u8::try_from(generated.size()).map_err(|_| QrError::TooLong)?;
        let mut code = QrCode {
            modules: [0; BUFFER_LEN],
            size,
        };
        for y in 0..generated.size() {
            for x in 0..generated.size() {
                if generated.get_module(x, y) {
                    code.set(x, y);
                }
            }
        }
        Ok(code)
    }

    /// Bit index of an in-range module.
    fn index(&self, x: i32, y: i32) -> Option<usize> {
        let size = i32::from(self.size);
        if !(0..size).contains(&x) || !(0..size).contains(&y) {
            return None;
        }
        usize::try_from(y.checked_mul(size)?.checked_add(x)?).ok()
    }

    fn set(&mut self, x: i32, y: i32) {
        if let Some(i) = self.index(x, y)
            && let Some(byte) = self.modules.get_mut(i / 8)
        {
            *byte |= 1 << (i % 8);
        }
    }

    /// Modules per side (21 for version 1, 4 more per version).
    pub fn size(&self) -> u32 {
        u32::from(self.size)
    }

    /// The version (1..=[`MAX_VERSION`]).
    pub fn version(&self) -> u8 {
        self.size.saturating_sub(17) / 4
    }

    /// Whether the module at (`x`, `y`) is dark; (0, 0) is the top-left corner and anything
    /// outside the symbol is light.
    pub fn module(&self, x: i32, y: i32) -> bool {
        self.index(x, y)
            .and_then(|i| self.modules.get(i / 8).map(|byte| byte >> (i % 8) & 1 == 1))
            .unwrap_or(false)
    }

    /// The rows of the symbol with a light border of `quiet` modules (at most [`MAX_QUIET`]) on
    /// every side, top to bottom; each row yields its modules left to right.
    pub fn rows(&self, quiet: u32) -> Rows<'_> {
        let quiet = i32::try_from(quiet.min(MAX_QUIET)).unwrap_or(0);
        Rows {
            code: self,
            quiet,
            y: -quiet,
        }
    }
}

impl fmt::Debug for QrCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QrCode")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// Iterator over the rows of a [`QrCode`] with its quiet zone, from [`QrCode::rows`].
#[derive(Debug, Clone)]
pub struct Rows<'a> {
    code: &'a QrCode,
    quiet: i32,
    y: i32,
}

impl<'a> Iterator for Rows<'a> {
    type Item = Row<'a>;

    fn next(&mut self) -> Option<Row<'a>> {
        let end = i32::from(self.code.size).saturating_add(self.quiet);
        if self.y >= end {
            return None;
        }
        let row = Row {
            code: self.code,
            y: self.y,
            x: -self.quiet,
            end,
        };
        self.y = self.y.saturating_add(1);
        Some(row)
    }
}

/// One row of a [`QrCode`] with its quiet zone: `true` for each dark module, left to right.
#[derive(Debug, Clone)]
pub struct Row<'a> {
    code: &'a QrCode,
    y: i32,
    x: i32,
    end: i32,
}

impl Row<'_> {
    /// The row's y coordinate in symbol coordinates (negative inside the top quiet zone).
    pub fn y(&self) -> i32 {
        self.y
    }
}

impl Iterator for Row<'_> {
    type Item = bool;

    fn next(&mut self) -> Option<bool> {
        if self.x >= self.end {
            return None;
        }
        let dark = self.code.module(self.x, self.y);
        self.x = self.x.saturating_add(1);
        Some(dark)
    }
}
