//! RFC 4226 / RFC 6238 vectors, the verification window, reuse protection and otpauth URIs.

// A test crate: a panic is how a test reports failure.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use chatbox_core::buffer::BufferTooSmall;
use chatbox_core::otp::{
    Algorithm, OtpError, SECRET_LEN, Totp, format_code, hotp, otpauth_uri, parse_code,
};
use proptest::prelude::*;
use serde_json::Value;

fn data() -> Value {
    serde_json::from_str(include_str!("data/otp.json")).unwrap()
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap()
}

fn n(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap()
}

#[test]
fn rfc4226_appendix_d() {
    let data = data();
    let table = &data["rfc4226_appendix_d"];
    let secret = s(table, "secret_ascii").as_bytes();
    let vectors = table["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 10);
    for v in vectors {
        let counter = n(v, "counter");
        let truncated = u32::try_from(n(v, "truncated")).unwrap();
        let value = hotp(secret, counter, 6, Algorithm::Sha1).unwrap();
        assert_eq!(
            format_code(value, 6).as_str(),
            s(v, "hotp"),
            "counter {counter}"
        );
        for (digits, modulus) in [(7u8, 10_000_000u32), (8, 100_000_000)] {
            assert_eq!(
                hotp(secret, counter, digits, Algorithm::Sha1).unwrap(),
                truncated % modulus
            );
        }
    }
}

#[test]
fn rfc6238_appendix_b_all_algorithms() {
    let data = data();
    let table = &data["rfc6238_appendix_b"];
    let digits = u8::try_from(n(table, "digits")).unwrap();
    let period = u32::try_from(n(table, "period")).unwrap();
    let vectors = table["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 18);
    for v in vectors {
        let algorithm: Algorithm = s(v, "mode").parse().unwrap();
        let seed = s(&table["seeds_ascii"], s(v, "mode")).as_bytes();
        let time = n(v, "time");
        let totp = Totp::new(seed, algorithm, digits, period).unwrap();
        let step = u64::from_str_radix(s(v, "step"), 16).unwrap();
        assert_eq!(totp.step(time), step);
        let code = totp.generate(time).unwrap();
        assert_eq!(code.as_str(), s(v, "totp"), "{time} {algorithm}");
        assert_eq!(code.to_string(), s(v, "totp"));
        assert_eq!(totp.verify(s(v, "totp"), time, None), Some(step));
    }
}

const SECRET: &[u8; SECRET_LEN] = b"12345678901234567890";
const NOW: u64 = 1_700_000_015;

fn code_at(totp: &Totp, step: u64) -> String {
    totp.generate_at_step(step).unwrap().as_str().to_owned()
}

#[test]
fn verify_window_is_minus_one_to_plus_one() {
    let totp = Totp::sha1_default(SECRET).unwrap();
    let now = totp.step(NOW);
    for offset in [-1i64, 0, 1] {
        let step = now.checked_add_signed(offset).unwrap();
        assert_eq!(totp.verify(&code_at(&totp, step), NOW, None), Some(step));
    }
    for offset in [-3i64, -2, 2, 3] {
        let step = now.checked_add_signed(offset).unwrap();
        assert_eq!(
            totp.verify(&code_at(&totp, step), NOW, None),
            None,
            "{offset}"
        );
    }
}

#[test]
fn used_steps_are_refused() {
    let totp = Totp::sha1_default(SECRET).unwrap();
    let now = totp.step(NOW);
    let current = code_at(&totp, now);
    assert_eq!(totp.verify(&current, NOW, Some(now - 1)), Some(now));
    assert_eq!(totp.verify(&current, NOW, Some(now)), None);
    assert_eq!(totp.verify(&current, NOW, Some(now + 1)), None);
    let previous = code_at(&totp, now - 1);
    assert_eq!(totp.verify(&previous, NOW, Some(now - 1)), None);
    assert_eq!(totp.verify(&previous, NOW, Some(now - 2)), Some(now - 1));
}

#[test]
fn largest_matching_step_wins() {
    let data = data();
    let v = &data["adjacent_step_collision"];
    let totp = Totp::sha1_default(s(v, "secret_ascii").as_bytes()).unwrap();
    let step = n(v, "step");
    let code = s(v, "code");
    assert_eq!(code_at(&totp, step), code);
    assert_eq!(code_at(&totp, step + 1), code);
    let t = step * 30 + 10;
    assert_eq!(totp.verify(code, t, None), Some(step + 1));
    assert_eq!(totp.verify(code, t, Some(step)), Some(step + 1));
    assert_eq!(totp.verify(code, t, Some(step + 1)), None);
}

#[test]
fn step_zero_does_not_underflow() {
    let totp = Totp::sha1_default(SECRET).unwrap();
    assert_eq!(totp.step(5), 0);
    assert_eq!(totp.verify(&code_at(&totp, 0), 5, None), Some(0));
    assert_eq!(totp.verify(&code_at(&totp, 1), 5, None), Some(1));
    assert_eq!(totp.verify(&code_at(&totp, 0), 5, Some(0)), None);
    let far = totp.step(u64::MAX);
    assert_eq!(totp.verify(&code_at(&totp, far), u64::MAX, None), Some(far));
}

#[test]
fn leading_zeros_and_exact_length() {
    // RFC 6238: SHA1, 8 digits, T = 1111111109 gives 07081804.
    let totp = Totp::new(SECRET, Algorithm::Sha1, 8, 30).unwrap();
    let t = 1_111_111_109;
    assert!(totp.verify("07081804", t, None).is_some());
    for bad in [
        "7081804",
        "007081804",
        " 07081804",
        "07081804\n",
        "0708180a",
        "+7081804",
        "０7081804",
    ] {
        assert_eq!(totp.verify(bad, t, None), None, "{bad:?}");
    }
    assert_eq!(format_code(1234, 6).as_str(), "001234");
    assert_eq!(format_code(0, 8).as_str(), "00000000");
    assert_eq!(format_code(123_456_789, 8).as_str(), "23456789");
}

#[test]
fn parse_code_trims_and_checks() {
    assert_eq!(parse_code(" 012345\n", 6).unwrap().as_str(), "012345");
    assert_eq!(
        parse_code("01234567", 8).unwrap(),
        format_code(1_234_567, 8)
    );
    for bad in ["12345", "1234567", "12 345", "abcdef", "", "12345６"] {
        assert_eq!(
            parse_code(bad, 6).unwrap_err(),
            OtpError::InvalidCode,
            "{bad:?}"
        );
    }
    assert_eq!(parse_code("12345", 5).unwrap_err(), OtpError::InvalidDigits);
    assert_ne!(
        parse_code("012345", 6).unwrap(),
        parse_code("012346", 6).unwrap()
    );
    assert_eq!(
        format!("{:?}", parse_code("012345", 6).unwrap()),
        "Code(<redacted>)"
    );
}

#[test]
fn parameters_are_validated() {
    assert_eq!(
        hotp(SECRET, 0, 5, Algorithm::Sha1),
        Err(OtpError::InvalidDigits)
    );
    assert_eq!(
        hotp(SECRET, 0, 9, Algorithm::Sha1),
        Err(OtpError::InvalidDigits)
    );
    assert_eq!(
        hotp(b"", 0, 6, Algorithm::Sha1),
        Err(OtpError::InvalidSecret)
    );
    assert_eq!(
        Totp::new(b"", Algorithm::Sha1, 6, 30).unwrap_err(),
        OtpError::InvalidSecret
    );
    assert_eq!(
        Totp::new(&[1; 65], Algorithm::Sha1, 6, 30).unwrap_err(),
        OtpError::InvalidSecret
    );
    assert_eq!(
        Totp::new(SECRET, Algorithm::Sha1, 6, 0).unwrap_err(),
        OtpError::InvalidPeriod
    );
    assert_eq!(
        Totp::new(SECRET, Algorithm::Sha1, 4, 30).unwrap_err(),
        OtpError::InvalidDigits
    );
    assert!(!format!("{:?}", Totp::sha1_default(SECRET).unwrap()).contains("49"));
}

#[test]
fn algorithm_names() {
    assert_eq!(Algorithm::default(), Algorithm::Sha1);
    for a in [Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512] {
        assert_eq!(a.as_str().parse::<Algorithm>(), Ok(a));
        assert_eq!(a.as_str().to_lowercase().parse::<Algorithm>(), Ok(a));
    }
    assert_eq!("MD5".parse::<Algorithm>(), Err(OtpError::UnknownAlgorithm));
    assert_eq!(
        "SHA-1".parse::<Algorithm>(),
        Err(OtpError::UnknownAlgorithm)
    );
}

#[test]
fn otpauth_uri_exact_strings() {
    let data = data();
    for v in data["otpauth_uris"].as_array().unwrap() {
        let algorithm: Algorithm = s(v, "algorithm").parse().unwrap();
        let digits = u8::try_from(n(v, "digits")).unwrap();
        let period = u32::try_from(n(v, "period")).unwrap();
        let want = s(v, "uri");
        let mut out = [0u8; 512];
        let uri = otpauth_uri(
            &mut out,
            s(v, "issuer"),
            s(v, "account"),
            s(v, "secret_ascii").as_bytes(),
            algorithm,
            digits,
            period,
        )
        .unwrap();
        assert_eq!(uri, want);
        let mut exact = vec![0u8; want.len()];
        let args = (
            s(v, "issuer"),
            s(v, "account"),
            s(v, "secret_ascii").as_bytes(),
        );
        assert_eq!(
            otpauth_uri(
                &mut exact, args.0, args.1, args.2, algorithm, digits, period
            )
            .unwrap(),
            want
        );
        let mut short = vec![0u8; want.len() - 1];
        assert_eq!(
            otpauth_uri(
                &mut short, args.0, args.1, args.2, algorithm, digits, period
            ),
            Err(OtpError::InsufficientSize(BufferTooSmall {
                required: want.len()
            }))
        );
    }
    let mut out = [0u8; 256];
    assert_eq!(
        otpauth_uri(&mut out, "ChatBox", "a", b"", Algorithm::Sha1, 6, 30),
        Err(OtpError::InvalidSecret)
    );
}

proptest! {
    #[test]
    fn verify_never_panics(code in "\\PC{0,12}", t in any::<u64>(), last in any::<Option<u64>>()) {
        let totp = Totp::sha1_default(SECRET).unwrap();
        if let Some(step) = totp.verify(&code, t, last) {
            prop_assert!(last.is_none_or(|l| step > l));
        }
    }

    #[test]
    fn generated_codes_verify(t in any::<u64>(), digits in 6u8..=8) {
        let totp = Totp::new(SECRET, Algorithm::Sha256, digits, 30).unwrap();
        let code = totp.generate(t).unwrap();
        prop_assert_eq!(code.as_str().len(), usize::from(digits));
        let step = totp.step(t);
        // A neighbouring step may share the code by chance; the later one is returned then.
        let got = totp.verify(code.as_str(), t, None);
        prop_assert!(got == Some(step) || got == Some(step + 1), "{:?}", got);
    }
}
