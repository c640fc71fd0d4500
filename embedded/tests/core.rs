//! chatbox-core's known answers and a full in-memory session, on a Cortex-M4F (QEMU
//! mps2-an386), with defmt-test. Run by `ci/qemu-arm.sh`; by hand:
//! `cargo test --no-run` then `qemu-system-arm … -kernel <test elf> | defmt-print -e <test elf>`.
#![no_std]
#![no_main]

use chatbox_core::frame;
use chatbox_core::noise::StaticKeypair;
use chatbox_core::session::{Event, Input, Session, SessionError};
use chatbox_embedded as _;
use chatbox_embedded::vectors as v;
use defmt::{assert, assert_eq, panic};

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    chatbox_embedded::panic_with_message(info)
}

// Helpers live outside the test module: defmt-test allows only tests (and init/teardown) there.

/// Frames `body` into `buf`, returns the frame.
fn framed<'a>(body: &[u8], buf: &'a mut [u8]) -> &'a mut [u8] {
    let n = frame::encode(body, buf).unwrap();
    &mut buf[..n]
}

/// Feeds one whole frame to `session`; returns the plaintext if it was a record.
fn deliver<'a>(session: &mut Session, bytes: &'a mut [u8]) -> Result<&'a [u8], SessionError> {
    let len = bytes.len();
    match session.handle_input(bytes)? {
        Input::Record {
            consumed,
            plaintext,
        } => {
            assert_eq!(consumed, len);
            Ok(plaintext)
        }
        Input::Handshake { consumed } => {
            assert_eq!(consumed, len);
            Ok(&[])
        }
        Input::Incomplete { needed } => panic!("incomplete frame, {} more needed", needed),
    }
}

/// Client and server from the vector keys, handshake done; checks both messages byte for byte.
fn established_pair() -> (Session, Session) {
    let server_key = StaticKeypair::from_secret(v::SERVER_STATIC_SECRET);
    let mut client = Session::client(v::CLIENT_EPHEMERAL_SECRET);
    let mut server =
        Session::server(&server_key, v::SERVER_EPHEMERAL_SECRET, &v::SERVER_PAYLOAD).unwrap();
    let mut wire = [0u8; 256];

    assert_eq!(server.poll_transmit(&mut wire).unwrap(), 0);
    let n = client.poll_transmit(&mut wire).unwrap();
    assert_eq!(&wire[2..n], &v::MESSAGE1_BODY[..]);
    assert_eq!(client.poll_transmit(&mut wire).unwrap(), 0);
    deliver(&mut server, &mut wire[..n]).unwrap();

    let n = server.poll_transmit(&mut wire).unwrap();
    assert_eq!(&wire[2..n], &v::MESSAGE2_BODY[..]);
    assert_eq!(server.poll_event(), Some(Event::Established));
    deliver(&mut client, &mut wire[..n]).unwrap();
    assert_eq!(client.poll_event(), Some(Event::Established));

    assert!(client.is_established() && server.is_established());
    assert_eq!(client.remote_static(), Some(&v::SERVER_STATIC_PUBLIC));
    assert_eq!(client.handshake_payload(), &v::SERVER_PAYLOAD[..]);
    assert_eq!(client.handshake_hash(), &v::HANDSHAKE_HASH);
    assert_eq!(server.handshake_hash(), &v::HANDSHAKE_HASH);
    (client, server)
}

#[defmt_test::tests]
mod tests {
    use chatbox_core::buffer::BufferTooSmall;
    use chatbox_core::crypto::cipher;
    use chatbox_core::crypto::dh::x25519;
    use chatbox_core::crypto::hash::{hmac_sha256, sha256};
    use chatbox_core::crypto::hkdf::{hkdf2, hkdf3};
    use chatbox_core::encoding::{base32_decode, base32_encode};
    use chatbox_core::frame::{self, Decoded, FrameError, MAX_FRAME_LEN};
    use chatbox_core::noise::StaticKeypair;
    use chatbox_core::otp::{Algorithm, Totp, hotp, otpauth_uri};
    use chatbox_core::password::{MIN_ITERATIONS, hash_password, pbkdf2_sha256, verify_password};
    use chatbox_core::qr::{Ecc, QrCode, QrError};
    use chatbox_core::session::{Input, RECORD_OVERHEAD, Session, SessionError};
    use chatbox_embedded::{hex, vectors as v};
    use defmt::{assert, assert_eq, panic};

    use super::{deliver, established_pair, framed};

    // ---- framing -------------------------------------------------------------------------

    #[test]
    fn frame_round_trip_and_incremental_decode() {
        let mut buf = [0u8; 16];
        let n = frame::encode(b"hello", &mut buf).unwrap();
        assert_eq!(&buf[..n], b"\x00\x05hello");
        for cut in 0..n {
            match frame::decode(&buf[..cut]).unwrap() {
                Decoded::Incomplete { needed } => assert!(needed >= 1 && cut + needed <= n),
                Decoded::Frame(..) => panic!("a frame from {} of {} bytes", cut, n),
            }
        }
        match frame::decode(&buf[..n]).unwrap() {
            Decoded::Frame(body, consumed) => {
                assert_eq!(body, b"hello");
                assert_eq!(consumed, n);
            }
            Decoded::Incomplete { .. } => panic!("incomplete"),
        }
    }

    #[test]
    fn frame_limits() {
        assert_eq!(MAX_FRAME_LEN, 16_400);
        assert_eq!(frame::decode(&[0, 0]).err(), Some(FrameError::Empty));
        assert_eq!(
            frame::decode(&[0x40, 0x11]).err(),
            Some(FrameError::TooLong { len: 16_401 })
        );
        assert!(matches!(
            frame::decode(&[0x40, 0x10]),
            Ok(Decoded::Incomplete { needed: 16_400 })
        ));
        assert_eq!(
            frame::encode(b"abc", &mut [0u8; 4]),
            Err(FrameError::InsufficientSize(BufferTooSmall { required: 5 }))
        );
        assert_eq!(frame::encode(b"", &mut [0u8; 4]), Err(FrameError::Empty));
    }

    // ---- primitives ----------------------------------------------------------------------

    #[test]
    fn sha256_and_hmac_rfc4231() {
        assert_eq!(
            sha256(b"abc"),
            hex::<32>("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        // RFC 4231 test case 1 and 2.
        assert_eq!(
            hmac_sha256(&[0x0b; 20], &[b"Hi There"]),
            hex::<32>("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        );
        assert_eq!(
            hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]),
            hex::<32>("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        );
    }

    #[test]
    fn noise_hkdf_known_answer() {
        let (a, b, c) = hkdf3(&v::HKDF_CHAINING_KEY, &v::HKDF_IKM);
        assert_eq!(a, v::HKDF_OUT1);
        assert_eq!(b, v::HKDF_OUT2);
        assert_eq!(c, v::HKDF_OUT3);
        let (a2, b2) = hkdf2(&v::HKDF_CHAINING_KEY, &v::HKDF_IKM);
        assert_eq!((a2, b2), (a, b));
    }

    #[test]
    fn cipher_known_answer_and_tamper() {
        let mut out = [0u8; 64];
        let n = cipher::encrypt(
            &v::CIPHER_K,
            v::CIPHER_N,
            &v::CIPHER_AD,
            &v::CIPHER_PLAINTEXT,
            &mut out,
        )
        .unwrap();
        assert_eq!(&out[..n], &v::CIPHER_OUTPUT[..]);
        let mut pt = [0u8; 64];
        let m =
            cipher::decrypt(&v::CIPHER_K, v::CIPHER_N, &v::CIPHER_AD, &out[..n], &mut pt).unwrap();
        assert_eq!(&pt[..m], &v::CIPHER_PLAINTEXT[..]);
        out[0] ^= 1;
        assert!(
            cipher::decrypt(&v::CIPHER_K, v::CIPHER_N, &v::CIPHER_AD, &out[..n], &mut pt).is_err()
        );
    }

    #[test]
    fn x25519_rfc7748_and_static_key() {
        assert_eq!(
            x25519(
                hex("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4"),
                hex("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c"),
            ),
            hex::<32>("c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552")
        );
        let key = StaticKeypair::from_secret(v::SERVER_STATIC_SECRET);
        assert_eq!(key.public(), v::SERVER_STATIC_PUBLIC);
        assert_eq!(key.fingerprint().as_str(), v::SERVER_FINGERPRINT);
    }

    // ---- session -------------------------------------------------------------------------

    #[test]
    fn handshake_and_vector_records() {
        let (mut client, mut server) = established_pair();
        let mut wire = [0u8; 128];
        for (plaintext, expected) in [
            (&v::C2S_0_PLAINTEXT[..], &v::C2S_0_FRAME[..]),
            (&v::C2S_1_PLAINTEXT[..], &v::C2S_1_FRAME[..]),
            (&v::C2S_2_PLAINTEXT[..], &v::C2S_2_FRAME[..]),
        ] {
            let n = client.seal(plaintext, &mut wire).unwrap();
            assert_eq!(n, plaintext.len() + RECORD_OVERHEAD);
            assert_eq!(&wire[..n], expected);
            assert_eq!(deliver(&mut server, &mut wire[..n]).unwrap(), plaintext);
        }
        let n = server.seal(&v::S2C_0_PLAINTEXT, &mut wire).unwrap();
        assert_eq!(&wire[..n], &v::S2C_0_FRAME[..]);
        assert_eq!(
            deliver(&mut client, &mut wire[..n]).unwrap(),
            &v::S2C_0_PLAINTEXT[..]
        );
        assert_eq!(client.epochs(), (3, 1));
        assert_eq!(server.epochs(), (1, 3));
    }

    #[test]
    fn records_both_ways_then_tampered_record_rejected() {
        let (mut client, mut server) = established_pair();
        let mut wire = [0u8; 1100];
        let mut big = [0u8; 1024];
        for (i, b) in big.iter_mut().enumerate() {
            *b = i as u8;
        }
        for round in 0..4u8 {
            let msg = [round; 33];
            let n = client.seal(&msg, &mut wire).unwrap();
            assert_eq!(deliver(&mut server, &mut wire[..n]).unwrap(), &msg[..]);
            let n = server.seal(&big, &mut wire).unwrap();
            assert_eq!(deliver(&mut client, &mut wire[..n]).unwrap(), &big[..]);
        }
        // Delivered in pieces: nothing consumed until the frame is whole.
        let n = client.seal(b"split delivery", &mut wire).unwrap();
        match server.handle_input(&mut wire[..5]).unwrap() {
            Input::Incomplete { needed } => assert_eq!(needed, n - 5),
            _ => panic!("a partial frame was consumed"),
        }
        assert_eq!(
            deliver(&mut server, &mut wire[..n]).unwrap(),
            b"split delivery"
        );

        // One flipped bit in the ciphertext: the record fails and the session is dead.
        let n = client.seal(b"attack at dawn", &mut wire).unwrap();
        wire[4] ^= 0x80;
        assert_eq!(
            server.handle_input(&mut wire[..n]).err(),
            Some(SessionError::BadRecord)
        );
        assert_eq!(server.error(), Some(SessionError::BadRecord));
        let n = client.seal(b"too late", &mut wire).unwrap();
        assert!(server.handle_input(&mut wire[..n]).is_err());
        assert!(server.seal(b"x", &mut wire).is_err());
    }

    #[test]
    fn replayed_record_and_bad_hello_rejected() {
        let (mut client, mut server) = established_pair();
        let mut wire = [0u8; 64];
        let mut copy = [0u8; 64];
        let n = client.seal(b"once", &mut wire).unwrap();
        copy[..n].copy_from_slice(&wire[..n]);
        deliver(&mut server, &mut wire[..n]).unwrap();
        assert_eq!(
            server.handle_input(&mut copy[..n]).err(),
            Some(SessionError::BadRecord)
        );

        // Message 1 with protocol version 2: the server refuses it.
        let key = StaticKeypair::from_secret(v::SERVER_STATIC_SECRET);
        let mut server = Session::server(&key, v::SERVER_EPHEMERAL_SECRET, b"").unwrap();
        let mut hello = v::MESSAGE1_BODY;
        hello[32] = 2;
        let mut buf = [0u8; 64];
        assert!(server.handle_input(framed(&hello, &mut buf)).is_err());
        assert!(!server.is_established());
    }

    // ---- TOTP, Base32 --------------------------------------------------------------------

    #[test]
    fn hotp_rfc4226() {
        let expected = [
            755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489,
        ];
        for (counter, code) in expected.into_iter().enumerate() {
            assert_eq!(
                hotp(b"12345678901234567890", counter as u64, 6, Algorithm::Sha1).unwrap(),
                code
            );
        }
    }

    #[test]
    fn totp_rfc6238_sha1() {
        let totp = Totp::new(b"12345678901234567890", Algorithm::Sha1, 8, 30).unwrap();
        for (t, code) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(totp.generate(t).unwrap().as_str(), code);
        }
        let totp = Totp::sha1_default(b"12345678901234567890").unwrap();
        assert_eq!(totp.generate(59).unwrap().as_str(), "287082");
        assert_eq!(totp.verify("287082", 59, None), Some(1));
        assert_eq!(totp.verify("287082", 89, None), Some(1)); // one step late: accepted
        assert_eq!(totp.verify("287082", 59, Some(1)), None); // reused: refused
        assert_eq!(totp.verify("287083", 59, None), None);
        assert_eq!(totp.verify("28708", 59, None), None);
    }

    #[test]
    fn base32_rfc4648() {
        let mut enc = [0u8; 16];
        let mut dec = [0u8; 16];
        for (raw, b32) in [
            (&b""[..], ""),
            (b"f", "MY"),
            (b"fo", "MZXQ"),
            (b"foo", "MZXW6"),
            (b"foob", "MZXW6YQ"),
            (b"fooba", "MZXW6YTB"),
            (b"foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32_encode(raw, &mut enc).unwrap(), b32);
            assert_eq!(base32_decode(b32, &mut dec).unwrap(), raw);
        }
        assert_eq!(base32_decode("mzxw6ytboi", &mut dec).unwrap(), b"foobar");
        assert!(base32_decode("MZXW1", &mut dec).is_err());
    }

    // ---- QR, PBKDF2 ----------------------------------------------------------------------

    #[test]
    fn qr_of_an_otpauth_uri() {
        let mut buf = [0u8; 256];
        let uri = otpauth_uri(
            &mut buf,
            "ChatBox",
            "alice",
            b"12345678901234567890",
            Algorithm::Sha1,
            6,
            30,
        )
        .unwrap();
        assert_eq!(
            uri,
            "otpauth://totp/ChatBox:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=ChatBox&algorithm=SHA1&digits=6&period=30"
        );
        let qr = QrCode::encode_text(uri, Ecc::Medium).unwrap();
        // 117 bytes in byte mode: version 7 at level M (capacity 122), 45 × 45 modules.
        assert_eq!(qr.version(), 7);
        assert_eq!(qr.size(), 45);
        let s = qr.size() as i32;
        // Finder patterns in three corners: a dark 7×7 ring, a light ring, a dark 3×3 centre.
        for (ox, oy) in [(0, 0), (s - 7, 0), (0, s - 7)] {
            for dy in 0..7 {
                for dx in 0..7 {
                    let ring = dx == 0 || dy == 0 || dx == 6 || dy == 6;
                    let centre = (2..=4).contains(&dx) && (2..=4).contains(&dy);
                    assert_eq!(qr.module(ox + dx, oy + dy), ring || centre);
                }
            }
        }
        // Timing patterns alternate, starting dark; the fixed dark module; light quiet zone.
        for i in 8..s - 8 {
            assert_eq!(qr.module(i, 6), i % 2 == 0);
            assert_eq!(qr.module(6, i), i % 2 == 0);
        }
        assert!(qr.module(8, s - 8));
        assert!(!qr.module(-1, 0) && !qr.module(s, s - 1) && !qr.module(0, -4));
        // Rows with a 4-module quiet zone: (size + 8)², the dark count matches module().
        let mut rows = 0;
        let mut dark = 0;
        for row in qr.rows(4) {
            rows += 1;
            let mut width = 0;
            for m in row {
                width += 1;
                dark += usize::from(m);
            }
            assert_eq!(width, 53);
        }
        assert_eq!(rows, 53);
        let direct = (0..s)
            .flat_map(|y| (0..s).map(move |x| (x, y)))
            .filter(|&(x, y)| qr.module(x, y))
            .count();
        assert_eq!(dark, direct);
        assert!(dark > 45 * 45 / 3 && dark < 45 * 45 * 2 / 3);

        let long = [b'a'; 1500];
        let long = core::str::from_utf8(&long).unwrap();
        assert_eq!(
            QrCode::encode_text(long, Ecc::Medium).err(),
            Some(QrError::TooLong)
        );
    }

    #[test]
    fn pbkdf2_rfc7914_and_phc_round_trip() {
        // RFC 7914 §11: PBKDF2-HMAC-SHA256, P = "passwd", S = "salt", c = 1, dkLen = 64.
        let mut dk = [0u8; 64];
        pbkdf2_sha256(b"passwd", b"salt", 1, &mut dk).unwrap();
        assert_eq!(
            dk,
            hex::<64>(concat!(
                "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc",
                "49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783",
            ))
        );
        assert!(pbkdf2_sha256(b"passwd", b"salt", 0, &mut dk).is_err());

        let mut phc = [0u8; 128];
        let phc = hash_password(b"correct horse", &[7; 16], MIN_ITERATIONS, &mut phc).unwrap();
        assert!(phc.starts_with("$pbkdf2-sha256$i=10000,l=32$"));
        assert_eq!(verify_password(b"correct horse", phc), Ok(true));
        assert_eq!(verify_password(b"correct horsf", phc), Ok(false));
    }
}
