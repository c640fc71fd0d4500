//! `core::otp`: code parsing, `Totp::verify` with arbitrary code strings, HOTP, otpauth URIs.

use chatbox_core::buffer::BufferTooSmall;
use arbitrary::{Result, Unstructured};
use chatbox_core::otp::{
    self, Algorithm, MAX_SECRET_LEN, OtpError, OtpauthUri, Totp, format_code, hotp, parse_code,
};

fn algorithm(u: &mut Unstructured<'_>) -> Result<Algorithm> {
    Ok(*u.choose(&[Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512])?)
}

fn digits(u: &mut Unstructured<'_>) -> Result<u8> {
    // Mostly valid digit counts, sometimes anything.
    if u.ratio(1, 8)? {
        u.arbitrary()
    } else {
        u.int_in_range(6..=8)
    }
}

fn modulus(digits: u8) -> u32 {
    10u32.pow(u32::from(digits))
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let code: &str = u.arbitrary()?;
    let d = digits(u)?;

    // OtpauthUri::parse on anything (the code string as a URI, and behind the right prefix):
    // an error or parts that make a TOTP, never a panic.
    for text in [code.to_owned(), format!("otpauth://totp/{code}")] {
        if let Ok(p) = OtpauthUri::parse(&text) {
            assert!(p.totp().is_ok(), "{text:?}");
            assert!(!p.secret_base32().is_empty());
        }
    }

    // parse_code: exactly `d` ASCII digits after trimming ASCII white space.
    match parse_code(code, d) {
        Ok(c) => {
            assert!((6..=8).contains(&d));
            assert_eq!(c.as_str(), code.trim_ascii());
            assert_eq!(c.as_str().len(), usize::from(d));
            assert!(c.as_str().bytes().all(|b| b.is_ascii_digit()));
        }
        Err(OtpError::InvalidDigits) => assert!(!(6..=8).contains(&d)),
        Err(e) => assert_eq!(e, OtpError::InvalidCode),
    }
    if let Ok(a) = code.parse::<Algorithm>() {
        assert!(a.as_str().eq_ignore_ascii_case(code));
    }

    let secret_len = u.int_in_range(0..=MAX_SECRET_LEN + 2)?;
    let secret = u.bytes(secret_len)?;
    let alg = algorithm(u)?;
    let period = if u.ratio(1, 8)? {
        u.arbitrary()?
    } else {
        u.int_in_range(1..=120)?
    };
    let now: u64 = u.arbitrary()?;
    let last: Option<u64> = u.arbitrary()?;

    let value: u32 = u.arbitrary()?;
    let formatted = format_code(value, d);
    assert_eq!(formatted.as_str().len(), usize::from(d.clamp(1, 8)));

    let totp = match Totp::new(secret, alg, d, period) {
        Ok(t) => t,
        Err(e) => {
            let valid_digits = (6..=8).contains(&d);
            match e {
                OtpError::InvalidDigits => assert!(!valid_digits),
                OtpError::InvalidPeriod => assert_eq!(period, 0),
                OtpError::InvalidSecret => {
                    assert!(secret.is_empty() || secret.len() > MAX_SECRET_LEN)
                }
                other => panic!("Totp::new: {other:?}"),
            }
            return Ok(());
        }
    };
    if let Ok(v) = hotp(secret, now, d, alg) {
        assert!(v < modulus(d));
    }

    // Arbitrary code strings: accepted only if one of the three steps around `now` that is
    // after `last` generates exactly that string.
    let step = totp.step(now);
    let window = [step.checked_sub(1), Some(step), step.checked_add(1)];
    let fresh = |s: u64| last.is_none_or(|l| s > l);
    let matches = |s: u64, c: &str| totp.generate_at_step(s).expect("generate").as_str() == c;
    if let Some(s) = totp.verify(code, now, last) {
        assert!(window.contains(&Some(s)), "accepted outside the window");
        assert!(fresh(s), "accepted a used step");
        assert!(matches(s, code), "accepted a wrong code");
    }

    // The genuine current code: accepted unless used, then refused.
    let genuine = totp.generate(now).expect("generate");
    assert!(parse_code(genuine.as_str(), d).is_ok());
    match totp.verify(genuine.as_str(), now, None) {
        Some(s) => assert!(window.contains(&Some(s)) && matches(s, genuine.as_str())),
        None => panic!("the current code was refused"),
    }
    if let Some(s) = totp.verify(genuine.as_str(), now, Some(step)) {
        assert_eq!(Some(s), step.checked_add(1));
        assert!(matches(s, genuine.as_str()));
    }
    if let Some(next) = step.checked_add(1) {
        assert_eq!(totp.verify(genuine.as_str(), now, Some(next)), None);
    }
    // Padding the code is refused by verify (exact length), though parse_code trims.
    let padded = format!(" {}", genuine.as_str());
    assert_eq!(totp.verify(&padded, now, None), None);

    // otpauth URIs with arbitrary issuer and account, into a fuzz-sized buffer.
    let issuer: &str = u.arbitrary()?;
    let account: &str = u.arbitrary()?;
    let size = u.int_in_range(0..=1024usize)?;
    let mut out = vec![0u8; size];
    // Parsed back, the URI gives what was written (an empty issuer or account is refused).
    let parsed_back = |uri: &str| {
        if issuer.is_empty() || account.is_empty() {
            assert_eq!(
                OtpauthUri::parse(uri).err(),
                Some(otp::OtpauthError::BadLabel)
            );
            return;
        }
        let p = OtpauthUri::parse(uri).expect("what otpauth_uri writes parses");
        assert!(p.account().eq(account.bytes()), "{uri}");
        assert!(p.issuer().is_some_and(|i| i.eq(issuer.bytes())), "{uri}");
        let t = p.totp().expect("its TOTP");
        assert_eq!((t.secret(), t.algorithm()), (secret, alg));
        assert_eq!((t.digits(), t.period()), (d, period));
    };
    match otp::otpauth_uri(&mut out, issuer, account, secret, alg, d, period) {
        Ok(uri) => {
            check_uri(uri);
            parsed_back(uri);
        }
        Err(OtpError::InsufficientSize(BufferTooSmall { required })) => {
            assert!(required > size);
            let mut out = vec![0u8; required];
            let uri = otp::otpauth_uri(&mut out, issuer, account, secret, alg, d, period)
                .expect("the size it asked for");
            assert_eq!(uri.len(), required);
            check_uri(uri);
            parsed_back(uri);
        }
        Err(e) => panic!("otpauth_uri: {e:?}"),
    }
    Ok(())
}

fn check_uri(uri: &str) {
    assert!(uri.starts_with("otpauth://totp/"));
    assert!(uri.is_ascii());
    assert!(
        !uri.bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    );
}

/// Builds code strings, secrets, times and labels from the input; see the assertions.
pub fn check(data: &[u8]) {
    let _ = run(&mut Unstructured::new(data));
}
