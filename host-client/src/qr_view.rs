//! Drawing a QR code in a terminal so a phone can scan it.
//!
//! Each character cell shows two modules stacked vertically with the Unicode half blocks
//! `▀ ▄ █` and space, around a 4-module light quiet zone (what the standard asks for).
//!
//! - [`QrStyle::Color`] (default): every line is drawn black on white (`ESC[30;47m`, reset at
//!   the end of the line), so the code is dark-on-light whatever the terminal's theme; a block
//!   character is a *dark* pair of modules.
//! - [`QrStyle::Plain`] (`--no-color`): no escape sequences, and a block character is a *light*
//!   pair of modules, so the code scans on the usual light-text-on-dark-background terminal.
//!   On a light-background terminal it shows inverted: use the colour mode there.

use chatbox_core::qr::{Ecc, QrCode, QrError};

/// The quiet zone, in modules.
pub const QUIET_ZONE: u32 = 4;
/// Start of every line in colour mode: black foreground on white background.
pub const DARK_ON_LIGHT: &str = "\x1b[30;47m";
/// End of every line in colour mode.
pub const RESET: &str = "\x1b[0m";

/// How to draw the modules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QrStyle {
    /// Forced black on white with ANSI colours; blocks are dark modules.
    Color,
    /// No colours; blocks are light modules (for dark-background terminals).
    Plain,
}

/// The character for a cell whose upper module is `top` and lower module `bottom`, where
/// `true` means "drawn in the foreground colour".
fn cell(top: bool, bottom: bool) -> char {
    match (top, bottom) {
        (true, true) => '█',
        (true, false) => '▀',
        (false, true) => '▄',
        (false, false) => ' ',
    }
}

/// Encodes `text` (an otpauth URI) and draws it; one string per terminal line.
pub fn render_text(text: &str, style: QrStyle) -> Result<Vec<String>, QrError> {
    QrCode::encode_text(text, Ecc::Medium).map(|code| render(&code, style))
}

/// Draws `code` with its quiet zone; one string per terminal line.
#[must_use]
pub fn render(code: &QrCode, style: QrStyle) -> Vec<String> {
    let rows: Vec<Vec<bool>> = code.rows(QUIET_ZONE).map(Iterator::collect).collect();
    let width = rows.first().map_or(0, Vec::len);
    // In colour mode the foreground (block) is dark; in plain mode it is light.
    let ink = |dark: bool| match style {
        QrStyle::Color => dark,
        QrStyle::Plain => !dark,
    };
    rows.chunks(2)
        .map(|pair| {
            let top = pair.first();
            let bottom = pair.get(1);
            let mut line = String::with_capacity(width * 3 + 16);
            if style == QrStyle::Color {
                line.push_str(DARK_ON_LIGHT);
            }
            for x in 0..width {
                // A missing lower row (odd height) is more quiet zone: light.
                let t = top.and_then(|r| r.get(x)).copied().unwrap_or(false);
                let b = bottom.and_then(|r| r.get(x)).copied().unwrap_or(false);
                line.push(cell(ink(t), ink(b)));
            }
            if style == QrStyle::Color {
                line.push_str(RESET);
            }
            line
        })
        .collect()
}

/// The `secret` parameter of an otpauth URI (Base32), if there is one.
#[must_use]
pub fn otpauth_secret(uri: &str) -> Option<&str> {
    let query = uri.split_once('?')?.1;
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| k.eq_ignore_ascii_case("secret"))
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

/// The secret in groups of four for typing by hand (`JBSW Y3DP …`).
#[must_use]
pub fn grouped_secret(secret_b32: &str) -> Option<String> {
    let mut buf = vec![0u8; secret_b32.len() * 2 + 1];
    chatbox_core::encoding::base32_grouped(secret_b32, &mut buf)
        .ok()
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    const URI: &str = "otpauth://totp/ChatBox:alice?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=ChatBox&algorithm=SHA1&digits=6&period=30";

    #[test]
    fn shape_and_quiet_zone() {
        let code = QrCode::encode_text(URI, Ecc::Medium).unwrap();
        let side = code.size() as usize + 2 * QUIET_ZONE as usize;
        let plain = render(&code, QrStyle::Plain);
        assert_eq!(plain.len(), side.div_ceil(2));
        for line in &plain {
            assert_eq!(line.chars().count(), side);
            assert!(line.chars().all(|c| " ▀▄█".contains(c)));
        }
        // The quiet zone is light: full blocks in plain mode (two rows per line).
        assert!(plain[0].chars().all(|c| c == '█'));
        assert!(plain[1].chars().all(|c| c == '█'));
        assert!(plain[2].starts_with("████"));
        let color = render(&code, QrStyle::Color);
        assert_eq!(color.len(), plain.len());
        for line in &color {
            assert!(line.starts_with(DARK_ON_LIGHT) && line.ends_with(RESET));
        }
        let inner = color[0].strip_prefix(DARK_ON_LIGHT).unwrap();
        assert!(inner.strip_suffix(RESET).unwrap().chars().all(|c| c == ' '));
    }

    #[test]
    fn secret_from_uri() {
        assert_eq!(
            otpauth_secret(URI),
            Some("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
        );
        assert_eq!(otpauth_secret("otpauth://totp/x?issuer=a"), None);
        assert_eq!(otpauth_secret("no query"), None);
        assert_eq!(
            grouped_secret("JBSWY3DPEHPK3PXP").as_deref(),
            Some("JBSW Y3DP EHPK 3PXP")
        );
        assert_eq!(grouped_secret("not base32!"), None);
    }
}
