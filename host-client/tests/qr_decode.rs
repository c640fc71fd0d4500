//! The QR code drawn for the terminal decodes back to the otpauth URI, in both styles: the
//! rendered half-block lines are turned back into a bitmap and read with `rqrr`.

use chatbox_client::qr_view::{DARK_ON_LIGHT, QUIET_ZONE, QrStyle, RESET, render_text};
use chatbox_client::sanitize::sanitize;

const URI: &str = "otpauth://totp/ChatBox:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=ChatBox&algorithm=SHA1&digits=6&period=30";
const PIXELS_PER_MODULE: usize = 4;

/// Rendered lines → rows of modules (`true` = dark).
fn modules(lines: &[String], style: QrStyle) -> Vec<Vec<bool>> {
    let mut rows = Vec::new();
    for line in lines {
        let text = match style {
            QrStyle::Color => {
                assert!(
                    line.starts_with(DARK_ON_LIGHT),
                    "every line is forced dark-on-light"
                );
                assert!(line.ends_with(RESET));
                sanitize(line)
            }
            QrStyle::Plain => {
                assert!(!line.contains('\u{1b}'), "no escapes with --no-color");
                line.clone()
            }
        };
        let (mut top, mut bottom) = (Vec::new(), Vec::new());
        for c in text.chars() {
            // Which halves are drawn in the foreground colour.
            let (t, b) = match c {
                '█' => (true, true),
                '▀' => (true, false),
                '▄' => (false, true),
                ' ' => (false, false),
                other => panic!("unexpected character {other:?}"),
            };
            // Colour: foreground is black (dark). Plain: foreground is the light text colour.
            let dark = |ink: bool| if style == QrStyle::Color { ink } else { !ink };
            top.push(dark(t));
            bottom.push(dark(b));
        }
        rows.push(top);
        rows.push(bottom);
    }
    rows
}

fn decode(rows: &[Vec<bool>]) -> String {
    let h = rows.len() * PIXELS_PER_MODULE;
    let w = rows[0].len() * PIXELS_PER_MODULE;
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| {
        if rows[y / PIXELS_PER_MODULE][x / PIXELS_PER_MODULE] {
            0
        } else {
            255
        }
    });
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "exactly one QR code found");
    let (_meta, text) = grids[0].decode().expect("decodes");
    text
}

fn check(style: QrStyle) {
    let lines = render_text(URI, style).expect("fits in a QR code");
    let rows = modules(&lines, style);
    // 4-module light quiet zone on every side.
    let q = QUIET_ZONE as usize;
    let side = rows[0].len();
    for (y, row) in rows.iter().enumerate() {
        assert_eq!(row.len(), side);
        for (x, &dark) in row.iter().enumerate() {
            if y < q || x < q || x >= side - q || y >= side - q {
                assert!(!dark, "quiet zone module ({x},{y}) is light");
            }
        }
    }
    assert_eq!(decode(&rows), URI);
}

#[test]
fn colour_rendering_decodes_to_the_uri() {
    check(QrStyle::Color);
}

#[test]
fn no_color_rendering_decodes_to_the_uri() {
    check(QrStyle::Plain);
}

#[test]
fn plain_rendering_is_the_inverse_of_colour_rendering() {
    let colour = render_text(URI, QrStyle::Color).unwrap();
    let plain = render_text(URI, QrStyle::Plain).unwrap();
    assert_eq!(
        modules(&colour, QrStyle::Color),
        modules(&plain, QrStyle::Plain)
    );
    let flip = |c| match c {
        '█' => ' ',
        ' ' => '█',
        '▀' => '▄',
        '▄' => '▀',
        o => o,
    };
    for (c, p) in colour.iter().zip(&plain) {
        let c: String = sanitize(c).chars().map(flip).collect();
        assert_eq!(&c, p);
    }
}
