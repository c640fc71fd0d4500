//! A small ChatBox client firmware, to measure what the core costs in flash.
//!
//! It links and runs, on fixed inputs from the protocol's known-answer vectors, what an embedded
//! client does: the Noise NX client handshake, sealing and opening transport records, TOTP
//! generation and verification, and the QR code of an otpauth URI. Inputs go through
//! `black_box` so nothing is computed at compile time, and every result is checked and logged, so
//! nothing is optimised away. Exits 0 when everything matches, 1 otherwise.
#![no_std]
#![no_main]

use core::hint::black_box;

use chatbox_core::otp::{Algorithm, Totp, otpauth_uri};
use chatbox_core::qr::{Ecc, QrCode};
use chatbox_core::session::{Event, Input, Session};
use chatbox_embedded::{exit, vectors as v};
use cortex_m_rt::entry;

/// Records one check, logging it.
fn check(ok: bool, what: &str, failures: &mut u32) {
    if ok {
        defmt::println!("ok   {=str}", what);
    } else {
        defmt::println!("FAIL {=str}", what);
        *failures += 1;
    }
}

/// Handshake with the vector server, then a Ping out and its Pong back.
fn session(failures: &mut u32) {
    let mut client = Session::client(black_box(v::CLIENT_EPHEMERAL_SECRET));
    let mut out = [0u8; 64];
    let n = client.poll_transmit(&mut out).unwrap_or(0);
    let message1 = out.get(2..n).unwrap_or_default();
    check(
        message1 == v::MESSAGE1_BODY,
        "handshake message 1",
        failures,
    );

    let mut rx = [0u8; 2 + v::MESSAGE2_BODY.len()];
    rx[..2].copy_from_slice(&(v::MESSAGE2_BODY.len() as u16).to_be_bytes());
    rx[2..].copy_from_slice(&black_box(v::MESSAGE2_BODY));
    let rx_len = rx.len();
    let handshake = client.handle_input(&mut rx);
    check(
        matches!(handshake, Ok(Input::Handshake { consumed }) if consumed == rx_len),
        "handshake message 2",
        failures,
    );
    check(
        client.poll_event() == Some(Event::Established) && client.is_established(),
        "established",
        failures,
    );
    check(
        client.remote_static() == Some(&v::SERVER_STATIC_PUBLIC),
        "server static key",
        failures,
    );

    let mut record = [0u8; 64];
    let sealed = client.seal(&black_box(v::C2S_0_PLAINTEXT), &mut record);
    let frame = sealed
        .ok()
        .and_then(|n| record.get(..n))
        .unwrap_or_default();
    check(frame == v::C2S_0_FRAME, "seal Ping", failures);

    let mut rx = black_box(v::S2C_0_FRAME);
    let opened = client.handle_input(&mut rx);
    check(
        matches!(opened, Ok(Input::Record { plaintext, .. }) if plaintext == v::S2C_0_PLAINTEXT),
        "open Pong",
        failures,
    );
}

/// RFC 6238 appendix B, SHA-1, T = 59 s (8-digit code 94287082, so 287082 with 6 digits).
fn totp(failures: &mut u32) {
    let Ok(totp) = Totp::sha1_default(black_box(b"12345678901234567890")) else {
        check(false, "TOTP secret", failures);
        return;
    };
    let now = black_box(59);
    let code = totp.generate(now);
    check(
        matches!(&code, Ok(c) if c.as_str() == "287082"),
        "TOTP generate",
        failures,
    );
    check(
        totp.verify("287082", now, None) == Some(1),
        "TOTP verify",
        failures,
    );
    check(
        totp.verify("287082", now, Some(1)).is_none(),
        "TOTP reuse refused",
        failures,
    );
}

/// The otpauth URI of a fresh registration, as a QR code (what a device with a display shows).
fn qr(failures: &mut u32) {
    let mut buf = [0u8; 256];
    let secret = black_box(*b"12345678901234567890");
    let Ok(uri) = otpauth_uri(
        &mut buf,
        "ChatBox",
        "alice",
        &secret,
        Algorithm::Sha1,
        6,
        30,
    ) else {
        check(false, "otpauth URI", failures);
        return;
    };
    let Ok(code) = QrCode::encode_text(black_box(uri), Ecc::Medium) else {
        check(false, "QR encode", failures);
        return;
    };
    let mut dark = 0u32;
    for row in code.rows(4) {
        for module in row {
            dark += u32::from(module);
        }
    }
    defmt::println!(
        "QR version {=u8}, {=u32} modules a side, {=u32} dark",
        code.version(),
        code.size(),
        dark
    );
    check(code.size() == 45 && dark > 0, "QR encode", failures);
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    chatbox_embedded::panic_location_only(info)
}

#[entry]
fn main() -> ! {
    let mut failures = 0;
    session(&mut failures);
    totp(&mut failures);
    qr(&mut failures);
    if failures == 0 {
        defmt::println!("firmware: all checks passed");
        exit(0)
    } else {
        defmt::println!("firmware: {=u32} checks failed", failures);
        exit(1)
    }
}
